// A configured service port's traffic, and its endpoints', as the stats
// slots count it: what `stats`, `endpoints` and /metrics report
// (docs/control-protocol.md).  Control thread only.
#pragma once

#include "control/config/service_config.hpp"
#include "control/publish/stats_slots.hpp"

namespace podgate::ctl {

// Whether a service's ports forward and are counted: a ClusterIP service
// with a cluster IP (of either family, or one of each).
bool counts_traffic(const ServiceConfig& s);

// A service port as the stats slots name it: {"namespace/name", port, protocol}.
ServicePortId service_port_id(const ServiceConfig& s, const ServicePortConfig& p);

// While a snapshot is built: the service `s` is in it, each of its ports
// with the VIP ports of its cluster IPs (StatsSlots::claim()).
void claim_ports(StatsSlots& slots, const ServiceConfig& s);
// While a snapshot is built on the previous one: the service `s` of the
// previous one is not in it as it was (StatsSlots::unclaim()).
void unclaim_ports(StatsSlots& slots, const ServiceConfig& s);

// A service port's totals since it was first published: what its VIPs of
// both families forwarded, including VIPs it had before (a dual-stack
// service made single-stack keeps what its IPv6 VIP counted).
TrafficTotals port_traffic(const StatsSlots& slots, const ServiceConfig& s, const ServicePortConfig& p);

// An endpoint's totals on a service port, counted under the VIP of its own
// family (a family's VIP forwards to its own family's endpoints); zeros
// for an endpoint without a slot.
TrafficTotals endpoint_traffic(const StatsSlots& slots, const ServiceConfig& s, const ServicePortConfig& p,
                               const EndpointConfig& e);

}  // namespace podgate::ctl
