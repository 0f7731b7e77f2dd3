// The control socket's commands (docs/control-protocol.md): each a handler
// registered by name on the ControlSocket, answering from the running
// Appliance.  This step holds the read-only commands and "reload".
// Control thread only.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "control/admin/config_views.hpp"  // config_to_json()
#include "control/config/config.hpp"
#include "control/observe/prometheus_stream.hpp"  // ServiceTraffic

namespace podgate::ctl {

class Appliance;
class ControlSocket;

// Registers status, services, service, stats, maglev, dns, reload, config.
void register_commands(ControlSocket& socket, Appliance& appliance);

// The replies of status, stats and services, for /metrics and telemetry.
nlohmann::json status_json(const Appliance& appliance);
// `max_services`: at most that many services (service ports in stats), for
// DPDK telemetry, whose strings hold 8 KB anyway: at 10k services the whole
// lists cost the control thread ~a second each.
nlohmann::json stats_json(const Appliance& appliance, size_t max_services = SIZE_MAX);
nlohmann::json services_json(const Appliance& appliance, size_t max_services = SIZE_MAX);
// The service ports and traffic figures of `stats`, for the streamed
// /metrics (prometheus_stream.hpp).
ServiceTraffic metrics_traffic(const Appliance& appliance);

}  // namespace podgate::ctl
