#include "control/control_commands.hpp"

#include <array>
#include <string_view>

#include <rte_ethdev.h>

#include "control/appliance.hpp"
#include "control/control_socket.hpp"
#include "control/dns/message.hpp"
#include "control/log.hpp"

namespace podgate::ctl {

namespace {

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

// The service request["name"] ("NAMESPACE/NAME") names.
Result<const ServiceConfig*> service_arg(const json& req, const Config& config) {
  auto name = string_arg(req, "name", true);
  if (!name) return std::move(name).error();
  const std::string& full = **name;
  const size_t slash = full.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == full.size()) {
    return make_error(ErrorCode::kInvalidRequest,
                      "\"name\" must be NAMESPACE/NAME, e.g. \"default/my-app\"; found \"" + full +
                          "\"");
  }
  const std::string_view ns(full.data(), slash);
  const std::string_view svc(full.data() + slash + 1, full.size() - slash - 1);
  for (const ServiceConfig& s : config.services) {
    if (s.ns == ns && s.name == svc) return &s;
  }
  return make_error(ErrorCode::kNotFound, "no service " + full);
}

// ---- JSON views of config objects ----

std::string ip_text(const dp::IpAddr& ip) { return dp::to_string(ip.as_v4()); }

bool draining(const EndpointConfig& e) { return !e.ready && e.serving && e.terminating; }

std::string_view state_of(const EndpointConfig& e) {
  if (e.ready && !e.terminating) return "ready";
  return draining(e) ? "draining" : "not_ready";
}

json port_json(const ServicePortConfig& p) {
  return {{"name", p.name},
          {"port", p.port},
          {"target_port", p.target_port},
          {"protocol", std::string(dp::proto_name(p.protocol))}};
}

json endpoint_json(const EndpointConfig& e) {
  return {{"ip", ip_text(e.ip)},   {"pod", e.pod},         {"hostname", e.hostname},
          {"subdomain", e.subdomain}, {"ready", e.ready},  {"serving", e.serving},
          {"terminating", e.terminating}, {"weight", e.weight}, {"state", state_of(e)}};
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
  }
  j["ports"] = json::array();
  for (const ServicePortConfig& p : s.ports) j["ports"].push_back(port_json(p));
  size_t ready = 0, drain = 0;
  for (const EndpointConfig& e : s.endpoints) {
    ready += state_of(e) == "ready";
    drain += draining(e);
  }
  j["endpoint_counts"] = {{"ready", ready}, {"draining", drain}, {"total", s.endpoints.size()}};
  return j;
}

json service_detail(const ServiceConfig& s, const DataplaneConfig& d) {
  json j = service_summary(s);
  j["session_affinity"] = s.session_affinity == SessionAffinity::kClientIp ? "ClientIP" : "None";
  if (s.session_affinity == SessionAffinity::kClientIp) j["timeout_seconds"] = s.affinity_timeout;
  j["publish_not_ready_addresses"] = s.publish_not_ready_addresses;
  if (s.cluster_ip) j["maglev_table_size"] = s.maglev_table_size.value_or(d.maglev_table_size);
  j["endpoints"] = json::array();
  for (const EndpointConfig& e : s.endpoints) j["endpoints"].push_back(endpoint_json(e));
  return j;
}

json counters_json(const dp::WorkerCounters& c) {
  json counters = json::object();
#define PODGATE_X(name, help) counters[#name] = c.name.get();
  PODGATE_WORKER_COUNTERS(PODGATE_X)
#undef PODGATE_X
  json drops = json::object();
  for (size_t r = 0; r < dp::kDropReasonCount; ++r) {
    drops[std::string(dp::drop_reason_name(static_cast<dp::DropReason>(r)))] = c.drops[r].get();
  }
  return {{"counters", std::move(counters)}, {"drops", std::move(drops)}};
}

