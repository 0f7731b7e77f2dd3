// The IPv6 parts of the appliance's own network in conf/podgate.toml (issue
// 11): [[ports]] address6, and the [[routes]] and [[neighbors]] entries
// whose addresses are IPv6 (one table each for both families, told apart
// by the address, as `ip route` and `ip neigh` do).  Messages follow
// config.cpp's form: `FILE:LINE:COL: KEY.PATH: what was found and what is
// allowed`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "control/config/config.hpp"
#include "control/config/config_reader.hpp"

namespace podgate::ctl {

// Whether t[key] is a string that looks like an IPv6 address or prefix
// (has a ':'): the entry is then read by the functions below.
bool is_ip6_entry(const toml::table& t, std::string_view key);

// ports[i].address6 = "fd00:1::1/64", checked against the earlier ports;
// nullopt when absent or wrong (`complete` is cleared when wrong).
std::optional<dp::Prefix6> read_port_address6(ConfigReader& r, const toml::table& t,
                                              const std::string& p,
                                              const std::vector<PortConfig>& earlier,
                                              bool& complete);

// A [[routes]] table with an IPv6 prefix: via is an IPv6 next hop on link
// for some port's address6, or "::" for a connected route.
void read_route6(ConfigReader& r, const toml::table& t, const std::string& p,
                 const std::vector<PortConfig>& ports, bool ports_complete,
                 std::vector<Route6Config>& out);

// A [[neighbors]] table with an IPv6 ip, on link for some port's address6.
void read_neighbor6(ConfigReader& r, const toml::table& t, const std::string& p,
                    const std::vector<PortConfig>& ports, bool ports_complete,
                    std::vector<Neighbor6Config>& out);

}  // namespace podgate::ctl
