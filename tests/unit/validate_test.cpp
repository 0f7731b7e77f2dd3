// validate(const Config&): every rule on the structure, errors naming the object.
#include "control/config/validate.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "control/config/config.hpp"
#include "control/config/config_writer.hpp"
#include "control/config/k8s_objects.hpp"

namespace podgate::ctl {
namespace {

using ::testing::HasSubstr;

constexpr const char* kBase = R"(
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
[[neighbors]]
ip = "192.0.2.254"
mac = "02:00:00:00:00:fe"
[dns]
service_ip = "10.96.0.10"
[[services]]
namespace = "default"
name = "web"
cluster_ip = "10.96.0.20"
ports = [{ name = "http", port = 80, target_port = 8080 },
         { name = "dns", port = 53, protocol = "UDP" }]
endpoints = [{ ip = "172.17.0.7", hostname = "web-0" }, { ip = "172.17.0.8", weight = 2 }]
[[services]]
namespace = "default"
name = "db"
cluster_ip = "None"
endpoints = [{ ip = "172.17.0.9" }]
[[services]]
namespace = "default"
name = "ext"
type = "ExternalName"
external_name = "db.example.com"
)";

Config base() {
  auto c = parse_config(kBase, "base.toml");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : Config{};
}

// The error of validate() after `edit`, "" when valid.
std::string refusal(const std::function<void(Config&)>& edit) {
  Config c = base();
  edit(c);
  auto r = validate(c);
  if (r) return "";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidConfig);
  return r.error().message;
}

ServiceConfig& web(Config& c) { return c.services[0]; }
EndpointConfig& ep7(Config& c) { return c.services[0].endpoints[0]; }
dp::Ip4 ip(const char* s) { return *dp::parse_ip4(s); }

TEST(Validate, TheBaseConfigIsValid) { EXPECT_EQ(refusal([](Config&) {}), ""); }

TEST(Validate, EveryErrorIsReportedOneALine) {
  std::string msg = refusal([](Config& c) {
    ep7(c).weight = 0;
    c.services[0].endpoints[1].weight = 300;
  });
  EXPECT_EQ(msg, "service default/web, endpoint 172.17.0.7: weight 0 is not in 1..256\n"
                 "service default/web, endpoint 172.17.0.8: weight 300 is not in 1..256");
}

// ---- endpoints ----

TEST(Validate, EndpointRulesNameTheEndpoint) {
  EXPECT_EQ(refusal([](Config& c) { ep7(c).hostname = "Web_0"; }),
            "service default/web, endpoint 172.17.0.7: hostname " + not_dns1123_label("Web_0"));
  EXPECT_EQ(refusal([](Config& c) { ep7(c).subdomain = "-x"; }),
            "service default/web, endpoint 172.17.0.7: subdomain " + not_dns1123_label("-x"));
  EXPECT_EQ(refusal([](Config& c) { ep7(c).terminating = true; }),
            "service default/web, endpoint 172.17.0.7: ready = true contradicts terminating = "
            "true; a ready endpoint is serving and not terminating");
  EXPECT_EQ(refusal([](Config& c) { ep7(c).serving = false; }),
            "service default/web, endpoint 172.17.0.7: ready = true contradicts serving = false; "
            "a ready endpoint is serving and not terminating");
  EXPECT_EQ(refusal([](Config& c) { ep7(c).ip = dp::IpAddr::v4(ip("127.0.0.1")); }),
            "service default/web, endpoint 127.0.0.1: ip " + not_unicast_ip4("127.0.0.1"));
}

// Issue 15: names with ESC or NUL were accepted and printed raw.
TEST(Validate, PodNamesAreDns1123SubdomainsAndQuotedPrintably) {
  for (const char* good : {"web-0", "web-7d9f8-x2x", "a.b-c.d", "0"}) {
    EXPECT_EQ(refusal([good](Config& c) { ep7(c).pod = good; }), "") << good;
  }
  EXPECT_EQ(refusal([](Config& c) { ep7(c).pod = std::string(253, 'a'); }), "");
  EXPECT_EQ(refusal([](Config& c) { ep7(c).pod = "x\x1b[2Jy"; }),
            "service default/web, endpoint 172.17.0.7: pod \"x\\x1b[2Jy\" is not a DNS-1123 "
            "subdomain (at most 253 characters: dot-separated labels of a-z, 0-9 and '-', each "
            "starting and ending with a letter or digit)");
  for (std::string bad : {std::string("a\0b", 3), std::string("Web-0"), std::string("web_0"),
                          std::string("-web"), std::string("web."), std::string("a..b"),
                          std::string(254, 'a')}) {
    EXPECT_THAT(refusal([&bad](Config& c) { ep7(c).pod = bad; }),
                HasSubstr("is not a DNS-1123 subdomain"))
        << bad;
  }
}

