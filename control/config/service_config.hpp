// A service as the config describes it: its ports and its endpoints
// (EndpointSlice addresses with their conditions).  Part of Config
// (config.hpp); held per service in a ServiceList (service_list.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/net.hpp"

namespace podgate::ctl {

enum class SessionAffinity : uint8_t { kNone, kClientIp };

// A service port by number and protocol (53/UDP and 53/TCP are two).
struct PortRef {
  uint16_t port = 0;
  dp::Proto protocol = dp::Proto::kTcp;
  friend auto operator<=>(const PortRef&, const PortRef&) = default;
  friend bool operator==(const PortRef&, const PortRef&) = default;
};

// [services.health_check] (issue 13): how the appliance probes each
// endpoint of the service by itself.  Config, written by `config save`; the
// results are runtime state in the Registry (control/health/), never here.
enum class HealthKind : uint8_t { kTcp, kHttp, kDns };
// What an endpoint that fails its check loses: new flows only (drain, IPVS's
// quiescent weight 0) or its established flows too (reset, like a removed one).
enum class HealthOnFailure : uint8_t { kDrain, kReset };
// When every endpoint of a service port that would take new flows fails:
// use them all anyway (fail open) or drop new flows (counted no_endpoint).
enum class AllUnhealthy : uint8_t { kFailOpen, kDrop };

struct StatusRange {
  uint16_t lo = 200;
  uint16_t hi = 399;
  friend bool operator==(const StatusRange&, const StatusRange&) = default;
};

struct HealthCheckConfig {
  HealthKind kind = HealthKind::kHttp;  // defaults suit a web service (HAProxy's)
  uint32_t interval_ms = 2000;
  uint32_t timeout_ms = 1000;          // <= interval_ms
  uint32_t rise = 2;                   // successes in a row to turn healthy
  uint32_t fall = 3;                   // failures in a row to turn unhealthy
  // The port probed on every endpoint; absent: each checked service port's
  // target_port (the service ports of the kind's protocol: TCP for tcp and
  // http, UDP for dns).  With it, the one result covers every service port.
  std::optional<uint16_t> port;
  // http
  std::string method = "GET";
  std::string path = "/";
  std::string host;  // the Host header; "" = the endpoint's address
  std::vector<StatusRange> expect_status = {StatusRange{200, 399}};
  // dns: a query for `query` (type `query_type`) must be answered NOERROR
  // with at least one record of that type, and hold `expect_address` when set.
  std::string query;
  uint16_t query_type = 1;  // A
  std::optional<dp::Ip4> expect_address;
  HealthOnFailure on_failure = HealthOnFailure::kDrain;
  AllUnhealthy all_unhealthy = AllUnhealthy::kFailOpen;

  // The protocol the kind probes over.
  dp::Proto protocol() const noexcept {
    return kind == HealthKind::kDns ? dp::Proto::kUdp : dp::Proto::kTcp;
  }
  // Whether the check covers service port `p` (see `port`).
  bool covers(const PortRef& p) const noexcept { return port.has_value() || p.protocol == protocol(); }
  friend bool operator==(const HealthCheckConfig&, const HealthCheckConfig&) = default;
};


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
  // Runtime, never in a config file: the service ports whose health check
  // this endpoint fails (sorted).  Only the Registry's view() has them
  // (apply_learnt); the snapshot builder reads them.
  std::vector<PortRef> unhealthy_ports;

  // What forwarding makes of the conditions (architecture decision 5): a
  // ready endpoint takes new flows; one not ready but still serving (a
  // terminating Pod, or one taken out of rotation with `podgatectl endpoint
  // set --ready=false`) drains: it keeps its flows and takes no new ones,
  // unless its service has no ready endpoint (NewFlowRule below).
  bool takes_new_flows() const noexcept { return ready && !terminating; }
  bool keeps_flows() const noexcept { return ready || serving; }
  bool draining() const noexcept { return !takes_new_flows() && keeps_flows(); }
  bool serving_terminating() const noexcept { return serving && terminating; }
  bool healthy_on(const PortRef& p) const noexcept {
    for (const PortRef& u : unhealthy_ports) {
      if (u == p) return false;
    }
    return true;
  }
  friend bool operator==(const EndpointConfig&, const EndpointConfig&) = default;
};

enum class ServiceType : uint8_t { kClusterIp, kExternalName };

struct ServiceConfig {
  std::string ns;  // Kubernetes namespace
  std::string name;
  ServiceType type = ServiceType::kClusterIp;
  // The Service's clusterIPs: cluster_ip is clusterIPs[0] (either family),
  // nullopt = headless ("None"); secondary_cluster_ip is clusterIPs[1] of a
  // dual-stack service, always of the other family (issue 11).
  std::optional<dp::IpAddr> cluster_ip;
  std::optional<dp::IpAddr> secondary_cluster_ip;
  std::string external_name;             // type = "ExternalName"
  SessionAffinity session_affinity = SessionAffinity::kNone;
  uint32_t affinity_timeout = 10800;     // seconds (ClientIP)
  bool publish_not_ready_addresses = false;
  std::optional<uint32_t> maglev_table_size;  // overrides the default M
  std::vector<ServicePortConfig> ports;
  std::vector<EndpointConfig> endpoints;
  std::optional<HealthCheckConfig> health_check;  // [services.health_check]

