// Tier-2 tests of the worker's IPv6 path (issue 11) on net_ring ports, as
// worker_golden_test.cpp does for IPv4: every expected frame is built by
// packet_builder6.hpp from the RFCs with checksums computed in full, and
// compared byte for byte.  The services are dual-stack: each IPv4 service
// of the base config gains an IPv6 cluster IP and IPv6 endpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "control/publish/punt_handler.hpp"
#include "dataplane/packet6.hpp"
#include "tests/dataplane/packet_builder6.hpp"
#include "tests/dataplane/test_env.hpp"

namespace podgate::test {
namespace {


using dp::DropReason;
using dp::PuntKind;
using dp::WorkerCounters;
using dp::kIcmp6DestinationUnreachable;
using dp::kIcmp6PacketTooBig;
using dp::kIcmp6TimeExceeded;

const MacAddr kUplinkMac = port_mac(kUplink);
const MacAddr kPodsMac = port_mac(kPods);
const MacAddr kClientMac = mac("02:00:00:00:02:02");
const MacAddr kGatewayMac = mac("02:00:00:00:02:fe");

const Ip6 kUplinkIp6 = ip6("fd00:2::1");
const Ip6 kPodsIp6 = ip6("fd00:17::1");
const Ip6 kClient6 = ip6("fd00:2::2");
const Ip6 kGateway6 = ip6("fd00:2::fe");
const Ip6 kFarClient6 = ip6("2001:db8:51::7");  // behind the gateway
const Ip6 kVip6 = ip6("fd00:96::20");           // my-app, TCP 80 -> 8080
const Ip6 kUdpVip6 = ip6("fd00:96::30");        // echo-udp, UDP 5353
const Ip6 kPod6a = ip6("fd00:17::10");
const Ip6 kPod6b = ip6("fd00:17::11");
const Ip6 kUnresolvedPod6 = ip6("fd00:17::20");
const Ip6 kUnresolvedVip6 = ip6("fd00:96::50");
const Ip4 kVip4 = ip("10.96.0.20");
const Ip4 kClient4 = ip("192.0.2.2");

MacAddr pod_mac(const Ip6& pod) {
  MacAddr m = mac("02:00:00:00:16:00");
  m.bytes[5] = pod.bytes[15];
  return m;
}

constexpr const char* kConfig = R"(
[[services]]
namespace = "default"
name = "my-app"
cluster_ip = "10.96.0.20"
ports = [ { port = 80, target_port = 8080 } ]
endpoints = [ { ip = "172.17.0.10" } ]

[[services]]
namespace = "default"
name = "echo-udp"
cluster_ip = "10.96.0.30"
ports = [ { port = 5353, target_port = 5353, protocol = "UDP" } ]
endpoints = [ { ip = "172.17.0.10" } ]

[[services]]
namespace = "default"
name = "unresolved"
cluster_ip = "10.96.0.50"
ports = [ { port = 80, target_port = 8080 } ]
endpoints = []
)";

ctl::EndpointConfig endpoint(const Ip6& ip) {
  ctl::EndpointConfig e;
  e.ip = dp::IpAddr::v6(ip);
  return e;
}

// The IPv6 half of the world, added to the parsed config.
void dual_stack(ctl::Config& c) {
  c.ports[kUplink].address6 = dp::Prefix6{kUplinkIp6, 64};
  c.ports[kPods].address6 = dp::Prefix6{kPodsIp6, 64};
  c.routes6.push_back(ctl::Route6Config{*dp::parse_prefix6("2001:db8:51::/48"), kGateway6});
  std::vector<ctl::ServiceConfig> services(c.services.begin(), c.services.end());
  for (ctl::ServiceConfig& s : services) {
    if (s.name == "my-app") {
      s.secondary_cluster_ip = dp::IpAddr::v6(kVip6);
      s.endpoints.push_back(endpoint(kPod6a));
      s.endpoints.push_back(endpoint(kPod6b));
    } else if (s.name == "echo-udp") {
      s.secondary_cluster_ip = dp::IpAddr::v6(kUdpVip6);
      s.endpoints.push_back(endpoint(kPod6a));
    } else if (s.name == "unresolved") {
      s.secondary_cluster_ip = dp::IpAddr::v6(kUnresolvedVip6);
      s.endpoints.push_back(endpoint(kUnresolvedPod6));
    }
  }
  c.services = ctl::ServiceList(std::move(services));
}

// `workers` > 1: worker 0 polls the uplink, worker 1 the Pods' port, so
// that one direction of every connection is handed off; or, `rss_steered`,
// each worker polls its queue of each port, which a NIC with RSS on the
// client's fields fills (test_env's rss_steered).
std::unique_ptr<Dataplane> make_dataplane(uint32_t workers = 1, bool rss_steered = false) {
  DataplaneSetup s;
  s.config_toml = std::string(kRingPortsToml) + kConfig;
  s.amend = dual_stack;
  s.workers = workers;
  s.rss_steered = rss_steered;
  if (workers > 1 && !rss_steered) s.rx = {{kUplink}, {kPods}};
  auto d = std::make_unique<Dataplane>(std::move(s));
  d->neighbors().set(kClient4, kClientMac);
  d->neighbors().set(ip("172.17.0.10"), mac("02:00:00:00:11:10"));
  d->neighbors6().set(kClient6, kClientMac);
  d->neighbors6().set(kGateway6, kGatewayMac);
  for (const Ip6& pod : {kPod6a, kPod6b}) d->neighbors6().set(pod, pod_mac(pod));
  return d;
}

// --- what goes in, what must come out ------------------------------------------

Bytes syn_to(const Ip6& vip, uint16_t sport, uint8_t hop_limit = 64, const std::vector<Extension>& ext = {}) {
  return tcp6_frame({kUplinkMac, kClientMac}, {kClient6, vip, hop_limit}, Tcp{sport, 80, kSyn}, {}, ext);
}
// The client's SYN after DNAT to `pod`, as the Pods' port sends it.
Bytes syn_dnat(const Ip6& pod, uint16_t sport, uint8_t hop_limit = 63, const std::vector<Extension>& ext = {}) {
  return tcp6_frame({pod_mac(pod), kPodsMac}, {kClient6, pod, hop_limit}, Tcp{sport, 8080, kSyn}, {}, ext);
}
Bytes synack_from(const Ip6& pod, uint16_t client_port) {
  return tcp6_frame({kPodsMac, pod_mac(pod)}, {pod, kClient6}, Tcp{8080, client_port, kSyn | kAck, 5000, 1001});
}
Bytes synack_unnat(uint16_t client_port) {
  return tcp6_frame({kClientMac, kUplinkMac}, {kVip6, kClient6, 63}, Tcp{80, client_port, kSyn | kAck, 5000, 1001});
}

// Sends one frame; expects it dropped for `why`, nothing sent or punted.
void expect_dropped(Dataplane& d, size_t port, const Bytes& frame, DropReason why) {
  const uint64_t before = d.drops(why), total = d.drops_total();
  const auto out = d.send(port, frame);
  EXPECT_TRUE(out.empty()) << "sent: " << (out.empty() ? "" : describe(out[0].frame));
  EXPECT_TRUE(d.take_punted().empty());
  EXPECT_EQ(d.drops(why) - before, 1u) << "expected one " << dp::drop_reason_name(why) << "; drops: "
                                       << d.drop_summary();
  EXPECT_EQ(d.drops_total() - total, 1u) << d.drop_summary();
}

// Sends one frame; expects exactly one frame out on `port`, returned.
Bytes expect_one(Dataplane& d, size_t in, const Bytes& frame, size_t port) {
  const auto out = d.send(in, frame);
  EXPECT_EQ(out.size(), 1u) << "drops: " << d.drop_summary();
  if (out.size() != 1) return {};
  EXPECT_EQ(out[0].port, port);
  return out[0].frame;
}

// --- NAT both ways -------------------------------------------------------------

TEST(WorkerIpv6, TcpToAnIpv6VipIsNatedToAnIpv6PodAndTheReplyBack) {
  auto d = make_dataplane();
  const Bytes out = expect_one(*d, kUplink, syn_to(kVip6, 40000), kPods);
  ASSERT_FALSE(out.empty());
  const Ip6 pod = get_ip6(out, kEthLen + 24);
  ASSERT_TRUE(pod == kPod6a || pod == kPod6b) << dp::to_string(pod);
  // Destination and port rewritten, hop limit decremented, the TCP
  // checksum exactly a full recomputation's (the builder's).
  EXPECT_TRUE(frames_equal(out, syn_dnat(pod, 40000)));
  EXPECT_TRUE(frames_equal(expect_one(*d, kPods, synack_from(pod, 40000), kUplink), synack_unnat(40000)));
  EXPECT_EQ(d->worker(0).flows6().size(), 1u);
  EXPECT_EQ(d->worker(0).flows().size(), 0u);
}

// The stats slots count IPv6 endpoints as IPv4 ones: each packet on the
// endpoint its flow is pinned to, in its direction; the stateless reply too.
TEST(WorkerIpv6, TrafficIsCountedPerIpv6Endpoint) {
  auto d = make_dataplane();
  const dp::ServiceKey6 web{kVip6, dp::to_be16(80), dp::Proto::kTcp, 0};
  auto at = [&](const Ip6& pod) { return d->slots().endpoint(web, dp::Backend6{pod, dp::to_be16(8080), 0}); };
  const Bytes syn = syn_to(kVip6, 40000);
  const Bytes out = expect_one(*d, kUplink, syn, kPods);
  ASSERT_FALSE(out.empty());
  const Ip6 pod = get_ip6(out, kEthLen + 24);
  const Ip6 other = pod == kPod6a ? kPod6b : kPod6a;
  ASSERT_TRUE(at(pod).has_value());
  EXPECT_EQ(at(pod)->flows_created, 1u);
  EXPECT_EQ(at(pod)->packets_in, 1u);
  EXPECT_EQ(at(pod)->bytes_in, syn.size());
  EXPECT_EQ(at(other)->packets_in, 0u);
  const Bytes reply = synack_from(pod, 40000);
  ASSERT_FALSE(expect_one(*d, kPods, reply, kUplink).empty());
  EXPECT_EQ(at(pod)->packets_out, 1u);
  EXPECT_EQ(at(pod)->bytes_out, reply.size());
  ASSERT_FALSE(expect_one(*d, kPods, synack_from(other, 40001), kUplink).empty());  // no flow: stateless
  EXPECT_EQ(at(other)->packets_out, 1u);
  EXPECT_EQ(d->slots().service(web).packets_in, 1u);
  EXPECT_EQ(d->slots().service(web).packets_out, 2u);
  const dp::ServiceKey web4{kVip4, dp::to_be16(80), dp::Proto::kTcp, 0};
  EXPECT_EQ(d->slots().service(web4).packets_in, 0u) << "the IPv4 VIP's port counts apart";
}

TEST(WorkerIpv6, AConnectionStaysOnItsPodAndConnectionsSpreadOverThePods) {
  auto d = make_dataplane();
  std::set<std::string> reached;
  for (uint16_t port = 41000; port < 41064; ++port) {
    const Bytes first = expect_one(*d, kUplink, syn_to(kVip6, port), kPods);
    ASSERT_FALSE(first.empty());
    const Ip6 pod = get_ip6(first, kEthLen + 24);
    reached.insert(dp::to_string(pod));
    // The client's next packet (ACK) goes to the same Pod.
    const Bytes ack = tcp6_frame({kUplinkMac, kClientMac}, {kClient6, kVip6}, Tcp{port, 80, kAck, 1001, 5001});
    const Bytes again = expect_one(*d, kUplink, ack, kPods);
    EXPECT_EQ(get_ip6(again, kEthLen + 24), pod);
  }
  EXPECT_EQ(reached, (std::set<std::string>{"fd00:17::10", "fd00:17::11"}));
}

// Opens 64 IPv6 connections from kClient6 through two workers, the SYNs
// through `send` on the uplink, and answers them, the SYN+ACKs through
// `send` on the Pods' port.  Each packet must leave translated, from the
// queue of its connection's owner (the Toeplitz hash of the client's
// address and port), and every reply find its flow, pinned once, in its
// owner's table.
template <class Send>
void open_and_answer_on_their_owner(Dataplane& d, uint16_t first_port, Send send) {
  const auto owner = [&d](uint16_t port) { return d.worker(0).ownership().owner(kClient6, dp::to_be16(port)); };
  std::vector<Bytes> syns;
  for (uint16_t port = first_port; port < first_port + 64; ++port) syns.push_back(syn_to(kVip6, port));
  std::map<uint16_t, Ip6> pod_of;
  for (const Output& o : send(kUplink, syns)) {
    ASSERT_EQ(o.port, kPods);
    const uint16_t port = get16(o.frame, kEthLen + kIp6Len);
    const Ip6 pod = get_ip6(o.frame, kEthLen + 24);
    EXPECT_TRUE(frames_equal(o.frame, syn_dnat(pod, port)));
    EXPECT_EQ(o.queue, owner(port)) << "SYN of client port " << port;
    pod_of[port] = pod;
  }
  ASSERT_EQ(pod_of.size(), syns.size()) << "drops: " << d.drop_summary();
  std::vector<Bytes> replies;
  for (const auto& [port, pod] : pod_of) replies.push_back(synack_from(pod, port));
  size_t replies_out = 0;
  for (const Output& o : send(kPods, replies)) {
    ASSERT_EQ(o.port, kUplink);
    const uint16_t port = get16(o.frame, kEthLen + kIp6Len + 2);
    EXPECT_TRUE(frames_equal(o.frame, synack_unnat(port)));
    EXPECT_EQ(o.queue, owner(port)) << "reply of client port " << port;
    ++replies_out;
  }
  EXPECT_EQ(replies_out, replies.size());
  EXPECT_EQ(d.total(&WorkerCounters::replies_stateless), 0u) << "every reply must reach its flow's owner";
  EXPECT_EQ(d.total(&WorkerCounters::flows_created), syns.size());
  size_t owned_by_1 = 0;
  for (const auto& [port, pod] : pod_of) owned_by_1 += owner(port);
  EXPECT_EQ(d.worker(1).flows6().size(), owned_by_1);
  EXPECT_EQ(d.worker(0).flows6().size(), syns.size() - owned_by_1);
  EXPECT_EQ(d.drops_total(), 0u) << d.drop_summary();
}

TEST(WorkerIpv6, TwoWorkersHandBothDirectionsToTheFlowOwner) {
  // Worker 0 polls the uplink, worker 1 the Pods' port: each connection's
  // SYN or its reply crosses a handoff ring to the owner, which pins the
  // flow and translates both.
  auto d = make_dataplane(2);
  open_and_answer_on_their_owner(*d, 42000, [&d](size_t in, const std::vector<Bytes>& f) { return d->send(in, f); });
  EXPECT_GT(d->worker(0).counters().handoff_out.get(), 0u) << "no SYN crossed to worker 1";
  EXPECT_GT(d->worker(1).counters().handoff_out.get(), 0u) << "no reply crossed to worker 0";
}

// The same through two workers whose ports hash the client's fields, each
// packet put on the queue of its owner (`astray`: of the worker that does
// not own it).
void steered_ipv6_connections(bool astray) {
  auto d = make_dataplane(2, true);
  std::set<uint16_t> queues;
  for (uint16_t port = 43000; port < 43064; ++port) queues.insert(d->rss_queue(kUplink, syn_to(kVip6, port)));
  ASSERT_EQ(queues.size(), 2u) << "the connections must spread over both workers";
  open_and_answer_on_their_owner(*d, 43000, [&d, astray](size_t in, const std::vector<Bytes>& frames) {
    for (const Bytes& f : frames) {
      const uint16_t q = d->rss_queue(in, f);
      EXPECT_TRUE(d->port(in).inject(f, static_cast<uint16_t>(astray ? 1 - q : q)));
    }
    d->poll_until_idle();
    return d->collect();
  });
  // Steered, nothing crosses; astray, each SYN and each reply once.
  EXPECT_EQ(d->total(&WorkerCounters::handoff_out), astray ? 2 * 64u : 0u);
}

TEST(WorkerIpv6, RssSteeredConnectionsReachTheirOwnerWithNoHandoff) { steered_ipv6_connections(false); }

TEST(WorkerIpv6, APacketAClientRssDeviceSpreadOtherwiseStillReachesItsOwner) {
  // A worker takes an IPv6 TCP/UDP packet on its client-RSS queue as its
  // own (RxQueue::client_rss6): one a device put on the wrong queue
  // misses there and is handed on.
  steered_ipv6_connections(true);
}

TEST(WorkerIpv6, UdpIsNatedWithItsMandatoryChecksumUpdated) {
  auto d = make_dataplane();
  const Bytes query = udp6_frame({kUplinkMac, kClientMac}, {kClient6, kUdpVip6}, Udp{33000, 5353}, {1, 2, 3, 4, 5});
  const Bytes want = udp6_frame({pod_mac(kPod6a), kPodsMac}, {kClient6, kPod6a, 63}, Udp{33000, 5353}, {1, 2, 3, 4, 5});
  EXPECT_TRUE(frames_equal(expect_one(*d, kUplink, query, kPods), want));
  const Bytes answer = udp6_frame({kPodsMac, pod_mac(kPod6a)}, {kPod6a, kClient6}, Udp{5353, 33000}, {9, 9});
  const Bytes back = udp6_frame({kClientMac, kUplinkMac}, {kUdpVip6, kClient6, 63}, Udp{5353, 33000}, {9, 9});
  EXPECT_TRUE(frames_equal(expect_one(*d, kPods, answer, kUplink), back));
}

TEST(WorkerIpv6, EachFamilysVipForwardsToItsOwnFamilyOnly) {
  auto d = make_dataplane();
  // The same service's IPv4 VIP goes to its IPv4 endpoint: no NAT46.
  const Bytes v4 = tcp_frame({kUplinkMac, kClientMac}, {kClient4, kVip4}, Tcp{40000, 80, kSyn});
  const Bytes out = expect_one(*d, kUplink, v4, kPods);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(ether_type(out), kEtherIpv4);
  EXPECT_EQ(ip_dst(out), ip("172.17.0.10"));
}

// A burst of one family runs the burst loop without a per-packet dispatch,
// a burst of both families the dispatching one: either way each packet is
// forwarded as it would be alone, and the replies of a burst of IPv6 flows
// find their connections.
TEST(WorkerIpv6, ABurstOfEitherFamilyOrBothForwardsEachPacketAsItWouldAlone) {
  const Bytes v4 = tcp_frame({kUplinkMac, kClientMac}, {kClient4, kVip4}, Tcp{41001, 80, kSyn});
  const std::vector<Bytes> mixed = {syn_to(kVip6, 41000), v4, syn_to(kVip6, 41002)};
  auto alone = make_dataplane();
  std::vector<Bytes> expected;
  for (const Bytes& f : mixed) expected.push_back(expect_one(*alone, kUplink, f, kPods));
  auto together = make_dataplane();
  const auto out = together->send(kUplink, mixed);
  ASSERT_EQ(out.size(), mixed.size()) << together->drop_summary();
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].port, kPods);
    EXPECT_TRUE(frames_equal(out[i].frame, expected[i])) << i;
  }
  const Ip6 pod0 = get_ip6(expected[0], kEthLen + 24), pod2 = get_ip6(expected[2], kEthLen + 24);
  const auto back = together->send(kPods, {synack_from(pod0, 41000), synack_from(pod2, 41002)});
  ASSERT_EQ(back.size(), 2u) << together->drop_summary();
  EXPECT_TRUE(frames_equal(back[0].frame, synack_unnat(41000)));
  EXPECT_TRUE(frames_equal(back[1].frame, synack_unnat(41002)));
  EXPECT_EQ(together->total(&WorkerCounters::replies_stateless), 0u);
  EXPECT_EQ(together->worker(0).flows6().size(), 2u);
}

