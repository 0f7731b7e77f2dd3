// Maglev table population, NSDI'16 §3.4 Pseudocode 1, with weights by turn
// frequency.  See maglev.hpp for the contract shared by every appliance.
#include "dataplane/maglev.hpp"

#include <algorithm>
#include <cassert>
#include <numeric>
#include <vector>

namespace podgate::dp {

namespace {

constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325;
constexpr uint64_t kFnvPrime = 0x100000001b3;

// MurmurHash3's fmix64.  FNV-1a's low bits depend only on the low bits of
// its state and input, and the keys here differ in a byte or two
// ("...0.10:8080" vs "...0.11:8080"); the finaliser spreads every bit into
// every bit before the reductions mod M and mod M-1.
constexpr uint64_t fmix64(uint64_t k) noexcept {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccd;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53;
  k ^= k >> 33;
  return k;
}

// One endpoint's place in the population loop.  `pos` is the slot its
// permutation points at now, i.e. permutation[i][next[i]] of Pseudocode 1,
// kept incrementally (pos += skip, less M once past it) instead of storing M
// slots per endpoint or multiplying next * skip.
struct Cursor {
  uint32_t pos;
  uint32_t skip;
  uint32_t weight;
  uint32_t credit;
  uint16_t index;  // into the caller's entries
};

// A bit per slot, for large tables: 8 KiB for M = 65537, so the probing
// stays in L1 while the 128 KiB table is only written once per slot.
class SlotBitmap {
 public:
  explicit SlotBitmap(uint32_t slots) : words_((slots + 63) / 64, 0) {}
  bool test(uint32_t i) const noexcept { return (words_[i >> 6] >> (i & 63)) & 1U; }
  void set(uint32_t i) noexcept { words_[i >> 6] |= uint64_t{1} << (i & 63); }

 private:
  std::vector<uint64_t> words_;
};

// A small table (up to 16 Ki slots, 32 KiB: in L1) is its own record of
// which slots are taken (an empty one holds kNoBackend): no bitmap to
// allocate, and a probe is one load instead of a bit's shift and mask.
constexpr uint32_t kProbeTableUpTo = 16384;

// One turn of cursor `c`: it claims the first empty slot of its
// permutation from c.pos on, and moves past it.
inline void claim_in_bitmap(Cursor& c, uint32_t m, SlotBitmap& taken, uint16_t* table) noexcept {
  const uint32_t skip = c.skip;
  uint32_t pos = c.pos;
  while (taken.test(pos)) {
    pos += skip;
    if (pos >= m) pos -= m;
  }
  taken.set(pos);
  table[pos] = c.index;
  pos += skip;
  c.pos = pos >= m ? pos - m : pos;
}

inline void claim_in_table(Cursor& c, uint32_t m, uint16_t* table) noexcept {
  const uint32_t skip = c.skip;
  uint32_t pos = c.pos;
  while (table[pos] != kNoBackend) {
    pos += skip;
    if (pos >= m) pos -= m;
  }
  table[pos] = c.index;
  pos += skip;
  c.pos = pos >= m ? pos - m : pos;
}

// Pseudocode 1: endpoints take turns; on its turn an endpoint claims the
// first still-empty slot of its permutation.  A turn always fills exactly
// one slot (the permutation covers all M slots since M is prime), so the
// loop ends after exactly M turns.  Weights: a turn is taken when the
// credit reaches max_weight (see maglev.hpp); with equal weights every
// endpoint takes a turn every round, and kWeighted = false leaves out the
// credit that would say so.
template <bool kWeighted, class Claim>
void take_turns(std::vector<Cursor>& cursors, uint32_t max_weight, uint32_t m, Claim claim) noexcept {
  uint32_t left = m;
  for (;;) {
    for (Cursor& c : cursors) {
      if constexpr (kWeighted) {
        c.credit += c.weight;
        if (c.credit < max_weight) continue;
        c.credit -= max_weight;
      }
      claim(c);
      if (--left == 0) return;
    }
  }
}

template <class Claim>
void take_turns(std::vector<Cursor>& cursors, uint32_t max_weight, bool weighted, uint32_t m,
                Claim claim) noexcept {
  if (weighted) {
    take_turns<true>(cursors, max_weight, m, claim);
  } else {
    take_turns<false>(cursors, max_weight, m, claim);
  }
}

}  // namespace

uint64_t maglev_key_hash(std::string_view key, uint64_t seed) noexcept {
  uint64_t h = kFnvOffsetBasis ^ seed;
  for (char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= kFnvPrime;
  }
  return fmix64(h);
}

bool is_prime(uint32_t n) noexcept {
  if (n < 4) return n >= 2;
  if (n % 2 == 0 || n % 3 == 0) return false;
  for (uint64_t d = 5; d * d <= n; d += 6) {
    if (n % d == 0 || n % (d + 2) == 0) return false;
  }
  return true;
}

DpVector<uint16_t> build_maglev_table(std::span<const MaglevEntry> entries,
                                      uint32_t table_size) {
  assert(is_prime(table_size));
  assert(entries.size() < kNoBackend);
  assert(table_size <= uint32_t{1} << 31);  // pos + skip < 2 M fits in uint32 (config: M <= 2^24)
  const uint32_t m = table_size;
  DpVector<uint16_t> table(m, kNoBackend);

  // Turn order follows the keys, not the input, so that a shuffled input
  // builds the same slot -> key mapping (architecture decision 2).
  std::vector<uint16_t> order(entries.size());
  std::iota(order.begin(), order.end(), uint16_t{0});
  std::sort(order.begin(), order.end(),
            [&](uint16_t a, uint16_t b) { return entries[a].key < entries[b].key; });

  std::vector<Cursor> cursors;
  cursors.reserve(entries.size());
  uint32_t max_weight = 0;
  bool weighted = false;  // two taking endpoints of different weights
  for (size_t k = 0; k < order.size(); ++k) {
    const MaglevEntry& e = entries[order[k]];
    assert(e.weight <= kMaglevMaxWeight);
    assert(k == 0 || entries[order[k - 1]].key != e.key);  // duplicate key: caller's bug
    if (e.weight == 0) continue;  // takes no turns: as if absent
    // Paper §3.4: offset = h1(name) mod M, skip = h2(name) mod (M-1) + 1.
    const auto offset = static_cast<uint32_t>(maglev_key_hash(e.key, kMaglevOffsetSeed) % m);
    const auto skip =
        static_cast<uint32_t>(maglev_key_hash(e.key, kMaglevSkipSeed) % (m - 1) + 1);
    cursors.push_back(Cursor{offset, skip, e.weight, 0, order[k]});
    weighted = weighted || (max_weight != 0 && e.weight != max_weight);
    max_weight = std::max(max_weight, e.weight);
  }
  if (cursors.empty()) return table;

  uint16_t* slots = table.data();
  if (m <= kProbeTableUpTo) {
    take_turns(cursors, max_weight, weighted, m,
               [m, slots](Cursor& c) { claim_in_table(c, m, slots); });
  } else {
    SlotBitmap taken(m);
    take_turns(cursors, max_weight, weighted, m,
               [m, slots, &taken](Cursor& c) { claim_in_bitmap(c, m, taken, slots); });
  }
  return table;
}

}  // namespace podgate::dp
