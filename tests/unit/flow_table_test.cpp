// Behaviour of the per-worker flow table (architecture decision 3).
#include "dataplane/flow_table.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>
#include <rte_hash_crc.h>

namespace podgate::dp {
namespace {

constexpr FlowTimeouts kTimeouts{
    .tcp_syn_ms = 1'000,
    .tcp_established_ms = 100'000,
    .tcp_closing_ms = 2'000,
    .udp_ms = 30'000,
    .tcp_fin_ms = 5'000,
};

constexpr uint8_t kFin = 0x01;
constexpr uint8_t kSyn = 0x02;
constexpr uint8_t kRst = 0x04;
constexpr uint8_t kAck = 0x10;

const Ip4 kVip = Ip4::from_host(0x0a60'0014);  // 10.96.0.20
const Ip4 kPod = Ip4::from_host(0xac11'0005);  // 172.17.0.5

// The forward key of client 192.168.<i>.x:port -> VIP:80/TCP.
FlowKey4 client_key(uint32_t i, Proto proto = Proto::kTcp) {
  FlowKey4 k;
  k.src = Ip4::from_host(0xc0a8'0000 + (i >> 16));
  k.dst = kVip;
  k.sport = to_be16(static_cast<uint16_t>(i));
  k.dport = to_be16(80);
  k.proto = proto;
  return k;
}

FlowKey4 random_key(std::mt19937_64& rng) {
  FlowKey4 k;
  uint64_t r = rng();
  k.src = Ip4{static_cast<uint32_t>(r)};
  k.dst = Ip4{static_cast<uint32_t>(r >> 32)};
  r = rng();
  k.sport = static_cast<rte_be16_t>(r);
  k.dport = static_cast<rte_be16_t>(r >> 16);
  k.proto = (r >> 32) & 1 ? Proto::kTcp : Proto::kUdp;
  return k;
}

Ip6 random_ip6(std::mt19937_64& rng) {
  Ip6 a;
  for (auto& b : a.bytes) b = static_cast<uint8_t>(rng());
  return a;
}

FlowKey6 random_key6(std::mt19937_64& rng) {
  FlowKey6 k;
  k.src = random_ip6(rng);
  k.dst = random_ip6(rng);
  const uint64_t r = rng();
  k.sport = static_cast<rte_be16_t>(r);
  k.dport = static_cast<rte_be16_t>(r >> 16);
  k.proto = (r >> 32) & 1 ? Proto::kTcp : Proto::kUdp;
  return k;
}

// A record (IPv4 or IPv6) holding `k` as its forward key, every other
// field random: what a flow's keys hash to must not depend on them.
template <class F>
F random_flow_with_key(const typename F::Key& k, std::mt19937_64& rng) {
  F f;
  f.client = k.src;
  f.vip = k.dst;
  f.client_port = k.sport;
  f.vip_port = k.dport;
  f.proto = k.proto;
  f.state = static_cast<FlowState>(1 + rng() % 5);
  f.stats_slot = static_cast<uint16_t>(rng());
  if constexpr (std::is_same_v<F, Flow6>) {
    f.pod = random_ip6(rng);
    f.csum_delta = static_cast<uint16_t>(rng());
  } else {
    f.pod = Ip4{static_cast<rte_be32_t>(rng())};
    f.csum_addr = static_cast<uint16_t>(rng());
  }
  f.pod_port = static_cast<rte_be16_t>(rng());
  f.expires = static_cast<uint32_t>(rng());
  f.gen = static_cast<uint32_t>(rng());
  return f;
}

const rte_be16_t kPodPort = to_be16(8080);

Flow* insert_fwd(FlowTable& t, const FlowKey4& k, FlowState s, uint32_t now, uint32_t gen = 1,
                 Ip4 pod = kPod) {
  return t.insert(k, pod, kPodPort, s, gen, now);
}

// The key of the Pod's replies to the connection whose forward key is `k`.
FlowKey4 reply_key(const FlowKey4& k, Ip4 pod = kPod) {
  return FlowKey4{pod, k.src, kPodPort, k.sport, k.proto};
}

TEST(FlowTable, EitherKeyFindsTheConnection) {
  FlowTable t(1024, kTimeouts);
  const FlowKey4 k = client_key(1);
  Flow* f = t.insert(k, kPod, kPodPort, FlowState::kTcpSynSent, /*gen=*/7, /*now=*/500, /*stats_slot=*/3);
  ASSERT_NE(f, nullptr);

  const FlowHit fwd = t.find(k, 600);
  ASSERT_EQ(fwd.flow, f);
  EXPECT_FALSE(fwd.reverse);
  const FlowHit rev = t.find(reply_key(k), 600);
  ASSERT_EQ(rev.flow, f);
  EXPECT_TRUE(rev.reverse);

  EXPECT_EQ(f->forward_key(), k);
  EXPECT_EQ(f->reverse_key(), reply_key(k));
  EXPECT_EQ(f->pod, kPod);
  EXPECT_EQ(f->pod_port, kPodPort);
  EXPECT_EQ(f->state, FlowState::kTcpSynSent);
  EXPECT_EQ(f->stats_slot, 3);
  EXPECT_EQ(f->gen, 7u);
  EXPECT_EQ(f->expires, 500u + kTimeouts.tcp_syn_ms);
  EXPECT_EQ(t.size(), 1u) << "one record per connection";
}

TEST(FlowTable, MissOnOtherKey) {
  FlowTable t(1024, kTimeouts);
  const FlowKey4 k = client_key(1);
  ASSERT_NE(insert_fwd(t, k, FlowState::kTcpEstablished, 0), nullptr);

  std::vector<FlowKey4> others;
  for (const FlowKey4& base : {k, reply_key(k)}) {
    FlowKey4 o = base;
    o.src = Ip4::from_host(base.src.host() + 1);
    others.push_back(o);
    o = base;
    o.dst = Ip4::from_host(base.dst.host() + 1);
    others.push_back(o);
    o = base;
    o.sport = to_be16(from_be16(base.sport) + 1);
    others.push_back(o);
    o = base;
    o.dport = to_be16(from_be16(base.dport) + 1);
    others.push_back(o);
    o = base;
    o.proto = Proto::kUdp;
    others.push_back(o);
    o = base;  // each direction's mirror image is no key of the connection
    std::swap(o.src, o.dst);
    std::swap(o.sport, o.dport);
    others.push_back(o);
  }
  for (const FlowKey4& o : others) EXPECT_FALSE(t.find(o, 1));
  EXPECT_TRUE(t.find(k, 1));
  EXPECT_TRUE(t.find(reply_key(k), 1));
}

TEST(FlowTable, InsertReplacesTheFlowHoldingTheSameForwardKey) {
  FlowTable t(1024, kTimeouts);
  std::vector<TrafficCounters> slots(4);
  t.count_ends_in(slots.data());
  const FlowKey4 k = client_key(1);
  ASSERT_NE(t.insert(k, kPod, kPodPort, FlowState::kTcpSynSent, 1, 0, 1), nullptr);
  const Ip4 other_pod = Ip4::from_host(0xac11'0009);
  Flow* second = t.insert(k, other_pod, to_be16(9090), FlowState::kUdp, /*gen=*/2, /*now=*/10, 2);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(slots[1].flows_ended.get(), 1u) << "the replaced connection ended";
  const FlowHit found = t.find(k, 20);
  ASSERT_EQ(found.flow, second);
  EXPECT_EQ(found.flow->pod, other_pod);
  EXPECT_EQ(found.flow->state, FlowState::kUdp);
  EXPECT_FALSE(t.find(reply_key(k), 20)) << "the old reply key left with its flow";
}

// Two VIPs backed by one Pod, one client using one source port to both:
// the second connection's reply key is the first's.  Replies can only
// reach one of them; the newer wins, as an overwrite did before.
TEST(FlowTable, InsertReplacesTheFlowHoldingTheSameReplyKey) {
  FlowTable t(1024, kTimeouts);
  FlowKey4 a = client_key(1);
  FlowKey4 b = a;
  b.dst = Ip4::from_host(kVip.host() + 1);
  ASSERT_NE(insert_fwd(t, a, FlowState::kTcpEstablished, 0), nullptr);
  Flow* fb = insert_fwd(t, b, FlowState::kTcpEstablished, 0);
  ASSERT_NE(fb, nullptr);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.find(a, 1));
  EXPECT_EQ(t.find(reply_key(a), 1).flow, fb);
}

TEST(FlowTable, ExpiredFlowOfTheSameKeyIsReplacedWithoutDuplicating) {
  FlowTable t(8, kTimeouts);
  const FlowKey4 k = client_key(1);
  ASSERT_NE(insert_fwd(t, k, FlowState::kTcpSynSent, 0), nullptr);
  const uint32_t later = kTimeouts.tcp_syn_ms + 1;  // k has expired, not freed
  ASSERT_NE(insert_fwd(t, k, FlowState::kTcpEstablished, later), nullptr);
  EXPECT_EQ(t.size(), 1u);
  const FlowHit h = t.find(k, later);
  ASSERT_TRUE(h);
  t.erase(*h.flow);
  EXPECT_FALSE(t.find(k, later)) << "no stale copy left behind";
  EXPECT_FALSE(t.find(reply_key(k), later));
}

TEST(FlowTable, FlowsExpireAfterTheirStateTimeout) {
  struct Case {
    FlowState state;
    uint32_t timeout;
  };
  const Case cases[] = {
      {FlowState::kTcpSynSent, kTimeouts.tcp_syn_ms},
      {FlowState::kTcpEstablished, kTimeouts.tcp_established_ms},
      {FlowState::kTcpClientFin, kTimeouts.tcp_fin_ms},
      {FlowState::kTcpPodFin, kTimeouts.tcp_fin_ms},
      {FlowState::kTcpClosing, kTimeouts.tcp_closing_ms},
      {FlowState::kUdp, kTimeouts.udp_ms},
  };
  const uint32_t t0 = 12'345;
  for (const Case& c : cases) {
    for (const bool by_reply : {false, true}) {
      SCOPED_TRACE(static_cast<int>(c.state) * 10 + by_reply);
      FlowTable t(64, kTimeouts);
      const FlowKey4 k = client_key(3);
      const FlowKey4 look = by_reply ? reply_key(k) : k;
      ASSERT_NE(insert_fwd(t, k, c.state, t0), nullptr);
      EXPECT_TRUE(t.find(look, t0 + c.timeout - 1)) << "alive 1 ms before";
      EXPECT_FALSE(t.find(look, t0 + c.timeout)) << "expired at the deadline";
      EXPECT_EQ(t.size(), 0u) << "the expired flow found is freed";
      EXPECT_FALSE(t.find(k, t0)) << "with both of its keys";
      EXPECT_FALSE(t.find(reply_key(k), t0));
    }
  }
}

TEST(FlowTable, TouchMovesSynSentToEstablishedOnAck) {
  FlowTable t(64, kTimeouts);
  Flow* f = insert_fwd(t, client_key(1), FlowState::kTcpSynSent, 0);
  ASSERT_NE(f, nullptr);
  (void)t.touch(*f, false, kSyn, 100);  // retransmitted SYN: still connecting
  EXPECT_EQ(f->state, FlowState::kTcpSynSent);
  EXPECT_EQ(f->expires, 100u + kTimeouts.tcp_syn_ms);
  (void)t.touch(*f, false, kAck, 200);  // the client's handshake ACK
  EXPECT_EQ(f->state, FlowState::kTcpEstablished);
  EXPECT_EQ(f->expires, 200u + kTimeouts.tcp_established_ms);
}

TEST(FlowTable, OnlyTheClientsHandshakeAckEstablishes) {
  FlowTable t(64, kTimeouts);
  const FlowKey4 k = client_key(1);
  Flow* f = insert_fwd(t, k, FlowState::kTcpSynSent, 0);
  ASSERT_NE(f, nullptr);
  (void)t.touch(*f, false, kSyn | kAck, 10);  // no simultaneous open through a VIP
  EXPECT_EQ(f->state, FlowState::kTcpSynSent);
  (void)t.touch(*f, true, kSyn | kAck, 20);  // the Pod accepted: half open, still short
  EXPECT_EQ(f->state, FlowState::kTcpSynReceived);
  EXPECT_EQ(f->expires, 20u + kTimeouts.tcp_syn_ms);
  (void)t.touch(*f, true, kSyn | kAck, 25);  // retransmitted SYN+ACK
  EXPECT_EQ(f->state, FlowState::kTcpSynReceived);
  (void)t.touch(*f, true, kAck, 27);  // the Pod's ACK completes nothing
  EXPECT_EQ(f->state, FlowState::kTcpSynReceived);
  (void)t.touch(*f, false, kAck, 30);  // the client's ACK completes the handshake
  EXPECT_EQ(f->state, FlowState::kTcpEstablished);
  EXPECT_EQ(f->expires, 30u + kTimeouts.tcp_established_ms);
}

TEST(FlowTable, AHalfOpenConnectionExpiresAtTheSynTimeout) {
  // A spoofed SYN that a listening Pod answers: no client ACK ever comes.
  FlowTable t(64, kTimeouts);
  const FlowKey4 k = client_key(1);
  Flow* f = insert_fwd(t, k, FlowState::kTcpSynSent, 0);
  ASSERT_NE(f, nullptr);
  (void)t.touch(*f, false, kSyn, 0);
  (void)t.touch(*f, true, kSyn | kAck, 5);
  EXPECT_TRUE(t.find(k, 5 + kTimeouts.tcp_syn_ms - 1));
  EXPECT_FALSE(t.find(k, 5 + kTimeouts.tcp_syn_ms));
}

TEST(FlowTable, SynOnEstablishedFlowKeepsItEstablished) {
  FlowTable t(64, kTimeouts);
  Flow* f = insert_fwd(t, client_key(1), FlowState::kTcpEstablished, 0);
  ASSERT_NE(f, nullptr);
  (void)t.touch(*f, false, kSyn, 50);
  EXPECT_EQ(f->state, FlowState::kTcpEstablished);
  EXPECT_EQ(f->expires, 50u + kTimeouts.tcp_established_ms);
}

TEST(FlowTable, RstFromEitherSideShortensTimeout) {
  for (const bool reverse : {false, true}) {
    for (uint8_t flags : {uint8_t(kRst), uint8_t(kRst | kAck), uint8_t(kFin | kRst)}) {
      SCOPED_TRACE(flags + 256 * reverse);
      FlowTable t(64, kTimeouts);
      const FlowKey4 k = client_key(1);
      Flow* f = insert_fwd(t, k, FlowState::kTcpEstablished, 0);
      ASSERT_NE(f, nullptr);
      (void)t.touch(*f, reverse, flags, 1'000);
      EXPECT_EQ(f->state, FlowState::kTcpClosing);
      EXPECT_EQ(f->expires, 1'000u + kTimeouts.tcp_closing_ms);
      EXPECT_TRUE(t.find(k, 1'000 + kTimeouts.tcp_closing_ms - 1));
      EXPECT_FALSE(t.find(k, 1'000 + kTimeouts.tcp_closing_ms));
    }
  }
}

// A FIN closes one direction only (RFC 9293 §3.6): the other may go on
// sending as long as it likes, so the connection keeps its record on the
// FIN timeout (IPVS's tcpfin, conntrack's FIN_WAIT) until the other side's
// FIN, and only then takes the short closing timeout.
TEST(FlowTable, AFinHalfClosesUntilTheOtherSidesFin) {
  for (const bool pod_first : {false, true}) {
    SCOPED_TRACE(pod_first ? "the Pod closes first" : "the client closes first");
    FlowTable t(64, kTimeouts);
    const FlowKey4 k = client_key(1);
    Flow* f = insert_fwd(t, k, FlowState::kTcpEstablished, 0);
    ASSERT_NE(f, nullptr);
    const FlowState half = pod_first ? FlowState::kTcpPodFin : FlowState::kTcpClientFin;
    EXPECT_FALSE(t.touch(*f, pod_first, kFin | kAck, 1'000));
    EXPECT_EQ(f->state, half);
    EXPECT_EQ(f->expires, 1'000u + kTimeouts.tcp_fin_ms);
    // The open direction's data, the closed one's ACKs, a retransmitted
    // FIN and a SYN (answered by a challenge ACK) each refresh it.
    const uint8_t flags[] = {kAck, kAck, kFin | kAck, kSyn};
    const bool from_pod[] = {!pod_first, pod_first, pod_first, false};
    uint32_t now = 1'000;
    for (size_t i = 0; i < std::size(flags); ++i) {
      now += kTimeouts.tcp_fin_ms - 1;
      ASSERT_TRUE(t.find(k, now)) << i;
      EXPECT_FALSE(t.touch(*f, from_pod[i], flags[i], now)) << i;
      EXPECT_EQ(f->state, half) << i;
      EXPECT_EQ(f->expires, now + kTimeouts.tcp_fin_ms) << i;
    }
    // The other side's FIN: both directions closed.
    EXPECT_FALSE(t.touch(*f, !pod_first, kFin | kAck, now));
    EXPECT_EQ(f->state, FlowState::kTcpClosing);
    EXPECT_EQ(f->expires, now + kTimeouts.tcp_closing_ms);
  }
}

TEST(FlowTable, ARstEndsAHalfClosedConnection) {
  for (const FlowState half : {FlowState::kTcpClientFin, FlowState::kTcpPodFin}) {
    for (const bool reverse : {false, true}) {
      FlowTable t(64, kTimeouts);
      Flow* f = insert_fwd(t, client_key(1), half, 0);
      ASSERT_NE(f, nullptr);
      EXPECT_FALSE(t.touch(*f, reverse, kRst, 10));
      EXPECT_EQ(f->state, FlowState::kTcpClosing);
      EXPECT_EQ(f->expires, 10u + kTimeouts.tcp_closing_ms);
    }
  }
}

// Only an open connection half-closes: a FIN before the handshake has
// completed ends it, so that SYN-then-FIN cannot hold a record for the
// FIN timeout.
TEST(FlowTable, AFinDuringTheHandshakeCloses) {
  for (const FlowState s : {FlowState::kTcpSynSent, FlowState::kTcpSynReceived}) {
    for (const bool reverse : {false, true}) {
      FlowTable t(64, kTimeouts);
      Flow* f = insert_fwd(t, client_key(1), s, 0);
      ASSERT_NE(f, nullptr);
      EXPECT_FALSE(t.touch(*f, reverse, kFin | kAck, 10));
      EXPECT_EQ(f->state, FlowState::kTcpClosing);
    }
  }
}

TEST(FlowTable, AckOnClosingFlowKeepsTheShortTimeout) {
  FlowTable t(64, kTimeouts);
  Flow* f = insert_fwd(t, client_key(1), FlowState::kTcpClosing, 0);
  ASSERT_NE(f, nullptr);
  (void)t.touch(*f, true, kAck, 500);
  EXPECT_EQ(f->state, FlowState::kTcpClosing);
  EXPECT_EQ(f->expires, 500u + kTimeouts.tcp_closing_ms);
}

TEST(FlowTable, AClientsSynOnAClosingFlowIsANewConnection) {
  FlowTable t(64, kTimeouts);
  Flow* f = insert_fwd(t, client_key(1), FlowState::kTcpEstablished, 0);
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(t.touch(*f, false, kFin | kAck, 10));
  EXPECT_FALSE(t.touch(*f, true, kFin | kAck, 10));
  ASSERT_EQ(f->state, FlowState::kTcpClosing);
  // The client reuses the port: a new connection, for the caller to place
  // (Worker::reopen()); the record is left as it was.
  EXPECT_TRUE(t.touch(*f, false, kSyn, 20));
  EXPECT_EQ(f->state, FlowState::kTcpClosing);
  EXPECT_EQ(f->expires, 10u + kTimeouts.tcp_closing_ms);
  // Not a SYN+ACK, nor the Pod's SYN, nor a SYN on an open connection.
  EXPECT_FALSE(t.touch(*f, false, kSyn | kAck, 21));
  EXPECT_EQ(f->state, FlowState::kTcpSynSent);
  EXPECT_FALSE(t.touch(*f, false, kAck, 30));
  EXPECT_EQ(f->state, FlowState::kTcpEstablished);
  EXPECT_FALSE(t.touch(*f, false, kSyn, 40));
  EXPECT_EQ(f->state, FlowState::kTcpEstablished);
}

TEST(FlowTable, UdpTouchRefreshesUdpTimeout) {
  FlowTable t(64, kTimeouts);
  Flow* f = insert_fwd(t, client_key(1, Proto::kUdp), FlowState::kUdp, 0);
  ASSERT_NE(f, nullptr);
  (void)t.touch(*f, true, kFin | kSyn | kRst, 7'000);  // flags mean nothing for UDP
  EXPECT_EQ(f->state, FlowState::kUdp);
  EXPECT_EQ(f->expires, 7'000u + kTimeouts.udp_ms);
}

TEST(FlowTable, ExpiryIsWrapSafe) {
  FlowTable t(64, kTimeouts);
  const uint32_t now = UINT32_MAX - 500;  // the deadline wraps past zero
  const FlowKey4 k = client_key(1, Proto::kUdp);
  Flow* f = insert_fwd(t, k, FlowState::kUdp, now);
  ASSERT_NE(f, nullptr);
  EXPECT_LT(f->expires, now);  // numerically smaller, logically later
  EXPECT_TRUE(t.find(k, now + 499));            // before the wrap
  EXPECT_TRUE(t.find(k, now + 501));            // after the wrap
  EXPECT_TRUE(t.find(k, now + kTimeouts.udp_ms - 1));
  EXPECT_EQ(t.expire_some(now + kTimeouts.udp_ms - 1, t.capacity()), 0u);
  EXPECT_FALSE(t.find(k, now + kTimeouts.udp_ms));

  static_assert(!is_expired(5, UINT32_MAX));  // 6 ms in the future
  static_assert(is_expired(UINT32_MAX, 5));   // 6 ms in the past
}

TEST(FlowTable, ExpireSomeFreesOnlyExpiredAndIsBounded) {
  FlowTable t(4096, kTimeouts);
  const uint32_t n = t.capacity();
  std::mt19937_64 rng(42);
  std::vector<FlowKey4> short_lived, long_lived;
  for (uint32_t i = 0; i < n; ++i) {
    FlowKey4 k = random_key(rng);
    bool is_short = i % 8 != 0;
    ASSERT_NE(insert_fwd(t, k, is_short ? FlowState::kTcpSynSent : FlowState::kTcpEstablished, 0),
              nullptr);
    (is_short ? short_lived : long_lived).push_back(k);
  }
  ASSERT_EQ(t.size(), n);
  const uint32_t now = kTimeouts.tcp_syn_ms;  // SynSent flows expire now

  // Budget 1: one record per call, so a full sweep takes n calls.
  uint32_t freed = 0;
  uint32_t half_sweep = 0;
  for (uint32_t call = 0; call < n; ++call) {
    uint32_t f = t.expire_some(now, 1);
    EXPECT_LE(f, 1u);
    freed += f;
    if (call + 1 == n / 2) half_sweep = freed;
  }
  EXPECT_EQ(freed, short_lived.size());
  EXPECT_GT(half_sweep, 0u);
  EXPECT_LT(half_sweep, short_lived.size());  // half the records, not all
  EXPECT_EQ(t.size(), long_lived.size());
  for (const FlowKey4& k : long_lived) EXPECT_TRUE(t.find(k, now));
  for (const FlowKey4& k : short_lived) EXPECT_FALSE(t.find(k, now));
  EXPECT_EQ(t.expire_some(now, n), 0u);
  EXPECT_EQ(t.expire_some(now, 0), 0u);
}

// The sweep runs to the end of the records and on from the first: every
// record once per round, wherever a call's budget ends.
TEST(FlowTable, ExpireSomeWrapsAndVisitsEachRecordOncePerRound) {
  FlowTable t(100, kTimeouts);
  const uint32_t n = t.capacity();
  ASSERT_EQ(n, 100u);
  std::vector<FlowKey4> keys;
  for (uint32_t i = 0; i < n; ++i) {  // the free list hands out records 0, 1, ...
    keys.push_back(client_key(i));
    ASSERT_NE(insert_fwd(t, keys.back(), FlowState::kTcpSynSent, 0), nullptr);
  }
  const uint32_t due = kTimeouts.tcp_syn_ms;  // every flow expires then
  EXPECT_EQ(t.expire_some(due - 1, 95), 0u);  // the cursor to record 95, nothing due
  EXPECT_EQ(t.expire_some(due, 7), 7u);       // records 95..99, 0 and 1
  EXPECT_EQ(t.size(), n - 7);
  for (uint32_t i = 0; i < n; ++i) {
    const bool swept = i >= 95 || i <= 1;
    EXPECT_EQ(static_cast<bool>(t.find(keys[i], due - 1)), !swept) << "record " << i;
  }
  // A budget above the capacity is one round: 2..99 and 0..1 once each.
  EXPECT_EQ(t.expire_some(due, 3 * n), n - 7);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.expire_some(due, n), 0u);

  // Refill (records come back in the order they were freed); the cursor is
  // where the round began, at record 2, and runs of 13 from there free 13
  // records each until one full round has freed all of them.
  for (uint32_t i = 0; i < n; ++i) ASSERT_NE(insert_fwd(t, keys[i], FlowState::kTcpSynSent, due), nullptr);
  for (uint32_t call = 0; call < 7; ++call) EXPECT_EQ(t.expire_some(2 * due, 13), 13u);
  EXPECT_EQ(t.expire_some(2 * due, 13), n - 7 * 13);
  EXPECT_EQ(t.size(), 0u);
}

// A SYN flood into a table mostly full of established connections: 96
// spare records, 32 new half-open flows every millisecond, each expiring
// after 1 ms.  The sweep (never called here) would need to pass 4,000
// records to find them; the half-open queue frees each at its deadline, so
// every SYN of 1,000 ms finds a record.
TEST(FlowTable, HalfOpenFlowsAreFreedAtTheirDeadlineWhereverTheSweepIs) {
  FlowTimeouts timeouts = kTimeouts;
  timeouts.tcp_syn_ms = 1;
  FlowTable t(4096, timeouts);
  const uint32_t established = t.capacity() - 96;
  for (uint32_t i = 0; i < established; ++i) {
    ASSERT_NE(insert_fwd(t, client_key(i), FlowState::kTcpEstablished, 0), nullptr);
  }
  uint32_t refused = 0, freed = 0, next = established;
  for (uint32_t now = 0; now < 1000; ++now) {
    freed += t.expire_half_open(now, 128);
    for (int i = 0; i < 32; ++i) refused += insert_fwd(t, client_key(next++), FlowState::kTcpSynSent, now) == nullptr;
    EXPECT_LE(t.size(), established + 64) << "at " << now << " ms: only the last two milliseconds' SYNs live";
  }
  EXPECT_EQ(refused, 0u);
  EXPECT_EQ(freed, 32u * 999);  // all but the last millisecond's
  for (uint32_t i = 0; i < established; i += 97) EXPECT_TRUE(t.find(client_key(i), 1000)) << i;
}

TEST(FlowTable, TheHalfOpenQueueFreesOnlyWhatIsStillExpired) {
  FlowTable t(64, kTimeouts);
  const uint32_t syn = kTimeouts.tcp_syn_ms;
  Flow* established = insert_fwd(t, client_key(1), FlowState::kTcpSynSent, 0);
  Flow* refreshed = insert_fwd(t, client_key(2), FlowState::kTcpSynSent, 0);
  Flow* reused = insert_fwd(t, client_key(3), FlowState::kTcpSynSent, 0);
  ASSERT_TRUE(established && refreshed && reused);
  ASSERT_NE(insert_fwd(t, client_key(4), FlowState::kTcpSynSent, 0), nullptr);  // stays half-open
  (void)t.touch(*established, false, kAck, 10);   // the handshake's last ACK
  (void)t.touch(*refreshed, false, kSyn, 10);     // a retransmitted SYN: due later
  t.erase(*reused);                         // its record, reused by a long-lived flow
  ASSERT_NE(insert_fwd(t, client_key(5), FlowState::kUdp, 10), nullptr);

  EXPECT_EQ(t.expire_half_open(syn - 1, 64), 0u) << "nothing is due before the SYN timeout";
  EXPECT_EQ(t.expire_half_open(syn, 64), 1u) << "only client 4's flow is still the half-open one";
  EXPECT_TRUE(t.find(client_key(1), syn));
  EXPECT_TRUE(t.find(client_key(2), syn));
  EXPECT_TRUE(t.find(client_key(5), syn));
  EXPECT_FALSE(t.find(client_key(4), syn));
  EXPECT_EQ(t.size(), 3u);
  // The retransmitted SYN's flow is left to lookups and the sweep.
  EXPECT_EQ(t.expire_half_open(syn + 10, 64), 0u);
  EXPECT_EQ(t.expire_some(syn + 10, t.capacity()), 1u);
}

// A record freed and taken again by another SYN is queued twice; when both
// entries fall due in one call, the second finds the record the first
// just freed, and must not free it again (that would put it on the free
// list twice and hand it to two connections).
TEST(FlowTable, ARecordQueuedTwiceIsFreedOnce) {
  FlowTable t(64, kTimeouts);
  const uint32_t syn = kTimeouts.tcp_syn_ms;
  Flow* first = insert_fwd(t, client_key(1), FlowState::kTcpSynSent, 0);
  ASSERT_NE(first, nullptr);
  t.erase(*first);
  Flow* again = insert_fwd(t, client_key(2), FlowState::kTcpSynSent, 0);
  ASSERT_EQ(again, first) << "the record just freed is taken first";
  EXPECT_EQ(t.expire_half_open(syn, 64), 1u);
  EXPECT_EQ(t.size(), 0u);
  // Every record can still be taken once, by its own connection.
  std::vector<Flow*> taken;
  for (uint32_t i = 0; i < t.capacity(); ++i) {
    Flow* f = insert_fwd(t, client_key(100 + i), FlowState::kUdp, syn);
    ASSERT_NE(f, nullptr) << i;
    taken.push_back(f);
  }
  std::sort(taken.begin(), taken.end());
  EXPECT_EQ(std::adjacent_find(taken.begin(), taken.end()), taken.end()) << "a record handed out twice";
  for (uint32_t i = 0; i < t.capacity(); ++i) EXPECT_TRUE(t.find(client_key(100 + i), syn)) << i;
}

// A flood whose half-open flows hold nearly every record: the queue has an
// entry for each record, so all of them are freed at their deadline and
// the next second's SYNs find the table empty.  (A queue for half the
// records, 2,048 entries, forgot the oldest 1,952 of these 4,000 and left
// them to the sweep.)
TEST(FlowTable, AFloodHoldingNearlyEveryRecordIsFreedAtItsDeadline) {
  FlowTable t(4096, kTimeouts);
  const uint32_t n = 4'000;
  for (uint32_t i = 0; i < n; ++i) ASSERT_NE(insert_fwd(t, client_key(i), FlowState::kTcpSynSent, 0), nullptr);
  EXPECT_EQ(t.expire_half_open(kTimeouts.tcp_syn_ms - 1, n), 0u);
  EXPECT_EQ(t.expire_half_open(kTimeouts.tcp_syn_ms, n), n);
  EXPECT_EQ(t.size(), 0u);
  for (uint32_t i = 0; i < n; ++i) {
    ASSERT_NE(insert_fwd(t, client_key(n + i), FlowState::kTcpSynSent, kTimeouts.tcp_syn_ms), nullptr) << i;
  }
}

// The queue fills only when records are queued twice (freed and taken
// again while their first entry waits); then it forgets its oldest
// entries, and the sweep frees those flows.
TEST(FlowTable, AFullHalfOpenQueueForgetsItsOldestAndTheSweepFreesThem) {
  FlowTable t(64, kTimeouts);
  std::vector<Flow*> flows;
  for (uint32_t i = 0; i < 64; ++i) flows.push_back(insert_fwd(t, client_key(i), FlowState::kTcpSynSent, 0));
  ASSERT_EQ(std::count(flows.begin(), flows.end(), nullptr), 0);
  // The newest 16 end early (an RST, say), and 16 new SYNs take their
  // records: 80 entries for a queue of 64, so the oldest 16 (clients
  // 0..15, still half-open) are forgotten.
  for (uint32_t i = 48; i < 64; ++i) t.erase(*flows[i]);
  for (uint32_t i = 64; i < 80; ++i) ASSERT_NE(insert_fwd(t, client_key(i), FlowState::kTcpSynSent, 1), nullptr);
  const uint32_t due = kTimeouts.tcp_syn_ms + 1;
  EXPECT_EQ(t.expire_half_open(due, 100), 64u - 16u);
  EXPECT_TRUE(t.find(client_key(0), due - 2)) << "a forgotten flow is still held";
  EXPECT_FALSE(t.find(client_key(16), due - 2));
  EXPECT_FALSE(t.find(client_key(64), due - 2));
  EXPECT_EQ(t.size(), 16u);
  EXPECT_EQ(t.expire_some(due, t.capacity()), 16u);
  EXPECT_EQ(t.size(), 0u);
}

// take_expired() counts every flow freed because it expired, wherever it
// was freed, and nothing else (an erase, a replaced flow).
TEST(FlowTable, EveryExpiredFlowIsCountedWhereverItIsFreed) {
  FlowTable t(64, kTimeouts);
  const uint32_t udp = kTimeouts.udp_ms;
  for (uint32_t i = 1; i <= 3; ++i) ASSERT_NE(insert_fwd(t, client_key(i, Proto::kUdp), FlowState::kUdp, 0), nullptr);
  ASSERT_NE(insert_fwd(t, client_key(4), FlowState::kTcpSynSent, 0), nullptr);
  Flow* erased = insert_fwd(t, client_key(5), FlowState::kTcpEstablished, 0);
  ASSERT_NE(erased, nullptr);
  t.erase(*erased);
  ASSERT_NE(insert_fwd(t, client_key(6), FlowState::kTcpEstablished, 0), nullptr);
  ASSERT_NE(insert_fwd(t, client_key(6), FlowState::kTcpEstablished, 1), nullptr);  // replaces it
  EXPECT_EQ(t.take_expired(), 0u) << "neither an erase nor a replacement is expiry";

  EXPECT_EQ(t.expire_half_open(kTimeouts.tcp_syn_ms, 64), 1u);
  EXPECT_EQ(t.take_expired(), 1u) << "the half-open queue's";
  EXPECT_FALSE(t.find(client_key(1, Proto::kUdp), udp)) << "expired: freed by the lookup";
  EXPECT_EQ(t.take_expired(), 1u) << "the lookup's";
  EXPECT_EQ(t.take_expired(), 0u) << "taken: counted once";
  EXPECT_EQ(t.expire_some(udp, t.capacity()), 2u);
  EXPECT_EQ(t.take_expired(), 2u) << "the sweep's";
  EXPECT_EQ(t.size(), 1u) << "client 6's flow";
}

TEST(FlowTable, FullTableRefusesInsertThenAcceptsAfterExpiry) {
  FlowTable t(8, kTimeouts);
  ASSERT_EQ(t.capacity(), 8u);
  for (uint32_t i = 0; i < 8; ++i) {
    FlowState s = i == 5 ? FlowState::kTcpSynSent : FlowState::kTcpEstablished;
    ASSERT_NE(insert_fwd(t, client_key(i), s, 0), nullptr) << i;
  }
  const FlowKey4 late = client_key(100);
  EXPECT_EQ(insert_fwd(t, late, FlowState::kTcpSynSent, 10), nullptr);
  EXPECT_EQ(t.size(), 8u);
  // Once the SynSent flow expires its record is reused, without a sweep first.
  Flow* f = insert_fwd(t, late, FlowState::kTcpSynSent, kTimeouts.tcp_syn_ms);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(t.size(), 8u);
  EXPECT_FALSE(t.find(client_key(5), kTimeouts.tcp_syn_ms));
  EXPECT_EQ(t.find(late, kTimeouts.tcp_syn_ms).flow, f);
}

// Fills a table to its last record with `capacity` connections of
// next_key(i); returns how many were refused.
template <typename KeyGen>
uint32_t refused_when_filled(uint32_t capacity, KeyGen next_key) {
  FlowTable t(capacity, kTimeouts);
  uint32_t refused = 0;
  for (uint32_t i = 0; i < t.capacity(); ++i) {
    if (insert_fwd(t, next_key(i), FlowState::kTcpEstablished, 0) == nullptr) ++refused;
  }
  EXPECT_EQ(t.size() + refused, t.capacity());
  EXPECT_TRUE(t.index_is_consistent());
  return refused;
}

// The index has 3 connections (6 keys) per 8-slot bucket.  Two choices per
// key alone leave a few keys with both buckets full when the last records
// are used (4 of 262,144 random keys here); the one cuckoo step that moves
// another key to its other bucket takes every one of them.
TEST(FlowTable, EveryRecordIsUsableWithRandomKeys) {
  std::mt19937_64 rng(7);
  EXPECT_EQ(refused_when_filled(1u << 18, [&](uint32_t) { return random_key(rng); }), 0u);
}

TEST(FlowTable, EveryRecordIsUsableWithClientPortSweeps) {
  // 4 clients sweeping ports to one VIP, all NATed to one Pod: the forward
  // keys differ in the port, and so do the reply keys.
  EXPECT_EQ(refused_when_filled(1u << 18, [](uint32_t i) { return client_key(i); }), 0u);
}

// The same with bucket counts of every kind: a power of two (where the
// bucket index is a plain bit field of the hash), an odd one, a small one.
TEST(FlowTable, EveryRecordIsUsableWhateverTheBucketCount) {
  for (uint32_t capacity : {3u << 16, 100'003u, 30'000u, 3'000u}) {
    SCOPED_TRACE(capacity);
    std::mt19937_64 rng(capacity);
    EXPECT_EQ(refused_when_filled(capacity, [&](uint32_t) { return random_key(rng); }), 0u);
    EXPECT_EQ(refused_when_filled(capacity, [](uint32_t i) { return client_key(i); }), 0u);
    // Many clients (the low bits) each with a few ports (the high bits).
    EXPECT_EQ(refused_when_filled(capacity,
                                  [](uint32_t i) {
                                    FlowKey4 k = client_key(0);
                                    k.src = Ip4::from_host(0x0a00'0000 + (i & 0xffff));
                                    k.sport = to_be16(static_cast<uint16_t>(1024 + (i >> 16)));
                                    return k;
                                  }),
              0u);
  }
}

// The first `n` client keys (client_key(0), ...) whose first bucket in `t`
// is client_key(0)'s.
std::vector<FlowKey4> keys_sharing_a_first_bucket(const FlowTable& t, size_t n) {
  const uint32_t first = t.probe(FlowTable::hash(client_key(0))).first;
  std::vector<FlowKey4> keys;
  for (uint32_t i = 0; keys.size() < n; ++i) {
    if (t.probe(FlowTable::hash(client_key(i))).first == first) keys.push_back(client_key(i));
  }
  return keys;
}

// A key goes to its first bucket while that has room, else to its second,
// and the first counts it as displaced there: a lookup reads the second
// bucket only then.  Nine keys sharing a first bucket: the ninth is
// displaced, found, and counted; erasing it, or a key of the first bucket
// so that it has room, keeps every other key found.
TEST(FlowTable, AKeyWhoseFirstBucketIsFullIsFoundInItsSecond) {
  FlowTable t(3'000, kTimeouts);
  const std::vector<FlowKey4> same_first = keys_sharing_a_first_bucket(t, 9);
  for (const FlowKey4& k : same_first) ASSERT_NE(insert_fwd(t, k, FlowState::kTcpEstablished, 0), nullptr);
  EXPECT_TRUE(t.index_is_consistent());
  for (const FlowKey4& k : same_first) EXPECT_TRUE(t.find(k, 1));
  // Its first bucket full, the last key's insert went to its second.
  t.erase(*t.find(same_first.front(), 1).flow);
  EXPECT_TRUE(t.index_is_consistent());
  for (size_t i = 1; i < same_first.size(); ++i) EXPECT_TRUE(t.find(same_first[i], 1)) << i;
  t.erase(*t.find(same_first.back(), 1).flow);
  EXPECT_TRUE(t.index_is_consistent());
  EXPECT_FALSE(t.find(same_first.back(), 1));
  for (size_t i = 1; i + 1 < same_first.size(); ++i) EXPECT_TRUE(t.find(same_first[i], 1)) << i;
}

// Half-open flows whose forward keys were displaced to their second
// buckets (their first bucket full): the half-open queue frees them by
// both keys there too, and the first bucket's displaced count goes back
// to zero.  Twelve keys share a first bucket: four established flows and
// eight half-open ones, four of which live in their second buckets.
TEST(FlowTable, TheHalfOpenQueueFreesFlowsWhoseKeysLiveInTheirSecondBuckets) {
  FlowTable t(3'000, kTimeouts);
  const std::vector<FlowKey4> same_first = keys_sharing_a_first_bucket(t, 12);
  for (size_t i = 0; i < same_first.size(); ++i) {
    const FlowState s = i < 4 ? FlowState::kTcpEstablished : FlowState::kTcpSynSent;
    ASSERT_NE(insert_fwd(t, same_first[i], s, 0), nullptr) << i;
  }
  ASSERT_EQ(t.displaced_keys(), 4u);
  const uint32_t syn = kTimeouts.tcp_syn_ms;
  EXPECT_EQ(t.expire_half_open(syn, 64), 8u);
  EXPECT_TRUE(t.index_is_consistent());
  EXPECT_EQ(t.displaced_keys(), 0u);
  EXPECT_EQ(t.size(), 4u);
  for (size_t i = 0; i < same_first.size(); ++i) {
    EXPECT_EQ(static_cast<bool>(t.find(same_first[i], syn)), i < 4) << i;
    EXPECT_EQ(static_cast<bool>(t.find(reply_key(same_first[i]), syn)), i < 4) << i;
  }
}

// A table kept full through rounds of connections ending every way one
// can (erased, replaced by a new connection holding one of its keys,
// expired and freed by a lookup, by the sweep, by the half-open queue or
// by an insert making room) and new ones taking their records: every
// live connection is found by both its keys, no ended one is, and the
// index stays consistent, each bucket's displaced count included.
TEST(FlowTable, AFullTableUnderChurnFindsEveryLiveConnectionByBothKeys) {
  FlowTable t(3'000, kTimeouts);
  std::mt19937_64 rng(21);
  struct Conn {
    FlowKey4 key;
    Ip4 pod;
    uint32_t dies;  // expires unless touched: SYN flows only
    bool ended;
  };
  std::vector<Conn> conns;
  auto reply = [](const Conn& c) { return reply_key(c.key, c.pod); };
  uint32_t now = 1;
  uint32_t full_rounds = 0;  // rounds whose inserts filled every record
  for (int round = 0; round < 300; ++round) {
    now += kTimeouts.tcp_syn_ms / 3;  // SYN flows of three rounds ago expire
    // New connections until the table is full (inserts then refused); a
    // few replace a live one by holding its forward key or its reply key.
    for (uint32_t n = 0; n < 1'000; ++n) {
      Conn c{random_key(rng), Ip4{static_cast<uint32_t>(rng())}, 0, false};
      const uint64_t r = rng() % 20;
      // Random keys never meet by chance: only the chosen one is replaced.
      Conn* replaced = nullptr;
      if (r < 2 && !conns.empty()) {
        Conn& old = conns[rng() % conns.size()];
        if (!old.ended && !is_expired(old.dies, now)) replaced = &old;
      }
      if (replaced != nullptr) {
        const Conn& old = *replaced;
        if (r == 0) {
          c.key = old.key;
        } else {
          c.pod = old.pod;  // same Pod, client and ports, another VIP
          c.key.src = old.key.src;
          c.key.sport = old.key.sport;
          c.key.proto = old.key.proto;
        }
      }
      const bool syn = rng() % 2 == 0;
      Flow* f = t.insert(c.key, c.pod, kPodPort, syn ? FlowState::kTcpSynSent : FlowState::kTcpEstablished, 1, now);
      if (f == nullptr) continue;  // full of live flows
      c.dies = syn ? now + kTimeouts.tcp_syn_ms : now + kTimeouts.tcp_established_ms;
      if (replaced != nullptr) replaced->ended = true;
      conns.push_back(c);
    }
    if (t.size() == t.capacity()) ++full_rounds;
    // Some end by erase; the rest of the expired ones by a lookup, the
    // sweep or the half-open queue.
    for (Conn& c : conns) {
      if (c.ended || rng() % 10 != 0) continue;
      if (const FlowHit h = t.find(c.key, now)) t.erase(*h.flow);
      c.ended = true;
    }
    t.expire_some(now, 200);
    t.expire_half_open(now, 100);
    ASSERT_TRUE(t.index_is_consistent()) << "round " << round;
    for (Conn& c : conns) {
      if (c.ended) continue;
      const FlowHit fwd = t.find(c.key, now);
      const FlowHit rev = t.find(reply(c), now);
      if (is_expired(c.dies, now)) {
        EXPECT_FALSE(fwd) << "round " << round;
        c.ended = true;
        continue;
      }
      ASSERT_TRUE(fwd) << "round " << round;
      EXPECT_FALSE(fwd.reverse);
      EXPECT_EQ(rev.flow, fwd.flow) << "round " << round;
      EXPECT_TRUE(rev.reverse);
    }
    std::erase_if(conns, [](const Conn& c) { return c.ended; });
    ASSERT_TRUE(t.index_is_consistent()) << "round " << round;
    EXPECT_EQ(t.size(), conns.size()) << "round " << round;
  }
  EXPECT_GT(full_rounds, 250u) << "the churn is meant to run at full load";
}

// A key's two buckets differ, and the second is no fixed function of the
// first (the hash is CRC, linear over GF(2)): keys sharing a first bucket
// spread their second ones over the table, and every bucket is a second
// choice about equally often.
TEST(FlowTable, SecondBucketsSpreadIndependentlyOfTheFirst) {
  for (uint32_t capacity : {8u, 3'000u, 3u << 10, 100'003u}) {
    SCOPED_TRACE(capacity);
    FlowTable t(capacity, kTimeouts);
    const uint32_t n = (capacity + 2) / 3;  // buckets
    std::vector<uint32_t> second(n);
    std::vector<std::vector<uint32_t>> seconds_of_first(n);
    const uint32_t keys = 64 * n;
    for (uint32_t i = 0; i < keys; ++i) {
      // A port sweep of 4 clients: CRC hashes in a small affine subspace.
      const FlowProbe p = t.probe(FlowTable::hash(client_key(i)));
      ASSERT_LT(p.first, n);
      ASSERT_LT(t.second_of(p), n);
      ASSERT_NE(p.first, t.second_of(p));
      ++second[t.second_of(p)];
      seconds_of_first[p.first].push_back(t.second_of(p));
    }
    // Every bucket a second choice 64 times on average: none far off.
    for (uint32_t b = 0; b < n; ++b) {
      EXPECT_GT(second[b], 64u / 3) << b;
      EXPECT_LT(second[b], 64u * 3) << b;
    }
    // Keys sharing a first bucket: mostly distinct second buckets (a
    // paired table would give each first bucket one second bucket).
    uint64_t distinct = 0, total = 0;
    for (auto& v : seconds_of_first) {
      std::sort(v.begin(), v.end());
      distinct += static_cast<uint64_t>(std::unique(v.begin(), v.end()) - v.begin());
      total += v.size();
    }
    const double expected = n < 64 ? n - 1.0 : 0.6 * static_cast<double>(total);
    EXPECT_GE(static_cast<double>(distinct), expected * 0.9) << distinct << " of " << total;
  }
}

TEST(FlowTable, AConnectionCostsAtMost64Bytes) {
  for (uint32_t n : {1'000u, 100'000u, 1'000'000u, 10'000'000u}) {
    SCOPED_TRACE(n);
    const double per = static_cast<double>(FlowTable::memory_bytes(n)) / n;
    EXPECT_LE(per, 64.0);
    EXPECT_GE(per, 61.0);  // 32-byte record + 21.3 bytes of index + 8 of the half-open queue
  }
}

TEST(FlowTable, EraseFreesTheRecordAndBothKeys) {
  FlowTable t(8, kTimeouts);
  std::vector<Flow*> flows;
  for (uint32_t i = 0; i < 8; ++i) {
    flows.push_back(insert_fwd(t, client_key(i), FlowState::kTcpEstablished, 0));
    ASSERT_NE(flows.back(), nullptr);
  }
  ASSERT_EQ(insert_fwd(t, client_key(100), FlowState::kTcpSynSent, 1), nullptr);
  t.erase(*flows[3]);
  EXPECT_FALSE(t.find(client_key(3), 1));
  EXPECT_FALSE(t.find(reply_key(client_key(3)), 1));
  EXPECT_EQ(t.size(), 7u);
  EXPECT_EQ(insert_fwd(t, client_key(100), FlowState::kTcpSynSent, 1), flows[3]);
}

TEST(FlowTable, SizeTracksConnections) {
  FlowTable t(1024, kTimeouts);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.capacity(), 1024u);
  Flow* a = insert_fwd(t, client_key(1), FlowState::kTcpEstablished, 0);
  ASSERT_NE(insert_fwd(t, client_key(2), FlowState::kTcpSynSent, 0), nullptr);
  ASSERT_NE(insert_fwd(t, client_key(3), FlowState::kTcpSynSent, 0), nullptr);
  ASSERT_NE(insert_fwd(t, client_key(4), FlowState::kUdp, 0), nullptr);
  EXPECT_EQ(t.size(), 4u);
  ASSERT_NE(a, nullptr);
  t.erase(*a);
  EXPECT_EQ(t.size(), 3u);
  t.erase(*a);  // erasing a free record changes nothing
  EXPECT_EQ(t.size(), 3u);
  const uint32_t later = kTimeouts.tcp_syn_ms;
  EXPECT_FALSE(t.find(client_key(2), later));  // expired: freed on lookup
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.expire_some(later, t.capacity()), 1u);  // key 3
  EXPECT_EQ(t.size(), 1u);

  uint32_t visited = 0;
  t.for_each_live(later, [&](const Flow& f) {
    ++visited;
    EXPECT_EQ(f.forward_key(), client_key(4));
  });
  EXPECT_EQ(visited, t.size());
}

// Per-endpoint stats: a connection's end is counted once on its stats
// slot, whatever ends it.
TEST(FlowTable, ConnectionEndsAreCountedOnTheirSlot) {
  FlowTable t(1024, kTimeouts);
  std::vector<TrafficCounters> slots(8);
  t.count_ends_in(slots.data());
  auto fwd = [&](uint32_t i, uint16_t slot, uint32_t now) {
    return t.insert(client_key(i), kPod, kPodPort, FlowState::kTcpSynSent, 1, now, slot);
  };
  Flow* erased = fwd(1, 3, 0);
  ASSERT_NE(erased, nullptr);
  ASSERT_NE(fwd(3, 5, 0), nullptr);  // expires, freed by expire_some
  ASSERT_NE(fwd(4, 6, 0), nullptr);  // expires, freed by a lookup of its reply key
  ASSERT_NE(fwd(5, 7, 0), nullptr);  // expires, then replaced by an insert

  t.erase(*erased);
  EXPECT_EQ(slots[3].flows_ended.get(), 1u) << "erase ends a connection";
  const uint32_t later = kTimeouts.tcp_syn_ms;
  EXPECT_FALSE(t.find(reply_key(client_key(4)), later));
  EXPECT_EQ(slots[6].flows_ended.get(), 1u) << "an expired flow freed by lookup";
  ASSERT_NE(fwd(5, 2, later), nullptr);
  EXPECT_EQ(slots[7].flows_ended.get(), 1u) << "an expired flow replaced";
  EXPECT_EQ(slots[2].flows_ended.get(), 0u);
  t.expire_some(later, t.capacity());
  EXPECT_EQ(slots[5].flows_ended.get(), 1u) << "an expired flow freed by expire_some";
  EXPECT_EQ(slots[3].flows_ended.get(), 1u) << "counted once";
}

// A flow keeps its state where a FlowKey4 has its pad: lookups must still
// match on the key alone, whatever state the flow is in.
TEST(FlowTable, LookupIgnoresTheFlowsStateBytes) {
  FlowTable t(1024, kTimeouts);
  const FlowKey4 k = client_key(9);
  Flow* f = t.insert(k, kPod, kPodPort, FlowState::kTcpSynSent, 1, 0, 4);
  ASSERT_NE(f, nullptr);
  (void)t.touch(*f, true, kSyn | kAck, 0);
  (void)t.touch(*f, false, kAck, 0);
  ASSERT_EQ(f->state, FlowState::kTcpEstablished);
  EXPECT_EQ(t.find(k, 1).flow, f);
  EXPECT_EQ(f->forward_key(), k);
  EXPECT_EQ(f->stats_slot, 4);
  FlowKey4 other = k;
  other.proto = Proto::kUdp;  // byte 12 is still key
  EXPECT_FALSE(t.find(other, 1));
}

// Tags are 16-bit: keys whose hashes share a tag must still be told apart
// by the record's full key.  Many keys in a tiny index share tags.
TEST(FlowTable, SharedTagsAreToldApartByTheFullKey) {
  FlowTable t(8, kTimeouts);  // 3 buckets: 16 keys in 24 slots
  std::mt19937_64 rng(3);
  std::vector<FlowKey4> keys;
  for (int i = 0; i < 8; ++i) {
    keys.push_back(random_key(rng));
    ASSERT_NE(insert_fwd(t, keys.back(), FlowState::kTcpEstablished, 0), nullptr);
  }
  for (const FlowKey4& k : keys) {
    const FlowHit h = t.find(k, 1);
    ASSERT_TRUE(h);
    EXPECT_EQ(h.flow->forward_key(), k);
  }
  for (int i = 0; i < 10'000; ++i) EXPECT_FALSE(t.find(random_key(rng), 1));
}

// The hash is CRC32-C of the key's words (two for IPv4, five for IPv6),
// whichever pieces it is fed in and whichever way it is computed (the
// SSE4.2 instruction, or DPDK's run-time choice).
TEST(FlowTable, HashIsCrc32cOfTheKey) {
  std::mt19937_64 rng(11);
  const auto crc_of_words = [](const void* key, size_t words) {
    uint32_t h = 0x9e37'79b9;
    for (size_t i = 0; i < words; ++i) {
      uint64_t w;
      std::memcpy(&w, static_cast<const unsigned char*>(key) + 8 * i, 8);
      h = rte_hash_crc_8byte(w, h);
    }
    return h;
  };
  for (int i = 0; i < 1000; ++i) {
    const FlowKey4 k = random_key(rng);
    ASSERT_EQ(FlowTable::hash(k), crc_of_words(&k, 2));
    const FlowKey6 k6 = random_key6(rng);
    ASSERT_EQ(FlowTable6::hash(k6), crc_of_words(&k6, 5));
  }
}

// free_flow() hashes a flow's keys from its record (key_hash_of): the
// same hashes as the keys built whole, whatever the state and slot bytes.
TEST(FlowTable, AFlowsKeysHashFromItsRecordAsTheKeysThemselves) {
  std::mt19937_64 rng(12);
  for (int i = 0; i < 1000; ++i) {
    const Flow f = random_flow_with_key<Flow>(random_key(rng), rng);
    ASSERT_EQ(key_hash_of(f, false), FlowTable::hash(f.forward_key()));
    ASSERT_EQ(key_hash_of(f, true), FlowTable::hash(f.reverse_key()));
  }
}

TEST(FlowTable, AnIpv6FlowsKeysHashFromItsRecordAsTheKeysThemselves) {
  std::mt19937_64 rng(13);
  for (int i = 0; i < 1000; ++i) {
    const Flow6 f = random_flow_with_key<Flow6>(random_key6(rng), rng);
    ASSERT_EQ(key_hash_of(f, false), FlowTable6::hash(f.forward_key()));
    ASSERT_EQ(key_hash_of(f, true), FlowTable6::hash(f.reverse_key()));
    ASSERT_EQ(reverse_key_hash(f.pod, f.client, f.pod_port, f.client_port, f.proto),
              FlowTable6::hash(f.reverse_key()));
  }
}

TEST(FlowTable, ConstructorRejectsUnrepresentableSettings) {
  EXPECT_THROW(FlowTable(0, kTimeouts), std::invalid_argument);
  EXPECT_THROW(FlowTable(FlowTable::kMaxCapacity + 1, kTimeouts), std::invalid_argument);
  FlowTimeouts too_long = kTimeouts;
  too_long.tcp_established_ms = FlowTable::kMaxTimeoutMs + 1;
  EXPECT_THROW(FlowTable(64, too_long), std::invalid_argument);
  FlowTimeouts zero = kTimeouts;
  zero.udp_ms = 0;
  EXPECT_THROW(FlowTable(64, zero), std::invalid_argument);
}

}  // namespace
}  // namespace podgate::dp
