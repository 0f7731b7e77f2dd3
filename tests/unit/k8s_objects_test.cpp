// import_k8s_objects(): kubectl JSON -> ServiceConfig (docs/kubernetes.md).
//
// Fixtures under tests/fixtures/k8s/ are shaped like `kubectl get -o json`
// output; error cases start from a fixture and change one field, so each
// test proves one rule on otherwise realistic input.
#include "control/config/k8s_objects.hpp"

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace podgate::ctl {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::string read_fixture(const std::string& name) {
  std::ifstream in(std::string(PODGATE_SOURCE_DIR) + "/tests/fixtures/k8s/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json fixture(const std::string& name) { return json::parse(read_fixture(name)); }

json list_of(const std::vector<json>& items) {
  return json{{"apiVersion", "v1"}, {"kind", "List"}, {"metadata", {{"resourceVersion", ""}}},
              {"items", items}};
}

// web Service + its two slices, as one List.
json web_list() {
  json slices = fixture("web-endpointslices.json");
  return list_of({fixture("web-service.json"), slices["items"][0], slices["items"][1]});
}

Result<K8sImport> run(const json& j) { return import_k8s_objects(j.dump(), "in.json"); }

K8sImport run_ok(const json& j) {
  auto r = run(j);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : K8sImport{};
}

std::string run_error(const json& j) {
  auto r = run(j);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidConfig);
  return r.error().message;
}

const ServiceConfig* find(const K8sImport& imp, std::string_view ns, std::string_view name) {
  for (const ServiceConfig& s : imp.services) {
    if (s.ns == ns && s.name == name) return &s;
  }
  return nullptr;
}

dp::IpAddr ip(const char* text) { return *dp::parse_ip(text); }

const EndpointConfig* endpoint(const ServiceConfig& svc, const char* text) {
  for (const EndpointConfig& e : svc.endpoints) {
    if (e.ip == ip(text)) return &e;
  }
  return nullptr;
}

// A warning list containing a line with every fragment.
::testing::Matcher<const std::vector<std::string>&> has_warning(const std::string& a,
                                                               const std::string& b = "") {
  return Contains(AllOf(HasSubstr(a), HasSubstr(b)));
}

// ---- Service mapping ----

TEST(K8sService, MapsNamespaceNameClusterIpAndPorts) {
  K8sImport imp = run_ok(web_list());
  ASSERT_EQ(imp.services.size(), 1u);
  const ServiceConfig& s = imp.services[0];
  EXPECT_EQ(s.ns, "default");
  EXPECT_EQ(s.name, "web");
  EXPECT_EQ(s.type, ServiceType::kClusterIp);
  ASSERT_TRUE(s.cluster_ip.has_value());
  EXPECT_EQ(*s.cluster_ip, ip("10.96.45.10"));
  ASSERT_EQ(s.ports.size(), 2u);
  EXPECT_EQ(s.ports[0].name, "http");
  EXPECT_EQ(s.ports[0].port, 80);
  EXPECT_EQ(s.ports[0].protocol, dp::Proto::kTcp);
  EXPECT_EQ(s.ports[1].name, "metrics");
  EXPECT_EQ(s.ports[1].port, 9090);
  EXPECT_EQ(s.ports[1].target_port, 9090);
}

TEST(K8sService, ClientIpAffinityTakesItsTimeout) {
  K8sImport imp = run_ok(web_list());
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_EQ(imp.services[0].session_affinity, SessionAffinity::kClientIp);
  EXPECT_EQ(imp.services[0].affinity_timeout, 3600u);
}

TEST(K8sService, NoneAffinityKeepsTheDefaultTimeout) {
  K8sImport imp = run_ok(fixture("all-namespaces.json"));
  const ServiceConfig* s = find(imp, "default", "kubernetes");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->session_affinity, SessionAffinity::kNone);
  EXPECT_EQ(s->affinity_timeout, ServiceConfig{}.affinity_timeout);
}

TEST(K8sService, NamedTargetPortResolvesThroughTheSlicePortOfTheSameServicePortName) {
  // Service port "http" targets the container port named "web"; the slices
  // carry the service port's name with the resolved number.
  K8sImport imp = run_ok(web_list());
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_EQ(imp.services[0].ports[0].target_port, 8080);
  EXPECT_THAT(imp.warnings, IsEmpty());
}

TEST(K8sService, NumericTargetPortIsTaken) {
  K8sImport imp = run_ok(fixture("all-namespaces.json"));
  const ServiceConfig* s = find(imp, "default", "kubernetes");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->ports.size(), 1u);
  EXPECT_EQ(s->ports[0].port, 443);
  EXPECT_EQ(s->ports[0].target_port, 6443);
}

// kube-proxy forwards to the slice's port number and never reads the
// Service's targetPort: a selectorless service's own slices (or ones
// mirrored from its Endpoints) may say another number than targetPort.
TEST(K8sService, ASlicesPortNumberWinsOverANumericTargetPort) {
  json doc = web_list();
  doc["items"][0]["spec"]["ports"][0]["targetPort"] = 8080;
  doc["items"][1]["ports"][0]["port"] = 18080;
  doc["items"][2]["ports"][0]["port"] = 18080;
  K8sImport imp = run_ok(doc);
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_EQ(imp.services[0].ports[0].target_port, 18080);
  EXPECT_EQ(imp.services[0].ports[1].target_port, 9090) << "the port no slice renumbers";
  // Slices that disagree are refused, as for a named targetPort.
  doc["items"][2]["ports"][0]["port"] = 8080;
  EXPECT_THAT(run_error(doc), HasSubstr("port \"http\" resolves to 8080 here but to 18080 in EndpointSlice"));
}

TEST(K8sService, AbsentTargetPortDefaultsToPort) {
  json svc = fixture("web-service.json");
  svc["spec"]["ports"][1].erase("targetPort");
  svc["spec"]["ports"][1]["port"] = 9100;
  K8sImport imp = run_ok(svc);
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_EQ(imp.services[0].ports[1].target_port, 9100);
}

TEST(K8sService, AbsentProtocolMeansTcpAndUdpIsKept) {
  json svc = fixture("web-service.json");
  svc["spec"]["ports"][1].erase("protocol");
  K8sImport imp = run_ok(svc);
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_EQ(imp.services[0].ports[1].protocol, dp::Proto::kTcp);

  K8sImport all = run_ok(fixture("all-namespaces.json"));
  const ServiceConfig* dns = find(all, "kube-system", "kube-dns");
  ASSERT_NE(dns, nullptr);
  ASSERT_EQ(dns->ports.size(), 3u);
  EXPECT_EQ(dns->ports[0].protocol, dp::Proto::kUdp);
  EXPECT_EQ(dns->ports[1].protocol, dp::Proto::kTcp);
  EXPECT_EQ(dns->ports[0].port, dns->ports[1].port);
}

