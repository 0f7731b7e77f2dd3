// Maglev table population (NSDI'16 §3.4): balance, weights, disruption,
// determinism, and agreement with an independent reference of the contract
// written down in dataplane/maglev.hpp.
#include "dataplane/maglev.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace podgate::dp {
namespace {

constexpr uint32_t kBigM = 65537;
constexpr uint32_t kSmallM = 251;

// Endpoint keys owned by the test; `entries()` views them.
struct Endpoints {
  std::vector<std::string> keys;
  std::vector<uint32_t> weights;

  static Endpoints pods(size_t n, uint32_t weight = 1) {
    Endpoints e;
    for (size_t i = 0; i < n; ++i) e.add(pod_key(i), weight);
    return e;
  }
  static std::string pod_key(size_t i) {
    return "10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
           std::to_string(i % 256) + ":8080";
  }
  void add(std::string key, uint32_t weight) {
    keys.push_back(std::move(key));
    weights.push_back(weight);
  }
  void erase(size_t i) {
    keys.erase(keys.begin() + static_cast<std::ptrdiff_t>(i));
    weights.erase(weights.begin() + static_cast<std::ptrdiff_t>(i));
  }
  std::vector<MaglevEntry> entries() const {
    std::vector<MaglevEntry> out;
    for (size_t i = 0; i < keys.size(); ++i) out.push_back({keys[i], weights[i]});
    return out;
  }
  DpVector<uint16_t> build(uint32_t m) const { return build_maglev_table(entries(), m); }
  // The table as slot -> key, comparable across inputs whose indices differ.
  std::vector<std::string> owners(uint32_t m) const {
    DpVector<uint16_t> table = build(m);
    std::vector<std::string> out;
    out.reserve(table.size());
    for (uint16_t idx : table) out.push_back(idx == kNoBackend ? "" : keys.at(idx));
    return out;
  }
};

std::vector<size_t> slot_counts(const DpVector<uint16_t>& table, size_t n) {
  std::vector<size_t> counts(n, 0);
  for (uint16_t idx : table) {
    if (idx < n) ++counts[idx];
  }
  return counts;
}

TEST(Maglev, EachOfNEqualEndpointsGetsFloorOrCeilOfMOverN) {
  const std::vector<std::pair<uint32_t, size_t>> cases = {
      {kBigM, 1},   {kBigM, 2},   {kBigM, 3},   {kBigM, 7},    {kBigM, 10},
      {kBigM, 100}, {kBigM, 1000}, {kSmallM, 1}, {kSmallM, 2},  {kSmallM, 3},
      {kSmallM, 7}, {kSmallM, 10}, {kSmallM, 100}, {kSmallM, 250}, {kSmallM, 300}};
  for (auto [m, n] : cases) {
    SCOPED_TRACE("M=" + std::to_string(m) + " N=" + std::to_string(n));
    DpVector<uint16_t> table = Endpoints::pods(n).build(m);
    ASSERT_EQ(table.size(), m);
    const size_t lo = m / n;
    const size_t hi = (m + n - 1) / n;
    std::vector<size_t> counts = slot_counts(table, n);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_GE(counts[i], lo) << "endpoint " << i;
      EXPECT_LE(counts[i], hi) << "endpoint " << i;
    }
    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), size_t{0}), m);
  }
}

TEST(Maglev, EverySlotIsFilledWithAValidIndex) {
  Endpoints e = Endpoints::pods(37);
  for (size_t i = 0; i < e.weights.size(); ++i) e.weights[i] = 1 + static_cast<uint32_t>(i * 7 % 256);
  for (uint32_t m : {kSmallM, kBigM}) {
    DpVector<uint16_t> table = e.build(m);
    ASSERT_EQ(table.size(), m);
    EXPECT_TRUE(std::all_of(table.begin(), table.end(), [&](uint16_t i) { return i < 37; }));
  }
}

TEST(Maglev, EqualWeightsOfAnyValueBuildTheUnweightedTable) {
  // Equal weights reduce to the paper's unweighted Pseudocode 1.
  const auto unweighted = Endpoints::pods(50, 1).owners(kBigM);
  EXPECT_EQ(Endpoints::pods(50, 7).owners(kBigM), unweighted);
  EXPECT_EQ(Endpoints::pods(50, kMaglevMaxWeight).owners(kBigM), unweighted);
}

