// The running appliance: ports, workers, snapshot publication, the punt
// handler and the control loop (signals: SIGHUP reloads, SIGUSR1 prints
// counters, SIGTERM/SIGINT stop).  EAL must be initialised before start().
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "control/config/config.hpp"
#include "control/admin/control_socket.hpp"
#include "control/control_wait.hpp"
#include "control/dns/server.hpp"
#include "control/dns/vip_answerer.hpp"
#include "control/health/health_checker.hpp"
#include "control/loop/event_loop.hpp"
#include "control/observe/metrics_http.hpp"
#include "control/exception/kernel_twins.hpp"
#include "control/exception/vip_announcer.hpp"
#include "control/publish/punt_handler.hpp"
#include "control/publish/registry.hpp"
#include "control/result.hpp"
#include "control/sd_notify.hpp"
#include "control/publish/snapshot_publisher.hpp"
#include "control/publish/stats_slots.hpp"
#include "control/observe/telemetry.hpp"
#include "dataplane/neighbor_table.hpp"
#include "dataplane/port.hpp"
#include "dataplane/worker.hpp"

namespace podgate::ctl {

class Appliance {
 public:
  // Opens ports, publishes the first snapshot and launches the workers.
  // `version` is reported by the "status" command.
  static Result<std::unique_ptr<Appliance>> start(Config config, std::string version = "unknown");
  ~Appliance();
  Appliance(const Appliance&) = delete;
  Appliance& operator=(const Appliance&) = delete;

  // The control loop; returns when SIGTERM or SIGINT arrives.  The signals
  // must be blocked in every thread (main() does it before EAL init).
  int run();

  // Re-reads the config file and applies it whole, or refuses it whole.
  Result<void> reload();

  // Publishes a change the Registry staged: builds the snapshot from its
  // view, hands it to the workers, then commits it to the Registry, whose
  // listeners (DNS zone, telemetry) follow.  On an error nothing changed.
  Result<void> apply(Registry::Proposal next);

  // A runtime change (control socket: apply, delete, endpoint set): `edit`
  // changes a copy of the desired Config and says whether it changed
  // anything; a change is then checked whole by validate() on the structure
  // and published, or refused with nothing changed.  Each published change
  // counts as unsaved; one that changes nothing publishes nothing.
  Result<void> change(const std::function<Result<bool>(Config&)>& edit);

  // Learnt state about an endpoint (health, drain): published, never
  // counted as unsaved, never written by `config save`.
  Result<void> learn(const EndpointRef& endpoint, const LearntEndpoint& state);

  // Publishes what the health checker found since the last time (at most
  // every kHealthPublishMinMs, and at least twice the last one's cost
  // apart, so a mass failure costs a few snapshots, not one per endpoint).
  static constexpr uint64_t kHealthPublishMinMs = 50;
  void publish_health(uint64_t now_ms);

  // Writes the running state as TOML to `path` (default: the config file)
  // atomically; saving to the config file makes the runtime changes durable.
  // Refused when the file was changed since podgate last read or wrote it
  // (someone's edits, not yet reloaded), unless `force`.
  Result<std::string> save_config(const std::optional<std::string>& path, bool force);

  // The `flows` command: asks every worker for the connections matching
  // `filter` (at most `limit` each); `done` is called from the control loop
  // once all have answered, or with an error after kFlowQueryTimeoutMs.
  struct FlowListing {
    std::vector<std::pair<uint32_t, dp::FlowRecord>> flows;  // (worker, record)
    uint64_t matched = 0;  // over all workers, also beyond the limit
    // list_flow_page(): where each worker's scan stopped
    // (dp::FlowQuery::position()), kFlowScanDone at its end.
    std::vector<uint64_t> stopped_at;
  };
  using FlowsDone = std::function<void(Result<FlowListing>)>;
  static constexpr uint64_t kFlowQueryTimeoutMs = 5000;
  static constexpr size_t kMaxQueuedFlowQueries = 16;
  static constexpr uint64_t kFlowScanDone = UINT64_MAX;
  void list_flows(const dp::FlowFilter& filter, uint32_t limit, FlowsDone done);
  // One page of a listing (control/admin/flow_pages.hpp): worker w scans
  // from[w] on (not at all where it is kFlowScanDone) until it has `limit`
  // matches or its tables end; `matched` is what they kept.
  void list_flow_page(const dp::FlowFilter& filter, uint32_t limit, std::vector<uint64_t> from,
                      FlowsDone done);

  // Runtime changes since the config file was last read or written.
  uint64_t unsaved_changes() const noexcept { return registry_->unsaved_changes(); }

  // Counters of every worker and of the control thread, one block of lines.
  std::string format_stats() const;

  // The desired config (file + runtime edits): what `config save` writes.
  const Config& config() const noexcept { return registry_->desired(); }
  const Registry& registry() const noexcept { return *registry_; }
  const dp::Snapshot& snapshot() const noexcept { return *publisher_->current(); }

