// Zone building and lookup.  See zone.hpp for what is served and why.
#include "control/dns/zone.hpp"

#include <cmath>
#include <cstring>
#include <map>

#include "control/dns/wire.hpp"

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

namespace {

std::string_view as_view(std::span<const uint8_t> s) noexcept {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

// "172.17.1.10" -> "10.1.17.172.in-addr.arpa" (RFC 1035 §3.5).
std::string reverse_name(dp::Ip4 ip) {
  const uint32_t h = ip.host();
  std::string s;
  for (int shift = 0; shift < 32; shift += 8) s += std::to_string((h >> shift) & 0xff) + ".";
  return s + "in-addr.arpa";
}

// "fd00:10:96::20" -> "0.2.0.0.0.0 ... 0.0.d.f.ip6.arpa": the 32 nibbles,
// least significant first (RFC 3596 section 2.5).
std::string reverse_name(const dp::Ip6& ip) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(72);
  for (int i = 15; i >= 0; --i) {
    s += kHex[ip.bytes[i] & 15];
    s += '.';
    s += kHex[ip.bytes[i] >> 4];
    s += '.';
  }
  return s + "ip6.arpa";
}

std::string reverse_name(const dp::IpAddr& ip) {
  return ip.is_v4() ? reverse_name(ip.as_v4()) : reverse_name(ip.as_v6());
}

// "172.17.1.10" -> "172-17-1-10", "fd00:10::5" -> "fd00-10--5": the name of
// an endpoint without a hostname (CoreDNS's endpointHostname).
std::string dashed(const dp::IpAddr& ip) {
  std::string s = dp::to_string(ip);
  for (char& c : s) c = c == '.' || c == ':' ? '-' : c;
  return s;
}

// SRV weight as CoreDNS's plugin/backend_lookup.go computes it: every
// record weighs 100, the weight is its percentage of the total, floored.
uint16_t srv_weight(size_t records) {
  const double total = 100.0 * static_cast<double>(records);
  return static_cast<uint16_t>(std::floor(100.0 / total * 100.0));
}

}  // namespace

class ZoneBuilder {
 public:
  ZoneBuilder(const Config& config, uint32_t serial) : config_(config), serial_(serial) {}

  std::shared_ptr<const Zone> build() {
    const DnsConfig& dns = config_.dns;
    const std::string zone = trimmed(dns.zone);
    auto apex = encode_name(zone);
    auto mname = encode_name("ns.dns." + zone);
    auto rname = encode_name("hostmaster." + zone);
    // An unusable zone (empty, or too long for its SOA names) serves
    // nothing: every query is REFUSED rather than answered for the root.
    if (apex && apex->size() > 1 && mname && rname) {
      cluster_ = *apex;
      reverse_ = *encode_name("in-addr.arpa");
      reverse6_ = *encode_name("ip6.arpa");
      add_apex(zone);
      for (const ServiceConfig& svc : config_.services) add_service(svc, zone);
      mname_ = *mname;
      rname_ = *rname;
    }
    return flatten();
  }

 private:
  struct BuildSrv {
    uint16_t weight = 0;
    uint16_t port = 0;
    std::string target;
  };
  struct BuildNode {
    Zone::Apex apex = Zone::Apex::kCluster;
    bool soa_ns = false;
    bool version_txt = false;
    uint32_t index = 0;  // in Zone::nodes_, set by flatten()
    std::vector<dp::Ip4> a;
    std::vector<dp::Ip6> aaaa;
    std::vector<BuildSrv> srv;
    std::vector<std::string> ptr;
    std::string cname;
  };

  static std::string trimmed(const std::string& zone) {
    return !zone.empty() && zone.back() == '.' ? zone.substr(0, zone.size() - 1) : zone;
  }

  static BuildNode fresh(Zone::Apex apex) {
    BuildNode b;
    b.apex = apex;
    return b;
  }

  // The node for `dotted` (created, with its ancestors up to the apex as
  // empty non-terminals); nullptr when the name cannot be encoded.
  BuildNode* node(const std::string& dotted, Zone::Apex apex) {
    auto wire = encode_name(dotted);
    if (!wire) return nullptr;
    const std::string& top = apex == Zone::Apex::kCluster   ? cluster_
                             : apex == Zone::Apex::kReverse ? reverse_
                                                            : reverse6_;
    std::string_view s = *wire;
    while (s.size() > top.size()) {
      s.remove_prefix(size_t{1} + static_cast<uint8_t>(s[0]));
      nodes_.try_emplace(std::string(s), fresh(apex));
    }
    return &nodes_.try_emplace(*wire, fresh(apex)).first->second;
  }

