// Snapshots are published whole and freed late (architecture decision 1,
// style habit 6): this test publishes continuously while two workers forward
// on their own lcores, and checks that nothing is lost and that every old
// snapshot is freed once, after the workers have moved past it.
//
// Under AddressSanitizer (meson -Db_sanitize=address) dataplane_main.cpp
// leaves dataplane objects on the C heap, so a snapshot freed while a worker
// still reads it is reported as a heap-use-after-free.
#include <gtest/gtest.h>

#include <sched.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/dataplane/packet_builder.hpp"
#include "tests/dataplane/test_env.hpp"

namespace podgate::test {
namespace {

const Ip4 kClient = ip("192.0.2.2");
const MacAddr kClientMac = mac("02:00:00:00:02:02");
const Ip4 kVip = ip("10.96.0.20");
const Ip4 kPod0 = ip("172.17.0.10");
const Ip4 kPod1 = ip("172.17.0.11");
const MacAddr kPod0Mac = mac("02:00:00:00:11:0a");
const MacAddr kPod1Mac = mac("02:00:00:00:11:0b");

// Two endpoint sets that differ in weight only, so each publication builds
// a new Maglev table (and a new ServiceData) while every connection's Pod
// stays alive: no packet may be dropped.
std::string config(int pod1_weight) {
  return std::string(kRingPortsToml) + R"(
[dataplane]
maglev_table_size = 1021

[[services]]
namespace = "default"
name = "my-app"
cluster_ip = "10.96.0.20"
ports = [ { port = 80, target_port = 8080 } ]
endpoints = [ { ip = "172.17.0.10" }, { ip = "172.17.0.11", weight = )" +
         std::to_string(pod1_weight) + " } ]\n";
}

// The client and the "Pods": opens connections through the uplink, answers
// every DNATed packet from its Pod, counts what comes back.  Runs in its own
// thread while the test thread publishes.
struct Feeder {
  Dataplane& d;
  const std::atomic<bool>& publishing;
  static constexpr unsigned kWindow = 256;          // connections in flight
  static constexpr unsigned kMinConnections = 5000;  // even if publishing ends early
  static constexpr unsigned kMaxConnections = 2'000'000;
  // Client ports 1024..61023, then again: a repeated 5-tuple finds its flow
  // entry, which a newer snapshot makes it revalidate.
  static constexpr unsigned kPorts = 60000;

  uint64_t forward_sent = 0, forward_out = 0, replies_sent = 0, replies_out = 0;
  uint64_t bad_frames = 0;
  std::string first_bad{};
  bool stalled = false;

  static TcpPacket syn(uint16_t client_port) {
    return TcpPacket{{port_mac(kUplink), kClientMac}, {kClient, kVip}, {client_port, 80, kSyn}, {}};
  }

  void bad(const std::string& what) {
    if (bad_frames++ == 0) first_bad = what;
  }

  void run() {
    using Clock = std::chrono::steady_clock;
    auto last_progress = Clock::now();
    std::vector<Bytes> pending_replies;
    unsigned next = 0;
    while (true) {
      const bool more = next < kMaxConnections && (publishing.load() || next < kMinConnections);
      if (!more && replies_out == forward_sent) break;
      bool progress = false;
      while (more && next < kMaxConnections && forward_sent - replies_out < kWindow) {
        if (!d.port(kUplink).inject(syn(static_cast<uint16_t>(1024 + next % kPorts)).frame())) break;
        ++next;
        ++forward_sent;
        progress = true;
      }
      for (RingPort::Sent& s : d.port(kPods).take_sent()) {
        ++forward_out;
        progress = true;
        const Bytes& f = s.frame;
        const Ip4 pod = ip_dst(f);
        if (!(pod == kPod0 || pod == kPod1) || l4_dport(f) != 8080 || !checksums_valid(f)) {
          bad("forward: " + describe(f));
          continue;
        }
        TcpPacket r{{port_mac(kPods), pod == kPod0 ? kPod0Mac : kPod1Mac},
                    {pod, kClient},
                    {8080, l4_sport(f), kSyn | kAck},
                    {}};
        pending_replies.push_back(r.frame());
      }
      std::vector<Bytes> still;
      for (Bytes& r : pending_replies) {
        if (d.port(kPods).inject(r)) {
          ++replies_sent;
        } else {
          still.push_back(std::move(r));
        }
      }
      pending_replies.swap(still);
      for (RingPort::Sent& s : d.port(kUplink).take_sent()) {
        ++replies_out;
        progress = true;
        const Bytes& f = s.frame;
        if (!(ip_src(f) == kVip) || l4_sport(f) != 80 || !(ip_dst(f) == kClient) || !checksums_valid(f)) {
          bad("reply: " + describe(f));
        }
      }
      if (progress) {
        last_progress = Clock::now();
      } else if (Clock::now() - last_progress > std::chrono::seconds(60)) {
        stalled = true;  // a packet was lost: nothing will ever come
        break;
      } else {
        sched_yield();
      }
    }
  }
};

TEST(SnapshotStress, PublishingContinuouslyWhileWorkersForwardLosesNothing) {
  DataplaneSetup s;
  s.config_toml = config(1);
  s.workers = 2;
  s.rx = {{kUplink}, {kPods}};  // every connection crosses a handoff ring one way
  s.flow_capacity = 1u << 18;
  // Long timeouts: however slowly the shared CPU runs this, no flow expires.
  s.timeouts = dp::FlowTimeouts{600'000, 600'000, 600'000, 600'000};
  Dataplane d(std::move(s));
  d.neighbors().set(kClient, kClientMac);
  d.neighbors().set(kPod0, kPod0Mac);
  d.neighbors().set(kPod1, kPod1Mac);

  const std::string configs[2] = {config(1), config(3)};
  constexpr int kPublications = 2000;

  d.launch({1, 2});
  std::atomic<bool> publishing{true};
  Feeder feeder{d, publishing};
  std::thread feeder_thread([&feeder] { feeder.run(); });

  uint64_t published = 1;  // the first snapshot, published by the constructor
  uint64_t refused = 0;
  for (int i = 0; i < kPublications; ++i) {
    while (true) {
      try {
        d.publish(configs[(i + 1) % 2]);
        break;
      } catch (const std::runtime_error&) {
        ++refused;  // a worker's ring is full: let it catch up
        sched_yield();
      }
    }
    ++published;
    d.publisher().reclaim();
    sched_yield();  // one CPU for everyone: let workers and feeder run
  }
  publishing.store(false);
  feeder_thread.join();
  d.stop();

  // Workers are offline now: every snapshot but the current one can go.
  d.publisher().reclaim();

  EXPECT_FALSE(feeder.stalled) << "packets went missing: " << feeder.forward_sent << " SYNs sent, "
                               << feeder.forward_out << " out; " << feeder.replies_sent << " replies sent, "
                               << feeder.replies_out << " out; drops: " << d.drop_summary();
  EXPECT_EQ(feeder.forward_out, feeder.forward_sent);
  EXPECT_EQ(feeder.replies_sent, feeder.forward_sent);
  EXPECT_EQ(feeder.replies_out, feeder.replies_sent);
  EXPECT_EQ(feeder.bad_frames, 0u) << "first: " << feeder.first_bad;
  EXPECT_EQ(d.drops_total(), 0u) << d.drop_summary();
  EXPECT_EQ(d.publisher().freed(), published - 1);
  EXPECT_EQ(d.publisher().pending_frees(), 0u);
  EXPECT_GT(d.total(&dp::WorkerCounters::handoff_out), 0u);
  for (size_t w = 0; w < d.worker_count(); ++w) {
    // Each worker took many snapshots while forwarding (a worker may skip
    // straight to the newest of several queued, so not all 2000).
    EXPECT_GT(d.worker(w).counters().snapshots_adopted.get(), 0u) << "worker " << w;
  }
  EXPECT_GT(d.total(&dp::WorkerCounters::flows_revalidated), 0u);
  std::printf("[ stress   ] %llu SYNs + replies (%llu packets) forwarded while %llu snapshots were published "
              "(%llu refused while a ring was full); adopted by worker 0: %llu, worker 1: %llu; freed %llu\n",
              static_cast<unsigned long long>(feeder.forward_sent),
              static_cast<unsigned long long>(feeder.forward_out + feeder.replies_out),
              static_cast<unsigned long long>(published), static_cast<unsigned long long>(refused),
              static_cast<unsigned long long>(d.worker(0).counters().snapshots_adopted.get()),
              static_cast<unsigned long long>(d.worker(1).counters().snapshots_adopted.get()),
              static_cast<unsigned long long>(d.publisher().freed()));
}

// [dataplane] rx_interrupts (dataplane/worker_sleep.cpp): an idle worker
// sleeps until its doorbell rings.  Worker 1 polls no port, so it sleeps
// whenever it has nothing; worker 0 polls both ring ports (no RX
// interrupts: it keeps polling) and hands worker 1 its connections.  A
// handoff, a snapshot and stop() must each wake it, and its sleeps must
// not hold up the freeing of replaced snapshots.
TEST(SleepingWorker, AHandoffASnapshotAndStopEachWakeIt) {
  DataplaneSetup s;
  s.config_toml = config(1);
  s.workers = 2;
  s.rx = {{kUplink, kPods}, {}};
  s.sleeping_workers = true;
  Dataplane d(std::move(s));
  d.neighbors().set(kPod0, kPod0Mac);
  d.neighbors().set(kPod1, kPod1Mac);
  const dp::WorkerCounters& sleeper = d.worker(1).counters();
  const dp::WorkerCounters& poller = d.worker(0).counters();
  auto wait_until = [](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  };
  // Asleep (again): its sleeps are 10 ms long, so two more mean it is in one.
  auto wait_asleep = [&] {
    const uint64_t n = sleeper.idle_waits.get();
    return wait_until([&] { return sleeper.idle_waits.get() >= n + 2; });
  };

  d.launch({1, 2});
  ASSERT_TRUE(wait_asleep()) << "the worker with nothing to poll never slept";

  // Connections worker 1 owns, each SYN sent while it sleeps: worker 0
  // receives it, hands it over and rings; worker 1 forwards it.  (A SYN
  // that finds it between two sleeps needs no ring: five all doing so is
  // not a real outcome.)
  uint16_t port = 20000;
  for (int i = 0; i < 5; ++i, ++port) {
    while (d.worker(0).ownership().owner(kClient, dp::to_be16(port)) != 1) ++port;
    ASSERT_TRUE(wait_asleep());
    const uint64_t out = poller.tx_packets.get() + sleeper.tx_packets.get();
    ASSERT_TRUE(d.port(kUplink).inject(TcpPacket{{port_mac(kUplink), kClientMac}, {kClient, kVip},
                                                 {port, 80, kSyn}, {}}.frame()));
    ASSERT_TRUE(wait_until([&] { return sleeper.tx_packets.get() + poller.tx_packets.get() > out; }))
        << "the handed-off SYN was not forwarded";
  }
  EXPECT_EQ(sleeper.handoff_in.get(), 5u);
  EXPECT_EQ(sleeper.flows_created.get(), 5u);
  EXPECT_EQ(d.collect().size(), 5u);
  EXPECT_GE(sleeper.doorbell_wakes.get(), 1u) << "no handoff rang the sleeping owner";

  // Snapshots published while it sleeps: each rings it awake to take it,
  // and the replaced ones are freed.
  const uint64_t rung = sleeper.doorbell_wakes.get();
  const uint64_t adopted = sleeper.snapshots_adopted.get();
  for (uint64_t n = 1; n <= 3; ++n) {
    ASSERT_TRUE(wait_asleep());
    d.publish(config(n % 2 == 1 ? 3 : 1));
    ASSERT_TRUE(wait_until([&] { return sleeper.snapshots_adopted.get() == adopted + n; }));
  }
  EXPECT_GE(sleeper.doorbell_wakes.get(), rung + 1) << "no publication rang the sleeping worker";
  ASSERT_TRUE(wait_asleep());
  EXPECT_TRUE(wait_until([&] {
    d.publisher().reclaim();
    return d.publisher().pending_frees() == 0;
  })) << "a sleeping worker held up the freeing of " << d.publisher().pending_frees() << " snapshots";

  // stop() rings it too; a worker that waited for its timeout would still
  // stop, 10 ms later, so this only shows that stopping a sleeper works.
  ASSERT_TRUE(wait_asleep());
  d.stop();
  EXPECT_EQ(d.drops_total(), 0u) << d.drop_summary();
}

// The RCU contract itself, step by step and deterministic (workers driven by
// poll_once() from this thread): a replaced snapshot is freed only once
// every worker has passed a quiescent state after the publication, however
// often the control thread tries to reclaim before that; a worker that has
// not polled since still reads the old one.
TEST(SnapshotRcu, ReplacedSnapshotIsFreedOnlyAfterEveryWorkerPassedAQuiescentState) {
  DataplaneSetup s;
  s.config_toml = config(1);
  s.workers = 2;
  Dataplane d(std::move(s));
  d.poll_until_idle();  // both workers online in QSBR, on the first snapshot
  ASSERT_EQ(d.worker(0).snapshot_generation(), 1u);
  ASSERT_EQ(d.worker(1).snapshot_generation(), 1u);
  const dp::Snapshot* first = &d.snapshot();

  d.publish(config(3));
  const uint64_t second = d.snapshot().generation;
  ASSERT_NE(&d.snapshot(), first);
  for (int i = 0; i < 3; ++i) d.publisher().reclaim();
  EXPECT_EQ(d.publisher().freed(), 0u) << "freed before any worker passed a quiescent state";
  EXPECT_EQ(d.publisher().pending_frees(), 1u);
  EXPECT_EQ(d.worker(0).snapshot_generation(), 1u) << "no worker has polled yet";

  d.worker(0).poll_once();  // quiescent, then takes the new snapshot
  EXPECT_EQ(d.worker(0).snapshot_generation(), second);
  for (int i = 0; i < 3; ++i) d.publisher().reclaim();
  EXPECT_EQ(d.publisher().freed(), 0u) << "freed while worker 1 still holds it";
  EXPECT_EQ(d.worker(1).snapshot_generation(), 1u);
  EXPECT_EQ(first->generation, 1u) << "worker 1's snapshot is still readable";

  // Two more publications before worker 1 polls: three wait for it.
  d.publish(config(1));
  d.worker(0).poll_once();
  d.publish(config(3));
  d.worker(0).poll_once();
  d.publisher().reclaim();
  EXPECT_EQ(d.publisher().freed(), 0u);
  EXPECT_EQ(d.publisher().pending_frees(), 3u);

  d.worker(1).poll_once();  // now every worker has passed one
  EXPECT_EQ(d.worker(1).snapshot_generation(), d.snapshot().generation) << "straight to the newest";
  d.publisher().reclaim();
  EXPECT_EQ(d.publisher().freed(), 3u);
  EXPECT_EQ(d.publisher().pending_frees(), 0u);
}

}  // namespace
}  // namespace podgate::test
