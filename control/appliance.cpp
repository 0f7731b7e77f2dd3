// Appliance: changes (apply, reload, runtime edits, learnt state), the
// flow queries, and the control thread's loop; its start, the workers'
// launch and teardown are appliance_start.cpp.
#include "control/appliance.hpp"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <optional>
#include <sstream>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "control/config/config_writer.hpp"
#include "control/config/memory_plan.hpp"
#include "control/config/start_settings.hpp"
#include "control/config/validate.hpp"
#include "control/admin/control_changes.hpp"
#include "control/admin/control_commands.hpp"
#include "control/admin/health_views.hpp"
#include "control/log.hpp"
#include "control/dns/zone_updater.hpp"
#include "control/observe/prometheus_stream.hpp"
#include "control/publish/snapshot_builder.hpp"

namespace podgate::ctl {

Result<void> Appliance::apply(Registry::Proposal next) {
  // Stats slots taken for a snapshot that is never published go back, on
  // every way out before the publication (issue 15: in_use 4 -> 9).
  struct AbandonSlotsUnlessPublished {
    StatsSlots* slots;
    bool published = false;
    ~AbandonSlotsUnlessPublished() {
      if (!published && slots != nullptr) slots->abandon();
    }
  } slots_guard{slots_.get()};
  const Config& view = *next.view;  // desired config with learnt state applied
  std::unique_ptr<dp::Snapshot> snap;
  BuildStats stats;
  std::vector<dp::MacAddr> macs;
  for (const dp::PortInfo& p : ports_) macs.push_back(p.mac);
  SnapshotInputs in{&view, macs, publisher_->current(), registry_->version() + 1, slots_.get(),
                    next.services_only && !build_whole_next_ ? &next.view_changes : nullptr};
  const uint64_t build_started_ms = monotonic_ms();
  try {
    snap = build_snapshot(in, &stats);
  } catch (const std::bad_alloc&) {
    // Maglev tables and maps live in DPDK memory: a change too big for it
    // is refused here, before anything is published (the running snapshot,
    // the Registry and the builder's index stay as they were; the guard
    // gives back the stats slots the build took).
    return make_error(ErrorCode::kDpdk,
                      "out of DPDK memory building the snapshot (" + plan_memory(view).report() +
                          "); nothing was changed. Give EAL more memory (-m, hugepages) or lower "
                          "[dataplane] maglev_table_size");
  }
  // Whole or nothing (architecture decision 6): everything that can refuse
  // this change is asked before anything changes.  Then the static
  // neighbours go in (before the snapshot whose routes use them), and the
  // publication cannot fail: this thread is the rings' only producer.
  if (auto r = check_neighbors_fit(view.neighbors, view.neighbors6); !r) return r;
  if (auto r = publisher_->check_room(); !r) return r;
  for (const NeighborConfig& n : view.neighbors) {
    if (!neighbors_->set(n.ip, n.mac)) {
      return make_error(ErrorCode::kInternal, "neighbour table full adding " + dp::to_string(n.ip) +
                                                  " although the dry run found room");
    }
  }
  for (const Neighbor6Config& n : view.neighbors6) {
    if (!neighbors6_->set(n.ip, n.mac)) {
      return make_error(ErrorCode::kInternal, "IPv6 neighbour table full adding " + dp::to_string(n.ip) +
                                                  " although the dry run found room");
    }
  }
  if (auto r = publisher_->publish(std::move(snap)); !r) return r;
  // Published: the workers take the new version, and nothing below undoes
  // it.  So the slots it uses are kept first, and memory running out from
  // here is reported as what it is, not as "nothing was changed".
  slots_guard.published = true;
  build_whole_next_ = false;
  std::string behind;
  try {
    slots_->commit_taken();
    std::vector<dp::Ip4> statics;
    for (const NeighborConfig& n : view.neighbors) statics.push_back(n.ip);
    punt_->set_static_neighbors(statics);
    std::vector<dp::Ip6> statics6;
    for (const Neighbor6Config& n : view.neighbors6) statics6.push_back(n.ip);
    punt_->set_static_neighbors6(statics6);
    if (stats.incremental) {
      slots_->release(stats.dropped, *publisher_->current(), monotonic_ms());
      slots_->release(stats.dropped6, *publisher_->current(), monotonic_ms());
    } else {
      slots_->retain(*publisher_->current(), monotonic_ms());
    }
  } catch (const std::bad_alloc&) {
    behind = "the static neighbours and the traffic counters' slots";
    build_whole_next_ = true;
  }
  // The new version: its listeners (DNS zone, health checks, announcements,
  // telemetry) follow right after the snapshot, so DNS and forwarding
  // change together.
  if (!registry_->commit(std::move(next), publisher_->current())) {
    behind += std::string(behind.empty() ? "" : ", and ") + "what follows each version (DNS zone, health checks, VIP announcements, kernel twin routes)";
  }
  try {
    log_info("published snapshot " + std::to_string(registry_->version()) + ": " +
             std::to_string(stats.services_built) + " Maglev table(s) built, " +
             std::to_string(stats.services_shared) + " shared, in " +
             std::to_string(monotonic_ms() - build_started_ms) + " ms");
  } catch (const std::bad_alloc&) {
    behind += std::string(behind.empty() ? "" : ", and ") + "the log line";
  }
  if (!behind.empty()) {
    return make_error(ErrorCode::kInternal,
                      "out of memory after publishing version " + std::to_string(registry_->version()) +
                          ", which forwarding runs: " + behind +
                          " did not follow it; they catch up at the next change");
  }
  return {};
}

// A dry run of apply()'s neighbour updates on a scratch table: a slot for
// slot copy of the live one (static entries, learnt ones and forgotten ones
// whose slots set() may take over), then `next`, in apply()'s order.  Only
// this thread writes the live table, so this is exactly what it would do.
Result<void> Appliance::check_neighbors_fit(const std::vector<NeighborConfig>& next,
                                            const std::vector<Neighbor6Config>& next6) const {
  if (next.empty() && next6.empty()) return {};
  std::unique_ptr<dp::NeighborTable6> scratch6(new dp::NeighborTable6());
  scratch6->copy_from(*neighbors6_);
  for (const Neighbor6Config& n : next6) {
    if (!scratch6->set(n.ip, n.mac)) {
      return make_error(ErrorCode::kInvalidConfig,
                        "neighbors: no room for " + dp::to_string(n.ip) + " in the IPv6 neighbour table (" +
                            std::to_string(neighbors6_->size()) + " entries; at most " +
                            std::to_string(dp::NeighborTable6::kMaxProbe) +
                            " resolved addresses may share a hash bucket); nothing was changed");
    }
  }
  std::unique_ptr<dp::NeighborTable> scratch(new dp::NeighborTable());
  scratch->copy_from(*neighbors_);
  for (const NeighborConfig& n : next) {
    if (!scratch->set(n.ip, n.mac)) {
      return make_error(ErrorCode::kInvalidConfig,
                        "neighbors: no room for " + dp::to_string(n.ip) +
                            " in the neighbour table (" + std::to_string(neighbors_->size()) +
                            " entries; at most " + std::to_string(dp::NeighborTable::kMaxProbe) +
                            " resolved addresses may share a hash bucket); nothing was changed");
    }
  }
  return {};
}

namespace {

// The change boundary (issue 14): memory running out while a change is
// staged or built is an error reply, never an abort.  What throws here
// threw before the snapshot was published, so nothing has changed;
// apply() reports memory running out after the publication itself.
template <typename F>
Result<void> out_of_memory_is_an_error(const char* what, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kInternal, std::string(what) +
                                                ": out of memory; nothing was changed");
  }
}

}  // namespace

