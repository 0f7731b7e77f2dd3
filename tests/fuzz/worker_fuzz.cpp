// libFuzzer target over the worker's input path (tools/fuzz.sh --target
// worker): fuzz bytes become frames on real DPDK net_ring ports, polled by
// two real dp::Workers (flow hand-off between them included) with the
// snapshot built from conf/podgate.toml, through the tier-2 fixture of the
// dataplane tests (tests/dataplane/test_env.hpp).  EAL is initialised once,
// in LLVMFuzzerInitialize; each input is one round: its frames go into the
// ports' RX rings, the workers are polled on this thread until every ring
// is empty, and what they sent or punted is taken out.  The promises:
//   - every mbuf comes back: after a round none is in use but the later
//     IP fragments the workers hold for their first one (at most
//     FragmentTable::kMaxHeld each): nothing leaked;
//   - every IPv4 frame the workers send has a whole header with a right
//     checksum, within the frame.
// The workers' flow tables live across inputs (a campaign would spend its
// time building them otherwise); short timeouts keep them from filling up.
//
// Input: frames, each [port][length, 2 bytes big-endian][frame]; the low bit
// of `port` picks the uplink (0) or the pods port (1); a frame cut short
// takes what is left.  PODGATE_FUZZ_WRITE_SEEDS=DIR writes the seed corpus
// (tests/fuzz/worker-corpus/) from tests/dataplane/packet_builder.hpp and exits.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>

