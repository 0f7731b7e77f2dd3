// IPv6 rewrites (issue 11): DNAT and reverse NAT of TCP/UDP with the hop
// limit decrement, and the neighbour advertisements and echo replies
// podgate answers itself.  As nat.hpp, for headers parse_packet6() or
// parse_flow_packet6() located.  IPv6 has no header checksum (RFC 8200
// §3): only the TCP/UDP checksum follows the address, through the
// pseudo-header (§8.1), and the port, updated incrementally (RFC 1624
// eqn. 3).
#pragma once

#include <cstring>

#include "dataplane/checksum.hpp"
#include "dataplane/nat.hpp"
#include "dataplane/packet6.hpp"

namespace podgate::dp {

// RFC 8200 §3: the hop limit is decremented by each forwarding node, and a
// packet is discarded when it reaches zero; the caller drops one with hop
// limit <= 1 as kTtlExceeded (and says so, RFC 4443 §3.3) before it
// changes anything.
inline bool hop_limit_allows_forwarding(const rte_ipv6_hdr* ip) noexcept { return ip->hop_limits > 1; }

// RFC 1624 eqn. 3 for a 16-byte address and a port changing together.
inline rte_be16_t csum_update_ip6_port(rte_be16_t check, const uint8_t* old_ip, const Ip6& new_ip,
                                       rte_be16_t old_port, rte_be16_t new_port) noexcept {
  return csum_apply_delta(check, csum_delta_ip6_port(old_ip, new_ip.bytes.data(), old_port, new_port));
}

// The IPv6 NAT of one TCP or UDP packet, as nat_and_decrement_ttl():
// kDestination rewrites VIP:port to Pod:target_port, kSource Pod:target_port
// to VIP:port; the hop limit drops by one.  `delta` is the checksum term of
// the change (csum_delta_ip6_port(), kept in the flow record).  The caller
// checked hop_limit_allows_forwarding().
template <NatSide kSide>
inline void nat6_with_delta(rte_ipv6_hdr* ip, uint8_t* l4, Proto proto, const Ip6& to, rte_be16_t to_port,
                            uint16_t delta) noexcept {
  auto* ports = reinterpret_cast<rte_udp_hdr*>(l4);
  if (proto == Proto::kTcp) {
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(l4);
    tcp->cksum = csum_apply_delta(tcp->cksum, delta);
  } else {
    // RFC 8200 §8.1: a UDP checksum that computes to zero is sent as all
    // ones (zero would mean "none", which IPv6 forbids).
    const rte_be16_t c = csum_apply_delta(ports->dgram_cksum, delta);
    ports->dgram_cksum = c == 0 ? rte_be16_t{0xffff} : c;
  }
  if constexpr (kSide == NatSide::kDestination) {
    std::memcpy(ip->dst_addr, to.bytes.data(), 16);
    ports->dst_port = to_port;
  } else {
    std::memcpy(ip->src_addr, to.bytes.data(), 16);
    ports->src_port = to_port;
  }
  --ip->hop_limits;
}

// The same for a packet with no flow record: the term computed here.
template <NatSide kSide>
inline void nat6_and_decrement_hop_limit(rte_ipv6_hdr* ip, uint8_t* l4, Proto proto, const Ip6& to,
                                         rte_be16_t to_port) noexcept {
  constexpr bool kDst = kSide == NatSide::kDestination;
  const auto* ports = reinterpret_cast<const rte_udp_hdr*>(l4);
  const uint8_t* from = kDst ? ip->dst_addr : ip->src_addr;
  const rte_be16_t from_port = kDst ? ports->dst_port : ports->src_port;
  nat6_with_delta<kSide>(ip, l4, proto, to, to_port,
                         csum_delta_ip6_port(from, to.bytes.data(), from_port, to_port));
}

// The name both families' templates use (worker_icmp_error.cpp).
inline bool ttl_allows_forwarding(const rte_ipv6_hdr* ip) noexcept { return hop_limit_allows_forwarding(ip); }

// The packet an ICMPv6 error quotes (RFC 4443 §2.4(c): as much of the
// invoking packet as fits in 1280 bytes): a TCP or UDP packet in IPv6, or
// the first fragment of one, with the extension headers podgate forwards.
struct QuotedPacket6 {
  rte_ipv6_hdr* ip = nullptr;
  uint8_t* l4 = nullptr;  // its ports are the first 4 bytes
  uint32_t l4_len = 0;    // bytes of it quoted, at least 8
  Proto proto = Proto::kTcp;
  rte_udp_hdr* ports() const noexcept { return reinterpret_cast<rte_udp_hdr*>(l4); }
  Ip6 src() const noexcept { return Ip6::load(ip->src_addr); }
  Ip6 dst() const noexcept { return Ip6::load(ip->dst_addr); }
};

// Locates the quoted packet of an ICMPv6 error, past the header chain
// parse_packet6() walks (Hop-by-Hop, Routing and Destination Options
// headers, and the Fragment header of a first fragment: path MTU discovery
// of a fragmented datagram quotes its first fragment).  Else why not:
// bad_icmp when the quote is too short for the chain and 8 bytes, or holds
// no TCP/UDP packet; icmp_error_no_flow when it quotes a later fragment,
// whose ports are in its first.
inline DropReason find_quoted_packet(const ParsedPacket6& p, QuotedPacket6& q) noexcept {
  constexpr uint32_t kIcmpErrorHeader = 8;  // type, code, checksum, 4 bytes (unused / MTU / pointer)
  constexpr uint32_t kQuotedChain = kIcmpErrorHeader + sizeof(rte_ipv6_hdr);
  if (p.l4_len < kQuotedChain + 8 || (p.l4[kIcmpErrorHeader] >> 4) != 6) return DropReason::kBadIcmp;
  auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p.l4 + kIcmpErrorHeader);
  uint8_t next = ip->proto;
  uint8_t* at = p.l4 + kQuotedChain;
  uint32_t left = p.l4_len - kQuotedChain;
  for (int n = 0; next == kIp6HopByHop || next == kIp6Routing || next == kIp6DestinationOptions ||
                  next == kIp6Fragment;
       ++n) {
    if (n == kMaxExtensionHeaders || left < 8) return DropReason::kBadIcmp;
    // RFC 8200 §4.5: the offset is the top 13 bits of the third and fourth
    // octets; §4.3-§4.6: other headers' length is in 8s, less the first 8.
    if (next == kIp6Fragment && (at[2] << 8 | (at[3] & 0xf8)) != 0) return DropReason::kIcmpErrorNoFlow;
    const uint32_t len = next == kIp6Fragment ? 8 : (uint32_t{at[1]} + 1) * 8;
    if (len + 8 > left) return DropReason::kBadIcmp;
    next = at[0];
    at += len;
    left -= len;
  }
  if (next != static_cast<uint8_t>(Proto::kTcp) && next != static_cast<uint8_t>(Proto::kUdp)) {
    return DropReason::kBadIcmp;
  }
  q.ip = ip;
  q.l4 = at;
  q.l4_len = left;
  q.proto = static_cast<Proto>(next);
  return DropReason::kCount;
}

