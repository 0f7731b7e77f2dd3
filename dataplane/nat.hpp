// In-place packet rewrites of the fast path: DNAT and reverse NAT of TCP/UDP
// with the TTL decrement, and the ICMP echo / ARP replies podgate answers
// itself.
//
// All take headers parse_packet() or parse_flow_packet() located, so the
// bytes they touch are known to be inside the frame.  Checksums are updated incrementally
// (RFC 1624 eqn. 3, see checksum.hpp for the byte-order argument) so the cost
// does not depend on the payload length.
#pragma once

#include <bit>
#include <cstring>

#include "dataplane/checksum.hpp"
#include "dataplane/net.hpp"
#include "dataplane/packet.hpp"

namespace podgate::dp {

namespace nat_detail {

// The 16-bit word at `p` as it sits in the packet (network order).
inline rte_be16_t load_word(const void* p) noexcept {
  rte_be16_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

}  // namespace nat_detail

// RFC 1812 §5.3.1: a router decrements TTL when forwarding and must not
// forward a packet whose TTL would reach zero; the caller drops one with
// TTL <= 1 as kTtlExceeded before it changes anything.
inline bool ttl_allows_forwarding(const rte_ipv4_hdr* ip) noexcept { return ip->time_to_live > 1; }

// The one rewrite of a forwarded TCP or UDP packet (new flows, pinned
// flows and stateless replies alike): DNAT (kDestination: VIP:port ->
// Pod:target_port) or reverse NAT (kSource: Pod:target_port -> VIP:port),
// and the TTL decrement of RFC 1812 §5.3.1, with one IPv4 header checksum
// update for both.  The caller checked ttl_allows_forwarding().  The
// TTL/protocol word (RFC 791 §3.1) changes by one in the TTL's byte, so
// ~old + new is the constant 0xfffe in that word's loaded (little-endian)
// order: no load of the old word is needed.  The L4 checksum follows the
// address (through the pseudo-header, RFC 793 §3.1 / RFC 768) and the port.
// tests/unit/checksum_test.cpp holds it to a full recomputation.
enum class NatSide : uint8_t { kDestination, kSource };

// The IPv4 header's part of the rewrite: the address, the TTL, and one
// header checksum update for both, `addr_term` being csum_term32(the
// address replaced, `to`).
template <NatSide kSide>
inline void nat_header_with_address_term(rte_ipv4_hdr* ip, Ip4 to, uint16_t addr_term) noexcept {
  ip->hdr_checksum = csum_apply_terms(ip->hdr_checksum, addr_term, uint16_t{0xfffe});  // and TTL - 1
  --ip->time_to_live;
  (kSide == NatSide::kDestination ? ip->dst_addr : ip->src_addr) = to.be;
}

// The rewrite with the address's checksum term given: csum_term32(the
// address replaced, `to`).  A pinned flow keeps its term (Flow::csum_addr)
// and gives it, or its complement for a reply, so that a packet's rewrite
// needs neither address's halves.  The IPv4 header checksum takes the term
// and the TTL's constant, the TCP/UDP checksum the term and the port's
// change: one load and one folding of each checksum.
template <NatSide kSide>
inline void nat_with_address_term(rte_ipv4_hdr* ip, uint8_t* l4, Proto proto, Ip4 to, rte_be16_t to_port,
                                  uint16_t addr_term) noexcept {
  auto* ports = reinterpret_cast<rte_udp_hdr*>(l4);  // TCP has its ports there too
  constexpr bool kDst = kSide == NatSide::kDestination;
  nat_header_with_address_term<kSide>(ip, to, addr_term);
  const rte_be16_t from_port = kDst ? ports->dst_port : ports->src_port;
  const uint16_t port_term = csum_add16(static_cast<uint16_t>(~from_port), to_port);
  (kDst ? ports->dst_port : ports->src_port) = to_port;
  if (proto == Proto::kTcp) {
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(l4);
    tcp->cksum = csum_apply_terms(tcp->cksum, addr_term, port_term);
  } else if (ports->dgram_cksum != 0) {
    // RFC 768: "An all zero transmitted checksum value means that the
    // transmitter generated no checksum"; it must stay that way.  "If the
    // computed checksum is zero, it is transmitted as all ones" (0xffff in
    // either byte order), since zero would mean "none".
    const rte_be16_t c = csum_apply_terms(ports->dgram_cksum, addr_term, port_term);
    ports->dgram_cksum = c == 0 ? rte_be16_t{0xffff} : c;
  }
}

// The IPv4 header's part alone: a fragment after the first (RFC 791
// §3.2) has no L4 header; its ports and the L4 checksum travel in the
// first fragment, which the caller NATs whole.
template <NatSide kSide>
inline void nat_address_and_decrement_ttl(rte_ipv4_hdr* ip, Ip4 to) noexcept {
  const rte_be32_t from = kSide == NatSide::kDestination ? ip->dst_addr : ip->src_addr;
  nat_header_with_address_term<kSide>(ip, to, csum_term32(from, to.be));
}

// The rewrite of a packet without a kept term (a new flow's first, a
// stateless reply): the term from the address it replaces.
template <NatSide kSide>
inline void nat_and_decrement_ttl(rte_ipv4_hdr* ip, uint8_t* l4, Proto proto, Ip4 to,
                                  rte_be16_t to_port) noexcept {
  const rte_be32_t from = kSide == NatSide::kDestination ? ip->dst_addr : ip->src_addr;
  nat_with_address_term<kSide>(ip, l4, proto, to, to_port, csum_term32(from, to.be));
}
static_assert(std::endian::native == std::endian::little, "the TTL constant above is little-endian");

// Turns an ICMP echo request (RFC 792, type 8; the caller checked the type)
// into its echo reply in place: addresses swapped, type 0, identifier,
// sequence number and data echoed unchanged.  The caller swaps the MACs.
inline void make_echo_reply(ParsedPacket& p) noexcept {
  constexpr uint8_t kDefaultTtl = 64;  // RFC 1700's recommended IP TTL
  rte_ipv4_hdr* iph = p.ip;
  const rte_be32_t requester = iph->src_addr;
  iph->src_addr = iph->dst_addr;
  iph->dst_addr = requester;
  iph->time_to_live = kDefaultTtl;
  // A fresh header: recompute over its 20 bytes rather than track the swap
  // (which is sum-neutral) and the TTL.
  iph->hdr_checksum = 0;
  iph->hdr_checksum = rte_ipv4_cksum(iph);

  // ICMP has no pseudo-header, so only the type/code word changes.
  rte_icmp_hdr* icmp = p.icmp();
  const rte_be16_t old_word = nat_detail::load_word(icmp);
  icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
  const rte_be16_t new_word = nat_detail::load_word(icmp);
  icmp->icmp_cksum = csum_update16(icmp->icmp_cksum, old_word, new_word);
}

// The datagram an ICMP error quotes (RFC 792: "the internet header plus the
// first 64 bits of the original datagram's data"; RFC 1812 §4.3.2.3 allows
// more, up to 576 bytes in all): a TCP or UDP packet in IPv4.
struct QuotedPacket {
  rte_ipv4_hdr* ip = nullptr;
  uint8_t* l4 = nullptr;  // its ports are the first 4 bytes
  uint32_t l4_len = 0;    // bytes of it quoted, at least 8
  Proto proto = Proto::kTcp;
  rte_udp_hdr* ports() const noexcept { return reinterpret_cast<rte_udp_hdr*>(l4); }
  Ip4 src() const noexcept { return Ip4{ip->src_addr}; }
  Ip4 dst() const noexcept { return Ip4{ip->dst_addr}; }
};

// ICMP types that report on a datagram (RFC 792) and that podgate
// translates for NAT'd flows (RFC 5508 §7).
inline bool is_translated_icmp_error(uint8_t type) noexcept {
  constexpr uint8_t kDestinationUnreachable = 3, kTimeExceeded = 11;
  return type == kDestinationUnreachable || type == kTimeExceeded;
}

// Locates the quoted datagram of an ICMP error.  Else why not: bad_icmp
// when the quote is too short to hold an IPv4 header and 8 bytes, or is
// not TCP/UDP; icmp_error_no_flow when it quotes a later fragment, whose
// ports are in its first.
inline DropReason find_quoted_packet(const ParsedPacket& p, QuotedPacket& q) noexcept {
  constexpr uint32_t kIcmpErrorHeader = 8;  // type, code, checksum, 4 bytes (unused / MTU)
  if (p.l4_len < kIcmpErrorHeader + sizeof(rte_ipv4_hdr) + 8) return DropReason::kBadIcmp;
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p.l4 + kIcmpErrorHeader);
  const uint32_t ihl = (ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * 4u;
  if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(rte_ipv4_hdr) || kIcmpErrorHeader + ihl + 8 > p.l4_len) {
    return DropReason::kBadIcmp;
  }
  if (ip->next_proto_id != static_cast<uint8_t>(Proto::kTcp) &&
      ip->next_proto_id != static_cast<uint8_t>(Proto::kUdp)) {
    return DropReason::kBadIcmp;
  }
  if ((from_be16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) != 0) return DropReason::kIcmpErrorNoFlow;
  q.ip = ip;
  q.l4 = reinterpret_cast<uint8_t*>(ip) + ihl;
  q.l4_len = p.l4_len - kIcmpErrorHeader - ihl;
  q.proto = static_cast<Proto>(ip->next_proto_id);
  return DropReason::kCount;
}

// Translates an ICMP error about a NAT'd flow in place (RFC 5508 §7.2):
// one end of the quoted datagram becomes `to:to_port` (kDestination: its
// destination, kSource: its source), with the quoted IP header checksum
// and, when it is quoted, the quoted TCP/UDP checksum updated as the NAT of
// the datagram itself would; the outer address `outer` names (if any)
// becomes `outer_to`; the outer TTL drops by one (RFC 1812 §5.3.1: the
// caller checked it).  The outer header and ICMP checksums are recomputed
// whole: the path is rare, the message short.
enum class OuterAddress : uint8_t { kUnchanged, kSource, kDestination };

inline void translate_icmp_error(ParsedPacket& p, QuotedPacket& q, NatSide side, Ip4 to, rte_be16_t to_port,
                                 OuterAddress outer, Ip4 outer_to) noexcept {
  rte_udp_hdr* ports = q.ports();
  const bool dst = side == NatSide::kDestination;
  const rte_be32_t old_addr = dst ? q.ip->dst_addr : q.ip->src_addr;
  const rte_be16_t old_port = dst ? ports->dst_port : ports->src_port;
  q.ip->hdr_checksum = csum_update32(q.ip->hdr_checksum, old_addr, to.be);
  if (dst) {
    q.ip->dst_addr = to.be;
    ports->dst_port = to_port;
  } else {
    q.ip->src_addr = to.be;
    ports->src_port = to_port;
  }
  constexpr uint32_t kTcpChecksumEnd = offsetof(rte_tcp_hdr, cksum) + 2;
  if (q.proto == Proto::kTcp && q.l4_len >= kTcpChecksumEnd) {
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(q.l4);
    tcp->cksum = csum_update32_16(tcp->cksum, old_addr, to.be, old_port, to_port);
  } else if (q.proto == Proto::kUdp && ports->dgram_cksum != 0) {
    const rte_be16_t c = csum_update32_16(ports->dgram_cksum, old_addr, to.be, old_port, to_port);
    ports->dgram_cksum = c == 0 ? rte_be16_t{0xffff} : c;
  }
  if (outer == OuterAddress::kSource) p.ip->src_addr = outer_to.be;
  if (outer == OuterAddress::kDestination) p.ip->dst_addr = outer_to.be;
  --p.ip->time_to_live;
  p.ip->hdr_checksum = 0;
  p.ip->hdr_checksum = rte_ipv4_cksum(p.ip);
  rte_icmp_hdr* icmp = p.icmp();
  icmp->icmp_cksum = 0;
  icmp->icmp_cksum = internet_checksum({p.l4, p.l4_len});
}

// Turns an ARP request for an address podgate owns into the reply in place
// (RFC 826, "Packet Reception": swap hardware and protocol fields, put the
// local hardware and protocol addresses in the sender fields, set the opcode
// to reply, and send it to the old sender's hardware address).
inline void make_arp_reply(ParsedPacket& p, const MacAddr& our_mac) noexcept {
  rte_arp_ipv4& a = p.arp->arp_data;
  const rte_ether_addr requester_mac = a.arp_sha;
  const uint32_t requester_ip = a.arp_sip;
  const uint32_t asked_ip = a.arp_tip;

  p.arp->arp_opcode = to_be16(RTE_ARP_OP_REPLY);
  a.arp_tha = requester_mac;
  a.arp_tip = requester_ip;
  std::memcpy(a.arp_sha.addr_bytes, our_mac.bytes.data(), RTE_ETHER_ADDR_LEN);
  a.arp_sip = asked_ip;

  p.eth->dst_addr = requester_mac;
  std::memcpy(p.eth->src_addr.addr_bytes, our_mac.bytes.data(), RTE_ETHER_ADDR_LEN);
}

}  // namespace podgate::dp
