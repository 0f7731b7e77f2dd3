// Tier-2 tests of the real worker pipeline on net_ring ports: rx_burst ->
// parse -> classify -> flow table / Maglev -> NAT -> route/neighbour -> tx,
// with the Snapshot built from a TOML config and published through the
// SnapshotPublisher, exactly as the daemon wires them.
//
// First a golden table (Katran's fixture style: {description, input packet,
// expected output or verdict}); every expected frame is built independently
// by packet_builder.hpp with checksums computed in full, and compared byte
// for byte.  Then behaviours that need many packets or a snapshot change.
// Workers are driven with poll_once() from the test thread: deterministic.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <rte_memory.h>

#include "control/publish/punt_handler.hpp"
#include "dataplane/checksum.hpp"
#include "dataplane/dp_memory.hpp"
#include "dataplane/fragment_table.hpp"
#include "dataplane/maglev.hpp"
#include "dataplane/packet.hpp"
#include "tests/dataplane/packet_builder.hpp"
#include "tests/dataplane/test_env.hpp"

namespace podgate::test {
namespace {

using dp::DropReason;
using dp::PuntKind;
using dp::WorkerCounters;

// --- the world of the tests --------------------------------------------------

const Ip4 kUplinkIp = ip("192.0.2.1");
const Ip4 kPodsIp = ip("172.17.0.1");
const Ip4 kClient = ip("192.0.2.2");
const MacAddr kClientMac = mac("02:00:00:00:02:02");
const Ip4 kGateway = ip("192.0.2.254");
const MacAddr kGatewayMac = mac("02:00:00:00:02:fe");
const Ip4 kFarClient = ip("198.51.100.7");  // behind the gateway

const Ip4 kVip = ip("10.96.0.20");            // my-app, TCP 80 -> 8080
const Ip4 kUdpVip = ip("10.96.0.30");         // echo-udp, UDP 5353
const Ip4 kIdleVip = ip("10.96.0.40");        // no ready endpoint
const Ip4 kUnresolvedVip = ip("10.96.0.50");  // endpoint without neighbour entry

const Ip4 kPod0 = ip("172.17.0.10");
const Ip4 kPod1 = ip("172.17.0.11");
const Ip4 kPod2 = ip("172.17.0.12");  // serving + terminating in the base config
const Ip4 kPod3 = ip("172.17.0.13");  // added by a test
const Ip4 kUnresolvedPod = ip("172.17.0.20");
const Ip4 kTwoPortsPod = ip("172.17.0.15");  // :9000 backs two service ports

constexpr uint16_t kHttp = 80, kTarget = 8080, kDnsPort = 5353;

// Each Pod's MAC: 02:00:00:00:11:<last octet>.
MacAddr pod_mac(Ip4 pod) {
  MacAddr m = mac("02:00:00:00:11:00");
  m.bytes[5] = static_cast<uint8_t>(pod.host() & 0xff);
  return m;
}

// The issue's example services; my-app's endpoint list is the variable part.
constexpr const char* kMyAppEndpoints = R"(
  { ip = "172.17.0.10", pod = "my-app-0" },
  { ip = "172.17.0.11", pod = "my-app-1", weight = 2 },
  { ip = "172.17.0.12", pod = "my-app-2", ready = false, serving = true, terminating = true },
)";

std::string config_with(const std::string& my_app_endpoints) {
  return std::string(kRingPortsToml) + R"(
[[routes]]
prefix = "198.51.100.0/24"
via = "192.0.2.254"

[[services]]
namespace = "default"
name = "my-app"
cluster_ip = "10.96.0.20"
ports = [ { name = "http", port = 80, target_port = 8080, protocol = "TCP" } ]
endpoints = [)" + my_app_endpoints +
         R"(]

[[services]]
namespace = "default"
name = "echo-udp"
cluster_ip = "10.96.0.30"
ports = [ { port = 5353, target_port = 5353, protocol = "UDP" } ]
endpoints = [ { ip = "172.17.0.10" }, { ip = "172.17.0.11" } ]

[[services]]
namespace = "default"
name = "idle"
cluster_ip = "10.96.0.40"
ports = [ { port = 80, target_port = 8080 } ]
endpoints = [ { ip = "172.17.0.13", ready = false }, { ip = "172.17.0.14", ready = false } ]

[[services]]
namespace = "default"
name = "unresolved"
cluster_ip = "10.96.0.50"
ports = [ { port = 80, target_port = 8080 } ]
endpoints = [ { ip = "172.17.0.20" } ]

[[services]]
namespace = "default"
name = "two-ports"
cluster_ip = "10.96.0.60"
ports = [ { name = "a", port = 80, target_port = 9000 }, { name = "b", port = 81, target_port = 9000 } ]
endpoints = [ { ip = "172.17.0.15" } ]
)";
}

const std::string kBaseConfig = config_with(kMyAppEndpoints);

std::unique_ptr<Dataplane> make_dataplane(DataplaneSetup s) {
  auto d = std::make_unique<Dataplane>(std::move(s));
  // Static neighbours: the client, the gateway and the Pods, but not
  // 172.17.0.20 (its packets must wait for ARP).
  d->neighbors().set(kClient, kClientMac);
  d->neighbors().set(kGateway, kGatewayMac);
  for (Ip4 pod : {kPod0, kPod1, kPod2, kPod3}) d->neighbors().set(pod, pod_mac(pod));
  return d;
}

std::unique_ptr<Dataplane> make_dataplane(const std::string& config = kBaseConfig) {
  DataplaneSetup s;
  s.config_toml = config;
  return make_dataplane(std::move(s));
}

// The base config on `workers` workers; with two, each port's queue is one
// worker's (the uplink's 0, the Pods port's 1), so that packets can reach
// a worker other than their connection's owner.
std::unique_ptr<Dataplane> make_dataplane_on(uint32_t workers) {
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.workers = workers;
  if (workers > 1) s.rx = {{kUplink}, {kPods}};
  return make_dataplane(std::move(s));
}

// --- packets -------------------------------------------------------------------

const MacAddr kUplinkMac = port_mac(kUplink);
const MacAddr kPodsMac = port_mac(kPods);
const MacAddr kBroadcast = mac("ff:ff:ff:ff:ff:ff");

// A client's packet to a service, as it arrives on the uplink.
TcpPacket to_vip(uint16_t client_port, uint8_t flags = kSyn, Ip4 vip = kVip, uint16_t vport = kHttp) {
  return TcpPacket{{kUplinkMac, kClientMac}, {kClient, vip}, {client_port, vport, flags}, {}};
}

// What the pipeline should make of `in` when it picks `pod`: Pod MAC from
// the neighbour table, pods port MAC, destination Pod:8080, TTL - 1; all
// checksums recomputed by the builder.
TcpPacket dnat(TcpPacket in, Ip4 pod) {
  in.l2 = {pod_mac(pod), kPodsMac};
  in.l3.dst = pod;
  in.l3.ttl = static_cast<uint8_t>(in.l3.ttl - 1);
  in.tcp.dport = kTarget;
  return in;
}

std::vector<Bytes> dnat_to_any(const TcpPacket& in, std::initializer_list<Ip4> pods) {
  std::vector<Bytes> out;
  for (Ip4 pod : pods) out.push_back(dnat(in, pod).frame());
  return out;
}

// The Pod's answer to `in` (a client packet to the VIP), as it arrives on
// the pods port.
TcpPacket reply_from(Ip4 pod, const TcpPacket& in, uint8_t flags = kSyn | kAck) {
  TcpPacket r{{kPodsMac, pod_mac(pod)}, {pod, in.l3.src}, {kTarget, in.tcp.sport, flags}, {}};
  r.tcp.seq = 5000;
  r.tcp.ack = in.tcp.seq + 1;
  return r;
}

// What the client should receive for `r`: from VIP:80, TTL - 1, out the
// uplink to `next_hop_mac`.
TcpPacket reverse_nat(TcpPacket r, Ip4 vip, uint16_t vport, const MacAddr& next_hop_mac) {
  r.l2 = {next_hop_mac, kUplinkMac};
  r.l3.src = vip;
  r.l3.ttl = static_cast<uint8_t>(r.l3.ttl - 1);
  r.tcp.sport = vport;
  return r;
}

// --- the golden table ------------------------------------------------------------

struct Step {
  size_t port;  // where the frame arrives
  Bytes frame;
};

// An ICMP error (RFC 792) from `src` to `dst` quoting the first
// `quote_len` bytes of `quoted`'s IP datagram; `rest` is the header's last
// word (the next-hop MTU of "fragmentation needed", RFC 1191).
Bytes icmp_error(const L2& l2, Ip4 src, Ip4 dst, uint8_t type, uint8_t code, uint32_t rest,
                 const Bytes& quoted, size_t quote_len, uint8_t ttl = 64) {
  Bytes icmp = {type, code, 0, 0, static_cast<uint8_t>(rest >> 24), static_cast<uint8_t>(rest >> 16),
                static_cast<uint8_t>(rest >> 8), static_cast<uint8_t>(rest)};
  icmp.insert(icmp.end(), quoted.begin() + kIpOff, quoted.begin() + kIpOff + quote_len);
  const rte_be16_t sum = dp::internet_checksum(icmp);
  std::memcpy(&icmp[2], &sum, 2);
  L3 l3{src, dst};
  l3.ttl = ttl;
  return ipv4_frame(l2, l3, 1, icmp);
}

constexpr uint8_t kUnreachable = 3, kFragNeeded = 4, kPortUnreachable = 3, kTimeExceeded = 11;

// An ICMP error as podgate sends one (RFC 1812 §4.3.2): from the address
// of the port the packet came in, TOS 0xc0, TTL 64, no DF, ID 0.
Bytes podgate_icmp_error(const L2& l2, Ip4 from, Ip4 to, uint8_t type, uint8_t code, uint32_t rest,
                         const Bytes& quoted, size_t quote_len) {
  Bytes f = icmp_error(l2, from, to, type, code, rest, quoted, quote_len);
  put8(f, kIpOff + 1, 0xc0);
  put16(f, kIpOff + 4, 0);
  put16(f, kIpOff + 6, 0);
  fix_ip_checksum(f);
  return f;
}

const Ip4 kUplinkIp4 = ip("192.0.2.1");
const Ip4 kPodsIp4 = ip("172.17.0.1");

struct Verdict {
  enum class Kind { kSent, kDropped, kPunted };
  Kind kind = Kind::kSent;
  size_t tx_port = 0;            // kSent
  std::vector<Bytes> one_of;     // kSent, kPunted: the frame, or its alternatives
  DropReason reason{};           // kDropped: this counter, and only it, goes up by one
  // kDropped with one_of: the answer sent back on tx_port (an ICMP error)
  PuntKind punt_kind{};          // kPunted
  uint16_t punt_port = 0;
  Ip4 next_hop;
  // Optionally, a counter that must go up by exactly `counter_delta`.
  dp::Counter WorkerCounters::*counter = nullptr;
  const char* counter_name = "";
  uint64_t counter_delta = 1;
};

Verdict counting(Verdict v, dp::Counter WorkerCounters::*counter, const char* name, uint64_t delta = 1) {
  v.counter = counter;
  v.counter_name = name;
  v.counter_delta = delta;
  return v;
}

Verdict sent(size_t port, std::vector<Bytes> one_of) {
  Verdict v;
  v.tx_port = port;
  v.one_of = std::move(one_of);
  return v;
}
Verdict sent(size_t port, Bytes frame) { return sent(port, std::vector<Bytes>{std::move(frame)}); }
Verdict dropped(DropReason r) {
  Verdict v;
  v.kind = Verdict::Kind::kDropped;
  v.reason = r;
  return v;
}
// Dropped for `r`, and its source told so by `answer` on `port`.
Verdict refused(DropReason r, size_t port, Bytes answer) {
  Verdict v = dropped(r);
  v.tx_port = port;
  v.one_of = {std::move(answer)};
  return v;
}
Verdict punted(PuntKind kind, size_t port, Ip4 next_hop, Bytes frame) {
  Verdict v;
  v.kind = Verdict::Kind::kPunted;
  v.punt_kind = kind;
  v.punt_port = static_cast<uint16_t>(port);
  v.next_hop = next_hop;
  v.one_of = {std::move(frame)};
  return v;
}

// What the `before` packets produced, one frame each, in order.
using Before = std::vector<Bytes>;

struct Golden {
  std::string name;         // the test's name: the behaviour
  std::string description;  // what is sent, what must happen
  std::vector<Step> before;  // sent first, each must produce one frame
  std::function<Step(const Before&)> input;
  std::function<Verdict(const Before&)> expect;
};

// gtest prints a parameter on failure: its name, not its bytes.
void PrintTo(const Golden& g, std::ostream* os) { *os << g.name; }

Golden row(std::string name, std::string description, Step input, Verdict expect) {
  return Golden{std::move(name), std::move(description), {},
                [input](const Before&) { return input; }, [expect](const Before&) { return expect; }};
}

// Frames that are broken in one way each; everything else about them is
// valid (checksums recomputed after the damage unless it is the damage).
Bytes with_bad_ip_checksum() {
  Bytes f = to_vip(40000).frame();
  f[kIpOff + 10] ^= 0x5a;
  return f;
}
Bytes with_overrunning_ip_options() {
  TcpPacket p = to_vip(40000);
  p.l3.options = {0x01, 0x07, 0x08, 0x00};  // NOP, then Record Route claiming 8 of 3 bytes
  return p.frame();
}
Bytes fragment(uint16_t frag_word) {
  TcpPacket p = to_vip(40000);
  p.l3.frag = frag_word;
  return p.frame();
}
Bytes truncated_tcp() {
  // 12 bytes where a 20-byte TCP header should be; IP length agrees.
  return ipv4_frame({kUplinkMac, kClientMac}, {kClient, kVip}, kProtoTcp, Bytes(12, 0));
}
Bytes gre_packet() {
  return ipv4_frame({kUplinkMac, kClientMac}, {kClient, kVip}, 47, Bytes(8, 0));
}

Bytes arp_request(Ip4 asker, const MacAddr& asker_mac, Ip4 target) {
  return arp_frame({kBroadcast, asker_mac}, Arp{kArpRequest, asker_mac, asker, MacAddr{}, target});
}
// RFC 826: the reply swaps sender and target and names us as sender.
Bytes arp_reply(const MacAddr& our_mac, Ip4 asked, const MacAddr& asker_mac, Ip4 asker) {
  return arp_frame({asker_mac, our_mac}, Arp{kArpReply, our_mac, asked, asker_mac, asker});
}

const Bytes kPingData = {'p', 'o', 'd', 'g', 'a', 't', 'e', '!', 0, 1, 2, 3};
Bytes ping(Ip4 to, uint8_t ttl = 64) {
  L3 l3{kClient, to};
  l3.ttl = ttl;
  return icmp_echo_frame({kUplinkMac, kClientMac}, l3, kIcmpEchoRequest, 0x4242, 7, kPingData);
}
// RFC 792: addresses swapped, type 0, identifier, sequence and data echoed;
// podgate sends it with a fresh TTL of 64, back to the asker's MAC.
Bytes pong(Ip4 from) {
  return icmp_echo_frame({kClientMac, kUplinkMac}, {from, kClient}, kIcmpEchoReply, 0x4242, 7, kPingData);
}
Bytes icmp_fragment() {
  L3 l3{kClient, kVip};
  l3.frag = kMoreFragments;
  return icmp_echo_frame({kUplinkMac, kClientMac}, l3, kIcmpEchoRequest, 0x4242, 7, kPingData);
}

