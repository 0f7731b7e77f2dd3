// A poll-mode worker: one lcore, its own flow table, counters and TX
// buffers; reads the current Snapshot and the shared NeighborTable; never
// locks, never allocates after construction.
//
// Both directions of a connection are handled by the worker that owns its
// flow entry (architecture decision 4): the owner is the RSS hash of the
// client's address and port (source on the way in, destination on the way
// back) through a redirection table (dataplane/ownership.hpp).  A port
// whose NIC hashes the same way delivers every packet to its owner; a
// packet that arrives on another worker's queue is passed to its owner
// through the owner's inbound "handoff" ring, one burst per owner.  This
// works for any number of workers on any queue layout, including
// single-queue virtual devices.
//
// The burst loop looks the flow up first (architecture decision 11): an
// established packet is parsed once into its flow key, its index buckets and
// then its flow record are prefetched across the burst, and a hit is
// rewritten and sent with no classification.  Only a miss asks the snapshot
// which service, VIP or own address the packet is for.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include <rte_epoll.h>
#include <rte_ethdev.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "dataplane/doorbell.hpp"
#include "dataplane/flow_packet.hpp"
#include "dataplane/flow_query.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/fragment_table.hpp"
#include "dataplane/neighbor_table.hpp"
#include "dataplane/packet6.hpp"
#include "dataplane/ownership.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/punt.hpp"
#include "dataplane/snapshot.hpp"
#include "dataplane/token_bucket.hpp"
#include "dataplane/worker_counters.hpp"

