// The kernel DNS listeners: UDP and TCP sockets on the [dns] listen
// addresses, answered by the responder (dns.hpp) on the control thread.
//
// Everything is non-blocking and driven by the control thread's EventLoop:
// a UDP socket is drained in recvmmsg/sendmmsg batches; TCP connections
// (RFC 7766 framing: a 2-byte length before each message) are a
// StreamServer's (stream_server.hpp), each with its own read buffer and
// write queue, so partial reads and writes, pipelined queries and clients
// that stall mid-message cost only their own buffers.  Connections are
// capped (the least recently active one is closed to admit a new one) and
// closed after an idle timeout (RFC 7766 §6.2.3), so no client can hold the
// control thread or starve the others.
//
// The current Zone is a shared_ptr swapped by set_zone() when the Appliance
// publishes a snapshot, so answers change together with forwarding.
// Control thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "control/config/config.hpp"
#include "control/dns/dns.hpp"
#include "control/loop/event_loop.hpp"
#include "control/result.hpp"
#include "control/loop/stream_server.hpp"

namespace podgate::ctl::dns {

// Where a query came from, for the counters.
enum class Source : uint8_t { kUdp, kTcp, kDataplane };
inline constexpr size_t kSourceCount = 3;

struct DnsCounters {
  std::array<uint64_t, kSourceCount> queries{};  // by Source
  std::array<uint64_t, 16> rcodes{};             // answers by header RCODE
  uint64_t truncated = 0;        // UDP answers sent with TC set
  uint64_t silent = 0;           // queries the responder gave no answer
  uint64_t dropped = 0;          // answers not sent (socket full, no zone yet, bad packet)
  uint64_t tcp_accepted = 0;
  uint64_t tcp_idle_closed = 0;  // closed by the idle timeout
  uint64_t tcp_evicted = 0;      // closed to admit a new one at the cap
  uint64_t tcp_slow_closed = 0;  // a query not whole within Options.tcp_request_ms
  uint64_t tcp_errors = 0;       // reset, oversized backlog, accept failures
};

class DnsServer {
 public:
  struct Options {
    uint64_t tcp_idle_ms = 10000;        // RFC 7766 §6.2.3: seconds, not minutes
    uint64_t tcp_request_ms = 5000;      // a query must be whole this long after its first byte
    size_t max_tcp_connections = 256;
    size_t max_tcp_backlog = 256 * 1024;  // unsent answer bytes before reading pauses
    unsigned udp_budget = 256;            // datagrams per readiness event, then yield
  };

  // Binds every listen address (UDP, and TCP with SO_REUSEADDR) and
  // serves them on `loop`.  A failure names the address and the reason:
  // "dns.listen: cannot bind UDP 127.0.0.1:53: Address already in use".
  static Result<std::unique_ptr<DnsServer>> open(EventLoop& loop, const DnsConfig& config,
                                                 Options options);
  static Result<std::unique_ptr<DnsServer>> open(EventLoop& loop, const DnsConfig& config) {
    return open(loop, config, Options{});
  }
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;

  // One more TCP listener: the DNS VIP on the kernel twins (the exception
  // path passes TCP queries to the VIP up to the kernel).
  Result<void> listen_tcp(const DnsListen& l);
  DnsServer& operator=(const DnsServer&) = delete;

  // The Zone answers come from, swapped whole (the Appliance calls this
  // right after publishing the snapshot built from the same config).
  void set_zone(std::shared_ptr<const Zone> zone) noexcept { zone_ = std::move(zone); }
  const std::shared_ptr<const Zone>& zone() const noexcept { return zone_; }

  // Answers one query into `out`; 0 = silence.  Counts it, rotates record
  // order.  Also used for queries punted from the dataplane.
  size_t answer(std::span<const uint8_t> query, Source source, std::span<uint8_t> out) noexcept;
  void count_dropped() noexcept { ++counters_.dropped; }

  DnsCounters counters() const noexcept;
  size_t tcp_connections() const noexcept { return tcp_ ? tcp_->connections() : 0; }
  // One line for SIGUSR1: "dns: queries udp=... answers noerror=... ...".
  std::string format_counters() const;

 private:
  struct Listener {  // UDP
    int fd = -1;
    bool wildcard = false;  // bound to 0.0.0.0: answers need IP_PKTINFO
    EventLoop::WatchId watch = EventLoop::WatchId::kNone;
  };
  class TcpSession;  // RFC 7766 framing on one connection
  struct UdpBatch;   // recvmmsg/sendmmsg buffers, server.cpp

  DnsServer(EventLoop& loop, const DnsConfig& config, Options options);
  Result<void> bind_all();
  Result<void> bind_one(const DnsListen& l, bool tcp);
  void on_udp(const Listener& l);
  // Answers every complete message in c's input while the backlog allows.
  void answer_tcp(StreamConn& c);

  EventLoop& loop_;
  DnsConfig config_;
  Options options_;
  std::vector<Listener> udp_;
  std::unique_ptr<StreamServer> tcp_;  // the TCP listeners and their connections
  std::shared_ptr<const Zone> zone_;
  uint32_t rotation_ = 0;
  DnsCounters counters_;
  std::vector<uint8_t> scratch_;  // one TCP answer (kMaxMessage)
  std::unique_ptr<UdpBatch> udp_batch_;
};

}  // namespace podgate::ctl::dns
