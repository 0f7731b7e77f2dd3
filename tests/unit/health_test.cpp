// Health checks (issue 13) without sockets: the rise/fall state machine,
// the reply parsers, [services.health_check] validation with its exact
// messages, the Kubernetes annotation, and what the snapshot builder makes
// of an unhealthy endpoint (drain, reset, fail open, drop).
#include <gtest/gtest.h>

#include <array>
#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "control/exception/vip_announcer.hpp"
#include "control/config/config.hpp"
#include "control/config/config_health.hpp"
#include "control/config/config_writer.hpp"
#include "control/config/validate.hpp"
#include "control/dns/dns.hpp"
#include "control/config/k8s_objects.hpp"
#include "control/health/health_state.hpp"
#include "control/health/probe.hpp"
#include "control/publish/registry.hpp"
#include "control/publish/snapshot_builder.hpp"

namespace podgate::ctl {
namespace {

using health::HealthState;

// ---- the state machine ----

TEST(HealthState, StartsHealthyAndFallsAfterFallFailuresInARow) {
  HealthState s;
  EXPECT_TRUE(s.healthy());
  EXPECT_FALSE(s.record(false, 2, 3));
  EXPECT_FALSE(s.record(false, 2, 3));
  EXPECT_TRUE(s.healthy()) << "two failures of three";
  EXPECT_TRUE(s.record(false, 2, 3)) << "the third is a transition";
  EXPECT_FALSE(s.healthy());
  EXPECT_FALSE(s.record(false, 2, 3)) << "a fourth changes nothing";
}

TEST(HealthState, RisesAfterRiseSuccessesInARow) {
  HealthState s;
  for (int i = 0; i < 3; ++i) s.record(false, 2, 3);
  ASSERT_FALSE(s.healthy());
  EXPECT_FALSE(s.record(true, 2, 3));
  EXPECT_FALSE(s.healthy());
  EXPECT_TRUE(s.record(true, 2, 3));
  EXPECT_TRUE(s.healthy());
  EXPECT_EQ(s.successes(), 2u);
  EXPECT_EQ(s.failures(), 0u);
}

TEST(HealthState, FlappingNeverReachesEitherThreshold) {
  HealthState s;
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(s.record(i % 3 != 2, 2, 3)) << "ok, ok, fail never makes three failures";
  }
  EXPECT_TRUE(s.healthy());
  for (int i = 0; i < 3; ++i) s.record(false, 2, 3);
  ASSERT_FALSE(s.healthy());
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(s.record(i % 2 == 0, 2, 3)) << "ok, fail never makes two successes";
  }
  EXPECT_FALSE(s.healthy());
}

TEST(HealthState, RiseAndFallOfOneFlipAtOnce) {
  HealthState s;
  EXPECT_TRUE(s.record(false, 1, 1));
  EXPECT_TRUE(s.record(true, 1, 1));
  EXPECT_TRUE(s.record(false, 1, 1));
}

TEST(HealthState, AReplyAtTheDeadlineHasTimedOut) {
  EXPECT_FALSE(health::timed_out(1000, 1999, 1000));
  EXPECT_TRUE(health::timed_out(1000, 2000, 1000));
  EXPECT_TRUE(health::timed_out(1000, 2001, 1000));
  EXPECT_FALSE(health::timed_out(1000, 1000, 1)) << "at once is in time";
}

// ---- reply parsers ----

std::vector<uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

TEST(HttpStatus, ReadsTheStatusLineOnceItIsWhole) {
  EXPECT_EQ(health::http_status(bytes("HTTP/1.1 200 OK\r\n")), 200);
  EXPECT_EQ(health::http_status(bytes("HTTP/1.0 503 Service Unavailable\r\nServer: x\r\n")), 503);
  EXPECT_EQ(health::http_status(bytes("HTTP/1.1 20")), std::nullopt) << "not whole yet";
  EXPECT_EQ(health::http_status(bytes("HTT")), std::nullopt);
  EXPECT_EQ(health::http_status(bytes("SSH-2.0-OpenSSH")), 0) << "not HTTP, known early";
  EXPECT_EQ(health::http_status(bytes("HTTP/1.1 2x0 OK\r\n")), 0);
  EXPECT_EQ(health::http_status(bytes("HTTP/1.1 999 Odd\r\n")), 0);
}

