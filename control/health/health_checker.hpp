// The health checker (issue 13): probes every endpoint of every service that
// has a [services.health_check], on the control thread's event loop, and
// turns results into learnt state for the Registry.  Control thread only.
//
// Targets.  One per (service, endpoint address, probed port): the check's
// `port`, or each distinct target_port of the service ports of the kind's
// protocol.  A target keeps its state while that key stays, so a reload or
// `apply` that keeps an endpoint (and changes the check itself, interval,
// path or kind) keeps its health; a new target starts healthy.  A probe in
// flight when its target's plan or timeout changes ends uncounted: its
// reply is not judged by rules it was not sent under.
//
// Spreading.  A new target's first probe is due at a random point of its
// first interval, and every next one an interval later with +-5% jitter, so
// 10,000 endpoints at 1 s make about 10 probes a millisecond, never 10,000
// at one instant.  tick() starts at most `max_starts_per_turn` probes a turn
// of the loop and keeps at most `max_in_flight` sockets open: a backlog
// waits for the next turns instead of holding DNS and the control socket.
// Probes are non-blocking sockets (probe.hpp) watched by the event loop.
//
// Effect.  Each endpoint's unhealthy service ports are what the Registry's
// learnt layer holds for it (registry.hpp); a service without ports (a
// headless one) has the probed port instead, so its unhealthy endpoints
// still leave DNS.  take_changes() gives those that changed since last
// taken, for the Appliance to publish in one snapshot.
// The checker never publishes itself: it runs inside Registry listeners
// and loop handlers.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "control/config/config.hpp"
#include "control/health/health_state.hpp"
#include "control/health/probe.hpp"
#include "control/loop/event_loop.hpp"
#include "control/publish/registry.hpp"

namespace podgate::ctl::health {

// What a target is and how it stands, for podgatectl and /metrics.
struct TargetStatus {
  std::string ns;
  std::string name;
  dp::IpAddr ip;              // either family
  uint16_t port = 0;          // the port probed
  HealthKind kind = HealthKind::kTcp;
  bool healthy = true;
  bool probed = false;        // a result came back at least once
  ProbeResult last;           // the last result (when probed)
  uint32_t successes = 0;     // in a row
  uint32_t failures = 0;      // in a row
  uint64_t last_probe_ms = 0; // monotonic, of the last result
  uint64_t changed_ms = 0;    // monotonic, of the last transition; 0 = never changed
  std::vector<PortRef> ports; // the service ports its result covers
};

class HealthChecker {
 public:
  struct Options {
    uint32_t max_starts_per_turn = 32;
    uint32_t max_events_per_turn = 64;
    // And at most this long a turn on probe events, and as long again on
    // timeouts and starts (checked every few of them).
    uint32_t max_turn_us = 300;
    uint32_t max_in_flight = 4096;
    uint64_t seed = 0;  // jitter; 0 = from the clock
    // Probes in flight are sockets: as many as the descriptor limit allows
    // beside everything else, after raising it to the hard limit.
    static Options for_this_process();
  };
  struct Counters {
    uint64_t probes = 0;                 // started
    uint64_t results[9] = {};            // by Outcome
    uint64_t to_unhealthy = 0;           // transitions
    uint64_t to_healthy = 0;
    uint64_t deferred_turns = 0;         // turns that left due probes for later
  };
  struct Change {
    EndpointRef endpoint;
    std::vector<PortRef> unhealthy;      // sorted; empty: healthy everywhere (see Effect)
  };

  HealthChecker(EventLoop& loop, Options options);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Follows a published Registry version: the services `changes` names (all
  // of them without it) are checked again against `config`.
  void sync(const Config& config, const ServiceDiff* changes, uint64_t now_ms);
  // Times out late probes and starts due ones (bounded); every loop turn.
  void tick(uint64_t now_ms);
  // When tick() next has work: the earliest probe start or probe deadline
  // (a stale start may make it early, never late); nullopt when no probe
  // is due or in flight.  The control loop sleeps no longer than this.
  std::optional<uint64_t> next_due_ms() const noexcept;

  // Endpoints whose unhealthy ports changed since the last take.
  bool has_changes() const noexcept { return !dirty_.empty(); }
  std::vector<Change> take_changes();
  // The last take could not be published: offer its changes again.
  void retry_changes();

  const Counters& counters() const noexcept { return counters_; }
  size_t targets() const noexcept { return targets_.size(); }
  size_t in_flight() const noexcept { return deadlines_.size(); }
  // Every target of service ns/name at `ip` (all of its addresses when
  // `ip` is nullopt), or of every service when `ns` is empty, in key order.
  std::vector<TargetStatus> status(const std::string& ns = {}, const std::string& name = {},
                                   std::optional<dp::IpAddr> ip = std::nullopt) const;
  // At most `max` targets of every service in key order, from the first
  // after `after`'s key (from the very first when null): /metrics reads
  // them a page per loop turn (prometheus_stream.hpp), so a target added or
  // removed between two pages is shown once or not at all, never twice.
  std::vector<TargetStatus> status_after(const TargetStatus* after, size_t max) const;

 private:
  struct Key {
    std::string ns;
    std::string name;
    dp::IpAddr ip;  // IpAddr{} (IPv4 0.0.0.0) orders first
    uint16_t port = 0;
    friend auto operator<=>(const Key&, const Key&) = default;
  };
  struct ServiceCheck {
    HealthCheckConfig check;
    std::vector<ServicePortConfig> ports;
  };
  struct Target;

  void resync(const ServiceConfig& svc, uint64_t now_ms);
  void forget_service(const std::string& ns, const std::string& name);
  void remove_target(std::map<Key, uint64_t>::iterator it);
  void start_probe(Target& t, uint64_t now_ms);
  void on_event(uint64_t id, uint32_t events);
  void poll_probes();
  void finish(Target& t, ProbeResult r, uint64_t now_ms);
  void schedule_next(Target& t, uint64_t now_ms);
  void end_probe(Target& t);
  std::vector<PortRef> covered(const ServiceCheck& sc, uint16_t probed_port) const;
  std::vector<PortRef> unhealthy_ports(const EndpointRef& ref) const;
  TargetStatus status_of(const Target& t) const;

  EventLoop& loop_;
  Options options_;
  int epoll_fd_ = -1;
  EventLoop::WatchId watch_ = EventLoop::WatchId::kNone;
  std::mt19937_64 rng_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Target>> targets_;
  std::map<Key, uint64_t> by_key_;
  std::map<std::pair<std::string, std::string>, ServiceCheck> services_;
  // (due, id): min-heap; an entry whose target is gone, in flight or due at
  // another time is stale and skipped.
  std::priority_queue<std::pair<uint64_t, uint64_t>, std::vector<std::pair<uint64_t, uint64_t>>,
                      std::greater<>>
      due_;
  std::set<std::pair<uint64_t, uint64_t>> deadlines_;  // (deadline, id) of probes in flight
  std::set<EndpointRef> dirty_;
  std::map<EndpointRef, std::vector<PortRef>> published_;  // non-empty entries only
  // What the last take_changes() changed in published_: each endpoint and
  // its entry before (empty: none), for retry_changes().
  std::vector<std::pair<EndpointRef, std::vector<PortRef>>> taken_;
  uint16_t next_query_id_ = 1;
  Counters counters_;
};

}  // namespace podgate::ctl::health