namespace podgate::dp {

struct RxQueue {
  uint16_t port_id;  // DPDK port id
  uint16_t queue;
  // Poll only while the link is up.  For net_memif: DPDK 22.11's memif
  // server marks the link down on a peer's disconnect and then unmaps the
  // shared rings, with nothing to stop a worker inside rx_burst reading
  // them (a worker crashed in eth_memif_rx reading an unmapped ring).
  // Checking the link before each burst shrinks that window from the
  // whole poll loop to one rx_burst; the link goes down tens of
  // microseconds before the rings go.
  bool only_while_up = false;
  // Which address of a TCP/UDP packet on this queue is the client's: the
  // source on the side clients send from, the destination on the Pods'
  // side.  The owner is judged by it before any lookup; a wrong guess
  // (a one-armed port) only costs one more handoff, since the owner that
  // does not find the flow classifies the packet and hands it on.
  bool client_is_destination = false;
  // IPv4 TCP/UDP packets reach the port's queues by the client's fields,
  // with the workers' key and redirection table (the port's own RSS,
  // PortInfo::client_rss, or a peer that steers, PortConfig::
  // steered_by_peer; control/queue_steering.hpp), and this is the queue of
  // this worker's id: such a packet here is this worker's, looked up with
  // no hash of its own to judge the owner.  Should a device put one on
  // another queue, it costs that packet a lookup that misses and a handoff
  // from classify(), never a wrong answer: only a flow's owner pins it.
  bool client_rss = false;
  // The same for IPv6 TCP/UDP packets (PortInfo::client_rss6, or a peer
  // that steers); without it they are judged as on any queue.
  bool client_rss6 = false;
  // With rx_interrupts, a descriptor readable while packets wait, that a
  // sleeping worker watches level-triggered (worker_sleep.cpp): net_tap's
  // queue descriptor.  -1: the queue's RX interrupt, through DPDK.
  int level_fd = -1;
};

// Everything a worker is given at start; owned by whoever built it.
struct WorkerSetup {
  uint32_t id = 0;     // 0..count-1; also its RCU thread id and TX queue
  uint32_t count = 1;  // number of workers
  uint32_t reta_size = 128;  // Ownership's redirection table (the ports' RSS)
  std::vector<RxQueue> rx_queues;
  std::vector<uint16_t> port_ids;       // PortIdx -> DPDK port id
  std::vector<uint16_t> port_mtus;      // PortIdx -> MTU (0 or absent: 1500)
  // The exception path (issue 10): PortIdx -> whether the port has a kernel
  // twin.  Packets for such a port's own address that the dataplane does
  // not answer itself go up to the twin, at most kernel_per_s a second
  // from this worker (its share of the twins' rate).
  std::vector<uint8_t> kernel_twins;
  uint32_t kernel_per_s = 0;
  rte_ring* snapshot_ring = nullptr;    // control -> this worker, SPSC
  std::vector<rte_ring*> handoff_rings; // inbound ring of every worker
  rte_ring* punt_ring = nullptr;        // workers -> control, MPSC
  Doorbell* doorbell = nullptr;         // rung after a poll that punted; null: none
  // [dataplane] rx_interrupts (worker_sleep.cpp): every worker's own
  // doorbell, by id, set for a worker when every RX queue it polls has an
  // RX interrupt; an idle worker then sleeps until one of them or its
  // doorbell wakes it, and another worker rings it after handing it
  // packets.  Null: that worker pauses or sleeps idle_sleep_us instead.
  // Empty when none sleeps.
  std::vector<Doorbell*> worker_wakes;
  rte_rcu_qsbr* qsbr = nullptr;
  const NeighborTable* neighbors = nullptr;
  const NeighborTable6* neighbors6 = nullptr;  // IPv6 next hops (issue 11)
  uint32_t flow_capacity = 65536;
  uint32_t flow_capacity6 = 16384;      // IPv6 connections (FlowTable6)
  uint32_t idle_sleep_us = 0;           // run(): sleep when idle (0: spin)
  FlowTimeouts timeouts{};
  const Snapshot* snapshot = nullptr;   // the first snapshot
};

// The Maglev flow hash of a connection (RFC 6438-style 5-tuple hash), or of
// the client address alone for ClientIP session affinity.  Stable across
// workers and appliances: CRC32-C, computed in hardware when available.
inline uint32_t flow_hash(Ip4 src, Ip4 dst, rte_be16_t sport, rte_be16_t dport, Proto proto,
                          bool client_ip_only) noexcept {
  uint32_t h = crc32c_u32(0x1234567, src.be);
  if (client_ip_only) return h;
  h = crc32c_u32(h, dst.be);
  h = crc32c_u32(h, uint32_t{sport} << 16 | dport);
  return crc32c_u8(h, static_cast<uint8_t>(proto));
}
inline uint32_t flow_hash(const ParsedPacket& p, bool client_ip_only) noexcept {
  return flow_hash(p.src(), p.dst(), p.sport(), p.dport(), p.proto(), client_ip_only);
}
// The same over IPv6 addresses (issue 11).
inline uint32_t flow_hash(const Ip6& src, const Ip6& dst, rte_be16_t sport, rte_be16_t dport, Proto proto,
                          bool client_ip_only) noexcept {
  uint32_t h = crc_ip6(src, 0x1234567);
  if (client_ip_only) return h;
  h = crc_ip6(dst, h);
  h = crc32c_u32(h, uint32_t{sport} << 16 | dport);
  return crc32c_u8(h, static_cast<uint8_t>(proto));
}

// The types of one address family's forwarding (issue 11): the burst loop
// and the established path are written once, as templates on the family.
template <Family F>
struct FamilyTypes;
template <>
struct FamilyTypes<Family::kIpv4> {
  using Addr = Ip4;
  using Key = FlowKey4;
  using Flow = dp::Flow;
  using Table = FlowTable;
  using Backend = dp::Backend;
  using Service = ServiceData;
  using Header = rte_ipv4_hdr;
  using Parsed = ParsedPacket;
  using Fragments = FragmentTable;
};
template <>
struct FamilyTypes<Family::kIpv6> {
  using Addr = Ip6;
  using Key = FlowKey6;
  using Flow = Flow6;
  using Table = FlowTable6;
  using Backend = Backend6;
  using Service = ServiceData6;
  using Header = rte_ipv6_hdr;
  using Parsed = ParsedPacket6;
  using Fragments = FragmentTable6;
};

class Worker : public DpObject {
 public:
  static constexpr uint16_t kBurst = 32;
  // ARP and NDP advertisements go up to be learnt from at most this fast,
  // a worker (punt_to_learn): far below what the control thread drains (512
  // punts a turn), far above what resolving a few thousand Pods at once needs.
  static constexpr uint32_t kLearnPerSecond = 20'000;
  // Packets for a next hop whose MAC is unknown go up to wait for it at
  // most this fast, a worker (punt_unresolved): the control thread keeps
  // only 16 a neighbour anyway, and a line-rate stream to a forgotten
  // gateway must not fill the punt ring that ARP answers and DNS queries
  // need.  Resolving thousands of new Pods at once stays well within it.
  static constexpr uint32_t kUnresolvedPerSecond = 10'000;

  explicit Worker(WorkerSetup setup);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The lcore's loop: polls until `stop` is set.
  void run(const std::atomic<bool>& stop) noexcept;

  // One iteration of the loop (tests drive the worker with this).  The
  // caller must have put the worker online in QSBR on this thread.
  void poll_once() noexcept;

