// A service as the config describes it: its ports and its endpoints
// (EndpointSlice addresses with their conditions).  Part of Config
// (config.hpp); held per service in a ServiceList (service_list.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/net.hpp"

namespace podgate::ctl {

enum class SessionAffinity : uint8_t { kNone, kClientIp };

struct ServicePortConfig {
  std::string name;  // optional; names SRV records
  uint16_t port = 0;
  uint16_t target_port = 0;
  dp::Proto protocol = dp::Proto::kTcp;
  friend bool operator==(const ServicePortConfig&, const ServicePortConfig&) = default;
};

// One address of a service's EndpointSlice, with its conditions.
struct EndpointConfig {
  dp::IpAddr ip;
  std::string pod;        // targetRef name, e.g. "my-app-0"
  std::string hostname;   // endpoint hostname (StatefulSet: the Pod name)
  std::string subdomain;  // Pod subdomain (StatefulSet: its serviceName)
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  uint32_t weight = 1;    // Maglev turn frequency, 1..256

  // What forwarding makes of the conditions (architecture decision 5): a
  // ready endpoint takes new flows; one not ready but still serving (a
  // terminating Pod, or one taken out of rotation with `podgatectl endpoint
  // set --ready=false`) drains: it keeps its flows and takes no new ones.
  bool takes_new_flows() const noexcept { return ready && !terminating; }
  bool keeps_flows() const noexcept { return ready || serving; }
  bool draining() const noexcept { return !takes_new_flows() && keeps_flows(); }
  friend bool operator==(const EndpointConfig&, const EndpointConfig&) = default;
};

enum class ServiceType : uint8_t { kClusterIp, kExternalName };

struct ServiceConfig {
  std::string ns;  // Kubernetes namespace
  std::string name;
  ServiceType type = ServiceType::kClusterIp;
  std::optional<dp::IpAddr> cluster_ip;  // nullopt = headless ("None")
  std::string external_name;             // type = "ExternalName"
  SessionAffinity session_affinity = SessionAffinity::kNone;
  uint32_t affinity_timeout = 10800;     // seconds (ClientIP)
  bool publish_not_ready_addresses = false;
  std::optional<uint32_t> maglev_table_size;  // overrides the default M
  std::vector<ServicePortConfig> ports;
  std::vector<EndpointConfig> endpoints;

  bool headless() const noexcept {
    return type == ServiceType::kClusterIp && !cluster_ip;
  }
  friend bool operator==(const ServiceConfig&, const ServiceConfig&) = default;
};

}  // namespace podgate::ctl
