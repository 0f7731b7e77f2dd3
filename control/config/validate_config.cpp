// validate(const Config&): every rule a Config obeys, on the structure.
//
// The TOML loader (control/config/config.cpp) reports what it finds while reading,
// with file:line:col; Kubernetes input (control/config/k8s_objects.cpp) with the
// object and its JSON path.  This is the one check every Config passes before
// it is published, whatever it came from: a config file, Kubernetes objects
// or a runtime change (control/publish/registry.hpp).  No text is written or parsed,
// so a runtime change is not checked through a file the user never saw, and
// its errors name the objects:
//   service default/web, endpoint 10.0.0.7: weight 0 is not in 1..256
// Rules and wording follow the loader's (validate.hpp holds the shared ones),
// and errors are recorded through the Diagnostics every input reports with
// (diagnostics.hpp), each at its object.
#include <algorithm>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "control/config/service_index.hpp"
#include "control/config/validate.hpp"
#include "control/config/validate_network.hpp"

#include "control/config/config_health.hpp"

namespace podgate::ctl {

namespace {

using dp::Ip4;
using dp::Prefix4;

std::string ip_text(const dp::IpAddr& ip) { return dp::to_string(ip); }

// The cluster IPs of a forwarding service (none for headless, ExternalName).
std::vector<dp::IpAddr> forwarding_vips(const ServiceConfig& s) {
  if (s.type != ServiceType::kClusterIp) return {};
  return s.cluster_ips();
}

bool has_cluster_ip(const ServiceConfig& s, const dp::IpAddr& ip) {
  return (s.cluster_ip && *s.cluster_ip == ip) || (s.secondary_cluster_ip && *s.secondary_cluster_ip == ip);
}

bool serves_family(const ServiceConfig& s, dp::Family f) {
  return (s.cluster_ip && s.cluster_ip->family == f) ||
         (s.secondary_cluster_ip && s.secondary_cluster_ip->family == f);
}

// A family mismatch between an endpoint and its service's cluster IPs.
std::string family_mismatch(const ServiceConfig& s, const dp::IpAddr& ip) {
  std::string vips;
  for (const dp::IpAddr& v : s.cluster_ips()) vips += (vips.empty() ? "" : ", ") + dp::to_string(v);
  return "ip " + dp::to_string(ip) + " is " + std::string(dp::family_name(ip.family)) +
         " but the service has no " + std::string(dp::family_name(ip.family)) + " cluster IP (" +
         vips + "); a VIP forwards to endpoints of its own family only";
}

// Records every error through `diag`, each at its object (Diagnostics::at_object).
class Checker {
 public:
  Checker(const Config& c, Diagnostics& diag) : c_(c), diag_(diag) {}

  void run() {
    check_eal();
    check_dataplane();
    ports_complete_ = check_network(c_, diag_);
    check_services();
    check_dns();
    check_control();
  }

