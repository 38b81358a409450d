#include "core/fs/upload_filter.h"

#include <gtest/gtest.h>

#include <string>

namespace mamori::fs {
namespace {

std::string jpeg_with(std::string_view middle) {
  std::string s("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", 12);
  s += middle;
  s += std::string("\x00\xff\xd9", 3);
  return s;
}

TEST(UploadFilter, PhpOpenTagInAnyFileAnyCase) {
  EXPECT_TRUE(looks_like_script(jpeg_with("<?php system($_GET[1]); ?>"), "up/a.jpg"));
  EXPECT_TRUE(looks_like_script(jpeg_with("<?PhP eval($x);"), "up/a.png"));
  EXPECT_TRUE(looks_like_script("<?php echo 1;", "up/notes.txt"));
}

TEST(UploadFilter, ShortEchoTagOnlyInText) {
  EXPECT_TRUE(looks_like_script("<?= `id` ?>", "up/a.gif"));
  // Three bytes inside binary data are chance, not code.
  EXPECT_FALSE(looks_like_script(jpeg_with("<?="), "up/a.jpg"));
}

TEST(UploadFilter, ScriptElementOnlyInMarkup) {
  const std::string svg =
      "<svg xmlns=\"http://www.w3.org/2000/svg\"><SCRIPT>alert(document.cookie)</SCRIPT></svg>";
  EXPECT_TRUE(looks_like_script(svg, "up/logo.svg"));
  EXPECT_TRUE(looks_like_script(svg, "up/logo.SVG"));
  EXPECT_TRUE(looks_like_script(svg, "up/page.html"));
  EXPECT_FALSE(looks_like_script(svg, "up/snippet.txt"));
  EXPECT_FALSE(looks_like_script("<svg><rect width=\"1\"/></svg>", "up/logo.svg"));
}

TEST(UploadFilter, OrdinaryImagesPass) {
  EXPECT_FALSE(looks_like_script(jpeg_with(std::string(5000, 'x')), "up/photo.jpg"));
  EXPECT_FALSE(looks_like_script("", "up/empty.jpg"));
}

TEST(UploadFilter, OnlyTheSniffedStartCounts) {
  std::string late(kSniffBytes, 'a');
  late += "<?php";
  EXPECT_FALSE(looks_like_script(late, "up/a.txt"));
}

}  // namespace
}  // namespace mamori::fs