TEST(K8sService, ServiceWithoutSlicesHasNoEndpointsAndWarnsAboutItsNamedTargetPort) {
  K8sImport imp = run_ok(fixture("web-service.json"));
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_THAT(imp.services[0].endpoints, IsEmpty());
  EXPECT_EQ(imp.services[0].ports[0].target_port, 80);
  EXPECT_THAT(imp.warnings, has_warning("spec.ports[0].targetPort", "\"web\" is not resolved"));
  ASSERT_EQ(imp.target_unresolved.size(), 1u);
  ASSERT_EQ(imp.target_unresolved[0].size(), imp.services[0].ports.size());
  EXPECT_TRUE(imp.target_unresolved[0][0]) << "apply keeps the running resolution instead";
}

TEST(K8sService, HeadlessServiceHasNoClusterIpAndPublishesNotReadyAddresses) {
  K8sImport imp = run_ok(fixture("db-statefulset.json"));
  ASSERT_EQ(imp.services.size(), 1u);
  const ServiceConfig& s = imp.services[0];
  EXPECT_EQ(s.ns, "prod");
  EXPECT_TRUE(s.headless());
  EXPECT_FALSE(s.cluster_ip.has_value());
  EXPECT_TRUE(s.publish_not_ready_addresses);
  ASSERT_EQ(s.ports.size(), 1u);
  EXPECT_EQ(s.ports[0].target_port, 5432);
}

TEST(K8sService, HeadlessByClusterIpAloneWithoutClusterIps) {
  json doc = fixture("db-statefulset.json");
  doc["items"][0]["spec"].erase("clusterIPs");
  K8sImport imp = run_ok(doc);
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_TRUE(imp.services[0].headless());
}

TEST(K8sService, ExternalNameMapsToItsDnsName) {
  K8sImport imp = run_ok(fixture("external-name.json"));
  ASSERT_EQ(imp.services.size(), 1u);
  const ServiceConfig& s = imp.services[0];
  EXPECT_EQ(s.type, ServiceType::kExternalName);
  EXPECT_EQ(s.external_name, "db.legacy.example.com");
  EXPECT_FALSE(s.cluster_ip.has_value());
  EXPECT_THAT(s.ports, IsEmpty());
  EXPECT_THAT(s.endpoints, IsEmpty());
  EXPECT_THAT(imp.warnings, IsEmpty());
}

TEST(K8sService, ExternalNamePortsAreIgnoredWithAWarning) {
  json svc = fixture("external-name.json");
  svc["spec"]["ports"] = json::array({{{"name", "pg"}, {"port", 5432}, {"protocol", "TCP"},
                                       {"targetPort", 5432}}});
  K8sImport imp = run_ok(svc);
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_THAT(imp.services[0].ports, IsEmpty());
  EXPECT_THAT(imp.warnings, has_warning("spec.ports", "ExternalName"));
}

TEST(K8sService, NodePortIsForwardedOnItsClusterIpWithAWarning) {
  K8sImport imp = run_ok(fixture("all-namespaces.json"));
  const ServiceConfig* s = find(imp, "default", "shop-api");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->type, ServiceType::kClusterIp);
  EXPECT_EQ(*s->cluster_ip, ip("10.96.120.7"));
  EXPECT_THAT(imp.warnings, has_warning("Service default/shop-api: spec.type", "\"NodePort\""));
}

TEST(K8sService, LoadBalancerIsForwardedOnItsClusterIpWithAWarning) {
  json svc = fixture("web-service.json");
  svc["spec"]["type"] = "LoadBalancer";
  K8sImport imp = run_ok(svc);
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_EQ(*imp.services[0].cluster_ip, ip("10.96.45.10"));
  EXPECT_THAT(imp.warnings, has_warning("spec.type", "\"LoadBalancer\""));
}

TEST(K8sService, ExternalIpsAreIgnoredWithAWarning) {
  json svc = fixture("web-service.json");
  svc["spec"]["externalIPs"] = json::array({"198.51.100.7"});
  K8sImport imp = run_ok(svc);
  EXPECT_THAT(imp.warnings, has_warning("spec.externalIPs", "ignored"));
}

// ---- dual-stack (issue 11) ----

TEST(K8sDualStack, PreferDualStackServiceGetsBothClusterIpsAndBothSlices) {
  K8sImport imp = run_ok(fixture("all-namespaces.json"));
  const ServiceConfig* s = find(imp, "default", "shop-api");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(*s->cluster_ip, ip("10.96.120.7"));
  EXPECT_EQ(*s->secondary_cluster_ip, ip("fd00:10:96::7a"));
  ASSERT_EQ(s->endpoints.size(), 2u);
  EXPECT_EQ(s->endpoints[0].ip, ip("10.244.2.40"));
  EXPECT_EQ(s->endpoints[1].ip, ip("fd00:10:244:2::28"));
  EXPECT_EQ(s->endpoints[1].pod, "shop-api-5c9f8d7b6-kq2lm");
  EXPECT_THAT(imp.warnings, Each(Not(HasSubstr("IPv6"))));
}

TEST(K8sDualStack, Ipv6PrimaryRequireDualStackKeepsClusterIpsOrder) {
  json doc = fixture("dual-stack.json");
  K8sImport imp = run_ok(doc);
  const ServiceConfig* s = find(imp, "default", "api6");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(*s->cluster_ip, ip("fd00:10:96::2d"));
  EXPECT_EQ(*s->secondary_cluster_ip, ip("10.96.45.20"));
  ASSERT_EQ(s->endpoints.size(), 4u);
  EXPECT_EQ(s->endpoints[0].ip, ip("fd00:10:244:1::5"));
  EXPECT_EQ(s->ports[0].target_port, 8080);  // named targetPort resolved by the IPv6 slice
  EXPECT_FALSE(endpoint(*s, "fd00:10:244:2::9")->ready);
}

TEST(K8sDualStack, HeadlessSingleStackIpv6TakesItsSliceAndIgnoresTheOtherFamily) {
  K8sImport imp = run_ok(fixture("dual-stack.json"));
  const ServiceConfig* s = find(imp, "default", "cache");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->headless());
  ASSERT_EQ(s->endpoints.size(), 2u);
  EXPECT_EQ(s->endpoints[0].ip, ip("fd00:10:244:3::a"));
  EXPECT_EQ(s->endpoints[0].hostname, "cache-0");
  EXPECT_EQ(s->endpoints[0].subdomain, "cache");
  EXPECT_THAT(imp.warnings, has_warning("EndpointSlice default/cache-v4x", "no IPv4 cluster IP family"));
}