TEST(WorkerIpv6, AFarClientsReplyLeavesThroughItsRoutesGateway) {
  auto d = make_dataplane();
  const Bytes syn = tcp6_frame({kUplinkMac, kGatewayMac}, {kFarClient6, kVip6}, Tcp{40000, 80, kSyn});
  const Bytes out = expect_one(*d, kUplink, syn, kPods);
  ASSERT_FALSE(out.empty());
  const Ip6 pod = get_ip6(out, kEthLen + 24);
  const Bytes reply = tcp6_frame({kPodsMac, pod_mac(pod)}, {pod, kFarClient6}, Tcp{8080, 40000, kSyn | kAck});
  const Bytes back = expect_one(*d, kPods, reply, kUplink);
  EXPECT_TRUE(frames_equal(back, tcp6_frame({kGatewayMac, kUplinkMac}, {kVip6, kFarClient6, 63},
                                            Tcp{80, 40000, kSyn | kAck})));
}

TEST(WorkerIpv6, RepliesToClientsBeyondARouterLeaveThePodsCached) {
  // As WorkerPipeline's IPv4 test: 3,000 far clients' replies take the
  // gateway's MACs from their route's entry (RoutedTrie6), one for them
  // all, without evicting the Pods from the destination cache (1,024
  // slots); the gateway's new MAC is used from the next burst on.
  auto d = make_dataplane();
  constexpr uint16_t kClients = 3000;
  auto far_client = [](uint16_t i) {
    Ip6 a = kFarClient6;
    a.bytes[14] = static_cast<uint8_t>(i >> 8);
    a.bytes[15] = static_cast<uint8_t>(i);
    return a;
  };
  std::vector<Bytes> syns, acks;
  for (uint16_t i = 0; i < kClients; ++i) {
    syns.push_back(tcp6_frame({kUplinkMac, kGatewayMac}, {far_client(i), kVip6}, Tcp{40000, 80, kSyn}));
    acks.push_back(tcp6_frame({kUplinkMac, kGatewayMac}, {far_client(i), kVip6}, Tcp{40000, 80, kAck, 1001}));
  }
  std::vector<Ip6> pod_of(kClients);
  size_t opened = 0;
  for (const Output& o : d->send(kUplink, syns)) {
    const Ip6 client = get_ip6(o.frame, kEthLen + 8);
    pod_of.at(static_cast<uint16_t>(client.bytes[14] << 8 | client.bytes[15])) = get_ip6(o.frame, kEthLen + 24);
    ++opened;
  }
  ASSERT_EQ(opened, kClients) << d->drop_summary();
  auto replies_to = [&](const MacAddr& router_mac, uint16_t clients) {
    std::vector<Bytes> replies;
    for (uint16_t i = 0; i < clients; ++i) {
      replies.push_back(tcp6_frame({kPodsMac, pod_mac(pod_of[i])}, {pod_of[i], far_client(i)}, Tcp{8080, 40000, kAck}));
    }
    size_t back = 0;
    for (const Output& o : d->send(kPods, replies)) {
      EXPECT_EQ(o.port, kUplink);
      EXPECT_EQ(eth_dst(o.frame), router_mac);
      ++back;
    }
    EXPECT_EQ(back, clients) << d->drop_summary();
  };
  const uint64_t before_replies = d->total(&WorkerCounters::adjacency_misses);
  replies_to(kGatewayMac, kClients);
  const uint64_t misses = d->total(&WorkerCounters::adjacency_misses);
  EXPECT_EQ(misses - before_replies, 1u) << "one entry, the route's, serves every client beyond it";
  size_t to_pods = 0;
  for (const Output& o : d->send(kUplink, acks)) {
    EXPECT_EQ(eth_dst(o.frame), pod_mac(get_ip6(o.frame, kEthLen + 24)));
    ++to_pods;
  }
  EXPECT_EQ(to_pods, kClients);
  EXPECT_EQ(d->total(&WorkerCounters::adjacency_misses), misses) << "the Pods' packets must hit";

  const MacAddr new_gateway_mac = mac("02:00:00:00:99:fe");
  d->neighbors6().set(kGateway6, new_gateway_mac);
  replies_to(new_gateway_mac, 100);
  EXPECT_EQ(d->total(&WorkerCounters::adjacency_misses), misses + 1) << "the new MAC, filled once";
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerIpv6, AReplyWithoutAFlowIsMappedBackStatelessly) {
  auto d = make_dataplane();
  EXPECT_TRUE(frames_equal(expect_one(*d, kPods, synack_from(kPod6a, 45000), kUplink), synack_unnat(45000)));
  expect_dropped(*d, kPods,
                 tcp6_frame({kPodsMac, pod_mac(kPod6a)}, {kPod6a, kClient6}, Tcp{9999, 45000, kAck}),
                 DropReason::kNoFlow);
}

