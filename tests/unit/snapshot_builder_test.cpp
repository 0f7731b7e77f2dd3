// The snapshot builder: what workers will read, built from a Config.
#include "control/publish/snapshot_builder.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "control/config/config.hpp"
#include "tests/unit/config_fixture.hpp"

namespace podgate::ctl {
namespace {

using dp::Ip4;
using dp::parse_ip4;
using dp::to_be16;

constexpr const char* kPorts = R"(
[[ports]]
name = "uplink"
device = "net_null0"
address = "192.0.2.1/24"
[[ports]]
name = "pods"
device = "net_null1"
address = "172.17.0.1/16"
[[routes]]
prefix = "0.0.0.0/0"
via = "192.0.2.254"
[[routes]]
prefix = "198.51.100.0/24"
via = "192.0.2.253"
)";

std::string service(const std::string& name, const std::string& vip, const std::string& endpoints,
                    const std::string& ports = R"({ name = "http", port = 80, target_port = 8080 })") {
  return "[[services]]\nnamespace = \"default\"\nname = \"" + name + "\"\ncluster_ip = \"" + vip +
         "\"\nports = [" + ports + "]\nendpoints = [" + endpoints + "]\n";
}

Config parse(const std::string& services) {
  auto cfg = parse_config(std::string(kPorts) + services, "test.toml");
  EXPECT_TRUE(cfg.ok()) << (cfg.ok() ? "" : cfg.error().message);
  return cfg.ok() ? *cfg : Config{};
}

// default/web, cluster IPs 10.96.0.20 and fd00:10:96::20, port 80 to
// 8080, with `endpoints` (TOML inline tables), on the dual-stack ports.
Config dual_stack_web(const std::string& endpoints) {
  auto cfg = parse_config(std::string(kDualStackPortsToml) + R"(
[[services]]
namespace = "default"
name = "web"
cluster_ips = ["10.96.0.20", "fd00:10:96::20"]
ports = [{ name = "http", port = 80, target_port = 8080 }]
endpoints = [)" + endpoints + "]\n",
                          "test.toml");
  EXPECT_TRUE(cfg.ok()) << (cfg.ok() ? "" : cfg.error().message);
  return cfg.ok() ? *cfg : Config{};
}

Ip4 ip(const char* s) { return *parse_ip4(s); }
dp::Backend be(const char* s) { return dp::Backend{ip(s), to_be16(8080), 0}; }
template <class V>
std::vector<dp::Backend> backends(const V& v) {
  return {v.begin(), v.end()};
}

std::unique_ptr<dp::Snapshot> build(const Config& cfg, const dp::Snapshot* prev = nullptr,
                                    BuildStats* stats = nullptr) {
  SnapshotInputs in{&cfg, {dp::MacAddr{{2, 0, 0, 0, 0, 1}}, dp::MacAddr{{2, 0, 0, 0, 0, 2}}}, prev, 7};
  return build_snapshot(in, stats);
}

const char* kThreeEndpoints = R"(
  { ip = "172.17.0.10" }, { ip = "172.17.0.11", weight = 2 },
  { ip = "172.17.0.12", ready = false, serving = true, terminating = true },
  { ip = "172.17.0.13", ready = false, serving = false },
  { ip = "172.17.0.14", ready = false, serving = true })";

