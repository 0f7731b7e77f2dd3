// Kubernetes Service + EndpointSlice JSON -> ServiceConfig (docs/kubernetes.md).
//
// Two passes: every object is read and checked on its own first (so a slice
// may come before its Service, as `kubectl get svc,endpointslices` prints all
// services of every namespace first), then slices are merged into their
// services by the kubernetes.io/service-name label and the slice's namespace
// (the EndpointSlice API: "clients ... must iterate through all existing
// EndpointSlices associated to a Service and build a complete list of unique
// network endpoints").  Errors are collected, not returned at the first one,
// so one edit-and-retry fixes them all (style habit 7).
#include "control/config/k8s_objects.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "control/config/validate.hpp"

namespace podgate::ctl {

namespace {

using nlohmann::json;

constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";

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

// Collects messages; `where` is the "items[3] Service default/web" prefix.
class Diagnostics {
 public:
  explicit Diagnostics(std::string_view source) : source_(source) {}

  void error(std::string_view where, std::string_view path, std::string_view what) {
    errors_.push_back(line(where, path, what));
  }
  void warning(std::string_view where, std::string_view path, std::string_view what) {
    warnings_.push_back(line(where, path, what));
  }
  bool has_errors() const { return !errors_.empty(); }

  std::string joined_errors() const {
    std::string out;
    for (const std::string& e : errors_) {
      if (!out.empty()) out += '\n';
      out += e;
    }
    return out;
  }
  std::vector<std::string> take_warnings() { return std::move(warnings_); }

 private:
  std::string line(std::string_view where, std::string_view path, std::string_view what) const {
    std::string s = source_ + ": ";
    if (!where.empty()) s += std::string(where) + ": ";
    if (!path.empty()) s += std::string(path) + ": ";
    return s + std::string(what);
  }

  std::string source_;
  std::vector<std::string> errors_;
  std::vector<std::string> warnings_;
};

// Typed accessors for one object.  JSON null counts as absent: kubectl prints
// `"endpoints": null` and `"ports": null` for an empty EndpointSlice.
class Reader {
 public:
  Reader(Diagnostics& diag, std::string where) : diag_(diag), where_(std::move(where)) {}

  const std::string& where() const { return where_; }
  void set_where(std::string where) { where_ = std::move(where); }
  void error(std::string_view path, std::string_view what) { diag_.error(where_, path, what); }
  void warning(std::string_view path, std::string_view what) { diag_.warning(where_, path, what); }

  // The member, or nullptr when absent or null (an error when required).
  const json* find(const json& obj, std::string_view path, std::string_view key,
                   bool required = false) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (required) error(path, "missing required key " + quote(key));
      return nullptr;
    }
    return &*it;
  }

  const json* find_typed(const json& obj, std::string_view path, std::string_view key,
                         json::value_t type, std::string_view type_text, bool required = false) {
    const json* v = find(obj, path, key, required);
    if (v == nullptr) return nullptr;
    bool matches = v->type() == type ||
                   (type == json::value_t::number_integer && v->is_number_unsigned());
    if (!matches) {
      error(key_path(path, key), std::string(json_type(*v)) + " where " + std::string(type_text) +
                                 " is expected");
      return nullptr;
    }
    return v;
  }

  std::optional<std::string> get_string(const json& obj, std::string_view path,
                                        std::string_view key, bool required = false) {
    const json* v = find_typed(obj, path, key, json::value_t::string, "a string", required);
    if (v == nullptr) return std::nullopt;
    return v->get<std::string>();
  }

  std::optional<bool> get_bool(const json& obj, std::string_view path, std::string_view key) {
    const json* v = find_typed(obj, path, key, json::value_t::boolean, "a boolean");
    if (v == nullptr) return std::nullopt;
    return v->get<bool>();
  }

  const json* get_object(const json& obj, std::string_view path, std::string_view key,
                         bool required = false) {
    return find_typed(obj, path, key, json::value_t::object, "an object", required);
  }

  const json* get_array(const json& obj, std::string_view path, std::string_view key,
                        bool required = false) {
    return find_typed(obj, path, key, json::value_t::array, "an array", required);
  }

