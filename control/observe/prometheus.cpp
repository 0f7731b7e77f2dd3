#include "control/observe/prometheus.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "control/config/service_config.hpp"
#include "dataplane/worker_counters.hpp"

namespace podgate::ctl {

namespace {

using nlohmann::json;

enum class Type { kCounter, kGauge };

using Labels = std::vector<std::pair<std::string_view, std::string>>;

// A number as the exposition format writes it (a Go ParseFloat-able
// text); nullopt for anything that is not a number or a bool.
std::optional<std::string> value_text(const json& v) {
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_boolean()) return std::string(v.get<bool>() ? "1" : "0");
  if (!v.is_number_float()) return std::nullopt;
  const double d = v.get<double>();
  if (std::isnan(d)) return std::string("NaN");
  if (std::isinf(d)) return std::string(d > 0 ? "+Inf" : "-Inf");
  // Whole numbers as integers ("1250000000", not "1.25e+09"): exact below 2^53.
  if (d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) {
    return std::to_string(static_cast<int64_t>(d));
  }
  std::array<char, 32> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), d);
  if (ec != std::errc()) return std::nullopt;
  return std::string(buf.data(), end);
}

// A label value from JSON: strings as they are, numbers as text.
std::optional<std::string> label_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return value_text(v);
  return std::nullopt;
}

// A metric name piece from a JSON key: [a-zA-Z0-9_] only.
std::string name_piece(std::string_view key) {
  std::string out(key);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) c = '_';
  }
  return out;
}

