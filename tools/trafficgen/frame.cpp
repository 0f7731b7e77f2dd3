#include "tools/trafficgen/frame.hpp"

#include <span>

#include "dataplane/checksum.hpp"

namespace podgate::gen {
namespace {

constexpr uint8_t kProtoIcmp6 = 58;
constexpr uint16_t kNdpLen = 32;  // a solicitation or advertisement with one 8-byte option

// RFC 8200 §8.1's pseudo-header sum (source, destination, 32-bit upper-layer
// length, next header) plus the segment, folded; all ones when the segment
// carries a right checksum.
uint16_t sum6(const rte_ipv6_hdr* ip, uint8_t next_header, const uint8_t* l4, uint32_t len) noexcept {
  uint32_t sum = dp::ones_sum({ip->src_addr, 16});
  sum = dp::ones_sum({ip->dst_addr, 16}, sum);
  sum += (len >> 16) + (len & 0xffff) + next_header;
  // rte_raw_cksum adds 16-bit words as a little-endian CPU loads them; the
  // byte-swapped sum is the big-endian one ones_sum uses (RFC 1071 §2(B)).
  sum += dp::bswap16(rte_raw_cksum(l4, len));
  return dp::csum_fold(sum);
}

void fill_ip6(rte_ipv6_hdr* ip, uint8_t next_header, uint16_t payload, uint8_t hop_limit,
              const uint8_t* src, const uint8_t* dst) noexcept {
  ip->vtc_flow = dp::to_be32(6u << 28);
  ip->payload_len = dp::to_be16(payload);
  ip->proto = next_header;
  ip->hop_limits = hop_limit;
  std::memcpy(ip->src_addr, src, 16);
  std::memcpy(ip->dst_addr, dst, 16);
}

// RFC 4861 §7.1.1/§7.1.2 validity of a solicitation or advertisement:
// hop limit 255, code 0, 24 octets or more, options of non-zero length that
// fit, the checksum.
bool view_ndp(RxView& v, rte_ipv6_hdr* ip, uint8_t* l4, uint16_t len) noexcept {
  if (len < 24 || (l4[0] != kNeighborSolicitation && l4[0] != kNeighborAdvertisement) ||
      l4[1] != 0 || ip->hop_limits != 255 || sum6(ip, kProtoIcmp6, l4, len) != 0xffff) {
    return false;
  }
  v.ndp_mac = nullptr;
  const uint8_t wanted = l4[0] == kNeighborSolicitation ? 1 : 2;  // source / target link-layer
  for (uint32_t at = 24; at < len;) {
    if (len - at < 2 || l4[at + 1] == 0 || l4[at + 1] * 8u > len - at) return false;
    if (l4[at] == wanted && l4[at + 1] == 1) v.ndp_mac = l4 + at + 2;
    at += l4[at + 1] * 8u;
  }
  v.kind = RxView::Kind::kNdp;
  v.ip6 = ip;
  v.l4 = l4;
  v.l4_len = len;
  v.ndp_type = l4[0];
  std::memcpy(v.ndp_target.bytes.data(), l4 + 8, 16);
  return true;
}

}  // namespace

void build_packet(rte_mbuf* m, const PacketSpec& s, uint16_t frame_size) noexcept {
  auto* frame = rte_pktmbuf_mtod(m, uint8_t*);
  m->data_len = frame_size;
  m->pkt_len = frame_size;

  auto* eth = reinterpret_cast<rte_ether_hdr*>(frame);
  eth->dst_addr = s.eth_dst;
  eth->src_addr = s.eth_src;
  const bool v4 = s.src.is_v4();
  eth->ether_type = dp::to_be16(v4 ? RTE_ETHER_TYPE_IPV4 : RTE_ETHER_TYPE_IPV6);

  const uint16_t l4_len = static_cast<uint16_t>(frame_size - l2l3_len(s.src.family));
  uint8_t* l4;
  rte_ipv4_hdr* ip = nullptr;
  rte_ipv6_hdr* ip6 = nullptr;
  if (v4) {
    ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0;
    ip->total_length = dp::to_be16(static_cast<uint16_t>(frame_size - sizeof(rte_ether_hdr)));
    ip->packet_id = 0;
    ip->fragment_offset = dp::to_be16(RTE_IPV4_HDR_DF_FLAG);
    ip->time_to_live = kTtl;
    ip->next_proto_id = static_cast<uint8_t>(s.proto);
    ip->src_addr = s.src.as_v4().be;
    ip->dst_addr = s.dst.as_v4().be;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    l4 = reinterpret_cast<uint8_t*>(ip + 1);
  } else {
    ip6 = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
    fill_ip6(ip6, static_cast<uint8_t>(s.proto), l4_len, kTtl, s.src.bytes.data(), s.dst.bytes.data());
    l4 = reinterpret_cast<uint8_t*>(ip6 + 1);
  }
  const uint16_t l4_hdr = l4_header_len(s.proto);
  std::memcpy(l4 + l4_hdr, &s.stamp, sizeof(Stamp));
  const uint16_t covered = static_cast<uint16_t>(l4_hdr + sizeof(Stamp));
  std::memset(l4 + covered, 0, l4_len - covered);

  if (s.proto == dp::Proto::kTcp) {
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(l4);
    tcp->src_port = s.sport;
    tcp->dst_port = s.dport;
    tcp->sent_seq = rte_cpu_to_be_32(s.seq);
    tcp->recv_ack = rte_cpu_to_be_32(s.ack);
    tcp->data_off = (sizeof(rte_tcp_hdr) / 4) << 4;
    tcp->tcp_flags = s.tcp_flags;
    tcp->rx_win = dp::to_be16(65535);
    tcp->cksum = 0;
    tcp->tcp_urp = 0;
  } else {
    auto* udp = reinterpret_cast<rte_udp_hdr*>(l4);
    udp->src_port = s.sport;
    udp->dst_port = s.dport;
    udp->dgram_len = dp::to_be16(l4_len);
    udp->dgram_cksum = 0;
  }
  // The padding is zero and adds nothing to the one's complement sum, so
  // the pseudo-header (with the full L4 length) plus the covered bytes is
  // the checksum of the whole segment (RFC 1071 §2).
  uint32_t sum = v4 ? rte_ipv4_phdr_cksum(ip, 0) : rte_ipv6_phdr_cksum(ip6, 0);
  sum += rte_raw_cksum(l4, covered);
  uint16_t cksum = static_cast<uint16_t>(~dp::csum_fold(sum));
  if (s.proto == dp::Proto::kUdp) {
    if (cksum == 0) cksum = 0xffff;  // RFC 768: zero means "no checksum"
    reinterpret_cast<rte_udp_hdr*>(l4)->dgram_cksum = cksum;
  } else {
    reinterpret_cast<rte_tcp_hdr*>(l4)->cksum = cksum;
  }
}

RxView view_frame(rte_mbuf* m) noexcept {
  RxView v;
  const uint32_t len = rte_pktmbuf_data_len(m);
  auto* frame = rte_pktmbuf_mtod(m, uint8_t*);
  v.frame_len = len;
  if (len < sizeof(rte_ether_hdr)) return v;
  v.eth = reinterpret_cast<rte_ether_hdr*>(frame);
  const uint16_t type = dp::from_be16(v.eth->ether_type);
  if (type == RTE_ETHER_TYPE_ARP) {
    if (len >= sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)) {
      v.kind = RxView::Kind::kArp;
      v.arp = reinterpret_cast<rte_arp_hdr*>(v.eth + 1);
    }
    return v;
  }
  if (type == RTE_ETHER_TYPE_IPV6) {
    if (len < kL2L3Len6) return v;
    auto* ip6 = reinterpret_cast<rte_ipv6_hdr*>(v.eth + 1);
    const uint16_t payload = dp::from_be16(ip6->payload_len);
    if ((dp::bswap32(ip6->vtc_flow) >> 28) != 6 || uint32_t{kL2L3Len6} + payload > len) return v;
    auto* l4 = reinterpret_cast<uint8_t*>(ip6 + 1);
    if (ip6->proto == kProtoIcmp6) {
      view_ndp(v, ip6, l4, payload);
      return v;
    }
    if (ip6->proto != static_cast<uint8_t>(dp::Proto::kTcp) &&
        ip6->proto != static_cast<uint8_t>(dp::Proto::kUdp)) {
      return v;
    }
    const auto proto = static_cast<dp::Proto>(ip6->proto);
    const uint16_t hdr = l4_header_len(proto);
    if (payload < hdr) return v;
    v.kind = RxView::Kind::kIp6;
    v.ip6 = ip6;
    v.l4 = l4;
    v.l4_len = payload;
    v.proto = proto;
    if (payload >= hdr + sizeof(Stamp)) {
      std::memcpy(&v.stamp, v.l4 + hdr, sizeof(Stamp));
      v.stamped = v.stamp.magic == kStampMagic;
    }
    return v;
  }
  if (type != RTE_ETHER_TYPE_IPV4 || len < kL2L3Len) return v;
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(v.eth + 1);
  if (ip->version_ihl != RTE_IPV4_VHL_DEF) return v;
  const uint16_t total = dp::from_be16(ip->total_length);
  if (total < sizeof(rte_ipv4_hdr) || sizeof(rte_ether_hdr) + total > len) return v;
  if (ip->next_proto_id != static_cast<uint8_t>(dp::Proto::kTcp) &&
      ip->next_proto_id != static_cast<uint8_t>(dp::Proto::kUdp)) {
    return v;
  }
  const auto proto = static_cast<dp::Proto>(ip->next_proto_id);
  const uint16_t l4_len = static_cast<uint16_t>(total - sizeof(rte_ipv4_hdr));
  const uint16_t hdr = l4_header_len(proto);
  if (l4_len < hdr) return v;
  v.kind = RxView::Kind::kIp4;
  v.ip = ip;
  v.l4 = reinterpret_cast<uint8_t*>(ip + 1);
  v.l4_len = l4_len;
  v.proto = proto;
  if (l4_len >= hdr + sizeof(Stamp)) {
    std::memcpy(&v.stamp, v.l4 + hdr, sizeof(Stamp));
    v.stamped = v.stamp.magic == kStampMagic;
  }
  return v;
}