// --- extension headers ---------------------------------------------------------

// RFC 8200 §4.2: PadN filling a 6-byte options area.
Extension options(uint8_t type) { return Extension{type, {1, 4, 0, 0, 0, 0}}; }

TEST(WorkerIpv6, PortsAreFoundAfterHopByHopAndDestinationOptions) {
  auto d = make_dataplane();
  const std::vector<Extension> ext = {options(kHopByHop), options(kDestinationOptions)};
  const Bytes out = expect_one(*d, kUplink, syn_to(kVip6, 40000, 64, ext), kPods);
  ASSERT_FALSE(out.empty());
  const Ip6 pod = get_ip6(out, kEthLen + 24);
  EXPECT_TRUE(frames_equal(out, syn_dnat(pod, 40000, 63, ext)));  // the headers travel on untouched
}

TEST(WorkerIpv6, ARoutingHeaderWithNoSegmentsLeftIsWalked) {
  auto d = make_dataplane();
  const std::vector<Extension> ext = {Extension{kRoutingHeader, {4, 0, 0, 0, 0, 0}}};  // type 4, 0 left
  EXPECT_EQ(d->send(kUplink, syn_to(kVip6, 40000, 64, ext)).size(), 1u) << d->drop_summary();
}

TEST(WorkerIpv6, ExtensionHeadersItCannotWalkAreDroppedEachWithItsReason) {
  auto d = make_dataplane();
  expect_dropped(*d, kUplink, syn_to(kVip6, 40000, 64, {Extension{kRoutingHeader, {4, 1, 0, 0, 0, 0}}}),
                 DropReason::kIpv6Extension);  // segments left: a source route through us
  // RFC 8200 §4.5: a fragment with more to come is a multiple of 8 octets.
  expect_dropped(*d, kUplink, syn_to(kVip6, 40000, 64, {Extension{kFragmentHeader, {0, 1, 0, 0, 0, 9}}}),
                 DropReason::kBadIpv6Extension);
  expect_dropped(*d, kUplink, syn_to(kVip6, 40000, 64, {options(kDestinationOptions), options(kHopByHop)}),
                 DropReason::kBadIpv6Extension);  // Hop-by-Hop must come first
  std::vector<Extension> nine(9, options(kDestinationOptions));
  expect_dropped(*d, kUplink, syn_to(kVip6, 40000, 64, nine), DropReason::kBadIpv6Extension);
  // ESP (50): its payload is encrypted; nothing to NAT.
  expect_dropped(*d, kUplink,
                 ipv6_frame({kUplinkMac, kClientMac}, {kClient6, kVip6}, 50, Bytes(24, 7), -1),
                 DropReason::kIpv6Extension);
  // A header claiming more bytes than the payload has.
  Bytes overrun = syn_to(kVip6, 40000, 64, {options(kDestinationOptions)});
  overrun[kEthLen + kIp6Len + 1] = 9;
  expect_dropped(*d, kUplink, overrun, DropReason::kBadIpv6Extension);
}

TEST(WorkerIpv6, MalformedHeadersAreDroppedEachWithItsReason) {
  auto d = make_dataplane();
  Bytes version = syn_to(kVip6, 40000);
  version[kEthLen] = 0x40;
  expect_dropped(*d, kUplink, version, DropReason::kBadIpVersion);
  Bytes too_long = syn_to(kVip6, 40000);
  put16(too_long, kEthLen + 4, 200);
  expect_dropped(*d, kUplink, too_long, DropReason::kBadIpLength);
  const Bytes whole = syn_to(kVip6, 40000);
  const Bytes truncated(whole.begin(), whole.begin() + kEthLen + 30);
  expect_dropped(*d, kUplink, truncated, DropReason::kBadIpLength);
  Bytes zero_udp = udp6_frame({kUplinkMac, kClientMac}, {kClient6, kUdpVip6}, Udp{33000, 5353}, {1});
  put16(zero_udp, kEthLen + kIp6Len + 6, 0);
  expect_dropped(*d, kUplink, zero_udp, DropReason::kBadUdpChecksum);
  expect_dropped(*d, kUplink, ipv6_frame({kUplinkMac, kClientMac}, {kClient6, kVip6}, kProtoTcp, Bytes(12, 0), -1),
                 DropReason::kTruncatedL4);
  expect_dropped(*d, kUplink, ipv6_frame({kUplinkMac, kClientMac}, {kClient6, kVip6}, 132, Bytes(12, 0), -1),
                 DropReason::kUnsupportedProto);  // SCTP
}

TEST(WorkerIpv6, MartianAndOwnSourcesAreRefused) {
  auto d = make_dataplane();
  for (const char* src : {"::1", "ff02::1", "::ffff:192.0.2.7"}) {
    expect_dropped(*d, kUplink, tcp6_frame({kUplinkMac, kClientMac}, {ip6(src), kVip6}, Tcp{40000, 80, kSyn}),
                   DropReason::kMartianSource);
  }
  expect_dropped(*d, kUplink, tcp6_frame({kUplinkMac, kClientMac}, {kUdpVip6, kVip6}, Tcp{40000, 80, kSyn}),
                 DropReason::kSourceIsOurs);
}

