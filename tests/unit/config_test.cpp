// Config loading: a good file gives the values it says (and the documented
// defaults), the shipped conf/podgate.toml loads, and every kind of mistake
// gives exactly the message a person can act on, FILE:LINE:COL: PATH: what.
#include "control/config/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#ifndef PODGATE_SOURCE_DIR
#error "PODGATE_SOURCE_DIR must name the source tree (set in tests/meson.build)"
#endif

namespace podgate::ctl {
namespace {

using dp::Ip4;
using dp::IpAddr;
using dp::Prefix4;
using dp::Proto;

Ip4 ip(const char* s) { return *dp::parse_ip4(s); }
IpAddr ipa(const char* s) { return IpAddr::v4(ip(s)); }
Prefix4 pfx(const char* s) { return *dp::parse_prefix4(s); }
dp::MacAddr mac(const char* s) { return *dp::parse_mac(s); }

constexpr const char* kExample = R"(
[eal]
args = ["--no-huge", "-l", "0-2"]

[dataplane]
workers = 2
maglev_table_size = 251
udp_timeout = 60

[[ports]]
name = "uplink"
device = "0000:01:00.0"
address = "192.0.2.1/24"
mac = "02:00:00:00:00:01"
mtu = 9000

[[ports]]
name = "pods"
device = "net_tap1,iface=pg-pods"
address = "172.17.0.1/16"

[[routes]]
prefix = "10.244.0.0/16"
via = "172.17.0.254"

[[neighbors]]
ip = "172.17.0.254"
mac = "02:00:00:00:00:fe"

[[services]]
namespace = "default"
name = "my-app"
cluster_ip = "10.96.0.20"
session_affinity = "ClientIP"
timeout_seconds = 600
maglev_table_size = 65521
ports = [
  { name = "http", port = 80, target_port = 8080 },
  { name = "dns", port = 53, protocol = "UDP" },
]
endpoints = [
  { ip = "172.17.0.10", pod = "my-app-0" },
  { ip = "172.17.0.11", pod = "my-app-1", weight = 2 },
  { ip = "172.17.0.12", pod = "my-app-2", ready = false, serving = true, terminating = true },
  { ip = "172.17.0.13", ready = false },
]

[[services]]
namespace = "default"
name = "mongodb-service"
cluster_ip = "None"
publish_not_ready_addresses = true
ports = [ { name = "mongo", port = 27017 } ]
endpoints = [
  { ip = "172.17.1.10", pod = "mongodb-0", hostname = "mongodb-0", subdomain = "mongodb-service" },
]

[[services]]
namespace = "billing"
name = "db"
type = "ExternalName"
external_name = "db.billing.example.com"
)";

TEST(ConfigExample, ParsesEveryKeyToItsValue) {
  auto r = parse_config(kExample, "example.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Config& c = *r;
  EXPECT_EQ(c.source, "example.toml");
  EXPECT_THAT(c.eal.args, testing::ElementsAre("--no-huge", "-l", "0-2"));
  EXPECT_EQ(c.dataplane.workers, 2u);
  EXPECT_EQ(c.dataplane.maglev_table_size, 251u);
  EXPECT_EQ(c.dataplane.udp_timeout, 60u);

  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].name, "uplink");
  EXPECT_EQ(c.ports[0].device, "0000:01:00.0");
  EXPECT_EQ(c.ports[0].address, pfx("192.0.2.1/24"));
  EXPECT_EQ(c.ports[0].mac, mac("02:00:00:00:00:01"));
  EXPECT_EQ(c.ports[0].mtu, 9000);
  EXPECT_EQ(c.ports[1].address, pfx("172.17.0.1/16"));
  EXPECT_FALSE(c.ports[1].mac.has_value());
  EXPECT_FALSE(c.ports[1].mtu.has_value());

  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].prefix, pfx("10.244.0.0/16"));
  EXPECT_EQ(c.routes[0].via, ip("172.17.0.254"));
  ASSERT_EQ(c.neighbors.size(), 1u);
  EXPECT_EQ(c.neighbors[0].ip, ip("172.17.0.254"));
  EXPECT_EQ(c.neighbors[0].mac, mac("02:00:00:00:00:fe"));

  ASSERT_EQ(c.services.size(), 3u);
  const ServiceConfig& app = c.services[0];
  EXPECT_EQ(app.ns, "default");
  EXPECT_EQ(app.name, "my-app");
  EXPECT_EQ(app.type, ServiceType::kClusterIp);
  EXPECT_FALSE(app.headless());
  EXPECT_EQ(app.cluster_ip, ipa("10.96.0.20"));
  EXPECT_EQ(app.session_affinity, SessionAffinity::kClientIp);
  EXPECT_EQ(app.affinity_timeout, 600u);
  EXPECT_EQ(app.maglev_table_size, 65521u);
  ASSERT_EQ(app.ports.size(), 2u);
  EXPECT_EQ(app.ports[0].name, "http");
  EXPECT_EQ(app.ports[0].port, 80);
  EXPECT_EQ(app.ports[0].target_port, 8080);
  EXPECT_EQ(app.ports[0].protocol, Proto::kTcp);
  EXPECT_EQ(app.ports[1].port, 53);
  EXPECT_EQ(app.ports[1].target_port, 53) << "target_port defaults to port";
  EXPECT_EQ(app.ports[1].protocol, Proto::kUdp);
  ASSERT_EQ(app.endpoints.size(), 4u);
  EXPECT_EQ(app.endpoints[0].ip, ipa("172.17.0.10"));
  EXPECT_EQ(app.endpoints[0].pod, "my-app-0");
  EXPECT_EQ(app.endpoints[1].weight, 2u);
  EXPECT_FALSE(app.endpoints[2].ready);
  EXPECT_TRUE(app.endpoints[2].serving);
  EXPECT_TRUE(app.endpoints[2].terminating);
  EXPECT_FALSE(app.endpoints[3].ready);
  EXPECT_FALSE(app.endpoints[3].serving) << "serving defaults to ready";

  const ServiceConfig& mongo = c.services[1];
  EXPECT_TRUE(mongo.headless());
  EXPECT_TRUE(mongo.publish_not_ready_addresses);
  EXPECT_FALSE(mongo.maglev_table_size.has_value());
  ASSERT_EQ(mongo.ports.size(), 1u);
  EXPECT_EQ(mongo.ports[0].name, "mongo");
  ASSERT_EQ(mongo.endpoints.size(), 1u);
  EXPECT_EQ(mongo.endpoints[0].hostname, "mongodb-0");
  EXPECT_EQ(mongo.endpoints[0].subdomain, "mongodb-service");

  const ServiceConfig& ext = c.services[2];
  EXPECT_EQ(ext.type, ServiceType::kExternalName);
  EXPECT_EQ(ext.external_name, "db.billing.example.com");
  EXPECT_FALSE(ext.cluster_ip.has_value());
  EXPECT_FALSE(ext.headless()) << "ExternalName is not headless";
}

