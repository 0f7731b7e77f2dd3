// Setting up a kernel network interface from podgate: its MAC, MTU, link,
// IPv4 addresses and routes, as `ip link`/`ip addr`/`ip route` would.  The
// MAC, MTU and link use the classic SIOCSIF* ioctls; addresses and routes
// use rtnetlink (RFC 3549), which, unlike the ioctls, adds a second address
// without an alias name.  Every failure names the interface, what was
// asked and the kernel's reason.
#pragma once

#include <string>
#include <vector>

#include "control/result.hpp"
#include "dataplane/net.hpp"

namespace podgate::ctl::netdev {

Result<void> set_mac(const std::string& iface, const dp::MacAddr& mac);
Result<void> set_mtu(const std::string& iface, uint16_t mtu);
Result<void> set_up(const std::string& iface);

// No IPv6 on the interface (no link-local address, router or MLD traffic):
// /proc/sys/net/ipv6/conf/IFACE/disable_ipv6.  Succeeds where the kernel
// has no IPv6 at all.
Result<void> disable_ipv6(const std::string& iface);

// `sysctl net.ipv4.conf.IFACE.KEY=VALUE`: /proc/sys/net/ipv4/conf/IFACE/KEY.
Result<void> set_ipv4_conf(const std::string& iface, const std::string& key, int value);

// `ip addr add ADDRESS/LENGTH dev IFACE` (an address already there is fine).
Result<void> add_address(const std::string& iface, dp::Prefix4 address);

inline constexpr uint32_t kMainTable = 254;  // RT_TABLE_MAIN

// `ip route replace PREFIX [via VIA] dev IFACE table TABLE proto static`;
// a zero `via` makes an on-link route (scope link).
Result<void> add_route(const std::string& iface, dp::Prefix4 prefix, dp::Ip4 via,
                       uint32_t table = kMainTable);

// `ip route del PREFIX dev IFACE table TABLE` (a route already gone is fine).
Result<void> delete_route(const std::string& iface, dp::Prefix4 prefix, uint32_t table);

// The destinations of the /32 routes `ip -4 route show table TABLE dev
// IFACE proto static` lists (those add_route() puts there, unless the
// kernel took them away with the link, or someone deleted them); none
// where the table was never used.
Result<std::vector<dp::Ip4>> host_routes(const std::string& iface, uint32_t table);

}  // namespace podgate::ctl::netdev