  // validate_change(): the services `diff` added, each by every rule of its
  // own, and by the rules across services against `index` (the services
  // before the change) less those `diff` removed.
  void run_change(const ServiceDiff& diff, const ServiceIndex& index) {
    index_ = &index;
    for (const auto& r : diff.removed) removed_.push_back(r.get());
    // The cluster IPs the change brings: an endpoint may not be one of
    // them either (check_endpoint_is_not_ours asks vips_, then the index).
    vips_.clear();
    for (size_t i : diff.added) {
      const ServiceConfig& s = c_.services[i];
      for (const dp::IpAddr& vip : forwarding_vips(s)) vips_.emplace(vip, &s);
    }
    std::unordered_map<std::string, int> delta;  // "ns/name" -> services gained
    for (const auto& r : diff.removed) --delta[r->ns + "/" + r->name];
    for (size_t i : diff.added) ++delta[c_.services[i].ns + "/" + c_.services[i].name];
    for (size_t i : diff.added) {
      const ServiceConfig& s = c_.services[i];
      const auto o = [&s] { return "service " + s.ns + "/" + s.name; };
      if (!is_dns1123_label(s.ns)) error(o, "namespace " + not_dns1123_label(s.ns));
      if (!is_dns1035_label(s.name)) error(o, "name " + not_dns1035_label(s.name));
      name_.assign(s.ns).append("/").append(s.name);
      auto d = delta.find(name_);
      if (d != delta.end() && static_cast<int>(index.name_count(name_)) + d->second > 1) {
        delta.erase(d);  // reported once
        std::vector<size_t> at;  // only on this error: where the name is
        for (size_t j = 0; j < c_.services.size() && at.size() < 2; ++j) {
          if (c_.services[j].ns == s.ns && c_.services[j].name == s.name) at.push_back(j);
        }
        if (at.size() == 2) {
          error(o, "defined twice (services[" + std::to_string(at[0]) + "] and services[" +
                       std::to_string(at[1]) + "])");
        }
      }
      check_service(s, o);
      check_vip_is_no_endpoint(s, diff);
      if (const auto& dns_vip = c_.dns.service_ip;
          dns_vip && has_cluster_ip(s, dp::IpAddr::v4(*dns_vip))) {
        error("dns", "service_ip " + dp::to_string(*dns_vip) + " is the cluster_ip of service " +
                         s.ns + "/" + s.name + "; the DNS service IP must be an address of its own");
      }
    }
  }

 private:
  // "OBJECT: what". `object` is its name, or a function making it: most
  // objects are valid, and a name is only made for an error (10k services,
  // 100k endpoints).
  template <typename Object>
  void error(const Object& object, const std::string& what) {
    if constexpr (std::is_invocable_v<const Object&>) {
      diag_.error(diag_.at_object(object()), "", what);
    } else {
      diag_.error(diag_.at_object(object), "", what);
    }
  }

  // `field value is not in lo..hi` when out of range.
  template <typename Object>
  bool range(const Object& object, std::string_view field, int64_t v, int64_t lo, int64_t hi) {
    if (v >= lo && v <= hi) return true;
    error(object, std::string(field) + " " + not_in_range(v, lo, hi));
    return false;
  }

  template <typename Object>
  void check_maglev_size(const Object& object, uint32_t m) {
    if (!range(object, "maglev_table_size", m, kMinMaglevSize, kMaxMaglevSize)) return;
    if (!is_prime(m)) {
      error(object, "maglev_table_size " + std::to_string(m) +
                        " is not prime; Maglev (NSDI'16 section 3.4) needs a prime table size, "
                        "e.g. 65537");
    }
  }

  // ---- [eal] ----

  // Combinations DPDK 22.11's rte_eal_init refuses, checked here so the
  // refusal names them (--check included) instead of EAL printing its
  // usage text (issue 15).  Options are matched as given, also as
  // "--opt=value".
  void check_eal() {
    const auto has = [this](std::string_view opt) {
      return std::any_of(c_.eal.args.begin(), c_.eal.args.end(), [opt](const std::string& a) {
        return a == opt || (a.size() > opt.size() && a.compare(0, opt.size(), opt) == 0 &&
                            a[opt.size()] == '=');
      });
    };
    const std::string o = "eal";
    if (has("--in-memory") && has("--no-huge")) {
      error(o, "args: --in-memory and --no-huge cannot go together (--no-huge implies "
               "--legacy-mem, which --in-memory refuses); without hugepages use --no-huge "
               "--no-shconf");
    }
    if (has("--in-memory") && has("--legacy-mem")) {
      error(o, "args: --in-memory and --legacy-mem cannot go together");
    }
    if (has("--socket-mem") && has("-m")) {
      error(o, "args: -m and --socket-mem cannot go together; give one of them");
    }
    if (has("--socket-mem") && has("--no-huge")) {
      error(o, "args: --socket-mem needs hugepages and cannot go with --no-huge; use -m");
    }
  }

  // ---- [dataplane] ----

