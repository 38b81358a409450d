// The e-mail sink: the words of a mail compared whole, hostile event text, config
// validation, and real delivery to tests/integration/smtp_server.py (aiosmtpd) with AUTH,
// STARTTLS and SMTPS.

#include "agent/sinks/smtp/smtp_sink.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/base/env.h"
#include "testing/child_server.h"
#include "testing/refused_port.h"
#include "testing/temp_dir.h"

namespace mamori::sinks {
namespace {

using mamori::testing::ChildServer;
using mamori::testing::TempDir;

nlohmann::json restored_event() {
  return nlohmann::json::parse(R"({
    "@timestamp": "2024-05-01T12:00:00.000000Z",
    "event": {"id": "0123456789abcdef0123456789abcdef", "action": "file-restored",
              "severity": 5, "kind": "alert", "outcome": "success", "module": "mamori"},
    "host": {"hostname": "web1"},
    "file": {"path": "/var/www/html/wp-config.php"},
    "mamori": {"root": "/var/www/html", "mode": "preserve", "evidence": {"id": "ev-42"}},
    "process": {"pid": 1234, "executable": "/usr/sbin/php-fpm8.2",
                "command_line": "php-fpm: pool www",
                "parent": {"pid": 1, "executable": "/usr/sbin/php-fpm8.2"}},
    "user": {"id": "33", "name": "www-data"},
    "source": {"ip": "203.0.113.7"},
    "message": "file-restored '/var/www/html/wp-config.php'"
  })");
}

nlohmann::json event(std::string_view action, int severity, int n) {
  nlohmann::json e = restored_event();
  e["event"]["action"] = action;
  e["event"]["severity"] = severity;
  e["event"]["id"] = fmt::format("{:032x}", n);
  return e;
}

std::vector<std::string> lines(const std::string& text, std::string_view sep = "\n") {
  std::vector<std::string> out;
  for (size_t start = 0; start <= text.size();) {
    const size_t end = text.find(sep, start);
    out.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + sep.size();
  }
  return out;
}

TEST(FormatMail, OneEventReadsAsAReport) {
  const std::vector<nlohmann::json> events = {restored_event()};
  const Mail mail = format_mail(events);
  EXPECT_EQ(mail.subject, "[mamori] WARNING file-restored on web1: /var/www/html/wp-config.php");
  EXPECT_EQ(mail.body,
            "WARNING file-restored on web1\n"
            "  Time:       2024-05-01T12:00:00.000000Z\n"
            "  What:       file-restored '/var/www/html/wp-config.php'\n"
            "  Root:       /var/www/html\n"
            "  Path:       /var/www/html/wp-config.php\n"
            "  Process:    pid 1234, /usr/sbin/php-fpm8.2\n"
            "  Command:    php-fpm: pool www\n"
            "  Parent:     pid 1, /usr/sbin/php-fpm8.2\n"
            "  User:       www-data, id 33\n"
            "  Source IP:  203.0.113.7\n"
            "  Outcome:    success, mode preserve\n"
            "  Evidence:   ev-42 (mamori evidence show ev-42)\n"
            "  Event id:   0123456789abcdef0123456789abcdef\n");
}

TEST(FormatMail, EventWithoutPathNamesItsMessage) {
  nlohmann::json e = event("tamper-storm", 7, 1);
  e.erase("file");
  e.erase("process");
  e["message"] = "tamper storm on /var/www/html: 512 changes in 1 s";
  const std::vector<nlohmann::json> events = {e};
  EXPECT_EQ(
      format_mail(events).subject,
      "[mamori] CRITICAL tamper-storm on web1: tamper storm on /var/www/html: 512 changes in 1 s");
}

TEST(FormatMail, DigestCountsByActionWorstSeverityFirst) {
  std::vector<nlohmann::json> events;
  for (int i = 0; i < 30; ++i) events.push_back(event("file-restored", 5, i));
  for (int i = 0; i < 5; ++i) events.push_back(event("file-quarantined", 5, 100 + i));
  events.push_back(event("tamper-storm", 7, 200));
  events.push_back(event("tamper-storm-ended", 3, 201));
  const Mail mail = format_mail(events);
  EXPECT_EQ(mail.subject,
            "[mamori] 37 events on web1: 1 tamper-storm, 30 file-restored, 5 file-quarantined, "
            "1 tamper-storm-ended");
  EXPECT_EQ(lines(mail.body)[0], "37 events on web1, oldest first.");
  EXPECT_NE(mail.body.find("\n#1 WARNING file-restored on web1\n"), std::string::npos);
  EXPECT_NE(mail.body.find("\n#37 NOTICE tamper-storm-ended on web1\n"), std::string::npos);
  EXPECT_EQ(mail.body.find("more; see the event log"), std::string::npos);
}

TEST(FormatMail, DigestBodyStopsAtTheCapAndCountsTheRest) {
  std::vector<nlohmann::json> events;
  for (int i = 0; i < 250; ++i) events.push_back(event("file-restored", 5, i));
  const Mail mail = format_mail(events);
  EXPECT_EQ(mail.subject, "[mamori] 250 events on web1: 250 file-restored");
  EXPECT_NE(mail.body.find("\n#200 "), std::string::npos);
  EXPECT_EQ(mail.body.find("\n#201 "), std::string::npos);
  EXPECT_TRUE(mail.body.ends_with("\n... and 50 more; see the event log.\n"))
      << mail.body.substr(mail.body.size() - 200);
}

TEST(FormatMail, DigestOverSeveralHostsSaysHowMany) {
  std::vector<nlohmann::json> events = {event("file-restored", 5, 1), event("file-restored", 5, 2)};
  events[1]["host"]["hostname"] = "web2";
  EXPECT_EQ(format_mail(events).subject, "[mamori] 2 events on 2 hosts: 2 file-restored");
}

TEST(FormatMail, HostileFileNameCannotAddHeaders) {
  nlohmann::json e = restored_event();
  e["file"]["path"] = "/var/www/html/x.php\r\nBcc: victim@example.com\r\n\r\nforged body";
  const std::vector<nlohmann::json> events = {e};
  const Mail mail = format_mail(events);
  EXPECT_EQ(mail.subject.find_first_of("\r\n"), std::string::npos) << mail.subject;
  EXPECT_NE(mail.subject.find("x.php\\r\\nBcc: victim"), std::string::npos) << mail.subject;

  const std::vector<std::string> to = {"ops@example.com"};
  const std::string message = mail_message(events, "mamori@web1.example", to, 0);
  const std::string head = message.substr(0, message.find("\r\n\r\n"));
  for (const auto& l : lines(head, "\r\n")) {
    EXPECT_EQ(l.find_first_of("\r\n"), std::string::npos) << l;
    EXPECT_FALSE(l.starts_with("Bcc:")) << head;
  }
  // Every CR in the whole message is part of a CRLF, every LF too.
  for (size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\r') {
      EXPECT_EQ(message[i + 1], '\n') << i;
    }
    if (message[i] == '\n') {
      EXPECT_EQ(message[i - 1], '\r') << i;
    }
  }
}

