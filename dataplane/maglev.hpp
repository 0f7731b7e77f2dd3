// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI'16, §3.4, Pseudocode 1).
//
// The builder is pure and deterministic (style.md habit 9): the same set of
// endpoint keys and weights gives the same slot -> key mapping on every
// appliance, whatever order the set is given in (architecture decision 2), so
// several appliances behind ECMP pick the same Pod for the same flow.  It runs
// on the control thread; workers only call maglev_lookup().
//
// The contract that every appliance must share, spelled out so that another
// implementation (a tool, a test in another language) can reproduce a table:
//
//   * h(key, seed) = fmix64(FNV-1a-64(key bytes) started from the offset basis
//     0xcbf29ce484222325 XOR seed), where fmix64 is MurmurHash3's 64-bit
//     finaliser.  Seeds: kMaglevOffsetSeed for h1, kMaglevSkipSeed for h2.
//   * offset = h1(key) mod M, skip = h2(key) mod (M - 1) + 1 (paper §3.4).
//     M is prime, so every skip in 1..M-1 makes each endpoint's preference
//     list a permutation of all M slots.
//   * Endpoints take turns in ascending byte order of their keys (unsigned
//     lexicographic, std::string_view's order), not in input order.
//   * Weights by turn frequency (the paper names the idea, not a scheme),
//     with fractional credit as in Katran's MaglevHashV2: in
//     every round each endpoint adds its weight to a credit and takes one turn
//     when the credit reaches the largest weight W, which it then pays.  An
//     endpoint of weight w thus takes w/W turns per round and, since each turn
//     fills exactly one slot, owns ~M*w/sum(w) slots.  Equal weights (of any
//     value) reduce to the paper's unweighted Pseudocode 1 exactly, and only
//     the ratios of weights matter ({1,2} and {2,4} give the same table).
//     Weight 0 takes no turns: the table is the one built without it.
//   * Lookup: slot = (flow_hash * M) >> 32 (see maglev_lookup()).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/dp_memory.hpp"
#include "dataplane/snapshot.hpp"

namespace podgate::dp {

inline constexpr uint32_t kMaglevDefaultTableSize = 65537;  // prime; the paper evaluates 65537
inline constexpr uint32_t kMaglevMaxWeight = 256;
inline constexpr uint64_t kMaglevOffsetSeed = 0x6d61676c65763031;  // "maglev01"
inline constexpr uint64_t kMaglevSkipSeed = 0x6d61676c65763032;    // "maglev02"

struct MaglevEntry {
  std::string_view key;  // stable endpoint key, e.g. "172.17.0.10:8080"
  uint32_t weight = 1;   // 0..kMaglevMaxWeight; 0 = takes no slots
};

// The seeded 64-bit hash of the contract above (exposed for tests and tools).
uint64_t maglev_key_hash(std::string_view key, uint64_t seed) noexcept;

// Builds the lookup table of `table_size` slots; slot -> index into `entries`
// of its owner, or kNoBackend in every slot when `entries` is empty or every
// weight is 0.  Preconditions (the caller validates; asserted here):
// table_size is prime, entries.size() < kNoBackend, weights <= kMaglevMaxWeight
// and keys are distinct (duplicate keys would make the owner of their slots
// depend on input order).  Control thread only: allocates.
DpVector<uint16_t> build_maglev_table(std::span<const MaglevEntry> entries,
                                      uint32_t table_size);

// Trial division by 6k±1; at most ~22k divisions for a 32-bit n.  For config
// validation of maglev_table_size.
bool is_prime(uint32_t n) noexcept;

// The endpoint index for a flow.  Reduces the 32-bit flow hash to a slot with
// Lemire's multiply-shift ((h * M) >> 32) instead of h % M: one multiply
// instead of a 64-bit division (~25-40 cycles), and as uniform for a
// well-mixed hash (slot preimage counts differ by at most one out of ~2^32/M).
// It uses the hash's high bits, so the flow hash must mix into them (CRC32,
// Toeplitz do).  An empty table (a ServiceData never given one) maps to
// kNoBackend rather than reading out of bounds.
inline uint16_t maglev_lookup(const DpVector<uint16_t>& table, uint32_t flow_hash) noexcept {
  if (table.empty()) return kNoBackend;
  return table[static_cast<size_t>((uint64_t{flow_hash} * table.size()) >> 32)];
}

}  // namespace podgate::dp