  void check_dataplane() {
    const DataplaneConfig& d = c_.dataplane;
    const std::string o = "dataplane";
    range(o, "workers", d.workers, 1, kMaxWorkers);
    range(o, "flow_table_size", d.flow_table_size, 1024, int64_t{1} << 28);
    if (d.ipv6_flow_table_size) range(o, "ipv6_flow_table_size", *d.ipv6_flow_table_size, 1024, int64_t{1} << 28);
    check_maglev_size(o, d.maglev_table_size);
    range(o, "mbufs", d.mbufs, 1023, int64_t{1} << 24);
    for (auto [name, v] : {std::pair{"rx_ring_size", d.rx_ring_size}, std::pair{"tx_ring_size", d.tx_ring_size}}) {
      if (range(o, name, v, 64, 32768) && (v & (v - 1)) != 0) {
        error(o, std::string(name) + " " + std::to_string(v) +
                     " is not a power of two (64, 128, ... 32768)");
      }
    }
    range(o, "tcp_syn_timeout", d.tcp_syn_timeout, 1, kMaxTimeout);
    range(o, "tcp_established_timeout", d.tcp_established_timeout, 1, kMaxTimeout);
    range(o, "tcp_fin_timeout", d.tcp_fin_timeout, 1, kMaxTimeout);
    range(o, "tcp_closing_timeout", d.tcp_closing_timeout, 1, kMaxTimeout);
    range(o, "udp_timeout", d.udp_timeout, 1, kMaxTimeout);
    range(o, "idle_sleep_us", d.idle_sleep_us, 0, kMaxIdleSleepUs);
  }

  std::string port_object(size_t i) const { return ctl::port_object(c_, i); }

  // ---- [[services]] ----

  void check_services() {
    // Addresses an endpoint may not have: the VIPs podgate answers for.
    vips_.clear();
    for (const ServiceConfig& s : c_.services) {
      for (const dp::IpAddr& vip : forwarding_vips(s)) vips_.emplace(vip, &s);
    }
    std::unordered_map<std::string, size_t> names;
    names.reserve(c_.services.size());
    for (size_t i = 0; i < c_.services.size(); ++i) {
      const ServiceConfig& s = c_.services[i];
      const auto o = [&s] { return "service " + s.ns + "/" + s.name; };
      if (!is_dns1123_label(s.ns)) error(o, "namespace " + not_dns1123_label(s.ns));
      if (!is_dns1035_label(s.name)) error(o, "name " + not_dns1035_label(s.name));
      name_.assign(s.ns).append("/").append(s.name);
      if (auto [it, inserted] = names.emplace(name_, i); !inserted) {
        error(o, "defined twice (services[" + std::to_string(it->second) + "] and services[" +
                     std::to_string(i) + "])");
      }
      check_service(s, o);
    }
  }

  template <typename Object>
  void check_service(const ServiceConfig& s, const Object& o) {
    if (s.type == ServiceType::kExternalName) {
      if (!is_dns_name(s.external_name)) error(o, "external_name " + not_dns_name(s.external_name));
      if (s.cluster_ip || s.secondary_cluster_ip) error(o, "cluster_ip not allowed with type = \"ExternalName\"");
      if (!s.endpoints.empty()) error(o, "endpoints not allowed with type = \"ExternalName\"");
    } else {
      if (!s.external_name.empty()) error(o, "external_name only allowed with type = \"ExternalName\"");
      if (s.cluster_ip || s.secondary_cluster_ip) check_cluster_ips(s, o);
    }
    if (s.maglev_table_size) {
      if (s.type == ServiceType::kExternalName || !s.cluster_ip) {
        error(o, "maglev_table_size only allowed for a service with a cluster_ip (headless and "
                 "ExternalName services do not forward)");
      } else {
        check_maglev_size(o, *s.maglev_table_size);
      }
    }
    if (s.session_affinity == SessionAffinity::kClientIp) {
      range(o, "timeout_seconds", s.affinity_timeout, 1, kMaxAffinityTimeout);
    }
    check_service_ports(s, o);
    check_endpoints(s, o);
    if (auto problem = health_check_problem(s)) {
      error(o, "health_check" + (problem->first.empty() ? std::string() : "." + problem->first) + " " +
                   problem->second);
    }
  }