TEST(ConfigExample, AbsentKeysTakeTheDocumentedDefaults) {
  auto r = parse_config(R"(
[[ports]]
name = "p"
device = "net_ring0"
address = "10.0.0.1/24"
[[services]]
namespace = "ns"
name = "svc"
cluster_ip = "10.96.0.1"
ports = [ { port = 80 } ]
endpoints = [ { ip = "10.0.0.2" } ]
)", "d.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const DataplaneConfig d = r->dataplane;
  const DataplaneConfig want;
  EXPECT_EQ(d.workers, 1u);
  EXPECT_EQ(d.flow_table_size, want.flow_table_size);
  EXPECT_EQ(d.maglev_table_size, 65537u);
  EXPECT_EQ(d.mbufs, want.mbufs);
  EXPECT_EQ(d.rx_ring_size, want.rx_ring_size);
  EXPECT_EQ(d.tx_ring_size, want.tx_ring_size);
  EXPECT_EQ(d.tcp_syn_timeout, want.tcp_syn_timeout);
  EXPECT_EQ(d.tcp_established_timeout, want.tcp_established_timeout);
  EXPECT_EQ(d.tcp_fin_timeout, 120u);
  EXPECT_EQ(d.tcp_closing_timeout, want.tcp_closing_timeout);
  EXPECT_EQ(d.udp_timeout, want.udp_timeout);
  EXPECT_TRUE(r->eal.args.empty());
  const ServiceConfig& s = r->services.at(0);
  EXPECT_EQ(s.type, ServiceType::kClusterIp);
  EXPECT_EQ(s.session_affinity, SessionAffinity::kNone);
  EXPECT_EQ(s.affinity_timeout, 10800u);
  EXPECT_FALSE(s.publish_not_ready_addresses);
  EXPECT_EQ(s.ports.at(0).name, "");
  EXPECT_EQ(s.ports.at(0).target_port, 80);
  EXPECT_EQ(s.ports.at(0).protocol, Proto::kTcp);
  const EndpointConfig& e = s.endpoints.at(0);
  EXPECT_TRUE(e.ready);
  EXPECT_TRUE(e.serving);
  EXPECT_FALSE(e.terminating);
  EXPECT_EQ(e.weight, 1u);
}

TEST(ConfigDns, ParsesEveryKeyToItsValue) {
  auto r = parse_config(std::string(kExample) + R"(
[dns]
zone = "corp.example"
ttl = 5
listen = ["127.0.0.1:5300", "192.0.2.1:53", "0.0.0.0:5301"]
service_ip = "10.96.0.10"
max_udp_payload = 4096
)", "dns.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const DnsConfig& d = r->dns;
  EXPECT_EQ(d.zone, "corp.example");
  EXPECT_EQ(d.ttl, 5u);
  EXPECT_THAT(d.listen, testing::ElementsAre(DnsListen{ip("127.0.0.1"), 5300},
                                             DnsListen{ip("192.0.2.1"), 53},
                                             DnsListen{Ip4{}, 5301}));
  EXPECT_EQ(d.service_ip, ip("10.96.0.10"));
  EXPECT_EQ(d.max_udp_payload, 4096);
}

