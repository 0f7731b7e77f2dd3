#include "dataplane/worker.hpp"

#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_prefetch.h>

#include "dataplane/maglev.hpp"
#include "dataplane/nat.hpp"
#include "dataplane/nat6.hpp"

// The established path is one function: its stages are inlined into the
// burst loop (no call overhead per packet), while the paths taken only on
// a miss stay out of line so that the loop stays small (style habit 4).
#define PODGATE_HOT [[gnu::always_inline]] inline
#define PODGATE_OUT_OF_LINE [[gnu::noinline]]

namespace podgate::dp {

namespace {

// Flow records examined for expiry per loop: a full sweep of a 1M-flow
// table takes 62,500 loops, under a second when busy.
constexpr uint32_t kExpiryFlowsPerPoll = 16;
constexpr uint16_t kNoPortIndex = 0xffff;

// The flow-table key of a TCP or UDP packet: its own 5-tuple, in either
// direction (FlowHit::reverse tells them apart).
FlowKey4 flow_key(const ParsedPacket& p) noexcept {
  return FlowKey4{p.src(), p.dst(), p.sport(), p.dport(), p.proto()};
}

// The port's link state as its driver last set it (no wait).
bool link_up(uint16_t port_id) noexcept {
  rte_eth_link link{};
  return rte_eth_link_get_nowait(port_id, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
}

}  // namespace

Worker::Worker(WorkerSetup setup)
    : setup_(std::move(setup)),
      owners_(setup_.count, setup_.reta_size),
      snapshot_(setup_.snapshot),
      gen_(setup_.snapshot != nullptr ? static_cast<uint32_t>(setup_.snapshot->generation) : 0),
      flows_(setup_.flow_capacity, setup_.timeouts),
      flows6_(std::max<uint32_t>(8, setup_.flow_capacity6), setup_.timeouts),
      traffic_(kStatsSlots),
      tx_(setup_.port_ids.size()),
      port_index_(RTE_MAX_ETHPORTS, kNoPortIndex),
      handoffs_(setup_.count),
      adjacency_(kAdjacencySlots),
      adjacency6_(kAdjacencySlots),
      router_adjacency_(kRouterSlots),
      router_adjacency6_(kRouterSlots),
      route_adjacency_(RoutedBy16::kMaxRoutes + 1),
      route_adjacency6_(RoutedTrie6::kMaxRoutes + 1),
      dns_buckets_(kDnsBuckets),
      // Twice what one loop can pin (a burst from each RX queue, one
      // handed off), so the half-open queue keeps up with any SYN rate.
      half_open_per_poll_(2u * kBurst * static_cast<uint32_t>(setup_.rx_queues.size() + 1)),
      tsc_per_ms_(rte_get_tsc_hz() / 1000) {
  flows_.count_ends_in(traffic_.data());
  flows6_.count_ends_in(traffic_.data());
  if (snapshot_ != nullptr && snapshot_->routed_trie6) routed_trie6_ = snapshot_->routed_trie6->entries.data();
  min_frame_fits_ = UINT32_MAX;
  for (size_t i = 0; i < setup_.port_ids.size(); ++i) {
    port_index_[setup_.port_ids[i]] = static_cast<uint16_t>(i);
    min_frame_fits_ = std::min<uint32_t>(min_frame_fits_, kFlowL3Offset + port_mtu(static_cast<uint16_t>(i)));
  }
}

Worker::~Worker() = default;

// An idle worker backs off as l3fwd-power does.  After kIdlePolls polls
// that received nothing, before each next poll until a packet arrives:
// - kIdlePauses spin-wait hints (a few microseconds: the default, for a
//   core of its own);
// - or, with idle_sleep_us, a nap that long (several appliances or other
//   work sharing cores: an idle worker then gives its core away, and a
//   packet waits at most that long);
// - and with `rx_interrupts` (wake()), once it has been idle for
//   kIdleBeforeSleepMs, a sleep until an RX interrupt of its queues, its
//   doorbell, or 10 ms (sleep_until_woken(), worker_sleep.cpp): an idle
//   worker costs no CPU, and a packet wakes it.  Not at once: waking a
//   sleeping core costs each packet that finds it asleep tens of
//   microseconds (a C-state's exit), hundreds on a virtual machine, so
//   traffic with short gaps is served by the pauses or naps.
// Each frees the core's pipeline for a hyperthread sibling, and keeps an
// idle worker out of rx_burst most of the time, where DPDK 22.11's
// net_memif can read a ring its peer's disconnect is unmapping
// (RxQueue::only_while_up).
void Worker::run(const std::atomic<bool>& stop) noexcept {
  constexpr uint32_t kIdlePolls = 1024;
  constexpr uint32_t kIdlePauses = 64;
  constexpr uint32_t kIdleBeforeSleepMs = 10;
  rte_rcu_qsbr_thread_online(setup_.qsbr, setup_.id);
  const bool sleeps = wake() != nullptr && watch_wake_sources();
  idle_mode_.store(sleeps ? "sleeps" : setup_.idle_sleep_us != 0 ? "naps" : "spins", std::memory_order_relaxed);
  uint32_t idle_since = 0;  // now_ at the first empty poll
  while (!stop.load(std::memory_order_relaxed)) {
    const uint64_t before = counters_.rx_packets.get() + counters_.handoff_in.get();
    poll_once();
    if (counters_.rx_packets.get() + counters_.handoff_in.get() != before) {
      idle_polls_ = 0;
    } else if (++idle_polls_ == 1) {
      idle_since = now_;
    } else if (idle_polls_ > kIdlePolls) {
      // Still idle after a sleep that timed out: the next empty poll
      // sleeps again.  Woken, it polls as after any packet, and sleeps
      // again after 10 ms without one.
      if (sleeps && now_ - idle_since >= kIdleBeforeSleepMs) {
        if (sleep_until_woken(stop)) idle_polls_ = 0;
      } else if (setup_.idle_sleep_us != 0) {
        rte_delay_us_sleep(setup_.idle_sleep_us);
      } else {
        for (uint32_t i = 0; i < kIdlePauses; ++i) rte_pause();
      }
    }
  }
  if (sleeps) unwatch_wake_sources();
  rte_rcu_qsbr_thread_offline(setup_.qsbr, setup_.id);
}

void Worker::poll_once() noexcept {
  // Invariant for RCU: no snapshot pointer is held across this point, and
  // the ring is drained right after it, so once every worker has reported
  // quiescence after a publication, none still holds the previous snapshot.
  rte_rcu_qsbr_quiescent(setup_.qsbr, setup_.id);
  adopt_latest_snapshot();
  if (const uint32_t v = setup_.neighbors->version(); v != neighbors_version_) {
    neighbors_version_ = v;
    ++adj_epoch_;
  }
  if (setup_.neighbors6 != nullptr) {
    if (const uint32_t v = setup_.neighbors6->version(); v != neighbors6_version_) {
      neighbors6_version_ = v;
      ++adj_epoch_;
    }
  }
  now_ = now_ms();

  for (const RxQueue& q : setup_.rx_queues) {
    if (q.only_while_up && !link_up(q.port_id)) continue;
    uint16_t n = rte_eth_rx_burst(q.port_id, q.queue, burst_, kBurst);
    if (n == 0) continue;
    counters_.rx_packets.add(n);
    process_burst(burst_, n, &q);
  }
  if (setup_.count > 1) {
    unsigned n = rte_ring_sc_dequeue_burst(setup_.handoff_rings[setup_.id],
                                           reinterpret_cast<void**>(burst_), kBurst, nullptr);
    if (n != 0) {
      counters_.handoff_in.add(n);
      process_burst(burst_, static_cast<uint16_t>(n), nullptr);
    }
  }
  flows_.expire_half_open(now_, half_open_per_poll_);
  flows_.expire_some(now_, kExpiryFlowsPerPoll);
  // The half-open queue also with no IPv6 flow left: its entries are taken
  // as they fall due, and one left waiting 2^31 ms would read as not due
  // (serial arithmetic) and hold back every entry behind it.  (Asked first:
  // a call with nothing queued cost an IPv4 packet 1.2 instructions.)
  if (flows6_.half_open_queued() != 0) flows6_.expire_half_open(now_, half_open_per_poll_);
  if (flows6_.size() != 0) flows6_.expire_some(now_, kExpiryFlowsPerPoll);
  // Also the flows that lookups and inserts found expired and freed.
  counters_.flows_expired.add(flows_.take_expired() + flows6_.take_expired());
  if (static_cast<int32_t>(now_ - fragments_sweep_due_) >= 0) [[unlikely]] sweep_fragments();
  if (query_.asked()) query_.step(flows_, flows6_, now_);
  counters_.flow_entries.set(flows_.size() + flows6_.size());
  if (punted_) [[unlikely]] {
    punted_ = false;
    if (setup_.doorbell != nullptr) setup_.doorbell->ring();
  }
}

void Worker::adopt_latest_snapshot() noexcept {
  void* latest = nullptr;
  void* p = nullptr;  // a profile-guided g++ 12 build cannot tell a dequeue wrote it
  while (rte_ring_sc_dequeue(setup_.snapshot_ring, &p) == 0) latest = p;
  if (latest != nullptr) {
    snapshot_ = static_cast<const Snapshot*>(latest);
    routed_trie6_ = snapshot_->routed_trie6 ? snapshot_->routed_trie6->entries.data() : nullptr;
    gen_ = static_cast<uint32_t>(snapshot_->generation);
    ++adj_epoch_;  // routes and port addresses may have changed
    counters_.snapshots_adopted.add();
  }
}

uint32_t Worker::now_ms() const noexcept {
  return static_cast<uint32_t>(rte_rdtsc() / tsc_per_ms_);
}

// A packet of a pinned connection, either direction, either family: the
// established fast path.  Only a snapshot change since the flow was last
// seen costs more.
template <Family F>
PODGATE_HOT void Worker::handle_flow(rte_mbuf* m, uint8_t* l4, uint8_t tcp_flags,
                                     BasicFlowHit<typename FamilyTypes<F>::Flow> hit) noexcept {
  using Header = typename FamilyTypes<F>::Header;
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  auto* ip = reinterpret_cast<Header*>(reinterpret_cast<uint8_t*>(eth) + kFlowL3Offset);
  // RFC 1812 §5.3.1 / RFC 8200 §3, checked before any flow state is
  // advanced: a packet that is dropped must leave nothing behind.
  if (!ttl_allows_forwarding(ip)) [[unlikely]] {
    drop_ttl_exceeded(m, ip);
    return;
  }
  auto& flow = *hit.flow;
  const uint32_t gen = gen_;
  if (flow.gen != gen) [[unlikely]] {
    // The snapshot changed since this flow was last checked: it keeps its
    // Pod while the Pod is ready or draining, and loses it once removed.
    counters_.flows_revalidated.add();
    const auto* svc = snapshot_->find_service(flow.vip, flow.vip_port, flow.proto);
    if (svc == nullptr || !svc->keeps(typename FamilyTypes<F>::Backend{flow.pod, flow.pod_port})) {
      revalidate_failed<F>(m, flow, hit.reverse, svc == nullptr);
      return;
    }
    flow.gen = gen;
  }
  const auto& next = hit.reverse ? flow.client : flow.pod;
  if constexpr (F == Family::kIpv4) {
    if (!fits_egress(m, ip, next)) [[unlikely]] return;
  } else {
    if (!fits_egress6(m, ip, next)) [[unlikely]] return;
  }
  if (table<F>().touch(flow, hit.reverse, tcp_flags, now_)) [[unlikely]] {
    reopen<F>(m, flow);  // a client's SYN on its closed connection
    return;
  }
  TrafficCounters& t = traffic_[flow.stats_slot];
  const uint32_t bytes = rte_pktmbuf_pkt_len(m);
  if (!hit.reverse) {
    t.packets_in.add();
    t.bytes_in.add(bytes);
    if constexpr (F == Family::kIpv4) {
      nat_with_address_term<NatSide::kDestination>(ip, l4, flow.proto, flow.pod, flow.pod_port, flow.csum_addr);
      forward(m, eth, flow.pod);
    } else {
      nat6_with_delta<NatSide::kDestination>(ip, l4, flow.proto, flow.pod, flow.pod_port, flow.csum_delta);
      forward6(m, eth, flow.pod);
    }
  } else {
    t.packets_out.add();
    t.bytes_out.add(bytes);
    if constexpr (F == Family::kIpv4) {
      nat_with_address_term<NatSide::kSource>(ip, l4, flow.proto, flow.vip, flow.vip_port,
                                              static_cast<uint16_t>(~flow.csum_addr));
      forward_to_client(m, eth, flow.client);
    } else {
      nat6_with_delta<NatSide::kSource>(ip, l4, flow.proto, flow.vip, flow.vip_port,
                                        static_cast<uint16_t>(~flow.csum_delta));
      forward_to_client6(m, eth, flow.client);
    }
  }
}

void Worker::handle_flow6(rte_mbuf* m, ParsedPacket6& p, FlowHit6 hit) noexcept {
  handle_flow<Family::kIpv6>(m, p.l4, p.tcp_flags, hit);
}

// The flow's endpoint, or its whole service, is gone: the flow ends.  A
// reply is dropped; the client's packet starts over, to a new Pod or to the
// reason why not (a VIP that no longer exists: no_service).  Parsed afresh:
// the packet may have come by the fast path or the classifying one, and a
// first fragment from a port or by a hand-off (its FragmentMeta is not
// read: only a hand-off writes it, and this one may have had none).
template <Family F>
PODGATE_OUT_OF_LINE void Worker::revalidate_failed(rte_mbuf* m, typename FamilyTypes<F>::Flow& flow, bool reverse,
                                                   bool service_gone) noexcept {
  counters_.flows_endpoint_gone.add();
  table<F>().erase(flow);
  if (reverse) {
    drop(m, DropReason::kNoFlow);
    return;
  }
  if (service_gone) {
    drop(m, DropReason::kNoService);
    return;
  }
  process_other(m, Arrival::kRevalidated);
}

// The client opened a new connection from the port of one that closed
// (FlowTable::reopens()): it is placed anew among the endpoints that take
// new connections.  Parsed afresh, as revalidate_failed() does.
template <Family F>
PODGATE_OUT_OF_LINE void Worker::reopen(rte_mbuf* m, typename FamilyTypes<F>::Flow& flow) noexcept {
  counters_.flows_reopened.add();
  table<F>().erase(flow);
  process_other(m, Arrival::kRevalidated);
}

template <Family F>
PODGATE_HOT void Worker::process_flow_packet(rte_mbuf* m, const Lane& lane) noexcept {
  using Header = typename FamilyTypes<F>::Header;
  constexpr uint32_t kL4 = F == Family::kIpv4 ? kFlowL4Offset : kIp6L4Offset;
  const auto& key = lane.key_of<F>();
  auto* frame = rte_pktmbuf_mtod(m, uint8_t*);
  if (const auto hit = table<F>().find(key, lane.probe, lane.candidate, now_)) {
    handle_flow<F>(m, frame + kL4, lane.tcp_flags, hit);
    return;
  }
  if (lane.candidate == FamilyTypes<F>::Table::kNoCandidate) {
    // Pass 2 found the key in no bucket, and chose the Pod of its service
    // (prefetch_new_flow()): a new connection, with nothing for classify()
    // to find out but its owner (a service's VIP is never the DNS VIP:
    // validate() refuses it).
    const NewFlowPick<F>& pick = lane.pick_of<F>();
    if (pick.svc != nullptr && !pick.svc->ready.empty() &&
        (setup_.count == 1 || owns_connection<F>(key))) [[likely]] {
      new_connection<F>(m, reinterpret_cast<Header*>(frame + kFlowL3Offset), frame + kL4, lane.tcp_flags,
                        *pick.svc, key, lane.probe, &pick);
      return;
    }
  }
  if constexpr (F == Family::kIpv4) {
    ParsedPacket p = flow_packet_view(frame, rte_pktmbuf_data_len(m), key.proto, lane.tcp_flags);
    classify(m, p, key, lane.probe, true, lane.candidate == FlowTable::kNoCandidate ? &lane.pick : nullptr);
  } else {
    ParsedPacket6 p = flow_packet_view6(frame, rte_pktmbuf_data_len(m), key.proto, lane.tcp_flags);
    classify6(m, p, key, lane.probe, true, lane.candidate == FlowTable6::kNoCandidate ? &lane.pick6 : nullptr);
  }
}

// Out of line: only several workers ask, and the Toeplitz hash of an IPv6
// address inline would crowd the burst loop's registers.
template <Family F>
PODGATE_OUT_OF_LINE bool Worker::owns_connection(const typename FamilyTypes<F>::Key& key) const noexcept {
  return owners_.owner(key.src, key.sport) == setup_.id;
}

template <Family F>
PODGATE_HOT void Worker::prefetch_lane(Lane& lane, bool& second) noexcept {
  using Table = typename FamilyTypes<F>::Table;
  lane.candidate = table<F>().prefetch_flow(lane.probe);
  // One compare on an established flow's way: both answers that name no
  // record are above every reference.
  if (lane.candidate >= Table::kInSecondBucket) {
    if (lane.candidate == Table::kNoCandidate) {
      prefetch_new_flow<F>(lane.key_of<F>(), lane.pick_of<F>());
    } else {
      second = true;
    }
  }
}

template <Family F>
PODGATE_HOT void Worker::prefetch_lane_second(Lane& lane) noexcept {
  lane.candidate = table<F>().prefetch_second(lane.probe);
  if (lane.candidate == FamilyTypes<F>::Table::kNoCandidate) prefetch_new_flow<F>(lane.key_of<F>(), lane.pick_of<F>());
}

// A key no bucket holds is most likely a connection's first packet, and
// pinning it will index its reverse key too, in two buckets known only once
// Maglev has chosen the Pod.  Choosing the Pod here already lets those two
// lines arrive while the rest of the burst is forwarded, instead of
// stalling insert() (with many flows the index is far out of cache).  The
// third pass pins the flow with this choice (new_connection()).
template <Family F>
PODGATE_HOT void Worker::prefetch_new_flow(const typename FamilyTypes<F>::Key& key,
                                           NewFlowPick<F>& pick) noexcept {
  const auto* svc = snapshot_->find_service(key.dst, key.dport, key.proto);
  pick.svc = svc;
  if (svc == nullptr || svc->ready.empty()) return;
  pick.backend = maglev_lookup(svc->maglev,
                               flow_hash(key.src, key.dst, key.sport, key.dport, key.proto, svc->client_ip_affinity));
  const auto& to = svc->ready[pick.backend];
  auto& flows = table<F>();
  pick.reverse = flows.probe(reverse_key_hash(to.ip, key.src, to.port, key.sport, key.proto));
  flows.prefetch(pick.reverse);
}

// Three passes over a burst, so that its memory accesses overlap instead of
// each packet stalling on its own (with many flows the table is far out of
// cache; VPP's lb node prefetches its sticky-table bucket the same way):
//   1. parse each TCP/UDP packet into its flow key; hand another worker's
//      packet to its owner (judged by the client's address and port, as
//      the queue's side says); hash the rest and prefetch their first
//      index buckets;
//   2. compare the first bucket's tags, prefetch the record of the first
//      match and keep its reference for pass 3; a key with no match is
//      most likely a new connection: choose its Pod now and prefetch the
//      buckets its reverse key will go in (prefetch_new_flow()).  Unless
//      the bucket counts keys displaced to their second bucket: then that
//      bucket is prefetched, and a pass 2b does the same with it for the
//      few keys that need it;
//   3. look each packet up (the kept record first) and forward it; a miss
//      that pass 2 chose a Pod for is pinned to it (new_connection());
//      any other miss takes the classifying path, and so does everything
//      that is not TCP or UDP in a plain IPv4 or IPv6 header.
// Only the owner's table can hold a flow, so a packet that reached its
// owner (by RSS, or by a handoff) is looked up before anything else.
void Worker::process_burst(rte_mbuf** pkts, uint16_t n, const RxQueue* rx) noexcept {
  const bool from_handoff = rx == nullptr;
  const bool all_mine = setup_.count == 1 || from_handoff;
  // A queue the device fills by the client's hash holds only this
  // worker's flows of the families it hashes (RxQueue::client_rss).
  const bool ipv4_mine = all_mine || (rx != nullptr && rx->client_rss);
  const bool ipv6_mine = all_mine || (rx != nullptr && rx->client_rss6);
  const FirstPass first = ipv4_mine && ipv6_mine ? first_pass<false>(pkts, n, rx, true, true)
                                                 : first_pass<true>(pkts, n, rx, ipv4_mine, ipv6_mine);
  n = first.kept;
  Lane* lanes = lanes_;
  if (first.ipv4 == n) {  // also when every packet was handed on
    process_flow_burst<Family::kIpv4>(pkts, n);
  } else if (first.ipv6 == n) {
    process_flow_burst<Family::kIpv6>(pkts, n);
  } else {
    bool second = false;
    for (uint16_t i = 0; i < n; ++i) {
      if (lanes[i].path == Lane::kFlow) {
        prefetch_lane<Family::kIpv4>(lanes[i], second);
      } else if (lanes[i].path == Lane::kFlow6) {
        prefetch_lane<Family::kIpv6>(lanes[i], second);
      }
    }
    if (second) prefetch_second_buckets(n);
    for (uint16_t i = 0; i < n; ++i) {
      switch (lanes[i].path) {
        case Lane::kFlow:
          process_flow_packet<Family::kIpv4>(pkts[i], lanes[i]);
          break;
        case Lane::kFlow6:
          process_flow_packet<Family::kIpv6>(pkts[i], lanes[i]);
          break;
        case Lane::kOther:
          process_other(pkts[i], from_handoff ? Arrival::kHandoff : Arrival::kRx);
          break;
      }
    }
  }
  if (setup_.count > 1) flush_handoffs();
  flush_tx();
}

// Pass 1 over a burst from `rx` (null: handed off by another worker), whose
// IPv4 (IPv6) flow packets are all this worker's where `ipv4_mine`
// (`ipv6_mine`).  With kMayHandOff, a packet another worker owns goes to
// it, and the ones this worker keeps move down over it (in `pkts` and the
// lanes), so that passes 2 and 3 see a burst of its own packets alone and
// take process_flow_burst()'s loop, as an unmixed burst does, instead of a
// dispatch per packet whose branch a random mix of owners defeats.  Where
// no packet can be another's, nothing moves.
template <bool kMayHandOff>
PODGATE_HOT Worker::FirstPass Worker::first_pass(rte_mbuf** pkts, uint16_t n, const RxQueue* rx, bool ipv4_mine,
                                                 bool ipv6_mine) noexcept {
  const bool from_handoff = rx == nullptr;
  // The queue's fields in locals: the stores to each mbuf below may alias
  // the RxQueue's.
  const uint16_t rx_port = from_handoff ? 0 : rx->port_id;
  const bool client_is_destination = !from_handoff && rx->client_is_destination;
  Lane* lanes = lanes_;
  FirstPass out{0, 0, 0};
  for (uint16_t i = 0; i < n; ++i) {
    if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
    rte_mbuf* m = pkts[i];
    Lane& lane = lanes[kMayHandOff ? out.kept : i];
    // Not every PMD stamps the arrival port (net_ring does not); ARP, ICMP
    // and punting answer on it.  A handed-off packet carries its own.
    if (!from_handoff) m->port = rx_port;
    const bool ip_ok = from_handoff ||
                       (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
    const bool whole = rte_pktmbuf_data_len(m) == rte_pktmbuf_pkt_len(m);
    const auto* frame = rte_pktmbuf_mtod(m, const uint8_t*);
    if (whole && parse_flow_packet(frame, rte_pktmbuf_data_len(m), ip_ok, lane.key, lane.tcp_flags)) {
      if (kMayHandOff && !ipv4_mine) {
        const uint32_t owner = client_is_destination ? owners_.owner(lane.key.dst, lane.key.dport)
                                                     : owners_.owner(lane.key.src, lane.key.sport);
        if (owner != setup_.id) {
          hand_off(m, owner);
          continue;
        }
      }
      lane.path = Lane::kFlow;
      ++out.ipv4;
      lane.probe = flows_.probe(FlowTable::hash(lane.key));
      flows_.prefetch_first(lane.probe);
    } else if (whole && parse_flow_packet6(frame, rte_pktmbuf_data_len(m), lane.key6, lane.tcp_flags)) {
      if (kMayHandOff && !ipv6_mine) {
        const uint32_t owner = client_is_destination ? owners_.owner(lane.key6.dst, lane.key6.dport)
                                                     : owners_.owner(lane.key6.src, lane.key6.sport);
        if (owner != setup_.id) {
          hand_off(m, owner);
          continue;
        }
      }
      lane.path = Lane::kFlow6;
      ++out.ipv6;
      lane.probe = flows6_.probe(FlowTable6::hash(lane.key6));
      flows6_.prefetch_first(lane.probe);
    } else {
      lane.path = Lane::kOther;
    }
    if (kMayHandOff) pkts[out.kept] = m;
    ++out.kept;
  }
  return out;
}

// Passes 2 and 3 over a burst whose every packet is a TCP/UDP one of
// family F in a plain header, this worker's (the common case): no dispatch
// per packet.
template <Family F>
PODGATE_HOT void Worker::process_flow_burst(rte_mbuf** pkts, uint16_t n) noexcept {
  bool second = false;
  for (uint16_t i = 0; i < n; ++i) prefetch_lane<F>(lanes_[i], second);
  if (second) prefetch_second_buckets(n);
  for (uint16_t i = 0; i < n; ++i) process_flow_packet<F>(pkts[i], lanes_[i]);
}

// Pass 2b over a burst's first n lanes: those whose key may be in its
// second bucket, now arrived.  Out of line, once per burst: in a table
// filled once few bursts need it (6% of keys are displaced), but after long
// churn at full load (20%) nearly every burst of 32 has such a lane.
PODGATE_OUT_OF_LINE void Worker::prefetch_second_buckets(uint16_t n) noexcept {
  for (uint16_t i = 0; i < n; ++i) {
    Lane& lane = lanes_[i];
    if (lane.path == Lane::kFlow && lane.candidate == FlowTable::kInSecondBucket) {
      prefetch_lane_second<Family::kIpv4>(lane);
    } else if (lane.path == Lane::kFlow6 && lane.candidate == FlowTable6::kInSecondBucket) {
      prefetch_lane_second<Family::kIpv6>(lane);
    }
  }
}

// Packets parse_flow_packet() declined: parsed in full, which drops the
// malformed ones with their reason.
PODGATE_OUT_OF_LINE void Worker::process_other(rte_mbuf* m, Arrival from) noexcept {
  if (rte_pktmbuf_data_len(m) != rte_pktmbuf_pkt_len(m)) {
    drop(m, DropReason::kTooShort);  // multi-segment frames are not expected: MTU-sized pool
    return;
  }
  if (rte_pktmbuf_data_len(m) >= sizeof(rte_ether_hdr) &&
      rte_pktmbuf_mtod(m, const rte_ether_hdr*)->ether_type == to_be16(RTE_ETHER_TYPE_IPV6)) {
    process_ipv6(m, from);
    return;
  }
  const bool ip_ok = from != Arrival::kRx ||
                     (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD;
  ParsedPacket p;
  DropReason why;
  if (!parse_packet(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), ip_ok, p, why)) {
    if (why == DropReason::kFragment) {
      handle_fragment<Family::kIpv4>(m, p, from == Arrival::kHandoff);
    } else {
      drop(m, why);
    }
    return;
  }
  switch (p.kind) {
    case PacketKind::kArp:
      handle_arp(m, p);
      return;
    case PacketKind::kIcmp:
      handle_icmp(m, p);
      return;
    case PacketKind::kTcp:
    case PacketKind::kUdp: {
      // Not reached while parse_flow_packet() takes every TCP/UDP packet
      // parse_packet() does (packet_test holds them to it); correct anyway.
      const FlowKey4 key = flow_key(p);
      classify(m, p, key, flows_.probe(FlowTable::hash(key)), false);
      return;
    }
  }
}

PODGATE_OUT_OF_LINE void Worker::classify(rte_mbuf* m, ParsedPacket& p, const FlowKey4& key,
                      const FlowProbe& probe, bool looked_up, const NewFlowPick<Family::kIpv4>* pick) noexcept {
  const Snapshot& snap = *snapshot_;
  // The key holds the packet's addresses, ports and protocol as they are
  // on the wire (one load each, where the ParsedPacket's take a branch).
  const Ip4 dst = key.dst;
  if (dst == snap.dns_vip && key.dport == to_be16(53)) {
    // UDP is answered by the control thread from the punt ring; TCP by
    // the kernel's listener on the VIP, through the twin of the port it
    // came in on (RFC 7766: a client retries a truncated answer over TCP).
    if (key.proto == Proto::kUdp) {
      if (setup_.count > 1) {
        // One worker holds each client address's bucket (below).
        const uint32_t owner = dns_owner(key.src);
        if (owner != setup_.id) {
          hand_off(m, owner);
          return;
        }
      }
      if (dns_query_allowed(key.src)) {
        punt(m, PuntKind::kDns, PortIdx{port_index_[m->port]}, Ip4{});
      } else {
        drop(m, DropReason::kDnsRateLimited);
      }
      return;
    }
    if (const auto twin = kernel_twin_for(m, dst)) {
      to_kernel(m, *twin);
      return;
    }
  }
  const ServiceData* svc = pick != nullptr ? pick->svc : snap.find_service(dst, key.dport, key.proto);
  if (svc == nullptr) {
    if (snap.is_vip(dst) || dst == snap.dns_vip) {
      drop_port_unreachable(m, p.ip, key.src, DropReason::kNoService);
      return;
    }
    if (snap.own_address(dst) != nullptr) {
      // BGP, SSH, a health probe's answer: the kernel's, if it has a twin.
      if (const auto twin = kernel_twin_for(m, dst)) {
        to_kernel(m, *twin);
      } else {
        drop(m, DropReason::kNotForUs);
      }
      return;
    }
  }
  if (setup_.count > 1) {
    // To a service the client is the source; from a Pod, the destination.
    // The queue's side guessed so before the lookup; here it is known.
    const uint32_t owner = svc != nullptr ? owners_.owner(key.src, key.sport)
                                          : owners_.owner(dst, key.dport);
    if (owner != setup_.id) {
      hand_off(m, owner);
      return;
    }
  }
  if (!looked_up) {
    if (const FlowHit hit = flows_.find(key, probe, now_)) {
      handle_flow<Family::kIpv4>(m, p.l4, p.tcp_flags, hit);
      return;
    }
  }
  if (svc != nullptr) {
    new_connection<Family::kIpv4>(m, p.ip, p.l4, p.tcp_flags, *svc, key, probe, pick);
  } else {
    handle_stateless_reply(m, p);
  }
}

// Pins a new connection to `pod` and counts it (either family): every
// path here follows a lookup of `key` that missed (or an erase).
template <Family F>
inline typename FamilyTypes<F>::Flow* Worker::pin_new_flow(rte_mbuf* m, const typename FamilyTypes<F>::Key& key,
                                                           const FlowProbe& probe,
                                                           const typename FamilyTypes<F>::Addr& pod,
                                                           rte_be16_t pod_port, uint16_t slot, FlowState state,
                                                           uint8_t tcp_flags, const FlowProbe* reverse) noexcept {
  // The state after this packet, as touch() would make it: a client's
  // packet without SYN is a connection another appliance (or this one
  // before a restart) started, that ECMP now sends here.  Maglev chose the
  // same Pod there, so it carries on, pinned as established
  // (FlowTable::next_state).
  const FlowState first = table<F>().next_state(state, false, tcp_flags);
  auto* flow = table<F>().insert(key, probe, pod, pod_port, first, gen_, now_, slot, true, reverse);
  TrafficCounters& t = traffic_[slot];
  if (flow != nullptr) {
    if (state == FlowState::kTcpSynSent && first == FlowState::kTcpEstablished) {
      counters_.flows_picked_up.add();
    }
    counters_.flows_created.add();
    t.flows_created.add();
  } else {
    // Full: forward by Maglev alone; replies then take the stateless path.
    counters_.flows_table_full.add();
  }
  t.packets_in.add();
  t.bytes_in.add(rte_pktmbuf_pkt_len(m));
  return flow;
}

template <Family F>
PODGATE_OUT_OF_LINE void Worker::new_connection(rte_mbuf* m, typename FamilyTypes<F>::Header* ip, uint8_t* l4,
                                        uint8_t tcp_flags, const typename FamilyTypes<F>::Service& svc,
                                        const typename FamilyTypes<F>::Key& key, const FlowProbe& probe,
                                        const NewFlowPick<F>* pick) noexcept {
  // The source first, then RFC 1812 §5.3.1 / RFC 8200 §3: both before any
  // flow state is created.
  if (const DropReason why = source_refused(key.src); why != DropReason::kCount) [[unlikely]] {
    drop(m, why);
    return;
  }
  if (!ttl_allows_forwarding(ip)) [[unlikely]] {
    drop_ttl_exceeded(m, ip);
    return;
  }
  if (svc.ready.empty()) [[unlikely]] {
    drop_port_unreachable(m, ip, key.src, DropReason::kNoEndpoint);
    return;
  }
  const uint16_t i = pick != nullptr ? pick->backend
                                     : maglev_lookup(svc.maglev, flow_hash(key.src, key.dst, key.sport, key.dport,
                                                                           key.proto, svc.client_ip_affinity));
  const auto& to = svc.ready[i];
  const uint16_t slot = i < svc.ready_slots.size() ? svc.ready_slots[i] : kUntrackedSlot;
  const FlowState state = key.proto == Proto::kUdp ? FlowState::kUdp : FlowState::kTcpSynSent;
  const FlowProbe* reverse = pick != nullptr ? &pick->reverse : nullptr;
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  if constexpr (F == Family::kIpv4) {
    if (!fits_egress(m, ip, to.ip)) [[unlikely]] return;
    // The flow's record has the address's checksum term made (insert()).
    const Flow* flow = pin_new_flow<F>(m, key, probe, to.ip, to.port, slot, state, tcp_flags, reverse);
    nat_with_address_term<NatSide::kDestination>(ip, l4, key.proto, to.ip, to.port,
                                                 flow != nullptr ? flow->csum_addr : csum_term32(key.dst.be, to.ip.be));
    forward(m, eth, to.ip);
  } else {
    if (!fits_egress6(m, ip, to.ip)) [[unlikely]] return;
    // The NAT's checksum term, once: this packet's, and kept for the rest.
    const uint16_t delta = csum_delta_ip6_port(key.dst.bytes.data(), to.ip.bytes.data(), key.dport, to.port);
    if (Flow6* flow = pin_new_flow<F>(m, key, probe, to.ip, to.port, slot, state, tcp_flags, reverse)) {
      flow->csum_delta = delta;
    }
    nat6_with_delta<NatSide::kDestination>(ip, l4, key.proto, to.ip, to.port, delta);
    forward6(m, eth, to.ip);
  }
}
template void Worker::new_connection<Family::kIpv6>(rte_mbuf*, rte_ipv6_hdr*, uint8_t*, uint8_t,
                                                    const ServiceData6&, const FlowKey6&, const FlowProbe&,
                                                    const NewFlowPick<Family::kIpv6>*) noexcept;

// A reply with no flow entry (the table was full when the connection
// started): map the Pod back to the one service port it backs, statelessly.
void Worker::handle_stateless_reply(rte_mbuf* m, ParsedPacket& p) noexcept {
  // A Pod's first: anything else is not ours to forward, nor to answer
  // with an ICMP error.
  const ServiceData* svc = snapshot_->find_backend(p.src(), p.sport(), p.proto());
  if (svc == nullptr) {
    drop(m, DropReason::kNoFlow);
    return;
  }
  if (!ttl_allows_forwarding(p.ip)) {
    drop_ttl_exceeded(m, p.ip);
    return;
  }
  if (!fits_egress(m, p.ip, p.dst())) return;
  counters_.replies_stateless.add();
  TrafficCounters& t = traffic_[svc->slot_of(Backend{p.src(), p.sport()})];
  t.packets_out.add();
  t.bytes_out.add(rte_pktmbuf_pkt_len(m));
  nat_and_decrement_ttl<NatSide::kSource>(p.ip, p.l4, p.proto(), svc->vip, svc->port);
  forward_to_client(m, p.eth, p.dst());
}

// A destination not in the adjacency cache: its route, then its next hop's
// MACs, from the router cache when the route has a router (`via`), else
// from the shared neighbour table; an unresolved next hop sends the packet
// to the control thread, which resolves it (ARP) and holds the packet
// meanwhile.  See Adjacency.
PODGATE_OUT_OF_LINE const Worker::Adjacency* Worker::resolve_adjacency(rte_mbuf* m, Ip4 dst,
                                                                        Adjacency& slot) noexcept {
  const Snapshot& snap = *snapshot_;
  const Route* route = snap.route(dst);
  if (route == nullptr) {
    drop(m, DropReason::kNoRoute);
    return nullptr;
  }
  counters_.adjacency_misses.add();
  if (route->via.is_zero()) return fill_adjacency(m, *route, dst, slot);
  Adjacency* router = &router_adjacency_[(route->via.be * 0x9e3779b1u) >> (32 - 6)];
  static_assert(kRouterSlots == 1u << 6);
  if (router->ip != route->via.be || router->epoch != adj_epoch_) [[unlikely]] {
    router = fill_adjacency(m, *route, route->via, *router);
    if (router == nullptr) return nullptr;
  }
  if (slot.epoch != adj_epoch_ || slot.routed) {
    slot = *router;
    slot.ip = dst.be;
  }
  return router;
}

PODGATE_OUT_OF_LINE const Worker::Adjacency* Worker::fill_route_adjacency(rte_mbuf* m, uint32_t r,
                                                                           Adjacency& entry) noexcept {
  const Route& route = snapshot_->routes[r - 1];
  counters_.adjacency_misses.add();
  return fill_adjacency(m, route, route.via, entry);
}

PODGATE_OUT_OF_LINE [[gnu::cold]] Worker::Adjacency* Worker::fill_adjacency(rte_mbuf* m, const Route& route,
                                                                          Ip4 next_hop, Adjacency& adj) noexcept {
  const uint64_t mac = setup_.neighbors->find_word(next_hop);
  if (mac == 0) {
    punt_unresolved(m, PuntKind::kUnresolved, route.port, next_hop);
    return nullptr;
  }
  const PortAddress& out = snapshot_->ports[static_cast<uint16_t>(route.port)];
  std::memcpy(adj.macs, &mac, 6);  // the word's first six bytes (NeighborTable::pack)
  std::memcpy(adj.macs + 6, out.mac.bytes.data(), 6);
  adj.port_idx = static_cast<uint16_t>(route.port);
  adj.ip = next_hop.be;
  adj.epoch = adj_epoch_;
  adj.routed = !route.via.is_zero();
  return &adj;
}

const PortAddress* Worker::rx_port_address(const rte_mbuf* m) const noexcept {
  uint16_t idx = port_index_[m->port];
  if (idx == kNoPortIndex || idx >= snapshot_->ports.size()) return nullptr;
  return &snapshot_->ports[idx];
}

bool Worker::answers_for(Ip4 ip) const noexcept {
  const Snapshot& snap = *snapshot_;
  return snap.own_address(ip) != nullptr || snap.is_vip(ip) ||
         (!snap.dns_vip.is_zero() && ip == snap.dns_vip);
}

void Worker::handle_arp(rte_mbuf* m, ParsedPacket& p) noexcept {
  const rte_arp_ipv4& a = p.arp->arp_data;
  // A reply, or a gratuitous request (a host announcing its address, RFC
  // 5227 §3), may teach the control thread a neighbour
  // (PuntHandler::on_arp); only one that can goes up.
  const bool reply = p.arp->arp_opcode == to_be16(RTE_ARP_OP_REPLY);
  const bool gratuitous = p.arp->arp_opcode == to_be16(RTE_ARP_OP_REQUEST) && a.arp_sip == a.arp_tip &&
                          !answers_for(Ip4{a.arp_tip});
  if (reply || gratuitous) {
    if (!snapshot_->arp_may_teach(port_index_[m->port], Ip4{a.arp_sip}, Ip4{a.arp_tip})) {
      drop(m, DropReason::kArpNotForUs);
      return;
    }
    punt_to_learn(m, PuntKind::kArp);
    return;
  }
  const PortAddress* rx = rx_port_address(m);
  if (p.arp->arp_opcode != to_be16(RTE_ARP_OP_REQUEST) || rx == nullptr ||
      !answers_for(Ip4{a.arp_tip})) {
    drop(m, DropReason::kArpNotForUs);
    return;
  }
  make_arp_reply(p, rx->mac);
  counters_.arp_replies.add();
  send(m, port_index_[m->port]);
}

// Punts an ARP or NDP advertisement to the control thread to learn from,
// no faster than kLearnPerSecond a worker: a host flooding them must not
// crowd DNS queries and packets waiting for a neighbour out of the punt ring.
void Worker::punt_to_learn(rte_mbuf* m, PuntKind kind) noexcept {
  if (!learn_bucket_.take(now_, kLearnPerSecond)) {
    drop(m, DropReason::kNeighborRateLimited);
    return;
  }
  punt(m, kind, PortIdx{port_index_[m->port]}, Ip4{});
}

void Worker::punt_unresolved(rte_mbuf* m, PuntKind kind, PortIdx port, Ip4 next_hop) noexcept {
  if (!unresolved_bucket_.take(now_, kUnresolvedPerSecond)) {
    drop(m, DropReason::kNeighborUnresolved);
    return;
  }
  punt(m, kind, port, next_hop);
}

void Worker::handle_icmp(rte_mbuf* m, ParsedPacket& p) noexcept {
  // A corrupt error must not be translated, which writes it a checksum
  // that holds (RFC 5508 REQ-3), nor a corrupt echo answered.  What goes
  // up to a kernel twin is checked there too.
  if (!internet_checksum_ok({p.l4, p.l4_len})) {
    drop(m, DropReason::kBadIcmp);
    return;
  }
  if (is_translated_icmp_error(p.icmp()->icmp_type)) {
    handle_icmp_error<Family::kIpv4>(m, p);
    return;
  }
  if (!answers_for(p.dst())) {
    drop(m, DropReason::kNotForUs);
    return;
  }
  auto* icmp = reinterpret_cast<rte_icmp_hdr*>(p.l4);
  if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || icmp->icmp_code != 0) {
    // An echo reply to the kernel's ping, and the like.
    if (const auto twin = kernel_twin_for(m, p.dst())) {
      to_kernel(m, *twin);
    } else {
      drop(m, DropReason::kIcmpNotEcho);
    }
    return;
  }
  make_echo_reply(p);
  send_back(m, p);
  counters_.icmp_echo_replies.add();
}

// RFC 1812 §5.3.1: a router that drops a packet for its TTL sends Time
// Exceeded (code 0, in transit) to its source.
void Worker::drop_ttl_exceeded(rte_mbuf* m, const rte_ipv4_hdr* ip) noexcept {
  constexpr uint8_t kTimeExceeded = 11;
  send_icmp_error(m, ip, kTimeExceeded, 0, 0);
  drop(m, DropReason::kTtlExceeded);
}

// A VIP with nothing behind the port a packet asks for (no such service
// port, or no endpoint to take it) answers as a host with no listener
// there: Destination Unreachable, port unreachable (RFC 792; RFC 1122
// §3.2.2.1), as kube-proxy's REJECT rule does for a service without
// endpoints.  A TCP client's connect then fails at once (RFC 1122 §4.2.3.9:
// a hard error) instead of retrying its SYN for a minute.  Not to a source
// no new connection is taken from (source_refused()): a spoofed one would
// be answered.  Rate-limited with the other errors.
void Worker::drop_port_unreachable(rte_mbuf* m, const rte_ipv4_hdr* ip, Ip4 src, DropReason why) noexcept {
  constexpr uint8_t kUnreachable = 3, kPortUnreachable = 3;
  if (source_refused(src) == DropReason::kCount) send_icmp_error(m, ip, kUnreachable, kPortUnreachable, 0);
  drop(m, why);
}

// The slow half of fits_egress(): the frame is longer than the smallest
// port MTU allows, so find the port it leaves by.  podgate does not
// fragment: a packet too big for it is dropped, and with Don't Fragment
// set its source is told the MTU (RFC 1191, RFC 1812 §5.2.7.1), which is
// what path MTU discovery needs.
bool Worker::check_egress_mtu(rte_mbuf* m, const rte_ipv4_hdr* ip, Ip4 dst) noexcept {
  const Route* route = snapshot_->route(dst);
  if (route == nullptr) return true;  // forward() drops it as no_route
  const uint16_t mtu = port_mtu(static_cast<uint16_t>(route->port));
  if (from_be16(ip->total_length) <= mtu) return true;
  if ((ip->fragment_offset & to_be16(RTE_IPV4_HDR_DF_FLAG)) != 0) {
    constexpr uint8_t kUnreachable = 3, kFragmentationNeeded = 4;
    send_icmp_error(m, ip, kUnreachable, kFragmentationNeeded, mtu);
  }
  drop(m, DropReason::kTooBig);
  return false;
}

uint16_t Worker::port_mtu(uint16_t port_idx) const noexcept {
  const uint16_t mtu = port_idx < setup_.port_mtus.size() ? setup_.port_mtus[port_idx] : 0;
  return mtu != 0 ? mtu : kEthernetMtu;
}

// An ICMP error about `ip` (the packet as it arrived, before any NAT) to
// its source, from the address of the port it arrived on (RFC 1812
// §4.3.2.4), quoting as much of it as fits in 576 bytes (§4.3.2.3).  At
// most kIcmpErrorBurst at once and kIcmpErrorsPerSecond on average per
// worker (§4.3.2.8): a flood of TTL-1 packets must not become a flood of
// errors.
void Worker::send_icmp_error(const rte_mbuf* m, const rte_ipv4_hdr* ip, uint8_t type, uint8_t code,
                             uint16_t mtu) noexcept {
  // RFC 1812 §4.3.2.7: never about a fragment but the first, nor a packet
  // to a multicast or broadcast address (IP or link layer), nor one whose
  // source cannot be answered (§5.3.7).  (Nor about an ICMP error: those
  // are translated, or dropped with no error.)
  const auto* arrived = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
  if ((from_be16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) != 0 ||
      rte_is_multicast_ether_addr(&arrived->dst_addr) || (Ip4{ip->dst_addr}.host() >> 28) >= 0xe ||
      Ip4{ip->src_addr}.is_martian_source()) {
    return;
  }
  const PortAddress* rx = rx_port_address(m);
  if (rx == nullptr || !take_icmp_error_token()) {
    counters_.icmp_errors_rate_limited.add();
    return;
  }
  rte_mbuf* e = rte_pktmbuf_alloc(m->pool);
  if (e == nullptr) {
    counters_.icmp_errors_rate_limited.add();
    return;
  }
  constexpr uint32_t kMaxQuote = 576 - sizeof(rte_ipv4_hdr) - 8;
  const uint32_t available = rte_pktmbuf_pkt_len(m) - kFlowL3Offset;
  const uint32_t quote = std::min({uint32_t{from_be16(ip->total_length)}, available, kMaxQuote});
  const uint32_t icmp_len = 8 + quote;
  const auto frame_len = static_cast<uint16_t>(kFlowL3Offset + sizeof(rte_ipv4_hdr) + icmp_len);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(e, frame_len));
  if (eth == nullptr) {  // a pool of buffers under 590 bytes
    rte_pktmbuf_free(e);
    counters_.icmp_errors_rate_limited.add();
    return;
  }
  eth->ether_type = to_be16(RTE_ETHER_TYPE_IPV4);
  auto* out = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  out->version_ihl = RTE_IPV4_VHL_DEF;
  out->type_of_service = 0xc0;  // precedence "internetwork control" (RFC 1812 §4.3.2.5)
  out->total_length = to_be16(static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + icmp_len));
  out->packet_id = 0;
  out->fragment_offset = 0;
  out->time_to_live = 64;
  out->next_proto_id = IPPROTO_ICMP;
  out->src_addr = rx->address.addr.be;
  out->dst_addr = ip->src_addr;
  out->hdr_checksum = 0;
  out->hdr_checksum = rte_ipv4_cksum(out);
  auto* icmp = reinterpret_cast<uint8_t*>(out + 1);
  icmp[0] = type;
  icmp[1] = code;
  icmp[2] = icmp[3] = icmp[4] = icmp[5] = 0;
  const rte_be16_t next_hop_mtu = to_be16(mtu);  // RFC 1191; zero in other errors
  std::memcpy(icmp + 6, &next_hop_mtu, 2);
  std::memcpy(icmp + 8, ip, quote);
  const rte_be16_t sum = internet_checksum({icmp, icmp_len});
  std::memcpy(icmp + 2, &sum, 2);
  e->port = m->port;
  counters_.icmp_errors_sent.add();
  forward(e, eth, Ip4{out->dst_addr});
}