json dns_counters_json(const dns::DnsServer& server) {
  static constexpr std::array<std::string_view, 6> kRcodes = {
      "noerror", "formerr", "servfail", "nxdomain", "notimp", "refused"};
  const dns::DnsCounters& c = server.counters();
  json answers = json::object();
  for (size_t r = 0; r < c.rcodes.size(); ++r) {
    if (r < kRcodes.size()) {
      answers[std::string(kRcodes[r])] = c.rcodes[r];
    } else if (c.rcodes[r] != 0) {
      answers["rcode" + std::to_string(r)] = c.rcodes[r];
    }
  }
  return {{"queries", {{"udp", c.queries[0]}, {"tcp", c.queries[1]}, {"dataplane", c.queries[2]}}},
          {"answers", std::move(answers)},
          {"truncated", c.truncated},
          {"silent", c.silent},
          {"dropped", c.dropped},
          {"tcp_open", server.tcp_connections()},
          {"tcp_accepted", c.tcp_accepted},
          {"tcp_idle_closed", c.tcp_idle_closed},
          {"tcp_evicted", c.tcp_evicted},
          {"tcp_errors", c.tcp_errors}};
}

// ---- DNS type names (RFC 1035 §3.2.2, RFC 3596, RFC 2782; RFC 3597 TYPEnn) ----

constexpr std::array<std::pair<std::string_view, uint16_t>, 12> kTypes = {{
    {"A", dns::rrtype::kA}, {"NS", dns::rrtype::kNs}, {"CNAME", dns::rrtype::kCname}, {"SOA", dns::rrtype::kSoa},
    {"PTR", dns::rrtype::kPtr}, {"MX", 15}, {"TXT", dns::rrtype::kTxt}, {"AAAA", dns::rrtype::kAaaa},
    {"SRV", dns::rrtype::kSrv}, {"OPT", dns::rrtype::kOpt}, {"AXFR", dns::rrtype::kAxfr}, {"ANY", dns::rrtype::kAny},
}};

std::optional<uint16_t> parse_type(std::string_view s) {
  std::string upper;
  for (char c : s) upper += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  for (const auto& [name, value] : kTypes) {
    if (name == upper) return value;
  }
  if (upper.size() > 4 && upper.size() <= 9 && upper.starts_with("TYPE") &&
      upper.find_first_not_of("0123456789", 4) == std::string::npos) {
    uint32_t v = std::stoul(upper.substr(4));
    if (v <= 65535) return static_cast<uint16_t>(v);
  }
  return std::nullopt;
}

std::string type_text(uint16_t t) {
  for (const auto& [name, value] : kTypes) {
    if (value == t) return std::string(name);
  }
  return "TYPE" + std::to_string(t);
}

std::string rcode_text(dns::Rcode r) {
  switch (r) {
    case dns::Rcode::kNoError: return "NOERROR";
    case dns::Rcode::kFormErr: return "FORMERR";
    case dns::Rcode::kServFail: return "SERVFAIL";
    case dns::Rcode::kNxDomain: return "NXDOMAIN";
    case dns::Rcode::kNotImp: return "NOTIMP";
    case dns::Rcode::kRefused: return "REFUSED";
    case dns::Rcode::kBadVers: return "BADVERS";
  }
  return "RCODE" + std::to_string(static_cast<unsigned>(r));
}

json records_json(const std::vector<dns::Record>& records) {
  json out = json::array();
  for (const dns::Record& r : records) {
    if (r.type == dns::rrtype::kOpt) continue;  // a pseudo-record, not data
    out.push_back({{"name", r.owner}, {"type", type_text(r.type)}, {"ttl", r.ttl},
                   {"data", r.data}});
  }
  return out;
}

// ---- commands ----

Result<json> status(const Appliance& app) {
  const Config& cfg = app.config();
  json ports = json::array();
  for (size_t i = 0; i < app.ports().size(); ++i) {
    const dp::PortInfo& p = app.ports()[i];
    rte_eth_link link{};
    const bool known = rte_eth_link_get_nowait(p.port_id, &link) == 0;
    ports.push_back({{"name", cfg.ports[i].name},
                     {"device", cfg.ports[i].device},
                     {"port_id", p.port_id},
                     {"driver", p.driver},
                     {"mac", dp::to_string(p.mac)},
                     {"address", dp::to_string(cfg.ports[i].address)},
                     {"link_up", known && link.link_status == RTE_ETH_LINK_UP},
                     {"speed_mbps", known ? link.link_speed : 0}});
  }
  return json{{"podgate_version", app.version()},
              {"uptime_seconds", app.uptime_ms() / 1000},
              {"workers", app.worker_count()},
              {"config_file", cfg.source},
              {"generation", app.generation()},
              {"services", cfg.services.size()},
              {"ports", std::move(ports)}};
}