  // clusterIPs: the first of either family, a second (dual-stack) of the
  // other family (issue 11).
  template <typename Object>
  void check_cluster_ips(const ServiceConfig& s, const Object& o) {
    if (!s.cluster_ip) return error(o, "cluster_ips[1] given without a cluster_ip (clusterIPs[0])");
    if (s.secondary_cluster_ip && s.secondary_cluster_ip->family == s.cluster_ip->family) {
      error(o, "cluster_ips[1] " + dp::to_string(*s.secondary_cluster_ip) + " is " +
                   std::string(dp::family_name(s.cluster_ip->family)) +
                   " like cluster_ip " + dp::to_string(*s.cluster_ip) +
                   "; a dual-stack service has one cluster IP per family");
    }
    check_cluster_ip(*s.cluster_ip, "cluster_ip", o);
    if (s.secondary_cluster_ip) check_cluster_ip(*s.secondary_cluster_ip, "cluster_ips[1]", o);
  }

  template <typename Object>
  void check_cluster_ip(const dp::IpAddr& vip, const std::string& field, const Object& o) {
    const auto text = [&vip] { return dp::to_string(vip); };
    if (!is_unicast_ip(vip)) return error(o, field + " " + not_unicast_ip(vip));
    if (vip.is_v6()) {
      if (vip.as_v6().is_link_local()) return error(o, field + " " + link_local_not_allowed(text(), "a cluster IP"));
      for (size_t j = 0; j < c_.ports.size(); ++j) {
        const auto& a = c_.ports[j].address6;
        if (!a || a->length == 0 || a->length > 128) continue;
        if (a->addr == vip.as_v6()) {
          error(o, field + " " + text() + " is the address6 of " + port_object(j) +
                       "; a cluster IP must not be a port address");
        } else if (a->length <= 126 && a->network() == vip.as_v6()) {
          error(o, field + " " + text() + " is the Subnet-Router anycast address of the subnet " +
                       subnet_text(*a) + " of " + port_object(j));
        }
      }
      return;
    }
    for (size_t j = 0; j < c_.ports.size(); ++j) {
      const Prefix4& a = c_.ports[j].address;
      if (a.addr == vip.as_v4()) {
        error(o, field + " " + text() + " is the address of " + port_object(j) +
                     "; a cluster IP must not be a port address");
      } else if (a.length >= 1 && a.length <= 30 && a.contains(vip.as_v4())) {
        // Inside a connected subnet is allowed (podgate answers ARP for it
        // there: a VIP announced on the clients' LAN), and warned about by
        // config_warnings(); its network and broadcast addresses are not.
        const uint32_t host = vip.as_v4().host() & ~a.mask_host();
        if (host == 0 || host == ~a.mask_host()) {
          error(o, field + " " + text() + " is the " + (host == 0 ? "network" : "broadcast") +
                       " address of the subnet " + subnet_text(a) + " of " + port_object(j));
        }
      }
    }
  }

  template <typename Object>
  void check_service_ports(const ServiceConfig& s, const Object& o) {
    const bool forwards = s.type == ServiceType::kClusterIp && s.cluster_ip;
    if (forwards && s.ports.empty()) {
      error(o, "no ports; a service with a cluster_ip needs at least one port");
    }
    for (size_t i = 0; i < s.ports.size(); ++i) {
      const ServicePortConfig& p = s.ports[i];
      const auto what = [&p] { return port_and_protocol(p.port, p.protocol); };
      const auto po = [&] { return o() + ", port " + what(); };
      if (s.ports.size() > 1 && p.name.empty()) {
        error(po, "name missing (required when a service has several ports)");
      }
      if (!p.name.empty() && !is_dns1123_label(p.name)) {
        error(po, "name " + not_dns1123_label(p.name));
      }
      range(po, "port", p.port, kMinPort, kMaxPort);
      range(po, "target_port", p.target_port, kMinPort, kMaxPort);
      bool twice = false;
      for (size_t j = 0; j < i; ++j) {
        if (!p.name.empty() && s.ports[j].name == p.name) {
          error(po, "name " + quote(p.name) + " is already the name of port " +
                        port_and_protocol(s.ports[j].port, s.ports[j].protocol));
        }
        if (s.ports[j].port == p.port && s.ports[j].protocol == p.protocol) twice = true;
      }
      if (twice) {
        error(po, "listed twice in this service");
      } else if (forwards && p.port != 0) {
        for (const dp::IpAddr& vip : s.cluster_ips()) {
          const VipPort key{vip, p.port, p.protocol};
          auto [it, inserted] = vip_ports_.emplace(key, &s);
          const ServiceConfig* other = inserted ? nullptr : it->second;
          if (other == nullptr && index_ != nullptr) other = served_before(key);
          if (other != nullptr) {
            error(po, vip_port_text(vip, what()) + " is already served by service " + other->ns +
                          "/" + other->name);
          }
        }
      }
    }
  }