  const WorkerCounters& counters() const noexcept { return counters_; }
  // Per-endpoint traffic, by stats slot (kStatsSlots of them).
  const TrafficCounters& traffic(uint16_t slot) const noexcept { return traffic_[slot]; }
  uint32_t id() const noexcept { return setup_.id; }
  const Ownership& ownership() const noexcept { return owners_; }
  const FlowTable& flows() const noexcept { return flows_; }  // owner or stopped
  const FlowTable6& flows6() const noexcept { return flows6_; }  // owner or stopped
  // The `flows` command's mailbox (control thread side: ask/answered/collect).
  FlowQuery& flow_query() noexcept { return query_; }
  // What run() does when idle (Worker::run()), known once it has started:
  // "spins", "naps" (idle_sleep_us) or "sleeps" (rx_interrupts, its
  // sources watched); "starting" before.  Any thread.
  const char* idle_mode() const noexcept { return idle_mode_.load(std::memory_order_relaxed); }
  uint64_t snapshot_generation() const noexcept {
    return snapshot_->generation;
  }

 private:
  // A new connection's service and Pod, chosen in the second pass over a
  // burst for a key no bucket holds (prefetch_new_flow()), with its reverse
  // key's buckets: the third pass pins the flow with them.  The same
  // snapshot serves the whole burst, so the choice stands.
  template <Family F>
  struct NewFlowPick {
    const typename FamilyTypes<F>::Service* svc;  // find_service()'s answer for the key (null: none)
    uint16_t backend;   // svc->ready[backend], Maglev's choice; set when svc has one ready
    FlowProbe reverse;  // the reverse key's, to that Pod; set with `backend`
  };
  // What the passes over a burst learn of each packet.
  struct Lane {
    enum Path : uint8_t {
      kFlow,       // parse_flow_packet() took it, and it is this worker's
      kFlow6,      // parse_flow_packet6() took it, and it is this worker's
      kOther,      // anything else: parsed in full and classified
    };
    FlowKey4 key;      // kFlow: the packet's own 5-tuple
    FlowKey6 key6;     // kFlow6: the same, IPv6
    FlowProbe probe;   // kFlow, kFlow6: where the key may be in its table
    uint32_t candidate;  // kFlow, kFlow6: the second pass's tag match (prefetch_flow(), prefetch_second())
    NewFlowPick<Family::kIpv4> pick;   // kFlow with no candidate: the second pass's choice
    NewFlowPick<Family::kIpv6> pick6;  // kFlow6 with no candidate: the same
    uint8_t tcp_flags;
    Path path;

    template <Family F>
    const typename FamilyTypes<F>::Key& key_of() const noexcept {
      if constexpr (F == Family::kIpv4) {
        return key;
      } else {
        return key6;
      }
    }
    template <Family F>
    NewFlowPick<F>& pick_of() noexcept {
      if constexpr (F == Family::kIpv4) {
        return pick;
      } else {
        return pick6;
      }
    }
    template <Family F>
    const NewFlowPick<F>& pick_of() const noexcept {
      if constexpr (F == Family::kIpv4) {
        return pick;
      } else {
        return pick6;
      }
    }
  };
  // Packets for other workers, sent as one burst per owner at the end of
  // each burst (kBurst fits, as in TxBatch).
  struct Handoff {
    rte_mbuf* pkts[kBurst];
    uint16_t n = 0;
  };
  // How to send to one destination address: the port and the 12 bytes of
  // MAC rewrite (next hop's, then the port's own), one copy per packet
  // instead of a route scan and a neighbour lookup.  Valid while `epoch`
  // is adj_epoch_, which moves with the snapshot and the neighbour table.
  //
  // Two direct-mapped caches of them: by destination (a Pod, a client on a
  // connected subnet, or one beyond a router), and by router (the next
  // hop of a route with `via`).  Replies go to clients, and a gateway
  // appliance's clients are many and almost all beyond one router: a
  // reply takes the entry of its client's route (route_adjacency_, one
  // per route) where the client's /16 (IPv6: RoutedTrie6) names it
  // (forward_to_client()); elsewhere, a destination not in the first
  // cache costs a route scan and a copy of its router's entry, not a
  // neighbour lookup, and never evicts a directly connected destination
  // (a Pod) from the first.
  struct Adjacency {
    uint32_t ip = 0;  // network order: the destination, or the router
    uint32_t epoch = 0;
    uint8_t macs[12];
    uint16_t port_idx = 0;
    bool routed = false;  // the destination is beyond a router: these are its MACs
  };
  static constexpr uint32_t kAdjacencySlots = 1024;  // direct-mapped, 24 KiB
  static constexpr uint32_t kRouterSlots = 64;       // direct-mapped, 1.5 KiB
  // The same for IPv6 destinations (issue 11).
  struct Adjacency6 {
    Ip6 ip;
    uint32_t epoch = 0;
    uint8_t macs[12];
    uint16_t port_idx = 0;
    bool routed = false;
  };
  // The entry to send by for `dst`, whose slot in the destination cache is
  // `slot` (filled unless it holds a directly connected destination and
  // `dst` is beyond a router); nullptr when the packet was dropped (no
  // route) or punted (next hop unresolved).
  const Adjacency6* resolve_adjacency6(rte_mbuf* m, const Ip6& dst, Adjacency6& slot) noexcept;
  // `adj` for `next_hop`, from the neighbour table (out of line, cold); nullptr,
  // the packet punted, when it has no entry.
  Adjacency6* fill_adjacency6(rte_mbuf* m, const Route6& route, const Ip6& next_hop, Adjacency6& adj) noexcept;
  // Packets for one port, sent with one tx_burst at the end of each burst.
  // kBurst fits: a packet in gives at most one out, but for a first
  // fragment, which releases the fragments that waited for it and flushes
  // the batches around them (handle_fragment()).
  struct TxBatch {
    rte_mbuf* pkts[kBurst];
    uint16_t n = 0;
  };

