// IPv6 dual-stack in the config (issue 11): cluster_ips, endpoints of
// either family, [[ports]] address6, IPv6 [[routes]] and [[neighbors]]; the
// loader's refusals with FILE:LINE:COL, validate()'s naming the object, and
// the writer's round trip.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/config/config.hpp"
#include "control/config/config_writer.hpp"
#include "control/config/memory_plan.hpp"
#include "control/config/validate.hpp"

namespace podgate::ctl {
namespace {

using ::testing::HasSubstr;

dp::IpAddr ip(const char* s) { return *dp::parse_ip(s); }

// Lines 1-10: two ports, the pods port dual-stack.
constexpr const char* kPorts =
    "[[ports]]\n"
    "name = \"uplink\"\n"
    "device = \"net_tap0\"\n"
    "address = \"192.0.2.1/24\"\n"
    "address6 = \"2001:db8:1::1/64\"\n"
    "[[ports]]\n"
    "name = \"pods\"\n"
    "device = \"net_tap1\"\n"
    "address = \"172.17.0.1/16\"\n"
    "address6 = \"fd00:10:244::1/64\"\n";

// Lines 11-13: a service header.
constexpr const char* kSvc =
    "[[services]]\n"
    "namespace = \"default\"\n"
    "name = \"web\"\n";

std::string S(const std::string& rest) { return std::string(kPorts) + kSvc + rest; }

constexpr const char* kDualStack = R"(
[[routes]]
prefix = "0.0.0.0/0"
via = "192.0.2.254"
[[routes]]
prefix = "::/0"
via = "2001:db8:1::fe"
[[routes]]
prefix = "fd00:10:244::/64"
via = "::"
[[neighbors]]
ip = "2001:db8:1::fe"
mac = "02:00:00:00:00:fe"
[[services]]
namespace = "default"
name = "web"
cluster_ips = ["10.96.0.20", "fd00:10:96::20"]
ports = [{ name = "http", port = 80, target_port = 8080 }]
endpoints = [{ ip = "172.17.0.7" }, { ip = "fd00:10:244::7", hostname = "web-0" }]
[[services]]
namespace = "default"
name = "v6only"
cluster_ip = "fd00:10:96::30"
ports = [{ port = 80 }]
endpoints = [{ ip = "fd00:10:244::8" }]
[[services]]
namespace = "default"
name = "both-keys"
cluster_ip = "fd00:10:96::40"
cluster_ips = ["fd00:10:96::40", "10.96.0.40"]
ports = [{ port = 80 }]
[[services]]
namespace = "default"
name = "db"
cluster_ip = "None"
endpoints = [{ ip = "172.17.0.9" }, { ip = "fd00:10:244::9" }]
)";

Config dual_stack() {
  auto c = parse_config(std::string(kPorts) + kDualStack, "ds.toml");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : Config{};
}

TEST(DualStackConfig, ReadsClusterIpsEndpointsPortsRoutesAndNeighbours) {
  const Config c = dual_stack();
  ASSERT_EQ(c.services.size(), 4u);
  EXPECT_EQ(c.services[0].cluster_ip, ip("10.96.0.20"));
  EXPECT_EQ(c.services[0].secondary_cluster_ip, ip("fd00:10:96::20"));
  EXPECT_EQ(c.services[0].endpoints[1].ip, ip("fd00:10:244::7"));
  EXPECT_EQ(c.services[1].cluster_ip, ip("fd00:10:96::30"));
  EXPECT_FALSE(c.services[1].secondary_cluster_ip);
  EXPECT_EQ(c.services[2].cluster_ip, ip("fd00:10:96::40"));  // clusterIPs[0] is the primary
  EXPECT_EQ(c.services[2].secondary_cluster_ip, ip("10.96.0.40"));
  EXPECT_TRUE(c.services[3].headless());
  ASSERT_TRUE(c.ports[1].address6);
  EXPECT_EQ(*c.ports[1].address6, *dp::parse_prefix6("fd00:10:244::1/64"));
  ASSERT_EQ(c.routes.size(), 1u);
  ASSERT_EQ(c.routes6.size(), 2u);
  EXPECT_EQ(c.routes6[0].prefix, *dp::parse_prefix6("::/0"));
  EXPECT_EQ(c.routes6[0].via, *dp::parse_ip6("2001:db8:1::fe"));
  EXPECT_TRUE(c.routes6[1].via.is_zero());  // connected
  ASSERT_EQ(c.neighbors6.size(), 1u);
  EXPECT_TRUE(c.neighbors.empty());
  EXPECT_TRUE(validate(c).ok());
}

TEST(DualStackConfig, WriterRoundTripsEverything) {
  const Config c = dual_stack();
  const std::string text = config_to_toml(c);
  EXPECT_THAT(text, HasSubstr("cluster_ips = [\"10.96.0.20\", \"fd00:10:96::20\"]"));
  EXPECT_THAT(text, HasSubstr("cluster_ip = \"fd00:10:96::30\""));
  EXPECT_THAT(text, HasSubstr("address6 = \"fd00:10:244::1/64\""));
  auto again = parse_config(text, "written.toml");
  ASSERT_TRUE(again.ok()) << again.error().message << "\n" << text;
  EXPECT_EQ(again->ports, c.ports);
  EXPECT_EQ(again->routes, c.routes);
  EXPECT_EQ(again->routes6, c.routes6);
  EXPECT_EQ(again->neighbors6, c.neighbors6);
  ASSERT_EQ(again->services.size(), c.services.size());
  for (size_t i = 0; i < c.services.size(); ++i) EXPECT_EQ(again->services[i], c.services[i]);
}

TEST(DualStackConfig, MemoryPlanCountsAServicePortPerFamily) {
  const Config c = dual_stack();
  // web: 1 port x 2 families; v6only: 1; both-keys: 1 x 2.
  EXPECT_EQ(plan_memory(c).service_ports, 5u);
  EXPECT_EQ(plan_memory(c).backends, 3u);  // each endpoint counted under its own family's VIP
}

TEST(DualStackConfig, WarnsOfAnIpv6VipInsideAPortSubnet) {
  auto c = parse_config(S("cluster_ip = \"fd00:10:244::99\"\nports = [{ port = 80 }]\n"), "w.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_THAT(config_warnings(*c),
              testing::ElementsAre("service default/web: cluster_ip fd00:10:244::99 is inside port "
                                   "pods's connected subnet fd00:10:244::/64; podgate answers "
                                   "neighbour solicitations for it there, so no host on that "
                                   "subnet may have it"));
}

TEST(DualStackConfig, APortWithAnAddress6TakesAnMtuOf1280AndAnIpv4OnlyPortLess) {
  // RFC 8200 section 5: 1280 is the least MTU of an IPv6 link; IPv4's is 68
  // (RFC 791), which an IPv4-only port may still have.
  auto c = parse_config(
      "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\naddress6 = \"fd00:1::1/64\"\n"
      "mtu = 1280\n"
      "[[ports]]\nname = \"b\"\ndevice = \"e\"\naddress = \"10.0.1.1/24\"\nmtu = 576\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->ports[0].mtu, 1280);
  EXPECT_EQ(c->ports[1].mtu, 576);
  EXPECT_TRUE(validate(*c).ok());
}

struct BadCase {
  const char* what;
  std::string toml;
  std::string error;
};

const std::vector<BadCase>& bad_cases() {
  static const std::vector<BadCase> cases = {
      {"two cluster IPs of one family",
       S("cluster_ips = [\"10.96.0.20\", \"10.96.0.21\"]\nports = [{ port = 80 }]\n"),
       "t.toml:14:30: services[0].cluster_ips[1]: 10.96.0.21 is IPv4 like cluster_ips[0]; a "
       "dual-stack service has one cluster IP per family (more than one address per family is "
       "not allowed)"},
      {"three cluster IPs",
       S("cluster_ips = [\"10.96.0.20\", \"fd00::20\", \"10.96.0.21\"]\nports = [{ port = 80 }]\n"),
       "t.toml:14:15: services[0].cluster_ips: 3 addresses; cluster_ips holds 1 or 2 (one per "
       "family), e.g. [\"10.96.0.20\", \"fd00:10:96::20\"]"},
      {"cluster_ip and cluster_ips disagree",
       S("cluster_ip = \"10.96.0.20\"\ncluster_ips = [\"10.96.0.21\"]\nports = [{ port = 80 }]\n"),
       "t.toml:15:15: services[0].cluster_ips: cluster_ips[0] 10.96.0.21 differs from cluster_ip "
       "10.96.0.20; give one of the keys, or the same first address"},
      {"multicast IPv6 cluster IP", S("cluster_ip = \"ff02::1\"\nports = [{ port = 80 }]\n"),
       "t.toml:14:14: services[0].cluster_ip: \"ff02::1\" is not a unicast IPv6 address (::, ::1, "
       "::ffff:0:0/96 and ff00::/8 are not allowed)"},
      {"link-local cluster IP", S("cluster_ips = [\"10.96.0.20\", \"fe80::20\"]\nports = [{ port = 80 }]\n"),
       "t.toml:14:30: services[0].cluster_ips[1]: \"fe80::20\" is link-local (fe80::/10); a "
       "cluster IP needs a global or unique-local address"},
      {"IPv6 endpoint of an IPv4-only service",
       S("cluster_ip = \"10.96.0.20\"\nports = [{ port = 80 }]\nendpoints = [{ ip = \"fd00:10:244::7\" }]\n"),
       "t.toml:16:21: services[0].endpoints[0].ip: fd00:10:244::7 is IPv6 but the service has no "
       "IPv6 cluster IP; a VIP forwards to endpoints of its own family only"},
      {"loopback IPv6 endpoint",
       S("cluster_ip = \"fd00::20\"\nports = [{ port = 80 }]\nendpoints = [{ ip = \"::1\" }]\n"),
       "t.toml:16:21: services[0].endpoints[0].ip: \"::1\" is not a unicast IPv6 address (::, ::1, "
       "::ffff:0:0/96 and ff00::/8 are not allowed)"},
      {"duplicate IPv6 endpoint written two ways",
       S("cluster_ip = \"fd00::20\"\nports = [{ port = 80 }]\n"
         "endpoints = [{ ip = \"fd00:10:244::7\" }, { ip = \"FD00:10:244:0::7\" }]\n"),
       "t.toml:16:48: services[0].endpoints[1].ip: fd00:10:244::7 is already services[0].endpoints[0]"},
      {"IPv6 cluster IP that is a port's address6",
       S("cluster_ip = \"fd00:10:244::1\"\nports = [{ port = 80 }]\n"),
       "t.toml:14:14: services[0].cluster_ip: fd00:10:244::1 is the address6 of ports[1] (pods); a "
       "cluster IP must not be a port address"},
      {"duplicate IPv6 VIP:port across services",
       S("cluster_ips = [\"10.96.0.20\", \"fd00::20\"]\nports = [{ port = 80 }]\n[[services]]\n"
         "namespace = \"default\"\nname = \"web2\"\ncluster_ip = \"fd00::20\"\nports = [{ port = 80 }]\n"),
       "t.toml:20:19: services[1].ports[0].port: [fd00::20]:80/TCP is already served by services[0] "
       "(default/web)"},
      {"IPv6 prefix as a port's address",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"fd00:1::1/64\"\n",
       "t.toml:4:11: ports[0].address: \"fd00:1::1/64\" is an IPv6 address; ports[0].address takes "
       "IPv4 only; a port's IPv6 address and prefix go in address6"},
      {"IPv4 prefix as a port's address6",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\naddress6 = \"10.0.1.1/24\"\n",
       "t.toml:5:12: ports[0].address6: \"10.0.1.1/24\" is not an IPv6 address with prefix length "
       "such as \"fd00:1::1/64\" (the IPv4 address goes in address)"},
      {"overlapping address6 subnets",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\naddress6 = \"fd00:1::1/48\"\n"
       "[[ports]]\nname = \"b\"\ndevice = \"e\"\naddress = \"10.0.1.1/24\"\naddress6 = \"fd00:1:0:2::1/64\"\n",
       "t.toml:10:12: ports[1].address6: \"fd00:1:0:2::1/64\": subnet fd00:1:0:2::/64 overlaps subnet "
       "fd00:1::/48 of ports[0]"},
      {"Subnet-Router anycast as a port's address6",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\naddress6 = \"fd00:1::/64\"\n",
       "t.toml:5:12: ports[0].address6: \"fd00:1::/64\" is the subnet's Subnet-Router anycast "
       "address (RFC 4291 section 2.6.1); a port needs a host address such as \"fd00:1::1/64\""},
      {"an MTU below IPv6's minimum on a port with an address6",
       "[[ports]]\nname = \"a\"\ndevice = \"d\"\naddress = \"10.0.0.1/24\"\naddress6 = \"fd00:1::1/64\"\n"
       "mtu = 1279\n",
       "t.toml:6:7: ports[0].mtu: 1279 is not in 1280..9000; a port with an address6 carries IPv6, whose "
       "links have an MTU of at least 1280 (RFC 8200 section 5)"},
      {"IPv6 route via an IPv4 next hop",
       std::string(kPorts) + "[[routes]]\nprefix = \"::/0\"\nvia = \"192.0.2.254\"\n",
       "t.toml:13:7: routes[0].via: \"192.0.2.254\" is IPv4 but prefix \"::/0\" is IPv6; a route's "
       "next hop is of its prefix's family"},
      {"IPv4 route via an IPv6 next hop",
       std::string(kPorts) + "[[routes]]\nprefix = \"0.0.0.0/0\"\nvia = \"2001:db8:1::fe\"\n",
       "t.toml:13:7: routes[0].via: \"2001:db8:1::fe\" is IPv6 but the prefix is IPv4; a route's "
       "next hop is of its prefix's family"},
      {"IPv6 next hop off link",
       std::string(kPorts) + "[[routes]]\nprefix = \"::/0\"\nvia = \"2001:db8:2::fe\"\n",
       "t.toml:13:7: routes[0].via: 2001:db8:2::fe is not in a port's connected IPv6 subnet "
       "(2001:db8:1::/64, fd00:10:244::/64)"},
      {"IPv6 route with host bits",
       std::string(kPorts) + "[[routes]]\nprefix = \"fd00:20::1/64\"\nvia = \"2001:db8:1::fe\"\n",
       "t.toml:12:10: routes[0].prefix: \"fd00:20::1/64\" has host bits set; the network is "
       "\"fd00:20::/64\""},
      {"connected IPv6 route outside every subnet",
       std::string(kPorts) + "[[routes]]\nprefix = \"fd00:20::/64\"\nvia = \"::\"\n",
       "t.toml:13:7: routes[0].via: \"::\" (connected) but prefix \"fd00:20::/64\" is in no port's "
       "address6 subnet"},
      {"IPv6 neighbour off link",
       std::string(kPorts) + "[[neighbors]]\nip = \"fd00:99::1\"\nmac = \"02:00:00:00:00:01\"\n",
       "t.toml:12:6: neighbors[0].ip: fd00:99::1 is not in a port's connected IPv6 subnet "
       "(2001:db8:1::/64, fd00:10:244::/64)"},
      {"IPv6 dns.service_ip", std::string(kPorts) + "[dns]\nservice_ip = \"fd00:10:96::a\"\n",
       "t.toml:12:14: dns.service_ip: \"fd00:10:96::a\" is an IPv6 address; dns.service_ip takes "
       "IPv4 only"},
      {"IPv6 dns.listen", std::string(kPorts) + "[dns]\nlisten = [\"[::1]:53\"]\n",
       "t.toml:12:11: dns.listen[0]: \"[::1]:53\" is an IPv6 address; dns.listen takes IPv4 only"},
      {"IPv6 metrics.listen", std::string(kPorts) + "[metrics]\nlisten = \"[::1]:9470\"\n",
       "t.toml:12:10: metrics.listen: \"[::1]:9470\" is an IPv6 address; metrics.listen takes IPv4 "
       "only"},
      {"IPv6 health expect_address",
       S("cluster_ip = \"10.96.0.20\"\nports = [{ port = 53, protocol = \"UDP\" }]\n"
         "[services.health_check]\nkind = \"dns\"\nquery = \"a.example\"\nexpect_address = \"fd00::1\"\n"),
       "t.toml:19:18: services[0].health_check.expect_address: \"fd00::1\" is an IPv6 address; "
       "services[0].health_check.expect_address takes IPv4 only"},
  };
  return cases;
}

class BadDualStackConfig : public testing::TestWithParam<size_t> {};

TEST_P(BadDualStackConfig, IsRejectedWithExactMessage) {
  const BadCase& c = bad_cases()[GetParam()];
  SCOPED_TRACE(c.what);
  auto r = parse_config(c.toml, "t.toml");
  ASSERT_FALSE(r.ok()) << c.toml;
  EXPECT_EQ(r.error().message, c.error) << c.toml;
}

INSTANTIATE_TEST_SUITE_P(Table, BadDualStackConfig, testing::Range<size_t>(0, bad_cases().size()));

// ---- validate(): the same rules on a Config however it was made ----

EndpointConfig endpoint(const dp::IpAddr& a) {
  EndpointConfig e;
  e.ip = a;
  return e;
}

Config with_service(ServiceConfig s) {
  Config c = dual_stack();
  c.services.push_back(std::move(s));
  return c;
}

ServiceConfig service(const char* name, std::optional<dp::IpAddr> vip,
                      std::optional<dp::IpAddr> second = std::nullopt) {
  ServiceConfig s;
  s.ns = "default";
  s.name = name;
  s.cluster_ip = vip;
  s.secondary_cluster_ip = second;
  s.ports = {ServicePortConfig{"", 81, 81, dp::Proto::kTcp}};
  return s;
}

TEST(DualStackValidate, RefusesTwoClusterIpsOfOneFamily) {
  auto r = validate(with_service(service("x", ip("fd00::1"), ip("fd00::2"))));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "service default/x: cluster_ips[1] fd00::2 is IPv6 like cluster_ip fd00::1; a "
            "dual-stack service has one cluster IP per family");
}

TEST(DualStackValidate, RefusesAnEndpointOfAFamilyTheServiceLacks) {
  ServiceConfig s = service("x", ip("fd00::1"));
  s.endpoints.push_back(endpoint(ip("172.17.0.50")));
  auto r = validate(with_service(s));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "service default/x, endpoint 172.17.0.50: ip 172.17.0.50 is IPv4 but the service has "
            "no IPv4 cluster IP (fd00::1); a VIP forwards to endpoints of its own family only");
}

