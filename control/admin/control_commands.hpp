// The control socket's commands (docs/control-protocol.md): each a handler
// registered by name on the ControlSocket, answering from the running
// Appliance.  This step holds the read-only commands and "reload".
// Control thread only.
#pragma once

#include <nlohmann/json.hpp>

#include "control/config/config.hpp"

namespace podgate::ctl {

class Appliance;
class ControlSocket;

// Registers status, services, service, stats, maglev, dns, reload, config.
void register_commands(ControlSocket& socket, Appliance& appliance);

// The replies of status, stats and services, for /metrics and telemetry.
nlohmann::json status_json(const Appliance& appliance);
nlohmann::json stats_json(const Appliance& appliance);
nlohmann::json services_json(const Appliance& appliance);

// The whole Config as JSON, keys named as in the TOML file ("config dump").
nlohmann::json config_to_json(const Config& config);

}  // namespace podgate::ctl
