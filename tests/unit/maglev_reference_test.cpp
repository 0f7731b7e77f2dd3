// The C++ Maglev builder against an independent reference implementation
// (tests/maglev_reference/maglev_ref.py, written from NSDI'16 §3.4 and the
// contract in dataplane/maglev.hpp), at realistic sizes: M = 65537 with a
// few endpoint sets and weights.  The reference's output is committed as
// tests/fixtures/maglev/vectors.txt (meson test `maglev_reference_vectors`
// checks that the file is what the script computes); every slot of every
// table is compared: in full for small M, through per-block digests of 1024
// slots for large M, so a difference is located to its block.
#include "dataplane/maglev.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace podgate::dp {
namespace {

constexpr uint32_t kBlock = 1024;  // slots per block digest, as maglev_ref.py writes them

struct Case {
  std::string name;
  uint32_t m = 0;
  std::vector<std::string> keys;
  std::vector<uint32_t> weights;
  std::vector<size_t> counts;
  uint64_t digest = 0;
  std::vector<uint64_t> blocks;
  std::vector<uint16_t> slots;  // only for small M
};

// FNV-1a-64 over the owners as little-endian uint16 (maglev_ref.table_digest).
uint64_t digest_of(const uint16_t* slots, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) {
    for (uint8_t byte : {static_cast<uint8_t>(slots[i] & 0xff), static_cast<uint8_t>(slots[i] >> 8)}) {
      h ^= byte;
      h *= 0x100000001b3ULL;
    }
  }
  return h;
}

std::vector<Case> load_cases() {
  std::ifstream in(PODGATE_SOURCE_DIR "/tests/fixtures/maglev/vectors.txt");
  std::vector<Case> cases;
  std::string line;
  Case c;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string tag;
    words >> tag;
    if (tag == "case") {
      c = Case{};
      words >> c.name;
    } else if (tag == "m") {
      words >> c.m;
    } else if (tag == "endpoint") {
      std::string key;
      uint32_t weight = 0;
      words >> key >> weight;
      c.keys.push_back(key);
      c.weights.push_back(weight);
    } else if (tag == "counts") {
      for (size_t n; words >> n;) c.counts.push_back(n);
    } else if (tag == "digest") {
      words >> std::hex >> c.digest;
    } else if (tag == "blocks") {
      words >> std::hex;
      for (uint64_t d; words >> d;) c.blocks.push_back(d);
    } else if (tag == "slots") {
      for (uint32_t s; words >> s;) c.slots.push_back(static_cast<uint16_t>(s));
    } else if (tag == "end") {
      cases.push_back(c);
    }
  }
  return cases;
}

TEST(MaglevReference, VectorFileHasTheRealisticCases) {
  std::vector<Case> cases = load_cases();
  ASSERT_GE(cases.size(), 5u) << "tests/fixtures/maglev/vectors.txt missing or unreadable";
  size_t big = 0;
  for (const Case& c : cases) {
    big += c.m == kMaglevDefaultTableSize;
    EXPECT_EQ(c.counts.size(), c.keys.size()) << c.name;
    EXPECT_EQ(c.blocks.size(), (c.m + kBlock - 1) / kBlock) << c.name;
  }
  EXPECT_GE(big, 4u) << "cases at M = 65537";
}

TEST(MaglevReference, EverySlotMatchesTheIndependentReference) {
  for (const Case& c : load_cases()) {
    SCOPED_TRACE(c.name);
    std::vector<MaglevEntry> entries;
    for (size_t i = 0; i < c.keys.size(); ++i) entries.push_back({c.keys[i], c.weights[i]});
    DpVector<uint16_t> table = build_maglev_table(entries, c.m);
    ASSERT_EQ(table.size(), c.m);
    std::vector<size_t> counts(c.keys.size(), 0);
    for (uint16_t owner : table) {
      ASSERT_LT(owner, c.keys.size());
      ++counts[owner];
    }
    EXPECT_EQ(counts, c.counts) << "slots per endpoint";
    for (size_t b = 0; b < c.blocks.size(); ++b) {
      const size_t first = b * kBlock;
      const size_t n = std::min<size_t>(kBlock, c.m - first);
      EXPECT_EQ(digest_of(table.data() + first, n), c.blocks[b])
          << "slots " << first << ".." << first + n - 1 << " differ from the reference";
    }
    EXPECT_EQ(digest_of(table.data(), table.size()), c.digest) << "whole-table digest";
    if (!c.slots.empty()) {
      EXPECT_EQ(std::vector<uint16_t>(table.begin(), table.end()), c.slots);
    }
  }
}

}  // namespace
}  // namespace podgate::dp
