#include "manager/server/admission.h"

#include <vector>

#include <gtest/gtest.h>

namespace mamori::manager {
namespace {

constexpr size_t kMiB = 1 << 20;

// Channels 0..n-1 waiting in order, each expecting `reserve`; `woken` says who got in.
struct Room {
  Admission a{10 * kMiB};
  std::vector<int> woken;
  void wait(int id, size_t reserve, bool alive = true) {
    a.wait(
        [this, id, alive] {
          if (alive) woken.push_back(id);
          return alive;
        },
        reserve);
  }
};

TEST(Admission, LetsInFirstComeFirstWhileThereIsRoom) {
  Room r;
  for (int i = 0; i < 5; ++i) r.wait(i, 3 * kMiB);
  r.a.let_in(0);
  EXPECT_EQ(r.woken, (std::vector<int>{0, 1, 2}));  // 9 MiB reserved: a fourth would pass 10
  EXPECT_EQ(r.a.reserved(), 9 * kMiB);
  EXPECT_EQ(r.a.waiting(), 2u);

  // The writer's queue counts too: channel 0 read its batch, now queued.
  r.a.release(3 * kMiB);
  r.a.let_in(3 * kMiB);
  EXPECT_EQ(r.woken.size(), 3u);
  r.a.let_in(0);  // stored
  EXPECT_EQ(r.woken, (std::vector<int>{0, 1, 2, 3}));
}

TEST(Admission, TheLimitSlowsButNeverStops) {
  Room r;
  r.wait(0, 40 * kMiB);  // larger than the whole limit
  r.wait(1, 1 * kMiB);
  r.a.let_in(1);
  EXPECT_TRUE(r.woken.empty());  // something queued: wait for it
  r.a.let_in(0);
  EXPECT_EQ(r.woken, (std::vector<int>{0}));  // alone, it goes in
  r.a.let_in(0);
  EXPECT_EQ(r.woken, (std::vector<int>{0}));  // and the next waits behind it
  r.a.release(40 * kMiB);
  r.a.let_in(0);
  EXPECT_EQ(r.woken, (std::vector<int>{0, 1}));
}

TEST(Admission, AChannelGoneMeanwhileReservesNothing) {
  Room r;
  r.wait(0, 4 * kMiB, /*alive=*/false);
  r.wait(1, 4 * kMiB);
  r.a.let_in(0);
  EXPECT_EQ(r.woken, (std::vector<int>{1}));
  EXPECT_EQ(r.a.reserved(), 4 * kMiB);
  EXPECT_EQ(r.a.waiting(), 0u);
}

TEST(Admission, NoRoomNoneWoken) {
  Room r;
  r.wait(0, 1);
  r.a.let_in(10 * kMiB);
  EXPECT_TRUE(r.woken.empty());
  EXPECT_EQ(r.a.waiting(), 1u);
}

TEST(Admission, HoldsBatchesUpToTheLimitApartFromReservations) {
  Room r;
  r.wait(0, 8 * kMiB);
  r.a.let_in(0);
  EXPECT_TRUE(r.a.hold(6 * kMiB));  // reservations are another budget
  EXPECT_TRUE(r.a.hold(4 * kMiB));
  EXPECT_FALSE(r.a.hold(1));
  EXPECT_EQ(r.a.held(), 10 * kMiB);
  r.a.unhold(4 * kMiB);
  EXPECT_TRUE(r.a.hold(1));
  EXPECT_EQ(r.a.held(), 6 * kMiB + 1);
}

}  // namespace
}  // namespace mamori::manager
