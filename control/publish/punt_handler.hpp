// The control thread's side of the punt ring: learns neighbours from ARP
// replies, resolves next hops with ARP requests, holds packets waiting for a
// resolution for a short while (then sends them, or drops and counts them),
// and hands DNS queries to the DNS service.  It transmits on its own TX
// queue of each port (index = number of workers), so it never shares a
// queue with a worker.  Control thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "dataplane/neighbor_table.hpp"
#include "dataplane/punt.hpp"
#include "dataplane/snapshot.hpp"
#include "dataplane/worker_counters.hpp"

namespace podgate::ctl {

class PuntHandler {
 public:
  static constexpr uint32_t kMaxWaitingPerHop = 16;
  static constexpr uint32_t kMaxWaiting = 1024;
  // At most one request a second for an address (Linux's and VPP's pace),
  // whether packets wait for it or not: its last request's time is kept
  // (asked_) for kSolicitedMs, so a stream of packets to an address that
  // does not answer, dropped because the wait cap is full, still asks for it
  // only once a second.
  static constexpr uint64_t kArpRetryMs = 1000;
  // Addresses asked for by a new request (a punt, the kernel twin) within
  // kSolicitedMs, per family: beyond it no new address is asked for until
  // some expire.  Probes of learnt entries are bounded by the table.
  static constexpr size_t kMaxAsked = 4096;
  static constexpr uint64_t kWaitLimitMs = 3000;
  // A reply counts as solicited this long after our last request for it.
  static constexpr uint64_t kSolicitedMs = 3 * kArpRetryMs;
  // Neighbour aging, as a careful router's (RFC 1122 §2.3.2.1; Linux's
  // NUD states): a learnt entry is reachable for about kReachableMs after
  // it was last confirmed (0.5x..1.5x, spread per address so that entries
  // learnt together are not probed together), then stale: it is still
  // used, and probed by unicast ARP requests to its MAC, kMaxProbes of them
  // kArpRetryMs apart.  A reply confirms it; silence forgets its MAC, so a
  // Pod that came back with another MAC is found by a broadcast request.
  // Static neighbours never age.  IPv6 entries age the same way with
  // unicast neighbour solicitations (RFC 4861 §7.3: REACHABLE, STALE, then
  // PROBE with MAX_UNICAST_SOLICIT = 3, RetransTimer apart).
  static constexpr uint64_t kReachableMs = 30000;
  static constexpr uint32_t kMaxProbes = 3;

  struct Setup {
    rte_ring* punt_ring = nullptr;
    rte_mempool* pool = nullptr;
    dp::NeighborTable* neighbors = nullptr;
    dp::NeighborTable6* neighbors6 = nullptr;  // IPv6 next hops (issue 11); null: none resolved
    std::vector<uint16_t> port_ids;  // PortIdx -> DPDK port id
    uint16_t tx_queue = 0;           // the control thread's queue
  };

  // Answers a DNS query packet in place (or frees it); set by the DNS
  // service.  Without one, DNS punts are dropped and counted.
  using DnsAnswerer = std::function<bool(rte_mbuf* m, const dp::Snapshot& snap)>;
  // Takes a packet for `port`'s kernel twin (the exception path).
  using KernelSink = std::function<void(rte_mbuf* m, dp::PortIdx port)>;

  explicit PuntHandler(Setup setup) : setup_(std::move(setup)) {}
  ~PuntHandler();

  void set_dns_answerer(DnsAnswerer f) { dns_ = std::move(f); }
  // The kernel twins, and which ports (by PortIdx) have one: their punts
  // go to `f`, and a copy of each ARP reply on such a port, so that the
  // kernel learns its neighbours too.
  void set_kernel_sink(KernelSink f, std::vector<uint8_t> twins) {
    kernel_ = std::move(f);
    kernel_twins_ = std::move(twins);
  }
  // The kernel asked who has `ip` (KernelTwins): the reply is solicited,
  // and teaches the dataplane's table as well as the kernel's.
  void note_asked(dp::Ip4 ip, uint64_t now_ms) {
    if (asked_.size() < kMaxAsked || asked_.count(ip.be) != 0) asked_[ip.be] = now_ms;
  }

