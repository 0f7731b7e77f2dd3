// IPv6 network sections of the TOML config; see config_net6.hpp.  The rules
// are validate()'s (control/config/validate_network.cpp), said here with positions.
#include "control/config/config_net6.hpp"

#include "control/config/validate.hpp"

namespace podgate::ctl {

namespace {

std::string subnet(const dp::Prefix6& p) { return dp::to_string(dp::Prefix6{p.network(), p.length}); }

// Next hops and neighbours must be on a connected IPv6 subnet, and not ours.
void check_on_link6(ConfigReader& r, const dp::Ip6& ip, const toml::source_region& at,
                    const std::string& path, const std::vector<PortConfig>& ports) {
  std::string subnets;
  for (size_t j = 0; j < ports.size(); ++j) {
    const auto& a = ports[j].address6;
    if (!a) continue;
    if (a->addr == ip) {
      return r.error(at, path, dp::to_string(ip) + " is the address6 of ports[" + std::to_string(j) +
                                   "] (" + ports[j].name + ")");
    }
    if (a->contains(ip)) return;
    subnets += (subnets.empty() ? "" : ", ") + subnet(*a);
  }
  r.error(at, path,
          dp::to_string(ip) + (subnets.empty() ? " is not on link: no port has an address6"
                                               : " is not in a port's connected IPv6 subnet (" + subnets + ")"));
}

}  // namespace

bool is_ip6_entry(const toml::table& t, std::string_view key) {
  const toml::node* n = t.get(key);
  return n != nullptr && n->as_string() != nullptr && n->as_string()->get().find(':') != std::string::npos;
}

std::optional<dp::Prefix6> read_port_address6(ConfigReader& r, const toml::table& t,
                                              const std::string& p,
                                              const std::vector<PortConfig>& earlier,
                                              bool& complete) {
  auto s = r.get_string(t, p, "address6");
  if (!s) {
    if (t.get("address6") != nullptr) complete = false;
    return std::nullopt;
  }
  const toml::source_region& at = t.get("address6")->source();
  const std::string path = key_path(p, "address6");
  auto pfx = dp::parse_prefix6(*s);
  std::string problem;
  if (!pfx) {
    problem = quote(*s) + " is not an IPv6 address with prefix length such as \"fd00:1::1/64\"" +
              (dp::parse_prefix4(*s) ? " (the IPv4 address goes in address)" : "");
  } else if (pfx->length == 0) {
    problem = quote(*s) + ": prefix length 0 is not allowed for a port; use 1..128";
  } else if (!is_unicast_ip6(pfx->addr)) {
    problem = not_unicast_ip6(*s);
  } else if (pfx->addr.is_link_local()) {
    problem = link_local_not_allowed(*s, "a port's address6");
  } else if (pfx->length <= 126 && pfx->network() == pfx->addr) {
    // RFC 4291 section 2.6.1.
    problem = quote(*s) + " is the subnet's Subnet-Router anycast address (RFC 4291 section "
                          "2.6.1); a port needs a host address such as \"" +
              dp::to_string(pfx->addr) + "1/" + std::to_string(pfx->length) + "\"";
  } else {
    for (size_t j = 0; j < earlier.size(); ++j) {
      const auto& other = earlier[j].address6;
      if (!other) continue;
      if (other->addr == pfx->addr) {
        problem = quote(*s) + ": " + dp::to_string(pfx->addr) + " is already the address6 of ports[" +
                  std::to_string(j) + "]";
      } else if (overlaps(*other, *pfx)) {
        problem = quote(*s) + ": subnet " + subnet(*pfx) + " overlaps subnet " + subnet(*other) +
                  " of ports[" + std::to_string(j) + "]";
      }
      if (!problem.empty()) break;
    }
  }
  if (problem.empty()) return pfx;
  complete = false;
  r.error(at, path, problem);
  return std::nullopt;
}

void read_route6(ConfigReader& r, const toml::table& t, const std::string& p,
                 const std::vector<PortConfig>& ports, bool ports_complete,
                 std::vector<Route6Config>& out) {
  Route6Config route;
  const std::string prefix_text = *r.get_string(t, p, "prefix", true);
  const toml::source_region& at = t.get("prefix")->source();
  auto pfx = dp::parse_prefix6(prefix_text);
  if (!pfx) {
    r.error(at, key_path(p, "prefix"), quote(prefix_text) + " is not a prefix such as \"fd00:20::/64\"");
  } else if (pfx->network() != pfx->addr) {
    r.error(at, key_path(p, "prefix"),
            quote(prefix_text) + " has host bits set; the network is \"" + subnet(*pfx) + "\"");
    pfx.reset();
  } else {
    route.prefix = *pfx;
    for (size_t j = 0; j < out.size(); ++j) {
      if (out[j].prefix == *pfx) {
        r.error(at, key_path(p, "prefix"), quote(prefix_text) + " is already routed by an earlier route");
      }
    }
  }
  auto via_text = r.get_string(t, p, "via", true, " (an IPv6 next hop, or \"::\" for a connected route)");
  if (via_text) {
    const toml::source_region& vat = t.get("via")->source();
    const std::string vpath = key_path(p, "via");
    auto via = dp::parse_ip(*via_text);
    if (!via) {
      r.error(vat, vpath, quote(*via_text) + " is not an IPv6 address such as \"fd00:1::fe\", or \"::\"");
    } else if (via->is_v4()) {
      r.error(vat, vpath, quote(*via_text) + " is IPv4 but prefix " + quote(prefix_text) +
                              " is IPv6; a route's next hop is of its prefix's family");
    } else if (via->as_v6().is_zero()) {
      // Connected: the prefix lies in a port's subnet, which is where it leads.
      bool connected = !ports_complete || !pfx;
      for (const PortConfig& port : ports) {
        if (port.address6 && port.address6->length <= pfx.value_or(dp::Prefix6{}).length &&
            port.address6->contains(pfx.value_or(dp::Prefix6{}).addr)) {
          connected = true;
        }
      }
      if (!connected) {
        r.error(vat, vpath, "\"::\" (connected) but prefix " + quote(prefix_text) +
                                " is in no port's address6 subnet");
      }
    } else if (!is_unicast_ip6(via->as_v6())) {
      r.error(vat, vpath, not_unicast_ip6(*via_text));
    } else {
      route.via = via->as_v6();
      if (ports_complete) check_on_link6(r, route.via, vat, vpath, ports);
    }
  }
  out.push_back(route);
}

void read_neighbor6(ConfigReader& r, const toml::table& t, const std::string& p,
                    const std::vector<PortConfig>& ports, bool ports_complete,
                    std::vector<Neighbor6Config>& out) {
  Neighbor6Config nb;
  if (auto ip = r.get_ip(t, p, "ip", true, "a static neighbour")) {
    const toml::source_region& at = t.get("ip")->source();
    nb.ip = ip->as_v6();
    if (ports_complete) check_on_link6(r, nb.ip, at, key_path(p, "ip"), ports);
    for (size_t j = 0; j < out.size(); ++j) {
      if (out[j].ip == nb.ip) {
        r.error(at, key_path(p, "ip"), dp::to_string(nb.ip) + " is already an earlier neighbor");
      }
    }
  }
  if (auto mac = r.get_mac(t, p, "mac", true)) nb.mac = *mac;
  out.push_back(nb);
}

}  // namespace podgate::ctl
