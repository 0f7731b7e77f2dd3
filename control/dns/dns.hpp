// Cluster DNS: the interface between the DNS core (wire codec, Zone,
// responder) and the servers that carry queries to it (kernel UDP/TCP
// listeners, and queries punted by workers from the DNS service VIP).
//
// Every answer podgate gives is specified in ../shared/design/dns.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "control/config/config.hpp"

namespace podgate::ctl::dns {

// An immutable DNS view of one Registry version: built from the same Config
// as the forwarding Snapshot and swapped with it, so DNS and forwarding never
// disagree about which Pods exist and are ready.
class Zone;

// Builds the Zone for `config` (its services and its [dns] section).  The
// SOA serial is `serial` (the snapshot generation).  Pure: no I/O.
std::shared_ptr<const Zone> build_zone(const Config& config, uint32_t serial);

// Whether the services `changes` removed and added (in pairs: a service
// changed in place) give exactly the names and records they gave before:
// then the zone of the previous version still holds, and its serial stays
// (RFC 1035: the serial changes with the zone).  Most changes are: a
// ClusterIP service's endpoints and weights are not in DNS.  O(services
// changed).
bool zone_unchanged(const ServiceDiff& changes, const ServiceList& after);

enum class Transport : uint8_t { kUdp, kTcp };

struct QueryContext {
  Transport transport = Transport::kUdp;
  // Rotates the order of multiple A/SRV records (client-side balancing);
  // the caller passes a counter it increments per query.
  uint32_t rotation = 0;
};

// Largest DNS message podgate writes (TCP; 65535 is the protocol limit).
inline constexpr size_t kMaxMessage = 65535;

// The responder: a pure function of (query bytes, Zone) -> answer bytes.
// Writes the answer into `out` and returns its length, or 0 when the query
// deserves silence (no readable header, or a response).  Never reads past
// `query`, never writes past `out`; over UDP the answer is cut to the
// negotiated payload size with TC set.
size_t respond(std::span<const uint8_t> query, const Zone& zone, const QueryContext& ctx,
               std::span<uint8_t> out) noexcept;

}  // namespace podgate::ctl::dns