std::vector<Golden> golden_table() {
  std::vector<Golden> t;
  const TcpPacket syn = to_vip(40000);

  t.push_back(row("SynToVipIsDnatedToAReadyPod",
                  "TCP SYN client:40000 -> 10.96.0.20:80 leaves the pods port to 172.17.0.10 or .11 "
                  "(never the draining .12) at :8080, Pod MAC, pods port MAC, TTL 63",
                  {kUplink, syn.frame()}, sent(kPods, dnat_to_any(syn, {kPod0, kPod1}))));

  {
    TcpPacket ack = to_vip(40000, kAck);
    ack.tcp.seq = 1001;
    ack.tcp.ack = 5001;
    ack.payload = {'G', 'E', 'T', ' ', '/', '\r', '\n'};
    t.push_back(Golden{"SameFiveTupleGoesToTheSamePod",
                       "after a SYN, the next packet of the connection (ACK with data) goes to the Pod "
                       "the SYN went to",
                       {{kUplink, syn.frame()}},
                       [ack](const Before&) { return Step{kUplink, ack.frame()}; },
                       [ack](const Before& b) { return sent(kPods, dnat(ack, ip_dst(b[0])).frame()); }});
  }

  t.push_back(Golden{"PodReplyIsReverseNatedToTheClient",
                     "the Pod's SYN-ACK from :8080 leaves the uplink from 10.96.0.20:80 to the client's MAC",
                     {{kUplink, syn.frame()}},
                     [syn](const Before& b) { return Step{kPods, reply_from(ip_dst(b[0]), syn).frame()}; },
                     [syn](const Before& b) {
                       // By its flow entry, not by the stateless fallback.
                       return counting(
                           sent(kUplink, reverse_nat(reply_from(ip_dst(b[0]), syn), kVip, kHttp, kClientMac).frame()),
                           &WorkerCounters::replies_stateless, "replies_stateless", 0);
                     }});

  {
    // No flow entry (e.g. the table was full when the connection started):
    // a Pod port that backs exactly one service port is mapped back to it.
    const TcpPacket r = reply_from(kPod0, to_vip(40001));
    t.push_back(row("ReplyWithoutFlowIsReverseNatedByItsOnlyService",
                    "a SYN-ACK from 172.17.0.10:8080 with no flow entry: it backs only my-app:80, so it "
                    "leaves the uplink from 10.96.0.20:80, counted as replies_stateless",
                    {kPods, r.frame()},
                    counting(sent(kUplink, reverse_nat(r, kVip, kHttp, kClientMac).frame()),
                             &WorkerCounters::replies_stateless, "replies_stateless")));
    TcpPacket unknown = r;
    unknown.tcp.sport = 9090;
    t.push_back(row("ReplyWithoutFlowFromUnservedPortIsDropped",
                    "a SYN-ACK from 172.17.0.10:9090 (backs no service) with no flow: dropped as no_flow",
                    {kPods, unknown.frame()}, dropped(DropReason::kNoFlow)));
    TcpPacket ambiguous = reply_from(kTwoPortsPod, to_vip(40001));
    ambiguous.tcp.sport = 9000;
    t.push_back(row("ReplyWithoutFlowFromPodOfTwoServicePortsIsDropped",
                    "a SYN-ACK from 172.17.0.15:9000, which backs 10.96.0.60:80 and :81, with no flow: "
                    "it cannot be mapped back, dropped as no_flow",
                    {kPods, ambiguous.frame()}, dropped(DropReason::kNoFlow)));
  }

  t.push_back(row("VipOnUnservedPortIsRefused",
                  "TCP to 10.96.0.20:81 is dropped as no_service, and the client told port unreachable",
                  {kUplink, to_vip(40000, kSyn, kVip, 81).frame()},
                  refused(DropReason::kNoService, kUplink,
                          podgate_icmp_error({kClientMac, kUplinkMac}, kUplinkIp4, kClient, kUnreachable,
                                             kPortUnreachable, 0, to_vip(40000, kSyn, kVip, 81).frame(), 40))));

  {
    // Field by field: g++ 12 at -O3 takes the aggregate-initialised L3's
    // options vector for uninitialised in this long function (a false
    // -Wmaybe-uninitialized).
    UdpPacket q;
    q.l2 = {kUplinkMac, kClientMac};
    q.l3.src = kClient;
    q.l3.dst = kUdpVip;
    q.udp = {5000, kDnsPort};
    q.payload = {1, 2, 3, 4, 5, 6, 7};
    std::vector<Bytes> any;
    for (Ip4 pod : {kPod0, kPod1}) {
      UdpPacket e = q;
      e.l2 = {pod_mac(pod), kPodsMac};
      e.l3.dst = pod;
      e.l3.ttl = 63;
      any.push_back(e.frame());
    }
    t.push_back(row("UdpToUdpServiceIsDnated", "UDP client:5000 -> 10.96.0.30:5353 goes to a ready Pod :5353",
                    {kUplink, q.frame()}, sent(kPods, any)));
    q.udp.checksum = false;
    q.udp.sport = 5001;
    any.clear();
    for (Ip4 pod : {kPod0, kPod1}) {
      UdpPacket e = q;
      e.l2 = {pod_mac(pod), kPodsMac};
      e.l3.dst = pod;
      e.l3.ttl = 63;
      any.push_back(e.frame());
    }
    t.push_back(row("UdpWithoutChecksumStaysWithout",
                    "a UDP datagram with checksum 0 (none, RFC 768) is DNATed and keeps checksum 0",
                    {kUplink, q.frame()}, sent(kPods, any)));
  }


  t.push_back(row("BadIpChecksumIsDropped", "a header checksum that does not add up is dropped as bad_ip_checksum",
                  {kUplink, with_bad_ip_checksum()}, dropped(DropReason::kBadIpChecksum)));
  for (const char* martian : {"127.0.0.1", "0.0.0.0", "255.255.255.255", "224.0.0.1", "240.0.0.9"}) {
    TcpPacket p = to_vip(40000);
    p.l3.src = ip(martian);
    std::string name = std::string("MartianSource_") + martian;
    std::replace(name.begin(), name.end(), '.', '_');
    t.push_back(row(name, "a SYN from a martian source (RFC 1812 5.3.7) makes no flow: martian_source",
                    {kUplink, p.frame()}, dropped(DropReason::kMartianSource)));
  }
  for (const char* ours : {"10.96.0.30", "192.0.2.1", "172.17.0.1"}) {
    TcpPacket p = to_vip(40000);
    p.l3.src = ip(ours);
    std::string name = std::string("SourceIsOurs_") + ours;
    std::replace(name.begin(), name.end(), '.', '_');
    t.push_back(row(name, "a SYN claiming a VIP or a podgate address as its source makes no flow",
                    {kUplink, p.frame()}, dropped(DropReason::kSourceIsOurs)));
  }
  t.push_back(row("MalformedIpOptionsAreDropped", "an option longer than the header is dropped as ip_options",
                  {kUplink, with_overrunning_ip_options()}, dropped(DropReason::kIpOptions)));
  t.push_back(row("IcmpFragmentIsDropped", "an ICMP echo to a VIP with MF set: dropped as fragment "
                  "(TCP and UDP fragments are forwarded: the Fragments tests)",
                  {kUplink, icmp_fragment()}, dropped(DropReason::kFragment)));
  t.push_back(row("TcpFragmentAtOffsetOneIsDropped", "offset 1 (8 bytes) of TCP would overwrite the flags: "
                  "dropped as fragment_tiny (RFC 1858)",
                  {kUplink, fragment(1)}, dropped(DropReason::kFragmentTiny)));
  t.push_back(row("TruncatedTcpIsDropped", "12 bytes of TCP header: dropped as truncated_l4",
                  {kUplink, truncated_tcp()}, dropped(DropReason::kTruncatedL4)));
  t.push_back(row("UnsupportedProtocolIsDropped", "GRE to the VIP: dropped as unsupported_proto",
                  {kUplink, gre_packet()}, dropped(DropReason::kUnsupportedProto)));

  t.push_back(row("ArpForPortAddressIsAnswered",
                  "ARP who-has 192.0.2.1 from the client: reply out the uplink, sender = uplink MAC",
                  {kUplink, arp_request(kClient, kClientMac, kUplinkIp)},
                  sent(kUplink, arp_reply(kUplinkMac, kUplinkIp, kClientMac, kClient))));
  t.push_back(row("ArpForVipIsAnswered", "ARP who-has 10.96.0.20 on the uplink: answered with the uplink MAC",
                  {kUplink, arp_request(kClient, kClientMac, kVip)},
                  sent(kUplink, arp_reply(kUplinkMac, kVip, kClientMac, kClient))));
  t.push_back(row("ArpOnPodsPortIsAnsweredThere",
                  "ARP who-has 172.17.0.1 from a Pod: reply out the pods port with the pods port MAC",
                  {kPods, arp_request(kPod0, pod_mac(kPod0), kPodsIp)},
                  sent(kPods, arp_reply(kPodsMac, kPodsIp, pod_mac(kPod0), kPod0))));
  t.push_back(row("ArpForOtherAddressIsNotAnswered", "ARP who-has 192.0.2.77: dropped as arp_not_for_us",
                  {kUplink, arp_request(kClient, kClientMac, ip("192.0.2.77"))},
                  dropped(DropReason::kArpNotForUs)));
  {
    Bytes reply = arp_frame({kUplinkMac, kGatewayMac}, Arp{kArpReply, kGatewayMac, kGateway, kUplinkMac, kUplinkIp});
    t.push_back(row("ArpReplyIsPuntedToControl", "an ARP reply goes to the control thread to be learnt",
                    {kUplink, reply}, punted(PuntKind::kArp, kUplink, Ip4{}, reply)));
    // What could teach nothing stays in the worker (Snapshot::arp_may_teach).
    t.push_back(row("ArpReplyFromOffTheSubnetIsDropped",
                    "an ARP reply from 198.51.100.7, not on the uplink's subnet: dropped as arp_not_for_us",
                    {kUplink, arp_frame({kUplinkMac, kGatewayMac},
                                        Arp{kArpReply, kGatewayMac, kFarClient, kUplinkMac, kUplinkIp})},
                    dropped(DropReason::kArpNotForUs)));
    t.push_back(row("ArpReplyToAnotherAddressIsDropped",
                    "an ARP reply to 192.0.2.77, not the uplink's address: dropped as arp_not_for_us",
                    {kUplink, arp_frame({kUplinkMac, kGatewayMac},
                                        Arp{kArpReply, kGatewayMac, kGateway, kUplinkMac, ip("192.0.2.77")})},
                    dropped(DropReason::kArpNotForUs)));
    t.push_back(row("ArpReplyClaimingTheUplinksAddressIsDropped",
                    "an ARP reply from 192.0.2.1, podgate's own address: dropped as arp_not_for_us",
                    {kUplink, arp_frame({kUplinkMac, kGatewayMac},
                                        Arp{kArpReply, kGatewayMac, kUplinkIp, kUplinkMac, kUplinkIp})},
                    dropped(DropReason::kArpNotForUs)));
  }

  t.push_back(row("PingToVipIsAnswered", "ICMP echo to 10.96.0.20: echo reply from the VIP, same id/seq/data",
                  {kUplink, ping(kVip)}, sent(kUplink, pong(kVip))));
  t.push_back(row("PingToPortAddressIsAnswered", "ICMP echo to 192.0.2.1: echo reply",
                  {kUplink, ping(kUplinkIp)}, sent(kUplink, pong(kUplinkIp))));
  t.push_back(row("PingToUnknownAddressIsDropped", "ICMP echo to 203.0.113.9: dropped as not_for_us",
                  {kUplink, ping(ip("203.0.113.9"))}, dropped(DropReason::kNotForUs)));

  {
    TcpPacket p = to_vip(40000, kSyn, kUnresolvedVip);
    // Punted before the MACs are written: only the NAT and TTL are done.
    TcpPacket e = p;
    e.l3.dst = kUnresolvedPod;
    e.l3.ttl = 63;
    e.tcp.dport = kTarget;
    t.push_back(row("UnresolvedNextHopIsPunted",
                    "SYN to 10.96.0.50:80 whose Pod 172.17.0.20 has no MAC: translated and punted as "
                    "kUnresolved with next hop 172.17.0.20 on the pods port",
                    {kUplink, p.frame()}, punted(PuntKind::kUnresolved, kPods, kUnresolvedPod, e.frame())));
  }

  t.push_back(row("ServiceWithoutReadyEndpointIsRefused",
                  "SYN to 10.96.0.40:80, whose endpoints are all not ready: dropped as no_endpoint, and the "
                  "client told port unreachable (as kube-proxy's REJECT)",
                  {kUplink, to_vip(40000, kSyn, kIdleVip).frame()},
                  refused(DropReason::kNoEndpoint, kUplink,
                          podgate_icmp_error({kClientMac, kUplinkMac}, kUplinkIp4, kClient, kUnreachable,
                                             kPortUnreachable, 0, to_vip(40000, kSyn, kIdleVip).frame(), 40))));

  {
    TcpPacket far = to_vip(40000);
    far.l2.src = kGatewayMac;
    far.l3.src = kFarClient;
    t.push_back(Golden{"ReplyToRoutedClientGoesToTheGateway",
                       "a client in 198.51.100.0/24 (route via 192.0.2.254): the Pod's reply leaves the uplink "
                       "to the gateway's MAC",
                       {{kUplink, far.frame()}},
                       [far](const Before& b) { return Step{kPods, reply_from(ip_dst(b[0]), far).frame()}; },
                       [far](const Before& b) {
                         return sent(kUplink, reverse_nat(reply_from(ip_dst(b[0]), far), kVip, kHttp, kGatewayMac)
                                                  .frame());
                       }});
  }
  return t;
}

class WorkerGolden : public ::testing::TestWithParam<Golden> {};