// RFC 9110 §15.2: a client parses any 1xx responses before the final
// one, even unasked; the final status is the one judged.
TEST(HttpStatus, InterimResponsesAreSkipped) {
  EXPECT_EQ(health::http_status(bytes("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                                      "HTTP/1.1 503 Service Unavailable\r\n")),
            503);
  EXPECT_EQ(health::http_status(bytes("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\n\n"
                                      "HTTP/1.1 204 No Content\r\n")),
            204) << "several, and bare LF line ends (RFC 9112 §2.2)";
  EXPECT_EQ(health::http_status(bytes("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n")), std::nullopt)
      << "its header section is not whole yet";
  EXPECT_EQ(health::http_status(bytes("HTTP/1.1 100 Continue\r\n\r\n")), std::nullopt)
      << "the final response has not come yet";
  EXPECT_EQ(health::http_status(bytes("HTTP/1.1 100 Continue\r\n\r\nSSH-2.0")), 0);
  EXPECT_EQ(health::http_status(bytes("HTTP/1.1 103 Early Hints\r\nLink: " + std::string(9000, 'x'))), 0)
      << "an interim header section without end is not waited for forever";
}

TEST(HttpStatus, ExpectedStatusesAreCodesAndRanges) {
  const std::vector<StatusRange> expect = {{200, 299}, {302, 302}};
  EXPECT_TRUE(health::status_expected(204, expect));
  EXPECT_TRUE(health::status_expected(302, expect));
  EXPECT_FALSE(health::status_expected(301, expect));
  EXPECT_FALSE(health::status_expected(503, expect));
}

// A DNS reply: header, the question, then `answers` A records.
std::vector<uint8_t> dns_reply(uint16_t id, uint16_t rcode, const std::vector<std::array<uint8_t, 4>>& answers,
                               uint16_t type = 1) {
  std::vector<uint8_t> m = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0x85,
                            static_cast<uint8_t>(0x00 | rcode), 0, 1, 0,
                            static_cast<uint8_t>(answers.size()), 0, 0, 0, 0};
  const uint8_t name[] = {3, 'w', 'e', 'b', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};
  m.insert(m.end(), std::begin(name), std::end(name));
  m.insert(m.end(), {0, static_cast<uint8_t>(type), 0, 1});
  for (const auto& a : answers) {
    m.insert(m.end(), {0xc0, 12, 0, static_cast<uint8_t>(type), 0, 1, 0, 0, 0, 30, 0, 4});
    m.insert(m.end(), a.begin(), a.end());
  }
  return m;
}

health::ProbePlan dns_plan(std::optional<const char*> expect = std::nullopt) {
  HealthCheckConfig c;
  c.kind = HealthKind::kDns;
  c.query = "web.example";
  if (expect) c.expect_address = *dp::parse_ip4(*expect);
  return health::make_plan(c, *dp::parse_ip4("172.17.0.53"), 53);
}

TEST(DnsReply, NoErrorWithARecordOfTheTypeAskedIsHealthy) {
  EXPECT_EQ(health::check_dns_reply(dns_reply(7, 0, {{10, 0, 0, 1}}), 7, dns_plan()).outcome,
            health::Outcome::kOk);
}

TEST(DnsReply, TheExpectedAddressMustBeAmongTheAnswers) {
  EXPECT_EQ(health::check_dns_reply(dns_reply(7, 0, {{10, 0, 0, 1}, {10, 0, 0, 2}}), 7,
                                    dns_plan("10.0.0.2")).outcome,
            health::Outcome::kOk);
  EXPECT_EQ(health::check_dns_reply(dns_reply(7, 0, {{10, 0, 0, 1}}), 7, dns_plan("10.0.0.2")).outcome,
            health::Outcome::kDnsAnswer);
}

TEST(DnsReply, RcodeEmptyAnswerAndStrangersAreFailures) {
  auto nx = health::check_dns_reply(dns_reply(7, 3, {}), 7, dns_plan());
  EXPECT_EQ(nx.outcome, health::Outcome::kDnsRcode);
  EXPECT_EQ(health::reason_text(nx), "dns NXDOMAIN");
  EXPECT_EQ(health::check_dns_reply(dns_reply(7, 0, {}), 7, dns_plan()).outcome,
            health::Outcome::kDnsAnswer);
  EXPECT_EQ(health::check_dns_reply(dns_reply(8, 0, {{10, 0, 0, 1}}), 7, dns_plan()).outcome,
            health::Outcome::kBadReply)
      << "another query's id";
  auto cut = dns_reply(7, 0, {{10, 0, 0, 1}});
  cut.resize(cut.size() - 2);
  EXPECT_EQ(health::check_dns_reply(cut, 7, dns_plan()).outcome, health::Outcome::kBadReply);
}

TEST(ProbePlan, AnHttpRequestNamesTheHostAndClosesTheConnection) {
  HealthCheckConfig c;
  c.path = "/healthz";
  auto plan = health::make_plan(c, *dp::parse_ip4("172.17.0.10"), 8080);
  EXPECT_EQ(plan.request,
            "GET /healthz HTTP/1.1\r\nHost: 172.17.0.10:8080\r\nUser-Agent: podgate-health-check\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n");
  c.method = "HEAD";
  c.host = "web.example";
  plan = health::make_plan(c, *dp::parse_ip4("172.17.0.10"), 8080);
  EXPECT_EQ(plan.request.substr(0, 43), "HEAD /healthz HTTP/1.1\r\nHost: web.example\r\n");
}

TEST(ProbePlan, AnIpv6EndpointIsNamedInBracketsInTheHostHeader) {
  HealthCheckConfig c;
  auto plan = health::make_plan(c, *dp::parse_ip("fd00:10:244::5"), 8080);
  EXPECT_EQ(plan.ip, *dp::parse_ip("fd00:10:244::5"));
  EXPECT_EQ(plan.request.substr(0, 45), "GET / HTTP/1.1\r\nHost: [fd00:10:244::5]:8080\r\n");
}

// ---- config ----

constexpr const char* kPorts = R"([[ports]]
name = "pods"
device = "net_null0"
address = "172.17.0.1/16"
)";

