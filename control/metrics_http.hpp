// The Prometheus endpoint: a minimal HTTP/1.1 server (RFC 9112) for the
// control thread's epoll loop, serving GET/HEAD /metrics with a body the
// caller provides (render_prometheus, prometheus.hpp).
//
// Built like the control socket (control_socket.hpp): non-blocking
// sockets, level-triggered epoll, per-connection buffers, a connection cap
// and an idle timeout, so a slow, stalled or malicious scraper costs only
// its own buffers and never holds the loop that also answers DNS.  One
// request per connection is handled at a time (pipelined requests wait in
// the input buffer until the previous reply is written); while a reply is
// unsent the connection is not read, so a client that stops reading is
// held back by TCP and closed by the idle timeout.  Keep-alive follows
// RFC 9112 §9.3 (HTTP/1.1 persistent unless "Connection: close"; HTTP/1.0
// only with "Connection: keep-alive").  Requests carrying a body are
// answered and then closed: /metrics takes no input.
// Control thread only.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "control/result.hpp"
#include "dataplane/net.hpp"

namespace podgate::ctl {

struct MetricsCounters {
  uint64_t accepted = 0;
  uint64_t requests = 0;     // requests parsed (or rejected) and answered
  uint64_t errors = 0;       // 4xx/5xx replies sent
  uint64_t refused = 0;      // connections refused at the cap
  uint64_t closed_idle = 0;  // closed by the idle timeout
};

// The counters as the "metrics_http" section of the stats reply
// (render_prometheus turns it into podgate_metrics_http_*).
nlohmann::json metrics_counters_json(const MetricsCounters& c, size_t connections);

class MetricsServer {
 public:
  static constexpr size_t kMaxHeaderBytes = 8 * 1024;  // request line + header fields
  struct Options {
    size_t max_connections = 16;
    uint64_t idle_timeout_ms = 5000;
  };
  using BodyProvider = std::function<std::string()>;

  // Binds ip:port (SO_REUSEADDR; port 0 = an ephemeral port, see port())
  // and listens.  Errors name the address: "metrics.listen: cannot bind
  // 127.0.0.1:9100: Address already in use".
  static Result<std::unique_ptr<MetricsServer>> open(dp::Ip4 ip, uint16_t port, Options options);
  static Result<std::unique_ptr<MetricsServer>> open(dp::Ip4 ip, uint16_t port) {
    return open(ip, port, Options{});
  }
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // What GET /metrics returns; called once per request.  Without one,
  // /metrics answers 503.
  void set_body_provider(BodyProvider provider) { provider_ = std::move(provider); }

  // Adds the listening socket to `epoll_fd` (level-triggered).  Call once.
  Result<void> attach(int epoll_fd);
  // Events tagged for this server: value 2 in bits 61..63 (bit 63 is
  // DnsServer's, value 1 the ControlSocket's).
  static bool owns(const epoll_event& ev) noexcept { return (ev.data.u64 & kTagMask) == kTag; }
  void on_event(const epoll_event& ev, uint64_t now_ms);
  // Closes connections idle for idle_timeout_ms or more (no byte read or
  // written; a connection lingering after its last reply counts from the
  // reply).  Call at least every few hundred milliseconds.
  void tick(uint64_t now_ms);

  uint16_t port() const noexcept { return port_; }  // host order; the bound port
  const MetricsCounters& counters() const noexcept { return counters_; }
  size_t connections() const noexcept { return conns_.size(); }

 private:
  static constexpr uint64_t kTag = uint64_t{2} << 61;
  static constexpr uint64_t kTagMask = uint64_t{7} << 61;
  static constexpr uint64_t kListenerId = 0;

  struct Conn {
    int fd = -1;
    std::string in;   // received, not yet handled
    std::string out;  // reply not yet written; sent from out_pos
    size_t out_pos = 0;
    uint64_t last_active_ms = 0;
    uint32_t events = 0;
    bool close_after_reply = false;
    bool lingering = false;  // reply sent, write side shut: read and discard until EOF
  };

  MetricsServer(Options options) : options_(options) {}
  void on_accept(uint64_t now_ms);
  void on_conn(uint64_t id, uint32_t events, uint64_t now_ms);
  // Handles the first whole request in c.in (if any); false if none yet.
  bool handle_request(Conn& c);
  void reply(Conn& c, int status, std::string_view reason, std::string_view content_type,
             const std::string& body, bool head, std::string_view extra_headers = {});
  void watch(uint64_t id, Conn& c);
  void close_conn(uint64_t id);

  Options options_;
  std::string address_;  // "127.0.0.1:9100", for messages
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  uint16_t port_ = 0;
  BodyProvider provider_;
  std::unordered_map<uint64_t, Conn> conns_;
  uint64_t next_id_ = 1;
  MetricsCounters counters_;
};

}  // namespace podgate::ctl
