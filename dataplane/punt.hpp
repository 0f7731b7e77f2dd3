// Packets a worker cannot finish on its own go to the control thread through
// one multi-producer ring (the "punt" ring): ARP replies to learn from,
// packets waiting for their next hop's MAC, DNS queries to the DNS service
// VIP, and packets for a port's kernel twin (the exception path).  Why a packet was punted travels with it in an mbuf dynamic
// field (DPDK's registered per-mbuf metadata), so no side table is needed.
#pragma once

#include <cstdint>

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include "dataplane/net.hpp"

namespace podgate::dp {

enum class PuntKind : uint8_t {
  kArp,         // an ARP reply: learn the sender
  kUnresolved,  // a forwarded packet whose next hop has no MAC yet
  kDns,         // a DNS query to the DNS service VIP
  kKernel,      // for the kernel twin of port `port` (exception path)
  // IPv6 (issue 11):
  kNdp,          // a neighbour advertisement: learn the target
  kUnresolved6,  // a forwarded IPv6 packet whose next hop has no MAC yet; the
                 // control thread finds the next hop from its destination
};

struct PuntMeta {
  Ip4 next_hop;       // kUnresolved: the address to resolve
  uint16_t port = 0;  // kUnresolved: PortIdx to send on; kKernel: whose twin; else the rx PortIdx
  PuntKind kind = PuntKind::kArp;
};

// Registers podgate's dynamic mbuf fields (PuntMeta here, FragmentMeta in
// fragment_table.hpp); call once after EAL init.  False on failure.
bool register_mbuf_fields() noexcept;

// Offset of the field in every mbuf; valid after register_mbuf_fields().
extern int g_punt_field_offset;

inline PuntMeta& punt_meta(rte_mbuf* m) noexcept {
  return *RTE_MBUF_DYNFIELD(m, g_punt_field_offset, PuntMeta*);
}

}  // namespace podgate::dp
