// The Registry: layers, unsaved counting, learnt state, versions and listeners.
#include "control/publish/registry.hpp"

#include <gtest/gtest.h>

#include <new>
#include <string>
#include <vector>

#include "control/config/config.hpp"
#include "control/config/config_writer.hpp"
#include "tests/unit/allocation_failure.hpp"

namespace podgate::ctl {
namespace {

using test::allocations_before_failure;

constexpr const char* kFile = R"(
[[ports]]
name = "pods"
device = "net_null0"
address = "172.17.0.1/16"
[[services]]
namespace = "default"
name = "web"
cluster_ip = "10.96.0.20"
ports = [{ port = 80, target_port = 8080 }]
endpoints = [{ ip = "172.17.0.7" }, { ip = "172.17.0.8" }]
[services.health_check]
kind = "tcp"
[[services]]
namespace = "default"
name = "api"
cluster_ip = "10.96.0.21"
ports = [{ port = 80 }]
)";

Config file() {
  auto c = parse_config(kFile, "podgate.toml");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : Config{};
}

dp::IpAddr ip(const char* s) { return dp::IpAddr::v4(*dp::parse_ip4(s)); }

EndpointConfig* endpoint(Config& c, const char* name, const char* addr) {
  for (ServiceConfig& s : c.services) {
    if (s.name != name) continue;
    for (EndpointConfig& e : s.endpoints) {
      if (e.ip == ip(addr)) return &e;
    }
  }
  return nullptr;
}

const EndpointConfig& endpoint(const Config& c, const char* name, const char* addr) {
  return *endpoint(const_cast<Config&>(c), name, addr);
}

// An edit that sets web's 172.17.0.7 weight; unchanged when it already is.
auto set_weight(uint32_t w) {
  return [w](Config& c) -> Result<bool> {
    EndpointConfig* e = endpoint(c, "web", "172.17.0.7");
    if (e->weight == w) return false;
    e->weight = w;
    return true;
  };
}

// A Registry with its first version published, as Appliance::start does.
struct Published : ::testing::Test {
  Published() : reg(file()) {
    reg.subscribe([this](const Publication& p) { seen.push_back(p.version); });
    reg.commit(reg.stage_current());
  }
  Registry reg;
  std::vector<uint64_t> seen;
};

TEST_F(Published, TheFirstVersionIsTheFile) {
  EXPECT_EQ(reg.version(), 1u);
  EXPECT_EQ(seen, std::vector<uint64_t>{1});
  EXPECT_EQ(reg.unsaved_changes(), 0u);
  EXPECT_EQ(config_to_toml(reg.desired()), config_to_toml(reg.file()));
}

TEST_F(Published, AnEditIsUnsavedConfigOnTopOfTheFile) {
  auto p = reg.stage_edit(set_weight(3));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(p->changed);
  EXPECT_EQ(reg.version(), 1u) << "staging changes nothing";
  EXPECT_EQ(endpoint(reg.desired(), "web", "172.17.0.7").weight, 1u);
  reg.commit(std::move(*p));
  EXPECT_EQ(reg.version(), 2u);
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(reg.unsaved_changes(), 1u);
  EXPECT_EQ(endpoint(reg.desired(), "web", "172.17.0.7").weight, 3u);
  EXPECT_EQ(endpoint(reg.view(), "web", "172.17.0.7").weight, 3u);
  EXPECT_EQ(endpoint(reg.file(), "web", "172.17.0.7").weight, 1u) << "the file layer is as read";
}

TEST_F(Published, TheSameStateTwicePublishesNothing) {
  reg.commit(*reg.stage_edit(set_weight(3)));
  auto again = reg.stage_edit(set_weight(3));
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->changed) << "the caller publishes only a changed proposal";
  auto learnt = reg.stage_learnt({"default", "web", ip("172.17.0.8")}, LearntEndpoint{});
  EXPECT_FALSE(learnt.changed) << "forgetting what was never learnt changes nothing";
  EXPECT_EQ(reg.version(), 2u);
  EXPECT_EQ(reg.unsaved_changes(), 1u);
}

