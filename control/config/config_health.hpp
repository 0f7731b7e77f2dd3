// [services.health_check] (issue 13): reading it from TOML with
// file:line:col, the rules across its keys and the service, and the text
// forms the writer, the views and the Kubernetes annotation share.
//
// One rule, one wording: the TOML reader blames a value at its position,
// validate() (any Config, however made) names the service, and both take
// their words from here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <toml++/toml.h>

#include "control/config/config_reader.hpp"
#include "control/config/service_config.hpp"
#include "control/result.hpp"

namespace podgate::ctl {

inline constexpr uint32_t kMinHealthIntervalMs = 100;
inline constexpr uint32_t kMaxHealthIntervalMs = 3600 * 1000;
inline constexpr uint32_t kMinHealthTimeoutMs = 10;
inline constexpr uint32_t kMaxHealthRiseFall = 100;

// "2s", "500ms", "1m": a whole number of milliseconds; nullopt otherwise.
std::optional<uint64_t> parse_duration_ms(std::string_view s) noexcept;
// The shortest of "Nm", "Ns", "Nms" that is exact.
std::string duration_text(uint32_t ms);

std::string_view health_kind_name(HealthKind k) noexcept;
std::optional<HealthKind> parse_health_kind(std::string_view s) noexcept;
std::string_view on_failure_name(HealthOnFailure f) noexcept;
std::string_view all_unhealthy_name(AllUnhealthy a) noexcept;
// "200", "200-399": one status code or a range of them, within 100..599.
std::optional<StatusRange> parse_status_range(std::string_view s) noexcept;
std::string status_range_text(const StatusRange& r);
// DNS query types a check may ask: A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT.
std::optional<uint16_t> parse_query_type(std::string_view s) noexcept;
std::string_view query_type_name(uint16_t t) noexcept;

// Rules on single values, for every input (nullopt: fine).
std::optional<std::string> bad_http_method(std::string_view m);
std::optional<std::string> bad_http_path(std::string_view p);
std::optional<std::string> bad_http_host(std::string_view h);

// The rules across a check's keys and its service (timeout within interval,
// a port of the kind's protocol to probe, a query for dns, an address
// expected only of an A query, no check on an ExternalName service).
// Returns the key to blame ("timeout", "port", ...; "" for the table) and
// the message; nullopt when the check is fine.
std::optional<std::pair<std::string, std::string>> health_check_problem(const ServiceConfig& svc);

// Reads `health_check` under a [[services]] table `t` (path `path`) into
// svc.health_check, reporting every problem with its position.  `svc` has
// its type and ports read already.
void read_health_check(ConfigReader& r, const toml::table& t, std::string_view path,
                       ServiceConfig& svc);

// The Kubernetes annotation's value (docs/kubernetes.md): a JSON object with
// the TOML table's keys, e.g. {"kind": "http", "path": "/healthz"}.  Read by
// the same rules; an error message names the key (no position).
inline constexpr std::string_view kHealthCheckAnnotation = "podgate.io/health-check";
Result<HealthCheckConfig> parse_health_check_json(std::string_view text, const ServiceConfig& svc);

}  // namespace podgate::ctl
