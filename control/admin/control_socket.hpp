// The control socket: a Unix stream socket speaking newline-delimited JSON
// (docs/control-protocol.md), served on the control thread's EventLoop.
//
// The connections are a StreamServer's (stream_server.hpp): non-blocking,
// each with its own read buffer and write queue.  A request line is at most
// kMaxRequest bytes (a longer one gets an error reply and the connection is
// closed), replies wait in a bounded write queue (a client that stops
// reading is closed when it overflows), silent clients are closed after
// idle_timeout_ms, and connections are capped, so a slow, stalled or
// malicious client costs only its own buffers and never holds the loop
// that also answers DNS and the punt ring.
//
// Commands are a table name -> handler (DPVS-style): the socket owns the
// framing, versioning, "id" echo and error replies; a handler receives the
// whole request object and returns the reply's fields or an Error.
//
// A long reply (`stats`, `services`, `config dump`, `endpoints`, `flows`:
// megabytes at 10k services) is a LongReply (reply_stream.hpp), written
// kReplyPiece bytes per event-loop turn as the client reads, so DNS and the
// other clients are served between the pieces.  The bytes on the wire are
// those of the whole reply; the connection's next requests wait for it.
// Control thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "control/admin/reply_stream.hpp"
#include "control/loop/event_loop.hpp"
#include "control/result.hpp"
#include "control/loop/stream_server.hpp"

namespace podgate::ctl {

struct ControlCounters {
  uint64_t accepted = 0;
  uint64_t requests = 0;
  uint64_t errors = 0;           // error replies sent
  uint64_t refused = 0;          // connections refused at the cap
  uint64_t closed_oversize = 0;  // request line over kMaxRequest
  uint64_t closed_backlog = 0;   // client stopped reading: write buffer overflowed
  uint64_t closed_idle = 0;      // silent past control.idle_timeout
  uint64_t evicted = 0;          // the stalest, closed to admit a new connection at the cap
  uint64_t closed_slow = 0;      // a request line not whole within kRequestTimeoutMs
};

class ControlSocket {
 public:
  static constexpr int kProtocolVersion = 1;
  static constexpr size_t kMaxRequest = 64 * 1024;  // bytes per request line, newline excluded
  // A request line must be whole this long after its first byte (issue 15:
  // 64 clients trickling a byte a second locked every administrator out).
  static constexpr uint64_t kRequestTimeoutMs = 10'000;
  // A long reply is produced this many bytes (plus at most one element) per
  // loop turn, and only while less than this much of it is still unsent.
  // 16 KiB of `stats` (the slowest to make: a counter lookup per endpoint)
  // is ~0.5 ms of the control thread: what a DNS query can wait behind it.
  static constexpr size_t kReplyPiece = 16 * 1024;
  struct Options {
    size_t max_connections = 64;
    size_t max_backlog = 4 * 1024 * 1024;  // unsent reply bytes per connection
    uint32_t mode = 0660;                  // the socket file's permission bits
    std::string group;                     // its group; "" = the process's own
    uint64_t idle_timeout_ms = 300'000;    // a silent client is closed; 0 = never
  };

  // Fields of a successful reply (an object), or an Error whose code picks
  // the reply's error code (ErrorCode -> "bad_request", "not_found", ...).
  using Handler = std::function<Result<nlohmann::json>(const nlohmann::json& request)>;
  // The same for a reply that may be long: written a piece per loop turn.
  using LongHandler = std::function<Result<LongReply>(const nlohmann::json& request)>;
  // A command answered later (e.g. "flows", which asks the workers): the
  // handler keeps `reply` and calls it once, on the control thread.  Until
  // then that connection's next requests wait (replies stay in order); other
  // connections carry on.  Calling it after the client left is harmless.
  using Reply = std::function<void(Result<LongReply>)>;
  using AsyncHandler = std::function<void(const nlohmann::json& request, Reply reply)>;

  // Creates the parent directory (0755) when missing, removes a stale
  // socket file nobody listens on, binds, sets mode 0660, listens and
  // accepts on `loop`.  A socket another process answers on is an error:
  // "another podgate is serving PATH".
  static Result<std::unique_ptr<ControlSocket>> open(EventLoop& loop, const std::string& path,
                                                     Options options);
  static Result<std::unique_ptr<ControlSocket>> open(EventLoop& loop, const std::string& path) {
    return open(loop, path, Options{});
  }
  // Closes every connection and removes the socket file (if it is still ours).
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  // Registers `name`; a second registration replaces the first.
  void add_command(std::string name, Handler handler);
  void add_long_command(std::string name, LongHandler handler);
  void add_async_command(std::string name, AsyncHandler handler);

  // One request line -> one reply line (without the newline).  What every
  // connection runs; public so tests can drive the protocol directly.  An
  // async command's reply is passed to `deferred` instead (nullopt returned).
  std::optional<std::string> handle_line(std::string_view line,
                                         std::function<void(std::string)> deferred);
  std::string handle_line(std::string_view line);

  // What one connection has written in pieces: long replies started, and
  // the most bytes one loop turn gave one connection (tests assert on it).
  struct StreamStats {
    uint64_t streams = 0;
    uint64_t pieces = 0;
    size_t largest_piece = 0;
  };
  const StreamStats& stream_stats() const noexcept { return stream_stats_; }

  const std::string& path() const noexcept { return path_; }
  ControlCounters counters() const noexcept;
  size_t connections() const noexcept { return server_ ? server_->connections() : 0; }

 private:
  class Session;  // one connection's line framing and async state
  // A reply: its whole text, or (a long one) the stream that writes it.
  struct Outgoing {
    std::string text;
    std::unique_ptr<ReplyStream> stream;
  };

  ControlSocket(std::string path, Options options) : path_(std::move(path)), options_(options) {}
  Result<void> bind_and_listen();
  Result<void> serve(EventLoop& loop);
  // Answers the complete request lines buffered on `c`.
  StreamSession::Input process_lines(StreamConn& c, Session& s);
  // An async command's reply for connection `id`, whenever it comes.
  void deliver(StreamConn::Id id, Outgoing reply);
  std::optional<Outgoing> answer(std::string_view line, std::function<void(Outgoing)> deferred);
  // Queues `reply` on `c`, or makes it the stream `s` writes next.
  void send(StreamConn& c, Session& s, Outgoing reply);
  // Writes the next piece of `s`'s long reply if the queue has room;
  // true once the reply is complete.
  bool pump(StreamConn& c, Session& s);
  Outgoing success_reply(const nlohmann::json& id, Result<LongReply> result);
  std::string error_reply(const nlohmann::json& id, std::string_view code, std::string_view message);

  std::string path_;
  Options options_;
  int listen_fd_ = -1;  // until serve() hands it to server_
  dev_t dev_ = 0;  // the socket file we created: removed on exit only if still ours
  ino_t ino_ = 0;
  std::map<std::string, LongHandler, std::less<>> commands_;
  std::map<std::string, AsyncHandler, std::less<>> async_commands_;
  std::unique_ptr<StreamServer> server_;
  ControlCounters counters_;  // requests and errors; the connection counts are server_'s
  StreamStats stream_stats_;
};

// The reply code of an ErrorCode: "bad_request", "not_found", "invalid_config", "internal".
std::string_view error_code_name(ErrorCode code) noexcept;

}  // namespace podgate::ctl
