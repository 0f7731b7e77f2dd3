// Per-packet cost of the worker pipeline (issue 2; architecture.md
// "Fast-path budget": under 100 cycles of podgate's own work for a packet of
// an established flow, under 300 for a new flow).
//
// The real Worker on net_ring ports, wired by the tier-2 fixture
// (tests/dataplane/test_env.hpp): TCP packets from clients to a VIP arrive
// on the uplink port and leave, NATed to one of 16 Pods, on the pods port.
// Only Worker::poll_once() for one burst of 32 packets is timed (rte_rdtsc);
// building the mbufs, putting them on the uplink's RX ring and draining the
// pods port's TX ring are not.  Cycles are TSC ticks.
//
// Each benchmark also times, in every iteration, the same burst through
// rx_burst on the uplink + tx_burst on the pods port with no processing (the
// testpmd "io" forwarding mode on these ports), so that
//   own_cycles/pkt = cycles/pkt - io_cycles/pkt
// is podgate's own work, measured side by side under the same load.
// BM_Io is that baseline on its own.
//
//   Established: every flow pinned beforehand (SYN then ACK, untimed), then
//                ACKs of those flows in random order (with 1M flows the flow
//                table, 57 MiB, is far out of cache).
//   Reply:       the Pods' ACKs of those flows, in the same random order,
//                back to the clients, who are beyond the uplink's router
//                (the default route): 16 connections a client address,
//                so 65,536 client addresses at 1M flows.
//   NewFlow:     the same table holding the same N established flows, and
//                every packet a SYN of a 5-tuple never seen before.  Half-open
//                flows time out after 1 ms, so the table stays at N live
//                connections plus the last few milliseconds' SYNs instead
//                of filling; flows_table_full must stay 0 (it is reported).
//
// Established, Reply and NewFlow have an IPv6 twin (issue 11),
// BM_Established6, BM_Reply6 and BM_NewFlow6: the same service with an
// IPv6 cluster IP and IPv6 Pods, the same clients' numbers as IPv6
// addresses beyond the uplink's router, side by side with IPv4 in one run.  Established also has a UDP twin, BM_EstablishedUdp: 60-byte
// datagrams to the service's UDP port 80 (a 64-byte frame on the wire,
// what tools/bench/throughput.py sends), each flow pinned by its first
// datagram.
//
// Two workers (issue 9's scaling modes, established TCP): each port
// has an RX queue per worker, and each round puts a burst of 32 on each
// worker's uplink queue; both workers' polls are timed together, and the
// figures are per packet of the 64.
//   Established2Steered: each queue gets flows its worker owns, as a NIC
//                with RSS on the client's fields spreads them; nothing is
//                handed off (checked).  Established6_2Steered: the same
//                over IPv6 (10k flows).
//   Established2Handoff: each queue gets any flows, as from a device that
//                cannot hash the client's fields (memif, tap): about half
//                of each burst is handed to the other worker, one ring
//                burst per owner, and forwarded by it (worker 1's share to
//                worker 0 in the next round).
//
// Run pinned, with repetitions, on a quiet core:
//   taskset -c 1 build-bench/tests/worker_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true    (one line)
// EAL runs without hugepages (as the tier-2 tests) unless `--hugepages` is
// given: 4 KiB pages make the 1M case pay more TLB misses than the daemon
// on hugepages would.
// `--polls=K` (1 to 64, default 1) times K polls back to back in each
// round (K bursts waiting on each queue), so that the harness's work
// between rounds stands between every K bursts only, as in a loaded
// appliance; io is timed for the K bursts too.
#include <benchmark/benchmark.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>

#include "dataplane/dp_memory.hpp"
#include "dataplane/punt.hpp"
#include "tests/dataplane/packet_builder.hpp"
#include "tests/dataplane/packet_builder6.hpp"
#include "tests/dataplane/test_env.hpp"

