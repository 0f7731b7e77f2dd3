// The [dns] table; see config_dns.hpp.  Messages follow config.cpp's form:
// `FILE:LINE:COL: KEY.PATH: what was found and what is allowed`.
#include "control/config/config_dns.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "control/config/validate.hpp"

namespace podgate::ctl {

std::optional<DnsListen> parse_listen(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto ip = dp::parse_ip4(s.substr(0, colon));
  std::string_view port = s.substr(colon + 1);
  if (!ip || port.empty() || port.size() > 5 || (port.size() > 1 && port[0] == '0') ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint32_t value = 0;
  for (char c : port) value = value * 10 + static_cast<uint32_t>(c - '0');
  // Multicast and class E cannot be bound for a server; 0.0.0.0 and 127/8 can.
  if (value == 0 || value > 65535 || (ip->host() >> 24) >= 224) return std::nullopt;
  return DnsListen{*ip, static_cast<uint16_t>(value)};
}

bool is_ip6_listen(std::string_view s) {
  return (!s.empty() && s.front() == '[') || std::count(s.begin(), s.end(), ':') > 1;
}

namespace {

void read_listen(ConfigReader& r, const toml::table& t, const std::string& p, DnsConfig& dns) {
  const std::string lp = key_path(p, "listen");
  const toml::array* a = r.get_array(t, p, "listen", "an array of strings");
  if (a == nullptr) return;
  dns.listen.clear();  // given: replaces the default, [] means no listener
  for (size_t i = 0; i < a->size(); ++i) {
    const std::string ip = element_path(lp, i);
    const auto* s = (*a)[i].as_string();
    if (s == nullptr) {
      r.wrong_type((*a)[i], ip, "a string");
      continue;
    }
    auto addr = parse_listen(s->get());
    if (!addr) {
      r.error((*a)[i].source(), ip,
              is_ip6_listen(s->get())
                  ? ip6_where_ip4(s->get(), "dns.listen")
                  : quote(s->get()) + " is not an IPv4 address and port such as \"127.0.0.1:53\" "
                                      "(port 1..65535; 0.0.0.0 listens on every address)");
      continue;
    }
    const std::string text = dp::to_string(addr->ip) + ":" + std::to_string(addr->port);
    for (size_t j = 0; j < dns.listen.size(); ++j) {
      const DnsListen& other = dns.listen[j];
      if (other.port != addr->port) continue;
      // The kernel refuses a second bind of the same port when one of the
      // two is the wildcard address, so that overlap is a mistake too.
      if (other.ip == addr->ip || other.ip.is_zero() || addr->ip.is_zero()) {
        r.error((*a)[i].source(), ip,
                text + (other.ip == addr->ip ? " is already " : " overlaps ") +
                    element_path(lp, j) +
                    (other.ip == addr->ip ? ""
                                          : " (" + dp::to_string(other.ip) + ":" +
                                                std::to_string(other.port) + ")"));
        break;
      }
    }
    dns.listen.push_back(*addr);
  }
}

// The DNS service VIP: answered on the dataplane like a cluster IP, so it
// must not collide with an address the dataplane already answers for.
void read_service_ip(ConfigReader& r, const toml::table& t, const std::string& p,
                     const std::vector<PortConfig>& ports,
                     const ServiceList& services, DnsConfig& dns) {
  auto vip = r.get_ip4(t, p, "service_ip");
  if (!vip) return;
  const toml::source_region& at = t.get("service_ip")->source();
  const std::string path = key_path(p, "service_ip");
  bool ok = true;
  for (size_t j = 0; j < ports.size(); ++j) {
    const PortConfig& port = ports[j];
    if (port.address.length == 0) continue;  // invalid, already reported
    uint32_t host = vip->host() & ~port.address.mask_host();
    if (port.address.addr == *vip) {
      r.error(at, path, dp::to_string(*vip) + " is the address of ports[" + std::to_string(j) +
                            "] (" + port.name + "); the DNS service IP must not be a port address");
      ok = false;
    } else if (port.address.length <= 30 && port.address.contains(*vip) &&
               (host == 0 || host == ~port.address.mask_host())) {
      r.error(at, path, dp::to_string(*vip) + " is the " + (host == 0 ? "network" : "broadcast") +
                            " address of ports[" + std::to_string(j) + "] (" + port.name + ")");
      ok = false;
    }
  }
  for (size_t j = 0; j < services.size(); ++j) {
    const ServiceConfig& svc = services[j];
    if (svc.cluster_ip == dp::IpAddr::v4(*vip) || svc.secondary_cluster_ip == dp::IpAddr::v4(*vip)) {
      r.error(at, path, dp::to_string(*vip) + " is the cluster_ip of services[" +
                            std::to_string(j) + "] (" + svc.ns + "/" + svc.name +
                            "); the DNS service IP must be an address of its own");
      ok = false;
    }
  }
  if (ok) dns.service_ip = *vip;
}

}  // namespace

void read_dns_section(ConfigReader& r, const toml::table& root,
                      const std::vector<PortConfig>& ports,
                      const ServiceList& services, DnsConfig& dns) {
  const toml::node* n = r.find(root, "", "dns", false);
  if (n == nullptr) return;
  const toml::table* t = n->as_table();
  if (t == nullptr) return r.wrong_type(*n, "dns", "a table");
  const std::string p = "dns";
  r.check_keys(*t, p, {"zone", "ttl", "listen", "service_ip", "max_udp_payload", "rate_limit"});
  if (auto zone = r.get_string(*t, p, "zone")) {
    std::string_view z = *zone;
    if (!z.empty() && z.back() == '.') z.remove_suffix(1);  // "cluster.local." is the same
    // 253 leaves no room for the names under it; 200 leaves 53 octets for
    // the longest shapes the zone holds (_port._proto.SVC.NS.svc.ZONE).
    if (!is_dns_name(z) || z.size() > kMaxZoneLength) {
      r.error(t->get("zone")->source(), key_path(p, "zone"),
              quote(*zone) + " is not a DNS name of at most " + std::to_string(kMaxZoneLength) +
                  " characters (dot-separated DNS-1123 labels: a-z, 0-9 and '-'), e.g. "
                  "\"cluster.local\"");
    } else {
      dns.zone = std::string(z);
    }
  }
  r.get_u32(*t, p, "ttl", 1, 86400, dns.ttl);
  if (auto payload = r.get_int(*t, p, "max_udp_payload", 512, 4096)) {
    dns.max_udp_payload = static_cast<uint16_t>(*payload);
  }
  r.get_u32(*t, p, "rate_limit", 0, 10000000, dns.rate_limit);
  read_listen(r, *t, p, dns);
  read_service_ip(r, *t, p, ports, services, dns);
}

}  // namespace podgate::ctl