Result<void> Appliance::reload() {
  return out_of_memory_is_an_error("reload", [this] { return reload_unguarded(); });
}

Result<void> Appliance::reload_unguarded() {
  const Config& running = config();
  auto next = load_config(running.source);
  if (!next) return std::move(next).error();
  // What DPDK was set up with cannot change without a restart.  Compared
  // with defaults resolved: a file that spells one out changes nothing.
  std::vector<dp::ClientAddress> clients;  // what start chose, or was told
  for (const dp::PortInfo& p : ports_) clients.push_back(p.client);
  const StartSettings now = start_settings(running, clients), wanted = start_settings(*next, clients);
  if (!(wanted == now)) {
    std::string changed;
    const auto name = [&changed](bool differs, const char* section) {
      if (differs) changed += (changed.empty() ? "" : ", ") + std::string(section);
    };
    name(!(wanted.eal == now.eal), "[eal]");
    name(!(wanted.dataplane == now.dataplane), "[dataplane]");
    name(!(wanted.ports == now.ports), "[[ports]]");
    name(!(wanted.announce == now.announce), "[announce]");
    return make_error(ErrorCode::kInvalidConfig,
                      running.source + ": " + changed + " changed, but [eal], [dataplane], [[ports]] and "
                                       "[announce] cannot change on reload; restart podgate to change them");
  }
  if (!(next->control == running.control)) {
    return make_error(ErrorCode::kInvalidConfig,
                      running.source + ": [control] (socket, mode, group, idle_timeout) cannot "
                                       "change on reload (the socket is set up at start); "
                                       "restart podgate to change it");
  }
  if (!(next->metrics == running.metrics)) {
    return make_error(ErrorCode::kInvalidConfig,
                      running.source + ": metrics.listen cannot change on reload (the socket is "
                                       "bound at start); restart podgate to change it");
  }
  if (!(next->dns.listen == running.dns.listen)) {
    return make_error(ErrorCode::kInvalidConfig,
                      running.source + ": dns.listen cannot change on reload (the sockets are "
                                       "bound at start); restart podgate to change it");
  }
  // The twins' /32 for the DNS VIP and the TCP listener on it (TCP queries
  // go up to the kernel) are set up at start.  Without twins the VIP is
  // the dataplane's alone, which follows each snapshot.
  if (!twins_->empty() && next->dns.service_ip != running.dns.service_ip) {
    return make_error(ErrorCode::kInvalidConfig,
                      running.source + ": dns.service_ip cannot change on reload while ports have "
                                       "kernel twins (its address and TCP listener are set up at "
                                       "start); restart podgate to change it");
  }
  const uint64_t dropped = unsaved_changes();
  const uint64_t digest = next->source_digest;
  auto proposal = registry_->stage_file(std::move(*next));
  if (!proposal) return std::move(proposal).error();
  if (auto r = apply(std::move(*proposal)); !r) return r;
  config_file_digest_ = digest;
  // Published: memory running out from here costs log lines, and is no
  // "nothing was changed" (out_of_memory_is_an_error).
  try {
    if (dropped != 0) {
      log_info("reload: " + std::to_string(dropped) + " unsaved runtime change(s) replaced by " +
               config().source);
    }
    for (const std::string& w : config_warnings(config())) log_warn(config().source + ": " + w);
  } catch (const std::bad_alloc&) {
    // The warnings are lost (logging them needs memory too); the reload stands.
  }
  return {};
}