TEST(K8sDualStack, SliceOfAFamilyTheServiceLacksIsIgnoredWithAWarning) {
  json svc = fixture("web-service.json");
  svc["spec"]["clusterIP"] = "fd00:10:96::2d";
  svc["spec"]["clusterIPs"] = json::array({"fd00:10:96::2d"});
  svc["spec"]["ipFamilies"] = json::array({"IPv6"});
  json slices = fixture("web-endpointslices.json");  // addressType IPv4
  K8sImport imp = run_ok(list_of({svc, slices["items"][0], slices["items"][1]}));
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_EQ(*imp.services[0].cluster_ip, ip("fd00:10:96::2d"));
  EXPECT_TRUE(imp.services[0].endpoints.empty());
  EXPECT_THAT(imp.warnings, has_warning("addressType", "has no IPv4 cluster IP"));
}

// What apply keeps of a running service's endpoints when a Service comes
// without slices: those of the families the Service can have.
TEST(K8sDualStack, EndpointFamiliesAreTheClusterIpsOrTheHeadlessIpFamilies) {
  K8sImport imp = run_ok(list_of({fixture("dual-stack.json")["items"][0],     // api6
                                  fixture("dual-stack.json")["items"][3],     // cache
                                  fixture("web-service.json"), fixture("external-name.json")}));
  ASSERT_EQ(imp.services.size(), 4u);
  ASSERT_EQ(imp.services[1].name, "cache");
  EXPECT_THAT(imp.endpoint_families,
              ElementsAre(ElementsAre(dp::Family::kIpv6, dp::Family::kIpv4), ElementsAre(dp::Family::kIpv6),
                          ElementsAre(dp::Family::kIpv4), IsEmpty()));

  json headless = fixture("web-service.json");
  headless["spec"]["clusterIP"] = "None";
  headless["spec"].erase("clusterIPs");
  headless["spec"].erase("ipFamilies");
  EXPECT_THAT(run_ok(headless).endpoint_families,
              ElementsAre(ElementsAre(dp::Family::kIpv4, dp::Family::kIpv6)))
      << "a headless service that names no family takes both";
}

TEST(K8sDualStack, RefusesFamilyMismatchesAndMoreThanOneAddressPerFamily) {
  json svc = fixture("web-service.json");
  svc["spec"]["ipFamilyPolicy"] = "PreferDualStack";
  svc["spec"]["clusterIPs"] = json::array({"10.96.45.10", "10.96.45.11"});
  EXPECT_THAT(run_error(svc), HasSubstr("Service default/web: spec.clusterIPs[1]: \"10.96.45.11\" is "
                                        "IPv4 like spec.clusterIPs[0]; a Service has one cluster IP "
                                        "per family"));
  svc["spec"]["clusterIPs"] = json::array({"10.96.45.10", "fd00::1"});
  svc["spec"]["ipFamilies"] = json::array({"IPv4", "IPv4"});
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ipFamilies[1]: \"IPv4\" is listed twice"));
  svc["spec"]["ipFamilies"] = json::array({"IPv6", "IPv4"});
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ipFamilies[0]: \"IPv6\" but spec.clusterIPs[0] "
                                        "\"10.96.45.10\" is IPv4"));
  svc["spec"]["ipFamilies"] = json::array({"IPv4", "IPv6"});
  svc["spec"]["ipFamilyPolicy"] = "SingleStack";
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ipFamilyPolicy: \"SingleStack\" with 2 cluster IPs"));
  svc["spec"]["ipFamilyPolicy"] = "DualStack";
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ipFamilyPolicy: \"DualStack\" is not an IP family "
                                        "policy; allowed: SingleStack, PreferDualStack, RequireDualStack"));
  svc["spec"]["ipFamilyPolicy"] = "RequireDualStack";
  svc["spec"]["clusterIPs"] = json::array({"10.96.45.10"});
  svc["spec"]["ipFamilies"] = json::array({"IPv4"});
  EXPECT_THAT(run_error(svc), HasSubstr("spec.clusterIPs: one cluster IP with ipFamilyPolicy "
                                        "\"RequireDualStack\""));
}

TEST(K8sDualStack, RefusesAnAddressOfTheOtherFamilyInASlice) {
  json doc = web_list();
  doc["items"][1]["endpoints"][0]["addresses"] = json::array({"fd00:10:244::5"});
  EXPECT_THAT(run_error(doc), HasSubstr("\"fd00:10:244::5\" is not an IPv4 address (addressType "
                                        "IPv4) such as \"10.244.1.5\""));
  doc["items"][1]["addressType"] = "IPv6";
  doc["items"][1]["endpoints"][0]["addresses"] = json::array({"fe80::5"});
  EXPECT_THAT(run_error(doc), HasSubstr("\"fe80::5\" is link-local (fe80::/10); an endpoint needs a "
                                        "global or unique-local address"));
}

// ---- EndpointSlice mapping ----

TEST(K8sSlice, SlicesOfOneServiceAreMergedInOrder) {
  K8sImport imp = run_ok(web_list());
  ASSERT_EQ(imp.services.size(), 1u);
  const auto& eps = imp.services[0].endpoints;
  ASSERT_EQ(eps.size(), 4u);
  EXPECT_EQ(eps[0].ip, ip("10.244.1.5"));
  EXPECT_EQ(eps[1].ip, ip("10.244.2.7"));
  EXPECT_EQ(eps[2].ip, ip("10.244.3.9"));
  EXPECT_EQ(eps[3].ip, ip("10.244.3.10"));
  EXPECT_EQ(eps[0].pod, "web-6d8f7b9c4-2xkqz");
  EXPECT_EQ(eps[0].weight, 1u);
}

TEST(K8sSlice, SliceBeforeItsServiceInTheInputIsStillMerged) {
  json slices = fixture("web-endpointslices.json");
  K8sImport imp =
      run_ok(list_of({slices["items"][1], fixture("web-service.json"), slices["items"][0]}));
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_EQ(imp.services[0].endpoints.size(), 4u);
  EXPECT_EQ(imp.services[0].ports[0].target_port, 8080);
}

TEST(K8sSlice, ConditionsMapReadyServingTerminating) {
  K8sImport imp = run_ok(web_list());
  ASSERT_EQ(imp.services.size(), 1u);
  const EndpointConfig* ready = endpoint(imp.services[0], "10.244.1.5");
  const EndpointConfig* starting = endpoint(imp.services[0], "10.244.3.9");
  const EndpointConfig* draining = endpoint(imp.services[0], "10.244.3.10");
  ASSERT_TRUE(ready && starting && draining);
  EXPECT_TRUE(ready->ready && ready->serving && !ready->terminating);
  EXPECT_TRUE(!starting->ready && !starting->serving && !starting->terminating);
  EXPECT_TRUE(!draining->ready && draining->serving && draining->terminating);
}