// A service with `ports` and a health_check table holding `check`.
std::string with_check(const std::string& check,
                       const std::string& ports = R"({ name = "http", port = 80, target_port = 8080 })") {
  return std::string(kPorts) +
         "[[services]]\nnamespace = \"default\"\nname = \"web\"\ncluster_ip = \"10.96.0.20\"\n"
         "ports = [" + ports + "]\nendpoints = [{ ip = \"172.17.0.10\" }]\n"
         "[services.health_check]\n" + check;
}

std::string error_of(const std::string& text) {
  auto c = parse_config(text, "t.toml");
  return c ? std::string("(accepted)") : c.error().message;
}

TEST(HealthCheckConfig, DefaultsSuitAWebService) {
  auto c = parse_config(with_check(""), "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  const HealthCheckConfig& h = *c->services[0].health_check;
  EXPECT_EQ(h.kind, HealthKind::kHttp);
  EXPECT_EQ(h.interval_ms, 2000u);
  EXPECT_EQ(h.timeout_ms, 1000u);
  EXPECT_EQ(h.rise, 2u);
  EXPECT_EQ(h.fall, 3u);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.path, "/");
  EXPECT_EQ(h.expect_status, (std::vector<StatusRange>{{200, 399}}));
  EXPECT_EQ(h.on_failure, HealthOnFailure::kDrain);
  EXPECT_EQ(h.all_unhealthy, AllUnhealthy::kFailOpen);
  EXPECT_FALSE(h.port);
}

