#include "control/admin/control_commands.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <tuple>
#include <string_view>

#include <rte_ethdev.h>

#include "control/appliance.hpp"
#include "control/admin/command_views.hpp"
#include "control/admin/config_views.hpp"
#include "control/admin/flow_views.hpp"
#include "control/admin/health_views.hpp"
#include "control/config/config_health.hpp"
#include "control/config/config_writer.hpp"
#include "control/admin/control_socket.hpp"
#include "control/dns/message.hpp"
#include "control/log.hpp"
#include "control/config/validate.hpp"
#include "control/publish/service_traffic.hpp"

namespace podgate::ctl {

namespace {

using nlohmann::json;

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
          {"tcp_slow_closed", c.tcp_slow_closed},
          {"tcp_errors", c.tcp_errors}};
}

// ---- per-service traffic (stats slots) ----

json traffic_json(const TrafficTotals& t) {
  return {{"packets_in", t.packets_in},       {"bytes_in", t.bytes_in},
          {"packets_out", t.packets_out},     {"bytes_out", t.bytes_out},
          {"flows_created", t.flows_created}, {"flows_active", t.flows_active()}};
}

// The running services as they are now, for a reply written over many loop
// turns: a copy of the list shares every service (service_list.hpp), and
// a change meanwhile replaces services in the Registry's list, not in this.
std::shared_ptr<const ServiceList> services_now(const Appliance& app) {
  return std::make_shared<const ServiceList>(app.config().services);
}

// One entry per forwarded service port: its totals and its endpoints'.
// The figures are read as each entry is written.
LongArray services_traffic(const Appliance& app, size_t max_ports = SIZE_MAX) {
  struct Port {
    std::shared_ptr<const ServiceConfig> service;
    size_t port;
    NewFlowRule rule;  // the service's, for its endpoints' states
  };
  auto ports = std::make_shared<std::vector<Port>>();
  const ServiceList& list = app.config().services;
  for (size_t i = 0; i < list.size() && ports->size() < max_ports; ++i) {
    const ServiceConfig& s = list[i];
    if (!counts_traffic(s)) continue;  // not forwarded
    const NewFlowRule rule = new_flow_rule(s);
    for (size_t p = 0; p < s.ports.size() && ports->size() < max_ports; ++p) {
      ports->push_back({list.shared(i), p, rule});
    }
  }
  const StatsSlots* slots = &app.stats_slots();
  LongArray out;
  out.count = ports->size();
  out.element = [slots, ports](size_t i) {
    const ServiceConfig& s = *(*ports)[i].service;
    const ServicePortConfig& p = s.ports[(*ports)[i].port];
    json vips = json::array();
    for (const dp::IpAddr& vip : s.cluster_ips()) vips.push_back(dp::to_string(vip));
    json j = {{"name", s.ns + "/" + s.name}, {"vip", dp::to_string(*s.cluster_ip)}, {"vips", std::move(vips)},
              {"port", p.port}, {"protocol", std::string(dp::proto_name(p.protocol))}};
    j.update(traffic_json(port_traffic(*slots, s, p)));
    j["endpoints"] = json::array();  // written item by item
    return j;
  };
  out.inner_key = "endpoints";
  out.inner_count = [ports](size_t i) { return (*ports)[i].service->endpoints.size(); };
  out.inner_item = [slots, ports](size_t i, size_t k) {
    const ServiceConfig& s = *(*ports)[i].service;
    const ServicePortConfig& p = s.ports[(*ports)[i].port];
    const EndpointConfig& e = s.endpoints[k];
    json ej = {{"ip", ip_text(e.ip)}, {"target_port", p.target_port}, {"pod", e.pod},
               {"state", endpoint_state(e, (*ports)[i].rule)}};
    ej.update(traffic_json(endpoint_traffic(*slots, s, p, e)));
    return ej;
  };
  return out;
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
                     {"speed_mbps", link_speed_json(known, link.link_speed)},
                     {"kernel", cfg.ports[i].kernel}});
  }
  json announce = nullptr;
  if (const VipAnnouncer* a = app.announcer()) {
    json routes = json::array();
    for (uint32_t vip : a->announced()) routes.push_back(dp::to_string(dp::Ip4{vip}) + "/32");
    announce = {{"iface", a->iface()}, {"table", a->table()}, {"drained", a->drained()},
                {"stopping", a->stopping()}, {"stop_grace", duration_text(cfg.announce.stop_grace_ms)},
                {"routes", std::move(routes)}};
  }
  return json{{"podgate_version", app.version()},
              {"uptime_seconds", app.uptime_ms() / 1000},
              {"announce", std::move(announce)},
              {"workers", app.worker_count()},
              {"config_file", cfg.source},
              {"generation", app.generation()},
              {"unsaved_changes", app.unsaved_changes()},
              {"services", cfg.services.size()},
              {"ports", std::move(ports)}};
}

