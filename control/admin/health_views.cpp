// Health views; see health_views.hpp.
#include "control/admin/health_views.hpp"

#include <algorithm>
#include <ctime>
#include <memory>
#include <vector>

#include "control/admin/command_views.hpp"
#include "control/appliance.hpp"
#include "control/config/config_health.hpp"
#include "control/config/validate.hpp"

namespace podgate::ctl {

using nlohmann::json;

namespace {

// Unix time in milliseconds of the monotonic instant `mono_ms`: the offset
// between the clocks is taken once, so a time shown twice reads the same
// (until the wall clock is stepped; NTP slewing does not matter here).
uint64_t unix_ms_of(uint64_t mono_ms, uint64_t now_mono_ms) {
  static const int64_t offset = [now_mono_ms] {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    const int64_t now_unix = static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
    return now_unix - static_cast<int64_t>(now_mono_ms);
  }();
  const int64_t t = static_cast<int64_t>(mono_ms) + offset;
  return t > 0 ? static_cast<uint64_t>(t) : 0;
}

}  // namespace

json target_json(const health::TargetStatus& t, uint64_t now_ms) {
  json j = {{"service", t.ns + "/" + t.name},
            {"ip", dp::to_string(t.ip)},
            {"port", t.port},
            {"kind", health_kind_name(t.kind)},
            {"healthy", t.healthy},
            {"state", t.healthy ? "healthy" : "unhealthy"},
            {"successes", t.successes},
            {"failures", t.failures}};
  if (t.probed) {
    j["last_result"] = health::outcome_name(t.last.outcome);
    j["reason"] = health::reason_text(t.last);
    j["last_probe_seconds_ago"] = static_cast<double>(now_ms - std::min(now_ms, t.last_probe_ms)) / 1000.0;
  } else {
    j["last_result"] = nullptr;
    j["reason"] = "not probed yet";
  }
  if (t.changed_ms != 0) {
    j["changed_at"] = static_cast<double>(unix_ms_of(t.changed_ms, now_ms)) / 1000.0;
    j["changed_seconds_ago"] = static_cast<double>(now_ms - std::min(now_ms, t.changed_ms)) / 1000.0;
  }
  json ports = json::array();
  for (const PortRef& p : t.ports) {
    ports.push_back(std::to_string(p.port) + "/" + std::string(dp::proto_name(p.protocol)));
  }
  j["service_ports"] = std::move(ports);
  return j;
}

json endpoint_health_json(const health::HealthChecker& checker, const ServiceConfig& s,
                          const EndpointConfig& e) {
  json out = json::array();
  if (!s.health_check) return out;
  const uint64_t now = monotonic_ms();
  for (const health::TargetStatus& t : checker.status(s.ns, s.name, e.ip)) {
    out.push_back(target_json(t, now));
  }
  return out;
}

json health_metrics_json(const health::HealthChecker& checker) {
  const health::HealthChecker::Counters& c = checker.counters();
  json results = json::object();
  for (size_t i = 0; i < std::size(c.results); ++i) {
    results[health::outcome_name(static_cast<health::Outcome>(i))] = c.results[i];
  }
  return {{"probes", c.probes},
          {"results", std::move(results)},
          {"transitions", {{"unhealthy", c.to_unhealthy}, {"healthy", c.to_healthy}}},
          {"deferred_turns", c.deferred_turns},
          {"in_flight", checker.in_flight()}};
}

namespace {

// A long reply (reply_stream.hpp): with `all`, every target of every
// check, 40,000 at 10k services of 4 endpoints, written a piece per loop
// turn from a copy of their status taken now.
Result<LongReply> health_command(const Appliance& app, const json& req) {
  auto all = bool_arg(req, "all");
  if (!all) return std::move(all).error();
  std::string ns, name;
  if (req.contains("name")) {
    auto s = service_arg(req, app.config());
    if (!s) return std::move(s).error();
    ns = (*s)->ns;
    name = (*s)->name;
  }
  const health::HealthChecker& checker = app.health();
  const uint64_t now = monotonic_ms();
  auto listed = std::make_shared<std::vector<health::TargetStatus>>(checker.status(ns, name));
  const size_t checked = listed->size();
  const size_t unhealthy = static_cast<size_t>(
      std::count_if(listed->begin(), listed->end(), [](const health::TargetStatus& t) { return !t.healthy; }));
  if (!all->value_or(false)) std::erase_if(*listed, [](const health::TargetStatus& t) { return t.healthy; });
  const health::HealthChecker::Counters& c = checker.counters();
  LongArray items;
  items.count = listed->size();
  items.element = [listed, now](size_t i) { return target_json((*listed)[i], now); };
  return LongReply(json{{"endpoints", json::array()},
                        {"checked", checked},
                        {"unhealthy", unhealthy},
                        {"probes", c.probes},
                        {"in_flight", checker.in_flight()},
                        {"unpublished", checker.has_changes()}},
                   {"endpoints"}, std::move(items));
}

}  // namespace

void register_health_commands(ControlSocket& socket, const Appliance& app) {
  const Appliance* a = &app;
  socket.add_long_command("health", [a](const json& r) { return health_command(*a, r); });
}

}  // namespace podgate::ctl