TEST(SnapshotBuilder, ServicePortsAreFoundByVipPortAndProtocol) {
  auto snap = build(parse(service("a", "10.96.0.20", kThreeEndpoints,
                                  R"({ name = "http", port = 80, target_port = 8080 },
                                     { name = "dns", port = 53, protocol = "UDP" })")));
  EXPECT_EQ(snap->generation, 7u);
  const dp::ServiceData* http = snap->find_service(ip("10.96.0.20"), to_be16(80), dp::Proto::kTcp);
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(http->ready[0].port, to_be16(8080));
  const dp::ServiceData* dns = snap->find_service(ip("10.96.0.20"), to_be16(53), dp::Proto::kUdp);
  ASSERT_NE(dns, nullptr);
  EXPECT_EQ(dns->ready[0].port, to_be16(53)) << "target_port defaults to port";
  EXPECT_EQ(snap->find_service(ip("10.96.0.20"), to_be16(80), dp::Proto::kUdp), nullptr);
  EXPECT_EQ(snap->find_service(ip("10.96.0.20"), to_be16(81), dp::Proto::kTcp), nullptr);
  EXPECT_EQ(snap->find_service(ip("10.96.0.21"), to_be16(80), dp::Proto::kTcp), nullptr);
  EXPECT_TRUE(snap->is_vip(ip("10.96.0.20")));
  EXPECT_FALSE(snap->is_vip(ip("10.96.0.21")));
}

// A new flow's source check (issue 15) asks own_filter first: every
// address the appliance is (the VIPs, the DNS VIP, the ports' own) passes
// it, and few others do, at 2,000 VIPs as at one.
TEST(SnapshotBuilder, TheOwnAddressFilterPassesEveryOwnAddressAndFewOthers) {
  std::string services;
  for (int i = 0; i < 2000; ++i) {
    std::string vip = "10.96.";
    vip.append(std::to_string(i / 250)).append(".").append(std::to_string(i % 250 + 1));
    std::string name = "s";
    services += service(name.append(std::to_string(i)), vip, R"({ ip = "172.17.0.10" })");
  }
  const Config cfg = parse(std::string("[dns]\nservice_ip = \"10.96.100.10\"\n").append(services));
  auto snap = build(cfg);
  ASSERT_EQ(snap->vips.size(), 2000u);
  for (const Ip4 vip : snap->vips) ASSERT_TRUE(snap->may_be_own(vip)) << dp::to_string(vip);
  for (const char* own : {"10.96.100.10", "192.0.2.1", "172.17.0.1"}) EXPECT_TRUE(snap->may_be_own(ip(own))) << own;
  uint32_t passed = 0;
  for (uint32_t i = 0; i < 100'000; ++i) passed += snap->may_be_own(Ip4::from_host(0x6440'0000 + i * 7));
  EXPECT_LT(passed, 10'000u) << "of 100,000 addresses of clients";
  EXPECT_GT(passed, 0u) << "a filter, not a set: some pass, and is_vip() tells";
}

// The same filter holds the IPv6 VIPs and the ports' IPv6 addresses.
TEST(SnapshotBuilder, TheOwnAddressFilterHoldsIpv6AddressesToo) {
  auto snap = build(dual_stack_web(R"({ ip = "172.17.0.7" }, { ip = "fd00:10:244::7" })"));
  for (const char* own : {"fd00:10:96::20", "2001:db8:1::1", "fd00:10:244::1"}) {
    EXPECT_TRUE(snap->may_be_own(*dp::parse_ip6(own))) << own;
  }
  uint32_t passed = 0;
  dp::Ip6 client = *dp::parse_ip6("2001:db8:77::");
  for (uint32_t i = 0; i < 10'000; ++i) {
    client.bytes[14] = static_cast<uint8_t>(i >> 8);
    client.bytes[15] = static_cast<uint8_t>(i);
    passed += snap->may_be_own(client);
  }
  EXPECT_LT(passed, 1'000u) << "of 10,000 addresses of clients";
}

TEST(SnapshotBuilder, ReadyEndpointsTakeNewFlowsDrainingOnesOnlyKeepTheirs) {
  auto snap = build(parse(service("a", "10.96.0.20", kThreeEndpoints)));
  const dp::ServiceData* s = snap->find_service(ip("10.96.0.20"), to_be16(80), dp::Proto::kTcp);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->ready.size(), 2u);
  EXPECT_EQ(s->ready[0].ip, ip("172.17.0.10"));
  EXPECT_EQ(s->ready[1].ip, ip("172.17.0.11"));
  EXPECT_TRUE(s->keeps({ip("172.17.0.12"), to_be16(8080)})) << "serving + terminating drains";
  EXPECT_FALSE(s->keeps({ip("172.17.0.13"), to_be16(8080)})) << "not serving: flows end";
  EXPECT_TRUE(s->keeps({ip("172.17.0.14"), to_be16(8080)}))
      << "out of rotation (endpoint set --ready=false) but serving: drains";
  EXPECT_FALSE(s->keeps({ip("172.17.0.10"), to_be16(80)})) << "the target port is part of it";
  // The Maglev table only names ready endpoints, in proportion to weight.
  size_t slots[2] = {0, 0};
  for (uint16_t i : s->maglev) {
    ASSERT_LT(i, 2u);
    ++slots[i];
  }
  EXPECT_NEAR(static_cast<double>(slots[1]) / static_cast<double>(slots[0]), 2.0, 0.01);
}

// KEP-1669: with no ready endpoint, the serving and terminating ones take
// new flows, so a service whose Pods are all being replaced keeps
// answering.  Not one that stopped serving, and not one taken out of
// rotation by `ready = false` alone: that is the operator's choice.
TEST(SnapshotBuilder, WithNoEndpointReadyTheServingTerminatingOnesTakeNewFlows) {
  const char* none_ready = R"(
  { ip = "172.17.0.12", ready = false, serving = true, terminating = true },
  { ip = "172.17.0.13", ready = false, serving = false, terminating = true },
  { ip = "172.17.0.14", ready = false, serving = true },
  { ip = "172.17.0.15", ready = false, serving = true, terminating = true, weight = 3 })";
  auto snap = build(parse(service("a", "10.96.0.20", none_ready)));
  const dp::ServiceData* s = snap->find_service(ip("10.96.0.20"), to_be16(80), dp::Proto::kTcp);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(backends(s->ready), (std::vector<dp::Backend>{be("172.17.0.12"), be("172.17.0.15")}));
  EXPECT_EQ(s->weights, (std::vector<uint32_t>{1, 3})) << "weights as configured";
  EXPECT_EQ(backends(s->alive),
            (std::vector<dp::Backend>{be("172.17.0.12"), be("172.17.0.14"), be("172.17.0.15")}));

  // One ready endpoint ends the fallback: the terminating ones drain again.
  auto next = build(parse(service("a", "10.96.0.20", std::string(none_ready) + R"(,
  { ip = "172.17.0.16" })")),
                    snap.get());
  s = next->find_service(ip("10.96.0.20"), to_be16(80), dp::Proto::kTcp);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(backends(s->ready), (std::vector<dp::Backend>{be("172.17.0.16")}));
  EXPECT_TRUE(s->keeps(be("172.17.0.12"))) << "its flows stay";
}

// The fallback is per family, as each VIP forwards to its own family only:
// a ready IPv4 endpoint does not keep the IPv6 VIP from falling back.
TEST(SnapshotBuilder, TheTerminatingFallbackIsDecidedFamilyByFamily) {
  auto snap = build(dual_stack_web(R"({ ip = "172.17.0.7" },
  { ip = "172.17.0.8", ready = false, serving = true, terminating = true },
  { ip = "fd00:10:244::8", ready = false, serving = true, terminating = true })"));
  const dp::ServiceData* v4 = snap->find_service(ip("10.96.0.20"), to_be16(80), dp::Proto::kTcp);
  const dp::ServiceData6* v6 = snap->find_service(*dp::parse_ip6("fd00:10:96::20"), to_be16(80), dp::Proto::kTcp);
  ASSERT_TRUE(v4 != nullptr && v6 != nullptr);
  EXPECT_EQ(backends(v4->ready), (std::vector<dp::Backend>{be("172.17.0.7")}));
  ASSERT_EQ(v6->ready.size(), 1u);
  EXPECT_EQ(v6->ready[0].ip, *dp::parse_ip6("fd00:10:244::8"));
}

TEST(SnapshotBuilder, PodsMapBackToTheOneServicePortTheyBack) {
  auto snap = build(parse(service("a", "10.96.0.20", kThreeEndpoints) +
                          service("b", "10.96.0.30", R"({ ip = "172.17.0.10" }, { ip = "172.17.0.40" })",
                                  R"({ name = "web", port = 8080 }, { name = "q", port = 9000, protocol = "UDP" })")));
  const dp::ServiceData* s = snap->find_backend(ip("172.17.0.11"), to_be16(8080), dp::Proto::kTcp);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->vip, ip("10.96.0.20"));
  EXPECT_EQ(s->port, to_be16(80));
  EXPECT_NE(snap->find_backend(ip("172.17.0.12"), to_be16(8080), dp::Proto::kTcp), nullptr)
      << "draining endpoints still answer their flows";
  EXPECT_EQ(snap->find_backend(ip("172.17.0.13"), to_be16(8080), dp::Proto::kTcp), nullptr)
      << "removed endpoints do not";
  EXPECT_EQ(snap->find_backend(ip("172.17.0.10"), to_be16(8080), dp::Proto::kTcp), nullptr)
      << "172.17.0.10:8080 backs both a:80 and b:8080, so it is ambiguous";
  const dp::ServiceData* udp = snap->find_backend(ip("172.17.0.10"), to_be16(9000), dp::Proto::kUdp);
  ASSERT_NE(udp, nullptr);
  EXPECT_EQ(udp->vip, ip("10.96.0.30"));
}

TEST(SnapshotBuilder, HeadlessServicesHaveNoForwarding) {
  auto snap = build(parse(service("h", "None", R"({ ip = "172.17.1.10" })")));
  EXPECT_TRUE(snap->vips.empty());
  EXPECT_TRUE(snap->owned_services.empty());
}

TEST(SnapshotBuilder, UnchangedServicesAreSharedWithThePreviousSnapshot) {
  Config one = parse(service("a", "10.96.0.20", kThreeEndpoints) +
                     service("b", "10.96.0.30", R"({ ip = "172.17.0.20" })"));
  BuildStats first;
  auto s1 = build(one, nullptr, &first);
  EXPECT_EQ(first.services_built, 2u);

  Config two = parse(service("a", "10.96.0.20", kThreeEndpoints) +
                     service("b", "10.96.0.30", R"({ ip = "172.17.0.20" }, { ip = "172.17.0.21" })"));
  BuildStats second;
  auto s2 = build(two, s1.get(), &second);
  EXPECT_EQ(second.services_shared, 1u);
  EXPECT_EQ(second.services_built, 1u);
  EXPECT_EQ(s2->find_service(ip("10.96.0.20"), to_be16(80), dp::Proto::kTcp),
            s1->find_service(ip("10.96.0.20"), to_be16(80), dp::Proto::kTcp))
      << "the same object, not a copy";
  EXPECT_NE(s2->find_service(ip("10.96.0.30"), to_be16(80), dp::Proto::kTcp),
            s1->find_service(ip("10.96.0.30"), to_be16(80), dp::Proto::kTcp));
}

TEST(SnapshotBuilder, AWeightChangeRebuildsTheService) {
  auto s1 = build(parse(service("a", "10.96.0.20", R"({ ip = "172.17.0.10" }, { ip = "172.17.0.11" })")));
  BuildStats stats;
  auto s2 = build(parse(service("a", "10.96.0.20", R"({ ip = "172.17.0.10" }, { ip = "172.17.0.11", weight = 3 })")),
                  s1.get(), &stats);
  EXPECT_EQ(stats.services_built, 1u);
  EXPECT_EQ(stats.services_shared, 0u);
}

TEST(SnapshotBuilder, RoutesAreLongestPrefixFirstWithConnectedSubnets) {
  auto snap = build(parse(""));
  const dp::Route* pod = snap->route(ip("172.17.3.4"));
  ASSERT_NE(pod, nullptr);
  EXPECT_TRUE(pod->via.is_zero()) << "connected: the destination is the next hop";
  EXPECT_EQ(static_cast<uint16_t>(pod->port), 1);
  const dp::Route* routed = snap->route(ip("198.51.100.9"));
  ASSERT_NE(routed, nullptr);
  EXPECT_EQ(routed->via, ip("192.0.2.253"));
  EXPECT_EQ(static_cast<uint16_t>(routed->port), 0);
  const dp::Route* fallback = snap->route(ip("203.0.113.1"));
  ASSERT_NE(fallback, nullptr);
  EXPECT_EQ(fallback->via, ip("192.0.2.254"));
  EXPECT_EQ(snap->ports[1].mac, (dp::MacAddr{{2, 0, 0, 0, 0, 2}}));
  EXPECT_NE(snap->own_address(ip("172.17.0.1")), nullptr);
  EXPECT_EQ(snap->own_address(ip("172.17.0.2")), nullptr);
}

TEST(SnapshotBuilder, SnapshotsWithTheSameRoutesShareTheirRouteIndex) {
  auto s1 = build(parse(""));
  ASSERT_NE(s1->routed_by_16, nullptr);
  auto s2 = build(parse(service("a", "10.96.0.1", R"({ ip = "172.17.0.10" })")), s1.get());
  EXPECT_EQ(s2->routed_by_16, s1->routed_by_16) << "only the services changed";
  auto cfg = parse("");
  cfg.routes.pop_back();  // 198.51.100.0/24 via 192.0.2.253
  auto s3 = build(cfg, s2.get());
  EXPECT_NE(s3->routed_by_16, s2->routed_by_16);
  EXPECT_EQ(s3->routed_route_plus_one(ip("198.51.100.9")), s3->routed_route_plus_one(ip("203.0.113.1")))
      << "without its /24, 198.51.0.0/16 is the default route's whole";
  EXPECT_NE(s3->routed_route_plus_one(ip("198.51.100.9")), 0u);
}

// RoutedBy16 against the route scan it stands in for, over random route
// sets (connected and routed, /0 to /32, overlapping) and addresses in and
// around them: where it names a route, that is route()'s, and beyond a
// router; where it says 0, route() finds none beyond a router, or a route
// longer than /16 splits the address's /16 (or the route's index is past
// what an entry holds).
TEST(RoutedBy16, NamesRouteScansRouteWhereAWholeSlash16TakesItAndNowhereElse) {
  std::mt19937 rng(20261207);
  const uint8_t lengths[] = {0, 4, 8, 10, 12, 15, 16, 17, 20, 24, 30, 32};
  uint64_t named = 0, lookups = 0;
  for (int round = 0; round < 200; ++round) {
    dp::Snapshot snap;
    const size_t n = 1 + rng() % (round % 10 == 0 ? 300 : 12);
    for (size_t i = 0; i < n; ++i) {
      // Prefixes bunched in 10.0.0.0/8's first /12, so that they overlap.
      const uint32_t addr = (rng() % 4 == 0 ? rng() : 0x0a00'0000u | (rng() & 0x000f'ffffu));
      const uint8_t length = lengths[rng() % std::size(lengths)];
      const Ip4 via = rng() % 3 == 0 ? Ip4{} : Ip4::from_host(0xc000'0200u + 1 + rng() % 250);
      snap.routes.push_back(dp::Route::make(dp::Prefix4{Ip4::from_host(addr), length}, via,
                                            dp::PortIdx{static_cast<uint16_t>(rng() % 2)}));
    }
    std::stable_sort(snap.routes.begin(), snap.routes.end(),
                     [](const dp::Route& a, const dp::Route& b) { return a.prefix.length > b.prefix.length; });
    snap.routed_by_16 = dp::RoutedBy16::make(snap.routes);
    for (int k = 0; k < 2000; ++k) {
      const dp::Route& near = snap.routes[rng() % snap.routes.size()];
      const uint32_t host = rng() % 2 == 0 ? rng() : near.prefix.network().host() + (rng() & 0x1ffffu);
      const Ip4 dst = Ip4::from_host(host);
      const dp::Route* scanned = snap.route(dst);
      const uint32_t r = snap.routed_route_plus_one(dst);
      ++lookups;
      if (r != 0) {
        ++named;
        ASSERT_LE(r, snap.routes.size());
        ASSERT_EQ(&snap.routes[r - 1], scanned) << dp::to_string(dst) << " in round " << round;
        ASSERT_FALSE(scanned->via.is_zero()) << dp::to_string(dst);
        continue;
      }
      if (scanned == nullptr || scanned->via.is_zero()) continue;
      const bool split = std::any_of(snap.routes.begin(), snap.routes.end(), [&](const dp::Route& x) {
        return x.prefix.length > 16 && (x.prefix.network().host() >> 16) == (host >> 16);
      });
      const bool past_entries = static_cast<size_t>(scanned - snap.routes.data()) >= dp::RoutedBy16::kMaxRoutes;
      ASSERT_TRUE(split || past_entries) << dp::to_string(dst) << " takes a routed route, but 0, in round " << round;
    }
  }
  EXPECT_GT(named, lookups / 10) << "the index must name routes, not only defer to the scan";
}

// RoutedTrie6 against the IPv6 route scan, as RoutedBy16's test: where it
// names a route, that is route()'s, beyond a router; where it says 0,
// route() finds none beyond a router (or its index is past what an entry
// holds).  Unlike RoutedBy16 it splits as deep as the routes do.
TEST(RoutedTrie6, NamesRouteScansRouteBeyondARouterAndNowhereElse) {
  std::mt19937 rng(20261207);
  const uint8_t lengths[] = {0, 3, 8, 16, 29, 32, 47, 48, 56, 64, 65, 96, 127, 128};
  uint64_t named = 0, lookups = 0;
  auto random_ip6 = [&rng] {
    dp::Ip6 a;
    for (auto& b : a.bytes) b = static_cast<uint8_t>(rng());
    return a;
  };
  for (int round = 0; round < 200; ++round) {
    dp::Snapshot snap;
    const size_t n = 1 + rng() % (round % 10 == 0 ? 300 : 12);
    // Prefixes bunched under 2001:db8::/32, so that they nest and overlap.
    for (size_t i = 0; i < n; ++i) {
      dp::Ip6 addr = random_ip6();
      if (rng() % 4 != 0) {
        addr.bytes[0] = 0x20, addr.bytes[1] = 0x01, addr.bytes[2] = 0x0d, addr.bytes[3] = 0xb8;
        for (int k = 4; k < 8; ++k) addr.bytes[k] &= 0x03;
      }
      const dp::Ip6 via = rng() % 3 == 0 ? dp::Ip6{} : random_ip6();
      snap.routes6.push_back(dp::Route6::make(dp::Prefix6{addr, lengths[rng() % std::size(lengths)]}, via,
                                              dp::PortIdx{static_cast<uint16_t>(rng() % 2)}));
    }
    std::stable_sort(snap.routes6.begin(), snap.routes6.end(),
                     [](const dp::Route6& a, const dp::Route6& b) { return a.prefix.length > b.prefix.length; });
    snap.routed_trie6 = dp::RoutedTrie6::make(snap.routes6);
    ASSERT_NE(snap.routed_trie6, nullptr) << "round " << round;
    for (int k = 0; k < 2000; ++k) {
      dp::Ip6 dst = random_ip6();
      if (rng() % 2 == 0) {  // near a route: its prefix, then random bits
        const dp::Prefix6& p = snap.routes6[rng() % snap.routes6.size()].prefix;
        const int keep = std::max(0, static_cast<int>(p.length) - static_cast<int>(rng() % 9));
        for (int b = 0; b < 16; ++b) {
          const uint8_t m = static_cast<uint8_t>(0xff00u >> std::clamp(keep - 8 * b, 0, 8));
          dst.bytes[b] = static_cast<uint8_t>((p.addr.bytes[b] & m) | (dst.bytes[b] & ~m));
        }
      }
      const dp::Route6* scanned = snap.route(dst);
      const uint32_t r = snap.routed_route_plus_one(dst);
      ++lookups;
      if (r != 0) {
        ++named;
        ASSERT_LE(r, snap.routes6.size());
        ASSERT_EQ(&snap.routes6[r - 1], scanned) << dp::to_string(dst) << " in round " << round;
        ASSERT_FALSE(scanned->via.is_zero()) << dp::to_string(dst);
      } else if (scanned != nullptr && !scanned->via.is_zero()) {
        ASSERT_GE(static_cast<size_t>(scanned - snap.routes6.data()), dp::RoutedTrie6::kMaxRoutes)
            << dp::to_string(dst) << " takes a routed route, but 0, in round " << round;
      }
    }
  }
  EXPECT_GT(named, lookups / 10) << "the trie must name routes";
}

TEST(SnapshotBuilder, SnapshotsWithTheSameIpv6RoutesShareTheirTrie) {
  const std::string v6 = std::string(kPorts) + R"(
[[routes]]
prefix = "::/0"
via = "fd00:2::fe"
)";
  auto with_v6 = [&](const std::string& services) {
    std::string text = v6 + services;
    text.replace(text.find("address = \"192.0.2.1/24\""), std::string("address = \"192.0.2.1/24\"").size(),
                 "address = \"192.0.2.1/24\"\naddress6 = \"fd00:2::1/64\"");
    auto cfg = parse_config(text, "test.toml");
    EXPECT_TRUE(cfg.ok()) << (cfg.ok() ? "" : cfg.error().message);
    return cfg.ok() ? *cfg : Config{};
  };
  auto s1 = build(with_v6(""));
  ASSERT_NE(s1->routed_trie6, nullptr);
  EXPECT_NE(s1->routed_route_plus_one(*dp::parse_ip6("2001:db8::1")), 0u) << "beyond the default route";
  EXPECT_EQ(s1->routed_route_plus_one(*dp::parse_ip6("fd00:2::9")), 0u) << "connected";
  auto s2 = build(with_v6(service("a", "10.96.0.1", R"({ ip = "172.17.0.10" })")), s1.get());
  EXPECT_EQ(s2->routed_trie6, s1->routed_trie6) << "only the services changed";
  auto s3 = build(parse(""), s2.get());
  EXPECT_NE(s3->routed_trie6, s2->routed_trie6);
  EXPECT_EQ(s3->routed_route_plus_one(*dp::parse_ip6("2001:db8::1")), 0u) << "no IPv6 route left";
}

}  // namespace
}  // namespace podgate::ctl