TEST(ConfigDns, AbsentSectionTakesTheDocumentedDefaults) {
  auto r = parse_config(kExample, "d.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const DnsConfig& d = r->dns;
  EXPECT_EQ(d.zone, "cluster.local");
  EXPECT_EQ(d.ttl, 30u);
  EXPECT_THAT(d.listen, testing::ElementsAre(DnsListen{ip("127.0.0.1"), 53}));
  EXPECT_FALSE(d.service_ip.has_value()) << "no DNS VIP on the dataplane unless configured";
  EXPECT_EQ(d.max_udp_payload, 1232);
}

TEST(ConfigDns, EmptyListenMeansNoKernelListener) {
  auto r = parse_config(std::string(kExample) + "[dns]\nlisten = []\n", "d.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->dns.listen.empty());
}

TEST(ConfigDns, ZoneWithTrailingDotIsTheSameZone) {
  auto r = parse_config(std::string(kExample) + "[dns]\nzone = \"cluster.local.\"\n", "d.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->dns.zone, "cluster.local");
}

TEST(ConfigDns, ServiceIpInsideAPortSubnetIsAllowed) {
  // A VIP on a connected subnet is answered for ARP like any other VIP.
  auto r = parse_config(std::string(kExample) + "[dns]\nservice_ip = \"192.0.2.53\"\n", "d.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->dns.service_ip, ip("192.0.2.53"));
}

TEST(ConfigControl, SocketPathIsParsed) {
  auto r = parse_config(std::string(kExample) + "[control]\nsocket = \"/tmp/pg/ctl.sock\"\n",
                        "c.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->control.socket, "/tmp/pg/ctl.sock");
}

TEST(ConfigControl, AbsentSectionTakesTheDocumentedDefault) {
  auto r = parse_config(kExample, "c.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->control.socket, "/run/podgate/podgate.sock");
}

// [announce] stop_grace: how long a clean stop forwards after withdrawing
// the routes; a duration of 0s..1m, 1s when absent.
TEST(ConfigAnnounce, StopGraceIsADurationOfAtMostAMinute) {
  const std::string announce =
      "[[ports]]\nname = \"uplink\"\ndevice = \"net_tap0\"\naddress = \"192.0.2.1/24\"\n"
      "kernel = \"pg0\"\n[announce]\nport = \"uplink\"\n";
  auto grace = [&](const std::string& line) { return parse_config(announce + line, "t.toml"); };
  auto r = grace("");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->announce.stop_grace_ms, 1000u);
  for (const auto& [text, ms] : {std::pair{"\"2500ms\"", 2500u}, {"\"0s\"", 0u}, {"\"1m\"", 60000u}}) {
    r = grace(std::string("stop_grace = ") + text + "\n");
    ASSERT_TRUE(r.ok()) << text << ": " << r.error().message;
    EXPECT_EQ(r->announce.stop_grace_ms, ms) << text;
  }
  const std::pair<const char*, const char*> bad[] = {
      {"stop_grace = \"61s\"\n", "t.toml:8:14: announce.stop_grace: \"61s\" is not in 0s..1m"},
      {"stop_grace = \"soon\"\n",
       "t.toml:8:14: announce.stop_grace: \"soon\" is not a duration such as \"1s\" or \"500ms\""},
      {"stop_grace = 2\n", "t.toml:8:14: announce.stop_grace: expected a string, found an integer"},
  };
  for (const auto& [line, message] : bad) {
    r = grace(line);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.error().message, message);
  }
}

TEST(ConfigExample, SameVipAndPortWithOtherProtocolIsAllowed) {
  auto r = parse_config(R"(
[[ports]]
name = "p"
device = "d"
address = "10.0.0.1/24"
[[services]]
namespace = "ns"
name = "dns-tcp"
cluster_ip = "10.96.0.10"
ports = [ { port = 53 } ]
[[services]]
namespace = "ns"
name = "dns-udp"
cluster_ip = "10.96.0.10"
ports = [ { port = 53, protocol = "UDP" } ]
)", "t.toml");
  EXPECT_TRUE(r.ok()) << r.error().message;
}

TEST(ConfigExample, DuplicateHostnamesAreAllowedForDns) {
  // dns.md: "Duplicate hostnames return every matching address."
  auto r = parse_config(R"(
[[ports]]
name = "p"
device = "d"
address = "10.0.0.1/24"
[[services]]
namespace = "ns"
name = "db"
cluster_ip = "None"
endpoints = [ { ip = "10.1.0.5", hostname = "db-0", subdomain = "db" },
              { ip = "10.1.0.6", hostname = "db-0", subdomain = "db" } ]
)", "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->services[0].endpoints.size(), 2u);
  EXPECT_EQ(r->services[0].endpoints[1].hostname, "db-0");
}

TEST(ConfigFile, ShippedPodgateTomlLoads) {
  const std::string path = PODGATE_SOURCE_DIR "/conf/podgate.toml";
  auto r = load_config(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Config& c = *r;
  EXPECT_EQ(c.source, path);
  EXPECT_THAT(c.eal.args, testing::ElementsAre("--no-huge", "--no-shconf", "-m", "512",
                                               "--no-pci", "-l", "0-1", "--file-prefix",
                                               "podgate"));
  EXPECT_EQ(c.dataplane.workers, 1u);
  EXPECT_EQ(c.dataplane.flow_table_size, 65536u);
  EXPECT_FALSE(c.dataplane.ipv6_flow_table_size);
  EXPECT_EQ(c.dataplane.ipv6_flows(), 16384u) << "a quarter of flow_table_size";
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].device, "net_tap0,iface=pg-up");
  EXPECT_EQ(c.ports[1].address, pfx("172.17.0.1/16"));
  EXPECT_TRUE(c.routes.empty());
  ASSERT_EQ(c.services.size(), 3u);
  const ServiceConfig& app = c.services[0];
  EXPECT_EQ(app.name, "my-app");
  EXPECT_EQ(app.cluster_ip, ipa("10.96.0.20"));
  ASSERT_EQ(app.endpoints.size(), 3u);
  EXPECT_EQ(app.endpoints[1].weight, 2u);
  EXPECT_TRUE(app.endpoints[2].serving && app.endpoints[2].terminating);
  EXPECT_FALSE(app.endpoints[2].ready);
  const ServiceConfig& udp = c.services[1];
  EXPECT_EQ(udp.name, "echo-udp");
  ASSERT_EQ(udp.ports.size(), 1u);
  EXPECT_EQ(udp.ports[0].protocol, Proto::kUdp);
  EXPECT_EQ(udp.ports[0].port, 5353);
  const ServiceConfig& mongo = c.services[2];
  EXPECT_TRUE(mongo.headless());
  ASSERT_EQ(mongo.endpoints.size(), 3u);
  EXPECT_EQ(mongo.endpoints[2].hostname, "mongodb-2");
  EXPECT_EQ(mongo.endpoints[2].subdomain, "mongodb-service");
  EXPECT_FALSE(mongo.endpoints[2].ready);
  EXPECT_EQ(mongo.endpoints[2].ip, ipa("172.17.1.12"));
  EXPECT_EQ(c.dns.zone, "cluster.local");
  EXPECT_EQ(c.dns.ttl, 30u);
  EXPECT_THAT(c.dns.listen, testing::ElementsAre(DnsListen{ip("127.0.0.1"), 53}));
  EXPECT_EQ(c.dns.service_ip, ip("10.96.0.10"));
  EXPECT_EQ(c.dns.max_udp_payload, 1232);
  EXPECT_EQ(c.control.socket, "/run/podgate/podgate.sock");
}

// config save refuses to overwrite a file whose bytes changed since
// podgate read it: the digest is of the bytes read, and any edit, even a
// comment, changes it.
TEST(ConfigFile, TheDigestIsOfTheBytesRead) {
  const std::string path = PODGATE_SOURCE_DIR "/conf/podgate.toml";
  auto r = load_config(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto text = read_config_file(path);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(r->source_digest, config_text_digest(*text));
  EXPECT_NE(config_text_digest(*text + "# a comment\n"), config_text_digest(*text));
  EXPECT_NE(config_text_digest("ab"), config_text_digest("ba"));
  EXPECT_EQ(parse_config(*text, path)->source_digest, 0u) << "text not from a file";
}

TEST(ConfigFile, DirectoryIsAnIoErrorNamingThePath) {
  const std::string path = PODGATE_SOURCE_DIR "/conf";
  auto r = load_config(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_EQ(r.error().message, path + ": cannot read: Is a directory");
}

TEST(ConfigFile, MissingFileIsAnIoErrorNamingThePath) {
  const std::string path = "/nonexistent/podgate-test/none.toml";
  auto r = load_config(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_EQ(r.error().message, path + ": cannot open: No such file or directory");
}

// Issue 15: /dev/zero or a 3 GB file ended in std::bad_alloc.
TEST(ConfigFile, DeviceIsRefusedUnreadAsNotARegularFile) {
  for (const std::string path : {"/dev/zero", "/dev/urandom"}) {
    auto r = load_config(path);
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_EQ(r.error().code, ErrorCode::kIo);
    EXPECT_EQ(r.error().message, path + ": not a regular file (a device, FIFO or socket); a config "
                                        "must be a regular file");
  }
}

TEST(ConfigFile, FifoIsRefusedWithoutWaitingForAWriter) {
  char dir[] = "/tmp/podgate-config-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/fifo.toml";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  auto r = load_config(path);
  unlink(path.c_str());
  rmdir(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, testing::HasSubstr(": not a regular file"));
}

TEST(ConfigFile, FileLargerThanTheCapIsRefusedUnread) {
  char path[] = "/tmp/podgate-config-test-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  // Sparse: 3 GiB of nothing costs no disk and would have cost 3 GiB of heap.
  ASSERT_EQ(ftruncate(fd, off_t{3} << 30), 0);
  close(fd);
  auto r = load_config(path);
  unlink(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_EQ(r.error().message, std::string(path) +
                                   ": 3221225472 bytes is larger than a config file may be (64 MiB)");
}

TEST(ConfigFile, CapIsInclusive) {
  char path[] = "/tmp/podgate-config-test-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "# hi\n", 5), 5);
  close(fd);
  auto exact = read_config_file(path, 5);
  auto over = read_config_file(path, 4);
  unlink(path);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(*exact, "# hi\n");
  ASSERT_FALSE(over.ok());
  EXPECT_THAT(over.error().message, testing::HasSubstr("5 bytes is larger than"));
}

// Issue 15: podgate -c conf/x.toml resolves the path at start-up, so that
// `config save` and reloads name the same file from any directory.
TEST(ConfigFile, RelativePathIsMadeAbsoluteAgainstTheWorkingDirectory) {
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  EXPECT_EQ(absolute_config_path("conf/x.toml"), std::string(cwd) + "/conf/x.toml");
  EXPECT_EQ(absolute_config_path("./conf/../x.toml"), std::string(cwd) + "/x.toml");
}

TEST(ConfigFile, AbsolutePathIsOnlyNormalised) {
  EXPECT_EQ(absolute_config_path("/etc/podgate/podgate.toml"), "/etc/podgate/podgate.toml");
  EXPECT_EQ(absolute_config_path("/etc//podgate/./podgate.toml"), "/etc/podgate/podgate.toml");
  EXPECT_EQ(absolute_config_path(""), "");
}

// ---- the table of mistakes ----

// Two valid ports on lines 1-8; each case's own text starts on line 9.
constexpr const char* kPorts =
    "[[ports]]\n"
    "name = \"uplink\"\n"
    "device = \"net_tap0\"\n"
    "address = \"192.0.2.1/24\"\n"
    "[[ports]]\n"
    "name = \"pods\"\n"
    "device = \"net_tap1\"\n"
    "address = \"172.17.0.1/16\"\n";

// Line 9: a valid service header block of 3 lines (lines 9-11).
constexpr const char* kSvc =
    "[[services]]\n"
    "namespace = \"default\"\n"
    "name = \"web\"\n";

struct BadCase {
  const char* what;
  std::string toml;
  std::string error;
};

std::string P(const std::string& rest) { return kPorts + rest; }
std::string S(const std::string& rest) { return kPorts + (kSvc + rest); }

const std::vector<BadCase>& bad_cases() {
  static const std::vector<BadCase> cases = {
      {"unknown key at top level", "colour = 1\n" + std::string(kPorts),
       "t.toml:1:1: top level: unknown key 'colour'; allowed: eal, dataplane, ports, routes, "
       "neighbors, services, dns, control, metrics, announce"},
      {"unknown key in a port",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\nmtux = 1500\n",
       "t.toml:5:1: ports[0]: unknown key 'mtux'; allowed: name, device, address, address6, mac, mtu, "
       "client_address, kernel, kernel_rate, steered_by_peer"},
      {"kernel twin name longer than an interface name may be",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\n"
       "kernel = \"podgate-uplink-0\"\n",
       "t.toml:5:10: ports[0].kernel: \"podgate-uplink-0\" is not an interface name (1..15 of a-z, "
       "A-Z, 0-9, '_', '-' and '.')"},
      {"kernel twin name with a slash",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\nkernel = \"pg/0\"\n",
       "t.toml:5:10: ports[0].kernel: \"pg/0\" is not an interface name (1..15 of a-z, A-Z, 0-9, "
       "'_', '-' and '.')"},
      {"one kernel twin for two ports",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\nkernel = \"pg0\"\n"
       "[[ports]]\nname = \"b\"\ndevice = \"e\"\naddress = \"10.1.0.1/24\"\nkernel = \"pg0\"\n",
       "t.toml:10:10: ports[1].kernel: \"pg0\" is already the kernel twin of ports[0]"},
      {"kernel twin rate of zero",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\nkernel = \"pg0\"\n"
       "kernel_rate = 0\n",
       "t.toml:6:15: ports[0].kernel_rate: 0 is not in 1..10000000"},
      {"steered_by_peer as a string",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\n"
       "steered_by_peer = \"yes\"\n",
       "t.toml:5:19: ports[0].steered_by_peer: expected a boolean, found a string"},
      {"client_address neither source nor destination",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\n"
       "client_address = \"src\"\n",
       "t.toml:5:18: ports[0].client_address: \"src\" is not allowed; allowed: source, destination"},
      {"unknown key in a service port inline table",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80, targetPort = 8080 } ]\n"),
       "t.toml:13:24: services[0].ports[0]: unknown key 'targetPort'; allowed: name, port, "
       "target_port, protocol"},
      {"unknown key in an endpoint",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80 } ]\n"
         "endpoints = [ { ip = \"172.17.0.5\", nodeName = \"n1\" } ]\n"),
       "t.toml:14:36: services[0].endpoints[0]: unknown key 'nodeName'; allowed: ip, pod, "
       "hostname, subdomain, ready, serving, terminating, weight"},
      {"unknown key in dataplane", P("[dataplane]\nworker = 2\n"),
       "t.toml:10:1: dataplane: unknown key 'worker'; allowed: workers, flow_table_size, "
       "ipv6_flow_table_size, maglev_table_size, mbufs, rx_ring_size, tx_ring_size, tcp_syn_timeout, "
       "tcp_established_timeout, tcp_fin_timeout, tcp_closing_timeout, udp_timeout, idle_sleep_us, rx_interrupts"},
      {"IPv6 flow table below its minimum", P("[dataplane]\nipv6_flow_table_size = 100\n"),
       "t.toml:10:24: dataplane.ipv6_flow_table_size: 100 is not in 1024..268435456"},
      {"string where an integer belongs", P("[dataplane]\nworkers = \"2\"\n"),
       "t.toml:10:11: dataplane.workers: expected an integer, found a string"},
      {"float where an integer belongs",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\nmtu = 1500.0\n",
       "t.toml:5:7: ports[0].mtu: expected an integer, found a float"},
      {"integer where a boolean belongs",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80 } ]\n"
         "endpoints = [ { ip = \"172.17.0.5\", ready = 1 } ]\n"),
       "t.toml:14:44: services[0].endpoints[0].ready: expected a boolean, found an integer"},
      {"eal args holding a number", P("[eal]\nargs = [\"-l\", 1]\n"),
       "t.toml:10:15: eal.args[1]: expected a string, found an integer"},
      {"ports written as a table", "[ports]\nname = \"a\"\n",
       "t.toml:1:1: ports: expected an array of tables, found a table"},
      {"no ports at all", "[dataplane]\nworkers = 1\n",
       "t.toml:1:1: top level: missing required key 'ports' (at least one [[ports]] table)"},
      {"port without device", "[[ports]]\nname = \"a\"\naddress = \"10.0.0.1/24\"\n",
       "t.toml:1:1: ports[0]: missing required key 'device'"},
      {"port address without prefix length",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1\"\n",
       "t.toml:4:11: ports[0].address: \"10.0.0.1\" is not an address with prefix length such "
       "as \"192.0.2.1/24\""},
      {"port address with prefix length 33",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/33\"\n",
       "t.toml:4:11: ports[0].address: \"10.0.0.1/33\" is not an address with prefix length "
       "such as \"192.0.2.1/24\""},
      {"port address is the network address",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.0/24\"\n",
       "t.toml:4:11: ports[0].address: \"10.0.0.0/24\" is the subnet's network address; a port "
       "needs a host address such as \"10.0.0.1/24\""},
      {"duplicate port name",
       P("[[ports]]\nname = \"pods\"\ndevice = \"net_tap2\"\naddress = \"198.51.100.1/24\"\n"),
       "t.toml:10:8: ports[2].name: \"pods\" is already the name of ports[1]"},
      {"overlapping port subnets",
       P("[[ports]]\nname = \"more\"\ndevice = \"net_tap2\"\naddress = \"172.16.0.1/12\"\n"),
       "t.toml:12:11: ports[2].address: \"172.16.0.1/12\": subnet 172.16.0.0/12 overlaps subnet "
       "172.17.0.0/16 of ports[1]"},
      {"route prefix with host bits", P("[[routes]]\nprefix = \"10.1.2.3/8\"\nvia = \"172.17.0.254\"\n"),
       "t.toml:10:10: routes[0].prefix: \"10.1.2.3/8\" has host bits set; the network is "
       "\"10.0.0.0/8\""},
      {"route via not on a connected subnet",
       P("[[routes]]\nprefix = \"10.0.0.0/8\"\nvia = \"198.51.100.1\"\n"),
       "t.toml:11:7: routes[0].via: 198.51.100.1 is not in a port's connected subnet "
       "(192.0.2.0/24, 172.17.0.0/16)"},
      {"neighbor mac malformed", P("[[neighbors]]\nip = \"172.17.0.254\"\nmac = \"02:00:00:00:00\"\n"),
       "t.toml:11:7: neighbors[0].mac: \"02:00:00:00:00\" is not a MAC address such as "
       "\"02:00:00:00:00:01\""},
      {"port mac multicast",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\n"
       "mac = \"01:00:5e:00:00:01\"\n",
       "t.toml:5:7: ports[0].mac: \"01:00:5e:00:00:01\" is not a unicast MAC address (the first "
       "octet's low bit must be 0, not all zero), e.g. \"02:00:00:00:00:01\""},
      {"target_port 0", S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80, target_port = 0 } ]\n"),
       "t.toml:13:38: services[0].ports[0].target_port: 0 is not in 1..65535"},
      {"target_port 70000",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80, target_port = 70000 } ]\n"),
       "t.toml:13:38: services[0].ports[0].target_port: 70000 is not in 1..65535"},
      {"weight 0",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80 } ]\n"
         "endpoints = [ { ip = \"172.17.0.5\", weight = 0 } ]\n"),
       "t.toml:14:45: services[0].endpoints[0].weight: 0 is not in 1..256"},
      {"weight 300",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80 } ]\n"
         "endpoints = [ { ip = \"172.17.0.5\", weight = 300 } ]\n"),
       "t.toml:14:45: services[0].endpoints[0].weight: 300 is not in 1..256"},
      {"duplicate VIP:port/protocol across services",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80 } ]\n"
         "[[services]]\nnamespace = \"other\"\nname = \"web2\"\ncluster_ip = \"10.96.0.1\"\n"
         "ports = [ { port = 80 } ]\n"),
       "t.toml:18:20: services[1].ports[0].port: 10.96.0.1:80/TCP is already served by "
       "services[0] (default/web)"},
      {"duplicate service name",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80 } ]\n" + std::string(kSvc) +
         "cluster_ip = \"10.96.0.2\"\nports = [ { port = 80 } ]\n"),
       "t.toml:16:8: services[1].name: default/web is already defined by services[0]"},
      {"duplicate endpoint ip",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80 } ]\n"
         "endpoints = [ { ip = \"172.17.0.5\" }, { ip = \"172.17.0.5\" } ]\n"),
       "t.toml:14:45: services[0].endpoints[1].ip: 172.17.0.5 is already services[0].endpoints[0]"},
      {"protocol SCTP",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { port = 80, protocol = \"SCTP\" } ]\n"),
       "t.toml:13:35: services[0].ports[0].protocol: \"SCTP\" is not supported; allowed: TCP, UDP"},
      {"session_affinity misspelt",
       S("cluster_ip = \"10.96.0.1\"\nsession_affinity = \"ClientIp\"\nports = [ { port = 80 } ]\n"),
       "t.toml:13:20: services[0].session_affinity: \"ClientIp\" is not allowed; allowed: None, "
       "ClientIP"},
      {"timeout_seconds without ClientIP",
       S("cluster_ip = \"10.96.0.1\"\ntimeout_seconds = 60\nports = [ { port = 80 } ]\n"),
       "t.toml:13:19: services[0].timeout_seconds: only allowed with session_affinity = "
       "\"ClientIP\""},
      {"dataplane maglev_table_size not prime", P("[dataplane]\nmaglev_table_size = 65536\n"),
       "t.toml:10:21: dataplane.maglev_table_size: 65536 is not prime; Maglev (NSDI'16 section "
       "3.4) needs a prime table size, e.g. 65537"},
      {"service maglev_table_size not prime",
       S("cluster_ip = \"10.96.0.1\"\nmaglev_table_size = 1000\nports = [ { port = 80 } ]\n"),
       "t.toml:13:21: services[0].maglev_table_size: 1000 is not prime; Maglev (NSDI'16 section "
       "3.4) needs a prime table size, e.g. 65537"},
      {"workers 0", P("[dataplane]\nworkers = 0\n"),
       "t.toml:10:11: dataplane.workers: 0 is not in 1..64"},
      {"rx ring not a power of two", P("[dataplane]\nrx_ring_size = 1000\n"),
       "t.toml:10:16: dataplane.rx_ring_size: 1000 is not a power of two (64, 128, ... 32768)"},
      {"TOML syntax error", P("[dataplane\nworkers = 1\n"),
       "t.toml:9:11: Error while parsing table header: expected ']', saw '\\n'"},
      {"bad namespace label", P("[[services]]\nnamespace = \"Default\"\nname = \"web\"\n"
                                "cluster_ip = \"None\"\n"),
       "t.toml:10:13: services[0].namespace: \"Default\" is not a DNS-1123 label (1..63 of a-z, "
       "0-9 and '-', starting and ending with a letter or digit)"},
      {"service name starting with a digit",
       P("[[services]]\nnamespace = \"default\"\nname = \"1web\"\ncluster_ip = \"None\"\n"),
       "t.toml:11:8: services[0].name: \"1web\" is not a DNS-1035 label (1..63 of a-z, 0-9 and "
       "'-', starting with a letter, ending with a letter or digit)"},
      {"unsupported service type", S("type = \"NodePort\"\ncluster_ip = \"None\"\n"),
       "t.toml:12:8: services[0].type: \"NodePort\" is not supported; allowed: ClusterIP, "
       "ExternalName"},
      {"ClusterIP without cluster_ip", S("ports = [ { port = 80 } ]\n"),
       "t.toml:9:1: services[0]: missing required key 'cluster_ip' (an IPv4 or IPv6 address, or "
       "\"None\" for a headless service; or cluster_ips for a dual-stack service)"},
      {"cluster_ip not an address", S("cluster_ip = \"10.96.0.300\"\nports = [ { port = 80 } ]\n"),
       "t.toml:12:14: services[0].cluster_ip: \"10.96.0.300\" is not an IPv4 or IPv6 address "
       "such as \"192.0.2.1\" or \"2001:db8::1\""},
      {"cluster_ip equal to a port address",
       S("cluster_ip = \"192.0.2.1\"\nports = [ { port = 80 } ]\n"),
       "t.toml:12:14: services[0].cluster_ip: 192.0.2.1 is the address of ports[0] (uplink); a "
       "cluster IP must not be a port address"},
      {"VIP without ports", S("cluster_ip = \"10.96.0.1\"\n"),
       "t.toml:9:1: services[0]: missing required key 'ports' (a service with a cluster_ip "
       "forwards ports)"},
      {"two unnamed ports",
       S("cluster_ip = \"10.96.0.1\"\nports = [ { name = \"a\", port = 80 }, { port = 81 } ]\n"),
       "t.toml:13:38: services[0].ports[1]: missing required key 'name' (required when a "
       "service has several ports)"},
      {"ExternalName without external_name", S("type = \"ExternalName\"\n"),
       "t.toml:9:1: services[0]: missing required key 'external_name' (the DNS name an "
       "ExternalName service aliases)"},
      {"ExternalName with endpoints",
       S("type = \"ExternalName\"\nexternal_name = \"db.example.com\"\n"
         "endpoints = [ { ip = \"172.17.0.5\" } ]\n"),
       "t.toml:14:13: services[0].endpoints: not allowed with type = \"ExternalName\""},
      {"ready endpoint that is terminating",
       S("cluster_ip = \"None\"\nendpoints = [ { ip = \"172.17.0.5\", terminating = true } ]\n"),
       "t.toml:13:50: services[0].endpoints[0]: ready = true contradicts terminating = true; a "
       "ready endpoint is serving and not terminating"},
      {"port address with prefix length 0",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/0\"\n",
       "t.toml:4:11: ports[0].address: \"10.0.0.1/0\": prefix length 0 is not allowed for a "
       "port; use 1..32"},
      {"empty ports array", "ports = []\n",
       "t.toml:1:9: ports: empty; at least one port is needed"},
      {"neighbor off every connected subnet",
       P("[[neighbors]]\nip = \"10.9.9.9\"\nmac = \"02:00:00:00:00:fe\"\n"),
       "t.toml:10:6: neighbors[0].ip: 10.9.9.9 is not in a port's connected subnet "
       "(192.0.2.0/24, 172.17.0.0/16)"},
      {"ExternalName with a cluster_ip",
       S("type = \"ExternalName\"\nexternal_name = \"db.example.com\"\n"
         "cluster_ip = \"10.96.0.1\"\n"),
       "t.toml:14:14: services[0].cluster_ip: not allowed with type = \"ExternalName\""},
      {"maglev_table_size on a headless service",
       S("cluster_ip = \"None\"\nmaglev_table_size = 251\n"),
       "t.toml:13:21: services[0].maglev_table_size: only allowed for a service with a "
       "cluster_ip (headless and ExternalName services do not forward)"},
      {"misspelt session_affinity is reported once, not also on timeout_seconds",
       S("cluster_ip = \"10.96.0.1\"\nsession_affinity = \"Client\"\ntimeout_seconds = 60\n"
         "ports = [ { port = 80 } ]\n"),
       "t.toml:13:20: services[0].session_affinity: \"Client\" is not allowed; allowed: None, "
       "ClientIP"},
      {"unknown key in dns", P("[dns]\ndomain = \"cluster.local\"\n"),
       "t.toml:10:1: dns: unknown key 'domain'; allowed: zone, ttl, listen, service_ip, "
       "max_udp_payload, rate_limit"},
      {"dns written as an array", "dns = [1]\n" + std::string(kPorts),
       "t.toml:1:7: dns: expected a table, found an array"},
      {"dns zone with an uppercase label", P("[dns]\nzone = \"Cluster.local\"\n"),
       "t.toml:10:8: dns.zone: \"Cluster.local\" is not a DNS name of at most 200 characters "
       "(dot-separated DNS-1123 labels: a-z, 0-9 and '-'), e.g. \"cluster.local\""},
      {"dns zone with an empty label", P("[dns]\nzone = \"cluster..local\"\n"),
       "t.toml:10:8: dns.zone: \"cluster..local\" is not a DNS name of at most 200 characters "
       "(dot-separated DNS-1123 labels: a-z, 0-9 and '-'), e.g. \"cluster.local\""},
      {"dns ttl 0", P("[dns]\nttl = 0\n"), "t.toml:10:7: dns.ttl: 0 is not in 1..86400"},
      {"dns ttl as a string", P("[dns]\nttl = \"30\"\n"),
       "t.toml:10:7: dns.ttl: expected an integer, found a string"},
      {"dns max_udp_payload below 512", P("[dns]\nmax_udp_payload = 511\n"),
       "t.toml:10:19: dns.max_udp_payload: 511 is not in 512..4096"},
      {"dns max_udp_payload above 4096", P("[dns]\nmax_udp_payload = 65535\n"),
       "t.toml:10:19: dns.max_udp_payload: 65535 is not in 512..4096"},
      {"dns listen as a single string", P("[dns]\nlisten = \"127.0.0.1:53\"\n"),
       "t.toml:10:10: dns.listen: expected an array of strings, found a string"},
      {"dns listen without a port", P("[dns]\nlisten = [\"127.0.0.1\"]\n"),
       "t.toml:10:11: dns.listen[0]: \"127.0.0.1\" is not an IPv4 address and port such as "
       "\"127.0.0.1:53\" (port 1..65535; 0.0.0.0 listens on every address)"},
      {"dns listen on port 0", P("[dns]\nlisten = [\"127.0.0.1:0\"]\n"),
       "t.toml:10:11: dns.listen[0]: \"127.0.0.1:0\" is not an IPv4 address and port such as "
       "\"127.0.0.1:53\" (port 1..65535; 0.0.0.0 listens on every address)"},
      {"dns listen on a multicast address", P("[dns]\nlisten = [\"224.0.0.251:5353\"]\n"),
       "t.toml:10:11: dns.listen[0]: \"224.0.0.251:5353\" is not an IPv4 address and port such "
       "as \"127.0.0.1:53\" (port 1..65535; 0.0.0.0 listens on every address)"},
      {"dns listen holding a number", P("[dns]\nlisten = [53]\n"),
       "t.toml:10:11: dns.listen[0]: expected a string, found an integer"},
      {"dns listen twice on one address",
       P("[dns]\nlisten = [\"127.0.0.1:5300\", \"127.0.0.1:5300\"]\n"),
       "t.toml:10:29: dns.listen[1]: 127.0.0.1:5300 is already dns.listen[0]"},
      {"dns listen on an address the wildcard already covers",
       P("[dns]\nlisten = [\"0.0.0.0:53\", \"127.0.0.1:53\"]\n"),
       "t.toml:10:25: dns.listen[1]: 127.0.0.1:53 overlaps dns.listen[0] (0.0.0.0:53)"},
      {"dns service_ip not an address", P("[dns]\nservice_ip = \"10.96.0\"\n"),
       "t.toml:10:14: dns.service_ip: \"10.96.0\" is not an IPv4 address such as \"192.0.2.1\""},
      {"dns service_ip on loopback", P("[dns]\nservice_ip = \"127.0.0.1\"\n"),
       "t.toml:10:14: dns.service_ip: \"127.0.0.1\" is not a unicast address (0/8, 127/8 and "
       "224/3 are not allowed)"},
      {"dns service_ip equal to a port address", P("[dns]\nservice_ip = \"172.17.0.1\"\n"),
       "t.toml:10:14: dns.service_ip: 172.17.0.1 is the address of ports[1] (pods); the DNS "
       "service IP must not be a port address"},
      {"dns service_ip is a port subnet's broadcast address",
       P("[dns]\nservice_ip = \"192.0.2.255\"\n"),
       "t.toml:10:14: dns.service_ip: 192.0.2.255 is the broadcast address of ports[0] (uplink)"},
      {"dns service_ip is a port subnet's network address",
       P("[dns]\nservice_ip = \"172.17.0.0\"\n"),
       "t.toml:10:14: dns.service_ip: 172.17.0.0 is the network address of ports[1] (pods)"},
      {"dns service_ip equal to a service's cluster_ip",
       S("cluster_ip = \"10.96.0.10\"\nports = [ { port = 80 } ]\n"
         "[dns]\nservice_ip = \"10.96.0.10\"\n"),
       "t.toml:15:14: dns.service_ip: 10.96.0.10 is the cluster_ip of services[0] (default/web); "
       "the DNS service IP must be an address of its own"},
      {"unknown key in control", P("[control]\nsocket_mode = \"0660\"\n"),
       "t.toml:10:1: control: unknown key 'socket_mode'; allowed: socket, mode, group, "
       "idle_timeout"},
      {"control mode not octal", P("[control]\nmode = \"0668\"\n"),
       "t.toml:10:8: control.mode: \"0668\" is not a file mode such as \"0660\" (octal, at most "
       "0777, readable and writable by its owner)"},
      {"control mode the owner cannot use", P("[control]\nmode = \"0066\"\n"),
       "t.toml:10:8: control.mode: \"0066\" is not a file mode such as \"0660\" (octal, at most "
       "0777, readable and writable by its owner)"},
      {"control group not a name", P("[control]\ngroup = \"wheel staff\"\n"),
       "t.toml:10:9: control.group: \"wheel staff\" is not a group name (1..32 of a-z, A-Z, "
       "0-9, '.', '_', '-', not starting with '-')"},
      {"control idle timeout too long", P("[control]\nidle_timeout = 86401\n"),
       "t.toml:10:16: control.idle_timeout: 86401 is not in 0..86400"},
      {"metrics listen without port", P("[metrics]\nlisten = \"127.0.0.1\"\n"),
       "t.toml:10:10: metrics.listen: \"127.0.0.1\" is not an IPv4 address and port such as "
       "\"127.0.0.1:9470\", or \"\" for no metrics endpoint"},
      {"unknown key in metrics", P("[metrics]\nport = 9100\n"),
       "t.toml:10:1: metrics: unknown key 'port'; allowed: listen"},
      {"control written as a string", "control = \"/run/p.sock\"\n" + std::string(kPorts),
       "t.toml:1:11: control: expected a table, found a string"},
      {"control socket not a string", P("[control]\nsocket = 1\n"),
       "t.toml:10:10: control.socket: expected a string, found an integer"},
      {"control socket relative", P("[control]\nsocket = \"run/podgate.sock\"\n"),
       "t.toml:10:10: control.socket: \"run/podgate.sock\" is not an absolute file path such as "
       "\"/run/podgate/podgate.sock\""},
      {"control socket a directory", P("[control]\nsocket = \"/run/podgate/\"\n"),
       "t.toml:10:10: control.socket: \"/run/podgate/\" is not an absolute file path such as "
       "\"/run/podgate/podgate.sock\""},
      {"control socket longer than sun_path",
       P("[control]\nsocket = \"/" + std::string(107, 'a') + "\"\n"),
       "t.toml:10:10: control.socket: a path of 108 bytes; a Unix socket path has at most 107 "
       "(sun_path)"},
      {"several errors, reported in file order",
       "[[services]]\n"                              // 1
       "namespace = \"default\"\n"                   // 2
       "name = \"web\"\n"                            // 3
       "cluster_ip = \"10.96.0.1\"\n"                // 4
       "ports = [ { port = 0 } ]\n"                  // 5
       "[[ports]]\n"                                 // 6
       "name = \"Up\"\n"                             // 7
       "device = \"d\"\n"                            // 8
       "address = \"10.0.0.1/24\"\n"                 // 9
       "[dataplane]\n"                               // 10
       "workers = 1000\n"                            // 11
       "udp_timeout = true\n",                       // 12
       "t.toml:5:20: services[0].ports[0].port: 0 is not in 1..65535\n"
       "t.toml:7:8: ports[0].name: \"Up\" is not a port name (1..32 of a-z, 0-9, '_' and '-')\n"
       "t.toml:11:11: dataplane.workers: 1000 is not in 1..64\n"
       "t.toml:12:15: dataplane.udp_timeout: expected an integer, found a boolean"},
  };
  return cases;
}

