// Pieces the control socket's commands share: reading request arguments and
// JSON views of config objects (docs/control-protocol.md).  Control thread only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "control/config/config.hpp"
#include "control/result.hpp"

namespace podgate::ctl {

// ---- request arguments ----

// request[key] as a string; nullopt when absent and optional.
Result<std::optional<std::string>> string_arg(const nlohmann::json& req, const char* key,
                                              bool required);
// request[key] as a bool; nullopt when absent.
Result<std::optional<bool>> bool_arg(const nlohmann::json& req, const char* key);
// request[key] as an integer in lo..hi; nullopt when absent.
Result<std::optional<int64_t>> int_arg(const nlohmann::json& req, const char* key, int64_t lo,
                                       int64_t hi);
// request[key] ("NAMESPACE/NAME") split in two.
Result<std::pair<std::string, std::string>> name_arg(const nlohmann::json& req,
                                                     const char* key = "name");
// The service request["name"] names.
Result<const ServiceConfig*> service_arg(const nlohmann::json& req, const Config& config);

// ---- JSON views of config objects ----

std::string ip_text(const dp::IpAddr& ip);
// The service's IPv4 cluster IP (clusterIPs[0] or [1]), if it has one: what
// the IPv4 dataplane's Snapshot and stats slots are keyed by.  IPv6 VIPs
// are looked up there once the IPv6 dataplane lands (issue 11).
std::optional<dp::Ip4> ipv4_cluster_ip(const ServiceConfig& s);
nlohmann::json port_json(const ServicePortConfig& p);
// The endpoint's fields as configured, and then with its state.
nlohmann::json endpoint_conditions_json(const EndpointConfig& e);
nlohmann::json endpoint_json(const EndpointConfig& e, const NewFlowRule& rule);
nlohmann::json service_summary(const ServiceConfig& s);
nlohmann::json health_check_json(const HealthCheckConfig& h);
nlohmann::json service_detail(const ServiceConfig& s, const DataplaneConfig& d);
// A port's link speed in `status`: its Mb/s (0 while the link is down), or
// null when nobody knows it: the link could not be read (`known` false), or
// the driver says RTE_ETH_SPEED_NUM_UNKNOWN (UINT32_MAX, not a speed).
nlohmann::json link_speed_json(bool known, uint32_t speed_mbps);

}  // namespace podgate::ctl
