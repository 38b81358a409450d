#pragma once
// Errors are values. Every fallible operation returns Result<T>; an Error names the
// operation, the path it worked on and errno, so a message reads like
//   renameat2 'wp/index.php': No space left on device
// Callers propagate with MAMORI_TRY and decide once, at the top, how to report.

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace mamori {

struct Error {
  std::string op;      // the failing call or step: "openat2", "parse config"
  std::string path;    // what it worked on; may be empty; never trusted to be printable
  int errnum = 0;      // errno, or 0 when the cause is not a system call
  std::string detail;  // extra text when errnum alone does not explain it

  // "op 'path': detail: strerror" with the path quoted and escaped for a terminal.
  std::string message() const;
};

// tl::expected with [[nodiscard]]: a dropped Result is a dropped error, and the build
// refuses it (-Werror=unused-result). Where ignoring one is right, say why and discard
// it explicitly: `(void)f();  // why`. E is Error here; core/config/load_error.h reuses
// it for load errors that carry a place in a file.
template <class T, class E>
class [[nodiscard]] BasicResult : public tl::expected<T, E> {
 public:
  using tl::expected<T, E>::expected;
  BasicResult(const tl::expected<T, E>& other) : tl::expected<T, E>(other) {}
  BasicResult(tl::expected<T, E>&& other) : tl::expected<T, E>(std::move(other)) {}
};

template <class T>
using Result = BasicResult<T, Error>;
using Status = Result<void>;

// Builds an error value for `return fail(...)` from functions returning Result<T>.
inline tl::unexpected<Error> fail(std::string op, std::string path, int errnum,
                                  std::string detail = {}) {
  return tl::unexpected(Error{std::move(op), std::move(path), errnum, std::move(detail)});
}
// The same, taking errno at the call.
inline tl::unexpected<Error> fail_errno(std::string op, std::string path) {
  return fail(std::move(op), std::move(path), errno);
}
inline tl::unexpected<Error> fail_msg(std::string op, std::string path, std::string detail) {
  return fail(std::move(op), std::move(path), 0, std::move(detail));
}

inline Status ok() { return {}; }

namespace detail {
// The value of a Result for MAMORI_TRY; tl::expected<void> has no value() to call.
template <class T, class E>
T take_value(tl::expected<T, E>& r) {
  return std::move(*r);
}
template <class E>
void take_value(tl::expected<void, E>&) {}
}  // namespace detail

}  // namespace mamori

// Evaluates a Result; returns its error from the enclosing function, else yields the value.
// (A GNU statement expression, which GCC and clang both support; the temporary gets a
// unique name so a MAMORI_TRY inside a lambda inside another does not shadow it.)
#define MAMORI_TRY(expr) MAMORI_TRY_IMPL(expr, MAMORI_CONCAT(mamori_try_, __COUNTER__))
#define MAMORI_CONCAT(a, b) MAMORI_CONCAT_IMPL(a, b)
#define MAMORI_CONCAT_IMPL(a, b) a##b
#define MAMORI_TRY_IMPL(expr, name)                              \
  ({                                                             \
    auto&& name = (expr);                                        \
    if (!name) return ::tl::unexpected(std::move(name).error()); \
    ::mamori::detail::take_value(name);                          \
  })