Result<json> services(const Appliance& app) {
  json list = json::array();
  for (const ServiceConfig& s : app.config().services) list.push_back(service_summary(s));
  return json{{"services", std::move(list)}};
}

Result<json> service(const Appliance& app, const json& req) {
  auto s = service_arg(req, app.config());
  if (!s) return std::move(s).error();
  return json{{"service", service_detail(**s, app.config().dataplane)}};
}

Result<json> stats(const Appliance& app) {
  json workers = json::array();
  for (size_t w = 0; w < app.worker_count(); ++w) {
    json j = counters_json(app.worker_counters(w));
    j["worker"] = w;
    workers.push_back(std::move(j));
  }
  json control = counters_json(app.punt().counters());
  control["waiting_for_arp"] = app.punt().waiting();
  json ports = json::array();
  for (size_t i = 0; i < app.ports().size(); ++i) {
    rte_eth_stats s{};
    rte_eth_stats_get(app.ports()[i].port_id, &s);
    ports.push_back({{"name", app.config().ports[i].name},
                     {"ipackets", s.ipackets}, {"opackets", s.opackets},
                     {"ibytes", s.ibytes}, {"obytes", s.obytes},
                     {"imissed", s.imissed}, {"ierrors", s.ierrors},
                     {"oerrors", s.oerrors}, {"rx_nombuf", s.rx_nombuf}});
  }
  const ControlCounters& cc = app.control_socket().counters();
  return json{{"workers", std::move(workers)},
              {"control", std::move(control)},
              {"ports", std::move(ports)},
              {"dns", dns_counters_json(app.dns())},
              {"snapshot", {{"generation", app.generation()},
                            {"awaiting_free", app.publisher().pending_frees()},
                            {"freed", app.publisher().freed()}}},
              {"control_socket", {{"connections", app.control_socket().connections()},
                                  {"accepted", cc.accepted}, {"requests", cc.requests},
                                  {"errors", cc.errors}, {"refused", cc.refused},
                                  {"closed_oversize", cc.closed_oversize},
                                  {"closed_backlog", cc.closed_backlog}}}};
}

// Slots per endpoint of each service port, from the live Snapshot's table
// (Maglev, NSDI'16 §3.4: an endpoint's share of new flows is its share of slots).
Result<json> maglev(const Appliance& app, const json& req) {
  auto found = service_arg(req, app.config());
  if (!found) return std::move(found).error();
  const ServiceConfig& s = **found;
  if (!s.cluster_ip) {
    return make_error(ErrorCode::kInvalidRequest, s.ns + "/" + s.name +
                                                      " has no cluster IP and so no Maglev table");
  }
  std::optional<uint16_t> only;
  if (auto it = req.find("port"); it != req.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 65535) {
      return make_error(ErrorCode::kInvalidRequest, "\"port\" must be an integer in 1..65535");
    }
    only = static_cast<uint16_t>(it->get<int64_t>());
  }
  const dp::Snapshot& snap = app.snapshot();
  json ports = json::array();
  for (const ServicePortConfig& p : s.ports) {
    if (only && p.port != *only) continue;
    json j = port_json(p);
    const dp::ServiceData* sd =
        snap.find_service(s.cluster_ip->as_v4(), dp::to_be16(p.port), p.protocol);
    if (sd == nullptr) {
      return make_error(ErrorCode::kInternal, "no table for " + ip_text(*s.cluster_ip) + ":" +
                                                  std::to_string(p.port) + " in snapshot " +
                                                  std::to_string(snap.generation));
    }
    const size_t m = sd->maglev.size();
    std::vector<uint64_t> slots(sd->ready.size(), 0);
    for (uint16_t idx : sd->maglev) {
      if (idx < slots.size()) ++slots[idx];
    }
    json endpoints = json::array();
    for (size_t i = 0; i < sd->ready.size(); ++i) {
      const dp::Backend& b = sd->ready[i];
      std::string pod;
      for (const EndpointConfig& e : s.endpoints) {
        if (e.ip.as_v4() == b.ip) pod = e.pod;
      }
      endpoints.push_back({{"ip", dp::to_string(b.ip)},
                           {"target_port", dp::from_be16(b.port)},
                           {"pod", pod},
                           {"weight", i < sd->weights.size() ? sd->weights[i] : 0},
                           {"slots", slots[i]},
                           {"share_percent", m == 0 ? 0.0 : 100.0 * double(slots[i]) / double(m)}});
    }
    j["table_size"] = m;
    j["endpoints"] = std::move(endpoints);
    ports.push_back(std::move(j));
  }
  if (only && ports.empty()) {
    return make_error(ErrorCode::kNotFound,
                      s.ns + "/" + s.name + " has no port " + std::to_string(*only));
  }
  return json{{"name", s.ns + "/" + s.name}, {"generation", snap.generation},
              {"ports", std::move(ports)}};
}

