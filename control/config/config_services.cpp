// [[services]] tables; see config_services.hpp.
#include "control/config/config_services.hpp"

#include <string>
#include <unordered_map>

#include "control/config/config_health.hpp"
#include "control/config/ip_key.hpp"
#include "control/config/validate.hpp"

namespace podgate::ctl {

std::optional<uint32_t> read_maglev_size(ConfigReader& r, const toml::table& t, std::string_view path) {
  auto m = r.get_int(t, path, "maglev_table_size", kMinMaglevSize, kMaxMaglevSize);
  if (!m) return std::nullopt;
  if (!is_prime(static_cast<uint32_t>(*m))) {
    r.error(t.get("maglev_table_size")->source(), key_path(path, "maglev_table_size"),
          std::to_string(*m) +
              " is not prime; Maglev (NSDI'16 section 3.4) needs a prime table size, e.g. 65537");
    return std::nullopt;
  }
  return static_cast<uint32_t>(*m);
}

namespace {

bool serves(const ServiceConfig& s, dp::Family f) {
  return (s.cluster_ip && s.cluster_ip->family == f) ||
         (s.secondary_cluster_ip && s.secondary_cluster_ip->family == f);
}

class ServicesLoader {
 public:
  ServicesLoader(ConfigReader& r, const std::vector<PortConfig>& ports, ServiceList& services)
      : r_(r), ports_(ports), services_(services) {}

  void load(const toml::table& root) {
    const toml::array* a = r_.get_array(root, "", "services", "an array of tables");
    if (a == nullptr) return;
    r_.for_each_table(*a, "services", [&](const toml::table& t, const std::string& p) {
      services_.push_back(load_service(t, p));
    });
  }

  ServiceConfig load_service(const toml::table& t, const std::string& p) {
    r_.check_keys(t, p,
               {"namespace", "name", "type", "cluster_ip", "cluster_ips", "external_name", "session_affinity",
                "timeout_seconds", "publish_not_ready_addresses", "maglev_table_size", "ports",
                "endpoints", "health_check"});
    ServiceConfig svc;
    auto ns = r_.get_label(t, p, "namespace", true, false);
    auto name = r_.get_label(t, p, "name", true, true);
    if (ns) svc.ns = *ns;
    if (name) svc.name = *name;
    const size_t self = services_.size();
    if (ns && name) {
      // One hash lookup, not a scan of every earlier service (10k services).
      auto [it, inserted] = names_.emplace(*ns + "/" + *name, self);
      if (!inserted) {
        r_.error(t.get("name")->source(), key_path(p, "name"),
                 *ns + "/" + *name + " is already defined by services[" + std::to_string(it->second) + "]");
      }
    }

    if (auto type = r_.get_string(t, p, "type")) {
      if (*type == "ExternalName") {
        svc.type = ServiceType::kExternalName;
      } else if (*type != "ClusterIP") {
        r_.error(t.get("type")->source(), key_path(p, "type"),
              quote(*type) + " is not supported; allowed: ClusterIP, ExternalName");
      }
    }
    const bool external = svc.type == ServiceType::kExternalName;
    if (external) {
      if (auto en = r_.get_string(t, p, "external_name", true,
                               " (the DNS name an ExternalName service aliases)")) {
        svc.external_name = *en;
        if (!is_dns_name(*en)) {
          r_.error(t.get("external_name")->source(), key_path(p, "external_name"),
                not_dns_name(*en));
        }
      }
      for (std::string_view key : {"cluster_ip", "cluster_ips", "endpoints"}) {
        if (const toml::node* n = t.get(key)) {
          r_.error(n->source(), key_path(p, key), "not allowed with type = \"ExternalName\"");
        }
      }
    } else {
      if (const toml::node* n = t.get("external_name")) {
        r_.error(n->source(), key_path(p, "external_name"), "only allowed with type = \"ExternalName\"");
      }
      load_cluster_ip(t, p, svc);
    }

    const toml::node* timeout = t.get("timeout_seconds");
    bool affinity_known = true;  // a wrong session_affinity is reported once, not again here
    if (auto aff = r_.get_string(t, p, "session_affinity")) {
      if (*aff == "ClientIP") {
        svc.session_affinity = SessionAffinity::kClientIp;
      } else if (*aff != "None") {
        affinity_known = false;
        r_.error(t.get("session_affinity")->source(), key_path(p, "session_affinity"),
              quote(*aff) + " is not allowed; allowed: None, ClientIP");
      }
    }
    if (!affinity_known) {
      // nothing more to say about timeout_seconds
    } else if (timeout != nullptr && svc.session_affinity != SessionAffinity::kClientIp) {
      r_.error(timeout->source(), key_path(p, "timeout_seconds"),
            "only allowed with session_affinity = \"ClientIP\"");
    } else {
      r_.get_u32(t, p, "timeout_seconds", 1, kMaxAffinityTimeout, svc.affinity_timeout);
    }
    r_.get_bool(t, p, "publish_not_ready_addresses", svc.publish_not_ready_addresses);
    // Whether the service is meant to have a VIP, even if its value was wrong
    // (then only that value is reported, not everything depending on it).
    const bool forwards = !external && names_a_cluster_ip(t);
    if (const toml::node* n = t.get("maglev_table_size"); n && !forwards) {
      r_.error(n->source(), key_path(p, "maglev_table_size"),
            "only allowed for a service with a cluster_ip (headless and ExternalName services "
            "do not forward)");
    } else {
      svc.maglev_table_size = read_maglev_size(r_, t, p);
    }

    load_service_ports(t, p, svc, self, forwards);
    load_endpoints(t, p, svc);
    read_health_check(r_, t, p, svc);
    return svc;
  }