#include "dataplane/fragment_table.hpp"
#include "dataplane/punt.hpp"
#include "tests/dataplane/packet_builder.hpp"
#include "tests/dataplane/test_env.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace podgate::test {
namespace {

constexpr const char* kTarget = "worker_fuzz";
constexpr size_t kMaxFrames = 32;   // one burst
constexpr size_t kMaxFrame = 1600;  // fits one mbuf, beyond the ports' MTU

// The shipped config's world: its ports, services and DNS VIP, plus a
// route behind the uplink's gateway.
const Ip4 kClient = ip("192.0.2.2");
const Ip4 kGateway = ip("192.0.2.254");
const Ip4 kVip = ip("10.96.0.20");      // my-app, TCP 80 -> 8080
const Ip4 kUdpVip = ip("10.96.0.30");   // echo-udp, UDP 5353
const Ip4 kDnsVip = ip("10.96.0.10");   // dns.service_ip
const Ip4 kPod0 = ip("172.17.0.10");
const Ip4 kUplinkIp = ip("192.0.2.1");
const MacAddr kClientMac = mac("02:00:00:00:02:02");
const MacAddr kGatewayMac = mac("02:00:00:00:02:fe");
const MacAddr kPod0Mac = mac("02:00:00:00:11:0a");

std::string world_toml() {
  std::ifstream in(PODGATE_SOURCE_DIR "/conf/podgate.toml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) fuzz::broken(kTarget, "cannot read conf/podgate.toml");
  return text + "\n[[routes]]\nprefix = \"198.51.100.0/24\"\nvia = \"192.0.2.254\"\n";
}

Dataplane& dataplane() {
  // Never destroyed: the workers outlive every input, and EAL is not
  // cleaned up at exit.
  static Dataplane* d = [] {
    DataplaneSetup s;
    s.config_toml = world_toml();
    s.workers = 2;
    s.flow_capacity = 4096;
    s.timeouts = dp::FlowTimeouts{200, 1000, 200, 1000};
    s.port_mtus = {1500, 1400};  // a smaller pods MTU: "fragmentation needed" paths
    auto* dp = new Dataplane(std::move(s));
    dp->neighbors().set(kClient, kClientMac);
    dp->neighbors().set(kGateway, kGatewayMac);
    for (uint32_t last = 10; last <= 12; ++last) {
      MacAddr m = kPod0Mac;
      m.bytes[5] = static_cast<uint8_t>(last);
      dp->neighbors().set(Ip4::from_host(kPod0.host() - 10 + last), m);
    }
    return dp;
  }();
  return *d;
}

void check_sent(const Output& o) {
  const Bytes& f = o.frame;
  if (f.size() < kEthLen) fuzz::broken(kTarget, "sent a frame shorter than an Ethernet header");
  if (ether_type(f) != kEtherIpv4) return;
  if (f.size() < kIpOff + 20) fuzz::broken(kTarget, "sent an IPv4 frame without a whole header");
  const size_t ihl = ihl_bytes(f);
  if (ihl < 20 || kIpOff + ihl > f.size()) fuzz::broken(kTarget, "sent an IPv4 header beyond its frame");
  if (kIpOff + ip_total_length(f) > f.size()) fuzz::broken(kTarget, "sent an IPv4 datagram longer than its frame");
  if (ip_checksum_of(f) != get16(f, kIpOff + 10)) fuzz::broken(kTarget, "sent an IPv4 header with a wrong checksum");
}

// ---- seeds ----------------------------------------------------------------

struct SeedFrame {
  size_t port;
  Bytes frame;
};

Bytes encode(const std::vector<SeedFrame>& frames) {
  Bytes out;
  for (const SeedFrame& f : frames) {
    out.push_back(static_cast<uint8_t>(f.port));
    out.push_back(static_cast<uint8_t>(f.frame.size() >> 8));
    out.push_back(static_cast<uint8_t>(f.frame.size()));
    out.insert(out.end(), f.frame.begin(), f.frame.end());
  }
  return out;
}

void write_seeds(const std::string& dir) {
  const MacAddr up = port_mac(kUplink), pods = port_mac(kPods), bcast = mac("ff:ff:ff:ff:ff:ff");
  const L2 from_client{up, kClientMac}, from_pod{pods, kPod0Mac};
  const TcpPacket syn{from_client, {kClient, kVip}, {40000, 80, kSyn}, {}};
  TcpPacket syn_ack{from_pod, {kPod0, kClient}, {8080, 40000, kSyn | kAck}, {}};
  syn_ack.tcp.ack = 1001;
  TcpPacket ack = syn;
  ack.tcp.flags = kAck;
  ack.tcp.seq = 1001;
  TcpPacket fin = ack;
  fin.tcp.flags = kFin | kAck;
  TcpPacket big = ack;
  big.payload.assign(1400, 0x5a);  // over the pods port's MTU of 1400
  TcpPacket ttl1 = syn;
  ttl1.l3.ttl = 1;
  TcpPacket options = syn;
  options.l3.options = {0x94, 0x04, 0x00, 0x00};  // Router Alert (RFC 2113)
  TcpPacket far = syn;
  far.l2.src = kGatewayMac;
  far.l3.src = ip("198.51.100.7");
  TcpPacket fragment = syn;
  fragment.l3.frag = kMoreFragments;
  const UdpPacket udp{from_client, {kClient, kUdpVip}, {40001, 5353, true}, {'h', 'i'}};
  // A DNS query for my-app.default.svc.cluster.local A, to the DNS VIP.
  Bytes query = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  for (std::string_view label : {"my-app", "default", "svc", "cluster", "local"}) {
    query.push_back(static_cast<uint8_t>(label.size()));
    query.insert(query.end(), label.begin(), label.end());
  }
  query.insert(query.end(), {0, 0, 1, 0, 1});
  const UdpPacket dns{from_client, {kClient, kDnsVip}, {40002, 53, true}, query};
  const Bytes ping = icmp_echo_frame(from_client, {kClient, kUplinkIp}, kIcmpEchoRequest, 7, 1, {1, 2, 3});
  const Bytes arp_request = arp_frame({bcast, kClientMac}, {kArpRequest, kClientMac, kClient, {}, kUplinkIp});
  const Bytes arp_reply = arp_frame({up, kClientMac}, {kArpReply, kClientMac, kClient, up, kUplinkIp});

  const std::vector<std::pair<std::string, std::vector<SeedFrame>>> seeds = {
      {"tcp-syn", {{kUplink, syn.frame()}}},
      {"tcp-handshake-and-close",
       {{kUplink, syn.frame()}, {kPods, syn_ack.frame()}, {kUplink, ack.frame()}, {kUplink, fin.frame()}}},
      {"tcp-over-pods-mtu", {{kUplink, syn.frame()}, {kUplink, big.frame()}}},
      {"tcp-ttl-1", {{kUplink, ttl1.frame()}}},
      {"tcp-ip-options", {{kUplink, options.frame()}}},
      {"tcp-routed-client", {{kUplink, far.frame()}}},
      {"tcp-fragment", {{kUplink, fragment.frame()}}},
      {"tcp-reply-without-flow", {{kPods, syn_ack.frame()}}},
      {"udp", {{kUplink, udp.frame()}}},
      {"dns-vip", {{kUplink, dns.frame()}}},
      {"icmp-echo", {{kUplink, ping}}},
      {"arp-request", {{kUplink, arp_request}}},
      {"arp-reply", {{kUplink, arp_reply}}},
  };
  for (const auto& [name, frames] : seeds) {
    const Bytes bytes = encode(frames);
    std::ofstream(dir + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
}

// As tests/dataplane/dataplane_main.cpp, on one lcore, with a file prefix
// of its own so that a campaign can run beside other DPDK processes.
void initialize(const char* argv0) {
  const std::string prefix = "podgate-fuzz-" + std::to_string(getpid());
  const char* eal_args[] = {argv0, "--no-huge", "--no-shconf", "-m", "256", "--no-pci",
                            "--lcores", "0", "--file-prefix", prefix.c_str(), "--log-level=*:error"};
  if (rte_eal_init(static_cast<int>(std::size(eal_args)), const_cast<char**>(eal_args)) < 0) {
    fuzz::broken(kTarget, std::string("rte_eal_init: ") + rte_strerror(rte_errno));
  }
  // Dataplane objects stay on the C heap (no dp::use_dpdk_heap()), which
  // AddressSanitizer sees into, as in the dataplane tests under ASan.
  if (!dp::register_mbuf_fields()) fuzz::broken(kTarget, "cannot register the mbuf dynamic fields");
  (void)dataplane();
}

void run_one(const uint8_t* data, size_t size) {
  Dataplane& d = dataplane();
  size_t at = 0;
  for (size_t n = 0; n < kMaxFrames && at + 3 <= size; ++n) {
    const size_t port = data[at] & 1;
    const size_t len = std::min({size_t{data[at + 1]} << 8 | data[at + 2], size - at - 3, kMaxFrame});
    at += 3;
    if (!d.port(port).inject(Bytes(data + at, data + at + len))) fuzz::broken(kTarget, "cannot inject a frame");
    at += len;
  }
  d.poll_until_idle();
  for (size_t p : {kUplink, kPods}) {
    if (d.port(p).rx_pending() != 0) fuzz::broken(kTarget, "the workers left frames in an RX ring");
  }
  for (const Output& o : d.collect()) check_sent(o);
  (void)d.take_punted();
  // Later IP fragments may wait for their first one (2 s at most), up to
  // kMaxHeld per worker; anything beyond is a leak.
  const size_t may_wait = d.worker_count() * dp::FragmentTable::kMaxHeld;
  if (const unsigned in_use = rte_mempool_in_use_count(d.pool()); in_use > may_wait) {
    fuzz::broken(kTarget, std::to_string(in_use) + " mbufs in use after a round, more than the " +
                              std::to_string(may_wait) + " fragments the workers may hold");
  }
}

}  // namespace
}  // namespace podgate::test

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)argc;
  if (const char* dir = std::getenv("PODGATE_FUZZ_WRITE_SEEDS")) {
    podgate::test::write_seeds(dir);
    std::exit(0);
  }
  podgate::test::initialize((*argv)[0]);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  podgate::test::run_one(data, size);
  return 0;
}
