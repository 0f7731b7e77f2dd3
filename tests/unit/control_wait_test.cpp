// How long the control thread sleeps between turns (control/control_wait.hpp),
// and the doorbell a worker rings to end such a sleep (dataplane/doorbell.hpp).
#include "control/control_wait.hpp"

#include <poll.h>
#include <sys/eventfd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "dataplane/doorbell.hpp"

namespace podgate::ctl {
namespace {

constexpr uint64_t kNow = 1'000'000;

TEST(ControlWait, AnIdleLoopSleepsTheIdleWait) {
  EXPECT_FALSE(control_busy(ControlLoad{}));
  EXPECT_EQ(control_wait_ms(ControlLoad{}, kNow), kIdleWaitMs);
}

TEST(ControlWait, EachKindOfPendingWorkKeepsTheLoopTurningEveryMillisecond) {
  bool ControlLoad::*const kinds[] = {&ControlLoad::punts_left,        &ControlLoad::polled_twins,
                                      &ControlLoad::packets_held,      &ControlLoad::flow_listing,
                                      &ControlLoad::snapshots_to_free, &ControlLoad::health_changes};
  for (bool ControlLoad::*kind : kinds) {
    ControlLoad load;
    load.*kind = true;
    EXPECT_TRUE(control_busy(load));
    EXPECT_EQ(control_wait_ms(load, kNow), kBusyWaitMs);
    load.next_due_ms = kNow + 30;  // a later probe does not stretch a busy turn
    EXPECT_EQ(control_wait_ms(load, kNow), kBusyWaitMs);
  }
}

TEST(ControlWait, AnIdleLoopWakesWhenTheEarliestDeadlineIsDue) {
  ControlLoad load;
  load.due_by(kNow + 30);  // a health probe
  load.due_by(kNow + 17);  // the watchdog's keep-alive, earlier
  load.due_by(std::nullopt);
  EXPECT_EQ(control_wait_ms(load, kNow), 17);
  load.due_by(kNow + 25);  // later: changes nothing
  EXPECT_EQ(control_wait_ms(load, kNow), 17);
  load.next_due_ms = kNow + kIdleWaitMs + 1000;  // far off: the idle wait still bounds it
  EXPECT_EQ(control_wait_ms(load, kNow), kIdleWaitMs);
}

TEST(ControlWait, AProbeDueNowOrLateWaitsOneTurnNeverZero) {
  // The health checker starts a bounded number of probes a turn: a
  // backlog is spread over 1 ms turns, not spun through.
  ControlLoad load;
  for (const uint64_t due : {kNow - 500, kNow, kNow + 1}) {
    load.next_due_ms = due;
    EXPECT_EQ(control_wait_ms(load, kNow), kBusyWaitMs) << due;
  }
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

// A doorbell on a fresh eventfd, as the Appliance makes it.
class Doorbell : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_GE(bell.fd(), 0); }
  dp::Doorbell bell{eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
};

TEST_F(Doorbell, ARingWhileTheControlThreadIsAwakeWritesNothing) {
  bell.ring();
  EXPECT_FALSE(readable(bell.fd()));
  EXPECT_EQ(bell.rings(), 0u);
}

TEST_F(Doorbell, TheFirstRingAfterArmingWakesTheSleeperAndOnlyTheFirst) {
  bell.arm();
  bell.ring();
  EXPECT_TRUE(readable(bell.fd()));
  EXPECT_FALSE(bell.armed());
  bell.ring();  // a second worker, or the next poll: already rung
  EXPECT_EQ(bell.rings(), 1u);
  bell.clear();
  EXPECT_FALSE(readable(bell.fd()));
}

TEST_F(Doorbell, DisarmingOnWakingUpStopsLaterRings) {
  bell.arm();
  bell.disarm();  // woken by a socket or the timeout instead
  bell.ring();
  EXPECT_FALSE(readable(bell.fd()));
  EXPECT_EQ(bell.rings(), 0u);
}

TEST_F(Doorbell, NoPuntIsMissedWhenWorkersRingWhileTheSleeperArms) {
  // The control thread's protocol against two ringing workers, many
  // times: arm, look at the "ring" (here a counter of punts), and sleep
  // only if nothing was punted.  After the sleep it takes every punt.
  // A lost wake-up would leave the sleeper blocked with punts waiting:
  // poll()'s timeout (far longer than any scheduling delay) catches that
  // as a failure instead of a hang.
  constexpr uint32_t kPunts = 4000;
  std::atomic<uint32_t> punted{0};
  auto worker = [&](uint32_t pause_ns) {
    for (uint32_t i = 0; i < kPunts / 2; ++i) {
      punted.fetch_add(1, std::memory_order_relaxed);  // the enqueue
      bell.ring();
      // Punts a few microseconds apart, so that the sleeper sleeps
      // between them (and some land while it arms).
      const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(pause_ns);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
  };
  std::thread a(worker, 3000), b(worker, 7000);
  uint32_t taken = 0;
  uint32_t missed = 0;
  while (taken < kPunts) {
    bell.arm();
    if (punted.load(std::memory_order_relaxed) == taken) {
      pollfd p{bell.fd(), POLLIN, 0};
      if (::poll(&p, 1, 10000) == 0 && punted.load() != taken) ++missed;  // asleep with a punt waiting
    }
    bell.disarm();
    bell.clear();
    taken = punted.load(std::memory_order_relaxed);
  }
  a.join();
  b.join();
  EXPECT_EQ(missed, 0u);
  EXPECT_EQ(taken, kPunts);
  EXPECT_GT(bell.rings(), 0u) << "the sleeper never slept: the test exercised nothing";
}

}  // namespace
}  // namespace podgate::ctl