  // Every cluster IP, clusterIPs[0] first: none (headless), one or two.
  std::vector<dp::IpAddr> cluster_ips() const {
    std::vector<dp::IpAddr> ips;
    if (cluster_ip) ips.push_back(*cluster_ip);
    if (secondary_cluster_ip) ips.push_back(*secondary_cluster_ip);
    return ips;
  }
  bool headless() const noexcept {
    return type == ServiceType::kClusterIp && !cluster_ip;
  }
  friend bool operator==(const ServiceConfig&, const ServiceConfig&) = default;
};

// Which endpoints of a forwarded service are candidates for new flows,
// before health checks, family by family (a VIP forwards only to endpoints
// of its family: no NAT46).  The ready ones; when a family has none, its
// serving and terminating ones, as kube-proxy does (KEP-1669): a Service
// whose Pods are all being replaced or scaled down keeps answering new
// connections, from Pods still able to serve, until they stop serving.
// An endpoint taken out of rotation (`ready = false` alone) is never a
// candidate: that is the operator's decision, not a shutdown.  Headless
// and ExternalName services, and a family a service has no cluster IP of,
// forward nothing, so they never fall back.
struct NewFlowRule {
  bool fallback4 = false;  // IPv4: no endpoint ready, some serving + terminating
  bool fallback6 = false;

  bool falls_back(dp::Family family) const noexcept {
    return family == dp::Family::kIpv4 ? fallback4 : fallback6;
  }
  bool candidate(const EndpointConfig& e) const noexcept {
    return e.takes_new_flows() || (e.serving_terminating() && falls_back(e.ip.family));
  }
  // Serving and terminating, and a candidate only because nothing is ready.
  bool is_fallback(const EndpointConfig& e) const noexcept {
    return !e.takes_new_flows() && candidate(e);
  }
};

// An endpoint's state, as the control socket, podgatectl and /metrics name
// it: "ready", "fallback" (serving and terminating, taking new flows as its
// family has no ready endpoint), "draining" (keeps its flows, takes no new
// ones) or "not_ready" (has none).  `rule` is its service's new_flow_rule().
inline constexpr std::string_view kEndpointStates[] = {"ready", "fallback", "draining", "not_ready"};
inline std::string_view endpoint_state(const EndpointConfig& e, const NewFlowRule& rule) noexcept {
  if (e.takes_new_flows()) return kEndpointStates[0];
  if (rule.is_fallback(e)) return kEndpointStates[1];
  return e.draining() ? kEndpointStates[2] : kEndpointStates[3];
}

// One pass over the service's endpoints.
inline NewFlowRule new_flow_rule(const ServiceConfig& svc) {
  NewFlowRule rule;
  if (svc.type != ServiceType::kClusterIp) return rule;
  bool vip4 = false, vip6 = false;  // a family without a VIP forwards nothing
  for (const dp::IpAddr& vip : svc.cluster_ips()) (vip.is_v4() ? vip4 : vip6) = true;
  bool ready4 = false, ready6 = false, terminating4 = false, terminating6 = false;
  for (const EndpointConfig& e : svc.endpoints) {
    const bool v4 = e.ip.is_v4();
    (v4 ? ready4 : ready6) |= e.takes_new_flows();
    (v4 ? terminating4 : terminating6) |= e.serving_terminating();
  }
  rule.fallback4 = vip4 && !ready4 && terminating4;
  rule.fallback6 = vip6 && !ready6 && terminating6;
  return rule;
}

// Whether some endpoint of `svc` of `family` takes new flows on `port`: a
// candidate (NewFlowRule), and healthy unless its health check fails open
// when all are unhealthy.  The snapshot builder's rule (choose_endpoints in
// control/publish/service_port_build.hpp); the VIP announcer asks it per
// VIP with the VIP's family.
inline bool port_takes_new_flows(const ServiceConfig& svc, const ServicePortConfig& port, dp::Family family) {
  const PortRef ref{port.port, port.protocol};
  const bool any_will_do = !svc.health_check || svc.health_check->all_unhealthy == AllUnhealthy::kFailOpen;
  const NewFlowRule rule = new_flow_rule(svc);
  for (const EndpointConfig& e : svc.endpoints) {
    if (e.ip.family == family && rule.candidate(e) && (any_will_do || e.healthy_on(ref))) return true;
  }
  return false;
}

}  // namespace podgate::ctl