bool Worker::take_icmp_error_token() noexcept {
  constexpr uint32_t kIcmpErrorsPerSecond = 1000, kIcmpErrorBurst = 100;
  static_assert(kIcmpErrorsPerSecond == 1000, "one token per millisecond");
  icmp_tokens_ = std::min(kIcmpErrorBurst, icmp_tokens_ + (now_ - icmp_tokens_at_));
  icmp_tokens_at_ = now_;
  if (icmp_tokens_ == 0) return false;
  --icmp_tokens_;
  return true;
}

// Returns a packet to the neighbour it came from, on the port it came in.
void Worker::send_back(rte_mbuf* m, ParsedPacket& p) noexcept {
  rte_ether_addr tmp = p.eth->src_addr;
  p.eth->src_addr = p.eth->dst_addr;
  p.eth->dst_addr = tmp;
  if (const PortAddress* rx = rx_port_address(m)) {
    std::memcpy(p.eth->src_addr.addr_bytes, rx->mac.bytes.data(), 6);
  }
  send(m, port_index_[m->port]);
}

void Worker::punt(rte_mbuf* m, PuntKind kind, PortIdx port, Ip4 next_hop) noexcept {
  PuntMeta& meta = punt_meta(m);
  meta.kind = kind;
  meta.port = static_cast<uint16_t>(port);
  meta.next_hop = next_hop;
  if (rte_ring_mp_enqueue(setup_.punt_ring, m) != 0) {
    drop(m, DropReason::kPuntFull);
    return;
  }
  punted_ = true;
  counters_.punted.add();
}

