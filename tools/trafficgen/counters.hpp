// What each lcore counts: one writer per Counters (its lcore); the main
// lcore reads them only after the lcores have stopped, so plain integers.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include <rte_common.h>

#include "tools/trafficgen/latency.hpp"

namespace podgate::gen {

// Every way a packet can fail the checks, declared once (as podgate's drop
// reasons): the enum, the counters and the names in the reports.
#define PODGATE_GEN_VIOLATIONS(X)                                                       \
  X(kPodUnexpected, "pod_unexpected",                                                   \
    "at the Pods: not ARP/NDP and not a stamped TCP/UDP packet of a known flow")       \
  X(kPodBadIpChecksum, "pod_bad_ip_checksum", "at the Pods: IPv4 header checksum wrong") \
  X(kPodBadL4Checksum, "pod_bad_l4_checksum", "at the Pods: TCP/UDP checksum wrong")   \
  X(kPodBadHopLimit, "pod_bad_hop_limit",                                               \
    "at the Pods: TTL / hop limit is not the sent 64 less one (one router hop)")       \
  X(kPodWrongEndpoint, "pod_wrong_endpoint",                                            \
    "at the Pods: destination is not a ready endpoint ip:target_port of the service")  \
  X(kPodWrongSource, "pod_wrong_source",                                                \
    "at the Pods: source is not the client's ip:port (DNAT must keep it)")             \
  X(kPodFlowMoved, "pod_flow_moved", "at the Pods: a flow reached another Pod than before") \
  X(kClientUnexpected, "client_unexpected",                                             \
    "at the clients: not ARP/NDP and not a reply the generator asked for")             \
  X(kReplyBadIpChecksum, "reply_bad_ip_checksum", "reply: IPv4 header checksum wrong") \
  X(kReplyBadL4Checksum, "reply_bad_l4_checksum", "reply: TCP/UDP checksum wrong")     \
  X(kReplyBadHopLimit, "reply_bad_hop_limit",                                           \
    "reply: TTL / hop limit is not the Pod's 64 less one")                             \
  X(kReplyWrongSource, "reply_wrong_source",                                            \
    "reply: source is not the service VIP:port (reverse NAT)")                         \
  X(kReplyWrongDestination, "reply_wrong_destination",                                  \
    "reply: destination is not the client's ip:port")

enum class Violation : uint8_t {
#define PODGATE_X(id, name, help) id,
  PODGATE_GEN_VIOLATIONS(PODGATE_X)
#undef PODGATE_X
      kCount
};

inline constexpr size_t kViolationCount = static_cast<size_t>(Violation::kCount);

constexpr std::string_view violation_name(Violation v) noexcept {
  switch (v) {
#define PODGATE_X(id, name, help) \
  case Violation::id:             \
    return name;
    PODGATE_GEN_VIOLATIONS(PODGATE_X)
#undef PODGATE_X
    case Violation::kCount:
      break;
  }
  return "unknown";
}

constexpr std::string_view violation_help(Violation v) noexcept {
  switch (v) {
#define PODGATE_X(id, name, help) \
  case Violation::id:             \
    return help;
    PODGATE_GEN_VIOLATIONS(PODGATE_X)
#undef PODGATE_X
    case Violation::kCount:
      break;
  }
  return "unknown";
}

struct alignas(RTE_CACHE_LINE_SIZE) Counters {
  uint64_t tx_packets = 0;  // to a VIP, taken by the port
  uint64_t tx_bytes = 0;
  uint64_t tx_syn = 0;
  uint64_t rx_pod_packets = 0;  // stamped TCP/UDP at the pod port
  uint64_t rx_pod_bytes = 0;
  // A reply (--reply) the Pods make is counted once: taken by the pod port
  // (replies_sent) or refused by it (replies_tx_failed).
  uint64_t replies_sent = 0;
  uint64_t replies_tx_failed = 0;
  uint64_t rx_replies = 0;   // stamped TCP/UDP at the client port
  uint64_t arp_answered = 0;   // requests for our addresses, answers made
  uint64_t arp_tx_failed = 0;  // of arp_answered: the port refused the answer
  uint64_t arp_ignored = 0;    // requests for others, replies we did not ask for
  uint64_t ndp_answered = 0;   // neighbour solicitations for our addresses
  uint64_t ndp_tx_failed = 0;  // of ndp_answered: the port refused the answer
  uint64_t ndp_ignored = 0;    // for others, advertisements we did not ask for
  std::array<uint64_t, kViolationCount> violations{};
  // The first offending packet of each kind, described, for the report.
  std::array<std::array<char, 160>, kViolationCount> first_example{};
  std::vector<uint64_t> endpoint_packets;  // by global endpoint index; sized before the run
  LatencyHistogram one_way;     // client -> Pod, TSC cycles
  LatencyHistogram round_trip;  // client -> Pod -> client (--reply)

  void merge(const Counters& o);
};

}  // namespace podgate::gen
