// The journal lines of the terminating fallback and of ports whose
// candidates all fail their health check, following a real Registry's
// publications as the appliance does: edits, learnt drains and health,
// reloads.
#include "control/publish/new_flow_watch.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "control/config/config.hpp"
#include "control/publish/registry.hpp"
#include "tests/unit/config_fixture.hpp"

namespace podgate::ctl {
namespace {

// default/web, dual-stack, with `endpoints`; default/api with one ready
// endpoint, which no line is ever about.
Config config(const std::string& endpoints, const std::string& web_health_check = "") {
  auto c = parse_config(std::string(kDualStackPortsToml) + R"(
[[services]]
namespace = "default"
name = "web"
cluster_ips = ["10.96.0.20", "fd00:10:96::20"]
ports = [{ port = 80, target_port = 8080 }]
endpoints = [)" + endpoints + "]\n" + web_health_check + R"(
[[services]]
namespace = "default"
name = "api"
cluster_ip = "10.96.0.21"
ports = [{ port = 80 }]
endpoints = [{ ip = "172.17.0.30" }]
)",
                        "podgate.toml");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : Config{};
}

constexpr const char* kReady = R"({ ip = "172.17.0.7" }, { ip = "fd00:10:244::7" })";
constexpr const char* kTerminating4 =
    R"({ ip = "172.17.0.7", ready = false, serving = true, terminating = true })";
constexpr const char* kTerminating6 =
    R"({ ip = "fd00:10:244::7", ready = false, serving = true, terminating = true })";

dp::IpAddr ip4(const char* s) { return dp::IpAddr::v4(*dp::parse_ip4(s)); }

// An edit that sets web's endpoints to `endpoints` (as a Kubernetes sync
// or `podgatectl apply` would).
auto web_endpoints(const std::string& endpoints) {
  return [endpoints](Config& c) -> Result<bool> {
    const Config next = config(endpoints);
    for (ServiceConfig& s : c.services) {
      if (s.name == "web") s.endpoints = next.services[0].endpoints;
    }
    return true;
  };
}

struct Watched : ::testing::Test {
  explicit Watched(const std::string& endpoints = kReady, const std::string& check = "")
      : reg(config(endpoints, check)) {
    reg.subscribe([this](const Publication& p) {
      for (std::string& line : watch.follow(p.config, p.changes)) lines.push_back(std::move(line));
      with_changes.push_back(p.changes != nullptr);
    });
    reg.commit(reg.stage_current());
  }
  // The lines the commit of `edit` logged.
  template <class Edit>
  std::vector<std::string> after_edit(Edit edit) {
    lines.clear();
    auto p = reg.stage_edit(edit);
    EXPECT_TRUE(p.ok());
    if (p.ok()) reg.commit(std::move(*p));
    return lines;
  }
  Registry reg;
  NewFlowWatch watch;
  std::vector<std::string> lines;
  std::vector<bool> with_changes;
};

using Strings = std::vector<std::string>;

TEST_F(Watched, NothingIsLoggedWhileAnEndpointIsReady) {
  EXPECT_EQ(lines, Strings{});
  EXPECT_EQ(after_edit(web_endpoints(std::string(kReady) + R"(, { ip = "172.17.0.8" })")), Strings{});
  EXPECT_EQ(watch.services_watched(), 0u);
}

TEST_F(Watched, EnteringAndLeavingTheFallbackIsLoggedOncePerFamily) {
  EXPECT_EQ(after_edit(web_endpoints(std::string(kTerminating4) + R"(, { ip = "fd00:10:244::7" },
      { ip = "172.17.0.8", ready = false, serving = true, terminating = true })")),
            Strings{"service default/web: no IPv4 endpoint is ready; new connections go to its 2 serving, "
                    "terminating endpoints (terminating fallback)"});
  EXPECT_TRUE(with_changes.back()) << "an edit says which services changed";
  EXPECT_EQ(watch.services_watched(), 1u);
  // Still falling back, with one endpoint fewer: said once, not again.
  EXPECT_EQ(after_edit(web_endpoints(std::string(kTerminating4) + R"(, { ip = "fd00:10:244::7" })")), Strings{});
  // The IPv6 family falls back too: its own line.
  EXPECT_EQ(after_edit(web_endpoints(std::string(kTerminating4) + ", " + kTerminating6)),
            Strings{"service default/web: no IPv6 endpoint is ready; new connections go to its 1 serving, "
                    "terminating endpoint (terminating fallback)"});
  // A new Pod is ready: the IPv4 fallback ends.
  EXPECT_EQ(after_edit(web_endpoints(std::string(kTerminating4) + ", " + kTerminating6 +
                                     R"(, { ip = "172.17.0.9" })")),
            Strings{"service default/web: 1 IPv4 endpoint is ready; the terminating fallback ends, and "
                    "terminating endpoints drain"});
  // The last IPv6 Pod stops serving: nothing is left to take new connections.
  EXPECT_EQ(after_edit(web_endpoints(std::string(kTerminating4) + R"(, { ip = "172.17.0.9" },
      { ip = "fd00:10:244::7", ready = false, serving = false, terminating = true })")),
            Strings{"service default/web: the IPv6 terminating fallback ends with no endpoint ready or serving: "
                    "new connections are dropped"});
  EXPECT_EQ(watch.services_watched(), 0u);
}

// Draining the last ready endpoint (learnt state, `podgatectl drain
// endpoint`) leaves only terminating ones: the view falls back.
TEST_F(Watched, DrainingTheLastReadyEndpointStartsTheFallback) {
  after_edit(web_endpoints(std::string(kReady) + ", " +
                           R"({ ip = "172.17.0.8", ready = false, serving = true, terminating = true })"));
  lines.clear();
  reg.commit(reg.stage_learnt({"default", "web", ip4("172.17.0.7")}, LearntEndpoint{{}, true}));
  EXPECT_EQ(lines, Strings{"service default/web: no IPv4 endpoint is ready; new connections go to its 1 serving, "
                           "terminating endpoint (terminating fallback)"});
  lines.clear();
  reg.commit(reg.stage_learnt({"default", "web", ip4("172.17.0.7")}, LearntEndpoint{}));
  EXPECT_EQ(lines, Strings{"service default/web: 1 IPv4 endpoint is ready; the terminating fallback ends, and "
                           "terminating endpoints drain"});
}

struct WatchedFromTheStart : Watched {
  WatchedFromTheStart() : Watched(std::string(kTerminating4) + ", " + kTerminating6) {}
};

// The first version logs what already falls back; a reload that changes
// more than services (any may have changed) logs only what moved.
TEST_F(WatchedFromTheStart, TheFirstVersionAndReloadsAreLoggedAsChanges) {
  EXPECT_EQ(lines.size(), 2u);
  EXPECT_EQ(watch.services_watched(), 1u);
  lines.clear();
  Config reloaded = config(std::string(kTerminating4) + R"(, { ip = "fd00:10:244::7" })");
  reloaded.dataplane.workers += 1;  // not only services
  auto p = reg.stage_file(reloaded);
  ASSERT_TRUE(p.ok());
  reg.commit(std::move(*p));
  EXPECT_FALSE(with_changes.back());
  EXPECT_EQ(lines, Strings{"service default/web: 1 IPv6 endpoint is ready; the terminating fallback ends, and "
                           "terminating endpoints drain"});
}

// A service removed while falling back says nothing, and one of the same
// name added later starts afresh.
TEST_F(WatchedFromTheStart, ARemovedServiceIsForgotten) {
  auto without_web = [](Config& c) -> Result<bool> {
    const ServiceList& services = std::as_const(c.services);
    c.services.erase(std::find_if(services.begin(), services.end(),
                                  [](const ServiceConfig& s) { return s.name == "web"; }));
    return true;
  };
  EXPECT_EQ(after_edit(without_web), Strings{});
  EXPECT_EQ(watch.services_watched(), 0u);
  auto web_again = [](Config& c) -> Result<bool> {
    c.services.push_back(config(kTerminating4).services[0]);
    return true;
  };
  EXPECT_EQ(after_edit(web_again),
            Strings{"service default/web: no IPv4 endpoint is ready; new connections go to its 1 serving, "
                    "terminating endpoint (terminating fallback)"});
}

struct WatchedWithHealth : Watched {
  explicit WatchedWithHealth(const char* all_unhealthy = "fail_open")
      : Watched(R"({ ip = "172.17.0.7" }, { ip = "172.17.0.8" }, { ip = "fd00:10:244::7" })",
                std::string("[services.health_check]\nkind = \"tcp\"\nall_unhealthy = \"") + all_unhealthy +
                    "\"\n") {}
  // The lines of the learnt health `unhealthy` (endpoints failing port 80).
  std::vector<std::string> after_health(const std::vector<const char*>& unhealthy, const std::vector<const char*>& healthy) {
    lines.clear();
    std::vector<std::pair<EndpointRef, std::vector<PortRef>>> changes;
    for (const char* a : unhealthy) changes.push_back({{"default", "web", *dp::parse_ip(a)}, {PortRef{80, dp::Proto::kTcp}}});
    for (const char* a : healthy) changes.push_back({{"default", "web", *dp::parse_ip(a)}, {}});
    reg.commit(reg.stage_health(changes));
    return lines;
  }
};

// HAProxy's "backend has no server available", Envoy's panic mode: the
// journal says when every endpoint that would take a port's new
// connections fails its check, what all_unhealthy makes of it, and when
// one passes again.  Per family, as each VIP forwards to its own.
TEST_F(WatchedWithHealth, APortWhoseEndpointsAllFailTheirCheckIsLogged) {
  EXPECT_EQ(after_health({"172.17.0.7"}, {}), Strings{}) << "one of two fails: nothing to say";
  EXPECT_EQ(after_health({"172.17.0.8"}, {}),
            Strings{"service default/web port 80/TCP IPv4: all 2 endpoints taking new connections fail the health "
                    "check; all_unhealthy = \"fail_open\" sends new connections to them anyway"});
  EXPECT_EQ(after_health({"fd00:10:244::7"}, {}),
            Strings{"service default/web port 80/TCP IPv6: its endpoint taking new connections fails the health "
                    "check; all_unhealthy = \"fail_open\" sends new connections to it anyway"});
  EXPECT_EQ(after_health({}, {"172.17.0.7"}),
            Strings{"service default/web port 80/TCP IPv4: 1 endpoint passes the health check again"});
  EXPECT_EQ(watch.services_watched(), 1u) << "IPv6 still fails";
}

struct WatchedWithHealthDrop : WatchedWithHealth {
  WatchedWithHealthDrop() : WatchedWithHealth("drop") {}
};

TEST_F(WatchedWithHealthDrop, DropSaysNewConnectionsAreRefused) {
  const std::string drop_line =
      "service default/web port 80/TCP IPv4: all 2 endpoints taking new connections fail the health "
      "check; all_unhealthy = \"drop\" refuses new connections (no_endpoint)";
  EXPECT_EQ(after_health({"172.17.0.7", "172.17.0.8"}, {}), Strings{drop_line});
  // all_unhealthy changed while they fail: said again, with what it does now.
  auto fail_open = [](Config& c) -> Result<bool> {
    for (ServiceConfig& s : c.services) {
      if (s.name == "web") s.health_check->all_unhealthy = AllUnhealthy::kFailOpen;
    }
    return true;
  };
  EXPECT_EQ(after_edit(fail_open),
            Strings{"service default/web port 80/TCP IPv4: all 2 endpoints taking new connections fail the health "
                    "check; all_unhealthy = \"fail_open\" sends new connections to them anyway"});
  EXPECT_EQ(after_health({}, {"172.17.0.8"}),
            Strings{"service default/web port 80/TCP IPv4: 1 endpoint passes the health check again"});
}

}  // namespace
}  // namespace podgate::ctl
