// EventLoop: readiness dispatch on real socketpairs, and timers on a clock
// the test moves by hand (one real-clock test checks that a wait ends at
// the next timer's deadline).
#include "control/loop/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace podgate::ctl {
namespace {

struct Pair {
  Pair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0); }
  ~Pair() {
    close(fd[0]);
    close(fd[1]);
  }
  void poke() { EXPECT_EQ(write(fd[1], "x", 1), 1); }
  int fd[2] = {-1, -1};
};

class EventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::create([this] { return clock_; });
    ASSERT_TRUE(loop) << loop.error().message;
    loop_ = std::move(*loop);
  }
  // Moves the clock to `at` and runs what is due, without waiting.
  size_t at(uint64_t ms) {
    clock_ = ms;
    return loop_->run_once(0);
  }

  uint64_t clock_ = 0;
  std::unique_ptr<EventLoop> loop_;
  std::vector<std::string> fired_;
};

TEST_F(EventLoopTest, CallsTheHandlerOfTheReadyFdWithItsEvents) {
  Pair a, b;
  std::vector<std::pair<char, uint32_t>> calls;
  ASSERT_TRUE(loop_->add(a.fd[0], EPOLLIN, [&](uint32_t ev) { calls.emplace_back('a', ev); }));
  ASSERT_TRUE(loop_->add(b.fd[0], EPOLLIN, [&](uint32_t ev) { calls.emplace_back('b', ev); }));
  EXPECT_EQ(loop_->run_once(0), 0u);
  b.poke();
  EXPECT_EQ(loop_->run_once(100), 1u);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].first, 'b');
  EXPECT_NE(calls[0].second & EPOLLIN, 0u);
}

TEST_F(EventLoopTest, ModifyChangesWhatAWatchWaitsFor) {
  Pair p;
  int calls = 0;
  auto w = loop_->add(p.fd[0], EPOLLOUT, [&](uint32_t) { ++calls; });
  ASSERT_TRUE(w);
  loop_->run_once(0);
  EXPECT_EQ(calls, 1);  // writable at once
  ASSERT_TRUE(loop_->modify(*w, EPOLLIN));
  loop_->run_once(0);
  EXPECT_EQ(calls, 1);  // nothing to read
  p.poke();
  loop_->run_once(100);
  EXPECT_EQ(calls, 2);
}

TEST_F(EventLoopTest, ARemovedWatchGetsNoMoreEventsEvenFromTheSameBatch) {
  Pair a, b;
  int calls = 0;
  EventLoop::WatchId wa{}, wb{};
  // Whichever runs first removes the other: its event, already returned by
  // epoll_wait in this batch, must not be delivered.
  wa = *loop_->add(a.fd[0], EPOLLIN, [&](uint32_t) { ++calls; loop_->remove(wb); });
  wb = *loop_->add(b.fd[0], EPOLLIN, [&](uint32_t) { ++calls; loop_->remove(wa); });
  a.poke();
  b.poke();
  EXPECT_EQ(loop_->run_once(100), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(loop_->watches(), 1u);
  loop_->run_once(0);
  EXPECT_EQ(calls, 2);  // the survivor is still readable (level-triggered)
}

TEST_F(EventLoopTest, AHandlerMayRemoveItselfAndKeepUsingItsCaptures) {
  Pair p;
  std::string seen;
  EventLoop::WatchId self{};
  const std::string name = "captured by value";
  self = *loop_->add(p.fd[0], EPOLLIN, [&, name](uint32_t) {
    loop_->remove(self);
    seen = name;  // the closure is still alive until the batch ends
  });
  p.poke();
  loop_->run_once(100);
  EXPECT_EQ(seen, name);
  EXPECT_EQ(loop_->watches(), 0u);
}

TEST_F(EventLoopTest, AddOfABadFdIsAnError) {
  auto w = loop_->add(-1, EPOLLIN, [](uint32_t) {});
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find("cannot watch fd -1"), std::string::npos);
}

TEST_F(EventLoopTest, TimersFireByDeadlineThenInTheOrderTheyWereSet) {
  loop_->after(30, [&] { fired_.push_back("30"); });
  loop_->after(10, [&] { fired_.push_back("10a"); });
  loop_->after(20, [&] { fired_.push_back("20"); });
  loop_->after(10, [&] { fired_.push_back("10b"); });
  EXPECT_EQ(at(30), 4u);
  EXPECT_EQ(fired_, (std::vector<std::string>{"10a", "10b", "20", "30"}));
  EXPECT_EQ(loop_->timers(), 0u);
}

