// IPv6 neighbour discovery on the control thread (issue 11): what
// punt_handler.cpp does with ARP, with RFC 4861's messages.  Workers answer
// solicitations themselves (nat6.hpp); here the advertisements they punt
// teach the IPv6 neighbour table, and packets waiting for a next hop are
// held (as many as for ARP, as long) while it is solicited.
#include <algorithm>
#include <cstring>
#include <optional>

#include <rte_ether.h>
#include <rte_ip.h>

#include "control/log.hpp"
#include "control/publish/punt_handler.hpp"
#include "dataplane/packet6.hpp"

namespace podgate::ctl {

namespace {

// The Link-Layer Address option of `type` (1 source, 2 target) in the
// options of an NDP message of `len` bytes from `first`; null if none or
// malformed (RFC 4861 §4.6: a zero length is invalid).
const uint8_t* link_layer_option(const uint8_t* l4, uint32_t len, uint32_t first, uint8_t type) {
  for (uint32_t at = first; at + 2 <= len;) {
    const uint32_t option_len = l4[at + 1] * 8u;
    if (option_len == 0 || option_len > len - at) return nullptr;
    if (l4[at] == type && option_len == 8) return l4 + at + 2;
    at += option_len;
  }
  return nullptr;
}

}  // namespace

// A neighbour advertisement (RFC 4861 §7.2.5), learnt as ARP replies are
// (punt_handler.cpp on_arp): one answering a solicitation of ours creates
// or updates the entry; an unsolicited one with the Override flag updates
// an entry that exists (a Pod that came back with a new MAC) but creates
// none; anything else changes nothing.  Static neighbours never change.
void PuntHandler::on_ndp(rte_mbuf* m, const dp::Snapshot& snap, uint64_t now_ms) {
  dp::ParsedPacket6 p;
  dp::DropReason why;
  if (setup_.neighbors6 == nullptr ||
      !dp::parse_packet6(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), p, why) ||
      p.kind != dp::PacketKind::kIcmp || p.icmp_type() != dp::kIcmp6NeighborAdvertisement || p.l4_len < 24) {
    drop(m, dp::DropReason::kBadNdp);
    return;
  }
  dp::Ip6 target;
  std::memcpy(target.bytes.data(), p.l4 + 8, 16);
  const uint16_t rx = dp::punt_meta(m).port;
  if (!snap.nd_may_teach(rx, target)) {
    drop(m, dp::DropReason::kNdpNotForUs);
    return;
  }
  constexpr uint8_t kSolicitedFlag = 0x40, kOverrideFlag = 0x20;
  const auto asked = asked6_.find(target);
  const bool solicited =
      (p.l4[4] & kSolicitedFlag) != 0 && asked != asked6_.end() && now_ms - asked->second <= kSolicitedMs;
  const std::optional<dp::MacAddr> had = setup_.neighbors6->find(target);
  const bool known = had.has_value();
  if (static6_.count(target) != 0 || !(solicited || (known && (p.l4[4] & kOverrideFlag) != 0))) {
    drop(m, dp::DropReason::kArpUnsolicited);
    return;
  }
  // The MAC is the Target Link-Layer Address option's, never the frame's
  // source (a bridge's or a proxy's): without the option an advertisement
  // creates no entry and changes none (RFC 4861 §7.2.5), and one we asked
  // for confirms the entry it answers.
  const uint8_t* tlla = link_layer_option(p.l4, p.l4_len, 24, 2);
  if (tlla == nullptr) {
    if (solicited && known) {
      asked6_.erase(asked);
      learnt6_[target] = confirmed_at(dp::crc_ip6(target, 0), rx, now_ms);
      rte_pktmbuf_free(m);
      return;
    }
    drop(m, dp::DropReason::kBadNdp);
    return;
  }
  dp::MacAddr mac;
  std::memcpy(mac.bytes.data(), tlla, 6);
  // RFC 4861 §7.2.5: an answer without Override naming another link-layer
  // address than the entry's does not update it (a proxy's answer, or a
  // late one, must not take a neighbour over); a reachable entry only
  // becomes stale, so it is probed at the MAC it has, and forgotten if that
  // no longer answers.
  if (known && (p.l4[4] & kOverrideFlag) == 0 && *had != mac) {
    if (solicited) asked6_.erase(asked);
    if (auto l = learnt6_.find(target); l != learnt6_.end() && l->second.probes == 0) {
      l->second.stale_at_ms = std::min(l->second.stale_at_ms, now_ms);
    }
    drop(m, dp::DropReason::kArpUnsolicited);
    return;
  }
  if (!setup_.neighbors6->set(target, mac)) {
    if (table_full_logged_++ % 256 == 0) {
      log_info("IPv6 neighbour table: no room for " + dp::to_string(target) + "; " +
               std::to_string(table_full_logged_) + " time(s) so far");
    }
    drop(m, dp::DropReason::kNeighborTableFull);
    return;
  }
  if (solicited) asked6_.erase(asked);
  learnt6_[target] = confirmed_at(dp::crc_ip6(target, 0), rx, now_ms);
  rte_pktmbuf_free(m);
  flush6(target, mac, snap);
}

