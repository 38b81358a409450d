#include "core/scan/rules.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include <yara.h>

#include "core/base/mutex.h"
#include "core/base/unique_fd.h"
#include "core/fs/admin_files.h"

namespace mamori::scan {
namespace {

// libyara's init is process-global and yr_initialize's own counter is not atomic: one
// lock and one count here make concurrent RuleSets (the agent's and a test's) safe.
// A function-local static because the state it guards is the library's, not ours.
struct RuntimeState {
  Mutex mu;
  int users MAMORI_GUARDED_BY(mu) = 0;
};
RuntimeState& runtime_state() {
  static RuntimeState state;
  return state;
}

// The externals rule sets written for other scanners (LOKI, THOR: signature-base) refer
// to; defined empty so those rules compile and verdicts depend on content alone.
constexpr const char* kExternals[] = {"filename", "filepath", "extension", "filetype", "owner"};

// How many compile errors of one file the message quotes; the rest are counted.
constexpr size_t kQuotedErrors = 5;

struct CompileMessages {
  std::string current;  // the file being compiled, for errors that name none
  std::vector<std::string> errors;
  size_t total = 0;
};

void on_compile_message(int level, const char* file_name, int line, const YR_RULE* /*rule*/,
                        const char* message, void* user) {
  if (level != YARA_ERROR_LEVEL_ERROR) return;  // warnings ("may slow down scanning")
  auto& m = *static_cast<CompileMessages*>(user);
  ++m.total;
  if (m.errors.size() >= kQuotedErrors) return;
  std::string where;
  // An error inside an included file names that file; otherwise it is the one compiled.
  if (file_name != nullptr && m.current != file_name) where = std::string(file_name) + ":";
  m.errors.push_back(where + "line " + std::to_string(line) + ": " + message);
}

std::string joined(const CompileMessages& m) {
  std::string out;
  for (const auto& e : m.errors) out += (out.empty() ? "" : "; ") + e;
  if (m.total > m.errors.size())
    out += "; and " + std::to_string(m.total - m.errors.size()) + " more error(s)";
  return out;
}

struct CompilerDeleter {
  void operator()(YR_COMPILER* c) const { yr_compiler_destroy(c); }
};
using CompilerPtr = std::unique_ptr<YR_COMPILER, CompilerDeleter>;

Result<CompilerPtr> new_compiler(CompileMessages& messages) {
  YR_COMPILER* raw = nullptr;
  if (const int rc = yr_compiler_create(&raw); rc != ERROR_SUCCESS)
    return fail_msg("yr_compiler_create", "", "yara error " + std::to_string(rc));
  CompilerPtr compiler(raw);
  yr_compiler_set_callback(compiler.get(), on_compile_message, &messages);
  for (const char* name : kExternals)
    if (const int rc = yr_compiler_define_string_variable(compiler.get(), name, "");
        rc != ERROR_SUCCESS)
      return fail_msg("yr_compiler_define_string_variable", name,
                      "yara error " + std::to_string(rc));
  return compiler;
}

bool is_rule_file(std::string_view name) {
  if (name.starts_with('.')) return false;  // editors' backups and hidden files
  return name.ends_with(".yar") || name.ends_with(".yara");
}

// The rule files directly inside `dir`, sorted so the load order is stable.
Result<std::vector<std::string>> rule_files_in(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return fail_errno("opendir", dir);
  std::vector<std::string> files;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    if (is_rule_file(e->d_name)) {
      if (files.size() >= kMaxRuleFilesPerDir) {
        ::closedir(d);
        return fail_msg("list YARA rules", dir,
                        "more than " + std::to_string(kMaxRuleFilesPerDir) + " rule files");
      }
      files.push_back(dir + (dir.ends_with('/') ? "" : "/") + e->d_name);
    }
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return fail("readdir", dir, err);
  std::sort(files.begin(), files.end());
  return files;
}

Status add_file(YR_COMPILER* compiler, CompileMessages& messages, const std::string& path) {
  auto fd = MAMORI_TRY(fs::open_admin_read(path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat", path);
  if (!S_ISREG(st.st_mode)) return fail("compile YARA rules", path, EINVAL, "not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxRuleFileBytes)
    return fail("compile YARA rules", path, EFBIG);
  messages.current = path;
  // Each user file in its own namespace: signature-base and a site's rules may reuse names.
  if (yr_compiler_add_fd(compiler, fd.get(), path.c_str(), path.c_str()) != 0)
    return fail_msg("compile YARA rules", path, joined(messages));
  return ok();
}

Result<YR_RULES*> rules_of(CompilerPtr compiler) {
  YR_RULES* rules = nullptr;
  if (const int rc = yr_compiler_get_rules(compiler.get(), &rules); rc != ERROR_SUCCESS)
    return fail_msg("yr_compiler_get_rules", "", "yara error " + std::to_string(rc));
  return rules;
}

}  // namespace

Result<YaraRuntime> YaraRuntime::acquire() {
  auto& state = runtime_state();
  MutexLock lock(state.mu);
  if (state.users == 0)
    if (const int rc = yr_initialize(); rc != ERROR_SUCCESS)
      return fail_msg("yr_initialize", "", "yara error " + std::to_string(rc));
  ++state.users;
  YaraRuntime r;
  r.held_ = true;
  return r;
}

YaraRuntime::~YaraRuntime() {
  if (!held_) return;
  auto& state = runtime_state();
  MutexLock lock(state.mu);
  if (--state.users == 0) (void)yr_finalize();  // nothing left to do if it fails
}

RuleSet::RuleSet(YaraRuntime runtime, YR_RULES* rules, std::vector<std::string> sources)
    : runtime_(std::move(runtime)), rules_(rules), sources_(std::move(sources)) {
  const YR_RULE* rule = nullptr;
  yr_rules_foreach(rules_, rule) { ++rule_count_; }
}

Result<std::shared_ptr<const RuleSet>> RuleSet::take_rules(YaraRuntime runtime, YR_RULES* rules,
                                                           std::vector<std::string> sources) {
  std::shared_ptr<const RuleSet> set(new RuleSet(std::move(runtime), rules, std::move(sources)));
  if (set->rule_count() == 0) return fail_msg("compile YARA rules", "", "no rules to compile");
  return set;
}

RuleSet::~RuleSet() {
  if (rules_ != nullptr) (void)yr_rules_destroy(rules_);
}

Result<std::shared_ptr<const RuleSet>> RuleSet::compile(const RuleOptions& options) {
  auto runtime = MAMORI_TRY(YaraRuntime::acquire());
  CompileMessages messages;
  auto compiler = MAMORI_TRY(new_compiler(messages));
  std::vector<std::string> sources;
  if (options.builtin) {
    for (const auto& file : builtin_rules()) {
      const std::string name = "builtin:" + std::string(file.name);
      messages.current = name;
      // The builtin files are tested at build time; an error here is a broken build.
      if (yr_compiler_add_string(compiler.get(), std::string(file.text).c_str(), "mamori") != 0)
        return fail_msg("compile YARA rules", name, joined(messages));
      sources.push_back(name);
    }
  }
  std::vector<std::string> files;
  for (const auto& dir : options.dirs) {
    auto in_dir = MAMORI_TRY(rule_files_in(dir));
    files.insert(files.end(), in_dir.begin(), in_dir.end());
  }
  files.insert(files.end(), options.files.begin(), options.files.end());
  for (const auto& f : files) {
    MAMORI_TRY(add_file(compiler.get(), messages, f));
    sources.push_back(f);
  }
  auto* rules = MAMORI_TRY(rules_of(std::move(compiler)));
  return take_rules(std::move(runtime), rules, std::move(sources));
}

Result<std::shared_ptr<const RuleSet>> RuleSet::compile_text(std::string_view text,
                                                             std::string_view name) {
  auto runtime = MAMORI_TRY(YaraRuntime::acquire());
  CompileMessages messages;
  messages.current = name;
  auto compiler = MAMORI_TRY(new_compiler(messages));
  if (yr_compiler_add_string(compiler.get(), std::string(text).c_str(), nullptr) != 0)
    return fail_msg("compile YARA rules", std::string(name), joined(messages));
  auto* rules = MAMORI_TRY(rules_of(std::move(compiler)));
  return take_rules(std::move(runtime), rules, {std::string(name)});
}

}  // namespace mamori::scan
