// The [[services]] tables of a config file (control/config/config.cpp) or of
// `podgatectl apply -f` TOML input: each service read and checked as it is
// read, with file:line:col, through the shared ConfigReader.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "control/config/config.hpp"
#include "control/config/config_reader.hpp"

namespace podgate::ctl {

// maglev_table_size under `t`: a prime in kMinMaglevSize..kMaxMaglevSize;
// nullopt when absent or wrong (then reported).
std::optional<uint32_t> read_maglev_size(ConfigReader& r, const toml::table& t, std::string_view path);

// Appends the services of root's [[services]] array to `out`, each checked
// against `ports` (a cluster IP is not a port address) and the services
// before it (names, VIP:port/protocol once).  Hash lookups, not scans: 10k
// services and 65534 endpoints in a service read in linear time.
void read_services(ConfigReader& r, const toml::table& root, const std::vector<PortConfig>& ports,
                   ServiceList& out);

}  // namespace podgate::ctl