TEST(FormatMail, NonAsciiSubjectIsEncodedAndBidiControlsEscaped) {
  nlohmann::json e = restored_event();
  e["file"]["path"] = "/var/www/html/写真/\u202Egpj.php";  // RIGHT-TO-LEFT OVERRIDE
  const std::vector<nlohmann::json> events = {e};
  const Mail mail = format_mail(events);
  EXPECT_EQ(mail.subject,
            "[mamori] WARNING file-restored on web1: /var/www/html/写真/\\u202egpj.php");

  const std::vector<std::string> to = {"ops@example.com"};
  const std::string message = mail_message(events, "mamori@web1.example", to, 0);
  const size_t at = message.find("\r\nSubject: ");
  ASSERT_NE(at, std::string::npos);
  std::string subject_field = message.substr(at + 2, message.find("\r\nMessage-ID:") - at - 2);
  EXPECT_TRUE(subject_field.starts_with("Subject: =?UTF-8?B?")) << subject_field;
  for (const auto& l : lines(subject_field, "\r\n")) {
    EXPECT_LE(l.size(), 78u) << l;
    for (char c : l) EXPECT_LT(static_cast<unsigned char>(c), 0x80) << l;
  }
}

TEST(FormatMail, LongValuesKeepEveryLineWithinRfc5322) {
  nlohmann::json e = restored_event();
  e["process"]["command_line"] = std::string(5000, 'A');
  e["file"]["path"] = "/var/www/" + std::string(3000, 'b') + "/\x01.php";
  const std::vector<nlohmann::json> events = {e, e};
  const std::vector<std::string> to = {"ops@example.com"};
  const std::string message = mail_message(events, "mamori@web1.example", to, 0);
  for (const auto& l : lines(message, "\r\n")) EXPECT_LE(l.size(), 998u) << l.substr(0, 60);
  EXPECT_NE(message.find("AAAA…\r\n"), std::string::npos);
  EXPECT_LE(format_mail(events).subject.size(), kMaxSubjectBytes);
}