// Issue 15: these were accepted silently; forwarding to them loops.
TEST(Validate, AnEndpointMayNotBePodgatesOwnAddressOrAVip) {
  EXPECT_EQ(refusal([](Config& c) { ep7(c).ip = dp::IpAddr::v4(ip("172.17.0.1")); }),
            "service default/web, endpoint 172.17.0.1: ip is the address of port pods; an "
            "endpoint must be a Pod, not podgate itself");
  EXPECT_EQ(refusal([](Config& c) { ep7(c).ip = dp::IpAddr::v4(ip("10.96.0.20")); }),
            "service default/web, endpoint 10.96.0.20: ip is the cluster_ip of service "
            "default/web; an endpoint must be a Pod, not a VIP (podgate forwards a packet once)");
  EXPECT_EQ(refusal([](Config& c) {
              c.services[1].endpoints[0].ip = dp::IpAddr::v4(ip("10.96.0.20"));
            }),
            "service default/db, endpoint 10.96.0.20: ip is the cluster_ip of service "
            "default/web; an endpoint must be a Pod, not a VIP (podgate forwards a packet once)");
  EXPECT_EQ(refusal([](Config& c) { ep7(c).ip = dp::IpAddr::v4(ip("10.96.0.10")); }),
            "service default/web, endpoint 10.96.0.10: ip is dns.service_ip; an endpoint must be "
            "a Pod, not a VIP");
}

TEST(Validate, AVipInsideAConnectedSubnetIsAWarningExceptItsNetworkAndBroadcast) {
  Config c = base();
  EXPECT_THAT(config_warnings(c), testing::IsEmpty());
  web(c).cluster_ip = dp::IpAddr::v4(ip("192.0.2.50"));
  EXPECT_TRUE(validate(c).ok());
  EXPECT_THAT(config_warnings(c),
              testing::ElementsAre("service default/web: cluster_ip 192.0.2.50 is inside port "
                                   "uplink's connected subnet 192.0.2.0/24; podgate answers ARP "
                                   "for it there, so no host on that subnet may have it"));
  EXPECT_EQ(refusal([](Config& c) { web(c).cluster_ip = dp::IpAddr::v4(ip("192.0.2.255")); }),
            "service default/web: cluster_ip 192.0.2.255 is the broadcast address of the subnet "
            "192.0.2.0/24 of port uplink");
  EXPECT_EQ(refusal([](Config& c) { web(c).cluster_ip = dp::IpAddr::v4(ip("172.17.0.0")); }),
            "service default/web: cluster_ip 172.17.0.0 is the network address of the subnet "
            "172.17.0.0/16 of port pods");
}

// Issue 10: a reply that finds no flow entry (a full table, or a connection
// ECMP moved from another appliance) is reverse-NATed by its Pod address
// and port alone, which must name one service port.
TEST(Validate, APodPortBackingTwoServicePortsIsAWarning) {
  Config c = base();
  ServicePortConfig alt = web(c).ports[0];
  alt.name = "alt";
  alt.port = 8080;  // 8080 -> 8080 beside 80 -> 8080
  web(c).ports.push_back(alt);
  EXPECT_TRUE(validate(c).ok());
  const std::string tail =
      ": its replies without a flow entry (a full flow table, or a connection moved here from "
      "another appliance) cannot be reverse-NATed statelessly and are dropped (no_flow)";
  EXPECT_THAT(config_warnings(c),
              testing::ElementsAre("endpoint 172.17.0.7:8080/TCP backs default/web port 80 and "
                                   "default/web port 8080" + tail,
                                   "endpoint 172.17.0.8:8080/TCP backs default/web port 80 and "
                                   "default/web port 8080" + tail));
}

