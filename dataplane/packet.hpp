// Per-packet parsing: validate an Ethernet frame and locate its headers.
//
// Pure functions over bytes (no EAL, no mbuf), so they are unit-testable; the
// worker calls them on rte_pktmbuf_mtod() data.  The parsed view points into
// the frame and reuses DPDK's header structs; fields stay in network order
// and are converted only in the accessors below.
#pragma once

#include <cstddef>
#include <cstdint>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/drop_reason.hpp"
#include "dataplane/net.hpp"

namespace podgate::dp {

enum class PacketKind : uint8_t { kArp, kTcp, kUdp, kIcmp };

// TCP and UDP put their ports at the same offsets (RFC 793 §3.1, RFC 768),
// which lets the port accessors and the NAT code read either through one
// struct.
static_assert(offsetof(rte_tcp_hdr, src_port) == offsetof(rte_udp_hdr, src_port));
static_assert(offsetof(rte_tcp_hdr, dst_port) == offsetof(rte_udp_hdr, dst_port));

// RFC 793 §3.1: the data offset counts the header's 32-bit words, at least
// 5, and the header it gives must lie within the segment's `l4_len` bytes
// (of which the caller has checked that 20 are there).  The offset's 4 bits
// become the header's length in bytes with one shift and one mask.
inline bool tcp_data_offset_ok(const rte_tcp_hdr* tcp, uint32_t l4_len) noexcept {
  const uint32_t header_len = (uint32_t{tcp->data_off} >> 2) & 0x3c;
  return header_len >= sizeof(rte_tcp_hdr) && header_len <= l4_len;
}

// A validated frame.  Every pointer is inside [frame, frame + frame_len);
// l4 + l4_len never passes the end of the frame.
struct ParsedPacket {
  uint8_t* frame = nullptr;
  uint32_t frame_len = 0;
  PacketKind kind = PacketKind::kArp;
  rte_ether_hdr* eth = nullptr;
  rte_arp_hdr* arp = nullptr;  // kArp only
  rte_ipv4_hdr* ip = nullptr;  // kTcp, kUdp, kIcmp
  uint8_t* l4 = nullptr;       // kTcp, kUdp, kIcmp
  // L4 header + payload as given by the IP total length, so Ethernet padding
  // beyond the datagram is excluded.
  uint16_t l4_len = 0;
  uint8_t tcp_flags = 0;  // kTcp only: RTE_TCP_*_FLAG bits

  // IPv4 kinds only (not kArp).
  Ip4 src() const noexcept { return Ip4{ip->src_addr}; }
  Ip4 dst() const noexcept { return Ip4{ip->dst_addr}; }
  // Network order; 0 for ICMP.
  rte_be16_t sport() const noexcept {
    return kind == PacketKind::kIcmp ? rte_be16_t{0} : udp()->src_port;
  }
  rte_be16_t dport() const noexcept {
    return kind == PacketKind::kIcmp ? rte_be16_t{0} : udp()->dst_port;
  }
  // kTcp and kUdp only: Proto has no ICMP member, ICMP is never a flow.
  Proto proto() const noexcept {
    return kind == PacketKind::kTcp ? Proto::kTcp : Proto::kUdp;
  }

  rte_tcp_hdr* tcp() const noexcept { return reinterpret_cast<rte_tcp_hdr*>(l4); }
  rte_udp_hdr* udp() const noexcept { return reinterpret_cast<rte_udp_hdr*>(l4); }
  rte_icmp_hdr* icmp() const noexcept { return reinterpret_cast<rte_icmp_hdr*>(l4); }
};

// Validates and locates headers; on failure returns false and sets `drop`
// (`out` is then unspecified).  Never reads beyond frame_len, whatever the
// bytes.  `ip_checksum_verified`: the NIC checked the IPv4 header checksum
// and found it good (RTE_MBUF_F_RX_IP_CKSUM_GOOD), so it is not recomputed;
// frames the NIC found bad must be dropped by the caller before parsing.
// IPv4 checks follow the router validation of RFC 1812 §5.2.2 (which
// collects RFC 791's rules); each check quotes its rule in packet.cpp.
bool parse_packet(uint8_t* frame, uint32_t frame_len, bool ip_checksum_verified,
                  ParsedPacket& out, DropReason& drop) noexcept;

// Where a TCP or UDP fragment stands in its datagram (RFC 791 §3.2).
enum class FragmentPart : uint8_t {
  kFirst,  // offset 0, MF set: carries the ports
  kLater,  // offset > 0: no L4 header (l4 is null)
};

// A fragment parse_packet() refused with DropReason::kFragment (its IPv4
// header is valid; `out` is as parse_packet() left it): sets out.kind and,
// for a first fragment, out.l4 and out.l4_len (this fragment's share).
// False, with `drop`, for what cannot be forwarded: not TCP or UDP
// (kFragment), or a tiny-fragment attack (RFC 1858 §3: a first fragment
// too short for the whole TCP or UDP header, or a TCP fragment at offset 1,
// which would overwrite the flags), kFragmentTiny.
bool parse_fragment(ParsedPacket& out, FragmentPart& part, DropReason& drop) noexcept;

}  // namespace podgate::dp