// A port's address is its own twin's; the DNS VIP, an address of every
// twin, is the twin's of the port the packet came in on.
std::optional<PortIdx> Worker::kernel_twin_for(const rte_mbuf* m, Ip4 dst) const noexcept {
  const Snapshot& snap = *snapshot_;
  uint16_t idx = port_index_[m->port];
  if (const PortAddress* own = snap.own_address(dst)) {
    idx = static_cast<uint16_t>(own - snap.ports.data());
  } else if (dst != snap.dns_vip) {
    return std::nullopt;
  }
  if (!has_kernel_twin(idx)) return std::nullopt;
  return PortIdx{idx};
}

// Up to the control thread, which writes it into the twin.  A token bucket
// bounds what one worker passes up, so a flood at a port's address cannot
// fill the punt ring that ARP and DNS share with it, nor keep the control
// thread writing into the kernel.
void Worker::to_kernel(rte_mbuf* m, PortIdx twin) noexcept {
  if (!kernel_bucket_.take(now_, setup_.kernel_per_s)) {
    drop(m, DropReason::kKernelRateLimited);
    return;
  }
  counters_.to_kernel.add();
  punt(m, PuntKind::kKernel, twin, Ip4{});
}

// RRL-style (Knot's and BIND's response rate limiting, here on the way in):
// each source's queries to the DNS VIP are a token bucket of a tenth of a
// second's worth of its rate, so one client flooding the VIP loses its own
// excess instead of filling the punt ring every client's queries (and ARP)
// share.  Each source's bucket is at one worker, dns_owner(), which gets
// all of its queries: so the limit is the rate per address whether the
// client sends from one socket (one worker by RSS) or from many.
bool Worker::dns_query_allowed(Ip4 src) noexcept {
  const uint32_t rate = snapshot_->dns_rate_limit;
  if (rate == 0) return true;
  return dns_buckets_[dns_source_hash(src) & (kDnsBuckets - 1)].take(now_, rate);
}

