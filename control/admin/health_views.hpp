// What the health checker knows, as the control socket and /metrics show it
// (issue 13; docs/control-protocol.md, "health").  Control thread only.
#pragma once

#include <nlohmann/json.hpp>

#include "control/admin/control_socket.hpp"
#include "control/health/health_checker.hpp"

namespace podgate::ctl {

class Appliance;

// One target: its port, health, last result and reason, and when it last
// changed ("changed_at", Unix seconds; absent when it never changed).
nlohmann::json target_json(const health::TargetStatus& t, uint64_t now_ms);

// The targets of one endpoint of service `s` (empty array: not checked).
nlohmann::json endpoint_health_json(const health::HealthChecker& checker, const ServiceConfig& s,
                                    const EndpointConfig& e);

// The section /metrics renders as the podgate_health_* counters
// (prometheus.hpp).  Without "targets": /metrics writes each target's
// podgate_endpoint_healthy from the checker a page at a time
// (HealthChecker::status_after, prometheus_stream.hpp).
nlohmann::json health_metrics_json(const health::HealthChecker& checker);

// "health": the unhealthy endpoints (every checked one with "all": true),
// optionally of one service ("name").
void register_health_commands(ControlSocket& socket, const Appliance& app);

}  // namespace podgate::ctl
