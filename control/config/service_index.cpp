// ServiceIndex; see service_index.hpp.
#include "control/config/service_index.hpp"

#include <algorithm>
#include <optional>

namespace podgate::ctl {

ServiceIndex::ServiceIndex(const ServiceList& services) {
  names_.reserve(services.size());
  vip_ports_.reserve(services.size() * 2);
  for (const ServiceConfig& s : services) add(s);
}

std::vector<uint64_t> ServiceIndex::keys_of(const ServiceConfig& s) {
  std::vector<uint64_t> keys;
  if (s.type != ServiceType::kClusterIp || !s.cluster_ip || s.cluster_ip->family != dp::Family::kIpv4) {
    return keys;
  }
  for (const ServicePortConfig& p : s.ports) {
    if (p.port == 0) continue;
    const uint64_t k = vip_port_key(s.cluster_ip->as_v4().host(), p.port, p.protocol);
    // A port listed twice in one service is that service's own error.
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  }
  return keys;
}

uint32_t ServiceIndex::name_count(const std::string& ns_name) const {
  auto it = names_.find(ns_name);
  return it == names_.end() ? 0 : it->second;
}

const std::vector<const ServiceConfig*>* ServiceIndex::owners(uint64_t key) const {
  auto it = vip_ports_.find(key);
  return it == vip_ports_.end() ? nullptr : &it->second;
}

const std::vector<const ServiceConfig*>* ServiceIndex::with_vip(uint32_t vip_host) const {
  auto it = vips_.find(vip_host);
  return it == vips_.end() ? nullptr : &it->second;
}

uint32_t ServiceIndex::endpoint_count(uint32_t ip_host) const {
  auto it = endpoints_.find(ip_host);
  return it == endpoints_.end() ? 0 : it->second;
}

namespace {

// A forwarding IPv4 cluster IP (what an endpoint may not be), as host order.
std::optional<uint32_t> forwarding_vip(const ServiceConfig& s) {
  if (s.type != ServiceType::kClusterIp || !s.cluster_ip || s.cluster_ip->family != dp::Family::kIpv4) {
    return std::nullopt;
  }
  return s.cluster_ip->as_v4().host();
}

// Each IPv4 endpoint address of `s` once.
template <typename Fn>
void for_each_endpoint_ip(const ServiceConfig& s, Fn&& fn) {
  std::vector<uint32_t> seen;
  for (const EndpointConfig& e : s.endpoints) {
    if (e.ip.family != dp::Family::kIpv4) continue;
    const uint32_t ip = e.ip.as_v4().host();
    if (std::find(seen.begin(), seen.end(), ip) != seen.end()) continue;
    seen.push_back(ip);
    fn(ip);
  }
}

}  // namespace

void ServiceIndex::add(const ServiceConfig& s) {
  ++names_[s.ns + "/" + s.name];
  for (uint64_t k : keys_of(s)) vip_ports_[k].push_back(&s);
  if (auto vip = forwarding_vip(s)) vips_[*vip].push_back(&s);
  for_each_endpoint_ip(s, [this](uint32_t ip) { ++endpoints_[ip]; });
}

void ServiceIndex::remove(const ServiceConfig& s) {
  if (auto it = names_.find(s.ns + "/" + s.name); it != names_.end() && --it->second == 0) {
    names_.erase(it);
  }
  for (uint64_t k : keys_of(s)) {
    auto it = vip_ports_.find(k);
    if (it == vip_ports_.end()) continue;
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), &s), v.end());
    if (v.empty()) vip_ports_.erase(it);
  }
  if (auto vip = forwarding_vip(s)) {
    if (auto it = vips_.find(*vip); it != vips_.end()) {
      auto& v = it->second;
      v.erase(std::remove(v.begin(), v.end(), &s), v.end());
      if (v.empty()) vips_.erase(it);
    }
  }
  for_each_endpoint_ip(s, [this](uint32_t ip) {
    if (auto it = endpoints_.find(ip); it != endpoints_.end() && --it->second == 0) endpoints_.erase(it);
  });
}

void ServiceIndex::apply(const ServiceDiff& diff, const ServiceList& after) {
  for (const auto& s : diff.removed) remove(*s);
  for (size_t i : diff.added) add(after[i]);
}

}  // namespace podgate::ctl