TEST_P(WorkerGolden, Verdict) {
  const Golden& g = GetParam();
  SCOPED_TRACE(g.description);
  auto d = make_dataplane();

  Before before;
  for (const Step& s : g.before) {
    std::vector<Output> out = d->send(s.port, s.frame);
    ASSERT_EQ(out.size(), 1u) << "a `before` packet produced " << out.size() << " frames: " << describe(s.frame)
                              << "; drops: " << d->drop_summary();
    before.push_back(out[0].frame);
  }
  const Step in = g.input(before);
  const Verdict want = g.expect(before);

  const uint64_t drops_before = d->drops_total();
  const uint64_t reason_before = want.kind == Verdict::Kind::kDropped ? d->drops(want.reason) : 0;
  const uint64_t flows_before = d->worker(0).flows().size();
  const uint64_t counter_before = want.counter ? d->total(want.counter) : 0;

  std::vector<Output> out = d->send(in.port, in.frame);
  std::vector<Punted> punts = d->take_punted();

  if (want.counter != nullptr) {
    EXPECT_EQ(d->total(want.counter) - counter_before, want.counter_delta) << want.counter_name;
  }
  switch (want.kind) {
    case Verdict::Kind::kSent: {
      EXPECT_EQ(d->drops_total(), drops_before) << "drops: " << d->drop_summary();
      EXPECT_TRUE(punts.empty());
      ASSERT_EQ(out.size(), 1u) << "input: " << describe(in.frame) << "; drops: " << d->drop_summary();
      EXPECT_EQ(out[0].port, want.tx_port) << "left on the wrong port";
      EXPECT_EQ(out[0].queue, 0u) << "a worker transmits on its own TX queue";
      EXPECT_TRUE(frame_is_one_of(out[0].frame, want.one_of));
      if (ether_type(out[0].frame) == kEtherIpv4) {
        EXPECT_TRUE(checksums_valid(out[0].frame));
      }
      break;
    }
    case Verdict::Kind::kDropped: {
      if (want.one_of.empty()) {
        EXPECT_TRUE(out.empty()) << "sent: " << (out.empty() ? "" : describe(out[0].frame));
      } else {
        ASSERT_EQ(out.size(), 1u) << "the answer to its source; drops: " << d->drop_summary();
        EXPECT_EQ(out[0].port, want.tx_port);
        EXPECT_TRUE(frame_is_one_of(out[0].frame, want.one_of));
        EXPECT_TRUE(checksums_valid(out[0].frame));
      }
      EXPECT_TRUE(punts.empty());
      EXPECT_EQ(d->drops(want.reason) - reason_before, 1u)
          << "expected one " << dp::drop_reason_name(want.reason) << "; drops: " << d->drop_summary();
      EXPECT_EQ(d->drops_total() - drops_before, 1u) << "drops: " << d->drop_summary();
      // A packet that is dropped leaves no state behind.
      EXPECT_EQ(d->worker(0).flows().size(), flows_before) << "a dropped packet changed the flow table";
      break;
    }
    case Verdict::Kind::kPunted: {
      EXPECT_TRUE(out.empty()) << "sent: " << (out.empty() ? "" : describe(out[0].frame));
      EXPECT_EQ(d->drops_total(), drops_before) << "drops: " << d->drop_summary();
      ASSERT_EQ(punts.size(), 1u);
      EXPECT_EQ(punts[0].kind, want.punt_kind);
      EXPECT_EQ(punts[0].port, want.punt_port);
      EXPECT_EQ(punts[0].next_hop, want.next_hop) << str(punts[0].next_hop) << " vs " << str(want.next_hop);
      EXPECT_TRUE(frame_is_one_of(punts[0].frame, want.one_of));
      if (ether_type(punts[0].frame) == kEtherIpv4) {
        EXPECT_TRUE(checksums_valid(punts[0].frame));
      }
      break;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Table, WorkerGolden, ::testing::ValuesIn(golden_table()),
                         [](const ::testing::TestParamInfo<Golden>& info) { return info.param.name; });

// --- behaviours of the real pipeline -----------------------------------------

struct Flow {
  TcpPacket syn;  // the client's first packet
  Ip4 pod;        // where it went
};

// Checks a forwarded client packet: translated to a ready Pod of my-app,
// byte for byte as dnat() says, with valid checksums.
::testing::AssertionResult is_dnat_of(const Bytes& out, const TcpPacket& in, std::initializer_list<Ip4> pods) {
  auto r = frame_is_one_of(out, dnat_to_any(in, pods));
  if (!r) return r;
  return checksums_valid(out);
}

// Opens one connection per client port: a SYN from each, all on the uplink.
// Returns the flows keyed by client port.
std::map<uint16_t, Flow> open_flows(Dataplane& d, const std::vector<uint16_t>& client_ports,
                                    std::initializer_list<Ip4> allowed) {
  std::map<uint16_t, TcpPacket> syns;
  std::vector<Bytes> frames;
  for (uint16_t port : client_ports) {
    syns.emplace(port, to_vip(port));
    frames.push_back(syns.at(port).frame());
  }
  std::map<uint16_t, Flow> flows;
  for (const Output& o : d.send(kUplink, frames)) {
    const uint16_t port = l4_sport(o.frame);
    auto it = syns.find(port);
    if (it == syns.end()) {
      ADD_FAILURE() << "unexpected output " << describe(o.frame);
      continue;
    }
    EXPECT_EQ(o.port, kPods);
    EXPECT_TRUE(is_dnat_of(o.frame, it->second, allowed));
    flows[port] = Flow{it->second, ip_dst(o.frame)};
  }
  EXPECT_EQ(flows.size(), client_ports.size()) << "drops: " << d.drop_summary();
  return flows;
}

// Sends the next packet (an ACK) of every flow; returns where each went.
std::map<uint16_t, Ip4> continue_flows(Dataplane& d, const std::map<uint16_t, Flow>& flows) {
  std::vector<Bytes> frames;
  std::map<uint16_t, TcpPacket> acks;
  for (const auto& [port, f] : flows) {
    TcpPacket ack = f.syn;
    ack.tcp.flags = kAck;
    ack.tcp.seq += 1;
    acks.emplace(port, ack);
    frames.push_back(ack.frame());
  }
  std::map<uint16_t, Ip4> went;
  for (const Output& o : d.send(kUplink, frames)) {
    const uint16_t port = l4_sport(o.frame);
    EXPECT_EQ(o.port, kPods);
    EXPECT_TRUE(is_dnat_of(o.frame, acks.at(port), {kPod0, kPod1, kPod2, kPod3}));
    went[port] = ip_dst(o.frame);
  }
  return went;
}

std::vector<uint16_t> port_range(uint16_t first, size_t n) {
  std::vector<uint16_t> v;
  for (size_t i = 0; i < n; ++i) v.push_back(static_cast<uint16_t>(first + i));
  return v;
}

size_t count_on(const std::map<uint16_t, Flow>& flows, Ip4 pod) {
  size_t n = 0;
  for (const auto& [port, f] : flows) n += f.pod == pod;
  return n;
}

TEST(WorkerPipeline, TwoWorkersHandBothDirectionsToTheFlowOwner) {
  // Single-queue ports: worker 0 polls the uplink, worker 1 the pods port,
  // so every connection owned by the other worker must cross a handoff ring
  // in one direction (architecture decision 4).
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.workers = 2;
  s.rx = {{kUplink}, {kPods}};
  auto d = make_dataplane(std::move(s));

  const std::vector<uint16_t> ports = port_range(30000, 200);
  std::map<uint16_t, Flow> flows;
  std::map<uint16_t, uint16_t> forward_queue;
  std::vector<Bytes> syns;
  for (uint16_t p : ports) syns.push_back(to_vip(p).frame());
  for (const Output& o : d->send(kUplink, syns)) {
    const uint16_t port = l4_sport(o.frame);
    ASSERT_EQ(o.port, kPods);
    EXPECT_TRUE(is_dnat_of(o.frame, to_vip(port), {kPod0, kPod1}));
    flows[port] = Flow{to_vip(port), ip_dst(o.frame)};
    forward_queue[port] = o.queue;
  }
  ASSERT_EQ(flows.size(), ports.size()) << "drops: " << d->drop_summary();

  std::vector<Bytes> replies;
  for (const auto& [port, f] : flows) replies.push_back(reply_from(f.pod, f.syn).frame());
  size_t replies_out = 0;
  for (const Output& o : d->send(kPods, replies)) {
    ASSERT_EQ(o.port, kUplink);
    const uint16_t port = l4_dport(o.frame);
    const Flow& f = flows.at(port);
    EXPECT_TRUE(frames_equal(o.frame, reverse_nat(reply_from(f.pod, f.syn), kVip, kHttp, kClientMac).frame()));
    EXPECT_TRUE(checksums_valid(o.frame));
    // Both directions were sent by the same worker: the flow's owner.
    const uint32_t owner = d->worker(0).ownership().owner(kClient, dp::to_be16(port));
    EXPECT_EQ(o.queue, owner) << "reply of client port " << port;
    EXPECT_EQ(forward_queue.at(port), owner) << "forward packet of client port " << port;
    ++replies_out;
  }
  EXPECT_EQ(replies_out, ports.size());
  // Every reply found its flow entry, i.e. reached the worker that holds it
  // (a reply on the wrong worker would be translated statelessly instead).
  EXPECT_EQ(d->total(&WorkerCounters::replies_stateless), 0u);
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
  EXPECT_GT(d->worker(0).counters().handoff_out.get(), 0u) << "no forward packet crossed to worker 1";
  EXPECT_GT(d->worker(1).counters().handoff_out.get(), 0u) << "no reply crossed to worker 0";
  EXPECT_EQ(d->total(&WorkerCounters::handoff_out), d->total(&WorkerCounters::handoff_in));
}

// Two workers behind ports with RSS on the client's fields (test_env's
// rss_steered).
std::unique_ptr<Dataplane> rss_steered_workers() {
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.workers = 2;
  s.rss_steered = true;
  return make_dataplane(std::move(s));
}

TEST(WorkerPipeline, RssSteeredConnectionsReachTheirOwnerWithNoHandoff) {
  // Ports that hash the client's fields (source on the uplink, destination
  // on the pods port) with the workers' own key and redirection table put
  // both directions of a connection on its owner's queue: nothing crosses
  // a handoff ring, and every reply finds its flow entry.
  auto d = rss_steered_workers();

  const std::vector<uint16_t> ports = port_range(30000, 200);
  std::map<uint16_t, Flow> flows;
  std::vector<Bytes> syns;
  std::set<uint16_t> queues;
  for (uint16_t p : ports) {
    syns.push_back(to_vip(p).frame());
    queues.insert(d->rss_queue(kUplink, syns.back()));
  }
  ASSERT_EQ(queues.size(), 2u) << "the connections must spread over both workers";
  for (const Output& o : d->send(kUplink, syns)) {
    const uint16_t port = l4_sport(o.frame);
    ASSERT_EQ(o.port, kPods);
    EXPECT_EQ(o.queue, d->worker(0).ownership().owner(kClient, dp::to_be16(port)));
    flows[port] = Flow{to_vip(port), ip_dst(o.frame)};
  }
  ASSERT_EQ(flows.size(), ports.size()) << "drops: " << d->drop_summary();

  std::vector<Bytes> replies;
  for (const auto& [port, f] : flows) replies.push_back(reply_from(f.pod, f.syn).frame());
  size_t replies_out = 0;
  for (const Output& o : d->send(kPods, replies)) {
    ASSERT_EQ(o.port, kUplink);
    const uint16_t port = l4_dport(o.frame);
    EXPECT_EQ(o.queue, d->worker(0).ownership().owner(kClient, dp::to_be16(port)));
    ++replies_out;
  }
  EXPECT_EQ(replies_out, ports.size());
  EXPECT_EQ(d->total(&WorkerCounters::handoff_out), 0u);
  EXPECT_EQ(d->total(&WorkerCounters::replies_stateless), 0u);
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerPipeline, APacketAClientRssDeviceSpreadOtherwiseStillReachesItsOwner) {
  // A worker takes an IPv4 TCP/UDP packet on its client-RSS queue as its
  // own and looks it up with no hash of its own (RxQueue::client_rss).
  // Should a device spread one otherwise, the lookup misses and the packet
  // is handed to its owner as any other: every SYN, ACK and reply here
  // arrives on the other worker's queue, and each is still pinned,
  // forwarded and translated back by its connection's owner.
  auto d = rss_steered_workers();
  // Puts each frame on the queue of the worker that does not own it.
  auto send_astray = [&d](size_t in, const std::vector<Bytes>& frames) {
    for (const Bytes& f : frames) {
      EXPECT_TRUE(d->port(in).inject(f, static_cast<uint16_t>(1 - d->rss_queue(in, f))));
    }
    d->poll_until_idle();
    return d->collect();
  };
  const auto owner = [&d](uint16_t client_port) {
    return d->worker(0).ownership().owner(kClient, dp::to_be16(client_port));
  };

  const std::vector<uint16_t> ports = port_range(31000, 64);
  std::vector<Bytes> syns, acks;
  for (uint16_t p : ports) {
    syns.push_back(to_vip(p).frame());
    TcpPacket ack = to_vip(p, kAck);
    ack.tcp.seq += 1;
    acks.push_back(ack.frame());
  }
  std::map<uint16_t, Flow> flows;
  for (const Output& o : send_astray(kUplink, syns)) {
    const uint16_t port = l4_sport(o.frame);
    ASSERT_EQ(o.port, kPods);
    EXPECT_EQ(o.queue, owner(port)) << "SYN of client port " << port;
    flows[port] = Flow{to_vip(port), ip_dst(o.frame)};
  }
  ASSERT_EQ(flows.size(), ports.size()) << "drops: " << d->drop_summary();
  // Every connection is pinned once, in its owner's table.
  EXPECT_EQ(d->total(&WorkerCounters::flows_created), ports.size());
  size_t owned_by_1 = 0;
  for (uint16_t p : ports) owned_by_1 += owner(p);
  EXPECT_EQ(d->worker(1).flows().size(), owned_by_1);
  EXPECT_EQ(d->worker(0).flows().size(), ports.size() - owned_by_1);

  size_t acks_out = 0;
  for (const Output& o : send_astray(kUplink, acks)) {
    const uint16_t port = l4_sport(o.frame);
    EXPECT_EQ(o.queue, owner(port)) << "ACK of client port " << port;
    EXPECT_EQ(ip_dst(o.frame), flows.at(port).pod) << "the ACK must follow its SYN";
    ++acks_out;
  }
  EXPECT_EQ(acks_out, ports.size());

  std::vector<Bytes> replies;
  for (const auto& [port, f] : flows) replies.push_back(reply_from(f.pod, f.syn).frame());
  size_t replies_out = 0;
  for (const Output& o : send_astray(kPods, replies)) {
    ASSERT_EQ(o.port, kUplink);
    EXPECT_EQ(o.queue, owner(l4_dport(o.frame)));
    ++replies_out;
  }
  EXPECT_EQ(replies_out, ports.size());
  // Each packet crossed once, and every reply found its flow.
  EXPECT_EQ(d->total(&WorkerCounters::handoff_out), 3 * ports.size());
  EXPECT_EQ(d->total(&WorkerCounters::replies_stateless), 0u);
  EXPECT_EQ(d->total(&WorkerCounters::flows_created), ports.size());
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerPipeline, APacketHandedToTheWrongWorkerIsHandedOnToItsOwner) {
  // A one-armed port (clients and Pods on one segment) is told the client
  // is the source, so each reply is first handed to the worker its Pod
  // address and port point to.  That worker finds no flow, classifies the
  // reply, and hands it on to the owner, which translates it by its flow.
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.workers = 2;
  s.rx = {{kUplink}, {}};
  auto d = make_dataplane(std::move(s));
  const std::vector<uint16_t> ports = port_range(40000, 100);
  std::map<uint16_t, Flow> flows;
  std::vector<Bytes> syns;
  for (uint16_t p : ports) syns.push_back(to_vip(p).frame());
  for (const Output& o : d->send(kUplink, syns)) {
    flows[l4_sport(o.frame)] = Flow{to_vip(l4_sport(o.frame)), ip_dst(o.frame)};
  }
  ASSERT_EQ(flows.size(), ports.size()) << "drops: " << d->drop_summary();
  // Replies arrive on the uplink's queue, which says "the client is the source".
  std::vector<Bytes> replies;
  for (const auto& [port, f] : flows) replies.push_back(reply_from(f.pod, f.syn).frame());
  size_t out = 0;
  for (const Output& o : d->send(kUplink, replies)) {
    EXPECT_EQ(o.queue, d->worker(0).ownership().owner(kClient, dp::to_be16(l4_dport(o.frame))));
    ++out;
  }
  EXPECT_EQ(out, ports.size());
  // Worker 1 polls no port: all it hands off, it hands on.
  EXPECT_GT(d->worker(1).counters().handoff_out.get(), 0u) << "no reply was handed on";
  EXPECT_EQ(d->total(&WorkerCounters::replies_stateless), 0u) << "every reply must reach its flow entry";
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerPipeline, APodsConnectionToAServiceIsPinnedByTheOwnerOfThePodsPort) {
  // A Pod calling a service: its SYN arrives on the pods port, whose queue
  // judges the owner by the destination (there, the client of a reply).
  // For a packet to a service the client is the source, so the flow must
  // be pinned by the owner of the Pod's address and port, whichever worker
  // pass 1 judged, or the Pod's replies, judged by their destination, would
  // miss it.  Worker 0 polls the uplink, worker 1 the pods port.
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.workers = 2;
  s.rx = {{kUplink}, {kPods}};
  auto d = make_dataplane(std::move(s));
  const Ip4 caller = kPod2;  // not ready: never a backend of a new connection
  const std::vector<uint16_t> ports = port_range(45000, 100);
  std::map<uint16_t, TcpPacket> syns;
  std::vector<Bytes> frames;
  for (uint16_t port : ports) {
    const TcpPacket syn{{kPodsMac, pod_mac(caller)}, {caller, kVip}, {port, kHttp, kSyn}, {}};
    syns.emplace(port, syn);
    frames.push_back(syn.frame());
  }
  std::map<uint16_t, Ip4> pod_of;
  for (const Output& o : d->send(kPods, frames)) {
    const uint16_t port = l4_sport(o.frame);
    ASSERT_EQ(o.port, kPods);
    EXPECT_TRUE(is_dnat_of(o.frame, syns.at(port), {kPod0, kPod1}));
    EXPECT_EQ(o.queue, d->worker(0).ownership().owner(caller, dp::to_be16(port))) << "SYN of port " << port;
    pod_of[port] = ip_dst(o.frame);
  }
  ASSERT_EQ(pod_of.size(), ports.size()) << "drops: " << d->drop_summary();

  std::vector<Bytes> replies;
  for (const auto& [port, pod] : pod_of) replies.push_back(reply_from(pod, syns.at(port)).frame());
  size_t out = 0;
  for (const Output& o : d->send(kPods, replies)) {
    const uint16_t port = l4_dport(o.frame);
    EXPECT_EQ(o.port, kPods);
    EXPECT_EQ(ip_src(o.frame), kVip);
    EXPECT_EQ(l4_sport(o.frame), kHttp);
    EXPECT_EQ(o.queue, d->worker(0).ownership().owner(caller, dp::to_be16(port))) << "reply to port " << port;
    ++out;
  }
  EXPECT_EQ(out, ports.size());
  EXPECT_EQ(d->total(&WorkerCounters::replies_stateless), 0u) << "every reply must reach its flow entry";
  EXPECT_EQ(d->total(&WorkerCounters::flows_created), ports.size());
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerPipeline, RepliesToClientsBeyondARouterLeaveThePodsCached) {
  // A gateway appliance's clients are many and beyond one router.  Their
  // replies take the router's MACs from the router cache, and must not
  // evict the Pods from the destination cache (1,024 slots): after replies
  // to 3,000 such clients, the Pods' next packets still hit it.  When the
  // router gets a new MAC, the next replies carry it.
  auto d = make_dataplane(kBaseConfig + "\n[[routes]]\nprefix = \"100.64.0.0/16\"\nvia = \"192.0.2.254\"\n");
  constexpr uint32_t kClients = 3000;
  std::vector<TcpPacket> syns;
  std::vector<Bytes> frames;
  for (uint32_t i = 0; i < kClients; ++i) {
    TcpPacket syn = to_vip(40000);
    syn.l3.src = Ip4::from_host(0x6440'0000u + i);
    syns.push_back(syn);
    frames.push_back(syn.frame());
  }
  std::map<uint32_t, Ip4> pod_of;  // by client address, host order
  for (const Output& o : d->send(kUplink, frames)) pod_of[ip_src(o.frame).host()] = ip_dst(o.frame);
  ASSERT_EQ(pod_of.size(), kClients) << d->drop_summary();

  auto replies_to = [&](const MacAddr& router_mac, uint32_t clients) {
    std::vector<Bytes> replies;
    for (uint32_t i = 0; i < clients; ++i) {
      replies.push_back(reply_from(pod_of.at(syns[i].l3.src.host()), syns[i], kAck).frame());
    }
    size_t back = 0;
    for (const Output& o : d->send(kPods, replies)) {
      EXPECT_EQ(o.port, kUplink);
      EXPECT_EQ(eth_dst(o.frame), router_mac) << describe(o.frame);
      EXPECT_EQ(eth_src(o.frame), kUplinkMac);
      ++back;
    }
    EXPECT_EQ(back, clients) << d->drop_summary();
  };
  const uint64_t before_replies = d->total(&WorkerCounters::adjacency_misses);
  replies_to(kGatewayMac, kClients);
  const uint64_t misses = d->total(&WorkerCounters::adjacency_misses);
  EXPECT_EQ(misses - before_replies, 1u) << "one entry, the route's, serves every client of its /16";
  std::vector<Bytes> acks;
  for (TcpPacket ack : syns) {
    ack.tcp.flags = kAck;
    ack.tcp.seq += 1;
    acks.push_back(ack.frame());
  }
  size_t to_pods = 0;
  for (const Output& o : d->send(kUplink, acks)) {
    EXPECT_EQ(eth_dst(o.frame), pod_mac(ip_dst(o.frame)));
    ++to_pods;
  }
  EXPECT_EQ(to_pods, kClients);
  EXPECT_EQ(d->total(&WorkerCounters::adjacency_misses), misses) << "the Pods' packets must hit";

  const MacAddr new_router_mac = mac("02:00:00:00:99:fe");
  d->neighbors().set(kGateway, new_router_mac);
  replies_to(new_router_mac, 100);
  EXPECT_EQ(d->total(&WorkerCounters::adjacency_misses), misses + 1) << "the new MAC, filled once";
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerPipeline, RepliesTakeTheLongestRouteWhereALongerOneSplitsASlash16) {
  // Replies find a routed client's router by the client's /16 (RoutedBy16)
  // only where all of that /16 takes one route.  100.64.7.0/24 splits
  // 100.64.0.0/16: its clients' replies go to its own router, the rest of
  // the /16's to the /16's.  A router with no MAC yet: the reply is
  // punted to be resolved, as any unresolved next hop.
  const Ip4 kNearRouter = ip("192.0.2.253");
  const MacAddr kNearRouterMac = mac("02:00:00:00:02:fd");
  const Ip4 kUnresolvedRouter = ip("192.0.2.252");
  auto d = make_dataplane(kBaseConfig +
                          "\n[[routes]]\nprefix = \"100.64.0.0/16\"\nvia = \"192.0.2.254\"\n"
                          "\n[[routes]]\nprefix = \"100.64.7.0/24\"\nvia = \"192.0.2.253\"\n"
                          "\n[[routes]]\nprefix = \"100.65.0.0/16\"\nvia = \"192.0.2.252\"\n");
  d->neighbors().set(kNearRouter, kNearRouterMac);
  const std::vector<std::pair<Ip4, MacAddr>> to_router = {
      {ip("100.64.7.9"), kNearRouterMac}, {ip("100.64.8.9"), kGatewayMac},
      {ip("100.64.7.200"), kNearRouterMac}, {ip("100.64.255.1"), kGatewayMac}};
  for (const auto& [client, router_mac] : to_router) {
    TcpPacket syn = to_vip(40000);
    syn.l3.src = client;
    const std::vector<Output> in = d->send(kUplink, {syn.frame()});
    ASSERT_EQ(in.size(), 1u) << d->drop_summary();
    const std::vector<Output> out = d->send(kPods, {reply_from(ip_dst(in[0].frame), syn, kAck).frame()});
    ASSERT_EQ(out.size(), 1u) << str(client) << ": " << d->drop_summary();
    EXPECT_EQ(out[0].port, kUplink);
    EXPECT_EQ(eth_dst(out[0].frame), router_mac) << str(client);
    EXPECT_EQ(ip_dst(out[0].frame), client);
  }
  TcpPacket syn = to_vip(40000);
  syn.l3.src = ip("100.65.3.4");
  const std::vector<Output> in = d->send(kUplink, {syn.frame()});
  ASSERT_EQ(in.size(), 1u) << d->drop_summary();
  EXPECT_TRUE(d->send(kPods, {reply_from(ip_dst(in[0].frame), syn, kAck).frame()}).empty());
  const std::vector<Punted> punted = d->take_punted();
  ASSERT_EQ(punted.size(), 1u);
  EXPECT_EQ(punted[0].kind, PuntKind::kUnresolved);
  EXPECT_EQ(punted[0].port, kUplink);
  EXPECT_EQ(punted[0].next_hop, kUnresolvedRouter);
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerPipeline, AdjacencyCacheFollowsANeighbourChange) {
  // The worker caches each destination's port and MAC rewrite; a Pod that
  // keeps its address but gets a new MAC (a restarted VM, a moved Pod)
  // must be reached at the new MAC from the next burst on, in both
  // directions' caches (the client's gateway here too).
  auto d = make_dataplane();
  auto flows = open_flows(*d, port_range(21000, 50), {kPod0, kPod1});
  const uint64_t misses = d->total(&WorkerCounters::adjacency_misses);
  EXPECT_GT(misses, 0u);
  continue_flows(*d, flows);
  EXPECT_EQ(d->total(&WorkerCounters::adjacency_misses), misses) << "established packets must hit";

  const MacAddr moved = mac("02:00:00:00:99:10");
  const MacAddr new_client_mac = mac("02:00:00:00:99:01");
  d->neighbors().set(kPod0, moved);
  d->neighbors().set(kClient, new_client_mac);
  std::vector<Bytes> acks;
  for (const auto& [port, f] : flows) {
    TcpPacket ack = f.syn;
    ack.tcp.flags = kAck;
    ack.tcp.seq += 1;
    acks.push_back(ack.frame());
  }
  size_t to_pod0 = 0;
  for (const Output& o : d->send(kUplink, acks)) {
    const Ip4 pod = ip_dst(o.frame);
    EXPECT_EQ(eth_dst(o.frame), pod == kPod0 ? moved : pod_mac(pod)) << str(pod);
    EXPECT_EQ(eth_src(o.frame), kPodsMac);
    to_pod0 += pod == kPod0;
  }
  EXPECT_GT(to_pod0, 0u);
  std::vector<Bytes> replies;
  for (const auto& [port, f] : flows) replies.push_back(reply_from(f.pod, f.syn, kAck).frame());
  size_t back = 0;
  for (const Output& o : d->send(kPods, replies)) {
    EXPECT_EQ(eth_dst(o.frame), new_client_mac);
    EXPECT_EQ(eth_src(o.frame), kUplinkMac);
    ++back;
  }
  EXPECT_EQ(back, flows.size());
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerPipeline, AConnectionToADeletedServiceIsDroppedAsNoService) {
  // Issue 12: the client's next packet after its service is deleted is
  // counted no_service (a VIP that no longer serves), not no_flow.
  auto d = make_dataplane();
  auto flows = open_flows(*d, port_range(22000, 20), {kPod0, kPod1});
  std::string without_my_app = kBaseConfig;
  const size_t from = without_my_app.find("[[services]]");
  without_my_app.erase(from, without_my_app.find("[[services]]", from + 1) - from);
  ASSERT_EQ(without_my_app.find("my-app"), std::string::npos);
  d->publish(without_my_app);
  EXPECT_TRUE(continue_flows(*d, flows).empty());
  EXPECT_EQ(d->drops(DropReason::kNoService), flows.size()) << d->drop_summary();
  EXPECT_EQ(d->drops(DropReason::kNoFlow), 0u) << d->drop_summary();
  EXPECT_EQ(d->total(&WorkerCounters::flows_endpoint_gone), flows.size());
}

// The burst's second pass notes the record each packet's tag names, and
// the third pass tries that record first (FlowTable::find()'s candidate).
// Here, within one burst, the record is freed (its service is gone) and
// taken by another connection before the packet that noted it is looked
// up: that packet must not pass for the new connection's.
TEST(WorkerPipeline, ARecordTakenByAnotherConnectionWithinABurstIsNotMistakenForItsOld) {
  auto d = make_dataplane();
  auto flows = open_flows(*d, port_range(24000, 1), {kPod0, kPod1});
  TcpPacket ack = flows.begin()->second.syn;
  ack.tcp.flags = kAck;
  ack.tcp.seq += 1;
  std::string without_my_app = kBaseConfig;
  const size_t from = without_my_app.find("[[services]]");
  without_my_app.erase(from, without_my_app.find("[[services]]", from + 1) - from);
  d->publish(without_my_app);
  UdpPacket datagram;  // field by field, as in the golden table
  datagram.l2 = {kUplinkMac, kClientMac};
  datagram.l3.src = kClient;
  datagram.l3.dst = kUdpVip;
  datagram.udp = {5000, kDnsPort};
  ASSERT_EQ(d->worker(0).flows().size(), 1u);
  // One burst: the ACK ends its flow (my-app is gone) and frees its record;
  // the datagram's new flow takes that record; the second ACK noted it.
  const auto out = d->send(kUplink, {ack.frame(), datagram.frame(), ack.frame()});
  ASSERT_EQ(out.size(), 1u) << "only the datagram goes out";
  EXPECT_EQ(out[0].port, kPods);
  EXPECT_EQ(ip_proto(out[0].frame), IPPROTO_UDP);
  EXPECT_EQ(l4_dport(out[0].frame), kDnsPort);
  EXPECT_EQ(d->drops(DropReason::kNoService), 1u) << d->drop_summary();
  EXPECT_EQ(d->drops_total(), 2u) << d->drop_summary();
  EXPECT_EQ(d->total(&WorkerCounters::flows_created), 2u) << "the TCP connection, then the datagram's";
  EXPECT_EQ(d->worker(0).flows().size(), 1u);
}

TEST(WorkerPipeline, AHalfOpenConnectionStaysShortLivedUntilTheClientAcks) {
  // Issue 12: the Pod's SYN+ACK alone does not establish the connection
  // (a spoofed-SYN flood must leave only short-timeout records).
  auto d = make_dataplane();
  auto flows = open_flows(*d, port_range(23000, 1), {kPod0, kPod1});
  const Flow& f = flows.begin()->second;
  ASSERT_EQ(d->send(kPods, reply_from(f.pod, f.syn).frame()).size(), 1u);
  auto state = [&] {
    dp::FlowState out = dp::FlowState::kFree;
    const auto now = static_cast<uint32_t>(rte_rdtsc() / (rte_get_tsc_hz() / 1000));  // Worker::now_ms
    d->worker(0).flows().for_each_live_in(0, d->worker(0).flows().capacity(), now,
                                         [&](const dp::Flow& fl) { out = fl.state; });
    return out;
  };
  EXPECT_EQ(state(), dp::FlowState::kTcpSynReceived);
  TcpPacket ack = f.syn;
  ack.tcp.flags = kAck;
  ack.tcp.seq += 1;
  ASSERT_EQ(d->send(kUplink, ack.frame()).size(), 1u);
  EXPECT_EQ(state(), dp::FlowState::kTcpEstablished);
}

TEST(WorkerPipeline, AFlowALookupFindsExpiredIsCountedAsExpired) {
  // flows_expired counts every flow freed by expiry: also one that a
  // lookup meets (here the client's SYN retransmitted after the SYN
  // timeout), not only the sweep's and the half-open queue's.
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.timeouts.tcp_syn_ms = 20;
  auto d = make_dataplane(std::move(s));
  const TcpPacket syn = to_vip(25000);
  ASSERT_EQ(d->send(kUplink, syn.frame()).size(), 1u) << d->drop_summary();
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  ASSERT_EQ(d->send(kUplink, syn.frame()).size(), 1u) << d->drop_summary();
  EXPECT_EQ(d->total(&WorkerCounters::flows_created), 2u);
  EXPECT_EQ(d->total(&WorkerCounters::flows_expired), 1u);
  EXPECT_EQ(d->worker(0).flows().size(), 1u);
}

TEST(WorkerPipeline, PacketsWithIpOptionsAreForwardedWithTheirOptions) {
  // Issue 12: options are honoured (the L4 header after them is NATed),
  // left as they are (Record Route is not filled in), and both directions
  // of the connection reach their flow; every checksum is right.
  auto d = make_dataplane();
  const Bytes record_route = {0x07, 0x07, 0x04, 0, 0, 0, 0, 0x00};  // room for one address, EOL
  TcpPacket syn = to_vip(24000);
  syn.l3.options = record_route;
  auto out = d->send(kUplink, syn.frame());
  ASSERT_EQ(out.size(), 1u) << d->drop_summary();
  const Ip4 pod = ip_dst(out[0].frame);
  EXPECT_TRUE(frames_equal(out[0].frame, dnat(syn, pod).frame())) << describe(out[0].frame);
  EXPECT_TRUE(checksums_valid(out[0].frame));

  TcpPacket reply = reply_from(pod, syn);
  reply.l3.options = record_route;
  out = d->send(kPods, reply.frame());
  ASSERT_EQ(out.size(), 1u) << d->drop_summary();
  EXPECT_TRUE(frames_equal(out[0].frame, reverse_nat(reply, kVip, kHttp, kClientMac).frame()))
      << describe(out[0].frame);
  EXPECT_EQ(d->total(&WorkerCounters::replies_stateless), 0u) << "the reply found its flow";
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

// Sends one frame in on `in`; the one frame podgate sent for it (a test
// failure and an empty frame when it sent none or several).
Bytes forward_one(Dataplane& d, size_t in, const Bytes& frame) {
  const auto out = d.send(in, frame);
  EXPECT_EQ(out.size(), 1u) << d.drop_summary();
  return out.size() == 1 ? out[0].frame : Bytes{};
}

// `p` as it left podgate's hop, untranslated: TTL one lower (what a router
// beyond quotes, once the NAT is undone).
TcpPacket one_hop_later(TcpPacket p) {
  p.l3.ttl = static_cast<uint8_t>(p.l3.ttl - 1);
  return p;
}

const Ip4 kPodRouter = ip("172.17.0.254");
const MacAddr kPodRouterMac = mac("02:00:00:00:03:fe");

TEST(WorkerPipeline, FragmentationNeededFromBeyondTheNatReachesTheClientTranslated) {
  // Issue 12 (RFC 5508, PMTU discovery): a router between podgate and the
  // Pod reports that the forwarded packet was too big.  The client must get
  // it about the packet it sent: quoted destination VIP:80 again, every
  // checksum right, byte for byte; with the full quote (TCP checksum
  // included) and with RFC 792's minimal 28 bytes.
  for (size_t quote : {size_t{40}, size_t{28}}) {
    SCOPED_TRACE(quote);
    auto d = make_dataplane();
    const TcpPacket syn = to_vip(25000);
    const Bytes forwarded = forward_one(*d, kUplink, syn.frame());  // client -> Pod, TTL 63
    ASSERT_FALSE(forwarded.empty());
    const auto out = d->send(kPods, icmp_error({kPodsMac, kPodRouterMac}, kPodRouter, kClient, kUnreachable,
                                               kFragNeeded, 1400, forwarded, quote));
    ASSERT_EQ(out.size(), 1u) << d->drop_summary();
    EXPECT_EQ(out[0].port, kUplink);
    const Bytes want = icmp_error({kClientMac, kUplinkMac}, kPodRouter, kClient, kUnreachable, kFragNeeded, 1400,
                                  one_hop_later(syn).frame(), quote, 63);
    EXPECT_TRUE(frames_equal(out[0].frame, want)) << describe(out[0].frame) << "\nwant " << describe(want);
    EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_translated), 1u);
  }
}

TEST(WorkerPipeline, TimeExceededAboutAReplyReachesThePodTranslated) {
  // A router on the client's side reports on a reply (sent from the VIP):
  // the error, addressed to the VIP, goes to the Pod, about the reply the
  // Pod sent.
  auto d = make_dataplane();
  const TcpPacket syn = to_vip(25100);
  const Bytes forwarded = forward_one(*d, kUplink, syn.frame());
  ASSERT_FALSE(forwarded.empty());
  const Ip4 pod = ip_dst(forwarded);
  const TcpPacket reply = reply_from(pod, syn);
  const Bytes reply_out = forward_one(*d, kPods, reply.frame());
  ASSERT_FALSE(reply_out.empty());
  const auto out = d->send(kUplink, icmp_error({kUplinkMac, kGatewayMac}, kGateway, kVip, kTimeExceeded, 0, 0,
                                               reply_out, 40));
  ASSERT_EQ(out.size(), 1u) << d->drop_summary();
  EXPECT_EQ(out[0].port, kPods);
  const Bytes want = icmp_error({pod_mac(pod), kPodsMac}, kGateway, pod, kTimeExceeded, 0, 0,
                                one_hop_later(reply).frame(), 40, 63);
  EXPECT_TRUE(frames_equal(out[0].frame, want)) << describe(out[0].frame) << "\nwant " << describe(want);
}

TEST(WorkerPipeline, APodsOwnUnreachableComesFromTheVip) {
  // The Pod itself refuses the connection: the client knows only the VIP,
  // so the error's source becomes the VIP too.
  auto d = make_dataplane();
  const TcpPacket syn = to_vip(25200);
  const Bytes forwarded = forward_one(*d, kUplink, syn.frame());
  ASSERT_FALSE(forwarded.empty());
  const Ip4 pod = ip_dst(forwarded);
  const auto out = d->send(kPods, icmp_error({kPodsMac, pod_mac(pod)}, pod, kClient, kUnreachable,
                                             kPortUnreachable, 0, forwarded, 28));
  ASSERT_EQ(out.size(), 1u) << d->drop_summary();
  const Bytes want = icmp_error({kClientMac, kUplinkMac}, kVip, kClient, kUnreachable, kPortUnreachable, 0,
                                one_hop_later(syn).frame(), 28, 63);
  EXPECT_TRUE(frames_equal(out[0].frame, want)) << describe(out[0].frame) << "\nwant " << describe(want);
}

TEST(WorkerPipeline, IcmpErrorsThatQuoteNoConnectionAreDroppedAndCounted) {
  auto d = make_dataplane();
  // About a packet to a Pod that podgate never forwarded.
  const Bytes stray = dnat(to_vip(25300), kPod0).frame();
  EXPECT_TRUE(d->send(kPods, icmp_error({kPodsMac, kPodRouterMac}, kPodRouter, kClient, kUnreachable, kFragNeeded,
                                        1400, stray, 28)).empty());
  EXPECT_EQ(d->drops(DropReason::kIcmpErrorNoFlow), 1u) << d->drop_summary();
  // A quote too short to hold the ports.
  EXPECT_TRUE(d->send(kPods, icmp_error({kPodsMac, kPodRouterMac}, kPodRouter, kClient, kUnreachable, kFragNeeded,
                                        1400, stray, 24)).empty());
  EXPECT_EQ(d->drops(DropReason::kBadIcmp), 1u) << d->drop_summary();
  // About a later fragment: its first 8 bytes are data (here the very
  // ports of a connection); only a first fragment's are ports.
  const Bytes forwarded = forward_one(*d, kUplink, to_vip(25301).frame());
  ASSERT_FALSE(forwarded.empty());
  Bytes later = forwarded;
  put16(later, kIpOff + 6, 185);  // fragment offset 1480 bytes
  EXPECT_TRUE(d->send(kPods, icmp_error({kPodsMac, kPodRouterMac}, kPodRouter, kClient, kUnreachable, kFragNeeded,
                                        1400, later, 28)).empty());
  EXPECT_EQ(d->drops(DropReason::kIcmpErrorNoFlow), 2u) << d->drop_summary();
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_translated), 0u);
}