void Worker::hand_off(rte_mbuf* m, uint32_t owner) noexcept {
  Handoff& h = handoffs_[owner];
  h.pkts[h.n++] = m;  // at most a burst per burst (Handoff)
}

// One enqueue per owner per burst (issue 9: a burst operation, not one ring
// operation per packet).
void Worker::flush_handoffs() noexcept {
  for (uint32_t w = 0; w < setup_.count; ++w) {
    Handoff& h = handoffs_[w];
    if (h.n == 0) continue;
    const unsigned sent = rte_ring_mp_enqueue_burst(setup_.handoff_rings[w],
                                                    reinterpret_cast<void**>(h.pkts), h.n, nullptr);
    counters_.handoff_out.add(sent);
    for (unsigned i = sent; i < h.n; ++i) drop(h.pkts[i], DropReason::kHandoffFull);
    h.n = 0;
    // A sleeping owner (rx_interrupts) would otherwise wait for its timeout.
    if (!setup_.worker_wakes.empty() && setup_.worker_wakes[w] != nullptr && sent != 0) {
      setup_.worker_wakes[w]->ring();
    }
  }
}

// One tx_burst per port per burst, and the counter once (issue 9); what a
// full TX ring refuses is dropped and counted.
void Worker::flush_tx() noexcept {
  for (uint16_t i = 0; i < tx_.size(); ++i) {
    TxBatch& b = tx_[i];
    if (b.n == 0) continue;
    const uint16_t sent = rte_eth_tx_burst(setup_.port_ids[i], static_cast<uint16_t>(setup_.id), b.pkts, b.n);
    counters_.tx_packets.add(sent);
    for (uint16_t k = sent; k < b.n; ++k) drop(b.pkts[k], DropReason::kTxFull);
    b.n = 0;
  }
}

void Worker::drop(rte_mbuf* m, DropReason reason) noexcept {
  counters_.drop(reason);
  rte_pktmbuf_free(m);
}

}  // namespace podgate::dp