TEST_F(Published, AListenerOutOfMemoryLeavesTheOthersToldAndTheNextVersionStartsOver) {
  // A listener (the DNS zone, say) that runs out of memory half-way has
  // missed a version: the others still hear it, commit() says so, and the
  // next version tells every listener to start over (no changes list).
  bool fail = true;
  std::vector<bool> given_changes;
  reg.subscribe([&](const Publication& p) {
    if (fail) {
      fail = false;
      throw std::bad_alloc();
    }
    given_changes.push_back(p.changes != nullptr);
  });
  int after = 0;
  reg.subscribe([&](const Publication&) { ++after; });
  EXPECT_FALSE(reg.commit(*reg.stage_edit(set_weight(3))));
  EXPECT_EQ(reg.version(), 2u);
  EXPECT_EQ(after, 1) << "a listener after the one that failed";
  EXPECT_TRUE(reg.commit(*reg.stage_edit(set_weight(4))));
  EXPECT_TRUE(reg.commit(*reg.stage_edit(set_weight(5))));
  EXPECT_EQ(given_changes, (std::vector<bool>{false, true}));
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST_F(Published, ARefusedEditLeavesEverythingAsItWas) {
  auto bad = reg.stage_edit(set_weight(0));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidConfig);
  EXPECT_EQ(bad.error().message,
            "service default/web, endpoint 172.17.0.7: weight 0 is not in 1..256");
  auto failing = reg.stage_edit([](Config& c) -> Result<bool> {
    c.services.clear();  // changed, then refused by the edit itself
    return make_error(ErrorCode::kNotFound, "no such thing");
  });
  ASSERT_FALSE(failing);
  EXPECT_EQ(failing.error().message, "no such thing");
  EXPECT_EQ(reg.version(), 1u);
  EXPECT_EQ(seen, std::vector<uint64_t>{1});
  EXPECT_EQ(reg.unsaved_changes(), 0u);
  EXPECT_EQ(reg.desired().services.size(), 2u);
  EXPECT_EQ(endpoint(reg.desired(), "web", "172.17.0.7").weight, 1u);
}

TEST_F(Published, AVipClashFromAnEditNamesBothServices) {
  auto p = reg.stage_edit([](Config& c) -> Result<bool> {
    c.services[1].cluster_ip = c.services[0].cluster_ip;
    return true;
  });
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "service default/api, port 80/TCP: 10.96.0.20:80/TCP is already "
                               "served by service default/web");
}

// A new service, default/db on `vip`:80.
auto add_db(const char* name, const char* vip) {
  return [name, vip](Config& c) -> Result<bool> {
    ServiceConfig s;
    s.ns = "default";
    s.name = name;
    s.cluster_ip = ip(vip);
    s.ports = {ServicePortConfig{"", 80, 80, dp::Proto::kTcp}};
    c.services.push_back(std::move(s));
    return true;
  };
}

