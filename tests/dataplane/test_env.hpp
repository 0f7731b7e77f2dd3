// The real pipeline on DPDK virtual devices, for the tier-2 tests (style.md
// habit 10): net_ring ports built with rte_eth_from_rings() so that a test
// holds each port's RX ring (frames go in there, as if from the wire) and
// TX rings (what the workers transmit comes out there, one ring per TX
// queue = per worker, plus the control thread's), a Config parsed from TOML,
// a Snapshot built and published exactly as the daemon does
// (control/appliance.cpp), a NeighborTable with static entries, and real
// dp::Workers.
//
// Two ways to drive the workers: poll_once() from the test thread (every
// single-threaded test is deterministic), or Worker::run() on EAL lcores
// (the stress test).  EAL is initialised once by dataplane_main.cpp.
#pragma once

#include <sys/eventfd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "control/config/config.hpp"
#include "control/publish/punt_handler.hpp"
#include "control/publish/snapshot_builder.hpp"
#include "control/publish/stats_slots.hpp"
#include "control/publish/snapshot_publisher.hpp"
#include "dataplane/neighbor_table.hpp"
#include "dataplane/port.hpp"
#include "dataplane/punt.hpp"
#include "dataplane/worker.hpp"
#include "tests/dataplane/packet_builder.hpp"

namespace podgate::test {

// DPDK object names are process-global: every environment gets a prefix.
inline std::string unique_prefix() {
  static std::atomic<unsigned> next{0};
  std::string prefix = "t";  // appended: "t" + to_string() trips g++ 12's -Wrestrict at -O3
  prefix += std::to_string(next.fetch_add(1));
  return prefix;
}

// `rc`: a negative errno returned by the call, or 0 when it set rte_errno.
[[noreturn]] inline void dpdk_fail(const std::string& what, int rc = 0) {
  throw std::runtime_error(what + ": " + rte_strerror(rc < 0 ? -rc : rte_errno));
}

// One net_ring port: `rx_queues` RX queues fed from rx_ring(q), `tx_queues`
// TX queues each draining into its own ring.
class RingPort {
 public:
  struct Sent {
    uint16_t queue;  // TX queue = the worker that sent it
    Bytes frame;
  };

  // `mac`: the port's address (ring ports have no MAC of their own worth
  // testing against: every one would look alike).
  RingPort(const std::string& name, const MacAddr& mac, uint16_t tx_queues, rte_mempool* pool,
           unsigned ring_size, uint16_t rx_queues = 1)
      : name_("net_ring_" + name), pool_(pool) {
    for (uint16_t q = 0; q < rx_queues; ++q) {
      rte_ring* r = rte_ring_create((name + "_rx" + std::to_string(q)).c_str(), ring_size, SOCKET_ID_ANY, 0);
      if (r == nullptr) dpdk_fail("ring " + name + "_rx");
      rx_.push_back(r);
    }
    for (uint16_t q = 0; q < tx_queues; ++q) {
      rte_ring* r = rte_ring_create((name + "_tx" + std::to_string(q)).c_str(), ring_size, SOCKET_ID_ANY, 0);
      if (r == nullptr) dpdk_fail("ring " + name + "_tx");
      tx_.push_back(r);
    }
    int id = rte_eth_from_rings(name_.c_str(), rx_.data(), rx_queues, tx_.data(), tx_queues, SOCKET_ID_ANY);
    if (id < 0) dpdk_fail("rte_eth_from_rings " + name_);
    port_id_ = static_cast<uint16_t>(id);
    rte_eth_conf conf{};
    int rc = rte_eth_dev_configure(port_id_, rx_queues, tx_queues, &conf);
    if (rc != 0) dpdk_fail("configure " + name_, rc);
    for (uint16_t q = 0; q < rx_queues; ++q) {
      rc = rte_eth_rx_queue_setup(port_id_, q, static_cast<uint16_t>(ring_size), SOCKET_ID_ANY, nullptr, pool);
      if (rc != 0) dpdk_fail("rx queue " + name_, rc);
    }
    for (uint16_t q = 0; q < tx_queues; ++q) {
      rc = rte_eth_tx_queue_setup(port_id_, q, static_cast<uint16_t>(ring_size), SOCKET_ID_ANY, nullptr);
      if (rc != 0) dpdk_fail("tx queue " + name_, rc);
    }
    // net_ring ports all have MAC 00:00:00:00:00:00 and refuse a new one
    // (-ENOTSUP), which would make "left with the pods port's MAC"
    // indistinguishable from "left with the uplink's".  Then the port is
    // given `mac` the way a config `mac` would give it to a device that
    // accepts one: the snapshot carries it and the workers write it.
    rte_ether_addr addr;
    std::memcpy(addr.addr_bytes, mac.bytes.data(), 6);
    const int mac_rc = rte_eth_dev_default_mac_addr_set(port_id_, &addr);
    if (mac_rc != 0 && mac_rc != -ENOTSUP) dpdk_fail("set mac of " + name_, mac_rc);
    rc = rte_eth_dev_start(port_id_);
    if (rc != 0) dpdk_fail("start " + name_, rc);
    if (mac_rc == 0) {
      rc = rte_eth_macaddr_get(port_id_, &addr);
      if (rc != 0) dpdk_fail("mac of " + name_, rc);
      std::memcpy(mac_.bytes.data(), addr.addr_bytes, 6);
    } else {
      mac_ = mac;
    }
  }

