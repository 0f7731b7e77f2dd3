// Maglev table build time (control thread, per endpoint change of one
// service) and lookup cost (per new flow on a worker).  Reference: the Maglev
// paper (NSDI'16) reports 1.8 ms to build M=65537 for N=1000.
//
//   taskset -c 1 build-*/tests/maglev_bench
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "dataplane/maglev.hpp"

namespace podgate::dp {
namespace {

std::vector<std::string> pod_keys(size_t n) {
  std::vector<std::string> keys;
  for (size_t i = 0; i < n; ++i) {
    keys.push_back("10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) +
                   "." + std::to_string(i % 256) + ":8080");
  }
  return keys;
}

std::vector<MaglevEntry> entries_of(const std::vector<std::string>& keys, bool weighted) {
  std::vector<MaglevEntry> out;
  for (size_t i = 0; i < keys.size(); ++i) {
    out.push_back({keys[i], weighted ? 1 + static_cast<uint32_t>(i % 4) : 1});
  }
  return out;
}

void BM_BuildTable(benchmark::State& state) {
  const auto keys = pod_keys(static_cast<size_t>(state.range(0)));
  const auto entries = entries_of(keys, state.range(1) != 0);
  for (auto _ : state) {
    DpVector<uint16_t> table = build_maglev_table(entries, kMaglevDefaultTableSize);
    benchmark::DoNotOptimize(table.data());
  }
}
BENCHMARK(BM_BuildTable)
    ->ArgNames({"N", "weighted"})
    ->Args({10, 0})
    ->Args({100, 0})
    ->Args({1000, 0})
    ->Args({1000, 1})
    ->Unit(benchmark::kMicrosecond);

// The tables of a start at 10k services (tools/bench/scale_bench.py): 2
// ports x 10 endpoints each, M = 1021 (what maglev_table_size_for() picks
// for 10 endpoints), so 20,000 of these per first snapshot.
void BM_BuildSmallTable(benchmark::State& state) {
  const auto keys = pod_keys(10);
  const auto entries = entries_of(keys, false);
  for (auto _ : state) {
    DpVector<uint16_t> table = build_maglev_table(entries, 1021);
    benchmark::DoNotOptimize(table.data());
  }
}
BENCHMARK(BM_BuildSmallTable)->Unit(benchmark::kMicrosecond);

// Random flow hashes, looked up one after another; the table (128 KiB) sits
// in L2, as it would for a hot service.
template <bool kModulo>
void lookup_loop(benchmark::State& state) {
  const auto keys = pod_keys(100);
  const DpVector<uint16_t> table = build_maglev_table(entries_of(keys, false), kMaglevDefaultTableSize);
  std::vector<uint32_t> hashes(4096);
  std::mt19937 rng(7);
  for (uint32_t& h : hashes) h = static_cast<uint32_t>(rng());
  size_t i = 0;
  for (auto _ : state) {
    const uint32_t h = hashes[i++ & 4095];
    uint16_t idx;
    if constexpr (kModulo) {
      idx = table[h % table.size()];
    } else {
      idx = maglev_lookup(table, h);
    }
    benchmark::DoNotOptimize(idx);
  }
}

void BM_Lookup(benchmark::State& state) { lookup_loop<false>(state); }
void BM_LookupModuloForComparison(benchmark::State& state) { lookup_loop<true>(state); }
BENCHMARK(BM_Lookup);
BENCHMARK(BM_LookupModuloForComparison);

}  // namespace
}  // namespace podgate::dp

BENCHMARK_MAIN();
