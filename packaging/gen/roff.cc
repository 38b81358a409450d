#include "packaging/gen/roff.h"

#include <optional>
#include <vector>

namespace mamori::packaging {
namespace {

constexpr size_t kBodyIndent = 4;  // where the help text's body starts

struct Line {
  bool blank = true;
  size_t indent = 0;
  std::string_view text;  // without the indent
};

struct Section {
  std::string_view heading;
  std::vector<Line> lines;
};

Line parse_line(std::string_view raw) {
  Line l;
  const size_t first = raw.find_first_not_of(' ');
  if (first == std::string_view::npos) return l;
  l.blank = false;
  l.indent = first;
  l.text = raw.substr(first);
  while (!l.text.empty() && l.text.back() == ' ') l.text.remove_suffix(1);
  return l;
}

std::vector<Section> parse_sections(std::string_view help) {
  std::vector<Section> out;
  while (!help.empty()) {
    size_t nl = help.find('\n');
    std::string_view raw = help.substr(0, nl);
    help.remove_prefix(nl == std::string_view::npos ? help.size() : nl + 1);
    Line l = parse_line(raw);
    if (!l.blank && l.indent == 0) {
      out.push_back({l.text, {}});
    } else if (!out.empty()) {
      out.back().lines.push_back(l);
    }
  }
  for (auto& s : out)  // trailing blank lines carry nothing
    while (!s.lines.empty() && s.lines.back().blank) s.lines.pop_back();
  return out;
}

// A definition-list line: the term, and the column its description starts at.
struct Term {
  std::string_view term;
  std::string_view description;
  size_t column = 0;
};

std::optional<Term> as_term(const Line& l) {
  if (l.blank) return std::nullopt;
  const size_t gap = l.text.find("  ");
  if (gap == std::string_view::npos || gap == 0) return std::nullopt;
  const size_t desc = l.text.find_first_not_of(' ', gap);
  if (desc == std::string_view::npos) return std::nullopt;
  return Term{l.text.substr(0, gap), l.text.substr(desc), l.indent + desc};
}

void add_line(std::string& out, std::string_view roff) {
  out.append(roff);
  out += '\n';
}

// SYNOPSIS, EXAMPLES: line for line, relative to the body's indent.
void render_verbatim(std::string& out, const std::vector<Line>& lines) {
  add_line(out, ".nf");
  for (const auto& l : lines) {
    if (l.blank) {
      add_line(out, ".sp");
      continue;
    }
    const size_t extra = l.indent > kBodyIndent ? l.indent - kBodyIndent : 0;
    add_line(out, std::string(extra, ' ') + roff_escape(l.text));
  }
  add_line(out, ".fi");
}

// Prose, definition lists (nested ones too) and laid-out samples.
class BodyWriter {
 public:
  explicit BodyWriter(std::string& out) : out_(out) {}

  void render(const std::vector<Line>& lines) {
    for (size_t i = 0; i < lines.size(); ++i) {
      const Line& l = lines[i];
      if (l.blank) {
        end_verbatim();
        pending_break_ = true;
        continue;
      }
      // Inside an item: its description, continued or laid out below it.
      if (item_column_ && l.indent >= *item_column_) {
        if (pending_break_) {
          add_line(out_, ".IP");
          pending_break_ = false;
        }
        if (l.indent > *item_column_) {
          verbatim_line(l.indent - *item_column_, l.text);
        } else {
          end_verbatim();
          add_line(out_, roff_escape(l.text));
        }
        continue;
      }
      if (in_sample_ && !pending_break_ && l.indent >= sample_base_) {  // the sample goes on
        verbatim_line(l.indent - sample_base_, l.text);
        continue;
      }
      end_verbatim();
      const Line* next = i + 1 < lines.size() ? &lines[i + 1] : nullptr;
      if (auto t = as_term(l); t || (t = aligned_term(l))) {
        start_item(l.indent, t->term, t->column);
        add_line(out_, roff_escape(t->description));
      } else if (next && !next->blank && next->indent > l.indent && !as_term(*next) &&
                 l.indent == kBodyIndent + nested_indent()) {
        // A term alone on its line, its description indented below it.
        start_item(l.indent, l.text, next->indent);
      } else if (l.indent == kBodyIndent) {
        item_column_.reset();
        end_nested();
        if (pending_break_ || !in_prose_) add_line(out_, ".PP");
        pending_break_ = false;
        in_prose_ = true;
        add_line(out_, roff_escape(l.text));
      } else {
        // Laid out deeper than the body, in no list: a sample of output.
        item_column_.reset();
        end_nested();
        if (pending_break_) add_line(out_, ".PP");
        pending_break_ = false;
        in_prose_ = false;
        if (!in_sample_) {
          add_line(out_, ".RS");
          sample_base_ = l.indent;
        }
        in_sample_ = true;
        verbatim_line(l.indent > sample_base_ ? l.indent - sample_base_ : 0, l.text);
      }
    }
    end_verbatim();
    end_nested();
  }