class BadConfig : public testing::TestWithParam<size_t> {};

TEST_P(BadConfig, IsRejectedWithExactMessage) {
  const BadCase& c = bad_cases()[GetParam()];
  SCOPED_TRACE(c.what);
  auto r = parse_config(c.toml, "t.toml");
  ASSERT_FALSE(r.ok()) << c.toml;
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidConfig);
  EXPECT_EQ(r.error().message, c.error) << c.toml;
}

INSTANTIATE_TEST_SUITE_P(Table, BadConfig, testing::Range<size_t>(0, bad_cases().size()),
                         [](const testing::TestParamInfo<size_t>& info) {
                           std::string name;
                           for (char ch : std::string(bad_cases()[info.param].what)) {
                             name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           }
                           return std::to_string(info.param) + "_" + name;
                         });

TEST(BadConfig, ErrorsComeSortedByLineThenColumn) {
  // The loader checks ports before services; the file lists services first.
  auto r = parse_config(
      "[[services]]\nnamespace = \"A\"\nname = \"b\"\ncluster_ip = \"None\"\n"
      "[[ports]]\nname = \"p\"\ndevice = \"\"\naddress = \"10.0.0.1/24\"\n",
      "t.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "t.toml:2:13: services[0].namespace: \"A\" is not a DNS-1123 label (1..63 of a-z, "
            "0-9 and '-', starting and ending with a letter or digit)\n"
            "t.toml:7:10: ports[0].device: empty; a DPDK device such as \"0000:01:00.0\" or "
            "\"net_tap0,iface=pg0\" is needed");
}

}  // namespace