TEST(HealthCheckConfig, EveryKeyIsReadAndWrittenBack) {
  const std::string text = with_check(
      "kind = \"http\"\ninterval = \"500ms\"\ntimeout = \"200ms\"\nrise = 1\nfall = 5\nport = 8081\n"
      "method = \"HEAD\"\npath = \"/healthz\"\nhost = \"web.example\"\n"
      "expect_status = [200, \"300-302\"]\non_failure = \"reset\"\nall_unhealthy = \"drop\"\n");
  auto c = parse_config(text, "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  const HealthCheckConfig& h = *c->services[0].health_check;
  EXPECT_EQ(h.interval_ms, 500u);
  EXPECT_EQ(h.timeout_ms, 200u);
  EXPECT_EQ(*h.port, 8081);
  EXPECT_EQ(h.expect_status, (std::vector<StatusRange>{{200, 200}, {300, 302}}));
  EXPECT_EQ(h.on_failure, HealthOnFailure::kReset);
  EXPECT_EQ(h.all_unhealthy, AllUnhealthy::kDrop);
  const std::string saved = config_to_toml(*c);
  auto again = parse_config(saved, "saved.toml");
  ASSERT_TRUE(again) << again.error().message << "\n" << saved;
  EXPECT_EQ(again->services[0], c->services[0]);
  EXPECT_EQ(config_to_toml(*again), saved);
}

TEST(HealthCheckConfig, ADnsCheckRoundTrips) {
  auto c = parse_config(with_check("kind = \"dns\"\nquery = \"web.example\"\nexpect_address = \"10.0.0.1\"\n",
                                   R"({ port = 53, protocol = "UDP" })"),
                        "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  auto again = parse_config(config_to_toml(*c), "saved.toml");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->services[0].health_check, c->services[0].health_check);
}

struct BadCheck {
  const char* check;
  const char* ports;
  const char* error;
};

class HealthCheckErrors : public ::testing::TestWithParam<BadCheck> {};

TEST_P(HealthCheckErrors, AreReportedWithTheirPlace) {
  const BadCheck& b = GetParam();
  EXPECT_EQ(error_of(with_check(b.check, b.ports)), b.error);
}

constexpr const char* kHttp = R"({ name = "http", port = 80, target_port = 8080 })";
constexpr const char* kUdp = R"({ port = 53, protocol = "UDP" })";

INSTANTIATE_TEST_SUITE_P(
    Table, HealthCheckErrors,
    ::testing::Values(
        BadCheck{"kind = \"icmp\"\n", kHttp,
                 "t.toml:12:8: services[0].health_check.kind: \"icmp\" is not allowed; allowed: tcp, http, dns"},
        BadCheck{"interval = \"2\"\n", kHttp,
                 "t.toml:12:12: services[0].health_check.interval: \"2\" is not a duration such as "
                 "\"2s\", \"500ms\" or \"1m\""},
        BadCheck{"interval = \"50ms\"\n", kHttp,
                 "t.toml:12:12: services[0].health_check.interval: 50ms is not in 100ms..1h"},
        BadCheck{"interval = \"1s\"\ntimeout = \"2s\"\n", kHttp,
                 "t.toml:13:11: services[0].health_check.timeout: 2s is not in 10ms..interval (1s): a "
                 "probe ends before the next begins"},
        BadCheck{"rise = 0\n", kHttp, "t.toml:12:8: services[0].health_check.rise: 0 is not in 1..100"},
        BadCheck{"port = 70000\n", kHttp,
                 "t.toml:12:8: services[0].health_check.port: 70000 is not in 1..65535"},
        BadCheck{"path = \"healthz\"\n", kHttp,
                 "t.toml:12:8: services[0].health_check.path: \"healthz\" is not a request path such as "
                 "\"/healthz\" (starts with '/', at most 1024 printable ASCII characters, no spaces)"},
        BadCheck{"method = \"get\"\n", kHttp,
                 "t.toml:12:10: services[0].health_check.method: \"get\" is not an HTTP method such as "
                 "\"GET\" or \"HEAD\" (1..16 of A-Z)"},
        BadCheck{"expect_status = [200, \"500-400\"]\n", kHttp,
                 "t.toml:12:23: services[0].health_check.expect_status[1]: not an HTTP status "
                 "(100..599) or a range of them such as \"200-399\""},
        BadCheck{"kind = \"tcp\"\npath = \"/\"\n", kHttp,
                 "t.toml:13:8: services[0].health_check.path: only allowed with kind = \"http\""},
        BadCheck{"kind = \"dns\"\n", kUdp,
                 "t.toml:11:1: services[0].health_check: missing required key 'query' (kind = "
                 "\"dns\" asks a name, e.g. \"example.com\")"},
        BadCheck{"kind = \"dns\"\nquery = \"web.example\"\nquery_type = \"MX\"\n", kUdp,
                 "t.toml:14:14: services[0].health_check.query_type: \"MX\" is not allowed; allowed: "
                 "A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT"},
        BadCheck{"kind = \"dns\"\nquery = \"web.example\"\nquery_type = \"TXT\"\nexpect_address = "
                 "\"10.0.0.1\"\n", kUdp,
                 "t.toml:15:18: services[0].health_check.expect_address: only allowed with query_type "
                 "= \"A\""},
        BadCheck{"kind = \"http\"\n", kUdp,
                 "t.toml:11:1: services[0].health_check: kind = \"http\" probes over TCP but the "
                 "service has no TCP port; set health_check.port"},
        BadCheck{"on_failure = \"remove\"\n", kHttp,
                 "t.toml:12:14: services[0].health_check.on_failure: \"remove\" is not allowed; "
                 "allowed: drain, reset"},
        BadCheck{"all_unhealthy = \"open\"\n", kHttp,
                 "t.toml:12:17: services[0].health_check.all_unhealthy: \"open\" is not allowed; "
                 "allowed: fail_open, drop"},
        BadCheck{"intervall = \"1s\"\n", kHttp,
                 "t.toml:12:1: services[0].health_check: unknown key 'intervall'; allowed: kind, "
                 "interval, timeout, rise, fall, port, method, path, host, expect_status, query, "
                 "query_type, expect_address, on_failure, all_unhealthy"}));

TEST(HealthCheckConfig, AnHttpCheckOnAUdpServiceIsFineWithAPort) {
  EXPECT_EQ(error_of(with_check("port = 8080\n", kUdp)), "(accepted)");
}

TEST(HealthCheckConfig, ValidateNamesTheServiceForAStructuralChange) {
  auto c = parse_config(with_check(""), "t.toml");
  ASSERT_TRUE(c);
  c->services[0].health_check->timeout_ms = 5000;
  auto v = validate(*c);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().message,
            "service default/web: health_check.timeout 5s is not in 10ms..interval (2s): a probe ends "
            "before the next begins");
}

// ---- the Kubernetes annotation ----

std::string k8s_service(const std::string& annotation) {
  nlohmann::json svc = {{"apiVersion", "v1"},
                        {"kind", "Service"},
                        {"metadata",
                         {{"name", "web"},
                          {"namespace", "default"},
                          {"annotations", {{"podgate.io/health-check", annotation}}}}},
                        {"spec", {{"clusterIP", "10.96.0.50"}, {"ports", {{{"port", 80}, {"targetPort", 8080}}}}}}};
  return svc.dump();
}

TEST(HealthCheckAnnotation, IsReadByTheSameRules) {
  auto in = import_k8s_objects(k8s_service(R"({"kind": "http", "path": "/healthz", "interval": "5s",
                                              "expect_status": [200, "204-206"], "on_failure": "reset"})"),
                               "k8s.json");
  ASSERT_TRUE(in) << in.error().message;
  const HealthCheckConfig& h = *in->services.at(0).health_check;
  EXPECT_EQ(h.path, "/healthz");
  EXPECT_EQ(h.interval_ms, 5000u);
  EXPECT_EQ(h.expect_status, (std::vector<StatusRange>{{200, 200}, {204, 206}}));
  EXPECT_EQ(h.on_failure, HealthOnFailure::kReset);
}