TEST(Maglev, HigherWeightGetsProportionallyMoreSlots) {
  // Each turn fills one slot, so slot counts follow turn counts to within a
  // turn or two; 0.5% is a generous tolerance on the ratios.
  {
    Endpoints e;
    e.add("172.17.0.10:8080", 2);
    e.add("172.17.0.11:8080", 1);
    std::vector<size_t> c = slot_counts(e.build(kBigM), 2);
    const double ratio = static_cast<double>(c[0]) / static_cast<double>(c[1]);
    std::printf("weights 2:1 -> slots %zu:%zu, ratio %.5f\n", c[0], c[1], ratio);
    EXPECT_NEAR(ratio, 2.0, 2.0 * 0.005);
  }
  {
    // 30 endpoints of weights 1,2,3,1,2,3,...: each owns ~M*w/60.
    Endpoints e = Endpoints::pods(30);
    for (size_t i = 0; i < 30; ++i) e.weights[i] = 1 + static_cast<uint32_t>(i % 3);
    std::vector<size_t> c = slot_counts(e.build(kBigM), 30);
    double worst = 0;
    for (size_t i = 0; i < 30; ++i) {
      const double expected = double{kBigM} * e.weights[i] / 60.0;
      const double rel = std::abs(static_cast<double>(c[i]) - expected) / expected;
      worst = std::max(worst, rel);
      EXPECT_NEAR(static_cast<double>(c[i]), expected, expected * 0.005) << "endpoint " << i;
    }
    std::printf("weights 1,2,3 x10: worst deviation from M*w/sum(w) %.4f%%\n", worst * 100);
  }
}

TEST(Maglev, OnlyTheRatiosOfWeightsMatter) {
  Endpoints a = Endpoints::pods(20);
  Endpoints b = Endpoints::pods(20);
  for (size_t i = 0; i < 20; ++i) {
    a.weights[i] = 1 + static_cast<uint32_t>(i % 4);
    b.weights[i] = 3 * a.weights[i];
  }
  EXPECT_EQ(a.owners(kBigM), b.owners(kBigM));
}

// Of the slots not owned by the removed endpoint, the share whose owner
// changed.  Paper §3.4: Maglev trades a little disruption for balance; these
// slots move only because the removed endpoint's turns are gone, which shifts
// where the others' later turns land.
TEST(Maglev, RemovingOneEndpointMovesOnlyItsSlotsAndFewOthers) {
  constexpr size_t kN = 100;
  const Endpoints all = Endpoints::pods(kN);
  const auto before = all.owners(kBigM);
  double worst = 0;
  double sum = 0;
  size_t trials = 0;
  for (size_t removed = 0; removed < kN; removed += 9) {
    Endpoints fewer = all;
    fewer.erase(removed);
    const auto after = fewer.owners(kBigM);
    size_t kept = 0;
    size_t moved = 0;
    for (uint32_t s = 0; s < kBigM; ++s) {
      if (before[s] == all.keys[removed]) {
        EXPECT_NE(after[s], all.keys[removed]);
        continue;
      }
      ++kept;
      if (after[s] != before[s]) ++moved;
    }
    const double share = static_cast<double>(moved) / static_cast<double>(kept);
    worst = std::max(worst, share);
    sum += share;
    ++trials;
    // Measured: mean 0.58%, worst 0.62% over these 12 removals (the inputs
    // are fixed, so the figure is reproducible).  The 1% bound leaves ~1.6x
    // headroom and still catches a regression towards modulo hashing (~99%
    // would move) or a broken permutation.
    EXPECT_LT(share, 0.01) << "removing endpoint " << removed;
  }
  std::printf("remove 1 of %zu, M=%u: slots of others that moved: mean %.3f%%, worst %.3f%% (%zu trials)\n",
              kN, kBigM, sum / static_cast<double>(trials) * 100, worst * 100, trials);
}

TEST(Maglev, AddingOneEndpointDisruptsLittle) {
  constexpr size_t kN = 100;
  const Endpoints base = Endpoints::pods(kN);
  const auto before = base.owners(kBigM);
  double worst = 0;
  double sum = 0;
  size_t trials = 0;
  for (size_t extra = 0; extra < 10; ++extra) {
    Endpoints more = base;
    const std::string key = "10.9.9." + std::to_string(extra) + ":8080";
    more.add(key, 1);
    const auto after = more.owners(kBigM);
    size_t taken = 0;
    size_t moved = 0;
    for (uint32_t s = 0; s < kBigM; ++s) {
      if (after[s] == key) {
        ++taken;
      } else if (after[s] != before[s]) {
        ++moved;
      }
    }
    // The newcomer takes its fair share ...
    EXPECT_GE(taken, kBigM / (kN + 1));
    EXPECT_LE(taken, kBigM / (kN + 1) + 1);
    // ... and few slots move between the endpoints that were already there.
    const double share = static_cast<double>(moved) / static_cast<double>(kBigM - taken);
    worst = std::max(worst, share);
    sum += share;
    ++trials;
    // Measured: mean 0.57%, worst 0.61% over these 10 additions; bound as above.
    EXPECT_LT(share, 0.01) << "adding " << key;
  }
  std::printf("add 1 to %zu, M=%u: slots moved between old endpoints: mean %.3f%%, worst %.3f%% (%zu trials)\n",
              kN, kBigM, sum / static_cast<double>(trials) * 100, worst * 100, trials);
}

