// GET /metrics written a piece at a time (issue 14).
//
// At 10,000 services × 2 ports × 10 endpoints the exposition is 184 MB:
// made whole (the `stats` JSON, then render_prometheus) it held the control
// thread, and with it DNS, for seconds per scrape.  A PrometheusStream
// makes the same text a bounded piece per event-loop turn, as the
// scraper reads it (MetricsServer writes the pieces as HTTP/1.1 chunks):
//
//   head      render_prometheus_head(): status, ports, workers, kernel
//             twins (small)
//   services  the eight traffic families of the service ports and their
//             endpoints, one family at a time over the service ports, so
//             each family's HELP/TYPE comes once, before its samples, and
//             its samples are one group (text format 0.0.4); then
//             podgate_service_endpoints, the ports' endpoints by state
//   dns       render_prometheus_dns() (small)
//   health    podgate_endpoint_healthy, one sample per health-checked
//             target (1 MB at 10,000 checked endpoints), a page of
//             targets at a time in the checker's key order
//   tail      render_prometheus_tail(): the health counters, snapshot,
//             stats slots, servers (small)
//
// The services' families and the targets' health are written from the
// config's service list, the traffic figures and the health checker, with
// no JSON in between; their text is exactly what render_prometheus makes
// of the `stats` reply of the same state (tests compare the two).  Each
// part's figures are read as that part is written, as the control socket's
// streamed `stats` does.  Control thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/config/service_list.hpp"
#include "control/health/health_checker.hpp"
#include "control/observe/prometheus.hpp"
#include "control/publish/stats_slots.hpp"

namespace podgate::ctl {

// The service ports /metrics counts, and their figures: the same as the
// `stats` reply's "services" (control_commands.cpp metrics_traffic()).
struct ServiceTraffic {
  // The services as they were at the request: a copy of the list shares
  // every service, so a change meanwhile is not half in the scrape.
  std::shared_ptr<const ServiceList> services;
  // Whether a service's ports are forwarded and counted (in `stats`).
  std::function<bool(const ServiceConfig&)> counted;
  std::function<TrafficTotals(const ServiceConfig&, const ServicePortConfig&)> port;
  std::function<TrafficTotals(const ServiceConfig&, const ServicePortConfig&,
                              const EndpointConfig&)>
      endpoint;
};

// The health-checked targets, for podgate_endpoint_healthy: at most `max`
// of them in the checker's key order, from the first after `after` (from
// the very first when null), as HealthChecker::status_after() gives them.
using HealthTargets = std::function<std::vector<health::TargetStatus>(
    const health::TargetStatus* after, size_t max)>;

// What a scrape is written from; `head`, `dns` and `tail` are called when
// their part is written.
struct PrometheusParts {
  std::function<std::string()> head;  // render_prometheus_head()
  ServiceTraffic traffic;
  std::function<std::string()> dns;   // render_prometheus_dns()
  HealthTargets health;
  std::function<std::string()> tail;  // render_prometheus_tail()
};

class PrometheusStream {
 public:
  explicit PrometheusStream(PrometheusParts parts);

  // Appends the next part of the text to `out`: stops once it appended
  // `budget` bytes or more (at most one sample line past it; the head, dns
  // and tail parts are appended whole) or the text is complete.  False once
  // complete.
  bool next(std::string& out, size_t budget);
  bool done() const noexcept { return stage_ == Stage::kDone; }

  // Every remaining piece at once (tests).
  std::string rest();

 private:
  enum class Stage : uint8_t { kHead, kServices, kDns, kHealth, kTail, kDone };

  // Appends family_'s samples from the cursor on until `out` reaches
  // `limit`; true when the family is complete.
  bool family_samples(std::string& out, size_t limit);
  // One family's samples of a service port or an endpoint (`labels`
  // without the braces; the direction label added where the family has it).
  void samples(std::string& out, TrafficField field, const std::string& labels,
               const TrafficTotals& t) const;
  // Appends podgate_service_endpoints' samples from port_ on until `out`
  // reaches `limit`; true when complete.
  bool endpoint_state_samples(std::string& out, size_t limit);
  // Appends podgate_endpoint_healthy's samples from the target after
  // last_target_ on until `out` reaches `limit`; true when complete.
  bool health_samples(std::string& out, size_t limit);
  const ServiceConfig& service_of(size_t port) const {
    return (*parts_.traffic.services)[ports_[port].first];
  }
  const ServicePortConfig& port_of(size_t port) const {
    return service_of(port).ports[ports_[port].second];
  }

  PrometheusParts parts_;
  std::vector<std::pair<size_t, size_t>> ports_;  // (service, port) of each counted service port
  Stage stage_ = Stage::kHead;
  size_t family_ = 0;         // 0..3 the service port families, 4..7 the endpoints', 8 the states
  bool family_open_ = false;  // its HELP/TYPE written (a family with no sample has none)
  size_t port_ = 0;           // the next service port of the family
  size_t endpoint_ = 0;       // the next endpoint of that port (endpoint families),
                              // or the next of its states (podgate_service_endpoints)
  bool health_open_ = false;  // podgate_endpoint_healthy's HELP/TYPE written
  std::optional<health::TargetStatus> last_target_;  // the last target written
};

}  // namespace podgate::ctl