LongReply services(const Appliance& app, size_t max_services = SIZE_MAX) {
  auto list = services_now(app);
  LongArray items;
  items.count = std::min(list->size(), max_services);
  items.element = [list](size_t i) { return service_summary((*list)[i]); };
  return LongReply(json{{"services", json::array()}}, {"services"}, std::move(items));
}

Result<json> service(const Appliance& app, const json& req) {
  auto s = service_arg(req, app.config());
  if (!s) return std::move(s).error();
  return json{{"service", service_detail(**s, app.config().dataplane)}};
}

// A service's endpoints, their state and, per service port, their traffic.
Result<LongReply> endpoints(const Appliance& app, const json& req) {
  auto found = service_arg(req, app.config());
  if (!found) return std::move(found).error();
  // The service as it is now (a change meanwhile replaces it, not this).
  const ServiceList& all = app.config().services;
  std::shared_ptr<const ServiceConfig> service;
  for (size_t i = 0; i < all.size() && !service; ++i) {
    if (all.identity(i) == *found) service = all.shared(i);
  }
  if (!service) return make_error(ErrorCode::kInternal, "endpoints: the service moved");
  const Appliance* a = &app;
  LongArray items;
  items.count = service->endpoints.size();
  items.element = [a, service, rule = new_flow_rule(*service)](size_t i) {
    const ServiceConfig& s = *service;
    const EndpointConfig& e = s.endpoints[i];
    json j = endpoint_json(e, rule);
    j["health"] = endpoint_health_json(a->health(), s, e);
    json ports = json::array();
    if (s.cluster_ip && s.type == ServiceType::kClusterIp) {
      for (const ServicePortConfig& p : s.ports) {
        json pj = {{"port", p.port}, {"target_port", p.target_port},
                   {"protocol", std::string(dp::proto_name(p.protocol))}};
        pj.update(traffic_json(endpoint_traffic(a->stats_slots(), s, p, e)));
        ports.push_back(std::move(pj));
      }
    }
    j["ports"] = std::move(ports);
    return j;
  };
  return LongReply(json{{"name", service->ns + "/" + service->name}, {"endpoints", json::array()}},
                   {"endpoints"}, std::move(items));
}

LongReply stats(const Appliance& app, size_t max_service_ports = SIZE_MAX) {
  json workers = json::array();
  for (size_t w = 0; w < app.worker_count(); ++w) {
    json j = counters_json(app.worker_counters(w));
    j["worker"] = w;
    j["idle"] = app.worker_idle_mode(w);
    workers.push_back(std::move(j));
  }
  json control = counters_json(app.punt().counters());
  control["waiting_for_arp"] = app.punt().waiting();
  control["loop_turns"] = app.loop_turns();
  control["doorbell_rings"] = app.doorbell_rings();
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
  json twins = json::array();
  for (const KernelTwins::Twin& t : app.kernel_twins().twins()) {
    twins.push_back({{"port", app.config().ports[static_cast<uint16_t>(t.port)].name},
                     {"iface", t.iface},
                     {"lost", t.lost},
                     {"rate", t.rate},
                     {"to_kernel", t.counters.to_kernel},
                     {"to_kernel_failed", t.counters.to_kernel_failed},
                     {"from_kernel", t.counters.from_kernel},
                     {"from_kernel_rate_limited", t.counters.from_kernel_rate_limited},
                     {"from_kernel_refused", t.counters.from_kernel_refused},
                     {"rx_wakeups", t.counters.rx_wakeups}});
  }
  const ControlCounters& cc = app.control_socket().counters();
  json fields = {{"workers", std::move(workers)},
              {"control", std::move(control)},
              {"kernel_twins", std::move(twins)},
              {"services", json::array()},  // services_traffic(), entry by entry
              {"stats_slots", {{"in_use", app.stats_slots().in_use()},
                               {"quarantined", app.stats_slots().quarantined()},
                               {"exhausted", app.stats_slots().exhausted()}}},
              {"ports", std::move(ports)},
              {"dns", dns_counters_json(app.dns())},
              {"snapshot", {{"generation", app.generation()},
                            {"awaiting_free", app.publisher().pending_frees()},
                            {"freed", app.publisher().freed()}}},
              {"control_socket", {{"connections", app.control_socket().connections()},
                                  {"accepted", cc.accepted}, {"requests", cc.requests},
                                  {"errors", cc.errors}, {"refused", cc.refused},
                                  {"closed_oversize", cc.closed_oversize},
                                  {"closed_backlog", cc.closed_backlog},
                                  {"closed_idle", cc.closed_idle},
                                  {"evicted", cc.evicted},
                                  {"closed_slow", cc.closed_slow}}}};
  return LongReply(std::move(fields), {"services"}, services_traffic(app, max_service_ports));
}