  template <typename Object>
  void check_endpoints(const ServiceConfig& s, const Object& o) {
    if (s.endpoints.size() > kMaxEndpoints) {
      error(o, std::to_string(s.endpoints.size()) + " endpoints; at most " +
                   std::to_string(kMaxEndpoints) + " are allowed");
    }
    ips_.clear();
    for (const EndpointConfig& e : s.endpoints) {
      const auto eo = [&] { return o() + ", endpoint " + ip_text(e.ip); };
      if (!is_unicast_ip(e.ip)) {
        error(eo, "ip " + not_unicast_ip(e.ip));
      } else if (e.ip.is_v6() && e.ip.as_v6().is_link_local()) {
        error(eo, "ip " + link_local_not_allowed(ip_text(e.ip), "an endpoint"));
      } else {
        ips_.push_back(e.ip);
        check_endpoint_is_not_ours(e.ip, eo);
        if (s.type == ServiceType::kClusterIp && s.cluster_ip && !serves_family(s, e.ip.family)) {
          error(eo, family_mismatch(s, e.ip));
        }
      }
      if (!e.pod.empty() && !is_dns1123_subdomain(e.pod)) {
        error(eo, "pod " + not_dns1123_subdomain(e.pod));
      }
      if (!e.hostname.empty() && !is_dns1123_label(e.hostname)) {
        error(eo, "hostname " + not_dns1123_label(e.hostname));
      }
      if (!e.subdomain.empty() && !is_dns1123_label(e.subdomain)) {
        error(eo, "subdomain " + not_dns1123_label(e.subdomain));
      }
      // EndpointSlice conditions (KEP-1672): ready = serving && !terminating.
      if (e.ready && (!e.serving || e.terminating)) {
        error(eo, std::string("ready = true contradicts ") +
                      (e.terminating ? "terminating = true" : "serving = false") +
                      "; a ready endpoint is serving and not terminating");
      }
      range(eo, "weight", e.weight, 1, kMaxWeight);
    }
    std::sort(ips_.begin(), ips_.end());
    for (size_t i = 1; i < ips_.size(); ++i) {
      if (ips_[i] == ips_[i - 1] && (i + 1 == ips_.size() || ips_[i + 1] != ips_[i])) {
        error(o() + ", endpoint " + ip_text(ips_[i]),
              "listed twice in this service");
      }
    }
  }

  // Forwarding to podgate's own addresses would loop: the dataplane
  // rewrites a packet once and routes it out, so an endpoint that is a
  // port address or a VIP (of any service, or DNS) reaches no Pod.
  template <typename Object>
  void check_endpoint_is_not_ours(const dp::IpAddr& ip, const Object& eo) {
    for (size_t j = 0; j < c_.ports.size(); ++j) {
      const auto& a6 = c_.ports[j].address6;
      if (ip.is_v4() ? c_.ports[j].address.addr == ip.as_v4() : (a6 && a6->addr == ip.as_v6())) {
        error(eo, "ip is the address of " + port_object(j) +
                      "; an endpoint must be a Pod, not podgate itself");
      }
    }
    const ServiceConfig* owner = nullptr;
    if (auto it = vips_.find(ip); it != vips_.end()) owner = it->second;
    if (owner == nullptr && index_ != nullptr) {
      if (const auto* with = index_->with_vip(ip)) {
        for (const ServiceConfig* s : *with) {
          if (std::find(removed_.begin(), removed_.end(), s) == removed_.end()) owner = s;
        }
      }
    }
    if (owner != nullptr) {
      error(eo, "ip is the cluster_ip of service " + owner->ns + "/" + owner->name +
                    "; an endpoint must be a Pod, not a VIP (podgate forwards a packet once)");
    }
    if (c_.dns.service_ip && dp::IpAddr::v4(*c_.dns.service_ip) == ip) {
      error(eo, "ip is dns.service_ip; an endpoint must be a Pod, not a VIP");
    }
  }

