// The control socket's views and changes with IPv6 and dual-stack services
// (issue 11): `endpoint set` takes an IPv6 address, `services` and `config
// dump` show both cluster IPs, address6 and the IPv6 routes and neighbours.
// The change commands run on a Registry alone, as tests/fuzz/control_fuzz.cpp
// does: validated and committed, nothing published.
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/admin/command_views.hpp"
#include "control/admin/control_changes.hpp"
#include "control/admin/control_commands.hpp"
#include "control/admin/control_socket.hpp"
#include "control/loop/event_loop.hpp"
#include "control/publish/registry.hpp"
#include "tests/unit/config_fixture.hpp"

namespace podgate::ctl {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string kConfig = std::string(kDualStackPortsToml) + R"(
[[routes]]
prefix = "::/0"
via = "2001:db8:1::fe"
[[neighbors]]
ip = "2001:db8:1::fe"
mac = "02:00:00:00:00:fe"
[[services]]
namespace = "default"
name = "web"
cluster_ips = ["10.96.0.20", "fd00:10:96::20"]
ports = [{ name = "http", port = 80, target_port = 8080 }]
endpoints = [{ ip = "172.17.0.7" }, { ip = "fd00:10:244::7", pod = "web-0" }]
)";

Config dual_stack() {
  auto c = parse_config(kConfig, "admin.toml");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : Config{};
}

class RegistryTarget final : public ChangeTarget {
 public:
  explicit RegistryTarget(const Config& c) : registry_(std::make_unique<Registry>(c)) {}
  const Config& config() const override { return registry_->desired(); }
  Result<void> change(const Edit& edit) override {
    auto next = registry_->stage_edit(edit);
    if (!next) return std::move(next).error();
    if (next->changed) registry_->commit(std::move(*next));
    return {};
  }
  uint64_t generation() const override { return registry_->version(); }

 private:
  std::unique_ptr<Registry> registry_;
};

class AdminDualStack : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/podgate-admin-v6-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    loop_ = std::move(*loop);
    auto socket = ControlSocket::open(*loop_, dir_ + "/ctl.sock");
    ASSERT_TRUE(socket) << socket.error().message;
    socket_ = std::move(*socket);
    target_ = std::make_shared<RegistryTarget>(dual_stack());
    register_change_commands(*socket_, target_);
  }
  void TearDown() override {
    socket_.reset();
    ::rmdir(dir_.c_str());
  }
  json ask(const json& request) { return json::parse(socket_->handle_line(request.dump())); }
  const EndpointConfig& endpoint(size_t i) { return target_->config().services[0].endpoints[i]; }

  std::string dir_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<ControlSocket> socket_;
  std::shared_ptr<RegistryTarget> target_;
};

