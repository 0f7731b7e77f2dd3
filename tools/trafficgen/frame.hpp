// Frames the generator sends and reads: Ethernet + IPv4 (no options) +
// TCP/UDP + a 16-byte stamp + zero padding up to the frame size.
//
// The stamp (flow id, TX timestamp) rides right after the L4 header, where
// podgate never looks and never writes: podgate rewrites the addresses,
// ports, TTL and checksums only (DNAT, RFC 1624 updates).
//
// Checksums are built with DPDK's helpers and verified through
// dataplane/checksum.hpp's RFC 1071 sum, so building and checking do not
// share one implementation's mistakes.
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/net.hpp"

namespace podgate::gen {

inline constexpr uint32_t kStampMagic = 0x50474731;  // "PGG1"

struct Stamp {
  uint32_t magic = kStampMagic;
  uint32_t flow = 0;
  uint64_t tsc = 0;  // rte_rdtsc() when the packet was built
};
static_assert(sizeof(Stamp) == 16);

inline constexpr uint16_t kL2L3Len = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr);
inline constexpr uint16_t kMinTcpFrame = kL2L3Len + sizeof(rte_tcp_hdr) + sizeof(Stamp);  // 70
inline constexpr uint16_t kMinUdpFrame = kL2L3Len + sizeof(rte_udp_hdr) + sizeof(Stamp);  // 58
inline constexpr uint8_t kTtl = 64;

// What a built packet says; network-order addresses and ports.
struct PacketSpec {
  rte_ether_addr eth_src;
  rte_ether_addr eth_dst;
  dp::Ip4 src;
  dp::Ip4 dst;
  rte_be16_t sport = 0;
  rte_be16_t dport = 0;
  dp::Proto proto = dp::Proto::kUdp;
  uint8_t tcp_flags = 0;
  uint32_t seq = 0;  // host order
  uint32_t ack = 0;
  Stamp stamp;
};

// Fills `m` with a frame of `frame_size` bytes (>= the protocol's minimum;
// the caller checks).  No allocation; the padding is zeroed so that the L4
// checksum needs to cover only the headers and the stamp.
void build_packet(rte_mbuf* m, const PacketSpec& spec, uint16_t frame_size) noexcept;

// A received frame located: `ip`, `l4` and `l4_len` are valid only for
// kind kIp4 (TCP/UDP, no IP options, lengths consistent with the frame).
struct RxView {
  enum class Kind : uint8_t { kArp, kIp4, kOther } kind = Kind::kOther;
  uint32_t frame_len = 0;
  rte_ether_hdr* eth = nullptr;
  rte_arp_hdr* arp = nullptr;
  rte_ipv4_hdr* ip = nullptr;
  uint8_t* l4 = nullptr;
  uint16_t l4_len = 0;
  dp::Proto proto = dp::Proto::kUdp;
  bool stamped = false;  // a stamp with our magic follows the L4 header
  Stamp stamp;

  rte_be16_t sport() const noexcept { return reinterpret_cast<const rte_udp_hdr*>(l4)->src_port; }
  rte_be16_t dport() const noexcept { return reinterpret_cast<const rte_udp_hdr*>(l4)->dst_port; }
  dp::Ip4 src() const noexcept { return dp::Ip4{ip->src_addr}; }
  dp::Ip4 dst() const noexcept { return dp::Ip4{ip->dst_addr}; }
};

RxView view_frame(rte_mbuf* m) noexcept;

// RFC 1071 §1: the sum over the header including its checksum is all ones.
bool ip_checksum_ok(const rte_ipv4_hdr* ip) noexcept;
// The same over the RFC 793/768 pseudo-header and the whole segment.  A UDP
// checksum of zero is "none" (RFC 768) and fails here: the generator always
// sends one, so podgate must keep one.
bool l4_checksum_ok(const RxView& v) noexcept;

// Turns a received stamped TCP/UDP packet into the Pod's answer in place:
// MACs, addresses and ports swapped, TTL reset, TCP SYN answered by SYN+ACK
// and anything else by ACK; the stamp (original TX time) is kept.
void make_reply(RxView& v, const rte_ether_addr& own_mac) noexcept;

// An ARP request (RFC 826) becomes our reply in place.
void make_arp_reply(RxView& v, const rte_ether_addr& own_mac) noexcept;

// Fills `m` with a broadcast ARP request for `target`.
void build_arp_request(rte_mbuf* m, const rte_ether_addr& own_mac, dp::Ip4 own_ip,
                       dp::Ip4 target) noexcept;

}  // namespace podgate::gen
