#include "manager/server/console_files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "testing/temp_dir.h"

namespace mamori::manager {
namespace {

using testing::TempDir;

TEST(ConsoleFiles, PagesGetIndexAndAssetsAreCachedForGood) {
  TempDir d;
  d.write("index.html", "<!doctype html><div id=app></div>");
  d.mkdir("assets");
  d.write("assets/index-AbC1.js", "console.log(1)");
  d.write("assets/index-AbC1.css", "body{}");
  d.write("favicon.svg", "<svg/>");
  auto c = ConsoleFiles::load(d.path());
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->file_count(), 4u);

  const ConsoleFile* index = c->find("/");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_FALSE(index->immutable) << "it names the current assets";
  EXPECT_EQ(index->etag.size(), 18u);
  for (const char* page : {"/fleet", "/events", "/incident/abc", "/index.html"})
    EXPECT_EQ(c->find(page), index) << page;

  const ConsoleFile* js = c->find("/assets/index-AbC1.js");
  ASSERT_NE(js, nullptr);
  EXPECT_EQ(js->body, "console.log(1)");
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_TRUE(js->immutable);
  EXPECT_EQ(c->find("/assets/index-AbC1.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(c->find("/favicon.svg")->content_type, "image/svg+xml");
  EXPECT_NE(js->etag, index->etag);
}

TEST(ConsoleFiles, OnlyWhatWasLoadedIsFound) {
  TempDir d;
  d.write("index.html", "x");
  auto c = ConsoleFiles::load(d.path());
  ASSERT_TRUE(c) << c.error().message();
  for (const char* path :
       {"/missing.js", "/assets/x.css", "/../etc/passwd", "/%2e%2e/etc/passwd", "index.html", ""})
    EXPECT_EQ(c->find(path), nullptr) << path;
  // Written after the start: never served.
  d.write("late.js", "alert(1)");
  EXPECT_EQ(c->find("/late.js"), nullptr);
}

TEST(ConsoleFiles, SymlinksAndFifosAreSkipped) {
  TempDir outside;
  outside.write("secret.txt", "root's secret");
  TempDir d;
  d.write("index.html", "x");
  ASSERT_EQ(::symlink((outside / "secret.txt").c_str(), (d / "secret.txt").c_str()), 0);
  ASSERT_EQ(::symlink(outside.path().c_str(), (d / "assets").c_str()), 0);
  ASSERT_EQ(::mkfifo((d / "hang.js").c_str(), 0644), 0);
  auto c = ConsoleFiles::load(d.path());  // returns: a FIFO is never opened
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->file_count(), 1u);
  EXPECT_EQ(c->find("/secret.txt"), nullptr);
  EXPECT_EQ(c->find("/assets/secret.txt"), nullptr);
  EXPECT_EQ(c->find("/hang.js"), nullptr);
}

TEST(ConsoleFiles, MistakesAreNamed) {
  TempDir d;
  auto c = ConsoleFiles::load(d / "missing");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().errnum, ENOENT) << "the manager then runs without a console";

  d.write("app.js", "x");
  c = ConsoleFiles::load(d.path());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("no index.html"), std::string::npos) << c.error().message();
}

TEST(ConsoleFiles, TooManyFilesOrBytesAreRefused) {
  TempDir d;
  d.write("index.html", "x");
  ASSERT_EQ(::truncate((d / "index.html").c_str(), static_cast<off_t>(kMaxConsoleBytes) + 1), 0);
  auto c = ConsoleFiles::load(d.path());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().errnum, EFBIG) << c.error().message();

  TempDir many;
  many.write("index.html", "x");
  for (size_t i = 0; i < kMaxConsoleFiles; ++i) many.write("f" + std::to_string(i), "");
  c = ConsoleFiles::load(many.path());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("more than 4096 files"), std::string::npos)
      << c.error().message();
}

TEST(ConsoleFiles, SecurityHeadersAllowOnlyTheManagersOwnCode) {
  std::string csp;
  for (const auto& [name, value] : console_security_headers())
    if (name == "Content-Security-Policy") csp = value;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << "no inline script or eval";
}

}  // namespace
}  // namespace mamori::manager
