// Frames the generator sends and reads: Ethernet + IPv4 (no options) or
// IPv6 (no extension headers) + TCP/UDP + a 16-byte stamp + zero padding up
// to the frame size; and the ARP and NDP (RFC 4861) frames it answers.
//
// The stamp (flow id, TX timestamp) rides right after the L4 header, where
// podgate never looks and never writes: podgate rewrites the addresses,
// ports, TTL / hop limit and checksums only (DNAT, RFC 1624 updates).
//
// Checksums are built with DPDK's helpers and verified through
// dataplane/checksum.hpp's RFC 1071 sum, so building and checking do not
// share one implementation's mistakes.
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_icmp.h>
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

inline constexpr uint16_t kL2L3Len = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr);   // 34
inline constexpr uint16_t kL2L3Len6 = sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr);  // 54
inline constexpr uint8_t kTtl = 64;  // TTL / hop limit of what the generator sends

constexpr uint16_t l2l3_len(dp::Family f) noexcept {
  return f == dp::Family::kIpv4 ? kL2L3Len : kL2L3Len6;
}
constexpr uint16_t l4_header_len(dp::Proto proto) noexcept {
  return proto == dp::Proto::kTcp ? sizeof(rte_tcp_hdr) : sizeof(rte_udp_hdr);
}
// The smallest stamped frame: IPv4 TCP 70, UDP 58; IPv6 TCP 90, UDP 78.
constexpr uint16_t min_frame(dp::Family f, dp::Proto proto) noexcept {
  return static_cast<uint16_t>(l2l3_len(f) + l4_header_len(proto) + sizeof(Stamp));
}
static_assert(min_frame(dp::Family::kIpv4, dp::Proto::kTcp) == 70);
static_assert(min_frame(dp::Family::kIpv6, dp::Proto::kUdp) == 78);

// What a built packet says; network-order addresses and ports.  Both
// addresses are of one family, which picks the IP header.
struct PacketSpec {
  rte_ether_addr eth_src;
  rte_ether_addr eth_dst;
  dp::IpAddr src;
  dp::IpAddr dst;
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

// ICMPv6 neighbour discovery messages (RFC 4861 §4.3, §4.4).
inline constexpr uint8_t kNeighborSolicitation = 135;
inline constexpr uint8_t kNeighborAdvertisement = 136;

// A received frame located.  `l4` and `l4_len` are valid for kinds kIp4
// (`ip`: TCP/UDP, no IP options, lengths consistent with the frame), kIp6
// (`ip6`: TCP/UDP right after the fixed header) and kNdp (`ip6`: a
// neighbour solicitation or advertisement that passed RFC 4861 §7.1's
// checks: hop limit 255, code 0, 24 octets or more, checksum).
struct RxView {
  enum class Kind : uint8_t { kArp, kNdp, kIp4, kIp6, kOther } kind = Kind::kOther;
  uint32_t frame_len = 0;
  rte_ether_hdr* eth = nullptr;
  rte_arp_hdr* arp = nullptr;
  rte_ipv4_hdr* ip = nullptr;
  rte_ipv6_hdr* ip6 = nullptr;
  uint8_t* l4 = nullptr;
  uint16_t l4_len = 0;
  dp::Proto proto = dp::Proto::kUdp;
  bool stamped = false;  // a stamp with our magic follows the L4 header
  Stamp stamp;
  // kNdp: the message type, its target, and its source (solicitation) or
  // target (advertisement) link-layer address option, if any.
  uint8_t ndp_type = 0;
  dp::Ip6 ndp_target;
  const uint8_t* ndp_mac = nullptr;

  bool is_ip() const noexcept { return kind == Kind::kIp4 || kind == Kind::kIp6; }
  dp::Family family() const noexcept { return kind == Kind::kIp4 ? dp::Family::kIpv4 : dp::Family::kIpv6; }
  rte_be16_t sport() const noexcept { return reinterpret_cast<const rte_udp_hdr*>(l4)->src_port; }
  rte_be16_t dport() const noexcept { return reinterpret_cast<const rte_udp_hdr*>(l4)->dst_port; }
  dp::IpAddr src() const noexcept {
    return ip != nullptr ? dp::IpAddr::v4(dp::Ip4{ip->src_addr}) : address6(ip6->src_addr);
  }
  dp::IpAddr dst() const noexcept {
    return ip != nullptr ? dp::IpAddr::v4(dp::Ip4{ip->dst_addr}) : address6(ip6->dst_addr);
  }
  // The TTL or hop limit.
  uint8_t hop_limit() const noexcept { return ip != nullptr ? ip->time_to_live : ip6->hop_limits; }

  static dp::IpAddr address6(const uint8_t* bytes) noexcept {
    dp::IpAddr a;
    a.family = dp::Family::kIpv6;
    std::memcpy(a.bytes.data(), bytes, 16);
    return a;
  }
};

RxView view_frame(rte_mbuf* m) noexcept;

// RFC 1071 §1: the sum over the header including its checksum is all ones.
bool ip_checksum_ok(const rte_ipv4_hdr* ip) noexcept;
// The same over the RFC 793/768 pseudo-header (IPv6: RFC 8200 §8.1's) and
// the whole segment.  A UDP checksum of zero is "none" (RFC 768) and fails
// here: the generator always sends one, so podgate must keep one (over
// IPv6 it is mandatory anyway).
bool l4_checksum_ok(const RxView& v) noexcept;

// Turns a received stamped TCP/UDP packet into the Pod's answer in place:
// MACs, addresses and ports swapped, TTL / hop limit reset, TCP SYN answered by SYN+ACK
// and anything else by ACK; the stamp (original TX time) is kept.
void make_reply(RxView& v, const rte_ether_addr& own_mac) noexcept;

// An ARP request (RFC 826) becomes our reply in place.
void make_arp_reply(RxView& v, const rte_ether_addr& own_mac) noexcept;

// Fills `m` with a broadcast ARP request for `target`.
void build_arp_request(rte_mbuf* m, const rte_ether_addr& own_mac, dp::Ip4 own_ip,
                       dp::Ip4 target) noexcept;

// A neighbour solicitation (kNdp, from a unicast source) becomes our
// solicited advertisement of its target in place (RFC 4861 §7.2.4): to the
// solicitation's source, from the target, flags Solicited and Override,
// with the Target Link-Layer Address option.  Resizes `m`.
void make_neighbor_advertisement(rte_mbuf* m, RxView& v, const rte_ether_addr& own_mac) noexcept;

// Fills `m` with a neighbour solicitation for `target` from `own_ip`, to
// its solicited-node multicast address (RFC 4861 §7.2.2).
void build_neighbor_solicitation(rte_mbuf* m, const rte_ether_addr& own_mac, const dp::Ip6& own_ip,
                                 const dp::Ip6& target) noexcept;

}  // namespace podgate::gen
