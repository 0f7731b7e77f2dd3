#include "control/loop/stream_server.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "control/loop/stream_output.hpp"

namespace podgate::ctl {

namespace {

constexpr size_t kReadChunk = 16384;
// Sent bytes are dropped from a write queue after this many (stream_output.hpp).
constexpr size_t kCompactAfter = 64 * 1024;

bool transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

}  // namespace

bool StreamConn::write(std::string_view bytes) {
  if (closing()) return false;
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  }
  const size_t queued_before = pending_output();
  out_.append(bytes);
  const StreamServer::Options& o = server_->options_;
  if (o.output_full == StreamServer::OutputFull::kClose && queued_before > o.max_output) {
    ++server_->counters_.closed_backlog;
    dead_ = true;
    return false;
  }
  return true;
}

StreamServer::StreamServer(EventLoop& loop, Options options, SessionFactory factory)
    : loop_(loop), options_(std::move(options)), factory_(std::move(factory)) {}

StreamServer::~StreamServer() {
  while (!conns_.empty()) close_conn(conns_.begin()->first);
  for (const Listener& l : listeners_) {
    loop_.remove(l.watch);
    close(l.fd);
  }
}

Result<void> StreamServer::add_listener(int fd) {
  listeners_.push_back(Listener{fd, EventLoop::WatchId::kNone});
  auto watch = loop_.add(fd, EPOLLIN, [this, fd](uint32_t) { on_accept(fd); });
  if (!watch) return std::move(watch).error();
  listeners_.back().watch = *watch;
  return {};
}

StreamConn* StreamServer::find(StreamConn::Id id) noexcept {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : &it->second;
}

void StreamServer::on_accept(int listen_fd) {
  for (unsigned k = 0; k < options_.accepts_per_event; ++k) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // EMFILE and kin: try again on the next event.
      if (errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.errors;
      return;
    }
    if (conns_.size() >= options_.max_connections) {
      if (options_.at_cap == AtCap::kRefuse || !evict_stalest()) {
        ++counters_.refused;
        // Best effort: one message saying why, then close.
        const std::string why = options_.make_refusal ? options_.make_refusal() : options_.refusal;
        if (!why.empty()) (void)!send(fd, why.data(), why.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        close(fd);
        continue;
      }
    }
    const StreamConn::Id id = next_id_++;
    StreamConn& c = conns_[id];
    c.server_ = this;
    c.id_ = id;
    c.fd_ = fd;
    c.last_active_ms_ = loop_.now_ms();
    c.last_progress_ms_ = loop_.now_ms();
    c.events_ = EPOLLIN;
    c.session_ = factory_(c);
    auto watch = loop_.add(fd, EPOLLIN, [this, id](uint32_t events) { on_conn_event(id, events); });
    if (!watch) {
      ++counters_.errors;
      close_conn(id);
      continue;
    }
    c.watch_ = *watch;
    if (options_.idle_timeout_ms != 0) arm_idle_timer(c, options_.idle_timeout_ms);
    ++counters_.accepted;
  }
}

bool StreamServer::evict_stalest() {
  // O(connections), only at the cap; ties go to the older connection.
  const StreamConn* stalest = nullptr;
  for (const auto& [id, c] : conns_) {
    if (c.session_->busy() || c.session_->mid_reply(c)) continue;
    if (stalest == nullptr || c.last_progress_ms_ < stalest->last_progress_ms_ ||
        (c.last_progress_ms_ == stalest->last_progress_ms_ && c.id_ < stalest->id_)) {
      stalest = &c;
    }
  }
  if (stalest == nullptr) return false;
  ++counters_.evicted;
  close_conn(stalest->id_);
  return true;
}

bool StreamServer::reading(StreamConn& c) const {
  if (c.closing() || c.eof_ || c.lingering_ || c.in_.size() >= options_.max_input) return false;
  if (options_.output_full == OutputFull::kPauseReading &&
      c.pending_output() >= options_.max_output) {
    return false;
  }
  return c.session_->wants_input(c);
}

void StreamServer::on_conn_event(StreamConn::Id id, uint32_t events) {
  StreamConn* found = find(id);
  if (found == nullptr) return;
  StreamConn& c = *found;
  if ((events & EPOLLERR) != 0) {
    ++counters_.errors;
    return close_conn(id);
  }
  char buf[kReadChunk];
  if (c.lingering_) {
    const ssize_t r = recv(c.fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && !transient(errno))) close_conn(id);
    return;
  }
  bool read = false;
  if ((events & (EPOLLIN | EPOLLHUP)) != 0 && reading(c)) {
    // One read per event (level-triggered): a client that sends without
    // pause cannot keep the loop to itself.
    read = true;
    const ssize_t r = recv(c.fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (r > 0) {
      if (c.in_.empty()) {
        c.request_started_ms_ = loop_.now_ms();
        if (options_.request_timeout_ms != 0 && c.request_timer_ == EventLoop::TimerId::kNone) {
          arm_request_timer(c, options_.request_timeout_ms);
        }
      }
      c.in_.append(buf, static_cast<size_t>(r));
      c.last_active_ms_ = loop_.now_ms();
    } else if (r == 0) {
      c.eof_ = true;  // answer what came (the client may half-close), then close
    } else if (!transient(errno)) {
      ++counters_.errors;
      return close_conn(id);
    }
  }
  service(c);
  // Hung up both ways while we were not reading: nothing can arrive or be
  // delivered any more (pending output would have failed to send above).
  if (!read && (events & EPOLLHUP) != 0 && find(id) != nullptr && c.pending_output() == 0) {
    close_conn(id);
  }
}

