#include "control/publish/service_traffic.hpp"

namespace podgate::ctl {

namespace {

// The stats slots' key of a service port at `vip` (either family).
SlotService slot_service(const dp::IpAddr& vip, const ServicePortConfig& p) {
  return SlotService{vip, dp::to_be16(p.port), p.protocol};
}

}  // namespace

bool counts_traffic(const ServiceConfig& s) {
  return s.type == ServiceType::kClusterIp && s.cluster_ip.has_value();
}

ServicePortId service_port_id(const ServiceConfig& s, const ServicePortConfig& p) {
  return ServicePortId{s.ns + "/" + s.name, p.port, p.protocol};
}

void claim_ports(StatsSlots& slots, const ServiceConfig& s) {
  if (!counts_traffic(s)) return;
  const std::vector<dp::IpAddr> vips = s.cluster_ips();
  for (const ServicePortConfig& p : s.ports) {
    std::vector<SlotService> at;
    for (const dp::IpAddr& vip : vips) at.push_back(slot_service(vip, p));
    slots.claim(service_port_id(s, p), std::move(at));
  }
}

void unclaim_ports(StatsSlots& slots, const ServiceConfig& s) {
  for (const ServicePortConfig& p : s.ports) slots.unclaim(service_port_id(s, p));
}

TrafficTotals port_traffic(const StatsSlots& slots, const ServiceConfig& s, const ServicePortConfig& p) {
  return slots.service_port(service_port_id(s, p));
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
