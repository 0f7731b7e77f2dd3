// The validation rules shared by every way configuration enters podgate: the
// TOML config (control/config/config.cpp), Kubernetes objects
// (control/config/k8s_objects.cpp) and runtime changes (control/publish/registry.hpp).
//
// validate() checks a whole Config on its structure, every rule across
// objects included, with errors naming the object (architecture decision 9).
// Below it, pure predicates and the message pieces that go with them, so a
// rule and its wording live in one place and every input rejects the same
// values with the same words (style habit 7: a message names what is wrong
// and what is allowed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/config/config.hpp"
#include "control/config/diagnostics.hpp"
#include "control/result.hpp"
#include "dataplane/net.hpp"

namespace podgate::ctl {

// Every rule a Config obeys, checked on the structure (control/config/validate_config.cpp):
// value ranges, and the rules across objects (names and VIP:port/protocol
// used once, next hops and neighbours on a connected subnet, the DNS VIP an
// address of its own, ...).  All errors are reported, one a line, each
// naming its object:
//   service default/web, endpoint 10.0.0.7: weight 0 is not in 1..256
// ErrorCode::kInvalidConfig.  Cost: O(objects) with hashing, no text.
Result<void> validate(const Config& config);
// The same, recording each error through `diag` at its object
// (Diagnostics::at_object): the TOML loader's read "FILE: OBJECT: what".
void validate(const Config& config, Diagnostics& diag);

class ServiceIndex;
// validate() for a change that touched services only (everything else as
// in a Config that passed validate()): `diff` is from that Config's services
// to next's, `index` describes that Config's services.  Checks the services
// the change added or changed, each by every rule, and across services
// against `index`: O(services changed), not O(services).  Same errors, same
// words as validate().
Result<void> validate_change(const Config& next, const ServiceDiff& diff, const ServiceIndex& index);

// Maglev slots hold uint16_t endpoint indices, kNoBackend excluded.
inline constexpr size_t kMaxEndpoints = 65534;
// Kubernetes' own limit for sessionAffinityConfig.clientIP.timeoutSeconds.
inline constexpr int64_t kMaxAffinityTimeout = 86400;
// A service port or target port (0 is not a port a client can reach).
inline constexpr int64_t kMinPort = 1;
inline constexpr int64_t kMaxPort = 65535;
inline constexpr int64_t kMaxWorkers = 64;
inline constexpr int64_t kMaxTimeout = 604800;  // a week; FlowTable takes up to ~24 days
inline constexpr int64_t kMaxIdleSleepUs = 100000;  // [dataplane] idle_sleep_us: 0.1 s
inline constexpr int64_t kMinMaglevSize = 7;
inline constexpr int64_t kMaxMaglevSize = 1 << 24;
inline constexpr int64_t kMaxWeight = 256;
// A port's MTU: IPv4's least (RFC 791) to jumbo frames; on a port with an
// address6 at least IPv6's least (RFC 8200 section 5), as hosts ignore a
// Packet Too Big below it (RFC 8201 section 4).
inline constexpr int64_t kMinPortMtu = 68;
inline constexpr int64_t kMinPortMtu6 = 1280;
inline constexpr int64_t kMaxPortMtu = 9000;
inline constexpr size_t kMaxSocketPath = 107;   // sockaddr_un.sun_path (108) less the final NUL
inline constexpr size_t kMaxZoneLength = 200;   // [dns] zone, in characters without the final dot

// ---- predicates ----

// RFC 1123 label as Kubernetes checks it (IsDNS1123Label).
bool is_dns1123_label(std::string_view s) noexcept;
// RFC 1035 label (IsDNS1035Label): a Service name, it must start with a letter.
bool is_dns1035_label(std::string_view s) noexcept;
// RFC 1123 subdomain as Kubernetes checks it (IsDNS1123Subdomain): a Pod's
// name; at most 253 characters, dot-separated labels of a-z, 0-9 and '-'
// that start and end with a letter or digit.
bool is_dns1123_subdomain(std::string_view s) noexcept;
// RFC 1123 subdomain, optionally fully qualified with a trailing dot.
bool is_dns_name(std::string_view s) noexcept;
// A port's name in the config: 1..32 of a-z, 0-9, '_' and '-'.
bool is_port_name(std::string_view s) noexcept;
// A Linux network interface name podgate may create: 1..15 (IFNAMSIZ - 1)
// of a-z, A-Z, 0-9, '_', '-' and '.', not "." or "..".
bool is_interface_name(std::string_view s) noexcept;
// An address a host or a VIP may have: not 0/8, loopback, multicast or class E.
bool is_unicast_ip4(dp::Ip4 ip) noexcept;
// An IPv6 address a host or a VIP may have: not ::, ::1, IPv4-mapped
// (::ffff:0:0/96) or multicast (ff00::/8) (RFC 4291 section 2.5).
bool is_unicast_ip6(const dp::Ip6& ip) noexcept;
// is_unicast_ip4 or is_unicast_ip6 by the address's family.
bool is_unicast_ip(const dp::IpAddr& ip) noexcept;
// Not a group address (the first octet's low bit) and not all zero.
bool is_unicast_mac(const dp::MacAddr& mac) noexcept;

// Maglev (NSDI'16 section 3.4) needs a prime table size.
bool is_prime(uint32_t n) noexcept;
// Whether two prefixes share an address.
bool overlaps(dp::Prefix4 a, dp::Prefix4 b) noexcept;
bool overlaps(const dp::Prefix6& a, const dp::Prefix6& b) noexcept;
// POSIX portable group names (IEEE Std 1003.1, 3.437): [control] group.
bool is_group_name(std::string_view s) noexcept;

// "TCP" or "UDP", the protocols podgate forwards; nullopt for anything else.
std::optional<dp::Proto> parse_protocol(std::string_view s) noexcept;

// Warnings: what the config may do but is seldom meant (validate_warnings.cpp),
// one line each naming the object.  A VIP inside a port's connected subnet
// is one: podgate answers ARP for it there, which is right for a VIP
// announced on the clients' LAN and wrong when a host has that address.
std::vector<std::string> config_warnings(const Config& config);

// ---- message pieces ----

// quote(), key_path() and element_path(): control/config/diagnostics.hpp.
// "80/TCP".
std::string port_and_protocol(uint16_t port, dp::Proto protocol);
// "10.96.0.20:80/TCP", "[fd00:10:96::20]:80/TCP": `what` is port_and_protocol's.
std::string vip_port_text(const dp::IpAddr& vip, std::string_view what);

// "<value> is not in lo..hi"; `value` is a number's text when it does not fit
// an int64_t.
std::string not_in_range(int64_t value, int64_t lo, int64_t hi);
std::string not_in_range(std::string_view value, int64_t lo, int64_t hi);

// "\"s\" is not a DNS-1123 label (...)", the rule spelled out.
std::string not_dns1123_label(std::string_view s);
// "\"s\" is not a DNS-1123 subdomain (...)", the rule spelled out; `s` is
// quoted with anything unprintable escaped.
std::string not_dns1123_subdomain(std::string_view s);
// "\"s\" is not a DNS-1035 label (...)", the rule spelled out.
std::string not_dns1035_label(std::string_view s);
// "\"s\" is not a DNS name (...), e.g. \"db.example.com\"".
std::string not_dns_name(std::string_view s);
// "\"s\" is not an IPv4 address such as \"<example>\"".
std::string not_ip4(std::string_view s, std::string_view example);
// "\"s\" is not a unicast address (0/8, 127/8 and 224/3 are not allowed)".
std::string not_unicast_ip4(std::string_view s);
// "\"s\" is not a unicast IPv6 address (::, ::1, ::ffff:0:0/96 and ff00::/8 ...)".
std::string not_unicast_ip6(std::string_view s);
// not_unicast_ip4 or not_unicast_ip6 by `ip`'s family, naming its text.
std::string not_unicast_ip(const dp::IpAddr& ip);
// "\"s\" is not an IPv4 or IPv6 address such as \"<example>\"".
std::string not_ip(std::string_view s, std::string_view example);
// "\"s\" is an IPv6 address; <what> takes IPv4 only": where IPv6 is not
// (yet) meant (dns listen and service_ip, metrics listen, a port's
// address, a health check's expect_address).
std::string ip6_where_ip4(std::string_view s, std::string_view what);
// "\"s\" is link-local (fe80::/10); <what> needs a global or unique-local
// address": a cluster IP or an endpoint must be routable.
std::string link_local_not_allowed(std::string_view s, std::string_view what);
// "<mtu> is not in 1280..9000; a port with an address6 carries IPv6, whose
// links have an MTU of at least 1280 (RFC 8200 section 5)".
std::string mtu_too_small_for_ipv6(int64_t mtu);
// "\"s\" is not supported; allowed: TCP, UDP".
std::string unsupported_protocol(std::string_view s);

}  // namespace podgate::ctl