// --- hop limit -----------------------------------------------------------------

TEST(WorkerIpv6, HopLimitOneIsDroppedAndTheSourceToldTimeExceeded) {
  auto d = make_dataplane();
  const Bytes syn = syn_to(kVip6, 40000, 1);
  const auto out = d->send(kUplink, syn);
  EXPECT_EQ(d->drops(DropReason::kTtlExceeded), 1u) << d->drop_summary();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].port, kUplink);
  // RFC 4443 §3.3: type 3, code 0, from the arrival port's address,
  // quoting the packet as it arrived.
  EXPECT_TRUE(frames_equal(out[0].frame,
                           icmp6_error_frame({kClientMac, kUplinkMac}, {kUplinkIp6, kClient6}, 3, 0, 0, syn)));
  EXPECT_EQ(d->worker(0).flows6().size(), 0u) << "a dropped packet left a flow";
}

// As IPv4: a VIP with nothing behind the port answers as a host with no
// listener there, Destination Unreachable code 4, port unreachable (RFC
// 4443 §3.1), so the client's connect fails at once.
TEST(WorkerIpv6, AVipWithNothingBehindThePortAnswersPortUnreachable) {
  DataplaneSetup s;
  s.config_toml = std::string(kRingPortsToml) + kConfig;
  s.amend = [](ctl::Config& c) {
    dual_stack(c);
    // echo-udp's IPv6 Pod stops being ready: its IPv6 VIP has no endpoint.
    for (ctl::ServiceConfig& svc : c.services) {
      for (ctl::EndpointConfig& e : svc.endpoints) {
        if (svc.name == "echo-udp" && e.ip.is_v6()) e.ready = false;
      }
    }
  };
  Dataplane d(std::move(s));
  d.neighbors6().set(kClient6, kClientMac);
  const Bytes unserved = tcp6_frame({kUplinkMac, kClientMac}, {kClient6, kVip6}, Tcp{40000, 81, kSyn});
  auto out = d.send(kUplink, unserved);
  EXPECT_EQ(d.drops(DropReason::kNoService), 1u) << d.drop_summary();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(frames_equal(out[0].frame, icmp6_error_frame({kClientMac, kUplinkMac}, {kUplinkIp6, kClient6},
                                                           kIcmp6DestinationUnreachable, 4, 0, unserved)));
  const Bytes no_endpoint = udp6_frame({kUplinkMac, kClientMac}, {kClient6, kUdpVip6}, Udp{40001, 5353}, Bytes(8, 1));
  out = d.send(kUplink, no_endpoint);
  EXPECT_EQ(d.drops(DropReason::kNoEndpoint), 1u) << d.drop_summary();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(frames_equal(out[0].frame, icmp6_error_frame({kClientMac, kUplinkMac}, {kUplinkIp6, kClient6},
                                                           kIcmp6DestinationUnreachable, 4, 0, no_endpoint)));
}

// The dual-stack dataplane with the Pods' port at IPv6's least MTU, 1280.
std::unique_ptr<Dataplane> with_pods_port_mtu_1280() {
  DataplaneSetup s;
  s.config_toml = std::string(kRingPortsToml) + kConfig;
  s.amend = dual_stack;
  s.port_mtus = {1500, 1280};
  auto d = std::make_unique<Dataplane>(std::move(s));
  d->neighbors6().set(kClient6, kClientMac);
  for (const Ip6& pod : {kPod6a, kPod6b}) d->neighbors6().set(pod, pod_mac(pod));
  return d;
}

TEST(WorkerIpv6, APacketTooBigForTheEgressMtuIsAnsweredWithItsMtu) {
  auto dp = with_pods_port_mtu_1280();
  Dataplane& d = *dp;
  const Bytes big = tcp6_frame({kUplinkMac, kClientMac}, {kClient6, kVip6}, Tcp{40000, 80, kSyn}, Bytes(1300, 0xab));
  const auto out = d.send(kUplink, big);
  EXPECT_EQ(d.drops(DropReason::kTooBig), 1u) << d.drop_summary();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(frames_equal(out[0].frame, icmp6_error_frame({kClientMac, kUplinkMac}, {kUplinkIp6, kClient6}, 2, 0,
                                                           1280, big)));
}

// RFC 4443 §2.4(e.4), (e.5): no ICMPv6 error about a packet that came as
// a link-layer broadcast or multicast.  Each SYN is dropped for its hop
// limit as a unicast one is, and nothing is sent.
TEST(WorkerIpv6, NoTimeExceededAboutALinkLayerBroadcastOrMulticastFrame) {
  auto d = make_dataplane();
  const MacAddr broadcast = mac("ff:ff:ff:ff:ff:ff");
  const MacAddr all_nodes = mac("33:33:00:00:00:01");  // RFC 2464 §7: ff02::1's
  uint16_t sport = 40100;
  for (const MacAddr& to : {broadcast, all_nodes}) {
    SCOPED_TRACE(to == broadcast ? "broadcast" : "multicast");
    const Bytes syn = tcp6_frame({to, kClientMac}, {kClient6, kVip6, 1}, Tcp{sport++, 80, kSyn});
    expect_dropped(*d, kUplink, syn, DropReason::kTtlExceeded);
  }
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_sent), 0u);
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_rate_limited), 0u);
  EXPECT_EQ(d->worker(0).flows6().size(), 0u);
}

// RFC 4443 §2.4(e.3): nor about a packet to a multicast address, here a
// Pod's reply to a site-local group (RFC 4291 §2.7) sent to podgate's MAC.
TEST(WorkerIpv6, NoTimeExceededAboutAPacketToAMulticastAddress) {
  auto d = make_dataplane();
  const Bytes to_group = udp6_frame({kPodsMac, pod_mac(kPod6a)}, {kPod6a, ip6("ff05::1:3"), 1}, Udp{5353, 33000},
                                    {1, 2, 3, 4});
  expect_dropped(*d, kPods, to_group, DropReason::kTtlExceeded);
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_sent), 0u);
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_rate_limited), 0u);
}

// RFC 4443 §2.4(e.3) exception 1, which (e.4) and (e.5) share: Packet Too
// Big is still sent about a link-layer broadcast or multicast frame, as
// path MTU discovery (RFC 8201) needs it.
TEST(WorkerIpv6, PacketTooBigIsStillSentAboutALinkLayerBroadcastOrMulticastFrame) {
  auto dp = with_pods_port_mtu_1280();
  Dataplane& d = *dp;
  uint16_t sport = 40200;
  for (const MacAddr& to : {mac("ff:ff:ff:ff:ff:ff"), mac("33:33:00:00:00:01")}) {
    const Bytes big = tcp6_frame({to, kClientMac}, {kClient6, kVip6}, Tcp{sport++, 80, kSyn}, Bytes(1300, 0xab));
    const auto out = d.send(kUplink, big);
    ASSERT_EQ(out.size(), 1u) << d.drop_summary();
    EXPECT_TRUE(frames_equal(out[0].frame, icmp6_error_frame({kClientMac, kUplinkMac}, {kUplinkIp6, kClient6},
                                                             kIcmp6PacketTooBig, 0, 1280, big)));
  }
  EXPECT_EQ(d.drops(DropReason::kTooBig), 2u) << d.drop_summary();
}

// --- ICMPv6 errors through the NAT (RFC 4443 §3, as RFC 5508 §7) ---------------------

const Ip6 kPodRouter6 = ip6("fd00:17::fe");
const MacAddr kPodRouterMac = mac("02:00:00:00:03:fe");

// The client's SYN as a Pod-side router quotes it after podgate forwarded
// it (hop limit 63), translated back: to the VIP, port 80.
Bytes syn_one_hop_later(uint16_t sport) { return syn_to(kVip6, sport, 63); }

TEST(WorkerIpv6, PacketTooBigFromBeyondTheNatReachesTheClientTranslated) {
  // Path MTU discovery (RFC 8201) through the NAT: a router between
  // podgate and the Pod says the forwarded packet was too big.  The client
  // gets it about the packet it sent, byte for byte, every checksum right.
  auto d = make_dataplane();
  const Bytes forwarded = expect_one(*d, kUplink, syn_to(kVip6, 25000), kPods);
  ASSERT_FALSE(forwarded.empty());
  const Bytes error = icmp6_error_frame({kPodsMac, kPodRouterMac}, {kPodRouter6, kClient6}, kIcmp6PacketTooBig, 0,
                                        1400, forwarded);
  const Bytes want = icmp6_error_frame({kClientMac, kUplinkMac}, {kPodRouter6, kClient6, 63}, kIcmp6PacketTooBig, 0,
                                       1400, syn_one_hop_later(25000));
  EXPECT_TRUE(frames_equal(expect_one(*d, kPods, error, kUplink), want));
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_translated), 1u);
}

TEST(WorkerIpv6, PacketTooBigAboutAPacketWithExtensionHeadersReachesTheClientTranslated) {
  // The quoted packet's ports are past its header chain, as in the packet.
  auto d = make_dataplane();
  const std::vector<Extension> ext = {options(kHopByHop), options(kDestinationOptions)};
  const Bytes forwarded = expect_one(*d, kUplink, syn_to(kVip6, 25050, 64, ext), kPods);
  ASSERT_FALSE(forwarded.empty());
  const Bytes error = icmp6_error_frame({kPodsMac, kPodRouterMac}, {kPodRouter6, kClient6}, kIcmp6PacketTooBig, 0,
                                        1400, forwarded);
  const Bytes want = icmp6_error_frame({kClientMac, kUplinkMac}, {kPodRouter6, kClient6, 63}, kIcmp6PacketTooBig, 0,
                                       1400, syn_to(kVip6, 25050, 63, ext));
  EXPECT_TRUE(frames_equal(expect_one(*d, kPods, error, kUplink), want));
}

