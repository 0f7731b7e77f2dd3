// Small builders of Config parts shared by unit tests and benchmarks.
#pragma once

#include "control/config/config.hpp"

namespace podgate::ctl {

// A port with the three keys every config has; the rest at their defaults.
inline PortConfig named_port(const char* name, const char* device, const char* address) {
  PortConfig p;
  p.name = name;
  p.device = device;
  p.address = *dp::parse_prefix4(address);
  return p;
}

// Two dual-stack ports, uplink (192.0.2.1/24, 2001:db8:1::1/64) and pods
// (172.17.0.1/16, fd00:10:244::1/64), as TOML: what follows adds services.
inline constexpr const char* kDualStackPortsToml = R"(
[[ports]]
name = "uplink"
device = "net_null0"
address = "192.0.2.1/24"
address6 = "2001:db8:1::1/64"
[[ports]]
name = "pods"
device = "net_null1"
address = "172.17.0.1/16"
address6 = "fd00:10:244::1/64"
)";

}  // namespace podgate::ctl