Result<void> Appliance::change(const std::function<Result<bool>(Config&)>& edit) {
  return out_of_memory_is_an_error("change", [&] { return change_unguarded(edit); });
}

Result<void> Appliance::change_unguarded(const std::function<Result<bool>(Config&)>& edit) {
  // Every rule a config file obeys, including those across services (a VIP
  // used twice, a VIP on a port's subnet, ...), checked on the structure by
  // validate(); no text is written or parsed.
  auto next = registry_->stage_edit(edit);
  if (!next) return std::move(next).error();
  if (!next->changed) return {};  // the same state twice publishes nothing
  return apply(std::move(*next));
}

Result<void> Appliance::learn(const EndpointRef& endpoint, const LearntEndpoint& state) {
  return out_of_memory_is_an_error("learn", [&]() -> Result<void> {
    Registry::Proposal next = registry_->stage_learnt(endpoint, state);
    if (!next.changed) return {};
    return apply(std::move(next));
  });
}

void Appliance::publish_health(uint64_t now_ms) {
  // At least kHealthPublishMinMs apart, and twice as long as the last one
  // took: a big service's Maglev table rebuilt for every flapping Pod
  // takes at most a third of the control thread.
  const uint64_t gap = std::max(kHealthPublishMinMs, 2 * last_health_publish_cost_ms_);
  if (!health_->has_changes() || now_ms - last_health_publish_ms_ < gap) return;
  last_health_publish_ms_ = now_ms;
  struct Cost {
    uint64_t& out;
    uint64_t started = monotonic_ms();
    ~Cost() { out = monotonic_ms() - started; }
  } cost{last_health_publish_cost_ms_};
  auto r = out_of_memory_is_an_error("health", [&]() -> Result<void> {
    std::vector<std::pair<EndpointRef, std::vector<PortRef>>> changes;
    for (health::HealthChecker::Change& c : health_->take_changes()) {
      changes.emplace_back(std::move(c.endpoint), std::move(c.unhealthy));
    }
    Registry::Proposal next = registry_->stage_health(changes);
    if (!next.changed) return {};
    return apply(std::move(next));
  });
  if (!r) {
    // Offered again on a later turn (the interval above paces the retries).
    log_error("health: publishing endpoint health failed, retrying: " + r.error().message);
    health_->retry_changes();
  }
}