TEST(HealthCheckAnnotation, MistakesNameTheAnnotationAndTheKey) {
  auto in = import_k8s_objects(k8s_service(R"({"kind": "http", "interval": "5x"})"), "k8s.json");
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().message,
            "k8s.json: Service default/web: metadata.annotations[\"podgate.io/health-check\"]: "
            "health_check.interval: \"5x\" is not a duration such as \"2s\", \"500ms\" or \"1m\"");
  in = import_k8s_objects(k8s_service("{kind: http}"), "k8s.json");
  ASSERT_FALSE(in);
  EXPECT_NE(in.error().message.find("metadata.annotations[\"podgate.io/health-check\"]: not JSON"),
            std::string::npos)
      << in.error().message;
}

// JSON has integers beyond TOML's int64_t: one is out of every key's range,
// and the message names it as written, not wrapped around to -1.
TEST(HealthCheckAnnotation, ANumberBeyondInt64IsNamedAsWritten) {
  auto in = import_k8s_objects(k8s_service(R"({"kind": "tcp", "rise": 18446744073709551615})"),
                               "k8s.json");
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().message,
            "k8s.json: Service default/web: metadata.annotations[\"podgate.io/health-check\"]: "
            "health_check.rise: 18446744073709551615 is not in 1..100");
  in = import_k8s_objects(k8s_service(R"({"kind": "tcp", "port": 9223372036854775808})"), "k8s.json");
  ASSERT_FALSE(in);
  EXPECT_NE(in.error().message.find("health_check.port: 9223372036854775808 is not in 1..65535"),
            std::string::npos)
      << in.error().message;
  in = import_k8s_objects(k8s_service(R"({"kind": 18446744073709551615})"), "k8s.json");
  ASSERT_FALSE(in);
  EXPECT_NE(in.error().message.find("health_check.kind: expected a string, found an integer"),
            std::string::npos)
      << in.error().message;
}

// The annotation's keys are input: one with a control byte is written
// escaped, whether the key is unknown or its value is of no type a key takes.
TEST(HealthCheckAnnotation, KeysWithControlBytesAreWrittenEscaped) {
  auto in = import_k8s_objects(k8s_service("{\"kind\": \"tcp\", \"\\u001b[2J\": 1}"), "k8s.json");
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().message.find('\x1b'), std::string::npos) << in.error().message;
  EXPECT_NE(in.error().message.find("health_check: unknown key \"\\x1b[2J\"; allowed: kind, "),
            std::string::npos)
      << in.error().message;
  in = import_k8s_objects(k8s_service("{\"kind\": \"tcp\", \"\\u001b[2J\": {}}"), "k8s.json");
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().message.find('\x1b'), std::string::npos) << in.error().message;
  EXPECT_NE(in.error().message.find("health_check[\"\\x1b[2J\"]: a object; allowed: "), std::string::npos)
      << in.error().message;
}

// ---- effect: what the snapshot builder makes of health ----

struct Effect {
  std::vector<dp::Backend> ready;
  std::vector<dp::Backend> alive;
};

