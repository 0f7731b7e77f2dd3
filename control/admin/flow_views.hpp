// The `flows` command (docs/control-protocol.md, "flows"): the connections
// the workers hold, both families, filtered by service, port, client,
// endpoint and protocol, listed by the workers a slice per poll
// (dataplane/flow_query.hpp) and written as a long reply.  With `after`,
// one page of a listing of every matching flow (flow_pages.hpp).  Control
// thread only.
#pragma once

#include "control/admin/control_socket.hpp"

namespace podgate::ctl {

class Appliance;

void register_flow_commands(ControlSocket& socket, Appliance& app);

}  // namespace podgate::ctl
