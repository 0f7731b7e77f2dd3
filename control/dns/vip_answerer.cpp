#include "control/dns/vip_answerer.hpp"

#include <algorithm>
#include <cstring>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "dataplane/checksum.hpp"
#include "dataplane/packet.hpp"
#include "dataplane/punt.hpp"

namespace podgate::ctl::dns {

namespace {

constexpr uint8_t kReplyTtl = 64;
constexpr uint16_t kDnsPort = 53;
constexpr size_t kIpUdpHeaders = 20 + 8;
constexpr uint16_t kDefaultMtu = 1500;
// The largest answer the responder may write for the dataplane: [dns]
// max_udp_payload's ceiling.
constexpr size_t kMaxDataplaneAnswer = 4096;

// The UDP checksum's pseudo-header (RFC 768): source, destination, zero,
// protocol, UDP length; summed unfolded for ones_sum().
uint32_t pseudo_header_sum(dp::Ip4 src, dp::Ip4 dst, uint16_t udp_len) {
  const uint32_t s = src.host();
  const uint32_t d = dst.host();
  return (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + IPPROTO_UDP + udp_len;
}

}  // namespace

void write_udp_headers(std::span<uint8_t> frame, const UdpReplyAddress& a, uint16_t ip_id,
                       size_t payload_len) noexcept {
  auto* eth = reinterpret_cast<rte_ether_hdr*>(frame.data());
  std::memcpy(eth->dst_addr.addr_bytes, a.dst_mac.bytes.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, a.src_mac.bytes.data(), 6);
  eth->ether_type = dp::to_be16(RTE_ETHER_TYPE_IPV4);

  const auto udp_len = static_cast<uint16_t>(8 + payload_len);
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
  ip->version_ihl = RTE_IPV4_VHL_DEF;  // version 4, IHL 5: no options
  ip->type_of_service = 0;
  ip->total_length = dp::to_be16(static_cast<uint16_t>(20 + udp_len));
  ip->packet_id = dp::to_be16(ip_id);
  ip->fragment_offset = 0;
  ip->time_to_live = kReplyTtl;
  ip->next_proto_id = IPPROTO_UDP;
  ip->hdr_checksum = 0;
  ip->src_addr = a.src_ip.be;
  ip->dst_addr = a.dst_ip.be;
  ip->hdr_checksum = dp::internet_checksum({reinterpret_cast<const uint8_t*>(ip), 20});

  auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
  udp->src_port = a.src_port;
  udp->dst_port = a.dst_port;
  udp->dgram_len = dp::to_be16(udp_len);
  udp->dgram_cksum = 0;
  rte_be16_t sum = dp::internet_checksum({reinterpret_cast<const uint8_t*>(udp), udp_len},
                                         pseudo_header_sum(a.src_ip, a.dst_ip, udp_len));
  // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
  udp->dgram_cksum = sum == 0 ? rte_be16_t{0xffff} : sum;
}

VipAnswerer::VipAnswerer(DnsServer& server, PuntHandler& punt, std::vector<uint16_t> port_mtus)
    : server_(server), punt_(punt), port_mtus_(std::move(port_mtus)),
      scratch_(kMaxDataplaneAnswer) {}

bool VipAnswerer::answer(rte_mbuf* m, const dp::Snapshot& snap) {
  auto drop = [&] {
    server_.count_dropped();
    rte_pktmbuf_free(m);
    return true;
  };
  dp::ParsedPacket p;
  dp::DropReason why;
  const uint16_t rx = dp::punt_meta(m).port;
  if (rx >= snap.ports.size() || m->nb_segs != 1 ||
      !dp::parse_packet(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), false, p, why) ||
      p.kind != dp::PacketKind::kUdp || p.dport() != dp::to_be16(kDnsPort) || p.l4_len < 8) {
    return drop();
  }
  const rte_udp_hdr* udp = p.udp();
  const uint16_t udp_len = dp::from_be16(udp->dgram_len);
  if (udp_len < 8 || udp_len > p.l4_len) return drop();
  // RFC 1122 §4.1.3.4: a checksum that is present must be verified.
  if (udp->dgram_cksum != 0 &&
      dp::csum_fold(dp::ones_sum({p.l4, udp_len}, pseudo_header_sum(p.src(), p.dst(), udp_len))) !=
          0xffff) {
    return drop();
  }

  // Addresses of the reply, read before the frame is overwritten.  From the
  // address the query was sent to (the DNS VIP when it was punted, even if
  // a reload has changed it since), to whoever sent it, through the MAC it
  // came from (the client or its router).
  UdpReplyAddress a;
  a.src_mac = snap.ports[rx].mac;
  std::memcpy(a.dst_mac.bytes.data(), p.eth->src_addr.addr_bytes, 6);
  a.src_ip = p.dst();
  a.dst_ip = p.src();
  a.src_port = udp->dst_port;
  a.dst_port = udp->src_port;

  // The answer must fit the port's MTU and this mbuf's data room.
  const size_t mtu = rx < port_mtus_.size() && port_mtus_[rx] != 0 ? port_mtus_[rx] : kDefaultMtu;
  const size_t room = static_cast<size_t>(m->buf_len) - m->data_off;
  if (mtu <= kIpUdpHeaders || room <= kUdpFrameHeaders) return drop();
  const size_t limit = std::min({scratch_.size(), mtu - kIpUdpHeaders, room - kUdpFrameHeaders});
  const size_t n = server_.answer({p.l4 + 8, static_cast<size_t>(udp_len - 8)},
                                  Source::kDataplane, std::span<uint8_t>(scratch_).first(limit));
  if (n == 0) {  // silence, counted by the server
    rte_pktmbuf_free(m);
    return true;
  }

  // Rebuilt in place: the query's own headers (IPv4 options included) are
  // replaced by fresh ones, the answer follows them.
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  std::memcpy(frame + kUdpFrameHeaders, scratch_.data(), n);
  write_udp_headers({frame, kUdpFrameHeaders + n}, a, next_ip_id_++, n);
  m->data_len = static_cast<uint16_t>(kUdpFrameHeaders + n);
  m->pkt_len = m->data_len;
  m->ol_flags = 0;  // no offloads requested: both checksums are written
  punt_.transmit(m, dp::PortIdx{rx});
  return true;
}

}  // namespace podgate::ctl::dns
