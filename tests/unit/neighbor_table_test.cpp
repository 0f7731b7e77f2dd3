// The next-hop tables (NeighborTable, NeighborTable6: one template,
// BasicNeighborTable<A>, with a slot per family): a forgotten address's
// slot is taken over by another address, and no reader ever sees the old
// address with the new MAC or loses a probe chain through it.  The typed
// tests run against both families, whose slots differ in how they mark
// themselves used and hold an address.
#include "dataplane/neighbor_table.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/crc32c.hpp"

namespace podgate::dp {
namespace {

// The tables' hash (their private hash()), to build addresses that share a
// probe window; the tests check the window really fills at kMaxProbe.
uint32_t bucket(Ip4 ip) { return crc32c_u32(0x5bd1e995, ip.be) & (NeighborTable::kCapacity - 1); }
uint32_t bucket(const Ip6& ip) { return crc_ip6(ip, 0x5bd1e995) & (NeighborTable6::kCapacity - 1); }

// A MAC that names its address (and a generation), so a reader can tell
// whose MAC it got.
MacAddr mac_of(Ip4 ip, uint8_t gen = 1) {
  MacAddr m;
  m.bytes[0] = 0x02;
  m.bytes[1] = gen;
  std::memcpy(m.bytes.data() + 2, &ip.be, 4);
  return m;
}
bool names(const MacAddr& m, Ip4 ip) { return std::memcmp(m.bytes.data() + 2, &ip.be, 4) == 0; }

Ip6 ip6(uint32_t i) {
  Ip6 a;
  a.bytes[0] = 0x20;
  a.bytes[1] = 0x01;
  a.bytes[2] = 0x0d;
  a.bytes[3] = 0xb8;
  std::memcpy(a.bytes.data() + 12, &i, 4);
  a.bytes[8] = static_cast<uint8_t>(i * 37);  // privacy-address-like bits
  return a;
}
MacAddr mac_of6(uint32_t i, uint8_t gen = 1) {
  MacAddr m;
  m.bytes[0] = 0x02;
  m.bytes[1] = gen;
  std::memcpy(m.bytes.data() + 2, &i, 4);
  return m;
}
// The MAC that names an IPv6 address by its last four bytes (so that
// mac_of(ip6(i)) is mac_of6(i)), for the typed tests.
MacAddr mac_of(const Ip6& ip, uint8_t gen = 1) {
  MacAddr m;
  m.bytes[0] = 0x02;
  m.bytes[1] = gen;
  std::memcpy(m.bytes.data() + 2, ip.bytes.data() + 12, 4);
  return m;
}
bool names(const MacAddr& m, const Ip6& ip) { return std::memcmp(m.bytes.data() + 2, ip.bytes.data() + 12, 4) == 0; }

// Numbered test addresses per family; the ranges from kFirst and from
// kElsewhere never meet.
template <typename A>
struct TestAddresses;
template <>
struct TestAddresses<Ip4> {
  static constexpr uint32_t kFirst = 0x0a000001;
  static constexpr uint32_t kElsewhere = 0xc0a80001;
  static Ip4 at(uint32_t n) { return Ip4::from_host(n); }
};
template <>
struct TestAddresses<Ip6> {
  static constexpr uint32_t kFirst = 1;
  static constexpr uint32_t kElsewhere = 0x40000000;
  static Ip6 at(uint32_t n) { return ip6(n); }
};

// `n` distinct addresses from number `first` on whose home slot is `b`.
template <typename A>
std::vector<A> same_bucket(uint32_t b, size_t n, uint32_t first = TestAddresses<A>::kFirst) {
  std::vector<A> out;
  for (uint32_t h = first; out.size() < n; ++h) {
    if (bucket(TestAddresses<A>::at(h)) == b) out.push_back(TestAddresses<A>::at(h));
  }
  return out;
}
std::vector<uint32_t> same_bucket6(uint32_t b, size_t n, uint32_t first = 1) {
  std::vector<uint32_t> out;
  for (uint32_t i = first; out.size() < n; ++i) {
    if (bucket(ip6(i)) == b) out.push_back(i);
  }
  return out;
}

TEST(NeighborTable, ForgottenSlotsAreReusedByNewAddresses) {
  auto t = std::make_unique<NeighborTable>();
  // Pod IP churn: 100,000 next hops, each learnt and then aged out.
  for (uint32_t i = 0; i < 100'000; ++i) {
    const Ip4 ip = Ip4::from_host(0x0a000000 + i);
    ASSERT_TRUE(t->set(ip, mac_of(ip))) << "address #" << i;
    ASSERT_TRUE(t->forget(ip));
  }
  EXPECT_EQ(t->size(), 0u);
  for (uint32_t i = 0; i < 100; ++i) {
    const Ip4 ip = Ip4::from_host(0xac110000 + i);
    ASSERT_TRUE(t->set(ip, mac_of(ip))) << "new address #" << i;
  }
  for (uint32_t i = 0; i < 100; ++i) {
    const Ip4 ip = Ip4::from_host(0xac110000 + i);
    EXPECT_EQ(t->find(ip), mac_of(ip));
  }
  EXPECT_EQ(t->size(), 100u);
  EXPECT_FALSE(t->find(Ip4::from_host(0x0a000000 + 99'999)));
  size_t listed = 0;
  t->for_each([&](Ip4, const MacAddr&) { ++listed; });
  EXPECT_EQ(listed, 100u) << "forgotten addresses are not listed";
}

TEST(NeighborTable6, ForgottenSlotsAreReusedByNewAddresses) {
  auto t = std::make_unique<NeighborTable6>();
  // Clients on a connected /64 rotating privacy addresses.
  for (uint32_t i = 0; i < 100'000; ++i) {
    ASSERT_TRUE(t->set(ip6(i), mac_of6(i))) << "address #" << i;
    ASSERT_TRUE(t->forget(ip6(i)));
  }
  EXPECT_EQ(t->size(), 0u);
  for (uint32_t i = 200'000; i < 200'100; ++i) ASSERT_TRUE(t->set(ip6(i), mac_of6(i))) << "new address " << i;
  for (uint32_t i = 200'000; i < 200'100; ++i) EXPECT_EQ(t->find(ip6(i)), mac_of6(i));
  EXPECT_EQ(t->size(), 100u);
  EXPECT_FALSE(t->find(ip6(99'999)));
}

TEST(NeighborTable, TakenOverSlotAnswersOnlyForItsNewAddressAndKeepsProbeChains) {
  auto t = std::make_unique<NeighborTable>();
  const std::vector<Ip4> a = same_bucket<Ip4>(100, NeighborTable::kMaxProbe + 2);
  // a[0..15] fill the window of slot 100: a[16] has no room.
  for (uint32_t i = 0; i < NeighborTable::kMaxProbe; ++i) ASSERT_TRUE(t->set(a[i], mac_of(a[i])));
  ASSERT_FALSE(t->set(a[16], mac_of(a[16]))) << "the test's addresses share one window";
  // a[0] (slot 100, on every other address's probe chain) is forgotten and
  // its slot goes to a[16].
  ASSERT_TRUE(t->forget(a[0]));
  EXPECT_FALSE(t->forget(a[0])) << "forgotten already";
  const uint32_t v = t->version();
  ASSERT_TRUE(t->set(a[16], mac_of(a[16])));
  EXPECT_NE(t->version(), v) << "workers drop their caches";
  EXPECT_FALSE(t->find(a[0]));
  EXPECT_EQ(t->find(a[16]), mac_of(a[16]));
  for (uint32_t i = 1; i < NeighborTable::kMaxProbe; ++i) EXPECT_EQ(t->find(a[i]), mac_of(a[i])) << i;
  EXPECT_FALSE(t->set(a[17], mac_of(a[17]))) << "only the one forgotten slot was free";
  // A forgotten slot in the middle of a chain: the addresses past it are
  // still found, and the address learnt again takes the first free slot.
  ASSERT_TRUE(t->forget(a[5]));
  for (uint32_t i = 6; i < NeighborTable::kMaxProbe; ++i) EXPECT_EQ(t->find(a[i]), mac_of(a[i])) << i;
  ASSERT_TRUE(t->set(a[0], mac_of(a[0], 2)));
  EXPECT_EQ(t->find(a[0]), mac_of(a[0], 2));
  EXPECT_FALSE(t->find(a[5]));
  EXPECT_EQ(t->size(), NeighborTable::kMaxProbe);
}

TEST(NeighborTable6, TakenOverSlotAnswersOnlyForItsNewAddressAndKeepsProbeChains) {
  auto t = std::make_unique<NeighborTable6>();
  const std::vector<uint32_t> a = same_bucket6(4095, NeighborTable6::kMaxProbe + 1);  // wraps past the end
  for (uint32_t i = 0; i < NeighborTable6::kMaxProbe; ++i) ASSERT_TRUE(t->set(ip6(a[i]), mac_of6(a[i])));
  ASSERT_FALSE(t->set(ip6(a[16]), mac_of6(a[16]))) << "the test's addresses share one window";
  ASSERT_TRUE(t->forget(ip6(a[0])));
  ASSERT_TRUE(t->set(ip6(a[16]), mac_of6(a[16])));
  EXPECT_FALSE(t->find(ip6(a[0])));
  EXPECT_EQ(t->find(ip6(a[16])), mac_of6(a[16]));
  for (uint32_t i = 1; i < NeighborTable6::kMaxProbe; ++i) EXPECT_EQ(t->find(ip6(a[i])), mac_of6(a[i])) << i;
  ASSERT_TRUE(t->forget(ip6(a[3])));
  ASSERT_TRUE(t->set(ip6(a[3]), mac_of6(a[3], 2)));  // back in its own slot, not duplicated
  ASSERT_TRUE(t->forget(ip6(a[3])));
  EXPECT_FALSE(t->find(ip6(a[3])));
  EXPECT_EQ(t->size(), NeighborTable6::kMaxProbe - 1);
}

// The tests below hold for both families.
template <typename A>
class NeighborTables : public testing::Test {};
struct FamilyName {
  template <typename A>
  static std::string GetName(int) {
    return std::is_same_v<A, Ip4> ? "NeighborTable" : "NeighborTable6";
  }
};
using Families = testing::Types<Ip4, Ip6>;
TYPED_TEST_SUITE(NeighborTables, Families, FamilyName);

TYPED_TEST(NeighborTables, AnAddressPastAForgottenSlotIsUpdatedInPlaceNotCopied) {
  using A = TypeParam;
  auto t = std::make_unique<BasicNeighborTable<A>>();
  const std::vector<A> a = same_bucket<A>(7, 2);
  ASSERT_TRUE(t->set(a[0], mac_of(a[0])));
  ASSERT_TRUE(t->set(a[1], mac_of(a[1])));
  ASSERT_TRUE(t->forget(a[0]));
  ASSERT_TRUE(t->set(a[1], mac_of(a[1], 2)));  // must not land in a[0]'s slot
  EXPECT_EQ(t->find(a[1]), mac_of(a[1], 2));
  ASSERT_TRUE(t->forget(a[1]));
  EXPECT_FALSE(t->find(a[1])) << "no second copy of the address";
  EXPECT_EQ(t->size(), 0u);
  // Learnt again after being forgotten: in its own slot, counted again.
  ASSERT_TRUE(t->set(a[1], mac_of(a[1], 3)));
  EXPECT_EQ(t->find(a[1]), mac_of(a[1], 3));
  EXPECT_EQ(t->size(), 1u);
}

// check_neighbors_fit()'s dry run: a copy refuses and accepts exactly what
// the table itself does, forgotten slots included.
TYPED_TEST(NeighborTables, CopyBehavesAsTheOriginal) {
  using A = TypeParam;
  using Table = BasicNeighborTable<A>;
  auto t = std::make_unique<Table>();
  const std::vector<A> a = same_bucket<A>(4090, Table::kMaxProbe + 3);
  for (uint32_t i = 0; i < Table::kMaxProbe; ++i) ASSERT_TRUE(t->set(a[i], mac_of(a[i])));
  ASSERT_TRUE(t->forget(a[2]));
  auto copy = std::make_unique<Table>();
  copy->copy_from(*t);
  EXPECT_EQ(copy->size(), t->size());
  for (uint32_t i = Table::kMaxProbe; i < a.size(); ++i) {
    EXPECT_EQ(copy->set(a[i], mac_of(a[i])), t->set(a[i], mac_of(a[i]))) << i;
  }
  for (const A& ip : a) EXPECT_EQ(copy->find(ip), t->find(ip));
}

// A worker reading while the control thread churns: addresses that stay
// are always found with their MAC, and an address whose slot is taken over
// is answered with its own MAC or none, never another address's.
TYPED_TEST(NeighborTables, ConcurrentReaderNeverSeesAnotherAddressesMac) {
  using A = TypeParam;
  auto t = std::make_unique<BasicNeighborTable<A>>();
  constexpr uint32_t kBuckets = 8;
  std::vector<std::vector<A>> churn(kBuckets);
  std::vector<A> fixed;
  for (uint32_t b = 0; b < kBuckets; ++b) {
    const uint32_t home = 512 * b + 3;
    churn[b] = same_bucket<A>(home, 64);
    // churn[b][0] first, then the fixed address behind it: the fixed
    // address's probe chain runs through the slot being taken over.
    ASSERT_TRUE(t->set(churn[b][0], mac_of(churn[b][0])));
    const A f = same_bucket<A>(home, 1, TestAddresses<A>::kElsewhere)[0];
    ASSERT_TRUE(t->set(f, mac_of(f)));
    fixed.push_back(f);
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> lookups{0};
  std::atomic<uint64_t> wrong{0};
  std::thread reader([&] {
    uint64_t n = 0;
    uint32_t k = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (uint32_t b = 0; b < kBuckets; ++b) {
        const auto f = t->find(fixed[b]);
        if (!f || *f != mac_of(fixed[b])) wrong.fetch_add(1);
        const A c = churn[b][k % churn[b].size()];
        if (const auto m = t->find(c); m && !names(*m, c)) wrong.fetch_add(1);
        ++n;
      }
      ++k;
    }
    lookups.store(n);
  });
  uint8_t gen = 1;
  for (uint32_t round = 0; round < 200'000; ++round) {
    for (uint32_t b = 0; b < kBuckets; ++b) {
      const auto& c = churn[b];
      const A old = c[round % c.size()];
      const A next = c[(round + 1) % c.size()];
      ASSERT_TRUE(t->forget(old));
      ASSERT_TRUE(t->set(next, mac_of(next, gen)));  // takes over old's slot
    }
    gen = static_cast<uint8_t>(gen + 1);
  }
  stop.store(true);
  reader.join();
  EXPECT_EQ(wrong.load(), 0u) << "of " << lookups.load() << " lookups";
  EXPECT_GT(lookups.load(), 0u);
}

}  // namespace
}  // namespace podgate::dp