// An http check without `port` probes every TCP target port: a TLS or
// non-HTTP one fails it.  One TCP port, or a port named, says nothing.
TEST(Validate, AnHttpCheckWithoutPortOnSeveralTcpPortsIsAWarning) {
  Config c = base();
  web(c).health_check = HealthCheckConfig{};  // kind http, path "/"
  EXPECT_THAT(config_warnings(c), testing::IsEmpty()) << "one TCP port (and a UDP one)";
  ServicePortConfig tls = web(c).ports[0];
  tls.name = "https";
  tls.port = 443;
  tls.target_port = 8443;
  web(c).ports.push_back(tls);
  EXPECT_TRUE(validate(c).ok());
  EXPECT_THAT(config_warnings(c),
              testing::ElementsAre("service default/web: its http health check has no port, so it sends GET / to "
                                   "each TCP target port (8080, 8443); one that does not speak plain HTTP (TLS, "
                                   "a database) fails it: set port to the one that does"));
  web(c).health_check->port = 8080;
  EXPECT_THAT(config_warnings(c), testing::IsEmpty());
}

// [announce] keeps IPv4 routes only (the kernel twin and BIRD's session
// are IPv4): an IPv6 cluster IP is forwarded but never announced, so the
// router sends it nothing.  One warning names the first services.
TEST(Validate, AnIpv6VipThatAnnounceDoesNotAnnounceIsAWarning) {
  Config c = base();
  web(c).secondary_cluster_ip = dp::IpAddr::v6(*dp::parse_ip6("fd00:10:96::20"));
  EXPECT_THAT(config_warnings(c), testing::IsEmpty()) << "nothing is announced without [announce]";
  c.announce.port = "uplink";
  EXPECT_THAT(config_warnings(c),
              testing::ElementsAre("[announce]: the IPv6 cluster IP of 1 service (default/web "
                                   "fd00:10:96::20) is not announced: podgate announces IPv4 VIPs "
                                   "only, so the router sends it nothing unless routed there some "
                                   "other way (docs/scale-out.md)"));
  for (int i = 0; i < 4; ++i) {
    ServiceConfig v6 = web(c);
    v6.name = "web6-" + std::to_string(i);
    v6.cluster_ip = dp::IpAddr::v6(*dp::parse_ip6("fd00:10:96::3" + std::to_string(i)));
    v6.secondary_cluster_ip.reset();
    v6.endpoints.clear();  // one Pod port backing two service ports is another warning
    c.services.push_back(std::move(v6));
  }
  EXPECT_THAT(config_warnings(c),
              testing::ElementsAre(HasSubstr("the IPv6 cluster IPs of 5 services (default/web fd00:10:96::20, "
                                             "default/web6-0 fd00:10:96::30, default/web6-1 fd00:10:96::31 "
                                             "and 2 more) are not announced")));
}

// The stats slots are a fixed table (dataplane/worker_counters.hpp), one
// slot per service port and endpoint: a config with more pairs is valid,
// and the traffic of those without a slot is in the workers' totals only.
// `web` has two ports: 2 * n pairs.
void web_endpoints(Config& c, uint32_t n) {
  auto& eps = web(c).endpoints;
  eps.clear();
  for (uint32_t i = 0; i < n; ++i) {
    EndpointConfig e;
    e.ip = dp::IpAddr::v4(dp::Ip4::from_host(0xac110000 + i + 2));  // 172.17.0.2 on
    eps.push_back(e);
  }
}

TEST(Validate, MoreServicePortEndpointPairsThanStatsSlotsIsAWarning) {
  Config c = base();
  web_endpoints(c, 32768);
  EXPECT_TRUE(validate(c).ok());
  EXPECT_THAT(config_warnings(c),
              testing::ElementsAre(
                  "stats slots: 65536 (service port, endpoint) pairs, more than the 65535 podgate "
                  "counts: the traffic of 1 of them is in the workers' totals only, not in its "
                  "service's or endpoint's figures (stats_slots.exhausted counts them)"));
}

// An endpoint that leaves keeps its slot for the quarantine (the longest
// flow timeout + 60 s: 960 s by default), so replacing every endpoint at
// once (a rolling update of everything) needs twice the pairs.
TEST(Validate, MoreThanHalfTheStatsSlotsIsAWarningForEndpointsReplaced) {
  Config c = base();
  web_endpoints(c, 16383);  // 32,766 pairs
  EXPECT_THAT(config_warnings(c), testing::IsEmpty());
  web_endpoints(c, 20000);
  EXPECT_THAT(config_warnings(c),
              testing::ElementsAre(
                  "stats slots: 40000 (service port, endpoint) pairs of the 65535 podgate counts: "
                  "an endpoint that leaves keeps its slot for 960 s (the longest flow timeout + "
                  "60 s), so beyond 25535 endpoints replaced within that time (a rolling update) "
                  "the new ones' traffic is in the workers' totals only, not in their service's or "
                  "endpoint's figures"));
  // Endpoints that hold no flows (neither ready nor serving) take no slot.
  for (size_t i = 0; i < 2000; ++i) {
    web(c).endpoints[i].ready = false;
    web(c).endpoints[i].serving = false;
  }
  EXPECT_THAT(config_warnings(c), testing::ElementsAre(HasSubstr("36000 (service port, endpoint) pairs")));
  c.dataplane.tcp_established_timeout = 3600;
  EXPECT_THAT(config_warnings(c), testing::ElementsAre(HasSubstr("its slot for 3660 s")));
}