  ~RingPort() {
    dp::close_port(port_id_);
    for (rte_ring* r : rx_) {
      drain(r);
      rte_ring_free(r);
    }
    for (rte_ring* r : tx_) {
      drain(r);
      rte_ring_free(r);
    }
  }
  RingPort(const RingPort&) = delete;
  RingPort& operator=(const RingPort&) = delete;

  uint16_t id() const noexcept { return port_id_; }
  const MacAddr& mac() const noexcept { return mac_; }
  rte_ring* rx_ring(uint16_t queue = 0) const noexcept { return rx_[queue]; }
  uint16_t rx_queues() const noexcept { return static_cast<uint16_t>(rx_.size()); }
  unsigned rx_pending() const noexcept {
    unsigned n = 0;
    for (rte_ring* r : rx_) n += rte_ring_count(r);
    return n;
  }

  // Puts a frame on the wire towards the port.  Like a NIC's PMD, stamps the
  // mbuf with the port it arrived on (the ring PMD itself does not).
  // False when the pool or the ring is full.
  bool inject(const Bytes& frame, uint16_t queue = 0) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (m == nullptr) return false;
    char* data = rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size()));
    if (data == nullptr) {
      rte_pktmbuf_free(m);
      return false;
    }
    if (!frame.empty()) std::memcpy(data, frame.data(), frame.size());  // an empty frame has no data()
    m->port = port_id_;
    if (rte_ring_enqueue(rx_[queue], m) != 0) {
      rte_pktmbuf_free(m);
      return false;
    }
    return true;
  }

  // Everything transmitted since the last call, TX queue by TX queue.
  std::vector<Sent> take_sent() {
    std::vector<Sent> out;
    for (uint16_t q = 0; q < tx_.size(); ++q) {
      void* p = nullptr;  // as Worker::adopt_latest_snapshot()'s
      while (rte_ring_dequeue(tx_[q], &p) == 0) {
        auto* m = static_cast<rte_mbuf*>(p);
        const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
        out.push_back(Sent{q, Bytes(d, d + rte_pktmbuf_data_len(m))});
        rte_pktmbuf_free(m);
      }
    }
    return out;
  }

 private:
  static void drain(rte_ring* r) {
    void* p = nullptr;  // as Worker::adopt_latest_snapshot()'s
    while (rte_ring_dequeue(r, &p) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(p));
  }

  std::string name_;
  rte_mempool* pool_;
  std::vector<rte_ring*> rx_;
  std::vector<rte_ring*> tx_;
  uint16_t port_id_ = 0;
  MacAddr mac_;
};