bool ip_checksum_ok(const rte_ipv4_hdr* ip) noexcept {
  return dp::internet_checksum_ok(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(ip), sizeof(rte_ipv4_hdr)));
}

bool l4_checksum_ok(const RxView& v) noexcept {
  const rte_be16_t field = v.proto == dp::Proto::kUdp
                               ? reinterpret_cast<const rte_udp_hdr*>(v.l4)->dgram_cksum
                               : reinterpret_cast<const rte_tcp_hdr*>(v.l4)->cksum;
  if (v.proto == dp::Proto::kUdp && field == 0) return false;
  if (v.ip6 != nullptr) return sum6(v.ip6, v.ip6->proto, v.l4, v.l4_len) == 0xffffu;
  // RFC 793 §3.1 pseudo-header: source, destination, zero, protocol, length.
  uint8_t pseudo[12];
  std::memcpy(pseudo, &v.ip->src_addr, 4);
  std::memcpy(pseudo + 4, &v.ip->dst_addr, 4);
  pseudo[8] = 0;
  pseudo[9] = v.ip->next_proto_id;
  pseudo[10] = static_cast<uint8_t>(v.l4_len >> 8);
  pseudo[11] = static_cast<uint8_t>(v.l4_len);
  // rte_raw_cksum adds 16-bit words as a little-endian CPU loads them; the
  // byte-swapped sum is the big-endian one ones_sum uses (RFC 1071 §2(B)).
  const uint32_t segment = dp::bswap16(rte_raw_cksum(v.l4, v.l4_len));
  return dp::csum_fold(dp::ones_sum(pseudo, segment)) == 0xffffu;
}

