// Zone lookup, and the zone built whole.  See zone.hpp for what is served
// and why, zone_updater.cpp for how a zone is made.
#include "control/dns/zone.hpp"

#include <cstring>

#include "control/dns/wire.hpp"
#include "control/dns/zone_updater.hpp"

namespace podgate::ctl::dns {

std::optional<std::string> encode_name(std::string_view dotted) {
  if (!dotted.empty() && dotted.back() == '.') dotted.remove_suffix(1);
  std::string wire;
  while (!dotted.empty()) {
    const size_t dot = dotted.find('.');
    const std::string_view label = dotted.substr(0, dot);
    if (label.empty() || label.size() > kMaxLabel) return std::nullopt;
    wire.push_back(static_cast<char>(label.size()));
    for (char c : label) wire.push_back(static_cast<char>(fold(static_cast<uint8_t>(c))));
    dotted = dot == std::string_view::npos ? std::string_view{} : dotted.substr(dot + 1);
    if (dot != std::string_view::npos && dotted.empty()) return std::nullopt;  // "a..b", "a.."
  }
  wire.push_back('\0');
  if (wire.size() > kMaxName) return std::nullopt;
  return wire;
}

namespace {

// The fields build_zone() reads of a service (see zone.hpp).
bool same_in_dns(const ServiceConfig& a, const ServiceConfig& b) {
  if (a.ns != b.ns || a.name != b.name || a.type != b.type || a.cluster_ip != b.cluster_ip ||
      a.secondary_cluster_ip != b.secondary_cluster_ip || a.external_name != b.external_name ||
      !(a.ports == b.ports)) {
    return false;
  }
  if (!a.headless()) return true;  // endpoints of a VIP are not in DNS
  if (a.publish_not_ready_addresses != b.publish_not_ready_addresses ||
      a.endpoints.size() != b.endpoints.size()) {
    return false;
  }
  for (size_t i = 0; i < a.endpoints.size(); ++i) {
    const EndpointConfig& x = a.endpoints[i];
    const EndpointConfig& y = b.endpoints[i];
    if (x.ip != y.ip || x.ready != y.ready || x.hostname != y.hostname || x.subdomain != y.subdomain) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool zone_unchanged(const ServiceDiff& changes, const ServiceList& after) {
  if (changes.removed.size() != changes.added.size()) return false;
  for (size_t i = 0; i < changes.added.size(); ++i) {
    if (!same_in_dns(*changes.removed[i], after[changes.added[i]])) return false;
  }
  return true;
}

std::shared_ptr<const Zone> build_zone(const Config& config, uint32_t serial) {
  return ZoneUpdater().rebuild(config, serial);
}

namespace {

std::string_view as_view(std::span<const uint8_t> s) noexcept {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

}  // namespace

Zone::Lookup Zone::find(std::span<const uint8_t> name) const noexcept {
  const std::string_view key = as_view(name);
  if (!shards_.empty()) {
    const Shard& s = *shards_[shard_of(key, shards_.size())];
    if (auto it = s.find(key); it != s.end()) {
      const Node& n = *it->second;
      return Lookup{&n, true, n.apex};
    }
  }
  for (Apex a : {Apex::kCluster, Apex::kReverse, Apex::kReverse6}) {
    if (under(name, a)) return Lookup{nullptr, true, a};
  }
  return Lookup{};
}

const Zone::Node* Zone::node(const std::string& wire_name) const noexcept {
  if (shards_.empty()) return nullptr;
  const Shard& s = *shards_[shard_of(wire_name, shards_.size())];
  auto it = s.find(wire_name);
  return it == s.end() ? nullptr : it->second.get();
}

std::vector<const Zone::Node*> Zone::nodes() const {
  std::vector<const Node*> out;
  out.reserve(node_count_);
  for (const auto& s : shards_) {
    for (const auto& [owner, n] : *s) out.push_back(n.get());
  }
  return out;
}

// Whether `name` ends with the apex `a` at a label boundary.
bool Zone::under(std::span<const uint8_t> name, Apex a) const noexcept {
  const std::span<const uint8_t> top = apex_name(a);
  if (top.empty()) return false;
  for (size_t i = 0; i < name.size(); i += size_t{1} + name[i]) {
    if (name.size() - i == top.size()) return std::memcmp(name.data() + i, top.data(), top.size()) == 0;
    if (name.size() - i < top.size() || name[i] == 0) return false;
  }
  return false;
}

}  // namespace podgate::ctl::dns