  // Whether the service is given a cluster IP (cluster_ip or cluster_ips,
  // not "None"), however well it is written.
  static bool names_a_cluster_ip(const toml::table& t) {
    const toml::node* n = t.get("cluster_ip");
    if (n == nullptr) {
      const toml::array* a = t.get("cluster_ips") ? t.get("cluster_ips")->as_array() : nullptr;
      if (a == nullptr) return t.get("cluster_ips") != nullptr;
      if (a->empty()) return false;
      n = &(*a)[0];
    }
    return !(n->as_string() != nullptr && n->as_string()->get() == "None");
  }

  // cluster_ip = "10.96.0.20" (either family, or "None"), or the Service
  // API's clusterIPs: cluster_ips = ["10.96.0.20", "fd00:10:96::20"], one
  // or two, the second of the other family (issue 11).  Both keys may be
  // given when cluster_ips[0] is cluster_ip.
  void load_cluster_ip(const toml::table& t, const std::string& p, ServiceConfig& svc) {
    const toml::node* one = t.get("cluster_ip");
    const toml::array* list = nullptr;
    if (const toml::node* n = t.get("cluster_ips")) {
      list = n->as_array();
      if (list == nullptr) return wrong_type_or(n, key_path(p, "cluster_ips"));
    }
    if (one == nullptr && list == nullptr) {
      r_.find(t, p, "cluster_ip", true,
              " (an IPv4 or IPv6 address, or \"None\" for a headless service; or cluster_ips for "
              "a dual-stack service)");
      return;
    }
    std::optional<dp::IpAddr> first;
    bool headless = false;
    if (one != nullptr) {
      const auto* s = one->as_string();
      if (s != nullptr && s->get() == "None") {
        headless = true;
      } else {
        first = r_.ip_value(*one, key_path(p, "cluster_ip"), "a cluster IP");
        if (!first) return;
      }
    }
    if (list != nullptr) {
      const std::string lp = key_path(p, "cluster_ips");
      if (list->empty() || list->size() > 2) {
        return r_.error(list->source(), lp,
                        std::to_string(list->size()) + " addresses; cluster_ips holds 1 or 2 (one "
                        "per family), e.g. [\"10.96.0.20\", \"fd00:10:96::20\"]");
      }
      std::vector<dp::IpAddr> ips;
      for (size_t i = 0; i < list->size(); ++i) {
        const toml::node& n = (*list)[i];
        const std::string ep = element_path(lp, i);
        if (n.as_string() != nullptr && n.as_string()->get() == "None") {
          if (list->size() != 1) {
            return r_.error(n.source(), ep, "\"None\" (headless) is allowed only as the one element");
          }
          if (one != nullptr && !headless) {
            return r_.error(n.source(), ep, "\"None\" differs from cluster_ip; cluster_ips[0] must be cluster_ip");
          }
          return;  // headless
        }
        auto ip = r_.ip_value(n, ep, "a cluster IP");
        if (!ip) return;
        if (i == 1 && ip->family == ips[0].family) {
          return r_.error(n.source(), ep,
                          dp::to_string(*ip) + " is " + std::string(dp::family_name(ip->family)) +
                              " like cluster_ips[0]; a dual-stack service has one cluster IP per "
                              "family (more than one address per family is not allowed)");
        }
        ips.push_back(*ip);
      }
      if (one != nullptr && (headless || ips[0] != *first)) {
        return r_.error(list->source(), lp,
                        "cluster_ips[0] " + dp::to_string(ips[0]) + " differs from cluster_ip " +
                            (headless ? std::string("\"None\"") : dp::to_string(*first)) +
                            "; give one of the keys, or the same first address");
      }
      first = ips[0];
      if (ips.size() == 2) svc.secondary_cluster_ip = ips[1];
    }
    if (headless) return;
    svc.cluster_ip = first;
    const toml::node* at = one != nullptr ? one : list;
    const std::string path = key_path(p, one != nullptr ? "cluster_ip" : "cluster_ips");
    for (const dp::IpAddr& vip : svc.cluster_ips()) {
      for (size_t j = 0; j < ports_.size(); ++j) {
        const bool ours = vip.is_v4() ? ports_[j].address.addr == vip.as_v4()
                                      : ports_[j].address6 && ports_[j].address6->addr == vip.as_v6();
        if (ours) {
          r_.error(at->source(), path,
                   dp::to_string(vip) + " is the " + (vip.is_v4() ? "address" : "address6") +
                       " of ports[" + std::to_string(j) + "] (" + ports_[j].name +
                       "); a cluster IP must not be a port address");
        }
      }
    }
  }