// podgatectl apply -f: a fragment of [[services]] tables, checked as in a
// config file, with its own file:line:col.
TEST(ServiceFragment, ParsesServicesAlone) {
  auto r = parse_services(R"([[services]]
namespace = "default"
name = "web"
cluster_ip = "10.96.0.21"
ports = [ { port = 80, target_port = 8080 } ]
endpoints = [ { ip = "172.17.0.30", pod = "web-0" } ]
)", "web.toml");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, "web");
  EXPECT_EQ((*r)[0].endpoints.at(0).pod, "web-0");
}

TEST(ServiceFragment, RefusesOtherSectionsAndReportsPlaces) {
  auto other = parse_services("[dns]\nttl = 5\n", "f.toml");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().message, "f.toml:1:2: top level: unknown key 'dns'; allowed: services");
  auto bad = parse_services(R"([[services]]
namespace = "default"
name = "web"
cluster_ip = "10.96.0.21"
ports = [ { port = 80, target_port = 80000 } ]
)", "f.toml");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, ::testing::HasSubstr("f.toml:5:"));
  EXPECT_THAT(bad.error().message, ::testing::HasSubstr("80000 is not in 1..65535"));
}

// A key is input: one with a control byte is written escaped, so the
// message cannot clear the screen of whoever reads it (issue 15).
TEST(ServiceFragment, AnUnknownKeyIsWrittenEscaped) {
  auto r = parse_services("[[services]]\n\"\\u001b[2J\" = 1\nnamespace = \"default\"\n", "f.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find('\x1b'), std::string::npos) << r.error().message;
  EXPECT_THAT(r.error().message,
              ::testing::HasSubstr("f.toml:2:1: services[0]: unknown key \"\\x1b[2J\"; allowed: "));
}

}  // namespace podgate::ctl
