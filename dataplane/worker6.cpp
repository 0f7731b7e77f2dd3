// The worker's IPv6 path (issue 11): the stages of worker.cpp for the other
// family, with the flow table, Maglev, ownership and counters shared.  A
// family's VIP forwards to the endpoints of the same family (no NAT46).
// IPv6 routers do not fragment and there is no header checksum (RFC 8200):
// a packet too big for the egress port is answered with Packet Too Big, and
// the NAT updates the TCP/UDP checksum alone.
#include <rte_malloc.h>

#include "dataplane/maglev.hpp"
#include "dataplane/nat6.hpp"
#include "dataplane/worker.hpp"

namespace podgate::dp {

namespace {

// The ICMPv6 checksum of a message is right when the sum over it, checksum
// included, and the pseudo-header, is all ones (RFC 4443 §2.3).
bool icmp6_checksum_ok(const ParsedPacket6& p) noexcept {
  return icmp6_checksum(p.ip, p.l4, p.l4_len) == 0;
}

}  // namespace

void Worker::process_ipv6(rte_mbuf* m, Arrival from) noexcept {
  ParsedPacket6 p;
  DropReason why;
  if (!parse_packet6(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), p, why)) {
    if (why == DropReason::kFragment) {
      handle_fragment<Family::kIpv6>(m, p, from == Arrival::kHandoff);
    } else {
      drop(m, why);
    }
    return;
  }
  if (p.kind == PacketKind::kIcmp) {
    handle_icmp6(m, p);
    return;
  }
  // With extension headers: the fast path's parse declined it.
  const FlowKey6 key{p.src(), p.dst(), p.sport(), p.dport(), p.proto()};
  classify6(m, p, key, flows6_.probe(FlowTable6::hash(key)), false);
}

// As classify(): a TCP or UDP packet whose flow is not known to be here.
void Worker::classify6(rte_mbuf* m, ParsedPacket6& p, const FlowKey6& key, const FlowProbe& probe,
                       bool looked_up, const NewFlowPick<Family::kIpv6>* pick) noexcept {
  const Snapshot& snap = *snapshot_;
  const Ip6& src = key.src;  // the key holds them as on the wire
  const Ip6& dst = key.dst;
  const ServiceData6* svc = pick != nullptr ? pick->svc : snap.find_service(dst, key.dport, key.proto);
  if (svc == nullptr) {
    if (snap.is_vip(dst)) {
      drop_port_unreachable(m, p.ip, src, DropReason::kNoService);
      return;
    }
    if (snap.own_address(dst) != nullptr) {
      drop(m, DropReason::kNotForUs);  // IPv6 has no kernel twin yet
      return;
    }
  }
  if (setup_.count > 1) {
    // As classify(): to a service the client is the source, else the destination.
    const uint32_t owner = svc != nullptr ? owners_.owner(src, key.sport) : owners_.owner(dst, key.dport);
    if (owner != setup_.id) {
      hand_off(m, owner);
      return;
    }
  }
  if (!looked_up) {
    if (const FlowHit6 hit = flows6_.find(key, probe, now_)) {
      handle_flow6(m, p, hit);
      return;
    }
  }
  if (svc == nullptr) {
    handle_stateless_reply6(m, p);
    return;
  }
  new_connection<Family::kIpv6>(m, p.ip, p.l4, p.tcp_flags, *svc, key, probe, pick);
}

// As handle_stateless_reply(): a Pod's reply with no flow entry, mapped back
// to the one service port it backs.
void Worker::handle_stateless_reply6(rte_mbuf* m, ParsedPacket6& p) noexcept {
  const ServiceData6* svc = snapshot_->find_backend(p.src(), p.sport(), p.proto());
  if (svc == nullptr) {
    drop(m, DropReason::kNoFlow);
    return;
  }
  if (!hop_limit_allows_forwarding(p.ip)) {
    drop_hop_limit_exceeded(m, p.ip);
    return;
  }
  const Ip6 client = p.dst();
  if (!fits_egress6(m, p.ip, client)) return;
  counters_.replies_stateless.add();
  TrafficCounters& t = traffic_[svc->slot_of(Backend6{p.src(), p.sport()})];
  t.packets_out.add();
  t.bytes_out.add(rte_pktmbuf_pkt_len(m));
  nat6_and_decrement_hop_limit<NatSide::kSource>(p.ip, p.l4, p.proto(), svc->vip, svc->port);
  forward_to_client6(m, p.eth, client);
}