// web with two endpoints, 172.17.0.10 unhealthy on port 80 (and .11 too
// when `both`), under a check with `check` keys: the Registry's view.
Config health_view(const std::string& check, bool both) {
  auto cfg = parse_config(with_check(check, R"({ name = "http", port = 80, target_port = 8080 })") +
                              "", "t.toml");
  EXPECT_TRUE(cfg) << cfg.error().message;
  Config c = *cfg;
  c.services[0].endpoints.push_back(c.services[0].endpoints[0]);
  c.services[0].endpoints[1].ip = dp::IpAddr::v4(*dp::parse_ip4("172.17.0.11"));
  LearntState learnt;
  learnt[EndpointRef{"default", "web", c.services[0].endpoints[0].ip}].unhealthy = {PortRef{80, dp::Proto::kTcp}};
  if (both) learnt[EndpointRef{"default", "web", c.services[0].endpoints[1].ip}].unhealthy = {PortRef{80, dp::Proto::kTcp}};
  return apply_learnt(c, learnt);
}

// What the snapshot built from that view does with web's port 80.
Effect effect(const std::string& check, bool both = false) {
  const Config view = health_view(check, both);
  SnapshotInputs in{&view, {dp::MacAddr{{2, 0, 0, 0, 0, 1}}}, nullptr, 1};
  auto snap = build_snapshot(in);
  const dp::ServiceData* d = snap->find_service(*dp::parse_ip4("10.96.0.20"), dp::to_be16(80), dp::Proto::kTcp);
  EXPECT_NE(d, nullptr);
  return Effect{{d->ready.begin(), d->ready.end()}, {d->alive.begin(), d->alive.end()}};
}

dp::Backend be(const char* ip) { return dp::Backend{*dp::parse_ip4(ip), dp::to_be16(8080), 0}; }

TEST(HealthEffect, AnUnhealthyEndpointDrainsByDefault) {
  Effect e = effect("");
  EXPECT_EQ(e.ready, (std::vector<dp::Backend>{be("172.17.0.11")}));
  EXPECT_EQ(e.alive, (std::vector<dp::Backend>{be("172.17.0.10"), be("172.17.0.11")}))
      << "its established flows stay";
}

TEST(HealthEffect, OnFailureResetEndsItsFlowsLikeARemovedEndpoint) {
  Effect e = effect("on_failure = \"reset\"\n");
  EXPECT_EQ(e.ready, (std::vector<dp::Backend>{be("172.17.0.11")}));
  EXPECT_EQ(e.alive, (std::vector<dp::Backend>{be("172.17.0.11")}));
}

TEST(HealthEffect, AllUnhealthyFailsOpenToEveryReadyEndpoint) {
  Effect e = effect("on_failure = \"reset\"\n", true);
  EXPECT_EQ(e.ready, (std::vector<dp::Backend>{be("172.17.0.10"), be("172.17.0.11")}));
  EXPECT_EQ(e.alive, (std::vector<dp::Backend>{be("172.17.0.10"), be("172.17.0.11")}));
}

TEST(HealthEffect, AllUnhealthyFailsOpenUnderDrainListsEachEndpointAliveOnce) {
  Effect e = effect("", true);  // drain: both alive before failing open
  EXPECT_EQ(e.ready, (std::vector<dp::Backend>{be("172.17.0.10"), be("172.17.0.11")}));
  EXPECT_EQ(e.alive, (std::vector<dp::Backend>{be("172.17.0.10"), be("172.17.0.11")}));
}

TEST(HealthEffect, AllUnhealthyWithDropLeavesThePortNoEndpoint) {
  Effect e = effect("all_unhealthy = \"drop\"\n", true);
  EXPECT_TRUE(e.ready.empty());
  EXPECT_EQ(e.alive.size(), 2u) << "drain: established flows still finish";
}

// Issue 10's announcer withdraws a VIP that takes no new flows: one whose
// endpoints are all unhealthy under `drop`, not under `fail_open`.
TEST(HealthEffect, AVipIsAnnouncedWhileItTakesNewFlows) {
  const uint32_t vip = dp::parse_ip4("10.96.0.20")->be;
  EXPECT_EQ(VipAnnouncer::wanted(health_view("", false)).count(vip), 1u);
  EXPECT_EQ(VipAnnouncer::wanted(health_view("", true)).count(vip), 1u) << "fail open";
  EXPECT_EQ(VipAnnouncer::wanted(health_view("all_unhealthy = \"drop\"\n", false)).count(vip), 1u);
  EXPECT_EQ(VipAnnouncer::wanted(health_view("all_unhealthy = \"drop\"\n", true)).count(vip), 0u);
}

