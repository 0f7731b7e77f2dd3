// validate()'s rules for the appliance's own network (control/config/validate_network.cpp):
// [[ports]] (address, address6), [[routes]] and [[neighbors]] of both
// families.  Internal to validate_config.cpp; errors read as validate()'s.
#pragma once

#include <cstddef>
#include <string>

#include "control/config/config.hpp"
#include "control/config/diagnostics.hpp"

namespace podgate::ctl {

// "port NAME", or "ports[i]" for a port without a name.
std::string port_object(const Config& c, size_t i);
// A prefix's network with its length: "10.0.0.0/24", "fd00:1::/64".
std::string subnet_text(const dp::Prefix4& p);
std::string subnet_text(const dp::Prefix6& p);

// Records each error through `diag` at its object (Diagnostics::at_object);
// returns whether every port address is valid (on-link checks elsewhere are
// meaningful only then).
bool check_network(const Config& c, Diagnostics& diag);

}  // namespace podgate::ctl
