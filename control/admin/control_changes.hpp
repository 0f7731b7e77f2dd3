// The control socket's commands that change the running state
// (docs/control-protocol.md): apply, delete, endpoint and "config save".
//
// Each is validated whole before anything changes and goes through
// Appliance::change(), the same snapshot and zone publication as a reload:
// it happens completely or not at all.  Control thread only.
#pragma once

namespace podgate::ctl {

class Appliance;
class ControlSocket;

// Registers apply, delete and endpoint.
void register_change_commands(ControlSocket& socket, Appliance& appliance);

}  // namespace podgate::ctl
