#pragma once
// mamori's version, from the build (CMake's project(VERSION), configured into
// version.cc): the one place the CLI's --version and every event's agent.version read it.

#include <string_view>

namespace mamori {

std::string_view version();

}  // namespace mamori