  void wrong_type_or(const toml::node* n, const std::string& path) {
    r_.wrong_type(*n, path, "an array of strings");
  }

  void load_service_ports(const toml::table& t, const std::string& p, ServiceConfig& svc,
                          size_t self, bool forwards) {
    const std::string pp = key_path(p, "ports");
    const toml::array* a = r_.get_array(t, p, "ports", "an array of tables", forwards,
                                     " (a service with a cluster_ip forwards ports)");
    if (a == nullptr) return;
    if (a->empty() && forwards) {
      r_.error(a->source(), pp, "empty; a service with a cluster_ip needs at least one port");
    }
    r_.for_each_table(*a, pp, [&](const toml::table& pt, const std::string& p2) {
      r_.check_keys(pt, p2, {"name", "port", "target_port", "protocol"});
      ServicePortConfig port;
      if (a->size() > 1 && pt.get("name") == nullptr) {
        r_.error(pt.source(), p2, "missing required key 'name' (required when a service has "
                               "several ports)");
      }
      if (auto name = r_.get_label(pt, p2, "name", false, false)) {
        port.name = *name;
        for (size_t j = 0; j < svc.ports.size(); ++j) {
          if (svc.ports[j].name == *name) {
            r_.error(pt.get("name")->source(), key_path(p2, "name"),
                  quote(*name) + " is already the name of " + element_path(pp, j));
          }
        }
      }
      auto number = r_.get_int(pt, p2, "port", kMinPort, kMaxPort, true);
      if (number) port.port = static_cast<uint16_t>(*number);
      port.target_port = port.port;
      if (auto target = r_.get_int(pt, p2, "target_port", kMinPort, kMaxPort)) {
        port.target_port = static_cast<uint16_t>(*target);
      }
      if (auto proto = r_.get_string(pt, p2, "protocol")) {
        if (auto parsed = parse_protocol(*proto)) {
          port.protocol = *parsed;
        } else {
          r_.error(pt.get("protocol")->source(), key_path(p2, "protocol"),
                unsupported_protocol(*proto));
          number.reset();  // no duplicate checks on an unknown protocol
        }
      }
      if (number) check_vip_port(pt.get("port")->source(), key_path(p2, "port"), svc, port, self);
      svc.ports.push_back(std::move(port));
    });
  }