 private:
  // A term as long as the list's term column leaves one space before its description
  // ("heal [--clear|--fail WHY] the node's..."), at the column the list's items have.
  std::optional<Term> aligned_term(const Line& l) const {
    if (!item_column_ || pending_break_ || l.indent != item_base_ || *item_column_ < l.indent + 2)
      return std::nullopt;
    const size_t at = *item_column_ - l.indent;
    if (l.text.size() <= at || l.text[at - 1] != ' ' || l.text[at] == ' ') return std::nullopt;
    return Term{l.text.substr(0, at - 1), l.text.substr(at), *item_column_};
  }

  size_t nested_indent() const { return nested_ ? nested_base_ - kBodyIndent : 0; }

  void start_item(size_t indent, std::string_view term, size_t column) {
    if (indent > kBodyIndent && !nested_) {
      add_line(out_, ".RS");
      nested_ = true;
      nested_base_ = indent;
    } else if (indent == kBodyIndent) {
      end_nested();
    }
    add_line(out_, ".TP");
    add_line(out_, "\\fB" + roff_escape(term) + "\\fR");
    item_column_ = column;
    item_base_ = indent;
    pending_break_ = false;
    in_prose_ = false;
  }

  void verbatim_line(size_t spaces, std::string_view text) {
    if (!in_verbatim_) add_line(out_, ".nf");
    in_verbatim_ = true;
    add_line(out_, std::string(spaces, ' ') + roff_escape(text));
  }

  void end_verbatim() {
    if (in_verbatim_) add_line(out_, ".fi");
    in_verbatim_ = false;
    if (in_sample_) add_line(out_, ".RE");
    in_sample_ = false;
  }

  void end_nested() {
    if (nested_) add_line(out_, ".RE");
    nested_ = false;
  }

  std::string& out_;
  std::optional<size_t> item_column_;
  size_t item_base_ = 0;
  bool nested_ = false;
  size_t nested_base_ = 0;
  bool pending_break_ = false;
  bool in_prose_ = false;
  bool in_verbatim_ = false;
  bool in_sample_ = false;
  size_t sample_base_ = 0;
};

// NAME: "mamori check - what it does" is the whatis line "mamori-check \- what it does",
// the page's name as man(1) finds it.
void render_name(std::string& out, const std::vector<Line>& lines) {
  std::string text;
  for (const auto& l : lines) {
    if (l.blank) continue;
    if (!text.empty()) text += ' ';
    text.append(l.text);
  }
  const size_t dash = text.find(" - ");
  std::string name = text.substr(0, dash);
  // The page's own name: "mamori logs test" is mamori-logs(8), as the file is named.
  if (size_t second = name.find(' '); second != std::string::npos) {
    if (size_t third = name.find(' ', second + 1); third != std::string::npos) name.resize(third);
  }
  for (char& c : name)
    if (c == ' ') c = '-';
  add_line(out,
           roff_escape(name) +
               (dash == std::string::npos ? "" : " \\- " + roff_escape(text.substr(dash + 3))));
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  out += roff_escape(s);
  out += '"';
  return out;
}

}  // namespace

std::string roff_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

std::string help_to_roff(std::string_view help, const ManPage& page, std::string_view see_also) {
  std::string out;
  add_line(out,
           ".\\\" Generated from the help text (cli/help.cc, cli/commands/) by mamori-gen-docs.");
  add_line(out, ".\\\" Do not edit: change the help text instead.");
  add_line(out, ".TH " + quoted(page.title) + " " + page.section + " " + quoted(page.date) + " " +
                    quoted(page.source) + " " + quoted(page.manual));
  // Paths, options and JSON keys are words to copy: never hyphenated, never stretched.
  add_line(out, ".nh");
  add_line(out, ".ad l");
  for (const auto& s : parse_sections(help)) {
    add_line(out, ".SH " + quoted(s.heading));
    if (s.heading == "NAME") {
      render_name(out, s.lines);
    } else if (s.heading == "SYNOPSIS" || s.heading == "EXAMPLES") {
      render_verbatim(out, s.lines);
    } else {
      BodyWriter(out).render(s.lines);
    }
  }
  if (!see_also.empty()) {
    add_line(out, ".SH \"SEE ALSO\"");
    out.append(see_also);
    if (out.back() != '\n') out += '\n';
  }
  return out;
}

}  // namespace mamori::packaging