Result<std::string> Appliance::save_config(const std::optional<std::string>& path, bool force) {
  const std::string target = path.value_or(config().source);
  if (path && (path->empty() || path->front() != '/')) {
    return make_error(ErrorCode::kInvalidRequest,
                      "\"" + target + "\" is not an absolute path; podgate's working directory "
                                      "is not the client's");
  }
  // podgate runs as root and any member of the control socket's group may
  // ask: it writes only the file it was started with, never a path a
  // client chose (issue 15).  A copy elsewhere is the client's to write,
  // with its own permissions (action "toml"; podgatectl config save PATH).
  if (target != config().source) {
    return make_error(ErrorCode::kInvalidRequest,
                      "config save writes only the config file podgate was started with (" +
                          config().source + "), not \"" + target +
                          "\"; to keep a copy elsewhere, write the running config yourself "
                          "(podgatectl config save PATH does: action \"toml\")");
  }
  // Edits made to the file since podgate read it would be lost without a
  // word: refused, as a version check refuses a stale write.  A file that
  // is gone has nothing to lose.
  if (struct stat st {}; !force && ::stat(target.c_str(), &st) == 0) {
    auto now = read_config_file(target);
    if (!now) return std::move(now).error();
    if (config_text_digest(*now) != config_file_digest_) {
      return make_error(ErrorCode::kConflict,
                        target + " was changed since podgate last read or wrote it; saving would "
                                 "overwrite those edits: reload to use them, or save with \"force\": "
                                 "true (podgatectl config save --force) to replace them");
    }
  }
  const std::string text = config_to_toml(config());
  if (auto r = write_file_atomically(target, text); !r) {
    return std::move(r).error();
  }
  config_file_digest_ = config_text_digest(text);
  registry_->saved_to_file();
  log_info("config saved to " + target);
  return target;
}

void Appliance::list_flows(const dp::FlowFilter& filter, uint32_t limit, FlowsDone done) {
  if (flow_queries_.size() >= kMaxQueuedFlowQueries) {
    done(make_error(ErrorCode::kInternal, "too many flow listings in progress (" +
                                              std::to_string(kMaxQueuedFlowQueries) +
                                              "); try again"));
    return;
  }
  flow_queries_.push_back(FlowQueryRequest{filter, limit, std::move(done), 0, {}});
  advance_flow_queries(monotonic_ms());
}

