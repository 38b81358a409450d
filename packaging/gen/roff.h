#pragma once
// Manual pages in roff made from mamori's help text (`mamori --help`, `mamori COMMAND
// --help`, cli/help.cc), so the text and the page have one source.
//
// The help text is laid out like a rendered manual page, and the conversion reads that
// layout: a line at column 0 is a section heading; in NAME, "mamori check - what" is the
// page's whatis line; SYNOPSIS and EXAMPLES are kept line for line (no-fill); elsewhere a
// line at the body's indent (4) is prose, filled; a line whose text has a gap of two
// spaces or more ("--full   re-hash every file") is a definition-list item (a term and its
// description, continued by the lines at the description's column), so are a term alone
// on its line with its description indented below it; lines indented past a
// description's column, or past the body outside any list, keep their layout (samples of
// output). A list indented deeper than the body is nested (.RS).
//
// Pure functions: no files, no clock.

#include <string>
#include <string_view>

namespace mamori::packaging {

struct ManPage {
  std::string title;    // the .TH name, e.g. "MAMORI-CHECK"
  std::string section;  // "8"
  std::string date;     // the .TH date, e.g. "2026-12-07"
  std::string source;   // e.g. "mamori 0.1.0"
  std::string manual;   // e.g. "System Administration"
};

// Roff text for one word or line: backslashes, minus signs and a leading '.' or '\''
// escaped.
std::string roff_escape(std::string_view text);

// The page for `help`, a help text as described above; `see_also` (roff, may be empty)
// becomes a SEE ALSO section at the end.
std::string help_to_roff(std::string_view help, const ManPage& page,
                         std::string_view see_also = {});

}  // namespace mamori::packaging