// As translate_icmp_error() (nat.hpp) for IPv6: one end of the quoted
// packet becomes `to:to_port`, its TCP/UDP checksum (when quoted) updated as
// the NAT of the packet itself would; the outer address `outer` names
// becomes `outer_to`; the outer hop limit drops by one (the caller checked
// it); the ICMPv6 checksum, over the new pseudo-header, is recomputed whole.
inline void translate_icmp_error(ParsedPacket6& p, QuotedPacket6& q, NatSide side, const Ip6& to,
                                 rte_be16_t to_port, OuterAddress outer, const Ip6& outer_to) noexcept {
  rte_udp_hdr* ports = q.ports();
  const bool dst = side == NatSide::kDestination;
  uint8_t* addr = dst ? q.ip->dst_addr : q.ip->src_addr;
  const rte_be16_t port = dst ? ports->dst_port : ports->src_port;
  constexpr uint32_t kTcpChecksumEnd = offsetof(rte_tcp_hdr, cksum) + 2;
  if (q.proto == Proto::kTcp && q.l4_len >= kTcpChecksumEnd) {
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(q.l4);
    tcp->cksum = csum_update_ip6_port(tcp->cksum, addr, to, port, to_port);
  } else if (q.proto == Proto::kUdp) {
    const rte_be16_t c = csum_update_ip6_port(ports->dgram_cksum, addr, to, port, to_port);
    ports->dgram_cksum = c == 0 ? rte_be16_t{0xffff} : c;
  }
  std::memcpy(addr, to.bytes.data(), 16);
  if (dst) {
    ports->dst_port = to_port;
  } else {
    ports->src_port = to_port;
  }
  if (outer == OuterAddress::kSource) std::memcpy(p.ip->src_addr, outer_to.bytes.data(), 16);
  if (outer == OuterAddress::kDestination) std::memcpy(p.ip->dst_addr, outer_to.bytes.data(), 16);
  --p.ip->hop_limits;
  p.l4[2] = p.l4[3] = 0;
  const rte_be16_t sum = icmp6_checksum(p.ip, p.l4, p.l4_len);
  std::memcpy(p.l4 + 2, &sum, 2);
}

// The address of a later fragment (RFC 8200 §4.5), which has no upper-layer
// header: its ports and the TCP/UDP checksum travel in the first fragment,
// which the caller NATs whole.  With no header checksum, only the address
// and the hop limit change.
template <NatSide kSide>
inline void nat6_address_and_decrement_hop_limit(rte_ipv6_hdr* ip, const Ip6& to) noexcept {
  std::memcpy(kSide == NatSide::kDestination ? ip->dst_addr : ip->src_addr, to.bytes.data(), 16);
  --ip->hop_limits;
}

