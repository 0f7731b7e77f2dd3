// Issue 14, "Scale": a change costs what it changed.  Copy-on-write
// services, the diff by identity, validation of what changed, the
// incremental snapshot build (it must give what a whole build gives), stable
// service ids, ServiceMap patching, Maglev sizes and the memory plan.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <utility>

#include "tests/unit/config_fixture.hpp"
#include "control/config/config.hpp"
#include "control/config/memory_plan.hpp"
#include "control/config/service_index.hpp"
#include "control/config/validate.hpp"
#include "control/dns/dns.hpp"
#include "control/publish/registry.hpp"
#include "control/publish/snapshot_builder.hpp"
#include "dataplane/maglev.hpp"
#include "tests/unit/allocation_failure.hpp"

namespace podgate::ctl {
namespace {

using dp::Ip4;

Config base(uint32_t services) {
  Config c;
  c.source = "t.toml";
  c.ports.push_back(named_port("uplink", "net_null0", "192.0.2.1/24"));
  c.ports.push_back(named_port("pods", "net_null1", "172.16.0.1/12"));
  for (uint32_t i = 0; i < services; ++i) {
    ServiceConfig s;
    s.ns = "default";
    s.name = "svc-" + std::to_string(i);
    s.cluster_ip = dp::IpAddr::v4(Ip4::from_host(0x0a600000 + i + 1));
    s.ports.push_back(ServicePortConfig{"http", 80, 8080, dp::Proto::kTcp});
    s.ports.push_back(ServicePortConfig{"dns", 53, 53, dp::Proto::kUdp});
    for (uint32_t j = 0; j < 3; ++j) {
      EndpointConfig e;
      // Services 0 and 1 share their endpoints: their backend keys map to neither.
      const uint32_t owner = i <= 1 ? 0 : i;
      e.ip = dp::IpAddr::v4(Ip4::from_host(0xac110000 + owner * 8 + j + 2));
      s.endpoints.push_back(e);
    }
    c.services.push_back(std::move(s));
  }
  return c;
}

const std::vector<dp::MacAddr> kMacs = {dp::MacAddr{{2, 0, 0, 0, 0, 1}}, dp::MacAddr{{2, 0, 0, 0, 0, 2}}};

// ---- ServiceList ----

TEST(ServiceList, ACopySharesEveryServiceUntilOneIsWritten) {
  Config a = base(3);
  Config b = a;
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(a.services.identity(i), b.services.identity(i));
  b.services[1].endpoints[0].weight = 7;
  EXPECT_EQ(a.services.identity(0), b.services.identity(0));
  EXPECT_NE(a.services.identity(1), b.services.identity(1));
  EXPECT_EQ(std::as_const(a.services)[1].endpoints[0].weight, 1u) << "the original is untouched";
  ServiceDiff d = diff_services(a.services, b.services);
  ASSERT_EQ(d.removed.size(), 1u);
  EXPECT_EQ(d.removed[0].get(), a.services.identity(1));
  EXPECT_EQ(d.added, std::vector<size_t>{1});
}

TEST(ServiceList, TheDiffFindsInsertedAndErasedServices) {
  Config a = base(5);
  Config b = a;
  b.services.erase(b.services.cbegin() + 2);
  ServiceConfig extra = std::as_const(a.services)[0];
  extra.name = "extra";
  b.services.push_back(extra);
  ServiceDiff d = diff_services(a.services, b.services);
  ASSERT_EQ(d.removed.size(), 1u);
  EXPECT_EQ(d.removed[0]->name, "svc-2");
  EXPECT_EQ(d.added, std::vector<size_t>{4});
  EXPECT_TRUE(diff_services(a.services, a.services).empty());
}

// ---- ServiceIndex ----

TEST(ServiceIndex, CountsAnAddressOnceForEachServiceListingIt) {
  // A service of up to 32 endpoints is deduplicated by a scan, a larger one
  // by sorting its addresses: both count a repeated address once.
  for (uint32_t extra : {3u, 100u}) {
    SCOPED_TRACE("svc-0 with " + std::to_string(extra) + " more endpoints");
    Config c = base(3);  // svc-0 and svc-1 share their three endpoints
    const dp::IpAddr shared = std::as_const(c.services)[0].endpoints[0].ip;
    ServiceConfig& s = c.services[0];
    for (uint32_t k = 0; k < extra; ++k) {
      EndpointConfig e;
      e.ip = dp::IpAddr::v4(Ip4::from_host(0xac120000 + k + 2));
      s.endpoints.push_back(e);
    }
    s.endpoints.push_back(s.endpoints[0]);  // listed twice more
    s.endpoints.push_back(s.endpoints[0]);
    const dp::IpAddr last = s.endpoints[s.endpoints.size() - 3].ip;

    ServiceIndex index(c.services);
    EXPECT_EQ(index.endpoint_count(shared), 2u);
    EXPECT_EQ(index.endpoint_count(last), 1u);
    EXPECT_EQ(index.endpoint_count(std::as_const(c.services)[2].endpoints[0].ip), 1u);

    // svc-0 removed: the count it gave once is taken back once.
    Config next = c;
    next.services.erase(next.services.cbegin());
    index.apply(diff_services(c.services, next.services), next.services);
    EXPECT_EQ(index.endpoint_count(shared), 1u);
    EXPECT_EQ(index.endpoint_count(last), 0u);
  }
}

// ---- validate_change ----

TEST(ValidateChange, ChecksTheChangedServicesAgainstTheRest) {
  Config running = base(4);
  ServiceIndex index(running.services);
  Config next = running;
  ServiceConfig clash = std::as_const(running.services)[3];
  clash.name = "clash";  // svc-3's VIP and ports
  next.services.push_back(clash);
  auto r = validate_change(next, diff_services(running.services, next.services), index);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("service default/clash, port 80/TCP: 10.96.0.4:80/TCP is "
                                   "already served by service default/svc-3"),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(r.error().message, validate(next).error().message) << "the same words as validate()";

  // Moving svc-3 away in the same change frees its VIP.
  next.services[3].cluster_ip = dp::IpAddr::v4(Ip4::from_host(0x0a6000ff));
  EXPECT_TRUE(validate_change(next, diff_services(running.services, next.services), index).ok());
  EXPECT_TRUE(validate(next).ok());
}

TEST(ValidateChange, ReportsAServiceDefinedTwice) {
  Config running = base(2);
  ServiceIndex index(running.services);
  Config next = running;
  ServiceConfig again = std::as_const(running.services)[0];
  again.cluster_ip = dp::IpAddr::v4(Ip4::from_host(0x0a6000f0));
  next.services.push_back(again);
  auto r = validate_change(next, diff_services(running.services, next.services), index);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("service default/svc-0: defined twice (services[0] and services[2])"),
            std::string::npos)
      << r.error().message;
}

TEST(ValidateChange, AnEndpointMayNotBeAnotherServicesVipEitherWay) {
  // Issue 15's rule holds for runtime changes too, checked from both ends
  // against the rest of the config through the index.
  Config running = base(3);
  ServiceIndex index(running.services);
  Config next = running;
  EndpointConfig vip_as_endpoint;
  vip_as_endpoint.ip = *std::as_const(running.services)[2].cluster_ip;  // svc-2's VIP
  next.services[0].endpoints.push_back(vip_as_endpoint);
  auto r = validate_change(next, diff_services(running.services, next.services), index);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("ip is the cluster_ip of service default/svc-2"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(validate(next).ok());

  // A new service whose VIP is an endpoint of svc-2.
  Config next2 = running;
  ServiceConfig on_a_pod = std::as_const(running.services)[2];
  on_a_pod.name = "on-a-pod";
  on_a_pod.cluster_ip = std::as_const(running.services)[2].endpoints[0].ip;
  on_a_pod.endpoints.erase(on_a_pod.endpoints.begin());  // not its own VIP either
  next2.services.push_back(on_a_pod);
  r = validate_change(next2, diff_services(running.services, next2.services), index);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("is an endpoint of another service"), std::string::npos) << r.error().message;
  EXPECT_FALSE(validate(next2).ok()) << "validate() refuses it too, from the endpoint's side";

  // Removing that endpoint in the same change makes it fine.
  next2.services[2].endpoints.erase(next2.services[2].endpoints.begin());
  r = validate_change(next2, diff_services(running.services, next2.services), index);
  EXPECT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(validate(next2).ok());
}

// ---- the DNS zone kept when DNS does not see a change ----

TEST(ZoneUnchanged, EndpointsOfAVipAreNotInDnsButAHeadlessServicesAre) {
  Config a = base(3);
  a.services[2].cluster_ip.reset();  // headless
  Config b = a;
  b.services[0].endpoints[0].weight = 5;
  b.services[1].endpoints[1].ready = false;
  EXPECT_TRUE(dns::zone_unchanged(diff_services(a.services, b.services), b.services));
  Config c = a;
  c.services[2].endpoints[0].ready = false;
  EXPECT_FALSE(dns::zone_unchanged(diff_services(a.services, c.services), c.services));
  Config d = a;
  d.services[0].ports[0].name = "web";
  EXPECT_FALSE(dns::zone_unchanged(diff_services(a.services, d.services), d.services));
  Config e = a;
  e.services.erase(e.services.cbegin());
  EXPECT_FALSE(dns::zone_unchanged(diff_services(a.services, e.services), e.services));
}

// ---- incremental snapshot ----

// Whatever the build path, what workers read must be the same.
void expect_same_forwarding(const Config& cfg, const dp::Snapshot& got, const dp::Snapshot& want) {
  EXPECT_EQ(std::vector<Ip4>(got.vips.begin(), got.vips.end()),
            std::vector<Ip4>(want.vips.begin(), want.vips.end()));
  EXPECT_EQ(got.services.size(), want.services.size());
  EXPECT_EQ(got.backends.size(), want.backends.size());
  EXPECT_EQ(got.owned_services.size(), want.owned_services.size());
  for (const ServiceConfig& s : cfg.services) {
    for (const ServicePortConfig& p : s.ports) {
      const Ip4 vip = s.cluster_ip->as_v4();
      const dp::ServiceData* g = got.find_service(vip, dp::to_be16(p.port), p.protocol);
      const dp::ServiceData* w = want.find_service(vip, dp::to_be16(p.port), p.protocol);
      ASSERT_NE(g, nullptr) << s.name;
      ASSERT_NE(w, nullptr) << s.name;
      EXPECT_TRUE(std::equal(g->maglev.begin(), g->maglev.end(), w->maglev.begin(), w->maglev.end()));
      EXPECT_TRUE(std::equal(g->alive.begin(), g->alive.end(), w->alive.begin(), w->alive.end()));
      for (const dp::Backend& b : w->alive) {
        const dp::ServiceData* gb = got.find_backend(b.ip, b.port, p.protocol);
        const dp::ServiceData* wb = want.find_backend(b.ip, b.port, p.protocol);
        EXPECT_EQ(gb == nullptr, wb == nullptr) << s.name << " " << dp::to_string(b.ip);
        if (gb != nullptr && wb != nullptr) {
          EXPECT_EQ(gb->vip, wb->vip);
        }
      }
    }
  }
}

struct Chain {
  explicit Chain(Config c) : reg(std::move(c)) {
    SnapshotInputs in{&reg.view(), kMacs, nullptr, 1, nullptr};
    current = build_snapshot(in);
    reg.commit(reg.stage_current(), current.get());
  }
  BuildStats change(const std::function<Result<bool>(Config&)>& edit) {
    auto next = reg.stage_edit(edit);
    EXPECT_TRUE(next.ok()) << (next.ok() ? "" : next.error().message);
    BuildStats stats;
    SnapshotInputs in{next->view.get(), kMacs, current.get(), reg.version() + 1, nullptr,
                      next->services_only ? &next->view_changes : nullptr};
    current = build_snapshot(in, &stats);
    reg.commit(std::move(*next), current.get());
    // The same config built whole, from nothing.
    SnapshotInputs whole{&reg.view(), kMacs, nullptr, reg.version(), nullptr};
    auto fresh = build_snapshot(whole);
    expect_same_forwarding(reg.view(), *current, *fresh);
    return stats;
  }
  Registry reg;
  std::unique_ptr<dp::Snapshot> current;
};

TEST(IncrementalSnapshot, EachChangeGivesWhatAWholeBuildGives) {
  Chain chain(base(6));
  BuildStats s = chain.change([](Config& c) -> Result<bool> {
    c.services[4].endpoints[1].weight = 3;
    return true;
  });
  EXPECT_TRUE(s.incremental);
  EXPECT_EQ(s.services_built, 2u) << "the two ports of the service changed";
  EXPECT_EQ(s.services_shared, 10u);
  // Service 1 shares its endpoints with service 0: deleting it maps them to 0.
  s = chain.change([](Config& c) -> Result<bool> {
    c.services.erase(c.services.cbegin() + 1);
    return true;
  });
  EXPECT_EQ(s.services_built, 0u) << "a delete rebuilds nothing";
  ASSERT_NE(chain.current->find_backend(Ip4::from_host(0xac110002), dp::to_be16(8080), dp::Proto::kTcp),
            nullptr);
  // A new service on svc-2's endpoints: both lose the reverse mapping.
  s = chain.change([](Config& c) -> Result<bool> {
    ServiceConfig n = std::as_const(c.services)[1];
    n.name = "new";
    n.cluster_ip = dp::IpAddr::v4(Ip4::from_host(0x0a600100));
    c.services.push_back(std::move(n));
    return true;
  });
  EXPECT_EQ(chain.current->find_backend(Ip4::from_host(0xac110000 + 2 * 8 + 2), dp::to_be16(8080),
                                        dp::Proto::kTcp),
            nullptr);
  // Two services on one VIP (other ports); then one leaves: the VIP stays.
  chain.change([](Config& c) -> Result<bool> {
    ServiceConfig n = std::as_const(c.services)[0];
    n.name = "same-vip";
    n.ports = {ServicePortConfig{"web", 8000, 8000, dp::Proto::kTcp}};
    c.services.push_back(std::move(n));
    return true;
  });
  chain.change([](Config& c) -> Result<bool> {
    c.services.erase(c.services.cbegin());
    return true;
  });
  EXPECT_TRUE(chain.current->is_vip(Ip4::from_host(0x0a600001)));
}

TEST(IncrementalSnapshot, ServicesAreNotRenumberedWhenOneIsDeleted) {
  Chain chain(base(5));
  auto id_of = [&](uint32_t vip) {
    return chain.current->find_service(Ip4::from_host(vip), dp::to_be16(80), dp::Proto::kTcp)->service_id;
  };
  const dp::ServiceData* last = chain.current->find_service(Ip4::from_host(0x0a600005), dp::to_be16(80),
                                                            dp::Proto::kTcp);
  const uint32_t last_id = id_of(0x0a600005);
  chain.change([](Config& c) -> Result<bool> {
    c.services.erase(c.services.cbegin() + 1);
    return true;
  });
  EXPECT_EQ(id_of(0x0a600005), last_id);
  EXPECT_EQ(chain.current->find_service(Ip4::from_host(0x0a600005), dp::to_be16(80), dp::Proto::kTcp),
            last)
      << "the same per-service data, not rebuilt";
  // The freed id is taken by the next new service.
  chain.change([](Config& c) -> Result<bool> {
    ServiceConfig n = std::as_const(c.services)[0];
    n.name = "new";
    n.cluster_ip = dp::IpAddr::v4(Ip4::from_host(0x0a600100));
    c.services.push_back(std::move(n));
    return true;
  });
  EXPECT_EQ(id_of(0x0a600100), 1u);
}

TEST(IncrementalSnapshot, ASnapshotNeverPublishedLeavesTheIndexAsItWas) {
  Chain chain(base(4));
  // Built from the current snapshot, then thrown away (a refused publish).
  auto next = chain.reg.stage_edit([](Config& c) -> Result<bool> {
    c.services.erase(c.services.cbegin() + 2);
    return true;
  });
  ASSERT_TRUE(next.ok());
  SnapshotInputs in{next->view.get(), kMacs, chain.current.get(), chain.reg.version() + 1, nullptr,
                    &next->view_changes};
  build_snapshot(in).reset();
  // A different change from the same snapshot is still incremental and right.
  BuildStats s = chain.change([](Config& c) -> Result<bool> {
    c.services[3].endpoints[0].weight = 2;
    return true;
  });
  EXPECT_TRUE(s.incremental);
  EXPECT_TRUE(chain.current->is_vip(Ip4::from_host(0x0a600003)));
}

TEST(IncrementalSnapshot, ABuildThatRunsOutOfMemoryLeavesTheNextOneRight) {
  // An incremental build first brings the builder's index up to the
  // snapshot it builds on (the last change's delta: here one service
  // deleted, one added).  Memory running out anywhere in the build, in
  // turn, must leave nothing behind that the next build reads wrong, such
  // as a VIP's count changed twice.
  const Ip4 added_vip = Ip4::from_host(0x0a600100);
  for (long n = 0;; ++n) {
    SCOPED_TRACE("allocation " + std::to_string(n));
    Chain chain(base(4));
    const Ip4 deleted_vip = chain.reg.view().services[1].cluster_ip->as_v4();
    chain.change([&](Config& c) -> Result<bool> {
      ServiceConfig s = std::as_const(c.services)[0];
      s.name = "added";
      s.cluster_ip = dp::IpAddr::v4(added_vip);
      c.services.erase(c.services.cbegin() + 1);
      c.services.push_back(std::move(s));
      return true;
    });
    auto next = chain.reg.stage_edit([](Config& c) -> Result<bool> {
      c.services[2].endpoints[0].weight = 2;
      return true;
    });
    ASSERT_TRUE(next.ok());
    SnapshotInputs in{next->view.get(), kMacs, chain.current.get(), chain.reg.version() + 1, nullptr,
                      &next->view_changes};
    test::allocations_before_failure = n;
    try {
      build_snapshot(in).reset();  // thrown away, as a refused change's
    } catch (const std::bad_alloc&) {
    }
    const bool failed = test::allocations_before_failure.exchange(-1) < 0;
    chain.change([](Config& c) -> Result<bool> {
      c.services.erase(c.services.cend() - 1);  // "added"
      return true;
    });
    EXPECT_FALSE(chain.current->is_vip(added_vip));
    EXPECT_FALSE(chain.current->is_vip(deleted_vip));
    if (!failed) {
      EXPECT_GT(n, 0) << "no allocation to fail: the sweep tested nothing";
      break;
    }
  }
}

// ---- ServiceMap patching ----

TEST(ServiceMapPatch, AssignAndEraseAgreeWithAMap) {
  std::vector<dp::ServiceData> data(64);
  dp::ServiceMap map;
  std::map<uint32_t, const dp::ServiceData*> want;
  std::mt19937 rng(14);
  for (int step = 0; step < 20000; ++step) {
    const uint32_t k = rng() % 500;
    const dp::ServiceKey key{Ip4::from_host(0x0a000000 + k), dp::to_be16(80), dp::Proto::kTcp, 0};
    if (rng() % 3 == 0) {
      map.erase(key);
      want.erase(k);
    } else {
      const dp::ServiceData* d = &data[rng() % data.size()];
      map.assign(key, d);
      want[k] = d;
    }
  }
  EXPECT_EQ(map.size(), want.size());
  for (uint32_t k = 0; k < 500; ++k) {
    const dp::ServiceKey key{Ip4::from_host(0x0a000000 + k), dp::to_be16(80), dp::Proto::kTcp, 0};
    auto it = want.find(k);
    EXPECT_EQ(map.find(key), it == want.end() ? nullptr : it->second) << k;
  }
}

// ---- memory planned ----

TEST(MaglevSize, TheSmallestListedPrimeAbove100TimesTheEndpointsUpToTheMaximum) {
  for (uint32_t m : kMaglevTableSizes) EXPECT_TRUE(dp::is_prime(m)) << m;
  EXPECT_EQ(maglev_table_size_for(0, 65537), 1021u);
  EXPECT_EQ(maglev_table_size_for(3, 65537), 1021u) << "the smallest listed size";
  EXPECT_EQ(maglev_table_size_for(10, 65537), 1021u);
  EXPECT_EQ(maglev_table_size_for(11, 65537), 2039u);
  EXPECT_EQ(maglev_table_size_for(1000, 65537), 65537u) << "capped";
  EXPECT_EQ(maglev_table_size_for(1000, 1000003), 131071u);
  EXPECT_EQ(maglev_table_size_for(65534, 16777213), 8388593u);
  EXPECT_EQ(maglev_table_size_for(10, 251), 251u) << "capped below the choice";
  ServiceConfig s;
  s.endpoints.resize(10);
  DataplaneConfig d;
  EXPECT_EQ(maglev_table_size_of(s, d), 1021u);
  s.maglev_table_size = 65521;
  EXPECT_EQ(maglev_table_size_of(s, d), 65521u) << "a size set is kept";
}

TEST(MemoryPlan, CountsTablesAndRefusesWhatEalDoesNotGive) {
  Config c = base(100);
  c.eal.args = {"--no-huge", "-m", "512"};
  MemoryPlan p = plan_memory(c);
  EXPECT_EQ(p.service_ports, 200u);
  EXPECT_EQ(p.maglev, 200u * 2 * 1021);  // 3 endpoints each: M = 1021
  EXPECT_EQ(p.available, uint64_t{512} << 20);
  EXPECT_TRUE(p.fits()) << p.report();
  c.dataplane.flow_table_size = 1u << 24;  // ~860 MiB
  p = plan_memory(c);
  EXPECT_FALSE(p.fits());
  EXPECT_NE(memory_refusal(p, "t.toml").find("t.toml: does not fit in DPDK memory: needs "),
            std::string::npos);
  c.eal.args = {"--no-huge"};
  EXPECT_EQ(plan_memory(c).available, uint64_t{64} << 20);
  c.eal.args = {"--socket-mem=1024,1024"};
  EXPECT_EQ(plan_memory(c).available, uint64_t{2048} << 20);
  c.eal.args = {};
  EXPECT_FALSE(plan_memory(c).available.has_value()) << "hugepages without a limit";
}

TEST(MemoryPlan, CountsIpv6MapSlotsAtTheirOwnSize) {
  // An IPv6 key is 20 bytes: its map slots are 32 (an IPv4 one's 16).
  static_assert(dp::ServiceMap::kSlotBytes == 16 && dp::ServiceMap6::kSlotBytes == 32);
  Config v4 = base(100);
  Config v6 = v4;
  uint32_t i = 0;
  for (ServiceConfig& s : v6.services) {
    s.cluster_ip = dp::IpAddr::v6(*dp::parse_ip6("fd00:96::" + std::to_string(++i)));
    for (EndpointConfig& e : s.endpoints) {
      e.ip = dp::IpAddr::v6(*dp::parse_ip6("fd00:17::" + std::to_string(e.ip.as_v4().host() & 0xffff)));
    }
  }
  const MemoryPlan p4 = plan_memory(v4), p6 = plan_memory(v6);
  ASSERT_EQ(p6.service_ports, p4.service_ports);
  ASSERT_EQ(p6.backends, p4.backends);
  // 200 service ports and 600 backends: maps of 512 and 2048 slots, 16
  // bytes more each, less the other family's two empty maps of 8 slots (16
  // bytes fewer each); counted twice (the old snapshot's live on while a
  // change is published); and 12 more bytes a backend.
  EXPECT_EQ((p6.snapshot - p6.maglev) - (p4.snapshot - p4.maglev),
            2 * ((512 + 2048) * 16 - 2 * 8 * 16) + 600 * 12);
}

}  // namespace
}  // namespace podgate::ctl