TEST(WorkerPipeline, IcmpWithABadChecksumIsDropped) {
  // RFC 5508 REQ-3: translating an error writes it a checksum that holds,
  // so a corrupt one (here its MTU, 1400 become 68) must go no further.
  auto d = make_dataplane();
  const Bytes forwarded = forward_one(*d, kUplink, to_vip(25900).frame());
  ASSERT_FALSE(forwarded.empty());
  Bytes error = icmp_error({kPodsMac, kPodRouterMac}, kPodRouter, kClient, kUnreachable, kFragNeeded, 1400,
                           forwarded, 40);
  put16(error, kIpOff + 20 + 6, 68);
  EXPECT_TRUE(d->send(kPods, error).empty());
  EXPECT_EQ(d->drops(DropReason::kBadIcmp), 1u) << d->drop_summary();
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_translated), 0u);
  // Nor is a corrupt echo request answered.
  Bytes echo = ping(kVip);
  put8(echo, kIpOff + 20 + 8, 0x77);  // its data's first byte
  EXPECT_TRUE(d->send(kUplink, echo).empty());
  EXPECT_EQ(d->drops(DropReason::kBadIcmp), 2u) << d->drop_summary();
  EXPECT_EQ(d->total(&WorkerCounters::icmp_echo_replies), 0u);
}

// Port unreachable is for a source a connection could come from: not one
// that claims an address of podgate's own (spoofed; the answer would come
// back into podgate), nor a martian, nor a link-layer broadcast.
TEST(WorkerPipeline, NoPortUnreachableToASourceThatCannotBeAnswered) {
  auto d = make_dataplane();
  TcpPacket spoofed = to_vip(27030, kSyn, kVip, 81);
  spoofed.l3.src = kUplinkIp4;
  EXPECT_TRUE(d->send(kUplink, spoofed.frame()).empty());
  TcpPacket martian = to_vip(27031, kSyn, kIdleVip);
  martian.l3.src = ip("127.0.0.1");
  EXPECT_TRUE(d->send(kUplink, martian.frame()).empty());
  TcpPacket broadcast = to_vip(27032, kSyn, kVip, 81);
  broadcast.l2.dst = kBroadcast;
  EXPECT_TRUE(d->send(kUplink, broadcast.frame()).empty());
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_sent), 0u);
  EXPECT_EQ(d->drops_total(), 3u) << d->drop_summary();
}

TEST(WorkerPipeline, TtlOneIsDroppedAndTheClientToldTimeExceeded) {
  // RFC 1812 §5.3.1: dropped before any state is made, and its source told.
  auto d = make_dataplane();
  TcpPacket syn = to_vip(27000);
  syn.l3.ttl = 1;
  auto out = d->send(kUplink, syn.frame());
  ASSERT_EQ(out.size(), 1u) << d->drop_summary();
  EXPECT_EQ(out[0].port, kUplink);
  const Bytes want = podgate_icmp_error({kClientMac, kUplinkMac}, kUplinkIp4, kClient, kTimeExceeded, 0, 0,
                                        syn.frame(), 40);
  EXPECT_TRUE(frames_equal(out[0].frame, want)) << describe(out[0].frame) << "\nwant " << describe(want);
  EXPECT_EQ(d->drops(DropReason::kTtlExceeded), 1u);
  EXPECT_EQ(d->worker(0).flows().size(), 0u) << "a dropped packet leaves no flow";
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_sent), 1u);
}

TEST(WorkerPipeline, TtlOneReplyIsDroppedAndThePodToldTimeExceeded) {
  auto d = make_dataplane();
  const TcpPacket syn = to_vip(27100);
  const Bytes forwarded = forward_one(*d, kUplink, syn.frame());
  ASSERT_FALSE(forwarded.empty());
  const Ip4 pod = ip_dst(forwarded);
  TcpPacket reply = reply_from(pod, syn);
  reply.l3.ttl = 1;
  const auto out = d->send(kPods, reply.frame());
  ASSERT_EQ(out.size(), 1u) << d->drop_summary();
  EXPECT_EQ(out[0].port, kPods);
  const Bytes want = podgate_icmp_error({pod_mac(pod), kPodsMac}, kPodsIp4, pod, kTimeExceeded, 0, 0,
                                        reply.frame(), 40);
  EXPECT_TRUE(frames_equal(out[0].frame, want)) << describe(out[0].frame) << "\nwant " << describe(want);
  EXPECT_EQ(d->drops(DropReason::kTtlExceeded), 1u);
}

TEST(WorkerPipeline, APacketTooBigForThePodsPortIsAnsweredWithFragmentationNeeded) {
  // The pods port has MTU 1000: a 1200-byte DF packet from the client is
  // dropped, and the client told the MTU (RFC 1191); it creates no flow.
  // Without DF it is dropped too (podgate does not fragment).
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.port_mtus = {1500, 1000};
  auto d = make_dataplane(std::move(s));
  TcpPacket big = to_vip(27200);
  big.payload.assign(1200 - 40, 'x');
  auto out = d->send(kUplink, big.frame());
  ASSERT_EQ(out.size(), 1u) << d->drop_summary();
  const Bytes want = podgate_icmp_error({kClientMac, kUplinkMac}, kUplinkIp4, kClient, kUnreachable, kFragNeeded,
                                        1000, big.frame(), 548);
  EXPECT_TRUE(frames_equal(out[0].frame, want)) << describe(out[0].frame) << "\nwant " << describe(want);
  EXPECT_EQ(d->drops(DropReason::kTooBig), 1u);
  EXPECT_EQ(d->worker(0).flows().size(), 0u);

  big.l3.frag = 0;  // no DF
  EXPECT_TRUE(d->send(kUplink, big.frame()).empty());
  EXPECT_EQ(d->drops(DropReason::kTooBig), 2u);
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_sent), 1u);

  // A packet that fits goes through.
  TcpPacket fits = to_vip(27201);
  fits.payload.assign(1000 - 40, 'x');
  EXPECT_EQ(d->send(kUplink, fits.frame()).size(), 1u) << d->drop_summary();
}

TEST(WorkerPipeline, IcmpErrorsAreRateLimitedPerWorker) {
  // RFC 1812 §4.3.2.8: a flood of TTL-1 packets is not answered in kind.
  // A burst of 100, then one per millisecond: what was sent is bounded by
  // the time the flood took.
  auto d = make_dataplane();
  std::vector<Bytes> flood;
  for (uint16_t p = 0; p < 2000; ++p) {
    TcpPacket syn = to_vip(static_cast<uint16_t>(30000 + p));
    syn.l3.ttl = 1;
    flood.push_back(syn.frame());
  }
  const uint64_t start = rte_rdtsc();
  const size_t sent = d->send(kUplink, flood).size();
  const uint64_t elapsed_ms = (rte_rdtsc() - start) * 1000 / rte_get_tsc_hz() + 1;
  EXPECT_EQ(d->drops(DropReason::kTtlExceeded), 2000u);
  EXPECT_EQ(sent, d->total(&WorkerCounters::icmp_errors_sent));
  EXPECT_LE(sent, 100 + elapsed_ms);
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_rate_limited), 2000 - sent);
}

TEST(WorkerPipeline, AnIcmpErrorIsTranslatedByItsConnectionsOwner) {
  // Two workers, single-queue ports: worker 1 polls the pods port, so
  // errors about worker 0's connections are handed to it.
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.workers = 2;
  s.rx = {{kUplink}, {kPods}};
  auto d = make_dataplane(std::move(s));
  std::vector<Bytes> syns;
  for (uint16_t p : port_range(26000, 40)) syns.push_back(to_vip(p).frame());
  std::vector<Bytes> errors;
  for (const Output& o : d->send(kUplink, syns)) {
    errors.push_back(icmp_error({kPodsMac, kPodRouterMac}, kPodRouter, kClient, kUnreachable, kFragNeeded, 1400,
                                o.frame, 28));
  }
  ASSERT_EQ(errors.size(), 40u) << d->drop_summary();
  size_t translated = 0;
  for (const Output& o : d->send(kPods, errors)) {
    EXPECT_EQ(o.port, kUplink);
    ++translated;
  }
  EXPECT_EQ(translated, 40u) << d->drop_summary();
  EXPECT_GT(d->worker(1).counters().handoff_out.get(), 0u);
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_translated), 40u);
}

// The control thread's ARP learning (issue 15), fed by the real worker:
// only replies to our own requests create entries; a gratuitous ARP
// updates an entry that exists; nothing changes a static neighbour.
// The control thread's punt handler on the test's dataplane, transmitting
// on the control queue of its ports as the Appliance's does, on a clock the
// test moves (`now`).
class PuntHandlerArp : public ::testing::Test {
 protected:
  // The workers take what was sent, the punt handler what they punted and
  // its timers run: what went out.
  std::vector<Output> handle() { return handle_punts(*d, ph, now); }

  std::unique_ptr<Dataplane> d = make_dataplane();
  ctl::PuntHandler ph{punt_setup(*d)};
  uint64_t now = 1'000;
};

TEST_F(PuntHandlerArp, LearnsOnlyWhatItAskedForAndWhatHostsAnnounce) {
  auto unsolicited = [&] { return ph.counters().drops[static_cast<size_t>(DropReason::kArpUnsolicited)].get(); };
  const MacAddr attacker = mac("02:00:00:00:66:66");

  // An unsolicited reply takes over nothing and creates nothing.
  d->send(kPods, arp_frame({kPodsMac, attacker}, Arp{kArpReply, attacker, kPod0, kPodsMac, kPodsIp}));
  d->send(kPods, arp_frame({kPodsMac, attacker}, Arp{kArpReply, attacker, kUnresolvedPod, kPodsMac, kPodsIp}));
  handle();
  EXPECT_EQ(d->neighbors().find(kPod0), pod_mac(kPod0));
  EXPECT_FALSE(d->neighbors().find(kUnresolvedPod));
  EXPECT_EQ(unsolicited(), 2u);

  // A SYN for a Pod with no MAC waits; podgate asks; the answer is learnt
  // and the SYN goes out.
  const std::vector<Output> none = d->send(kUplink, to_vip(41000, kSyn, ip("10.96.0.50")).frame());
  EXPECT_TRUE(none.empty());
  const std::vector<Output> asked = handle();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(ether_type(asked[0].frame), kEtherArp);
  const MacAddr new_pod = mac("02:00:00:00:20:20");
  d->send(kPods, arp_frame({kPodsMac, new_pod}, Arp{kArpReply, new_pod, kUnresolvedPod, kPodsMac, kPodsIp}));
  const std::vector<Output> flushed = handle();
  EXPECT_EQ(d->neighbors().find(kUnresolvedPod), new_pod);
  ASSERT_EQ(flushed.size(), 1u) << "the waiting SYN";
  EXPECT_EQ(ip_dst(flushed[0].frame), kUnresolvedPod);

  // A Pod restarted with a new MAC announces it: the entry follows.  An
  // announcement for an address podgate does not know creates nothing.
  const MacAddr moved = mac("02:00:00:00:10:99");
  d->send(kPods, arp_frame({kBroadcast, moved}, Arp{kArpRequest, moved, kPod0, MacAddr{}, kPod0}));
  d->send(kPods, arp_frame({kBroadcast, attacker}, Arp{kArpRequest, attacker, ip("172.17.0.99"), MacAddr{},
                                                       ip("172.17.0.99")}));
  handle();
  EXPECT_EQ(d->neighbors().find(kPod0), moved);
  EXPECT_FALSE(d->neighbors().find(ip("172.17.0.99")));

  // A static neighbour stays as configured.
  ph.set_static_neighbors({kPod1});
  d->send(kPods, arp_frame({kBroadcast, attacker}, Arp{kArpRequest, attacker, kPod1, MacAddr{}, kPod1}));
  handle();
  EXPECT_EQ(d->neighbors().find(kPod1), pod_mac(kPod1));
  EXPECT_EQ(unsolicited(), 4u);
}

