#include "dataplane/packet.hpp"

namespace podgate::dp {

namespace {

constexpr uint32_t kIpv4MinHeader = sizeof(rte_ipv4_hdr);  // 20 bytes, IHL 5
constexpr uint32_t kTcpMinHeader = sizeof(rte_tcp_hdr);    // 20 bytes
constexpr uint32_t kUdpHeader = sizeof(rte_udp_hdr);       // 8 bytes
constexpr uint32_t kIcmpEchoHeader = sizeof(rte_icmp_hdr); // 8 bytes
constexpr uint32_t kArpIpv4Size = sizeof(rte_arp_hdr);     // 28 bytes
static_assert(kIpv4MinHeader == 20 && kTcpMinHeader == 20 && kUdpHeader == 8 &&
              kIcmpEchoHeader == 8 && kArpIpv4Size == 28);

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

inline bool fail(DropReason& drop, DropReason reason) noexcept {
  drop = reason;
  return false;
}

// RFC 826, "Packet Reception": ?Do I have the hardware type in ar$hrd?
// ?Do I speak the protocol in ar$pro?  podgate speaks only Ethernet/IPv4, so
// the address lengths must be those of Ethernet (6) and IPv4 (4), which also
// fixes the packet at 28 bytes.  The opcode is the caller's business.
bool parse_arp(uint8_t* l3, uint32_t avail, ParsedPacket& out,
               DropReason& drop) noexcept {
  if (avail < kArpIpv4Size) return fail(drop, DropReason::kBadArp);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(l3);
  if (arp->arp_hardware != to_be16(RTE_ARP_HRD_ETHER) ||
      arp->arp_protocol != to_be16(RTE_ETHER_TYPE_IPV4) ||
      arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != 4) {
    return fail(drop, DropReason::kBadArp);
  }
  out.kind = PacketKind::kArp;
  out.arp = arp;
  return true;
}

// RFC 793 §3.1: "Data Offset: 4 bits. The number of 32 bit words in the TCP
// Header" -- at least 5 (the fixed header), and the header cannot extend past
// the segment.
// RFC 791 §3.1: an option is End of Option List (type 0, one byte, ends
// the list), No Operation (type 1, one byte), or type, length (counting
// both bytes, so at least 2) and data.  Well formed: every length fits.
bool ip_options_well_formed(const uint8_t* opt, uint32_t len) noexcept {
  for (uint32_t i = 0; i < len;) {
    const uint8_t type = opt[i];
    if (type == 0) return true;
    if (type == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= len) return false;
    const uint8_t olen = opt[i + 1];
    if (olen < 2 || i + olen > len) return false;
    i += olen;
  }
  return true;
}

bool parse_tcp(ParsedPacket& out, DropReason& drop) noexcept {
  if (out.l4_len < kTcpMinHeader) return fail(drop, DropReason::kTruncatedL4);
  const rte_tcp_hdr* tcp = out.tcp();
  if (!tcp_data_offset_ok(tcp, out.l4_len)) return fail(drop, DropReason::kBadTcpOffset);
  out.kind = PacketKind::kTcp;
  out.tcp_flags = tcp->tcp_flags;
  return true;
}

// RFC 768: "Length is the length in octets of this user datagram including
// this header and the data. (This means the minimum value of the length is
// eight.)"  It must agree with the IP datagram that carries it: a shorter
// UDP length would leave trailing bytes NAT would forward unchecked, a longer
// one claims bytes that are not there.
bool parse_udp(ParsedPacket& out, DropReason& drop) noexcept {
  if (out.l4_len < kUdpHeader) return fail(drop, DropReason::kTruncatedL4);
  const uint16_t udp_len = from_be16(out.udp()->dgram_len);
  if (udp_len < kUdpHeader || udp_len != out.l4_len) {
    return fail(drop, DropReason::kBadUdpLength);
  }
  out.kind = PacketKind::kUdp;
  return true;
}

// RFC 792: an echo message is type, code, checksum, identifier and sequence
// number (8 bytes) followed by data; every ICMP message podgate handles has
// at least that 8-byte header.
bool parse_icmp(ParsedPacket& out, DropReason& drop) noexcept {
  if (out.l4_len < kIcmpEchoHeader) return fail(drop, DropReason::kBadIcmp);
  out.kind = PacketKind::kIcmp;
  return true;
}

}  // namespace

bool parse_packet(uint8_t* frame, uint32_t frame_len, bool ip_checksum_verified,
                  ParsedPacket& out, DropReason& drop) noexcept {
  out = ParsedPacket{};
  out.frame = frame;
  out.frame_len = frame_len;

  // RFC 894: destination, source, type: 14 bytes before any payload.
  if (frame_len < sizeof(rte_ether_hdr)) return fail(drop, DropReason::kTooShort);
  out.eth = reinterpret_cast<rte_ether_hdr*>(frame);
  uint8_t* const l3 = frame + sizeof(rte_ether_hdr);
  const uint32_t avail = frame_len - static_cast<uint32_t>(sizeof(rte_ether_hdr));

  const rte_be16_t ether_type = out.eth->ether_type;
  if (ether_type == to_be16(RTE_ETHER_TYPE_ARP)) {
    return parse_arp(l3, avail, out, drop);
  }
  // VLAN-tagged frames (802.1Q) are not IPv4 at this offset; podgate does
  // not handle tags yet, so they count as not IP.
  if (ether_type != to_be16(RTE_ETHER_TYPE_IPV4)) {
    return fail(drop, DropReason::kNotIp);
  }

  // RFC 1812 §5.2.2 (1): "The packet length reported by the Link Layer must
  // be large enough to hold the minimum length legal IP datagram (20
  // bytes)."  Counted as a bad IHL: the header, whatever its IHL, would be
  // longer than the packet.  Checked before reading any IP byte.
  if (avail < kIpv4MinHeader) return fail(drop, DropReason::kBadIhl);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(l3);
  out.ip = ip;

  // RFC 1812 §5.2.2 (3): "The IP version number must be 4."
  if ((ip->version_ihl >> 4) != 4) return fail(drop, DropReason::kBadIpVersion);

  // RFC 1812 §5.2.2 (4): "The IP header length field must be large enough to
  // hold the minimum length legal IP datagram (20 bytes = 5 words)." (RFC 791
  // §3.1: "the minimum value for a correct header is 5"), and the header must
  // fit in what the link delivered.
  const uint32_t ihl_bytes = (ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * 4u;
  if (ihl_bytes < kIpv4MinHeader || ihl_bytes > avail) {
    return fail(drop, DropReason::kBadIhl);
  }
  // RFC 791 §3.1 options are legal and forwarded as they are (issue 12;
  // docs/dataplane.md says why Record Route and Timestamp are not filled
  // in).  Only their syntax is checked: a list that overruns the header
  // cannot be forwarded sensibly (RFC 1812 §5.2.2 would answer it with a
  // Parameter Problem).
  if (ihl_bytes > kIpv4MinHeader && !ip_options_well_formed(l3 + kIpv4MinHeader, ihl_bytes - kIpv4MinHeader)) {
    return fail(drop, DropReason::kIpOptions);
  }

  // RFC 1812 §5.2.2 (5): "The IP total length field must be large enough to
  // hold the IP datagram header, whose length is specified in the IP header
  // length field."  And the datagram must be all there.  A longer frame is
  // fine: Ethernet pads short frames to 60 bytes (RFC 894), so the datagram
  // ends at total_length, not at the end of the frame.
  const uint32_t total_length = from_be16(ip->total_length);
  if (total_length < ihl_bytes || total_length > avail) {
    return fail(drop, DropReason::kBadIpLength);
  }

  // RFC 1812 §5.2.2 (2): "The IP checksum must be correct." (RFC 1122
  // §3.2.1.2: silently discard every datagram that has a bad checksum.)
  // Skipped when the NIC has already verified it.  RFC 1071 §1: the sum
  // over the header including its checksum field must be all ones; DPDK's
  // rte_raw_cksum sums native-order words, and 0xffff is the same in both
  // byte orders.  The header includes its options.
  if (!ip_checksum_verified && rte_raw_cksum(ip, ihl_bytes) != 0xffff) {
    return fail(drop, DropReason::kBadIpChecksum);
  }

  // RFC 791 §3.1: a fragment has MF set or a non-zero fragment offset.
  // podgate keeps no reassembly state, and non-first fragments carry no
  // ports to NAT, so fragments are not forwarded.  DF is irrelevant here.
  if ((ip->fragment_offset &
       to_be16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) {
    return fail(drop, DropReason::kFragment);
  }

  out.l4 = l3 + ihl_bytes;
  out.l4_len = static_cast<uint16_t>(total_length - ihl_bytes);
  switch (ip->next_proto_id) {
    case kProtoTcp:
      return parse_tcp(out, drop);
    case kProtoUdp:
      return parse_udp(out, drop);
    case kProtoIcmp:
      return parse_icmp(out, drop);
    default:
      return fail(drop, DropReason::kUnsupportedProto);
  }
}

bool parse_fragment(ParsedPacket& out, FragmentPart& part, DropReason& drop) noexcept {
  const rte_ipv4_hdr* ip = out.ip;
  const uint8_t proto = ip->next_proto_id;
  if (proto != kProtoTcp && proto != kProtoUdp) return fail(drop, DropReason::kFragment);
  out.kind = proto == kProtoTcp ? PacketKind::kTcp : PacketKind::kUdp;
  const uint16_t offset = from_be16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK;
  const uint32_t ihl_bytes = (ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * 4u;
  const uint32_t payload = from_be16(ip->total_length) - ihl_bytes;  // parse_packet checked it
  if (offset != 0) {
    if (proto == kProtoTcp && offset == 1) return fail(drop, DropReason::kFragmentTiny);
    part = FragmentPart::kLater;
    out.l4 = nullptr;
    out.l4_len = 0;
    return true;
  }
  part = FragmentPart::kFirst;
  out.l4 = reinterpret_cast<uint8_t*>(out.ip) + ihl_bytes;
  out.l4_len = static_cast<uint16_t>(payload);
  if (proto == kProtoUdp) {
    // The UDP length is the whole datagram's, longer than this part.
    if (payload < kUdpHeader || from_be16(out.udp()->dgram_len) <= payload) {
      return fail(drop, DropReason::kFragmentTiny);
    }
    return true;
  }
  if (payload < kTcpMinHeader || (out.tcp()->data_off >> 4) < 5 ||
      (out.tcp()->data_off >> 4) * 4u > payload) {
    return fail(drop, DropReason::kFragmentTiny);
  }
  out.tcp_flags = out.tcp()->tcp_flags;
  return true;
}

}  // namespace podgate::dp