TEST(K8sSlice, AbsentConditionsMeanReadyServingNotTerminating) {
  json doc = web_list();
  doc["items"][1]["endpoints"][0].erase("conditions");
  doc["items"][1]["endpoints"][1]["conditions"] = json::object();
  K8sImport imp = run_ok(doc);
  ASSERT_EQ(imp.services.size(), 1u);
  for (const char* a : {"10.244.1.5", "10.244.2.7"}) {
    const EndpointConfig* e = endpoint(imp.services[0], a);
    ASSERT_NE(e, nullptr);
    EXPECT_TRUE(e->ready) << a;
    EXPECT_TRUE(e->serving) << a;
    EXPECT_FALSE(e->terminating) << a;
  }
}

// EndpointConditions: "A nil value should be interpreted as 'true'", as
// kube-proxy reads it.  A mirrored Endpoints address that is not ready
// says ready=false alone: it keeps its flows (draining) and takes no new
// ones, and it is no fallback candidate (not terminating).
TEST(K8sSlice, AbsentServingIsTrue) {
  json doc = web_list();
  doc["items"][1]["endpoints"][0]["conditions"] = {{"ready", false}};
  doc["items"][1]["endpoints"][1]["conditions"] = {{"ready", false}, {"terminating", true}};
  K8sImport imp = run_ok(doc);
  const EndpointConfig* e = endpoint(imp.services[0], "10.244.1.5");
  ASSERT_NE(e, nullptr);
  EXPECT_FALSE(e->ready);
  EXPECT_TRUE(e->serving);
  EXPECT_FALSE(e->terminating);
  EXPECT_TRUE(e->draining());
  // Serving and terminating: a candidate when nothing else is ready.
  const EndpointConfig* t = endpoint(imp.services[0], "10.244.2.7");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->serving_terminating());
}

TEST(K8sSlice, PublishedTerminatingEndpointIsNotReadyButServing) {
  // publishNotReadyAddresses: Kubernetes says ready=true while terminating.
  K8sImport imp = run_ok(fixture("db-statefulset.json"));
  ASSERT_EQ(imp.services.size(), 1u);
  const EndpointConfig* e = endpoint(imp.services[0], "10.244.2.21");
  ASSERT_NE(e, nullptr);
  EXPECT_FALSE(e->ready);
  EXPECT_TRUE(e->serving);
  EXPECT_TRUE(e->terminating);
}

TEST(K8sSlice, PublishedUnreadyEndpointTakesItsReadinessFromServing) {
  K8sImport imp = run_ok(fixture("db-statefulset.json"));
  ASSERT_EQ(imp.services.size(), 1u);
  const EndpointConfig* e = endpoint(imp.services[0], "10.244.3.22");
  const EndpointConfig* ok = endpoint(imp.services[0], "10.244.1.20");
  ASSERT_TRUE(e && ok);
  EXPECT_FALSE(e->ready);
  EXPECT_FALSE(e->serving);
  EXPECT_TRUE(ok->ready);
}

TEST(K8sSlice, HeadlessEndpointWithHostnameGetsTheServiceAsSubdomain) {
  K8sImport imp = run_ok(fixture("db-statefulset.json"));
  ASSERT_EQ(imp.services.size(), 1u);
  const auto& eps = imp.services[0].endpoints;
  ASSERT_EQ(eps.size(), 3u);
  for (size_t i = 0; i < eps.size(); ++i) {
    EXPECT_EQ(eps[i].hostname, "db-" + std::to_string(i));
    EXPECT_EQ(eps[i].subdomain, "db");
    EXPECT_EQ(eps[i].pod, "db-" + std::to_string(i));
  }
}

TEST(K8sSlice, HeadlessEndpointWithoutHostnameHasNoSubdomain) {
  json doc = fixture("db-statefulset.json");
  doc["items"][1]["endpoints"][0].erase("hostname");
  K8sImport imp = run_ok(doc);
  const EndpointConfig* e = endpoint(imp.services[0], "10.244.1.20");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->hostname, "");
  EXPECT_EQ(e->subdomain, "");
}

TEST(K8sSlice, ClusterIpServiceEndpointKeepsHostnameWithoutSubdomain) {
  json doc = web_list();
  doc["items"][1]["endpoints"][0]["hostname"] = "web-a";
  K8sImport imp = run_ok(doc);
  const EndpointConfig* e = endpoint(imp.services[0], "10.244.1.5");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->hostname, "web-a");
  EXPECT_EQ(e->subdomain, "");
}

TEST(K8sSlice, EndpointWithoutPodTargetRefHasNoPod) {
  K8sImport imp = run_ok(fixture("all-namespaces.json"));
  const ServiceConfig* s = find(imp, "default", "kubernetes");
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->endpoints.size(), 1u);
  EXPECT_EQ(s->endpoints[0].ip, ip("172.18.0.2"));
  EXPECT_EQ(s->endpoints[0].pod, "");
  EXPECT_TRUE(s->endpoints[0].ready);

  json doc = web_list();
  doc["items"][1]["endpoints"][0]["targetRef"]["kind"] = "Node";
  K8sImport imp2 = run_ok(doc);
  EXPECT_EQ(endpoint(imp2.services[0], "10.244.1.5")->pod, "");
}

// "No semantics are defined for additional addresses beyond the first,
// and kube-proxy does not look at them" (EndpointSlice API reference).
TEST(K8sSlice, OnlyAnEndpointsFirstAddressIsUsed) {
  json doc = web_list();
  doc["items"][1]["endpoints"][0]["addresses"] = json::array({"10.244.1.5", "10.244.1.6"});
  K8sImport imp = run_ok(doc);
  EXPECT_NE(endpoint(imp.services[0], "10.244.1.5"), nullptr);
  EXPECT_EQ(endpoint(imp.services[0], "10.244.1.6"), nullptr);
  EXPECT_EQ(imp.services[0].endpoints.size(), 4u);
  EXPECT_THAT(imp.warnings, Contains(HasSubstr("endpoints[0].addresses[1]: ignored: only an endpoint's first "
                                               "address is forwarded to")));
}

// A nil port means "all ports" (EndpointSlice API reference), which names
// no target port: kube-proxy skips it, and so does podgate, with a warning,
// instead of refusing everything the apply carries.
TEST(K8sSlice, APortWithoutANumberIsSkippedWithAWarning) {
  json doc = web_list();
  doc["items"][1]["ports"].push_back({{"name", "all"}, {"protocol", "TCP"}});
  K8sImport imp = run_ok(doc);
  EXPECT_EQ(imp.services[0].ports[0].target_port, 8080);
  EXPECT_THAT(imp.warnings, Contains(HasSubstr("skipped: a port without a number")));
}

TEST(K8sSlice, EmptySliceAddsNothingAndNeedsNoPorts) {
  // The controller keeps `"endpoints": null, "ports": null` for no Pods.
  json doc = web_list();
  doc["items"][2]["endpoints"] = nullptr;
  doc["items"][2]["ports"] = nullptr;
  K8sImport imp = run_ok(doc);
  EXPECT_EQ(imp.services[0].endpoints.size(), 2u);
  EXPECT_EQ(imp.services[0].ports[0].target_port, 8080);
}