  // An integer in lo..hi, checked on the JSON value itself.
  std::optional<int64_t> as_int(const json& v, std::string_view path, int64_t lo, int64_t hi) {
    if (!v.is_number_integer()) {
      error(path, std::string(json_type(v)) + " where an integer is expected");
      return std::nullopt;
    }
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      error(path, not_in_range(v.dump(), lo, hi));
      return std::nullopt;
    }
    int64_t n = v.get<int64_t>();
    if (n < lo || n > hi) {
      error(path, not_in_range(n, lo, hi));
      return std::nullopt;
    }
    return n;
  }

  std::optional<int64_t> get_int(const json& obj, std::string_view path, std::string_view key,
                                 int64_t lo, int64_t hi, bool required = false) {
    const json* v = find(obj, path, key, required);
    if (v == nullptr) return std::nullopt;
    return as_int(*v, key_path(path, key), lo, hi);
  }

 private:
  Diagnostics& diag_;
  std::string where_;
};

// ---- first pass: each object on its own ----

struct ObjectMeta {
  std::string ns = "default";  // kubectl apply's default for a manifest without one
  std::string name;
  std::map<std::string, std::string> labels;
};

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
  return m;
}

struct PendingService {
  ServiceConfig cfg;
  std::string where;
  // Per cfg.ports entry: the targetPort name ("" = a number, or absent).
  std::vector<std::string> target_names;
  std::vector<bool> target_resolved;
  std::vector<std::string> resolved_by;  // the slice that resolved it, for conflicts
};

struct SlicePort {
  std::string name;
  uint16_t port = 0;
  dp::Proto protocol = dp::Proto::kTcp;
};

struct PendingSlice {
  std::string where;
  std::string ns;
  std::string name;
  std::string service;  // the kubernetes.io/service-name label
  std::vector<SlicePort> ports;
  std::vector<EndpointConfig> endpoints;
};

std::optional<dp::Proto> read_protocol(Reader& r, const json& obj, const std::string& path) {
  auto proto = r.get_string(obj, path, "protocol");
  if (!proto) return dp::Proto::kTcp;  // the API's default
  auto parsed = parse_protocol(*proto);
  if (!parsed) r.error(key_path(path, "protocol"), unsupported_protocol(*proto));
  return parsed;
}

// spec.clusterIPs (dual-stack, its first entry equals clusterIP) or
// spec.clusterIP.  podgate forwards IPv4 only: the first IPv4 entry wins.
void read_cluster_ip(Reader& r, const json& spec, ServiceConfig& svc) {
  std::vector<std::pair<std::string, std::string>> candidates;  // {path, text}
  if (const json* ips = r.get_array(spec, "spec", "clusterIPs")) {
    for (size_t i = 0; i < ips->size(); ++i) {
      const std::string p = element_path("spec.clusterIPs", i);
      if (!(*ips)[i].is_string()) {
        r.error(p, std::string(json_type((*ips)[i])) + " where a string is expected");
        continue;
      }
      candidates.emplace_back(p, (*ips)[i].get<std::string>());
    }
  }
  if (candidates.empty()) {
    if (auto ip = r.get_string(spec, "spec", "clusterIP")) candidates.emplace_back("spec.clusterIP", *ip);
  }
  if (candidates.empty()) {
    r.error("spec", "missing required key \"clusterIP\" (an IPv4 address, or \"None\" for a "
                    "headless service)");
    return;
  }
  if (candidates.front().second == "None") return;  // headless

  std::optional<size_t> chosen;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& [path, text] = candidates[i];
    if (auto v4 = dp::parse_ip4(text)) {
      if (!is_unicast_ip4(*v4)) {
        r.error(path, not_unicast_ip4(text));
        return;
      }
      if (!chosen) {
        chosen = i;
        svc.cluster_ip = dp::IpAddr::v4(*v4);
      }
    } else if (text.find(':') == std::string::npos) {
      r.error(path, not_ip4(text, "10.96.0.20"));
      return;
    }
  }
  if (!chosen) {
    r.error(candidates.front().first,
            quote(candidates.front().second) + ": IPv6 services are not supported yet");
    return;
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (i != *chosen) {
      r.warning(candidates[i].first, quote(candidates[i].second) +
                                         " ignored: IPv6 services are not supported yet, the "
                                         "IPv4 cluster IP is used");
    }
  }
}

