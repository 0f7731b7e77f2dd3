#include "control/publish/snapshot_builder.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "dataplane/maglev.hpp"

namespace podgate::ctl {

std::string maglev_key(const dp::Backend& b) {
  return dp::to_string(b.ip) + ":" + std::to_string(dp::from_be16(b.port));
}

namespace {

struct Candidate {
  dp::ServiceKey key;
  bool client_ip_affinity;
  uint32_t service_id;
  uint32_t table_size;
  std::vector<std::pair<dp::Backend, uint32_t>> ready;  // with weights, sorted
  std::vector<dp::Backend> alive;                        // sorted
};

// Whether `s` forwards exactly as `c` would: then it is shared.
bool same_forwarding(const dp::ServiceData& s, const Candidate& c) {
  if (s.client_ip_affinity != c.client_ip_affinity || s.service_id != c.service_id ||
      s.maglev.size() != c.table_size || s.ready.size() != c.ready.size() ||
      s.alive.size() != c.alive.size()) {
    return false;
  }
  for (size_t i = 0; i < c.ready.size(); ++i) {
    if (!(s.ready[i] == c.ready[i].first) || s.weights[i] != c.ready[i].second) return false;
  }
  return std::equal(s.alive.begin(), s.alive.end(), c.alive.begin());
}

}  // namespace

std::unique_ptr<dp::Snapshot> build_snapshot(const SnapshotInputs& in, BuildStats* stats) {
  const Config& cfg = *in.config;
  auto snap = std::make_unique<dp::Snapshot>();
  snap->generation = in.generation;
  // Workers punt UDP to dns_vip:53 to the control thread, and answer ARP
  // and ping for it like a VIP.
  if (cfg.dns.service_ip) snap->dns_vip = *cfg.dns.service_ip;

  // The previous snapshot's service ports by VIP, port and protocol (one
  // each: validate() refuses a VIP:port/protocol used twice), so finding
  // what to share costs O(1) per service port, not a scan of them all.
  std::unordered_map<uint64_t, const std::shared_ptr<const dp::ServiceData>*> previous;
  auto key_of = [](dp::Ip4 vip, uint16_t port_be, dp::Proto proto) {
    return uint64_t{vip.host()} << 24 | uint64_t{port_be} << 8 | static_cast<uint8_t>(proto);
  };
  if (in.previous != nullptr) {
    previous.reserve(in.previous->owned_services.size());
    for (const auto& prev : in.previous->owned_services) {
      previous.emplace(key_of(prev->vip, prev->port, prev->proto), &prev);
    }
  }

  std::vector<dp::ServiceMap::Item> services;
  std::vector<dp::ServiceMap::Item> backends;
  for (size_t si = 0; si < cfg.services.size(); ++si) {
    const ServiceConfig& svc = cfg.services[si];
    if (svc.type != ServiceType::kClusterIp || !svc.cluster_ip) continue;  // DNS only
    dp::Ip4 vip = svc.cluster_ip->as_v4();
    snap->vips.push_back(vip);
    for (const ServicePortConfig& port : svc.ports) {
      Candidate c{dp::ServiceKey{vip, dp::to_be16(port.port), port.protocol, 0},
                  svc.session_affinity == SessionAffinity::kClientIp, static_cast<uint32_t>(si),
                  svc.maglev_table_size.value_or(cfg.dataplane.maglev_table_size), {}, {}};
      for (const EndpointConfig& e : svc.endpoints) {
        dp::Backend b{e.ip.as_v4(), dp::to_be16(port.target_port), 0};
        if (e.takes_new_flows()) c.ready.emplace_back(b, e.weight);
        if (e.keeps_flows()) c.alive.push_back(b);
      }
      std::sort(c.ready.begin(), c.ready.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      std::sort(c.alive.begin(), c.alive.end());

      std::shared_ptr<const dp::ServiceData> data;
      if (auto it = previous.find(key_of(vip, c.key.port, c.key.proto));
          it != previous.end() && same_forwarding(**it->second, c)) {
        data = *it->second;
      }
      if (data) {
        if (stats) ++stats->services_shared;
      } else {
        // Not make_shared: ServiceData must come from its own operator new
        // (DPDK memory), which make_shared would bypass.
        std::shared_ptr<dp::ServiceData> fresh(new dp::ServiceData);
        fresh->vip = vip;
        fresh->port = c.key.port;
        fresh->proto = c.key.proto;
        fresh->client_ip_affinity = c.client_ip_affinity;
        fresh->service_id = c.service_id;
        std::vector<std::string> keys;
        for (const auto& r : c.ready) {
          fresh->ready.push_back(r.first);
          fresh->weights.push_back(r.second);
          keys.push_back(maglev_key(r.first));
        }
        std::vector<dp::MaglevEntry> entries;
        for (size_t i = 0; i < keys.size(); ++i) entries.push_back({keys[i], c.ready[i].second});
        fresh->maglev = dp::build_maglev_table(entries, c.table_size);
        fresh->alive.assign(c.alive.begin(), c.alive.end());
        auto slot = [&](const dp::Backend& b) {
          return in.slots != nullptr ? in.slots->slot_for(c.key, b) : dp::kUntrackedSlot;
        };
        for (const dp::Backend& b : fresh->ready) fresh->ready_slots.push_back(slot(b));
        for (const dp::Backend& b : fresh->alive) fresh->alive_slots.push_back(slot(b));
        data = std::move(fresh);
        if (stats) ++stats->services_built;
      }
      services.emplace_back(c.key, data.get());
      for (const dp::Backend& b : data->alive) {
        backends.emplace_back(dp::ServiceKey{b.ip, b.port, c.key.proto, 0}, data.get());
      }
      snap->owned_services.push_back(std::move(data));
    }
  }
  snap->services = dp::ServiceMap(services);
  // A backend that serves several service ports cannot be mapped back.
  auto by_key = [](const dp::ServiceMap::Item& a, const dp::ServiceMap::Item& b) {
    uint64_t ka, kb;
    std::memcpy(&ka, &a.first, 8);
    std::memcpy(&kb, &b.first, 8);
    return ka < kb;
  };
  std::sort(backends.begin(), backends.end(), by_key);
  std::vector<dp::ServiceMap::Item> unique_backends;
  for (size_t i = 0; i < backends.size();) {
    size_t j = i + 1;
    while (j < backends.size() && backends[j].first == backends[i].first) ++j;
    if (j == i + 1) unique_backends.push_back(backends[i]);
    i = j;
  }
  snap->backends = dp::ServiceMap(unique_backends);
  std::sort(snap->vips.begin(), snap->vips.end());
  snap->vips.erase(std::unique(snap->vips.begin(), snap->vips.end()), snap->vips.end());

  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    dp::MacAddr mac = i < in.port_macs.size() ? in.port_macs[i] : dp::MacAddr{};
    snap->ports.push_back(dp::PortAddress{cfg.ports[i].address, mac});
    dp::Prefix4 connected{cfg.ports[i].address.network(), cfg.ports[i].address.length};
    snap->routes.push_back(dp::Route::make(connected, dp::Ip4{}, dp::PortIdx{static_cast<uint16_t>(i)}));
  }
  for (const RouteConfig& r : cfg.routes) {
    // The config loader checked that `via` lies in a connected subnet.
    for (size_t i = 0; i < cfg.ports.size(); ++i) {
      if (cfg.ports[i].address.contains(r.via)) {
        snap->routes.push_back(dp::Route::make(r.prefix, r.via, dp::PortIdx{static_cast<uint16_t>(i)}));
        break;
      }
    }
  }
  // Longest prefix first; among equal lengths, connected before static.
  std::stable_sort(snap->routes.begin(), snap->routes.end(),
                   [](const dp::Route& a, const dp::Route& b) { return a.prefix.length > b.prefix.length; });
  return snap;
}

}  // namespace podgate::ctl