void make_reply(RxView& v, const rte_ether_addr& own_mac) noexcept {
  v.eth->dst_addr = v.eth->src_addr;
  v.eth->src_addr = own_mac;
  if (v.ip6 != nullptr) {
    uint8_t src[16];
    std::memcpy(src, v.ip6->src_addr, 16);
    std::memcpy(v.ip6->src_addr, v.ip6->dst_addr, 16);
    std::memcpy(v.ip6->dst_addr, src, 16);
    v.ip6->hop_limits = kTtl;
  } else {
    const rte_be32_t src = v.ip->src_addr;
    v.ip->src_addr = v.ip->dst_addr;
    v.ip->dst_addr = src;
    v.ip->time_to_live = kTtl;
    v.ip->hdr_checksum = 0;
    v.ip->hdr_checksum = rte_ipv4_cksum(v.ip);
  }
  // Swapping addresses and ports leaves the L4 sum unchanged; only the TCP
  // flags change, an RFC 1624 update of the data offset + flags word.
  auto* udp = reinterpret_cast<rte_udp_hdr*>(v.l4);
  const rte_be16_t sport = udp->src_port;
  udp->src_port = udp->dst_port;
  udp->dst_port = sport;
  if (v.proto == dp::Proto::kTcp) {
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(v.l4);
    rte_be16_t old_word;
    std::memcpy(&old_word, &tcp->data_off, 2);
    tcp->tcp_flags = (tcp->tcp_flags & RTE_TCP_SYN_FLAG) != 0
                         ? RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG
                         : RTE_TCP_ACK_FLAG;
    const rte_be32_t seq = tcp->sent_seq;
    tcp->sent_seq = tcp->recv_ack;
    tcp->recv_ack = seq;
    rte_be16_t new_word;
    std::memcpy(&new_word, &tcp->data_off, 2);
    tcp->cksum = dp::csum_update16(tcp->cksum, old_word, new_word);
  }
}