namespace podgate::test {
namespace {

constexpr uint16_t kBurst = dp::Worker::kBurst;
// Polls timed back to back in a round (`--polls`); the RX rings (4096)
// hold 64 bursts of 32 for each of two queues.
constexpr int kMaxPolls = 64;
int g_polls = 1;
constexpr uint32_t kPodCount = 16;
constexpr uint16_t kServicePort = 80;
// Connections on top of the established ones, for the half-open flows of
// the new-flow benchmark's last milliseconds.
constexpr uint32_t kChurnHeadroom = 65536;
// New-flow benchmark clients are numbered from here, above any established
// flow, and never reused in the process.
constexpr uint32_t kFirstNewFlow = 1u << 24;

const Ip4 kVip = ip("10.96.0.20");
const Ip6 kVip6 = ip6("fd00:96::20");
const MacAddr kClientMac = mac("02:00:00:00:02:02");
const MacAddr kPodMac = mac("02:00:00:00:11:00");
constexpr uint16_t kTargetPort = 8080;
// The uplink's router, the default route's next hop: every client is
// beyond it (IPv6: ::/0 via fd00:100::fe).
const Ip4 kRouter = ip("192.0.2.254");
const Ip6 kRouter6 = ip6("fd00:100::fe");

// Pod i: 172.17.1.(10+i), and fd00:17:1::(10+i) for IPv6.
Ip6 pod6(uint32_t i) {
  Ip6 a = ip6("fd00:17:1::");
  a.bytes[15] = static_cast<uint8_t>(10 + i);
  return a;
}

// The bench service's IPv6 half: its cluster IP and IPv6 Pods, and the
// uplink's router as the default route.
void add_ipv6(ctl::Config& c) {
  c.ports[kUplink].address6 = dp::Prefix6{ip6("fd00:100::1"), 64};
  c.ports[kPods].address6 = dp::Prefix6{ip6("fd00:17:1::1"), 64};
  c.routes6.push_back(ctl::Route6Config{dp::Prefix6{Ip6{}, 0}, kRouter6});
  std::vector<ctl::ServiceConfig> services(c.services.begin(), c.services.end());
  services.at(0).secondary_cluster_ip = dp::IpAddr::v6(kVip6);
  for (uint32_t i = 0; i < kPodCount; ++i) {
    ctl::EndpointConfig e;
    e.ip = dp::IpAddr::v6(pod6(i));
    services.at(0).endpoints.push_back(e);
  }
  c.services = ctl::ServiceList(std::move(services));
}

std::string config() {
  std::string endpoints;
  for (uint32_t i = 0; i < kPodCount; ++i) {
    endpoints += "{ ip = \"172.17.1." + std::to_string(10 + i) + "\" },\n";
  }
  return std::string(kRingPortsToml) + R"(
[[services]]
namespace = "default"
name = "bench"
cluster_ip = "10.96.0.20"
ports = [
  { name = "http", port = 80, target_port = 8080, protocol = "TCP" },
  { name = "udp", port = 80, target_port = 8080, protocol = "UDP" },
]
endpoints = [
)" + endpoints + R"(]

[[routes]]
prefix = "0.0.0.0/0"
via = "192.0.2.254"
)";
}

// Client number -> address and port: 16 ports per address, the address
// 100.64.0.0 plus a 28-bit number (IPv6: fd00:200::/64, the same number in
// the last 32 bits), so that a reply's destination is one of many clients,
// as behind a real gateway.  The number is the flow's high bits scattered
// by a bijection, as real clients' addresses are scattered: consecutive
// addresses hash too evenly (CRC32-C is linear; so is the multiply that
// indexes the adjacency cache), which flattered the flow table's spread
// and made the adjacency cache miss a tenth as often.
constexpr uint32_t kClientMask = (1u << 28) - 1;
constexpr uint32_t kScatter = 0x9e37'79b1u;  // odd: invertible modulo 2^28
constexpr uint32_t inverse_mod_2_32(uint32_t odd) {
  uint32_t x = odd;  // Newton's iteration: each step doubles the correct low bits
  for (int i = 0; i < 5; ++i) x *= 2 - odd * x;
  return x;
}
constexpr uint32_t kGather = inverse_mod_2_32(kScatter);
static_assert(kScatter * kGather == 1);
constexpr uint32_t scatter(uint32_t n) {
  n = (n * kScatter) & kClientMask;
  return n ^ (n >> 14);  // a shift by at least half the width: its own inverse
}
constexpr uint32_t gather(uint32_t n) { return ((n ^ (n >> 14)) * kGather) & kClientMask; }
static_assert(gather(scatter(12345)) == 12345 && gather(scatter(kClientMask)) == kClientMask);
uint32_t client_number(uint32_t flow) { return 0x6440'0000u + scatter(flow >> 4); }
Ip4 client_ip(uint32_t flow) { return Ip4::from_host(client_number(flow)); }
uint32_t client_of(Ip4 ip, uint16_t port) { return gather(ip.host() - 0x6440'0000u) << 4 | (port - 1024u); }
uint32_t client_of(const Ip6& ip, uint16_t port) {
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = n << 8 | ip.bytes[12 + i];
  return client_of(Ip4::from_host(n), port);
}
Ip6 client_ip6(uint32_t flow) {
  Ip6 a = ip6("fd00:200::");
  const uint32_t n = client_number(flow);
  for (int i = 0; i < 4; ++i) a.bytes[12 + i] = static_cast<uint8_t>(n >> (24 - 8 * i));
  return a;
}
uint16_t client_port(uint32_t flow) { return static_cast<uint16_t>(1024 + (flow & 0xf)); }
Ip4 pod_ip(uint32_t i) { return Ip4::from_host(0xac11'010au + i); }

// TCP frames client -> VIP:80 with a valid IPv4 header checksum (the worker
// checks it: net_ring does not), built by patching one template; or the
// same over IPv6; or UDP datagrams of 18 bytes (IPv4).
class FrameMaker {
 public:
  FrameMaker(bool v6, bool udp) : v6_(v6), udp_(udp), frame_(first_frame(v6, udp)) {}

  // `flags`: the TCP flags (ignored for UDP).
  const Bytes& make(uint32_t flow, uint8_t flags) {
    if (udp_) {
      put_ip(frame_, kIpOff + 12, client_ip(flow));
      put16(frame_, l4_off(frame_), client_port(flow));
      fix_ip_checksum(frame_);
      fix_l4_checksum(frame_);
      return frame_;
    }
    if (v6_) {
      constexpr size_t kL4 = kEthLen + kIp6Len;
      const Ip6 src = client_ip6(flow);
      put_ip6(frame_, kEthLen + 8, src);
      put16(frame_, kL4, client_port(flow));
      put8(frame_, kL4 + 13, flags);
      put16(frame_, kL4 + 16, 0);
      put16(frame_, kL4 + 16, upper_checksum6(frame_, src, kVip6, kProtoTcp, kL4, 20, kL4 + 16));
      return frame_;
    }
    put_ip(frame_, kIpOff + 12, client_ip(flow));
    put16(frame_, l4_off(frame_), client_port(flow));
    put8(frame_, l4_off(frame_) + 13, flags);
    fix_ip_checksum(frame_);
    fix_l4_checksum(frame_);
    return frame_;
  }

 private:
  static Bytes first_frame(bool v6, bool udp) {
    const L2 l2{port_mac(kUplink), kClientMac};
    if (udp) return udp_frame(l2, L3{Ip4{}, kVip}, Udp{0, kServicePort}, Bytes(18));
    if (v6) return tcp6_frame(l2, L3v6{Ip6{}, kVip6}, Tcp{0, kServicePort, kAck});
    return tcp_frame(l2, L3{Ip4{}, kVip}, Tcp{0, kServicePort, kAck});
  }

  bool v6_;
  bool udp_;
  Bytes frame_;
};

// TCP ACKs from a Pod's target port back to a client, with valid
// checksums: what a flow's Pod sends.
class ReplyMaker {
 public:
  explicit ReplyMaker(bool v6)
      : v6_(v6),
        frame_(v6 ? tcp6_frame(L2{port_mac(kPods), kPodMac}, L3v6{Ip6{}, Ip6{}}, Tcp{kTargetPort, 0, kAck})
                  : tcp_frame(L2{port_mac(kPods), kPodMac}, L3{Ip4{}, Ip4{}}, Tcp{kTargetPort, 0, kAck})) {}

  // From Pod number `pod` (pod_ip(), pod6()).
  const Bytes& make(uint32_t flow, uint8_t pod) {
    if (v6_) {
      constexpr size_t kL4 = kEthLen + kIp6Len;
      const Ip6 src = pod6(pod);
      const Ip6 dst = client_ip6(flow);
      put_ip6(frame_, kEthLen + 8, src);
      put_ip6(frame_, kEthLen + 24, dst);
      put16(frame_, kL4 + 2, client_port(flow));
      put16(frame_, kL4 + 16, 0);
      put16(frame_, kL4 + 16, upper_checksum6(frame_, src, dst, kProtoTcp, kL4, 20, kL4 + 16));
      return frame_;
    }
    put_ip(frame_, kIpOff + 12, pod_ip(pod));
    put_ip(frame_, kIpOff + 16, client_ip(flow));
    put16(frame_, l4_off(frame_) + 2, client_port(flow));
    fix_ip_checksum(frame_);
    fix_l4_checksum(frame_);
    return frame_;
  }

 private:
  bool v6_;
  Bytes frame_;
};

// The io pass, out of line so that a profile can collect it alone
// (tools/bench/worker_instructions.py): a burst received on `from`, sent on
// `to`; how many were sent.
[[gnu::noinline]] uint16_t timed_io(uint16_t from, uint16_t to, uint16_t queue, rte_mbuf** m) noexcept {
  const uint16_t n = rte_eth_rx_burst(from, queue, m, kBurst);
  return rte_eth_tx_burst(to, queue, m, n);
}

// One Dataplane with N established connections, shared by every benchmark
// (and every repetition) that asks for N.
class Env {
 public:
  // `workers` > 1: each port has a queue per worker, of a NIC with RSS on
  // the client's fields (`steered`, test_env's rss_steered) or of a device
  // without (queue_per_worker); what reaches each queue is the caller's
  // choice (inject()).
  Env(uint32_t flows, bool v6, bool udp, uint32_t workers = 1, bool steered = false)
      : dp_(setup(flows, v6, workers, steered)), frames_(v6, udp), replies_(v6), order_(flows), pod_of_(flows),
        owned_(workers), v6_(v6) {
    for (uint32_t i = 0; i < kPodCount; ++i) {
      dp_.neighbors().set(pod_ip(i), kPodMac);
      dp_.neighbors6().set(pod6(i), kPodMac);
    }
    dp_.neighbors().set(kRouter, mac("02:00:00:00:fe:fe"));
    dp_.neighbors6().set(kRouter6, mac("02:00:00:00:fe:fe"));
    dp_.poll_until_idle();  // puts the worker online in QSBR
    // SYN then ACK of each flow, adjacent, so the 1 ms SYN timeout cannot
    // pass in between (UDP: one datagram); in chunks that fit the RX ring.
    constexpr uint32_t kChunk = 1024;
    for (uint32_t first = 0; first < flows; first += kChunk) {
      for (uint32_t f = first; f < std::min(flows, first + kChunk); ++f) {
        const auto queue = static_cast<uint16_t>(owner_of(f));
        if (!dp_.port(kUplink).inject(frames_.make(f, kSyn), queue) ||
            (!udp && !dp_.port(kUplink).inject(frames_.make(f, kAck), queue))) {
          fail("cannot inject while priming");
        }
      }
      dp_.poll_until_idle();
      // The Pod each connection was pinned to, for its replies.
      for (const Output& o : dp_.collect()) {
        if (o.port != kPods) continue;
        if (v6) {
          constexpr size_t kL4 = kEthLen + kIp6Len;
          pod_of_.at(client_of(get_ip6(o.frame, kEthLen + 8), get16(o.frame, kL4))) =
              static_cast<uint8_t>(o.frame[kEthLen + 39] - 10);
          continue;
        }
        const uint32_t f = client_of(Ip4::from_host(get32(o.frame, kIpOff + 12)), get16(o.frame, l4_off(o.frame)));
        pod_of_.at(f) = static_cast<uint8_t>(get32(o.frame, kIpOff + 16) - pod_ip(0).host());
      }
    }
    if (dp_.total(&dp::WorkerCounters::flows_created) != flows || dp_.drops_total() != 0) {
      fail("priming did not pin every flow: drops " + dp_.drop_summary());
    }
    for (uint32_t i = 0; i < flows; ++i) order_[i] = i;
    std::shuffle(order_.begin(), order_.end(), std::mt19937(42));
    if (workers > 1) {
      for (uint32_t f : order_) owned_[owner_of(f)].push_back(f);
    }
    owned_cursor_.assign(workers, 0);
  }

  Dataplane& dp() { return dp_; }
  uint32_t flows() const { return static_cast<uint32_t>(order_.size()); }

  // The next burst of established flows, in a random order fixed at start.
  void next_established(uint32_t* out) {
    for (uint16_t i = 0; i < kBurst; ++i) {
      out[i] = order_[cursor_];
      if (++cursor_ == order_.size()) cursor_ = 0;
    }
  }
  // The same among the flows worker `w` owns (several workers).
  void next_owned(uint32_t* out, uint32_t w) {
    const std::vector<uint32_t>& mine = owned_.at(w);
    if (mine.empty()) fail("worker " + std::to_string(w) + " owns no flow");
    size_t& at = owned_cursor_[w];
    for (uint16_t i = 0; i < kBurst; ++i) {
      out[i] = mine[at];
      if (++at == mine.size()) at = 0;
    }
  }
  // The worker that owns flow `f`: the RX queue a NIC with RSS on the
  // client's fields puts its packets on.
  uint32_t owner_of(uint32_t f) {
    const dp::Ownership& owners = dp_.worker(0).ownership();
    const rte_be16_t port = rte_cpu_to_be_16(client_port(f));
    return v6_ ? owners.owner(client_ip6(f), port) : owners.owner(client_ip(f), port);
  }

  static void next_new(uint32_t* out) {
    static uint32_t next = kFirstNewFlow;
    for (uint16_t i = 0; i < kBurst; ++i) out[i] = next++;
  }

  // Puts a burst on the uplink's RX ring `queue`, as a NIC would have; or,
  // for `replies`, the flows' Pods' ACKs on the pods port's.
  void inject(const uint32_t* flows, uint8_t flags, bool replies = false, uint16_t queue = 0) {
    rte_mbuf* m[kBurst];
    const size_t in = replies ? kPods : kUplink;
    if (rte_pktmbuf_alloc_bulk(dp_.pool(), m, kBurst) != 0) fail("mbuf pool empty");
    for (uint16_t i = 0; i < kBurst; ++i) {
      const Bytes& f = replies ? replies_.make(flows[i], pod_of_.at(flows[i])) : frames_.make(flows[i], flags);
      std::memcpy(rte_pktmbuf_append(m[i], static_cast<uint16_t>(f.size())), f.data(), f.size());
      m[i]->port = dp_.port(in).id();
    }
    if (rte_ring_enqueue_bulk(dp_.port(in).rx_ring(queue), reinterpret_cast<void**>(m), kBurst, nullptr) != kBurst) {
      fail("RX ring full");
    }
  }

  // Takes everything transmitted; how many left on the pods port (on the
  // uplink, for `replies`).
  size_t drain(bool replies = false) {
    size_t out = 0;
    for (const Output& o : dp_.collect()) out += o.port == (replies ? kUplink : kPods);
    return out;
  }

  // The testpmd-io equivalent for one burst: TSC ticks of rx_burst on the
  // uplink + tx_burst on the pods port (the other way for `replies`), on
  // queue `queue` of each.
  uint64_t io_burst(bool replies = false, uint16_t queue = 0) {
    rte_mbuf* m[kBurst];
    const uint16_t from = dp_.port(replies ? kPods : kUplink).id();
    const uint16_t to = dp_.port(replies ? kUplink : kPods).id();
    const uint64_t t0 = rte_rdtsc();
    const uint16_t sent = timed_io(from, to, queue, m);
    const uint64_t t1 = rte_rdtsc();
    if (sent != kBurst) fail("io burst short");
    return t1 - t0;
  }

  [[noreturn]] static void fail(const std::string& why) {
    std::fprintf(stderr, "worker_bench: %s\n", why.c_str());
    std::abort();
  }

 private:
  static DataplaneSetup setup(uint32_t flows, bool v6, uint32_t workers, bool steered) {
    DataplaneSetup s;
    s.config_toml = config();
    s.workers = workers;
    s.rss_steered = workers > 1 && steered;
    s.queue_per_worker = workers > 1 && !steered;
    s.amend = add_ipv6;
    (v6 ? s.flow_capacity6 : s.flow_capacity) = flows + kChurnHeadroom;
    s.timeouts.tcp_syn_ms = 1;
    s.mbufs = 16383;
    return s;
  }

  Dataplane dp_;
  FrameMaker frames_;
  ReplyMaker replies_;
  std::vector<uint32_t> order_;
  std::vector<uint8_t> pod_of_;  // by flow: the number of its Pod
  size_t cursor_ = 0;
  std::vector<std::vector<uint32_t>> owned_;  // order_'s flows by owner (several workers)
  std::vector<size_t> owned_cursor_;
  bool v6_;
};

// By flows, IPv6, UDP, workers, RSS-steered.
using EnvKey = std::tuple<uint32_t, bool, bool, uint32_t, bool>;
std::map<EnvKey, std::unique_ptr<Env>>& envs() {
  static std::map<EnvKey, std::unique_ptr<Env>> e;
  return e;
}

Env& env_for(uint32_t flows, bool v6 = false, bool udp = false, uint32_t workers = 1, bool steered = false) {
  auto& e = envs()[{flows, v6, udp, workers, steered}];
  if (!e) e = std::make_unique<Env>(flows, v6, udp, workers, steered);
  return *e;
}

double tsc_hz() { return static_cast<double>(rte_get_tsc_hz()); }

void BM_Io(benchmark::State& state) {
  Env& env = env_for(10'000);
  uint32_t flows[kBurst];
  uint64_t cycles = 0, packets = 0;
  for (auto _ : state) {
    env.next_established(flows);
    env.inject(flows, kAck);
    const uint64_t t = env.io_burst();
    state.SetIterationTime(static_cast<double>(t) / tsc_hz());
    cycles += t;
    packets += kBurst;
    if (env.drain() != kBurst) Env::fail("io: burst not transmitted");
  }
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["cycles/pkt"] = static_cast<double>(cycles) / static_cast<double>(packets);
  state.counters["tsc_MHz"] = tsc_hz() / 1e6;
}

// The timed call, out of line so that a profile can collect it alone:
//   valgrind --tool=callgrind --toggle-collect='*timed_poll*' worker_bench ...
// (tools/bench/worker_instructions.py does, and reports instructions/packet:
// a call a burst of 32, also where several workers share them).
[[gnu::noinline]] void timed_poll(dp::Worker& worker) noexcept { worker.poll_once(); }

// One burst through io and one through Worker::poll_once() per iteration
// and worker; only the latter is the benchmark's time.
enum class Traffic { kEstablished, kNewFlows, kReplies };
// How the established packets of several workers reach them (issue 9's
// two modes): each worker's RX queue gets a burst of 32 of the flows it
// owns, as from a NIC with RSS on the client's fields (kSteered), or of
// any flows, as from a device that cannot hash them (kHandoff: the
// receiver hands each packet it does not own to its owner, one ring burst
// per owner, and the owner forwards it in the same round).
enum class Spread { kOne, kSteered, kHandoff };

template <Traffic kTraffic, bool kIpv6 = false, bool kUdp = false, Spread kSpread = Spread::kOne>
void worker_loop(benchmark::State& state) {
  constexpr bool kNewFlows = kTraffic == Traffic::kNewFlows;
  constexpr bool kReplies = kTraffic == Traffic::kReplies;
  constexpr uint32_t kWorkers = kSpread == Spread::kOne ? 1 : 2;
  static_assert(kSpread == Spread::kOne || kTraffic == Traffic::kEstablished,
                "several workers: established flows only");
  Env& env = env_for(static_cast<uint32_t>(state.range(0)), kIpv6, kUdp, kWorkers, kSpread == Spread::kSteered);
  dp::Worker* workers[kWorkers];
  for (uint32_t w = 0; w < kWorkers; ++w) workers[w] = &env.dp().worker(w);
  const uint64_t created_before = env.dp().total(&dp::WorkerCounters::flows_created);
  const uint64_t full_before = env.dp().total(&dp::WorkerCounters::flows_table_full);
  const uint64_t adjacency_before = env.dp().total(&dp::WorkerCounters::adjacency_misses);
  const uint64_t stateless_before = env.dp().total(&dp::WorkerCounters::replies_stateless);
  const uint64_t handoffs_before = env.dp().total(&dp::WorkerCounters::handoff_out);
  const uint64_t drops_before = env.dp().drops_total();
  const uint8_t flags = kNewFlows ? kSyn : kAck;
  const int polls = g_polls;
  std::vector<std::array<std::array<uint32_t, kBurst>, kWorkers>> flows(static_cast<size_t>(polls));
  uint64_t cycles = 0, io_cycles = 0, packets = 0, forwarded = 0;
  for (auto _ : state) {
    for (auto& round : flows) {
      for (uint16_t q = 0; q < kWorkers; ++q) {
        uint32_t* burst = round[q].data();
        if (kNewFlows) {
          Env::next_new(burst);
        } else if (kSpread == Spread::kSteered) {
          env.next_owned(burst, q);
        } else {
          env.next_established(burst);
        }
        env.inject(burst, flags, kReplies, q);
        io_cycles += env.io_burst(kReplies, q);
        env.drain(kReplies);
      }
    }
    for (auto& round : flows) {
      for (uint16_t q = 0; q < kWorkers; ++q) env.inject(round[q].data(), flags, kReplies, q);
    }
    const uint64_t t0 = rte_rdtsc();
    for (int k = 0; k < polls; ++k) {
      for (dp::Worker* w : workers) timed_poll(*w);
    }
    const uint64_t t1 = rte_rdtsc();
    state.SetIterationTime(static_cast<double>(t1 - t0) / tsc_hz());
    cycles += t1 - t0;
    packets += uint64_t{kBurst} * kWorkers * static_cast<uint64_t>(polls);
    forwarded += env.drain(kReplies);
  }
  // What a later worker handed to an earlier one in the last round waits
  // in that one's ring (each round it is forwarded in the next).
  if (kWorkers > 1) {
    env.dp().poll_until_idle();
    forwarded += env.drain(kReplies);
  }
  // The io pass never reaches the worker: each new-flow packet the worker
  // sees is its flow's first.
  const uint64_t created = env.dp().total(&dp::WorkerCounters::flows_created) - created_before;
  // A reply must find its flow, not be mapped back statelessly.
  const uint64_t stateless = env.dp().total(&dp::WorkerCounters::replies_stateless) - stateless_before;
  const uint64_t handoffs = env.dp().total(&dp::WorkerCounters::handoff_out) - handoffs_before;
  // Steered, every packet reaches its owner first; else some are handed on.
  const bool handoffs_as_expected = kSpread == Spread::kHandoff ? handoffs != 0 : handoffs == 0;
  if (forwarded != packets || env.dp().drops_total() != drops_before ||
      created != (kNewFlows ? packets : 0) || stateless != 0 || !handoffs_as_expected) {
    state.SkipWithError(("not every packet took the measured path: forwarded " + std::to_string(forwarded) +
                         "/" + std::to_string(packets) + ", flows created " + std::to_string(created) +
                         ", replies without a flow " + std::to_string(stateless) + ", handed off " +
                         std::to_string(handoffs) + ", drops " + env.dp().drop_summary())
                            .c_str());
    return;
  }
  const double per = static_cast<double>(packets);
  state.SetItemsProcessed(static_cast<int64_t>(packets));
  state.counters["cycles/pkt"] = static_cast<double>(cycles) / per;
  state.counters["io_cycles/pkt"] = static_cast<double>(io_cycles) / per;
  state.counters["own_cycles/pkt"] = static_cast<double>(cycles - io_cycles) / per;
  state.counters["table_full"] =
      static_cast<double>(env.dp().total(&dp::WorkerCounters::flows_table_full) - full_before);
  // Packets whose next hop's MACs were not in the adjacency cache.
  state.counters["adjacency_misses/pkt"] =
      static_cast<double>(env.dp().total(&dp::WorkerCounters::adjacency_misses) - adjacency_before) / per;
  if (kWorkers > 1) state.counters["handed_off/pkt"] = static_cast<double>(handoffs) / per;
  state.counters["tsc_MHz"] = tsc_hz() / 1e6;
}

void BM_Established(benchmark::State& state) { worker_loop<Traffic::kEstablished>(state); }
void BM_Reply(benchmark::State& state) { worker_loop<Traffic::kReplies>(state); }
void BM_NewFlow(benchmark::State& state) { worker_loop<Traffic::kNewFlows>(state); }
void BM_Established6(benchmark::State& state) { worker_loop<Traffic::kEstablished, true>(state); }
void BM_Reply6(benchmark::State& state) { worker_loop<Traffic::kReplies, true>(state); }
void BM_NewFlow6(benchmark::State& state) { worker_loop<Traffic::kNewFlows, true>(state); }
void BM_EstablishedUdp(benchmark::State& state) { worker_loop<Traffic::kEstablished, false, true>(state); }
void BM_Established2Steered(benchmark::State& state) {
  worker_loop<Traffic::kEstablished, false, false, Spread::kSteered>(state);
}
void BM_Established2Handoff(benchmark::State& state) {
  worker_loop<Traffic::kEstablished, false, false, Spread::kHandoff>(state);
}
void BM_Established6_2Steered(benchmark::State& state) {
  worker_loop<Traffic::kEstablished, true, false, Spread::kSteered>(state);
}

BENCHMARK(BM_Io)->UseManualTime()->Unit(benchmark::kNanosecond);
BENCHMARK(BM_Established)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->UseManualTime();
BENCHMARK(BM_Reply)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->UseManualTime();
BENCHMARK(BM_NewFlow)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->UseManualTime();
BENCHMARK(BM_Established6)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->UseManualTime();
BENCHMARK(BM_Reply6)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->UseManualTime();
BENCHMARK(BM_NewFlow6)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->UseManualTime();
BENCHMARK(BM_EstablishedUdp)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->UseManualTime();
BENCHMARK(BM_Established2Steered)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->UseManualTime();
BENCHMARK(BM_Established2Handoff)->ArgName("flows")->Arg(10'000)->Arg(1'000'000)->UseManualTime();
BENCHMARK(BM_Established6_2Steered)->ArgName("flows")->Arg(10'000)->UseManualTime();

}  // namespace
}  // namespace podgate::test

// EAL once for the process, as tests/dataplane/dataplane_main.cpp, with
// memory for the 1M-flow table (57 MiB) and the mbuf pools, and the main
// lcore on the CPU the process was started on (taskset -c N).
// `--hugepages`: DPDK memory (the flow tables, the mbufs) from 2 MiB
// hugepages, as an appliance runs, instead of --no-huge's 4 KiB pages,
// whose TLB misses dominate the 1M-flow cases on a virtual machine.
int main(int argc, char** argv) {
  bool hugepages = false;
  for (int i = 1; i < argc;) {
    const std::string_view arg(argv[i]);
    if (arg == "--hugepages") {
      hugepages = true;
    } else if (arg.starts_with("--polls=")) {
      char* end = nullptr;
      const long k = std::strtol(argv[i] + 8, &end, 10);
      if (*end != '\0' || k < 1 || k > podgate::test::kMaxPolls) {
        std::fprintf(stderr, "worker_bench: --polls wants a number from 1 to %d, not '%s'\n",
                     podgate::test::kMaxPolls, argv[i] + 8);
        return 1;
      }
      podgate::test::g_polls = static_cast<int>(k);
    } else {
      ++i;
      continue;
    }
    std::copy(argv + i + 1, argv + argc, argv + i);
    --argc;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  int cpu = 0;
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0) {
    while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &cpus)) ++cpu;
  }
  const std::string lcores = "0@" + std::to_string(cpu);
  const char* eal_args[] = {
      argv[0], hugepages ? "--in-memory" : "--no-huge", hugepages ? "--file-prefix=worker_bench" : "--no-shconf",
      "-m", "1024", "--no-pci", "--lcores", lcores.c_str(), "--log-level=*:error",
  };
  int eal_argc = static_cast<int>(sizeof eal_args / sizeof eal_args[0]);
  if (rte_eal_init(eal_argc, const_cast<char**>(eal_args)) < 0) {
    std::fprintf(stderr, "worker_bench: rte_eal_init failed (run as root): %s\n", rte_strerror(rte_errno));
    return 1;
  }
  podgate::dp::use_dpdk_heap();
  if (!podgate::dp::register_mbuf_fields()) {
    std::fprintf(stderr, "worker_bench: cannot register the punt mbuf field: %s\n", rte_strerror(rte_errno));
    rte_eal_cleanup();
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  podgate::test::envs().clear();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}
