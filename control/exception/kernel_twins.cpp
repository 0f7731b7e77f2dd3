#include "control/exception/kernel_twins.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <cstring>

#include <rte_arp.h>
#include <rte_ethdev.h>
#include <rte_ether.h>

#include "control/exception/netdev.hpp"
#include "control/log.hpp"

namespace podgate::ctl {
namespace {

constexpr uint16_t kPollBurst = 32;
constexpr unsigned kPollBursts = 8;

// Everything but the routes (add_routes_wanted()).
Result<void> set_up_kernel_side(const PortConfig& pc, const dp::PortInfo& port, uint16_t mtu,
                                const std::vector<dp::Ip4>& extra_addresses) {
  const std::string& iface = pc.kernel;
  if (auto r = netdev::disable_ipv6(iface); !r) return r;
  // The twin holds the DNS VIP as a /32 besides the port's address.  With
  // Linux's default arp_announce=0 its ARP requests may name the VIP as
  // their sender, and the replies, whose target is then the VIP, are not
  // for the port's address: the workers drop them (arp_not_for_us) and
  // the kernel never resolves.  2: always the port's own address on the
  // target's subnet.  arp_ignore=1: answer only for addresses on the twin
  // (the workers answer ARP for the port's addresses anyway; this keeps the
  // kernel from answering for an address of another interface).
  if (auto r = netdev::set_ipv4_conf(iface, "arp_announce", 2); !r) return r;
  if (auto r = netdev::set_ipv4_conf(iface, "arp_ignore", 1); !r) return r;
  if (auto r = netdev::set_mac(iface, port.mac); !r) return r;
  if (auto r = netdev::set_mtu(iface, mtu); !r) return r;
  if (auto r = netdev::set_up(iface); !r) return r;
  if (auto r = netdev::add_address(iface, pc.address); !r) return r;
  for (dp::Ip4 ip : extra_addresses) {
    if (auto r = netdev::add_address(iface, dp::Prefix4{ip, 32}); !r) return r;
  }
  return {};
}

// Twin `t`'s share of `routes`: those whose next hop is on its subnet.
std::vector<RouteConfig> routes_through(const KernelTwins::Twin& t, const std::vector<RouteConfig>& routes) {
  std::vector<RouteConfig> mine;
  for (const RouteConfig& r : routes) {
    if (t.address.contains(r.via)) mine.push_back(r);
  }
  return mine;
}

// Keeping `t.routes`, and the kernel's routes through the twin, in step
// with `want` (its share of the config's) takes two steps: removing the
// routes whose prefix is gone, then adding the others.  Every twin removes
// before any adds, so a route that moves to another port's twin leaves
// the old one first.  The main table holds a prefix once, so a route whose
// next hop changed is replaced in place (netdev::add_route is `ip route
// replace`).  What the kernel refuses is appended to `failures` and left
// as recorded (a route not deleted stays in `t.routes`, one not added
// stays out), so the next sync tries it again.
void remove_routes_gone(KernelTwins::Twin& t, const std::vector<RouteConfig>& want,
                        std::vector<std::string>& failures) {
  for (auto it = t.routes.begin(); it != t.routes.end();) {
    const dp::Prefix4 prefix = it->prefix;
    if (std::any_of(want.begin(), want.end(), [&](const RouteConfig& w) { return w.prefix == prefix; })) {
      ++it;
      continue;
    }
    if (auto r = netdev::delete_route(t.iface, prefix, netdev::kMainTable); !r) {
      failures.push_back(r.error().message);
      ++it;
      continue;
    }
    log_info("kernel twin " + t.iface + ": removed route " + dp::to_string(prefix) + " via " +
             dp::to_string(it->via));
    it = t.routes.erase(it);
  }
}

void add_routes_wanted(KernelTwins::Twin& t, const std::vector<RouteConfig>& want,
                       std::vector<std::string>& failures) {
  for (const RouteConfig& w : want) {
    auto it = std::find_if(t.routes.begin(), t.routes.end(),
                           [&](const RouteConfig& r) { return r.prefix == w.prefix; });
    if (it != t.routes.end() && it->via == w.via) continue;
    if (auto r = netdev::add_route(t.iface, w.prefix, w.via); !r) {
      failures.push_back(r.error().message);
      continue;
    }
    log_info("kernel twin " + t.iface + ": route " + dp::to_string(w.prefix) + " via " +
             dp::to_string(w.via));
    if (it != t.routes.end()) {
      it->via = w.via;
    } else {
      t.routes.push_back(w);
    }
  }
}

}  // namespace

Result<std::unique_ptr<KernelTwins>> KernelTwins::open(const Config& cfg,
                                                       const std::vector<dp::PortInfo>& ports,
                                                       const std::vector<dp::Ip4>& extra_addresses,
                                                       rte_mempool* pool) {
  std::unique_ptr<KernelTwins> twins(new KernelTwins());
  for (size_t i = 0; i < cfg.ports.size() && i < ports.size(); ++i) {
    const PortConfig& pc = cfg.ports[i];
    if (pc.kernel.empty()) continue;
    // One RX and one TX queue: only the control thread uses it.
    dp::PortRequest req;
    req.name = pc.name + " kernel twin";
    req.device = "net_tap_twin" + std::to_string(i) + ",iface=" + pc.kernel;
    req.rx_queues = 1;
    req.tx_queues = 1;
    req.rx_interrupts = true;
    req.pool = pool;
    dp::PortInfo info;
    if (auto err = dp::open_port(req, info)) {
      return make_error(ErrorCode::kDpdk, "ports[" + std::to_string(i) + "] kernel \"" +
                                              pc.kernel + "\": " + *err);
    }
    // Owned from here: the destructor closes it, also on a failure below.
    Twin t;
    t.iface = pc.kernel;
    t.port = dp::PortIdx{static_cast<uint16_t>(i)};
    t.port_id = info.port_id;
    t.rate = pc.kernel_rate;
    t.mac = ports[i].mac;
    t.address = pc.address;
    if (!info.rx_wake_fds.empty()) t.rx_fd = info.rx_wake_fds.front();
    twins->twins_.push_back(t);
    uint16_t mtu = 0;
    if (rte_eth_dev_get_mtu(ports[i].port_id, &mtu) != 0 || mtu == 0) mtu = dp::kEthernetMtu;
    if (auto r = set_up_kernel_side(pc, ports[i], mtu, extra_addresses); !r) {
      return make_error(ErrorCode::kIo, "ports[" + std::to_string(i) + "] kernel: " +
                                            r.error().message);
    }
    Twin& opened = twins->twins_.back();
    std::vector<std::string> failures;
    add_routes_wanted(opened, routes_through(opened, cfg.routes), failures);
    if (!failures.empty()) {
      return make_error(ErrorCode::kIo, "ports[" + std::to_string(i) + "] kernel: " + failures.front());
    }
    log_info("port '" + pc.name + "': kernel twin " + pc.kernel + " (mac " +
             dp::to_string(ports[i].mac) + ", " + dp::to_string(pc.address) + ", mtu " +
             std::to_string(mtu) + ", at most " + std::to_string(pc.kernel_rate) +
             " packets/s each way" +
             (t.rx_fd >= 0 ? ")" : "; no RX interrupts: polled every millisecond)"));
  }
  return twins;
}

Result<void> KernelTwins::sync_routes(const std::vector<RouteConfig>& routes) {
  std::vector<std::string> failures;
  for (Twin& t : twins_) remove_routes_gone(t, routes_through(t, routes), failures);
  for (Twin& t : twins_) add_routes_wanted(t, routes_through(t, routes), failures);
  if (failures.empty()) return {};
  std::string message = "kernel twin routes:";
  for (const std::string& f : failures) message += "\n" + f;
  return make_error(ErrorCode::kIo, message);
}

KernelTwins::~KernelTwins() {
  for (const Twin& t : twins_) dp::close_port(t.port_id);
}

std::vector<uint8_t> KernelTwins::port_mask(size_t ports) const {
  std::vector<uint8_t> mask(ports, 0);
  for (const Twin& t : twins_) mask.at(static_cast<uint16_t>(t.port)) = 1;
  return mask;
}

Result<void> KernelTwins::watch(EventLoop& loop) {
  for (Twin& t : twins_) {  // twins_ is complete after open(): &t stays valid
    if (t.rx_fd < 0) continue;
    auto w = loop.add(t.rx_fd, EPOLLIN, [&t, &loop](uint32_t events) {
      if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
        loop.remove(t.watch);
        t.watch = EventLoop::WatchId::kNone;
        t.lost = true;
        log_error("kernel twin " + t.iface + " is gone (its device was deleted): nothing goes up to the "
                  "kernel through it or comes from it any more; restart podgate to set it up again");
        return;
      }
      ++t.counters.rx_wakeups;
    });
    if (!w) return std::move(w).error();
    t.watch = *w;
  }
  return {};
}

