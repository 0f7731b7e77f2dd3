// A configured service port's traffic, and its endpoints', as the stats
// slots count it: what `stats`, `endpoints` and /metrics report
// (docs/control-protocol.md).  Control thread only.
#pragma once

#include "control/config/service_config.hpp"
#include "control/publish/stats_slots.hpp"

namespace podgate::ctl {

// A service port's totals: what its VIPs of both families forwarded.
TrafficTotals port_traffic(const StatsSlots& slots, const ServiceConfig& s, const ServicePortConfig& p);

// An endpoint's totals on a service port, counted under the VIP of its own
// family (a family's VIP forwards to its own family's endpoints); zeros
// for an endpoint without a slot.
TrafficTotals endpoint_traffic(const StatsSlots& slots, const ServiceConfig& s, const ServicePortConfig& p,
                               const EndpointConfig& e);

}  // namespace podgate::ctl
