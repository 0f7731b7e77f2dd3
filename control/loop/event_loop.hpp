// The control thread's event loop: one epoll set where each owner registers
// a file descriptor with its own callback, plus timers on a monotonic
// millisecond clock (architecture decision 10).
//
// epoll's data field carries a watch id, never a tag an owner has to
// recognise: the loop looks the id up and calls that watch's handler, so an
// owner neither knows nor reserves bits of anybody else's.  Ids are never
// reused, so an event still queued for a watch removed earlier in the same
// batch is dropped instead of reaching whoever took its place.
//
// Timers are one-shot (after) or periodic (every); those due fire after the
// ready descriptors, earliest deadline first, ties in the order they were
// set.  A handler may add, change or remove any watch or timer, its own
// included, while it runs.  Level-triggered.  Control thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "control/result.hpp"

namespace podgate::ctl {

// CLOCK_MONOTONIC in milliseconds: the loop's default clock.
uint64_t monotonic_ms() noexcept;

class EventLoop {
 public:
  using Clock = std::function<uint64_t()>;  // monotonic milliseconds
  using FdHandler = std::function<void(uint32_t events)>;  // EPOLLIN, EPOLLOUT, EPOLLHUP, ...
  using TimerHandler = std::function<void()>;
  enum class WatchId : uint64_t { kNone = 0 };
  enum class TimerId : uint64_t { kNone = 0 };

  // `clock` lets tests drive time by hand; the appliance uses monotonic_ms.
  static Result<std::unique_ptr<EventLoop>> create(Clock clock = monotonic_ms);
  // Closes the epoll fd; the watched descriptors stay their owners' to close.
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Watches `fd` for `events` (EPOLLIN, EPOLLOUT, ...); `handler` gets the
  // events that were ready.
  Result<WatchId> add(int fd, uint32_t events, FdHandler handler);
  // Changes what a watch waits for.
  Result<void> modify(WatchId id, uint32_t events);
  // Stops watching (call before closing the fd).  Unknown ids are ignored.
  void remove(WatchId id);

  // Calls `handler` once, `delay_ms` from now.
  TimerId after(uint64_t delay_ms, TimerHandler handler);
  // Calls `handler` every `period_ms` (at least 1) until cancelled; each
  // next deadline counts from when the previous call was due to run.
  TimerId every(uint64_t period_ms, TimerHandler handler);
  // Unknown or already fired ids are ignored.
  void cancel(TimerId id);

  // Waits up to `timeout_ms` (-1: without limit; shortened to the next
  // timer's deadline) for ready descriptors, calls their handlers, then the
  // timers now due.  Returns how many handlers ran.  EINTR counts as a
  // wake-up with nothing ready.  A handler that throws is logged and
  // counted (handler_failures) and the loop goes on: every change is
  // validate -> build -> publish -> commit, so an exception (std::bad_alloc
  // above all) leaves the state it found, and must not end the appliance
  // (issue 15).
  size_t run_once(int timeout_ms);
  uint64_t handler_failures() const noexcept { return handler_failures_; }

  // The clock as of the current (or last) wake-up: what handlers should
  // compare deadlines against.
  uint64_t now_ms() const noexcept { return now_ms_; }
  size_t watches() const noexcept { return watches_.size(); }
  size_t timers() const noexcept { return timers_.size(); }

 private:
  struct Watch {
    int fd = -1;
    std::unique_ptr<FdHandler> handler;  // stays put while it runs, even if removed
  };
  struct Timer {
    uint64_t deadline = 0;
    uint64_t period = 0;  // 0 = one-shot
    TimerHandler handler;
  };

  EventLoop(int epoll_fd, Clock clock);
  TimerId schedule(uint64_t delay_ms, uint64_t period_ms, TimerHandler handler);
  size_t fire_due_timers();
  template <typename F>
  void call_guarded(const char* what, F&& f);

  int epoll_fd_ = -1;
  Clock clock_;
  uint64_t now_ms_ = 0;
  uint64_t next_watch_id_ = 1;
  uint64_t next_timer_id_ = 1;
  std::unordered_map<uint64_t, Watch> watches_;
  std::unordered_map<uint64_t, Timer> timers_;
  std::set<std::pair<uint64_t, uint64_t>> deadlines_;  // (deadline, timer id)
  // Handlers of watches removed while the loop was calling handlers: kept
  // alive until the batch is over, in case one of them is the caller.
  std::vector<std::unique_ptr<FdHandler>> retired_;
  bool dispatching_ = false;
  uint64_t handler_failures_ = 0;
};

}  // namespace podgate::ctl
