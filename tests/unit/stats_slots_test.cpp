// Stats slots: per-endpoint counters that survive snapshot changes and keep
// per-service totals monotonic (control/publish/stats_slots.hpp).
#include "control/publish/stats_slots.hpp"

#include <vector>

#include <gtest/gtest.h>

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

TEST(StatsSlots, ActiveFlowsAreCreatedMinusEnded) {
  TrafficTotals t;
  t.flows_created = 5;
  t.flows_ended = 3;
  EXPECT_EQ(t.flows_active(), 2u);
  t.flows_ended = 6;  // read while a worker was between the two counters
  EXPECT_EQ(t.flows_active(), 0u);
}

}  // namespace
}  // namespace podgate::ctl