// Sources no connection may come from, as source_refused(): the
// unspecified address, loopback, multicast and IPv4-mapped addresses
// (RFC 4291 §2.5.2, §2.5.3, §2.7, §2.5.5.2; RFC 6890), and podgate's own.
DropReason Worker::source_refused6(const Ip6& src) const noexcept {
  uint32_t third;  // bytes 8..11: 0000:ffff in ::ffff:0:0/96
  std::memcpy(&third, src.bytes.data() + 8, 4);
  const bool high_zero = src.word(0) == 0;
  const bool loopback = high_zero && src.word(1) == uint64_t{1} << 56;  // ::1 in memory order
  const bool mapped = high_zero && third == to_be32(0x0000'ffffu);
  if (src.is_zero() || loopback || src.is_multicast() || mapped) {
    return DropReason::kMartianSource;
  }
  if (snapshot_->may_be_own(src) && (snapshot_->is_vip(src) || snapshot_->own_address(src) != nullptr)) {
    return DropReason::kSourceIsOurs;
  }
  return DropReason::kCount;
}

// podgate answers NDP and echo for the port's own IPv6 address (on the port
// it arrived on) and for every IPv6 VIP, as ARP answers for IPv4.
bool Worker::answers_for6(const rte_mbuf* m, const Ip6& ip) const noexcept {
  if (snapshot_->is_vip(ip)) return true;
  const PortAddress* rx = rx_port_address(m);
  return rx != nullptr && rx->has_address6() && rx->address6.addr == ip;
}

void Worker::handle_icmp6(rte_mbuf* m, ParsedPacket6& p) noexcept {
  switch (p.icmp_type()) {
    case kIcmp6NeighborSolicitation: {
      Solicitation s;
      if (!find_solicitation(p, s) || !icmp6_checksum_ok(p)) {
        drop(m, DropReason::kBadNdp);
        return;
      }
      const PortAddress* rx = rx_port_address(m);
      if (rx == nullptr || !answers_for6(m, s.target)) {
        drop(m, DropReason::kNdpNotForUs);
        return;
      }
      const uint32_t len = make_neighbor_advertisement(p, s, rx->mac);
      if (len > rte_pktmbuf_data_len(m)) {
        if (rte_pktmbuf_append(m, static_cast<uint16_t>(len - rte_pktmbuf_data_len(m))) == nullptr) {
          drop(m, DropReason::kTooShort);
          return;
        }
      } else {
        rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_data_len(m) - len));
      }
      counters_.arp_replies.add();
      send(m, port_index_[m->port]);
      return;
    }
    case kIcmp6NeighborAdvertisement:
      // RFC 4861 §7.1.2: hop limit 255, code 0, at least 24 octets.
      if (p.ip->hop_limits != 255 || p.icmp_code() != 0 || p.l4_len < 24 || !icmp6_checksum_ok(p)) {
        drop(m, DropReason::kBadNdp);
        return;
      }
      if (!snapshot_->nd_may_teach(port_index_[m->port], Ip6::load(p.l4 + 8))) {
        drop(m, DropReason::kNdpNotForUs);
        return;
      }
      punt_to_learn(m, PuntKind::kNdp);
      return;
    case kIcmp6RouterSolicitation:
    case kIcmp6RouterAdvertisement:
    case kIcmp6Redirect:
      drop(m, DropReason::kNdpNotForUs);  // podgate takes its routes from its config
      return;
    case kIcmp6EchoRequest: {
      if (!answers_for6(m, p.dst())) {
        drop(m, DropReason::kNotForUs);
        return;
      }
      if (p.icmp_code() != 0 || !icmp6_checksum_ok(p)) {
        drop(m, DropReason::kBadIcmp);
        return;
      }
      make_echo_reply6(p);
      std::swap(p.eth->src_addr, p.eth->dst_addr);
      if (const PortAddress* rx = rx_port_address(m)) {
        std::memcpy(p.eth->src_addr.addr_bytes, rx->mac.bytes.data(), 6);
      }
      counters_.icmp_echo_replies.add();
      send(m, port_index_[m->port]);
      return;
    }
    case kIcmp6DestinationUnreachable:
    case kIcmp6PacketTooBig:
    case kIcmp6TimeExceeded:
    case kIcmp6ParameterProblem:
      if (!icmp6_checksum_ok(p)) {
        drop(m, DropReason::kBadIcmp);
        return;
      }
      handle_icmp_error<Family::kIpv6>(m, p);
      return;
    default:
      drop(m, answers_for6(m, p.dst()) ? DropReason::kIcmpNotEcho : DropReason::kNotForUs);
      return;
  }
}

