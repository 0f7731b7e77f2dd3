// What DPDK is set up with, defaults resolved; see start_settings.hpp.
#include "control/config/start_settings.hpp"

namespace podgate::ctl {

dp::ClientAddress choose_client_address(const Config& cfg, size_t i) {
  const PortConfig& port = cfg.ports[i];
  if (port.client_address) return *port.client_address;
  auto reached_here = [&](dp::Ip4 ip) {
    if (port.address.contains(ip)) return true;
    for (const RouteConfig& r : cfg.routes) {
      if (r.prefix.contains(ip) && port.address.contains(r.via)) return true;
    }
    return false;
  };
  for (const ServiceConfig& svc : cfg.services) {
    for (const EndpointConfig& ep : svc.endpoints) {
      if (ep.ip.family == dp::Family::kIpv4 && reached_here(ep.ip.as_v4())) {
        return dp::ClientAddress::kDestination;
      }
    }
  }
  return dp::ClientAddress::kSource;
}

StartSettings start_settings(const Config& cfg, const std::vector<dp::ClientAddress>& chosen) {
  StartSettings s{cfg.eal, cfg.dataplane, cfg.ports, cfg.announce};
  s.dataplane.ipv6_flow_table_size = cfg.dataplane.ipv6_flows();
  for (size_t i = 0; i < s.ports.size(); ++i) {
    if (!s.ports[i].client_address && i < chosen.size()) s.ports[i].client_address = chosen[i];
  }
  return s;
}

}  // namespace podgate::ctl