TEST(WorkerIpv6, TimeExceededAboutAReplyReachesThePodTranslated) {
  // A router on the client's side reports on a reply (sent from the VIP):
  // the error, addressed to the VIP, goes to the Pod, about what it sent.
  auto d = make_dataplane();
  const Bytes forwarded = expect_one(*d, kUplink, syn_to(kVip6, 25100), kPods);
  ASSERT_FALSE(forwarded.empty());
  const Ip6 pod = get_ip6(forwarded, kEthLen + 24);
  const Bytes reply_out = expect_one(*d, kPods, synack_from(pod, 25100), kUplink);
  const Bytes error = icmp6_error_frame({kUplinkMac, kGatewayMac}, {kGateway6, kVip6}, kIcmp6TimeExceeded, 0, 0,
                                        reply_out);
  const Bytes reply_as_sent_less_a_hop = tcp6_frame({kPodsMac, pod_mac(pod)}, {pod, kClient6, 63},
                                                    Tcp{8080, 25100, kSyn | kAck, 5000, 1001});
  const Bytes want = icmp6_error_frame({pod_mac(pod), kPodsMac}, {kGateway6, pod, 63}, kIcmp6TimeExceeded, 0, 0,
                                       reply_as_sent_less_a_hop);
  EXPECT_TRUE(frames_equal(expect_one(*d, kUplink, error, kPods), want));
}

TEST(WorkerIpv6, TheHalfOpenQueueIsTakenAlsoWithNoFlowLeft) {
  // A SYN's queue entry outlives its flow, freed earlier (here a reset
  // connection, swept at the closing timeout).  The entry must still be
  // taken when due: one left 2^31 ms reads as not due and holds back every
  // entry behind it.
  DataplaneSetup s;
  s.config_toml = std::string(kRingPortsToml) + kConfig;
  s.amend = dual_stack;
  s.timeouts.tcp_syn_ms = 1000;
  s.timeouts.tcp_closing_ms = 1;
  auto d = std::make_unique<Dataplane>(std::move(s));
  d->neighbors6().set(kPod6a, pod_mac(kPod6a));
  d->neighbors6().set(kPod6b, pod_mac(kPod6b));
  ASSERT_EQ(d->send(kUplink, syn_to(kVip6, 41000)).size(), 1u) << d->drop_summary();
  ASSERT_EQ(d->send(kUplink, tcp6_frame({kUplinkMac, kClientMac}, {kClient6, kVip6, 64}, Tcp{41000, 80, kRst})).size(),
            1u)
      << d->drop_summary();
  const auto& flows = d->worker(0).flows6();
  EXPECT_EQ(flows.half_open_queued(), 1u);
  const auto until = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < deadline) d->poll_until_idle();
  };
  until([&] { return flows.size() == 0; });
  ASSERT_EQ(flows.size(), 0u) << "the sweep frees the reset flow";
  EXPECT_EQ(flows.half_open_queued(), 1u) << "its SYN's entry is not yet due";
  until([&] { return flows.half_open_queued() == 0; });
  EXPECT_EQ(flows.half_open_queued(), 0u);
}

TEST(WorkerIpv6, APodsOwnUnreachableComesFromTheVip) {
  auto d = make_dataplane();
  const Bytes forwarded = expect_one(*d, kUplink, syn_to(kVip6, 25200), kPods);
  ASSERT_FALSE(forwarded.empty());
  const Ip6 pod = get_ip6(forwarded, kEthLen + 24);
  constexpr uint8_t kPortUnreachable = 4;
  const Bytes error = icmp6_error_frame({kPodsMac, pod_mac(pod)}, {pod, kClient6}, kIcmp6DestinationUnreachable,
                                        kPortUnreachable, 0, forwarded);
  const Bytes want = icmp6_error_frame({kClientMac, kUplinkMac}, {kVip6, kClient6, 63}, kIcmp6DestinationUnreachable,
                                       kPortUnreachable, 0, syn_one_hop_later(25200));
  EXPECT_TRUE(frames_equal(expect_one(*d, kPods, error, kUplink), want));
}

TEST(WorkerIpv6, IcmpErrorsThatQuoteNoConnectionOrAreCorruptAreDropped) {
  auto d = make_dataplane();
  const Bytes never = syn_dnat(kPod6a, 25300);  // a packet to a Pod podgate never forwarded
  expect_dropped(*d, kPods,
                 icmp6_error_frame({kPodsMac, kPodRouterMac}, {kPodRouter6, kClient6}, kIcmp6PacketTooBig, 0, 1400,
                                   never),
                 DropReason::kIcmpErrorNoFlow);
  const Bytes forwarded = expect_one(*d, kUplink, syn_to(kVip6, 25400), kPods);
  Bytes corrupt = icmp6_error_frame({kPodsMac, kPodRouterMac}, {kPodRouter6, kClient6}, kIcmp6PacketTooBig, 0, 1400,
                                    forwarded);
  corrupt[kEthLen + kIp6Len + 5] ^= 1;  // the MTU, under the checksum
  expect_dropped(*d, kPods, corrupt, DropReason::kBadIcmp);
  Bytes cut = icmp6_error_frame({kPodsMac, kPodRouterMac}, {kPodRouter6, kClient6}, kIcmp6TimeExceeded, 0, 0,
                                Bytes(forwarded.begin(), forwarded.begin() + kEthLen + kIp6Len + 4));
  expect_dropped(*d, kPods, cut, DropReason::kBadIcmp);  // no room for the ports
}

// --- fragments -------------------------------------------------------------------
// Virtual reassembly, as for IPv4 (fragment_table.hpp): each fragment is
// forwarded as it came, NATed like its datagram's first fragment.

// `frame` (one IPv6 packet without extension headers) cut into fragments of
// at most `chunk` bytes of its payload (a multiple of 8), each with a
// Fragment header (RFC 8200 §4.5), as a host cuts it.
std::vector<Bytes> fragment6(const Bytes& frame, size_t chunk, uint32_t id) {
  const size_t ip = kEthLen, total = get16(frame, ip + 4);
  const uint8_t proto = frame[ip + 6];
  std::vector<Bytes> out;
  for (size_t off = 0; off < total; off += chunk) {
    const size_t n = std::min(chunk, total - off);
    Bytes f(frame.begin(), frame.begin() + static_cast<long>(ip + kIp6Len));
    put16(f, ip + 4, static_cast<uint16_t>(8 + n));
    f[ip + 6] = kFragmentHeader;
    Bytes header(8, 0);
    header[0] = proto;
    put16(header, 2, static_cast<uint16_t>(off | (off + n < total ? 1 : 0)));  // offset in 8s << 3, M
    put32(header, 4, id);
    f.insert(f.end(), header.begin(), header.end());
    const auto data = frame.begin() + static_cast<long>(ip + kIp6Len + off);
    f.insert(f.end(), data, data + static_cast<long>(n));
    out.push_back(std::move(f));
  }
  return out;
}

// The packet the fragments in `frames` make, as one unfragmented frame.
Bytes reassemble6(std::vector<Bytes> frames) {
  auto offset = [](const Bytes& f) { return get16(f, kEthLen + kIp6Len + 2) & 0xfff8; };
  std::sort(frames.begin(), frames.end(), [&](const Bytes& a, const Bytes& b) { return offset(a) < offset(b); });
  Bytes whole(frames[0].begin(), frames[0].begin() + static_cast<long>(kEthLen + kIp6Len));
  whole[kEthLen + 6] = frames[0][kEthLen + kIp6Len];
  for (const Bytes& f : frames) {
    const size_t len = get16(f, kEthLen + 4) - 8;
    const auto data = f.begin() + static_cast<long>(kEthLen + kIp6Len + 8);
    whole.insert(whole.end(), data, data + static_cast<long>(len));
  }
  put16(whole, kEthLen + 4, static_cast<uint16_t>(whole.size() - kEthLen - kIp6Len));
  return whole;
}

// Whether a whole UDP or TCP packet's checksum holds over the pseudo-header.
bool upper_checksum_holds(const Bytes& f) {
  const size_t at = kEthLen + kIp6Len, len = get16(f, kEthLen + 4);
  const uint8_t proto = f[kEthLen + 6];
  const size_t c = at + (proto == kProtoTcp ? 16 : 6);
  return upper_checksum6(f, get_ip6(f, kEthLen + 8), get_ip6(f, kEthLen + 24), proto, at, len, c) == get16(f, c);
}

Bytes big_datagram_to_udp_vip(uint16_t sport, size_t payload) {
  Bytes data(payload);
  for (size_t i = 0; i < payload; ++i) data[i] = static_cast<uint8_t>(i * 7);
  return udp6_frame({kUplinkMac, kClientMac}, {kClient6, kUdpVip6}, Udp{sport, 5353}, data);
}

