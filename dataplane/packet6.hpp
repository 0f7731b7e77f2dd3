// IPv6 parsing (issue 11): validate an Ethernet frame carrying IPv6 and
// locate its upper-layer header past the extension headers a router may
// meet (RFC 8200 §4).  Pure functions over bytes, as packet.hpp; the
// worker calls them for frames whose EtherType is IPv6.
#pragma once

#include <cstddef>
#include <cstdint>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/drop_reason.hpp"
#include "dataplane/net.hpp"
#include "dataplane/packet.hpp"

namespace podgate::dp {

inline constexpr uint8_t kProtoIcmp6 = 58;
inline constexpr uint32_t kIp6L4Offset = sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr);  // 54, no extensions

// ICMPv6 message types podgate reads or writes (RFC 4443, RFC 4861).
enum Icmp6Type : uint8_t {
  kIcmp6DestinationUnreachable = 1,
  kIcmp6PacketTooBig = 2,
  kIcmp6TimeExceeded = 3,
  kIcmp6ParameterProblem = 4,
  kIcmp6EchoRequest = 128,
  kIcmp6EchoReply = 129,
  kIcmp6RouterSolicitation = 133,
  kIcmp6RouterAdvertisement = 134,
  kIcmp6NeighborSolicitation = 135,
  kIcmp6NeighborAdvertisement = 136,
  kIcmp6Redirect = 137,
};

// A validated IPv6 frame.  Every pointer is inside [frame, frame +
// frame_len); l4 + l4_len never passes the end of the frame.
struct ParsedPacket6 {
  uint8_t* frame = nullptr;
  uint32_t frame_len = 0;
  PacketKind kind = PacketKind::kTcp;  // kTcp, kUdp or kIcmp (ICMPv6); never kArp
  rte_ether_hdr* eth = nullptr;
  rte_ipv6_hdr* ip = nullptr;
  uint8_t* l4 = nullptr;  // the upper-layer header, after any extension headers
  // Upper-layer header + payload as the payload length gives them (less the
  // extension headers), so Ethernet padding is excluded.
  uint16_t l4_len = 0;
  uint8_t tcp_flags = 0;  // kTcp only
  // A fragment (RFC 8200 §4.5), refused by parse_packet6() as `fragment`
  // for parse_fragment6() to take on: its Fragment header; in a first
  // fragment also the upper-layer protocol found past the rest of the
  // header chain, with l4 and l4_len (this fragment's share).
  const uint8_t* fragment = nullptr;
  uint8_t upper = 0;

  Ip6 src() const noexcept { return Ip6::load(ip->src_addr); }
  Ip6 dst() const noexcept { return Ip6::load(ip->dst_addr); }
  rte_be16_t sport() const noexcept {
    return kind == PacketKind::kIcmp ? rte_be16_t{0} : reinterpret_cast<const rte_udp_hdr*>(l4)->src_port;
  }
  rte_be16_t dport() const noexcept {
    return kind == PacketKind::kIcmp ? rte_be16_t{0} : reinterpret_cast<const rte_udp_hdr*>(l4)->dst_port;
  }
  Proto proto() const noexcept { return kind == PacketKind::kTcp ? Proto::kTcp : Proto::kUdp; }
  uint8_t icmp_type() const noexcept { return l4[0]; }
  uint8_t icmp_code() const noexcept { return l4[1]; }
};

// Validates and locates headers of an IPv6 frame (EtherType 0x86DD); on
// failure returns false and sets `drop`.  Never reads beyond frame_len.
// The rules (RFC 8200 §3-§4, RFC 793, RFC 768 with RFC 8200 §8.1, RFC
// 4443 §2.1) are quoted where they are checked, in packet6.cpp.
//   - version 6, and a payload length that fits the frame (0, a jumbogram
//     of RFC 2675, is not forwarded): bad_ip_version, bad_ip_length;
//   - extension headers: Hop-by-Hop Options (first only), Destination
//     Options and Routing headers with no segments left are walked, at most
//     kMaxExtensionHeaders of them; a header cut short or out of place is
//     ipv6_bad_extension; a Routing header with segments left, ESP, AH, No
//     Next Header and anything else unknown is ipv6_extension;
//   - a Fragment header: an atomic fragment (offset 0, no more fragments)
//     is a whole packet and parsed on (RFC 6946); any other fragment is
//     refused as fragment, with out.fragment set (a first fragment's
//     header chain walked to its upper-layer header, RFC 7112), for
//     parse_fragment6(); a fragment whose length is not a multiple of 8
//     with more to come, or that would end past 65535 octets, is
//     ipv6_bad_extension (RFC 8200 §4.5);
//   - then TCP, UDP (whose checksum is mandatory in IPv6: zero is
//     bad_udp_checksum) or ICMPv6 (at least 4 bytes: bad_icmp); anything
//     else is unsupported_proto.
inline constexpr int kMaxExtensionHeaders = 8;
// The Next Header values of the extension headers podgate walks (RFC 8200 §4).
inline constexpr uint8_t kIp6HopByHop = 0, kIp6Routing = 43, kIp6Fragment = 44, kIp6DestinationOptions = 60;
bool parse_packet6(uint8_t* frame, uint32_t frame_len, ParsedPacket6& out, DropReason& drop) noexcept;

// A fragment parse_packet6() refused with DropReason::kFragment (`out` as it
// left it), as parse_fragment() for IPv4: a first fragment must carry a
// TCP or UDP header whole (else fragment_tiny; another upper layer, or a
// later fragment whose Fragment header names neither TCP, UDP nor an
// extension header, is fragment), and a later fragment that names TCP
// must not start at offset 1 (fragment_tiny, RFC 1858 §3).  A first fragment gets out.kind and
// out.tcp_flags; a later fragment has no l4, and its kind is its first
// fragment's (the caller's fragment table knows it).
bool parse_fragment6(ParsedPacket6& out, FragmentPart& part, DropReason& drop) noexcept;

// The ICMPv6 checksum over the pseudo-header of RFC 8200 §8.1 and the
// message at `l4` (its checksum field zeroed first), network order.
rte_be16_t icmp6_checksum(const rte_ipv6_hdr* ip, const uint8_t* l4, uint32_t len) noexcept;

}  // namespace podgate::dp
