// Address types (dataplane/net.hpp): text both ways for either family,
// prefixes, and the IPv6 helpers NDP needs.
#include "dataplane/net.hpp"

#include <gtest/gtest.h>

#include <random>
#include <tuple>
#include <vector>

namespace podgate::dp {
namespace {

TEST(Ip6, ParsesRfc4291TextAndWritesRfc5952Form) {
  const auto ip = parse_ip6("FD00:0010:0096:0000:0000:0000:0000:0020");
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->bytes[0], 0xfd);
  EXPECT_EQ(ip->bytes[15], 0x20);
  EXPECT_EQ(to_string(*ip), "fd00:10:96::20");
  EXPECT_EQ(to_string(*parse_ip6("::ffff:10.0.0.1")), "::ffff:10.0.0.1");
  EXPECT_EQ(to_string(*parse_ip6("2001:db8:0:0:1:0:0:1")), "2001:db8::1:0:0:1");  // RFC 5952 §4.2.3
}

TEST(Ip6, RefusesWhatIsNotAnAddress) {
  for (const char* bad : {"", "fd00::1::2", "fd00:1", "10.0.0.1", "fd00::g", "fd00::1/64", "1:2:3:4:5:6:7:8:9",
                          "fd00::1%eth0"}) {
    EXPECT_FALSE(parse_ip6(bad)) << bad;
  }
}

TEST(Ip6, ClassifiesMulticastAndLinkLocal) {
  EXPECT_TRUE(parse_ip6("ff02::1")->is_multicast());
  EXPECT_FALSE(parse_ip6("fd00::1")->is_multicast());
  EXPECT_TRUE(parse_ip6("fe80::1")->is_link_local());
  EXPECT_TRUE(parse_ip6("febf::1")->is_link_local());
  EXPECT_FALSE(parse_ip6("fec0::1")->is_link_local());
  EXPECT_TRUE(parse_ip6("::")->is_zero());
}

TEST(Ip6, OrdersAsA128BitNumber) {
  EXPECT_LT(*parse_ip6("fd00::1"), *parse_ip6("fd00::2"));
  EXPECT_LT(*parse_ip6("fd00::ff"), *parse_ip6("fd00::1:0"));
  EXPECT_EQ(*parse_ip6("fd00::1"), *parse_ip6("fd00:0::0:1"));
}

TEST(Ip6, SolicitedNodeAddressKeepsTheLast24Bits) {  // RFC 4291 §2.7.1
  EXPECT_EQ(to_string(solicited_node(*parse_ip6("fd00:10:244::1:2345"))), "ff02::1:ff01:2345");
}

TEST(Ip4, WritesDottedQuadsOfEveryWidth) {
  for (const char* text : {"0.0.0.0", "255.255.255.255", "10.96.0.1", "172.17.100.9", "1.22.133.4"}) {
    EXPECT_EQ(to_string(*parse_ip4(text)), text);
  }
  EXPECT_EQ(to_string(Ip4::from_host(0x0a0b0c0d)), "10.11.12.13");
}

TEST(IpAddr, OrdersByFamilyThenBytesLexicographically) {
  // operator<=> compares words; the order must stay the memberwise one
  // (maps keyed by addresses, sorted lists in replies).
  std::mt19937 rng(11);
  std::vector<IpAddr> all;
  for (int i = 0; i < 400; ++i) {
    IpAddr a;
    a.family = rng() % 2 ? Family::kIpv4 : Family::kIpv6;
    // Few distinct byte values, so that equal prefixes of every length occur.
    for (uint8_t& b : a.bytes) b = static_cast<uint8_t>(rng() % 3 == 0 ? rng() : rng() % 2);
    all.push_back(a);
  }
  for (const IpAddr& a : all) {
    for (const IpAddr& b : all) {
      const auto memberwise = std::tie(a.family, a.bytes) <=> std::tie(b.family, b.bytes);
      ASSERT_EQ(a <=> b, memberwise);
    }
  }
}

TEST(IpAddr, ParsesEitherFamily) {
  const auto v4 = parse_ip("10.96.0.20");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->as_v4(), *parse_ip4("10.96.0.20"));
  const auto v6 = parse_ip("fd00:10:96::20");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->is_v6());
  EXPECT_EQ(to_string(*v6), "fd00:10:96::20");
  EXPECT_EQ(to_string(*v4), "10.96.0.20");
  EXPECT_FALSE(parse_ip("10.96.0"));
  EXPECT_FALSE(parse_ip("fd00:::1"));
  EXPECT_NE(IpAddr::v4(*parse_ip4("0.0.0.0")), IpAddr::v6(*parse_ip6("::")));
}

TEST(Prefix6, ContainsAndNetwork) {
  const auto p = parse_prefix6("fd00:10:244::1/64");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->length, 64);
  EXPECT_TRUE(p->contains(*parse_ip6("fd00:10:244::ffff")));
  EXPECT_FALSE(p->contains(*parse_ip6("fd00:10:245::1")));
  EXPECT_EQ(to_string(p->network()), "fd00:10:244::");
  EXPECT_EQ(to_string(*p), "fd00:10:244::1/64");
  const auto odd = parse_prefix6("fd00:10:244:80::/57");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(*parse_ip6("fd00:10:244:ff::1")));
  EXPECT_FALSE(odd->contains(*parse_ip6("fd00:10:244:7f::1")));
  EXPECT_TRUE(parse_prefix6("::/0")->contains(*parse_ip6("2001:db8::1")));
  EXPECT_FALSE(parse_prefix6("fd00::/129"));
  EXPECT_FALSE(parse_prefix6("fd00::"));
  EXPECT_FALSE(parse_prefix6("10.0.0.0/8"));
}

}  // namespace
}  // namespace podgate::dp
