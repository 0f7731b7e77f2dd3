// The exception path (issue 10): the kernel beside the dataplane.
//
// The DPDK ports belong to podgate, but the appliance still needs the
// kernel's TCP/IP for what is not service traffic: BGP to the router, SSH,
// health probes to the Pods, TCP queries to the DNS VIP.  A port configured
// with `kernel = "NAME"` gets a kernel twin: a net_tap interface NAME with
// the port's MAC, address, MTU and the routes through it, so the kernel
// sees the port as if it were its own NIC.
//
//   wire -> port -> worker: a packet for the port's own address that the
//     dataplane does not handle (anything but ARP requests and ICMP echo
//     requests), TCP to the DNS VIP, and ARP replies (copied) go up the
//     punt ring; deliver() writes them into the twin.
//   kernel -> twin -> poll(): frames the kernel sends are checked (IPv4 or
//     ARP, from the port's MAC) and put on the port by the control thread's
//     own TX queue.  An ARP request the kernel sends is noted by the
//     PuntHandler, so the reply teaches both neighbour tables.
//
// Both directions are bounded: the workers by a token bucket each (their
// share of the rate, counted as kernel_rate_limited drops), the kernel's
// side by one bucket per twin here.  No /dev/vhost-net and no KNI are
// needed: net_tap is what DPDK recommends in place of KNI.  Control thread
// only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "control/config/config.hpp"
#include "control/loop/event_loop.hpp"
#include "control/publish/punt_handler.hpp"
#include "control/result.hpp"
#include "dataplane/port.hpp"
#include "dataplane/token_bucket.hpp"

namespace podgate::ctl {

class KernelTwins {
 public:
  struct Counters {
    uint64_t to_kernel = 0;         // frames written into the twin
    uint64_t to_kernel_failed = 0;  // the twin did not take them
    uint64_t from_kernel = 0;       // frames the kernel sent, put on the port
    uint64_t from_kernel_rate_limited = 0;
    uint64_t from_kernel_refused = 0;  // not IPv4 or ARP, not from the port's MAC, too short
    uint64_t rx_wakeups = 0;  // times what the kernel sent woke the control loop (rx_fd)
  };
  struct Twin {
    std::string iface;
    dp::PortIdx port{};       // the dataplane port it stands beside
    uint16_t port_id = 0;     // the twin's own DPDK port (net_tap)
    uint32_t rate = 0;        // packets per second, each way
    dp::MacAddr mac;          // the port's
    int rx_fd = -1;           // readable while the kernel's frames wait; -1: none
    // Its kernel device went away (`ip link del`): no longer read, watched
    // or written.  podgate sets a twin up only at start.
    bool lost = false;
    EventLoop::WatchId watch = EventLoop::WatchId::kNone;
    dp::Prefix4 address;      // the port's, so its subnet
    // The [[routes]] installed in the kernel's main table through it (each
    // prefix once, as validate() has them), kept in step with the config
    // by sync_routes().
    std::vector<RouteConfig> routes;
    Counters counters;
    dp::TokenBucket bucket;   // the kernel's side's
  };

  // Opens a twin for every port with `kernel` set (none: an empty set)
  // and sets up its kernel side: MAC, MTU, link up, no IPv6, the port's
  // address, `extra_addresses` as /32s (the DNS VIP, for TCP queries), and
  // every configured route whose next hop is on the port's subnet.
  static Result<std::unique_ptr<KernelTwins>> open(const Config& cfg,
                                                   const std::vector<dp::PortInfo>& ports,
                                                   const std::vector<dp::Ip4>& extra_addresses,
                                                   rte_mempool* pool);
  ~KernelTwins();
  KernelTwins(const KernelTwins&) = delete;
  KernelTwins& operator=(const KernelTwins&) = delete;

  bool empty() const noexcept { return twins_.empty(); }
  // Whether every twin has an rx_fd: then the control thread can sleep
  // with the fds in its epoll set (watch()) instead of polling every
  // millisecond.
  bool wake_on_rx() const noexcept;
  // Puts every twin's rx_fd in `loop`, level-triggered: what the kernel
  // sends wakes it, and poll() reads it on that turn (frames a bounded
  // turn leaves wake the next at once).  A twin whose device is deleted
  // reports an error on its fd at every wait: it is then lost (logged once,
  // taken out of the loop), not a control loop that spins.
  Result<void> watch(EventLoop& loop);
  const std::vector<Twin>& twins() const noexcept { return twins_; }
  // PortIdx -> 1 where the port has a twin (WorkerSetup::kernel_twins).
  std::vector<uint8_t> port_mask(size_t ports) const;
  // The highest twin rate: what the workers share between them.
  uint32_t max_rate() const noexcept;

  // Makes each twin's kernel routes `routes` whose next hop is on its
  // subnet (a reload may add, remove or move [[routes]]; the ports, and so
  // the subnets, stay): removes those gone, adds or replaces the others.
  // A route the kernel refuses is named in the error and tried again on
  // the next call; the others are done.
  Result<void> sync_routes(const std::vector<RouteConfig>& routes);

  // A punted packet for `port`'s twin: written into it (or freed).
  void deliver(rte_mbuf* m, dp::PortIdx port);

  // Moves what the kernel sent onto the ports; returns the frames taken.
  unsigned poll(uint64_t now_ms, PuntHandler& punt);

 private:
  KernelTwins() = default;
  Twin* twin_of(dp::PortIdx port) noexcept;
  void send_to_port(Twin& t, rte_mbuf* m, uint64_t now_ms, PuntHandler& punt);

  std::vector<Twin> twins_;
};

}  // namespace podgate::ctl
