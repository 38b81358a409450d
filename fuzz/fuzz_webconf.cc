// Feeds arbitrary bytes to the nginx, Apache and PHP-FPM config readers (each as a
// main file that may include itself and a second file holding the same bytes): each
// must return a value or an error, never crash, hang or throw.

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/webconf/apache.h"
#include "core/webconf/nginx.h"
#include "core/webconf/php_fpm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mamori::webconf;
  const std::string text(reinterpret_cast<const char*>(data), size);
  MemConfSource src;
  src.files["/c/main.conf"] = text;
  src.files["/c/inc/a.conf"] = text;
  src.files["/c/inc/b.conf"] = "include main.conf;\nInclude main.conf\ninclude=/c/main.conf\n";
  if (auto n = read_nginx(src, "/c/main.conf")) {
    for (const auto& p : n->problems) (void)p.text();
  }
  (void)parse_envvars(text);
  if (auto a = read_apache(src, "/c/main.conf", parse_envvars(text))) {
    for (const auto& p : a->problems) (void)p.text();
  }
  (void)read_php_fpm(src, "/c/main.conf");
  return 0;
}