  void adopt_latest_snapshot() noexcept;
  // A burst received on `rx`, or handed off by another worker (null).
  void process_burst(rte_mbuf** pkts, uint16_t n, const RxQueue* rx) noexcept;
  // What the first pass kept of a burst (the packets no other worker
  // owns, first in `pkts` and the lanes), and how many of them are plain
  // IPv4 and IPv6 TCP/UDP packets (the rest: Lane::kOther).
  struct FirstPass {
    uint16_t kept;
    uint16_t ipv4;
    uint16_t ipv6;
  };
  template <bool kMayHandOff>
  FirstPass first_pass(rte_mbuf** pkts, uint16_t n, const RxQueue* rx, bool ipv4_mine, bool ipv6_mine) noexcept;
  template <Family F>
  typename FamilyTypes<F>::Table& table() noexcept {
    if constexpr (F == Family::kIpv4) {
      return flows_;
    } else {
      return flows6_;
    }
  }
  template <Family F>
  void process_flow_packet(rte_mbuf* m, const Lane& lane) noexcept;
  template <Family F>
  void process_flow_burst(rte_mbuf** pkts, uint16_t n) noexcept;
  // Whether this worker owns the connection a client's packet to a
  // service, with key `key`, belongs to (its source address and port).
  template <Family F>
  bool owns_connection(const typename FamilyTypes<F>::Key& key) const noexcept;
  // The second pass over a flow lane: prefetches its record, or, for a key
  // no bucket holds, chooses its Pod and prefetches its reverse key's
  // buckets.  Sets `second` when the key may be in its second bucket,
  // which it prefetched: prefetch_lane_second() then does the same with
  // that one.
  template <Family F>
  void prefetch_lane(Lane& lane, bool& second) noexcept;
  template <Family F>
  void prefetch_lane_second(Lane& lane) noexcept;
  void prefetch_second_buckets(uint16_t n) noexcept;
  template <Family F>
  void prefetch_new_flow(const typename FamilyTypes<F>::Key& key, NewFlowPick<F>& pick) noexcept;
  // Where a packet for process_other() comes from, which says what of it
  // is known already.
  enum class Arrival : uint8_t {
    kRx,          // a port: nothing (but what the NIC's flags say)
    kHandoff,     // another worker: its IPv4 header checksum was verified,
                  // and a fragment's FragmentMeta written for this trip
    kRevalidated, // this worker again (revalidate_failed()): its header was
                  // verified, but its FragmentMeta is whatever the mbuf held
                  // (only a hand-off writes it; PMDs do not clear it)
  };
  void process_other(rte_mbuf* m, Arrival from) noexcept;
  // A TCP or UDP packet whose flow is not known to be here: finds its
  // service or flow, and its owner.  `looked_up`: this worker's flow table
  // has no entry for it.  `pick`: the burst's second pass chose already.
  void classify(rte_mbuf* m, ParsedPacket& p, const FlowKey4& key, const FlowProbe& probe,
                bool looked_up, const NewFlowPick<Family::kIpv4>* pick = nullptr) noexcept;
  // A packet of a known connection, either family: `l4` is its TCP/UDP
  // header.
  template <Family F>
  void handle_flow(rte_mbuf* m, uint8_t* l4, uint8_t tcp_flags,
                   BasicFlowHit<typename FamilyTypes<F>::Flow> hit) noexcept;
  template <Family F>
  void revalidate_failed(rte_mbuf* m, typename FamilyTypes<F>::Flow& flow, bool reverse,
                         bool service_gone) noexcept;
  // A client's SYN on its closed connection's record: a new connection.
  template <Family F>
  void reopen(rte_mbuf* m, typename FamilyTypes<F>::Flow& flow) noexcept;
  // A new connection to `svc`, either family, whose headers are `ip` and
  // `l4`: its source checked, then its Pod (pass 2's `pick`, or Maglev's
  // now), its flow pinned, NAT, and on its way.
  template <Family F>
  void new_connection(rte_mbuf* m, typename FamilyTypes<F>::Header* ip, uint8_t* l4, uint8_t tcp_flags,
                      const typename FamilyTypes<F>::Service& svc, const typename FamilyTypes<F>::Key& key,
                      const FlowProbe& probe, const NewFlowPick<F>* pick) noexcept;
  // The connection's flow record, or null when the table is full (it is
  // then forwarded by Maglev alone).
  template <Family F>
  typename FamilyTypes<F>::Flow* pin_new_flow(rte_mbuf* m, const typename FamilyTypes<F>::Key& key, const FlowProbe& probe,
                    const typename FamilyTypes<F>::Addr& pod, rte_be16_t pod_port, uint16_t slot, FlowState state,
                    uint8_t tcp_flags, const FlowProbe* reverse = nullptr) noexcept;
  void handle_stateless_reply(rte_mbuf* m, ParsedPacket& p) noexcept;
  void handle_arp(rte_mbuf* m, ParsedPacket& p) noexcept;
  // Fragments of TCP and UDP, either family (worker_fragment.cpp,
  // fragment_table.hpp): the datagram's fragments meet at one worker (by
  // their fragment key), which learns the ports from the first and passes
  // each on to the connection's owner.  `meta_written`: it came by a
  // hand-off, whose sender wrote its FragmentMeta.
  template <Family F>
  void handle_fragment(rte_mbuf* m, typename FamilyTypes<F>::Parsed& p, bool meta_written) noexcept;
  template <Family F>
  void route_fragment(rte_mbuf* m, typename FamilyTypes<F>::Parsed& p, FragmentPart part, rte_be16_t sport,
                      rte_be16_t dport) noexcept;
  template <Family F>
  void forward_fragment(rte_mbuf* m, typename FamilyTypes<F>::Parsed& p, FragmentPart part, rte_be16_t sport,
                        rte_be16_t dport) noexcept;
  // Expired fragment contexts let go of, a few at a time, when due
  // (poll_once()).
  void sweep_fragments() noexcept;
  template <Family F>
  typename FamilyTypes<F>::Fragments& fragment_table() noexcept {
    if constexpr (F == Family::kIpv4) {
      return fragments_;
    } else {
      return fragments6_;
    }
  }
  void handle_icmp(rte_mbuf* m, ParsedPacket& p) noexcept;
  // An ICMP error about a NATed connection, either family
  // (worker_icmp_error.cpp): translated and sent on by its owner.
  template <Family F>
  void handle_icmp_error(rte_mbuf* m, typename FamilyTypes<F>::Parsed& p) noexcept;
  void drop_ttl_exceeded(rte_mbuf* m, const rte_ipv4_hdr* ip) noexcept;
  DropReason source_refused(Ip4 src) const noexcept;
  // Whether the packet fits the MTU of the port it leaves by for `dst`;
  // else it is dropped (see check_egress_mtu).  One compare when the frame
  // fits the smallest port MTU.
  bool fits_egress(rte_mbuf* m, const rte_ipv4_hdr* ip, Ip4 dst) noexcept {
    return rte_pktmbuf_pkt_len(m) <= min_frame_fits_ || check_egress_mtu(m, ip, dst);
  }
  bool check_egress_mtu(rte_mbuf* m, const rte_ipv4_hdr* ip, Ip4 dst) noexcept;
  uint16_t port_mtu(uint16_t port_idx) const noexcept;
  // One token of the ICMP error bucket (RFC 1812 §4.3.2.8, RFC 4443
  // §2.4(f)), shared by both families; false when it is empty.
  bool take_icmp_error_token() noexcept;