// A dual-stack default/web on port 80 with cluster IPs `first` and
// `second` (clusterIPs[0] and [1]) and one ready endpoint at each of
// `endpoints`.
Config dual_stack_web(const char* first, const char* second, const std::vector<const char*>& endpoints) {
  Config c;
  ServiceConfig s;
  s.ns = "default";
  s.name = "web";
  s.cluster_ip = *dp::parse_ip(first);
  s.secondary_cluster_ip = *dp::parse_ip(second);
  s.ports = {ServicePortConfig{"http", 80, 8080, dp::Proto::kTcp}};
  for (const char* a : endpoints) {
    EndpointConfig e;
    e.ip = *dp::parse_ip(a);
    s.endpoints.push_back(e);
  }
  c.services.push_back(s);
  return c;
}

// Whether the snapshot built from `c` forwards new flows to 10.96.0.20:80.
bool ipv4_vip_forwards(const Config& c) {
  SnapshotInputs in{&c, {dp::MacAddr{{2, 0, 0, 0, 0, 1}}}, nullptr, 1};
  auto snap = build_snapshot(in);
  const dp::ServiceData* d = snap->find_service(*dp::parse_ip4("10.96.0.20"), dp::to_be16(80), dp::Proto::kTcp);
  return d != nullptr && !d->ready.empty();
}

// Kubernetes lists a service with ipFamilies [IPv6, IPv4] IPv6 first; its
// IPv4 VIP, clusterIPs[1], forwards and so is announced.
TEST(VipAnnouncer, AnnouncesTheIpv4VipOfADualStackServiceListedIpv6First) {
  const Config c = dual_stack_web("fd00:10:96::20", "10.96.0.20", {"172.17.0.10", "fd00:17::10"});
  ASSERT_TRUE(ipv4_vip_forwards(c));
  EXPECT_EQ(VipAnnouncer::wanted(c), (std::set<uint32_t>{dp::parse_ip4("10.96.0.20")->be}));
}

// The IPv4 VIP forwards to IPv4 endpoints only (no NAT46): with IPv6 ones
// alone it would attract traffic only to drop it, so it is not announced.
TEST(VipAnnouncer, LeavesOutAnIpv4VipWhoseReadyEndpointsAreAllIpv6) {
  for (const auto& [first, second] : {std::pair{"10.96.0.20", "fd00:10:96::20"},
                                      std::pair{"fd00:10:96::20", "10.96.0.20"}}) {
    Config c = dual_stack_web(first, second, {"fd00:17::10", "172.17.0.10"});
    c.services[0].endpoints[1].ready = false;  // the IPv4 endpoint drains
    ASSERT_FALSE(ipv4_vip_forwards(c)) << first;
    EXPECT_TRUE(VipAnnouncer::wanted(c).empty()) << first;
  }
}

// A VIP whose Pods are all terminating but still serving takes new flows
// (KEP-1669), so it stays announced; the router would otherwise black-hole
// the connections they are still finishing.  Health then applies to them
// as to ready ones.  Once they stop serving, it is withdrawn.
TEST(VipAnnouncer, KeepsAVipWhoseEndpointsAreAllServingTerminating) {
  Config c = dual_stack_web("10.96.0.20", "fd00:10:96::20", {"172.17.0.10", "fd00:17::10"});
  EndpointConfig& v4 = c.services[0].endpoints[0];
  v4.ready = false;
  v4.terminating = true;
  ASSERT_TRUE(ipv4_vip_forwards(c));
  EXPECT_EQ(VipAnnouncer::wanted(c).size(), 1u);

  c.services[0].health_check = HealthCheckConfig{};
  c.services[0].health_check->all_unhealthy = AllUnhealthy::kDrop;
  v4.unhealthy_ports = {PortRef{80, dp::Proto::kTcp}};
  ASSERT_FALSE(ipv4_vip_forwards(c));
  EXPECT_TRUE(VipAnnouncer::wanted(c).empty()) << "failing its check under drop";
  c.services[0].health_check->all_unhealthy = AllUnhealthy::kFailOpen;
  ASSERT_TRUE(ipv4_vip_forwards(c));
  EXPECT_EQ(VipAnnouncer::wanted(c).size(), 1u) << "fail open";

  c.services[0].health_check.reset();
  v4.serving = false;
  ASSERT_FALSE(ipv4_vip_forwards(c));
  EXPECT_TRUE(VipAnnouncer::wanted(c).empty()) << "no longer serving";
}