  void check_vip_port(const toml::source_region& at, const std::string& path,
                      const ServiceConfig& svc, const ServicePortConfig& port, size_t self) {
    std::string what = port_and_protocol(port.port, port.protocol);
    for (const ServicePortConfig& earlier : svc.ports) {
      if (earlier.port == port.port && earlier.protocol == port.protocol) {
        return r_.error(at, path, what + " is listed twice in this service");
      }
    }
    for (const dp::IpAddr& vip : svc.cluster_ips()) {
      auto [it, inserted] = vip_ports_.emplace(VipPort{vip, port.port, port.protocol}, self);
      if (!inserted) {
        const ServiceConfig& other = services_[it->second];
        r_.error(at, path, vip_port_text(vip, what) + " is already served by services[" +
                               std::to_string(it->second) + "] (" + other.ns + "/" + other.name + ")");
      }
    }
  }

  void load_endpoints(const toml::table& t, const std::string& p, ServiceConfig& svc) {
    if (svc.type == ServiceType::kExternalName) return;  // reported in load_service
    const std::string ep = key_path(p, "endpoints");
    const toml::array* a = r_.get_array(t, p, "endpoints", "an array of tables");
    if (a == nullptr) return;
    if (a->size() > kMaxEndpoints) {
      r_.error(a->source(), ep, std::to_string(a->size()) + " endpoints; at most " +
                                 std::to_string(kMaxEndpoints) + " are allowed");
    }
    std::unordered_map<dp::IpAddr, size_t, IpAddrHash> seen;  // endpoint address -> its index
    seen.reserve(a->size());
    r_.for_each_table(*a, ep, [&](const toml::table& et, const std::string& p2) {
      r_.check_keys(et, p2, {"ip", "pod", "hostname", "subdomain", "ready", "serving",
                          "terminating", "weight"});
      EndpointConfig e;
      if (auto ip = r_.get_ip(et, p2, "ip", true, "an endpoint")) {
        e.ip = *ip;
        // A hash lookup, not a scan of the earlier ones (65534 endpoints).
        auto [it, inserted] = seen.emplace(*ip, svc.endpoints.size());
        if (!inserted) {
          r_.error(et.get("ip")->source(), key_path(p2, "ip"),
                   dp::to_string(*ip) + " is already " + element_path(ep, it->second));
        } else if (svc.cluster_ip && !serves(svc, ip->family)) {
          // No NAT46: a VIP forwards to endpoints of its own family.
          r_.error(et.get("ip")->source(), key_path(p2, "ip"),
                   dp::to_string(*ip) + " is " + std::string(dp::family_name(ip->family)) +
                       " but the service has no " + std::string(dp::family_name(ip->family)) +
                       " cluster IP; a VIP forwards to endpoints of its own family only");
        }
      }
      if (auto pod = r_.get_string(et, p2, "pod")) e.pod = *pod;
      // Duplicate hostnames are allowed: DNS answers every matching address
      // (../shared/design/dns.md, "Endpoint names").
      if (auto h = r_.get_label(et, p2, "hostname", false, false)) e.hostname = *h;
      if (auto sub = r_.get_label(et, p2, "subdomain", false, false)) e.subdomain = *sub;
      r_.get_bool(et, p2, "ready", e.ready);
      e.serving = e.ready;  // EndpointSlice: serving defaults to ready
      r_.get_bool(et, p2, "serving", e.serving);
      r_.get_bool(et, p2, "terminating", e.terminating);
      // EndpointSlice conditions (KEP-1672): ready = serving && !terminating.
      if (e.ready && (!e.serving || e.terminating)) {
        const toml::node* at = et.get("ready");
        if (at == nullptr) at = et.get(e.terminating ? "terminating" : "serving");
        r_.error(at->source(), p2,
              std::string("ready = true contradicts ") +
                  (e.terminating ? "terminating = true" : "serving = false") +
                  "; a ready endpoint is serving and not terminating");
      }
      r_.get_u32(et, p2, "weight", 1, 256, e.weight);
      svc.endpoints.push_back(std::move(e));
    });
  }

 private:
  ConfigReader& r_;
  const std::vector<PortConfig>& ports_;
  ServiceList& services_;
  std::unordered_map<std::string, size_t> names_;  // "ns/name" -> index in services_
  std::unordered_map<VipPort, size_t, VipPortHash> vip_ports_;  // VIP:port/protocol -> the service serving it
};

}  // namespace

void read_services(ConfigReader& r, const toml::table& root, const std::vector<PortConfig>& ports,
                   ServiceList& out) {
  ServicesLoader(r, ports, out).load(root);
}

}  // namespace podgate::ctl
