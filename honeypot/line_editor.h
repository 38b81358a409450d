#pragma once
// What an attacker's keystrokes on the shell channel become: a terminal's line discipline
// (with a pty: echo, backspace, ^C, ^D on an empty line; without: lines only), as an
// ordered list of things for the server to do. Lines are bounded (`max_line` bytes: the
// rest of a longer line is dropped and the line marked cut).
//
// Pure: bytes in, steps out. One per channel; one thread.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mamori::honeypot {

struct EditStep {
  enum class Kind {
    kEcho,       // write `text` back (pty only)
    kLine,       // run `text` (without its line end); `cut` when it was longer than allowed
    kInterrupt,  // ^C: the line is dropped; write "^C\r\n" and a new prompt
    kEof,        // ^D on an empty line: log out
  };
  Kind kind;
  std::string text;
  bool cut = false;
};

class LineEditor {
 public:
  LineEditor(bool pty, size_t max_line) : pty_(pty), max_line_(max_line) {}
  void set_pty(bool pty) { pty_ = pty; }

  // The steps `data` makes, in order. "\r\n" and "\n" end one line (not two).
  std::vector<EditStep> feed(std::string_view data);

 private:
  void echo(std::vector<EditStep>& out, std::string_view text);

  bool pty_;
  size_t max_line_;
  std::string line_;
  bool cut_ = false;
  bool after_cr_ = false;
};

}  // namespace mamori::honeypot
