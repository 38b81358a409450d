#pragma once
// The version text the honeypot sends after "SSH-2.0-": the host's own sshd's, so a
// scanner sees the banner it expects from a Debian host (nmap names libssh by its
// default banner, the cheapest honeypot tell).

#include <string>
#include <string_view>

#include "core/base/result.h"

namespace mamori::honeypot {

// Debian 12's sshd, for hosts without one.
inline constexpr std::string_view kDefaultBanner = "OpenSSH_9.2p1 Debian-2+deb12u3";

// The release text compiled into an sshd binary ("OpenSSH_9.2p1 Debian-2+deb12u10"): the
// first "OpenSSH_<digits>.<digits>p<digits>" followed by a NUL or a space and a comment
// (the compatibility patterns in the same binary hold '*' and are skipped); "" if none.
std::string find_openssh_release(std::string_view binary);

// `configured` unless "auto"; else the release in `sshd_path`, else kDefaultBanner (the
// error says why the host's could not be used, for a log line).
std::string resolve_banner(const std::string& configured, const std::string& sshd_path,
                           std::string* why_default);

}  // namespace mamori::honeypot
