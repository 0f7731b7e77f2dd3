#include "dataplane/packet6.hpp"

#include <cstring>

#include "dataplane/checksum.hpp"

namespace podgate::dp {

namespace {

constexpr uint8_t kHopByHop = kIp6HopByHop, kRouting = kIp6Routing, kFragmentHeader = kIp6Fragment,
                  kDestinationOptions = kIp6DestinationOptions;

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
      if (!tcp_data_offset_ok(tcp, len)) {
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
  out.fragment = nullptr;
  bool seen_fragment = false, first_fragment = false;
  for (int n = 0;; ++n) {
    if (next == kFragmentHeader) {
      // RFC 8200 §4.5: Next Header, Reserved, then 13 bits of Fragment
      // Offset (8-octet units), 2 reserved bits and the M flag, then the
      // 32-bit Identification; at most one per packet.
      if (seen_fragment || n == kMaxExtensionHeaders || left < 8) {
        drop = DropReason::kBadIpv6Extension;
        return false;
      }
      const uint32_t offset = (uint32_t{at[2]} << 8 | at[3]) >> 3;
      const bool more = (at[3] & 1) != 0;
      const uint32_t fragment_len = left - 8;
      // "If the length of a fragment ... is not a multiple of 8 octets and
      // the M flag of that fragment is 1, then that fragment must be
      // discarded"; so must one that would end past 65535 octets.
      if ((more && fragment_len % 8 != 0) || offset * 8 + fragment_len > 65535) {
        drop = DropReason::kBadIpv6Extension;
        return false;
      }
      seen_fragment = true;
      out.fragment = at;
      next = at[0];
      at += 8;
      left -= 8;
      if (offset == 0 && !more) {
        out.fragment = nullptr;  // RFC 6946: an atomic fragment is a whole packet
        continue;
      }
      if (offset != 0) {
        // What follows is data: only the first fragment has headers.
        out.l4 = nullptr;
        out.l4_len = 0;
        drop = DropReason::kFragment;
        return false;
      }
      first_fragment = true;
      continue;
    }
    if (next != kHopByHop && next != kRouting && next != kDestinationOptions) break;
    // RFC 8200 §4.1: Hop-by-Hop Options, when present, immediately follow
    // the IPv6 header; elsewhere the header is in error.  RFC 7112: a first
    // fragment carries the whole header chain; one cut short is tiny.
    if (n == kMaxExtensionHeaders || (next == kHopByHop && n != 0) || left < 8) {
      drop = first_fragment && left < 8 ? DropReason::kFragmentTiny : DropReason::kBadIpv6Extension;
      return false;
    }
    // RFC 8200 §4.3-§4.6: Next Header, then Hdr Ext Len in 8-octet units
    // not counting the first 8.
    const uint32_t len = (uint32_t{at[1]} + 1) * 8;
    if (len > left) {
      drop = first_fragment ? DropReason::kFragmentTiny : DropReason::kBadIpv6Extension;
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
  if (first_fragment) {
    out.l4 = at;
    out.l4_len = static_cast<uint16_t>(left);
    out.upper = next;
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

bool parse_fragment6(ParsedPacket6& out, FragmentPart& part, DropReason& drop) noexcept {
  constexpr auto kTcp = static_cast<uint8_t>(Proto::kTcp), kUdp = static_cast<uint8_t>(Proto::kUdp);
  if (out.l4 == nullptr) {
    // A later fragment: its Fragment header names the first header of the
    // fragmentable part, which the first fragment carries.
    const uint8_t hint = out.fragment[0];
    if (hint != kTcp && hint != kUdp && hint != kDestinationOptions && hint != kRouting) {
      drop = DropReason::kFragment;
      return false;
    }
    // RFC 1858 §3, as for IPv4: a fragment at offset 1 (8 octets) of a
    // fragmentable part that starts with the TCP header would overwrite
    // its flags (octet 13).  Where extension headers come first,
    // where the TCP header lies is the first fragment's to tell; a later
    // fragment overlapping it makes the receiver drop the whole datagram
    // (RFC 8200 §4.5).
    const uint32_t offset = (uint32_t{out.fragment[2]} << 8 | out.fragment[3]) >> 3;
    if (hint == kTcp && offset == 1) {
      drop = DropReason::kFragmentTiny;
      return false;
    }
    part = FragmentPart::kLater;  // its protocol is the first fragment's
    return true;
  }
  part = FragmentPart::kFirst;
  const uint32_t len = out.l4_len;
  if (out.upper == kUdp) {
    // The UDP length is the whole datagram's, longer than this part; its
    // checksum, over the whole datagram, is mandatory (RFC 8200 §8.1).
    const auto* udp = reinterpret_cast<const rte_udp_hdr*>(out.l4);
    if (len < sizeof(rte_udp_hdr) || from_be16(udp->dgram_len) <= len) {
      drop = DropReason::kFragmentTiny;
      return false;
    }
    if (udp->dgram_cksum == 0) {
      drop = DropReason::kBadUdpChecksum;
      return false;
    }
    out.kind = PacketKind::kUdp;
    out.tcp_flags = 0;
    return true;
  }
  if (out.upper != kTcp) {
    drop = DropReason::kFragment;
    return false;
  }
  const auto* tcp = reinterpret_cast<const rte_tcp_hdr*>(out.l4);
  if (len < sizeof(rte_tcp_hdr) || (tcp->data_off >> 4) < 5 || (tcp->data_off >> 4) * 4u > len) {
    drop = DropReason::kFragmentTiny;
    return false;
  }
  out.kind = PacketKind::kTcp;
  out.tcp_flags = tcp->tcp_flags;
  return true;
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