TEST(K8sSlice, DuplicateEndpointAcrossSlicesIsKeptOnceWithAWarning) {
  json doc = web_list();
  doc["items"][2]["endpoints"][0]["addresses"] = json::array({"10.244.1.5"});
  K8sImport imp = run_ok(doc);
  EXPECT_EQ(imp.services[0].endpoints.size(), 3u);
  EXPECT_TRUE(endpoint(imp.services[0], "10.244.1.5")->ready);  // the first one
  EXPECT_THAT(imp.warnings, has_warning("web-q9r4s", "10.244.1.5"));
}

TEST(K8sSlice, DuplicateEndpointOfABigServiceIsKeptOnceWithAWarning) {
  // Past 32 endpoints a duplicate is found by a hash set, not by a scan.
  json doc = web_list();
  json one = doc["items"][1]["endpoints"][0];
  json many = json::array();
  for (int i = 1; i <= 40; ++i) {
    one["addresses"] = json::array({"10.244.4." + std::to_string(i)});
    one["targetRef"]["name"] = "web-" + std::to_string(i);
    many.push_back(one);
  }
  many.push_back(many[5]);  // within the slice too
  doc["items"][1]["endpoints"] = many;
  const size_t second = doc["items"][2]["endpoints"].size();
  doc["items"][2]["endpoints"][0]["addresses"] = json::array({"10.244.4.40"});
  K8sImport imp = run_ok(doc);
  EXPECT_EQ(imp.services[0].endpoints.size(), 40 + second - 1);
  EXPECT_EQ(imp.services[0].endpoints[5].pod, "web-6");  // the first one
  EXPECT_THAT(imp.warnings, has_warning("10.244.4.6", "listed more than once"));
  EXPECT_THAT(imp.warnings, has_warning("web-q9r4s", "10.244.4.40"));
}

TEST(K8sSlice, FqdnSlicesAreSkippedWithAWarning) {
  json doc = web_list();
  doc["items"][2]["addressType"] = "FQDN";
  doc["items"][2]["endpoints"][0]["addresses"] = json::array({"web.example.com"});
  K8sImport imp2 = run_ok(doc);
  EXPECT_EQ(imp2.services[0].endpoints.size(), 2u);
  EXPECT_THAT(imp2.warnings, has_warning("web-q9r4s", "\"FQDN\""));
}

TEST(K8sSlice, SliceOfAServiceNotInTheInputIsSkippedWithAWarning) {
  K8sImport imp = run_ok(fixture("web-endpointslices.json"));
  EXPECT_THAT(imp.services, IsEmpty());
  EXPECT_THAT(imp.warnings, has_warning("web-x7k2p", "default/web is neither in the input nor running"));
  EXPECT_THAT(imp.warnings, has_warning("web-q9r4s", "default/web is neither in the input nor running"));
}

// podgatectl apply -f of slices alone (the Service was applied earlier):
// the slices replace the running service's endpoints, its ports stay.
TEST(K8sSlice, SlicesAloneUpdateTheRunningServiceOfTheirName) {
  K8sImport with_service = run_ok(web_list());
  ASSERT_EQ(with_service.services.size(), 1u);
  EXPECT_THAT(with_service.target_unresolved[0], Each(false)) << "resolved by the slices";
  EXPECT_EQ(with_service.service_objects, 1u);
  EXPECT_THAT(with_service.families_given, ElementsAre(ElementsAre(dp::Family::kIpv4)));
  ServiceConfig running = with_service.services[0];
  running.endpoints.resize(1);

  auto imp = import_k8s_objects(fixture("web-endpointslices.json").dump(), "in.json", {running});
  ASSERT_TRUE(imp) << imp.error().message;
  EXPECT_EQ(imp->service_objects, 0u);
  ASSERT_EQ(imp->services.size(), 1u);
  EXPECT_THAT(imp->families_given, ElementsAre(ElementsAre(dp::Family::kIpv4)));
  const ServiceConfig& s = imp->services[0];
  EXPECT_EQ(s.ports, running.ports);
  EXPECT_EQ(s.cluster_ip, running.cluster_ip);
  EXPECT_EQ(s.endpoints, with_service.services[0].endpoints) << "the slices' endpoints, all of them";
  EXPECT_THAT(imp->warnings, IsEmpty());
}

// Service default/web alone: port "http" 80 targets the container port "web".
json named_port_service() {
  return json::parse(R"({"apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"clusterIP": "10.96.0.20",
             "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}})");
}

// An EndpointSlice of default/web: one ready Pod at 172.17.0.10, "http" -> port.
json web_slice(int port) {
  json slice = json::parse(R"({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "web-abc12", "namespace": "default",
                 "labels": {"kubernetes.io/service-name": "web"}},
    "addressType": "IPv4",
    "endpoints": [{"addresses": ["172.17.0.10"], "conditions": {"ready": true}}]})");
  slice["ports"] = json::array({{{"name", "http"}, {"port", port}}});
  return slice;
}

// The Service applied alone, then its slice alone: the slice resolves the
// named targetPort the Service alone could not.
TEST(K8sSlice, SliceAloneResolvesTheNamedTargetPortOfAServiceAppliedAlone) {
  K8sImport service = run_ok(named_port_service());
  ASSERT_EQ(service.services.size(), 1u);
  ASSERT_EQ(service.services[0].ports[0].target_port, 80) << "the stand-in, with a warning";

  auto imp = import_k8s_objects(web_slice(8080).dump(), "in.json", {service.services[0]});
  ASSERT_TRUE(imp) << imp.error().message;
  ASSERT_EQ(imp->services.size(), 1u);
  EXPECT_EQ(imp->services[0].ports[0].target_port, 8080);
  ASSERT_EQ(imp->services[0].endpoints.size(), 1u);
  EXPECT_EQ(imp->services[0].endpoints[0].ip, ip("172.17.0.10"));
  EXPECT_THAT(imp->warnings, IsEmpty());
}

// A rollout that renumbers the container port changes only the slices.
TEST(K8sSlice, SlicesAloneAfterARolloutTakeTheNewTargetPort) {
  const ServiceConfig running = run_ok(web_list()).services[0];  // http -> 8080
  json slices = fixture("web-endpointslices.json");
  for (json& slice : slices["items"]) slice["ports"][0]["port"] = 8081;

  auto imp = import_k8s_objects(slices.dump(), "in.json", {running});
  ASSERT_TRUE(imp) << imp.error().message;
  ASSERT_EQ(imp->services.size(), 1u);
  EXPECT_EQ(imp->services[0].ports[0].target_port, 8081);
  EXPECT_EQ(imp->services[0].ports[1].target_port, 9090);
}