TEST(CommitsOutOfMemory, WhereverMemoryRunsOutTheVersionIsTakenAndWhatFollowsCatchesUp) {
  // commit() follows a snapshot the workers run already: whichever of its
  // allocations fails, in turn, it must take the version, and leave nothing
  // that misleads what comes next: the index later edits are checked
  // against, the listeners' incremental updates.
  for (long n = 0;; ++n) {
    SCOPED_TRACE("allocation " + std::to_string(n));
    Registry reg(file());
    std::vector<bool> given_changes;
    reg.subscribe([&](const Publication& p) { given_changes.push_back(p.changes != nullptr); });
    ASSERT_TRUE(reg.commit(reg.stage_current()));
    auto p = reg.stage_edit(add_db("db", "10.96.0.30"));
    ASSERT_TRUE(p);
    allocations_before_failure = n;
    bool told = false;
    EXPECT_NO_THROW(told = reg.commit(std::move(*p)));
    const bool failed = allocations_before_failure.exchange(-1) < 0;
    EXPECT_EQ(reg.version(), 2u);
    EXPECT_EQ(reg.desired().services.size(), 3u);
    auto clash = reg.stage_edit(add_db("db2", "10.96.0.30"));
    ASSERT_FALSE(clash) << "10.96.0.30:80 is db's";
    EXPECT_EQ(clash.error().message, "service default/db2, port 80/TCP: 10.96.0.30:80/TCP is already served by "
                                     "service default/db");
    ASSERT_TRUE(reg.commit(*reg.stage_edit(set_weight(3))));
    // The listener heard version 2 with its changes, or, having missed it,
    // hears version 3 as a whole.
    ASSERT_FALSE(given_changes.empty());
    EXPECT_EQ(given_changes.back(), told);
    if (!failed) {
      EXPECT_TRUE(told);
      EXPECT_GT(n, 0) << "no allocation to fail: the sweep tested nothing";
      break;
    }
  }
}

TEST_F(Published, LearntStateIsPublishedButNeitherUnsavedNorSaved) {
  const std::vector<PortRef> port80 = {PortRef{80, dp::Proto::kTcp}};
  auto p = reg.stage_health({{EndpointRef{"default", "web", ip("172.17.0.7")}, port80}});
  ASSERT_TRUE(p.changed);
  reg.commit(std::move(p));
  EXPECT_EQ(reg.version(), 2u);
  EXPECT_EQ(reg.unsaved_changes(), 0u);
  const EndpointConfig& seen_by_snapshot = endpoint(reg.view(), "web", "172.17.0.7");
  EXPECT_EQ(seen_by_snapshot.unhealthy_ports, port80);
  // What `config save` writes and `config dump` shows: desired(), without it.
  EXPECT_TRUE(endpoint(reg.desired(), "web", "172.17.0.7").unhealthy_ports.empty());
  EXPECT_EQ(config_to_toml(reg.desired()), config_to_toml(file()));
}

TEST_F(Published, DrainedKeepsFlowsAndLearntStateOutlivesEditsAndReloads) {
  reg.commit(reg.stage_learnt({"default", "web", ip("172.17.0.8")}, LearntEndpoint{{}, true}));
  EXPECT_TRUE(endpoint(reg.view(), "web", "172.17.0.8").draining());
  reg.commit(*reg.stage_edit(set_weight(5)));
  EXPECT_EQ(reg.unsaved_changes(), 1u);
  EXPECT_TRUE(endpoint(reg.view(), "web", "172.17.0.8").draining()) << "an edit keeps it";
  EXPECT_EQ(endpoint(reg.view(), "web", "172.17.0.7").weight, 5u);
  auto reload = reg.stage_file(file());
  ASSERT_TRUE(reload);
  reg.commit(std::move(*reload));
  EXPECT_EQ(reg.unsaved_changes(), 0u) << "a reload drops the edits";
  EXPECT_EQ(endpoint(reg.view(), "web", "172.17.0.7").weight, 1u);
  EXPECT_TRUE(endpoint(reg.view(), "web", "172.17.0.8").draining()) << "and keeps learnt state";
  reg.commit(reg.stage_learnt({"default", "web", ip("172.17.0.8")}, LearntEndpoint{}));
  EXPECT_TRUE(endpoint(reg.view(), "web", "172.17.0.8").takes_new_flows());
  EXPECT_TRUE(reg.learnt().empty());
}

TEST_F(Published, LearntStateAboutAnUnknownEndpointChangesNothingVisible) {
  reg.commit(reg.stage_learnt({"default", "web", ip("172.17.9.9")},
                              LearntEndpoint{{PortRef{80, dp::Proto::kTcp}}, false}));
  EXPECT_EQ(config_to_toml(reg.view()), config_to_toml(reg.desired()));
}