TEST(Validate, AnEndpointListedTwiceIsNamedOnce) {
  EXPECT_EQ(refusal([](Config& c) {
              web(c).endpoints.push_back(ep7(c));
              web(c).endpoints.push_back(ep7(c));
            }),
            "service default/web, endpoint 172.17.0.7: listed twice in this service");
}

TEST(Validate, TooManyEndpoints) {
  EXPECT_THAT(refusal([](Config& c) {
                auto& eps = c.services[1].endpoints;
                for (uint32_t i = 0; eps.size() <= kMaxEndpoints; ++i) {
                  EndpointConfig e;
                  e.ip = dp::IpAddr::v4(dp::Ip4::from_host(0x0a000000 + i + 1));
                  eps.push_back(e);
                }
              }),
              HasSubstr("service default/db: 65535 endpoints; at most 65534 are allowed"));
}

// ---- services and their ports ----

TEST(Validate, ServiceNamesAreLabelsAndUnique) {
  EXPECT_EQ(refusal([](Config& c) { web(c).ns = "Default"; }),
            "service Default/web: namespace " + not_dns1123_label("Default"));
  EXPECT_EQ(refusal([](Config& c) { web(c).name = "1web"; }),
            "service default/1web: name " + not_dns1035_label("1web"));
  EXPECT_EQ(refusal([](Config& c) { c.services[1].name = "web"; }),
            "service default/web: defined twice (services[0] and services[1])");
}

TEST(Validate, AVipPortUsedTwiceNamesBothServices) {
  EXPECT_EQ(refusal([](Config& c) {
              ServiceConfig thief = web(c);
              thief.name = "thief";
              thief.ports.resize(1);
              thief.ports[0].name.clear();
              c.services.push_back(thief);
            }),
            "service default/thief, port 80/TCP: 10.96.0.20:80/TCP is already served by service "
            "default/web");
  // Another protocol on the same port is another service port.
  EXPECT_EQ(refusal([](Config& c) {
              ServiceConfig other = web(c);
              other.name = "other";
              other.ports = {ServicePortConfig{"", 80, 80, dp::Proto::kUdp}};
              c.services.push_back(other);
            }),
            "");
}

TEST(Validate, PortRules) {
  EXPECT_EQ(refusal([](Config& c) {
              web(c).ports[1].port = 80;
              web(c).ports[1].protocol = dp::Proto::kTcp;
            }),
            "service default/web, port 80/TCP: listed twice in this service");
  EXPECT_EQ(refusal([](Config& c) { web(c).ports[1].name = "http"; }),
            "service default/web, port 53/UDP: name \"http\" is already the name of port 80/TCP");
  EXPECT_EQ(refusal([](Config& c) { web(c).ports[1].name.clear(); }),
            "service default/web, port 53/UDP: name missing (required when a service has several "
            "ports)");
  EXPECT_EQ(refusal([](Config& c) { web(c).ports[1].name = "DNS"; }),
            "service default/web, port 53/UDP: name " + not_dns1123_label("DNS"));
  EXPECT_EQ(refusal([](Config& c) { web(c).ports[0].target_port = 0; }),
            "service default/web, port 80/TCP: target_port 0 is not in 1..65535");
  EXPECT_EQ(refusal([](Config& c) { web(c).ports.clear(); }),
            "service default/web: no ports; a service with a cluster_ip needs at least one port");
}