// Port indices of the test config (PortIdx order).
// The two ports every tier-2 config starts with (kUplink, kPods); the
// device names are for messages only: the fixture builds the ring ports.
inline constexpr const char* kRingPortsToml = R"(
[[ports]]
name = "uplink"
device = "net_ring_uplink"
address = "192.0.2.1/24"

[[ports]]
name = "pods"
device = "net_ring_pods"
address = "172.17.0.1/16"
)";

inline constexpr size_t kUplink = 0;
inline constexpr size_t kPods = 1;

// The MAC the test gives port i: 02:00:00:00:00:0(i+1).
inline MacAddr port_mac(size_t i) {
  MacAddr m;
  m.bytes = {0x02, 0, 0, 0, 0, static_cast<uint8_t>(i + 1)};
  return m;
}

struct Output {
  size_t port;     // kUplink / kPods
  uint16_t queue;  // TX queue: the worker that sent it
  Bytes frame;
};

struct Punted {
  dp::PuntKind kind;
  uint16_t port;  // PortIdx
  Ip4 next_hop;
  Bytes frame;
};

struct DataplaneSetup {
  std::string config_toml;
  uint32_t workers = 1;
  uint32_t flow_capacity = 4096;
  uint32_t flow_capacity6 = 4096;  // IPv6 connections per worker
  dp::FlowTimeouts timeouts{};
  // rx[w] = the ports (kUplink/kPods) worker w polls (queue 0: the ports
  // have one RX queue).  Empty: port i is polled by worker i % workers.
  std::vector<std::vector<size_t>> rx;
  unsigned mbufs = 8191;
  unsigned ring_size = 4096;
  // A NIC with RSS on the client's fields (issue 9): each port has one RX
  // queue per worker, worker w polls queue w of every port, and send()
  // puts a TCP/UDP frame on the queue its connection's owner polls, as the
  // NIC's hash and redirection table would (the uplink hashes the source,
  // the pods port the destination), IPv4 and IPv6; the workers' queues
  // say so (RxQueue::client_rss, client_rss6).  `rx` is ignored.
  bool rss_steered = false;
  // The same queues, of a device that does not hash the client's fields
  // (net_memif's queues; RSS on the whole 5-tuple): a frame goes where
  // the test puts it (send(): queue 0), and the workers hand packets to
  // their owner.  `rx` is ignored.
  bool queue_per_worker = false;
  // Each port's MTU (PortIdx order); absent or 0: 1500.
  std::vector<uint16_t> port_mtus;
  // Changes the parsed config before it is published (what TOML cannot
  // say in a test, or says only later).
  std::function<void(ctl::Config&)> amend;
  // [dataplane] rx_interrupts as the Appliance sets it up for ports
  // without RX interrupts (the ring ports): a worker that polls no port
  // gets a doorbell, rung by the others' handoffs, by publish() and by
  // stop(), and sleeps when idle (launch()); the others keep polling.
  bool sleeping_workers = false;
};

class Dataplane {
 public:
  static constexpr unsigned kHandoffRingSize = 4096;  // as control/appliance.cpp
  static constexpr unsigned kPuntRingSize = 4096;