  // The config's static neighbours: ARP never changes them.  One that was
  // static and is no longer is forgotten from the neighbour table (nothing
  // else would: it was never learnt, so it is never aged), and resolved
  // afresh when next needed.  The caller has set() the new ones.
  void set_static_neighbors(const std::vector<dp::Ip4>& ips);
  bool is_static(dp::Ip4 ip) const { return static_.count(ip.be) != 0; }
  // The same for IPv6: neighbour discovery never changes them.
  void set_static_neighbors6(const std::vector<dp::Ip6>& ips);

  // Drains the punt ring; returns the number of packets handled.
  unsigned poll(const dp::Snapshot& snap, uint64_t now_ms);

  // Sends waiting packets whose neighbour is now known (static entries
  // added by a reload), retries ARP, and drops what waited too long.
  void tick(const dp::Snapshot& snap, uint64_t now_ms);

  // Tells each port's link that the port's addresses are at its MAC: an
  // ARP Announcement (RFC 5227 §2.3: a request whose sender and target
  // are the address) and, for an IPv6 address, an unsolicited Neighbor
  // Advertisement with Override to all nodes (RFC 4861 §7.2.6).  Sent at
  // start (twice, 2 s apart, RFC 5227's ANNOUNCE_NUM and _INTERVAL), so
  // that hosts and routers that knew another MAC for these addresses (a
  // replaced appliance or NIC) update at once, not when their cache
  // times out.
  void announce_addresses(const dp::Snapshot& snap);

  // Sends one frame on the control thread's TX queue of `port`.
  void transmit(rte_mbuf* m, dp::PortIdx port);

  const dp::WorkerCounters& counters() const noexcept { return counters_; }
  size_t waiting() const noexcept { return waiting_count_; }

 private:
  struct Waiting {
    rte_mbuf* m;
    dp::PortIdx port;
    uint64_t since_ms;
  };
  struct Learnt {
    uint64_t stale_at_ms = 0;
    uint64_t last_probe_ms = 0;
    uint32_t probes = 0;
    dp::PortIdx port{};
  };
  struct Hop {
    std::deque<Waiting> packets;
    dp::PortIdx port{};
  };

  void on_arp(rte_mbuf* m, const dp::Snapshot& snap, uint64_t now_ms);
  // IPv6 neighbour discovery (punt_handler_ndp.cpp, issue 11): the same
  // resolution and aging as ARP's, with neighbour solicitations and
  // advertisements (RFC 4861 §7.2, §7.3).
  void on_ndp(rte_mbuf* m, const dp::Snapshot& snap, uint64_t now_ms);
  void on_unresolved6(rte_mbuf* m, const dp::Snapshot& snap, uint64_t now_ms);
  // To the solicited-node group, or unicast to `known` (a probe of a
  // stale entry).
  void send_solicitation(const dp::Snapshot& snap, const dp::Ip6& target, dp::PortIdx port, uint64_t now_ms,
                         const dp::MacAddr* known = nullptr);
  void age_neighbors6(const dp::Snapshot& snap, uint64_t now_ms);
  void send_unsolicited_advertisement(const dp::PortAddress& own, dp::PortIdx port);
  void send_neighbor_discovery(const dp::PortAddress& own, dp::PortIdx port, uint8_t type, uint8_t flags,
                               const dp::Ip6& target, uint8_t option, const dp::Ip6& to, const dp::MacAddr& to_mac);
  void send_arp(const dp::PortAddress& own, dp::PortIdx port, const dp::MacAddr& to_mac, dp::Ip4 target);
  void flush6(const dp::Ip6& hop, const dp::MacAddr& mac, const dp::Snapshot& snap);
  void on_unresolved(rte_mbuf* m, const dp::Snapshot& snap, uint64_t now_ms);
  // Broadcast, or unicast to `known` (a probe of a stale entry).
  void send_arp_request(const dp::Snapshot& snap, dp::Ip4 target, dp::PortIdx port, uint64_t now_ms,
                        const dp::MacAddr* known = nullptr);
  // A learnt entry confirmed reachable now: stale again after
  // 0.5x..1.5x kReachableMs, fixed per address by `hash`.
  Learnt confirmed_at(uint32_t hash, uint16_t port, uint64_t now_ms) const;
  void age_neighbors(const dp::Snapshot& snap, uint64_t now_ms);
  void flush(dp::Ip4 hop, const dp::MacAddr& mac, const dp::Snapshot& snap);
  // Whether a request for `key` is due at `now_ms` (kArpRetryMs, kMaxAsked).
  template <class Asked, class Key>
  static bool request_due(const Asked& asked, const Key& key, uint64_t now_ms);
  // Queues a punted packet for `key` (or drops it: the wait caps), and
  // asks for `key` if a request is due.
  template <class Asked, class Hops, class Key, class Ask>
  void wait_for(Asked& asked, Hops& hops, const Key& key, rte_mbuf* m, dp::PortIdx port, Ask ask, uint64_t now_ms);
  template <class Asked, class Hops, class AddrOf, class Find, class Flush, class Ask>
  void serve_waiting(Asked& asked, Hops& hops, AddrOf addr_of, Find find, Flush flush, Ask ask, uint64_t now_ms);
  void send_resolved(rte_mbuf* m, dp::PortIdx port, const dp::MacAddr& mac, const dp::Snapshot& snap);
  void drop(rte_mbuf* m, dp::DropReason why);
  void copy_to_kernel(const rte_mbuf* m, uint16_t port);