TEST(Validate, ClusterIpRules) {
  EXPECT_EQ(refusal([](Config& c) { web(c).cluster_ip = dp::IpAddr::v4(ip("192.0.2.1")); }),
            "service default/web: cluster_ip 192.0.2.1 is the address of port uplink; a cluster "
            "IP must not be a port address");
  EXPECT_EQ(refusal([](Config& c) { web(c).cluster_ip = dp::IpAddr::v4(ip("224.0.0.1")); }),
            "service default/web: cluster_ip " + not_unicast_ip4("224.0.0.1"));
  EXPECT_EQ(refusal([](Config& c) { web(c).maglev_table_size = 65536; }),
            "service default/web: maglev_table_size 65536 is not prime; Maglev (NSDI'16 section "
            "3.4) needs a prime table size, e.g. 65537");
  EXPECT_EQ(refusal([](Config& c) { c.services[1].maglev_table_size = 251; }),
            "service default/db: maglev_table_size only allowed for a service with a cluster_ip "
            "(headless and ExternalName services do not forward)");
  EXPECT_EQ(refusal([](Config& c) {
              web(c).session_affinity = SessionAffinity::kClientIp;
              web(c).affinity_timeout = 0;
            }),
            "service default/web: timeout_seconds 0 is not in 1..86400");
}

TEST(Validate, ExternalNameRules) {
  EXPECT_EQ(refusal([](Config& c) { c.services[2].external_name = "bad_name"; }),
            "service default/ext: external_name " + not_dns_name("bad_name"));
  EXPECT_EQ(refusal([](Config& c) { c.services[2].endpoints.push_back(EndpointConfig{}); }),
            "service default/ext: endpoints not allowed with type = \"ExternalName\"\n"
            "service default/ext, endpoint 0.0.0.0: ip " + not_unicast_ip4("0.0.0.0"));
  EXPECT_EQ(refusal([](Config& c) { web(c).external_name = "x.example.com"; }),
            "service default/web: external_name only allowed with type = \"ExternalName\"");
}

// ---- ports, routes, neighbours ----

TEST(Validate, PortRulesNameThePort) {
  EXPECT_EQ(refusal([](Config& c) { c.ports[1].name = "uplink"; }),
            "port uplink: name \"uplink\" is given to ports[0] and ports[1]");
  EXPECT_EQ(refusal([](Config& c) { c.ports[1].device.clear(); }),
            "port pods: device empty; a DPDK device such as \"0000:01:00.0\" or "
            "\"net_tap0,iface=pg0\" is needed");
  EXPECT_EQ(refusal([](Config& c) { c.ports[1].address = *dp::parse_prefix4("192.0.2.9/16"); }),
            "port pods: address 192.0.2.9/16: subnet 192.0.0.0/16 overlaps subnet 192.0.2.0/24 "
            "of port uplink");
  EXPECT_EQ(refusal([](Config& c) { c.ports[1].address = *dp::parse_prefix4("172.17.0.0/16"); }),
            "port pods: address 172.17.0.0/16 is the subnet's network address; a port needs a "
            "host address such as 172.17.0.1/16");
  EXPECT_EQ(refusal([](Config& c) { c.ports[1].mtu = 10000; }),
            "port pods: mtu 10000 is not in 68..9000");
}

TEST(Validate, NextHopsAndNeighboursAreOnAConnectedSubnet) {
  EXPECT_EQ(refusal([](Config& c) { c.routes[0].via = ip("198.51.100.1"); }),
            "route 0.0.0.0/0: via 198.51.100.1 is not in a port's connected subnet "
            "(192.0.2.0/24, 172.17.0.0/16)");
  EXPECT_EQ(refusal([](Config& c) { c.routes[0].via = ip("192.0.2.1"); }),
            "route 0.0.0.0/0: via 192.0.2.1 is the address of port uplink");
  EXPECT_EQ(refusal([](Config& c) { c.routes[0].via = ip("192.0.2.255"); }),
            "route 0.0.0.0/0: via 192.0.2.255 is the broadcast address of subnet 192.0.2.0/24 (port "
            "uplink), no host's");
  EXPECT_EQ(refusal([](Config& c) { c.neighbors[0].ip = ip("172.17.0.0"); }),
            "neighbor 172.17.0.0: ip 172.17.0.0 is the network address of subnet 172.17.0.0/16 (port "
            "pods), no host's");
  EXPECT_EQ(refusal([](Config& c) { c.routes.push_back(c.routes[0]); }),
            "route 0.0.0.0/0: routed twice");
  EXPECT_EQ(refusal([](Config& c) { c.routes[0].prefix = *dp::parse_prefix4("10.1.2.3/8"); }),
            "route 10.1.2.3/8: prefix has host bits set; the network is 10.0.0.0/8");
  EXPECT_EQ(refusal([](Config& c) { c.neighbors[0].ip = ip("10.9.9.9"); }),
            "neighbor 10.9.9.9: ip 10.9.9.9 is not in a port's connected subnet (192.0.2.0/24, "
            "172.17.0.0/16)");
  EXPECT_EQ(refusal([](Config& c) { c.neighbors.push_back(c.neighbors[0]); }),
            "neighbor 192.0.2.254: listed twice");
}

