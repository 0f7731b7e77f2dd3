// Kubernetes input, first pass: each Service and EndpointSlice read and
// checked on its own; see k8s_read.hpp.

#include "control/config/k8s_read.hpp"

#include "control/config/config_health.hpp"

#include <algorithm>
#include <set>
#include <tuple>

namespace podgate::ctl::k8s_detail {

std::string_view json_type(const json& j) {
  switch (j.type()) {
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number with a fraction";
    case json::value_t::null: return "null";
    default: break;
  }
  return "nothing";
}

std::string expected_type(std::string_view expected, const json& found) {
  return expected_found(expected, json_type(found));
}

namespace {

std::optional<dp::Proto> read_protocol(Reader& r, const json& obj, const std::string& path) {
  auto proto = r.get_string(obj, path, "protocol");
  if (!proto) return dp::Proto::kTcp;  // the API's default
  auto parsed = parse_protocol(*proto);
  if (!parsed) r.error(key_path(path, "protocol"), unsupported_protocol(*proto));
  return parsed;
}

std::optional<dp::Family> family_of(std::string_view name) {
  if (name == "IPv4") return dp::Family::kIpv4;
  if (name == "IPv6") return dp::Family::kIpv6;
  return std::nullopt;
}

std::string family_text(dp::Family f) { return std::string(dp::family_name(f)); }

// spec.ipFamilies: ["IPv4"], ["IPv6", "IPv4"], ...: at most one of each.
std::vector<dp::Family> read_ip_families(Reader& r, const json& spec) {
  std::vector<dp::Family> families;
  const json* list = r.get_array(spec, "spec", "ipFamilies");
  if (list == nullptr) return families;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string p = element_path("spec.ipFamilies", i);
    const json& f = (*list)[i];
    auto family = f.is_string() ? family_of(f.get<std::string>()) : std::nullopt;
    if (!family) {
      r.error(p, (f.is_string() ? quote(f.get<std::string>()) : std::string(json_type(f))) +
                     " is not an IP family; allowed: IPv4, IPv6");
    } else if (std::find(families.begin(), families.end(), *family) != families.end()) {
      r.error(p, quote(f.get<std::string>()) + " is listed twice; a Service has one cluster IP per family");
    } else {
      families.push_back(*family);
    }
  }
  return families;
}

// spec.clusterIPs (its first entry equals clusterIP; a second, of the other
// family, makes the service dual-stack), or spec.clusterIP; spec.ipFamilies
// and spec.ipFamilyPolicy are checked against them (issue 11).
void read_cluster_ip(Reader& r, const json& spec, PendingService& ps) {
  ServiceConfig& svc = ps.cfg;
  std::vector<std::pair<std::string, std::string>> candidates;  // {path, text}
  if (const json* ips = r.get_array(spec, "spec", "clusterIPs")) {
    for (size_t i = 0; i < ips->size(); ++i) {
      const std::string p = element_path("spec.clusterIPs", i);
      if (!(*ips)[i].is_string()) {
        r.wrong_type(p, (*ips)[i], "a string");
        return;
      }
      candidates.emplace_back(p, (*ips)[i].get<std::string>());
    }
  }
  auto single = r.get_string(spec, "spec", "clusterIP");
  // Checked once every entry is known to be an address: clusterIPs[0] is clusterIP.
  const auto disagree = [&] {
    if (!single || candidates.empty() || *single == candidates.front().second) return false;
    r.error("spec.clusterIPs[0]", quote(candidates.front().second) + " differs from spec.clusterIP " +
                                      quote(*single) + "; clusterIPs[0] is clusterIP");
    return true;
  };
  if (candidates.empty() && single) candidates.emplace_back("spec.clusterIP", *single);
  if (candidates.empty()) {
    r.error("spec", "missing required key \"clusterIP\" (an IPv4 or IPv6 address, or \"None\" for "
                    "a headless service)");
    return;
  }
  const std::vector<dp::Family> families = read_ip_families(r, spec);
  std::string policy = "SingleStack";
  if (auto p = r.get_string(spec, "spec", "ipFamilyPolicy")) {
    policy = *p;
    if (policy != "SingleStack" && policy != "PreferDualStack" && policy != "RequireDualStack") {
      r.error("spec.ipFamilyPolicy", quote(policy) + " is not an IP family policy; allowed: "
                                                     "SingleStack, PreferDualStack, RequireDualStack");
      return;
    }
  }
  if (candidates.front().second == "None") {  // headless: its families pick its slices
    if (disagree()) return;
    if (candidates.size() > 1) {
      r.error("spec.clusterIPs", "\"None\" (headless) must be the only entry");
    } else if (policy == "SingleStack" && families.size() > 1) {
      r.error("spec.ipFamilies", "2 families with ipFamilyPolicy \"SingleStack\"");
    } else if (policy == "RequireDualStack" && families.size() == 1) {
      r.error("spec.ipFamilies", "one family with ipFamilyPolicy \"RequireDualStack\"; a dual-stack "
                                 "Service has both");
    }
    ps.families = families;
    return;
  }
  if (candidates.size() > 2) {
    r.error("spec.clusterIPs", std::to_string(candidates.size()) +
                                   " addresses; a Service has at most 2, one per family");
    return;
  }
  std::vector<dp::IpAddr> ips;
  for (const auto& [path, text] : candidates) {
    auto ip = dp::parse_ip(text);
    if (!ip) return r.error(path, not_ip(text, "10.96.0.20\" or \"fd00:10:96::20"));
    if (!is_unicast_ip(*ip)) return r.error(path, ip->is_v4() ? not_unicast_ip4(text) : not_unicast_ip6(text));
    if (ip->is_v6() && ip->as_v6().is_link_local()) return r.error(path, link_local_not_allowed(text, "a cluster IP"));
    if (!ips.empty() && ips[0].family == ip->family) {
      return r.error(path, quote(text) + " is " + family_text(ip->family) + " like " +
                               candidates[0].first + "; a Service has one cluster IP per family");
    }
    ips.push_back(*ip);
  }
  if (disagree()) return;
  for (size_t i = 0; i < families.size() && i < ips.size(); ++i) {
    if (families[i] != ips[i].family) {
      return r.error(element_path("spec.ipFamilies", i),
                     quote(family_text(families[i])) + " but " + candidates[i].first + " " +
                         quote(candidates[i].second) + " is " + family_text(ips[i].family));
    }
  }
  if (policy == "SingleStack" && ips.size() == 2) {
    return r.error("spec.ipFamilyPolicy", "\"SingleStack\" with 2 cluster IPs; give one, or "
                                          "PreferDualStack or RequireDualStack");
  }
  if (policy == "RequireDualStack" && ips.size() == 1) {
    return r.error("spec.clusterIPs", "one cluster IP with ipFamilyPolicy \"RequireDualStack\"; a "
                                      "dual-stack Service has one per family");
  }
  svc.cluster_ip = ips[0];
  if (ips.size() == 2) svc.secondary_cluster_ip = ips[1];
  for (const dp::IpAddr& ip : ips) ps.families.push_back(ip.family);
}

void read_service_ports(Reader& r, const json& spec, PendingService& ps) {
  const json* ports = r.get_array(spec, "spec", "ports");
  if (ports == nullptr) return;
  for (size_t i = 0; i < ports->size(); ++i) {
    const std::string p = element_path("spec.ports", i);
    const json& pt = (*ports)[i];
    if (!pt.is_object()) {
      r.wrong_type(p, pt, "an object");
      continue;
    }
    ServicePortConfig port;
    std::string target_name;
    if (auto name = r.get_string(pt, p, "name")) port.name = *name;
    auto number = r.get_int(pt, p, "port", kMinPort, kMaxPort, true);
    if (number) port.port = static_cast<uint16_t>(*number);
    port.target_port = port.port;  // targetPort absent: the API defaults it to port
    if (const json* target = r.find(pt, p, "targetPort")) {
      if (target->is_string()) {
        target_name = target->get<std::string>();
        port.target_port = 0;  // resolved through the EndpointSlices
        if (target_name.empty()) r.error(key_path(p, "targetPort"), "empty port name");
      } else if (auto t = r.as_int(*target, key_path(p, "targetPort"), kMinPort, kMaxPort)) {
        port.target_port = static_cast<uint16_t>(*t);
      }
    }
    if (auto proto = read_protocol(r, pt, p)) port.protocol = *proto;
    ps.cfg.ports.push_back(std::move(port));
    ps.target_names.push_back(std::move(target_name));
  }
  ps.target_resolved.assign(ps.cfg.ports.size(), false);
  ps.resolved_by.assign(ps.cfg.ports.size(), std::string());
}

// One endpoints[] entry: its first address becomes one EndpointConfig.
void read_endpoint(Reader& r, const json& ep, const std::string& p, PendingSlice& slice) {
  EndpointConfig base;
  // EndpointConditions (discovery.k8s.io/v1): a nil ready or serving
  // "should be interpreted as 'true'", a nil terminating as "false"; so
  // kube-proxy reads them (endpointslicecache.go).  A mirrored Endpoints
  // address that is not ready says ready=false alone: serving, not
  // terminating, it drains (keeps its flows) as kube-proxy leaves its
  // conntrack entries.
  bool ready = true;
  if (const json* c = r.get_object(ep, p, "conditions")) {
    const std::string cp = key_path(p, "conditions");
    if (auto v = r.get_bool(*c, cp, "ready")) ready = *v;
    if (auto v = r.get_bool(*c, cp, "serving")) base.serving = *v;
    if (auto v = r.get_bool(*c, cp, "terminating")) base.terminating = *v;
  }
  // The EndpointSlice controller sets ready = publishNotReadyAddresses ||
  // (serving && !terminating), so a published terminating or unready Pod
  // reads ready=true.  podgate keeps the Pod's real state (a ready endpoint
  // serves and is not terminating; the config validator insists) and its
  // DNS publishes not-ready addresses itself from publish_not_ready_addresses.
  base.ready = ready && base.serving && !base.terminating;
  if (auto h = r.get_string(ep, p, "hostname")) base.hostname = *h;
  if (const json* ref = r.get_object(ep, p, "targetRef")) {
    auto kind = r.get_string(*ref, key_path(p, "targetRef"), "kind");
    auto name = r.get_string(*ref, key_path(p, "targetRef"), "name");
    if (kind && *kind == "Pod" && name) base.pod = *name;
  }
  const json* addrs = r.get_array(ep, p, "addresses", true);
  if (addrs == nullptr) return;
  if (addrs->empty()) {
    r.error(key_path(p, "addresses"), "empty; an endpoint has at least one address");
    return;
  }
  // "No semantics are defined for additional addresses beyond the first,
  // and kube-proxy does not look at them" (EndpointSlice API reference).
  if (addrs->size() > 1) {
    r.warning(element_path(key_path(p, "addresses"), 1),
              "ignored: only an endpoint's first address is forwarded to, as kube-proxy does (no "
              "meaning is defined for the others)");
  }
  const std::string ap = element_path(key_path(p, "addresses"), 0);
  const json& a = (*addrs)[0];
  if (!a.is_string()) {
    r.wrong_type(ap, a, "a string");
    return;
  }
  const std::string& text = a.get<std::string>();
  auto ip = dp::parse_ip(text);
  if (!ip || ip->family != slice.family) {
    r.error(ap, quote(text) + " is not an " + family_text(slice.family) + " address (addressType " +
                    family_text(slice.family) + ") such as \"" +
                    (slice.family == dp::Family::kIpv4 ? "10.244.1.5" : "fd00:10:244:1::5") + "\"");
    return;
  }
  if (!is_unicast_ip(*ip)) {
    r.error(ap, ip->is_v4() ? not_unicast_ip4(text) : not_unicast_ip6(text));
    return;
  }
  if (ip->is_v6() && ip->as_v6().is_link_local()) {
    r.error(ap, link_local_not_allowed(text, "an endpoint"));
    return;
  }
  base.ip = *ip;
  slice.endpoints.push_back(std::move(base));
}

}  // namespace

