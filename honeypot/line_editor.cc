#include "honeypot/line_editor.h"

namespace mamori::honeypot {

void LineEditor::echo(std::vector<EditStep>& out, std::string_view text) {
  if (!pty_ || text.empty()) return;
  // Consecutive echoes merge: one channel write per burst of typing, not per byte.
  if (!out.empty() && out.back().kind == EditStep::Kind::kEcho)
    out.back().text.append(text);
  else
    out.push_back({EditStep::Kind::kEcho, std::string(text)});
}

std::vector<EditStep> LineEditor::feed(std::string_view data) {
  std::vector<EditStep> out;
  for (const char ch : data) {
    const bool was_cr = after_cr_;
    after_cr_ = ch == '\r';
    if (ch == '\n' && was_cr) continue;  // the LF of a CR LF already ended the line
    if (ch == '\r' || ch == '\n') {
      echo(out, "\r\n");
      out.push_back({EditStep::Kind::kLine, std::move(line_), cut_});
      line_.clear();
      cut_ = false;
    } else if (ch == 0x7f || ch == 0x08) {
      if (!line_.empty()) {
        line_.pop_back();
        echo(out, "\b \b");
      }
    } else if (ch == 0x03) {
      line_.clear();
      cut_ = false;
      out.push_back({EditStep::Kind::kInterrupt, {}});
    } else if (ch == 0x04) {
      if (line_.empty()) {
        out.push_back({EditStep::Kind::kEof, {}});
        return out;  // nothing after a logout counts
      }
    } else if (line_.size() < max_line_) {
      line_.push_back(ch);
      echo(out, std::string_view(&ch, 1));
    } else {
      cut_ = true;
    }
  }
  return out;
}

}  // namespace mamori::honeypot