// ---- [dns], [dataplane], [control] ----

TEST(Validate, DnsRules) {
  EXPECT_EQ(refusal([](Config& c) { c.dns.service_ip = ip("10.96.0.20"); }),
            "dns: service_ip 10.96.0.20 is the cluster_ip of service default/web; the DNS service "
            "IP must be an address of its own");
  EXPECT_EQ(refusal([](Config& c) { c.dns.service_ip = ip("172.17.255.255"); }),
            "dns: service_ip 172.17.255.255 is the broadcast address of port pods");
  EXPECT_EQ(refusal([](Config& c) { c.dns.listen.push_back(DnsListen{dp::Ip4{}, 53}); }),
            "dns: listen 0.0.0.0:53 overlaps 127.0.0.1:53");
  EXPECT_EQ(refusal([](Config& c) { c.dns.ttl = 0; }), "dns: ttl 0 is not in 1..86400");
  EXPECT_THAT(refusal([](Config& c) { c.dns.zone = "Cluster.local"; }),
              HasSubstr("dns: zone \"Cluster.local\" is not a DNS name"));
}

// Issue 15: --in-memory with --no-huge ended in 60 lines of EAL usage text.
TEST(Validate, EalArgumentCombinationsDpdkRefusesAreNamed) {
  auto eal = [](std::vector<std::string> args) {
    return refusal([&args](Config& c) { c.eal.args = args; });
  };
  EXPECT_EQ(eal({"--no-huge", "--no-shconf", "-m", "256"}), "");
  EXPECT_EQ(eal({"--in-memory", "--no-huge", "-m", "256"}),
            "eal: args: --in-memory and --no-huge cannot go together (--no-huge implies "
            "--legacy-mem, which --in-memory refuses); without hugepages use --no-huge "
            "--no-shconf");
  EXPECT_EQ(eal({"--in-memory", "--legacy-mem"}),
            "eal: args: --in-memory and --legacy-mem cannot go together");
  EXPECT_EQ(eal({"-m", "512", "--socket-mem=512,512"}),
            "eal: args: -m and --socket-mem cannot go together; give one of them");
  EXPECT_EQ(eal({"--no-huge", "--socket-mem", "512"}),
            "eal: args: --socket-mem needs hugepages and cannot go with --no-huge; use -m");
}

TEST(Validate, DataplaneAndControlRules) {
  EXPECT_EQ(refusal([](Config& c) { c.dataplane.workers = 0; }),
            "dataplane: workers 0 is not in 1..64");
  EXPECT_EQ(refusal([](Config& c) { c.dataplane.rx_ring_size = 1000; }),
            "dataplane: rx_ring_size 1000 is not a power of two (64, 128, ... 32768)");
  EXPECT_THAT(refusal([](Config& c) { c.control.socket = "relative.sock"; }),
              HasSubstr("control: socket \"relative.sock\" is not an absolute file path"));
  EXPECT_THAT(refusal([](Config& c) { c.control.mode = 0440; }),
              HasSubstr("control: mode is not a file mode"));
}

// ---- every input goes through it ----

TEST(Validate, AConfigFileIsValidatedStructurallyToo) {
  // What the loader reads with positions passes validate() unchanged: the
  // reference config, and what config_to_toml() writes.
  Config c = base();
  EXPECT_TRUE(validate(c));
  auto again = parse_config(config_to_toml(c), "again.toml");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(validate(*again));
}

TEST(Validate, KubernetesServicesAddedToTheRunningConfigAreValidatedByTheSameRules) {
  // The import checks each object; a clash with a running service is a rule
  // across the whole config, found by validate() on the structure.
  auto imported = import_k8s_objects(R"({"apiVersion": "v1", "kind": "Service",
      "metadata": {"name": "thief", "namespace": "default"},
      "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 80}]}})", "thief.json");
  ASSERT_TRUE(imported) << imported.error().message;
  Config c = base();
  c.services.push_back(imported->services.at(0));
  auto r = validate(c);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "service default/thief, port 80/TCP: 10.96.0.20:80/TCP is already served by service "
            "default/web");
}

}  // namespace
}  // namespace podgate::ctl