TEST(MailMessage, HeadersForDedupAndThreads) {
  const std::vector<nlohmann::json> events = {restored_event()};
  const std::vector<std::string> to = {"ops@example.com", "sec@example.com"};
  const std::string message = mail_message(events, "mamori@web1.example", to, 1714564800);
  const std::string head = message.substr(0, message.find("\r\n\r\n") + 2);
  EXPECT_EQ(head,
            "Date: Wed, 01 May 2024 12:00:00 +0000\r\n"
            "From: mamori <mamori@web1.example>\r\n"
            "To: ops@example.com,\r\n sec@example.com\r\n"
            "Subject: [mamori] WARNING file-restored on web1: /var/www/html/wp-config.php\r\n"
            "Message-ID: <0123456789abcdef0123456789abcdef.mamori@web1>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n"
            "Auto-Submitted: auto-generated\r\n"
            "X-Mamori-Event-Id: 0123456789abcdef0123456789abcdef\r\n"
            "X-Mamori-Event-Count: 1\r\n");
  // A retry of the same batch is the same message to a receiver that deduplicates.
  EXPECT_EQ(message.substr(message.find("Message-ID")),
            mail_message(events, "mamori@web1.example", to, 1714569999)
                .substr(message.find("Message-ID")));
}

// --- config validation --------------------------------------------------------------------

config::SinkConfig smtp_config(const std::string& url = "smtp://127.0.0.1:2525") {
  config::SinkConfig c;
  c.name = "ops";
  c.type = config::SinkType::kSmtp;
  c.url = url;
  c.from = "mamori@web1.example";
  c.to = {"ops@example.com"};
  c.starttls = config::StartTls::kNone;
  c.timeout_s = 10;
  return c;
}

std::string refusal(const config::SinkConfig& c) {
  auto sink = make_smtp_sink(c);
  if (sink) return "(accepted)";
  return sink.error().message();
}

TEST(SmtpConfig, RefusesWhatCannotWorkNamingTheSink) {
  auto c = smtp_config();
  EXPECT_TRUE(make_smtp_sink(c).has_value());

  c = smtp_config("");
  EXPECT_EQ(refusal(c), "smtp sink 'ops': no url (smtp://HOST:PORT or smtps://HOST:PORT)");
  c = smtp_config("http://127.0.0.1:25");
  EXPECT_EQ(refusal(c), "smtp sink 'ops': url scheme 'http' is not smtp or smtps");
  c = smtp_config("file:///etc/passwd");
  EXPECT_NE(refusal(c).find("smtp sink 'ops': url"), std::string::npos) << refusal(c);
  c = smtp_config("127.0.0.1:25");
  EXPECT_NE(refusal(c).find("smtp sink 'ops': url"), std::string::npos) << refusal(c);
  c = smtp_config("smtp://user:secret@127.0.0.1:25");
  EXPECT_EQ(refusal(c),
            "smtp sink 'ops': url holds credentials: set username and password_file instead");
  c = smtp_config();
  c.from = "";
  EXPECT_EQ(refusal(c), "smtp sink 'ops': from '' is not a plain address (user@domain)");
  c = smtp_config();
  c.to = {};
  EXPECT_EQ(refusal(c), "smtp sink 'ops': no 'to' address");
  c = smtp_config();
  c.to = {"ops@example.com", "x@y\r\nRCPT TO:<evil@x>"};
  EXPECT_EQ(refusal(c),
            "smtp sink 'ops': to 'x@y\\r\\nRCPT TO:<evil@x>' is not a plain address (user@domain)");
  c = smtp_config();
  c.timeout_s = 0;
  EXPECT_EQ(refusal(c), "smtp sink 'ops': timeout must be at least 1 second");
  c = smtp_config();
  c.username = "mamori";
  EXPECT_EQ(refusal(c), "smtp sink 'ops': username and password_file go together");
}

TEST(SmtpConfig, PasswordFileMustBeReadable) {
  TempDir dir;
  auto c = smtp_config();
  c.username = "mamori";
  c.password_file = dir / "missing";
  EXPECT_EQ(refusal(c),
            "smtp sink 'ops': password_file '" + dir / "missing" + "': No such file or directory");
  dir.write("empty", "\nsecond line\n", 0600);
  c.password_file = dir / "empty";
  EXPECT_EQ(refusal(c),
            "smtp sink 'ops': password_file '" + dir / "empty" + "': the first line is empty");
  dir.mkdir("dir");
  c.password_file = dir / "dir";
  EXPECT_NE(refusal(c).find("smtp sink 'ops': password_file"), std::string::npos) << refusal(c);
}

