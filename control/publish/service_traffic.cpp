#include "control/publish/service_traffic.hpp"

namespace podgate::ctl {

namespace {

// The stats slots' key of a service port at `vip` (either family).
SlotService slot_service(const dp::IpAddr& vip, const ServicePortConfig& p) {
  return SlotService{vip, dp::to_be16(p.port), p.protocol};
}

}  // namespace

TrafficTotals port_traffic(const StatsSlots& slots, const ServiceConfig& s, const ServicePortConfig& p) {
  TrafficTotals t;
  for (const dp::IpAddr& vip : s.cluster_ips()) t += slots.service(slot_service(vip, p));
  return t;
}

TrafficTotals endpoint_traffic(const StatsSlots& slots, const ServiceConfig& s, const ServicePortConfig& p,
                               const EndpointConfig& e) {
  for (const dp::IpAddr& vip : s.cluster_ips()) {
    if (vip.family != e.ip.family) continue;
    if (auto t = slots.endpoint(SlotKey{slot_service(vip, p), e.ip, dp::to_be16(p.target_port)})) return *t;
  }
  return {};
}

}  // namespace podgate::ctl