bool KernelTwins::wake_on_rx() const noexcept {
  return std::all_of(twins_.begin(), twins_.end(), [](const Twin& t) { return t.lost || t.rx_fd >= 0; });
}

uint32_t KernelTwins::max_rate() const noexcept {
  uint32_t rate = 0;
  for (const Twin& t : twins_) rate = std::max(rate, t.rate);
  return rate;
}

KernelTwins::Twin* KernelTwins::twin_of(dp::PortIdx port) noexcept {
  for (Twin& t : twins_) {
    if (t.port == port) return &t;
  }
  return nullptr;
}

void KernelTwins::deliver(rte_mbuf* m, dp::PortIdx port) {
  Twin* t = twin_of(port);
  if (t == nullptr) {
    rte_pktmbuf_free(m);
    return;
  }
  if (t->lost) {
    ++t->counters.to_kernel_failed;
    rte_pktmbuf_free(m);
    return;
  }
  if (rte_eth_tx_burst(t->port_id, 0, &m, 1) != 1) {
    ++t->counters.to_kernel_failed;
    rte_pktmbuf_free(m);
    return;
  }
  ++t->counters.to_kernel;
}

unsigned KernelTwins::poll(uint64_t now_ms, PuntHandler& punt) {
  unsigned total = 0;
  for (Twin& t : twins_) {
    if (t.lost) continue;
    // A few bursts per call (about every millisecond): the rate limit,
    // not this, bounds the kernel; this bounds one call's time.
    for (unsigned burst = 0; burst < kPollBursts; ++burst) {
      rte_mbuf* pkts[kPollBurst];
      const uint16_t n = rte_eth_rx_burst(t.port_id, 0, pkts, kPollBurst);
      for (uint16_t i = 0; i < n; ++i) send_to_port(t, pkts[i], now_ms, punt);
      total += n;
      if (n < kPollBurst) break;
    }
  }
  return total;
}