// --- delivery to a real SMTP server ---------------------------------------------------------

std::string header(const std::string& mail, const std::string& name) {
  const size_t at = mail.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "(none)";
  const size_t start = at + name.size() + 4;
  return mail.substr(start, mail.find("\r\n", start) - start);
}

class SmtpDelivery : public ::testing::Test {
 protected:
  // Starts smtp_server.py storing into DIR/mail with `args`.
  void start(std::vector<std::string> args = {}) {
    args.insert(args.begin(), dir_ / "mail");
    server_ = std::make_unique<ChildServer>("smtp_server.py", args);
    ASSERT_NE(server_->port(), 0);
  }
  config::SinkConfig config(std::string scheme = "smtp") const {
    return smtp_config(fmt::format("{}://127.0.0.1:{}", scheme, server_->port()));
  }
  void with_password(config::SinkConfig& c, const std::string& password) const {
    dir_.write("password", password + "\n", 0600);
    c.username = "mamori";
    c.password_file = dir_ / "password";
  }
  std::string mail(int n) const { return dir_.read(fmt::format("mail/{:04d}.eml", n)); }
  bool stored(int n) const {
    return ::access((dir_ / fmt::format("mail/{:04d}.eml", n)).c_str(), F_OK) == 0;
  }

  TempDir dir_;
  std::unique_ptr<ChildServer> server_;
};

TEST_F(SmtpDelivery, OneEventWithAuthArrivesAsWritten) {
  start({"--auth", "mamori", "s3cret pass"});
  auto c = config();
  c.to = {"ops@example.com", "sec@example.com"};
  with_password(c, "s3cret pass");
  auto sink = make_smtp_sink(c);
  ASSERT_TRUE(sink.has_value()) << sink.error().message();
  const std::vector<nlohmann::json> events = {restored_event()};
  const auto sent = (*sink)->deliver(events);
  ASSERT_TRUE(sent.has_value()) << sent.error().message();

  const std::string m = mail(1);
  EXPECT_EQ(header(m, "X-Test-Rcpt-To"), "ops@example.com, sec@example.com");
  EXPECT_TRUE(m.starts_with("X-Test-Mail-From: mamori@web1.example\r\n")) << m;
  EXPECT_EQ(header(m, "X-Test-Auth-User"), "mamori");
  EXPECT_EQ(header(m, "X-Test-TLS"), "none");
  EXPECT_EQ(header(m, "Subject"),
            "[mamori] WARNING file-restored on web1: /var/www/html/wp-config.php");
  EXPECT_EQ(header(m, "Message-ID"), "<0123456789abcdef0123456789abcdef.mamori@web1>");
  EXPECT_NE(m.find("\r\n\r\nWARNING file-restored on web1\r\n  Time:"), std::string::npos) << m;
  EXPECT_TRUE(m.ends_with("  Event id:   0123456789abcdef0123456789abcdef\r\n")) << m;
}

TEST_F(SmtpDelivery, DigestIsOneMessageAndLeadingDotsSurvive) {
  start();
  auto sink = make_smtp_sink(config());
  ASSERT_TRUE(sink.has_value());
  std::vector<nlohmann::json> events;
  for (int i = 0; i < 3; ++i) events.push_back(event("file-restored", 5, i));
  events[1]["process"]["command_line"] = ".";  // a line of "  Command:    ." is not the end
  events[2]["message"] = "ü";
  ASSERT_TRUE((*sink)->deliver(events).has_value());
  EXPECT_FALSE(stored(2));
  const std::string m = mail(1);
  EXPECT_EQ(header(m, "Subject"), "[mamori] 3 events on web1: 3 file-restored");
  EXPECT_EQ(header(m, "X-Mamori-Event-Count"), "3");
  EXPECT_NE(m.find("\r\n  What:       ü\r\n"), std::string::npos);
  EXPECT_NE(m.find("\r\n#3 WARNING"), std::string::npos);
}

