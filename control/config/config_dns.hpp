// The [dns] table of the config (../shared/design/dns.md): cluster DNS served
// by the control thread.  Part of load_config() (control/config/config.cpp).
#pragma once

#include <vector>

#include <toml++/toml.h>

#include "control/config/config.hpp"
#include "control/config/config_reader.hpp"

namespace podgate::ctl {

// Whether a listen address that did not parse is an IPv6 one ("[::1]:53"),
// refused with its own words: listeners are IPv4 only.
bool is_ip6_listen(std::string_view s);

// Reads the optional [dns] table into `dns`, recording errors in `reader`.
// service_ip is checked against `ports` and `services`, so they are read first.
void read_dns_section(ConfigReader& reader, const toml::table& root,
                      const std::vector<PortConfig>& ports,
                      const ServiceList& services, DnsConfig& dns);

}  // namespace podgate::ctl
