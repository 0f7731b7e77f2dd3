// The appliance's counters in the Prometheus text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), served by
// MetricsServer (metrics_http.hpp) on GET /metrics.
//
// A pure function of the `stats` and `status` control replies
// (docs/control-protocol.md), so the names and labels here cannot drift
// from what `podgatectl stats` shows, and tests can feed it fixtures.
// Conventions (https://prometheus.io/docs/practices/naming/): counters end
// in `_total`, gauges do not, base units (bytes, seconds), one `# HELP` and
// one `# TYPE` per family before its samples, all samples of a family
// together.  Sections missing from the JSON are skipped; values of the
// wrong type are skipped; a label set seen twice in one family keeps only
// its first sample (Prometheus rejects duplicate series).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace podgate::ctl {

// Families (labels in braces; `_total` = counter, others gauges):
//   podgate_info{version} 1, podgate_uptime_seconds, podgate_workers,
//   podgate_services                                       (from status)
//   podgate_port_link_up{port}, podgate_port_link_speed_bytes_per_second{port}
//     (no sample while status's speed_mbps is null: not known)
//   podgate_port_{rx,tx}_{packets,bytes}_total{port}, podgate_port_rx_missed_total,
//   podgate_port_{rx,tx}_errors_total, podgate_port_rx_nombuf_total
//   podgate_worker_<counter>_total{worker}  (worker="0".., or "control"),
//   podgate_worker_flow_entries{worker}, podgate_drops_total{worker,reason},
//   podgate_control_waiting_for_arp, podgate_control_loop_turns_total,
//   podgate_control_doorbell_rings_total
//   podgate_kernel_twin_<counter>_total{port,iface}  (stats.kernel_twins:
//     to_kernel, to_kernel_failed, from_kernel, from_kernel_rate_limited,
//     from_kernel_refused, rx_wakeups)
//   podgate_service_{packets,bytes}_total{service,port,protocol,direction},
//   podgate_service_flows_created_total{service,port,protocol},
//   podgate_service_flows_active{service,port,protocol}, and the same
//   podgate_endpoint_* with endpoint="IP:PORT" and pod labels added;
//   podgate_service_endpoints{service,port,protocol,state} (from each
//   endpoint's "state" there)
//   podgate_dns_queries_total{transport}, podgate_dns_responses_total{rcode},
//   podgate_dns_{truncated,silent,dropped}_total, podgate_dns_tcp_connections,
//   podgate_dns_tcp_{accepted,idle_closed,evicted,errors}_total
//   podgate_endpoint_healthy{service,endpoint} (1/0), podgate_health_probes_total,
//   podgate_health_probe_results_total{result}, podgate_health_transitions_total{to},
//   podgate_health_probes_in_flight, podgate_health_deferred_total
//     (from stats.health, see admin/health_views.hpp health_metrics_json;
//     the healthy gauge from its "targets": [{service, endpoint, healthy}],
//     which /metrics reads from the checker instead, prometheus_stream.hpp)
//   podgate_snapshot_generation, podgate_snapshot_awaiting_free,
//   podgate_snapshot_freed_total
//   podgate_stats_slots_in_use, podgate_stats_slots_quarantined,
//   podgate_stats_slots_exhausted_total               (stats.stats_slots)
//   podgate_control_socket_connections, podgate_control_socket_<counter>_total
//   podgate_metrics_http_connections, podgate_metrics_http_<counter>_total
//     (from stats.metrics_http, see metrics_http.hpp metrics_counters_json)
std::string render_prometheus(const nlohmann::json& stats, const nlohmann::json& status);

// render_prometheus in the parts /metrics streams (prometheus_stream.hpp),
// in this order:
//   head      status, ports, workers, kernel twins
//             (the services' traffic families)
//   dns       dns
//             (podgate_endpoint_healthy: stats.health.targets)
//   tail      the podgate_health_* counters, snapshot, stats slots,
//             control socket, metrics HTTP
// The five parts together are render_prometheus: no family spans two parts.
std::string render_prometheus_head(const nlohmann::json& stats, const nlohmann::json& status);
std::string render_prometheus_dns(const nlohmann::json& stats);
std::string render_prometheus_tail(const nlohmann::json& stats);

// The health of each checked target: podgate_endpoint_healthy{service,endpoint}.
inline constexpr std::string_view kEndpointHealthy = "podgate_endpoint_healthy";
inline constexpr std::string_view kEndpointHealthyHelp =
    "1 while the endpoint passes its health check, 0 while it fails it";

// How many endpoints a service port has in each state (endpoint_state():
// ready, fallback, draining, not_ready): podgate_service_endpoints{service,
// port,protocol,state}, every state written, 0 included, so that "no
// endpoint ready" is a sample to alert on.  After the traffic families.
inline constexpr std::string_view kServiceEndpoints = "podgate_service_endpoints";
inline constexpr std::string_view kServiceEndpointsHelp =
    "endpoints of the service port by state: ready and fallback take new flows (fallback: serving "
    "and terminating, as none of their family is ready), draining keep their flows, not_ready have none";

// The traffic families of a service port (prefix "podgate_service") and of
// an endpoint ("podgate_endpoint"), in the order the exposition gives them.
inline constexpr std::string_view kServicePrefix = "podgate_service";
inline constexpr std::string_view kServiceWhat = "service port";
inline constexpr std::string_view kEndpointPrefix = "podgate_endpoint";
inline constexpr std::string_view kEndpointWhat = "endpoint of a service port";
enum class TrafficField : uint8_t { kPackets, kBytes, kFlowsCreated, kFlowsActive };
inline constexpr TrafficField kTrafficFields[] = {TrafficField::kPackets, TrafficField::kBytes,
                                                  TrafficField::kFlowsCreated,
                                                  TrafficField::kFlowsActive};
struct TrafficFamily {
  std::string_view suffix;  // "_packets_total": the name is prefix + suffix
  bool counter;             // else a gauge
  bool directions;          // a sample per direction (label direction="in"/"out")
  std::string_view help;    // "packets forwarded per " (+ what is counted)
};
TrafficFamily traffic_family(TrafficField f) noexcept;
// "packets forwarded per <what> (in: client to Pod, out: Pod to client)".
std::string traffic_help(TrafficField f, std::string_view what);

// "# HELP name help" and "# TYPE name counter|gauge" lines.
void append_family_head(std::string& out, std::string_view name, bool counter,
                        std::string_view help);

// A label value escaped for the exposition format: backslash, double quote
// and line feed become \\, \" and \n.
std::string escape_label_value(std::string_view value);

}  // namespace podgate::ctl