  // run_change(): the other direction of check_endpoint_is_not_ours for a
  // service the change brings: its cluster IP may not be an endpoint of a
  // service the change leaves (validate() finds that from the endpoint).
  void check_vip_is_no_endpoint(const ServiceConfig& s, const ServiceDiff& diff) {
    for (const dp::IpAddr& vip : forwarding_vips(s)) {
      auto lists = [&vip](const ServiceConfig& other) {
        return std::any_of(other.endpoints.begin(), other.endpoints.end(),
                           [&vip](const EndpointConfig& e) { return e.ip == vip; });
      };
      int64_t count = index_->endpoint_count(vip);
      for (const auto& r : diff.removed) count -= lists(*r);
      if (count > 0) {
        error("service " + s.ns + "/" + s.name,
              "cluster_ip " + dp::to_string(vip) + " is an endpoint of another service; an endpoint "
              "must be a Pod, not a VIP (podgate forwards a packet once)");
      }
    }
  }

  // ---- [dns], [control] ----

  void check_dns() {
    const DnsConfig& d = c_.dns;
    const std::string o = "dns";
    if (!is_dns_name(d.zone) || d.zone.back() == '.' || d.zone.size() > kMaxZoneLength) {
      error(o, "zone " + quote(d.zone) + " is not a DNS name of at most " +
                   std::to_string(kMaxZoneLength) +
                   " characters without the final dot (dot-separated DNS-1123 labels), e.g. "
                   "\"cluster.local\"");
    }
    range(o, "ttl", d.ttl, 1, 86400);
    range(o, "max_udp_payload", d.max_udp_payload, 512, 4096);
    range(o, "rate_limit", d.rate_limit, 0, 10000000);
    for (size_t i = 0; i < d.listen.size(); ++i) {
      const DnsListen& l = d.listen[i];
      const std::string text = dp::to_string(l.ip) + ":" + std::to_string(l.port);
      if (l.port == 0 || (l.ip.host() >> 24) >= 224) {
        error(o, "listen " + text + " is not an address a server can bind (port 1..65535, "
                                    "not multicast)");
      }
      for (size_t j = 0; j < i; ++j) {
        const DnsListen& other = d.listen[j];
        // The kernel refuses a second bind of the same port when one of the
        // two is the wildcard address.
        if (other.port == l.port && (other.ip == l.ip || other.ip.is_zero() || l.ip.is_zero())) {
          error(o, "listen " + text + (other.ip == l.ip ? " is listed twice" : " overlaps " +
                       dp::to_string(other.ip) + ":" + std::to_string(other.port)));
          break;
        }
      }
    }
    if (d.service_ip) check_dns_service_ip(*d.service_ip);
  }