TEST(DualStackValidate, AHeadlessServiceTakesEndpointsOfBothFamilies) {
  ServiceConfig s = service("x", std::nullopt);
  s.ports.clear();
  s.endpoints.push_back(endpoint(ip("172.17.0.50")));
  s.endpoints.push_back(endpoint(ip("fd00:10:244::50")));
  EXPECT_TRUE(validate(with_service(s)).ok());
}

TEST(DualStackValidate, RefusesAnIpv6VipServedTwiceAndAVipAsEndpoint) {
  ServiceConfig s = service("x", ip("fd00:10:96::30"));  // v6only's VIP
  s.ports[0].port = 80;
  s.endpoints.push_back(endpoint(ip("fd00:10:96::20")));  // web's VIP
  auto r = validate(with_service(s));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "service default/x, port 80/TCP: [fd00:10:96::30]:80/TCP is already served by service "
            "default/v6only\n"
            "service default/x, endpoint fd00:10:96::20: ip is the cluster_ip of service "
            "default/web; an endpoint must be a Pod, not a VIP (podgate forwards a packet once)");
}

TEST(DualStackValidate, RefusesAnMtuBelow1280OnAPortWithAnAddress6) {
  // The pods port carries IPv6: its address6, the connected route and the
  // IPv6 endpoints behind it.
  Config c = dual_stack();
  c.ports[1].mtu = 1279;
  auto r = validate(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "port pods: mtu 1279 is not in 1280..9000; a port with an address6 carries IPv6, whose links "
            "have an MTU of at least 1280 (RFC 8200 section 5)");
  c.ports[1].mtu = 1280;
  EXPECT_TRUE(validate(c).ok());
}

TEST(DualStackValidate, RefusesLinkLocalAndIpv6RoutesOffLink) {
  Config c = dual_stack();
  c.routes6.push_back(Route6Config{*dp::parse_prefix6("fd00:30::/64"), *dp::parse_ip6("fd00:99::1")});
  c.neighbors6.push_back(Neighbor6Config{*dp::parse_ip6("fe80::1"), *dp::parse_mac("02:00:00:00:00:01")});
  auto r = validate(c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "route fd00:30::/64: via fd00:99::1 is not in a port's connected IPv6 subnet "
            "(2001:db8:1::/64, fd00:10:244::/64)\n"
            "neighbor fe80::1: ip \"fe80::1\" is link-local (fe80::/10); a static neighbour needs "
            "a global or unique-local address");
}

}  // namespace
}  // namespace podgate::ctl