// What the kernel may send on the wire: IPv4 and ARP, from the port's MAC
// (a frame from any other source would teach switches a stranger's
// address on our port), within the rate.
void KernelTwins::send_to_port(Twin& t, rte_mbuf* m, uint64_t now_ms, PuntHandler& punt) {
  const uint32_t len = rte_pktmbuf_data_len(m);
  const auto* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
  const uint16_t type = len >= sizeof(rte_ether_hdr) ? dp::from_be16(eth->ether_type) : 0;
  const bool arp = type == RTE_ETHER_TYPE_ARP && len >= sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr);
  if ((type != RTE_ETHER_TYPE_IPV4 && !arp) ||
      std::memcmp(eth->src_addr.addr_bytes, t.mac.bytes.data(), 6) != 0 ||
      rte_pktmbuf_pkt_len(m) != len) {
    ++t.counters.from_kernel_refused;
    rte_pktmbuf_free(m);
    return;
  }
  if (!t.bucket.take(static_cast<uint32_t>(now_ms), t.rate)) {
    ++t.counters.from_kernel_rate_limited;
    rte_pktmbuf_free(m);
    return;
  }
  if (arp) {
    const auto* a = reinterpret_cast<const rte_arp_hdr*>(eth + 1);
    if (a->arp_opcode == dp::to_be16(RTE_ARP_OP_REQUEST)) {
      punt.note_asked(dp::Ip4{a->arp_data.arp_tip}, now_ms);
    }
  }
  ++t.counters.from_kernel;
  punt.transmit(m, t.port);
}

}  // namespace podgate::ctl