TEST_F(EventLoopTest, AOneShotTimerFiresOnceWhenDueAndNotBefore) {
  loop_->after(10, [&] { fired_.push_back("t"); });
  at(9);
  EXPECT_TRUE(fired_.empty());
  at(10);
  at(50);
  EXPECT_EQ(fired_.size(), 1u);
}

TEST_F(EventLoopTest, APeriodicTimerRepeatsUntilCancelled) {
  EventLoop::TimerId t = loop_->every(10, [&] { fired_.push_back("tick"); });
  at(5);
  at(10);
  at(20);
  EXPECT_EQ(fired_.size(), 2u);
  loop_->cancel(t);
  at(30);
  EXPECT_EQ(fired_.size(), 2u);
  EXPECT_EQ(loop_->timers(), 0u);
}

TEST_F(EventLoopTest, APeriodicTimerLateByManyPeriodsFiresOnceThenKeepsItsPeriod) {
  loop_->every(10, [&] { fired_.push_back("tick"); });
  at(95);
  EXPECT_EQ(fired_.size(), 1u);
  at(104);
  EXPECT_EQ(fired_.size(), 1u);
  at(105);
  EXPECT_EQ(fired_.size(), 2u);
}

TEST_F(EventLoopTest, CancelledTimersNeverFireAlsoWhenCancelledByOneDueWithThem) {
  EventLoop::TimerId later{};
  loop_->after(10, [&] {
    fired_.push_back("first");
    loop_->cancel(later);
  });
  later = loop_->after(10, [&] { fired_.push_back("later"); });
  EventLoop::TimerId never = loop_->after(5, [&] { fired_.push_back("never"); });
  loop_->cancel(never);
  loop_->cancel(never);  // twice: harmless
  at(10);
  EXPECT_EQ(fired_, (std::vector<std::string>{"first"}));
}

TEST_F(EventLoopTest, APeriodicTimerMayCancelItself) {
  EventLoop::TimerId t{};
  t = loop_->every(10, [&] {
    fired_.push_back("once");
    loop_->cancel(t);
  });
  at(10);
  at(20);
  EXPECT_EQ(fired_.size(), 1u);
}

TEST_F(EventLoopTest, ATimerSetByAHandlerWaitsForTheNextWakeUp) {
  std::function<void()> again = [&] {
    fired_.push_back("t");
    loop_->after(0, again);
  };
  loop_->after(0, again);
  at(0);
  EXPECT_EQ(fired_.size(), 1u);  // not an endless loop
  at(0);
  EXPECT_EQ(fired_.size(), 2u);
}

// Issue 15: an exception from a handler (std::bad_alloc on a reload) went
// up through run_once() to std::terminate.
TEST_F(EventLoopTest, AThrowingHandlerIsCountedAndTheOthersStillRun) {
  Pair a, b;
  int b_calls = 0;
  ASSERT_TRUE(loop_->add(a.fd[0], EPOLLIN, [](uint32_t) { throw std::bad_alloc(); }));
  ASSERT_TRUE(loop_->add(b.fd[0], EPOLLIN, [&](uint32_t) { ++b_calls; }));
  EventLoop::TimerId t = loop_->every(10, [&] {
    fired_.push_back("tick");
    throw std::runtime_error("timer");
  });
  a.poke();
  b.poke();
  clock_ = 10;
  EXPECT_NO_THROW(loop_->run_once(0));
  EXPECT_EQ(b_calls, 1);
  EXPECT_EQ(loop_->handler_failures(), 2u);
  // The periodic timer that threw keeps its period.
  at(20);
  EXPECT_EQ(fired_.size(), 2u);
  loop_->cancel(t);
}

TEST(EventLoopClock, AWaitEndsAtTheNextTimersDeadline) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  bool fired = false;
  (*loop)->after(20, [&] { fired = true; });
  // Without the timer this would wait forever: nothing is watched.
  EXPECT_EQ((*loop)->run_once(-1), 1u);
  EXPECT_TRUE(fired);
}

}  // namespace
}  // namespace podgate::ctl