// RFC 4443 §3.3: a router that drops a packet for its hop limit sends Time
// Exceeded (code 0, hop limit exceeded in transit) to its source.
void Worker::drop_hop_limit_exceeded(rte_mbuf* m, const rte_ipv6_hdr* ip) noexcept {
  send_icmp6_error(m, ip, kIcmp6TimeExceeded, 0, 0);
  drop(m, DropReason::kTtlExceeded);
}

// RFC 8200 §5: IPv6 routers never fragment; a packet longer than the
// egress link's MTU is dropped and its source told the MTU with Packet Too
// Big (RFC 4443 §3.2), which path MTU discovery (RFC 8201) needs.
bool Worker::check_egress_mtu6(rte_mbuf* m, const rte_ipv6_hdr* ip, const Ip6& dst) noexcept {
  const Route6* route = snapshot_->route(dst);
  if (route == nullptr) return true;  // forward6() drops it as no_route
  const uint16_t mtu = port_mtu(static_cast<uint16_t>(route->port));
  if (sizeof(rte_ipv6_hdr) + from_be16(ip->payload_len) <= mtu) return true;
  send_icmp6_error(m, ip, kIcmp6PacketTooBig, 0, mtu);
  drop(m, DropReason::kTooBig);
  return false;
}

// An ICMPv6 error about `ip` (as it arrived, before any NAT) to its source,
// from the arrival port's IPv6 address, quoting as much of the packet as
// fits in the minimum MTU, 1280 bytes (RFC 4443 §2.4(c)); rate-limited with
// the IPv4 errors (§2.4(f)).  Only TCP and UDP packets get here (ICMPv6 is
// answered or dropped by handle_icmp6, never forwarded), so never an error
// about an error or a redirect (§2.4(e.1), (e.2)).  Nor about a packet that
// was not sent to one node alone (§2.4(e.3)-(e.5)): to a multicast address,
// or as a link-layer multicast or broadcast (the group bit covers both),
// but for the errors the RFC excepts there: Packet Too Big, which path MTU
// discovery needs (RFC 8201), and Parameter Problem code 2.  Nor to a
// source that cannot be answered (§2.4(e.6)): multicast or unspecified.
void Worker::send_icmp6_error(const rte_mbuf* m, const rte_ipv6_hdr* ip, uint8_t type, uint8_t code,
                              uint32_t mtu) noexcept {
  Ip6 to;
  std::memcpy(to.bytes.data(), ip->src_addr, 16);
  if (to.is_zero() || to.is_multicast()) return;
  Ip6 dst;
  std::memcpy(dst.bytes.data(), ip->dst_addr, 16);
  const auto* arrived = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
  constexpr uint8_t kUnrecognizedOption = 2;
  const bool excepted = type == kIcmp6PacketTooBig || (type == kIcmp6ParameterProblem && code == kUnrecognizedOption);
  if (!excepted && (dst.is_multicast() || rte_is_multicast_ether_addr(&arrived->dst_addr))) return;
  const PortAddress* rx = rx_port_address(m);
  if (rx == nullptr || !rx->has_address6() || !take_icmp_error_token()) {
    counters_.icmp_errors_rate_limited.add();
    return;
  }
  rte_mbuf* e = rte_pktmbuf_alloc(m->pool);
  if (e == nullptr) {
    counters_.icmp_errors_rate_limited.add();
    return;
  }
  constexpr uint32_t kMaxQuote = 1280 - sizeof(rte_ipv6_hdr) - 8;
  const uint32_t available = rte_pktmbuf_pkt_len(m) - static_cast<uint32_t>(sizeof(rte_ether_hdr));
  const uint32_t quote =
      std::min({static_cast<uint32_t>(sizeof(rte_ipv6_hdr) + from_be16(ip->payload_len)), available, kMaxQuote});
  const uint32_t icmp_len = 8 + quote;
  const auto frame_len = static_cast<uint16_t>(kIp6L4Offset + icmp_len);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(e, frame_len));
  if (eth == nullptr) {
    rte_pktmbuf_free(e);
    counters_.icmp_errors_rate_limited.add();
    return;
  }
  eth->ether_type = to_be16(RTE_ETHER_TYPE_IPV6);
  auto* out = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
  out->vtc_flow = to_be32(6u << 28);
  out->payload_len = to_be16(static_cast<uint16_t>(icmp_len));
  out->proto = kProtoIcmp6;
  out->hop_limits = 64;
  std::memcpy(out->src_addr, rx->address6.addr.bytes.data(), 16);
  std::memcpy(out->dst_addr, to.bytes.data(), 16);
  auto* icmp = reinterpret_cast<uint8_t*>(out + 1);
  icmp[0] = type;
  icmp[1] = code;
  icmp[2] = icmp[3] = 0;
  const rte_be32_t field = to_be32(mtu);  // Packet Too Big: the MTU; unused (zero) otherwise
  std::memcpy(icmp + 4, &field, 4);
  std::memcpy(icmp + 8, ip, quote);
  const rte_be16_t sum = icmp6_checksum(out, icmp, icmp_len);
  std::memcpy(icmp + 2, &sum, 2);
  e->port = m->port;
  counters_.icmp_errors_sent.add();
  forward6(e, eth, to);
}

