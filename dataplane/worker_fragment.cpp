// Fragments of TCP and UDP, both families (issues 12 and 11;
// docs/dataplane.md): virtual reassembly, as VPP's shallow reassembly.
// Every fragment of one datagram first meets at the worker its fragment key
// names, whose table learns the ports from the first fragment (later ones
// that come before it wait there, bounded); then each goes to the
// connection's owner, with the ports in its FragmentMeta, and is NATed like
// the first: same Pod, same addresses.  IPv4 fragments for podgate itself
// go up to the kernel twin, whose stack reassembles them; IPv6 has no twin
// yet.  Written once, as templates on the family; off the established path.
#include "dataplane/maglev.hpp"
#include "dataplane/nat.hpp"
#include "dataplane/nat6.hpp"
#include "dataplane/worker.hpp"

namespace podgate::dp {

namespace {

FragmentKey fragment_key(const ParsedPacket& p) noexcept {
  return FragmentKey{p.ip->src_addr, p.ip->dst_addr, p.ip->packet_id, p.ip->next_proto_id, 0};
}

FragmentKey6 fragment_key(const ParsedPacket6& p) noexcept {
  FragmentKey6 key{p.src(), p.dst(), 0};
  std::memcpy(&key.id, p.fragment + 4, 4);  // RFC 8200 §4.5: Identification
  return key;
}

// parse_fragment() for either family.
bool parse_part(ParsedPacket& p, FragmentPart& part, DropReason& why) noexcept {
  return parse_fragment(p, part, why);
}
bool parse_part(ParsedPacket6& p, FragmentPart& part, DropReason& why) noexcept {
  return parse_fragment6(p, part, why);
}

// A held fragment's headers again: it was parsed when it arrived, so only
// its pointers are needed.
void reparse(rte_mbuf* m, ParsedPacket& p, FragmentPart& part) noexcept {
  DropReason why;
  (void)parse_packet(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), true, p, why);
  (void)parse_part(p, part, why);
}

void reparse(rte_mbuf* m, ParsedPacket6& p, FragmentPart& part) noexcept {
  DropReason why;
  (void)parse_packet6(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), p, why);
  (void)parse_part(p, part, why);
}

PacketKind kind_of(Proto proto) noexcept { return proto == Proto::kTcp ? PacketKind::kTcp : PacketKind::kUdp; }

}  // namespace

template <Family F>
void Worker::handle_fragment(rte_mbuf* m, typename FamilyTypes<F>::Parsed& p, bool meta_written) noexcept {
  // For podgate itself, of any protocol (`ping -s 2000` of a port's
  // address): not forwarded, so first, before the rules for what can be.
  const Snapshot& snap = *snapshot_;
  if constexpr (F == Family::kIpv4) {
    if (snap.own_address(p.dst()) != nullptr || p.dst() == snap.dns_vip) {
      if (const auto twin = kernel_twin_for(m, p.dst())) {
        to_kernel(m, *twin);
      } else {
        drop(m, DropReason::kFragment);
      }
      return;
    }
  } else {
    if (snap.own_address(p.dst()) != nullptr) {
      drop(m, DropReason::kFragment);
      return;
    }
  }
  FragmentPart part;
  DropReason why;
  if (!parse_part(p, part, why)) {
    drop(m, why);
    return;
  }
  FragmentMeta& meta = fragment_meta(m);
  if (meta_written && meta.annotated != 0) {
    p.kind = kind_of(meta.proto);
    forward_fragment<F>(m, p, part, meta.sport, meta.dport);  // we own its connection
    return;
  }
  const auto key = fragment_key(p);
  if (setup_.count > 1) {
    const uint32_t owner = fragment_owner(key.hash(), setup_.count);
    if (owner != setup_.id) {
      meta.annotated = 0;
      hand_off(m, owner);
      return;
    }
  }
  auto& fragments = fragment_table<F>();
  uint32_t stale = 0;
  auto& ctx = fragments.find_or_make(key, now_, stale);
  counters_.drops[static_cast<size_t>(DropReason::kFragmentUnmatched)].add(stale);
  if (part == FragmentPart::kFirst) {
    const rte_be16_t sport = p.sport(), dport = p.dport();
    const Proto proto = p.proto();
    fragments.learn_ports(ctx, proto, sport, dport, now_);
    rte_mbuf* waiting[FamilyTypes<F>::Fragments::kHeldPerDatagram];
    const uint8_t n = fragments.take_held(ctx, waiting);
    if (n == 0) {
      route_fragment<F>(m, p, part, sport, dport);
      return;
    }
    // The one packet that leaves as several: a TX batch or a handoff holds
    // a burst, one packet out per packet in.  So the batches go out before
    // (room for these) and after (room for the rest of the burst).
    flush_tx();
    flush_handoffs();
    route_fragment<F>(m, p, part, sport, dport);
    for (uint8_t i = 0; i < n; ++i) {
      typename FamilyTypes<F>::Parsed later;
      FragmentPart later_part;
      reparse(waiting[i], later, later_part);
      later.kind = kind_of(proto);
      route_fragment<F>(waiting[i], later, later_part, sport, dport);
    }
    flush_tx();
    flush_handoffs();
    return;
  }
  if (ctx.ports_known) {
    p.kind = kind_of(ctx.proto);
    route_fragment<F>(m, p, part, ctx.sport, ctx.dport);
  } else if (!fragments.hold(ctx, m)) {
    drop(m, DropReason::kFragmentUnmatched);
  }
}

