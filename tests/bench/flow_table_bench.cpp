// Flow table cost per operation at 10k and 1M live connections, in a table
// of twice that many records.  Run pinned, e.g.
//   taskset -c 1 build/tests/flow_table_bench
// Keys are precomputed and visited in random order, so the 1M case pays the
// cache and TLB misses a worker pays with many concurrent flows.
#include "dataplane/flow_table.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

namespace podgate::dp {
namespace {

constexpr FlowTimeouts kLong{1u << 30, 1u << 30, 1u << 30, 1u << 30};
constexpr uint32_t kNow = 1000;
constexpr uint32_t kBurst = 32;

std::vector<FlowKey4> random_keys(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<FlowKey4> keys(n);
  for (FlowKey4& k : keys) {
    uint64_t r = rng();
    k.src = Ip4{static_cast<uint32_t>(r)};
    k.dst = Ip4{static_cast<uint32_t>(r >> 32)};
    r = rng();
    k.sport = static_cast<rte_be16_t>(r);
    k.dport = static_cast<rte_be16_t>(r >> 16);
    k.proto = Proto::kTcp;
  }
  return keys;
}

struct Filled {
  FlowTable table;
  std::vector<FlowKey4> present;

  explicit Filled(uint32_t n) : table(2 * n, kLong) {
    for (const FlowKey4& k : random_keys(n, 1)) {
      if (table.insert(k, Ip4{1}, 1, FlowState::kTcpEstablished, 0, kNow)) {
        present.push_back(k);
      }
    }
    std::shuffle(present.begin(), present.end(), std::mt19937_64(2));
  }
};

void BM_FindHit(benchmark::State& state) {
  Filled f(static_cast<uint32_t>(state.range(0)));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.table.find(f.present[i], kNow));
    if (++i == f.present.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_FindMiss(benchmark::State& state) {
  Filled f(static_cast<uint32_t>(state.range(0)));
  std::vector<FlowKey4> absent = random_keys(f.present.size(), 3);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.table.find(absent[i], kNow));
    if (++i == absent.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

// How a worker uses it: hash and prefetch a burst's buckets, then its
// records, then look it up.
void BM_FindHitBurstPrefetched(benchmark::State& state) {
  Filled f(static_cast<uint32_t>(state.range(0)));
  const size_t bursts = f.present.size() / kBurst;
  size_t b = 0;
  FlowTable::Probe h[kBurst];
  for (auto _ : state) {
    const FlowKey4* k = &f.present[b * kBurst];
    for (uint32_t j = 0; j < kBurst; ++j) {
      h[j] = f.table.probe(FlowTable::hash(k[j]));
      f.table.prefetch(h[j]);
    }
    for (uint32_t j = 0; j < kBurst; ++j) f.table.prefetch_flow(h[j]);
    for (uint32_t j = 0; j < kBurst; ++j) {
      benchmark::DoNotOptimize(f.table.find(k[j], h[j], kNow));
    }
    if (++b == bursts) b = 0;
  }
  state.SetItemsProcessed(state.iterations() * kBurst);
}

// Steady churn at constant size: each iteration inserts a new flow and
// erases the one inserted N iterations earlier (the erase touches a cold
// entry too, so this is an upper bound on insert alone).
void BM_InsertWithChurn(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  FlowTable table(2 * n, kLong);
  const std::vector<FlowKey4> keys = random_keys(2 * size_t{n}, 4);
  std::vector<Flow*> live(n, nullptr);
  for (uint32_t i = 0; i < n; ++i) {
    live[i] = table.insert(keys[i], Ip4{1}, 1, FlowState::kTcpSynSent, 0, kNow);
  }
  size_t step = 0;
  uint64_t refused = 0;
  for (auto _ : state) {
    const size_t slot = step % n;
    if (live[slot] != nullptr) table.erase(*live[slot]);
    Flow* e = table.insert(keys[(step + n) % keys.size()], Ip4{1}, 1, FlowState::kTcpSynSent, 0, kNow);
    refused += e == nullptr;
    live[slot] = e;
    ++step;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["refused"] =
      benchmark::Counter(static_cast<double>(refused), benchmark::Counter::kAvgIterations);
}

// A SYN flood at scale, as the half-open queue meets it: the table holds
// n established connections, and every iteration pins 32 new half-open
// flows while expire_half_open() frees the 32 that fell due, pinned n
// flows earlier (the SYN timeout is n/32 ms, one millisecond an
// iteration).  By then their records and index buckets have long left the
// caches, as with a real flood and a timeout of seconds.  Only
// expire_half_open() is timed.
void BM_ExpireHalfOpenCold(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  FlowTimeouts timeouts = kLong;
  timeouts.tcp_syn_ms = n / kBurst;
  FlowTable table(2 * n + 2 * kBurst, timeouts);
  for (const FlowKey4& k : random_keys(n, 6)) table.insert(k, Ip4{1}, 1, FlowState::kTcpEstablished, 0, 0);
  std::mt19937_64 rng(7);
  auto syn_burst = [&](uint32_t now) {
    for (uint32_t j = 0; j < kBurst; ++j) {
      const uint64_t r = rng();
      const FlowKey4 k{Ip4{static_cast<uint32_t>(r)}, Ip4{static_cast<uint32_t>(r >> 32)},
                       static_cast<rte_be16_t>(rng()), 80, Proto::kTcp};
      table.insert(k, Ip4{2}, 1, FlowState::kTcpSynSent, 0, now);
    }
  };
  uint32_t now = 0;
  for (; now < timeouts.tcp_syn_ms; ++now) syn_burst(now);
  uint64_t freed = 0;
  for (auto _ : state) {
    syn_burst(now);
    ++now;
    const auto t0 = std::chrono::steady_clock::now();
    freed += table.expire_half_open(now, 2 * kBurst);
    const auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  state.SetItemsProcessed(static_cast<int64_t>(freed));
  state.counters["freed/iteration"] =
      benchmark::Counter(static_cast<double>(freed), benchmark::Counter::kAvgIterations);
}

// hash() alone: the CRC32-C of 16 bytes.
void BM_Hash(benchmark::State& state) {
  std::vector<FlowKey4> keys = random_keys(1024, 5);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(FlowTable::hash(keys[i]));
    i = (i + 1) & 1023;
  }
}

BENCHMARK(BM_Hash);
BENCHMARK(BM_FindHit)->Arg(10'000)->Arg(1'000'000);
BENCHMARK(BM_FindMiss)->Arg(10'000)->Arg(1'000'000);
BENCHMARK(BM_FindHitBurstPrefetched)->Arg(10'000)->Arg(1'000'000);
BENCHMARK(BM_InsertWithChurn)->Arg(10'000)->Arg(1'000'000);
BENCHMARK(BM_ExpireHalfOpenCold)->Arg(10'000)->Arg(1'000'000)->UseManualTime();

}  // namespace
}  // namespace podgate::dp

BENCHMARK_MAIN();