// As resolve_adjacency(): the route, then the next hop's MACs from the
// router cache or the shared IPv6 neighbour table; an unresolved next hop
// sends the packet to the control thread, which solicits it (RFC 4861
// §7.2.2) and holds the packet meanwhile.
const Worker::Adjacency6* Worker::resolve_adjacency6(rte_mbuf* m, const Ip6& dst, Adjacency6& slot) noexcept {
  const Snapshot& snap = *snapshot_;
  const Route6* route = snap.route(dst);
  if (route == nullptr) {
    drop(m, DropReason::kNoRoute);
    return nullptr;
  }
  counters_.adjacency_misses.add();
  if (route->via.is_zero()) return fill_adjacency6(m, *route, dst, slot);
  const uint64_t fold = route->via.word(0) ^ route->via.word(1);
  Adjacency6* router = &router_adjacency6_[static_cast<uint32_t>((fold * 0x9e37'79b9'7f4a'7c15u) >> 58)];
  static_assert(kRouterSlots == 1u << 6);
  if (!(router->ip == route->via) || router->epoch != adj_epoch_) [[unlikely]] {
    router = fill_adjacency6(m, *route, route->via, *router);
    if (router == nullptr) return nullptr;
  }
  if (slot.epoch != adj_epoch_ || slot.routed) {
    slot = *router;
    slot.ip = dst;
  }
  return router;
}

[[gnu::noinline]] const Worker::Adjacency6* Worker::fill_route_adjacency(rte_mbuf* m, uint32_t r,
                                                                       Adjacency6& entry) noexcept {
  const Route6& route = snapshot_->routes6[r - 1];
  counters_.adjacency_misses.add();
  return fill_adjacency6(m, route, route.via, entry);
}

[[gnu::noinline, gnu::cold]] Worker::Adjacency6* Worker::fill_adjacency6(rte_mbuf* m, const Route6& route,
                                                                       const Ip6& next_hop,
                                                                       Adjacency6& adj) noexcept {
  const uint64_t mac = setup_.neighbors6 != nullptr ? setup_.neighbors6->find_word(next_hop) : 0;
  if (mac == 0) {
    punt_unresolved(m, PuntKind::kUnresolved6, route.port, Ip4{});
    return nullptr;
  }
  const uint16_t port = static_cast<uint16_t>(route.port);
  std::memcpy(adj.macs, &mac, 6);
  std::memcpy(adj.macs + 6, snapshot_->ports[port].mac.bytes.data(), 6);
  adj.port_idx = port;
  adj.ip = next_hop;
  adj.epoch = adj_epoch_;
  adj.routed = !route.via.is_zero();
  return &adj;
}

// As the IPv4 drop_port_unreachable(): Destination Unreachable, port
// unreachable (RFC 4443 §3.1, code 4), which a TCP client takes as a hard
// error too (RFC 5461).
void Worker::drop_port_unreachable(rte_mbuf* m, const rte_ipv6_hdr* ip, const Ip6& src, DropReason why) noexcept {
  constexpr uint8_t kPortUnreachable = 4;
  if (source_refused6(src) == DropReason::kCount) {
    send_icmp6_error(m, ip, kIcmp6DestinationUnreachable, kPortUnreachable, 0);
  }
  drop(m, why);
}

}  // namespace podgate::dp
