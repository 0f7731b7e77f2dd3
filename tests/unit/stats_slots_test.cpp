// Stats slots: per-endpoint counters that survive snapshot changes and keep
// per-service totals monotonic (control/publish/stats_slots.hpp).
#include "control/publish/stats_slots.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/config/config.hpp"
#include "control/publish/service_traffic.hpp"
#include "control/publish/snapshot_builder.hpp"
#include "tests/unit/config_fixture.hpp"

namespace podgate::ctl {
namespace {

const dp::ServiceKey kWeb{dp::Ip4::from_host(0x0a60'0014), dp::to_be16(80), dp::Proto::kTcp, 0};
const dp::ServiceKey kDb{dp::Ip4::from_host(0x0a60'0015), dp::to_be16(5432), dp::Proto::kTcp, 0};

dp::Backend pod(uint32_t i) { return dp::Backend{dp::Ip4::from_host(0xac11'0000 + i), dp::to_be16(8080), 0}; }

// The workers' counters as the reader sees them, one entry per slot.
struct Counters {
  std::vector<TrafficTotals> slots = std::vector<TrafficTotals>(16);
  StatsSlots::Reader reader() {
    return [this](uint16_t s) { return slots.at(s); };
  }
  void traffic(uint16_t s, uint64_t packets, uint64_t flows) {
    slots.at(s).packets_in += packets;
    slots.at(s).flows_created += flows;
  }
};

// A snapshot holding `svc` with the given alive endpoints.
std::unique_ptr<dp::Snapshot> snapshot_with(std::vector<std::pair<dp::ServiceKey, std::vector<dp::Backend>>> services) {
  auto snap = std::make_unique<dp::Snapshot>();
  for (auto& [key, alive] : services) {
    std::shared_ptr<dp::ServiceData> d(new dp::ServiceData);
    d->vip = key.vip;
    d->port = key.port;
    d->proto = key.proto;
    std::sort(alive.begin(), alive.end());
    d->alive.assign(alive.begin(), alive.end());
    snap->owned_services.push_back(d);
  }
  return snap;
}

TEST(StatsSlots, AKeyKeepsItsSlotAndSlotZeroIsNeverHandedOut) {
  Counters c;
  StatsSlots slots(c.reader(), 1000, 16);
  const uint16_t a = slots.slot_for(kWeb, pod(1));
  const uint16_t b = slots.slot_for(kWeb, pod(2));
  const uint16_t d = slots.slot_for(kDb, pod(1));
  EXPECT_NE(a, dp::kUntrackedSlot);
  EXPECT_NE(a, b);
  EXPECT_NE(a, d) << "the same Pod behind two service ports has two slots";
  EXPECT_EQ(slots.slot_for(kWeb, pod(1)), a);
  EXPECT_EQ(slots.in_use(), 3u);
}

TEST(StatsSlots, AnEndpointThatComesBackWithinQuarantineKeepsItsSlotAndCounts) {
  Counters c;
  StatsSlots slots(c.reader(), 1000, 16);
  const uint16_t a = slots.slot_for(kWeb, pod(1));
  c.traffic(a, 10, 2);
  slots.retain(*snapshot_with({{kWeb, {}}}), 0);  // pod 1 removed
  EXPECT_EQ(slots.quarantined(), 1u);
  EXPECT_EQ(slots.slot_for(kWeb, pod(1)), a);
  EXPECT_EQ(slots.quarantined(), 0u);
  EXPECT_EQ(slots.endpoint(kWeb, pod(1))->packets_in, 10u);
}

// Issue 15: a reload that failed after the snapshot was built (out of
// memory, neighbours that do not fit) left its slots taken: in_use 4 -> 9.
TEST(StatsSlots, AnAbandonedBuildGivesBackWhatItTookAndRequarantinesWhatItRevived) {
  Counters c;
  StatsSlots slots(c.reader(), 1000, 16);
  slots.slot_for(kWeb, pod(1));
  const uint16_t gone = slots.slot_for(kWeb, pod(2));
  slots.commit_taken();
  slots.retain(*snapshot_with({{kWeb, {pod(1)}}}), 100);  // pod 2 quarantined at 100
  ASSERT_EQ(slots.in_use(), 1u);
  ASSERT_EQ(slots.quarantined(), 1u);
  // The failed build: pod 1 again, pod 2 revived, three new keys.
  slots.slot_for(kWeb, pod(1));
  EXPECT_EQ(slots.slot_for(kWeb, pod(2)), gone);
  const uint16_t fresh = slots.slot_for(kWeb, pod(3));
  slots.slot_for(kDb, pod(1));
  slots.slot_for(kDb, pod(2));
  ASSERT_EQ(slots.in_use(), 5u);
  slots.abandon();
  EXPECT_EQ(slots.in_use(), 1u);
  EXPECT_EQ(slots.quarantined(), 1u);
  EXPECT_FALSE(slots.endpoint(kDb, pod(1)).has_value());
  // The abandoned slots are free again, handed out as before.
  EXPECT_EQ(slots.slot_for(kWeb, pod(3)), fresh);
  slots.abandon();
  // Pod 2's quarantine still ends 1000 ms after 100, not after the failure.
  slots.reclaim(1099);
  EXPECT_EQ(slots.quarantined(), 1u);
  slots.reclaim(1100);
  EXPECT_EQ(slots.quarantined(), 0u);
}

TEST(StatsSlots, AbandonAfterCommitChangesNothing) {
  Counters c;
  StatsSlots slots(c.reader(), 1000, 16);
  slots.slot_for(kWeb, pod(1));
  slots.commit_taken();
  slots.retain(*snapshot_with({{kWeb, {pod(1)}}}), 0);
  slots.abandon();
  EXPECT_EQ(slots.in_use(), 1u);
  EXPECT_TRUE(slots.endpoint(kWeb, pod(1)).has_value());
}

TEST(StatsSlots, ServiceTotalsStayMonotonicAsEndpointsLeaveAndSlotsAreReused) {
  Counters c;
  StatsSlots slots(c.reader(), 1000, 3);  // slots 1 and 2 only
  const uint16_t a = slots.slot_for(kWeb, pod(1));
  const uint16_t b = slots.slot_for(kWeb, pod(2));
  c.traffic(a, 10, 2);
  c.traffic(b, 5, 1);
  slots.retain(*snapshot_with({{kWeb, {pod(2)}}}), 0);  // pod 1 leaves
  EXPECT_EQ(slots.service(kWeb).packets_in, 15u) << "quarantined: still counted";
  EXPECT_EQ(slots.slot_for(kDb, pod(7)), dp::kUntrackedSlot) << "a quarantined slot is not reused";
  EXPECT_EQ(slots.exhausted(), 1u);
  c.traffic(a, 1, 0);  // a straggler of pod 1's flows during quarantine
  slots.reclaim(999);
  EXPECT_EQ(slots.quarantined(), 1u);
  slots.reclaim(1000);
  EXPECT_EQ(slots.quarantined(), 0u);
  EXPECT_FALSE(slots.endpoint(kWeb, pod(1)).has_value());
  EXPECT_EQ(slots.service(kWeb).packets_in, 16u) << "pod 1's totals fold into its service";
  EXPECT_EQ(slots.service(kWeb).flows_created, 3u);

  const uint16_t reused = slots.slot_for(kDb, pod(7));
  EXPECT_EQ(reused, a);
  EXPECT_EQ(slots.endpoint(kDb, pod(7))->packets_in, 0u) << "a reused slot starts from its baseline";
  EXPECT_EQ(slots.service(kDb).packets_in, 0u);
  c.traffic(reused, 4, 1);
  EXPECT_EQ(slots.service(kDb).packets_in, 4u);
  EXPECT_EQ(slots.service(kWeb).packets_in, 16u) << "the new owner's traffic is not the old one's";
}

// Issue 11: IPv6 service ports have slots of their own, beside the IPv4
// ones, and an IPv4 and an IPv6 key never share one or each other's totals.
TEST(StatsSlots, IPv6EndpointsHaveTheirOwnSlotsAndAreReleasedWithTheirServicePort) {
  Counters c;
  StatsSlots slots(c.reader(), 1000, 16);
  const dp::ServiceKey6 web6{*dp::parse_ip6("fd00:10:96::14"), dp::to_be16(80), dp::Proto::kTcp, 0};
  const dp::Backend6 pod6{*dp::parse_ip6("fd00:172:17::1"), dp::to_be16(8080), 0};
  const uint16_t v4 = slots.slot_for(kWeb, pod(1));
  const uint16_t v6 = slots.slot_for(web6, pod6);
  ASSERT_NE(v6, dp::kUntrackedSlot);
  EXPECT_NE(v6, v4);
  EXPECT_EQ(slots.slot_for(web6, pod6), v6);
  c.traffic(v6, 7, 1);
  EXPECT_EQ(slots.endpoint(web6, pod6)->packets_in, 7u);
  EXPECT_EQ(slots.service(web6).packets_in, 7u);
  EXPECT_EQ(slots.service(kWeb).packets_in, 0u);
  slots.commit_taken();

  // A snapshot holding the IPv6 port keeps its key; one without releases it.
  auto with6 = snapshot_with({{kWeb, {pod(1)}}});
  std::shared_ptr<dp::ServiceData6> d6(new dp::ServiceData6);
  d6->vip = web6.vip;
  d6->port = web6.port;
  d6->proto = web6.proto;
  d6->alive.push_back(pod6);
  with6->owned_services6.push_back(d6);
  slots.retain(*with6, 0);
  EXPECT_EQ(slots.quarantined(), 0u);
  slots.release(std::vector<std::shared_ptr<const dp::ServiceData6>>{d6}, *snapshot_with({{kWeb, {pod(1)}}}), 0);
  EXPECT_EQ(slots.quarantined(), 1u);
  slots.reclaim(1000);
  EXPECT_FALSE(slots.endpoint(web6, pod6).has_value());
  EXPECT_EQ(slots.service(web6).packets_in, 7u) << "the IPv6 port keeps what its endpoint counted";
  EXPECT_EQ(slots.in_use(), 1u);
}

TEST(StatsSlots, AnAbandonedBuildsClaimsAreDropped) {
  Counters c;
  StatsSlots slots(c.reader(), 1000, 16);
  const ServicePortId web{"default/web", 80, dp::Proto::kTcp};
  const uint16_t a = slots.slot_for(kWeb, pod(1));
  slots.claim(web, {SlotService::of(kWeb)});
  slots.commit_taken();
  c.traffic(a, 10, 1);
  slots.unclaim(web);  // a build without the service, refused
  slots.abandon();
  slots.commit_taken();  // the next publication
  EXPECT_EQ(slots.service_port(web).packets_in, 10u);
  c.traffic(a, 1, 0);
  EXPECT_EQ(slots.service_port(web).packets_in, 11u);
}

TEST(StatsSlots, ActiveFlowsAreCreatedMinusEnded) {
  TrafficTotals t;
  t.flows_created = 5;
  t.flows_ended = 3;
  EXPECT_EQ(t.flows_active(), 2u);
  t.flows_ended = 6;  // read while a worker was between the two counters
  EXPECT_EQ(t.flows_active(), 0u);
}

// ---- a service port's totals across publications (service_traffic.hpp) ----

// A service with one port, 80 -> 8080/TCP, at `cluster_ips` (a TOML array).
std::string service(const std::string& name, const std::string& cluster_ips, const std::string& endpoints) {
  return "[[services]]\nnamespace = \"default\"\nname = \"" + name + "\"\ncluster_ips = " + cluster_ips +
         "\nports = [{ name = \"http\", port = 80, target_port = 8080 }]\nendpoints = [" + endpoints + "]\n";
}

// Snapshots built and published as Appliance::apply does (the slots
// committed, then released or retained), read as `stats` and /metrics do.
class Publications {
 public:
  explicit Publications(bool incremental) : incremental_(incremental) {}

  void publish(const std::string& services) {
    auto cfg = parse_config(std::string(kDualStackPortsToml) + services, "test.toml");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    const Config next = std::move(*cfg);
    const ServiceDiff changes = diff_services(config_.services, next.services);
    SnapshotInputs in{&next, {dp::MacAddr{{2, 0, 0, 0, 0, 1}}, dp::MacAddr{{2, 0, 0, 0, 0, 2}}},
                      snap_.get(), ++generation_, &slots_, incremental_ && snap_ ? &changes : nullptr};
    BuildStats stats;
    auto built = build_snapshot(in, &stats);
    EXPECT_EQ(stats.incremental, in.changes != nullptr) << "the build this test means";
    slots_.commit_taken();
    if (stats.incremental) {
      slots_.release(stats.dropped, *built, now_ms_);
      slots_.release(stats.dropped6, *built, now_ms_);
    } else {
      slots_.retain(*built, now_ms_);
    }
    old_.push_back(std::move(snap_));  // flows may still carry its slots
    snap_ = std::move(built);
    config_ = next;
  }

  // Packets in through `endpoint` ("ip") of `vip` port 80, and one new
  // connection, as a worker counts them; returns the slot counted.
  uint16_t traffic(const char* vip, const char* endpoint, uint64_t packets) {
    const dp::IpAddr v = *dp::parse_ip(vip);
    const dp::IpAddr e = *dp::parse_ip(endpoint);
    uint16_t slot = dp::kUntrackedSlot;
    if (v.is_v4()) {
      const dp::ServiceData* d = snap_->find_service(v.as_v4(), dp::to_be16(80), dp::Proto::kTcp);
      if (d != nullptr) slot = d->slot_of(dp::Backend{e.as_v4(), dp::to_be16(8080), 0});
    } else {
      const dp::ServiceData6* d = snap_->find_service(v.as_v6(), dp::to_be16(80), dp::Proto::kTcp);
      if (d != nullptr) slot = d->slot_of(dp::Backend6{e.as_v6(), dp::to_be16(8080), 0});
    }
    EXPECT_NE(slot, dp::kUntrackedSlot) << vip << " -> " << endpoint << " has no slot";
    if (slot != dp::kUntrackedSlot) counters_.traffic(slot, packets, 1);
    return slot;
  }
  // A connection counted in `slot` ends, whatever snapshot is current.
  void flow_ends(uint16_t slot) { ++counters_.slots.at(slot).flows_ended; }

  // Time passes: quarantines that are over end.
  void advance(uint64_t ms) {
    now_ms_ += ms;
    slots_.reclaim(now_ms_);
  }

  // The packets in of service `name`'s port 80 as `stats` reports them.
  uint64_t port_packets(const std::string& name) const {
    const ServiceConfig& s = find(name);
    return port_traffic(slots_, s, s.ports.at(0)).packets_in;
  }
  uint64_t port_flows_active(const std::string& name) const {
    const ServiceConfig& s = find(name);
    return port_traffic(slots_, s, s.ports.at(0)).flows_active();
  }
  uint64_t endpoint_packets(const std::string& name, const char* endpoint) const {
    const ServiceConfig& s = find(name);
    for (const EndpointConfig& e : s.endpoints) {
      if (e.ip == *dp::parse_ip(endpoint)) return endpoint_traffic(slots_, s, s.ports.at(0), e).packets_in;
    }
    ADD_FAILURE() << name << " has no endpoint " << endpoint;
    return 0;
  }

  StatsSlots& slots() { return slots_; }
  static constexpr uint64_t kQuarantineMs = 1000;

 private:
  const ServiceConfig& find(const std::string& name) const {
    for (const ServiceConfig& s : config_.services) {
      if (s.name == name) return s;
    }
    throw std::runtime_error("no service " + name);
  }

  bool incremental_;
  Counters counters_;
  StatsSlots slots_{counters_.reader(), kQuarantineMs, 16};
  Config config_;
  std::unique_ptr<dp::Snapshot> snap_;
  std::vector<std::unique_ptr<dp::Snapshot>> old_;
  uint64_t generation_ = 0;
  uint64_t now_ms_ = 0;
};

// A service change is built incrementally (a Kubernetes apply) or whole
// (a reload, or a change the builder cannot follow): both count alike.
class ServicePortTotals : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(Builds, ServicePortTotals, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Incremental" : "Whole"; });

// A decrease to a value above zero is what Prometheus reads as a counter
// reset: rate() spikes by the whole remaining total.
TEST_P(ServicePortTotals, ADualStackServiceMadeSingleStackKeepsWhatItsIPv6VipCounted) {
  Publications p(GetParam());
  p.publish(service("web", R"(["10.96.0.20", "fd00:10:96::20"])",
                    R"({ ip = "172.17.0.7" }, { ip = "fd00:10:244::7" })"));
  p.traffic("10.96.0.20", "172.17.0.7", 10);
  p.traffic("fd00:10:96::20", "fd00:10:244::7", 5);
  ASSERT_EQ(p.port_packets("web"), 15u);

  // RequireDualStack -> SingleStack: the IPv6 VIP and endpoints go.
  p.publish(service("web", R"(["10.96.0.20"])", R"({ ip = "172.17.0.7" })"));
  EXPECT_EQ(p.port_packets("web"), 15u) << "the IPv6 VIP's traffic stays the service's";
  p.traffic("10.96.0.20", "172.17.0.7", 1);
  EXPECT_EQ(p.port_packets("web"), 16u);
  p.advance(Publications::kQuarantineMs);  // the IPv6 endpoint's slot is reclaimed
  EXPECT_EQ(p.port_packets("web"), 16u);
}

// Live connections are a gauge: a service port's are those to the VIP
// ports it has now.  A VIP port that left takes its open connections with
// it (their ends are counted in its own totals only).
TEST_P(ServicePortTotals, LiveFlowsAreThoseOfTheVipsAServicePortHasNow) {
  Publications p(GetParam());
  p.publish(service("web", R"(["10.96.0.20", "fd00:10:96::20"])",
                    R"({ ip = "172.17.0.7" }, { ip = "fd00:10:244::7" })"));
  p.traffic("10.96.0.20", "172.17.0.7", 10);
  std::vector<uint16_t> v6;
  for (int i = 0; i < 3; ++i) v6.push_back(p.traffic("fd00:10:96::20", "fd00:10:244::7", 5));
  ASSERT_EQ(p.port_flows_active("web"), 4u);

  p.publish(service("web", R"(["10.96.0.20"])", R"({ ip = "172.17.0.7" })"));
  EXPECT_EQ(p.port_flows_active("web"), 1u) << "only the IPv4 VIP's connection";
  for (uint16_t slot : v6) p.flow_ends(slot);  // the IPv6 connections end later
  EXPECT_EQ(p.port_flows_active("web"), 1u);
}

// A VIP port that joins with connections still open (a deleted service's
// VIP given to another before they end) counts them while they live, and
// their ends take nothing from the connections made since.
TEST_P(ServicePortTotals, AVipThatJoinsWithOpenConnectionsCountsThemUntilTheyEnd) {
  Publications p(GetParam());
  const std::string web = service("web", R"(["10.96.0.20"])", R"({ ip = "172.17.0.7" })");
  p.publish(web + service("old", R"(["10.96.0.30"])", R"({ ip = "172.17.0.9" })"));
  const uint16_t a = p.traffic("10.96.0.30", "172.17.0.9", 5);
  const uint16_t b = p.traffic("10.96.0.30", "172.17.0.9", 5);
  p.publish(web);  // "old" deleted, its two connections open
  p.publish(web + service("new", R"(["10.96.0.30"])", R"({ ip = "172.17.0.8" })"));
  EXPECT_EQ(p.port_flows_active("new"), 2u) << "the connections to its VIP";
  p.traffic("10.96.0.30", "172.17.0.8", 1);
  EXPECT_EQ(p.port_flows_active("new"), 3u);
  p.flow_ends(a);
  p.flow_ends(b);
  EXPECT_EQ(p.port_flows_active("new"), 1u) << "its own connection, still open";
}

TEST_P(ServicePortTotals, AVipADeletedServiceHadBringsNothingToTheServiceGivenIt) {
  Publications p(GetParam());
  const std::string web = service("web", R"(["10.96.0.20"])", R"({ ip = "172.17.0.7" })");
  p.publish(web + service("old", R"(["10.96.0.30"])", R"({ ip = "172.17.0.9" })"));
  p.traffic("10.96.0.30", "172.17.0.9", 50);
  p.publish(web);  // "old" deleted
  p.advance(Publications::kQuarantineMs);  // its slot reclaimed: its totals retired

  p.publish(web + service("new", R"(["10.96.0.30"])", R"({ ip = "172.17.0.8" })"));
  EXPECT_EQ(p.port_packets("new"), 0u) << "no jump by what \"old\" counted";
  p.traffic("10.96.0.30", "172.17.0.8", 3);
  EXPECT_EQ(p.port_packets("new"), 3u);
}

// A service renamed: the old name deleted and the new one given its VIP and
// Pods in the same change, so the new one's endpoint keys are the old's.
TEST_P(ServicePortTotals, AServiceGivenTheVipAndPodsOfOneDeletedInTheSameChangeStartsFromZero) {
  Publications p(GetParam());
  const std::string endpoints = R"({ ip = "172.17.0.7" })";
  p.publish(service("old", R"(["10.96.0.30"])", endpoints));
  p.traffic("10.96.0.30", "172.17.0.7", 50);
  p.publish(service("new", R"(["10.96.0.30"])", endpoints));
  EXPECT_EQ(p.port_packets("new"), 0u);
  EXPECT_EQ(p.endpoint_packets("new", "172.17.0.7"), 0u);
  p.traffic("10.96.0.30", "172.17.0.7", 3);
  EXPECT_EQ(p.port_packets("new"), 3u);
  EXPECT_EQ(p.endpoint_packets("new", "172.17.0.7"), 3u);
}

// A service port's series is absent while its service is: one created
// again starts at 0, which Prometheus reads as the reset it is (the
// counters of the deleted one do not come back).
TEST_P(ServicePortTotals, AServiceDeletedAndCreatedAgainStartsFromZero) {
  Publications p(GetParam());
  const std::string web = service("web", R"(["10.96.0.20"])", R"({ ip = "172.17.0.7" })");
  p.publish(web);
  p.traffic("10.96.0.20", "172.17.0.7", 20);
  p.publish("");
  p.publish(web);  // within the quarantine: the endpoint's slot comes back
  EXPECT_EQ(p.port_packets("web"), 0u);
  EXPECT_EQ(p.endpoint_packets("web", "172.17.0.7"), 0u);
  p.traffic("10.96.0.20", "172.17.0.7", 2);
  EXPECT_EQ(p.port_packets("web"), 2u);
}

TEST_P(ServicePortTotals, AChangedServiceKeepsItsTotals) {
  Publications p(GetParam());
  const std::string vips = R"(["10.96.0.20", "fd00:10:96::20"])";
  p.publish(service("web", vips, R"({ ip = "172.17.0.7" }, { ip = "fd00:10:244::7" })"));
  p.traffic("10.96.0.20", "172.17.0.7", 10);
  p.traffic("fd00:10:96::20", "fd00:10:244::7", 5);
  p.publish(service("web", vips, R"({ ip = "172.17.0.8" }, { ip = "fd00:10:244::8" })"));  // Pods replaced
  EXPECT_EQ(p.port_packets("web"), 15u);
  p.advance(Publications::kQuarantineMs);
  EXPECT_EQ(p.port_packets("web"), 15u);
}

}  // namespace
}  // namespace podgate::ctl