// Asks the live Zone as a TCP client would (no truncation), through the
// same responder the listeners use.
Result<json> dns_query(const Appliance& app, const json& req) {
  auto name = string_arg(req, "name", true);
  if (!name) return std::move(name).error();
  auto type_name = string_arg(req, "type", false);
  if (!type_name) return std::move(type_name).error();
  auto qtype = parse_type(type_name->value_or("A"));
  if (!qtype) {
    return make_error(ErrorCode::kInvalidRequest,
                      "\"type\": \"" + **type_name + "\" is not a DNS type such as A, AAAA, SRV, "
                                                     "PTR, TXT, SOA, NS, CNAME, ANY or TYPE65");
  }
  std::vector<uint8_t> query = dns::make_query(**name, *qtype);
  if (query.empty()) {
    return make_error(ErrorCode::kInvalidRequest, "\"name\": \"" + **name +
                                                      "\" is not a DNS name (labels of at most "
                                                      "63 octets, at most 255 in all)");
  }
  const auto& zone = app.dns().zone();
  if (!zone) return make_error(ErrorCode::kInternal, "no DNS zone published yet");
  std::vector<uint8_t> answer(dns::kMaxMessage);
  dns::QueryContext ctx;
  ctx.transport = dns::Transport::kTcp;
  const size_t n = dns::respond(query, *zone, ctx, answer);
  if (n == 0) return make_error(ErrorCode::kInternal, "the responder gave no answer");
  auto msg = dns::decode_message({answer.data(), n});
  if (!msg) return make_error(ErrorCode::kInternal, "undecodable answer: " + msg.error().message);
  return json{{"name", **name},
              {"type", type_text(*qtype)},
              {"rcode", rcode_text(msg->rcode())},
              {"authoritative", (msg->header.flags & dns::kFlagAa) != 0},
              {"answer", records_json(msg->answer)},
              {"authority", records_json(msg->authority)},
              {"additional", records_json(msg->additional)}};
}

Result<json> reload(Appliance& app) {
  log_info("control socket: reloading " + app.config().source);
  if (auto r = app.reload(); !r) {
    log_error("reload refused, the running config stays:\n" + r.error().message);
    return std::move(r).error();
  }
  return json{{"generation", app.generation()}};
}

Result<json> config(const Appliance& app, const json& req) {
  auto action = string_arg(req, "action", true);
  if (!action) return std::move(action).error();
  if (**action != "dump") {
    return make_error(ErrorCode::kInvalidRequest,
                      "\"action\": \"" + **action + "\" is not supported; allowed: dump");
  }
  return json{{"config", config_to_json(app.config())}};
}

}  // namespace

