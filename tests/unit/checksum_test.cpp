// Incremental checksums (RFC 1624) and the in-place rewrites built on them
// must give exactly the bytes a full recomputation gives.  The reference is
// DPDK's own rte_ipv4_cksum / rte_ipv4_udptcp_cksum (inline, no EAL needed).
#include "dataplane/checksum.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "dataplane/flow_packet.hpp"
#include "dataplane/nat.hpp"
#include "dataplane/packet.hpp"

namespace podgate::dp {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr size_t kIp = 14;
constexpr size_t kL4 = 34;
constexpr size_t kSrcIp = kIp + 12, kDstIp = kIp + 16, kTtl = kIp + 8;
constexpr size_t kSport = kL4, kDport = kL4 + 2;
constexpr uint8_t kTcp = 6, kUdp = 17;
constexpr int kRandomPackets = 12'000;  // per protocol

rte_ipv4_hdr* ip_of(Bytes& f) { return reinterpret_cast<rte_ipv4_hdr*>(f.data() + kIp); }
size_t l4_checksum_offset(const Bytes& f) { return kL4 + (f[kIp + 9] == kTcp ? 16 : 6); }

rte_be16_t load16(const Bytes& f, size_t off) {
  rte_be16_t v;
  std::memcpy(&v, &f[off], 2);
  return v;
}
void store16(Bytes& f, size_t off, rte_be16_t v) { std::memcpy(&f[off], &v, 2); }
void store32(Bytes& f, size_t off, rte_be32_t v) { std::memcpy(&f[off], &v, 4); }
rte_be32_t load32(const Bytes& f, size_t off) {
  rte_be32_t v;
  std::memcpy(&v, &f[off], 4);
  return v;
}

// Recomputes both checksums from scratch, as a NAT without incremental
// updates would.  A UDP datagram sent without a checksum keeps none.
void recompute_checksums(Bytes& f) {
  rte_ipv4_hdr* ip = ip_of(f);
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  const size_t off = l4_checksum_offset(f);
  if (ip->next_proto_id == kUdp && load16(f, off) == 0) return;
  store16(f, off, 0);
  // rte_ipv4_udptcp_cksum applies RFC 768's zero -> all-ones rule for UDP.
  store16(f, off, rte_ipv4_udptcp_cksum(ip, f.data() + kL4));
}

// A random, valid TCP or UDP frame: random addresses, ports, TTL (2..255),
// IP id, TOS, DF, TCP options (0..3 words) and payload (0..100 bytes, odd
// lengths included); one UDP datagram in eight carries no checksum.
Bytes random_packet(std::mt19937& rng, uint8_t proto) {
  const size_t l4_header = proto == kTcp ? 20 + 4 * (rng() % 4) : 8;
  const size_t l4_len = l4_header + rng() % 101;
  Bytes f(kL4 + l4_len);
  for (auto& b : f) b = static_cast<uint8_t>(rng());
  store16(f, 12, to_be16(RTE_ETHER_TYPE_IPV4));
  rte_ipv4_hdr* ip = ip_of(f);
  ip->version_ihl = 0x45;
  ip->total_length = to_be16(static_cast<uint16_t>(20 + l4_len));
  ip->fragment_offset = rng() % 2 ? to_be16(RTE_IPV4_HDR_DF_FLAG) : 0;
  ip->time_to_live = static_cast<uint8_t>(2 + rng() % 254);
  ip->next_proto_id = proto;
  if (proto == kTcp) {
    f[kL4 + 12] = static_cast<uint8_t>((l4_header / 4) << 4);
  } else {
    store16(f, kL4 + 4, to_be16(static_cast<uint16_t>(l4_len)));
  }
  store16(f, l4_checksum_offset(f), proto == kUdp && rng() % 8 == 0 ? 0 : 1);
  recompute_checksums(f);
  return f;
}

ParsedPacket parse_or_die(Bytes& f) {
  ParsedPacket p;
  DropReason drop{};
  const bool ok = parse_packet(f.data(), static_cast<uint32_t>(f.size()), false, p, drop);
  EXPECT_TRUE(ok) << drop_reason_name(drop);
  return p;
}

// ---- checksum.hpp on its own ----------------------------------------------

TEST(InternetChecksum, MatchesRfc1071NumericalExample) {
  // RFC 1071 §3: these bytes sum to 0xddf2 (so the checksum is 0x220d).
  const uint8_t bytes[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(csum_fold(ones_sum(bytes)), 0xddf2);
  EXPECT_EQ(internet_checksum(bytes), to_be16(0x220d));
}

TEST(InternetChecksum, OddLengthPadsTheLastByteWithZero) {
  const uint8_t odd[] = {0x12, 0x34, 0x56};
  const uint8_t padded[] = {0x12, 0x34, 0x56, 0x00};
  EXPECT_EQ(internet_checksum(odd), internet_checksum(padded));
  EXPECT_EQ(internet_checksum(odd), static_cast<rte_be16_t>(~rte_raw_cksum(odd, 3)));
}

TEST(InternetChecksum, AgreesWithDpdkOnRandomIpv4Headers) {
  std::mt19937 rng(1071);
  for (int i = 0; i < 10'000; ++i) {
    Bytes h(20);
    for (auto& b : h) b = static_cast<uint8_t>(rng());
    h[0] = 0x45;
    h[10] = h[11] = 0;
    const rte_be16_t ours = internet_checksum(h);
    ASSERT_EQ(ours, rte_ipv4_cksum(reinterpret_cast<const rte_ipv4_hdr*>(h.data())));
    store16(h, 10, ours);
    ASSERT_TRUE(internet_checksum_ok(h));
  }
}

TEST(IncrementalChecksum, Rfc1624Eqn3GivesThePositiveZeroOfAFullRecomputation) {
  // RFC 1624 §4: other octets sum to 0xCD7A, m 0x5555 -> m' 0x3285.
  // HC = 0xDD2F; recomputing gives 0x0000, where eqn. 2 would give 0xFFFF.
  EXPECT_EQ(csum_update16(to_be16(0xdd2f), to_be16(0x5555), to_be16(0x3285)),
            to_be16(0x0000));
}

TEST(IncrementalChecksum, WordUpdatesEqualFullRecomputation) {
  std::mt19937 rng(1624);
  for (int i = 0; i < 10'000; ++i) {
    Bytes buf(2 + 2 * (1 + rng() % 30));  // checksum word first, then data
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    auto data = std::span<uint8_t>(buf).subspan(2);
    store16(buf, 0, internet_checksum(data));
    const rte_be16_t check = load16(buf, 0);

    const size_t words = data.size() / 2;
    const size_t at16 = 2 + 2 * (rng() % words);
    const rte_be16_t old16 = load16(buf, at16), new16 = static_cast<rte_be16_t>(rng());
    store16(buf, at16, new16);
    ASSERT_EQ(csum_update16(check, old16, new16), internet_checksum(data));

    if (words < 2) continue;
    const size_t at32 = 2 + 2 * (rng() % (words - 1));  // any 16-bit alignment
    rte_be32_t old32, new32 = static_cast<rte_be32_t>(rng());
    std::memcpy(&old32, &buf[at32], 4);
    const rte_be16_t before = internet_checksum(data);
    store32(buf, at32, new32);
    ASSERT_EQ(csum_update32(before, old32, new32), internet_checksum(data));
  }
}

// ---- NAT rewrites against full recomputation -------------------------------

class RewriteMatchesRecomputation : public testing::TestWithParam<uint8_t> {};

// The one NAT rewrite (nat_and_decrement_ttl, and nat_with_address_term
// with a flow's kept term) against a full recomputation, both directions,
// on random packets: TTL 2..255, any addresses, ports and payloads, UDP with
// and without a checksum.
template <NatSide kSide>
void check_fast_path_rewrite(uint8_t proto, uint32_t seed) {
  std::mt19937 rng(seed);
  for (int i = 0; i < kRandomPackets; ++i) {
    const Bytes original = random_packet(rng, proto);
    const Ip4 to{static_cast<rte_be32_t>(rng())};
    const auto port = static_cast<rte_be16_t>(rng());

    Bytes actual = original;
    nat_and_decrement_ttl<kSide>(ip_of(actual), &actual[kL4], proto == kTcp ? Proto::kTcp : Proto::kUdp,
                                 to, port);
    // The result is a valid packet the next hop will parse.
    ParsedPacket again = parse_or_die(actual);
    EXPECT_EQ(kSide == NatSide::kDestination ? again.dst() : again.src(), to);

    Bytes expected = original;
    store32(expected, kSide == NatSide::kDestination ? kDstIp : kSrcIp, to.be);
    store16(expected, kSide == NatSide::kDestination ? kDport : kSport, port);
    --expected[kTtl];
    recompute_checksums(expected);
    ASSERT_EQ(actual, expected) << "packet " << i;

    // A pinned flow's packet: the term its record keeps (Flow::csum_addr,
    // the client's VIP -> Pod), as is for the client's packet, complemented
    // for the Pod's reply.
    Bytes kept = original;
    const rte_be32_t replaced = load32(original, kSide == NatSide::kDestination ? kDstIp : kSrcIp);
    const uint16_t term = kSide == NatSide::kDestination ? csum_term32(replaced, to.be)
                                                         : csum_term32(to.be, replaced);
    nat_with_address_term<kSide>(ip_of(kept), &kept[kL4], proto == kTcp ? Proto::kTcp : Proto::kUdp, to, port,
                                 kSide == NatSide::kDestination ? term : static_cast<uint16_t>(~term));
    ASSERT_EQ(kept, expected) << "packet " << i << ", kept term";
  }
}

TEST_P(RewriteMatchesRecomputation, DnatWithTtl) {
  check_fast_path_rewrite<NatSide::kDestination>(GetParam(), GetParam() * 32452843u);
}

TEST_P(RewriteMatchesRecomputation, ReverseNatWithTtl) {
  check_fast_path_rewrite<NatSide::kSource>(GetParam(), GetParam() * 49979687u);
}

INSTANTIATE_TEST_SUITE_P(TcpAndUdp, RewriteMatchesRecomputation, testing::Values(kTcp, kUdp),
                         [](const testing::TestParamInfo<uint8_t>& info) {
                           return info.param == kTcp ? "Tcp" : "Udp";
                         });

// ---- UDP's special checksum values (RFC 768) -------------------------------

Bytes udp_frame(Ip4 src, Ip4 dst, uint16_t sport, uint16_t dport, size_t payload) {
  Bytes f(kL4 + 8 + payload, 0);
  store16(f, 12, to_be16(RTE_ETHER_TYPE_IPV4));
  rte_ipv4_hdr* ip = ip_of(f);
  ip->version_ihl = 0x45;
  ip->total_length = to_be16(static_cast<uint16_t>(28 + payload));
  ip->time_to_live = 64;
  ip->next_proto_id = kUdp;
  ip->src_addr = src.be;
  ip->dst_addr = dst.be;
  store16(f, kSport, to_be16(sport));
  store16(f, kDport, to_be16(dport));
  store16(f, kL4 + 4, to_be16(static_cast<uint16_t>(8 + payload)));
  for (size_t i = 0; i < payload; ++i) f[kL4 + 8 + i] = static_cast<uint8_t>(0xa0 + i);
  return f;
}

// Folded one's complement sum of the UDP pseudo-header and datagram
// (checksum field included), host order.
uint16_t udp_sum(const Bytes& f) {
  const uint16_t udp_len = static_cast<uint16_t>(f.size() - kL4);
  const uint8_t pseudo_tail[] = {0, kUdp, static_cast<uint8_t>(udp_len >> 8),
                                 static_cast<uint8_t>(udp_len)};
  uint32_t sum = ones_sum(std::span<const uint8_t>(f).subspan(kSrcIp, 8));
  sum = ones_sum(pseudo_tail, sum);
  return csum_fold(ones_sum(std::span<const uint8_t>(f).subspan(kL4), sum));
}

// Sets the first payload word so that the datagram, with its checksum field
// zero, sums to 0xffff: its computed checksum is then zero.
void force_computed_checksum_zero(Bytes& f) {
  store16(f, kL4 + 6, 0);
  store16(f, kL4 + 8, 0);
  const uint16_t word = static_cast<uint16_t>(0xffff - udp_sum(f));
  f[kL4 + 8] = static_cast<uint8_t>(word >> 8);
  f[kL4 + 9] = static_cast<uint8_t>(word);
  ASSERT_EQ(udp_sum(f), 0xffff);
}

const Ip4 kClient = *parse_ip4("10.0.0.2");
const Ip4 kVip = *parse_ip4("10.96.0.10");
const Ip4 kPod = *parse_ip4("10.244.1.7");

TEST(UdpChecksum, AbsentChecksumStaysAbsentAfterNat) {
  Bytes f = udp_frame(kClient, kVip, 40000, 53, 10);
  recompute_checksums(f);
  ASSERT_EQ(load16(f, kL4 + 6), 0);
  nat_and_decrement_ttl<NatSide::kDestination>(ip_of(f), &f[kL4], Proto::kUdp, kPod, to_be16(5353));
  EXPECT_EQ(load16(f, kL4 + 6), 0);
  nat_and_decrement_ttl<NatSide::kSource>(ip_of(f), &f[kL4], Proto::kUdp, kVip, to_be16(53));
  EXPECT_EQ(load16(f, kL4 + 6), 0);
}

TEST(UdpChecksum, UpdateThatComputesToZeroIsSentAsAllOnes) {
  // After DNAT the datagram's computed checksum is zero.
  Bytes after = udp_frame(kClient, kPod, 40000, 5353, 10);
  force_computed_checksum_zero(after);

  Bytes before = after;
  store32(before, kDstIp, kVip.be);
  store16(before, kDport, to_be16(53));
  store16(before, kL4 + 6, 1);
  recompute_checksums(before);
  const rte_be16_t old_sum = load16(before, kL4 + 6);
  // The arithmetic alone yields zero here; only RFC 768's rule makes it 0xffff.
  ASSERT_EQ(csum_update32_16(old_sum, kVip.be, kPod.be, to_be16(53), to_be16(5353)), 0);

  nat_and_decrement_ttl<NatSide::kDestination>(ip_of(before), &before[kL4], Proto::kUdp, kPod,
                                               to_be16(5353));
  EXPECT_EQ(load16(before, kL4 + 6), 0xffff);
  // ...which is what a full recomputation transmits.
  store16(after, kL4 + 6, 1);
  --after[kTtl];
  recompute_checksums(after);
  EXPECT_EQ(before, after);
}

TEST(UdpChecksum, AllOnesChecksumIsUpdatedLikeAnyOther) {
  // Before DNAT the computed checksum is zero, so it is sent as 0xffff.
  Bytes f = udp_frame(kClient, kVip, 40000, 53, 10);
  force_computed_checksum_zero(f);
  store16(f, kL4 + 6, 1);
  recompute_checksums(f);
  ASSERT_EQ(load16(f, kL4 + 6), 0xffff);

  Bytes expected = f;
  nat_and_decrement_ttl<NatSide::kDestination>(ip_of(f), &f[kL4], Proto::kUdp, kPod, to_be16(5353));
  --expected[kTtl];
  store32(expected, kDstIp, kPod.be);
  store16(expected, kDport, to_be16(5353));
  recompute_checksums(expected);
  EXPECT_EQ(f, expected);
}

// ---- TTL -------------------------------------------------------------------

TEST(Ttl, OneAndZeroDoNotAllowForwarding) {
  for (uint8_t ttl : {uint8_t{0}, uint8_t{1}}) {
    Bytes f = udp_frame(kClient, kVip, 40000, 53, 4);
    f[kTtl] = ttl;
    EXPECT_FALSE(ttl_allows_forwarding(ip_of(f))) << "ttl " << int{ttl};
  }
  Bytes f = udp_frame(kClient, kVip, 40000, 53, 4);
  f[kTtl] = 2;
  EXPECT_TRUE(ttl_allows_forwarding(ip_of(f)));
}

TEST(Ttl, TwoBecomesOne) {
  Bytes f = udp_frame(kClient, kVip, 40000, 53, 4);
  f[kTtl] = 2;
  recompute_checksums(f);
  // NAT to the same address and port: only the TTL changes.
  nat_and_decrement_ttl<NatSide::kDestination>(ip_of(f), &f[kL4], Proto::kUdp, kVip, to_be16(53));
  EXPECT_EQ(f[kTtl], 1);
  EXPECT_EQ(ip_of(f)->hdr_checksum, [&] {
    Bytes g = f;
    recompute_checksums(g);
    return ip_of(g)->hdr_checksum;
  }());
}

// ---- Replies podgate builds in place ----------------------------------------

// Bytes computed independently (Python struct + RFC 1071): a ping from
// 10.0.0.2 to 10.96.0.10 (TTL 63, id 0x1234, seq 1, data "podgate!") in a
// frame padded to 60 bytes, and the reply podgate must make of it (before the
// caller swaps the MACs).
const Bytes kEchoRequest = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x3f, 0x01,
    0x0b, 0x28, 0x0a, 0x00, 0x00, 0x02, 0x0a, 0x60, 0x00, 0x0a, 0x08, 0x00,
    0x4a, 0x5e, 0x12, 0x34, 0x00, 0x01, 0x70, 0x6f, 0x64, 0x67, 0x61, 0x74,
    0x65, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
const Bytes kEchoReply = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x00, 0x45, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01,
    0x0a, 0x28, 0x0a, 0x60, 0x00, 0x0a, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x00,
    0x52, 0x5e, 0x12, 0x34, 0x00, 0x01, 0x70, 0x6f, 0x64, 0x67, 0x61, 0x74,
    0x65, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

TEST(EchoReply, ProducesTheExpectedBytes) {
  Bytes f = kEchoRequest;
  ParsedPacket p = parse_or_die(f);
  ASSERT_EQ(p.kind, PacketKind::kIcmp);
  make_echo_reply(p);
  EXPECT_EQ(f, kEchoReply);
}

TEST(EchoReply, IcmpChecksumEqualsFullRecomputationForRandomEchoes) {
  std::mt19937 rng(792);
  for (int i = 0; i < 10'000; ++i) {
    Bytes f(kL4 + 8 + rng() % 101);
    for (auto& b : f) b = static_cast<uint8_t>(rng());
    store16(f, 12, to_be16(RTE_ETHER_TYPE_IPV4));
    rte_ipv4_hdr* ip = ip_of(f);
    ip->version_ihl = 0x45;
    ip->total_length = to_be16(static_cast<uint16_t>(f.size() - kIp));
    ip->fragment_offset = 0;
    ip->next_proto_id = 1;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    f[kL4] = RTE_IP_ICMP_ECHO_REQUEST;
    f[kL4 + 1] = 0;
    store16(f, kL4 + 2, 0);
    store16(f, kL4 + 2, internet_checksum(std::span<const uint8_t>(f).subspan(kL4)));

    const Bytes request = f;
    ParsedPacket p = parse_or_die(f);
    make_echo_reply(p);

    Bytes expected = request;
    std::memcpy(&expected[kSrcIp], &request[kDstIp], 4);
    std::memcpy(&expected[kDstIp], &request[kSrcIp], 4);
    expected[kTtl] = 64;
    ip_of(expected)->hdr_checksum = 0;
    ip_of(expected)->hdr_checksum = rte_ipv4_cksum(ip_of(expected));
    expected[kL4] = RTE_IP_ICMP_ECHO_REPLY;
    store16(expected, kL4 + 2, 0);
    store16(expected, kL4 + 2,
            internet_checksum(std::span<const uint8_t>(expected).subspan(kL4)));
    ASSERT_EQ(f, expected) << "echo " << i;
  }
}

// Who-has 10.0.0.1 tell 10.0.0.2 (02:00:00:00:00:02), padded to 60 bytes,
// and podgate's answer as 02:00:00:00:00:01.
const Bytes kArpRequest = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
    0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};
const Bytes kArpReply = {
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00,
    0x00, 0x02, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

TEST(ArpReply, ProducesTheExpectedBytes) {
  Bytes f = kArpRequest;
  ParsedPacket p = parse_or_die(f);
  ASSERT_EQ(p.kind, PacketKind::kArp);
  make_arp_reply(p, *parse_mac("02:00:00:00:00:01"));
  EXPECT_EQ(f, kArpReply);
}

}  // namespace
}  // namespace podgate::dp