// The neighbour table the workers forward with: learnt by ARP (from our
// requests, the kernel twins' and gratuitous updates) or static.
Result<json> neighbors(const Appliance& app) {
  json list = json::array();
  app.neighbors().for_each([&](dp::Ip4 ip, const dp::MacAddr& mac) {
    if (mac.is_zero()) return;  // forgotten (aged out): resolved afresh when needed
    list.push_back({{"ip", dp::to_string(ip)}, {"mac", dp::to_string(mac)},
                    {"static", app.punt().is_static(ip)}});
  });
  std::sort(list.begin(), list.end(), [](const json& a, const json& b) {
    return dp::parse_ip4(a["ip"].get<std::string>())->host() <
           dp::parse_ip4(b["ip"].get<std::string>())->host();
  });
  return json{{"neighbors", std::move(list)}};
}

// Withdraws every VIP route (or puts them back): the router moves this
// appliance's traffic to the others, which carry its connections on.
Result<json> drain(Appliance& app, bool drained) {
  if (auto r = app.set_drained(drained); !r) return std::move(r).error();
  json routes = json::array();
  for (uint32_t vip : app.announcer()->announced()) routes.push_back(dp::to_string(dp::Ip4{vip}) + "/32");
  return json{{"drained", drained}, {"routes", std::move(routes)}};
}

// One service port's Maglev table (either family): each ready endpoint's
// slots and share (Maglev, NSDI'16 §3.4: an endpoint's share of new flows
// is its share of slots).
template <class A>
json maglev_endpoints(const ServiceConfig& s, const dp::BasicServiceData<A>& sd) {
  const size_t m = sd.maglev.size();
  std::vector<uint64_t> slots(sd.ready.size(), 0);
  for (uint16_t idx : sd.maglev) {
    if (idx < slots.size()) ++slots[idx];
  }
  json endpoints = json::array();
  for (size_t i = 0; i < sd.ready.size(); ++i) {
    const auto& b = sd.ready[i];
    std::string pod;
    for (const EndpointConfig& e : s.endpoints) {
      if constexpr (std::is_same_v<A, dp::Ip4>) {
        if (e.ip.is_v4() && e.ip.as_v4() == b.ip) pod = e.pod;
      } else {
        if (e.ip.is_v6() && e.ip.as_v6() == b.ip) pod = e.pod;
      }
    }
    endpoints.push_back({{"ip", dp::to_string(b.ip)},
                         {"target_port", dp::from_be16(b.port)},
                         {"pod", pod},
                         {"weight", i < sd.weights.size() ? sd.weights[i] : 0},
                         {"slots", slots[i]},
                         {"share_percent", m == 0 ? 0.0 : 100.0 * double(slots[i]) / double(m)}});
  }
  return endpoints;
}

