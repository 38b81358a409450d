#include "testing/temp_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace mamori::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/mamori-test-XXXXXX";
  if (!::mkdtemp(templ.data())) std::abort();
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Tests chmod things to 000; give the owner access back so removal can descend.
  for (auto it = std::filesystem::recursive_directory_iterator(
           path_, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec))
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
  }
  std::filesystem::remove_all(path_, ec);
}

void TempDir::write(const std::string& rel, const std::string& content, int mode) const {
  const std::string p = *this / rel;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  ASSERT_TRUE(out.good()) << p;
  out << content;
  out.close();
  ASSERT_EQ(::chmod(p.c_str(), static_cast<mode_t>(mode)), 0) << p;
}

std::string TempDir::read(const std::string& rel) const {
  std::ifstream in(*this / rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void TempDir::mkdir(const std::string& rel, int mode) const {
  ASSERT_EQ(::mkdir((*this / rel).c_str(), static_cast<mode_t>(mode)), 0) << rel;
}

}  // namespace mamori::testing