  // The DNS service VIP is answered on the dataplane like a cluster IP, so
  // it must not collide with an address the dataplane already answers for.
  void check_dns_service_ip(Ip4 vip) {
    const std::string o = "dns";
    const std::string text = dp::to_string(vip);
    if (!is_unicast_ip4(vip)) return error(o, "service_ip " + not_unicast_ip4(text));
    for (size_t j = 0; j < c_.ports.size(); ++j) {
      const Prefix4& a = c_.ports[j].address;
      if (a.length == 0 || a.length > 32) continue;
      const uint32_t host = vip.host() & ~a.mask_host();
      if (a.addr == vip) {
        error(o, "service_ip " + text + " is the address of " + port_object(j) +
                     "; the DNS service IP must not be a port address");
      } else if (a.length <= 30 && a.contains(vip) && (host == 0 || host == ~a.mask_host())) {
        error(o, "service_ip " + text + " is the " + (host == 0 ? "network" : "broadcast") +
                     " address of " + port_object(j));
      }
    }
    for (const ServiceConfig& s : c_.services) {
      if (has_cluster_ip(s, dp::IpAddr::v4(vip))) {
        error(o, "service_ip " + text + " is the cluster_ip of service " + s.ns + "/" + s.name +
                     "; the DNS service IP must be an address of its own");
      }
    }
  }

  void check_control() {
    const ControlConfig& c = c_.control;
    const std::string o = "control";
    if (c.socket.empty() || c.socket.front() != '/' || c.socket.back() == '/') {
      error(o, "socket " + quote(c.socket) +
                   " is not an absolute file path such as \"/run/podgate/podgate.sock\"");
    } else if (c.socket.size() > kMaxSocketPath) {
      error(o, "socket: a path of " + std::to_string(c.socket.size()) +
                   " bytes; a Unix socket path has at most " + std::to_string(kMaxSocketPath) +
                   " (sun_path)");
    }
    if (c.mode > 0777 || (c.mode & 0600) != 0600) {
      error(o, "mode is not a file mode such as 0660 (at most 0777, readable and writable by its "
               "owner)");
    }
    if (!c.group.empty() && !is_group_name(c.group)) {
      error(o, "group " + quote(c.group) + " is not a group name (1..32 of a-z, A-Z, 0-9, '.', "
                                           "'_', '-', not starting with '-')");
    }
    range(o, "idle_timeout", c.idle_timeout, 0, 86400);
    if (const auto& l = c_.metrics.listen; l && (l->port == 0 || (l->ip.host() >> 24) >= 224)) {
      error("metrics", "listen " + dp::to_string(l->ip) + ":" + std::to_string(l->port) +
                           " is not an address a server can bind");
    }
  }

  // run_change(): a service that served `key` before the change and still
  // does (not among the services the change removed).
  const ServiceConfig* served_before(const VipPort& key) const {
    const auto* owners = index_->owners(key);
    if (owners == nullptr) return nullptr;
    for (const ServiceConfig* o : *owners) {
      if (std::find(removed_.begin(), removed_.end(), o) == removed_.end()) return o;
    }
    return nullptr;
  }

  const Config& c_;
  const ServiceIndex* index_ = nullptr;           // run_change() only
  std::vector<const ServiceConfig*> removed_;     // run_change() only
  Diagnostics& diag_;
  bool ports_complete_ = true;  // every port address valid: on-link checks are meaningful
  // VIP, port and protocol packed -> the first service serving it.
  std::unordered_map<VipPort, const ServiceConfig*, VipPortHash> vip_ports_;
  std::vector<dp::IpAddr> ips_;  // one service's endpoint addresses, reused
  std::unordered_map<dp::IpAddr, const ServiceConfig*, IpAddrHash> vips_;  // forwarding cluster IPs
  std::string name_;           // "ns/name", reused
};

}  // namespace

namespace {

// The errors `diag` recorded, one a line, as ErrorCode::kInvalidConfig.
Result<void> report(const Diagnostics& diag) {
  if (!diag.has_errors()) return {};
  return make_error(ErrorCode::kInvalidConfig, diag.error_report());
}

}  // namespace

void validate(const Config& config, Diagnostics& diag) { Checker(config, diag).run(); }

Result<void> validate(const Config& config) {
  Diagnostics diag("");  // a Config, not a file: messages name the object only
  validate(config, diag);
  return report(diag);
}

Result<void> validate_change(const Config& next, const ServiceDiff& diff, const ServiceIndex& index) {
  Diagnostics diag("");
  Checker(next, diag).run_change(diff, index);
  return report(diag);
}

}  // namespace podgate::ctl
