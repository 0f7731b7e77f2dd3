// config_warnings(): what a valid config may do but is seldom meant.  Each
// rule here has a legitimate use, so it is a warning, not a refusal
// (validate_config.cpp refuses what has none); conf/podgate.toml says which.
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/config/ip_key.hpp"
#include "control/config/validate.hpp"
#include "dataplane/worker_counters.hpp"

namespace podgate::ctl {

namespace {

// The stats slots (dataplane/worker_counters.hpp) are a fixed table, one
// per worker, not grown with the config: a slot counts one endpoint of one
// service port (of its VIP's family) while the endpoint may hold flows.  A
// pair without one is counted in slot 0, which is reported nowhere but in
// the workers' totals.  An endpoint that leaves keeps its slot for the
// quarantine while its successor takes another, so a config with more
// than half the slots cannot replace all its endpoints at once.
void stats_slot_warnings(const Config& config, std::vector<std::string>& out) {
  uint64_t pairs = 0;
  for (const ServiceConfig& s : config.services) {
    if (s.type != ServiceType::kClusterIp || !s.cluster_ip) continue;
    const std::vector<dp::IpAddr> vips = s.cluster_ips();
    uint64_t endpoints = 0;
    for (const EndpointConfig& e : s.endpoints) {
      const bool forwarded = std::any_of(vips.begin(), vips.end(),
                                         [&](const dp::IpAddr& v) { return v.family == e.ip.family; });
      if (forwarded && e.keeps_flows()) ++endpoints;
    }
    pairs += endpoints * s.ports.size();
  }
  constexpr uint64_t kSlots = dp::kStatsSlots - 1;  // slot 0 is the untracked sink
  const std::string head = "stats slots: " + std::to_string(pairs) + " (service port, endpoint) pairs";
  if (pairs > kSlots) {
    out.push_back(head + ", more than the " + std::to_string(kSlots) + " podgate counts: the traffic of " +
                  std::to_string(pairs - kSlots) + " of them is in the workers' totals only, not in its "
                  "service's or endpoint's figures (stats_slots.exhausted counts them)");
  } else if (pairs > kSlots / 2) {
    out.push_back(head + " of the " + std::to_string(kSlots) + " podgate counts: an endpoint that leaves "
                  "keeps its slot for " + std::to_string(config.dataplane.stats_slot_quarantine_s()) +
                  " s (the longest flow timeout + 60 s), so beyond " + std::to_string(kSlots - pairs) +
                  " endpoints replaced within that time (a rolling update) the new ones' traffic is in "
                  "the workers' totals only, not in their service's or endpoint's figures");
  }
}

// An http check without `port` sends its GET to each TCP target port of
// the service (HealthCheckConfig::port): one that speaks TLS, or no HTTP
// at all (a database, a metrics exporter's neighbour), fails it, and the
// service's endpoints read as unhealthy there.  A Kubernetes readinessProbe
// and HAProxy's `check port` name one port; so should this.
void http_check_warnings(const Config& config, std::vector<std::string>& out) {
  for (const ServiceConfig& s : config.services) {
    if (!s.health_check || s.health_check->kind != HealthKind::kHttp || s.health_check->port) continue;
    std::vector<uint16_t> probed;
    for (const ServicePortConfig& p : s.ports) {
      if (p.protocol == dp::Proto::kTcp) probed.push_back(p.target_port);
    }
    std::sort(probed.begin(), probed.end());
    probed.erase(std::unique(probed.begin(), probed.end()), probed.end());
    if (probed.size() < 2) continue;
    std::string ports;
    for (uint16_t p : probed) ports += (ports.empty() ? "" : ", ") + std::to_string(p);
    out.push_back("service " + s.ns + "/" + s.name + ": its http health check has no port, so it sends " +
                  s.health_check->method + " " + s.health_check->path + " to each TCP target port (" + ports +
                  "); one that does not speak plain HTTP (TLS, a database) fails it: set port to the one "
                  "that does");
  }
}

// [announce] keeps IPv4 /32 routes only: the kernel twin it keeps them on
// speaks IPv4 alone (kernel_twins.hpp), and so does BIRD's session over
// it.  An IPv6 VIP is forwarded, but the router learns no route to it from
// podgate.  One warning for them all, naming the first few: a dual-stack
// cluster of 10k services would otherwise log 10k lines on every reload.
void announce_warnings(const Config& config, std::vector<std::string>& out) {
  if (config.announce.port.empty()) return;
  constexpr size_t kNamed = 3;
  size_t count = 0;
  std::string named;
  for (const ServiceConfig& s : config.services) {
    if (s.type != ServiceType::kClusterIp) continue;
    for (const dp::IpAddr& vip : s.cluster_ips()) {
      if (!vip.is_v6()) continue;
      if (++count <= kNamed) {
        named += (named.empty() ? "" : ", ") + s.ns + "/" + s.name + " " + dp::to_string(vip);
      }
    }
  }
  if (count == 0) return;
  if (count > kNamed) named += " and " + std::to_string(count - kNamed) + " more";
  const bool one = count == 1;
  out.push_back("[announce]: the IPv6 cluster IP" + std::string(one ? "" : "s") + " of " +
                std::to_string(count) + (one ? " service (" : " services (") + named + ") " +
                (one ? "is" : "are") + " not announced: podgate announces IPv4 VIPs only, so the "
                "router sends " + (one ? "it" : "them") + " nothing unless routed there some other way "
                "(docs/scale-out.md)");
}

}  // namespace

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
  http_check_warnings(config, out);
  stats_slot_warnings(config, out);
  announce_warnings(config, out);
  return out;
}

}  // namespace podgate::ctl