TEST(Maglev, ShuffledInputsBuildIdenticalTables) {
  Endpoints e = Endpoints::pods(200);
  for (size_t i = 0; i < e.weights.size(); ++i) e.weights[i] = 1 + static_cast<uint32_t>(i % 5);
  const auto reference = e.owners(kBigM);
  std::mt19937 rng(12345);
  for (int round = 0; round < 5; ++round) {
    std::vector<size_t> perm(e.keys.size());
    std::iota(perm.begin(), perm.end(), size_t{0});
    std::shuffle(perm.begin(), perm.end(), rng);
    Endpoints shuffled;
    for (size_t i : perm) shuffled.add(e.keys[i], e.weights[i]);
    EXPECT_EQ(shuffled.owners(kBigM), reference) << "shuffle " << round;
  }
}

TEST(Maglev, EmptyInputGivesNoBackend) {
  DpVector<uint16_t> table = build_maglev_table({}, kSmallM);
  ASSERT_EQ(table.size(), kSmallM);
  EXPECT_TRUE(std::all_of(table.begin(), table.end(), [](uint16_t i) { return i == kNoBackend; }));
  EXPECT_EQ(maglev_lookup(table, 0x12345678), kNoBackend);
}

TEST(Maglev, AllZeroWeightsGiveNoBackend) {
  DpVector<uint16_t> table = Endpoints::pods(5, 0).build(kSmallM);
  ASSERT_EQ(table.size(), kSmallM);
  EXPECT_TRUE(std::all_of(table.begin(), table.end(), [](uint16_t i) { return i == kNoBackend; }));
}

TEST(Maglev, ZeroWeightEndpointGetsNoSlotsAndChangesNothingElse) {
  // Weight 0 is how a draining endpoint leaves: the table is the one built
  // without it.
  Endpoints with = Endpoints::pods(10);
  with.weights[4] = 0;
  Endpoints without = Endpoints::pods(10);
  without.erase(4);
  const auto owners = with.owners(kBigM);
  EXPECT_EQ(std::count(owners.begin(), owners.end(), with.keys[4]), 0);
  EXPECT_EQ(owners, without.owners(kBigM));
}

TEST(Maglev, KeyHashMatchesThePinnedContract) {
  // Values from the independent Python implementation of the contract in
  // maglev.hpp (FNV-1a-64 from basis ^ seed, then fmix64):
  // tests/maglev_reference/maglev_ref.py.  Changing the
  // hash changes every table: appliances on both versions would disagree.
  EXPECT_EQ(maglev_key_hash("172.17.0.10:8080", kMaglevOffsetSeed), 0x8bef06cfc7369adfULL);
  EXPECT_EQ(maglev_key_hash("172.17.0.10:8080", kMaglevSkipSeed), 0x3245ce0768e76797ULL);
}

TEST(Maglev, TableMatchesAnIndependentReferenceImplementation) {
  // Expected tables computed by the same independent Python implementation
  // of Pseudocode 1 with credit weights (indices into the input as given):
  // `maglev_ref.py --table 7 b:1 a:1 c:1`.  Realistic sizes (M = 65537) are
  // in maglev_reference_test.cpp.
  {
    const MaglevEntry in[] = {{"b", 1}, {"a", 1}, {"c", 1}};
    DpVector<uint16_t> t = build_maglev_table(in, 7);
    EXPECT_EQ(std::vector<uint16_t>(t.begin(), t.end()), (std::vector<uint16_t>{0, 1, 2, 2, 1, 0, 1}));
  }
  {
    const MaglevEntry in[] = {{"10.0.0.2:80", 2}, {"10.0.0.1:80", 1}, {"10.0.0.3:80", 1}};
    DpVector<uint16_t> t = build_maglev_table(in, 13);
    EXPECT_EQ(std::vector<uint16_t>(t.begin(), t.end()),
              (std::vector<uint16_t>{2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2}));
  }
  {
    const MaglevEntry in[] = {{"172.17.0.12:8080", 3},
                              {"172.17.0.10:8080", 1},
                              {"172.17.0.11:8080", 0},
                              {"172.17.0.13:8080", 2}};
    DpVector<uint16_t> t = build_maglev_table(in, 31);
    EXPECT_EQ(std::vector<uint16_t>(t.begin(), t.end()),
              (std::vector<uint16_t>{0, 0, 1, 1, 0, 3, 1, 0, 0, 3, 0, 0, 1, 0, 0, 3,
                                     0, 3, 0, 0, 0, 1, 3, 3, 0, 3, 0, 3, 3, 3, 0}));
  }
}

