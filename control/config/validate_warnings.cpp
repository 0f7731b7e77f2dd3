// config_warnings(): what a valid config may do but is seldom meant.  Each
// rule here has a legitimate use, so it is a warning, not a refusal
// (validate_config.cpp refuses what has none); conf/podgate.toml says which.
#include <string>
#include <unordered_map>
#include <vector>

#include "control/config/ip_key.hpp"
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
  // appliance) cannot be mapped back to one VIP statelessly.  Keyed by
  // hash (a Pod address:port/protocol in a VipPort), and a service port
  // named in text only when two meet: 200k endpoints at 10k services.
  struct ServicePort {
    const ServiceConfig* service;
    uint16_t port;
    std::string text() const {
      return service->ns + "/" + service->name + " port " + std::to_string(port);
    }
  };
  std::unordered_map<VipPort, ServicePort, VipPortHash> backs;  // the first service port each backs
  for (const ServiceConfig& s : config.services) {
    if (s.type != ServiceType::kClusterIp || !s.cluster_ip) continue;
    for (const ServicePortConfig& p : s.ports) {
      const ServicePort here{&s, p.port};
      for (const EndpointConfig& e : s.endpoints) {
        auto [it, first] = backs.try_emplace(VipPort{e.ip, p.target_port, p.protocol}, here);
        if (first) continue;
        const std::string earlier = it->second.text();
        const std::string now = here.text();
        if (earlier == now) continue;  // the same endpoint listed twice
        out.push_back("endpoint " + vip_port_text(e.ip, port_and_protocol(p.target_port, p.protocol)) +
                      " backs " + earlier +
                      " and " + now + ": its replies without a flow entry (a full flow table, or "
                      "a connection moved here from another appliance) cannot be reverse-NATed "
                      "statelessly and are dropped (no_flow)");
      }
    }
  }
  return out;
}

}  // namespace podgate::ctl
