// libFuzzer target over the worker's packet code that needs no EAL: the
// full parse (options, fragments, ARP, ICMP), the fast parse, the NAT
// rewrite and the ICMP error translation (tools/fuzz.sh --target packet
// builds and runs it with AddressSanitizer and UBSan).  Every input is a
// frame; the code must never read or write outside it, and must keep its
// promises:
//   - parse_flow_packet() takes exactly the TCP/UDP packets parse_packet()
//     takes in a 20-byte header, with the same key;
//   - a NAT rewrite of a packet whose checksums were right leaves them
//     right (IPv4 header, and TCP/UDP when the whole segment is there);
//   - an ICMP error translation leaves a right outer header and ICMP
//     checksum, and a quoted IP header whose checksum was right stays right;
//   - a fragment parse_fragment() takes has its L4 header inside the frame
//     when first, none when later, and an address-only NAT keeps its
//     header checksum right;
//   - IPv6 (issue 11): parse_packet6() keeps its upper-layer header inside
//     the frame whatever the extension headers claim, parse_flow_packet6()
//     takes exactly the TCP/UDP packets it takes with no extension header,
//     with the same key, and an IPv6 NAT keeps a right TCP/UDP checksum
//     right; a neighbour solicitation it accepts becomes an advertisement
//     with a right ICMPv6 checksum; a fragment parse_fragment6() takes has
//     its TCP/UDP header whole inside the frame when first, none when later;
//     an ICMPv6 error translation leaves a right ICMPv6 checksum.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "dataplane/checksum.hpp"
#include "dataplane/flow_packet.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/nat.hpp"
#include "dataplane/nat6.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/packet6.hpp"

namespace {

using namespace podgate::dp;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "packet_fuzz: %s\n", what);
  std::abort();
}

