// One non-blocking stream server on the control thread's EventLoop: the
// accept loop, per-connection read buffer and write queue, connection cap,
// idle timeout and close-on-error that the control socket, the metrics
// HTTP server and DNS over TCP share (architecture decision 10).
//
// A protocol plugs in as a StreamSession, one per connection, made by the
// factory given at construction.  The server reads (one recv per readiness
// event, so no client keeps the loop to itself), hands the bytes to the
// session, writes what the session queued, and keeps epoll watching for
// exactly what the connection can use next.  A slow, stalled or malicious
// client therefore costs only its own buffers.  What differs between the
// protocols is policy, set in Options: refuse or evict at the cap, pause or
// close when the write queue is full, linger after a closing reply.
// Control thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "control/loop/event_loop.hpp"
#include "control/result.hpp"

namespace podgate::ctl {

class StreamServer;
class StreamConn;

// One connection's protocol state and framing.
class StreamSession {
 public:
  enum class Input : uint8_t {
    kOk,       // consumed what was whole; the rest waits for more bytes
    kTooLong,  // the next message is over the protocol's limit: the session
               // queued its error reply; the server discards the input and
               // closes the connection once the reply is written
  };
  virtual ~StreamSession() = default;
  // conn.input() holds bytes not consumed yet (after a read, after the
  // write queue drained, or after resume()): consume whole messages, erase
  // them from the input, queue replies with conn.write().
  virtual Input on_input(StreamConn& conn) = 0;
  // Whether to read more now (e.g. not while a reply is unsent).
  virtual bool wants_input(const StreamConn& /*conn*/) const { return true; }
  // A busy connection is not idle, and is not closed at EOF until it is
  // not busy any more (e.g. an answer still being computed elsewhere).
  virtual bool busy() const { return false; }
  // Whether the session has more to write once the queue drains (a long
  // reply written a piece per loop turn): the server then waits for the
  // socket to be writable and calls on_input() again, does not close the
  // connection at EOF, and does not count input waiting behind it as slow.
  // Unlike busy(), it does not stop the idle timeout or eviction: a client
  // that stops reading a long reply is closed like any silent one.
  virtual bool has_more_output() const { return false; }
  // Whether the connection is in the middle of a reply that must not be
  // cut to admit a newcomer (a /metrics body streamed for seconds: its
  // last progress is when its request was consumed, so it would look the
  // stalest).  AtCap::kEvictStalest passes it over, as it does a busy one;
  // unlike busy(), it does not stop the idle timeout, so a client that
  // stops reading its reply is still closed like any silent one.
  virtual bool mid_reply(const StreamConn& /*conn*/) const { return false; }
};

class StreamConn {
 public:
  using Id = uint64_t;  // never reused within a server

  Id id() const noexcept { return id_; }
  int fd() const noexcept { return fd_; }
  // Received bytes the session has not consumed.
  std::string& input() noexcept { return in_; }
  const std::string& input() const noexcept { return in_; }
  // Queues bytes to send.  False when the connection is closing instead:
  // already (close_after_output), or because this overflowed a write queue
  // whose policy is kClose.
  bool write(std::string_view bytes);
  size_t pending_output() const noexcept { return out_.size() - out_pos_; }
  // The peer sent EOF: no more input will come.
  bool eof() const noexcept { return eof_; }
  // Stops reading; the connection closes (or lingers) once the queue is sent.
  void close_after_output() noexcept { closing_ = true; }
  // Closing one way or another: stop handling input.
  bool closing() const noexcept { return closing_ || dead_; }
  StreamSession& session() noexcept { return *session_; }

 private:
  friend class StreamServer;

