#include "core/baseline/entry.h"

namespace mamori::baseline {

std::string_view type_name(FileType t) {
  switch (t) {
    case FileType::kRegular:
      return "file";
    case FileType::kDirectory:
      return "dir";
    case FileType::kSymlink:
      return "symlink";
    case FileType::kFifo:
      return "fifo";
    case FileType::kSocket:
      return "socket";
    case FileType::kCharDevice:
      return "chardev";
    case FileType::kBlockDevice:
      return "blockdev";
  }
  return "unknown";
}

mode_t type_bits(FileType t) {
  switch (t) {
    case FileType::kRegular:
      return S_IFREG;
    case FileType::kDirectory:
      return S_IFDIR;
    case FileType::kSymlink:
      return S_IFLNK;
    case FileType::kFifo:
      return S_IFIFO;
    case FileType::kSocket:
      return S_IFSOCK;
    case FileType::kCharDevice:
      return S_IFCHR;
    case FileType::kBlockDevice:
      return S_IFBLK;
  }
  return 0;
}

const std::string& Entry::link_target() const {
  static const std::string kEmpty;
  return extra_ ? extra_->link_target : kEmpty;
}

const std::string& Entry::xattrs() const {
  static const std::string kEmpty;
  return extra_ ? extra_->xattrs : kEmpty;
}

void Entry::set_link_target(std::string target) { set_extra(std::move(target), xattrs()); }
void Entry::set_xattrs(std::string encoded) { set_extra(link_target(), std::move(encoded)); }

void Entry::set_extra(std::string target, std::string encoded) {
  if (target.empty() && encoded.empty())
    extra_.reset();
  else
    extra_ = std::make_shared<const Extra>(Extra{std::move(target), std::move(encoded)});
}

void apply_stat(Entry& e, const struct stat& st) {
  switch (st.st_mode & S_IFMT) {
    case S_IFDIR:
      e.type = FileType::kDirectory;
      break;
    case S_IFLNK:
      e.type = FileType::kSymlink;
      break;
    case S_IFIFO:
      e.type = FileType::kFifo;
      break;
    case S_IFSOCK:
      e.type = FileType::kSocket;
      break;
    case S_IFCHR:
      e.type = FileType::kCharDevice;
      break;
    case S_IFBLK:
      e.type = FileType::kBlockDevice;
      break;
    default:
      e.type = FileType::kRegular;
      break;
  }
  e.mode = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.size = static_cast<uint64_t>(st.st_size);
  e.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  e.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
  e.ino = st.st_ino;
  e.rdev = (e.type == FileType::kCharDevice || e.type == FileType::kBlockDevice) ? st.st_rdev : 0;
}

Entry from_walk(fs::WalkEntry&& w) {
  Entry e;
  e.path = std::move(w.path);
  apply_stat(e, w.st);
  if (!w.link_target.empty() || !w.xattrs.empty()) {
    e.set_link_target(std::move(w.link_target));
    e.set_xattrs(std::move(w.xattrs));
  }
  return e;
}

std::vector<std::string_view> attr_names(uint32_t attrs) {
  static constexpr std::pair<uint32_t, std::string_view> kNames[] = {
      {kAttrType, "type"},     {kAttrContent, "content"}, {kAttrMode, "mode"},
      {kAttrOwner, "owner"},   {kAttrMtime, "mtime"},     {kAttrLinkTarget, "link_target"},
      {kAttrXattrs, "xattrs"}, {kAttrDevice, "device"},
  };
  std::vector<std::string_view> out;
  for (const auto& [bit, name] : kNames)
    if (attrs & bit) out.push_back(name);
  return out;
}

uint32_t diff_metadata(const Entry& base, const Entry& now) {
  if (base.type != now.type) return kAttrType;
  uint32_t d = 0;
  if (base.mode != now.mode) d |= kAttrMode;
  if (base.uid != now.uid || base.gid != now.gid) d |= kAttrOwner;
  if (base.xattrs() != now.xattrs()) d |= kAttrXattrs;
  switch (base.type) {
    case FileType::kRegular:
      if (base.mtime_ns != now.mtime_ns) d |= kAttrMtime;
      if (base.size != now.size) d |= kAttrContent;
      break;
    case FileType::kSymlink:
      if (base.link_target() != now.link_target()) d |= kAttrLinkTarget;
      break;
    case FileType::kCharDevice:
    case FileType::kBlockDevice:
      if (base.rdev != now.rdev) d |= kAttrDevice;
      break;
    default:
      break;
  }
  return d;
}

bool stat_cache_matches(const Entry& base, const Entry& now) {
  return base.ino == now.ino && base.size == now.size && base.mtime_ns == now.mtime_ns &&
         base.ctime_ns == now.ctime_ns;
}

}  // namespace mamori::baseline
