// The fragment table's bookkeeping (dataplane/fragment_table.hpp), on a
// clock the test drives.  Without EAL: only contexts that hold no mbuf
// (the held ones are tested in the dataplane tests, which have a pool).
#include "dataplane/fragment_table.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace podgate::dp {
namespace {

using Table = FragmentTable;

FragmentKey datagram(uint16_t id) { return FragmentKey{0x0200000a, 0x1e00600a, id, 17, 0}; }

TEST(FragmentTable, AContextLeftForHalfTheClocksRangeDoesNotComeBackToLife) {
  // The clock is 32-bit milliseconds compared by serial arithmetic: a
  // context nobody touched for 2^31 ms (24.8 days) would read as live
  // again, and give an old datagram's ports to a new one with the same
  // identity (source, destination, protocol, 16-bit ID).  The worker's
  // sweep passes over the whole table far more often than that and
  // forgets what expired.
  Table table;
  uint32_t dropped = 0;
  const uint32_t t0 = 1000;
  Table::Context& c = table.find_or_make(datagram(7), t0, dropped);
  c.ports_known = true;
  c.sport = 0x3930;
  c.dport = 0x5000;
  table.sweep(t0 + Table::kLifetimeMs, Table::kSlots);
  const Table::Context& later = table.find_or_make(datagram(7), t0 + (1u << 31) + 5000, dropped);
  EXPECT_FALSE(later.ports_known) << "a new datagram's context";
  EXPECT_EQ(dropped, 0u);
}

// With several workers each datagram's fragments meet at one of them
// (fragment_owner()), and the keys a worker gets must still spread over
// all of its table's sets: were the set chosen by the bits that chose the
// worker, 4 workers would each use a quarter of their contexts.
TEST(FragmentTable, AWorkersShareOfDatagramsSpreadsOverItsWholeTable) {
  constexpr uint32_t kWorkers = 4;
  constexpr uint32_t kDatagrams = 400;  // a worker's, in flight at once
  std::vector<FragmentKey> mine;
  for (uint32_t i = 0; mine.size() < kDatagrams; ++i) {
    const FragmentKey key{0x0200000a + (i << 8), 0x1e00600a, static_cast<uint16_t>(i), 17, 0};
    if (fragment_owner(key.hash(), kWorkers) == 1) mine.push_back(key);
  }
  Table table;
  uint32_t dropped = 0;
  for (const FragmentKey& key : mine) table.find_or_make(key, 1000, dropped).ports_known = true;
  uint32_t kept = 0;
  for (const FragmentKey& key : mine) kept += table.find_or_make(key, 1001, dropped).ports_known ? 1 : 0;
  // 400 keys in 256 sets of 4: a handful land in a set already full.
  EXPECT_GE(kept, kDatagrams - 20) << "of " << Table::kSlots << " contexts";
}

}  // namespace
}  // namespace podgate::dp