  Setup setup_;
  DnsAnswerer dns_;
  KernelSink kernel_;
  std::vector<uint8_t> kernel_twins_;  // PortIdx -> has a twin
  std::unordered_map<uint32_t, Hop> hops_;  // next hop (network order) -> waiting
  std::unordered_map<uint32_t, uint64_t> asked_;  // address -> when we last asked for it
  std::unordered_set<uint32_t> static_;           // addresses ARP never changes
  std::unordered_map<uint32_t, Learnt> learnt_;   // learnt entries and their age
  std::map<dp::Ip6, Hop> hops6_;                  // IPv6 next hop -> waiting
  std::map<dp::Ip6, uint64_t> asked6_;            // IPv6 address -> when we last solicited it
  std::set<dp::Ip6> static6_;
  std::map<dp::Ip6, Learnt> learnt6_;             // learnt IPv6 entries and their age
  uint64_t last_aging_ms_ = 0;
  uint64_t table_full_logged_ = 0;
  size_t waiting_count_ = 0;
  dp::WorkerCounters counters_;
};

// Templates shared by both families' files (punt_handler.cpp, _ndp.cpp).
template <class Asked, class Key>
bool PuntHandler::request_due(const Asked& asked, const Key& key, uint64_t now_ms) {
  const auto it = asked.find(key);
  if (it != asked.end()) return now_ms - it->second >= kArpRetryMs;
  return asked.size() < kMaxAsked;
}

// The wait caps (kMaxWaitingPerHop, kMaxWaiting) bound the packets held;
// the request's pace is the address's own (request_due), so a full cap
// neither stops nor speeds the requests.  A hop exists only while packets
// wait for it.
template <class Asked, class Hops, class Key, class Ask>
void PuntHandler::wait_for(Asked& asked, Hops& hops, const Key& key, rte_mbuf* m, dp::PortIdx port, Ask ask,
                           uint64_t now_ms) {
  auto it = hops.find(key);
  const size_t held = it != hops.end() ? it->second.packets.size() : 0;
  if (held >= kMaxWaitingPerHop || waiting_count_ >= kMaxWaiting) {
    drop(m, dp::DropReason::kNeighborUnresolved);
  } else {
    Hop& hop = it != hops.end() ? it->second : hops[key];
    hop.port = port;
    hop.packets.push_back(Waiting{m, port, now_ms});
    ++waiting_count_;
  }
  if (request_due(asked, key, now_ms)) ask(key, port);
}

}  // namespace podgate::ctl