// Slots per endpoint of each service port, from the live Snapshot's table
// of the service's IPv4 VIP, or of its IPv6 VIP when it has only that or
// "family" asks for "ipv6" (a dual-stack service has a table per family).
Result<json> maglev(const Appliance& app, const json& req) {
  auto found = service_arg(req, app.config());
  if (!found) return std::move(found).error();
  const ServiceConfig& s = **found;
  if (!s.cluster_ip) {
    return make_error(ErrorCode::kInvalidRequest, s.ns + "/" + s.name +
                                                      " has no cluster IP and so no Maglev table");
  }
  auto family = string_arg(req, "family", false);
  if (!family) return std::move(family).error();
  if (*family && **family != "ipv4" && **family != "ipv6") {
    return make_error(ErrorCode::kInvalidRequest,
                      "\"family\": " + quote(**family) + " is not a family; allowed: ipv4, ipv6");
  }
  const bool want6 = *family ? **family == "ipv6" : !ipv4_cluster_ip(s).has_value();
  std::optional<dp::IpAddr> vip;
  for (const dp::IpAddr& ip : s.cluster_ips()) {
    if (ip.is_v6() == want6) vip = ip;
  }
  if (!vip) {
    return make_error(ErrorCode::kInvalidRequest, s.ns + "/" + s.name + " has no " + **family + " cluster IP");
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
    std::optional<json> endpoints;
    size_t table_size = 0;
    if (vip->is_v4()) {
      if (const dp::ServiceData* sd = snap.find_service(vip->as_v4(), dp::to_be16(p.port), p.protocol)) {
        endpoints = maglev_endpoints(s, *sd);
        table_size = sd->maglev.size();
      }
    } else if (const dp::ServiceData6* sd = snap.find_service(vip->as_v6(), dp::to_be16(p.port), p.protocol)) {
      endpoints = maglev_endpoints(s, *sd);
      table_size = sd->maglev.size();
    }
    if (!endpoints) {
      return make_error(ErrorCode::kInternal, "no table for " + dp::to_string(*vip) + " port " +
                                                  std::to_string(p.port) + " in snapshot " +
                                                  std::to_string(snap.generation));
    }
    j["table_size"] = table_size;
    j["endpoints"] = std::move(*endpoints);
    ports.push_back(std::move(j));
  }
  if (only && ports.empty()) {
    return make_error(ErrorCode::kNotFound,
                      s.ns + "/" + s.name + " has no port " + std::to_string(*only));
  }
  return json{{"name", s.ns + "/" + s.name}, {"vip", dp::to_string(*vip)}, {"generation", snap.generation},
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
                      "\"type\": " + quote(**type_name) + " is not a DNS type such as A, AAAA, SRV, "
                                                     "PTR, TXT, SOA, NS, CNAME, ANY or TYPE65");
  }
  std::vector<uint8_t> query = dns::make_query(**name, *qtype);
  if (query.empty()) {
    return make_error(ErrorCode::kInvalidRequest, "\"name\": " + quote(**name) +
                                                      " is not a DNS name (labels of at most "
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

Result<LongReply> config(Appliance& app, const json& req) {
  auto action = string_arg(req, "action", true);
  if (!action) return std::move(action).error();
  if (**action == "dump") return config_dump(app.config());
  if (**action == "toml") {
    // What `save` would write, for a client to write wherever it may itself
    // (podgatectl config save PATH): podgate writes only its config file.
    return config_toml(app.config(), json{{"source", app.config().source},
                                          {"generation", app.generation()},
                                          {"unsaved_changes", app.unsaved_changes()}});
  }
  if (**action == "save") {
    auto path = string_arg(req, "path", false);
    if (!path) return std::move(path).error();
    auto force = bool_arg(req, "force");
    if (!force) return std::move(force).error();
    auto saved = app.save_config(*path, force->value_or(false));
    if (!saved) return std::move(saved).error();
    return LongReply(json{{"path", *saved}, {"generation", app.generation()},
                          {"unsaved_changes", app.unsaved_changes()}});
  }
  return make_error(ErrorCode::kInvalidRequest,
                    "\"action\": " + quote(**action) + " is not supported; allowed: dump, save, toml");
}

}  // namespace

json status_json(const Appliance& app) { return *status(app); }
json stats_json(const Appliance& app, size_t max_services) { return whole(stats(app, max_services)); }
json services_json(const Appliance& app, size_t max_services) {
  return whole(services(app, max_services));
}

// The service ports and figures of services_traffic() (`stats`), for the
// streamed /metrics, which reads them without JSON.
ServiceTraffic metrics_traffic(const Appliance& app) {
  const StatsSlots* slots = &app.stats_slots();
  ServiceTraffic t;
  t.services = services_now(app);
  t.counted = counts_traffic;
  t.port = [slots](const ServiceConfig& s, const ServicePortConfig& p) { return port_traffic(*slots, s, p); };
  t.endpoint = [slots](const ServiceConfig& s, const ServicePortConfig& p, const EndpointConfig& e) {
    return endpoint_traffic(*slots, s, p, e);
  };
  return t;
}

void register_commands(ControlSocket& socket, Appliance& app) {
  Appliance* a = &app;
  socket.add_command("status", [a](const json&) { return status(*a); });
  socket.add_long_command("services", [a](const json&) { return services(*a); });
  socket.add_command("service", [a](const json& r) { return service(*a, r); });
  socket.add_long_command("stats", [a](const json&) { return stats(*a); });
  socket.add_long_command("endpoints", [a](const json& r) { return endpoints(*a, r); });
  socket.add_command("maglev", [a](const json& r) { return maglev(*a, r); });
  socket.add_command("neighbors", [a](const json&) { return neighbors(*a); });
  socket.add_command("drain", [a](const json&) { return drain(*a, true); });
  socket.add_command("undrain", [a](const json&) { return drain(*a, false); });
  socket.add_command("dns", [a](const json& r) { return dns_query(*a, r); });
  socket.add_command("reload", [a](const json&) { return reload(*a); });
  socket.add_long_command("config", [a](const json& r) { return config(*a, r); });
  register_flow_commands(socket, app);
}

}  // namespace podgate::ctl
