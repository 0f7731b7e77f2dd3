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

}  // namespace podgate::ctl