ObjectMeta read_meta(Reader& r, const json& obj) {
  ObjectMeta m;
  const json* meta = r.get_object(obj, "", "metadata", true);
  if (meta == nullptr) return m;
  if (auto name = r.get_string(*meta, "metadata", "name", true)) m.name = *name;
  if (auto ns = r.get_string(*meta, "metadata", "namespace")) m.ns = *ns;
  if (const json* labels = r.get_object(*meta, "metadata", "labels")) {
    for (const auto& [k, v] : labels->items()) {
      if (v.is_string()) m.labels[k] = v.get<std::string>();
    }
  }
  if (const json* notes = r.get_object(*meta, "metadata", "annotations")) {
    if (auto check = notes->find(kHealthCheckAnnotation); check != notes->end()) {
      if (check->is_string()) {
        m.health_check = check->get<std::string>();
      } else {
        r.wrong_type("metadata.annotations[\"" + std::string(kHealthCheckAnnotation) + "\"]",
                     *check, "a string (JSON text)");
      }
    }
  }
  return m;
}

PendingService read_service(Reader& r, const json& obj, const ObjectMeta& meta) {
  PendingService ps;
  ps.where = r.where();
  ServiceConfig& svc = ps.cfg;
  svc.ns = meta.ns;
  svc.name = meta.name;
  const json* spec = r.get_object(obj, "", "spec", true);
  if (spec == nullptr) return ps;

  std::string type = "ClusterIP";
  if (auto t = r.get_string(*spec, "spec", "type")) type = *t;
  if (type == "ExternalName") {
    svc.type = ServiceType::kExternalName;
    if (auto en = r.get_string(*spec, "spec", "externalName", true)) svc.external_name = *en;
    if (const json* ports = r.get_array(*spec, "spec", "ports"); ports && !ports->empty()) {
      r.warning("spec.ports", "ignored: an ExternalName service is a DNS CNAME and forwards "
                              "nothing");
    }
  } else if (type == "ClusterIP" || type == "NodePort" || type == "LoadBalancer") {
    if (type != "ClusterIP") {
      r.warning("spec.type", quote(type) + ": forwarded on its cluster IP only; node ports and "
                                           "load balancer addresses are ignored");
    }
    read_cluster_ip(r, *spec, ps);
    read_service_ports(r, *spec, ps);
  } else {
    r.error("spec.type", quote(type) +
                             " is not supported; allowed: ClusterIP, NodePort, LoadBalancer, "
                             "ExternalName");
  }
  if (const json* ext = r.get_array(*spec, "spec", "externalIPs"); ext && !ext->empty()) {
    r.warning("spec.externalIPs", "ignored: podgate forwards the cluster IP only");
  }

  if (auto aff = r.get_string(*spec, "spec", "sessionAffinity")) {
    if (*aff == "ClientIP") {
      svc.session_affinity = SessionAffinity::kClientIp;
    } else if (*aff != "None") {
      r.error("spec.sessionAffinity", quote(*aff) + " is not allowed; allowed: None, ClientIP");
    }
  }
  if (const json* sac = r.get_object(*spec, "spec", "sessionAffinityConfig")) {
    if (svc.session_affinity != SessionAffinity::kClientIp) {
      r.error("spec.sessionAffinityConfig", "only allowed with sessionAffinity \"ClientIP\"");
    } else if (const json* cip = r.get_object(*sac, "spec.sessionAffinityConfig", "clientIP")) {
      if (auto t = r.get_int(*cip, "spec.sessionAffinityConfig.clientIP", "timeoutSeconds", 1,
                             kMaxAffinityTimeout)) {
        svc.affinity_timeout = static_cast<uint32_t>(*t);
      }
    }
  }
  if (auto pnr = r.get_bool(*spec, "spec", "publishNotReadyAddresses")) {
    svc.publish_not_ready_addresses = *pnr;
  }
  if (meta.health_check) {
    // The [services.health_check] table as JSON, read by the same rules.
    const std::string at = "metadata.annotations[\"" + std::string(kHealthCheckAnnotation) + "\"]";
    auto check = parse_health_check_json(*meta.health_check, svc);
    if (check) {
      svc.health_check = *check;
    } else {
      r.error_lines(at, check.error().message);
    }
  }
  return ps;
}

