// The SSH honeypot's parsers take an attacker's bytes: the client's first bytes (version
// line and KEXINIT, honeypot/kexinit.h), the keystrokes on a shell channel
// (honeypot/line_editor.h) and the command lines run by the emulated shell
// (honeypot/shell.h). Whatever the bytes: no crash, no read outside them, a verdict that
// asks for more bytes only past what it has and within the peek buffer, a HASSH of 32 hex
// digits, lines and output within their limits.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "honeypot/kexinit.h"
#include "honeypot/line_editor.h"
#include "honeypot/shell.h"

namespace {

using namespace mamori::honeypot;

void check_hello(std::string_view data) {
  const HelloParse r = parse_client_hello(data);
  switch (r.status) {
    case HelloStatus::kNeedMore:
      if (r.need <= data.size() || r.need > kMaxVersionLine + kMaxKexinitPacket) std::abort();
      break;
    case HelloStatus::kDone:
      if (r.hello.hassh.size() != 32 || r.hello.version.size() > kMaxVersionLine) std::abort();
      // More bytes after a complete KEXINIT change nothing.
      if (parse_client_hello(std::string(data) + "trailing").hello.hassh != r.hello.hassh)
        std::abort();
      break;
    case HelloStatus::kInvalid:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  check_hello(data);

  constexpr size_t kMaxLine = 64;
  constexpr uint32_t kMaxOutput = 512;
  static const FakeSystem system = make_fake_system(1);
  Shell shell(system, "root", kMaxLine, kMaxOutput);
  for (const bool pty : {false, true}) {
    LineEditor editor(pty, kMaxLine);
    // Fed in two pieces: a line split across channel packets is the same line.
    for (const std::string_view part : {data.substr(0, size / 2), data.substr(size / 2)}) {
      for (const auto& step : editor.feed(part)) {
        if (step.kind == EditStep::Kind::kEcho && !pty) std::abort();
        if (step.kind != EditStep::Kind::kLine) continue;
        if (step.text.size() > kMaxLine) std::abort();
        const ShellResult r = shell.run(step.text);
        if (r.output.size() > kMaxOutput) std::abort();
      }
    }
  }
  if (shell.run(data).output.size() > kMaxOutput) std::abort();
  return 0;
}
