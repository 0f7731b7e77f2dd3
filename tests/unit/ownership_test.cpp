// Ownership (dataplane/ownership.hpp): the worker that owns a connection is
// what a NIC with RSS on the client's fields would pick, so the table-driven
// Toeplitz hash must equal DPDK's own software RSS (rte_softrss) bit for bit,
// and the redirection table must spread connections evenly and repeat
// cleanly into any larger NIC table.
#include "dataplane/ownership.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include <rte_thash.h>

namespace podgate::dp {
namespace {

// rte_softrss over the six bytes a client-fields-only NIC hashes: the
// address, then the port, in network order (as 32-bit host-order words;
// the 16 trailing zero bits contribute nothing).
uint32_t softrss(Ip4 ip, rte_be16_t port) {
  uint32_t tuple[2] = {rte_be_to_cpu_32(ip.be), uint32_t{rte_be_to_cpu_16(port)} << 16};
  return rte_softrss(tuple, 2, Ownership::kKey.data());
}

TEST(Ownership, HashEqualsDpdkSoftwareRss) {
  const Ownership owners(4, 128);
  std::mt19937 rng(9);
  for (int i = 0; i < 100000; ++i) {
    const Ip4 ip{static_cast<uint32_t>(rng())};
    const auto port = static_cast<rte_be16_t>(rng());
    ASSERT_EQ(owners.hash(ip, port), softrss(ip, port)) << to_string(ip) << " port " << port;
  }
}

// The same over the 18 bytes such a NIC hashes of an IPv6 TCP/UDP packet
// (L3_SRC_ONLY|L4_SRC_ONLY, or DST_ONLY): the address's four words, then
// the port.
uint32_t softrss(const Ip6& ip, rte_be16_t port) {
  uint32_t tuple[5];
  for (int i = 0; i < 4; ++i) {
    uint32_t w;
    std::memcpy(&w, ip.bytes.data() + 4 * i, 4);
    tuple[i] = rte_be_to_cpu_32(w);
  }
  tuple[4] = uint32_t{rte_be_to_cpu_16(port)} << 16;
  return rte_softrss(tuple, 5, Ownership::kKey.data());
}

TEST(Ownership, Ipv6HashEqualsDpdkSoftwareRss) {
  const Ownership owners(4, 128);
  std::mt19937 rng(11);
  for (int i = 0; i < 100000; ++i) {
    Ip6 ip;
    for (uint8_t& b : ip.bytes) b = static_cast<uint8_t>(rng());
    const auto port = static_cast<rte_be16_t>(rng());
    ASSERT_EQ(owners.hash(ip, port), softrss(ip, port)) << to_string(ip) << " port " << port;
  }
}

TEST(Ownership, HashFollowsTheToeplitzDefinition) {
  // The RSS specification's definition, bit by bit: for every set input
  // bit, XOR in the 32 key bits that start at that bit.
  const Ownership owners;
  const Ip4 ip = Ip4::from_host(0x420995bb);  // 66.9.149.187
  const rte_be16_t port = rte_cpu_to_be_16(2794);
  uint32_t expect = 0;
  const uint8_t input[6] = {66, 9, 149, 187, 2794 >> 8, 2794 & 0xff};
  for (int bit = 0; bit < 48; ++bit) {
    if ((input[bit / 8] >> (7 - bit % 8)) & 1) {
      uint64_t window = 0;
      for (int k = 0; k < 32; ++k) {
        const int b = bit + k;
        window = window << 1 | ((Ownership::kKey[b / 8] >> (7 - b % 8)) & 1);
      }
      expect ^= static_cast<uint32_t>(window);
    }
  }
  EXPECT_EQ(owners.hash(ip, port), expect);
}

TEST(Ownership, OneWorkerOwnsEverything) {
  const Ownership owners(1);
  EXPECT_EQ(owners.owner(Ip4::from_host(0x0a000001), rte_cpu_to_be_16(1234)), 0u);
}

TEST(Ownership, ConnectionsSpreadEvenlyOverWorkers) {
  for (uint32_t workers : {2u, 3u, 4u, 6u, 8u}) {
    const Ownership owners(workers, 512);
    std::vector<uint32_t> count(workers);
    // Clients as a load test sends them: consecutive addresses and ports.
    for (uint32_t a = 0; a < 100; ++a) {
      for (uint32_t p = 0; p < 1000; ++p) {
        ++count.at(owners.owner(Ip4::from_host(0x0a000000 + a), rte_cpu_to_be_16(static_cast<uint16_t>(1024 + p))));
      }
    }
    for (uint32_t w = 0; w < workers; ++w) {
      const double share = count[w] / 100000.0;
      EXPECT_NEAR(share, 1.0 / workers, 0.2 / workers) << workers << " workers, worker " << w;
    }
  }
}

TEST(Ownership, RedirectionTableRepeatsIntoALargerNicTable) {
  // A NIC with a 512-entry RETA programmed from a 128-entry table selects,
  // for every hash, the worker the 128-entry table selects.
  const Ownership owners(3, 128);
  for (uint32_t i = 0; i < 512; ++i) EXPECT_EQ(owners.reta_entry(i), owners.reta_entry(i % 128)) << i;
  std::mt19937 rng(4);
  for (int i = 0; i < 10000; ++i) {
    const Ip4 ip{static_cast<uint32_t>(rng())};
    const auto port = static_cast<rte_be16_t>(rng());
    EXPECT_EQ(owners.owner(ip, port), owners.reta_entry(owners.hash(ip, port) & 511));
  }
}

}  // namespace
}  // namespace podgate::dp
