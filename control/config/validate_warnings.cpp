// config_warnings(): what a valid config may do but is seldom meant.  Each
// rule here has a legitimate use, so it is a warning, not a refusal
// (validate_config.cpp refuses what has none); conf/podgate.toml says which.
#include <string>
#include <vector>

#include "control/config/validate.hpp"

namespace podgate::ctl {

std::vector<std::string> config_warnings(const Config& config) {
  std::vector<std::string> out;
  for (const ServiceConfig& s : config.services) {
    if (s.type != ServiceType::kClusterIp || !s.cluster_ip ||
        s.cluster_ip->family != dp::Family::kIpv4) {
      continue;
    }
    const dp::Ip4 vip = s.cluster_ip->as_v4();
    for (const PortConfig& p : config.ports) {
      if (p.address.addr == vip || !p.address.contains(vip)) continue;
      // The legitimate use: a VIP announced on the clients' LAN, where
      // podgate answers ARP for it.  The mistake: a host already has it.
      out.push_back("service " + s.ns + "/" + s.name + ": cluster_ip " + dp::to_string(vip) +
                    " is inside port " + p.name + "'s connected subnet " +
                    dp::to_string(dp::Prefix4{p.address.network(), p.address.length}) +
                    "; podgate answers ARP for it there, so no host on that subnet may have it");
    }
  }
  return out;
}

}  // namespace podgate::ctl
