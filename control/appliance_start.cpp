// Appliance lifecycle: start (EAL, ports, rings, tables, the first
// snapshot, the control thread's servers, in that order), the worker lcores'
// launch and stop, and teardown.  What runs between them, changes and the
// control loop, is appliance.cpp.
#include "control/appliance.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <ctime>
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
#include "control/publish/new_flow_watch.hpp"
#include "control/publish/snapshot_builder.hpp"
#include "control/queue_steering.hpp"
#include "dataplane/dp_memory.hpp"

namespace podgate::ctl {

namespace {

constexpr unsigned kPuntRingSize = 4096;
constexpr unsigned kHandoffRingSize = 4096;

int worker_main(void* arg) {
  auto* ctx = static_cast<std::pair<dp::Worker*, const std::atomic<bool>*>*>(arg);
  ctx->first->run(*ctx->second);
  delete ctx;
  return 0;
}

dp::FlowTimeouts timeouts_of(const DataplaneConfig& d) {
  return dp::FlowTimeouts{.tcp_syn_ms = d.tcp_syn_timeout * 1000,
                          .tcp_established_ms = d.tcp_established_timeout * 1000,
                          .tcp_closing_ms = d.tcp_closing_timeout * 1000,
                          .udp_ms = d.udp_timeout * 1000,
                          .tcp_fin_ms = d.tcp_fin_timeout * 1000};
}

}  // namespace

void block_control_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGTERM, SIGINT, SIGUSR1}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Result<std::unique_ptr<Appliance>> Appliance::start(Config config, std::string version) {
  std::unique_ptr<Appliance> a(new Appliance);
  a->config_file_digest_ = config.source_digest;
  a->registry_ = std::make_unique<Registry>(std::move(config));
  a->started_ms_ = monotonic_ms();
  a->version_ = std::move(version);
  const Config& cfg = a->config();
  const DataplaneConfig& dpc = cfg.dataplane;
  const uint32_t workers = dpc.workers;

  unsigned available = rte_lcore_count() - 1;
  if (workers > available) {
    return make_error(ErrorCode::kInvalidConfig,
                      "dataplane.workers = " + std::to_string(workers) + " but EAL has only " +
                          std::to_string(available) +
                          " worker lcore(s) besides the main one; widen eal.args -l");
  }
  auto loop = EventLoop::create();
  if (!loop) return std::move(loop).error();
  a->loop_ = std::move(*loop);
  // The control socket first: another podgate serving it is the likeliest
  // reason not to start (a second instance), and it is cheap to find out.
  ControlSocket::Options control_options;
  control_options.mode = cfg.control.mode;
  control_options.group = cfg.control.group;
  control_options.idle_timeout_ms = uint64_t{cfg.control.idle_timeout} * 1000;
  auto control = ControlSocket::open(*a->loop_, cfg.control.socket, control_options);
  if (!control) return std::move(control).error();
  a->control_ = std::move(*control);
  register_commands(*a->control_, *a);
  register_change_commands(*a->control_, *a);
  register_health_commands(*a->control_, *a);
  log_info("control: listening on " + cfg.control.socket);
  // Then the DNS listeners: a port another server holds is the next likeliest.
  auto dns_server = dns::DnsServer::open(*a->loop_, cfg.dns);
  if (!dns_server) return std::move(dns_server).error();
  a->dns_ = std::move(*dns_server);
  // Listeners of "a Registry version was published": the DNS view of the
  // same version (zone serial = version), and telemetry republished on the
  // next poll.
  // A change DNS does not see (endpoints and weights of a ClusterIP
  // service) keeps the zone; one it sees remakes only the changed
  // services' names (issue 14: a zone built whole is O(services)).
  a->registry_->subscribe([dns = a->dns_.get(), zones = std::make_shared<dns::ZoneUpdater>()](
                              const Publication& p) {
    auto zone = zones->follow(p.config, p.changes, static_cast<uint32_t>(p.version));
    if (zone != dns->zone()) dns->set_zone(std::move(zone));
  });
  a->registry_->subscribe([app = a.get()](const Publication&) { app->last_telemetry_ms_ = 0; });
  // The health checker follows config changes; its own findings (the
  // learnt layer) change nothing it probes.
  a->health_ = std::make_unique<health::HealthChecker>(
      *a->loop_, health::HealthChecker::Options::for_this_process());
  a->registry_->subscribe([checker = a->health_.get()](const Publication& p) {
    if (p.layer != Layer::kLearnt) checker->sync(p.config, p.changes, monotonic_ms());
  });
  // The journal says when a service starts and stops sending new
  // connections to terminating endpoints (KEP-1669).
  a->registry_->subscribe([watch = std::make_shared<NewFlowWatch>()](const Publication& p) {
    for (const std::string& line : watch->follow(p.config, p.changes)) log_info(line);
  });
  for (const DnsListen& l : cfg.dns.listen) {
    log_info("dns: listening on " + dp::to_string(l.ip) + ":" + std::to_string(l.port) +
             " (UDP and TCP)");
  }
  if (const auto& listen = cfg.metrics.listen) {
    auto metrics = MetricsServer::open(*a->loop_, listen->ip, listen->port);
    if (!metrics) return std::move(metrics).error();
    a->metrics_ = std::move(*metrics);
    Appliance* app = a.get();
    // A scrape is written a piece per loop turn (prometheus_stream.hpp):
    // the short sections from `stats` without its services, the services'
    // families from the service list and the stats slots, the targets'
    // health from the checker.
    a->metrics_->set_stream_provider([app]() -> MetricsServer::BodyPieces {
      PrometheusParts parts;
      parts.head = [app] { return render_prometheus_head(stats_json(*app, 0), status_json(*app)); };
      parts.traffic = metrics_traffic(*app);
      parts.dns = [app] { return render_prometheus_dns(stats_json(*app, 0)); };
      parts.health = [app](const health::TargetStatus* after, size_t max) {
        return app->health_->status_after(after, max);
      };
      parts.tail = [app] {
        nlohmann::json st = stats_json(*app, 0);
        st["metrics_http"] =
            metrics_counters_json(app->metrics_->counters(), app->metrics_->connections());
        st["health"] = health_metrics_json(*app->health_);
        return render_prometheus_tail(st);
      };
      auto stream = std::make_shared<PrometheusStream>(std::move(parts));
      return [stream](std::string& out, size_t budget) { return stream->next(out, budget); };
    });
    log_info("metrics: serving http://" + dp::to_string(listen->ip) + ":" +
             std::to_string(a->metrics_->port()) + "/metrics");
  }
  if (cfg.dns.service_ip) {
    log_info("dns: answering " + dp::to_string(*cfg.dns.service_ip) +
             ":53/UDP on the dataplane");
  }
  a->pool_ = rte_pktmbuf_pool_create("podgate_mbufs", dpc.mbufs, 256, 0,
                                     RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
  if (a->pool_ == nullptr) {
    return make_error(ErrorCode::kDpdk, "cannot create the packet pool of " +
                                            std::to_string(dpc.mbufs) + " mbufs: " +
                                            rte_strerror(rte_errno));
  }
  for (size_t i = 0; i < cfg.ports.size(); ++i) {
    const PortConfig& pc = cfg.ports[i];
    dp::PortRequest req;
    req.client = choose_client_address(cfg, i);  // kept in ports_ for reload's start_settings()
    req.name = pc.name;
    req.device = pc.device;
    req.mac = pc.mac;
    req.mtu = pc.mtu;
    req.rx_queues = static_cast<uint16_t>(workers);
    req.tx_queues = static_cast<uint16_t>(workers + 1);
    req.rx_desc = static_cast<uint16_t>(dpc.rx_ring_size);
    req.rx_interrupts = dpc.rx_interrupts;
    req.tx_desc = static_cast<uint16_t>(dpc.tx_ring_size);
    req.pool = a->pool_;
    dp::PortInfo info;
    if (auto err = dp::open_port(req, info)) {
      return make_error(ErrorCode::kDpdk, *err);
    }
    for (const std::string& note : info.notes) {
      log_info("port '" + pc.name + "' (" + pc.device + "): " + note);
    }
    log_info("port '" + pc.name + "': " + pc.device + " is DPDK port " +
             std::to_string(info.port_id) + " (" + info.driver + "), mac " +
             dp::to_string(info.mac) + ", address " + dp::to_string(pc.address) + ", " +
             std::to_string(info.rx_queues) + " rx queue(s)");
    a->ports_.push_back(info);
  }
  // One ownership function for every port and worker: ports that hash on
  // the client's fields get its redirection table.
  const dp::Ownership owners(workers, dp::client_rss_reta_size(a->ports_));
  for (size_t i = 0; i < a->ports_.size(); ++i) {
    dp::PortInfo& p = a->ports_[i];
    const PortConfig& pc = cfg.ports[i];
    if (p.client_rss) {
      if (auto err = dp::program_client_rss(p, owners)) {
        p.client_rss = false;
        p.client_rss6 = false;
        log_info("port '" + pc.name + "': " + *err + "; workers hand packets to their owner");
      }
    }
    log_info("port '" + pc.name + "': flows owned by the client's address, the packets' " +
             (p.client == dp::ClientAddress::kSource ? "source" : "destination") + "; " +
             describe_steering(p, pc, workers));
  }

  // The exception path: kernel twins of the ports that ask for one.  The
  // DNS VIP is an address of each, so the kernel's TCP listener on it
  // answers TCP queries the workers pass up (a UDP answer with TC set is
  // retried over TCP, RFC 7766).
  std::vector<dp::Ip4> twin_extra;
  if (cfg.dns.service_ip) twin_extra.push_back(*cfg.dns.service_ip);
  auto twins = KernelTwins::open(cfg, a->ports_, twin_extra, a->pool_);
  if (!twins) return std::move(twins).error();
  a->twins_ = std::move(*twins);
  if (auto r = a->twins_->watch(*a->loop_); !r) return r.error();
  if (!a->twins_->empty()) {
    // A reload may add or remove [[routes]]: the twins' kernel routes
    // follow every published version (learnt state never changes them), so
    // BGP, health probes and TCP DNS answers take the routes the dataplane
    // forwards by.  The DNS VIP's /32 does not change (reload refuses it).
    a->registry_->subscribe([twins = a->twins_.get()](const Publication& p) {
      if (p.layer == Layer::kLearnt) return;
      if (auto r = twins->sync_routes(p.config.routes); !r) log_error(r.error().message);
    });
  }
  // Unless a listener on 0.0.0.0:53 takes the VIP's port 53 already (one
  // on another port does not).
  const bool dns_listens_on_any_53 =
      std::any_of(cfg.dns.listen.begin(), cfg.dns.listen.end(),
                  [](const DnsListen& l) { return l.ip.is_zero() && l.port == 53; });
  if (!a->twins_->empty() && cfg.dns.service_ip && !dns_listens_on_any_53) {
    if (auto r = a->dns_->listen_tcp(DnsListen{*cfg.dns.service_ip, 53}); !r) return r.error();
    log_info("dns: answering " + dp::to_string(*cfg.dns.service_ip) +
             ":53/TCP through the kernel twins");
  }

  a->neighbors_ = new dp::NeighborTable();
  a->neighbors6_ = new dp::NeighborTable6();
  a->punt_ring_ = rte_ring_create("podgate_punt", kPuntRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
  if (a->punt_ring_ == nullptr) {
    return make_error(ErrorCode::kDpdk, std::string("cannot create the punt ring: ") + rte_strerror(rte_errno));
  }
  const int bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (bell < 0) {
    return make_error(ErrorCode::kIo, "cannot create the control thread's doorbell (eventfd): " +
                                          errno_text(errno));
  }
  a->doorbell_ = std::make_unique<dp::Doorbell>(bell);
  auto bell_watch = a->loop_->add(bell, EPOLLIN, [d = a->doorbell_.get()](uint32_t) { d->clear(); });
  if (!bell_watch) return std::move(bell_watch).error();
  for (uint32_t w = 0; w < workers; ++w) {
    std::string name = "podgate_handoff" + std::to_string(w);
    rte_ring* r = rte_ring_create(name.c_str(), kHandoffRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (r == nullptr) {
      return make_error(ErrorCode::kDpdk, "cannot create ring " + name + ": " + rte_strerror(rte_errno));
    }
    a->handoff_rings_.push_back(r);
  }
  auto publisher = SnapshotPublisher::create(workers, "podgate");
  if (!publisher) return std::move(publisher).error();
  a->publisher_ = std::move(*publisher);

  PuntHandler::Setup ps;
  ps.punt_ring = a->punt_ring_;
  ps.pool = a->pool_;
  ps.neighbors = a->neighbors_;
  ps.neighbors6 = a->neighbors6_;
  for (const dp::PortInfo& p : a->ports_) ps.port_ids.push_back(p.port_id);
  ps.tx_queue = static_cast<uint16_t>(workers);
  a->punt_ = std::make_unique<PuntHandler>(ps);
  std::vector<uint16_t> mtus;
  for (const PortConfig& pc : cfg.ports) mtus.push_back(pc.mtu.value_or(0));
  a->vip_dns_ = std::make_unique<dns::VipAnswerer>(*a->dns_, *a->punt_, std::move(mtus));
  a->punt_->set_kernel_sink(
      [twins = a->twins_.get()](rte_mbuf* m, dp::PortIdx port) { twins->deliver(m, port); },
      a->twins_->port_mask(a->ports_.size()));
  a->punt_->set_dns_answerer([vip = a->vip_dns_.get()](rte_mbuf* m, const dp::Snapshot& snap) {
    return vip->answer(m, snap);
  });

  a->slots_ = std::make_unique<StatsSlots>(
      [app = a.get()](uint16_t slot) { return app->traffic(slot); },
      dpc.stats_slot_quarantine_s() * 1000);

  if (auto r = a->apply(a->registry_->stage_current()); !r) return std::move(r).error();
  if (auto r = a->launch_workers(); !r) return std::move(r).error();
  // The ports' addresses at their MACs, now and once more 2 s later (RFC
  // 5227 §2.3): neighbours that knew them elsewhere learn at once.
  a->punt_->announce_addresses(*a->publisher_->current());
  a->loop_->after(2000, [app = a.get()] { app->punt_->announce_addresses(*app->publisher_->current()); });
  if (!cfg.announce.port.empty()) {
    // Only now that the workers forward: a VIP announced while large flow
    // tables were still being set up would draw traffic nobody took.
    const auto port = std::find_if(cfg.ports.begin(), cfg.ports.end(),
                                   [&](const PortConfig& p) { return p.name == cfg.announce.port; });
    a->announcer_ = std::make_unique<VipAnnouncer>(port->kernel, cfg.announce.table);
    log_info("announce: VIP routes in kernel table " + std::to_string(cfg.announce.table) + " on " +
             port->kernel + ", for BIRD to announce");
    if (auto r = a->announcer_->sync(a->registry_->view()); !r) log_error(r.error().message);
    // Every published version: what the dataplane forwards is what is
    // announced, withdrawn with the last endpoint of a VIP.
    a->registry_->subscribe([app = a.get()](const Publication& p) {
      if (auto r = app->announcer_->sync(p.config); !r) log_error(r.error().message);
    });
  }
  a->publish_telemetry();
  if (auto r = register_telemetry_commands(&a->telemetry_); !r) {
    log_info("telemetry: " + r.error().message + "; /podgate commands not registered");
  }
  return a;
}

Result<void> Appliance::launch_workers() {
  const uint32_t workers = config().dataplane.workers;
  std::vector<std::vector<dp::RxQueue>> rx(workers);
  for (size_t i = 0; i < ports_.size(); ++i) {
    const dp::PortInfo& p = ports_[i];
    // net_memif: see RxQueue::only_while_up.
    const bool only_while_up = p.driver == "net_memif";
    // A steered port has a queue per worker, and queue w holds worker w's
    // connections.
    const QueueSteering steered = queue_steering(p, config().ports[i], workers);
    for (uint16_t q = 0; q < p.rx_queues; ++q) {
      // net_tap: see RxQueue::level_fd.
      const int level_fd = p.driver == "net_tap" && q < p.rx_wake_fds.size() ? p.rx_wake_fds[q] : -1;
      rx[q % workers].push_back(dp::RxQueue{p.port_id, q, only_while_up,
                                            p.client == dp::ClientAddress::kDestination,
                                            steered.ipv4, steered.ipv6, level_fd});
    }
  }
  // rx_interrupts: a worker sleeps when idle if every queue it polls can
  // wake it (open_port() found the port's RX interrupts).
  std::vector<dp::Doorbell*> wakes;
  if (config().dataplane.rx_interrupts) {
    for (uint32_t w = 0; w < workers; ++w) {
      bool all = true;
      for (const dp::RxQueue& q : rx[w]) {
        for (const dp::PortInfo& p : ports_) {
          if (p.port_id == q.port_id && p.rx_wake_fds.empty()) all = false;
        }
      }
      const int bell = all ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
      if (all && bell < 0) {
        return make_error(ErrorCode::kIo, "cannot create worker " + std::to_string(w) +
                                              "'s doorbell (eventfd): " + errno_text(errno));
      }
      worker_wakes_.push_back(all ? std::make_unique<dp::Doorbell>(bell) : nullptr);
      wakes.push_back(worker_wakes_.back().get());
    }
    publisher_->wake_with(wakes);
  }
  unsigned lcore = rte_get_next_lcore(-1, 1, 0);
  for (uint32_t w = 0; w < workers; ++w, lcore = rte_get_next_lcore(lcore, 1, 0)) {
    dp::WorkerSetup s;
    s.id = w;
    s.count = workers;
    s.reta_size = dp::client_rss_reta_size(ports_);
    s.rx_queues = rx[w];
    for (const dp::PortInfo& p : ports_) {
      s.port_ids.push_back(p.port_id);
      uint16_t mtu = 0;  // as configured, or the device's own
      if (rte_eth_dev_get_mtu(p.port_id, &mtu) != 0) mtu = 0;
      s.port_mtus.push_back(mtu);
    }
    s.kernel_twins = twins_->port_mask(ports_.size());
    s.kernel_per_s = std::max<uint32_t>(1, twins_->max_rate() / workers);
    s.snapshot_ring = publisher_->ring(w);
    s.handoff_rings = handoff_rings_;
    s.punt_ring = punt_ring_;
    s.doorbell = doorbell_.get();
    s.worker_wakes = wakes;
    s.qsbr = publisher_->qsbr();
    s.neighbors = neighbors_;
    s.neighbors6 = neighbors6_;
    s.flow_capacity = config().dataplane.flow_table_size;
    s.flow_capacity6 = config().dataplane.ipv6_flows();
    s.idle_sleep_us = config().dataplane.idle_sleep_us;
    s.timeouts = timeouts_of(config().dataplane);
    s.snapshot = publisher_->current();
    try {
      // Its flow tables on its lcore's NUMA node, not the control thread's.
      dp::DpSocketScope numa(static_cast<int>(rte_lcore_to_socket_id(lcore)));
      workers_.push_back(new dp::Worker(std::move(s)));
    } catch (const std::bad_alloc&) {
      // The flow table is most of a worker's memory, all of it DPDK memory.
      const DataplaneConfig& d = config().dataplane;
      const uint64_t table =
          dp::FlowTable::memory_bytes(d.flow_table_size) + dp::FlowTable6::memory_bytes(d.ipv6_flows());
      return make_error(ErrorCode::kDpdk,
                        "worker " + std::to_string(w) + ": out of DPDK memory for its flow tables (" +
                            std::to_string(d.flow_table_size) + " IPv4 and " + std::to_string(d.ipv6_flows()) +
                            " IPv6 connections, " + std::to_string(table >> 20) +
                            " MiB per worker); lower [dataplane] flow_table_size (or ipv6_flow_table_size) "
                            "or give EAL more memory (-m, hugepages)");
    }
    worker_lcores_.push_back(lcore);
  }
  for (uint32_t w = 0; w < workers; ++w) {
    auto* ctx = new std::pair<dp::Worker*, const std::atomic<bool>*>(workers_[w], &stop_);
    int rc = rte_eal_remote_launch(worker_main, ctx, worker_lcores_[w]);
    if (rc != 0) {
      delete ctx;
      stop_workers();
      return make_error(ErrorCode::kDpdk, "cannot launch worker " + std::to_string(w) +
                                              " on lcore " + std::to_string(worker_lcores_[w]));
    }
    const uint32_t sleep_us = config().dataplane.idle_sleep_us;
    const std::string idle = !wakes.empty() && wakes[w] != nullptr ? "sleeps until an RX interrupt or its doorbell"
                             : sleep_us != 0 ? "sleeps " + std::to_string(sleep_us) + " us between polls"
                                             : "spins";
    log_info("worker " + std::to_string(w) + " runs on lcore " + std::to_string(worker_lcores_[w]) +
             " (NUMA node " + std::to_string(rte_lcore_to_socket_id(worker_lcores_[w])) + ") polling " + std::to_string(rx[w].size()) + " rx queue(s); idle, it " + idle);
  }
  return {};
}

void Appliance::stop_workers() {
  stop_.store(true);
  for (const auto& wake : worker_wakes_) {
    if (wake != nullptr) wake->ring();
  }
  for (unsigned lcore : worker_lcores_) rte_eal_wait_lcore(lcore);
}

Appliance::~Appliance() {
  // Waits for a telemetry callback still reading the cache.
  (void)register_telemetry_commands(nullptr);
  stop_workers();
  for (const dp::PortInfo& p : ports_) dp::close_port(p.port_id);
  // Packets still in rings go back to the pool before it is freed.
  auto drain = [](rte_ring* r) {
    void* m = nullptr;  // g++ cannot always tell that a dequeue wrote it
    while (r != nullptr && rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  };
  for (rte_ring* r : handoff_rings_) {
    drain(r);
    rte_ring_free(r);
  }
  drain(punt_ring_);
  punt_.reset();
  announcer_.reset();  // withdraws, before the twin its routes are on goes
  twins_.reset();
  rte_ring_free(punt_ring_);
  for (dp::Worker* w : workers_) delete w;
  publisher_.reset();
  delete neighbors_;
  delete neighbors6_;
  rte_mempool_free(pool_);
}

}  // namespace podgate::ctl
