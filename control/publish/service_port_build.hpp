// The snapshot builder's parts that both families share (issue 11), and
// the parts built whole at every publication: one service port's
// candidate (its endpoints of one family, chosen by readiness and health),
// its comparison with what the previous snapshot has, and its build
// (Maglev table, stats slots); the ports' addresses and routes; the IPv6
// services.  Private to control/publish/snapshot_builder*.cpp.
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/config/config.hpp"
#include "control/publish/snapshot_builder.hpp"
#include "control/publish/stats_slots.hpp"
#include "dataplane/maglev.hpp"
#include "dataplane/snapshot.hpp"

namespace podgate::ctl::build_detail {

// What one service port of one family forwards to, before it is built.
template <class A>
struct BasicCandidate {
  dp::BasicServiceKey<A> key;
  bool client_ip_affinity;
  uint32_t service_id;
  uint32_t table_size;
  std::vector<std::pair<dp::BasicBackend<A>, uint32_t>> ready;  // with weights, sorted
  std::vector<dp::BasicBackend<A>> alive;                        // sorted
};

// The address of `ip` in the family A, if it is of that family.
inline std::optional<dp::Ip4> in_family(const dp::IpAddr& ip, dp::Ip4*) {
  if (!ip.is_v4()) return std::nullopt;
  return ip.as_v4();
}
inline std::optional<dp::Ip6> in_family(const dp::IpAddr& ip, dp::Ip6*) {
  if (!ip.is_v6()) return std::nullopt;
  return ip.as_v6();
}
template <class A>
std::optional<A> in_family(const dp::IpAddr& ip) {
  return in_family(ip, static_cast<A*>(nullptr));
}

// The service's cluster IP of family A (a dual-stack service has one of
// each: issue 11), if it forwards.
template <class A>
std::optional<A> vip_of(const ServiceConfig& s) {
  if (s.type != ServiceType::kClusterIp) return std::nullopt;
  for (const dp::IpAddr& ip : s.cluster_ips()) {
    if (auto a = in_family<A>(ip)) return a;
  }
  return std::nullopt;
}

// The endpoints of `svc` of family A that service port `port` forwards to
// (the candidates for new flows, with weights) and keeps flows on (alive), both sorted.
template <class A>
void choose_endpoints(const ServiceConfig& svc, const ServicePortConfig& port, BasicCandidate<A>& c) {
  using Backend = dp::BasicBackend<A>;
  // The candidates for new flows are the ready endpoints or, when none is
  // ready, the serving and terminating ones (NewFlowRule, KEP-1669).
  // Health (issue 13): an unhealthy endpoint takes no new flows, and
  // keeps its established ones only when the check drains.  When every
  // candidate is unhealthy, fail_open uses them all anyway; drop leaves
  // the port none (no_endpoint drops).
  const NewFlowRule rule = new_flow_rule(svc);
  const HealthCheckConfig* check = svc.health_check ? &*svc.health_check : nullptr;
  const PortRef ref{port.port, port.protocol};
  bool any_unhealthy_ready = false;
  for (const EndpointConfig& e : svc.endpoints) {
    const std::optional<A> ip = in_family<A>(e.ip);
    if (!ip) continue;  // the other family's VIP forwards to it (no NAT46)
    Backend be{*ip, dp::to_be16(port.target_port), 0};
    const bool healthy = check == nullptr || e.healthy_on(ref);
    if (rule.candidate(e)) {
      if (healthy) {
        c.ready.emplace_back(be, e.weight);
      } else {
        any_unhealthy_ready = true;
      }
    }
    if (e.keeps_flows() && (healthy || check->on_failure == HealthOnFailure::kDrain)) {
      c.alive.push_back(be);
    }
  }
  if (c.ready.empty() && any_unhealthy_ready && check->all_unhealthy == AllUnhealthy::kFailOpen) {
    // Each ready endpoint is alive too, once: looked up among those alive
    // already by a binary search, not a scan (quadratic in a service of
    // 65,534 endpoints that all fail their check).
    const auto kept = static_cast<std::ptrdiff_t>(c.alive.size());
    std::sort(c.alive.begin(), c.alive.end());
    for (const EndpointConfig& e : svc.endpoints) {
      const std::optional<A> ip = in_family<A>(e.ip);
      if (!ip || !rule.candidate(e)) continue;
      Backend be{*ip, dp::to_be16(port.target_port), 0};
      c.ready.emplace_back(be, e.weight);
      if (!std::binary_search(c.alive.begin(), c.alive.begin() + kept, be)) c.alive.push_back(be);
    }
    std::sort(c.alive.begin() + kept, c.alive.end());
    c.alive.erase(std::unique(c.alive.begin() + kept, c.alive.end()), c.alive.end());
  }
  std::sort(c.ready.begin(), c.ready.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::sort(c.alive.begin(), c.alive.end());
}

// Whether `s` forwards exactly as `c` would: then it is shared.
template <class A>
bool same_forwarding(const dp::BasicServiceData<A>& s, const BasicCandidate<A>& c) {
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

template <class A>
std::shared_ptr<const dp::BasicServiceData<A>> build_service_port(const BasicCandidate<A>& c, StatsSlots* slots) {
  using Backend = dp::BasicBackend<A>;
  // Not make_shared: ServiceData must come from its own operator new (DPDK
  // memory), which make_shared would bypass.
  std::shared_ptr<dp::BasicServiceData<A>> fresh(new dp::BasicServiceData<A>);
  fresh->vip = c.key.vip;
  fresh->port = c.key.port;
  fresh->proto = c.key.proto;
  fresh->client_ip_affinity = c.client_ip_affinity;
  fresh->service_id = c.service_id;
  // Sized once: these are DPDK memory (rte_malloc) in podgate, and a
  // start at 10k services builds 20,000 of them.
  fresh->ready.reserve(c.ready.size());
  fresh->weights.reserve(c.ready.size());
  fresh->ready_slots.reserve(c.ready.size());
  fresh->alive_slots.reserve(c.alive.size());
  std::vector<std::string> keys;
  keys.reserve(c.ready.size());
  for (const auto& r : c.ready) {
    fresh->ready.push_back(r.first);
    fresh->weights.push_back(r.second);
    keys.push_back(maglev_key(r.first));
  }
  std::vector<dp::MaglevEntry> entries;
  entries.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) entries.push_back({keys[i], c.ready[i].second});
  fresh->maglev = dp::build_maglev_table(entries, c.table_size);
  fresh->alive.assign(c.alive.begin(), c.alive.end());
  auto slot = [&](const Backend& b) { return slots != nullptr ? slots->slot_for(c.key, b) : dp::kUntrackedSlot; };
  for (const Backend& b : fresh->ready) fresh->ready_slots.push_back(slot(b));
  for (const Backend& b : fresh->alive) fresh->alive_slots.push_back(slot(b));
  return fresh;
}

// The ports' own addresses and their connected routes, then the static
// routes, longest prefix first; both families.
void build_ports_and_routes(const Config& cfg, const std::vector<dp::MacAddr>& macs, dp::Snapshot& snap);

// The IPv6 service ports (issue 11), each sharing the previous snapshot's
// data when it forwards as before; what the previous one had and this one
// not goes to stats.dropped6.
void build_services6(const Config& cfg, const dp::Snapshot* previous, StatsSlots* slots, dp::Snapshot& s,
                     BuildStats& stats);

}  // namespace podgate::ctl::build_detail
