#include "core/baseline/site.h"

#include <map>
#include <memory>

#include "core/baseline/canonical.h"

namespace mamori::baseline {
namespace {

// The canonical bytes of an entry for a site digest (site.h says what is in and out),
// each field length-prefixed or fixed-width.
void hash_content(hash::Sha256& h, const Entry& e) {
  h.update(CanonicalRecord('S')
               .bytes(e.path)
               .u64(static_cast<uint64_t>(e.type))
               .u64(e.mode)
               .u64(e.uid)
               .u64(e.gid)
               .u64(e.rdev)
               .fixed(e.type == FileType::kRegular ? e.sha256.raw() : Digest{}.raw())
               .bytes(e.link_target())
               .bytes(e.xattrs())
               .view());
}

constexpr std::string_view kDomain = "mamori-site-v1";

}  // namespace

Result<SitePart> site_digest(Catalog& catalog, const RootRow& root) {
  hash::Sha256 h;
  h.update(kDomain);
  SitePart part;
  part.name = root.path;
  MAMORI_TRY(catalog.for_each(root.id, "", [&](Entry&& e) -> Status {
    hash_content(h, e);
    ++part.entries;
    return ok();
  }));
  part.digest = h.finish();
  return part;
}

Result<SiteChildren> site_children(Catalog& catalog, const RootRow& root, std::string_view dir,
                                   std::string_view after, size_t limit) {
  struct Child {
    std::unique_ptr<hash::Sha256> h;
    FileType type = FileType::kDirectory;
    uint64_t entries = 0;
  };
  // Only the `limit` smallest names after `after` are kept: a name dropped (or never
  // taken) for being larger than `limit` others stays larger, so it is never in the page.
  std::map<std::string, Child, std::less<>> page;
  SiteChildren out;
  const size_t skip = dir.empty() ? 0 : dir.size() + 1;
  MAMORI_TRY(catalog.for_each(root.id, dir, [&](Entry&& e) -> Status {
    if (e.path.size() <= skip) {  // the directory itself
      hash::Sha256 self;
      self.update(kDomain);
      hash_content(self, e);
      out.self = self.finish();
      return ok();
    }
    const std::string_view rest = std::string_view(e.path).substr(skip);
    const std::string_view name = rest.substr(0, rest.find('/'));
    if (name <= after) return ok();
    auto it = page.find(name);
    if (it == page.end()) {
      if (limit == 0 || (page.size() == limit && name > page.rbegin()->first)) {
        out.more = true;
        return ok();
      }
      it = page.emplace(std::string(name), Child{std::make_unique<hash::Sha256>()}).first;
      it->second.h->update(kDomain);
      if (page.size() > limit) {
        page.erase(std::prev(page.end()));
        out.more = true;
      }
    }
    if (rest.size() == name.size()) it->second.type = e.type;
    hash_content(*it->second.h, e);
    ++it->second.entries;
    return ok();
  }));
  for (auto& [name, c] : page) out.parts.push_back({name, c.type, c.h->finish(), c.entries});
  return out;
}

}  // namespace mamori::baseline
