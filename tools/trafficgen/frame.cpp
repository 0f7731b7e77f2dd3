#include "tools/trafficgen/frame.hpp"

#include <span>

#include "dataplane/checksum.hpp"

namespace podgate::gen {
namespace {

uint16_t l4_header_len(dp::Proto proto) noexcept {
  return proto == dp::Proto::kTcp ? sizeof(rte_tcp_hdr) : sizeof(rte_udp_hdr);
}

}  // namespace

void build_packet(rte_mbuf* m, const PacketSpec& s, uint16_t frame_size) noexcept {
  auto* frame = rte_pktmbuf_mtod(m, uint8_t*);
  m->data_len = frame_size;
  m->pkt_len = frame_size;

  auto* eth = reinterpret_cast<rte_ether_hdr*>(frame);
  eth->dst_addr = s.eth_dst;
  eth->src_addr = s.eth_src;
  eth->ether_type = dp::to_be16(RTE_ETHER_TYPE_IPV4);

  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->type_of_service = 0;
  ip->total_length = dp::to_be16(static_cast<uint16_t>(frame_size - sizeof(rte_ether_hdr)));
  ip->packet_id = 0;
  ip->fragment_offset = dp::to_be16(RTE_IPV4_HDR_DF_FLAG);
  ip->time_to_live = kTtl;
  ip->next_proto_id = static_cast<uint8_t>(s.proto);
  ip->src_addr = s.src.be;
  ip->dst_addr = s.dst.be;
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);

  uint8_t* l4 = reinterpret_cast<uint8_t*>(ip + 1);
  const uint16_t l4_hdr = l4_header_len(s.proto);
  const uint16_t l4_len = static_cast<uint16_t>(frame_size - kL2L3Len);
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
  uint32_t sum = rte_ipv4_phdr_cksum(ip, 0);
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
  const rte_be32_t src = v.ip->src_addr;
  v.ip->src_addr = v.ip->dst_addr;
  v.ip->dst_addr = src;
  v.ip->time_to_live = kTtl;
  v.ip->hdr_checksum = 0;
  v.ip->hdr_checksum = rte_ipv4_cksum(v.ip);
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

}  // namespace podgate::gen
