// config_warnings(): what a valid config may do but is seldom meant.  Each
// rule here has a legitimate use, so it is a warning, not a refusal
// (validate_config.cpp refuses what has none); conf/podgate.toml says which.
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "control/config/validate.hpp"

namespace podgate::ctl {

std::vector<std::string> config_warnings(const Config& config) {
  std::vector<std::string> out;
  for (const ServiceConfig& s : config.services) {
    if (s.type != ServiceType::kClusterIp) continue;
    for (const dp::IpAddr& vip : s.cluster_ips()) {
      for (const PortConfig& p : config.ports) {
        std::string subnet;
        if (vip.is_v4() && p.address.addr != vip.as_v4() && p.address.contains(vip.as_v4())) {
          subnet = dp::to_string(dp::Prefix4{p.address.network(), p.address.length});
        } else if (vip.is_v6() && p.address6 && p.address6->addr != vip.as_v6() &&
                   p.address6->contains(vip.as_v6())) {
          subnet = dp::to_string(dp::Prefix6{p.address6->network(), p.address6->length});
        }
        if (subnet.empty()) continue;
        // The legitimate use: a VIP announced on the clients' LAN, where
        // podgate answers ARP (IPv6: neighbour solicitations) for it.  The
        // mistake: a host already has it.
        const char* resolution = vip.is_v4() ? "ARP" : "neighbour solicitations";
        out.push_back("service " + s.ns + "/" + s.name + ": cluster_ip " + dp::to_string(vip) +
                      " is inside port " + p.name + "'s connected subnet " + subnet +
                      "; podgate answers " + resolution + " for it there, so no host on that subnet may have it");
      }
    }
  }
  // A Pod port that backs two service ports: a reply that finds no flow
  // entry (a full table, or a connection that ECMP moved here from another
  // appliance) cannot be mapped back to one VIP statelessly.
  std::map<std::tuple<dp::IpAddr, uint16_t, dp::Proto>, std::string> backs;
  for (const ServiceConfig& s : config.services) {
    if (s.type != ServiceType::kClusterIp || !s.cluster_ip) continue;
    for (const ServicePortConfig& p : s.ports) {
      const std::string here = s.ns + "/" + s.name + " port " + std::to_string(p.port);
      for (const EndpointConfig& e : s.endpoints) {
        auto [it, first] = backs.emplace(std::tuple{e.ip, p.target_port, p.protocol}, here);
        if (first || it->second == here) continue;
        out.push_back("endpoint " + vip_port_text(e.ip, port_and_protocol(p.target_port, p.protocol)) +
                      " backs " + it->second +
                      " and " + here + ": its replies without a flow entry (a full flow table, or "
                      "a connection moved here from another appliance) cannot be reverse-NATed "
                      "statelessly and are dropped (no_flow)");
      }
    }
  }
  return out;
}

}  // namespace podgate::ctl