TEST_F(Published, HealthOfAServiceWithoutACheckIsIgnored) {
  reg.commit(*reg.stage_edit([](Config& c) -> Result<bool> {
    c.services[0].health_check.reset();
    return true;
  }));
  reg.commit(reg.stage_health({{EndpointRef{"default", "web", ip("172.17.0.7")}, {PortRef{80, dp::Proto::kTcp}}}}));
  EXPECT_TRUE(endpoint(reg.view(), "web", "172.17.0.7").unhealthy_ports.empty());
}

TEST_F(Published, HealthFindingsKeepTheDrainAndForgetEmptyEntries) {
  const EndpointRef e{"default", "web", ip("172.17.0.8")};
  reg.commit(reg.stage_learnt(e, LearntEndpoint{{}, true}));
  reg.commit(reg.stage_health({{e, {PortRef{80, dp::Proto::kTcp}}}}));
  EXPECT_TRUE(reg.learnt().at(e).drained);
  EXPECT_FALSE(endpoint(reg.view(), "web", "172.17.0.8").ready);
  EXPECT_FALSE(reg.stage_health({{e, {PortRef{80, dp::Proto::kTcp}}}}).changed) << "the same twice";
  reg.commit(reg.stage_health({{e, {}}}));
  reg.commit(reg.stage_learnt(e, LearntEndpoint{}));
  EXPECT_TRUE(reg.learnt().empty());
}

TEST_F(Published, SavingToTheFileMakesTheEditsTheFileLayer) {
  reg.commit(*reg.stage_edit(set_weight(3)));
  reg.commit(*reg.stage_edit(set_weight(4)));
  EXPECT_EQ(reg.unsaved_changes(), 2u);
  reg.saved_to_file();
  EXPECT_EQ(reg.unsaved_changes(), 0u);
  EXPECT_EQ(endpoint(reg.file(), "web", "172.17.0.7").weight, 4u);
  EXPECT_EQ(reg.version(), 3u) << "saving publishes nothing";
}

TEST_F(Published, AReloadIsValidatedLikeEveryLayer) {
  Config broken = file();
  broken.services[1].name = "web";
  auto p = reg.stage_file(std::move(broken));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "service default/web: defined twice (services[0] and services[1])");
}

// An edit that gives api (services[1]) an endpoint, 172.17.0.9.
Result<bool> give_api_an_endpoint(Config& c) {
  EndpointConfig e;
  e.ip = ip("172.17.0.9");
  c.services[1].endpoints.push_back(e);
  return true;
}

const std::vector<PortRef> kPort80 = {PortRef{80, dp::Proto::kTcp}};

// The view's services a proposal replaced, by name: each changed service is
// one removed and one added (service_list.hpp).
std::vector<std::string> removed_from_view(const Registry::Proposal& p) {
  std::vector<std::string> out;
  for (const auto& s : p.view_changes.removed) out.push_back(s->name);
  return out;
}
std::vector<std::string> added_to_view(const Registry::Proposal& p) {
  std::vector<std::string> out;
  for (size_t i : p.view_changes.added) out.push_back(p.view->services[i].name);
  return out;
}

TEST_F(Published, AnEditToOneServiceLeavesAnotherServicesLearntViewAsItWas) {
  // Listeners redo every service in view_changes (snapshot, zone, health
  // checker): web, with an unhealthy endpoint, must not be redone for an
  // edit to api.
  reg.commit(reg.stage_health({{EndpointRef{"default", "web", ip("172.17.0.8")}, kPort80}}));
  const ServiceConfig* web = reg.view().services.identity(0);
  auto p = reg.stage_edit(give_api_an_endpoint);
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_TRUE(p->services_only);
  EXPECT_EQ(p->desired_changes.added.size(), 1u);
  EXPECT_EQ(removed_from_view(*p), std::vector<std::string>{"api"});
  EXPECT_EQ(added_to_view(*p), std::vector<std::string>{"api"});
  reg.commit(std::move(*p));
  EXPECT_EQ(reg.view().services.identity(0), web) << "the same shared service";
  EXPECT_EQ(endpoint(reg.view(), "web", "172.17.0.8").unhealthy_ports, kPort80);
  EXPECT_EQ(endpoint(reg.view(), "api", "172.17.0.9").weight, 1u);
}