TEST_F(SmtpDelivery, WrongPasswordIsAnAuthenticationError) {
  start({"--auth", "mamori", "right"});
  auto c = config();
  with_password(c, "wrong-hunter2");
  auto sink = make_smtp_sink(c);
  ASSERT_TRUE(sink.has_value());
  const std::vector<nlohmann::json> events = {restored_event()};
  const auto sent = (*sink)->deliver(events);
  ASSERT_FALSE(sent.has_value());
  const std::string message = sent.error().message();
  EXPECT_TRUE(
      message.starts_with(fmt::format("smtp sink 'ops': smtp://127.0.0.1:{}: ", server_->port())))
      << message;
  EXPECT_TRUE(
      message.ends_with(": authentication as 'mamori' failed (SMTP 535): check username "
                        "and password_file"))
      << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  EXPECT_FALSE(stored(1));
}

TEST_F(SmtpDelivery, ServerThatWantsAuthRefusesAnonymousMail) {
  start({"--auth", "mamori", "right"});
  auto sink = make_smtp_sink(config());
  ASSERT_TRUE(sink.has_value());
  const std::vector<nlohmann::json> events = {restored_event()};
  const auto sent = (*sink)->deliver(events);
  ASSERT_FALSE(sent.has_value());
  EXPECT_NE(sent.error().message().find("530"), std::string::npos) << sent.error().message();
}

TEST_F(SmtpDelivery, StartTlsRequiredVerifiesTheServer) {
  start({"--tls", dir_ / "cert.pem", dir_ / "key.pem", "--auth", "mamori", "pw"});
  auto c = config();
  c.starttls = config::StartTls::kRequired;
  c.ca_file = dir_ / "cert.pem";
  with_password(c, "pw");
  auto sink = make_smtp_sink(c);
  ASSERT_TRUE(sink.has_value());
  const std::vector<nlohmann::json> events = {restored_event()};
  const auto sent = (*sink)->deliver(events);
  ASSERT_TRUE(sent.has_value()) << sent.error().message();
  EXPECT_EQ(header(mail(1), "X-Test-TLS"), "starttls");

  // Without the CA the certificate is not trusted: nothing is sent in the clear instead.
  c.ca_file = dir_ / "password";
  auto untrusting = make_smtp_sink(c);
  ASSERT_TRUE(untrusting.has_value());
  ASSERT_FALSE((*untrusting)->deliver(events).has_value());
  EXPECT_FALSE(stored(2));
}

TEST_F(SmtpDelivery, StartTlsRequiredRefusesAServerWithoutIt) {
  start();
  auto c = config();
  c.starttls = config::StartTls::kRequired;
  auto sink = make_smtp_sink(c);
  ASSERT_TRUE(sink.has_value());
  const std::vector<nlohmann::json> events = {restored_event()};
  const auto sent = (*sink)->deliver(events);
  ASSERT_FALSE(sent.has_value());
  EXPECT_FALSE(stored(1));
  // kTry carries on in the clear.
  c.starttls = config::StartTls::kTry;
  auto trying = make_smtp_sink(c);
  ASSERT_TRUE((*trying)->deliver(events).has_value());
  EXPECT_EQ(header(mail(1), "X-Test-TLS"), "none");
}

TEST_F(SmtpDelivery, SmtpsSpeaksTlsFromTheFirstByte) {
  start({"--tls", dir_ / "cert.pem", dir_ / "key.pem", "--smtps"});
  auto c = config("smtps");
  c.ca_file = dir_ / "cert.pem";
  auto sink = make_smtp_sink(c);
  ASSERT_TRUE(sink.has_value());
  const std::vector<nlohmann::json> events = {restored_event()};
  const auto sent = (*sink)->deliver(events);
  ASSERT_TRUE(sent.has_value()) << sent.error().message();
  EXPECT_EQ(header(mail(1), "X-Test-TLS"), "implicit");
}

TEST(SmtpDeliveryFailure, ConnectionRefusedFailsAtOnce) {
  const testing::RefusedPort refused;

  auto sink = make_smtp_sink(smtp_config(fmt::format("smtp://127.0.0.1:{}", refused.port())));
  ASSERT_TRUE(sink.has_value());
  const std::vector<nlohmann::json> events = {restored_event()};
  const auto start = SystemClock().monotonic();
  const auto sent = (*sink)->deliver(events);
  ASSERT_FALSE(sent.has_value());
  EXPECT_LT(SystemClock().monotonic() - start, std::chrono::seconds(5));
  EXPECT_NE(sent.error().message().find("smtp sink 'ops': smtp://127.0.0.1:"), std::string::npos);
  EXPECT_NE(sent.error().message().find("Failed to connect to 127.0.0.1 port"), std::string::npos)
      << sent.error().message();
}

}  // namespace
}  // namespace mamori::sinks