void read_service_ports(Reader& r, const json& spec, PendingService& ps) {
  const json* ports = r.get_array(spec, "spec", "ports");
  if (ports == nullptr) return;
  for (size_t i = 0; i < ports->size(); ++i) {
    const std::string p = element_path("spec.ports", i);
    const json& pt = (*ports)[i];
    if (!pt.is_object()) {
      r.error(p, std::string(json_type(pt)) + " where an object is expected");
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
    read_cluster_ip(r, *spec, svc);
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
  return ps;
}

// One endpoints[] entry: every address becomes one EndpointConfig.
void read_endpoint(Reader& r, const json& ep, const std::string& p, PendingSlice& slice) {
  EndpointConfig base;
  // EndpointConditions (discovery.k8s.io/v1): "ready ... A nil value should
  // be interpreted as 'true'" in most cases; serving nil is treated like
  // ready; terminating nil means not terminating.
  bool ready = true;
  if (const json* c = r.get_object(ep, p, "conditions")) {
    const std::string cp = key_path(p, "conditions");
    if (auto v = r.get_bool(*c, cp, "ready")) ready = *v;
    base.serving = ready;
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
  if (addrs->empty()) r.error(key_path(p, "addresses"), "empty; an endpoint has at least one address");
  for (size_t i = 0; i < addrs->size(); ++i) {
    const std::string ap = element_path(key_path(p, "addresses"), i);
    const json& a = (*addrs)[i];
    if (!a.is_string()) {
      r.error(ap, std::string(json_type(a)) + " where a string is expected");
      continue;
    }
    auto ip = dp::parse_ip4(a.get<std::string>());
    if (!ip) {
      r.error(ap, not_ip4(a.get<std::string>(), "10.244.1.5"));
      continue;
    }
    if (!is_unicast_ip4(*ip)) {
      r.error(ap, not_unicast_ip4(a.get<std::string>()));
      continue;
    }
    EndpointConfig e = base;
    e.ip = dp::IpAddr::v4(*ip);
    slice.endpoints.push_back(std::move(e));
  }
}

// nullopt: the slice is skipped (with a warning) or wrong (with an error).
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
  if (*type == "IPv6" || *type == "FQDN") {
    r.warning("addressType", "skipped: " + quote(*type) + " slices are not supported yet, only "
                                                          "\"IPv4\"");
    return std::nullopt;
  }
  if (*type != "IPv4") {
    r.error("addressType", quote(*type) + " is not an address type; allowed: IPv4, IPv6, FQDN");
    return std::nullopt;
  }
  if (const json* ports = r.get_array(obj, "", "ports")) {
    for (size_t i = 0; i < ports->size(); ++i) {
      const std::string p = element_path("ports", i);
      const json& pt = (*ports)[i];
      if (!pt.is_object()) {
        r.error(p, std::string(json_type(pt)) + " where an object is expected");
        continue;
      }
      SlicePort sp;
      if (auto name = r.get_string(pt, p, "name")) sp.name = *name;
      // A nil port in a slice means "all ports" (EndpointPort docs); podgate
      // cannot forward to that, and the EndpointSlice controller never writes it.
      if (auto n = r.get_int(pt, p, "port", kMinPort, kMaxPort, true)) sp.port = static_cast<uint16_t>(*n);
      if (auto proto = read_protocol(r, pt, p)) sp.protocol = *proto;
      s.ports.push_back(std::move(sp));
    }
  }
  if (const json* eps = r.get_array(obj, "", "endpoints")) {
    for (size_t i = 0; i < eps->size(); ++i) {
      const std::string p = element_path("endpoints", i);
      if (!(*eps)[i].is_object()) {
        r.error(p, std::string(json_type((*eps)[i])) + " where an object is expected");
        continue;
      }
      read_endpoint(r, (*eps)[i], p, s);
    }
  }
  return s;
}

// ---- second pass: merge slices into services ----

void merge_slice(Diagnostics& diag, PendingService& ps, const PendingSlice& slice) {
  ServiceConfig& svc = ps.cfg;
  if (svc.type == ServiceType::kExternalName) {
    diag.warning(slice.where, "", "skipped: service " + svc.ns + "/" + svc.name +
                                      " is an ExternalName service and has no endpoints");
    return;
  }
  if (slice.endpoints.empty()) return;  // an empty slice says nothing about ports

  // EndpointSlice ports carry the Service port's *name* and the number its
  // targetPort resolved to in this slice's Pods (the EndpointSlice controller
  // groups Pods whose named container ports resolve alike into one slice).
  for (size_t i = 0; i < svc.ports.size(); ++i) {
    if (ps.target_names[i].empty()) continue;
    const ServicePortConfig& port = svc.ports[i];
    auto it = std::find_if(slice.ports.begin(), slice.ports.end(), [&](const SlicePort& sp) {
      return sp.name == port.name && sp.protocol == port.protocol;
    });
    const std::string what = "service " + svc.ns + "/" + svc.name + " port " + quote(port.name) +
                             " (targetPort " + quote(ps.target_names[i]) + ")";
    if (it == slice.ports.end()) {
      diag.error(slice.where, "ports",
                 "no port named " + quote(port.name) + "/" +
                     std::string(dp::proto_name(port.protocol)) + ", needed to resolve " + what);
      continue;
    }
    if (!ps.target_resolved[i]) {
      svc.ports[i].target_port = it->port;
      ps.target_resolved[i] = true;
      ps.resolved_by[i] = slice.ns + "/" + slice.name;
    } else if (svc.ports[i].target_port != it->port) {
      // podgate has one target port per service port; Pods disagreeing on
      // what a named port means cannot be forwarded to.
      diag.error(slice.where, "ports",
                 what + " resolves to " + std::to_string(it->port) + " here but to " +
                     std::to_string(svc.ports[i].target_port) + " in EndpointSlice " +
                     ps.resolved_by[i] + "; podgate needs one target port per service port");
    }
  }

  for (const EndpointConfig& e : slice.endpoints) {
    // "Endpoints may be duplicated across slices" while the controller moves
    // them (EndpointSlice docs, "Duplicate endpoints"): keep the first.
    auto dup = std::find_if(svc.endpoints.begin(), svc.endpoints.end(),
                            [&](const EndpointConfig& x) { return x.ip == e.ip; });
    if (dup != svc.endpoints.end()) {
      diag.warning(slice.where, "endpoints",
                   dp::to_string(e.ip.as_v4()) + " of service " + svc.ns + "/" + svc.name +
                       " is listed more than once; the first is kept");
      continue;
    }
    EndpointConfig out = e;
    // Kubernetes keeps a Pod's subdomain on the Pod, not in the slice.  For a
    // headless service a hostname in the slice means the Pod's subdomain is
    // this service (the StatefulSet serviceName case), which is what DNS
    // needs for HOSTNAME.SERVICE.NS.svc records.
    if (svc.headless() && !out.hostname.empty()) out.subdomain = svc.name;
    svc.endpoints.push_back(std::move(out));
  }
}

// The essential rules load_config() applies to a [[services]] table.
void validate_service(Diagnostics& diag, const PendingService& ps,
                      std::map<std::tuple<uint32_t, uint16_t, dp::Proto>, std::string>& vip_ports) {
  const ServiceConfig& svc = ps.cfg;
  const std::string& w = ps.where;
  if (!is_dns1123_label(svc.ns)) {
    diag.error(w, "metadata.namespace", not_dns1123_label(svc.ns));
  }
  if (!is_dns1035_label(svc.name)) {
    diag.error(w, "metadata.name", not_dns1035_label(svc.name));
  }
  if (svc.type == ServiceType::kExternalName) {
    if (!svc.external_name.empty() && !is_dns_name(svc.external_name)) {
      diag.error(w, "spec.externalName", not_dns_name(svc.external_name));
    }
    return;
  }
  if (svc.cluster_ip && svc.ports.empty()) {
    diag.error(w, "spec.ports", "empty; a service with a cluster IP needs at least one port");
  }
  for (size_t i = 0; i < svc.ports.size(); ++i) {
    const ServicePortConfig& port = svc.ports[i];
    const std::string p = element_path("spec.ports", i);
    if (svc.ports.size() > 1 && port.name.empty()) {
      diag.error(w, p, "missing required key \"name\" (required when a service has several "
                       "ports)");
    }
    if (!port.name.empty() && !is_dns1123_label(port.name)) {
      diag.error(w, key_path(p, "name"), quote(port.name) + " is not a DNS-1123 label");
    }
    if (port.port == 0) continue;  // already reported
    const std::string what = port_and_protocol(port.port, port.protocol);
    for (size_t j = 0; j < i; ++j) {
      if (!port.name.empty() && svc.ports[j].name == port.name) {
        diag.error(w, key_path(p, "name"), quote(port.name) + " is already the name of " +
                                           element_path("spec.ports", j));
      }
      if (svc.ports[j].port == port.port && svc.ports[j].protocol == port.protocol) {
        diag.error(w, key_path(p, "port"), what + " is listed twice in this service");
      }
    }
    if (svc.cluster_ip) {
      auto key = std::make_tuple(svc.cluster_ip->as_v4().host(), port.port, port.protocol);
      auto [it, inserted] = vip_ports.emplace(key, svc.ns + "/" + svc.name);
      if (!inserted && it->second != svc.ns + "/" + svc.name) {
        diag.error(w, key_path(p, "port"), dp::to_string(svc.cluster_ip->as_v4()) + ":" + what +
                                           " is already served by service " + it->second);
      }
    }
  }
  if (svc.endpoints.size() > kMaxEndpoints) {
    diag.error(w, "", std::to_string(svc.endpoints.size()) + " endpoints; at most " +
                          std::to_string(kMaxEndpoints) + " are allowed");
  }
  for (const EndpointConfig& e : svc.endpoints) {
    if (!e.hostname.empty() && !is_dns1123_label(e.hostname)) {
      diag.error(w, "", "endpoint " + dp::to_string(e.ip.as_v4()) + ": hostname " +
                            quote(e.hostname) + " is not a DNS-1123 label");
    }
  }
}

std::string describe(std::optional<size_t> item, std::string_view kind, const ObjectMeta& m) {
  std::string s = item ? element_path("items", *item) + " " : std::string();
  s += kind.empty() ? std::string("object") : std::string(kind);
  if (!m.name.empty()) s += " " + m.ns + "/" + m.name;
  return s;
}

bool is_list_kind(std::string_view kind) {
  return kind == "List" || kind == "ServiceList" || kind == "EndpointSliceList";
}

}  // namespace

Result<K8sImport> import_k8s_objects(std::string_view json_text, std::string_view source,
                                     const std::vector<ServiceConfig>& known) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line L, column C: ..."
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what.erase(0, pos + 2);
    return make_error(ErrorCode::kInvalidConfig, std::string(source) + ": " + what);
  }

  Diagnostics diag(source);
  std::vector<std::pair<std::optional<size_t>, const json*>> objects;
  if (!root.is_object()) {
    diag.error("", "", std::string(json_type(root)) +
                           " where a Kubernetes object or List is expected");
  } else if (root.contains("kind") && root["kind"].is_string() &&
             is_list_kind(root["kind"].get_ref<const std::string&>())) {
    Reader r(diag, root["kind"].get<std::string>());
    if (const json* items = r.get_array(root, "", "items", true)) {
      for (size_t i = 0; i < items->size(); ++i) objects.emplace_back(i, &(*items)[i]);
    }
  } else {
    objects.emplace_back(std::nullopt, &root);
  }

  std::vector<PendingService> services;
  std::vector<PendingSlice> slices;
  for (const auto& [item, obj] : objects) {
    if (!obj->is_object()) {
      diag.error(item ? element_path("items", *item) : std::string(), "",
                 std::string(json_type(*obj)) + " where a Kubernetes object is expected");
      continue;
    }
    Reader r(diag, describe(item, "", ObjectMeta{}));
    auto kind = r.get_string(*obj, "", "kind", true);
    auto api = r.get_string(*obj, "", "apiVersion", true);
    if (!kind || !api) continue;
    r.set_where(describe(item, *kind, ObjectMeta{}));
    ObjectMeta meta = read_meta(r, *obj);
    r.set_where(describe(item, *kind, meta));
    if (*kind == "Service") {
      if (*api != "v1") {
        r.error("apiVersion", quote(*api) + " is not supported for a Service; allowed: v1");
        continue;
      }
      services.push_back(read_service(r, *obj, meta));
    } else if (*kind == "EndpointSlice") {
      if (*api != "discovery.k8s.io/v1") {
        r.error("apiVersion", quote(*api) +
                                  " is not supported for an EndpointSlice; allowed: "
                                  "discovery.k8s.io/v1");
        continue;
      }
      if (auto s = read_slice(r, *obj, meta)) slices.push_back(std::move(*s));
    } else if (*kind == "Endpoints") {
      r.error("kind", "v1 Endpoints are not supported; use the EndpointSlices of the service "
                      "(kubectl get endpointslices)");
    } else {
      r.error("kind", quote(*kind) + " is not supported; allowed: Service, EndpointSlice, or a "
                                     "List of them");
    }
  }

  std::map<std::pair<std::string, std::string>, size_t> by_name;
  for (size_t i = 0; i < services.size(); ++i) {
    const ServiceConfig& svc = services[i].cfg;
    auto [it, inserted] = by_name.emplace(std::make_pair(svc.ns, svc.name), i);
    if (!inserted) {
      diag.error(services[i].where, "", "service " + svc.ns + "/" + svc.name +
                                            " is already defined by " + services[it->second].where);
    }
  }
  const size_t service_objects = services.size();
  std::vector<bool> endpoints_given(services.size(), false);
  for (const PendingSlice& slice : slices) {
    auto it = by_name.find({slice.ns, slice.service});
    if (it == by_name.end()) {
      auto running = std::find_if(known.begin(), known.end(), [&](const ServiceConfig& k) {
        return k.ns == slice.ns && k.name == slice.service;
      });
      if (running == known.end()) {
        diag.warning(slice.where, "", "skipped: its service " + slice.ns + "/" + slice.service +
                                          " is neither in the input nor running");
        continue;
      }
      // Its target ports were resolved when it was applied: nothing to resolve.
      PendingService ps;
      ps.cfg = *running;
      ps.cfg.endpoints.clear();
      ps.where = "running service " + running->ns + "/" + running->name;
      ps.target_names.assign(ps.cfg.ports.size(), std::string());
      ps.target_resolved.assign(ps.cfg.ports.size(), true);
      ps.resolved_by.assign(ps.cfg.ports.size(), std::string());
      it = by_name.emplace(std::make_pair(slice.ns, slice.service), services.size()).first;
      services.push_back(std::move(ps));
      endpoints_given.push_back(false);
    }
    endpoints_given[it->second] = true;
    merge_slice(diag, services[it->second], slice);
  }
  std::map<std::tuple<uint32_t, uint16_t, dp::Proto>, std::string> vip_ports;
  std::vector<std::vector<bool>> target_unresolved;
  for (PendingService& ps : services) {
    target_unresolved.emplace_back(ps.cfg.ports.size(), false);
    for (size_t i = 0; i < ps.cfg.ports.size(); ++i) {
      if (ps.target_names[i].empty() || ps.target_resolved[i]) continue;
      target_unresolved.back()[i] = true;
      // Without endpoints nothing is forwarded; the port number stands in so
      // the service (and its SRV records) still loads.
      ps.cfg.ports[i].target_port = ps.cfg.ports[i].port;
      diag.warning(ps.where, element_path("spec.ports", i) + ".targetPort",
                   quote(ps.target_names[i]) + " is not resolved: no EndpointSlice with "
                                               "endpoints names it; using port " +
                       std::to_string(ps.cfg.ports[i].port));
    }
    validate_service(diag, ps, vip_ports);
  }

  if (diag.has_errors()) return make_error(ErrorCode::kInvalidConfig, diag.joined_errors());
  K8sImport out;
  out.service_objects = service_objects;
  out.endpoints_given = std::move(endpoints_given);
  out.target_unresolved = std::move(target_unresolved);
  out.services.reserve(services.size());
  for (PendingService& ps : services) out.services.push_back(std::move(ps.cfg));
  out.warnings = diag.take_warnings();
  return out;
}

}  // namespace podgate::ctl