bool ip_header_ok(const rte_ipv4_hdr* ip) {
  const uint32_t ihl = (ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * 4u;
  return internet_checksum_ok({reinterpret_cast<const uint8_t*>(ip), ihl});
}

// The TCP/UDP checksum over the pseudo-header and the whole segment is right
// (UDP: or absent).
bool l4_checksum_ok(const ParsedPacket& p) {
  if (p.kind == PacketKind::kUdp && p.udp()->dgram_cksum == 0) return true;
  const uint32_t s = rte_be_to_cpu_32(p.ip->src_addr), d = rte_be_to_cpu_32(p.ip->dst_addr);
  uint32_t pseudo = (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + p.ip->next_proto_id + p.l4_len;
  return csum_fold(ones_sum({p.l4, p.l4_len}, pseudo)) == 0xffffu;
}

void check_fast_parse(uint8_t* frame, uint32_t len, bool verified, bool parsed, const ParsedPacket& p) {
  FlowKey4 key;  // every byte must be written: the worker reuses its keys
  std::memset(static_cast<void*>(&key), 0xa5, sizeof key);
  uint8_t flags = 0;
  const bool fast = parse_flow_packet(frame, len, verified, key, flags);
  const bool flow_kind = parsed && (p.kind == PacketKind::kTcp || p.kind == PacketKind::kUdp) &&
                         (p.ip->version_ihl & 0x0f) == 5;
  if (fast != flow_kind) broken("fast parse disagrees with parse_packet");
  if (fast && !(key == FlowKey4{p.src(), p.dst(), p.sport(), p.dport(), p.proto()})) {
    broken("fast parse read another flow key");
  }
}

void check_nat(ParsedPacket& p) {
  if (!ttl_allows_forwarding(p.ip)) return;
  const bool ip_was_ok = ip_header_ok(p.ip);
  const bool l4_was_ok = l4_checksum_ok(p);
  if (p.src().be & 1) {
    nat_and_decrement_ttl<NatSide::kDestination>(p.ip, p.l4, p.proto(), Ip4{0x0a0b0c0d}, to_be16(8080));
  } else {
    nat_and_decrement_ttl<NatSide::kSource>(p.ip, p.l4, p.proto(), Ip4{0x14000060}, to_be16(80));
  }
  if (ip_was_ok && !ip_header_ok(p.ip)) broken("NAT broke the IPv4 header checksum");
  if (l4_was_ok && !l4_checksum_ok(p)) broken("NAT broke the TCP/UDP checksum");
}

void check_icmp_error(ParsedPacket& p) {
  if (!is_translated_icmp_error(p.icmp()->icmp_type) || !ttl_allows_forwarding(p.ip)) return;
  QuotedPacket q;
  if (find_quoted_packet(p, q) != DropReason::kCount) return;
  const uint32_t ihl = (q.ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * 4u;
  const bool quoted_ip_was_ok = internet_checksum_ok({reinterpret_cast<const uint8_t*>(q.ip), ihl});
  const bool about_reply = (q.ip->src_addr & 1) != 0;
  translate_icmp_error(p, q, about_reply ? NatSide::kSource : NatSide::kDestination, Ip4{0x0a0b0c0d},
                       to_be16(8080), about_reply ? OuterAddress::kDestination : OuterAddress::kSource,
                       Ip4{0x14000060});
  if (!ip_header_ok(p.ip)) broken("translation broke the outer header checksum");
  if (!internet_checksum_ok({p.l4, p.l4_len})) broken("translation broke the ICMP checksum");
  if (quoted_ip_was_ok && !internet_checksum_ok({reinterpret_cast<const uint8_t*>(q.ip), ihl})) {
    broken("translation broke the quoted header checksum");
  }
}

void check_fragment(ParsedPacket& p) {
  FragmentPart part;
  DropReason why;
  if (!parse_fragment(p, part, why)) return;
  const uint8_t* end = p.frame + p.frame_len;
  if (part == FragmentPart::kLater) {
    if (p.l4 != nullptr) broken("a later fragment has an L4 header");
  } else if (p.l4 == nullptr || p.l4 + p.l4_len > end ||
             p.l4_len < (p.kind == PacketKind::kTcp ? 20u : 8u)) {
    broken("a first fragment's L4 header is not whole in the frame");
  }
  if (!ttl_allows_forwarding(p.ip)) return;
  const bool ip_was_ok = ip_header_ok(p.ip);
  nat_address_and_decrement_ttl<NatSide::kDestination>(p.ip, Ip4{0x0a0b0c0d});
  if (ip_was_ok && !ip_header_ok(p.ip)) broken("address NAT broke the IPv4 header checksum");
}

// The TCP/UDP checksum over the IPv6 pseudo-header (RFC 8200 §8.1) and the
// whole segment is right.
bool l4_checksum6_ok(const ParsedPacket6& p) {
  uint32_t pseudo = ones_sum({p.ip->src_addr, 16});
  pseudo = ones_sum({p.ip->dst_addr, 16}, pseudo);
  pseudo += static_cast<uint8_t>(p.proto()) + p.l4_len;
  return csum_fold(ones_sum({p.l4, p.l4_len}, pseudo)) == 0xffffu;
}

void check_fragment6(ParsedPacket6& p) {
  if (p.fragment == nullptr || p.fragment < p.frame + kIp6L4Offset || p.fragment + 8 > p.frame + p.frame_len) {
    broken("an IPv6 fragment's Fragment header is not inside the frame");
  }
  FragmentPart part;
  DropReason why;
  if (!parse_fragment6(p, part, why)) return;
  if (part == FragmentPart::kLater) {
    if (p.l4 != nullptr) broken("a later IPv6 fragment has an upper-layer header");
  } else if (p.l4 == nullptr || p.l4 + p.l4_len > p.frame + p.frame_len ||
             p.l4_len < (p.kind == PacketKind::kTcp ? 20u : 8u)) {
    broken("a first IPv6 fragment's TCP/UDP header is not whole in the frame");
  }
  if (hop_limit_allows_forwarding(p.ip)) {
    nat6_address_and_decrement_hop_limit<NatSide::kDestination>(p.ip, *parse_ip6("fd00:17::10"));
  }
}

void check_ipv6(uint8_t* frame, uint32_t len) {
  ParsedPacket6 p;
  DropReason why;
  const bool parsed = parse_packet6(frame, len, p, why);
  if (!parsed && why == DropReason::kFragment) check_fragment6(p);
  FlowKey6 key;  // every byte must be written, as parse_flow_packet()'s
  std::memset(static_cast<void*>(&key), 0xa5, sizeof key);
  uint8_t flags = 0;
  const bool fast = parse_flow_packet6(frame, len, key, flags);
  const bool flow_kind = parsed && p.kind != PacketKind::kIcmp && p.l4 == frame + kIp6L4Offset;
  if (fast != flow_kind) broken("IPv6 fast parse disagrees with parse_packet6");
  if (!parsed) return;
  if (p.l4 < frame + kIp6L4Offset || p.l4 + p.l4_len > frame + len) broken("IPv6 upper layer outside the frame");
  if (fast && !(key == FlowKey6{p.src(), p.dst(), p.sport(), p.dport(), p.proto()})) {
    broken("IPv6 fast parse read another flow key");
  }
  if (p.kind == PacketKind::kIcmp) {
    Solicitation s;
    if (p.icmp_type() == kIcmp6NeighborSolicitation && find_solicitation(p, s) && len >= kIp6L4Offset + 32) {
      const uint32_t out = make_neighbor_advertisement(p, s, MacAddr{{2, 0, 0, 0, 0, 1}});
      if (icmp6_checksum(p.ip, p.l4, out - kIp6L4Offset) != 0) broken("advertisement checksum wrong");
    }
    QuotedPacket6 q;
    if (p.icmp_type() >= kIcmp6DestinationUnreachable && p.icmp_type() <= kIcmp6ParameterProblem &&
        find_quoted_packet(p, q) == DropReason::kCount && hop_limit_allows_forwarding(p.ip)) {
      if (q.l4 < p.l4 || q.l4 + q.l4_len > frame + len) broken("the quoted IPv6 packet is outside the frame");
      translate_icmp_error(p, q, NatSide::kDestination, *parse_ip6("fd00:96::20"), to_be16(80),
                           OuterAddress::kSource, *parse_ip6("fd00:96::20"));
      if (icmp6_checksum(p.ip, p.l4, p.l4_len) != 0) broken("ICMPv6 error translation left a wrong checksum");
    }
    return;
  }
  if (!hop_limit_allows_forwarding(p.ip)) return;
  const bool was_ok = l4_checksum6_ok(p);
  const Ip6 to = *parse_ip6((p.ip->src_addr[15] & 1) != 0 ? "fd00:17::10" : "fd00:96::20");
  if ((p.ip->src_addr[15] & 1) != 0) {
    nat6_and_decrement_hop_limit<NatSide::kDestination>(p.ip, p.l4, p.proto(), to, to_be16(8080));
  } else {
    nat6_and_decrement_hop_limit<NatSide::kSource>(p.ip, p.l4, p.proto(), to, to_be16(80));
  }
  if (was_ok && !l4_checksum6_ok(p)) broken("IPv6 NAT broke the TCP/UDP checksum");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 9018) return 0;
  // The first byte says whether the NIC verified the IPv4 checksum; the
  // rest is the frame, in a buffer of its exact size so that ASan sees any
  // read past its end.
  const bool verified = (data[0] & 1) != 0;
  const auto len = static_cast<uint32_t>(size - 1);
  std::unique_ptr<uint8_t[]> frame(new uint8_t[len == 0 ? 1 : len]);
  std::memcpy(frame.get(), data + 1, len);

  if (len >= 14 && frame[12] == 0x86 && frame[13] == 0xdd) {
    check_ipv6(frame.get(), len);
    return 0;
  }
  ParsedPacket p;
  DropReason why;
  const bool parsed = parse_packet(frame.get(), len, verified, p, why);
  check_fast_parse(frame.get(), len, verified, parsed, p);
  if (!parsed && why == DropReason::kFragment) check_fragment(p);
  if (!parsed) return 0;
  if (p.kind == PacketKind::kTcp || p.kind == PacketKind::kUdp) {
    check_nat(p);
  } else if (p.kind == PacketKind::kIcmp) {
    check_icmp_error(p);
  }
  return 0;
}