TEST(K8sSlice, PortASliceAloneDoesNotNameKeepsItsRunningTargetPort) {
  ServiceConfig running = run_ok(web_list()).services[0];
  running.ports[1].target_port = 9191;  // "metrics", which web_slice() does not name

  auto imp = import_k8s_objects(web_slice(8081).dump(), "in.json", {running});
  ASSERT_TRUE(imp) << imp.error().message;
  ASSERT_EQ(imp->services.size(), 1u);
  EXPECT_EQ(imp->services[0].ports[0].target_port, 8081);
  EXPECT_EQ(imp->services[0].ports[1].target_port, 9191);
  EXPECT_THAT(imp->warnings, IsEmpty());
}

// A config-file service has numbers, not targetPort names; kube-proxy
// forwards to the slice's number, and so does podgate.
TEST(K8sSlice, SliceAloneRenumbersAServiceOfTheConfigFile) {
  auto running = parse_services(R"([[services]]
namespace = "default"
name = "web"
cluster_ip = "10.96.0.20"
ports = [{ name = "http", port = 80, target_port = 8080 }]
)", "svc.toml");
  ASSERT_TRUE(running) << running.error().message;

  auto imp = import_k8s_objects(web_slice(9090).dump(), "in.json", {(*running)[0]});
  ASSERT_TRUE(imp) << imp.error().message;
  ASSERT_EQ(imp->services.size(), 1u);
  EXPECT_EQ(imp->services[0].ports[0].target_port, 9090);
}

// The same rule as for a slice sent with its Service: kube-proxy ignores a
// slice of a family the service has no cluster IP for.
TEST(K8sSlice, SliceAloneOfAFamilyTheRunningServiceLacksIsSkippedWithAWarning) {
  auto running = parse_services(R"([[services]]
namespace = "default"
name = "web"
cluster_ip = "10.96.0.30"
ports = [{ name = "http", port = 80, target_port = 8080 }]
endpoints = [{ ip = "172.17.0.5" }]
)", "svc.toml");
  ASSERT_TRUE(running) << running.error().message;
  json slice = web_slice(8080);
  slice["metadata"]["name"] = "web-v6";
  slice["addressType"] = "IPv6";
  slice["endpoints"][0]["addresses"] = json::array({"fd00:10:244::5"});

  auto imp = import_k8s_objects(slice.dump(), "in.json", {(*running)[0]});
  ASSERT_TRUE(imp) << imp.error().message;
  EXPECT_THAT(imp->warnings, has_warning("EndpointSlice default/web-v6", "has no IPv6 cluster IP"));
  ASSERT_EQ(imp->services.size(), 1u);
  EXPECT_THAT(imp->services[0].endpoints, IsEmpty());
  EXPECT_THAT(imp->families_given, ElementsAre(IsEmpty())) << "apply keeps the running endpoints";
}

TEST(K8sService, AServiceWithoutSlicesInTheInputSaysItsEndpointsWereNotGiven) {
  K8sImport imp = run_ok(fixture("web-service.json"));
  EXPECT_EQ(imp.service_objects, 1u);
  EXPECT_THAT(imp.families_given, ElementsAre(IsEmpty()));
}

TEST(K8sSlice, SliceIsMatchedByItsOwnNamespace) {
  json doc = web_list();
  doc["items"][2]["metadata"]["namespace"] = "staging";
  K8sImport imp = run_ok(doc);
  EXPECT_EQ(imp.services[0].endpoints.size(), 2u);
  EXPECT_THAT(imp.warnings, has_warning("staging/web-q9r4s", "staging/web is neither in the input nor running"));
}

TEST(K8sSlice, SliceWithoutServiceNameLabelIsSkippedWithAWarning) {
  json doc = web_list();
  doc["items"][2]["metadata"]["labels"].erase("kubernetes.io/service-name");
  K8sImport imp = run_ok(doc);
  EXPECT_EQ(imp.services[0].endpoints.size(), 2u);
  EXPECT_THAT(imp.warnings, has_warning("web-q9r4s", "kubernetes.io/service-name"));
}

TEST(K8sSlice, SliceOfAnExternalNameServiceIsSkippedWithAWarning) {
  json slice = fixture("web-endpointslices.json")["items"][0];
  slice["metadata"]["labels"]["kubernetes.io/service-name"] = "legacy-db";
  K8sImport imp = run_ok(list_of({fixture("external-name.json"), slice}));
  ASSERT_EQ(imp.services.size(), 1u);
  EXPECT_THAT(imp.services[0].endpoints, IsEmpty());
  EXPECT_THAT(imp.warnings, has_warning("web-x7k2p", "ExternalName"));
}

// ---- Lists ----

TEST(K8sList, AllNamespacesListMapsEveryService) {
  K8sImport imp = run_ok(fixture("all-namespaces.json"));
  ASSERT_EQ(imp.services.size(), 5u);
  EXPECT_EQ(imp.services[0].name, "kubernetes");
  EXPECT_EQ(imp.services[1].name, "legacy-db");
  EXPECT_EQ(imp.services[1].type, ServiceType::kExternalName);
  EXPECT_EQ(imp.services[4].ns, "prod");
  EXPECT_TRUE(imp.services[4].headless());
  const ServiceConfig* dns = find(imp, "kube-system", "kube-dns");
  ASSERT_NE(dns, nullptr);
  EXPECT_EQ(*dns->cluster_ip, ip("10.96.0.10"));
  EXPECT_EQ(dns->endpoints.size(), 2u);
  EXPECT_EQ(dns->ports[2].target_port, 9153);
  EXPECT_EQ(find(imp, "prod", "db")->endpoints.size(), 3u);
  EXPECT_EQ(imp.warnings.size(), 1u);  // NodePort
}

TEST(K8sList, TypedListKindsAreAccepted) {
  json doc = list_of({fixture("web-service.json")});
  doc["kind"] = "ServiceList";
  EXPECT_EQ(run_ok(doc).services.size(), 1u);
  json slices = fixture("web-endpointslices.json");
  slices["kind"] = "EndpointSliceList";
  EXPECT_TRUE(run(slices).ok());
}

// The API server's own lists (kubectl get --raw /api/v1/services) leave
// kind and apiVersion off their items: the list's kind names them.
TEST(K8sList, TypedListItemsMayLeaveTheirKindToTheList) {
  json services = list_of({fixture("web-service.json")});
  services["kind"] = "ServiceList";
  services["apiVersion"] = "v1";
  services["items"][0].erase("kind");
  services["items"][0].erase("apiVersion");
  EXPECT_EQ(run_ok(services).services.size(), 1u);

  json slices = fixture("web-endpointslices.json");
  slices["kind"] = "EndpointSliceList";
  slices["apiVersion"] = "discovery.k8s.io/v1";
  for (json& item : slices["items"]) {
    item.erase("kind");
    item.erase("apiVersion");
  }
  EXPECT_TRUE(run(slices).ok());

  // In kubectl's untyped `List` the items still say what they are.
  services["kind"] = "List";
  auto r = run(services);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("missing required key \"kind\""));
}

