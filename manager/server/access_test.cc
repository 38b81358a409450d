// Password hashing (password.h) and the login throttle (login_throttle.h).
#include <gtest/gtest.h>

#include <future>
#include <utility>
#include <vector>

#include "manager/server/login_throttle.h"
#include "manager/server/password.h"
#include "manager/server/password_checks.h"

namespace mamori::manager {
namespace {

constexpr int64_t kSec = LoginThrottle::kSecond;

TEST(Password, HashesAreArgon2idSaltedAndVerify) {
  auto a = hash_password("correct horse battery");
  auto b = hash_password("correct horse battery");
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << *a;
  EXPECT_NE(*a, *b) << "a fresh salt each time";
  EXPECT_TRUE(verify_password(*a, "correct horse battery"));
  EXPECT_TRUE(verify_password(*b, "correct horse battery"));
  EXPECT_FALSE(verify_password(*a, "correct horse batterY"));
  EXPECT_FALSE(verify_password(*a, ""));
  EXPECT_FALSE(verify_password("", "correct horse battery"));
  EXPECT_FALSE(verify_password("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "x"));
  EXPECT_FALSE(verify_password(decoy_password_hash(), "correct horse battery"));
  EXPECT_TRUE(decoy_password_hash().starts_with("$argon2id$"));
}

TEST(Password, PolicyRefusesShortLongAndLineBreaks) {
  EXPECT_FALSE(hash_password("elevenchars"));
  EXPECT_TRUE(check_password_policy("twelve chars"));
  EXPECT_FALSE(check_password_policy(std::string(1025, 'x')));
  EXPECT_TRUE(check_password_policy(std::string(1024, 'x')));
  EXPECT_FALSE(check_password_policy("twelve chars\n"));
  EXPECT_FALSE(check_password_policy(std::string("twelve\0chars", 12)));
  EXPECT_FALSE(verify_password(*hash_password(std::string(1024, 'x')), std::string(1025, 'x')));
}

TEST(PasswordChecks, VerifyOffTheCallersThreadWithinBounds) {
  const std::string phc = *hash_password("correct horse battery");
  // The first answer's delivery blocks the checking thread until the test opens the gate:
  // from then on every check submitted stays queued.
  std::promise<void> entered, open;
  std::shared_future<void> gate = open.get_future().share();
  bool first = true;
  std::vector<std::future<bool>> answers;
  {
    PasswordChecks checks([&, gate](std::function<void()> f) {
      if (std::exchange(first, false)) {
        entered.set_value();
        gate.wait();
      }
      f();
    });
    auto submit = [&](const std::string& address, const char* password) {
      auto p = std::make_shared<std::promise<bool>>();
      auto f = p->get_future();
      if (!checks.submit(address, phc, password, [p](bool ok) { p->set_value(ok); })) return false;
      answers.push_back(std::move(f));
      return true;
    };
    ASSERT_TRUE(submit("203.0.113.1", "correct horse battery"));
    entered.get_future().wait();
    EXPECT_TRUE(submit("192.0.2.1", "correct horse battery"));
    EXPECT_TRUE(submit("192.0.2.1", "wrong"));
    EXPECT_FALSE(submit("192.0.2.1", "a third at once"));  // kMaxPerAddress
    size_t queued = 2;
    for (int i = 0; i < 100; ++i) queued += submit("198.51.100." + std::to_string(i), "x");
    EXPECT_EQ(queued, PasswordChecks::kMaxQueued);
    open.set_value();
    EXPECT_TRUE(answers[0].get());
    EXPECT_TRUE(answers[1].get());
    EXPECT_FALSE(answers[2].get());
    // A finished check gives its address's place back.
    EXPECT_TRUE(submit("192.0.2.1", "correct horse battery"));
    EXPECT_TRUE(answers.back().get());
  }  // the destructor joins, whatever is still queued
}

TEST(LoginThrottle, FreeFailuresThenDoublingDelaysCappedPerUser) {
  LoginThrottle t;
  int64_t now = 1000 * kSec;
  for (int i = 0; i < LoginThrottle::kFreeFailures; ++i) {
    EXPECT_EQ(t.wait_ns("alice", "192.0.2.1", now), 0) << i;
    t.failed("alice", "192.0.2.1", now);
  }
  EXPECT_EQ(t.wait_ns("alice", "192.0.2.1", now), kSec);
  EXPECT_EQ(t.wait_ns("alice", "198.51.100.7", now), kSec) << "the name is throttled anywhere";
  EXPECT_EQ(t.wait_ns("bob", "198.51.100.7", now), 0) << "others are not";
  for (int i = 0; i < 20; ++i) t.failed("alice", "198.51.100." + std::to_string(i), now);
  EXPECT_EQ(t.wait_ns("alice", "203.0.113.1", now), LoginThrottle::kMaxUserDelay)
      << "a name is slowed, never locked: capped";
  EXPECT_EQ(t.wait_ns("alice", "203.0.113.1", now + LoginThrottle::kMaxUserDelay), 0);
  t.succeeded("alice");
  EXPECT_EQ(t.wait_ns("alice", "203.0.113.1", now), 0);
}

TEST(LoginThrottle, AnAddressGuessingManyNamesIsSlowedLonger) {
  LoginThrottle t;
  const int64_t now = 5000 * kSec;
  for (int i = 0; i < 30; ++i) t.failed("user" + std::to_string(i), "2001:db8:1:2::5", now);
  EXPECT_EQ(t.wait_ns("new", "2001:db8:1:2::99", now), LoginThrottle::kMaxAddressDelay)
      << "an IPv6 client is throttled by its /64";
  EXPECT_EQ(t.wait_ns("new", "2001:db8:1:3::5", now), 0);
  EXPECT_EQ(t.wait_ns("new", "2001:db8:1:2::5", now + LoginThrottle::kForgetAfter), 0)
      << "forgotten an hour after the last failure";
  EXPECT_EQ(LoginThrottle::address_key("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(LoginThrottle::address_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
}

TEST(LoginThrottle, MemoryIsBounded) {
  LoginThrottle t;
  for (size_t i = 0; i < LoginThrottle::kMaxEntries + 500; ++i)
    t.failed("u" + std::to_string(i),
             "10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
                 std::to_string(i % 256),
             static_cast<int64_t>(i));
  EXPECT_EQ(t.size(), 2 * LoginThrottle::kMaxEntries);
}

}  // namespace
}  // namespace mamori::manager