// An ICMPv6 echo reply (RFC 4443 §4.2) made in place from the request: the
// addresses swap (which leaves the checksum's sum unchanged), the type goes
// from 128 to 129, and the hop limit starts afresh.
inline void make_echo_reply6(ParsedPacket6& p) noexcept {
  uint8_t tmp[16];
  std::memcpy(tmp, p.ip->src_addr, 16);
  std::memcpy(p.ip->src_addr, p.ip->dst_addr, 16);
  std::memcpy(p.ip->dst_addr, tmp, 16);
  p.ip->hop_limits = 64;
  const rte_be16_t old_word = nat_detail::load_word(p.l4);
  p.l4[0] = kIcmp6EchoReply;
  const rte_be16_t new_word = nat_detail::load_word(p.l4);
  rte_be16_t check;
  std::memcpy(&check, p.l4 + 2, 2);
  check = csum_update16(check, old_word, new_word);
  std::memcpy(p.l4 + 2, &check, 2);
}

// A neighbour solicitation podgate answers (RFC 4861 §4.3), read by
// find_solicitation().
struct Solicitation {
  Ip6 target;
  const uint8_t* source_mac = nullptr;  // its Source Link-Layer Address option, if any
};

// RFC 4861 §7.1.1's validity checks of a received neighbour solicitation:
// hop limit 255, code 0, at least 24 octets, a target that is not
// multicast, options of non-zero length that fit, and, from the
// unspecified address (duplicate address detection), a solicited-node
// multicast destination and no source link-layer option.
inline bool find_solicitation(const ParsedPacket6& p, Solicitation& s) noexcept {
  if (p.ip->hop_limits != 255 || p.icmp_code() != 0 || p.l4_len < 24) return false;
  std::memcpy(s.target.bytes.data(), p.l4 + 8, 16);
  if (s.target.is_multicast()) return false;
  s.source_mac = nullptr;
  for (uint32_t at = 24; at < p.l4_len;) {
    if (p.l4_len - at < 2 || p.l4[at + 1] == 0 || p.l4[at + 1] * 8u > p.l4_len - at) return false;
    constexpr uint8_t kSourceLinkLayer = 1;
    if (p.l4[at] == kSourceLinkLayer && p.l4[at + 1] == 1) s.source_mac = p.l4 + at + 2;
    at += p.l4[at + 1] * 8u;
  }
  const Ip6 src = p.src();
  if (src.is_zero() && (s.source_mac != nullptr || !p.dst().is_multicast())) return false;
  return true;
}

// Turns the solicitation in `p` into the solicited advertisement of
// `s.target` at `mac` (RFC 4861 §4.4, §7.2.4): to the solicitation's source
// (all-nodes ff02::1 when that is unspecified, with S clear), from the
// target, hop limit 255, flags Router (podgate forwards), Solicited and
// Override, and the Target Link-Layer Address option.  The frame becomes
// exactly 14 + 40 + 32 bytes; the caller trims the mbuf to frame_len().
inline uint32_t make_neighbor_advertisement(ParsedPacket6& p, const Solicitation& s,
                                            const MacAddr& mac) noexcept {
  constexpr uint32_t kNaLen = 32;  // 24 + the 8-byte option
  const Ip6 src = p.src();
  const bool dad = src.is_zero();
  rte_ether_hdr* eth = p.eth;
  std::memcpy(eth->dst_addr.addr_bytes, eth->src_addr.addr_bytes, 6);
  if (dad) {
    const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
    std::memcpy(eth->dst_addr.addr_bytes, all_nodes_mac, 6);
  }
  std::memcpy(eth->src_addr.addr_bytes, mac.bytes.data(), 6);
  rte_ipv6_hdr* ip = p.ip;
  ip->vtc_flow = to_be32(6u << 28);
  ip->payload_len = to_be16(kNaLen);
  ip->proto = kProtoIcmp6;
  ip->hop_limits = 255;
  if (dad) {
    const uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};  // ff02::1
    std::memcpy(ip->dst_addr, all_nodes, 16);
  } else {
    std::memcpy(ip->dst_addr, src.bytes.data(), 16);
  }
  std::memcpy(ip->src_addr, s.target.bytes.data(), 16);
  uint8_t* na = reinterpret_cast<uint8_t*>(ip + 1);  // no extension headers in what we send
  std::memset(na, 0, kNaLen);
  na[0] = kIcmp6NeighborAdvertisement;
  constexpr uint8_t kRouter = 0x80, kSolicited = 0x40, kOverride = 0x20;
  na[4] = static_cast<uint8_t>(kRouter | (dad ? 0 : kSolicited) | kOverride);
  std::memcpy(na + 8, s.target.bytes.data(), 16);
  na[24] = 2;  // Target Link-Layer Address
  na[25] = 1;  // 8 octets
  std::memcpy(na + 26, mac.bytes.data(), 6);
  const rte_be16_t sum = icmp6_checksum(ip, na, kNaLen);
  std::memcpy(na + 2, &sum, 2);
  p.l4 = na;
  p.l4_len = kNaLen;
  return kIp6L4Offset + kNaLen;
}

}  // namespace podgate::dp