std::optional<PendingSlice> read_slice(Reader& r, const json& obj, const ObjectMeta& meta) {
  PendingSlice s;
  s.where = r.where();
  s.ns = meta.ns;
  s.name = meta.name;
  auto label = meta.labels.find(std::string(kServiceNameLabel));
  if (label == meta.labels.end()) {
    r.warning("metadata.labels", "skipped: no " + quote(kServiceNameLabel) +
                                     " label, so it belongs to no Service");
    return std::nullopt;
  }
  s.service = label->second;
  auto type = r.get_string(obj, "", "addressType", true);
  if (!type) return std::nullopt;
  if (*type == "FQDN") {
    // Deprecated in discovery.k8s.io/v1, and kube-proxy ignores it too.
    r.warning("addressType", "skipped: \"FQDN\" slices are not supported, only \"IPv4\" and \"IPv6\"");
    return std::nullopt;
  }
  if (auto f = family_of(*type)) {
    s.family = *f;
  } else {
    r.error("addressType", quote(*type) + " is not an address type; allowed: IPv4, IPv6, FQDN");
    return std::nullopt;
  }
  if (const json* ports = r.get_array(obj, "", "ports")) {
    for (size_t i = 0; i < ports->size(); ++i) {
      const std::string p = element_path("ports", i);
      const json& pt = (*ports)[i];
      if (!pt.is_object()) {
        r.wrong_type(p, pt, "an object");
        continue;
      }
      SlicePort sp;
      if (auto name = r.get_string(pt, p, "name")) sp.name = *name;
      // A nil port in a slice means "all ports" (EndpointSlice API
      // reference): podgate cannot forward to that, and the EndpointSlice
      // controller never writes it.  kube-proxy skips such a port, and so
      // does podgate, with a warning.
      if (!pt.contains("port") || pt["port"].is_null()) {
        r.warning(p, "skipped: a port without a number (\"all ports\") names no target port to forward to");
        continue;
      }
      if (auto n = r.get_int(pt, p, "port", kMinPort, kMaxPort, true)) sp.port = static_cast<uint16_t>(*n);
      if (auto proto = read_protocol(r, pt, p)) sp.protocol = *proto;
      s.ports.push_back(std::move(sp));
    }
  }
  if (const json* eps = r.get_array(obj, "", "endpoints")) {
    for (size_t i = 0; i < eps->size(); ++i) {
      const std::string p = element_path("endpoints", i);
      if (!(*eps)[i].is_object()) {
        r.wrong_type(p, (*eps)[i], "an object");
        continue;
      }
      read_endpoint(r, (*eps)[i], p, s);
    }
  }
  return s;
}

}  // namespace podgate::ctl::k8s_detail
