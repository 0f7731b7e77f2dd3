// The Prometheus endpoint: a minimal HTTP/1.1 server (RFC 9112) on the
// control thread's EventLoop, serving GET/HEAD /metrics with a body the
// caller provides (render_prometheus, prometheus.hpp).
//
// The connections are a StreamServer's (stream_server.hpp), like the
// control socket's: non-blocking, per-connection buffers, a connection cap
// and an idle timeout, so a slow, stalled or malicious scraper costs only
// its own buffers and never holds the loop that also answers DNS.  One
// request per connection is handled at a time (pipelined requests wait in
// the input buffer until the previous reply is written); while a reply is
// unsent the connection is not read, so a client that stops reading is
// held back by TCP and closed by the idle timeout.  Keep-alive follows
// RFC 9112 §9.3 (HTTP/1.1 persistent unless "Connection: close"; HTTP/1.0
// only with "Connection: keep-alive").  Requests carrying a body are
// answered and then closed: /metrics takes no input.
//
// A body given as a stream (set_stream_provider) is written a piece per
// event-loop turn, only while less than a piece is unsent, as the control
// socket writes a long reply (issue 14: a scrape at 10k services is 184 MB):
// HTTP/1.1 chunked (RFC 9112 §7.1), or to HTTP/1.0 without a length and
// closed at its end (§6.3).  The scraper's reading paces the pieces; one
// that stops reading is closed by the idle timeout like any silent one.
// At the connection cap the stalest connection makes room for a newcomer,
// but never one whose reply is being written (a scrape at 10k services
// streams for seconds); while every connection is, the newcomer gets 503.
// Control thread only.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/loop/event_loop.hpp"
#include "control/result.hpp"
#include "control/loop/stream_server.hpp"
#include "dataplane/net.hpp"

namespace podgate::ctl {

struct MetricsCounters {
  uint64_t accepted = 0;
  uint64_t requests = 0;     // requests parsed (or rejected) and answered
  uint64_t errors = 0;       // 4xx/5xx replies sent
  uint64_t refused = 0;      // connections refused at the cap
  uint64_t closed_idle = 0;  // closed by the idle timeout
  uint64_t evicted = 0;      // the stalest, closed to admit a new connection at the cap
  uint64_t closed_slow = 0;  // a request head not whole within Options.request_timeout_ms
};

// `t` as an HTTP date, IMF-fixdate (RFC 9110 §5.6.7):
// "Sun, 06 Nov 1994 08:49:37 GMT".  Every reply carries one in Date (§6.6.1).
std::string http_date(std::time_t t);

// The counters as the "metrics_http" section of the stats reply
// (render_prometheus turns it into podgate_metrics_http_*).
nlohmann::json metrics_counters_json(const MetricsCounters& c, size_t connections);

class MetricsServer {
 public:
  static constexpr size_t kMaxHeaderBytes = 8 * 1024;  // request line + header fields
  struct Options {
    size_t max_connections = 16;
    // A connection with no byte read or written for this long is closed;
    // one lingering after its last reply counts from the reply.
    uint64_t idle_timeout_ms = 5000;
    // A request head must be whole this long after its first byte (issue
    // 15: 16 clients trickling a byte a second stopped every scrape).
    uint64_t request_timeout_ms = 5000;
  };
  using BodyProvider = std::function<std::string()>;
  // A body made a piece at a time: appends the next piece (about `budget`
  // bytes) to `out`; false once the body is complete.
  using BodyPieces = std::function<bool(std::string& out, size_t budget)>;
  using StreamProvider = std::function<BodyPieces()>;
  static constexpr size_t kBodyPiece = 16 * 1024;

  // Binds ip:port (SO_REUSEADDR; port 0 = an ephemeral port, see port()),
  // listens and accepts on `loop`.  Errors name the address:
  // "metrics.listen: cannot bind 127.0.0.1:9100: Address already in use".
  static Result<std::unique_ptr<MetricsServer>> open(EventLoop& loop, dp::Ip4 ip, uint16_t port,
                                                     Options options);
  static Result<std::unique_ptr<MetricsServer>> open(EventLoop& loop, dp::Ip4 ip, uint16_t port) {
    return open(loop, ip, port, Options{});
  }
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // What GET /metrics returns; called once per request.  Without one,
  // /metrics answers 503.
  void set_body_provider(BodyProvider provider) { provider_ = std::move(provider); }
  // What GET /metrics streams instead (called once per GET; HEAD answers
  // with the headers only).  Takes precedence over the body provider.
  void set_stream_provider(StreamProvider provider) { stream_provider_ = std::move(provider); }

  uint16_t port() const noexcept { return port_; }  // host order; the bound port
  MetricsCounters counters() const noexcept;
  size_t connections() const noexcept { return server_ ? server_->connections() : 0; }

 private:
  class Session;  // one connection: a request at a time

  MetricsServer(Options options) : options_(options) {}
  // Answers the first whole request in the input, if the last reply is out.
  StreamSession::Input handle_request(StreamConn& c);
  void reply(StreamConn& c, int status, std::string_view reason, std::string_view content_type,
             const std::string& body, bool head, bool close, std::string_view extra_headers = {});
  // A 200 whose body is streamed: its head now, the pieces by pump().
  void start_stream(StreamConn& c, Session& s, bool head, bool chunked, bool close);
  // Writes the stream's next piece if less than one is unsent; false while
  // the body is not complete (the request after it waits).
  bool pump(StreamConn& c, Session& s);

  Options options_;
  std::string address_;  // "127.0.0.1:9100", for messages
  uint16_t port_ = 0;
  BodyProvider provider_;
  StreamProvider stream_provider_;
  std::unique_ptr<StreamServer> server_;
  MetricsCounters counters_;  // requests and errors; the connection counts are server_'s
};

}  // namespace podgate::ctl
