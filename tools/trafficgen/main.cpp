// podgate-gen: a traffic generator and checker for podgate (issue 5).
//
//   podgate-gen [EAL options] -- [options]      (--help lists them)
//
// main() sets up EAL, the ports and the engines, runs them on the main lcore
// (default) or on dedicated TX and RX lcores, drains, and reports.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "tools/trafficgen/engine.hpp"
#include "tools/trafficgen/report.hpp"
#include "tools/trafficgen/tx_split.hpp"

namespace podgate::gen {
namespace {

constexpr uint16_t kDescriptors = 1024;

std::atomic<bool> g_stop_tx{false};  // SIGINT/SIGTERM: stop sending, then drain
std::atomic<bool> g_stop_rx{false};  // the drain is over

void on_signal(int) { g_stop_tx.store(true, std::memory_order_relaxed); }

int fail(const std::string& message) {
  std::fprintf(stderr, "podgate-gen: %s\n", message.c_str());
  return 2;
}

std::string dpdk_error(int rc) { return rte_strerror(rc < 0 ? -rc : rc); }

rte_ether_addr to_ether(const dp::MacAddr& m) {
  rte_ether_addr a;
  std::memcpy(a.addr_bytes, m.bytes.data(), RTE_ETHER_ADDR_LEN);
  return a;
}

std::string mac_text(const rte_ether_addr& a) {
  char buf[RTE_ETHER_ADDR_FMT_SIZE];
  rte_ether_format_addr(buf, sizeof buf, &a);
  return buf;
}

// Configures and starts a port and waits for its link.  A net_memif client
// offers one ring per queue and the server refuses a ring index beyond its
// own queues ("Invalid ring index"), so the counts must mirror podgate's.
std::string open_port(uint16_t port, uint16_t rx_queues, uint16_t tx_queues, rte_mempool* pool,
                      const std::optional<dp::MacAddr>& mac, uint32_t link_timeout_s,
                      rte_ether_addr& mac_out) {
  const std::string name = "port " + std::to_string(port) + ": ";
  if (!rte_eth_dev_is_valid_port(port)) {
    return name + "no such DPDK port (give a --vdev or -a for it; ports are numbered in probe order)";
  }
  rte_eth_conf conf{};
  int rc = rte_eth_dev_configure(port, rx_queues, tx_queues, &conf);
  if (rc != 0) {
    return name + "configure with " + std::to_string(rx_queues) + " RX and " +
           std::to_string(tx_queues) + " TX queues: " + dpdk_error(rc);
  }
  uint16_t rx_desc = kDescriptors, tx_desc = kDescriptors;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &rx_desc, &tx_desc);
  const int socket = rte_eth_dev_socket_id(port);
  const unsigned sock = socket < 0 ? 0u : static_cast<unsigned>(socket);
  for (uint16_t q = 0; q < rx_queues; ++q) {
    rc = rte_eth_rx_queue_setup(port, q, rx_desc, sock, nullptr, pool);
    if (rc != 0) return name + "RX queue setup: " + dpdk_error(rc);
  }
  for (uint16_t q = 0; q < tx_queues; ++q) {
    rc = rte_eth_tx_queue_setup(port, q, tx_desc, sock, nullptr);
    if (rc != 0) return name + "TX queue setup: " + dpdk_error(rc);
  }
  if (mac) {
    rte_ether_addr a = to_ether(*mac);
    rc = rte_eth_dev_default_mac_addr_set(port, &a);
    if (rc == -ENOTSUP) {
      return name + "the device cannot change its MAC; give it as a device argument instead "
                    "(net_memif: mac=02:00:00:00:01:01)";
    }
    if (rc != 0) return name + "set MAC: " + dpdk_error(rc);
  }
  rc = rte_eth_dev_start(port);
  if (rc != 0) return name + "start: " + dpdk_error(rc);
  rte_eth_promiscuous_enable(port);  // best effort; virtual devices may not care
  rte_eth_macaddr_get(port, &mac_out);
  const uint64_t deadline = rte_get_tsc_cycles() + link_timeout_s * rte_get_tsc_hz();
  rte_eth_link link{};
  while (rte_eth_link_get_nowait(port, &link) != 0 || link.link_status == RTE_ETH_LINK_DOWN) {
    if (rte_get_tsc_cycles() > deadline) {
      return name + "link still down after " + std::to_string(link_timeout_s) +
             " s (is podgate running with the matching net_memif server?)";
    }
    rte_delay_ms(10);
  }
  return "";
}

// Learns podgate's client-side MAC by ARP (RFC 826) or, over IPv6, by a
// neighbour solicitation (RFC 4861 §7.2.2), asking every 200 ms.
std::string resolve_gateway(const Options& o, rte_mempool* pool, const rte_ether_addr& own,
                            rte_ether_addr& gateway_mac) {
  const bool v4 = o.family == dp::Family::kIpv4;
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t deadline = rte_get_tsc_cycles() + o.link_timeout_s * hz;
  uint64_t next_ask = 0;
  rte_mbuf* burst[kBurst];
  while (rte_get_tsc_cycles() < deadline) {
    if (rte_get_tsc_cycles() >= next_ask) {
      if (rte_mbuf* m = rte_pktmbuf_alloc(pool)) {
        if (v4) {
          build_arp_request(m, own, o.client_gw.as_v4(), o.gateway.as_v4());
        } else {
          build_neighbor_solicitation(m, own, o.client_gw.as_v6(), o.gateway.as_v6());
        }
        if (rte_eth_tx_burst(o.client_port, 0, &m, 1) == 0) rte_pktmbuf_free(m);
      }
      next_ask = rte_get_tsc_cycles() + hz / 5;
    }
    for (uint16_t q = 0; q < o.rx_queues; ++q) {
      const uint16_t n = rte_eth_rx_burst(o.client_port, q, burst, kBurst);
      bool found = false;
      for (uint16_t i = 0; i < n; ++i) {
        RxView v = view_frame(burst[i]);
        if (!found && v4 && v.kind == RxView::Kind::kArp &&
            v.arp->arp_opcode == dp::to_be16(RTE_ARP_OP_REPLY) &&
            v.arp->arp_data.arp_sip == o.gateway.as_v4().be) {
          gateway_mac = v.arp->arp_data.arp_sha;
          found = true;
        }
        if (!found && !v4 && v.kind == RxView::Kind::kNdp &&
            v.ndp_type == kNeighborAdvertisement && v.ndp_target == o.gateway.as_v6()) {
          if (v.ndp_mac != nullptr) {
            std::memcpy(gateway_mac.addr_bytes, v.ndp_mac, RTE_ETHER_ADDR_LEN);
          } else {
            gateway_mac = v.eth->src_addr;
          }
          found = true;
        }
        rte_pktmbuf_free(burst[i]);
      }
      if (found) return "";
    }
  }
  return std::string(v4 ? "no ARP reply" : "no neighbour advertisement") + " from the gateway " +
         dp::to_string(o.gateway) + " in " +
         std::to_string(o.link_timeout_s) + " s (give --gateway-mac, or check --gateway)";
}

struct Run {
  std::vector<std::unique_ptr<TxEngine>> tx;
  std::vector<std::unique_ptr<RxEngine>> rx;
  std::vector<std::unique_ptr<Counters>> counters;
  uint64_t tx_start = 0;
  std::atomic<uint64_t> tx_end{0};
  std::atomic<uint32_t> tx_running{0};
};

struct LcoreJob {
  Run* run = nullptr;
  TxEngine* tx = nullptr;
  RxEngine* rx = nullptr;
};

void note_tx_done(Run& run) {
  uint64_t now = rte_rdtsc(), seen = run.tx_end.load();
  while (now > seen && !run.tx_end.compare_exchange_weak(seen, now)) {
  }
  run.tx_running.fetch_sub(1);
}

int tx_lcore(void* arg) {
  auto* job = static_cast<LcoreJob*>(arg);
  while (!g_stop_tx.load(std::memory_order_relaxed) && job->tx->step(rte_rdtsc())) {
  }
  job->tx->abandon();
  note_tx_done(*job->run);
  return 0;
}

// After the drain's deadline, what already waits in the RX queues: the
// deadline is time on the clock, and a generator descheduled during the
// drain would otherwise count packets that arrived in time as lost.
// Bounded, in case a peer keeps sending.
void read_what_is_left(RxEngine& rx) {
  for (uint32_t pass = 0; pass < 1024 && rx.poll() != 0; ++pass) {
  }
}

int rx_lcore(void* arg) {
  auto* job = static_cast<LcoreJob*>(arg);
  while (!g_stop_rx.load(std::memory_order_relaxed)) job->rx->poll();
  read_what_is_left(*job->rx);
  return 0;
}

void drain(Run& run, const Options& o, bool main_polls) {
  const uint64_t until = rte_rdtsc() + o.drain_ms * rte_get_tsc_hz() / 1000;
  while (rte_rdtsc() < until) {
    if (main_polls) {
      run.rx[0]->poll();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  g_stop_rx.store(true);
  if (main_polls) read_what_is_left(*run.rx[0]);
}

int run_generator(const Options& o) {
  const unsigned mbufs = 2u * (o.rx_queues + o.tx_queues) * kDescriptors + 8191u;
  rte_mempool* pool = rte_pktmbuf_pool_create("gen_pool", mbufs, 256, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE,
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) return fail("mbuf pool: " + dpdk_error(rte_errno));

  rte_ether_addr client_mac, pod_mac, gateway_mac;
  std::string err = open_port(o.client_port, o.rx_queues, o.tx_queues, pool, o.client_mac, o.link_timeout_s, client_mac);
  if (err.empty()) err = open_port(o.pod_port, o.rx_queues, o.tx_queues, pool, o.pod_mac, o.link_timeout_s, pod_mac);
  if (!err.empty()) return fail(err);
  if (o.gateway_mac) {
    gateway_mac = to_ether(*o.gateway_mac);
  } else if (err = resolve_gateway(o, pool, client_mac, gateway_mac); !err.empty()) {
    return fail(err);
  }
  if (!o.quiet) {
    std::printf("podgate-gen: client port %u (%s), pod port %u (%s), gateway %s (%s), %u RX + %u TX queues\n",
                o.client_port, mac_text(client_mac).c_str(), o.pod_port, mac_text(pod_mac).c_str(),
                dp::to_string(o.gateway).c_str(), mac_text(gateway_mac).c_str(), o.rx_queues, o.tx_queues);
    std::fflush(stdout);
  }

  FlowSet flows(o);
  const dp::Ownership steer(o.steer_workers);  // podgate's table size on ports without client RSS
  Run run;
  const bool single = o.tx_lcores == 0;
  const uint32_t ntx = single ? 1 : o.tx_lcores;
  const uint32_t nrx = single ? 1 : o.rx_lcores;
  for (uint32_t i = 0; i < ntx + nrx; ++i) run.counters.push_back(std::make_unique<Counters>());
  // TX lcores beyond the shares stay idle; their queues and counters too.
  const std::vector<TxShare> shares = split_tx(ntx, flows.size(), o.rate_pps, o.count);
  if (!o.quiet && shares.size() < ntx) {
    std::printf("podgate-gen: %zu of the %u TX lcores send "
                "(no more than --flows, --count and --rate)\n",
                shares.size(), ntx);
  }
  for (uint32_t i = 0; i < shares.size(); ++i) {
    TxConfig t;
    t.port = o.client_port;
    t.queue = static_cast<uint16_t>(i);
    t.pool = pool;
    t.flows = &flows;
    t.first_flow = shares[i].first_flow;
    t.stride = shares[i].stride;
    t.rate_pps = shares[i].rate_pps;
    t.count = shares[i].count;
    t.frame_size = o.frame_size;
    t.src_mac = client_mac;
    t.dst_mac = gateway_mac;
    t.new_flows = o.new_flows;
    t.steer = o.steer_workers != 0 ? &steer : nullptr;
    t.client_first = o.client_first;
    t.client_port_first = o.client_port_first;
    t.client_ports = uint32_t{o.client_port_last} - o.client_port_first + 1;
    t.tuples = address_count(o.client_first, o.client_last) * t.client_ports;
    run.tx.push_back(std::make_unique<TxEngine>(t, *run.counters[i]));
  }
  for (uint32_t j = 0; j < nrx; ++j) {
    RxConfig r;
    // RX lcore j polls every nrx-th queue of both ports.
    for (uint16_t q = static_cast<uint16_t>(j); q < o.rx_queues; q = static_cast<uint16_t>(q + nrx)) {
      r.queues.push_back({o.pod_port, q});
      r.queues.push_back({o.client_port, q});
    }
    r.client_port = o.client_port;
    r.pod_port = o.pod_port;
    r.client_tx_queue = static_cast<uint16_t>(single ? 0 : ntx + j);
    r.pod_tx_queue = static_cast<uint16_t>(single ? 0 : j);
    r.client_mac = client_mac;
    r.pod_mac = pod_mac;
    r.client_gw = o.client_gw;
    r.flows = &flows;
    r.reply = o.reply;
    r.check = !o.no_check;
    r.pin_flows = !o.new_flows;
    run.rx.push_back(std::make_unique<RxEngine>(std::move(r), *run.counters[ntx + j]));
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const uint64_t hz = rte_get_tsc_hz();
  run.tx_start = rte_rdtsc();
  const uint64_t deadline = run.tx_start + static_cast<uint64_t>(o.duration_s * static_cast<double>(hz));
  for (auto& t : run.tx) t->start(run.tx_start, deadline);
  run.tx_running = static_cast<uint32_t>(run.tx.size());

  std::vector<LcoreJob> jobs(run.tx.size() + run.rx.size());
  if (single) {
    // One lcore: interleave a TX burst with one poll of every RX queue.
    TxEngine& tx = *run.tx[0];
    RxEngine& rx = *run.rx[0];
    while (!g_stop_tx.load(std::memory_order_relaxed) && tx.step(rte_rdtsc())) rx.poll();
    tx.abandon();
    note_tx_done(run);
    drain(run, o, true);
  } else {
    std::vector<unsigned> lcores;
    unsigned lcore;
    RTE_LCORE_FOREACH_WORKER(lcore) lcores.push_back(lcore);
    if (lcores.size() < run.tx.size() + run.rx.size()) {
      return fail("--tx-lcores + --rx-lcores need " + std::to_string(run.tx.size() + run.rx.size()) +
                  " EAL worker lcores, EAL has " + std::to_string(lcores.size()) +
                  " (list more with -l or --lcores)");
    }
    size_t next = 0;
    for (size_t j = 0; j < run.rx.size(); ++j, ++next) {
      jobs[next] = {&run, nullptr, run.rx[j].get()};
      rte_eal_remote_launch(rx_lcore, &jobs[next], lcores[next]);
    }
    for (size_t i = 0; i < run.tx.size(); ++i, ++next) {
      jobs[next] = {&run, run.tx[i].get(), nullptr};
      rte_eal_remote_launch(tx_lcore, &jobs[next], lcores[next]);
    }
    while (run.tx_running.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    drain(run, o, false);
    rte_eal_mp_wait_lcore();
  }

  Counters total;
  for (const auto& c : run.counters) total.merge(*c);
  const double seconds = static_cast<double>(run.tx_end.load() - run.tx_start) / static_cast<double>(hz);
  const Results results = summarise(total, flows, seconds, hz);
  if (!o.quiet) print_summary(o, flows, results);
  if (!o.json_path.empty()) {
    if (err = write_json(o.json_path, o, flows, results); !err.empty()) return fail(err);
  }
  if (!o.csv_path.empty()) {
    if (err = append_csv(o.csv_path, o, results); !err.empty()) return fail(err);
  }
  run.tx.clear();  // frees mbufs still pending before the ports close
  for (uint16_t port : {o.client_port, o.pod_port}) {
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
  }
  return exit_code(o, results);
}

}  // namespace
}  // namespace podgate::gen

int main(int argc, char** argv) {
  using namespace podgate::gen;
  // EAL options come first, ours after "--"; parse ours before EAL starts so
  // that --help and usage errors need neither root nor devices.
  int split = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      split = i;
      break;
    }
  }
  bool help = split == argc && argc == 2 &&
              (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
  std::vector<char*> ours{argv[0]};
  for (int i = split + 1; i < argc; ++i) ours.push_back(argv[i]);
  if (!help) {
    ParseResult parsed = parse_options(static_cast<int>(ours.size()), ours.data());
    if (std::holds_alternative<HelpRequested>(parsed)) help = true;
    if (const auto* e = std::get_if<UsageError>(&parsed)) {
      std::fprintf(stderr, "podgate-gen: %s\n", e->message.c_str());
      return 2;
    }
    if (!help) {
      const int rc = rte_eal_init(split, argv);
      if (rc < 0) return fail("EAL initialisation failed: " + dpdk_error(rte_errno));
      const int code = run_generator(std::get<Options>(parsed));
      rte_eal_cleanup();
      return code;
    }
  }
  std::fputs(usage_text("podgate-gen").c_str(), stdout);
  return 0;
}
