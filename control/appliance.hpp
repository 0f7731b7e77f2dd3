// The running appliance: ports, workers, snapshot publication, the punt
// handler and the control loop (signals: SIGHUP reloads, SIGUSR1 prints
// counters, SIGTERM/SIGINT stop).  EAL must be initialised before start().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "control/config.hpp"
#include "control/control_socket.hpp"
#include "control/dns/server.hpp"
#include "control/dns/vip_answerer.hpp"
#include "control/punt_handler.hpp"
#include "control/result.hpp"
#include "control/snapshot_publisher.hpp"
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

  // Applies a validated config: builds and publishes a new snapshot.
  Result<void> apply(Config next);

  // Counters of every worker and of the control thread, one block of lines.
  std::string format_stats() const;

  const Config& config() const noexcept { return config_; }
  const dp::Snapshot& snapshot() const noexcept { return *publisher_->current(); }

  // Read-only views for the control socket's commands (control_commands.hpp).
  const std::string& version() const noexcept { return version_; }
  uint64_t uptime_ms() const;
  uint64_t generation() const noexcept { return generation_; }
  const std::vector<dp::PortInfo>& ports() const noexcept { return ports_; }
  size_t worker_count() const noexcept { return workers_.size(); }
  const dp::WorkerCounters& worker_counters(size_t w) const { return workers_.at(w)->counters(); }
  const PuntHandler& punt() const noexcept { return *punt_; }
  const dns::DnsServer& dns() const noexcept { return *dns_; }
  const SnapshotPublisher& publisher() const noexcept { return *publisher_; }
  const ControlSocket& control_socket() const noexcept { return *control_; }

 private:
  Appliance() = default;
  Result<void> launch_workers();
  void stop_workers();
  void poll_control(uint64_t now_ms);

  Config config_;
  rte_mempool* pool_ = nullptr;
  std::vector<dp::PortInfo> ports_;
  dp::NeighborTable* neighbors_ = nullptr;
  rte_ring* punt_ring_ = nullptr;
  std::vector<rte_ring*> handoff_rings_;
  std::unique_ptr<SnapshotPublisher> publisher_;
  std::unique_ptr<PuntHandler> punt_;
  std::unique_ptr<ControlSocket> control_;       // podgatectl's socket
  std::unique_ptr<dns::DnsServer> dns_;           // kernel listeners + the current Zone
  std::unique_ptr<dns::VipAnswerer> vip_dns_;     // queries punted from the DNS VIP
  std::vector<dp::Worker*> workers_;
  std::vector<unsigned> worker_lcores_;
  std::atomic<bool> stop_{false};
  uint64_t generation_ = 0;
  uint64_t started_ms_ = 0;
  std::string version_;
};

// Blocks the signals the control loop takes through signalfd; call before
// any thread is created so every thread inherits the mask.
void block_control_signals();

}  // namespace podgate::ctl
