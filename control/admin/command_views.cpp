#include "control/admin/command_views.hpp"
#include "control/admin/control_commands.hpp"

#include <rte_ethdev.h>

#include "control/config/config_health.hpp"
#include "control/config/config_writer.hpp"
#include "control/config/diagnostics.hpp"
#include "control/config/memory_plan.hpp"

namespace podgate::ctl {

using nlohmann::json;

// ---- request arguments ----

// request[key] as a string; nullopt when absent and optional.
Result<std::optional<std::string>> string_arg(const json& req, const char* key, bool required) {
  auto it = req.find(key);
  if (it == req.end()) {
    if (!required) return std::optional<std::string>{};
    return make_error(ErrorCode::kInvalidRequest, std::string("missing \"") + key + "\"");
  }
  if (!it->is_string()) {
    return make_error(ErrorCode::kInvalidRequest, std::string("\"") + key +
                                                      "\" must be a string, found " +
                                                      it->type_name());
  }
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::optional<bool>> bool_arg(const json& req, const char* key) {
  auto it = req.find(key);
  if (it == req.end()) return std::optional<bool>{};
  if (!it->is_boolean()) {
    return make_error(ErrorCode::kInvalidRequest, std::string("\"") + key +
                                                      "\" must be true or false, found " +
                                                      it->type_name());
  }
  return std::optional<bool>(it->get<bool>());
}

Result<std::optional<int64_t>> int_arg(const json& req, const char* key, int64_t lo, int64_t hi) {
  auto it = req.find(key);
  if (it == req.end()) return std::optional<int64_t>{};
  if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi) {
    return make_error(ErrorCode::kInvalidRequest, std::string("\"") + key +
                                                      "\" must be an integer in " +
                                                      std::to_string(lo) + ".." +
                                                      std::to_string(hi) + ", found " + it->dump());
  }
  return std::optional<int64_t>(it->get<int64_t>());
}

Result<std::pair<std::string, std::string>> name_arg(const json& req, const char* key) {
  auto name = string_arg(req, key, true);
  if (!name) return std::move(name).error();
  const std::string& full = **name;
  const size_t slash = full.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == full.size() ||
      full.find('/', slash + 1) != std::string::npos) {
    return make_error(ErrorCode::kInvalidRequest, std::string("\"") + key +
                                                      "\" must be NAMESPACE/NAME, e.g. "
                                                      "\"default/my-app\"; found " +
                                                      quote(full));
  }
  return std::make_pair(full.substr(0, slash), full.substr(slash + 1));
}

Result<const ServiceConfig*> service_arg(const json& req, const Config& config) {
  auto name = name_arg(req);
  if (!name) return std::move(name).error();
  for (const ServiceConfig& s : config.services) {
    if (s.ns == name->first && s.name == name->second) return &s;
  }
  return make_error(ErrorCode::kNotFound,
                    "no service " + plain_or_quoted(name->first + "/" + name->second));
}

// ---- JSON views of config objects ----

std::string ip_text(const dp::IpAddr& ip) { return dp::to_string(ip); }

std::optional<dp::Ip4> ipv4_cluster_ip(const ServiceConfig& s) {
  for (const dp::IpAddr& ip : s.cluster_ips()) {
    if (ip.is_v4()) return ip.as_v4();
  }
  return std::nullopt;
}

json port_json(const ServicePortConfig& p) {
  return {{"name", p.name},
          {"port", p.port},
          {"target_port", p.target_port},
          {"protocol", std::string(dp::proto_name(p.protocol))}};
}

json endpoint_conditions_json(const EndpointConfig& e) {
  return {{"ip", ip_text(e.ip)},   {"pod", e.pod},         {"hostname", e.hostname},
          {"subdomain", e.subdomain}, {"ready", e.ready},  {"serving", e.serving},
          {"terminating", e.terminating}, {"weight", e.weight}};
}

json endpoint_json(const EndpointConfig& e, const NewFlowRule& rule) {
  json j = endpoint_conditions_json(e);
  j["state"] = endpoint_state(e, rule);
  return j;
}

json service_summary(const ServiceConfig& s) {
  json j = {{"name", s.ns + "/" + s.name},
            {"namespace", s.ns},
            {"service", s.name},
            {"type", s.type == ServiceType::kExternalName ? "ExternalName" : "ClusterIP"},
            {"headless", s.headless()}};
  if (s.type == ServiceType::kExternalName) {
    j["cluster_ip"] = nullptr;
    j["external_name"] = s.external_name;
  } else {
    j["cluster_ip"] = s.cluster_ip ? ip_text(*s.cluster_ip) : "None";
    // clusterIPs as the Service API shows them: [primary, other family].
    j["cluster_ips"] = json::array();
    for (const dp::IpAddr& ip : s.cluster_ips()) j["cluster_ips"].push_back(ip_text(ip));
  }
  j["ports"] = json::array();
  for (const ServicePortConfig& p : s.ports) j["ports"].push_back(port_json(p));
  const NewFlowRule rule = new_flow_rule(s);
  size_t ready = 0, fallback = 0, drain = 0;
  for (const EndpointConfig& e : s.endpoints) {
    const std::string_view state = endpoint_state(e, rule);
    ready += state == "ready";
    fallback += state == "fallback";
    drain += state == "draining";
  }
  j["endpoint_counts"] = {
      {"ready", ready}, {"fallback", fallback}, {"draining", drain}, {"total", s.endpoints.size()}};
  return j;
}

json health_check_json(const HealthCheckConfig& h) {
  json j = {{"kind", health_kind_name(h.kind)},
            {"interval", duration_text(h.interval_ms)},
            {"timeout", duration_text(h.timeout_ms)},
            {"rise", h.rise},
            {"fall", h.fall},
            {"on_failure", on_failure_name(h.on_failure)},
            {"all_unhealthy", all_unhealthy_name(h.all_unhealthy)}};
  if (h.port) j["port"] = *h.port;
  if (h.kind == HealthKind::kHttp) {
    j["method"] = h.method;
    j["path"] = h.path;
    if (!h.host.empty()) j["host"] = h.host;
    j["expect_status"] = json::array();
    for (const StatusRange& r : h.expect_status) j["expect_status"].push_back(status_range_text(r));
  }
  if (h.kind == HealthKind::kDns) {
    j["query"] = h.query;
    j["query_type"] = query_type_name(h.query_type);
    if (h.expect_address) j["expect_address"] = dp::to_string(*h.expect_address);
  }
  return j;
}

json service_detail(const ServiceConfig& s, const DataplaneConfig& d) {
  json j = service_summary(s);
  j["session_affinity"] = s.session_affinity == SessionAffinity::kClientIp ? "ClientIP" : "None";
  if (s.session_affinity == SessionAffinity::kClientIp) j["timeout_seconds"] = s.affinity_timeout;
  j["publish_not_ready_addresses"] = s.publish_not_ready_addresses;
  if (s.cluster_ip) j["maglev_table_size"] = maglev_table_size_of(s, d);  // chosen or set
  if (s.health_check) j["health_check"] = health_check_json(*s.health_check);
  j["endpoints"] = json::array();
  const NewFlowRule rule = new_flow_rule(s);
  for (const EndpointConfig& e : s.endpoints) j["endpoints"].push_back(endpoint_json(e, rule));
  return j;
}

json link_speed_json(bool known, uint32_t speed_mbps) {
  if (!known || speed_mbps == RTE_ETH_SPEED_NUM_UNKNOWN) return nullptr;
  return speed_mbps;
}

}  // namespace podgate::ctl
