// DNS on the dataplane: UDP queries to the DNS service VIP ([dns]
// service_ip, port 53) that workers punt to the control thread.  The
// answerer runs the responder on the datagram's payload and turns the same
// mbuf into the reply: Ethernet, IPv4 and UDP headers rebuilt with the
// addresses swapped (from the VIP, to the client, through the MAC it came
// from), TTL 64, both checksums computed in full, and sends it out of the
// port the query came in on.  Control thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <rte_mbuf.h>

#include "control/dns/server.hpp"
#include "control/publish/punt_handler.hpp"
#include "dataplane/net.hpp"
#include "dataplane/snapshot.hpp"

namespace podgate::ctl::dns {

// Ethernet + IPv4 without options + UDP.
inline constexpr size_t kUdpFrameHeaders = 14 + 20 + 8;

struct UdpReplyAddress {
  dp::MacAddr src_mac;
  dp::MacAddr dst_mac;
  dp::Ip4 src_ip;
  dp::Ip4 dst_ip;
  rte_be16_t src_port = 0;
  rte_be16_t dst_port = 0;
};

// Writes the Ethernet, IPv4 (IHL 5, TTL 64, DF clear, identification
// `ip_id`) and UDP headers into frame[0, kUdpFrameHeaders) for the
// `payload_len` octets already at frame[kUdpFrameHeaders...], with the IPv4
// header checksum and the UDP checksum (RFC 768, pseudo-header included)
// computed over the whole.  `frame` must hold headers + payload.  Pure.
void write_udp_headers(std::span<uint8_t> frame, const UdpReplyAddress& address,
                       uint16_t ip_id, size_t payload_len) noexcept;

class VipAnswerer {
 public:
  // `port_mtus`: IP MTU of each port (PortIdx order); an answer never
  // exceeds it (the responder truncates with TC instead, RFC 6891 §6.2.5).
  VipAnswerer(DnsServer& server, PuntHandler& punt, std::vector<uint16_t> port_mtus);

  // The PuntHandler's DnsAnswerer.  Always consumes `m` (sent, or freed and
  // counted in the DNS counters), so it returns true.
  bool answer(rte_mbuf* m, const dp::Snapshot& snap);

 private:
  DnsServer& server_;
  PuntHandler& punt_;
  std::vector<uint16_t> port_mtus_;
  std::vector<uint8_t> scratch_;
  uint16_t next_ip_id_ = 0;
};

}  // namespace podgate::ctl::dns