void Appliance::list_flow_page(const dp::FlowFilter& filter, uint32_t limit, std::vector<uint64_t> from,
                               FlowsDone done) {
  if (from.size() != workers_.size()) {
    done(make_error(ErrorCode::kInternal, "a flow page asked of " + std::to_string(from.size()) +
                                              " worker(s), there are " + std::to_string(workers_.size())));
    return;
  }
  if (flow_queries_.size() >= kMaxQueuedFlowQueries) {
    done(make_error(ErrorCode::kInternal, "too many flow listings in progress (" +
                                              std::to_string(kMaxQueuedFlowQueries) +
                                              "); try again"));
    return;
  }
  flow_queries_.push_back(FlowQueryRequest{filter, limit, std::move(done), 0, std::move(from)});
  advance_flow_queries(monotonic_ms());
}

// One listing at a time: ask every worker, collect when all have answered.
void Appliance::advance_flow_queries(uint64_t now_ms) {
  // A done() callback may ask for the next listing (the control socket
  // answers a client's pipelined requests as soon as the previous reply is
  // out): that one is queued, and this loop asks it.
  if (advancing_flow_queries_) return;
  advancing_flow_queries_ = true;
  while (!flow_queries_.empty()) {
    FlowQueryRequest& q = flow_queries_.front();
    const bool page = !q.from.empty();
    // A page does not ask the workers already listed to their end.
    auto asks = [&](size_t w) { return !page || q.from[w] != kFlowScanDone; };
    if (q.asked_ms == 0) {
      size_t busy = workers_.size();
      for (size_t w = 0; w < workers_.size(); ++w) {
        if (!asks(w)) continue;
        dp::FlowQuery& fq = workers_[w]->flow_query();
        // A late answer to a listing that timed out: dropped, not shown
        // as this one's.
        if (fq.answered()) fq.collect();
        const bool posted = page ? fq.ask_page(q.filter, q.limit, q.from[w]) : fq.ask(q.filter, q.limit);
        if (!posted) busy = w;  // still on a listing that timed out
        if (posted && w < worker_wakes_.size() && worker_wakes_[w] != nullptr) worker_wakes_[w]->ring();
      }
      if (busy != workers_.size()) {
        FlowsDone done = std::move(q.done);
        flow_queries_.pop_front();
        // The workers asked now answer a question nobody collects: their
        // answers are dropped as late ones when the next listing asks.
        done(make_error(ErrorCode::kInternal, "worker " + std::to_string(busy) +
                                                  " has not answered an earlier flow listing (over " +
                                                  std::to_string(kFlowQueryTimeoutMs) + " ms)"));
        continue;
      }
      q.asked_ms = now_ms == 0 ? 1 : now_ms;
      break;  // the workers answer over the next polls
    }
    bool all = true;
    for (size_t w = 0; w < workers_.size(); ++w) {
      all = all && (!asks(w) || workers_[w]->flow_query().answered());
    }
    const uint64_t waited = now_ms > q.asked_ms ? now_ms - q.asked_ms : 0;
    if (!all && waited < kFlowQueryTimeoutMs) break;
    FlowsDone done = std::move(q.done);
    // Which workers were asked, kept past pop_front() (asks() reads q).
    std::vector<bool> asked(workers_.size());
    for (size_t w = 0; w < workers_.size(); ++w) asked[w] = asks(w);
    flow_queries_.pop_front();
    if (!all) {
      // A worker that does not poll is stuck; its mailbox stays asked, so
      // later listings are refused at once, and say so.  Those that did
      // answer are collected: their mailboxes are free for the next one.
      for (size_t w = 0; w < workers_.size(); ++w) {
        if (asked[w] && workers_[w]->flow_query().answered()) workers_[w]->flow_query().collect();
      }
      done(make_error(ErrorCode::kInternal, "a worker did not answer the flow listing within " +
                                                std::to_string(kFlowQueryTimeoutMs) + " ms"));
      continue;
    }
    FlowListing listing;
    if (page) listing.stopped_at.assign(workers_.size(), kFlowScanDone);
    for (uint32_t w = 0; w < workers_.size(); ++w) {
      if (!asked[w]) continue;
      dp::FlowQuery& fq = workers_[w]->flow_query();
      for (const dp::FlowRecord& r : fq.records()) listing.flows.emplace_back(w, r);
      listing.matched += fq.matched();
      if (page) listing.stopped_at[w] = fq.finished() ? kFlowScanDone : fq.position();
      fq.collect();
    }
    done(std::move(listing));
  }
  advancing_flow_queries_ = false;
}