  StreamServer* server_ = nullptr;
  Id id_ = 0;
  int fd_ = -1;
  std::string in_;
  std::string out_;  // sent from out_pos_
  size_t out_pos_ = 0;
  uint64_t last_active_ms_ = 0;
  // When a whole message was last consumed (the accept before the first):
  // what eviction compares, so a client trickling bytes is not "active".
  uint64_t last_progress_ms_ = 0;
  // When the first byte of the message now in the input arrived; 0 when
  // the input holds none.  Options.request_timeout_ms counts from here.
  uint64_t request_started_ms_ = 0;
  uint32_t events_ = 0;  // what epoll currently waits for
  EventLoop::WatchId watch_ = EventLoop::WatchId::kNone;
  EventLoop::TimerId idle_timer_ = EventLoop::TimerId::kNone;
  EventLoop::TimerId request_timer_ = EventLoop::TimerId::kNone;
  bool eof_ = false;
  bool closing_ = false;    // close once the queue is written
  bool lingering_ = false;  // reply sent, write side shut: reading and discarding until EOF
  bool dead_ = false;       // to be closed as soon as the session returns
  std::unique_ptr<StreamSession> session_;
};

struct StreamCounters {
  uint64_t accepted = 0;
  uint64_t refused = 0;          // at the cap, AtCap::kRefuse (or nothing to evict)
  uint64_t evicted = 0;          // at the cap, AtCap::kEvictStalest
  uint64_t closed_idle = 0;      // inactive for Options.idle_timeout_ms
  uint64_t closed_slow = 0;      // a message not whole within Options.request_timeout_ms
  uint64_t closed_oversize = 0;  // the session said Input::kTooLong
  uint64_t closed_backlog = 0;   // write queue over max_output, OutputFull::kClose
  uint64_t errors = 0;           // reset, failed read/write/accept/epoll
};

class StreamServer {
 public:
  enum class AtCap : uint8_t {
    kRefuse,        // send Options.refusal (or make_refusal's) to the newcomer, best
                    // effort, and close it
    // Close the stalest connection to admit the newcomer: the one, of those
    // neither busy nor mid-reply, that completed a message least recently
    // (its accept time if it never did), so idle and trickling clients go
    // first and a fresh connection always gets a slot.  When every
    // connection is busy or mid-reply, the newcomer is refused as under
    // kRefuse.
    kEvictStalest,
  };
  enum class OutputFull : uint8_t {
    kPauseReading,  // stop reading until the queue drains below max_output
    kClose,         // the client stopped reading: close it.  Unsent bytes
                    // queued before a write count, not the write itself: one
                    // reply longer than max_output (`services`, `stats` at
                    // 10k services) is queued whole and streamed out as the
                    // client reads; the next one closes a client that stopped.
  };
  struct Options {
    size_t max_connections = 64;
    AtCap at_cap = AtCap::kRefuse;
    std::string refusal;          // what a refused client is told
    // When set, made at each refusal in place of `refusal` (a reply that
    // carries the time, as HTTP's Date).
    std::function<std::string()> make_refusal;
    size_t max_input = 64 * 1024;  // unconsumed bytes held before reading pauses
    size_t max_output = 4 * 1024 * 1024;  // unsent bytes, see OutputFull
    OutputFull output_full = OutputFull::kPauseReading;
    uint64_t idle_timeout_ms = 0;  // no byte read (or written) for this long: closed; 0 = never
    // A message must be whole this long after its first byte arrived, or
    // the connection is closed (closed_slow): bytes trickled one at a time
    // refresh the idle timer, not this deadline.  Not counted while the
    // session is busy.  0 = no deadline.
    uint64_t request_timeout_ms = 0;
    bool output_is_activity = true;  // false: only what the client sends counts
    // After a closing reply: shut the write side and read and discard
    // until the client closes, so unread input does not turn our close into
    // a reset that destroys the reply (RFC 9112 §9.6).  Bounded by the idle
    // timeout counted from the reply; input does not refresh it.
    bool linger = false;
    unsigned accepts_per_event = 16;
  };
  using SessionFactory = std::function<std::unique_ptr<StreamSession>(StreamConn&)>;

  StreamServer(EventLoop& loop, Options options, SessionFactory factory);
  // Closes every connection and listening socket.
  ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // Accepts on `fd` (a listening, non-blocking socket; this server owns it
  // from now on, also when this fails).
  Result<void> add_listener(int fd);

  // A live connection, or null once it is gone.
  StreamConn* find(StreamConn::Id id) noexcept;
  // After a session was given output or state from outside its on_input()
  // (an answer computed later): hands it its input again, writes, and
  // closes the connection if it is done.
  void resume(StreamConn::Id id);

  const Options& options() const noexcept { return options_; }
  const StreamCounters& counters() const noexcept { return counters_; }
  size_t connections() const noexcept { return conns_.size(); }

 private:
  friend class StreamConn;

  void on_accept(int listen_fd);
  void on_conn_event(StreamConn::Id id, uint32_t events);
  void on_idle_timer(StreamConn::Id id);
  void arm_idle_timer(StreamConn& c, uint64_t delay_ms);
  void on_request_timer(StreamConn::Id id);
  void arm_request_timer(StreamConn& c, uint64_t delay_ms);
  bool reading(StreamConn& c) const;
  // Lets the session consume input and writes, until neither moves.
  void service(StreamConn& c);
  // Closes, lingers or re-arms epoll for what `c` needs next.
  void settle(StreamConn& c);
  // False when every connection is busy or mid-reply.
  bool evict_stalest();
  void close_conn(StreamConn::Id id);

  EventLoop& loop_;
  Options options_;
  SessionFactory factory_;
  struct Listener {
    int fd = -1;
    EventLoop::WatchId watch = EventLoop::WatchId::kNone;
  };
  std::vector<Listener> listeners_;
  std::unordered_map<StreamConn::Id, StreamConn> conns_;  // nodes stay put: references are stable
  StreamConn::Id next_id_ = 1;
  StreamCounters counters_;
};

}  // namespace podgate::ctl
