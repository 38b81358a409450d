#pragma once
// Registered consumer cursors. Each consumer of the outbox (a sink's follower, the
// events.jsonl export, later the manager link) keeps the sequence number it wants next
// in DIR/cursors/NAME.cursor (docs/formats/outbox.md):
//   mamori-outbox-cursor 1 NEXT CRC\n
// where CRC is the CRC-32C of "NEXT" in decimal, so a damaged file is told from a
// valid one. The file is replaced atomically (fs::write_file_atomic). Its existence is
// the registration: the writer deletes a segment only after every cursor has passed it
// (or the disk quota forces it, outbox.h). A corrupt cursor counts as 0 for deletion
// (it holds everything, until the quota) and its consumer starts again from the oldest
// segment (at least once: it may see events twice, never miss one silently).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"

namespace mamori::outbox {

// Letters, digits, '-', '_' and '.', 1 to 96 of them, not starting with '.'.
bool valid_cursor_name(std::string_view name);
std::string cursor_path(const std::string& outbox_dir, std::string_view name);

// Writes the cursor (making DIR/cursors if missing).
Status save_cursor(Env& env, const std::string& outbox_dir, std::string_view name, uint64_t next);
// nullopt: no such cursor (not registered). EBADMSG: the file is damaged.
Result<std::optional<uint64_t>> load_cursor(const std::string& outbox_dir, std::string_view name);
Status remove_cursor(const std::string& outbox_dir, std::string_view name);

struct CursorEntry {
  std::string name;
  std::optional<uint64_t> next;  // nullopt: damaged
};
// Every registered cursor (ENOENT-free: no directory is no cursor).
Result<std::vector<CursorEntry>> list_cursors(const std::string& outbox_dir);

// The text of a cursor file, and its parse (nullopt when damaged).
std::string encode_cursor(uint64_t next);
std::optional<uint64_t> decode_cursor(std::string_view text);

}  // namespace mamori::outbox