  void add_apex(const std::string& zone) {
    node(zone, Zone::Apex::kCluster)->soa_ns = true;
    node("in-addr.arpa", Zone::Apex::kReverse)->soa_ns = true;
    node("ip6.arpa", Zone::Apex::kReverse6)->soa_ns = true;
    node("dns-version." + zone, Zone::Apex::kCluster)->version_txt = true;
    if (config_.dns.service_ip) {
      node("ns.dns." + zone, Zone::Apex::kCluster)->a.push_back(*config_.dns.service_ip);
    }
  }

  void add_ptr(const dp::IpAddr& ip, const std::string& target) {
    if (auto wire = encode_name(target)) {
      const Zone::Apex apex = ip.is_v4() ? Zone::Apex::kReverse : Zone::Apex::kReverse6;
      if (BuildNode* n = node(reverse_name(ip), apex)) n->ptr.push_back(*wire);
    }
  }

  static void add_address(BuildNode& n, const dp::IpAddr& ip) {
    if (ip.is_v4()) {
      n.a.push_back(ip.as_v4());
    } else {
      n.aaaa.push_back(ip.as_v6());
    }
  }

  // One SRV per target and port (CoreDNS's isDuplicate): a dual-stack
  // Pod's two endpoint addresses share one name.
  static void add_srv(BuildNode& n, uint16_t weight, uint16_t port, const std::string& target) {
    for (const BuildSrv& s : n.srv) {
      if (s.port == port && s.target == target) return;
    }
    n.srv.push_back(BuildSrv{weight, port, target});
  }

  void add_service(const ServiceConfig& svc, const std::string& zone) {
    const std::string name = svc.name + "." + svc.ns + ".svc." + zone;
    if (svc.type == ServiceType::kExternalName) {
      auto target = encode_name(svc.external_name);
      BuildNode* n = target ? node(name, Zone::Apex::kCluster) : nullptr;
      if (n != nullptr) n->cname = *target;
      return;
    }
    if (!svc.headless()) {
      BuildNode* n = node(name, Zone::Apex::kCluster);
      if (n == nullptr) return;
      const std::vector<dp::IpAddr> vips = svc.cluster_ips();
      for (const dp::IpAddr& vip : vips) add_address(*n, vip);
      auto target = encode_name(name);
      for (const ServicePortConfig& p : svc.ports) {
        if (p.name.empty()) continue;
        if (BuildNode* s = node(srv_name(p, name), Zone::Apex::kCluster)) {
          s->srv.push_back(BuildSrv{srv_weight(1), p.port, *target});
        }
      }
      for (const dp::IpAddr& vip : vips) add_ptr(vip, name);
      return;
    }
    add_headless(svc, name);
  }

  static std::string srv_name(const ServicePortConfig& p, const std::string& service) {
    return "_" + p.name + (p.protocol == dp::Proto::kTcp ? "._tcp." : "._udp.") + service;
  }

  void add_headless(const ServiceConfig& svc, const std::string& name) {
    std::vector<const EndpointConfig*> published;
    for (const EndpointConfig& e : svc.endpoints) {
      if (e.ready || svc.publish_not_ready_addresses) {
        published.push_back(&e);
      }
    }
    if (published.empty()) return;  // row 12: the service name does not exist
    BuildNode* n = node(name, Zone::Apex::kCluster);
    if (n == nullptr) return;
    const uint16_t weight = srv_weight(published.size());
    for (const EndpointConfig* e : published) {
      const dp::IpAddr& ip = e->ip;
      add_address(*n, ip);  // std::map nodes are stable: `n` stays valid
      const bool per_pod = !e->hostname.empty() && e->subdomain == svc.name;
      const std::string pod = (per_pod ? e->hostname : dashed(ip)) + "." + name;
      BuildNode* pn = node(pod, Zone::Apex::kCluster);
      if (pn == nullptr) continue;  // over 255 octets: nobody can ask for it
      add_address(*pn, ip);
      if (per_pod) add_ptr(ip, pod);
      auto target = encode_name(pod);
      for (const ServicePortConfig& p : svc.ports) {
        if (p.name.empty()) continue;
        if (BuildNode* s = node(srv_name(p, name), Zone::Apex::kCluster)) {
          // EndpointSlice ports are the Pods' ports: target_port.
          add_srv(*s, weight, p.target_port, *target);
        }
      }
    }
  }

