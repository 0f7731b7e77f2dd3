// The fragment table's bookkeeping (dataplane/fragment_table.hpp), on a
// clock the test drives.  Without EAL: only contexts that hold no mbuf
// (the held ones are tested in the dataplane tests, which have a pool).
#include "dataplane/fragment_table.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace podgate::dp