  // Read-only views for the control socket's commands (control_commands.hpp).
  const std::string& version() const noexcept { return version_; }
  uint64_t uptime_ms() const;
  uint64_t generation() const noexcept { return registry_->version(); }
  const std::vector<dp::PortInfo>& ports() const noexcept { return ports_; }
  size_t worker_count() const noexcept { return workers_.size(); }
  const dp::WorkerCounters& worker_counters(size_t w) const { return workers_.at(w)->counters(); }
  const char* worker_idle_mode(size_t w) const { return workers_.at(w)->idle_mode(); }
  const PuntHandler& punt() const noexcept { return *punt_; }
  // The control loop's turns (each an epoll wake-up, timed out or not),
  // and how many of them a worker's doorbell started.
  uint64_t loop_turns() const noexcept { return loop_turns_; }
  uint64_t doorbell_rings() const noexcept { return doorbell_->rings(); }
  const KernelTwins& kernel_twins() const noexcept { return *twins_; }
  const dp::NeighborTable& neighbors() const noexcept { return *neighbors_; }
  const dp::NeighborTable6& neighbors6() const noexcept { return *neighbors6_; }
  // The VIP routes BIRD announces; null without [announce].
  const VipAnnouncer* announcer() const noexcept { return announcer_.get(); }
  // `drain`/`undrain`: withdraw every VIP route (established connections
  // carry on wherever the router sends them), or put them back.
  Result<void> set_drained(bool drained);
  const dns::DnsServer& dns() const noexcept { return *dns_; }
  const SnapshotPublisher& publisher() const noexcept { return *publisher_; }
  const ControlSocket& control_socket() const noexcept { return *control_; }
  const StatsSlots& stats_slots() const noexcept { return *slots_; }
  const health::HealthChecker& health() const noexcept { return *health_; }
  // A stats slot's counters summed over the workers.
  TrafficTotals traffic(uint16_t slot) const;

 private:
  Appliance() = default;
  Result<void> reload_unguarded();
  Result<void> change_unguarded(const std::function<Result<bool>(Config&)>& edit);
  Result<void> launch_workers();
  Result<void> check_neighbors_fit(const std::vector<NeighborConfig>& next,
                                   const std::vector<Neighbor6Config>& next6) const;
  void stop_workers();
  // A clean stop begins: every VIP route is withdrawn.  How long to go on
  // forwarding, while the router learns of it: [announce] stop_grace when
  // a route was withdrawn, else 0.
  uint64_t begin_stop();
  // One turn's polling; true when the punt budget ran out with punts left.
  bool poll_control(uint64_t now_ms);
  // What the control thread has on its hands now (control_wait.hpp).
  ControlLoad control_load(bool punts_left) const;
  void advance_flow_queries(uint64_t now_ms);
  void publish_telemetry();
  // One sd_notify(3) message to systemd; nothing outside systemd.
  void notify_systemd(const std::string& state) const;

  std::unique_ptr<Registry> registry_;  // the truth every snapshot and zone is built from
  // The config file's bytes as podgate last read (start, reload) or wrote
  // (config save) them: config_text_digest().
  uint64_t config_file_digest_ = 0;
  // Declared before everything that registers with it: destroyed after them.
  std::unique_ptr<EventLoop> loop_;
  // Probes are watches of loop_: destroyed before it.
  std::unique_ptr<health::HealthChecker> health_;
  uint64_t last_health_publish_ms_ = 0;
  uint64_t last_health_publish_cost_ms_ = 0;
  rte_mempool* pool_ = nullptr;
  std::vector<dp::PortInfo> ports_;
  dp::NeighborTable* neighbors_ = nullptr;
  dp::NeighborTable6* neighbors6_ = nullptr;
  rte_ring* punt_ring_ = nullptr;
  // Rung by a worker that punted while the control thread sleeps.
  std::unique_ptr<dp::Doorbell> doorbell_;
  std::vector<rte_ring*> handoff_rings_;
  // [dataplane] rx_interrupts: each sleeping worker's doorbell, by worker
  // (null where its ports have no RX interrupts); empty when off.
  std::vector<std::unique_ptr<dp::Doorbell>> worker_wakes_;
  std::unique_ptr<SnapshotPublisher> publisher_;
  std::unique_ptr<PuntHandler> punt_;
  std::unique_ptr<KernelTwins> twins_;            // the exception path; empty when none
  std::unique_ptr<VipAnnouncer> announcer_;       // [announce]; null when off
  uint64_t last_announce_check_ms_ = 0;           // announcer_->check_table()
  std::unique_ptr<ControlSocket> control_;       // podgatectl's socket
  std::unique_ptr<dns::DnsServer> dns_;           // kernel listeners + the current Zone
  std::unique_ptr<dns::VipAnswerer> vip_dns_;     // queries punted from the DNS VIP
  std::unique_ptr<StatsSlots> slots_;             // per-endpoint traffic counters
  // apply() ran out of memory after a publication: the next snapshot is
  // built whole, so the stats slots are retained afresh.
  bool build_whole_next_ = false;
  std::unique_ptr<MetricsServer> metrics_;        // GET /metrics; null when off
  TelemetryCache telemetry_;                      // read by DPDK's telemetry thread
  uint64_t last_telemetry_ms_ = 0;
  struct FlowQueryRequest {
    dp::FlowFilter filter;
    uint32_t limit = 0;
    FlowsDone done;
    uint64_t asked_ms = 0;  // 0: not asked yet
    std::vector<uint64_t> from;  // a page's start per worker; empty: the whole tables
  };
  std::deque<FlowQueryRequest> flow_queries_;     // the front one is asked
  bool advancing_flow_queries_ = false;
  std::vector<dp::Worker*> workers_;
  std::vector<unsigned> worker_lcores_;
  std::atomic<bool> stop_{false};
  uint64_t last_reclaim_ms_ = 0;
  uint64_t loop_turns_ = 0;
  uint64_t started_ms_ = 0;
  std::string version_;
  SdNotify sd_notify_ = SdNotify::from_environment();  // NOTIFY_SOCKET
};

// Blocks the signals the control loop takes through signalfd; call before
// any thread is created so every thread inherits the mask.
void block_control_signals();

}  // namespace podgate::ctl