  Zone::NameRef intern(Zone& z, const std::string& wire) {
    auto [it, fresh] = interned_.try_emplace(wire);
    if (fresh) {
      it->second = Zone::NameRef{static_cast<uint32_t>(z.names_.size()),
                                 static_cast<uint16_t>(wire.size())};
      z.names_ += wire;
    }
    return it->second;
  }

  template <typename T>
  static Zone::Range range(const std::vector<T>& v, size_t count) {
    return Zone::Range{static_cast<uint32_t>(v.size() - count), static_cast<uint32_t>(count)};
  }

  std::shared_ptr<const Zone> flatten() {
    std::shared_ptr<Zone> z(new Zone);
    z->serial_ = serial_;
    z->ttl_ = config_.dns.ttl;
    z->max_udp_payload_ = config_.dns.max_udp_payload;
    z->ns_address_ = config_.dns.service_ip;
    if (!cluster_.empty()) {
      z->apex_[Zone::index(Zone::Apex::kCluster)] = intern(*z, cluster_);
      z->apex_[Zone::index(Zone::Apex::kReverse)] = intern(*z, reverse_);
      z->apex_[Zone::index(Zone::Apex::kReverse6)] = intern(*z, reverse6_);
      z->mname_ = intern(*z, mname_);
      z->rname_ = intern(*z, rname_);
    }
    uint32_t next = 0;
    for (auto& entry : nodes_) entry.second.index = next++;
    std::vector<Zone::NameRef> owners;
    owners.reserve(nodes_.size());
    z->nodes_.reserve(nodes_.size());
    for (const auto& [wire, b] : nodes_) {
      owners.push_back(intern(*z, wire));
      Zone::Node n;
      n.apex = b.apex;
      n.soa_ns = b.soa_ns;
      n.version_txt = b.version_txt;
      z->addrs_.insert(z->addrs_.end(), b.a.begin(), b.a.end());
      n.a = range(z->addrs_, b.a.size());
      z->addrs6_.insert(z->addrs6_.end(), b.aaaa.begin(), b.aaaa.end());
      n.aaaa = range(z->addrs6_, b.aaaa.size());
      for (const BuildSrv& s : b.srv) {
        auto target = nodes_.find(s.target);
        const uint32_t at = target == nodes_.end() ? Zone::kNoNode : target->second.index;
        z->srvs_.push_back(Zone::Srv{0, s.weight, s.port, intern(*z, s.target), at});
      }
      n.srv = range(z->srvs_, b.srv.size());
      for (const std::string& p : b.ptr) z->ptrs_.push_back(intern(*z, p));
      n.ptr = range(z->ptrs_, b.ptr.size());
      if (!b.cname.empty()) n.cname = intern(*z, b.cname);
      z->nodes_.push_back(n);
    }
    // names_ is complete: the index's views into it stay valid from here on.
    z->index_.reserve(owners.size());
    for (size_t i = 0; i < owners.size(); ++i) {
      z->index_.emplace(as_view(z->name(owners[i])), static_cast<uint32_t>(i));
    }
    return z;
  }

  const Config& config_;
  uint32_t serial_;
  std::string cluster_;  // apex wire names; empty = nothing served
  std::string reverse_;
  std::string reverse6_;
  std::string mname_;
  std::string rname_;
  std::map<std::string, BuildNode> nodes_;  // ordered: deterministic output
  std::map<std::string, Zone::NameRef> interned_;
};

std::shared_ptr<const Zone> build_zone(const Config& config, uint32_t serial) {
  return ZoneBuilder(config, serial).build();
}

Zone::Lookup Zone::find(std::span<const uint8_t> name) const noexcept {
  if (auto it = index_.find(as_view(name)); it != index_.end()) {
    const Node& n = nodes_[it->second];
    return Lookup{&n, true, n.apex};
  }
  for (Apex a : {Apex::kCluster, Apex::kReverse, Apex::kReverse6}) {
    if (under(name, a)) return Lookup{nullptr, true, a};
  }
  return Lookup{};
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