  explicit Dataplane(DataplaneSetup setup) : setup_(std::move(setup)), prefix_(unique_prefix()) {
    pool_ = rte_pktmbuf_pool_create((prefix_ + "_pool").c_str(), setup_.mbufs, 0, 0,
                                    RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    if (pool_ == nullptr) dpdk_fail("mbuf pool");
    config_ = parse(setup_.config_toml);
    if (setup_.amend) setup_.amend(config_);
    const auto tx_queues = static_cast<uint16_t>(setup_.workers + 1);
    for (size_t i = 0; i < config_.ports.size(); ++i) {
      ports_.push_back(std::make_unique<RingPort>(
          prefix_ + "p" + std::to_string(i), port_mac(i), tx_queues, pool_, setup_.ring_size,
          static_cast<uint16_t>(setup_.rss_steered || setup_.queue_per_worker ? setup_.workers : 1)));
    }
    neighbors_ = new dp::NeighborTable();
    neighbors6_ = new dp::NeighborTable6();
    punt_ring_ = rte_ring_create((prefix_ + "_punt").c_str(), kPuntRingSize, SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (punt_ring_ == nullptr) dpdk_fail("punt ring");
    doorbell_ = std::make_unique<dp::Doorbell>(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (doorbell_->fd() < 0) throw std::runtime_error("doorbell: eventfd failed");
    for (uint32_t w = 0; w < setup_.workers; ++w) {
      rte_ring* r = rte_ring_create((prefix_ + "_hand" + std::to_string(w)).c_str(), kHandoffRingSize,
                                    SOCKET_ID_ANY, RING_F_SC_DEQ);
      if (r == nullptr) dpdk_fail("handoff ring");
      handoff_.push_back(r);
    }
    auto pub = ctl::SnapshotPublisher::create(setup_.workers, prefix_);
    if (!pub) throw std::runtime_error(pub.error().message);
    publisher_ = std::move(*pub);
    // Per-endpoint counters as the Appliance keeps them; the quarantine is
    // measured on the test's own clock (advance_clock()).
    slots_ = std::make_unique<ctl::StatsSlots>(
        [this](uint16_t slot) {
          ctl::TrafficTotals t;
          for (const dp::Worker* w : workers_) t += ctl::TrafficTotals::of(w->traffic(slot));
          return t;
        },
        kSlotQuarantineMs);
    publish_config(config_);

    std::vector<std::vector<size_t>> rx = setup_.rx;
    if (rx.empty()) {
      rx.resize(setup_.workers);
      for (size_t i = 0; i < ports_.size(); ++i) rx[i % setup_.workers].push_back(i);
    }
    std::vector<dp::Doorbell*> wakes;
    if (setup_.sleeping_workers && !setup_.rss_steered && !setup_.queue_per_worker) {
      for (uint32_t w = 0; w < setup_.workers; ++w) {
        if (!rx.at(w).empty()) {
          wakes.push_back(nullptr);
          continue;
        }
        wakes_.push_back(std::make_unique<dp::Doorbell>(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)));
        if (wakes_.back()->fd() < 0) throw std::runtime_error("doorbell: eventfd failed");
        wakes.push_back(wakes_.back().get());
      }
      publisher_->wake_with(wakes);
    }
    for (uint32_t w = 0; w < setup_.workers; ++w) {
      dp::WorkerSetup s;
      s.id = w;
      s.count = setup_.workers;
      if (setup_.rss_steered || setup_.queue_per_worker) {
        for (size_t p = 0; p < ports_.size(); ++p) {
          s.rx_queues.push_back(dp::RxQueue{ports_[p]->id(), static_cast<uint16_t>(w), false, p == kPods,
                                            setup_.rss_steered, setup_.rss_steered});
        }
      } else {
        for (size_t p : rx.at(w)) {
          s.rx_queues.push_back(dp::RxQueue{ports_.at(p)->id(), 0, false, p == kPods});
        }
      }
      for (const auto& p : ports_) s.port_ids.push_back(p->id());
      s.port_mtus = setup_.port_mtus;
      // A port's `kernel` key as the Appliance reads it; the twins
      // themselves are the control thread's, so their punts stay in the
      // ring for the test to take.
      uint32_t kernel_rate = 0;
      for (const ctl::PortConfig& pc : config_.ports) {
        s.kernel_twins.push_back(pc.kernel.empty() ? 0 : 1);
        if (!pc.kernel.empty()) kernel_rate = std::max(kernel_rate, pc.kernel_rate);
      }
      s.kernel_per_s = std::max<uint32_t>(1, kernel_rate / setup_.workers);
      s.snapshot_ring = publisher_->ring(w);
      s.handoff_rings = handoff_;
      s.punt_ring = punt_ring_;
      s.doorbell = doorbell_.get();
      s.worker_wakes = wakes;
      s.qsbr = publisher_->qsbr();
      s.neighbors = neighbors_;
      s.neighbors6 = neighbors6_;
      s.flow_capacity = setup_.flow_capacity;
      s.flow_capacity6 = setup_.flow_capacity6;
      s.timeouts = setup_.timeouts;
      s.snapshot = publisher_->current();
      workers_.push_back(new dp::Worker(std::move(s)));
    }
  }

  ~Dataplane() {
    stop();
    if (online_) {
      for (uint32_t w = 0; w < setup_.workers; ++w) rte_rcu_qsbr_thread_offline(publisher_->qsbr(), w);
    }
    for (dp::Worker* w : workers_) delete w;  // their TX buffers were flushed by the last poll
    ports_.clear();
    auto drain = [](rte_ring* r) {
      void* m = nullptr;
      while (rte_ring_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    };
    for (rte_ring* r : handoff_) {
      drain(r);
      rte_ring_free(r);
    }
    drain(punt_ring_);
    rte_ring_free(punt_ring_);
    publisher_.reset();
    delete neighbors_;
    delete neighbors6_;
    // Every mbuf the tests made went out, was dropped, or sat in a ring that
    // was just drained: any still missing was leaked by the pipeline.
    unsigned in_use = rte_mempool_in_use_count(pool_);
    EXPECT_EQ(in_use, 0u) << "mbufs leaked by the pipeline";
    if (in_use == 0) rte_mempool_free(pool_);  // a leaked mbuf must not point into freed memory
  }
  Dataplane(const Dataplane&) = delete;
  Dataplane& operator=(const Dataplane&) = delete;

  static ctl::Config parse(std::string_view toml) {
    auto cfg = ctl::parse_config(toml, "test.toml");
    if (!cfg) throw std::runtime_error("test config refused:\n" + cfg.error().message);
    return std::move(*cfg);
  }

  // Builds the next snapshot from `toml` (sharing unchanged services with
  // the current one) and publishes it, as Appliance::apply does.
  void publish(std::string_view toml) { publish_config(parse(toml)); }

  void publish_config(const ctl::Config& cfg) {
    std::vector<dp::MacAddr> macs;
    for (const auto& p : ports_) macs.push_back(p->mac());
    ctl::SnapshotInputs in{&cfg, macs, publisher_->current(), ++generation_, slots_.get()};
    auto r = publisher_->publish(ctl::build_snapshot(in));
    if (!r) throw std::runtime_error("publish: " + r.error().message);
    slots_->commit_taken();
    slots_->retain(*publisher_->current(), clock_ms_);
  }

  RingPort& port(size_t i) { return *ports_.at(i); }
  dp::NeighborTable& neighbors() { return *neighbors_; }
  dp::NeighborTable6& neighbors6() { return *neighbors6_; }
  const ctl::Config& config() const { return config_; }
  ctl::SnapshotPublisher& publisher() { return *publisher_; }
  dp::Worker& worker(size_t w) { return *workers_.at(w); }
  size_t worker_count() const { return workers_.size(); }
  const dp::Snapshot& snapshot() const { return *publisher_->current(); }
  rte_mempool* pool() const { return pool_; }
  rte_ring* punt_ring() const { return punt_ring_; }
  // As the Appliance's: the workers ring it after a poll that punted.
  dp::Doorbell& doorbell() { return *doorbell_; }
  ctl::StatsSlots& slots() { return *slots_; }
  static constexpr uint64_t kSlotQuarantineMs = 60'000;
  void advance_clock(uint64_t ms) {
    clock_ms_ += ms;
    slots_->reclaim(clock_ms_);
  }

  // --- driving the workers from the test thread -------------------------

  // Every worker goes online in QSBR from this thread (a QSBR thread id is a
  // slot, not an OS thread), then polls until nothing is left in any RX or
  // handoff ring.  A round polls every worker once; each poll flushes its
  // TX buffers, so when a round ends with every ring empty, all is out.
  void poll_until_idle() {
    if (!online_) {
      for (uint32_t w = 0; w < setup_.workers; ++w) rte_rcu_qsbr_thread_online(publisher_->qsbr(), w);
      online_ = true;
    }
    for (int round = 0; round < 100000; ++round) {
      for (dp::Worker* w : workers_) w->poll_once();
      bool busy = false;
      for (const auto& p : ports_) busy |= p->rx_pending() != 0;
      for (rte_ring* r : handoff_) busy |= rte_ring_count(r) != 0;
      if (!busy) return;
    }
    ADD_FAILURE() << "workers did not drain their queues";
  }

  // Everything the ports transmitted, port by port.
  std::vector<Output> collect() {
    std::vector<Output> out;
    for (size_t i = 0; i < ports_.size(); ++i) {
      for (RingPort::Sent& s : ports_[i]->take_sent()) out.push_back(Output{i, s.queue, std::move(s.frame)});
    }
    return out;
  }

  // Injects `frames` on port `in` (in chunks that fit the rings), lets the
  // workers process them, returns everything transmitted.
  std::vector<Output> send(size_t in, const std::vector<Bytes>& frames) {
    std::vector<Output> out;
    constexpr size_t kChunk = 512;
    for (size_t i = 0; i < frames.size(); i += kChunk) {
      for (size_t j = i; j < std::min(frames.size(), i + kChunk); ++j) {
        if (!port(in).inject(frames[j], rss_queue(in, frames[j]))) {
          ADD_FAILURE() << "cannot inject frame " << j;
          return out;
        }
      }
      poll_until_idle();
      for (Output& o : collect()) out.push_back(std::move(o));
    }
    return out;
  }
  std::vector<Output> send(size_t in, const Bytes& frame) { return send(in, std::vector<Bytes>{frame}); }

  // The RX queue a client-field RSS NIC puts `frame` on (rss_steered), else
  // 0: an IPv4 or IPv6 TCP/UDP packet's (IPv6: with no extension header)
  // by the Toeplitz hash of its client's address and port, the source on
  // the uplink, the destination on the pods port.
  uint16_t rss_queue(size_t in, const Bytes& frame) const {
    if (!setup_.rss_steered || frame.size() < 14) return 0;
    const bool to_client = in == kPods;
    const dp::Ownership& owners = workers_.at(0)->ownership();
    rte_be16_t l4;
    if (frame[12] == 0x08 && frame[13] == 0x00 && frame.size() >= 14 + 20) {
      const size_t ihl = size_t{frame[14] & 0x0fu} * 4;
      const uint8_t proto = frame[14 + 9];
      if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || frame.size() < 14 + ihl + 4) return 0;
      Ip4 ip;
      std::memcpy(&ip.be, &frame[to_client ? 14 + 16 : 14 + 12], 4);
      std::memcpy(&l4, &frame[14 + ihl + (to_client ? 2 : 0)], 2);
      return static_cast<uint16_t>(owners.owner(ip, l4));
    }
    if (frame[12] == 0x86 && frame[13] == 0xdd && frame.size() >= 14 + 40 + 4) {
      const uint8_t next = frame[14 + 6];
      if (next != IPPROTO_TCP && next != IPPROTO_UDP) return 0;
      const dp::Ip6 ip = dp::Ip6::load(&frame[to_client ? 14 + 24 : 14 + 8]);
      std::memcpy(&l4, &frame[14 + 40 + (to_client ? 2 : 0)], 2);
      return static_cast<uint16_t>(owners.owner(ip, l4));
    }
    return 0;
  }

  std::vector<Punted> take_punted() {
    std::vector<Punted> out;
    void* p = nullptr;  // as Worker::adopt_latest_snapshot()'s
    while (rte_ring_dequeue(punt_ring_, &p) == 0) {
      auto* m = static_cast<rte_mbuf*>(p);
      const dp::PuntMeta& meta = dp::punt_meta(m);
      const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
      out.push_back(Punted{meta.kind, meta.port, meta.next_hop, Bytes(d, d + rte_pktmbuf_data_len(m))});
      rte_pktmbuf_free(m);
    }
    return out;
  }

  // --- driving the workers on lcores -------------------------------------

  // Runs worker w's Worker::run() on lcores[w] until stop() (the daemon's
  // way, control/appliance.cpp).
  void launch(const std::vector<unsigned>& lcores) {
    stop_.store(false);
    for (size_t w = 0; w < workers_.size(); ++w) {
      launches_.push_back(std::make_unique<Launch>(Launch{workers_[w], &stop_}));
      if (rte_eal_remote_launch(&Dataplane::run_worker, launches_.back().get(), lcores.at(w)) != 0) {
        stop();
        throw std::runtime_error("cannot launch worker " + std::to_string(w) + " on lcore " +
                                 std::to_string(lcores[w]));
      }
      lcores_.push_back(lcores[w]);
    }
  }

  // Stops the launched workers and waits for them (they go offline in QSBR).
  void stop() {
    if (lcores_.empty()) return;
    stop_.store(true);
    for (const auto& wake : wakes_) wake->ring();
    for (unsigned l : lcores_) rte_eal_wait_lcore(l);
    lcores_.clear();
  }

  // --- counters ------------------------------------------------------------

  uint64_t total(dp::Counter dp::WorkerCounters::*c) const {
    uint64_t n = 0;
    for (const dp::Worker* w : workers_) n += (w->counters().*c).get();
    return n;
  }
  uint64_t drops(dp::DropReason r) const {
    uint64_t n = 0;
    for (const dp::Worker* w : workers_) n += w->counters().drops[static_cast<size_t>(r)].get();
    return n;
  }
  uint64_t drops_total() const {
    uint64_t n = 0;
    for (const dp::Worker* w : workers_) n += w->counters().dropped();
    return n;
  }
  // "no_flow=3 ttl_exceeded=1" for failure messages.
  std::string drop_summary() const {
    std::string s;
    for (size_t r = 0; r < dp::kDropReasonCount; ++r) {
      if (uint64_t v = drops(static_cast<dp::DropReason>(r))) {
        s += std::string(dp::drop_reason_name(static_cast<dp::DropReason>(r))) + "=" + std::to_string(v) + " ";
      }
    }
    return s.empty() ? "none" : s;
  }

 private:
  struct Launch {
    dp::Worker* worker;
    const std::atomic<bool>* stop;
  };
  static int run_worker(void* arg) {
    auto* l = static_cast<Launch*>(arg);
    l->worker->run(*l->stop);
    return 0;
  }

  DataplaneSetup setup_;
  std::string prefix_;
  ctl::Config config_;
  rte_mempool* pool_ = nullptr;
  std::vector<std::unique_ptr<RingPort>> ports_;
  dp::NeighborTable* neighbors_ = nullptr;
  dp::NeighborTable6* neighbors6_ = nullptr;
  rte_ring* punt_ring_ = nullptr;
  std::unique_ptr<dp::Doorbell> doorbell_;
  std::vector<std::unique_ptr<dp::Doorbell>> wakes_;  // sleeping_workers: by worker
  std::vector<rte_ring*> handoff_;
  std::unique_ptr<ctl::SnapshotPublisher> publisher_;
  std::unique_ptr<ctl::StatsSlots> slots_;
  uint64_t clock_ms_ = 0;
  std::vector<dp::Worker*> workers_;
  uint64_t generation_ = 0;
  bool online_ = false;
  std::atomic<bool> stop_{false};
  std::vector<unsigned> lcores_;
  std::vector<std::unique_ptr<Launch>> launches_;
};

// The control thread's punt handler on a test's dataplane, transmitting on
// the control queue of its ports as the Appliance's does.
inline ctl::PuntHandler::Setup punt_setup(Dataplane& d) {
  ctl::PuntHandler::Setup ps;
  ps.punt_ring = d.punt_ring();
  ps.pool = d.pool();
  ps.neighbors = &d.neighbors();
  ps.neighbors6 = &d.neighbors6();
  for (size_t i = 0; i < 2; ++i) ps.port_ids.push_back(d.port(i).id());
  ps.tx_queue = static_cast<uint16_t>(d.worker_count());
  return ps;
}

// The workers take what was sent, `ph` what they punted, and its timers
// run at `now`: what went out.
inline std::vector<Output> handle_punts(Dataplane& d, ctl::PuntHandler& ph, uint64_t now) {
  d.poll_until_idle();
  while (ph.poll(d.snapshot(), now) != 0) {
  }
  ph.tick(d.snapshot(), now);
  return d.collect();
}

}  // namespace podgate::test
