// Every reason the dataplane drops a packet, declared once (VPP-style list):
// the enum, the counter array and the names printed by the daemon all come
// from this table, so a new reason cannot be counted without a name.
#pragma once

#include <cstdint>
#include <string_view>

namespace podgate::dp {

#define PODGATE_DROP_REASONS(X)                                              \
  X(kTooShort, "too_short", "frame shorter than its Ethernet header")        \
  X(kNotIp, "not_ip", "EtherType neither IPv4 nor ARP")                      \
  X(kBadIpVersion, "bad_ip_version", "IP version field is not 4 (6 for EtherType IPv6)") \
  X(kBadIhl, "bad_ihl", "IHL below 5 or header longer than the packet")      \
  X(kIpOptions, "ip_options", "IPv4 options that overrun the header (RFC 791)") \
  X(kBadIpLength, "bad_ip_length", "IP total length disagrees with frame")   \
  X(kBadIpChecksum, "bad_ip_checksum", "IPv4 header checksum is wrong")      \
  X(kFragment, "fragment", "fragment not of TCP or UDP, or of podgate's own traffic") \
  X(kBadIpv6Extension, "ipv6_bad_extension", "IPv6 extension header cut short, out of place, or more than 8") \
  X(kIpv6Extension, "ipv6_extension", "IPv6 extension podgate does not walk (ESP, AH, no next header, source route)") \
  X(kFragmentTiny, "fragment_tiny", "first fragment without the whole TCP/UDP header (or IPv6 header chain, RFC 7112), or TCP at offset 1 (RFC 1858)") \
  X(kFragmentUnmatched, "fragment_unmatched", "later fragment whose first fragment did not come within 2 s (or its wait was full)") \
  X(kTruncatedL4, "truncated_l4", "TCP/UDP header cut short")               \
  X(kBadTcpOffset, "bad_tcp_offset", "TCP data offset below 5 or too long")  \
  X(kBadUdpLength, "bad_udp_length", "UDP length disagrees with IP length")  \
  X(kBadUdpChecksum, "bad_udp_checksum", "UDP over IPv6 with a zero checksum (RFC 8200 8.1)") \
  X(kUnsupportedProto, "unsupported_proto", "IP protocol not TCP/UDP/ICMP")  \
  X(kTtlExceeded, "ttl_exceeded", "TTL (IPv6: hop limit) would reach zero when forwarded") \
  X(kNoService, "no_service", "to a VIP on a port/protocol it does not serve (or no longer)") \
  X(kNoEndpoint, "no_endpoint", "service has no ready endpoint")             \
  X(kNoFlow, "no_flow", "reply matches no flow entry")                       \
  X(kNotForUs, "not_for_us", "neither for a VIP nor a reply of a flow")      \
  X(kNoRoute, "no_route", "no route to the destination")                    \
  X(kNeighborUnresolved, "neighbor_unresolved",                              \
    "next-hop MAC unknown, and the resolution queue full or the worker's rate to it spent") \
  X(kBadArp, "bad_arp", "ARP packet malformed or not Ethernet/IPv4")         \
  X(kArpNotForUs, "arp_not_for_us", "ARP request for another address")      \
  X(kBadNdp, "bad_ndp", "neighbour discovery message failing RFC 4861's checks (hop limit 255, length, target, an advertisement's link-layer address)") \
  X(kNdpNotForUs, "ndp_not_for_us", "neighbour solicitation for another address, or router discovery") \
  X(kIcmpNotEcho, "icmp_not_echo", "ICMP (or ICMPv6) other than echo request") \
  X(kBadIcmp, "bad_icmp", "ICMP message truncated or with a bad checksum")                         \
  X(kIcmpErrorNoFlow, "icmp_error_no_flow", "ICMP error quoting no connection of ours") \
  X(kTooBig, "too_big", "longer than the egress port's MTU (fragmentation needed sent if DF)") \
  X(kMartianSource, "martian_source", "source 0/8, 127/8, multicast or class E (RFC 1812 5.3.7)") \
  X(kSourceIsOurs, "source_is_ours", "source is a VIP or a podgate address: spoofed") \
  X(kArpUnsolicited, "arp_unsolicited", "ARP reply or NDP advert not asked for, for a static neighbour, or not overriding a known MAC: not learnt") \
  X(kNeighborTableFull, "neighbor_table_full", "ARP reply not learnt: the neighbour table is full there") \
  X(kDnsRateLimited, "dns_rate_limited", "query to the DNS VIP over its source's rate ([dns] rate_limit)") \
  X(kKernelRateLimited, "kernel_rate_limited", "for a kernel twin, over its rate (exception path)") \
  X(kNeighborRateLimited, "neighbor_rate_limited", "ARP or NDP advertisement over the rate a worker passes up to learn") \
  X(kHandoffFull, "handoff_full", "ring to the owning worker was full")     \
  X(kPuntFull, "punt_full", "ring to the control thread was full")          \
  X(kTxFull, "tx_full", "transmit queue did not take the packet")

enum class DropReason : uint8_t {
#define PODGATE_X(id, name, help) id,
  PODGATE_DROP_REASONS(PODGATE_X)
#undef PODGATE_X
      kCount
};

inline constexpr size_t kDropReasonCount = static_cast<size_t>(DropReason::kCount);

constexpr std::string_view drop_reason_name(DropReason r) noexcept {
  switch (r) {
#define PODGATE_X(id, name, help) \
  case DropReason::id:            \
    return name;
    PODGATE_DROP_REASONS(PODGATE_X)
#undef PODGATE_X
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

constexpr std::string_view drop_reason_help(DropReason r) noexcept {
  switch (r) {
#define PODGATE_X(id, name, help) \
  case DropReason::id:            \
    return help;
    PODGATE_DROP_REASONS(PODGATE_X)
#undef PODGATE_X
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

}  // namespace podgate::dp