TEST(K8sList, EmptyListImportsNothing) {
  K8sImport imp = run_ok(list_of({}));
  EXPECT_THAT(imp.services, IsEmpty());
  EXPECT_THAT(imp.warnings, IsEmpty());
}

TEST(K8sList, FixturesParseAsTextExactlyAsKubectlPrintsThem) {
  // Byte-for-byte file contents, not re-serialised JSON.
  for (const char* f : {"web-service.json", "web-endpointslices.json", "db-statefulset.json",
                        "external-name.json", "all-namespaces.json"}) {
    auto r = import_k8s_objects(read_fixture(f), f);
    EXPECT_TRUE(r.ok()) << f << ": " << (r.ok() ? "" : r.error().message);
  }
}

// ---- errors ----

TEST(K8sError, InvalidJsonNamesSourceLineAndColumn) {
  auto r = import_k8s_objects("{\n  \"kind\": \"List\",\n  \"items\": [,]\n}", "svc.json");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("svc.json: "));
  EXPECT_THAT(r.error().message, HasSubstr("line 3"));
}

TEST(K8sError, TopLevelMustBeAnObject) {
  EXPECT_THAT(run_error(json::array()), HasSubstr("expected a Kubernetes object or List, found an array"));
}

TEST(K8sError, OtherKindIsAnErrorNamingKindAndName) {
  json deploy = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"},
                 {"metadata", {{"name", "web"}, {"namespace", "default"}}}, {"spec", json::object()}};
  std::string msg = run_error(list_of({fixture("web-service.json"), deploy}));
  EXPECT_THAT(msg, HasSubstr("items[1] Deployment default/web: kind: \"Deployment\" is not supported"));
}

// kind and metadata.name are input: the object's name in a message is
// written escaped when it holds a control byte (issue 15).
TEST(K8sError, KindAndNameWithControlBytesAreWrittenEscaped) {
  json obj = {{"apiVersion", "v1"}, {"kind", "\x1b[2J"},
              {"metadata", {{"name", "web\x1b]0;x\x07"}, {"namespace", "default"}}}};
  const std::string msg = run_error(obj);
  EXPECT_EQ(msg.find('\x1b'), std::string::npos) << msg;
  EXPECT_EQ(msg, "in.json: \"\\x1b[2J\" \"default/web\\x1b]0;x\\x07\": kind: \"\\x1b[2J\" is not "
                 "supported; allowed: Service, EndpointSlice, or a List of them");

  json slice = web_slice(8080);
  slice["metadata"]["labels"]["kubernetes.io/service-name"] = "web\x1b[2J";
  K8sImport imp = run_ok(slice);
  ASSERT_EQ(imp.warnings.size(), 1u);
  EXPECT_EQ(imp.warnings[0].find('\x1b'), std::string::npos) << imp.warnings[0];
  EXPECT_THAT(imp.warnings[0], HasSubstr("its service \"default/web\\x1b[2J\" is neither"));
}

TEST(K8sError, V1EndpointsPointToEndpointSlices) {
  json eps = {{"apiVersion", "v1"}, {"kind", "Endpoints"},
              {"metadata", {{"name", "web"}, {"namespace", "default"}}}};
  EXPECT_THAT(run_error(eps), HasSubstr("Endpoints default/web: kind: v1 Endpoints are not supported"));
}

TEST(K8sError, WrongApiVersionIsAnError) {
  json doc = web_list();
  doc["items"][1]["apiVersion"] = "discovery.k8s.io/v1beta1";
  EXPECT_THAT(run_error(doc), HasSubstr("\"discovery.k8s.io/v1beta1\" is not supported"));
  json svc = fixture("web-service.json");
  svc["apiVersion"] = "v2";
  EXPECT_THAT(run_error(svc), HasSubstr("\"v2\" is not supported for a Service"));
}

TEST(K8sError, MissingNameIsAnError) {
  json svc = fixture("web-service.json");
  svc["metadata"].erase("name");
  EXPECT_THAT(run_error(svc), HasSubstr("metadata: missing required key \"name\""));
}

TEST(K8sError, BadClusterIpIsAnError) {
  json svc = fixture("web-service.json");
  svc["spec"]["clusterIPs"] = json::array({"10.96.45"});
  EXPECT_THAT(run_error(svc), HasSubstr("spec.clusterIPs[0]: \"10.96.45\" is not an IPv4 or IPv6 address"));
  svc["spec"]["clusterIPs"] = json::array({"127.0.0.1"});
  EXPECT_THAT(run_error(svc), HasSubstr("not a unicast address"));
  svc["spec"].erase("clusterIPs");
  svc["spec"].erase("clusterIP");
  EXPECT_THAT(run_error(svc), HasSubstr("spec: missing required key \"clusterIP\""));
}

TEST(K8sError, SctpIsNotSupported) {
  json svc = fixture("web-service.json");
  svc["spec"]["ports"][1]["protocol"] = "SCTP";
  EXPECT_THAT(run_error(svc),
              HasSubstr("spec.ports[1].protocol: \"SCTP\" is not supported; allowed: TCP, UDP"));
}

TEST(K8sError, NamedTargetPortMissingFromASliceNamesServiceAndPort) {
  json doc = web_list();
  doc["items"][2]["ports"][0]["name"] = "https";
  std::string msg = run_error(doc);
  EXPECT_THAT(msg, HasSubstr("EndpointSlice default/web-q9r4s: ports: no port named \"http\"/TCP"));
  EXPECT_THAT(msg, HasSubstr("service default/web port \"http\" (targetPort \"web\")"));
}

TEST(K8sError, NamedTargetPortResolvingDifferentlyAcrossSlicesIsAnError) {
  json doc = web_list();
  doc["items"][2]["ports"][0]["port"] = 8081;
  std::string msg = run_error(doc);
  EXPECT_THAT(msg, HasSubstr("resolves to 8081 here but to 8080 in EndpointSlice default/web-x7k2p"));
}

TEST(K8sError, SlicesAloneResolvingAPortDifferentlyAreRefused) {
  const ServiceConfig running = run_ok(web_list()).services[0];  // http -> 8080
  json slices = fixture("web-endpointslices.json");
  slices["items"][0]["ports"][0]["port"] = 8081;
  slices["items"][1]["ports"][0]["port"] = 8082;

  auto imp = import_k8s_objects(slices.dump(), "in.json", {running});
  ASSERT_FALSE(imp) << "nothing is applied";
  EXPECT_EQ(imp.error().code, ErrorCode::kInvalidConfig);
  EXPECT_THAT(imp.error().message,
              HasSubstr("EndpointSlice default/web-q9r4s: ports: service default/web port \"http\" "
                        "resolves to 8082 here but to 8081 in EndpointSlice default/web-x7k2p"));
}