// A line-rate stream to a next hop with no MAC (a gateway forgotten after
// unanswered probes): the worker passes up only what its rate allows, and
// the punt ring keeps room for the ARP answer and DNS queries.
TEST_F(PuntHandlerArp, PacketsForAnUnresolvedNextHopGoUpWithinTheWorkersRate) {
  std::vector<Bytes> stream;
  for (uint16_t p = 0; p < 6000; ++p) stream.push_back(to_vip(static_cast<uint16_t>(20000 + p), kSyn, ip("10.96.0.50")).frame());
  EXPECT_TRUE(d->send(kUplink, stream).empty());
  const uint64_t unresolved = d->drops(DropReason::kNeighborUnresolved);
  EXPECT_GE(unresolved, 6000u - dp::Worker::kUnresolvedPerSecond / 10 - 100) << d->drop_summary();
  EXPECT_EQ(d->drops(DropReason::kPuntFull), 0u) << d->drop_summary();
  // The answer still gets through and is learnt.
  handle();
  const MacAddr new_pod = mac("02:00:00:00:20:20");
  d->send(kPods, arp_frame({kPodsMac, new_pod}, Arp{kArpReply, new_pod, kUnresolvedPod, kPodsMac, kPodsIp}));
  handle();
  EXPECT_EQ(d->neighbors().find(kUnresolvedPod), new_pod);
}

// RFC 5227 §2.3: at start, each port says its address is at its MAC, so
// that hosts and routers that knew another MAC for it update at once.
TEST_F(PuntHandlerArp, EachPortAnnouncesItsAddressAtItsMac) {
  ph.announce_addresses(d->snapshot());
  const std::vector<Output> out = d->collect();
  ASSERT_EQ(out.size(), 2u);
  for (const Output& o : out) {
    const bool up = o.port == kUplink;
    const MacAddr own = up ? kUplinkMac : kPodsMac;
    const Ip4 address = up ? kUplinkIp : kPodsIp;
    Bytes want = arp_frame({kBroadcast, own}, Arp{kArpRequest, own, address, MacAddr{}, address});
    want.resize(42);  // unpadded, as podgate's requests are: the NIC pads
    EXPECT_TRUE(frames_equal(o.frame, want)) << "port " << o.port;
  }
  EXPECT_NE(out[0].port, out[1].port);
}

// A packet for a next hop that never answers: asked for again every
// kArpRetryMs, dropped once it has waited kWaitLimitMs (the IPv6 twin is
// PuntHandlerNdp.WhatWaitsTooLongIsDroppedAfterRetries; both families
// share the code).
TEST_F(PuntHandlerArp, WhatWaitsTooLongIsDroppedAfterRetries) {
  EXPECT_TRUE(d->send(kUplink, to_vip(41001, kSyn, ip("10.96.0.50")).frame()).empty());
  const std::vector<Output> first = handle();
  ASSERT_EQ(first.size(), 1u) << "the first request";
  EXPECT_EQ(ether_type(first[0].frame), kEtherArp);
  EXPECT_TRUE(handle().empty()) << "no second request before kArpRetryMs";
  now += ctl::PuntHandler::kArpRetryMs;
  const std::vector<Output> retry = handle();
  ASSERT_EQ(retry.size(), 1u) << "a retry";
  EXPECT_EQ(ether_type(retry[0].frame), kEtherArp);
  EXPECT_EQ(ph.waiting(), 1u);
  now += ctl::PuntHandler::kWaitLimitMs;
  EXPECT_TRUE(handle().empty()) << "dropped, not asked for again";
  EXPECT_EQ(ph.counters().drops[static_cast<size_t>(DropReason::kNeighborUnresolved)].get(), 1u);
  EXPECT_EQ(ph.waiting(), 0u);
}

// A stream of packets to a next hop that does not answer, while the wait
// cap is full so none of them can wait: the address is still asked for
// once a second (kArpRetryMs), not once for every turn of the loop.  Both
// families share the code (PuntHandler::wait_for).
TEST_F(PuntHandlerArp, ANextHopIsAskedForOnceASecondEvenWhenNoPacketCanWait) {
  auto punt_unresolved = [&](Ip4 next_hop) {
    const Bytes frame = to_vip(44000, kSyn, ip("10.96.0.50")).frame();
    rte_mbuf* m = rte_pktmbuf_alloc(d->pool());
    ASSERT_NE(m, nullptr);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(frame.size())), frame.data(), frame.size());
    dp::punt_meta(m) = dp::PuntMeta{next_hop, static_cast<uint16_t>(kPods), dp::PuntKind::kUnresolved};
    ASSERT_EQ(rte_ring_enqueue(d->punt_ring(), m), 0);
  };
  // Fill the wait cap: 16 packets for each of 64 silent next hops.
  constexpr uint32_t kHops = ctl::PuntHandler::kMaxWaiting / ctl::PuntHandler::kMaxWaitingPerHop;
  for (uint32_t h = 0; h < kHops; ++h) {
    for (uint32_t i = 0; i < ctl::PuntHandler::kMaxWaitingPerHop; ++i) {
      punt_unresolved(Ip4::from_host(0xac110100u + h));  // 172.17.1.h
    }
    handle();
  }
  ASSERT_EQ(ph.waiting(), ctl::PuntHandler::kMaxWaiting);

  // 2.5 s of turns 10 ms apart, each with a few packets for a new next hop.
  const Ip4 silent = ip("172.17.2.1");
  size_t requests = 0;
  const uint64_t start = now;
  for (; now < start + 2'500; now += 10) {
    for (int i = 0; i < 4; ++i) punt_unresolved(silent);
    for (const Output& o : handle()) {
      if (ether_type(o.frame) == kEtherArp && get_ip(o.frame, kEthLen + 24) == silent) ++requests;
    }
  }
  EXPECT_EQ(requests, 3u) << "at 0, 1 and 2 s";
  EXPECT_EQ(ph.waiting(), ctl::PuntHandler::kMaxWaiting) << "none of its packets waited";
}

// A static neighbour that leaves the config on a reload is forgotten: it
// was never learnt, so aging would never touch it, and packets would go
// to its old MAC for as long as podgate runs.
TEST_F(PuntHandlerArp, AStaticNeighbourRemovedFromTheConfigIsForgottenAndResolvedAfresh) {
  const MacAddr configured = mac("02:00:00:00:20:5a");
  ASSERT_TRUE(d->neighbors().set(kUnresolvedPod, configured));
  ph.set_static_neighbors({kUnresolvedPod, kPod1});
  const std::vector<Output> direct = d->send(kUplink, to_vip(43000, kSyn, ip("10.96.0.50")).frame());
  ASSERT_EQ(direct.size(), 1u);
  EXPECT_EQ(eth_dst(direct[0].frame), configured);

  ph.set_static_neighbors({kPod1});  // the reload dropped it
  EXPECT_FALSE(d->neighbors().find(kUnresolvedPod)) << "forgotten";
  EXPECT_EQ(d->neighbors().find(kPod1), pod_mac(kPod1)) << "still static";
  // The next packet for it waits for a broadcast request.
  EXPECT_TRUE(d->send(kUplink, to_vip(43001, kSyn, ip("10.96.0.50")).frame()).empty());
  const std::vector<Output> asked = handle();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(ether_type(asked[0].frame), kEtherArp);
  EXPECT_EQ(asked[0].frame[0], 0xff) << "broadcast";
}

TEST_F(PuntHandlerArp, LearntNeighboursAgeAreProbedByUnicastAndForgottenWhenSilent) {
  // Learn kUnresolvedPod: a SYN waits, podgate asks, the Pod answers.
  d->send(kUplink, to_vip(42000, kSyn, ip("10.96.0.50")).frame());
  ASSERT_EQ(handle().size(), 1u) << "the broadcast request";
  const MacAddr first_mac = mac("02:00:00:00:20:21");
  auto answer = [&](const MacAddr& m) {
    d->send(kPods, arp_frame({kPodsMac, m}, Arp{kArpReply, m, kUnresolvedPod, kPodsMac, kPodsIp}));
  };
  answer(first_mac);
  ASSERT_EQ(handle().size(), 1u) << "the waiting SYN";
  ASSERT_EQ(d->neighbors().find(kUnresolvedPod), first_mac);

  // Reachable for 15..45 s: nothing sent before 15 s.
  now += ctl::PuntHandler::kReachableMs / 2 - 100;
  EXPECT_TRUE(handle().empty());
  // Stale by 45 s: a unicast probe to the MAC it has; a reply confirms it.
  std::vector<Output> probe;
  for (int i = 0; i < 31 && probe.empty(); ++i) {
    now += 1'000;
    probe = handle();
  }
  ASSERT_EQ(probe.size(), 1u);
  EXPECT_EQ(ether_type(probe[0].frame), kEtherArp);
  EXPECT_TRUE(std::equal(first_mac.bytes.begin(), first_mac.bytes.end(), probe[0].frame.begin()))
      << "unicast to the known MAC: " << describe(probe[0].frame);
  answer(first_mac);
  handle();
  EXPECT_EQ(d->neighbors().find(kUnresolvedPod), first_mac);

  // The Pod is replaced (another MAC, no announcement): probes go
  // unanswered, and after three the entry is forgotten.
  std::vector<Output> probes;
  for (int i = 0; i < 60 && d->neighbors().find(kUnresolvedPod); ++i) {
    now += 1'000;
    for (Output& o : handle()) probes.push_back(std::move(o));
  }
  EXPECT_EQ(probes.size(), ctl::PuntHandler::kMaxProbes);
  EXPECT_FALSE(d->neighbors().find(kUnresolvedPod)) << "forgotten";
  EXPECT_EQ(ph.counters().neighbors_forgotten.get(), 1u);
  // The next packet for it asks by broadcast, and the new MAC is learnt.
  d->send(kUplink, to_vip(42001, kSyn, ip("10.96.0.50")).frame());
  const auto asked = handle();
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].frame[0], 0xff) << "broadcast";
  const MacAddr new_mac = mac("02:00:00:00:20:22");
  answer(new_mac);
  ASSERT_EQ(handle().size(), 1u) << "the waiting SYN";
  EXPECT_EQ(d->neighbors().find(kUnresolvedPod), new_mac);
  // Static neighbours are never probed.
  ph.set_static_neighbors({kUnresolvedPod});
  for (int i = 0; i < 60; ++i) {
    now += 1'000;
    EXPECT_TRUE(handle().empty());
  }
}

