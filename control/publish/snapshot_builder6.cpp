// The ports, routes and IPv6 services of a snapshot, built whole at every
// publication; see service_port_build.hpp.
#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "control/config/memory_plan.hpp"
#include "control/publish/service_port_build.hpp"

namespace podgate::ctl::build_detail {

void build_ports_and_routes(const Config& cfg, const std::vector<dp::MacAddr>& macs, dp::Snapshot& snap) {
  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    dp::MacAddr mac = i < macs.size() ? macs[i] : dp::MacAddr{};
    snap.ports.push_back(dp::PortAddress{cfg.ports[i].address, mac, cfg.ports[i].address6.value_or(dp::Prefix6{})});
    dp::Prefix4 connected{cfg.ports[i].address.network(), cfg.ports[i].address.length};
    snap.routes.push_back(dp::Route::make(connected, dp::Ip4{}, dp::PortIdx{static_cast<uint16_t>(i)}));
  }
  for (const RouteConfig& r : cfg.routes) {
    // validate() checked that `via` lies in a connected subnet.
    for (size_t i = 0; i < cfg.ports.size(); ++i) {
      if (cfg.ports[i].address.contains(r.via)) {
        snap.routes.push_back(dp::Route::make(r.prefix, r.via, dp::PortIdx{static_cast<uint16_t>(i)}));
        break;
      }
    }
  }
  // Longest prefix first; among equal lengths, connected before static.
  std::stable_sort(snap.routes.begin(), snap.routes.end(),
                   [](const dp::Route& a, const dp::Route& b) { return a.prefix.length > b.prefix.length; });

  // IPv6 (issue 11): the same, from address6 and the IPv6 [[routes]].
  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    if (!cfg.ports[i].address6) continue;
    const dp::Prefix6& a = *cfg.ports[i].address6;
    snap.routes6.push_back(dp::Route6::make(dp::Prefix6{a.network(), a.length}, dp::Ip6{},
                                            dp::PortIdx{static_cast<uint16_t>(i)}));
  }
  for (const Route6Config& r : cfg.routes6) {
    for (size_t i = 0; i < cfg.ports.size(); ++i) {
      if (cfg.ports[i].address6 && cfg.ports[i].address6->contains(r.via)) {
        snap.routes6.push_back(dp::Route6::make(dp::Prefix6{r.prefix.network(), r.prefix.length}, r.via,
                                                dp::PortIdx{static_cast<uint16_t>(i)}));
        break;
      }
    }
  }
  std::stable_sort(snap.routes6.begin(), snap.routes6.end(),
                   [](const dp::Route6& a, const dp::Route6& b) { return a.prefix.length > b.prefix.length; });
}

// The IPv6 services (issue 11), built whole at every publication, each
// service port sharing the previous snapshot's data (Maglev table
// included) when it forwards as before: an endpoint change still builds
// one table.  O(services) per publication, unlike the IPv4 builder's
// O(changes): left for when IPv6 services count in thousands.
void build_services6(const Config& cfg, const dp::Snapshot* previous, StatsSlots* slots, dp::Snapshot& s,
                     BuildStats& stats) {
  using DataPtr6 = std::shared_ptr<const dp::ServiceData6>;
  std::unordered_map<const dp::ServiceData6*, DataPtr6> old;
  if (previous != nullptr) {
    for (const DataPtr6& d : previous->owned_services6) old.emplace(d.get(), d);
  }
  std::vector<dp::ServiceMap6::Item> services;
  std::vector<std::pair<dp::ServiceKey6, const dp::ServiceData6*>> owners;
  for (const ServiceConfig& svc : cfg.services) {
    const std::optional<dp::Ip6> vip = vip_of<dp::Ip6>(svc);
    if (!vip) continue;
    s.vips6.push_back(*vip);
    const uint32_t table_size = maglev_table_size_of(svc, cfg.dataplane);
    for (const ServicePortConfig& port : svc.ports) {
      BasicCandidate<dp::Ip6> c{dp::ServiceKey6{*vip, dp::to_be16(port.port), port.protocol, 0},
                                svc.session_affinity == SessionAffinity::kClientIp, 0, table_size, {}, {}};
      choose_endpoints(svc, port, c);
      DataPtr6 data;
      const dp::ServiceData6* before = previous != nullptr ? previous->services6.find(c.key) : nullptr;
      if (before != nullptr && same_forwarding(*before, c)) {
        data = old.at(before);
        ++stats.services_shared;
      } else {
        data = build_service_port(c, slots);
        ++stats.services_built;
      }
      services.emplace_back(c.key, data.get());
      for (const dp::Backend6& be : data->alive) {
        owners.emplace_back(dp::ServiceKey6{be.ip, be.port, c.key.proto, 0}, data.get());
      }
      s.owned_services6.push_back(std::move(data));
    }
  }
  s.services6 = dp::ServiceMap6(services);
  // A backend key maps to its service port only while exactly one has it.
  std::sort(owners.begin(), owners.end(), [](const auto& x, const auto& y) {
    return std::memcmp(&x.first, &y.first, sizeof x.first) < 0;
  });
  std::vector<dp::ServiceMap6::Item> backends;
  for (size_t i = 0; i < owners.size();) {
    size_t j = i + 1;
    while (j < owners.size() && owners[j].first == owners[i].first) ++j;
    if (j == i + 1) backends.push_back(owners[i]);
    i = j;
  }
  s.backends6 = dp::ServiceMap6(backends);
  std::sort(s.vips6.begin(), s.vips6.end());
  s.vips6.erase(std::unique(s.vips6.begin(), s.vips6.end()), s.vips6.end());
  if (previous != nullptr) {
    std::unordered_set<const dp::ServiceData6*> kept;
    for (const DataPtr6& d : s.owned_services6) kept.insert(d.get());
    for (const DataPtr6& d : previous->owned_services6) {
      if (kept.count(d.get()) == 0) stats.dropped6.push_back(d);
    }
  }
}

}  // namespace podgate::ctl::build_detail
