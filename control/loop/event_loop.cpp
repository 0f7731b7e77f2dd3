#include "control/loop/event_loop.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <ctime>
#include <system_error>

#include "control/log.hpp"

namespace podgate::ctl {

namespace {

constexpr int kMaxEvents = 64;

}  // namespace

template <typename F>
void EventLoop::call_guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    ++handler_failures_;
    log_error(std::string("event loop: a ") + what + " handler failed and was abandoned: " +
              e.what());
  } catch (...) {
    ++handler_failures_;
    log_error(std::string("event loop: a ") + what +
              " handler failed with an unknown exception and was abandoned");
  }
}

uint64_t monotonic_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

Result<std::unique_ptr<EventLoop>> EventLoop::create(Clock clock) {
  const int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kIo, "event loop: cannot create an epoll set: " +
                                          errno_text(errno));
  }
  return std::unique_ptr<EventLoop>(new EventLoop(fd, std::move(clock)));
}

EventLoop::EventLoop(int epoll_fd, Clock clock)
    : epoll_fd_(epoll_fd), clock_(std::move(clock)), now_ms_(clock_()) {}

EventLoop::~EventLoop() { close(epoll_fd_); }

Result<EventLoop::WatchId> EventLoop::add(int fd, uint32_t events, FdHandler handler) {
  const uint64_t id = next_watch_id_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return make_error(ErrorCode::kIo, "event loop: cannot watch fd " + std::to_string(fd) + ": " +
                                          errno_text(errno));
  }
  watches_.emplace(id, Watch{fd, std::make_unique<FdHandler>(std::move(handler))});
  return WatchId{id};
}

Result<void> EventLoop::modify(WatchId id, uint32_t events) {
  auto it = watches_.find(static_cast<uint64_t>(id));
  if (it == watches_.end()) {
    return make_error(ErrorCode::kInternal, "event loop: modify of an unknown watch");
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = static_cast<uint64_t>(id);
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, it->second.fd, &ev) != 0) {
    return make_error(ErrorCode::kIo, "event loop: cannot change the watch on fd " +
                                          std::to_string(it->second.fd) + ": " +
                                          errno_text(errno));
  }
  return {};
}

void EventLoop::remove(WatchId id) {
  auto it = watches_.find(static_cast<uint64_t>(id));
  if (it == watches_.end()) return;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.fd, nullptr);
  if (dispatching_) retired_.push_back(std::move(it->second.handler));
  watches_.erase(it);
}

EventLoop::TimerId EventLoop::after(uint64_t delay_ms, TimerHandler handler) {
  return schedule(delay_ms, 0, std::move(handler));
}

EventLoop::TimerId EventLoop::every(uint64_t period_ms, TimerHandler handler) {
  period_ms = std::max<uint64_t>(period_ms, 1);
  return schedule(period_ms, period_ms, std::move(handler));
}

EventLoop::TimerId EventLoop::schedule(uint64_t delay_ms, uint64_t period_ms,
                                       TimerHandler handler) {
  const uint64_t id = next_timer_id_++;
  const uint64_t deadline = now_ms_ + delay_ms;
  timers_.emplace(id, Timer{deadline, period_ms, std::move(handler)});
  deadlines_.emplace(deadline, id);
  return TimerId{id};
}

void EventLoop::cancel(TimerId id) {
  auto it = timers_.find(static_cast<uint64_t>(id));
  if (it == timers_.end()) return;
  deadlines_.erase({it->second.deadline, it->first});
  timers_.erase(it);  // a handler running now was moved out first: safe
}

size_t EventLoop::run_once(int timeout_ms) {
  now_ms_ = clock_();
  int wait = timeout_ms;
  if (!deadlines_.empty()) {
    const uint64_t next = deadlines_.begin()->first;
    const int until = next <= now_ms_ ? 0 : static_cast<int>(std::min<uint64_t>(next - now_ms_, INT_MAX));
    wait = wait < 0 ? until : std::min(wait, until);
  }
  epoll_event events[kMaxEvents];
  const int n = epoll_wait(epoll_fd_, events, kMaxEvents, wait);
  now_ms_ = clock_();
  size_t ran = 0;
  dispatching_ = true;
  for (int i = 0; i < n; ++i) {
    auto it = watches_.find(events[i].data.u64);
    if (it == watches_.end()) continue;  // removed earlier in this batch
    FdHandler& handler = *it->second.handler;
    const uint32_t ev = events[i].events;
    call_guarded("descriptor", [&handler, ev] { handler(ev); });
    ++ran;
  }
  ran += fire_due_timers();
  dispatching_ = false;
  retired_.clear();
  return ran;
}

size_t EventLoop::fire_due_timers() {
  // Only those due now: a timer set by a handler below waits for the next
  // wake-up even with a zero delay, so no handler can keep the loop here.
  std::vector<std::pair<uint64_t, uint64_t>> due(
      deadlines_.begin(), deadlines_.upper_bound({now_ms_, UINT64_MAX}));
  size_t ran = 0;
  for (const auto& [deadline, id] : due) {
    auto it = timers_.find(id);
    if (it == timers_.end() || it->second.deadline != deadline) continue;  // cancelled meanwhile
    deadlines_.erase({deadline, id});
    TimerHandler handler = std::move(it->second.handler);
    if (it->second.period == 0) {
      timers_.erase(it);
      call_guarded("timer", handler);
    } else {
      it->second.deadline = deadline + it->second.period;
      if (it->second.deadline <= now_ms_) it->second.deadline = now_ms_ + it->second.period;
      deadlines_.emplace(it->second.deadline, id);
      call_guarded("timer", handler);
      // Put it back unless the handler cancelled it (the map may have
      // rehashed meanwhile: look it up again).
      if (auto again = timers_.find(id); again != timers_.end()) {
        again->second.handler = std::move(handler);
      }
    }
    ++ran;
  }
  return ran;
}

}  // namespace podgate::ctl