// Health counts per family too: an IPv4 endpoint failing its check under
// `drop` leaves the IPv4 VIP nothing, however healthy the IPv6 one is.
TEST(VipAnnouncer, CountsHealthOnlyAmongTheVipsFamily) {
  Config c = dual_stack_web("10.96.0.20", "fd00:10:96::20", {"172.17.0.10", "fd00:17::10"});
  c.services[0].health_check = HealthCheckConfig{};
  c.services[0].health_check->all_unhealthy = AllUnhealthy::kDrop;
  c.services[0].endpoints[0].unhealthy_ports = {PortRef{80, dp::Proto::kTcp}};
  ASSERT_FALSE(ipv4_vip_forwards(c));
  EXPECT_TRUE(VipAnnouncer::wanted(c).empty());
  c.services[0].health_check->all_unhealthy = AllUnhealthy::kFailOpen;
  ASSERT_TRUE(ipv4_vip_forwards(c));
  EXPECT_EQ(VipAnnouncer::wanted(c).size(), 1u) << "fail open";
}

// The cluster DNS address ([dns] service_ip) is answered by every
// appliance, whatever the services: clients beyond the router reach it the
// way they reach a VIP.
TEST(VipAnnouncer, AnnouncesTheDnsServiceIp) {
  Config c;
  EXPECT_TRUE(VipAnnouncer::wanted(c).empty());
  c.dns.service_ip = *dp::parse_ip4("10.96.0.10");
  EXPECT_EQ(VipAnnouncer::wanted(c), (std::set<uint32_t>{dp::parse_ip4("10.96.0.10")->be}));
}

// A headless default/db with two Pods under a TCP check on port 5432.
Config headless_db() {
  Config c;
  ServiceConfig s;
  s.ns = "default";
  s.name = "db";
  s.ports = {ServicePortConfig{"pg", 5432, 5432, dp::Proto::kTcp}};
  s.health_check = HealthCheckConfig{};
  s.health_check->kind = HealthKind::kTcp;
  for (const char* a : {"172.17.1.10", "172.17.1.11"}) {
    EndpointConfig e;
    e.ip = dp::IpAddr::v4(*dp::parse_ip4(a));
    s.endpoints.push_back(e);
  }
  c.services.push_back(s);
  return c;
}

TEST(HealthEffect, HeadlessDnsLeavesOutUnhealthyPodsUnlessAllAre) {
  Config c = headless_db();
  const ServiceConfig& s = c.services[0];
  LearntState learnt;
  learnt[EndpointRef{"default", "db", s.endpoints[0].ip}].unhealthy = {PortRef{5432, dp::Proto::kTcp}};
  Config view = apply_learnt(c, learnt);
  EXPECT_FALSE(view.services[0].endpoints[0].ready);
  EXPECT_TRUE(view.services[0].endpoints[1].ready);
  learnt[EndpointRef{"default", "db", s.endpoints[1].ip}].unhealthy = {PortRef{5432, dp::Proto::kTcp}};
  view = apply_learnt(c, learnt);
  EXPECT_TRUE(view.services[0].endpoints[0].ready) << "fail open: all listed";
  EXPECT_TRUE(view.services[0].endpoints[1].ready);
  c.services[0].health_check->all_unhealthy = AllUnhealthy::kDrop;
  view = apply_learnt(c, learnt);
  EXPECT_FALSE(view.services[0].endpoints[0].ready);
  EXPECT_FALSE(view.services[0].endpoints[1].ready);
}

// The zone built from the view answers for the healthy Pod only: asked
// through podgate's own responder, checked by the DNS probe's own parser.
TEST(HealthEffect, TheZoneOfAHeadlessServiceAnswersWithItsHealthyPodsOnly) {
  Config c = headless_db();
  const ServiceConfig& s = c.services[0];
  LearntState learnt;
  learnt[EndpointRef{"default", "db", s.endpoints[0].ip}].unhealthy = {PortRef{5432, dp::Proto::kTcp}};
  auto zone = dns::build_zone(apply_learnt(c, learnt), 2);
  auto answer = [&](const char* expect) {
    HealthCheckConfig q;
    q.kind = HealthKind::kDns;
    q.query = "db.default.svc.cluster.local";
    q.expect_address = *dp::parse_ip4(expect);
    health::ProbePlan plan = health::make_plan(q, *dp::parse_ip4("127.0.0.1"), 53);
    std::vector<uint8_t> query(plan.request.begin(), plan.request.end());
    query[1] = 9;  // id 9
    std::vector<uint8_t> out(dns::kMaxMessage);
    const size_t n = dns::respond(query, *zone, dns::QueryContext{}, out);
    out.resize(n);
    return health::check_dns_reply(out, 9, plan).outcome;
  };
  EXPECT_EQ(answer("172.17.1.11"), health::Outcome::kOk);
  EXPECT_EQ(answer("172.17.1.10"), health::Outcome::kDnsAnswer) << "the unhealthy Pod is left out";
}

}  // namespace
}  // namespace podgate::ctl