namespace podgate::dp {
namespace {

// Issue 11: an IPv6 flow keeps the NAT's checksum term (csum_delta_ip6_port)
// and applies it, or its complement for replies, to every packet.  Over
// random checksums, addresses and ports, that equals eqn. 3 word by word
// (csum_update16 over the nine changing words), both ways.
// The fast path's header check (a divisibility test of the unfolded sum)
// against RFC 1071's folded sum, on random headers, the same headers with
// their checksum made right, and sums at the fold's edges (all ones, one
// more or less, all zero).
TEST(HeaderChecksum, TheFastPathsCheckAgreesWithTheFoldedSum) {
  std::mt19937 rng(13);
  auto agree = [](const std::array<uint8_t, 20>& h) {
    rte_ipv4_hdr ip;
    std::memcpy(&ip, h.data(), sizeof ip);
    return ipv4_header_checksum_ok(&ip) == internet_checksum_ok(h);
  };
  std::array<uint8_t, 20> h{};
  EXPECT_TRUE(agree(h)) << "all zero: a sum of 0, not all ones";
  h.fill(0xff);
  EXPECT_TRUE(agree(h)) << "all ones";
  int right = 0;
  for (int i = 0; i < 200'000; ++i) {
    for (uint8_t& b : h) b = static_cast<uint8_t>(rng());
    if (i % 3 == 1) {  // sums near a multiple of 0xffff
      h.fill(0);
      const uint32_t target = 0xffffu * (1 + rng() % 4) + (rng() % 3) - 1;
      for (size_t w = 0; w < 10 && w * 0xffffu < target; ++w) {
        const uint32_t v = std::min<uint32_t>(0xffffu, target - static_cast<uint32_t>(w) * 0xffffu);
        h[2 * w] = static_cast<uint8_t>(v >> 8);
        h[2 * w + 1] = static_cast<uint8_t>(v);
      }
    } else if (i % 3 == 2) {  // a right checksum
      h[10] = h[11] = 0;
      const rte_be16_t c = internet_checksum(h);
      std::memcpy(&h[10], &c, 2);
    }
    right += internet_checksum_ok(h);
    ASSERT_TRUE(agree(h)) << "header " << i;
  }
  EXPECT_GT(right, 60'000);
}

// csum_apply_terms() adds its pieces one by one with end-around carry
// (csum_add16); that must give what folding their sum gives, zero's form
// included, on random words and on the edges (0, 1, 0xfffe, 0xffff).
TEST(IncrementalChecksum, TermsAddedOneByOneEqualTheFoldedSum) {
  std::mt19937 rng(17);
  const uint16_t edges[] = {0, 1, 0xfffe, 0xffff};
  auto word = [&] { return rng() % 4 == 0 ? edges[rng() % 4] : static_cast<uint16_t>(rng()); };
  for (int i = 0; i < 200'000; ++i) {
    const rte_be16_t check = word();
    const uint16_t a = word(), b = word(), c = word();
    const uint32_t sum = uint32_t{static_cast<uint16_t>(~check)} + a + b + c;
    ASSERT_EQ(csum_apply_terms(check, a, b, c), static_cast<rte_be16_t>(~csum_fold(sum)))
        << std::hex << check << " " << a << " " << b << " " << c;
    ASSERT_EQ(csum_apply_terms(check, a), static_cast<rte_be16_t>(~csum_fold(static_cast<uint16_t>(~check) + uint32_t{a})));
    // An address's kept term, its four words added one by one.
    const rte_be32_t from = uint32_t{a} << 16 | b, to = uint32_t{c} << 16 | word();
    const uint32_t inv = ~from;
    ASSERT_EQ(csum_term32(from, to), csum_fold((inv & 0xffff) + (inv >> 16) + (to & 0xffff) + (to >> 16)))
        << std::hex << from << " -> " << to;
  }
  for (uint16_t x : edges) {
    for (uint16_t y : edges) EXPECT_EQ(csum_add16(x, y), csum_fold(uint32_t{x} + y)) << x << " + " << y;
  }
}

TEST(IncrementalChecksum, AKeptIpv6TermEqualsWordByWordUpdatesBothWays) {
  std::mt19937 rng(11);
  auto random16 = [&] { return static_cast<uint16_t>(rng()); };
  for (int i = 0; i < 20'000; ++i) {
    uint8_t vip[16], pod[16];
    for (uint8_t& b : vip) b = static_cast<uint8_t>(rng());
    for (uint8_t& b : pod) b = static_cast<uint8_t>(rng());
    const rte_be16_t vip_port = random16(), pod_port = random16();
    const uint16_t term = csum_delta_ip6_port(vip, pod, vip_port, pod_port);
    auto word_by_word = [](rte_be16_t check, const uint8_t* from, const uint8_t* to, rte_be16_t fp, rte_be16_t tp) {
      for (int w = 0; w < 16; w += 2) {
        uint16_t o, n;
        std::memcpy(&o, from + w, 2);
        std::memcpy(&n, to + w, 2);
        check = csum_update16(check, o, n);
      }
      return csum_update16(check, fp, tp);
    };
    // Equal up to one's complement zero's two forms (0x0000, 0xffff).
    auto zero = [](rte_be16_t x) { return x == 0 || x == 0xffff; };
    auto same = [&](rte_be16_t a, rte_be16_t b) { return a == b || (zero(a) && zero(b)); };
    const rte_be16_t check = random16();
    const rte_be16_t forward = csum_apply_delta(check, term);
    const rte_be16_t reference = word_by_word(check, vip, pod, vip_port, pod_port);
    EXPECT_PRED2(same, forward, reference) << i;
    const rte_be16_t back = csum_apply_delta(forward, static_cast<uint16_t>(~term));
    EXPECT_PRED2(same, back, word_by_word(forward, pod, vip, pod_port, vip_port)) << i;
    EXPECT_PRED2(same, back, check) << "there and back again: " << i;
  }
}

}  // namespace
}  // namespace podgate::dp