TEST(WorkerIpv6Fragments, EveryFragmentReachesTheSamePodNatedLikeTheFirstAndTheAnswerComesBack) {
  for (uint32_t workers : {1u, 2u}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    auto d = make_dataplane(workers);
    const Bytes whole = big_datagram_to_udp_vip(41000, 4000);
    const auto frags = fragment6(whole, 1448, 0x12345678);
    ASSERT_EQ(frags.size(), 3u);
    const auto out = d->send(kUplink, frags);
    ASSERT_EQ(out.size(), 3u) << d->drop_summary();
    std::vector<Bytes> frames;
    for (const Output& o : out) {
      EXPECT_EQ(o.port, kPods);
      EXPECT_EQ(get_ip6(o.frame, kEthLen + 24), kPod6a);
      EXPECT_EQ(get_ip6(o.frame, kEthLen + 8), kClient6);
      EXPECT_EQ(o.frame[kEthLen + 7], 63) << "hop limit decremented";
      EXPECT_EQ(get32(o.frame, kEthLen + kIp6Len + 4), 0x12345678u) << "the Fragment header travels on";
      frames.push_back(o.frame);
    }
    // What the Pod's stack rebuilds: the client's packet, to the Pod, with a
    // UDP checksum that holds over all of it.
    const Bytes rebuilt = reassemble6(frames);
    EXPECT_TRUE(upper_checksum_holds(rebuilt));
    ASSERT_EQ(rebuilt.size(), whole.size());
    EXPECT_TRUE(std::equal(whole.begin() + kEthLen + kIp6Len + 8, whole.end(),
                           rebuilt.begin() + kEthLen + kIp6Len + 8)) << "the payload is untouched";

    // The Pod's fragmented answer goes back from the VIP.
    const Bytes answer =
        udp6_frame({kPodsMac, pod_mac(kPod6a)}, {kPod6a, kClient6}, Udp{5353, 41000}, Bytes(3000, 0x5a));
    const auto back = d->send(kPods, fragment6(answer, 1448, 0x4321));
    ASSERT_EQ(back.size(), 3u) << d->drop_summary();
    frames.clear();
    for (const Output& o : back) {
      EXPECT_EQ(o.port, kUplink);
      EXPECT_EQ(get_ip6(o.frame, kEthLen + 8), kUdpVip6);
      frames.push_back(o.frame);
    }
    EXPECT_TRUE(upper_checksum_holds(reassemble6(frames)));
  }
}

TEST(WorkerIpv6Fragments, LaterFragmentsThatComeFirstWaitForTheirFirst) {
  auto d = make_dataplane();
  const auto frags = fragment6(big_datagram_to_udp_vip(41100, 4000), 1448, 0x2222);
  EXPECT_TRUE(d->send(kUplink, frags[2]).empty());
  EXPECT_TRUE(d->send(kUplink, frags[1]).empty());
  const auto out = d->send(kUplink, frags[0]);
  ASSERT_EQ(out.size(), 3u) << d->drop_summary();
  std::vector<Bytes> frames;
  for (const Output& o : out) frames.push_back(o.frame);
  EXPECT_TRUE(upper_checksum_holds(reassemble6(frames)));
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerIpv6Fragments, PacketTooBigAboutAFirstFragmentReachesTheClientTranslated) {
  // RFC 8201 through the NAT for a fragmented datagram: a router beyond
  // podgate with a smaller MTU quotes the first fragment (IPv6 routers
  // never fragment: this is the only signal).  The client gets it about
  // the fragment it sent, every checksum right.
  auto d = make_dataplane();
  const auto frags = fragment6(big_datagram_to_udp_vip(41150, 4000), 1448, 0x2323);
  const auto out = d->send(kUplink, frags);
  ASSERT_EQ(out.size(), 3u) << d->drop_summary();
  const auto first = std::find_if(out.begin(), out.end(), [](const Output& o) {
    return (get16(o.frame, kEthLen + kIp6Len + 2) & 0xfff8) == 0;
  });
  ASSERT_NE(first, out.end());
  const Bytes error = icmp6_error_frame({kPodsMac, kPodRouterMac}, {kPodRouter6, kClient6}, kIcmp6PacketTooBig, 0,
                                        1280, first->frame);
  Bytes sent_less_a_hop = frags[0];
  sent_less_a_hop[kEthLen + 7] = 63;
  const Bytes want = icmp6_error_frame({kClientMac, kUplinkMac}, {kPodRouter6, kClient6, 63}, kIcmp6PacketTooBig, 0,
                                       1280, sent_less_a_hop);
  EXPECT_TRUE(frames_equal(expect_one(*d, kPods, error, kUplink), want));
  // A later fragment's quote has no ports to name the connection by.
  const Bytes later = out[0].frame == first->frame ? out[1].frame : out[0].frame;
  expect_dropped(*d, kPods,
                 icmp6_error_frame({kPodsMac, kPodRouterMac}, {kPodRouter6, kClient6}, kIcmp6PacketTooBig, 0, 1280,
                                   later),
                 DropReason::kIcmpErrorNoFlow);
}

TEST(WorkerIpv6Fragments, ALaterFragmentGetsTimeExceededOnlyIfItWouldBeForwarded) {
  auto d = make_dataplane();
  // A datagram no flow, service or Pod sends (its source may be spoofed):
  // not forwarded whatever its hop limit, so its later fragment with hop
  // limit 1 is dropped as its first was, and no Time Exceeded answers it.
  const Bytes stray =
      udp6_frame({kUplinkMac, kClientMac}, {kClient6, ip6("fd00:17::99")}, Udp{41500, 7777}, Bytes(3000, 1));
  auto strays = fragment6(stray, 1448, 0x9999);
  expect_dropped(*d, kUplink, strays[0], DropReason::kNoFlow);
  strays[1][kEthLen + 7] = 1;
  expect_dropped(*d, kUplink, strays[1], DropReason::kNoFlow);
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_sent), 0u);
  // A datagram to a service is forwarded: its later fragment with hop
  // limit 1 is answered (RFC 4443 §3.3), quoting the fragment.
  auto frags = fragment6(big_datagram_to_udp_vip(41600, 4000), 1448, 0xaaaa);
  ASSERT_EQ(expect_one(*d, kUplink, frags[0], kPods).empty(), false);
  frags[1][kEthLen + 7] = 1;
  EXPECT_TRUE(frames_equal(expect_one(*d, kUplink, frags[1], kUplink),
                           icmp6_error_frame({kClientMac, kUplinkMac}, {kUplinkIp6, kClient6}, kIcmp6TimeExceeded, 0,
                                             0, frags[1])));
  EXPECT_EQ(d->drops(DropReason::kTtlExceeded), 1u) << d->drop_summary();
}

TEST(WorkerIpv6Fragments, AnAtomicFragmentIsAWholePacket) {
  // RFC 6946: offset 0 and no more fragments.
  auto d = make_dataplane();
  const Bytes out = expect_one(*d, kUplink, syn_to(kVip6, 40000, 64, {Extension{kFragmentHeader, {0, 0, 0, 0, 0, 7}}}),
                               kPods);
  ASSERT_FALSE(out.empty());
  const Ip6 pod = get_ip6(out, kEthLen + 24);
  EXPECT_TRUE(frames_equal(out, syn_dnat(pod, 40000, 63, {Extension{kFragmentHeader, {0, 0, 0, 0, 0, 7}}})));
}

TEST(WorkerIpv6Fragments, WhatCannotBeForwardedIsDroppedEachWithItsReason) {
  auto d = make_dataplane();
  // A first fragment of 8 bytes: the TCP header is cut (RFC 1858, RFC 7112).
  const auto tiny = fragment6(syn_to(kVip6, 41300), 8, 0x4444);
  expect_dropped(*d, kUplink, tiny[0], DropReason::kFragmentTiny);
  // A TCP fragment at offset 1 (8 bytes), which would overwrite the flags
  // (RFC 1858 §3, as in IPv4).
  expect_dropped(*d, kUplink, tiny[1], DropReason::kFragmentTiny);
  // A fragmented ICMPv6 message: not TCP or UDP.
  Bytes big_echo = echo6_frame({kUplinkMac, kClientMac}, {kClient6, kVip6}, 128, 1, 1);
  expect_dropped(*d, kUplink, fragment6(big_echo, 8, 0x5555)[0], DropReason::kFragment);
  // To the appliance's own address: nothing of it is forwarded.
  Bytes own = udp6_frame({kUplinkMac, kClientMac}, {kClient6, kUplinkIp6}, Udp{41000, 5353}, Bytes(3000, 1));
  expect_dropped(*d, kUplink, fragment6(own, 1448, 0x6666)[0], DropReason::kFragment);
  // A martian source's later fragments do not slip through by Maglev.
  Bytes martian = udp6_frame({kUplinkMac, kClientMac}, {ip6("::1"), kUdpVip6}, Udp{41400, 5353}, Bytes(3000, 1));
  EXPECT_TRUE(d->send(kUplink, fragment6(martian, 1448, 0x7777)).empty());
  EXPECT_EQ(d->drops(DropReason::kMartianSource), 3u) << d->drop_summary();
  // Four wait for their first at most; the fifth is dropped.
  const auto frags = fragment6(big_datagram_to_udp_vip(41200, 8000), 1448, 0x8888);
  ASSERT_EQ(frags.size(), 6u);
  for (size_t i = 1; i < frags.size(); ++i) EXPECT_TRUE(d->send(kUplink, frags[i]).empty());
  EXPECT_EQ(d->drops(DropReason::kFragmentUnmatched), 1u) << d->drop_summary();
}

// --- neighbour discovery and echo ----------------------------------------------

L3v6 to_us(const Ip6& src, const Ip6& dst) { return L3v6{src, dst, 255}; }

// RFC 4861 §7.2.4: the solicited advertisement, with R (a router), S and
// O, the target's link-layer address, back to the solicitor.
Bytes advertisement_of(const Ip6& target, const MacAddr& our_mac, size_t) {
  return advertisement_frame({kClientMac, our_mac}, {target, kClient6, 255}, target, our_mac, 0xe0);
}

TEST(WorkerIpv6, SolicitationsForItsAddressAndItsVipsAreAdvertised) {
  auto d = make_dataplane();
  const Ip6 group = dp::solicited_node(kUplinkIp6);
  const MacAddr group_mac = mac("33:33:ff:00:00:01");
  const Bytes ns = solicitation_frame({group_mac, kClientMac}, to_us(kClient6, group), kUplinkIp6, &kClientMac);
  EXPECT_TRUE(frames_equal(expect_one(*d, kUplink, ns, kUplink), advertisement_of(kUplinkIp6, kUplinkMac, kUplink)));
  const Bytes ns_vip = solicitation_frame({group_mac, kClientMac}, to_us(kClient6, dp::solicited_node(kVip6)), kVip6,
                                          &kClientMac);
  EXPECT_TRUE(frames_equal(expect_one(*d, kUplink, ns_vip, kUplink), advertisement_of(kVip6, kUplinkMac, kUplink)));
  // Without the source's link-layer option: to the frame's source MAC.
  const Bytes bare = solicitation_frame({group_mac, kClientMac}, to_us(kClient6, group), kUplinkIp6, nullptr);
  EXPECT_TRUE(frames_equal(expect_one(*d, kUplink, bare, kUplink), advertisement_of(kUplinkIp6, kUplinkMac, kUplink)));
}