// DPDK's telemetry thread must not touch the Appliance: it reads copies the
// control thread publishes each second and after every change.
void Appliance::publish_telemetry() {
  // A telemetry reply is at most 8 KB (telemetry.cpp truncates): the first
  // services are all it can show (about one service port with its
  // endpoints), and the whole lists at 10k services
  // (200k endpoints) would hold the control thread, DNS included, for a
  // second every second (issue 14).
  constexpr size_t kTelemetryServicesMax = 16;
  telemetry_.publish(kTelemetryStatus, status_json(*this));
  telemetry_.publish(kTelemetryStats, stats_json(*this, kTelemetryServicesMax));
  telemetry_.publish(kTelemetryServices, services_json(*this, kTelemetryServicesMax));
}

TrafficTotals Appliance::traffic(uint16_t slot) const {
  TrafficTotals t;
  for (const dp::Worker* w : workers_) t += TrafficTotals::of(w->traffic(slot));
  return t;
}


uint64_t Appliance::uptime_ms() const { return monotonic_ms() - started_ms_; }

uint64_t Appliance::begin_stop() {
  if (!announcer_ || !announcer_->withdraw_for_stop()) return 0;  // nothing to wait for
  return config().announce.stop_grace_ms;
}

Result<void> Appliance::set_drained(bool drained) {
  if (!announcer_) {
    return make_error(ErrorCode::kInvalidRequest,
                      "nothing is announced: the config has no [announce] section");
  }
  return announcer_->set_drained(drained, registry_->view());
}

void Appliance::notify_systemd(const std::string& state) const {
  if (auto r = sd_notify_.send(state); !r) log_warn(r.error().message);
}

bool Appliance::poll_control(uint64_t now_ms) {
  const dp::Snapshot& snap = *publisher_->current();
  // A bounded share per turn (512 packets; while punts are left the loop
  // turns every millisecond): under a flood of punts the control socket,
  // metrics and DNS listeners still get their turn (issue 15).
  constexpr unsigned kPuntBurstsPerTurn = 16;
  unsigned bursts = 0;
  while (bursts < kPuntBurstsPerTurn && punt_->poll(snap, now_ms) != 0) ++bursts;
  punt_->tick(snap, now_ms);
  twins_->poll(now_ms, *punt_);
  health_->tick(now_ms);
  publish_health(now_ms);
  publisher_->reclaim();
  advance_flow_queries(now_ms);
  if (now_ms - last_reclaim_ms_ >= 1000) {
    last_reclaim_ms_ = now_ms;
    slots_->reclaim(now_ms);
  }
  if (now_ms - last_telemetry_ms_ >= 1000) {
    last_telemetry_ms_ = now_ms;
    publish_telemetry();
  }
  if (announcer_ && now_ms - last_announce_check_ms_ >= VipAnnouncer::kCheckMs) {
    last_announce_check_ms_ = now_ms;
    announcer_->check_table();
  }
  return bursts == kPuntBurstsPerTurn;
}

ControlLoad Appliance::control_load(bool punts_left) const {
  ControlLoad load;
  load.punts_left = punts_left;
  load.polled_twins = !twins_->wake_on_rx();
  load.packets_held = punt_->waiting() != 0;
  load.flow_listing = !flow_queries_.empty();
  load.snapshots_to_free = publisher_->pending_frees() != 0;
  load.health_changes = health_->has_changes();
  load.due_by(health_->next_due_ms());
  return load;
}

