// validate()'s network rules; see validate_network.hpp.  Rules and wording
// follow the TOML loader's (control/config/config.cpp, config_net6.cpp).
#include "control/config/validate_network.hpp"

#include <map>
#include <set>
#include <string_view>
#include <unordered_map>

#include "control/config/validate.hpp"

namespace podgate::ctl {

using dp::Ip4;
using dp::Ip6;
using dp::Prefix4;
using dp::Prefix6;

std::string port_object(const Config& c, size_t i) {
  const std::string& name = c.ports[i].name;
  return name.empty() ? "ports[" + std::to_string(i) + "]" : "port " + name;
}

std::string subnet_text(const Prefix4& p) { return dp::to_string(Prefix4{p.network(), p.length}); }
std::string subnet_text(const Prefix6& p) { return dp::to_string(Prefix6{p.network(), p.length}); }

namespace {

class NetworkChecker {
 public:
  NetworkChecker(const Config& c, Diagnostics& diag) : c_(c), diag_(diag) {}

  bool run() {
    check_ports();
    check_routes();
    check_neighbors();
    check_routes6();
    check_neighbors6();
    return ports_complete_ && ports6_complete_;
  }

 private:
  void error(const std::string& object, const std::string& what) {
    diag_.error(diag_.at_object(object), "", what);
  }

  bool range(const std::string& o, std::string_view field, int64_t v, int64_t lo, int64_t hi) {
    if (v >= lo && v <= hi) return true;
    error(o, std::string(field) + " " + not_in_range(v, lo, hi));
    return false;
  }

  std::string port_object(size_t i) const { return ctl::port_object(c_, i); }

  // ---- [[ports]] ----

  void check_ports() {
    if (c_.ports.empty()) error("ports", "none; at least one port is needed");
    for (size_t i = 0; i < c_.ports.size(); ++i) {
      const PortConfig& p = c_.ports[i];
      const std::string o = port_object(i);
      if (!is_port_name(p.name)) {
        error(o, "name " + quote(p.name) + " is not a port name (1..32 of a-z, 0-9, '_' and '-')");
      }
      for (size_t j = 0; j < i; ++j) {
        if (!p.name.empty() && c_.ports[j].name == p.name) {
          error(o, "name " + quote(p.name) + " is given to ports[" + std::to_string(j) +
                       "] and ports[" + std::to_string(i) + "]");
        }
      }
      if (p.device.empty()) {
        error(o, "device empty; a DPDK device such as \"0000:01:00.0\" or \"net_tap0,iface=pg0\" "
                 "is needed");
      }
      if (p.mac && !is_unicast_mac(*p.mac)) {
        error(o, "mac " + dp::to_string(*p.mac) + " is not a unicast address");
      }
      if (p.mtu && range(o, "mtu", *p.mtu, kMinPortMtu, kMaxPortMtu) && p.address6 && *p.mtu < kMinPortMtu6) {
        error(o, "mtu " + mtu_too_small_for_ipv6(*p.mtu));
      }
      if (!p.kernel.empty()) {
        if (!is_interface_name(p.kernel)) {
          error(o, "kernel " + quote(p.kernel) +
                       " is not an interface name (1..15 of a-z, A-Z, 0-9, '_', '-' and '.')");
        }
        for (size_t j = 0; j < i; ++j) {
          if (c_.ports[j].kernel == p.kernel) {
            error(o, "kernel " + quote(p.kernel) + " is the kernel twin of ports[" +
                         std::to_string(j) + "] too");
          }
        }
      }
      range(o, "kernel_rate", p.kernel_rate, 1, 10000000);
      if (!check_port_address(i)) ports_complete_ = false;
      if (p.address6 && !check_port_address6(i)) ports6_complete_ = false;
    }
  }