template <Family F>
void Worker::route_fragment(rte_mbuf* m, typename FamilyTypes<F>::Parsed& p, FragmentPart part, rte_be16_t sport,
                            rte_be16_t dport) noexcept {
  if (setup_.count > 1) {
    // As classify(): to a service the client is the source, else the destination.
    const bool to_service = snapshot_->find_service(p.dst(), dport, p.proto()) != nullptr;
    const uint32_t owner = to_service ? owners_.owner(p.src(), sport) : owners_.owner(p.dst(), dport);
    if (owner != setup_.id) {
      FragmentMeta& meta = fragment_meta(m);
      meta.sport = sport;
      meta.dport = dport;
      meta.proto = p.proto();
      meta.annotated = 1;
      hand_off(m, owner);
      return;
    }
  }
  forward_fragment<F>(m, p, part, sport, dport);
}

// On the connection's owner.  The first fragment is any packet of its
// connection (it has the ports): classified as one.  A later one takes the
// NAT its first fragment got, from the flow entry, or, without one, as a
// new connection or a stateless reply would, and is counted as they count
// theirs (the endpoint's traffic; replies_stateless).
template <Family F>
void Worker::forward_fragment(rte_mbuf* m, typename FamilyTypes<F>::Parsed& p, FragmentPart part,
                              rte_be16_t sport, rte_be16_t dport) noexcept {
  using Key = typename FamilyTypes<F>::Key;
  using Addr = typename FamilyTypes<F>::Addr;
  using Table = typename FamilyTypes<F>::Table;
  auto& flows = table<F>();
  if (part == FragmentPart::kFirst) {
    const Key key{p.src(), p.dst(), p.sport(), p.dport(), p.proto()};
    if constexpr (F == Family::kIpv4) {
      classify(m, p, key, flows.probe(Table::hash(key)), false);
    } else {
      classify6(m, p, key, flows.probe(Table::hash(key)), false);
    }
    return;
  }
  const Key key{p.src(), p.dst(), sport, dport, p.proto()};
  Addr to;
  bool reverse = false;
  bool stateless = false;
  uint16_t slot = kUntrackedSlot;
  auto hit = flows.find(key, flows.probe(Table::hash(key)), now_);
  if (hit && hit.flow->gen != gen_) {
    // As handle_flow(): the snapshot changed since the flow was last
    // checked (the first fragment may have come before), and it keeps its
    // Pod only while the Pod is ready or draining.  Else it ends, and this
    // fragment goes below as one without a flow: a client's is placed
    // afresh, a reply's finds no backend.
    counters_.flows_revalidated.add();
    auto& flow = *hit.flow;
    const auto* svc = snapshot_->find_service(flow.vip, flow.vip_port, flow.proto);
    if (svc != nullptr && svc->keeps(typename FamilyTypes<F>::Backend{flow.pod, flow.pod_port})) {
      flow.gen = gen_;
    } else {
      counters_.flows_endpoint_gone.add();
      flows.erase(flow);
      hit = {};
    }
  }
  if (hit) {
    reverse = hit.reverse;
    to = reverse ? hit.flow->vip : hit.flow->pod;
    slot = hit.flow->stats_slot;
  } else if (const auto* svc = snapshot_->find_service(p.dst(), dport, p.proto())) {
    // As a new connection: the sources a first fragment is refused for.
    if (const DropReason why = source_refused(p.src()); why != DropReason::kCount) {
      drop(m, why);
      return;
    }
    if (svc->ready.empty()) {
      drop(m, DropReason::kNoEndpoint);
      return;
    }
    const uint32_t h = flow_hash(p.src(), p.dst(), sport, dport, p.proto(), svc->client_ip_affinity);
    const uint16_t i = maglev_lookup(svc->maglev, h);
    to = svc->ready[i].ip;
    slot = i < svc->ready_slots.size() ? svc->ready_slots[i] : kUntrackedSlot;
  } else if (const auto* back = snapshot_->find_backend(p.src(), sport, p.proto())) {
    reverse = true;
    stateless = true;
    to = back->vip;
    slot = back->slot_of(typename FamilyTypes<F>::Backend{p.src(), sport});
  } else {
    drop(m, DropReason::kNoFlow);
    return;
  }
  // RFC 1812 §5.3.1 / RFC 8200 §3: only now that the fragment is known to
  // be forwarded, as a whole packet is.  One that nothing here forwards
  // (above: its first fragment was dropped, and its source may be spoofed)
  // was dropped for that, whatever its TTL, and answered with no Time
  // Exceeded.
  if (!ttl_allows_forwarding(p.ip)) {
    drop_ttl_exceeded(m, p.ip);
    return;
  }
  const Addr next = reverse ? p.dst() : to;
  if constexpr (F == Family::kIpv4) {
    if (!fits_egress(m, p.ip, next)) return;
  } else {
    if (!fits_egress6(m, p.ip, next)) return;
  }
  TrafficCounters& t = traffic_[slot];
  if (reverse) {
    t.packets_out.add();
    t.bytes_out.add(rte_pktmbuf_pkt_len(m));
    if (stateless) counters_.replies_stateless.add();
  } else {
    t.packets_in.add();
    t.bytes_in.add(rte_pktmbuf_pkt_len(m));
  }
  if constexpr (F == Family::kIpv4) {
    if (reverse) {
      nat_address_and_decrement_ttl<NatSide::kSource>(p.ip, to);
    } else {
      nat_address_and_decrement_ttl<NatSide::kDestination>(p.ip, to);
    }
    forward(m, p.eth, next);
  } else {
    if (reverse) {
      nat6_address_and_decrement_hop_limit<NatSide::kSource>(p.ip, to);
    } else {
      nat6_address_and_decrement_hop_limit<NatSide::kDestination>(p.ip, to);
    }
    forward6(m, p.eth, next);
  }
}

// When due (poll_once(): the per-poll cost is one compare), a few contexts
// of each table: while fragments wait, 64 every millisecond, so that they
// are let go of within 16 ms of their time; else 4 every 16 ms, so that
// every context is visited every 4 s (or every 10 s, were polls 10 ms
// apart), long before the clock comes round (BasicFragmentTable::sweep()).
// A busy worker's packets pay nothing for it: a burst is far less than 16 ms.
void Worker::sweep_fragments() noexcept {
  const bool held = fragments_.held() != 0 || fragments6_.held() != 0;
  fragments_sweep_due_ = now_ + (held ? 1 : 16);
  const uint32_t dropped = fragments_.sweep(now_, fragments_.held() != 0 ? 64 : 4) +
                           fragments6_.sweep(now_, fragments6_.held() != 0 ? 64 : 4);
  counters_.drops[static_cast<size_t>(DropReason::kFragmentUnmatched)].add(dropped);
}

template void Worker::handle_fragment<Family::kIpv4>(rte_mbuf*, ParsedPacket&, bool) noexcept;
template void Worker::handle_fragment<Family::kIpv6>(rte_mbuf*, ParsedPacket6&, bool) noexcept;

}  // namespace podgate::dp