// A packet a worker could not send for want of its next hop's MAC: the
// next hop is found again from its destination (the IPv6 punt carries no
// address), and the packet waits while it is solicited.
void PuntHandler::on_unresolved6(rte_mbuf* m, const dp::Snapshot& snap, uint64_t now_ms) {
  const dp::PortIdx port{dp::punt_meta(m).port};
  if (setup_.neighbors6 == nullptr || rte_pktmbuf_data_len(m) < dp::kIp6L4Offset) {
    drop(m, dp::DropReason::kNoRoute);
    return;
  }
  const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, sizeof(rte_ether_hdr));
  dp::Ip6 dst;
  std::memcpy(dst.bytes.data(), ip->dst_addr, 16);
  const dp::Route6* route = snap.route(dst);
  if (route == nullptr || route->port != port) {
    drop(m, dp::DropReason::kNoRoute);  // the routes changed meanwhile
    return;
  }
  const dp::Ip6 next_hop = route->via.is_zero() ? dst : route->via;
  if (auto mac = setup_.neighbors6->find(next_hop)) {
    send_resolved(m, port, *mac, snap);
    return;
  }
  wait_for(
      asked6_, hops6_, next_hop, m, port,
      [&](const dp::Ip6& ip, dp::PortIdx out) { send_solicitation(snap, ip, out, now_ms); }, now_ms);
}

void PuntHandler::flush6(const dp::Ip6& ip, const dp::MacAddr& mac, const dp::Snapshot& snap) {
  auto it = hops6_.find(ip);
  if (it == hops6_.end()) return;
  for (Waiting& w : it->second.packets) {
    send_resolved(w.m, w.port, mac, snap);
    --waiting_count_;
  }
  it->second.packets.clear();
}

// RFC 4861 §7.2.6: to all nodes (ff02::1, Ethernet 33:33:00:00:00:01),
// Override set and Solicited not, the port's own address as target.
void PuntHandler::send_unsolicited_advertisement(const dp::PortAddress& own, dp::PortIdx port) {
  constexpr uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  constexpr uint8_t kOverride = 0x20, kTargetLinkLayer = 2;
  dp::Ip6 all_nodes;
  std::memcpy(all_nodes.bytes.data(), kAllNodes, 16);
  send_neighbor_discovery(own, port, dp::kIcmp6NeighborAdvertisement, kOverride, own.address6.addr,
                          kTargetLinkLayer, all_nodes, dp::MacAddr{{0x33, 0x33, 0, 0, 0, 1}});
}

// RFC 4861 §7.2.2: a multicast solicitation to the target's solicited-node
// address (RFC 4291 §2.7.1; Ethernet 33:33 + its last 32 bits, RFC 2464
// §7), with our Source Link-Layer Address option.  A probe of a stale
// entry (§7.3.3) goes unicast, to the target's address at the MAC it was
// known by.
void PuntHandler::send_solicitation(const dp::Snapshot& snap, const dp::Ip6& target, dp::PortIdx port,
                                    uint64_t now_ms, const dp::MacAddr* known) {
  asked6_[target] = now_ms;
  const uint16_t idx = static_cast<uint16_t>(port);
  if (idx >= snap.ports.size() || !snap.ports[idx].has_address6()) return;
  const dp::Ip6 group = dp::solicited_node(target);
  const dp::MacAddr group_mac{{0x33, 0x33, group.bytes[12], group.bytes[13], group.bytes[14], group.bytes[15]}};
  constexpr uint8_t kSourceLinkLayer = 1;
  send_neighbor_discovery(snap.ports[idx], port, dp::kIcmp6NeighborSolicitation, 0, target, kSourceLinkLayer,
                          known != nullptr ? target : group, known != nullptr ? *known : group_mac);
}

// A Neighbor Solicitation or Advertisement (RFC 4861 §4.3, §4.4) from the
// port's address at its MAC, hop limit 255: `type`, its flags byte, its
// target, and one link-layer address option (`option`: 1 source, 2
// target) holding the port's MAC.
void PuntHandler::send_neighbor_discovery(const dp::PortAddress& own, dp::PortIdx port, uint8_t type,
                                          uint8_t flags, const dp::Ip6& target, uint8_t option,
                                          const dp::Ip6& to, const dp::MacAddr& to_mac) {
  rte_mbuf* m = rte_pktmbuf_alloc(setup_.pool);
  if (m == nullptr) return;
  constexpr uint32_t kLen = 32;  // 24 + the 8-byte option
  auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, dp::kIp6L4Offset + kLen));
  if (eth == nullptr) {
    rte_pktmbuf_free(m);
    return;
  }
  std::memcpy(eth->dst_addr.addr_bytes, to_mac.bytes.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, own.mac.bytes.data(), 6);
  eth->ether_type = dp::to_be16(RTE_ETHER_TYPE_IPV6);
  auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
  ip->vtc_flow = dp::to_be32(6u << 28);
  ip->payload_len = dp::to_be16(kLen);
  ip->proto = dp::kProtoIcmp6;
  ip->hop_limits = 255;
  std::memcpy(ip->src_addr, own.address6.addr.bytes.data(), 16);
  std::memcpy(ip->dst_addr, to.bytes.data(), 16);
  auto* nd = reinterpret_cast<uint8_t*>(ip + 1);
  std::memset(nd, 0, kLen);
  nd[0] = type;
  nd[4] = flags;
  std::memcpy(nd + 8, target.bytes.data(), 16);
  nd[24] = option;
  nd[25] = 1;  // its length in units of 8 bytes
  std::memcpy(nd + 26, own.mac.bytes.data(), 6);
  const rte_be16_t sum = dp::icmp6_checksum(ip, nd, kLen);
  std::memcpy(nd + 2, &sum, 2);
  transmit(m, port);
}

}  // namespace podgate::ctl