TEST(WorkerIpv6, DuplicateAddressDetectionIsAnsweredToAllNodes) {
  auto d = make_dataplane();
  const Ip6 group = dp::solicited_node(kUplinkIp6);
  const Bytes dad = solicitation_frame({mac("33:33:ff:00:00:01"), kClientMac}, to_us(ip6("::"), group), kUplinkIp6,
                                       nullptr);
  // RFC 4861 §7.2.4: to ff02::1, Solicited clear.
  EXPECT_TRUE(frames_equal(expect_one(*d, kUplink, dad, kUplink),
                           advertisement_frame({mac("33:33:00:00:00:01"), kUplinkMac},
                                               {kUplinkIp6, ip6("ff02::1"), 255}, kUplinkIp6, kUplinkMac, 0xa0)));
}

TEST(WorkerIpv6, SolicitationsThatAreNotForItOrNotValidAreDropped) {
  auto d = make_dataplane();
  const Ip6 other = ip6("fd00:2::99");
  const MacAddr group_mac = mac("33:33:ff:00:00:99");
  expect_dropped(*d, kUplink,
                 solicitation_frame({group_mac, kClientMac}, to_us(kClient6, dp::solicited_node(other)), other, &kClientMac),
                 DropReason::kNdpNotForUs);
  // The Pods port's address is not answered on the uplink.
  expect_dropped(*d, kUplink,
                 solicitation_frame({group_mac, kClientMac}, to_us(kClient6, dp::solicited_node(kPodsIp6)), kPodsIp6,
                                    &kClientMac),
                 DropReason::kNdpNotForUs);
  // RFC 4861 §7.1.1: a hop limit other than 255 (it was routed here).
  expect_dropped(*d, kUplink,
                 solicitation_frame({group_mac, kClientMac}, {kClient6, dp::solicited_node(kUplinkIp6), 64}, kUplinkIp6,
                                    &kClientMac),
                 DropReason::kBadNdp);
  Bytes bad_sum = solicitation_frame({group_mac, kClientMac}, to_us(kClient6, dp::solicited_node(kUplinkIp6)),
                                     kUplinkIp6, &kClientMac);
  bad_sum[kEthLen + kIp6Len + 2] ^= 0x01;
  expect_dropped(*d, kUplink, bad_sum, DropReason::kBadNdp);
  // A router advertisement: podgate's routes come from its config.
  Bytes ra(16, 0);
  ra[0] = 134;
  expect_dropped(*d, kUplink, ipv6_frame({kUplinkMac, kGatewayMac}, to_us(kGateway6, kUplinkIp6), kProtoIcmp6, ra, 2),
                 DropReason::kNdpNotForUs);
}

TEST(WorkerIpv6, AdvertisementsGoToTheControlThread) {
  auto d = make_dataplane();
  const Bytes na = advertisement_frame({kUplinkMac, kGatewayMac}, to_us(kGateway6, kUplinkIp6), kGateway6,
                                       kGatewayMac, 0x60);
  EXPECT_TRUE(d->send(kUplink, na).empty());
  const auto punts = d->take_punted();
  ASSERT_EQ(punts.size(), 1u);
  EXPECT_EQ(punts[0].kind, PuntKind::kNdp);
  EXPECT_EQ(punts[0].port, kUplink);
  EXPECT_TRUE(frames_equal(punts[0].frame, na));
}

TEST(WorkerIpv6, AdvertisementsThatCouldTeachNothingStayInTheWorker) {
  // Snapshot::nd_may_teach: a target on the port's prefix, none of ours.
  auto d = make_dataplane();
  const Ip6 far = ip6("2001:db8:ffff::7");
  expect_dropped(*d, kUplink,
                 advertisement_frame({kUplinkMac, kGatewayMac}, to_us(kGateway6, kUplinkIp6), far, kGatewayMac, 0x60),
                 DropReason::kNdpNotForUs);
  expect_dropped(*d, kUplink,
                 advertisement_frame({kUplinkMac, kGatewayMac}, to_us(kGateway6, kUplinkIp6), kVip6, kGatewayMac, 0x60),
                 DropReason::kNdpNotForUs);
  EXPECT_TRUE(d->take_punted().empty());
}

TEST(WorkerIpv6, APacketForAnUnresolvedNextHopWaitsForTheControlThread) {
  auto d = make_dataplane();
  EXPECT_TRUE(d->send(kUplink, syn_to(kUnresolvedVip6, 40000)).empty());
  const auto punts = d->take_punted();
  ASSERT_EQ(punts.size(), 1u);
  EXPECT_EQ(punts[0].kind, PuntKind::kUnresolved6);
  EXPECT_EQ(punts[0].port, kPods);
  // Already translated: the control thread only adds the MAC.
  EXPECT_EQ(get_ip6(punts[0].frame, kEthLen + 24), kUnresolvedPod6);
}

TEST(WorkerIpv6, EchoRequestsToItsAddressAndVipsAreAnswered) {
  auto d = make_dataplane();
  for (const Ip6& to : {kUplinkIp6, kVip6}) {
    const Bytes ping = echo6_frame({kUplinkMac, kClientMac}, {kClient6, to}, 128, 0x4242, 7);
    // RFC 4443 §4.2: addresses swapped, type 129, identifier, sequence and
    // data echoed, a fresh hop limit.
    EXPECT_TRUE(frames_equal(expect_one(*d, kUplink, ping, kUplink),
                             echo6_frame({kClientMac, kUplinkMac}, {to, kClient6, 64}, 129, 0x4242, 7)));
  }
  Bytes bad = echo6_frame({kUplinkMac, kClientMac}, {kClient6, kVip6}, 128, 0x4242, 7);
  bad[kEthLen + kIp6Len + 10] ^= 0xff;  // data damaged, checksum left
  expect_dropped(*d, kUplink, bad, DropReason::kBadIcmp);
  expect_dropped(*d, kUplink, echo6_frame({kUplinkMac, kClientMac}, {kClient6, ip6("fd00:2::99")}, 128, 1, 1),
                 DropReason::kNotForUs);
}

// --- neighbour discovery on the control thread ---------------------------------

// The punt handler on the test's dataplane, as PuntHandlerArp in
// worker_golden_test.cpp.
class PuntHandlerNdp : public ::testing::Test {
 protected:
  std::vector<Output> handle() { return handle_punts(*d, ph, now); }
  // The advertisement of `target` at `from_mac` to the Pods port.
  Bytes advert(const Ip6& target, const MacAddr& from_mac, uint8_t flags) {
    return advertisement_frame({kPodsMac, from_mac}, {target, kPodsIp6, 255}, target, from_mac, flags);
  }

  std::unique_ptr<Dataplane> d = make_dataplane();
  ctl::PuntHandler ph{punt_setup(*d)};
  uint64_t now = 1'000;
};

// RFC 4861 §7.2.6: at start, each port with an IPv6 address advertises it
// at its MAC to all nodes, Override set (beside its ARP Announcement).
TEST_F(PuntHandlerNdp, EachPortAdvertisesItsAddressToAllNodes) {
  ph.announce_addresses(d->snapshot());
  size_t advertised = 0;
  for (const Output& o : d->collect()) {
    if (ether_type(o.frame) != 0x86dd) continue;
    ++advertised;
    const bool up = o.port == kUplink;
    const MacAddr own = up ? kUplinkMac : kPodsMac;
    const Ip6 address = up ? kUplinkIp6 : kPodsIp6;
    EXPECT_TRUE(frames_equal(o.frame, advertisement_frame({mac("33:33:00:00:00:01"), own},
                                                          {address, ip6("ff02::1"), 255}, address, own, 0x20)))
        << "port " << o.port;
  }
  EXPECT_EQ(advertised, 2u);
}

TEST_F(PuntHandlerNdp, SolicitsAnUnresolvedNextHopLearnsTheAnswerAndSendsWhatWaited) {
  auto unsolicited = [&] { return ph.counters().drops[static_cast<size_t>(DropReason::kArpUnsolicited)].get(); };
  const MacAddr attacker = mac("02:00:00:00:66:66");
  // An advertisement nobody asked for creates nothing.
  d->send(kPods, advert(kUnresolvedPod6, attacker, 0x60));
  handle();
  EXPECT_FALSE(d->neighbors6().find(kUnresolvedPod6));
  EXPECT_EQ(unsolicited(), 1u);

  // A SYN for a Pod with no MAC waits; podgate solicits it (RFC 4861
  // §7.2.2: to its solicited-node group, from the port's address, with our
  // link-layer address).
  EXPECT_TRUE(d->send(kUplink, syn_to(kUnresolvedVip6, 40000)).empty());
  const std::vector<Output> asked = handle();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].port, kPods);
  const Ip6 group = dp::solicited_node(kUnresolvedPod6);
  EXPECT_TRUE(frames_equal(asked[0].frame, solicitation_frame({mac("33:33:ff:00:00:20"), kPodsMac},
                                                              {kPodsIp6, group, 255}, kUnresolvedPod6, &kPodsMac)));
  // The answer is learnt, and the SYN goes out to it.
  const MacAddr pod = mac("02:00:00:00:20:20");
  d->send(kPods, advert(kUnresolvedPod6, pod, 0x60));
  const std::vector<Output> flushed = handle();
  EXPECT_EQ(d->neighbors6().find(kUnresolvedPod6), pod);
  ASSERT_EQ(flushed.size(), 1u) << "the waiting SYN";
  EXPECT_EQ(flushed[0].port, kPods);
  EXPECT_EQ(eth_dst(flushed[0].frame), pod);
  EXPECT_EQ(get_ip6(flushed[0].frame, kEthLen + 24), kUnresolvedPod6);

  // Later packets go straight out.
  const auto out = d->send(kUplink, tcp6_frame({kUplinkMac, kClientMac}, {kClient6, kUnresolvedVip6},
                                               Tcp{40000, 80, kAck, 1001, 1}));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(eth_dst(out[0].frame), pod);

  // An unsolicited advertisement with Override updates the entry (a Pod
  // back with a new MAC); without Override it does not.
  const MacAddr moved = mac("02:00:00:00:20:99");
  d->send(kPods, advert(kUnresolvedPod6, attacker, 0x00));
  handle();
  EXPECT_EQ(d->neighbors6().find(kUnresolvedPod6), pod);
  d->send(kPods, advert(kUnresolvedPod6, moved, 0x20));
  handle();
  EXPECT_EQ(d->neighbors6().find(kUnresolvedPod6), moved);

  // A static neighbour stays as configured.
  ph.set_static_neighbors6({kPod6a});
  d->send(kPods, advert(kPod6a, attacker, 0x20));
  handle();
  EXPECT_EQ(d->neighbors6().find(kPod6a), pod_mac(kPod6a));
}

