// The settings DPDK is set up with at start ([eal], [dataplane], [[ports]],
// [announce]), each default resolved to the value it stands for.  A reload
// may not change them (Appliance::reload); a file that spells out a default
// changes nothing, so it is not refused for it.  Pure: no DPDK.
#pragma once

#include <cstddef>
#include <vector>

#include "control/config/config.hpp"

namespace podgate::ctl {

struct StartSettings {
  EalConfig eal;
  DataplaneConfig dataplane;      // ipv6_flow_table_size always set
  std::vector<PortConfig> ports;  // client_address always set
  AnnounceConfig announce;
  friend bool operator==(const StartSettings&, const StartSettings&) = default;
};

// Which address of a packet on cfg.ports[i] is the client's: as configured,
// or the destination on a port that reaches an endpoint of the config (its
// connected subnet holds one, or a route through it does), else the
// source.  It decides RSS and whom a worker hands a packet to, so a wrong
// choice costs speed, never correctness.
dp::ClientAddress choose_client_address(const Config& cfg, size_t i);

// cfg's start settings.  `chosen[i]` is the client address of ports[i]
// where the file leaves it to podgate: choose_client_address() at start;
// at a reload, what start chose (the ports are not set up again, so an
// absent client_address keeps it).
StartSettings start_settings(const Config& cfg, const std::vector<dp::ClientAddress>& chosen);

}  // namespace podgate::ctl