int Appliance::run() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGTERM, SIGINT, SIGUSR1}) sigaddset(&set, s);
  const int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  bool running = true;
  // When a clean stop ends: the routes are withdrawn first, and the workers
  // forward for [announce] stop_grace more, while the router learns of it.
  std::optional<uint64_t> stop_at_ms;
  auto signals = loop_->add(sfd, EPOLLIN, [this, sfd, &running, &stop_at_ms](uint32_t) {
    signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == sizeof si) {
      switch (si.ssi_signo) {
        case SIGHUP:
          log_info("SIGHUP: reloading " + config().source);
          notify_systemd("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_ms() * 1000));
          try {
            if (auto r = reload(); !r) {
              log_error("reload refused, the running config stays:\n" + r.error().message);
            }
          } catch (const std::exception& e) {
            // reload() refuses what it can foresee; anything else must not
            // end the appliance either (issue 15).
            log_error(std::string("reload refused, the running config stays:\nreload failed: ") +
                      e.what());
          }
          notify_systemd("READY=1\nSTATUS=running, snapshot " + std::to_string(generation()));
          break;
        case SIGUSR1:
          log_info("counters:\n" + format_stats());
          break;
        default:
          if (stop_at_ms) {
            log_info("signal " + std::to_string(si.ssi_signo) + " again: stopping now");
            running = false;
            break;
          }
          notify_systemd("STOPPING=1\nSTATUS=stopping");
          const uint64_t grace_ms = begin_stop();
          stop_at_ms = monotonic_ms() + grace_ms;
          log_info("signal " + std::to_string(si.ssi_signo) + ": stopping" +
                   (grace_ms == 0 ? std::string()
                                  : " in " + std::to_string(grace_ms) +
                                        " ms, forwarding meanwhile ([announce] stop_grace; a "
                                        "second signal stops at once)"));
      }
    }
  });
  if (!signals) {
    log_error("signals: " + signals.error().message);
    close(sfd);
    stop_workers();
    return 1;
  }
  log_info("running: " + std::to_string(workers_.size()) + " worker(s), " +
           std::to_string(ports_.size()) + " port(s), config " + config().source);
  // Ports are up and every worker was launched: systemd may start what
  // depends on podgate (Type=notify).
  notify_systemd("READY=1\nMAINPID=" + std::to_string(getpid()) + "\nSTATUS=running, snapshot " +
                 std::to_string(generation()));
  // WatchdogSec=: fed only while every worker has reported in.  A worker
  // reports in by passing a quiescent state (rte_rcu_qsbr_quiescent, every
  // turn of its loop); a token taken now is reached once every online
  // worker has passed one since.
  const uint64_t watchdog_ms = watchdog_interval_ms_from_environment();
  Watchdog watchdog(sd_notify_, watchdog_ms / 2, workers_report_in(publisher_->qsbr()));
  if (watchdog_ms != 0) {
    log_info("watchdog: systemd expects a keep-alive every " + std::to_string(watchdog_ms) +
             " ms; sent every " + std::to_string(watchdog_ms / 2) +
             " ms while every worker reports in");
  }

  int wait_ms = kBusyWaitMs;
  while (running) {
    // The punt ring (ARP, DNS on the VIP) is polled after every wake-up:
    // every millisecond while busy; when idle, whenever a worker punts
    // (the doorbell), a descriptor is ready, or a timer is due, and at
    // least every kIdleWaitMs (control_wait.hpp).
    if (wait_ms > kBusyWaitMs) {
      doorbell_->arm();
      if (rte_ring_count(punt_ring_) != 0) wait_ms = 0;  // punted before the arming
    }
    loop_->run_once(wait_ms);
    doorbell_->disarm();
    ++loop_turns_;
    const uint64_t now = monotonic_ms();
    const bool punts_left = poll_control(now);
    watchdog.tick(now);
    ControlLoad load = control_load(punts_left);
    load.due_by(watchdog.next_due_ms());
    load.due_by(stop_at_ms);
    wait_ms = control_wait_ms(load, now);
    if (stop_at_ms && now >= *stop_at_ms) running = false;
  }
  loop_->remove(*signals);
  close(sfd);
  stop_workers();
  log_info("final counters:\n" + format_stats());
  return 0;
}

}  // namespace podgate::ctl