  bool check_port_address(size_t i) {
    const Prefix4& a = c_.ports[i].address;
    const std::string o = port_object(i);
    const std::string text = dp::to_string(a);
    const uint32_t host = a.addr.host() & ~a.mask_host();
    if (a.length == 0 || a.length > 32) {
      error(o, "address " + text + ": prefix length " + std::to_string(a.length) +
                   " is not allowed for a port; use 1..32");
      return false;
    }
    if (!is_unicast_ip4(a.addr)) {
      error(o, "address " + not_unicast_ip4(text));
      return false;
    }
    if (a.length <= 30 && (host == 0 || host == ~a.mask_host())) {
      error(o, "address " + text + " is the subnet's " + (host == 0 ? "network" : "broadcast") +
                   " address; a port needs a host address such as " +
                   dp::to_string(Ip4::from_host(a.network().host() + 1)) + "/" +
                   std::to_string(a.length));
      return false;
    }
    bool ok = true;
    for (size_t j = 0; j < i; ++j) {
      const Prefix4& other = c_.ports[j].address;
      if (other.length == 0) continue;
      if (other.addr == a.addr) {
        error(o, "address " + dp::to_string(a.addr) + " is already the address of " +
                     port_object(j));
        ok = false;
      } else if (overlaps(other, a)) {
        error(o, "address " + text + ": subnet " + subnet_text(a) + " overlaps subnet " +
                     subnet_text(other) + " of " + port_object(j));
        ok = false;
      }
    }
    return ok;
  }

  bool check_port_address6(size_t i) {
    const Prefix6& a = *c_.ports[i].address6;
    const std::string o = port_object(i);
    const std::string text = dp::to_string(a);
    if (a.length == 0 || a.length > 128) {
      error(o, "address6 " + text + ": prefix length " + std::to_string(a.length) +
                   " is not allowed for a port; use 1..128");
      return false;
    }
    if (!is_unicast_ip6(a.addr)) {
      error(o, "address6 " + not_unicast_ip6(dp::to_string(a.addr)));
      return false;
    }
    if (a.addr.is_link_local()) {
      error(o, "address6 " + link_local_not_allowed(dp::to_string(a.addr), "a port's address6"));
      return false;
    }
    if (a.length <= 126 && a.network() == a.addr) {
      // RFC 4291 section 2.6.1: the all-zero host is the Subnet-Router anycast address.
      error(o, "address6 " + text + " is the subnet's Subnet-Router anycast address (RFC 4291 "
                                    "section 2.6.1); a port needs a host address");
      return false;
    }
    bool ok = true;
    for (size_t j = 0; j < i; ++j) {
      const auto& other = c_.ports[j].address6;
      if (!other || other->length == 0 || other->length > 128) continue;
      if (other->addr == a.addr) {
        error(o, "address6 " + dp::to_string(a.addr) + " is already the address6 of " + port_object(j));
        ok = false;
      } else if (overlaps(*other, a)) {
        error(o, "address6 " + text + ": subnet " + subnet_text(a) + " overlaps subnet " +
                     subnet_text(*other) + " of " + port_object(j));
        ok = false;
      }
    }
    return ok;
  }

  // Next hops and neighbours must be on a connected subnet, and not ours.
  void check_on_link(const std::string& o, std::string_view field, Ip4 ip) {
    if (!is_unicast_ip4(ip)) return error(o, std::string(field) + " " + not_unicast_ip4(dp::to_string(ip)));
    if (!ports_complete_) return;  // the port addresses themselves are wrong
    std::string subnets;
    for (size_t j = 0; j < c_.ports.size(); ++j) {
      const PortConfig& port = c_.ports[j];
      if (port.address.addr == ip) {
        return error(o, std::string(field) + " " + dp::to_string(ip) + " is the address of " +
                            port_object(j));
      }
      if (port.address.contains(ip)) {
        // No host has the subnet's network or broadcast address (RFC 1812
        // §4.2.3.1; a /31 or /32 has neither, RFC 3021).
        const Ip4 network = port.address.network();
        const Ip4 broadcast = Ip4::from_host(network.host() | ~port.address.mask_host());
        if (port.address.length <= 30 && (ip == network || ip == broadcast)) {
          error(o, std::string(field) + " " + dp::to_string(ip) + " is the " +
                       (ip == network ? "network" : "broadcast") + " address of subnet " +
                       subnet_text(port.address) + " (" + port_object(j) + "), no host's");
        }
        return;
      }
      subnets += (subnets.empty() ? "" : ", ") + subnet_text(port.address);
    }
    error(o, std::string(field) + " " + dp::to_string(ip) + " is not in a port's connected subnet (" +
                 subnets + ")");
  }

