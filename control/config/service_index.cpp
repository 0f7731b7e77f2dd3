// ServiceIndex; see service_index.hpp.
#include "control/config/service_index.hpp"

#include <algorithm>

namespace podgate::ctl {

namespace {

// The cluster IPs of a forwarding service (what an endpoint may not be).
std::vector<dp::IpAddr> forwarding_vips(const ServiceConfig& s) {
  if (s.type != ServiceType::kClusterIp) return {};
  return s.cluster_ips();
}

// Up to this many endpoints, a scan of those seen is cheaper than sorting
// (most services have about ten); above it the scan is quadratic: 8.6 s for
// one change to a service of 65,534 endpoints (BM_BigServiceChange).
constexpr size_t kScanAtMost = 32;

// Each endpoint address of `s` once, in no particular order.
template <typename Fn>
void for_each_endpoint_ip(const ServiceConfig& s, Fn&& fn) {
  std::vector<dp::IpAddr> ips;
  ips.reserve(s.endpoints.size());
  if (s.endpoints.size() <= kScanAtMost) {
    for (const EndpointConfig& e : s.endpoints) {
      if (std::find(ips.begin(), ips.end(), e.ip) != ips.end()) continue;
      ips.push_back(e.ip);
      fn(e.ip);
    }
    return;
  }
  for (const EndpointConfig& e : s.endpoints) ips.push_back(e.ip);
  std::sort(ips.begin(), ips.end());
  ips.erase(std::unique(ips.begin(), ips.end()), ips.end());
  for (const dp::IpAddr& ip : ips) fn(ip);
}

template <typename Map, typename Key>
void erase_owner(Map& map, const Key& key, const ServiceConfig* s) {
  auto it = map.find(key);
  if (it == map.end()) return;
  auto& v = it->second;
  v.erase(std::remove(v.begin(), v.end(), s), v.end());
  if (v.empty()) map.erase(it);
}

}  // namespace

ServiceIndex::ServiceIndex(const ServiceList& services) {
  names_.reserve(services.size());
  vip_ports_.reserve(services.size() * 2);
  for (const ServiceConfig& s : services) add(s);
}

std::vector<VipPort> ServiceIndex::keys_of(const ServiceConfig& s) {
  std::vector<VipPort> keys;
  for (const dp::IpAddr& vip : forwarding_vips(s)) {
    for (const ServicePortConfig& p : s.ports) {
      if (p.port == 0) continue;
      const VipPort k{vip, p.port, p.protocol};
      // A port listed twice in one service is that service's own error.
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
  }
  return keys;
}

uint32_t ServiceIndex::name_count(const std::string& ns_name) const {
  auto it = names_.find(ns_name);
  return it == names_.end() ? 0 : it->second;
}

const std::vector<const ServiceConfig*>* ServiceIndex::owners(const VipPort& key) const {
  auto it = vip_ports_.find(key);
  return it == vip_ports_.end() ? nullptr : &it->second;
}

const std::vector<const ServiceConfig*>* ServiceIndex::with_vip(const dp::IpAddr& vip) const {
  auto it = vips_.find(vip);
  return it == vips_.end() ? nullptr : &it->second;
}

uint32_t ServiceIndex::endpoint_count(const dp::IpAddr& ip) const {
  auto it = endpoints_.find(ip);
  return it == endpoints_.end() ? 0 : it->second;
}

void ServiceIndex::add(const ServiceConfig& s) {
  ++names_[s.ns + "/" + s.name];
  for (const VipPort& k : keys_of(s)) vip_ports_[k].push_back(&s);
  for (const dp::IpAddr& vip : forwarding_vips(s)) vips_[vip].push_back(&s);
  for_each_endpoint_ip(s, [this](const dp::IpAddr& ip) { ++endpoints_[ip]; });
}

void ServiceIndex::remove(const ServiceConfig& s) {
  if (auto it = names_.find(s.ns + "/" + s.name); it != names_.end() && --it->second == 0) {
    names_.erase(it);
  }
  for (const VipPort& k : keys_of(s)) erase_owner(vip_ports_, k, &s);
  for (const dp::IpAddr& vip : forwarding_vips(s)) erase_owner(vips_, vip, &s);
  for_each_endpoint_ip(s, [this](const dp::IpAddr& ip) {
    if (auto it = endpoints_.find(ip); it != endpoints_.end() && --it->second == 0) endpoints_.erase(it);
  });
}

void ServiceIndex::apply(const ServiceDiff& diff, const ServiceList& after) {
  for (const auto& s : diff.removed) remove(*s);
  for (size_t i : diff.added) add(after[i]);
}

}  // namespace podgate::ctl
