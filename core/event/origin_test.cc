#include "core/event/origin.h"

#include <sys/stat.h>

#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "core/base/version.h"
#include "core/proto/actions.h"
#include "testing/sim_clock.h"
#include "testing/temp_dir.h"

namespace mamori::event {
namespace {

TEST(AgentId, MadeOnceKeptPrivateAndStable) {
  RealEnv env;
  testing::TempDir dir;
  auto a = load_or_create_agent_id(env, dir.path());
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_TRUE(is_agent_id(*a)) << *a;
  EXPECT_EQ(dir.read("agent-id"), *a + "\n");
  struct stat st {};
  ASSERT_EQ(::stat((dir / "agent-id").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto b = load_or_create_agent_id(env, dir.path());
  ASSERT_TRUE(b);
  EXPECT_EQ(*a, *b);
  testing::TempDir other;
  auto c = load_or_create_agent_id(env, other.path());
  ASSERT_TRUE(c);
  EXPECT_NE(*a, *c) << "two state directories, two agents";
  std::set<std::string> names;  // no temporary is left next to it
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    names.insert(entry.path().filename());
  EXPECT_EQ(names, std::set<std::string>{"agent-id"});
}

TEST(AgentId, CorruptOrEmptyIsAnErrorNeverReplaced) {
  RealEnv env;
  for (const std::string bad : {"", "\n", "not-a-uuid\n", "0E0A1B2C-0000-4000-8000-000000000000\n",
                                "0e0a1b2c-0000-4000-8000-000000000000\nextra\n"}) {
    testing::TempDir dir;
    dir.write("agent-id", bad, 0600);
    auto id = load_or_create_agent_id(env, dir.path());
    ASSERT_FALSE(id) << "accepted " << bad;
    EXPECT_NE(id.error().message().find("agent-id"), std::string::npos) << id.error().message();
    EXPECT_NE(id.error().message().find("delete it"), std::string::npos) << id.error().message();
    EXPECT_EQ(dir.read("agent-id"), bad) << "the file must be left for the administrator";
  }
}

TEST(AgentId, MissingStateDirectoryIsAnError) {
  RealEnv env;
  testing::TempDir dir;
  EXPECT_FALSE(load_or_create_agent_id(env, dir / "missing"));
}

TEST(Origin, StampsEveryOriginFieldAndDerivesFileNameAndDataset) {
  RealEnv env;
  testing::SimClock clock;
  testing::TempDir dir;
  auto o = Origin::load(env, dir.path(), "");
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->fields().agent_name, system_hostname()) << "agent.name defaults to the host name";
  EXPECT_EQ(o->fields().agent_version, std::string(kVersion));
  Origin origin(o->fields(), clock);

  Event e("file-quarantined", Severity::kWarning, 1'700'000'000'000'000'000);
  e.set("file.path", "/srv/www/wp-content/uploads/2026/Shell.PHP");
  clock.set(std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'001)));
  origin.stamp(e);
  const auto j = nlohmann::json::parse(e.to_json_line());
  EXPECT_EQ(j["agent"]["id"], o->fields().agent_id);
  EXPECT_EQ(j["agent"]["type"], "mamori");
  EXPECT_EQ(j["agent"]["version"], std::string(kVersion));
  EXPECT_EQ(j["host"]["hostname"], system_hostname());
  EXPECT_TRUE(j["host"]["name"].is_string());
  EXPECT_EQ(j["event"]["dataset"], "mamori.guard");
  EXPECT_EQ(j["@timestamp"], "2023-11-14T22:13:20.000000Z") << "@timestamp: when it happened";
  EXPECT_EQ(j["event"]["created"], "2023-11-14T22:13:21.000000Z") << "event.created: when made";
  EXPECT_EQ(j["file"]["name"], "Shell.PHP");
  EXPECT_EQ(j["file"]["extension"], "PHP");

  Event ban("ip-banned", Severity::kWarning, 0);
  ban.set("event.dataset", "mamori.ban");
  origin.stamp(ban);
  EXPECT_EQ(ban.get("event.dataset"), "mamori.ban") << "an emitter's own dataset is kept";
  EXPECT_TRUE(ban.get("file.name").is_null());
}

TEST(Origin, FileNameAndExtension) {
  EXPECT_EQ(file_name_of("/a/b/c.tar.gz"), "c.tar.gz");
  EXPECT_EQ(file_extension_of("c.tar.gz"), "gz");
  EXPECT_EQ(file_name_of("/a/dir/"), "dir");
  EXPECT_EQ(file_name_of("plain"), "plain");
  EXPECT_EQ(file_extension_of(".htaccess"), "");
  EXPECT_EQ(file_extension_of("README"), "");
  EXPECT_EQ(file_extension_of("trailing."), "");
  EXPECT_EQ(file_extension_of("x.php.jpg"), "jpg");
}

TEST(Origin, EveryKnownActionHasOneDatasetAndDatasetsAreListed) {
  std::set<std::string_view> seen;
  for (const auto& a : known_actions()) {
    EXPECT_TRUE(seen.insert(a.action).second) << "listed twice: " << a.action;
    EXPECT_TRUE(a.dataset.starts_with("mamori.")) << a.action;
  }
  EXPECT_EQ(dataset_for("nope"), "");
  EXPECT_TRUE(dataset_allowed("agent-lost", "mamori.manager"));
  EXPECT_TRUE(dataset_allowed("agent-stopped", "mamori.agent"));
  EXPECT_TRUE(dataset_allowed("agent-stopped", "mamori.manager"));
  EXPECT_TRUE(dataset_allowed("ip-banned", "mamori.ban"));
  EXPECT_FALSE(dataset_allowed("agent-started", "mamori.manager"));
  EXPECT_FALSE(dataset_allowed("agent-lost", "mamori.agent"));
  const auto& ds = known_datasets();
  for (const std::string_view d : {"mamori.guard", "mamori.agent", "mamori.heal", "mamori.logwatch",
                                   "mamori.ban", "mamori.manager"})
    EXPECT_NE(std::find(ds.begin(), ds.end(), d), ds.end()) << d;
}

// The protocol's action list (core/proto/actions.h, the schema's EventAction enum) and
// the datasets are one list: an action added to either without the other fails here.
TEST(Origin, EveryProtocolActionHasADatasetAndNoOther) {
  for (const auto action : proto::action::kAllActions) {
    if (action == proto::action::kBanExpired) continue;  // a hook payload, never an event
    EXPECT_NE(dataset_for(action), "") << action;
  }
  for (const auto& a : known_actions())
    EXPECT_NE(
        std::find(proto::action::kAllActions.begin(), proto::action::kAllActions.end(), a.action),
        proto::action::kAllActions.end())
        << a.action << " is not in proto::action::kAllActions";
}

}  // namespace
}  // namespace mamori::event