  // The same for IPv6: on-link for some port's address6.
  void check_on_link6(const std::string& o, std::string_view field, const Ip6& ip) {
    const std::string text = dp::to_string(ip);
    if (!is_unicast_ip6(ip)) return error(o, std::string(field) + " " + not_unicast_ip6(text));
    if (!ports6_complete_) return;
    std::string subnets;
    for (size_t j = 0; j < c_.ports.size(); ++j) {
      const auto& a = c_.ports[j].address6;
      if (!a) continue;
      if (a->addr == ip) {
        return error(o, std::string(field) + " " + text + " is the address6 of " + port_object(j));
      }
      if (a->contains(ip)) return;
      subnets += (subnets.empty() ? "" : ", ") + subnet_text(*a);
    }
    error(o, std::string(field) + " " + text +
                 (subnets.empty() ? " is not on link: no port has an address6"
                                  : " is not in a port's connected IPv6 subnet (" + subnets + ")"));
  }

  // ---- [[routes]], [[neighbors]] ----

  void check_routes() {
    std::unordered_map<uint64_t, size_t> seen;
    for (size_t i = 0; i < c_.routes.size(); ++i) {
      const RouteConfig& r = c_.routes[i];
      const std::string o = "route " + dp::to_string(r.prefix);
      if (r.prefix.length > 32) {
        error(o, "prefix length " + std::to_string(r.prefix.length) + " is not in 0..32");
      } else if (r.prefix.network() != r.prefix.addr) {
        error(o, "prefix has host bits set; the network is " + subnet_text(r.prefix));
      } else {
        const uint64_t key = uint64_t{r.prefix.addr.host()} << 8 | r.prefix.length;
        if (!seen.emplace(key, i).second) error(o, "routed twice");
      }
      check_on_link(o, "via", r.via);
    }
  }

  void check_neighbors() {
    std::unordered_map<uint32_t, size_t> seen;
    for (size_t i = 0; i < c_.neighbors.size(); ++i) {
      const NeighborConfig& n = c_.neighbors[i];
      const std::string o = "neighbor " + dp::to_string(n.ip);
      check_on_link(o, "ip", n.ip);
      if (!seen.emplace(n.ip.host(), i).second) error(o, "listed twice");
      if (!is_unicast_mac(n.mac)) error(o, "mac " + dp::to_string(n.mac) + " is not a unicast address");
    }
  }

  // IPv6 routes: via "::" is a connected route, whose prefix must lie in a
  // port's address6 subnet (that port is where it leads).
  void check_routes6() {
    std::set<std::pair<Ip6, uint8_t>> seen;
    for (const Route6Config& r : c_.routes6) {
      const std::string o = "route " + dp::to_string(r.prefix);
      if (r.prefix.length > 128) {
        error(o, "prefix length " + std::to_string(r.prefix.length) + " is not in 0..128");
      } else if (r.prefix.network() != r.prefix.addr) {
        error(o, "prefix has host bits set; the network is " + subnet_text(r.prefix));
      } else if (!seen.emplace(r.prefix.addr, r.prefix.length).second) {
        error(o, "routed twice");
      }
      if (!r.via.is_zero()) {
        check_on_link6(o, "via", r.via);
      } else if (ports6_complete_ && !connected6(r.prefix)) {
        error(o, "via :: (connected) but the prefix is in no port's address6 subnet");
      }
    }
  }

  bool connected6(const Prefix6& p) const {
    for (const PortConfig& port : c_.ports) {
      if (port.address6 && port.address6->length <= p.length && port.address6->contains(p.addr)) return true;
    }
    return false;
  }

  void check_neighbors6() {
    std::set<Ip6> seen;
    for (const Neighbor6Config& n : c_.neighbors6) {
      const std::string o = "neighbor " + dp::to_string(n.ip);
      if (n.ip.is_link_local()) {
        error(o, "ip " + link_local_not_allowed(dp::to_string(n.ip), "a static neighbour"));
      } else {
        check_on_link6(o, "ip", n.ip);
      }
      if (!seen.insert(n.ip).second) error(o, "listed twice");
      if (!is_unicast_mac(n.mac)) error(o, "mac " + dp::to_string(n.mac) + " is not a unicast address");
    }
  }

  const Config& c_;
  Diagnostics& diag_;
  bool ports_complete_ = true;   // every port address valid
  bool ports6_complete_ = true;  // every port address6 valid
};

}  // namespace

bool check_network(const Config& c, Diagnostics& diag) { return NetworkChecker(c, diag).run(); }

}  // namespace podgate::ctl