void make_arp_reply(RxView& v, const rte_ether_addr& own_mac) noexcept {
  rte_arp_ipv4& a = v.arp->arp_data;
  const uint32_t asked = a.arp_tip;
  a.arp_tha = a.arp_sha;
  a.arp_tip = a.arp_sip;
  a.arp_sha = own_mac;
  a.arp_sip = asked;
  v.arp->arp_opcode = dp::to_be16(RTE_ARP_OP_REPLY);
  v.eth->dst_addr = a.arp_tha;
  v.eth->src_addr = own_mac;
}

void build_arp_request(rte_mbuf* m, const rte_ether_addr& own_mac, dp::Ip4 own_ip,
                       dp::Ip4 target) noexcept {
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  constexpr uint16_t kLen = RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN;  // 60
  std::memset(eth, 0, kLen);
  m->data_len = kLen;
  m->pkt_len = kLen;
  std::memset(eth->dst_addr.addr_bytes, 0xff, RTE_ETHER_ADDR_LEN);
  eth->src_addr = own_mac;
  eth->ether_type = dp::to_be16(RTE_ETHER_TYPE_ARP);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  arp->arp_hardware = dp::to_be16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = dp::to_be16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = RTE_ETHER_ADDR_LEN;
  arp->arp_plen = 4;
  arp->arp_opcode = dp::to_be16(RTE_ARP_OP_REQUEST);
  arp->arp_data.arp_sha = own_mac;
  arp->arp_data.arp_sip = own_ip.be;
  arp->arp_data.arp_tip = target.be;
}

void make_neighbor_advertisement(rte_mbuf* m, RxView& v, const rte_ether_addr& own_mac) noexcept {
  const dp::Ip6 target = v.ndp_target;
  if (v.ndp_mac != nullptr) {
    std::memcpy(v.eth->dst_addr.addr_bytes, v.ndp_mac, RTE_ETHER_ADDR_LEN);
  } else {
    v.eth->dst_addr = v.eth->src_addr;
  }
  v.eth->src_addr = own_mac;
  uint8_t to[16];
  std::memcpy(to, v.ip6->src_addr, 16);
  fill_ip6(v.ip6, kProtoIcmp6, kNdpLen, 255, target.bytes.data(), to);
  uint8_t* na = reinterpret_cast<uint8_t*>(v.ip6 + 1);
  std::memset(na, 0, kNdpLen);
  na[0] = kNeighborAdvertisement;
  constexpr uint8_t kSolicited = 0x40, kOverride = 0x20;  // a host: Router clear
  na[4] = kSolicited | kOverride;
  std::memcpy(na + 8, target.bytes.data(), 16);
  na[24] = 2;  // Target Link-Layer Address, 8 octets
  na[25] = 1;
  std::memcpy(na + 26, own_mac.addr_bytes, RTE_ETHER_ADDR_LEN);
  const rte_be16_t sum = dp::to_be16(static_cast<uint16_t>(~sum6(v.ip6, kProtoIcmp6, na, kNdpLen)));
  std::memcpy(na + 2, &sum, 2);
  m->data_len = m->pkt_len = kL2L3Len6 + kNdpLen;
}

void build_neighbor_solicitation(rte_mbuf* m, const rte_ether_addr& own_mac, const dp::Ip6& own_ip,
                                 const dp::Ip6& target) noexcept {
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  const dp::Ip6 group = dp::solicited_node(target);
  // RFC 2464 §7: 33:33 and the group's last 32 bits.
  const uint8_t mac[RTE_ETHER_ADDR_LEN] = {0x33, 0x33, group.bytes[12], group.bytes[13],
                                           group.bytes[14], group.bytes[15]};
  std::memcpy(eth->dst_addr.addr_bytes, mac, RTE_ETHER_ADDR_LEN);
  eth->src_addr = own_mac;
  eth->ether_type = dp::to_be16(RTE_ETHER_TYPE_IPV6);
  auto* ip = reinterpret_cast<rte_ipv6_hdr*>(eth + 1);
  fill_ip6(ip, kProtoIcmp6, kNdpLen, 255, own_ip.bytes.data(), group.bytes.data());
  uint8_t* ns = reinterpret_cast<uint8_t*>(ip + 1);
  std::memset(ns, 0, kNdpLen);
  ns[0] = kNeighborSolicitation;
  std::memcpy(ns + 8, target.bytes.data(), 16);
  ns[24] = 1;  // Source Link-Layer Address, 8 octets
  ns[25] = 1;
  std::memcpy(ns + 26, own_mac.addr_bytes, RTE_ETHER_ADDR_LEN);
  const rte_be16_t sum = dp::to_be16(static_cast<uint16_t>(~sum6(ip, kProtoIcmp6, ns, kNdpLen)));
  std::memcpy(ns + 2, &sum, 2);
  m->data_len = m->pkt_len = kL2L3Len6 + kNdpLen;
}

}  // namespace podgate::gen