  // IPv6 (issue 11; worker6.cpp): the same stages for the other family.
  // Every IPv6 packet takes this path for now; the burst loop's lanes are
  // IPv4's.
  void process_ipv6(rte_mbuf* m, Arrival from) noexcept;
  void classify6(rte_mbuf* m, ParsedPacket6& p, const FlowKey6& key, const FlowProbe& probe,
                 bool looked_up, const NewFlowPick<Family::kIpv6>* pick = nullptr) noexcept;
  // handle_flow<kIpv6>, out of line for worker6.cpp (the template lives in worker.cpp).
  void handle_flow6(rte_mbuf* m, ParsedPacket6& p, FlowHit6 hit) noexcept;
  void handle_stateless_reply6(rte_mbuf* m, ParsedPacket6& p) noexcept;
  void handle_icmp6(rte_mbuf* m, ParsedPacket6& p) noexcept;
  void drop_hop_limit_exceeded(rte_mbuf* m, const rte_ipv6_hdr* ip) noexcept;
  // Drops `m` for `why` (no_service, no_endpoint) and tells its source the
  // port is unreachable, each family as a host would.
  void drop_port_unreachable(rte_mbuf* m, const rte_ipv4_hdr* ip, Ip4 src, DropReason why) noexcept;
  void drop_port_unreachable(rte_mbuf* m, const rte_ipv6_hdr* ip, const Ip6& src, DropReason why) noexcept;
  // Never about an ICMPv6 message: the callers see TCP and UDP only.
  void send_icmp6_error(const rte_mbuf* m, const rte_ipv6_hdr* ip, uint8_t type, uint8_t code,
                        uint32_t mtu) noexcept;
  // As fits_egress(): one compare when the frame fits the smallest port MTU.
  bool fits_egress6(rte_mbuf* m, const rte_ipv6_hdr* ip, const Ip6& dst) noexcept {
    return rte_pktmbuf_pkt_len(m) <= min_frame_fits_ || check_egress_mtu6(m, ip, dst);
  }
  bool check_egress_mtu6(rte_mbuf* m, const rte_ipv6_hdr* ip, const Ip6& dst) noexcept;
  void forward6(rte_mbuf* m, rte_ether_hdr* eth, const Ip6& dst) noexcept;
  // As forward_to_client(), for IPv6 (Snapshot::routed_trie6).
  void forward_to_client6(rte_mbuf* m, rte_ether_hdr* eth, const Ip6& dst) noexcept;
  DropReason source_refused6(const Ip6& src) const noexcept;
  // The names both families' templates use (handle_flow, new_connection,
  // the fragment path).
  DropReason source_refused(const Ip6& src) const noexcept { return source_refused6(src); }
  void drop_ttl_exceeded(rte_mbuf* m, const rte_ipv6_hdr* ip) noexcept { drop_hop_limit_exceeded(m, ip); }
  bool answers_for6(const rte_mbuf* m, const Ip6& ip) const noexcept;
  void send_icmp_error(const rte_mbuf* m, const rte_ipv4_hdr* ip, uint8_t type, uint8_t code,
                       uint16_t mtu) noexcept;
  void forward(rte_mbuf* m, rte_ether_hdr* eth, Ip4 dst) noexcept;
  // As forward(), for a packet to a client (a reply): by its /16's route
  // where that is one beyond a router (Snapshot::routed_by_16), else by
  // forward().
  void forward_to_client(rte_mbuf* m, rte_ether_hdr* eth, Ip4 dst) noexcept;
  // Sends by route r's entry (either family's route_adjacency_).
  template <class Adj>
  void send_by_route(rte_mbuf* m, rte_ether_hdr* eth, uint32_t r, Adj& entry) noexcept;
  // Route r's `entry` for this epoch, from the neighbour table; nullptr,
  // the packet punted, when the router has no entry.
  const Adjacency* fill_route_adjacency(rte_mbuf* m, uint32_t r, Adjacency& entry) noexcept;
  const Adjacency6* fill_route_adjacency(rte_mbuf* m, uint32_t r, Adjacency6& entry) noexcept;
  // As resolve_adjacency6() and fill_adjacency6(), for IPv4.
  const Adjacency* resolve_adjacency(rte_mbuf* m, Ip4 dst, Adjacency& slot) noexcept;
  Adjacency* fill_adjacency(rte_mbuf* m, const Route& route, Ip4 next_hop, Adjacency& adj) noexcept;
  void punt(rte_mbuf* m, PuntKind kind, PortIdx port, Ip4 next_hop) noexcept;
  void punt_to_learn(rte_mbuf* m, PuntKind kind) noexcept;
  // A packet waiting for its next hop's MAC (kUnresolved, kUnresolved6),
  // up to the control thread within kUnresolvedPerSecond; over it,
  // dropped as neighbor_unresolved.
  void punt_unresolved(rte_mbuf* m, PuntKind kind, PortIdx port, Ip4 next_hop) noexcept;
  // The kernel twin a packet for `dst` (a port's address, or the DNS VIP)
  // goes up to; none when that port has no twin or `dst` is not ours.
  std::optional<PortIdx> kernel_twin_for(const rte_mbuf* m, Ip4 dst) const noexcept;
  bool has_kernel_twin(uint16_t port_idx) const noexcept {
    return port_idx < setup_.kernel_twins.size() && setup_.kernel_twins[port_idx] != 0;
  }
  void to_kernel(rte_mbuf* m, PortIdx twin) noexcept;
  // The per-source limit on queries to the DNS VIP: false when `src` has
  // used [dns] rate_limit.  Asked at dns_owner(src) only.
  bool dns_query_allowed(Ip4 src) noexcept;
  static uint32_t dns_source_hash(Ip4 src) noexcept { return crc32c_u32(0x444e53, src.be); }
  // The worker holding `src`'s bucket: by the hash's high bits, as the
  // bucket is chosen by its low ones.
  uint32_t dns_owner(Ip4 src) const noexcept {
    return static_cast<uint32_t>((uint64_t{dns_source_hash(src)} * setup_.count) >> 32);
  }
  void hand_off(rte_mbuf* m, uint32_t owner) noexcept;
  void flush_handoffs() noexcept;
  void flush_tx() noexcept;
  void send(rte_mbuf* m, uint16_t port_idx) noexcept {  // PortIdx
    TxBatch& b = tx_[port_idx];
    b.pkts[b.n++] = m;
  }
  void send_back(rte_mbuf* m, ParsedPacket& p) noexcept;
  void drop(rte_mbuf* m, DropReason reason) noexcept;
  const PortAddress* rx_port_address(const rte_mbuf* m) const noexcept;
  bool answers_for(Ip4 ip) const noexcept;
  uint32_t now_ms() const noexcept;

