// The fast path's parse: a TCP or UDP packet in a plain IPv4 header, the
// only kind the flow table serves, read once into its flow key.
//
// It accepts exactly the TCP and UDP packets parse_packet() accepts with a
// 20-byte header, and nothing else: everything it declines (ARP, ICMP,
// options, fragments, anything malformed) goes to parse_packet(), which
// handles it or names the drop reason.  tests/unit/packet_test.cpp holds the
// two to that on every frame it has, and on random mutations of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "dataplane/flow_table.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/packet6.hpp"

namespace podgate::dp {

inline constexpr uint32_t kFlowL3Offset = sizeof(rte_ether_hdr);                    // 14
inline constexpr uint32_t kFlowL4Offset = kFlowL3Offset + sizeof(rte_ipv4_hdr);     // 34

// RFC 1071: whether the one's complement sum of a 20-byte IPv4 header,
// checksum field included, is all ones.  Two 64-bit words and one 32-bit
// word added with end-around carry (RFC 1071 §2(C): the sum may be taken
// in wider words; byte order does not matter, §2(B)).  That sum keeps the
// header's value modulo 2^64 - 1, a multiple of 0xffff, and folding it to
// 16 bits ends in all ones exactly when it is a nonzero multiple of 0xffff
// (0x10000 = 1 mod 0xffff): so the test is one divisibility check, which
// compilers make a multiply and a compare.  The sum is zero only for an
// all-zero header.
inline bool ipv4_header_checksum_ok(const rte_ipv4_hdr* ip) noexcept {
  uint64_t a, b;
  uint32_t c;
  std::memcpy(&a, ip, 8);
  std::memcpy(&b, reinterpret_cast<const unsigned char*>(ip) + 8, 8);
  std::memcpy(&c, reinterpret_cast<const unsigned char*>(ip) + 16, 4);
  unsigned long long sum;
  const bool carry1 = __builtin_uaddll_overflow(a, b, &sum);
  sum += carry1;  // the carry goes round; this add cannot carry again
  const bool carry2 = __builtin_uaddll_overflow(sum, c, &sum);
  sum += carry2;
  return sum != 0 && sum % 0xffffu == 0;
}

// Fills `key` and `tcp_flags` (0 for UDP) when `frame` is a TCP or UDP
// packet the fast path can take; false sends it to parse_packet().  The
// rules are parse_packet()'s (RFC 1812 §5.2.2, RFC 793 §3.1, RFC 768),
// which quotes them.  Every refusal is marked unlikely: unmarked, g++ laid
// parts of the accepted path out as side blocks, two more taken jumps a
// packet (callgrind --collect-jumps).
inline bool parse_flow_packet(const uint8_t* frame, uint32_t frame_len, bool ip_checksum_verified,
                              FlowKey4& key, uint8_t& tcp_flags) noexcept {
  constexpr uint8_t kVersion4Ihl5 = 0x45;
  if (frame_len < kFlowL4Offset) [[unlikely]] return false;
  rte_be16_t ether_type;
  std::memcpy(&ether_type, frame + 12, sizeof ether_type);
  const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(frame + kFlowL3Offset);
  if (ether_type != to_be16(RTE_ETHER_TYPE_IPV4) || ip->version_ihl != kVersion4Ihl5) [[unlikely]] return false;
  const uint32_t total_length = from_be16(ip->total_length);
  if (total_length < sizeof(rte_ipv4_hdr) || total_length > frame_len - kFlowL3Offset) [[unlikely]] return false;
  if ((ip->fragment_offset & to_be16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) [[unlikely]] {
    return false;
  }
  if (!ip_checksum_verified && !ipv4_header_checksum_ok(ip)) [[unlikely]] return false;
  const uint32_t l4_len = total_length - static_cast<uint32_t>(sizeof(rte_ipv4_hdr));
  const uint8_t* l4 = frame + kFlowL4Offset;
  const uint8_t proto = ip->next_proto_id;
  if (proto == static_cast<uint8_t>(Proto::kTcp)) {
    const auto* tcp = reinterpret_cast<const rte_tcp_hdr*>(l4);
    if (l4_len < sizeof(rte_tcp_hdr)) [[unlikely]] return false;  // before reading any TCP byte
    if (!tcp_data_offset_ok(tcp, l4_len)) [[unlikely]] return false;
    tcp_flags = tcp->tcp_flags;
  } else if (proto == static_cast<uint8_t>(Proto::kUdp)) {
    const auto* udp = reinterpret_cast<const rte_udp_hdr*>(l4);
    if (l4_len < sizeof(rte_udp_hdr) || from_be16(udp->dgram_len) != l4_len) [[unlikely]] return false;
    tcp_flags = 0;
  } else [[unlikely]] {
    return false;
  }
  // Source and destination address (adjacent at IP offset 12), then the
  // source and destination port: the key's first 12 bytes, as on the wire;
  // then the protocol and the zero pad, one word.
  auto* k = reinterpret_cast<unsigned char*>(&key);
  std::memcpy(k, frame + kFlowL3Offset + offsetof(rte_ipv4_hdr, src_addr), 8);
  std::memcpy(k + offsetof(FlowKey4, sport), l4, 4);
  const uint32_t proto_and_pad = proto;  // little endian: the protocol byte first
  std::memcpy(k + offsetof(FlowKey4, proto), &proto_and_pad, 4);
  return true;
}

// The ParsedPacket of a frame parse_flow_packet() accepted, without parsing
// it again: what the classification and NAT code take.
inline ParsedPacket flow_packet_view(uint8_t* frame, uint32_t frame_len, Proto proto,
                                     uint8_t tcp_flags) noexcept {
  ParsedPacket p;
  p.frame = frame;
  p.frame_len = frame_len;
  p.kind = proto == Proto::kTcp ? PacketKind::kTcp : PacketKind::kUdp;
  p.eth = reinterpret_cast<rte_ether_hdr*>(frame);
  p.ip = reinterpret_cast<rte_ipv4_hdr*>(frame + kFlowL3Offset);
  p.l4 = frame + kFlowL4Offset;
  p.l4_len = static_cast<uint16_t>(from_be16(p.ip->total_length) - sizeof(rte_ipv4_hdr));
  p.tcp_flags = tcp_flags;
  return p;
}

// The fast path's parse of an IPv6 frame (issue 11): TCP or UDP straight
// after the fixed header (no extension headers), read once into its flow
// key.  Takes exactly the packets parse_packet6() accepts with no extension
// headers (the packet fuzzer holds it to that); everything else goes to
// parse_packet6().
inline bool parse_flow_packet6(const uint8_t* frame, uint32_t frame_len, FlowKey6& key, uint8_t& tcp_flags) noexcept {
  if (frame_len < kIp6L4Offset + sizeof(rte_udp_hdr)) [[unlikely]] return false;
  rte_be16_t ether_type;
  std::memcpy(&ether_type, frame + 12, sizeof ether_type);
  const auto* ip = reinterpret_cast<const rte_ipv6_hdr*>(frame + sizeof(rte_ether_hdr));
  if (ether_type != to_be16(RTE_ETHER_TYPE_IPV6) || (frame[sizeof(rte_ether_hdr)] >> 4) != 6) [[unlikely]] {
    return false;
  }
  const uint32_t l4_len = from_be16(ip->payload_len);
  if (l4_len == 0 || l4_len > frame_len - kIp6L4Offset) [[unlikely]] return false;
  const uint8_t* l4 = frame + kIp6L4Offset;
  const uint8_t proto = ip->proto;
  if (proto == static_cast<uint8_t>(Proto::kTcp)) {
    if (l4_len < sizeof(rte_tcp_hdr)) [[unlikely]] return false;
    const auto* tcp = reinterpret_cast<const rte_tcp_hdr*>(l4);
    if (!tcp_data_offset_ok(tcp, l4_len)) [[unlikely]] return false;
    tcp_flags = tcp->tcp_flags;
  } else if (proto == static_cast<uint8_t>(Proto::kUdp)) {
    const auto* udp = reinterpret_cast<const rte_udp_hdr*>(l4);
    if (l4_len < sizeof(rte_udp_hdr) || from_be16(udp->dgram_len) != l4_len || udp->dgram_cksum == 0) [[unlikely]] {
      return false;
    }
    tcp_flags = 0;
  } else [[unlikely]] {
    return false;
  }
  std::memcpy(key.src.bytes.data(), ip->src_addr, 16);
  std::memcpy(key.dst.bytes.data(), ip->dst_addr, 16);
  std::memcpy(&key.sport, l4, 4);  // sport, then dport, as on the wire
  const uint32_t proto_and_pad = proto;  // as parse_flow_packet()
  std::memcpy(&key.proto, &proto_and_pad, 4);
  return true;
}

// The same for a frame parse_flow_packet6() accepted (no extension headers).
inline ParsedPacket6 flow_packet_view6(uint8_t* frame, uint32_t frame_len, Proto proto,
                                       uint8_t tcp_flags) noexcept {
  ParsedPacket6 p;
  p.frame = frame;
  p.frame_len = frame_len;
  p.kind = proto == Proto::kTcp ? PacketKind::kTcp : PacketKind::kUdp;
  p.eth = reinterpret_cast<rte_ether_hdr*>(frame);
  p.ip = reinterpret_cast<rte_ipv6_hdr*>(frame + kFlowL3Offset);
  p.l4 = frame + kIp6L4Offset;
  p.l4_len = from_be16(p.ip->payload_len);
  p.tcp_flags = tcp_flags;
  return p;
}

}  // namespace podgate::dp