void StreamServer::resume(StreamConn::Id id) {
  if (StreamConn* c = find(id)) service(*c);
}

void StreamServer::service(StreamConn& c) {
  // Answer, write, and answer again what the write queue held back, while
  // the session consumes input or its output drains.  A turn after a drain
  // repeats only if the session consumed input or queued output that was
  // then sent, so a session waiting for the rest of a message stops it.
  while (true) {
    const size_t in_before = c.in_.size();
    if (!c.closing() &&
        c.session_->on_input(c) == StreamSession::Input::kTooLong && !c.dead_) {
      ++counters_.closed_oversize;
      c.in_.clear();
      c.closing_ = true;
    }
    if (c.dead_) break;
    if (c.in_.size() < in_before) {
      // A message was consumed: what remains (pipelined) starts now.
      c.last_progress_ms_ = loop_.now_ms();
      c.request_started_ms_ = c.in_.empty() ? 0 : loop_.now_ms();
      if (c.request_started_ms_ != 0 && options_.request_timeout_ms != 0 &&
          c.request_timer_ == EventLoop::TimerId::kNone) {
        arm_request_timer(c, options_.request_timeout_ms);
      }
    }
    const size_t pending_before = c.pending_output();
    if (!send_pending(c.fd_, c.out_, c.out_pos_, kCompactAfter)) {
      ++counters_.errors;
      c.dead_ = true;
      break;
    }
    if (options_.output_is_activity && c.pending_output() != pending_before) {
      c.last_active_ms_ = loop_.now_ms();
    }
    if (c.closing()) break;
    // Input the session held back behind unsent output (one reply at a
    // time, an answer backlog) is offered again once that output is all
    // sent: epoll will not report it, as it then waits only for more input.
    // A long reply still being produced waits for its writable event
    // instead, so it takes one piece per loop turn.
    const bool drained = pending_before != 0 && c.pending_output() == 0 && !c.in_.empty() &&
                         !c.session_->has_more_output();
    if (c.in_.size() == in_before && !drained) break;
  }
  settle(c);
}

void StreamServer::settle(StreamConn& c) {
  if (c.dead_) return close_conn(c.id_);
  const bool pending = c.pending_output() != 0;
  if (!pending && c.closing_ && !c.lingering_) {
    if (!options_.linger) return close_conn(c.id_);
    shutdown(c.fd_, SHUT_WR);
    c.lingering_ = true;
    c.in_.clear();
    c.last_active_ms_ = loop_.now_ms();
  }
  const bool more = !c.lingering_ && c.session_->has_more_output();
  if (!pending && !more && c.eof_ && !c.lingering_ && !c.session_->busy()) {
    return close_conn(c.id_);
  }
  uint32_t want = 0;
  if (c.lingering_ || reading(c)) want |= EPOLLIN;
  // More to produce: the next writable event asks the session for it, so
  // a long reply takes one piece per loop turn.
  if (pending || more) want |= EPOLLOUT;
  if (want == c.events_) return;
  if (!loop_.modify(c.watch_, want)) {
    ++counters_.errors;
    return close_conn(c.id_);
  }
  c.events_ = want;
}

void StreamServer::arm_idle_timer(StreamConn& c, uint64_t delay_ms) {
  const StreamConn::Id id = c.id_;
  c.idle_timer_ = loop_.after(delay_ms, [this, id] { on_idle_timer(id); });
}

// Lazily re-armed: activity only stamps last_active_ms_, and the timer,
// when it fires, closes the connection or sleeps until the new deadline.
void StreamServer::on_idle_timer(StreamConn::Id id) {
  StreamConn* c = find(id);
  if (c == nullptr) return;
  c->idle_timer_ = EventLoop::TimerId::kNone;
  const uint64_t now = loop_.now_ms();
  if (c->session_->busy()) return arm_idle_timer(*c, options_.idle_timeout_ms);
  const uint64_t deadline = c->last_active_ms_ + options_.idle_timeout_ms;
  if (now < deadline) return arm_idle_timer(*c, deadline - now);
  ++counters_.closed_idle;
  close_conn(id);
}

void StreamServer::arm_request_timer(StreamConn& c, uint64_t delay_ms) {
  const StreamConn::Id id = c.id_;
  c.request_timer_ = loop_.after(delay_ms, [this, id] { on_request_timer(id); });
}

// Also lazily re-armed: a message finished meanwhile only clears or moves
// request_started_ms_.
void StreamServer::on_request_timer(StreamConn::Id id) {
  StreamConn* c = find(id);
  if (c == nullptr) return;
  c->request_timer_ = EventLoop::TimerId::kNone;
  if (c->request_started_ms_ == 0 || c->lingering_ || c->closing()) return;
  const uint64_t now = loop_.now_ms();
  if (c->session_->busy() || c->session_->has_more_output()) {
    // Input waiting behind an answer still being computed (or written) is not slow.
    c->request_started_ms_ = now;
    return arm_request_timer(*c, options_.request_timeout_ms);
  }
  const uint64_t deadline = c->request_started_ms_ + options_.request_timeout_ms;
  if (now < deadline) return arm_request_timer(*c, deadline - now);
  ++counters_.closed_slow;
  close_conn(id);
}

void StreamServer::close_conn(StreamConn::Id id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  StreamConn& c = it->second;
  loop_.remove(c.watch_);
  loop_.cancel(c.idle_timer_);
  loop_.cancel(c.request_timer_);
  close(c.fd_);
  conns_.erase(it);
}

}  // namespace podgate::ctl