  // The idle worker's sleep with `rx_interrupts` (worker_sleep.cpp).
  Doorbell* wake() const noexcept {  // this worker's doorbell; null: it does not sleep so
    return setup_.worker_wakes.empty() ? nullptr : setup_.worker_wakes[setup_.id];
  }
  bool watch_wake_sources() noexcept;    // on this thread's epoll; false: cannot
  void unwatch_wake_sources() noexcept;
  bool sleep_until_woken(const std::atomic<bool>& stop) noexcept;  // false: timed out
  bool has_input(const std::atomic<bool>& stop) const noexcept;

  WorkerSetup setup_;
  Ownership owners_;
  const Snapshot* snapshot_;
  const uint16_t* routed_trie6_ = nullptr;  // snapshot_'s RoutedTrie6 entries, if any (forward_to_client6())
  uint32_t gen_;  // snapshot_->generation, as flows record it
  FlowTable flows_;
  FlowTable6 flows6_;
  FragmentTable fragments_;
  FragmentTable6 fragments6_;
  WorkerCounters counters_;
  DpVector<TrafficCounters> traffic_;               // by stats slot
  FlowQuery query_;
  DpVector<TxBatch> tx_;                            // by PortIdx
  std::vector<uint16_t> port_index_;                // DPDK port id -> PortIdx
  DpVector<Handoff> handoffs_;                      // by owner worker
  DpVector<Adjacency> adjacency_;                   // kAdjacencySlots
  DpVector<Adjacency6> adjacency6_;                 // kAdjacencySlots
  DpVector<Adjacency> router_adjacency_;            // kRouterSlots
  DpVector<Adjacency6> router_adjacency6_;          // kRouterSlots
  DpVector<Adjacency> route_adjacency_;             // by route index + 1 (forward_to_client())
  DpVector<Adjacency6> route_adjacency6_;           // by route index + 1 (forward_to_client6())
  uint32_t adj_epoch_ = 1;                          // entries start invalid (epoch 0)
  uint32_t min_frame_fits_ = 0;   // the longest frame every port's MTU takes
  uint32_t icmp_tokens_ = 100;    // send_icmp_error's token bucket
  uint32_t icmp_tokens_at_ = 0;
  TokenBucket kernel_bucket_;      // to_kernel's
  TokenBucket learn_bucket_;       // punt_to_learn's
  TokenBucket unresolved_bucket_;  // punt_unresolved's
  // dns_query_allowed's buckets, by a hash of the source address: sources
  // that share a bucket share its rate (1024 of them: rare among a
  // cluster's clients, and a flood from many addresses fills all evenly).
  static constexpr uint32_t kDnsBuckets = 1024;
  DpVector<TokenBucket> dns_buckets_;
  uint32_t neighbors_version_ = 0;
  uint32_t neighbors6_version_ = 0;
  uint32_t half_open_per_poll_;  // half-open flows freed per loop, at most
  uint64_t tsc_per_ms_;
  uint32_t now_ = 0;
  uint32_t fragments_sweep_due_ = 0;  // now_ at which sweep_fragments() runs next
  uint32_t idle_polls_ = 0;  // consecutive polls that received nothing (run())
  bool punted_ = false;      // this poll punted a packet: ring the doorbell at its end
  std::atomic<const char*> idle_mode_{"starting"};
  rte_epoll_event wake_event_{};  // wake()'s entry in this thread's epoll (DPDK keeps a pointer)
  std::vector<rte_epoll_event> level_events_;  // by RX queue: those with a level_fd
  rte_mbuf* burst_[kBurst];
  // What process_burst()'s first pass learnt of each packet.  A member, not
  // a local: its keys' zero initialisation would cost every burst ~13
  // instructions a packet, and the first pass writes every field it reads.
  Lane lanes_[kBurst];
};

// Sources no connection may come from (issue 15), checked before a new
// flow is made; kCount when the source is acceptable.  RFC 1812 §5.3.7:
// "this network" (0/8), loopback (127/8), multicast and the reserved
// class E (224/3, which holds the limited broadcast), are martians.  And
// podgate's own addresses (a VIP, the DNS VIP, a port address) are never a
// client's: a packet claiming one is spoofed, and its replies would loop
// back into podgate.  A Pod may be a client (Pod-to-Service traffic is
// ordinary in a cluster), so Pod addresses are not refused.
// Inline, in the header: the new-flow path and the fragment path
// (worker_fragment.cpp) both ask it.
inline DropReason Worker::source_refused(Ip4 src) const noexcept {
  if (src.is_martian_source()) return DropReason::kMartianSource;
  const Snapshot& snap = *snapshot_;
  if (snap.may_be_own(src) && (snap.is_vip(src) || src == snap.dns_vip || snap.own_address(src) != nullptr)) {
    return DropReason::kSourceIsOurs;
  }
  return DropReason::kCount;
}

// One copy of the 12 bytes of MAC rewrite from a direct-mapped cache of
// destinations (valid for the epoch of the snapshot and the neighbour
// table), then the port's TX batch.  Inline: the established path's last
// stage, also used by the fragment path (worker_fragment.cpp).
[[gnu::always_inline]] inline void Worker::forward(rte_mbuf* m, rte_ether_hdr* eth, Ip4 dst) noexcept {
  Adjacency& slot = adjacency_[(dst.be * 0x9e3779b1u) >> (32 - 10)];
  static_assert(kAdjacencySlots == 1u << 10);
  const Adjacency* adj = &slot;
  if (slot.ip != dst.be || slot.epoch != adj_epoch_) [[unlikely]] {
    adj = resolve_adjacency(m, dst, slot);
    if (adj == nullptr) return;
  }
  std::memcpy(eth, adj->macs, sizeof adj->macs);  // destination MAC, then source MAC
  send(m, adj->port_idx);
}

// A client's /16 names its route when all of it takes one beyond a router:
// then the router's entry, one per route, serves every client there, and a
// reply to any of a million clients finds it with one load and one compare,
// not a miss in the destination cache and a route scan.  Elsewhere (a
// client on a connected subnet, or in a /16 a longer route splits) the
// destination cache, as forward().
[[gnu::always_inline]] inline void Worker::forward_to_client(rte_mbuf* m, rte_ether_hdr* eth, Ip4 dst) noexcept {
  const uint32_t r = snapshot_->routed_route_plus_one(dst);
  if (r == 0) {
    forward(m, eth, dst);
    return;
  }
  send_by_route(m, eth, r, route_adjacency_[r]);
}

// The same for IPv6 clients, whose routes RoutedTrie6 finds (the
// worker keeps its entries' pointer: one load less a packet).  Out of
// line: inline, its walk cost every established IPv6 packet 8
// instructions (the burst loop's registers).
[[gnu::noinline]] inline void Worker::forward_to_client6(rte_mbuf* m, rte_ether_hdr* eth, const Ip6& dst) noexcept {
  const uint32_t r = routed_trie6_ != nullptr ? RoutedTrie6::find(routed_trie6_, dst) : 0;
  if (r == 0) {
    forward6(m, eth, dst);
    return;
  }
  send_by_route(m, eth, r, route_adjacency6_[r]);
}

// By `entry`, route r's in its family's route_adjacency_, filled for this
// epoch on first use (either family).
template <class Adj>
[[gnu::always_inline]] inline void Worker::send_by_route(rte_mbuf* m, rte_ether_hdr* eth, uint32_t r,
                                                         Adj& entry) noexcept {
  const Adj* adj = &entry;
  if (entry.epoch != adj_epoch_) [[unlikely]] {
    adj = fill_route_adjacency(m, r, entry);
    if (adj == nullptr) return;
  }
  std::memcpy(eth, adj->macs, sizeof adj->macs);  // destination MAC, then source MAC
  send(m, adj->port_idx);
}

// As forward(), for IPv6 destinations: valid for the epoch of the snapshot
// and both neighbour tables.
[[gnu::always_inline]] inline void Worker::forward6(rte_mbuf* m, rte_ether_hdr* eth, const Ip6& dst) noexcept {
  const uint64_t fold = dst.word(0) ^ dst.word(1);
  Adjacency6& slot = adjacency6_[static_cast<uint32_t>((fold * 0x9e37'79b9'7f4a'7c15u) >> 54)];
  static_assert(kAdjacencySlots == 1u << 10);
  const Adjacency6* adj = &slot;
  if (!(slot.ip == dst) || slot.epoch != adj_epoch_) [[unlikely]] {
    adj = resolve_adjacency6(m, dst, slot);
    if (adj == nullptr) return;
  }
  std::memcpy(eth, adj->macs, sizeof adj->macs);  // destination MAC, then source MAC
  send(m, adj->port_idx);
}

}  // namespace podgate::dp
