// The validation rules shared by every way services enter podgate: the TOML
// config (control/config.cpp) and Kubernetes objects (control/k8s_objects.cpp).
//
// Pure predicates and the message pieces that go with them, so a rule and its
// wording live in one place and both inputs reject the same values with the
// same words (style habit 7: a message names what is wrong and what is allowed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dataplane/net.hpp"

namespace podgate::ctl {

// Maglev slots hold uint16_t endpoint indices, kNoBackend excluded.
inline constexpr size_t kMaxEndpoints = 65534;
// Kubernetes' own limit for sessionAffinityConfig.clientIP.timeoutSeconds.
inline constexpr int64_t kMaxAffinityTimeout = 86400;
// A service port or target port (0 is not a port a client can reach).
inline constexpr int64_t kMinPort = 1;
inline constexpr int64_t kMaxPort = 65535;

// ---- predicates ----

// RFC 1123 label as Kubernetes checks it (IsDNS1123Label).
bool is_dns1123_label(std::string_view s) noexcept;
// RFC 1035 label (IsDNS1035Label): a Service name, it must start with a letter.
bool is_dns1035_label(std::string_view s) noexcept;
// RFC 1123 subdomain, optionally fully qualified with a trailing dot.
bool is_dns_name(std::string_view s) noexcept;
// A port's name in the config: 1..32 of a-z, 0-9, '_' and '-'.
bool is_port_name(std::string_view s) noexcept;
// An address a host or a VIP may have: not 0/8, loopback, multicast or class E.
bool is_unicast_ip4(dp::Ip4 ip) noexcept;
// Not a group address (the first octet's low bit) and not all zero.
bool is_unicast_mac(const dp::MacAddr& mac) noexcept;

// "TCP" or "UDP", the protocols podgate forwards; nullopt for anything else.
std::optional<dp::Proto> parse_protocol(std::string_view s) noexcept;

// ---- message pieces ----

// `s` in double quotes, with '"' and '\' escaped.
std::string quote(std::string_view s);
// "path.key", or "key" at the top level.
std::string key_path(std::string_view path, std::string_view key);
// "path[i]".
std::string element_path(std::string_view path, size_t i);
// "80/TCP".
std::string port_and_protocol(uint16_t port, dp::Proto protocol);

// "<value> is not in lo..hi"; `value` is a number's text when it does not fit
// an int64_t.
std::string not_in_range(int64_t value, int64_t lo, int64_t hi);
std::string not_in_range(std::string_view value, int64_t lo, int64_t hi);

// "\"s\" is not a DNS-1123 label (...)", the rule spelled out.
std::string not_dns1123_label(std::string_view s);
// "\"s\" is not a DNS-1035 label (...)", the rule spelled out.
std::string not_dns1035_label(std::string_view s);
// "\"s\" is not a DNS name (...), e.g. \"db.example.com\"".
std::string not_dns_name(std::string_view s);
// "\"s\" is not an IPv4 address such as \"<example>\"".
std::string not_ip4(std::string_view s, std::string_view example);
// "\"s\" is not a unicast address (0/8, 127/8 and 224/3 are not allowed)".
std::string not_unicast_ip4(std::string_view s);
// "\"s\" is not supported; allowed: TCP, UDP".
std::string unsupported_protocol(std::string_view s);

}  // namespace podgate::ctl
