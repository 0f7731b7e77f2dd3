// podgate-gen's pure parts (tools/trafficgen): the option parser's two
// families; how the TX lcores split a run; latency percentiles; how
// answers the ports refuse are counted; and the frames it builds and
// checks, IPv6 above all (issue 11): what it builds passes its own checks,
// one flipped bit fails them, a reply keeps its checksum, and its NDP
// frames pass RFC 4861's checks.
// No EAL: frames live in a stack buffer behind a bare rte_mbuf.
#include <gtest/gtest.h>

#include <array>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "tools/trafficgen/engine.hpp"
#include "tools/trafficgen/frame.hpp"
#include "tools/trafficgen/latency.hpp"
#include "tools/trafficgen/options.hpp"
#include "tools/trafficgen/tx_split.hpp"

namespace podgate::gen {
namespace {

ParseResult parse(std::vector<std::string> args) {
  args.insert(args.begin(), "podgate-gen");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return parse_options(static_cast<int>(argv.size()), argv.data());
}

std::string usage_error(std::vector<std::string> args) {
  ParseResult r = parse(std::move(args));
  const auto* e = std::get_if<UsageError>(&r);
  return e != nullptr ? e->message : "(parsed)";
}

dp::IpAddr ip(const char* text) { return *dp::parse_ip(text); }

TEST(TrafficgenOptions, AnIpv6ServiceMakesAnIpv6RunWithIpv6Defaults) {
  ParseResult r = parse({"--service", "[fd00:96::20]:80/tcp=[fd00:17::10]:8080,[fd00:17::11]:8080"});
  const Options& o = std::get<Options>(r);
  EXPECT_EQ(o.family, dp::Family::kIpv6);
  ASSERT_EQ(o.services.size(), 1u);
  EXPECT_EQ(o.services[0].vip, ip("fd00:96::20"));
  EXPECT_EQ(o.services[0].endpoints[1], (Endpoint{ip("fd00:17::11"), dp::to_be16(8080)}));
  EXPECT_EQ(to_string(o.services[0]), "[fd00:96::20]:80/TCP");
  EXPECT_EQ(o.client_first, ip("2001:db8:100::1"));
  EXPECT_EQ(o.gateway, ip("fd00:2::1"));
  EXPECT_EQ(o.client_gw, ip("fd00:2::2"));
}

TEST(TrafficgenOptions, Ipv4RunsKeepTheirDefaults) {
  const Options o = std::get<Options>(parse({"--service", "10.96.0.20:80/tcp=172.17.0.10:8080"}));
  EXPECT_EQ(o.family, dp::Family::kIpv4);
  EXPECT_EQ(o.client_first, ip("198.51.100.1"));
  EXPECT_EQ(o.gateway, ip("192.0.2.1"));
}

TEST(TrafficgenOptions, AnIpv6ClientRangeCountsItsLastWord) {
  const Options o = std::get<Options>(parse({"--service", "[fd00:96::20]:53/udp=[fd00:17::10]:53",
                                             "--clients", "2001:db8::fffe-2001:db8::1:1",
                                             "--client-ports", "1000-1009"}));
  EXPECT_EQ(address_count(o.client_first, o.client_last), 4u);
  EXPECT_EQ(nth_address(o.client_first, 3), ip("2001:db8::1:1"));  // carries into the next group
  EXPECT_EQ(o.flows, 40u);  // 4 addresses x 10 ports, fewer than the default 1000
}

TEST(TrafficgenOptions, FamiliesDoNotMix) {
  EXPECT_NE(usage_error({"--service", "[fd00:96::20]:80/tcp=172.17.0.10:8080"})
                .find("every address of a run is IPv6"),
            std::string::npos);
  EXPECT_NE(usage_error({"--ipv6", "--service", "10.96.0.20:80/tcp=172.17.0.10:8080"})
                .find("every address of a run is IPv6"),
            std::string::npos);
  EXPECT_NE(usage_error({"--service", "[fd00:96::20]:80/tcp=[fd00:17::10]:80", "--gateway",
                         "192.0.2.1"})
                .find("must be IPv6 addresses"),
            std::string::npos);
  EXPECT_NE(usage_error({"--clients", "2001:db8::1-2001:db9::1"}).find("last 32 bits"),
            std::string::npos);
  EXPECT_NE(usage_error({"--service", "fd00:96::20:80/tcp=[fd00:17::10]:80"}).find("is not VIP:PORT"),
            std::string::npos);
}

TEST(TrafficgenOptions, TheSmallestFrameDependsOnTheFamily) {
  EXPECT_NE(usage_error({"--service", "[fd00:96::20]:53/udp=[fd00:17::10]:53", "--size", "77"})
                .find("at least 78 bytes"),
            std::string::npos);
  EXPECT_TRUE(std::holds_alternative<Options>(
      parse({"--service", "[fd00:96::20]:53/udp=[fd00:17::10]:53", "--size", "78"})));
  EXPECT_NE(usage_error({"--service", "[fd00:96::20]:80/tcp=[fd00:17::10]:80", "--size", "89"})
                .find("at least 90 bytes"),
            std::string::npos);
  EXPECT_TRUE(std::holds_alternative<Options>(
      parse({"--service", "10.96.0.20:53/udp=172.17.0.10:53", "--size", "60"})));
}

// --rate 3 over 4 TX lcores once gave the fourth a share of 0, which
// means "as fast as possible": it flooded while the report said 3 pps.
TEST(TrafficgenTxSplit, ARateBelowTheLcoreCountIsSentByOneLcorePerPacketPerSecond) {
  const std::vector<TxShare> shares = split_tx(4, 1000, 3, 0);
  ASSERT_EQ(shares.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(shares[i].rate_pps, 1u) << i;
    EXPECT_EQ(shares[i].first_flow, i);
    EXPECT_EQ(shares[i].stride, 3u) << "the 1000 flows are spread over the lcores that send";
    EXPECT_EQ(shares[i].count, 0u) << "no --count: until the deadline";
  }
}

// --flows 1 over 2 TX lcores once left the second without a flow: it
// stopped at once and its half of --count was never sent.
TEST(TrafficgenTxSplit, FewerFlowsThanLcoresStillSendTheWholeCount) {
  const std::vector<TxShare> shares = split_tx(2, 1, 0, 1000);
  ASSERT_EQ(shares.size(), 1u);
  EXPECT_EQ(shares[0].count, 1000u);
  EXPECT_EQ(shares[0].first_flow, 0u);
  EXPECT_EQ(shares[0].stride, 1u);
}

TEST(TrafficgenTxSplit, SharesAreNeverZeroAddUpAndOwnEveryFlowOnce) {
  for (uint32_t lcores : {1u, 2u, 3u, 4u, 32u}) {
    for (uint32_t flows : {1u, 2u, 5u, 1000u}) {
      for (uint64_t rate : {uint64_t{0}, uint64_t{1}, uint64_t{3}, uint64_t{1000001}}) {
        for (uint64_t count : {uint64_t{0}, uint64_t{1}, uint64_t{7}, uint64_t{1000}}) {
          const std::string what = std::to_string(lcores) + " lcores, " + std::to_string(flows) +
                                   " flows, rate " + std::to_string(rate) + ", count " +
                                   std::to_string(count);
          const std::vector<TxShare> shares = split_tx(lcores, flows, rate, count);
          ASSERT_GE(shares.size(), 1u) << what;
          ASSERT_LE(shares.size(), lcores) << what;
          uint64_t rate_sum = 0, count_sum = 0;
          for (const TxShare& s : shares) {
            EXPECT_EQ(s.rate_pps == 0, rate == 0) << what;
            EXPECT_EQ(s.count == 0, count == 0) << what;
            EXPECT_LT(s.first_flow, flows) << what << ": an engine without a flow sends nothing";
            rate_sum += s.rate_pps;
            count_sum += s.count;
          }
          EXPECT_EQ(rate_sum, rate) << what;
          EXPECT_EQ(count_sum, count) << what;
          for (uint32_t f = 0; f < flows; ++f) {
            uint32_t owners = 0;
            for (const TxShare& s : shares) {
              owners += f >= s.first_flow && (f - s.first_flow) % s.stride == 0 ? 1 : 0;
            }
            EXPECT_EQ(owners, 1u) << what << ": flow " << f;
          }
        }
      }
    }
  }
}

// Values below 64 cycles have a bucket each, so these percentiles are exact.
LatencyHistogram histogram(std::initializer_list<std::pair<uint64_t, uint32_t>> value_times) {
  LatencyHistogram h;
  for (const auto& [value, times] : value_times) {
    for (uint32_t i = 0; i < times; ++i) h.record(value);
  }
  return h;
}

// p99.9 of 1600 values is the value of rank ceil(1598.4) = 1599; rounding
// p * n to the nearest rank once reported the 1598th.
TEST(TrafficgenLatency, APercentileIsTheNearestRankAtOrAboveTheFraction) {
  const LatencyHistogram h = histogram({{10, 1598}, {20, 1}, {30, 1}});
  EXPECT_EQ(h.percentile(0.999), 20u);
  EXPECT_EQ(h.percentile(0.99), 10u);
  EXPECT_EQ(h.percentile(1.0), 30u);
  const LatencyHistogram four = histogram({{1, 1}, {2, 1}, {3, 1}, {4, 1}});
  EXPECT_EQ(four.percentile(0.50), 2u);  // rank 2: half the values are 2 or less
  EXPECT_EQ(four.percentile(0.51), 3u);
  EXPECT_EQ(four.percentile(0.0), 1u);
  EXPECT_EQ(histogram({{7, 1}}).percentile(0.5), 7u);
  EXPECT_EQ(LatencyHistogram{}.percentile(0.5), 0u);
}

// 0.07 * 100 is 7.000000000000001 in doubles: still rank 7, not 8.
TEST(TrafficgenLatency, AWholeRankIsNotPushedUpByFloatingPointError) {
  const LatencyHistogram h = histogram({{1, 7}, {2, 93}});
  EXPECT_EQ(h.percentile(0.07), 1u);
  const LatencyHistogram k = histogram({{1, 29}, {2, 71}});
  EXPECT_EQ(k.percentile(0.29), 1u);  // 0.29 * 100 is 28.999999999999996: rank 29
}

// A reply the pod port refuses was once counted in replies_sent (so in
// replies_lost) and in replies_tx_failed, and a refused ARP or NDP answer
// counted as a refused reply.  (No frames needed: count() reads kinds.)
TEST(TrafficgenAnswers, EachReplyIsCountedOnceAndRefusedNeighbourAnswersApart) {
  AnswerBurst b;
  b.add(nullptr, AnswerBurst::Kind::kReply);
  b.add(nullptr, AnswerBurst::Kind::kArp);
  b.add(nullptr, AnswerBurst::Kind::kReply);
  b.add(nullptr, AnswerBurst::Kind::kReply);
  b.add(nullptr, AnswerBurst::Kind::kNdp);
  Counters c;
  b.count(2, c);  // the port took the first reply and the ARP answer
  EXPECT_EQ(c.replies_sent, 1u);
  EXPECT_EQ(c.replies_tx_failed, 2u);
  EXPECT_EQ(c.arp_tx_failed, 0u);
  EXPECT_EQ(c.ndp_tx_failed, 1u);
  Counters all;
  b.count(5, all);
  EXPECT_EQ(all.replies_sent, 3u);
  EXPECT_EQ(all.replies_tx_failed + all.arp_tx_failed + all.ndp_tx_failed, 0u);
}

// A frame in a stack buffer behind a bare mbuf: build_packet and view_frame
// only use its data pointer and lengths.
// (rte_mbuf ends in a zero-size array, so it lives in raw storage.)
struct TestFrame {
  alignas(64) std::array<uint8_t, 2048> buf{};
  alignas(64) std::array<uint8_t, sizeof(rte_mbuf)> storage{};
  rte_mbuf* m = reinterpret_cast<rte_mbuf*>(storage.data());
  TestFrame() {
    m->buf_addr = buf.data();
    m->data_off = 0;
    m->buf_len = static_cast<uint16_t>(buf.size());
    m->nb_segs = 1;
  }
};

PacketSpec spec6(dp::Proto proto) {
  PacketSpec s;
  s.src = ip("2001:db8:100::7");
  s.dst = ip("fd00:96::20");
  s.sport = dp::to_be16(40000);
  s.dport = dp::to_be16(80);
  s.proto = proto;
  s.tcp_flags = proto == dp::Proto::kTcp ? RTE_TCP_SYN_FLAG : 0;
  s.seq = 12345;
  s.stamp.flow = 17;
  s.stamp.tsc = 99;
  return s;
}

TEST(TrafficgenFrame, Ipv6TcpAndUdpPassTheirOwnChecksAndOneFlippedBitFails) {
  for (dp::Proto proto : {dp::Proto::kTcp, dp::Proto::kUdp}) {
    for (uint16_t size : {min_frame(dp::Family::kIpv6, proto), uint16_t{511}, uint16_t{1514}}) {
      TestFrame f;
      build_packet(f.m, spec6(proto), size);
      RxView v = view_frame(f.m);
      ASSERT_EQ(v.kind, RxView::Kind::kIp6) << size;
      EXPECT_EQ(v.proto, proto);
      EXPECT_EQ(v.l4_len, size - kL2L3Len6);
      EXPECT_EQ(v.src(), ip("2001:db8:100::7"));
      EXPECT_EQ(v.dst(), ip("fd00:96::20"));
      EXPECT_EQ(v.hop_limit(), kTtl);
      EXPECT_TRUE(v.stamped);
      EXPECT_EQ(v.stamp.flow, 17u);
      EXPECT_TRUE(l4_checksum_ok(v)) << size;
      // The pseudo-header covers the addresses: a changed destination
      // (a DNAT without its checksum update) fails.
      v.ip6->dst_addr[15] ^= 1;
      EXPECT_FALSE(l4_checksum_ok(v));
      v.ip6->dst_addr[15] ^= 1;
      f.buf[size - 1] ^= 0x80;  // the last padding byte
      EXPECT_FALSE(l4_checksum_ok(v));
    }
  }
}

TEST(TrafficgenFrame, Ipv6ReplySwapsAddressesAndKeepsAValidChecksum) {
  for (dp::Proto proto : {dp::Proto::kTcp, dp::Proto::kUdp}) {
    TestFrame f;
    build_packet(f.m, spec6(proto), 200);
    RxView v = view_frame(f.m);
    v.ip6->hop_limits = 63;
    const rte_ether_addr mac{{2, 0, 0, 0, 2, 1}};
    make_reply(v, mac);
    RxView r = view_frame(f.m);
    ASSERT_EQ(r.kind, RxView::Kind::kIp6);
    EXPECT_EQ(r.src(), ip("fd00:96::20"));
    EXPECT_EQ(r.dst(), ip("2001:db8:100::7"));
    EXPECT_EQ(r.sport(), dp::to_be16(80));
    EXPECT_EQ(r.hop_limit(), kTtl);
    EXPECT_TRUE(l4_checksum_ok(r));
  }
}

TEST(TrafficgenFrame, Ipv4FramesStillPassTheirChecks) {
  TestFrame f;
  PacketSpec s = spec6(dp::Proto::kTcp);
  s.src = ip("198.51.100.7");
  s.dst = ip("10.96.0.20");
  build_packet(f.m, s, 70);
  RxView v = view_frame(f.m);
  ASSERT_EQ(v.kind, RxView::Kind::kIp4);
  EXPECT_TRUE(ip_checksum_ok(v.ip));
  EXPECT_TRUE(l4_checksum_ok(v));
  EXPECT_EQ(v.hop_limit(), kTtl);
  EXPECT_EQ(v.src(), ip("198.51.100.7"));
}

TEST(TrafficgenFrame, ASolicitationIsAnsweredWithAValidAdvertisement) {
  const rte_ether_addr podgate_mac{{2, 0, 0, 0, 0, 9}}, our_mac{{2, 0, 0, 0, 2, 1}};
  TestFrame f;
  build_neighbor_solicitation(f.m, podgate_mac, ip("fd00:17::1").as_v6(), ip("fd00:17::10").as_v6());
  RxView ns = view_frame(f.m);
  ASSERT_EQ(ns.kind, RxView::Kind::kNdp);
  EXPECT_EQ(ns.ndp_type, kNeighborSolicitation);
  EXPECT_EQ(ns.ndp_target, ip("fd00:17::10").as_v6());
  // To the target's solicited-node group ff02::1:ff00:10 and its MAC.
  EXPECT_EQ(ns.dst(), ip("ff02::1:ff00:10"));
  const std::array<uint8_t, 6> group_mac{0x33, 0x33, 0xff, 0x00, 0x00, 0x10};
  EXPECT_TRUE(std::equal(group_mac.begin(), group_mac.end(), ns.eth->dst_addr.addr_bytes));
  ASSERT_NE(ns.ndp_mac, nullptr);
  EXPECT_EQ(ns.ndp_mac[5], 9);

  make_neighbor_advertisement(f.m, ns, our_mac);
  RxView na = view_frame(f.m);  // view_frame checks hop limit 255, code 0 and the checksum
  ASSERT_EQ(na.kind, RxView::Kind::kNdp);
  EXPECT_EQ(f.m->data_len, kL2L3Len6 + 32);
  EXPECT_EQ(na.ndp_type, kNeighborAdvertisement);
  EXPECT_EQ(na.ndp_target, ip("fd00:17::10").as_v6());
  EXPECT_EQ(na.src(), ip("fd00:17::10"));
  EXPECT_EQ(na.dst(), ip("fd00:17::1"));
  EXPECT_EQ(na.l4[4], 0x60);  // Solicited and Override, not Router
  ASSERT_NE(na.ndp_mac, nullptr);
  EXPECT_EQ(na.ndp_mac[5], 1);
  EXPECT_EQ(na.eth->dst_addr.addr_bytes[5], 9);  // back to the solicitor's MAC

  na.l4[8] ^= 1;  // the target, under the checksum
  EXPECT_EQ(view_frame(f.m).kind, RxView::Kind::kOther);
}

}  // namespace
}  // namespace podgate::gen