TEST(WorkerPipeline, DrainingEndpointKeepsItsFlowsButTakesNoNewOnes) {
  auto d = make_dataplane();
  auto flows = open_flows(*d, port_range(20000, 300), {kPod0, kPod1});
  const size_t on_pod1 = count_on(flows, kPod1);
  ASSERT_GT(on_pod1, 0u);

  // my-app-1 is being shut down: serving + terminating (EndpointSlice).
  d->publish(config_with(R"(
  { ip = "172.17.0.10" },
  { ip = "172.17.0.11", ready = false, serving = true, terminating = true },
  { ip = "172.17.0.12", ready = false, serving = true, terminating = true },
)"));

  auto went = continue_flows(*d, flows);
  ASSERT_EQ(went.size(), flows.size()) << "drops: " << d->drop_summary();
  for (const auto& [port, f] : flows) EXPECT_EQ(went.at(port), f.pod) << "client port " << port << " moved";

  // Its connections still get their replies through.
  std::vector<Bytes> replies;
  for (const auto& [port, f] : flows) {
    if (f.pod == kPod1) replies.push_back(reply_from(kPod1, f.syn, kAck).frame());
  }
  EXPECT_EQ(d->send(kPods, replies).size(), on_pod1) << "drops: " << d->drop_summary();
  EXPECT_EQ(d->total(&WorkerCounters::replies_stateless), 0u) << "replies must go by their flow entries";

  // New connections never go to it.
  open_flows(*d, port_range(50000, 300), {kPod0});
  EXPECT_EQ(d->total(&WorkerCounters::flows_endpoint_gone), 0u);
  EXPECT_GT(d->total(&WorkerCounters::flows_revalidated), 0u);
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

// A client that reuses its port once a connection closed (FIN or RST,
// then a SYN within the closing timeout: RFC 9293 §3.10.7.4's TIME-WAIT
// reuse, or a NAT that keeps ports) opens a new connection, placed anew
// among the ready Pods, as IPVS (conn_reuse_mode) and conntrack do: not
// pinned again to a Pod that drains, which would then never stop taking
// new connections from such clients.
TEST(WorkerPipeline, ASynReusingAClosedConnectionsPortIsPlacedAnew) {
  auto d = make_dataplane();
  auto flows = open_flows(*d, port_range(21000, 200), {kPod0, kPod1});
  continue_flows(*d, flows);
  d->publish(config_with(R"(
  { ip = "172.17.0.10" },
  { ip = "172.17.0.11", ready = false, serving = true, terminating = true },
  { ip = "172.17.0.12", ready = false, serving = true, terminating = true },
)"));
  // Each connection to the draining Pod closes: the client's RST, or its
  // FIN and then the Pod's; then the client opens another from the same
  // port.
  std::vector<Bytes> closes, pod_fins, reopens;
  size_t closed = 0;
  for (const auto& [port, f] : flows) {
    if (f.pod != kPod1) continue;
    TcpPacket close = f.syn;
    close.tcp.flags = (closed++ % 2 == 0) ? uint8_t(kFin | kAck) : kRst;
    close.tcp.seq += 1;
    closes.push_back(close.frame());
    if (close.tcp.flags != kRst) pod_fins.push_back(reply_from(kPod1, close, kFin | kAck).frame());
    TcpPacket again = f.syn;
    again.tcp.seq += 100000;
    reopens.push_back(again.frame());
  }
  ASSERT_GT(closed, 0u);
  for (const Output& o : d->send(kUplink, closes)) EXPECT_EQ(ip_dst(o.frame), kPod1) << "a close goes to its Pod";
  // Half-closed (the Pod has not sent its FIN): a SYN is no new connection
  // yet (the Pod answers it with a challenge ACK), so it stays with its Pod.
  std::vector<Bytes> early;
  for (size_t i = 0; i < reopens.size(); i += 2) early.push_back(reopens[i]);
  for (const Output& o : d->send(kUplink, early)) EXPECT_EQ(ip_dst(o.frame), kPod1) << "half-closed";
  EXPECT_EQ(d->total(&WorkerCounters::flows_reopened), 0u);
  EXPECT_EQ(d->send(kPods, pod_fins).size(), pod_fins.size()) << d->drop_summary();
  const uint64_t created = d->total(&WorkerCounters::flows_created);
  const auto out = d->send(kUplink, reopens);
  ASSERT_EQ(out.size(), closed) << d->drop_summary();
  for (const Output& o : out) EXPECT_EQ(ip_dst(o.frame), kPod0) << "the draining Pod takes no new connection";
  EXPECT_EQ(d->total(&WorkerCounters::flows_created) - created, closed) << "each a new connection";
  EXPECT_EQ(d->total(&WorkerCounters::flows_reopened), closed);
  // A SYN on an established connection is not a new one (RFC 5961 §4: the
  // Pod answers it with a challenge ACK): it stays with its Pod.
  std::vector<Bytes> syns_on_open;
  for (const auto& [port, f] : flows) {
    if (f.pod == kPod0) syns_on_open.push_back(f.syn.frame());
  }
  for (const Output& o : d->send(kUplink, syns_on_open)) EXPECT_EQ(ip_dst(o.frame), kPod0);
  EXPECT_EQ(d->total(&WorkerCounters::flows_reopened), closed);
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

// KEP-1669: when no endpoint is ready, the serving and terminating ones
// take new connections, so a service whose Pods are all shutting down
// keeps answering; the first ready Pod ends that, and moves no flow.
TEST(WorkerPipeline, WithNoEndpointReadyTheTerminatingOnesTakeNewFlowsUntilOneIsReady) {
  auto d = make_dataplane();
  auto flows = open_flows(*d, port_range(20000, 200), {kPod0, kPod1});

  d->publish(config_with(R"(
  { ip = "172.17.0.10", ready = false, serving = true, terminating = true },
  { ip = "172.17.0.11", ready = false, serving = true, terminating = true },
  { ip = "172.17.0.12", ready = false, serving = false, terminating = true },
)"));
  auto went = continue_flows(*d, flows);
  ASSERT_EQ(went.size(), flows.size()) << "drops: " << d->drop_summary();
  for (const auto& [port, f] : flows) EXPECT_EQ(went.at(port), f.pod) << "client port " << port << " moved";
  auto fallback = open_flows(*d, port_range(30000, 200), {kPod0, kPod1});
  EXPECT_GT(count_on(fallback, kPod0), 0u);
  EXPECT_GT(count_on(fallback, kPod1), 0u);
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();

  // my-app-2 is ready again: new connections go to it alone, and the
  // terminating Pods keep every flow they have.
  d->publish(config_with(R"(
  { ip = "172.17.0.10", ready = false, serving = true, terminating = true },
  { ip = "172.17.0.11", ready = false, serving = true, terminating = true },
  { ip = "172.17.0.12" },
)"));
  flows.insert(fallback.begin(), fallback.end());
  went = continue_flows(*d, flows);
  ASSERT_EQ(went.size(), flows.size()) << "drops: " << d->drop_summary();
  for (const auto& [port, f] : flows) EXPECT_EQ(went.at(port), f.pod) << "client port " << port << " moved";
  open_flows(*d, port_range(40000, 200), {kPod2});
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerPipeline, RemovedEndpointLosesItsFlows) {
  auto d = make_dataplane();
  auto flows = open_flows(*d, port_range(20000, 300), {kPod0, kPod1});
  const size_t on_pod1 = count_on(flows, kPod1);
  ASSERT_GT(on_pod1, 0u);

  d->publish(config_with(R"(
  { ip = "172.17.0.10" },
  { ip = "172.17.0.12", ready = false, serving = true, terminating = true },
)"));

  auto went = continue_flows(*d, flows);
  ASSERT_EQ(went.size(), flows.size()) << "drops: " << d->drop_summary();
  for (const auto& [port, f] : flows) {
    // .10 is the only ready endpoint left: .11's flows are re-pinned there.
    EXPECT_EQ(went.at(port), kPod0) << "client port " << port << " was on " << str(f.pod);
  }
  EXPECT_EQ(d->total(&WorkerCounters::flows_endpoint_gone), on_pod1);

  // A late reply from the removed Pod finds no connection.
  const Flow& gone = std::find_if(flows.begin(), flows.end(), [](const auto& kv) { return kv.second.pod == kPod1; })->second;
  EXPECT_TRUE(d->send(kPods, reply_from(kPod1, gone.syn, kAck).frame()).empty());
  EXPECT_EQ(d->drops(DropReason::kNoFlow), 1u) << d->drop_summary();
}

// Per-service and per-endpoint statistics (stats slots): every packet is
// counted on the endpoint its flow is pinned to, in its direction, and a
// service's totals keep what its endpoints counted after they are gone.
TEST(WorkerPipeline, TrafficIsCountedPerEndpointAndOutlivesTheEndpoint) {
  auto d = make_dataplane();
  const dp::ServiceKey web{kVip, dp::to_be16(kHttp), dp::Proto::kTcp, 0};
  auto at = [&](Ip4 pod) {
    return d->slots().endpoint(web, dp::Backend{pod, dp::to_be16(kTarget), 0}).value();
  };
  auto flows = open_flows(*d, port_range(20000, 300), {kPod0, kPod1});
  const uint64_t on0 = count_on(flows, kPod0), on1 = count_on(flows, kPod1);
  ASSERT_GT(on0, 0u);
  ASSERT_GT(on1, 0u);
  const uint64_t syn_bytes = flows.begin()->second.syn.frame().size();
  EXPECT_EQ(at(kPod0).flows_created, on0);
  EXPECT_EQ(at(kPod0).packets_in, on0);
  EXPECT_EQ(at(kPod0).bytes_in, on0 * syn_bytes);
  EXPECT_EQ(at(kPod1).flows_created, on1);
  EXPECT_EQ(at(kPod1).flows_active(), on1);
  EXPECT_EQ(at(kPod2).packets_in, 0u) << "draining: no new flows";

  std::vector<Bytes> replies;
  for (const auto& [port, f] : flows) {
    if (f.pod == kPod1) replies.push_back(reply_from(kPod1, f.syn, kAck).frame());
  }
  EXPECT_EQ(d->send(kPods, replies).size(), on1);
  EXPECT_EQ(at(kPod1).packets_out, on1);
  EXPECT_EQ(at(kPod0).packets_out, 0u);

  // my-app-1 removed: its flows end at their next packet and are re-pinned
  // to my-app-0 as new flows.
  d->publish(config_with(R"(
  { ip = "172.17.0.10" },
  { ip = "172.17.0.12", ready = false, serving = true, terminating = true },
)"));
  continue_flows(*d, flows);
  const ctl::TrafficTotals gone = d->slots().endpoint(web, {kPod1, dp::to_be16(kTarget), 0}).value();
  EXPECT_EQ(gone.flows_ended, on1) << "quarantined: still readable";
  EXPECT_EQ(gone.flows_active(), 0u);
  EXPECT_EQ(at(kPod0).flows_created, on0 + on1);
  EXPECT_EQ(at(kPod0).packets_in, 2 * on0 + on1);
  const ctl::TrafficTotals service = d->slots().service(web);
  EXPECT_EQ(service.packets_in, 2 * (on0 + on1)) << "300 SYNs and 300 ACKs, on whichever Pod";
  EXPECT_EQ(service.flows_created, on0 + 2 * on1);
  EXPECT_EQ(service.flows_active(), on0 + on1);

  // After the quarantine the slot is free, and the service keeps its figures.
  d->advance_clock(Dataplane::kSlotQuarantineMs);
  EXPECT_FALSE(d->slots().endpoint(web, {kPod1, dp::to_be16(kTarget), 0}).has_value());
  EXPECT_EQ(d->slots().service(web), service);
}

// The `flows` command's mailbox: the worker lists its connections a slice
// of the table per poll, filtered, bounded, one record per connection.
TEST(WorkerPipeline, FlowQueryListsMatchingConnectionsUpToTheLimit) {
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.flow_capacity = 4 * dp::FlowQuery::kFlowsPerPoll;  // four polls' worth of records
  auto d = make_dataplane(std::move(s));
  auto flows = open_flows(*d, port_range(20000, 300), {kPod0, kPod1});
  const uint64_t on1 = count_on(flows, kPod1);
  ASSERT_GT(on1, 10u);
  dp::FlowQuery& q = d->worker(0).flow_query();
  dp::FlowFilter only_pod1;
  only_pod1.endpoint = dp::IpAddr::v4(kPod1);
  ASSERT_TRUE(q.ask(only_pod1, 10));
  EXPECT_FALSE(q.ask(only_pod1, 10)) << "one question at a time";
  ASSERT_GT(d->worker(0).flows().capacity(), dp::FlowQuery::kFlowsPerPoll);
  d->worker(0).poll_once();  // online in QSBR since open_flows()
  EXPECT_FALSE(q.answered()) << "the table is scanned over several polls, not in one";
  for (int i = 0; !q.answered() && i < 1000; ++i) d->poll_until_idle();
  ASSERT_TRUE(q.answered());
  EXPECT_EQ(q.matched(), on1) << "forward entries only: one per connection";
  ASSERT_EQ(q.records().size(), 10u);
  for (const dp::FlowRecord& r : q.records()) {
    EXPECT_EQ(r.endpoint, dp::IpAddr::v4(kPod1));
    EXPECT_EQ(r.endpoint_port, dp::to_be16(kTarget));
    EXPECT_EQ(r.vip, dp::IpAddr::v4(kVip));
    EXPECT_EQ(r.client, dp::IpAddr::v4(kClient));
    EXPECT_EQ(flows.at(dp::from_be16(r.client_port)).pod, kPod1);
    EXPECT_EQ(r.state, dp::FlowState::kTcpSynSent);
  }
  q.collect();
  dp::FlowFilter other_vip;
  other_vip.by_vip = true;
  other_vip.vip4 = kUdpVip;
  ASSERT_TRUE(q.ask(other_vip, 10));
  for (int i = 0; !q.answered() && i < 1000; ++i) d->poll_until_idle();
  EXPECT_EQ(q.matched(), 0u);
  EXPECT_TRUE(q.records().empty());
  q.collect();
}

TEST(WorkerPipeline, AddingAnEndpointDoesNotMoveEstablishedFlows) {
  auto d = make_dataplane();
  auto flows = open_flows(*d, port_range(20000, 300), {kPod0, kPod1});

  d->publish(config_with(std::string(kMyAppEndpoints) + R"(  { ip = "172.17.0.13", pod = "my-app-3" },
)"));

  // The premise: Maglev alone, with the new table, would move some of them
  // (Maglev §3.3: connection tracking is what keeps them).
  const dp::ServiceData* svc = d->snapshot().find_service(kVip, dp::to_be16(kHttp), dp::Proto::kTcp);
  ASSERT_NE(svc, nullptr);
  size_t would_move = 0;
  for (const auto& [port, f] : flows) {
    Bytes frame = f.syn.frame();
    dp::ParsedPacket p;
    DropReason why;
    ASSERT_TRUE(dp::parse_packet(frame.data(), static_cast<uint32_t>(frame.size()), false, p, why));
    const dp::Backend& b = svc->ready[dp::maglev_lookup(svc->maglev, dp::flow_hash(p, false))];
    would_move += !(b.ip == f.pod);
  }
  ASSERT_GT(would_move, 0u) << "the new endpoint set moves no flow: this test would prove nothing";

  auto went = continue_flows(*d, flows);
  ASSERT_EQ(went.size(), flows.size()) << "drops: " << d->drop_summary();
  size_t moved = 0;
  for (const auto& [port, f] : flows) moved += !(went.at(port) == f.pod);
  EXPECT_EQ(moved, 0u) << "of " << flows.size() << " established flows (Maglev alone would move " << would_move << ")";

  // The new endpoint does take new connections.
  auto fresh = open_flows(*d, port_range(50000, 300), {kPod0, kPod1, kPod3});
  EXPECT_GT(count_on(fresh, kPod3), 0u);
  EXPECT_EQ(d->total(&WorkerCounters::flows_endpoint_gone), 0u);
}

TEST(WorkerPipeline, FlowTableFullStillForwardsByMaglev) {
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.flow_capacity = 8;  // at most eight connections
  auto d = make_dataplane(std::move(s));

  const auto ports = port_range(20000, 64);
  auto flows = open_flows(*d, ports, {kPod0, kPod1});
  ASSERT_EQ(flows.size(), ports.size());
  const uint64_t full = d->total(&WorkerCounters::flows_table_full);
  const uint64_t created = d->total(&WorkerCounters::flows_created);
  EXPECT_GT(full, 0u);
  EXPECT_EQ(created, 8u);
  EXPECT_EQ(full + created, ports.size());
  EXPECT_EQ(d->worker(0).flows().size(), 8u);

  // Without entries, the same connection still reaches the same Pod...
  auto went = continue_flows(*d, flows);
  ASSERT_EQ(went.size(), flows.size());
  for (const auto& [port, f] : flows) EXPECT_EQ(went.at(port), f.pod) << "client port " << port;

  // ...and its replies are reverse-NATed by the one service their Pod
  // backs, without state.
  std::vector<Bytes> replies;
  for (const auto& [port, f] : flows) replies.push_back(reply_from(f.pod, f.syn).frame());
  size_t replies_out = 0;
  for (const Output& o : d->send(kPods, replies)) {
    const Flow& f = flows.at(l4_dport(o.frame));
    EXPECT_EQ(o.port, kUplink);
    EXPECT_TRUE(frames_equal(o.frame, reverse_nat(reply_from(f.pod, f.syn), kVip, kHttp, kClientMac).frame()));
    ++replies_out;
  }
  EXPECT_EQ(replies_out, flows.size());
  EXPECT_EQ(d->total(&WorkerCounters::replies_stateless), full) << "every connection without entries";
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

// A table with every record in use, where ten connections' forward keys
// share a first bucket (8 slots): some keys live in their second bucket.
// Every packet of every connection is still found, in either direction,
// in one burst: the second bucket's pass (pass 2b) finds the displaced
// ones, and none of them is taken for a new connection.
TEST(WorkerPipeline, AFullTableFindsEveryConnectionInWhicheverBucketItLives) {
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.flow_capacity = 24;  // 8 buckets, 48 keys
  auto d = make_dataplane(std::move(s));
  const dp::FlowTable same_shape(24, {});
  const auto first_bucket = [&](uint16_t port) {
    const dp::FlowKey4 k{kClient, kVip, dp::to_be16(port), dp::to_be16(kHttp), dp::Proto::kTcp};
    return same_shape.probe(dp::FlowTable::hash(k)).first;
  };
  std::vector<uint16_t> ports, others;
  for (uint16_t port = 21000; ports.size() < 10; ++port) {
    (first_bucket(port) == first_bucket(21000) ? ports : others).push_back(port);
  }
  ports.insert(ports.end(), others.begin(), others.begin() + 14);
  const auto flows = open_flows(*d, ports, {kPod0, kPod1});
  ASSERT_EQ(d->worker(0).flows().size(), 24u);
  ASSERT_GT(d->worker(0).flows().displaced_keys(), 0u) << "no key in its second bucket: nothing tested";
  EXPECT_TRUE(d->worker(0).flows().index_is_consistent());

  const auto went = continue_flows(*d, flows);
  ASSERT_EQ(went.size(), flows.size());
  for (const auto& [port, f] : flows) EXPECT_EQ(went.at(port), f.pod) << "client port " << port;
  std::vector<Bytes> replies;
  for (const auto& [port, f] : flows) replies.push_back(reply_from(f.pod, f.syn).frame());
  EXPECT_EQ(d->send(kPods, replies).size(), flows.size());
  EXPECT_EQ(d->total(&WorkerCounters::flows_created), 24u) << "a lookup missed and made a new flow";
  EXPECT_EQ(d->total(&WorkerCounters::replies_stateless), 0u) << "a reply's lookup missed";
  EXPECT_EQ(d->total(&WorkerCounters::flows_table_full), 0u);
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerPipeline, WeightsShapeNewFlowShares) {
  DataplaneSetup s;
  s.config_toml = kBaseConfig;
  s.flow_capacity = 1 << 12;  // room for all 3000 connections
  auto d = make_dataplane(std::move(s));

  std::mt19937 rng(20240601);
  std::uniform_int_distribution<int> any_port(1024, 65535);
  std::set<uint16_t> chosen;
  while (chosen.size() < 3000) chosen.insert(static_cast<uint16_t>(any_port(rng)));
  auto flows = open_flows(*d, std::vector<uint16_t>(chosen.begin(), chosen.end()), {kPod0, kPod1});
  ASSERT_EQ(flows.size(), chosen.size());

  // my-app-1 has weight 2 and my-app-0 weight 1: 2/3 of new flows.  The
  // tolerance is the sum of (a) the Maglev table's own deviation from the
  // weights, below 1% for M = 65537 >> 3 endpoints (NSDI'16 §5.3), and
  // (b) sampling: 3000 flows give a binomial standard deviation of
  // sqrt(2/3 * 1/3 / 3000) = 0.86%, and 4 of them is 3.5%.  The hash is
  // deterministic, so this never flakes; a wrong weighting (1/2 or 4/5)
  // falls far outside.
  const double share = static_cast<double>(count_on(flows, kPod1)) / static_cast<double>(flows.size());
  EXPECT_NEAR(share, 2.0 / 3.0, 0.045) << count_on(flows, kPod1) << " of " << flows.size() << " to the weight-2 Pod";
  EXPECT_EQ(count_on(flows, kPod2), 0u) << "the draining endpoint took new flows";
}

// --- ClientIP session affinity ----------------------------------------------------
// Kubernetes' sessionAffinity: ClientIP.  podgate's is stateless: Maglev on
// the client address alone (dataplane/worker.hpp flow_hash), so every
// connection of a client reaches the same Pod while the endpoint set stands,
// with or without a flow entry.  There is no per-client record, hence nothing
// for timeout_seconds to expire: it is accepted, validated and kept (config
// dump, config save) for Kubernetes compatibility and changes no forwarding
// (conf/podgate.toml, docs/kubernetes.md).

constexpr const char* kFourReadyPods = R"(
  { ip = "172.17.0.10", pod = "my-app-0" },
  { ip = "172.17.0.11", pod = "my-app-1" },
  { ip = "172.17.0.12", pod = "my-app-2" },
  { ip = "172.17.0.13", pod = "my-app-3" },
)";

// my-app with four equal ready Pods, with ClientIP affinity when
// `timeout_seconds` is given.
std::string four_pods_config(const char* timeout_seconds) {
  std::string c = config_with(kFourReadyPods);
  if (timeout_seconds != nullptr) {
    const std::string vip_line = "cluster_ip = \"10.96.0.20\"\n";
    const size_t at = c.find(vip_line);
    c.replace(at, vip_line.size(),
              vip_line + "session_affinity = \"ClientIP\"\ntimeout_seconds = " + timeout_seconds + "\n");
  }
  return c;
}

// A client's SYN to my-app; clients other than kClient sit behind the gateway.
TcpPacket syn_from(Ip4 client, uint16_t client_port) {
  const MacAddr& from = client == kClient ? kClientMac : kGatewayMac;
  return TcpPacket{{kUplinkMac, from}, {client, kVip}, {client_port, kHttp, kSyn}, {}};
}

// Sends the SYNs; returns the Pod each (client, port) reached.
std::map<std::pair<uint32_t, uint16_t>, Ip4> pods_reached(Dataplane& d, const std::vector<TcpPacket>& syns) {
  std::vector<Bytes> frames;
  for (const TcpPacket& p : syns) frames.push_back(p.frame());
  std::map<std::pair<uint32_t, uint16_t>, Ip4> out;
  for (const Output& o : d.send(kUplink, frames)) {
    EXPECT_EQ(o.port, kPods);
    EXPECT_TRUE(checksums_valid(o.frame));
    out[{ip_src(o.frame).host(), l4_sport(o.frame)}] = ip_dst(o.frame);
  }
  EXPECT_EQ(out.size(), syns.size()) << "drops: " << d.drop_summary();
  return out;
}

std::vector<TcpPacket> one_client_many_ports(Ip4 client, uint16_t first, size_t n) {
  std::vector<TcpPacket> v;
  for (uint16_t port : port_range(first, n)) v.push_back(syn_from(client, port));
  return v;
}

// 64 clients 198.51.100.1..64, three connections each.
std::vector<TcpPacket> many_clients() {
  std::vector<TcpPacket> v;
  for (uint32_t i = 1; i <= 64; ++i) {
    const Ip4 client = Ip4::from_host(ip("198.51.100.0").host() + i);
    for (uint16_t port : port_range(40001, 3)) v.push_back(syn_from(client, port));
  }
  return v;
}

std::set<uint32_t> distinct_pods(const std::map<std::pair<uint32_t, uint16_t>, Ip4>& reached) {
  std::set<uint32_t> pods;
  for (const auto& [flow, pod] : reached) pods.insert(pod.host());
  return pods;
}

TEST(WorkerPipeline, ClientIpAffinitySendsEveryConnectionOfAClientToOnePod) {
  // The premise: without affinity, one client's 300 connections spread
  // over all four Pods (so the check below can fail).
  {
    auto plain = make_dataplane(four_pods_config(nullptr));
    EXPECT_EQ(distinct_pods(pods_reached(*plain, one_client_many_ports(kClient, 20000, 300))).size(), 4u);
  }
  auto d = make_dataplane(four_pods_config("10800"));
  const auto mine = pods_reached(*d, one_client_many_ports(kClient, 20000, 300));
  EXPECT_EQ(distinct_pods(mine).size(), 1u) << "one client, 300 source ports: one Pod";

  // Other clients spread over the Pods, each client on one.
  const auto theirs = pods_reached(*d, many_clients());
  std::map<uint32_t, std::set<uint32_t>> pods_of_client;
  for (const auto& [flow, pod] : theirs) pods_of_client[flow.first].insert(pod.host());
  ASSERT_EQ(pods_of_client.size(), 64u);
  for (const auto& [client, pods] : pods_of_client) {
    EXPECT_EQ(pods.size(), 1u) << "client " << str(Ip4::from_host(client)) << " reached several Pods";
  }
  // Four equal Pods and 64 clients: each Pod gets some (a Pod with none
  // would have probability 4 * (3/4)^64 < 1e-7 for a uniform hash; the
  // hash is fixed, so this is decided once).
  EXPECT_EQ(distinct_pods(theirs).size(), 4u);
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(WorkerPipeline, ClientIpAffinityNeedsNoFlowEntrySoTimeoutSecondsChangesNothing) {
  DataplaneSetup s;
  s.config_toml = four_pods_config("1");
  s.flow_capacity = 8;  // two buckets: nearly every connection goes without an entry
  auto d = make_dataplane(std::move(s));
  const auto first = pods_reached(*d, one_client_many_ports(kClient, 20000, 200));
  EXPECT_GT(d->total(&WorkerCounters::flows_table_full), 150u) << "placed without state";
  EXPECT_EQ(distinct_pods(first).size(), 1u) << "affinity holds without flow entries";
  const auto others = pods_reached(*d, many_clients());

  // The longest timeout Kubernetes allows: every choice is the same.
  d->publish(four_pods_config("86400"));
  EXPECT_EQ(pods_reached(*d, one_client_many_ports(kClient, 30000, 200)).begin()->second,
            first.begin()->second);
  auto again = many_clients();
  for (TcpPacket& p : again) p.tcp.sport = static_cast<uint16_t>(p.tcp.sport + 1000);  // new connections
  std::map<uint32_t, uint32_t> before, after;
  for (const auto& [flow, pod] : others) before[flow.first] = pod.host();
  for (const auto& [flow, pod] : pods_reached(*d, again)) after[flow.first] = pod.host();
  EXPECT_EQ(after, before) << "timeout_seconds changed where a client goes";
}

// --- the exception path (issue 10) ------------------------------------------------

// The base world with a kernel twin on the uplink only, and a DNS VIP.
std::string twin_config(uint32_t kernel_rate) {
  std::string c = kBaseConfig;
  const std::string uplink_address = "address = \"192.0.2.1/24\"\n";
  c.replace(c.find(uplink_address), uplink_address.size(),
            uplink_address + "kernel = \"pg-kup\"\nkernel_rate = " + std::to_string(kernel_rate) + "\n");
  return c + "\n[dns]\nlisten = []\nservice_ip = \"10.96.0.10\"\n";
}

const Ip4 kDnsVip = ip("10.96.0.10");

// What reached the punt ring as a kernel punt for `port`, frame unchanged.
void expect_up_to_kernel(Dataplane& d, size_t port, const Bytes& frame) {
  const auto punted = d.take_punted();
  ASSERT_EQ(punted.size(), 1u) << d.drop_summary();
  EXPECT_EQ(punted[0].kind, PuntKind::kKernel);
  EXPECT_EQ(punted[0].port, port);
  EXPECT_TRUE(frames_equal(punted[0].frame, frame)) << describe(punted[0].frame);
}

TEST(ExceptionPath, TcpToAPortsAddressGoesUpToItsTwinUnchanged) {
  auto d = make_dataplane(twin_config(1000));
  // A BGP session's SYN to the appliance's own address.
  const Bytes syn = TcpPacket{{kUplinkMac, kClientMac}, {kClient, kUplinkIp}, {40179, 179, kSyn}, {}}.frame();
  EXPECT_TRUE(d->send(kUplink, syn).empty());
  expect_up_to_kernel(*d, kUplink, syn);
  EXPECT_EQ(d->total(&WorkerCounters::to_kernel), 1u);
  EXPECT_EQ(d->worker(0).flows().size(), 0u) << "the kernel's traffic makes no flow";
}

TEST(ExceptionPath, APortWithoutTwinStillDropsWhatIsNotForItsDataplane) {
  auto d = make_dataplane(twin_config(1000));
  const Bytes syn = TcpPacket{{kPodsMac, pod_mac(kPod0)}, {kPod0, kPodsIp}, {40022, 22, kSyn}, {}}.frame();
  EXPECT_TRUE(d->send(kPods, syn).empty());
  EXPECT_TRUE(d->take_punted().empty());
  EXPECT_EQ(d->drops(DropReason::kNotForUs), 1u) << d->drop_summary();
}

TEST(ExceptionPath, AnAnswerToTheKernelsOwnConnectionGoesUpNotThroughTheNat) {
  // The kernel connected from the uplink's address to port 8080 of a host
  // there (as a health probe to a Pod does); the SYN-ACK from that port, a
  // service's target port, is the kernel's, not a reply to reverse-NAT.
  auto d = make_dataplane(twin_config(1000));
  const Bytes synack =
      TcpPacket{{kUplinkMac, kClientMac}, {kClient, kUplinkIp}, {8080, 41000, kSyn | kAck}, {}}.frame();
  EXPECT_TRUE(d->send(kUplink, synack).empty());
  expect_up_to_kernel(*d, kUplink, synack);
}

TEST(ExceptionPath, EchoRepliesAndUnmatchedErrorsForTheTwinGoUp) {
  auto d = make_dataplane(twin_config(1000));
  const Bytes reply = icmp_echo_frame({kUplinkMac, kClientMac}, {kClient, kUplinkIp}, kIcmpEchoReply, 7, 1,
                                      kPingData);
  EXPECT_TRUE(d->send(kUplink, reply).empty());
  expect_up_to_kernel(*d, kUplink, reply);
  // Port unreachable about the kernel's own UDP datagram (a DNS probe).
  const Bytes probe = udp_frame({kClientMac, kUplinkMac}, {kUplinkIp, kClient}, {45000, 53});
  const Bytes error = icmp_error({kUplinkMac, kClientMac}, kClient, kUplinkIp, kUnreachable, kPortUnreachable,
                                 0, probe, 28);
  EXPECT_TRUE(d->send(kUplink, error).empty());
  expect_up_to_kernel(*d, kUplink, error);
  // An echo request is still answered by the worker itself.
  ASSERT_EQ(d->send(kUplink, ping(kUplinkIp)).size(), 1u);
  EXPECT_TRUE(d->take_punted().empty());
}

TEST(ExceptionPath, TcpToTheDnsVipGoesUpOnTheRxPortsTwinUdpStaysOnThePuntPath) {
  auto d = make_dataplane(twin_config(1000));
  const Bytes tcp = TcpPacket{{kUplinkMac, kClientMac}, {kClient, kDnsVip}, {40053, 53, kSyn}, {}}.frame();
  EXPECT_TRUE(d->send(kUplink, tcp).empty());
  expect_up_to_kernel(*d, kUplink, tcp);
  const Bytes udp = udp_frame({kUplinkMac, kClientMac}, {kClient, kDnsVip}, {40053, 53}, Bytes(12, 0));
  EXPECT_TRUE(d->send(kUplink, udp).empty());
  const auto punted = d->take_punted();
  ASSERT_EQ(punted.size(), 1u);
  EXPECT_EQ(punted[0].kind, PuntKind::kDns);
  // From the Pods' side, whose port has no twin: refused, and told so at
  // once (no SYN retries for a minute).
  const Bytes from_pod = TcpPacket{{kPodsMac, pod_mac(kPod0)}, {kPod0, kDnsVip}, {40053, 53, kSyn}, {}}.frame();
  const auto out = d->send(kPods, from_pod);
  ASSERT_EQ(out.size(), 1u) << d->drop_summary();
  const Bytes want = podgate_icmp_error({pod_mac(kPod0), kPodsMac}, kPodsIp4, kPod0, kUnreachable, kPortUnreachable,
                                        0, from_pod, 40);
  EXPECT_TRUE(frames_equal(out[0].frame, want)) << describe(out[0].frame) << "\nwant " << describe(want);
  EXPECT_EQ(d->drops(DropReason::kNoService), 1u) << d->drop_summary();
}

TEST(ExceptionPath, AFragmentedPingToAPortsAddressGoesUpToItsTwin) {
  // `ping -s 2000 192.0.2.1`: the kernel reassembles it and answers.  ICMP
  // is not forwarded in fragments, but this is not forwarding.
  auto d = make_dataplane(twin_config(1000));
  L3 head_l3{kClient, kUplinkIp};
  head_l3.frag = kMoreFragments;
  const Bytes head = icmp_echo_frame({kUplinkMac, kClientMac}, head_l3, kIcmpEchoRequest, 0x4242, 7, kPingData);
  EXPECT_TRUE(d->send(kUplink, head).empty());
  expect_up_to_kernel(*d, kUplink, head);
  L3 tail_l3{kClient, kUplinkIp};
  tail_l3.frag = 1480 / 8;  // the last fragment: no L4 header of its own
  const Bytes tail = icmp_echo_frame({kUplinkMac, kClientMac}, tail_l3, kIcmpEchoRequest, 0x4242, 7, kPingData);
  EXPECT_TRUE(d->send(kUplink, tail).empty());
  expect_up_to_kernel(*d, kUplink, tail);
  // Through a port without a twin, and to a VIP: dropped, as before.
  L3 pods_l3{kPod0, kPodsIp};
  pods_l3.frag = kMoreFragments;
  EXPECT_TRUE(d->send(kPods, icmp_echo_frame({kPodsMac, pod_mac(kPod0)}, pods_l3, kIcmpEchoRequest, 0x4242, 7,
                                             kPingData))
                  .empty());
  EXPECT_TRUE(d->send(kUplink, icmp_fragment()).empty());
  EXPECT_TRUE(d->take_punted().empty());
  EXPECT_EQ(d->drops(DropReason::kFragment), 2u) << d->drop_summary();
  EXPECT_EQ(d->drops_total(), 2u) << d->drop_summary();
}

TEST(ControlDoorbell, APuntWakesTheSleepingControlThreadOnceForwardingNever) {
  // The control thread arms the doorbell before it sleeps
  // (control/control_wait.hpp); a worker rings it after a poll that punted.
  auto d = make_dataplane();
  dp::Doorbell& bell = d->doorbell();
  bell.arm();
  ASSERT_EQ(d->send(kUplink, to_vip(40000).frame()).size(), 1u);
  EXPECT_TRUE(bell.armed()) << "a forwarded packet needs no control thread";
  EXPECT_EQ(bell.rings(), 0u);
  const Bytes reply = arp_frame({kUplinkMac, kGatewayMac}, Arp{kArpReply, kGatewayMac, kGateway, kUplinkMac, kUplinkIp});
  EXPECT_TRUE(d->send(kUplink, reply).empty());
  EXPECT_EQ(bell.rings(), 1u);
  EXPECT_FALSE(bell.armed());
  EXPECT_TRUE(d->send(kUplink, reply).empty());
  EXPECT_EQ(bell.rings(), 1u) << "rung once a sleep: the control thread is already waking";
  EXPECT_EQ(d->take_punted().size(), 2u);
  uint64_t count = 0;
  ASSERT_EQ(::read(bell.fd(), &count, sizeof count), static_cast<ssize_t>(sizeof count));
  EXPECT_EQ(count, 1u);
}

TEST(DnsVip, AnArpFloodIsCutAtTheWorkersLearningRateAndQueriesStillGoUp) {
  // Every ARP reply that could teach a neighbour goes up to the control
  // thread, which must still hear DNS queries and packets waiting for a
  // neighbour: a worker passes them up at Worker::kLearnPerSecond, in
  // bursts of a tenth of that (TokenBucket), and drops the rest, counted.
  auto d = make_dataplane(kBaseConfig + "\n[dns]\nlisten = []\nservice_ip = \"10.96.0.10\"\n");
  const Bytes reply = arp_frame({kUplinkMac, kGatewayMac}, Arp{kArpReply, kGatewayMac, kGateway, kUplinkMac, kUplinkIp});
  constexpr size_t kFlood = 10'000;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(d->send(kUplink, std::vector<Bytes>(kFlood, reply)).empty());
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  const size_t up = d->take_punted().size();
  constexpr uint32_t kRate = dp::Worker::kLearnPerSecond;
  EXPECT_GE(up, kRate / 10);
  EXPECT_LE(up, kRate / 10 + kRate * (static_cast<uint64_t>(ms.count()) + 1) / 1000) << ms.count() << " ms";
  EXPECT_EQ(d->drops(DropReason::kNeighborRateLimited), kFlood - up) << d->drop_summary();
  EXPECT_EQ(d->drops(DropReason::kPuntFull), 0u);
  const Bytes query = udp_frame({kUplinkMac, kClientMac}, {kClient, kDnsVip}, {20000, 53}, Bytes(12, 0));
  EXPECT_TRUE(d->send(kUplink, query).empty());
  const auto punted = d->take_punted();
  ASSERT_EQ(punted.size(), 1u);
  EXPECT_EQ(punted[0].kind, PuntKind::kDns);
}

TEST(DnsVip, AFloodingSourceLosesItsOwnExcessOthersAreStillAnswered) {
  // Issue 15: [dns] rate_limit per client address (RRL-style) before the
  // punt ring.  100 queries/s: a burst of TokenBucket::kMinBurst passes.
  auto d = make_dataplane(kBaseConfig + "\n[dns]\nlisten = []\nservice_ip = \"10.96.0.10\"\nrate_limit = 100\n");
  std::vector<Bytes> flood;
  for (uint16_t i = 0; i < 100; ++i) {
    flood.push_back(udp_frame({kUplinkMac, kClientMac}, {kClient, kDnsVip}, {uint16_t(20000 + i), 53}, Bytes(12, 0)));
  }
  EXPECT_TRUE(d->send(kUplink, flood).empty());
  const size_t passed = d->take_punted().size();
  EXPECT_GE(passed, dp::TokenBucket::kMinBurst);
  EXPECT_LE(passed, dp::TokenBucket::kMinBurst + 2);
  EXPECT_EQ(d->drops(DropReason::kDnsRateLimited), 100u - passed) << d->drop_summary();
  // Another client is not held back by the first one's flood.
  const Bytes other = udp_frame({kUplinkMac, kGatewayMac}, {kFarClient, kDnsVip}, {30000, 53}, Bytes(12, 0));
  EXPECT_TRUE(d->send(kUplink, other).empty());
  const auto punted = d->take_punted();
  ASSERT_EQ(punted.size(), 1u);
  EXPECT_EQ(punted[0].kind, PuntKind::kDns);
}

// The limit is per client address whatever the worker count: a client
// that sends every query from one socket (dnsperf -c 1, a NodeLocal
// DNSCache's pooled sockets) reaches one worker by RSS, and must get its
// whole rate there; one that spreads its source ports over every worker
// must not get more.  1000 queries/s: bursts of 100.
TEST(DnsVip, TheRateLimitIsPerClientAddressWhateverTheWorkerCount) {
  for (const bool one_socket : {true, false}) {
    SCOPED_TRACE(one_socket ? "one source port" : "many source ports");
    DataplaneSetup s;
    s.config_toml = kBaseConfig + "\n[dns]\nlisten = []\nservice_ip = \"10.96.0.10\"\nrate_limit = 1000\n";
    s.workers = 2;
    s.rss_steered = true;
    auto d = make_dataplane(std::move(s));
    std::vector<Bytes> flood;
    for (uint16_t i = 0; i < 300; ++i) {
      const uint16_t sport = one_socket ? 20000 : uint16_t(20000 + i);
      flood.push_back(udp_frame({kUplinkMac, kClientMac}, {kClient, kDnsVip}, {sport, 53}, Bytes(12, 0)));
    }
    EXPECT_TRUE(d->send(kUplink, flood).empty());
    const size_t passed = d->take_punted().size();
    EXPECT_GE(passed, 100u);
    EXPECT_LE(passed, 102u);
    EXPECT_EQ(d->drops(DropReason::kDnsRateLimited), 300u - passed) << d->drop_summary();
  }
}

TEST(ExceptionPath, AFloodAtTheTwinIsCutAtTheWorkersShareOfItsRate) {
  // 100 packets/s: a bucket of TokenBucket::kMinBurst (16) tokens, nearly
  // none earned during the test, so a burst of 200 SYNs passes 16 up (a
  // millisecond tick may add one) and drops the rest, counted.
  auto d = make_dataplane(twin_config(100));
  std::vector<Bytes> syns;
  for (uint16_t i = 0; i < 200; ++i) {
    syns.push_back(TcpPacket{{kUplinkMac, kClientMac}, {kClient, kUplinkIp}, {uint16_t(30000 + i), 179, kSyn}, {}}
                       .frame());
  }
  EXPECT_TRUE(d->send(kUplink, syns).empty());
  const size_t up = d->take_punted().size();
  EXPECT_GE(up, dp::TokenBucket::kMinBurst);
  EXPECT_LE(up, dp::TokenBucket::kMinBurst + 2);
  EXPECT_EQ(d->drops(DropReason::kKernelRateLimited), 200u - up) << d->drop_summary();
}

// --- scale-out: any appliance serves any packet of any flow (issue 10) -----------
// Several appliances behind ECMP (docs/scale-out.md) must agree on every
// flow's Pod, whatever order their configs list services and endpoints
// in, so that a flow ECMP moves to another appliance reaches the same Pod.

constexpr const char* kFourReadyPodsReversed = R"(
  { ip = "172.17.0.13", pod = "my-app-3" },
  { ip = "172.17.0.12", pod = "my-app-2" },
  { ip = "172.17.0.11", pod = "my-app-1" },
  { ip = "172.17.0.10", pod = "my-app-0" },
)";

// The same services as config_with(kFourReadyPodsReversed), one more
// listed first: other service ids, another build order.
std::string other_appliance_config() {
  std::string c = config_with(kFourReadyPodsReversed);
  const std::string first_service = "[[services]]";
  c.insert(c.find(first_service), R"([[services]]
namespace = "default"
name = "listed-first"
cluster_ip = "10.96.0.99"
ports = [ { port = 80, target_port = 8080 } ]
endpoints = [ { ip = "172.17.0.12" } ]

)");
  return c;
}

TEST(ScaleOut, TwoAppliancesChooseTheSamePodForEveryOneOf100kFlows) {
  auto a = make_dataplane(four_pods_config(nullptr));
  auto b = make_dataplane(other_appliance_config());
  std::mt19937 rng(20261205);
  std::set<std::pair<uint32_t, uint16_t>> seen;
  std::vector<TcpPacket> syns;
  while (syns.size() < 100000) {
    const Ip4 client = Ip4::from_host(ip("198.51.100.0").host() + 1 + rng() % 254);
    const auto port = static_cast<uint16_t>(1024 + rng() % (65536 - 1024));
    if (seen.insert({client.host(), port}).second) syns.push_back(syn_from(client, port));
  }
  const auto on_a = pods_reached(*a, syns);
  const auto on_b = pods_reached(*b, syns);
  ASSERT_EQ(on_a.size(), syns.size());
  size_t agree = 0;
  for (const auto& [flow, pod] : on_a) agree += on_b.at(flow) == pod ? 1 : 0;
  EXPECT_EQ(agree, syns.size()) << "flows whose Pod differs between the appliances: "
                                << syns.size() - agree;
  EXPECT_EQ(distinct_pods(on_a).size(), 4u);
}

TEST(ScaleOut, AConnectionMovedToAnotherApplianceCarriesOnAsEstablished) {
  // The handshake went through appliance A; ECMP then sends the client's
  // next segment, and the Pod's answer, to B, which has no state.
  auto a = make_dataplane(four_pods_config(nullptr));
  auto b = make_dataplane(other_appliance_config());
  TcpPacket syn = syn_from(kClient, 43210);
  const Bytes via_a = forward_one(*a, kUplink, syn.frame());
  ASSERT_FALSE(via_a.empty());
  const Ip4 pod = ip_dst(via_a);

  TcpPacket data = syn;
  data.tcp.flags = kAck | kPsh;
  data.tcp.seq = syn.tcp.seq + 1;
  const Bytes via_b = forward_one(*b, kUplink, data.frame());
  ASSERT_FALSE(via_b.empty()) << b->drop_summary();
  EXPECT_EQ(ip_dst(via_b), pod) << "B chose another Pod";
  EXPECT_EQ(b->total(&WorkerCounters::flows_picked_up), 1u);
  EXPECT_EQ(b->total(&WorkerCounters::flows_created), 1u);
  EXPECT_EQ(a->total(&WorkerCounters::flows_picked_up), 0u) << "a SYN is not picked up";
  bool established = false;
  const auto now = static_cast<uint32_t>(rte_rdtsc() / (rte_get_tsc_hz() / 1000));  // Worker::now_ms
  b->worker(0).flows().for_each_live_in(0, b->worker(0).flows().capacity(), now, [&](const dp::Flow& f) {
    established = f.state == dp::FlowState::kTcpEstablished;
  });
  EXPECT_TRUE(established) << "picked up as established, not as a SYN";

  // The Pod's reply on a third appliance with no state at all: reverse-NATed
  // by backend, statelessly, to the VIP.
  auto c = make_dataplane(four_pods_config(nullptr));
  const TcpPacket reply = reply_from(pod, data, kAck);
  const auto out = c->send(kPods, reply.frame());
  ASSERT_EQ(out.size(), 1u) << c->drop_summary();
  EXPECT_EQ(ip_src(out[0].frame), kVip);
  EXPECT_EQ(l4_sport(out[0].frame), kHttp);
  EXPECT_EQ(c->total(&WorkerCounters::replies_stateless), 1u);
}

// --- IPv4 fragments (issue 12) ------------------------------------------------
// Virtual reassembly (dataplane/fragment_table.hpp): each fragment is
// forwarded as it came, NATed like its datagram's first fragment.

const Ip4 kUdpEchoVip = ip("10.96.0.30");  // echo-udp: UDP 5353 -> the Pods' 5353

// `frame` (one IPv4 datagram, no options) cut into fragments of at most
// `chunk` payload bytes (a multiple of 8), as a host's IP layer cuts it.
std::vector<Bytes> fragment(const Bytes& frame, size_t chunk, uint16_t id) {
  const size_t total = get16(frame, kIpOff + 2) - 20;
  std::vector<Bytes> out;
  for (size_t off = 0; off < total; off += chunk) {
    const size_t n = std::min(chunk, total - off);
    Bytes f(frame.begin(), frame.begin() + kIpOff + 20);
    f.insert(f.end(), frame.begin() + kIpOff + 20 + off, frame.begin() + kIpOff + 20 + off + n);
    put16(f, kIpOff + 2, static_cast<uint16_t>(20 + n));
    put16(f, kIpOff + 4, id);
    put16(f, kIpOff + 6, static_cast<uint16_t>((off + n < total ? 0x2000 : 0) | off / 8));
    fix_ip_checksum(f);
    out.push_back(std::move(f));
  }
  return out;
}

// The datagram the fragments in `frames` make, as one unfragmented frame.
Bytes reassemble(std::vector<Bytes> frames) {
  std::sort(frames.begin(), frames.end(), [](const Bytes& a, const Bytes& b) {
    return (get16(a, kIpOff + 6) & 0x1fff) < (get16(b, kIpOff + 6) & 0x1fff);
  });
  Bytes whole(frames[0].begin(), frames[0].begin() + kIpOff + 20);
  for (const Bytes& f : frames) whole.insert(whole.end(), f.begin() + kIpOff + 20, f.end());
  put16(whole, kIpOff + 2, static_cast<uint16_t>(whole.size() - kIpOff));
  put16(whole, kIpOff + 6, 0);
  fix_ip_checksum(whole);
  return whole;
}

Bytes big_datagram_to_echo(uint16_t sport, size_t payload) {
  Bytes data(payload);
  for (size_t i = 0; i < payload; ++i) data[i] = static_cast<uint8_t>(i * 7);
  return udp_frame({kUplinkMac, kClientMac}, {kClient, kUdpEchoVip}, {sport, kDnsPort}, data);
}

// Sends `frames` in order; every one must come out on the pods port.
std::vector<Bytes> forwarded_to_pods(Dataplane& d, const std::vector<Bytes>& frames) {
  std::vector<Bytes> out;
  for (const Output& o : d.send(kUplink, frames)) {
    EXPECT_EQ(o.port, kPods);
    out.push_back(o.frame);
  }
  return out;
}

TEST(WorkerPipeline, NoIcmpErrorAboutWhatMayNotBeAnswered) {
  // RFC 1812 §4.3.2.7.  Each is dropped as it would be with TTL 64, or for
  // its TTL, and nothing is sent.
  auto d = make_dataplane();
  // A packet sent to the link-layer broadcast address.
  TcpPacket broadcast = to_vip(27010);
  broadcast.l2.dst = kBroadcast;
  broadcast.l3.ttl = 1;
  EXPECT_TRUE(d->send(kUplink, broadcast.frame()).empty());
  EXPECT_EQ(d->drops(DropReason::kTtlExceeded), 1u) << d->drop_summary();
  // A fragment other than the first.
  auto frags = fragment(big_datagram_to_echo(27020, 4000), 1480, 0x2345);
  ASSERT_EQ(d->send(kUplink, frags[0]).size(), 1u) << d->drop_summary();
  put8(frags[1], kIpOff + 8, 1);
  fix_ip_checksum(frags[1]);
  EXPECT_TRUE(d->send(kUplink, frags[1]).empty());
  EXPECT_EQ(d->drops(DropReason::kTtlExceeded), 2u) << d->drop_summary();
  // A packet no flow or Pod sends: not forwarded whatever its TTL, so no
  // Time Exceeded either (it would answer any spoofed source).
  Bytes stray = udp_frame({kUplinkMac, kClientMac}, {ip("224.0.0.5"), ip("172.17.0.99")}, {40000, 7777}, Bytes(8, 0));
  put8(stray, kIpOff + 8, 1);
  fix_ip_checksum(stray);
  EXPECT_TRUE(d->send(kUplink, stray).empty());
  EXPECT_EQ(d->drops(DropReason::kNoFlow), 1u) << d->drop_summary();
  // Nor its later fragment: dropped as its first was, not for its TTL.
  const Bytes stray_datagram =
      udp_frame({kUplinkMac, kClientMac}, {kClient, ip("172.17.0.99")}, {40001, 7777}, Bytes(3000, 0));
  auto stray_frags = fragment(stray_datagram, 1480, 0x2346);
  EXPECT_TRUE(d->send(kUplink, stray_frags[0]).empty());
  put8(stray_frags[1], kIpOff + 8, 1);
  fix_ip_checksum(stray_frags[1]);
  EXPECT_TRUE(d->send(kUplink, stray_frags[1]).empty());
  EXPECT_EQ(d->drops(DropReason::kNoFlow), 3u) << d->drop_summary();
  EXPECT_EQ(d->drops(DropReason::kTtlExceeded), 2u) << d->drop_summary();
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_sent), 0u);
  EXPECT_EQ(d->total(&WorkerCounters::icmp_errors_rate_limited), 0u);
}

// The NUMA node whose DPDK memory holds `p`.
int socket_of(const void* p) {
  const rte_memseg_list* msl = rte_mem_virt2memseg_list(p);
  return msl == nullptr ? -2 : msl->socket_id;
}

TEST(DpMemory, AWorkersMemoryIsOnTheNodeItsScopeNamesOrAnyWhereThatHasNone) {
  if (!dp::using_dpdk_heap()) GTEST_SKIP() << "the ASan build keeps dataplane objects on the C heap";
  void* plain = dp::dp_alloc(4096, 64);
  const int node = socket_of(plain);
  ASSERT_GE(node, 0) << "DPDK memory";
  {
    dp::DpSocketScope scope(node);
    void* p = dp::dp_alloc(4096, 64);
    EXPECT_EQ(socket_of(p), node);
    dp::dp_free(p);
  }
  {
    dp::DpSocketScope scope(RTE_MAX_NUMA_NODES - 1);  // a node with no memory here
    void* p = dp::dp_alloc(4096, 64);
    EXPECT_GE(socket_of(p), 0) << "any node's";
    dp::dp_free(p);
  }
  dp::dp_free(plain);
}

TEST(Fragments, EveryFragmentOfADatagramReachesTheSamePodNatedLikeTheFirst) {
  for (uint32_t workers : {1u, 2u}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    auto d = make_dataplane_on(workers);
    const Bytes whole = big_datagram_to_echo(41000, 4000);
    const auto frags = fragment(whole, 1480, 0x1234);
    ASSERT_EQ(frags.size(), 3u);
    const auto out = forwarded_to_pods(*d, frags);
    ASSERT_EQ(out.size(), 3u) << d->drop_summary();
    const Ip4 pod = ip_dst(out[0]);
    for (const Bytes& f : out) {
      EXPECT_EQ(ip_dst(f), pod);
      EXPECT_EQ(ip_src(f), kClient);
      EXPECT_EQ(f[kIpOff + 8], 63) << "TTL decremented";
      EXPECT_EQ(ip_checksum_of(f), get16(f, kIpOff + 10));
    }
    // What the Pod's stack rebuilds: the client's datagram, to the Pod,
    // with a UDP checksum that holds over all of it.
    const Bytes rebuilt = reassemble(out);
    EXPECT_TRUE(checksums_valid(rebuilt)) << describe(rebuilt);
    EXPECT_EQ(rebuilt.size(), whole.size());
    EXPECT_TRUE(std::equal(whole.begin() + kIpOff + 28, whole.end(), rebuilt.begin() + kIpOff + 28))
        << "the payload is untouched";

    // The Pod's fragmented answer goes back from the VIP.
    Bytes answer = udp_frame({kPodsMac, pod_mac(pod)}, {pod, kClient}, {kDnsPort, 41000},
                             Bytes(3000, 0x5a));
    const auto back = d->send(kPods, fragment(answer, 1480, 0x4321));
    ASSERT_EQ(back.size(), 3u) << d->drop_summary();
    std::vector<Bytes> frames;
    for (const Output& o : back) {
      EXPECT_EQ(o.port, kUplink);
      EXPECT_EQ(ip_src(o.frame), kUdpEchoVip);
      frames.push_back(o.frame);
    }
    EXPECT_TRUE(checksums_valid(reassemble(frames)));
  }
}

TEST(Fragments, LaterFragmentsThatComeFirstWaitForTheirFirst) {
  auto d = make_dataplane();
  auto frags = fragment(big_datagram_to_echo(41100, 4000), 1480, 0x2222);
  EXPECT_TRUE(d->send(kUplink, frags[2]).empty());
  EXPECT_TRUE(d->send(kUplink, frags[1]).empty());
  const auto out = d->send(kUplink, frags[0]);
  ASSERT_EQ(out.size(), 3u) << d->drop_summary();
  std::vector<Bytes> frames;
  for (const Output& o : out) frames.push_back(o.frame);
  EXPECT_EQ(ip_dst(frames[0]), ip_dst(frames[1]));
  EXPECT_EQ(ip_dst(frames[0]), ip_dst(frames[2]));
  EXPECT_TRUE(checksums_valid(reassemble(frames)));
  EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
}

TEST(Fragments, WaitingIsBoundedPerDatagram) {
  // Fragments whose first never comes: four wait, the fifth is dropped.
  auto d = make_dataplane();
  const auto frags = fragment(big_datagram_to_echo(41200, 8000), 1480, 0x3333);
  ASSERT_EQ(frags.size(), 6u);
  for (size_t i = 1; i < frags.size(); ++i) EXPECT_TRUE(d->send(kUplink, frags[i]).empty());
  EXPECT_EQ(d->drops(DropReason::kFragmentUnmatched), 1u) << d->drop_summary();
}

// The worker whose fragment table a datagram's fragments meet in.
uint32_t fragment_owner(const Bytes& fragment, uint32_t workers) {
  dp::FragmentKey key;
  std::memcpy(&key.src, &fragment[kIpOff + 12], 4);
  std::memcpy(&key.dst, &fragment[kIpOff + 16], 4);
  std::memcpy(&key.id, &fragment[kIpOff + 4], 2);
  key.proto = fragment[kIpOff + 9];
  return dp::fragment_owner(key.hash(), workers);
}

TEST(Fragments, AFirstFragmentReleasingFourIntoAFullBurstLosesNone) {
  // One packet in is five out: a burst of 31 packets and a first fragment
  // whose four later fragments wait must give 36 packets on one port
  // (a TX batch holds a burst), or, with two workers, through one handoff
  // (a handoff holds a burst): every way the fragments' worker and the
  // connection's owner can fall.
  for (uint32_t workers : {1u, 2u}) {
    std::set<std::pair<uint32_t, uint32_t>> seen;  // (fragments' worker, connection's owner)
    for (uint16_t id = 0x7000; seen.size() < workers * workers; ++id) {
      ASSERT_LT(id, 0x7100) << "no datagram for every pair of workers";
      auto d = make_dataplane_on(workers);
      const uint16_t sport = static_cast<uint16_t>(41500 + id % 2);
      const auto frags = fragment(big_datagram_to_echo(sport, 8000), 1480, id);
      ASSERT_EQ(frags.size(), 6u);
      const uint32_t owner = d->worker(0).ownership().owner(kClient, dp::to_be16(sport));
      if (!seen.insert({fragment_owner(frags[0], workers), owner}).second) continue;
      SCOPED_TRACE("workers " + std::to_string(workers) + ", fragment id " + std::to_string(id));
      for (size_t i = 1; i <= 4; ++i) EXPECT_TRUE(d->send(kUplink, frags[i]).empty());
      std::vector<Bytes> burst;
      for (uint16_t port = 30000; burst.size() < 31; ++port) {
        if (d->worker(0).ownership().owner(kClient, dp::to_be16(port)) != owner) continue;
        burst.push_back(udp_frame({kUplinkMac, kClientMac}, {kClient, kUdpEchoVip}, {port, kDnsPort}, Bytes(16, 1)));
      }
      burst.push_back(frags[0]);
      const auto out = d->send(kUplink, burst);
      EXPECT_EQ(out.size(), 36u) << d->drop_summary();
      EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
    }
  }
}

TEST(Fragments, AMartianSourcesFragmentsAreDroppedAllOfThem) {
  // The first fragment is refused as any new connection from 127/8 is;
  // the later ones, which know its ports, must not slip through by Maglev.
  auto d = make_dataplane();
  const Bytes whole = udp_frame({kUplinkMac, kClientMac}, {ip("127.0.0.5"), kUdpEchoVip}, {41400, kDnsPort},
                                Bytes(4000, 1));
  EXPECT_TRUE(d->send(kUplink, fragment(whole, 1480, 0x5555)).empty());
  EXPECT_EQ(d->drops(DropReason::kMartianSource), 3u) << d->drop_summary();
}

TEST(Fragments, TinyFirstFragmentsAreDroppedRfc1858) {
  auto d = make_dataplane();
  // A TCP first fragment of 8 bytes: no room for the flags.
  const Bytes syn = to_vip(41300).frame();
  const auto tiny = fragment(syn, 8, 0x4444);
  EXPECT_TRUE(d->send(kUplink, tiny[0]).empty());
  EXPECT_EQ(d->drops(DropReason::kFragmentTiny), 1u) << d->drop_summary();
  // And a TCP fragment at offset 1 (8 bytes), which would overwrite them.
  EXPECT_TRUE(d->send(kUplink, tiny[1]).empty());
  EXPECT_EQ(d->drops(DropReason::kFragmentTiny), 2u) << d->drop_summary();
}

TEST(Fragments, EveryFragmentCountsAsTrafficOfItsEndpoint) {
  // As TrafficIsCountedPerEndpointAndOutlivesTheEndpoint: each packet that
  // reaches a Pod or comes back from one, the later fragments too (they
  // are NATed by address alone, but they are the endpoint's traffic).
  auto d = make_dataplane();
  const dp::ServiceKey echo{kUdpEchoVip, dp::to_be16(kDnsPort), dp::Proto::kUdp, 0};
  auto at = [&](Ip4 pod) { return d->slots().endpoint(echo, dp::Backend{pod, dp::to_be16(kDnsPort), 0}).value(); };
  auto bytes_of = [](const std::vector<Bytes>& frames) {
    uint64_t n = 0;
    for (const Bytes& f : frames) n += f.size();
    return n;
  };
  const auto in = fragment(big_datagram_to_echo(41700, 4000), 1480, 0x5a5a);
  const auto out = forwarded_to_pods(*d, in);
  ASSERT_EQ(out.size(), 3u) << d->drop_summary();
  const Ip4 pod = ip_dst(out[0]);
  EXPECT_EQ(at(pod).packets_in, 3u);
  EXPECT_EQ(at(pod).bytes_in, bytes_of(in));
  // The answer, by the flow's reverse key.
  const auto answer = fragment(udp_frame({kPodsMac, pod_mac(pod)}, {pod, kClient}, {kDnsPort, 41700},
                                         Bytes(3000, 0x5a)), 1480, 0x4321);
  ASSERT_EQ(d->send(kPods, answer).size(), 3u) << d->drop_summary();
  EXPECT_EQ(at(pod).packets_out, 3u);
  EXPECT_EQ(at(pod).bytes_out, bytes_of(answer));
  // An answer no flow knows: reverse-NATed by the Pod's address and port.
  const auto stray = fragment(udp_frame({kPodsMac, pod_mac(pod)}, {pod, kClient}, {kDnsPort, 41701},
                                        Bytes(3000, 0x5b)), 1480, 0x4322);
  ASSERT_EQ(d->send(kPods, stray).size(), 3u) << d->drop_summary();
  EXPECT_EQ(d->total(&WorkerCounters::replies_stateless), 3u);
  EXPECT_EQ(at(pod).packets_out, 6u);
  EXPECT_EQ(at(pod).bytes_out, bytes_of(answer) + bytes_of(stray));
}

// Every mbuf of `pool` as a fragment handed over for a connection of
// `proto` left it: a PMD leaves an mbuf's dynamic fields as they were.
void leave_stale_fragment_meta(rte_mempool* pool, dp::Proto proto) {
  rte_mempool_obj_iter(
      pool,
      [](rte_mempool*, void* arg, void* obj, unsigned) {
        dp::fragment_meta(static_cast<rte_mbuf*>(obj)) =
            dp::FragmentMeta{dp::to_be16(1), dp::to_be16(2), 1, *static_cast<const dp::Proto*>(arg)};
      },
      &proto);
}

// Datagrams that need no hand-off: the uplink's worker (0) owns their
// connection and the table their fragments meet in.  A client port from
// `from` on whose connection worker 0 owns.
uint16_t client_port_of_worker0(Dataplane& d, uint16_t from) {
  while (d.worker(0).ownership().owner(kClient, dp::to_be16(from)) != 0) ++from;
  return from;
}

// The fragments of the next datagram from `sport` whose fragments meet on
// worker 0 (IP ID from `id` on; `id` moves past it).
std::vector<Bytes> datagram_of_worker0(uint16_t sport, uint16_t& id, uint32_t workers) {
  for (;; ++id) {
    auto frags = fragment(big_datagram_to_echo(sport, 4000), 1480, id);
    if (fragment_owner(frags[0], workers) == 0) {
      ++id;
      return frags;
    }
  }
}

// The base config with my-app's two ready Pods down to `kept`.
std::string base_config_with_only(Ip4 kept) {
  std::string c = kBaseConfig;
  const std::string both = R"(endpoints = [ { ip = "172.17.0.10" }, { ip = "172.17.0.11" } ])";
  c.replace(c.find(both), both.size(),
            std::string(R"(endpoints = [ { ip = ")") + (kept == kPod0 ? "172.17.0.10" : "172.17.0.11") + R"(" } ])");
  return c;
}

TEST(Fragments, AFirstFragmentWhoseFlowLostItsPodStartsOverAsWhatItIs) {
  // The Pod of a flow is removed: the next first fragment ends the flow and
  // is classified again (revalidate_failed()), by its own headers, never by
  // a FragmentMeta that no hand-off wrote for it (stale bytes: here TCP's).
  for (uint32_t workers : {1u, 2u}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    auto d = make_dataplane_on(workers);
    const uint16_t sport = client_port_of_worker0(*d, 41800);
    uint16_t id = 0x6000;
    const auto first = forwarded_to_pods(*d, datagram_of_worker0(sport, id, workers));
    ASSERT_EQ(first.size(), 3u) << d->drop_summary();
    const Ip4 left = ip_dst(first[0]) == kPod0 ? kPod1 : kPod0;
    d->publish(base_config_with_only(left));
    leave_stale_fragment_meta(d->pool(), dp::Proto::kTcp);
    const auto out = forwarded_to_pods(*d, datagram_of_worker0(sport, id, workers));
    ASSERT_EQ(out.size(), 3u) << d->drop_summary();
    for (const Bytes& f : out) EXPECT_EQ(ip_dst(f), left);
    EXPECT_TRUE(checksums_valid(reassemble(out)));
    EXPECT_EQ(d->total(&WorkerCounters::flows_endpoint_gone), 1u);
    EXPECT_EQ(d->drops_total(), 0u) << d->drop_summary();
  }
}

TEST(Fragments, LaterFragmentsWhoseFlowLostItsPodSinceTheFirstGoNotToIt) {
  // The Pod is removed between a datagram's first fragment and the rest:
  // the rest revalidate the flow as any of its packets would, end it, and
  // are placed afresh, never sent to the removed Pod.
  for (uint32_t workers : {1u, 2u}) {
    SCOPED_TRACE("workers " + std::to_string(workers));
    auto d = make_dataplane_on(workers);
    uint16_t id = 0x7000;
    const auto frags = datagram_of_worker0(client_port_of_worker0(*d, 41900), id, workers);
    const auto first = forwarded_to_pods(*d, {frags[0]});
    ASSERT_EQ(first.size(), 1u) << d->drop_summary();
    const Ip4 left = ip_dst(first[0]) == kPod0 ? kPod1 : kPod0;
    d->publish(base_config_with_only(left));
    const auto rest = forwarded_to_pods(*d, {frags[1], frags[2]});
    ASSERT_EQ(rest.size(), 2u) << d->drop_summary();
    for (const Bytes& f : rest) EXPECT_EQ(ip_dst(f), left);
    EXPECT_EQ(d->total(&WorkerCounters::flows_endpoint_gone), 1u);
  }
}

TEST(Fragments, HeldFragmentsExpireThoughMoreOfTheirDatagramKeepComing) {
  // RFC 8200 §4.5, RFC 1122 §3.3.2: the wait is bounded from a datagram's
  // first-arriving fragment.  Were each fragment to extend it, a trickle of
  // fragments whose first never comes (four for each of 16 datagrams, then
  // one more each every < 2 s) would hold every slot for good, and every
  // other datagram's early fragments would be dropped.  Driven on the
  // table itself, with its clock in the test's hands.
  using Table = dp::FragmentTable;
  auto d = make_dataplane();  // for its mbufs
  Table table;
  auto key = [](uint16_t id) { return dp::FragmentKey{kClient.be, kUdpEchoVip.be, id, IPPROTO_UDP, 0}; };
  constexpr uint16_t kDatagrams = Table::kMaxHeld / Table::kHeldPerDatagram;
  const uint32_t t0 = 1000;
  uint32_t dropped = 0;
  for (uint16_t id = 0; id < kDatagrams; ++id) {
    auto& c = table.find_or_make(key(id), t0, dropped);
    for (uint32_t i = 0; i < Table::kHeldPerDatagram; ++i) ASSERT_TRUE(table.hold(c, rte_pktmbuf_alloc(d->pool())));
  }
  ASSERT_EQ(dropped, 0u) << "no two datagrams in one way";
  ASSERT_EQ(table.held(), Table::kMaxHeld);
  for (uint16_t id = 0; id < kDatagrams; ++id) {
    rte_mbuf* fifth = rte_pktmbuf_alloc(d->pool());
    EXPECT_FALSE(table.hold(table.find_or_make(key(id), t0 + Table::kLifetimeMs - 500, dropped), fifth));
    rte_pktmbuf_free(fifth);  // as the worker drops it
  }
  EXPECT_EQ(table.sweep(t0 + Table::kLifetimeMs - 1, Table::kSlots), 0u) << "not yet";
  EXPECT_EQ(table.sweep(t0 + Table::kLifetimeMs, Table::kSlots), Table::kMaxHeld);
  EXPECT_EQ(table.held(), 0u);
  const uint32_t t1 = t0 + Table::kLifetimeMs;
  rte_mbuf* early = rte_pktmbuf_alloc(d->pool());
  const bool room = table.hold(table.find_or_make(key(100), t1, dropped), early);
  EXPECT_TRUE(room) << "for another datagram's early fragment";
  if (!room) rte_pktmbuf_free(early);
  // Its first fragment, just before the wait ends: the rest of the
  // datagram has the full lifetime from it to follow.
  const uint32_t t2 = t1 + Table::kLifetimeMs - 1;
  Table::Context& c = table.find_or_make(key(100), t2, dropped);
  table.learn_ports(c, dp::Proto::kUdp, dp::to_be16(41900), dp::to_be16(kDnsPort), t2);
  rte_mbuf* released[Table::kHeldPerDatagram];
  const uint8_t n = table.take_held(c, released);
  EXPECT_EQ(n, room ? 1u : 0u);
  for (uint8_t i = 0; i < n; ++i) rte_pktmbuf_free(released[i]);
  EXPECT_TRUE(table.find_or_make(key(100), t2 + Table::kLifetimeMs - 1, dropped).ports_known);
  EXPECT_FALSE(table.find_or_make(key(100), t2 + Table::kLifetimeMs, dropped).ports_known) << "a new datagram's";
  EXPECT_EQ(dropped, 0u);
}

}  // namespace
}  // namespace podgate::test