json config_to_json(const Config& c) {
  const DataplaneConfig& d = c.dataplane;
  json ports = json::array();
  for (const PortConfig& p : c.ports) {
    json j = {{"name", p.name}, {"device", p.device}, {"address", dp::to_string(p.address)}};
    if (p.mac) j["mac"] = dp::to_string(*p.mac);
    if (p.mtu) j["mtu"] = *p.mtu;
    ports.push_back(std::move(j));
  }
  json routes = json::array();
  for (const RouteConfig& r : c.routes) {
    routes.push_back({{"prefix", dp::to_string(r.prefix)}, {"via", dp::to_string(r.via)}});
  }
  json neighbors = json::array();
  for (const NeighborConfig& n : c.neighbors) {
    neighbors.push_back({{"ip", dp::to_string(n.ip)}, {"mac", dp::to_string(n.mac)}});
  }
  json services = json::array();
  for (const ServiceConfig& s : c.services) {
    json j = {{"namespace", s.ns}, {"name", s.name}};
    if (s.type == ServiceType::kExternalName) {
      j["type"] = "ExternalName";
      j["external_name"] = s.external_name;
    } else {
      j["cluster_ip"] = s.cluster_ip ? ip_text(*s.cluster_ip) : "None";
    }
    j["session_affinity"] = s.session_affinity == SessionAffinity::kClientIp ? "ClientIP" : "None";
    if (s.session_affinity == SessionAffinity::kClientIp) j["timeout_seconds"] = s.affinity_timeout;
    j["publish_not_ready_addresses"] = s.publish_not_ready_addresses;
    if (s.maglev_table_size) j["maglev_table_size"] = *s.maglev_table_size;
    j["ports"] = json::array();
    for (const ServicePortConfig& p : s.ports) j["ports"].push_back(port_json(p));
    j["endpoints"] = json::array();
    for (const EndpointConfig& e : s.endpoints) {
      json ej = endpoint_json(e);
      ej.erase("state");  // derived, not configured
      j["endpoints"].push_back(std::move(ej));
    }
    services.push_back(std::move(j));
  }
  json listen = json::array();
  for (const DnsListen& l : c.dns.listen) {
    listen.push_back(dp::to_string(l.ip) + ":" + std::to_string(l.port));
  }
  json dns = {{"zone", c.dns.zone},
              {"ttl", c.dns.ttl},
              {"listen", std::move(listen)},
              {"max_udp_payload", c.dns.max_udp_payload}};
  if (c.dns.service_ip) dns["service_ip"] = dp::to_string(*c.dns.service_ip);
  return {{"source", c.source},
          {"eal", {{"args", c.eal.args}}},
          {"dataplane", {{"workers", d.workers},
                         {"flow_table_size", d.flow_table_size},
                         {"maglev_table_size", d.maglev_table_size},
                         {"mbufs", d.mbufs},
                         {"rx_ring_size", d.rx_ring_size},
                         {"tx_ring_size", d.tx_ring_size},
                         {"tcp_syn_timeout", d.tcp_syn_timeout},
                         {"tcp_established_timeout", d.tcp_established_timeout},
                         {"tcp_closing_timeout", d.tcp_closing_timeout},
                         {"udp_timeout", d.udp_timeout}}},
          {"ports", std::move(ports)},
          {"routes", std::move(routes)},
          {"neighbors", std::move(neighbors)},
          {"services", std::move(services)},
          {"dns", std::move(dns)},
          {"control", {{"socket", c.control.socket}}}};
}

void register_commands(ControlSocket& socket, Appliance& app) {
  Appliance* a = &app;
  socket.add_command("status", [a](const json&) { return status(*a); });
  socket.add_command("services", [a](const json&) { return services(*a); });
  socket.add_command("service", [a](const json& r) { return service(*a, r); });
  socket.add_command("stats", [a](const json&) { return stats(*a); });
  socket.add_command("maglev", [a](const json& r) { return maglev(*a, r); });
  socket.add_command("dns", [a](const json& r) { return dns_query(*a, r); });
  socket.add_command("reload", [a](const json&) { return reload(*a); });
  socket.add_command("config", [a](const json& r) { return config(*a, r); });
}

}  // namespace podgate::ctl
