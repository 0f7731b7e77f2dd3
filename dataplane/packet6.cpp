#include "dataplane/packet6.hpp"

#include <cstring>

#include "dataplane/checksum.hpp"

namespace podgate::dp {

namespace {

constexpr uint8_t kHopByHop = 0, kRouting = 43, kFragmentHeader = 44, kDestinationOptions = 60;

// TCP, UDP and ICMPv6 at `l4` (`len` bytes): the checks parse_packet()
// makes for IPv4, and RFC 8200 §8.1's for UDP.
bool parse_upper_layer(uint8_t next, uint8_t* l4, uint32_t len, ParsedPacket6& out, DropReason& drop) noexcept {
  out.l4 = l4;
  out.l4_len = static_cast<uint16_t>(len);
  switch (next) {
    case static_cast<uint8_t>(Proto::kTcp): {
      // RFC 793 §3.1: the data offset counts 32-bit words, at least 5.
      if (len < sizeof(rte_tcp_hdr)) {
        drop = DropReason::kTruncatedL4;
        return false;
      }
      const auto* tcp = reinterpret_cast<const rte_tcp_hdr*>(l4);
      const uint32_t data_offset = tcp->data_off >> 4;
      if (data_offset < 5 || data_offset * 4 > len) {
        drop = DropReason::kBadTcpOffset;
        return false;
      }
      out.kind = PacketKind::kTcp;
      out.tcp_flags = tcp->tcp_flags;
      return true;
    }
    case static_cast<uint8_t>(Proto::kUdp): {
      if (len < sizeof(rte_udp_hdr)) {
        drop = DropReason::kTruncatedL4;
        return false;
      }
      const auto* udp = reinterpret_cast<const rte_udp_hdr*>(l4);
      if (from_be16(udp->dgram_len) != len) {
        drop = DropReason::kBadUdpLength;
        return false;
      }
      // RFC 8200 §8.1: "IPv6 receivers must discard UDP packets containing
      // a zero checksum".
      if (udp->dgram_cksum == 0) {
        drop = DropReason::kBadUdpChecksum;
        return false;
      }
      out.kind = PacketKind::kUdp;
      out.tcp_flags = 0;
      return true;
    }
    case kProtoIcmp6:
      // RFC 4443 §2.1: type, code and checksum come first.
      if (len < 4) {
        drop = DropReason::kBadIcmp;
        return false;
      }
      out.kind = PacketKind::kIcmp;
      out.tcp_flags = 0;
      return true;
    default:
      drop = DropReason::kUnsupportedProto;
      return false;
  }
}

}  // namespace

bool parse_packet6(uint8_t* frame, uint32_t frame_len, ParsedPacket6& out, DropReason& drop) noexcept {
  out.frame = frame;
  out.frame_len = frame_len;
  if (frame_len < kIp6L4Offset) {
    drop = DropReason::kBadIpLength;
    return false;
  }
  out.eth = reinterpret_cast<rte_ether_hdr*>(frame);
  out.ip = reinterpret_cast<rte_ipv6_hdr*>(frame + sizeof(rte_ether_hdr));
  // RFC 8200 §3: Version = 6.
  if ((frame[sizeof(rte_ether_hdr)] >> 4) != 6) {
    drop = DropReason::kBadIpVersion;
    return false;
  }
  // RFC 8200 §3: Payload Length counts what follows the fixed header,
  // extension headers included; Ethernet may pad beyond it.
  const uint32_t payload = from_be16(out.ip->payload_len);
  if (payload == 0 || payload > frame_len - kIp6L4Offset) {
    drop = DropReason::kBadIpLength;
    return false;
  }
  uint8_t next = out.ip->proto;
  uint8_t* at = frame + kIp6L4Offset;
  uint32_t left = payload;
  for (int n = 0;; ++n) {
    if (next != kHopByHop && next != kRouting && next != kDestinationOptions) break;
    // RFC 8200 §4.1: Hop-by-Hop Options, when present, immediately follow
    // the IPv6 header; elsewhere the header is in error.
    if (n == kMaxExtensionHeaders || (next == kHopByHop && n != 0) || left < 8) {
      drop = DropReason::kBadIpv6Extension;
      return false;
    }
    // RFC 8200 §4.3-§4.6: Next Header, then Hdr Ext Len in 8-octet units
    // not counting the first 8.
    const uint32_t len = (uint32_t{at[1]} + 1) * 8;
    if (len > left) {
      drop = DropReason::kBadIpv6Extension;
      return false;
    }
    // RFC 8200 §4.4: a Routing header with Segments Left > 0 names a next
    // node; podgate is nobody's intermediate node of a source route.
    if (next == kRouting && at[3] != 0) {
      drop = DropReason::kIpv6Extension;
      return false;
    }
    next = at[0];
    at += len;
    left -= len;
  }
  if (next == kFragmentHeader) {
    drop = DropReason::kFragment;
    return false;
  }
  if (next != static_cast<uint8_t>(Proto::kTcp) && next != static_cast<uint8_t>(Proto::kUdp) &&
      next != kProtoIcmp6) {
    // ESP (50), AH (51), No Next Header (59), Mobility, HIP, Shim6 (RFC
    // 8200 §4; RFC 7045 lets a node that does not process them drop them):
    // extensions podgate does not walk.  A transport it does not serve
    // (SCTP, ...) is unsupported_proto, as in IPv4.
    constexpr uint8_t kExtensions[] = {50, 51, 59, 135, 139, 140, 253, 254};
    for (uint8_t e : kExtensions) {
      if (next == e) {
        drop = DropReason::kIpv6Extension;
        return false;
      }
    }
    drop = DropReason::kUnsupportedProto;
    return false;
  }
  return parse_upper_layer(next, at, left, out, drop);
}

rte_be16_t icmp6_checksum(const rte_ipv6_hdr* ip, const uint8_t* l4, uint32_t len) noexcept {
  // RFC 8200 §8.1: source, destination, upper-layer packet length (32
  // bits), three zero octets and the next header value (58).
  uint32_t sum = ones_sum({ip->src_addr, 16});
  sum = ones_sum({ip->dst_addr, 16}, sum);
  sum += (len >> 16) + (len & 0xffff);
  sum += kProtoIcmp6;
  return internet_checksum({l4, len}, sum);
}

}  // namespace podgate::dp