TEST_F(PuntHandlerNdp, AnAdvertisementWithoutItsLinkLayerAddressCreatesAndChangesNothing) {
  // RFC 4861 §7.2.5: the MAC is the option's, never the frame's source (a
  // bridge's, a proxy's).
  const MacAddr bridge = mac("02:00:00:00:77:77");
  const auto bare = [&](const Ip6& target, uint8_t flags) {
    return advertisement_frame({kPodsMac, bridge}, {target, kPodsIp6, 255}, target, bridge, flags, false);
  };
  // Asked for, but answered with no option: nothing is learnt, the SYN waits.
  EXPECT_TRUE(d->send(kUplink, syn_to(kUnresolvedVip6, 40100)).empty());
  ASSERT_EQ(handle().size(), 1u) << "the solicitation";
  d->send(kPods, bare(kUnresolvedPod6, 0x60));
  EXPECT_TRUE(handle().empty());
  EXPECT_FALSE(d->neighbors6().find(kUnresolvedPod6));
  // A known neighbour's MAC is not overridden by one with no option.
  d->send(kPods, bare(kPod6a, 0x20));
  handle();
  EXPECT_EQ(d->neighbors6().find(kPod6a), pod_mac(kPod6a));
  EXPECT_EQ(ph.counters().drops[static_cast<size_t>(DropReason::kBadNdp)].get(), 2u);
}

TEST_F(PuntHandlerNdp, LearntNeighboursAgeAreProbedByUnicastAndForgottenWhenSilent) {
  // RFC 4861 §7.3: learn kUnresolvedPod6 (a SYN waits, podgate solicits,
  // the Pod answers).
  EXPECT_TRUE(d->send(kUplink, syn_to(kUnresolvedVip6, 42000)).empty());
  ASSERT_EQ(handle().size(), 1u) << "the multicast solicitation";
  const MacAddr first_mac = mac("02:00:00:00:20:21");
  auto answer = [&](const MacAddr& m) { d->send(kPods, advert(kUnresolvedPod6, m, 0x60)); };
  answer(first_mac);
  ASSERT_EQ(handle().size(), 1u) << "the waiting SYN";
  ASSERT_EQ(d->neighbors6().find(kUnresolvedPod6), first_mac);

  // REACHABLE for 15..45 s: nothing sent before 15 s.
  now += ctl::PuntHandler::kReachableMs / 2 - 100;
  EXPECT_TRUE(handle().empty());
  // STALE, then PROBE by 45 s: a unicast solicitation to the address at
  // the MAC it has; a solicited advertisement confirms it.
  std::vector<Output> probe;
  for (int i = 0; i < 31 && probe.empty(); ++i) {
    now += 1'000;
    probe = handle();
  }
  ASSERT_EQ(probe.size(), 1u);
  EXPECT_TRUE(frames_equal(probe[0].frame, solicitation_frame({first_mac, kPodsMac}, {kPodsIp6, kUnresolvedPod6, 255},
                                                              kUnresolvedPod6, &kPodsMac)));
  answer(first_mac);
  handle();
  EXPECT_EQ(d->neighbors6().find(kUnresolvedPod6), first_mac);

  // The Pod is replaced (another MAC, no announcement): three unicast
  // solicitations go unanswered (MAX_UNICAST_SOLICIT), and it is forgotten.
  std::vector<Output> probes;
  for (int i = 0; i < 60 && d->neighbors6().find(kUnresolvedPod6); ++i) {
    now += 1'000;
    for (Output& o : handle()) probes.push_back(std::move(o));
  }
  EXPECT_EQ(probes.size(), ctl::PuntHandler::kMaxProbes);
  EXPECT_FALSE(d->neighbors6().find(kUnresolvedPod6)) << "forgotten";
  EXPECT_EQ(ph.counters().neighbors_forgotten.get(), 1u);
  // The next packet for it solicits the group again, and the new MAC is learnt.
  EXPECT_TRUE(d->send(kUplink, syn_to(kUnresolvedVip6, 42001)).empty());
  const auto asked = handle();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].frame[0], 0x33) << "multicast";
  const MacAddr new_mac = mac("02:00:00:00:20:22");
  answer(new_mac);
  ASSERT_EQ(handle().size(), 1u) << "the waiting SYN";
  EXPECT_EQ(d->neighbors6().find(kUnresolvedPod6), new_mac);
  // Static neighbours are never probed.
  ph.set_static_neighbors6({kUnresolvedPod6});
  for (int i = 0; i < 60; ++i) {
    now += 1'000;
    EXPECT_TRUE(handle().empty());
  }
}

// RFC 4861 §7.2.5: a solicited advertisement without Override that names
// another link-layer address than the entry's does not update it; the
// entry only goes stale, so it is probed at the MAC it has.  With the same
// address it confirms the entry.
TEST_F(PuntHandlerNdp, ASolicitedAnswerWithoutOverrideDoesNotReplaceAKnownMac) {
  EXPECT_TRUE(d->send(kUplink, syn_to(kUnresolvedVip6, 44000)).empty());
  ASSERT_EQ(handle().size(), 1u) << "the multicast solicitation";
  const MacAddr pod = mac("02:00:00:00:20:31");
  d->send(kPods, advert(kUnresolvedPod6, pod, 0x60));
  ASSERT_EQ(handle().size(), 1u) << "the waiting SYN";
  // Stale: podgate probes it, and so asks.
  std::vector<Output> probe;
  for (int i = 0; i < 60 && probe.empty(); ++i) {
    now += 1'000;
    probe = handle();
  }
  ASSERT_EQ(probe.size(), 1u);
  const MacAddr other = mac("02:00:00:00:20:32");
  d->send(kPods, advert(kUnresolvedPod6, other, 0x40));  // Solicited, no Override
  EXPECT_TRUE(handle().empty());
  EXPECT_EQ(d->neighbors6().find(kUnresolvedPod6), pod);
  EXPECT_EQ(ph.counters().drops[static_cast<size_t>(DropReason::kArpUnsolicited)].get(), 1u);
  // The owner of the MAC answers the next probe: confirmed as it was.
  probe.clear();
  for (int i = 0; i < 5 && probe.empty(); ++i) {
    now += 1'000;
    probe = handle();
  }
  ASSERT_EQ(probe.size(), 1u) << "probed again at the MAC it has";
  EXPECT_EQ(eth_dst(probe[0].frame), pod);
  d->send(kPods, advert(kUnresolvedPod6, pod, 0x40));
  handle();
  EXPECT_EQ(d->neighbors6().find(kUnresolvedPod6), pod);
  EXPECT_EQ(ph.counters().drops[static_cast<size_t>(DropReason::kArpUnsolicited)].get(), 1u);
}

// A static IPv6 neighbour that leaves the config on a reload is forgotten
// (PuntHandlerArp.AStaticNeighbourRemovedFromTheConfigIsForgottenAndResolvedAfresh).
TEST_F(PuntHandlerNdp, AStaticNeighbourRemovedFromTheConfigIsForgottenAndResolvedAfresh) {
  const MacAddr configured = mac("02:00:00:00:20:5a");
  ASSERT_TRUE(d->neighbors6().set(kUnresolvedPod6, configured));
  ph.set_static_neighbors6({kUnresolvedPod6, kPod6a});
  const std::vector<Output> direct = d->send(kUplink, syn_to(kUnresolvedVip6, 43000));
  ASSERT_EQ(direct.size(), 1u);
  EXPECT_EQ(eth_dst(direct[0].frame), configured);

  ph.set_static_neighbors6({kPod6a});  // the reload dropped it
  EXPECT_FALSE(d->neighbors6().find(kUnresolvedPod6)) << "forgotten";
  EXPECT_EQ(d->neighbors6().find(kPod6a), pod_mac(kPod6a)) << "still static";
  EXPECT_TRUE(d->send(kUplink, syn_to(kUnresolvedVip6, 43001)).empty());
  const std::vector<Output> asked = handle();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].frame[0], 0x33) << "a multicast solicitation";
}

TEST_F(PuntHandlerNdp, WhatWaitsTooLongIsDroppedAfterRetries) {
  EXPECT_TRUE(d->send(kUplink, syn_to(kUnresolvedVip6, 40000)).empty());
  EXPECT_EQ(handle().size(), 1u) << "the first solicitation";
  now += ctl::PuntHandler::kArpRetryMs;
  EXPECT_EQ(handle().size(), 1u) << "a retry";
  now += ctl::PuntHandler::kWaitLimitMs;
  handle();
  EXPECT_EQ(ph.counters().drops[static_cast<size_t>(DropReason::kNeighborUnresolved)].get(), 1u);
  EXPECT_EQ(ph.waiting(), 0u);
}

}  // namespace
}  // namespace podgate::test