// Pseudocode 1 as the paper writes it, with the credit weights of
// maglev.hpp: each endpoint's permutation[j] = (offset + j * skip) mod M
// computed afresh, the turns in key order, an unweighted round taken
// through the credit too.  Slow and plain, for comparison.
std::vector<uint16_t> pseudocode1(const Endpoints& e, uint32_t m) {
  std::vector<size_t> order(e.keys.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return e.keys[a] < e.keys[b]; });
  const uint32_t max_weight = *std::max_element(e.weights.begin(), e.weights.end());
  std::vector<uint16_t> entry(m, kNoBackend);
  std::vector<uint64_t> next(e.keys.size(), 0), credit(e.keys.size(), 0);
  uint32_t filled = 0;
  while (filled < m) {
    for (size_t i : order) {
      credit[i] += e.weights[i];
      if (credit[i] < max_weight) continue;
      credit[i] -= max_weight;
      const uint64_t offset = maglev_key_hash(e.keys[i], kMaglevOffsetSeed) % m;
      const uint64_t skip = maglev_key_hash(e.keys[i], kMaglevSkipSeed) % (m - 1) + 1;
      uint64_t c = (offset + next[i] * skip) % m;
      while (entry[c] != kNoBackend) c = (offset + ++next[i] * skip) % m;
      entry[c] = static_cast<uint16_t>(i);
      ++next[i];
      if (++filled == m) break;
    }
  }
  return entry;
}

TEST(Maglev, TablesOfEverySizeMatchPseudocode1WrittenOut) {
  // Small tables are probed through themselves, large ones through a
  // bitmap (maglev.cpp); equal weights skip the credit.  Sizes on both
  // sides of that line, weighted and not.
  std::mt19937 rng(2026);
  for (uint32_t m : {7U, 251U, 1021U, 16381U, 16411U, 65537U}) {
    for (size_t n : {size_t{1}, size_t{3}, size_t{10}, size_t{97}}) {
      for (bool weighted : {false, true}) {
        Endpoints e = Endpoints::pods(n, 3);
        if (weighted) {
          for (uint32_t& w : e.weights) w = 1 + rng() % 8;
        }
        std::shuffle(e.keys.begin(), e.keys.end(), rng);
        const DpVector<uint16_t> t = e.build(m);
        EXPECT_EQ(std::vector<uint16_t>(t.begin(), t.end()), pseudocode1(e, m))
            << "M " << m << ", N " << n << (weighted ? ", weighted" : "");
      }
    }
  }
}

TEST(Maglev, LookupReducesTheHashByMultiplyShiftOntoEverySlot) {
  DpVector<uint16_t> table(kSmallM);
  std::iota(table.begin(), table.end(), uint16_t{0});
  EXPECT_EQ(maglev_lookup(table, 0), 0);
  EXPECT_EQ(maglev_lookup(table, 0xffffffffU), kSmallM - 1);
  EXPECT_EQ(maglev_lookup(table, 0x80000000U), kSmallM / 2);
  std::vector<size_t> hits(kSmallM, 0);
  constexpr uint32_t kSamples = kSmallM * 64;
  for (uint32_t k = 0; k < kSamples; ++k) {
    const auto h = static_cast<uint32_t>(((uint64_t{k} << 32) + kSamples - 1) / kSamples);  // ceil
    ++hits[maglev_lookup(table, h)];
  }
  // Evenly spaced hashes land 64 per slot.
  EXPECT_TRUE(std::all_of(hits.begin(), hits.end(), [](size_t c) { return c == 64; }));
}

TEST(Maglev, LookupOnAnEmptyTableGivesNoBackend) {
  EXPECT_EQ(maglev_lookup(DpVector<uint16_t>{}, 42), kNoBackend);
}

TEST(IsPrime, AcceptsPrimes) {
  for (uint32_t p : {2U, 3U, 5U, 7U, 13U, 251U, 65521U, 65537U, 655373U, 4294967291U}) {
    EXPECT_TRUE(is_prime(p)) << p;
  }
}

TEST(IsPrime, RejectsNonPrimes) {
  for (uint32_t n : {0U, 1U, 4U, 9U, 25U, 49U, 561U, 65535U, 65536U, 65541U,
                     4294967295U, 4294836225U /* 65535^2 */}) {
    EXPECT_FALSE(is_prime(n)) << n;
  }
}

TEST(IsPrime, AgreesWithASieveBelow100000) {
  constexpr uint32_t kLimit = 100000;
  std::vector<bool> composite(kLimit, false);
  for (uint32_t i = 2; i * i < kLimit; ++i) {
    if (!composite[i]) {
      for (uint32_t j = i * i; j < kLimit; j += i) composite[j] = true;
    }
  }
  for (uint32_t n = 0; n < kLimit; ++n) {
    ASSERT_EQ(is_prime(n), n >= 2 && !composite[n]) << n;
  }
}

}  // namespace
}  // namespace podgate::dp
