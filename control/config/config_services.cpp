// [[services]] tables; see config_services.hpp.
#include "control/config/config_services.hpp"

#include <string>
#include <unordered_map>

#include "control/config/config_health.hpp"
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
               {"namespace", "name", "type", "cluster_ip", "external_name", "session_affinity",
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
      for (std::string_view key : {"cluster_ip", "endpoints"}) {
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
    const toml::node* cip = t.get("cluster_ip");
    const bool forwards = !external && cip != nullptr &&
                          !(cip->as_string() != nullptr && cip->as_string()->get() == "None");
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

  void load_cluster_ip(const toml::table& t, const std::string& p, ServiceConfig& svc) {
    auto s = r_.get_string(t, p, "cluster_ip", true,
                        " (an IPv4 address, or \"None\" for a headless service)");
    if (!s || *s == "None") return;
    auto vip = r_.get_ip4(t, p, "cluster_ip");
    if (!vip) return;
    svc.cluster_ip = dp::IpAddr::v4(*vip);
    for (size_t j = 0; j < ports_.size(); ++j) {
      if (ports_[j].address.addr == *vip) {
        r_.error(t.get("cluster_ip")->source(), key_path(p, "cluster_ip"),
              *s + " is the address of ports[" + std::to_string(j) + "] (" + ports_[j].name +
                  "); a cluster IP must not be a port address");
      }
    }
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
    if (!svc.cluster_ip) return;
    const uint64_t key = uint64_t{svc.cluster_ip->as_v4().host()} << 24 | uint64_t{port.port} << 8 |
                         static_cast<uint8_t>(port.protocol);
    auto [it, inserted] = vip_ports_.emplace(key, self);
    if (!inserted) {
      const ServiceConfig& other = services_[it->second];
      r_.error(at, path, dp::to_string(svc.cluster_ip->as_v4()) + ":" + what +
                          " is already served by services[" + std::to_string(it->second) + "] (" +
                          other.ns + "/" + other.name + ")");
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
    std::unordered_map<uint32_t, size_t> seen;  // endpoint address -> its index
    seen.reserve(a->size());
    r_.for_each_table(*a, ep, [&](const toml::table& et, const std::string& p2) {
      r_.check_keys(et, p2, {"ip", "pod", "hostname", "subdomain", "ready", "serving",
                          "terminating", "weight"});
      EndpointConfig e;
      if (auto ip = r_.get_ip4(et, p2, "ip", true)) {
        e.ip = dp::IpAddr::v4(*ip);
        // A hash lookup, not a scan of the earlier ones (65534 endpoints).
        auto [it, inserted] = seen.emplace(ip->host(), svc.endpoints.size());
        if (!inserted) {
          r_.error(et.get("ip")->source(), key_path(p2, "ip"),
                   dp::to_string(*ip) + " is already " + element_path(ep, it->second));
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
  std::unordered_map<uint64_t, size_t> vip_ports_;  // VIP:port/protocol -> the service serving it
};

}  // namespace

void read_services(ConfigReader& r, const toml::table& root, const std::vector<PortConfig>& ports,
                   ServiceList& out) {
  ServicesLoader(r, ports, out).load(root);
}

}  // namespace podgate::ctl