TEST_F(AdminDualStack, EndpointSetTakesAnIpv6Address) {
  const json r = ask({{"command", "endpoint"}, {"action", "set"}, {"name", "default/web"},
                      {"ip", "FD00:10:244:0::7"}, {"ready", false}, {"weight", 3}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_FALSE(endpoint(1).ready);
  EXPECT_EQ(endpoint(1).weight, 3u);
  EXPECT_TRUE(endpoint(0).ready) << "the IPv4 endpoint is another one";
}

TEST_F(AdminDualStack, EndpointSetRefusesAnUnknownOrMalformedAddress) {
  json r = ask({{"command", "endpoint"}, {"action", "set"}, {"name", "default/web"},
                {"ip", "fd00:10:244::99"}, {"ready", false}});
  ASSERT_FALSE(r["ok"].get<bool>());
  EXPECT_EQ(r["error"]["message"], "default/web has no endpoint fd00:10:244::99");
  r = ask({{"command", "endpoint"}, {"action", "set"}, {"name", "default/web"}, {"ip", "fd00::1::2"},
           {"ready", false}});
  ASSERT_FALSE(r["ok"].get<bool>());
  EXPECT_THAT(r["error"]["message"].get<std::string>(),
              HasSubstr("is not an IPv4 or IPv6 address such as 172.17.0.10 or fd00:10:244::10"));
}

// A Kubernetes Service applied alone keeps the running endpoints it can
// still have: none as an ExternalName service (Kubernetes deletes its
// slices), those of its one family as a single-stack service.
TEST_F(AdminDualStack, ServiceAloneTurnedExternalNameDropsTheEndpoints) {
  const json r = ask({{"command", "apply"}, {"text", R"({"apiVersion": "v1", "kind": "Service",
      "metadata": {"name": "web", "namespace": "default"},
      "spec": {"type": "ExternalName", "externalName": "web.example.com"}})"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  EXPECT_EQ(r["updated"], json::array({"default/web"}));
  const ServiceConfig& web = target_->config().services[0];
  EXPECT_EQ(web.type, ServiceType::kExternalName);
  EXPECT_TRUE(web.endpoints.empty());
}

TEST_F(AdminDualStack, ServiceAloneTurnedSingleStackKeepsTheEndpointsOfItsFamily) {
  const json r = ask({{"command", "apply"}, {"text", R"({"apiVersion": "v1", "kind": "Service",
      "metadata": {"name": "web", "namespace": "default"},
      "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  const ServiceConfig& web = target_->config().services[0];
  EXPECT_FALSE(web.secondary_cluster_ip);
  ASSERT_EQ(web.endpoints.size(), 1u);
  EXPECT_EQ(web.endpoints[0].ip, *dp::parse_ip("172.17.0.7"));
}

// An EndpointSlice alone replaces the running endpoints of its own family.
TEST_F(AdminDualStack, Ipv4SliceAloneKeepsTheIpv6Endpoints) {
  const json r = ask({{"command", "apply"}, {"text", R"({"apiVersion": "discovery.k8s.io/v1",
      "kind": "EndpointSlice", "addressType": "IPv4",
      "metadata": {"name": "web-abc12", "namespace": "default",
                   "labels": {"kubernetes.io/service-name": "web"}},
      "ports": [{"name": "http", "port": 8080}],
      "endpoints": [{"addresses": ["172.17.0.8"]}]})"}});
  ASSERT_TRUE(r["ok"].get<bool>()) << r.dump();
  const ServiceConfig& web = target_->config().services[0];
  ASSERT_EQ(web.endpoints.size(), 2u);
  EXPECT_EQ(web.endpoints[0].ip, *dp::parse_ip("172.17.0.8"));
  EXPECT_EQ(web.endpoints[1].ip, *dp::parse_ip("fd00:10:244::7"));
  EXPECT_EQ(web.endpoints[1].pod, "web-0");
}

TEST(AdminViews, ServicesShowBothClusterIpsAndIpv6Endpoints) {
  const Config c = dual_stack();
  const json s = service_summary(c.services[0]);
  EXPECT_EQ(s["cluster_ip"], "10.96.0.20");
  EXPECT_EQ(s["cluster_ips"], json::array({"10.96.0.20", "fd00:10:96::20"}));
  const json e = endpoint_json(c.services[0].endpoints[1], new_flow_rule(c.services[0]));
  EXPECT_EQ(e["ip"], "fd00:10:244::7");
  EXPECT_EQ(ipv4_cluster_ip(c.services[0]), dp::parse_ip4("10.96.0.20"));
}

// The terminating fallback (KEP-1669) is per family: a terminating IPv6
// endpoint takes new flows while the IPv4 one is ready, and shows so.
TEST(AdminViews, AnEndpointTakingNewFlowsOnlyBecauseNoneIsReadyShowsAsFallback) {
  Config c = dual_stack();
  ServiceConfig web = c.services[0];
  web.endpoints[1].ready = false;
  web.endpoints[1].terminating = true;
  const NewFlowRule rule = new_flow_rule(web);
  EXPECT_EQ(endpoint_json(web.endpoints[0], rule)["state"], "ready");
  EXPECT_EQ(endpoint_json(web.endpoints[1], rule)["state"], "fallback");
  EXPECT_EQ(service_summary(web)["endpoint_counts"],
            (json{{"ready", 1}, {"fallback", 1}, {"draining", 0}, {"total", 2}}));

  web.endpoints[0].ready = false;  // out of rotation: drains, never falls back
  EXPECT_EQ(endpoint_json(web.endpoints[0], new_flow_rule(web))["state"], "draining");

  web.cluster_ip.reset();  // headless: nothing forwards, so nothing falls back
  web.secondary_cluster_ip.reset();
  EXPECT_EQ(endpoint_json(web.endpoints[1], new_flow_rule(web))["state"], "draining");
}

TEST(AdminViews, ConfigDumpShowsAddress6RoutesAndNeighboursOfBothFamilies) {
  const json j = config_to_json(dual_stack());
  EXPECT_EQ(j["ports"][1]["address6"], "fd00:10:244::1/64");
  EXPECT_EQ(j["routes"][0], (json{{"prefix", "::/0"}, {"via", "2001:db8:1::fe"}}));
  EXPECT_EQ(j["neighbors"][0]["ip"], "2001:db8:1::fe");
  EXPECT_EQ(j["services"][0]["cluster_ips"], json::array({"10.96.0.20", "fd00:10:96::20"}));
  EXPECT_EQ(j["services"][0]["endpoints"][1]["ip"], "fd00:10:244::7");
}

}  // namespace
}  // namespace podgate::ctl