// HELP text escaping: backslash and line feed (quotes stay as they are).
std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Families in first-use order, each with its samples kept together (the
// format requires a family's samples to be one group).
class Exposition {
 public:
  void add(std::string_view name, Type type, std::string_view help, const Labels& labels,
           const json& value) {
    std::optional<std::string> v = value_text(value);
    if (!v) return;
    auto [it, inserted] = index_.try_emplace(std::string(name), families_.size());
    if (inserted) families_.push_back({std::string(name), type, std::string(help), {}, {}});
    Family& f = families_[it->second];
    if (f.type != type) return;  // a name reused with another type: keep the first
    std::string label_set;
    for (const auto& [k, val] : labels) {
      label_set += label_set.empty() ? "{" : ",";
      label_set += k;
      label_set += "=\"";
      label_set += escape_label_value(val);
      label_set += '"';
    }
    if (!label_set.empty()) label_set += '}';
    if (!f.seen.insert(label_set).second) return;  // duplicate series
    f.samples.push_back(f.name + label_set + ' ' + *v);
  }

  std::string render() const {
    std::string out;
    for (const Family& f : families_) {
      if (f.samples.empty()) continue;
      append_family_head(out, f.name, f.type == Type::kCounter, f.help);
      for (const std::string& s : f.samples) {
        out += s;
        out += '\n';
      }
    }
    return out;
  }

 private:
  struct Family {
    std::string name;
    Type type;
    std::string help;
    std::vector<std::string> samples;
    std::unordered_set<std::string> seen;
  };
  std::vector<Family> families_;
  std::unordered_map<std::string, size_t> index_;
};

const json* member(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

const json* member_of_type(const json& j, const char* key, json::value_t t) {
  const json* m = member(j, key);
  return m != nullptr && m->type() == t ? m : nullptr;
}

const json* object_at(const json& j, const char* key) {
  return member_of_type(j, key, json::value_t::object);
}
const json* array_at(const json& j, const char* key) {
  return member_of_type(j, key, json::value_t::array);
}

std::string_view worker_counter_help(std::string_view name) {
#define PODGATE_X(n, help) \
  if (name == #n) return help;
  PODGATE_WORKER_COUNTERS(PODGATE_X)
#undef PODGATE_X
  return "worker counter";
}

void render_status(Exposition& e, const json& status) {
  if (const json* v = member(status, "podgate_version"); v != nullptr) {
    if (auto text = label_text(*v)) {
      e.add("podgate_info", Type::kGauge, "podgate build information (always 1)",
            {{"version", *text}}, 1);
    }
  }
  if (const json* v = member(status, "uptime_seconds")) {
    e.add("podgate_uptime_seconds", Type::kGauge, "seconds since podgate started", {}, *v);
  }
  if (const json* v = member(status, "workers")) {
    e.add("podgate_workers", Type::kGauge, "worker lcores forwarding packets", {}, *v);
  }
  if (const json* v = member(status, "services")) {
    e.add("podgate_services", Type::kGauge, "services in the running config", {}, *v);
  }
  const json* ports = array_at(status, "ports");
  if (ports == nullptr) return;
  for (const json& p : *ports) {
    const json* name = member(p, "name");
    auto port = name != nullptr ? label_text(*name) : std::nullopt;
    if (!port) continue;
    if (const json* v = member(p, "link_up")) {
      e.add("podgate_port_link_up", Type::kGauge, "1 when the port's link is up", {{"port", *port}},
            *v);
    }
    // null: the speed is not known (link_speed_json), so no sample.
    if (const json* v = member(p, "speed_mbps"); v != nullptr && v->is_number()) {
      // Base units: bytes per second (1 Mbit/s = 125000 bytes/s).
      e.add("podgate_port_link_speed_bytes_per_second", Type::kGauge,
            "link speed the port reports, in bytes per second", {{"port", *port}},
            json(v->get<double>() * 125000.0));
    }
  }
}

void render_ports(Exposition& e, const json& stats) {
  struct Field {
    const char* key;
    const char* family;
    const char* help;
  };
  static constexpr std::array<Field, 8> kFields = {{
      {"ipackets", "podgate_port_rx_packets_total", "packets received by the port"},
      {"opackets", "podgate_port_tx_packets_total", "packets transmitted by the port"},
      {"ibytes", "podgate_port_rx_bytes_total", "bytes received by the port"},
      {"obytes", "podgate_port_tx_bytes_total", "bytes transmitted by the port"},
      {"imissed", "podgate_port_rx_missed_total",
       "packets the NIC dropped because no receive descriptor was free"},
      {"ierrors", "podgate_port_rx_errors_total", "erroneous packets received"},
      {"oerrors", "podgate_port_tx_errors_total", "packets that failed to transmit"},
      {"rx_nombuf", "podgate_port_rx_nombuf_total",
       "receive buffer allocation failures (mempool empty)"},
  }};
  const json* ports = array_at(stats, "ports");
  if (ports == nullptr) return;
  for (const Field& f : kFields) {
    for (const json& p : *ports) {
      const json* name = member(p, "name");
      auto port = name != nullptr ? label_text(*name) : std::nullopt;
      const json* v = member(p, f.key);
      if (port && v != nullptr) e.add(f.family, Type::kCounter, f.help, {{"port", *port}}, *v);
    }
  }
}

// One worker's block (or the control thread's): counters and drops.
void render_worker(Exposition& e, const std::string& worker, const json& block) {
  if (const json* counters = object_at(block, "counters")) {
    for (const auto& [key, v] : counters->items()) {
      if (key == "flow_entries") {
        e.add("podgate_worker_flow_entries", Type::kGauge, worker_counter_help(key),
              {{"worker", worker}}, v);
      } else {
        e.add("podgate_worker_" + name_piece(key) + "_total", Type::kCounter,
              worker_counter_help(key), {{"worker", worker}}, v);
      }
    }
  }
  if (const json* drops = object_at(block, "drops")) {
    for (const auto& [reason, v] : drops->items()) {
      e.add("podgate_drops_total", Type::kCounter,
            "packets dropped, by worker and reason (dataplane/drop_reason.hpp)",
            {{"worker", worker}, {"reason", reason}}, v);
    }
  }
}

void render_workers(Exposition& e, const json& stats) {
  if (const json* workers = array_at(stats, "workers")) {
    for (size_t i = 0; i < workers->size(); ++i) {
      const json& w = (*workers)[i];
      const json* id = member(w, "worker");
      auto label = id != nullptr ? label_text(*id) : std::nullopt;
      render_worker(e, label.value_or(std::to_string(i)), w);
    }
  }
  if (const json* control = object_at(stats, "control")) {
    render_worker(e, "control", *control);
    if (const json* v = member(*control, "waiting_for_arp")) {
      e.add("podgate_control_waiting_for_arp", Type::kGauge,
            "packets the control thread holds until ARP resolves their next hop", {}, *v);
    }
    if (const json* v = member(*control, "loop_turns")) {
      e.add("podgate_control_loop_turns_total", Type::kCounter,
            "wake-ups of the control thread's loop (every ms while busy, fewer while idle)", {}, *v);
    }
    if (const json* v = member(*control, "doorbell_rings")) {
      e.add("podgate_control_doorbell_rings_total", Type::kCounter,
            "wake-ups of the idle control thread by a worker that punted a packet", {}, *v);
    }
  }
}

// Per service port, then per endpoint of it: `in` is client -> Pod, `out`
// Pod -> client.  The families and their help are traffic_family()'s,
// shared with the streamed /metrics (prometheus_stream.hpp).
void render_traffic(Exposition& e, std::string_view prefix, std::string_view what,
                    const Labels& labels, const json& j) {
  const auto add = [&](TrafficField f, const Labels& l, const json& v) {
    const TrafficFamily family = traffic_family(f);
    e.add(std::string(prefix).append(family.suffix),
          family.counter ? Type::kCounter : Type::kGauge, traffic_help(f, what), l, v);
  };
  for (const char* dir : {"in", "out"}) {
    Labels l = labels;
    l.emplace_back("direction", dir);
    if (const json* v = member(j, (std::string("packets_") + dir).c_str())) {
      add(TrafficField::kPackets, l, *v);
    }
    if (const json* v = member(j, (std::string("bytes_") + dir).c_str())) {
      add(TrafficField::kBytes, l, *v);
    }
  }
  if (const json* v = member(j, "flows_created")) add(TrafficField::kFlowsCreated, labels, *v);
  if (const json* v = member(j, "flows_active")) add(TrafficField::kFlowsActive, labels, *v);
}

void render_services(Exposition& e, const json& stats) {
  const json* services = array_at(stats, "services");
  if (services == nullptr) return;
  for (const json& s : *services) {
    const json* name = member(s, "name");
    const json* port = member(s, "port");
    const json* proto = member(s, "protocol");
    if (name == nullptr || port == nullptr || proto == nullptr) continue;
    auto n = label_text(*name);
    auto p = label_text(*port);
    auto pr = label_text(*proto);
    if (!n || !p || !pr) continue;
    const Labels labels = {{"service", *n}, {"port", *p}, {"protocol", *pr}};
    render_traffic(e, kServicePrefix, kServiceWhat, labels, s);
    const json* endpoints = array_at(s, "endpoints");
    if (endpoints == nullptr) continue;
    for (const json& ep : *endpoints) {
      const json* ip = member(ep, "ip");
      const json* tp = member(ep, "target_port");
      auto ip_text = ip != nullptr ? label_text(*ip) : std::nullopt;
      auto tp_text = tp != nullptr ? label_text(*tp) : std::nullopt;
      if (!ip_text) continue;
      Labels l = labels;
      // "IP:PORT"; an IPv6 address in brackets, "[fd00::5]:8080" (RFC 3986).
      std::string endpoint = *ip_text;
      if (tp_text && endpoint.find(':') != std::string::npos) endpoint = "[" + endpoint + "]";
      if (tp_text) endpoint.append(":").append(*tp_text);
      l.emplace_back("endpoint", std::move(endpoint));
      const json* pod = member(ep, "pod");
      l.emplace_back("pod", pod != nullptr ? label_text(*pod).value_or("") : "");
      render_traffic(e, kEndpointPrefix, kEndpointWhat, l, ep);
    }
  }
  // Each port's endpoints by state, once every traffic family is written
  // (the order /metrics streams them in).
  for (const json& s : *services) {
    const json* name = member(s, "name");
    const json* port = member(s, "port");
    const json* proto = member(s, "protocol");
    const json* endpoints = array_at(s, "endpoints");
    if (name == nullptr || port == nullptr || proto == nullptr || endpoints == nullptr) continue;
    auto n = label_text(*name);
    auto p = label_text(*port);
    auto pr = label_text(*proto);
    if (!n || !p || !pr) continue;
    const auto state_of = [](const json& ep) -> const json* {
      return member_of_type(ep, "state", json::value_t::string);
    };
    if (!std::all_of(endpoints->begin(), endpoints->end(), state_of)) continue;  // mistyped
    for (std::string_view state : kEndpointStates) {
      const auto count = std::count_if(endpoints->begin(), endpoints->end(), [&](const json& ep) {
        return state_of(ep)->get_ref<const std::string&>() == state;
      });
      e.add(kServiceEndpoints, Type::kGauge, kServiceEndpointsHelp,
            {{"service", *n}, {"port", *p}, {"protocol", *pr}, {"state", std::string(state)}}, count);
    }
  }
}

void render_dns(Exposition& e, const json& stats) {
  const json* dns = object_at(stats, "dns");
  if (dns == nullptr) return;
  if (const json* q = object_at(*dns, "queries")) {
    for (const auto& [transport, v] : q->items()) {
      e.add("podgate_dns_queries_total", Type::kCounter,
            "DNS queries received, by transport (udp, tcp, dataplane: punted from the VIP)",
            {{"transport", transport}}, v);
    }
  }
  if (const json* a = object_at(*dns, "answers")) {
    for (const auto& [rcode, v] : a->items()) {
      e.add("podgate_dns_responses_total", Type::kCounter, "DNS responses sent, by RCODE",
            {{"rcode", rcode}}, v);
    }
  }
  struct Field {
    const char* key;
    const char* family;
    Type type;
    const char* help;
  };
  static constexpr std::array<Field, 9> kFields = {{
      {"truncated", "podgate_dns_truncated_total", Type::kCounter,
       "UDP responses sent with TC set (RFC 1035 4.2.1)"},
      {"silent", "podgate_dns_silent_total", Type::kCounter,
       "DNS queries the responder gave no answer"},
      {"dropped", "podgate_dns_dropped_total", Type::kCounter,
       "DNS responses not sent (socket full, no zone yet, bad packet)"},
      {"tcp_open", "podgate_dns_tcp_connections", Type::kGauge, "open DNS-over-TCP connections"},
      {"tcp_accepted", "podgate_dns_tcp_accepted_total", Type::kCounter,
       "DNS-over-TCP connections accepted"},
      {"tcp_idle_closed", "podgate_dns_tcp_idle_closed_total", Type::kCounter,
       "DNS-over-TCP connections closed by the idle timeout (RFC 7766 6.2.3)"},
      {"tcp_evicted", "podgate_dns_tcp_evicted_total", Type::kCounter,
       "DNS-over-TCP connections closed to admit a new one at the cap"},
      {"tcp_slow_closed", "podgate_dns_tcp_slow_closed_total", Type::kCounter,
       "DNS-over-TCP connections closed because a query was not whole in time"},
      {"tcp_errors", "podgate_dns_tcp_errors_total", Type::kCounter,
       "DNS-over-TCP connections closed on an error"},
  }};
  for (const Field& f : kFields) {
    if (const json* v = member(*dns, f.key)) e.add(f.family, f.type, f.help, {}, *v);
  }
}

// Health checks (issue 13): stats.health, see admin/health_views.hpp.  The
// targets' health, one sample each; /metrics writes it a page at a time
// from the checker instead (prometheus_stream.hpp).
void render_health_targets(Exposition& e, const json& stats) {
  const json* health = object_at(stats, "health");
  const json* targets = health != nullptr ? array_at(*health, "targets") : nullptr;
  if (targets == nullptr) return;
  for (const json& t : *targets) {
    const json* service = member(t, "service");
    const json* endpoint = member(t, "endpoint");
    const json* healthy = member_of_type(t, "healthy", json::value_t::boolean);
    if (service == nullptr || endpoint == nullptr || healthy == nullptr) continue;
    auto sv = label_text(*service);
    auto ep = label_text(*endpoint);
    if (!sv || !ep) continue;
    e.add(kEndpointHealthy, Type::kGauge, kEndpointHealthyHelp,
          {{"service", *sv}, {"endpoint", *ep}}, json(healthy->get<bool>() ? 1 : 0));
  }
}

// The checker's counters.
void render_health_counters(Exposition& e, const json& stats) {
  const json* health = object_at(stats, "health");
  if (health == nullptr) return;
  if (const json* probes = member(*health, "probes")) {
    e.add("podgate_health_probes_total", Type::kCounter, "health probes started", {}, *probes);
  }
  if (const json* results = object_at(*health, "results")) {
    for (const auto& [result, v] : results->items()) {
      e.add("podgate_health_probe_results_total", Type::kCounter,
            "health probe results, by outcome (ok, timeout, refused, http_status, ...)",
            {{"result", result}}, v);
    }
  }
  if (const json* transitions = object_at(*health, "transitions")) {
    for (const auto& [to, v] : transitions->items()) {
      e.add("podgate_health_transitions_total", Type::kCounter,
            "endpoints turning healthy or unhealthy", {{"to", to}}, v);
    }
  }
  if (const json* v = member(*health, "in_flight")) {
    e.add("podgate_health_probes_in_flight", Type::kGauge, "health probes waiting for an answer", {}, *v);
  }
  if (const json* v = member(*health, "deferred_turns")) {
    e.add("podgate_health_deferred_total", Type::kCounter,
          "control loop turns that left due probes for the next (the per-turn bound)", {}, *v);
  }
}

void render_snapshot(Exposition& e, const json& stats) {
  const json* snap = object_at(stats, "snapshot");
  if (snap == nullptr) return;
  if (const json* v = member(*snap, "generation")) {
    e.add("podgate_snapshot_generation", Type::kGauge,
          "generation of the snapshot the workers forward with", {}, *v);
  }
  if (const json* v = member(*snap, "awaiting_free")) {
    e.add("podgate_snapshot_awaiting_free", Type::kGauge,
          "retired snapshots waiting for every worker's quiescent state", {}, *v);
  }
  if (const json* v = member(*snap, "freed")) {
    e.add("podgate_snapshot_freed_total", Type::kCounter, "retired snapshots freed", {}, *v);
  }
}

// The counter slots flow entries count into (control/publish/stats_slots.hpp):
// exhausted is monotonic (pairs refused a slot; should stay 0), the others
// are how many slots are held now.
void render_stats_slots(Exposition& e, const json& stats) {
  const json* slots = object_at(stats, "stats_slots");
  if (slots == nullptr) return;
  if (const json* v = member(*slots, "in_use")) {
    e.add("podgate_stats_slots_in_use", Type::kGauge,
          "stats slots held by an endpoint of a published service port", {}, *v);
  }
  if (const json* v = member(*slots, "quarantined")) {
    e.add("podgate_stats_slots_quarantined", Type::kGauge,
          "released stats slots held until no flow may count into them", {}, *v);
  }
  if (const json* v = member(*slots, "exhausted")) {
    e.add("podgate_stats_slots_exhausted_total", Type::kCounter,
          "endpoints refused a stats slot, whose traffic is in no service's figures "
          "(should stay 0)",
          {}, *v);
  }
}

// The exception path (control/exception/kernel_twins.hpp): one block per
// port with a kernel twin, its counters by port and interface.
void render_kernel_twins(Exposition& e, const json& stats) {
  struct Field {
    const char* key;
    const char* family;
    const char* help;
  };
  static constexpr std::array<Field, 6> kFields = {{
      {"to_kernel", "podgate_kernel_twin_to_kernel_total", "frames written into the kernel twin"},
      {"to_kernel_failed", "podgate_kernel_twin_to_kernel_failed_total",
       "frames the kernel twin did not take"},
      {"from_kernel", "podgate_kernel_twin_from_kernel_total",
       "frames the kernel sent through its twin, put on the port"},
      {"from_kernel_rate_limited", "podgate_kernel_twin_from_kernel_rate_limited_total",
       "frames from the kernel twin dropped over its rate"},
      {"from_kernel_refused", "podgate_kernel_twin_from_kernel_refused_total",
       "frames from the kernel twin dropped: not IPv4 or ARP, not from the port's MAC, too short"},
      {"rx_wakeups", "podgate_kernel_twin_rx_wakeups_total",
       "wake-ups of the control loop by frames the kernel sent through its twin"},
  }};
  const json* twins = array_at(stats, "kernel_twins");
  if (twins == nullptr) return;
  for (const Field& f : kFields) {
    for (const json& t : *twins) {
      const json* port = member(t, "port");
      const json* iface = member(t, "iface");
      auto port_text = port != nullptr ? label_text(*port) : std::nullopt;
      auto iface_text = iface != nullptr ? label_text(*iface) : std::nullopt;
      const json* v = member(t, f.key);
      if (!port_text || !iface_text || v == nullptr) continue;
      e.add(f.family, Type::kCounter, f.help, {{"port", *port_text}, {"iface", *iface_text}}, *v);
    }
  }
}

std::string server_counter_help(const std::string& key) {
  static const std::unordered_map<std::string, std::string> kHelp = {
      {"accepted", "connections accepted"},
      {"requests", "requests handled"},
      {"errors", "error replies sent"},
      {"refused", "connections refused at the connection cap"},
      {"closed_oversize", "connections closed after an oversized request"},
      {"closed_backlog", "connections closed because the client stopped reading"},
      {"closed_idle", "connections closed by the idle timeout"},
      {"evicted", "connections closed to admit a new one at the connection cap"},
      {"closed_slow", "connections closed because a request was not whole in time"},
  };
  auto it = kHelp.find(key);
  return it == kHelp.end() ? key : it->second;
}

// A section of connection counters: "connections" is a gauge, the rest counters.
void render_server(Exposition& e, const json& stats, const char* key, const std::string& prefix,
                   const std::string& what) {
  const json* s = object_at(stats, key);
  if (s == nullptr) return;
  for (const auto& [k, v] : s->items()) {
    if (k == "connections") {
      e.add(prefix + "_connections", Type::kGauge, "open " + what + " connections", {}, v);
    } else {
      e.add(prefix + "_" + name_piece(k) + "_total", Type::kCounter,
            what + ": " + server_counter_help(k), {}, v);
    }
  }
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

TrafficFamily traffic_family(TrafficField f) noexcept {
  static constexpr TrafficFamily kFamilies[] = {
      {"_packets_total", true, true, "packets forwarded per "},
      {"_bytes_total", true, true, "bytes forwarded per "},
      {"_flows_created_total", true, false, "connections pinned per "},
      {"_flows_active", false, false, "live connections per "},
  };
  return kFamilies[static_cast<size_t>(f)];
}

std::string traffic_help(TrafficField f, std::string_view what) {
  const TrafficFamily family = traffic_family(f);
  std::string help(family.help);
  help.append(what);
  if (family.directions) help.append(" (in: client to Pod, out: Pod to client)");
  return help;
}

void append_family_head(std::string& out, std::string_view name, bool counter,
                        std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(escape_help(help)).append("\n");
  out.append("# TYPE ").append(name).append(counter ? " counter\n" : " gauge\n");
}

namespace {

void render_head(Exposition& e, const json& stats, const json& status) {
  render_status(e, status);
  render_ports(e, stats);
  render_workers(e, stats);
  render_kernel_twins(e, stats);
}

void render_tail(Exposition& e, const json& stats) {
  render_health_counters(e, stats);
  render_snapshot(e, stats);
  render_stats_slots(e, stats);
  render_server(e, stats, "control_socket", "podgate_control_socket", "control socket");
  render_server(e, stats, "metrics_http", "podgate_metrics_http", "metrics HTTP");
}

}  // namespace

std::string render_prometheus(const json& stats, const json& status) {
  Exposition e;
  render_head(e, stats, status);
  render_services(e, stats);
  render_dns(e, stats);
  render_health_targets(e, stats);
  render_tail(e, stats);
  return e.render();
}

std::string render_prometheus_head(const json& stats, const json& status) {
  Exposition e;
  render_head(e, stats, status);
  return e.render();
}

std::string render_prometheus_dns(const json& stats) {
  Exposition e;
  render_dns(e, stats);
  return e.render();
}

std::string render_prometheus_tail(const json& stats) {
  Exposition e;
  render_tail(e, stats);
  return e.render();
}

}  // namespace podgate::ctl
