// The kernel DNS listeners: UDP and TCP sockets on the [dns] listen
// addresses, answered by the responder (dns.hpp) on the control thread.
//
// Everything is non-blocking and driven by the control loop's epoll: a UDP
// socket is drained in recvmmsg/sendmmsg batches; a TCP connection (RFC 7766
// framing: a 2-byte length before each message) has its own read and write
// buffers, so partial reads and writes, pipelined queries and clients that
// stall mid-message cost only their own buffers.  Connections are capped
// (the least recently active one is closed to admit a new one) and closed
// after an idle timeout (RFC 7766 §6.2.3), so no client can hold the
// control thread or starve the others.
//
// The current Zone is a shared_ptr swapped by set_zone() when the Appliance
// publishes a snapshot, so answers change together with forwarding.
// Control thread only.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/config.hpp"
#include "control/dns/dns.hpp"
#include "control/result.hpp"

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
  uint64_t tcp_errors = 0;       // reset, oversized backlog, accept failures
};

class DnsServer {
 public:
  struct Options {
    uint64_t tcp_idle_ms = 10000;        // RFC 7766 §6.2.3: seconds, not minutes
    size_t max_tcp_connections = 256;
    size_t max_tcp_backlog = 256 * 1024;  // unsent answer bytes before reading pauses
    unsigned udp_budget = 256;            // datagrams per readiness event, then yield
  };

  // Binds every listen address (UDP, and TCP with SO_REUSEADDR).  A failure names
  // the address and the reason: "dns.listen: cannot bind UDP 127.0.0.1:53:
  // Address already in use".
  static Result<std::unique_ptr<DnsServer>> open(const DnsConfig& config, Options options);
  static Result<std::unique_ptr<DnsServer>> open(const DnsConfig& config) {
    return open(config, Options{});
  }
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Adds the listening sockets to `epoll_fd` (level-triggered); events for
  // them, and later for accepted connections, carry a tag recognised by
  // owns().  Call once.
  Result<void> attach(int epoll_fd);

  // Whether an epoll event belongs to this server.
  static bool owns(const epoll_event& ev) noexcept { return (ev.data.u64 & kTag) != 0; }
  // Handles one of its events.
  void on_event(const epoll_event& ev, uint64_t now_ms);
  // Idle timeouts; call at least every few hundred milliseconds.
  void tick(uint64_t now_ms);

  // The Zone answers come from, swapped whole (the Appliance calls this
  // right after publishing the snapshot built from the same config).
  void set_zone(std::shared_ptr<const Zone> zone) noexcept { zone_ = std::move(zone); }
  const std::shared_ptr<const Zone>& zone() const noexcept { return zone_; }

  // Answers one query into `out`; 0 = silence.  Counts it, rotates record
  // order.  Also used for queries punted from the dataplane.
  size_t answer(std::span<const uint8_t> query, Source source, std::span<uint8_t> out) noexcept;
  void count_dropped() noexcept { ++counters_.dropped; }

  const DnsCounters& counters() const noexcept { return counters_; }
  size_t tcp_connections() const noexcept { return conns_.size(); }
  // One line for SIGUSR1: "dns: queries udp=... answers noerror=... ...".
  std::string format_counters() const;

 private:
  static constexpr uint64_t kTag = uint64_t{1} << 63;
  static constexpr uint64_t kListenerBit = uint64_t{1} << 62;

  struct Listener {
    int fd = -1;
    bool tcp = false;
    bool wildcard = false;  // bound to 0.0.0.0: answers need IP_PKTINFO
  };
  struct Conn {
    int fd = -1;
    std::vector<uint8_t> in;   // received, not yet answered
    std::vector<uint8_t> out;  // answers not yet written; sent from out_pos
    size_t out_pos = 0;
    uint64_t last_active_ms = 0;
    uint32_t events = 0;       // what epoll currently watches
    bool peer_closed = false;  // EOF seen: finish writing, then close
  };

  struct UdpBatch;  // recvmmsg/sendmmsg buffers, server.cpp

  DnsServer(const DnsConfig& config, Options options);
  Result<void> bind_all();
  void on_udp(const Listener& l);
  void on_accept(int fd, uint64_t now_ms);
  void on_conn(uint64_t id, uint32_t events, uint64_t now_ms);
  // Answers every complete message in c.in while the backlog allows.
  void answer_tcp(Conn& c);
  // Writes what it can; false when the connection failed.
  bool flush(Conn& c);
  void watch(uint64_t id, Conn& c);
  void close_conn(uint64_t id);
  void evict_oldest();

  DnsConfig config_;
  Options options_;
  int epoll_fd_ = -1;
  std::vector<Listener> listeners_;
  std::unordered_map<uint64_t, Conn> conns_;  // by id (epoll data), never reused
  uint64_t next_id_ = 1;
  uint64_t last_tick_ms_ = 0;
  std::shared_ptr<const Zone> zone_;
  uint32_t rotation_ = 0;
  DnsCounters counters_;
  std::vector<uint8_t> scratch_;  // one TCP answer (kMaxMessage)
  std::unique_ptr<UdpBatch> udp_;
};

}  // namespace podgate::ctl::dns