TEST_F(Published, ALearntChangeChangesOnlyItsServiceInTheView) {
  reg.commit(*reg.stage_edit(give_api_an_endpoint));
  reg.commit(reg.stage_learnt({"default", "api", ip("172.17.0.9")}, LearntEndpoint{{}, true}));
  const ServiceConfig* api = reg.view().services.identity(1);
  auto p = reg.stage_health({{EndpointRef{"default", "web", ip("172.17.0.7")}, kPort80}});
  ASSERT_TRUE(p.services_only);
  EXPECT_TRUE(p.desired_changes.empty());
  EXPECT_EQ(removed_from_view(p), std::vector<std::string>{"web"});
  EXPECT_EQ(added_to_view(p), std::vector<std::string>{"web"});
  reg.commit(std::move(p));
  EXPECT_EQ(reg.view().services.identity(1), api) << "api's drain is as it was";
  EXPECT_TRUE(endpoint(reg.view(), "api", "172.17.0.9").draining());
  EXPECT_EQ(endpoint(reg.view(), "web", "172.17.0.7").unhealthy_ports, kPort80);
  // Forgetting it gives web back its desired version, and changes web only.
  auto forget = reg.stage_health({{EndpointRef{"default", "web", ip("172.17.0.7")}, {}}});
  EXPECT_EQ(removed_from_view(forget), std::vector<std::string>{"web"});
  EXPECT_EQ(added_to_view(forget), std::vector<std::string>{"web"});
  reg.commit(std::move(forget));
  EXPECT_EQ(reg.view().services.identity(0), reg.desired().services.identity(0));
  EXPECT_EQ(reg.view().services.identity(1), api);
}

TEST_F(Published, AnEditToAServiceKeepsWhatWasLearntAboutIt) {
  reg.commit(reg.stage_health({{EndpointRef{"default", "web", ip("172.17.0.8")}, kPort80}}));
  auto p = reg.stage_edit(set_weight(4));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(removed_from_view(*p), std::vector<std::string>{"web"});
  EXPECT_EQ(added_to_view(*p), std::vector<std::string>{"web"});
  reg.commit(std::move(*p));
  EXPECT_EQ(endpoint(reg.view(), "web", "172.17.0.7").weight, 4u);
  EXPECT_EQ(endpoint(reg.view(), "web", "172.17.0.8").unhealthy_ports, kPort80);
  EXPECT_TRUE(endpoint(reg.desired(), "web", "172.17.0.8").unhealthy_ports.empty());
}

TEST(Registry, ListenersHearEveryPublicationInOrderUntilTheyUnsubscribe) {
  Registry reg(file());
  std::vector<std::string> heard;
  auto a = reg.subscribe([&](const Publication& p) {
    heard.push_back("a" + std::to_string(p.version) + (p.layer == Layer::kEdit ? "e" : "f"));
  });
  reg.subscribe([&](const Publication& p) {
    heard.push_back("b" + std::to_string(p.config.services.size()));
  });
  reg.commit(reg.stage_current());
  reg.commit(*reg.stage_edit([](Config& c) -> Result<bool> {
    c.services.pop_back();
    return true;
  }));
  reg.unsubscribe(a);
  reg.commit(*reg.stage_edit(set_weight(2)));
  EXPECT_EQ(heard, (std::vector<std::string>{"a1f", "b2", "a2e", "b1", "b1"}));
}

}  // namespace
}  // namespace podgate::ctl
