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
//
// The first pass is control/config/k8s_read.cpp; this file is the second pass
// and import_k8s_objects().

#include "control/config/k8s_objects.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "control/config/json_input.hpp"
#include "control/config/k8s_read.hpp"
#include "control/config/validate.hpp"

namespace podgate::ctl {

using namespace k8s_detail;

namespace {

// ---- second pass: merge slices into services ----

// "NS/NAME" in a message: names come from the input, so one with a control
// byte is quoted and escaped (issue 15) until validation refuses it.
std::string object_name(std::string_view ns, std::string_view name) {
  return plain_or_quoted(std::string(ns) + "/" + std::string(name));
}

// Up to this many endpoints a scan finds a duplicate faster than a hash set
// (most services have about ten).
constexpr size_t kScanAtMost = 32;

// Whether ps's service lists `ip` already.  A scan for each endpoint is
// quadratic in a big service: 65,534 endpoints come in 656 slices of 100.
bool already_listed(PendingService& ps, const dp::IpAddr& ip) {
  const std::vector<EndpointConfig>& eps = ps.cfg.endpoints;
  if (eps.size() <= kScanAtMost) {
    return std::any_of(eps.begin(), eps.end(), [&ip](const EndpointConfig& x) { return x.ip == ip; });
  }
  for (; ps.ips_indexed < eps.size(); ++ps.ips_indexed) ps.endpoint_ips.insert(eps[ps.ips_indexed].ip);
  return ps.endpoint_ips.count(ip) != 0;
}

// `running`: ps is a running service a slice alone belongs to.  Returns
// whether the slice counts: false when it is skipped, with a warning.
bool merge_slice(Diagnostics& diag, PendingService& ps, const PendingSlice& slice, bool running) {
  Reader r(diag, slice.where);
  ServiceConfig& svc = ps.cfg;
  if (svc.type == ServiceType::kExternalName) {
    r.warning("", "skipped: service " + object_name(svc.ns, svc.name) +
                      " is an ExternalName service and has no endpoints");
    return false;
  }
  if (!ps.families.empty() &&
      std::find(ps.families.begin(), ps.families.end(), slice.family) == ps.families.end()) {
    // A slice of a family the service has no cluster IP for (or, headless,
    // does not list in ipFamilies): kube-proxy ignores it, and so does podgate.
    r.warning("addressType", "skipped: service " + object_name(svc.ns, svc.name) + " has no " +
                                 std::string(dp::family_name(slice.family)) + " cluster IP" +
                                 (svc.headless() ? " family (ipFamilies)" : "") + ", so its " +
                                 std::string(dp::family_name(slice.family)) +
                                 " endpoints are not used");
    return false;
  }
  if (slice.endpoints.empty()) return true;  // an empty slice says nothing about ports

  // EndpointSlice ports carry the Service port's *name* and the number its
  // targetPort resolved to in this slice's Pods (the EndpointSlice controller
  // groups Pods whose named container ports resolve alike into one slice).
  // kube-proxy forwards to the slice's number and never reads the Service's
  // targetPort, so every port the slice names takes the slice's number:
  // a named targetPort resolves so, a running service's follows a rollout
  // that renumbers a container port, and a numeric one gives way to what a
  // selectorless service's own slices say (they may say anything).  A port
  // the slice does not name keeps its number (running, or numeric), or
  // cannot be resolved (named).
  for (size_t i = 0; i < svc.ports.size(); ++i) {
    const bool named = !ps.target_names[i].empty();
    const ServicePortConfig& port = svc.ports[i];
    auto it = std::find_if(slice.ports.begin(), slice.ports.end(), [&](const SlicePort& sp) {
      return sp.name == port.name && sp.protocol == port.protocol;
    });
    const std::string what =
        "service " + object_name(svc.ns, svc.name) + " port " + quote(port.name) +
        (named ? " (targetPort " + quote(ps.target_names[i]) + ")" : "");
    if (it == slice.ports.end()) {
      if (running || !named) continue;
      r.error("ports", "no port named " + quote(port.name) + "/" +
                           std::string(dp::proto_name(port.protocol)) + ", needed to resolve " +
                           what);
      continue;
    }
    if (!ps.target_resolved[i]) {
      svc.ports[i].target_port = it->port;
      ps.target_resolved[i] = true;
      ps.resolved_by[i] = object_name(slice.ns, slice.name);
    } else if (svc.ports[i].target_port != it->port) {
      // podgate has one target port per service port; Pods disagreeing on
      // what a named port means cannot be forwarded to.
      r.error("ports", what + " resolves to " + std::to_string(it->port) + " here but to " +
                           std::to_string(svc.ports[i].target_port) + " in EndpointSlice " +
                           ps.resolved_by[i] + "; podgate needs one target port per service port");
    }
  }

  for (const EndpointConfig& e : slice.endpoints) {
    // "Endpoints may be duplicated across slices" while the controller moves
    // them (EndpointSlice docs, "Duplicate endpoints"): keep the first.
    if (already_listed(ps, e.ip)) {
      r.warning("endpoints", dp::to_string(e.ip) + " of service " + object_name(svc.ns, svc.name) +
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
  return true;
}

// The essential rules load_config() applies to a [[services]] table.
void validate_service(Diagnostics& diag, const PendingService& ps,
                      std::map<std::tuple<dp::IpAddr, uint16_t, dp::Proto>, std::string>& vip_ports) {
  const ServiceConfig& svc = ps.cfg;
  Reader r(diag, ps.where);
  if (!is_dns1123_label(svc.ns)) {
    r.error("metadata.namespace", not_dns1123_label(svc.ns));
  }
  if (!is_dns1035_label(svc.name)) {
    r.error("metadata.name", not_dns1035_label(svc.name));
  }
  if (svc.type == ServiceType::kExternalName) {
    if (!svc.external_name.empty() && !is_dns_name(svc.external_name)) {
      r.error("spec.externalName", not_dns_name(svc.external_name));
    }
    return;
  }
  if (svc.cluster_ip && svc.ports.empty()) {
    r.error("spec.ports", "empty; a service with a cluster IP needs at least one port");
  }
  const std::string self = object_name(svc.ns, svc.name);
  for (size_t i = 0; i < svc.ports.size(); ++i) {
    const ServicePortConfig& port = svc.ports[i];
    const std::string p = element_path("spec.ports", i);
    if (svc.ports.size() > 1 && port.name.empty()) {
      r.error(p, "missing required key \"name\" (required when a service has several ports)");
    }
    if (!port.name.empty() && !is_dns1123_label(port.name)) {
      r.error(key_path(p, "name"), quote(port.name) + " is not a DNS-1123 label");
    }
    if (port.port == 0) continue;  // already reported
    const std::string what = port_and_protocol(port.port, port.protocol);
    for (size_t j = 0; j < i; ++j) {
      if (!port.name.empty() && svc.ports[j].name == port.name) {
        r.error(key_path(p, "name"),
                quote(port.name) + " is already the name of " + element_path("spec.ports", j));
      }
      if (svc.ports[j].port == port.port && svc.ports[j].protocol == port.protocol) {
        r.error(key_path(p, "port"), what + " is listed twice in this service");
      }
    }
    for (const dp::IpAddr& vip : svc.cluster_ips()) {
      auto [it, inserted] = vip_ports.emplace(std::make_tuple(vip, port.port, port.protocol), self);
      if (!inserted && it->second != self) {
        r.error(key_path(p, "port"),
                vip_port_text(vip, what) + " is already served by service " + it->second);
      }
    }
  }
  if (svc.endpoints.size() > kMaxEndpoints) {
    r.error("", std::to_string(svc.endpoints.size()) + " endpoints; at most " +
                    std::to_string(kMaxEndpoints) + " are allowed");
  }
  for (const EndpointConfig& e : svc.endpoints) {
    if (!e.hostname.empty() && !is_dns1123_label(e.hostname)) {
      r.error("", "endpoint " + dp::to_string(e.ip) + ": hostname " + quote(e.hostname) +
                      " is not a DNS-1123 label");
    }
  }
}

// The families ps's endpoints may be of (K8sImport::endpoint_families).
std::vector<dp::Family> endpoint_families(const PendingService& ps) {
  if (ps.cfg.type == ServiceType::kExternalName) return {};
  if (ps.families.empty()) return {dp::Family::kIpv4, dp::Family::kIpv6};  // headless, no ipFamilies
  return ps.families;
}

std::string describe(std::optional<size_t> item, std::string_view kind, const ObjectMeta& m) {
  std::string s = item ? element_path("items", *item) + " " : std::string();
  s += kind.empty() ? std::string("object") : plain_or_quoted(kind);
  if (!m.name.empty()) s.append(1, ' ').append(object_name(m.ns, m.name));  // not " " + ...: -Wrestrict at -O3
  return s;
}

bool is_list_kind(std::string_view kind) {
  return kind == "List" || kind == "ServiceList" || kind == "EndpointSliceList";
}

}  // namespace

Result<K8sImport> import_k8s_objects(std::string_view json_text, std::string_view source,
                                     const ServiceList& known) {
  Diagnostics diag(source);
  const Location document = diag.at_object("");
  JsonInput input = parse_json_input(json_text);
  if (input.syntax) diag.error(document, "", *input.syntax);
  if (!input.syntax && input.duplicate) {
    // The path is part of the text: a key "" twice at the top level has an
    // empty path, and the message still reads "SOURCE: : the key ...".
    diag.error(document, "",
               *input.duplicate + ": the key appears twice in one object; which one counts is "
                                  "not defined (RFC 8259 §4), so neither does");
  }
  if (diag.has_errors()) return make_error(ErrorCode::kInvalidConfig, diag.error_report());
  const json root = std::move(input.value);

  std::vector<std::pair<std::optional<size_t>, const json*>> objects;
  // The items' kind and apiVersion where they may leave them out: the API
  // server's typed lists (GET /api/v1/services) do (only kubectl's `List`
  // fills them in), and their own kind names the items'.
  std::optional<std::string> item_kind, item_api;
  if (!root.is_object()) {
    diag.error(document, "", expected_type("a Kubernetes object or List", root));
  } else if (root.contains("kind") && root["kind"].is_string() &&
             is_list_kind(root["kind"].get_ref<const std::string&>())) {
    const std::string& list_kind = root["kind"].get_ref<const std::string&>();
    Reader r(diag, list_kind);
    if (list_kind != "List") {
      item_kind = list_kind.substr(0, list_kind.size() - 4);  // "ServiceList" -> "Service"
      if (auto api = r.get_string(root, "", "apiVersion")) item_api = *api;
    }
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
      Reader(diag, item ? element_path("items", *item) : std::string())
          .wrong_type("", *obj, "a Kubernetes object");
      continue;
    }
    Reader r(diag, describe(item, "", ObjectMeta{}));
    auto kind = r.get_string(*obj, "", "kind", !item_kind);
    auto api = r.get_string(*obj, "", "apiVersion", !item_api);
    if (!kind && !obj->contains("kind")) kind = item_kind;
    if (!api && !obj->contains("apiVersion")) api = item_api;
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
      Reader(diag, services[i].where)
          .error("", "service " + object_name(svc.ns, svc.name) + " is already defined by " +
                         services[it->second].where);
    }
  }
  // The same EndpointSlice twice (a List holding an object twice, or two
  // files concatenated): its endpoints would be merged twice.
  std::map<std::pair<std::string, std::string>, const PendingSlice*> slice_names;
  for (const PendingSlice& slice : slices) {
    auto [it, inserted] = slice_names.emplace(std::make_pair(slice.ns, slice.name), &slice);
    if (!inserted) {
      Reader(diag, slice.where)
          .error("", "EndpointSlice " + object_name(slice.ns, slice.name) + " is already defined by " +
                         it->second->where);
    }
  }
  const size_t service_objects = services.size();
  std::vector<std::vector<dp::Family>> families_given(services.size());
  for (const PendingSlice& slice : slices) {
    auto it = by_name.find({slice.ns, slice.service});
    if (it == by_name.end()) {
      auto running = std::find_if(known.begin(), known.end(), [&](const ServiceConfig& k) {
        return k.ns == slice.ns && k.name == slice.service;
      });
      if (running == known.end()) {
        Reader(diag, slice.where)
            .warning("", "skipped: its service " + object_name(slice.ns, slice.service) +
                             " is neither in the input nor running");
        continue;
      }
      // Its target ports are resolved again by the slices (merge_slice).
      // It takes the slices of its cluster IPs' families, as read_service()
      // has it for a Service; a running headless service no longer knows
      // its ipFamilies, so it takes both.
      PendingService ps;
      ps.cfg = *running;
      ps.cfg.endpoints.clear();
      ps.where = "running service " + running->ns + "/" + running->name;
      ps.target_names.assign(ps.cfg.ports.size(), std::string());
      ps.target_resolved.assign(ps.cfg.ports.size(), false);
      ps.resolved_by.assign(ps.cfg.ports.size(), std::string());
      for (const dp::IpAddr& ip : ps.cfg.cluster_ips()) ps.families.push_back(ip.family);
      it = by_name.emplace(std::make_pair(slice.ns, slice.service), services.size()).first;
      services.push_back(std::move(ps));
      families_given.emplace_back();
    }
    std::vector<dp::Family>& given = families_given[it->second];
    if (merge_slice(diag, services[it->second], slice, it->second >= service_objects) &&
        std::find(given.begin(), given.end(), slice.family) == given.end()) {
      given.push_back(slice.family);
    }
  }
  std::map<std::tuple<dp::IpAddr, uint16_t, dp::Proto>, std::string> vip_ports;
  std::vector<std::vector<bool>> target_unresolved;
  for (PendingService& ps : services) {
    target_unresolved.emplace_back(ps.cfg.ports.size(), false);
    for (size_t i = 0; i < ps.cfg.ports.size(); ++i) {
      if (ps.target_names[i].empty() || ps.target_resolved[i]) continue;
      target_unresolved.back()[i] = true;
      // Without endpoints nothing is forwarded; the port number stands in so
      // the service (and its SRV records) still loads.
      ps.cfg.ports[i].target_port = ps.cfg.ports[i].port;
      Reader(diag, ps.where)
          .warning(element_path("spec.ports", i) + ".targetPort",
                   quote(ps.target_names[i]) + " is not resolved: no EndpointSlice with "
                                               "endpoints names it; using port " +
                       std::to_string(ps.cfg.ports[i].port));
    }
    validate_service(diag, ps, vip_ports);
  }

  if (diag.has_errors()) return make_error(ErrorCode::kInvalidConfig, diag.error_report());
  K8sImport out;
  out.service_objects = service_objects;
  out.families_given = std::move(families_given);
  out.target_unresolved = std::move(target_unresolved);
  out.services.reserve(services.size());
  for (PendingService& ps : services) {
    out.endpoint_families.push_back(endpoint_families(ps));
    out.services.push_back(std::move(ps.cfg));
  }
  out.warnings = diag.warning_lines();
  return out;
}

}  // namespace podgate::ctl
