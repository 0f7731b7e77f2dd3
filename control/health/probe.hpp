// One health probe on an ordinary non-blocking kernel socket (issue 13):
// TCP connect, an HTTP request, or a DNS query over UDP.  On the appliance
// the kernel reaches the Pods through each port's kernel twin (the exception
// path), so a probe is a plain socket and the kernel's routes carry it.
//
// A Probe is a small state machine driven by the control thread's event
// loop: start() opens and connects the socket, on_ready() takes the events
// epoll reported and says whether the probe is done.  It never blocks and
// never reads more than one reply.  The reply parsers are pure functions,
// tested without sockets.  Control thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "control/config/service_config.hpp"
#include "control/health/health_state.hpp"
#include "dataplane/net.hpp"

namespace podgate::ctl::health {

// What to send and what to expect, fixed per target (the check's config
// with the endpoint's address filled in).
struct ProbePlan {
  HealthKind kind = HealthKind::kTcp;
  dp::IpAddr ip;  // either family: probed over an IPv4 or IPv6 socket (issue 11)
  uint16_t port = 0;
  std::string request;                     // http: the request; dns: the query, id 0
  std::vector<StatusRange> expect_status;  // http
  uint16_t query_type = 0;                 // dns
  std::optional<dp::Ip4> expect_address;   // dns
  friend bool operator==(const ProbePlan&, const ProbePlan&) = default;
};

// The plan for `check` probing ip:port; an HTTP check's Host is
// "[fd00::5]:8080" for IPv6 (RFC 7230 section 5.4, RFC 3986 IP-literal).
ProbePlan make_plan(const HealthCheckConfig& check, const dp::IpAddr& ip, uint16_t port);
inline ProbePlan make_plan(const HealthCheckConfig& check, dp::Ip4 ip, uint16_t port) {
  return make_plan(check, dp::IpAddr::v4(ip), port);
}

// The HTTP status of a response's status line ("HTTP/1.1 200 OK\r\n"),
// after any 1xx interim responses; nullopt while the line is incomplete,
// 0 when it is not HTTP.
std::optional<uint16_t> http_status(std::span<const uint8_t> head) noexcept;
// Whether `status` is one of `expect`.
bool status_expected(uint16_t status, const std::vector<StatusRange>& expect) noexcept;
// Checks a DNS reply to the query `plan` sent with `id`.
ProbeResult check_dns_reply(std::span<const uint8_t> reply, uint16_t id, const ProbePlan& plan) noexcept;

class Probe {
 public:
  Probe() = default;
  ~Probe() { close(); }
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  // Opens the socket and starts connecting; the events to wait for, or a
  // result at once (a refused connect, no sockets left).  `id` is the DNS
  // query id to use.
  struct Started {
    int fd = -1;
    uint32_t events = 0;                // EPOLLOUT or EPOLLIN
    std::optional<ProbeResult> result;  // done already
  };
  Started start(const ProbePlan& plan, uint16_t id);
  // Handles ready `events`; a result when the probe is done, and the events
  // to wait for next otherwise (`next_events`).
  std::optional<ProbeResult> on_ready(const ProbePlan& plan, uint32_t events);
  uint32_t next_events() const noexcept { return next_events_; }
  // An HTTP probe whose status line is in, waiting for the server to close:
  // its result stands even if the close comes late (the checker's timeout).
  const std::optional<ProbeResult>& settled() const noexcept { return settled_; }
  int fd() const noexcept { return fd_; }
  // Closes the socket; a TCP connect check with a reset (SO_LINGER 0), so
  // 10,000 probes a second leave no TIME_WAIT behind to exhaust the
  // ephemeral ports; an HTTP check after the server closed (or with a
  // reset when it does not close in time).
  void close() noexcept;

 private:
  std::optional<ProbeResult> connected(const ProbePlan& plan);
  std::optional<ProbeResult> readable(const ProbePlan& plan);

  int fd_ = -1;
  uint16_t id_ = 0;
  uint32_t next_events_ = 0;
  bool connecting_ = false;
  std::vector<uint8_t> buf_;  // the HTTP head read so far
  std::optional<ProbeResult> settled_;
  size_t read_ = 0;                             // of the response, once settled
  static constexpr size_t kMaxDrain = 64 * 1024;  // read after the status line, at most
};

}  // namespace podgate::ctl::health