TEST(K8sError, PortOutOfRangeIsAnError) {
  json svc = fixture("web-service.json");
  svc["spec"]["ports"][1]["port"] = 70000;
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ports[1].port: 70000 is not in 1..65535"));
  svc["spec"]["ports"][1]["port"] = 9090;
  svc["spec"]["ports"][1]["targetPort"] = 0;
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ports[1].targetPort: 0 is not in 1..65535"));
}

TEST(K8sError, WrongJsonTypeIsAnError) {
  json svc = fixture("web-service.json");
  svc["spec"]["ports"][1]["port"] = "9090";
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ports[1].port: expected an integer, found a string"));
  svc["spec"]["ports"][1]["port"] = 90.5;
  EXPECT_THAT(run_error(svc), HasSubstr("expected an integer, found a number with a fraction"));
}

TEST(K8sError, SlicePortOutOfRangeIsAnError) {
  json doc = web_list();
  doc["items"][1]["ports"][1]["port"] = 0;
  EXPECT_THAT(run_error(doc), HasSubstr("web-x7k2p: ports[1].port: 0 is not in 1..65535"));
}

TEST(K8sError, SeveralPortsNeedNamesAndDistinctNamesAndNumbers) {
  json svc = fixture("web-service.json");
  svc["spec"]["ports"][1].erase("name");
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ports[1]: missing required key \"name\""));
  svc["spec"]["ports"][1]["name"] = "http";
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ports[1].name: \"http\" is already the name of "
                                        "spec.ports[0]"));
  svc["spec"]["ports"][1]["name"] = "alt";
  svc["spec"]["ports"][1]["port"] = 80;
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ports[1].port: 80/TCP is listed twice"));
}

TEST(K8sError, BadNamesAreErrors) {
  json svc = fixture("web-service.json");
  svc["spec"]["ports"][1]["name"] = "Metrics";
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ports[1].name: \"Metrics\" is not a DNS-1123 label"));
  svc = fixture("web-service.json");
  svc["metadata"]["name"] = "1web";
  EXPECT_THAT(run_error(svc), HasSubstr("metadata.name: \"1web\" is not a DNS-1035 label"));
  svc["metadata"]["name"] = "web";
  svc["metadata"]["namespace"] = "Default";
  EXPECT_THAT(run_error(svc), HasSubstr("metadata.namespace: \"Default\" is not a DNS-1123 label"));
}

TEST(K8sError, BadHostnameIsAnError) {
  json doc = fixture("db-statefulset.json");
  doc["items"][1]["endpoints"][0]["hostname"] = "db_0";
  EXPECT_THAT(run_error(doc), HasSubstr("endpoint 10.244.1.20: hostname \"db_0\" is not a DNS-1123 label"));
}

TEST(K8sError, ClusterIpServiceWithoutPortsIsAnError) {
  json svc = fixture("web-service.json");
  svc["spec"]["ports"] = json::array();
  EXPECT_THAT(run_error(svc), HasSubstr("spec.ports: empty"));
}

TEST(K8sError, AffinityErrors) {
  json svc = fixture("web-service.json");
  svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] = 86401;
  EXPECT_THAT(run_error(svc), HasSubstr("timeoutSeconds: 86401 is not in 1..86400"));
  svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] = 0;
  EXPECT_THAT(run_error(svc), HasSubstr("timeoutSeconds: 0 is not in 1..86400"));
  svc["spec"]["sessionAffinity"] = "None";
  EXPECT_THAT(run_error(svc), HasSubstr("spec.sessionAffinityConfig: only allowed with "
                                        "sessionAffinity \"ClientIP\""));
  svc["spec"]["sessionAffinity"] = "Cookie";
  EXPECT_THAT(run_error(svc), HasSubstr("\"Cookie\" is not allowed; allowed: None, ClientIP"));
}

TEST(K8sError, UnknownServiceTypeIsAnError) {
  json svc = fixture("web-service.json");
  svc["spec"]["type"] = "Bogus";
  EXPECT_THAT(run_error(svc), HasSubstr("spec.type: \"Bogus\" is not supported"));
}

TEST(K8sError, ExternalNameNeedsAValidDnsName) {
  json svc = fixture("external-name.json");
  svc["spec"]["externalName"] = "bad_name.example.com";
  EXPECT_THAT(run_error(svc), HasSubstr("spec.externalName: \"bad_name.example.com\" is not a DNS name"));
  svc["spec"].erase("externalName");
  EXPECT_THAT(run_error(svc), HasSubstr("spec: missing required key \"externalName\""));
}

TEST(K8sError, NonIpv4AddressInAnIpv4SliceIsAnError) {
  json doc = web_list();
  doc["items"][1]["endpoints"][1]["addresses"] = json::array({"fd00:10:244::7"});
  EXPECT_THAT(run_error(doc),
              HasSubstr("web-x7k2p: endpoints[1].addresses[0]: \"fd00:10:244::7\" is not an IPv4"));
}

TEST(K8sError, UnknownAddressTypeIsAnError) {
  json doc = web_list();
  doc["items"][1]["addressType"] = "IPX";
  EXPECT_THAT(run_error(doc), HasSubstr("addressType: \"IPX\" is not an address type"));
}

TEST(K8sError, DuplicateServiceIsAnError) {
  json svc = fixture("web-service.json");
  EXPECT_THAT(run_error(list_of({svc, svc})),
              HasSubstr("items[1] Service default/web: service default/web is already defined by "
                        "items[0] Service default/web"));
}

TEST(K8sError, DuplicateEndpointSliceIsAnError) {
  json doc = web_list();
  doc["items"].push_back(doc["items"][1]);
  const std::string name = doc["items"][1]["metadata"]["name"];
  EXPECT_THAT(run_error(doc), HasSubstr("EndpointSlice default/" + name + " is already defined by items[1]"));
}

TEST(K8sError, SameClusterIpPortInTwoServicesIsAnError) {
  json a = fixture("web-service.json");
  json b = a;
  b["metadata"]["name"] = "web2";
  EXPECT_THAT(run_error(list_of({a, b})),
              HasSubstr("Service default/web2: spec.ports[0].port: 10.96.45.10:80/TCP is already "
                        "served by service default/web"));
}

TEST(K8sError, EveryErrorIsReportedOnItsOwnLine) {
  json svc = fixture("web-service.json");
  svc["spec"]["ports"][0]["protocol"] = "SCTP";
  svc["spec"]["ports"][1]["port"] = 0;
  std::string msg = run_error(svc);
  EXPECT_THAT(msg, HasSubstr("spec.ports[0].protocol"));
  EXPECT_THAT(msg, HasSubstr("\nin.json: Service default/web: spec.ports[1].port"));
}

}  // namespace
}  // namespace podgate::ctl
