// ZoneUpdater: a zone updated for a change to a few services answers
// exactly as a zone built whole from the same config, over every name of a
// generated config (ClusterIP of both families, headless per-Pod names,
// SRV, PTR in in-addr.arpa and ip6.arpa, ExternalName, names two services
// share), through a long run of random changes; and it shares what did
// not change with the version before.
#include "control/dns/zone_updater.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "control/dns/message.hpp"
#include "control/dns/wire.hpp"

namespace podgate::ctl::dns {
namespace {

dp::IpAddr ip4(uint32_t host) { return dp::IpAddr::v4(dp::Ip4::from_host(host)); }
dp::IpAddr ip6(uint32_t low) {
  return *dp::parse_ip("fd00:10::" + std::to_string(low % 10000) + ":" + std::to_string(low / 10000));
}

EndpointConfig endpoint(dp::IpAddr ip, std::string hostname = "", std::string subdomain = "",
                        bool ready = true) {
  EndpointConfig e;
  e.ip = ip;
  e.hostname = std::move(hostname);
  e.subdomain = std::move(subdomain);
  e.ready = ready;
  return e;
}

// Service `i` of kind i % 8, with `variant` moving its endpoints and ports.
ServiceConfig make_service(uint32_t i, uint32_t variant) {
  ServiceConfig s;
  s.ns = i % 3 == 0 ? "default" : "ns" + std::to_string(i % 5);
  s.name = "svc-" + std::to_string(i);
  s.ports = {{"http", 80, 8080, dp::Proto::kTcp}, {"", 443, 8443, dp::Proto::kTcp}};
  if (variant % 2 == 1) s.ports.push_back({"dns", 53, 5353, dp::Proto::kUdp});
  const uint32_t base = 0xac110000 + i * 16;
  switch (i % 8) {
    case 0:  // ClusterIP, IPv4
      s.cluster_ip = ip4(0x0a600000 + i);
      break;
    case 1:  // dual-stack
      s.cluster_ip = ip4(0x0a600000 + i);
      s.secondary_cluster_ip = ip6(i);
      break;
    case 2:  // IPv6 only
      s.cluster_ip = ip6(i);
      break;
    case 3:  // shares service 0's VIP (other ports): its PTR has two targets
      s.cluster_ip = ip4(0x0a600000);
      s.ports = {{"alt", static_cast<uint16_t>(8000 + i), 80, dp::Proto::kTcp}};
      break;
    case 4:  // ExternalName
      s.type = ServiceType::kExternalName;
      s.external_name = "db" + std::to_string(variant) + ".example.com";
      break;
    default:  // headless: StatefulSet names, dashed names, not ready ones
      s.publish_not_ready_addresses = i % 8 == 7 && variant % 3 == 0;
      for (uint32_t j = 0; j < 3 + variant % 4; ++j) {
        const dp::IpAddr addr = j % 3 == 2 ? ip6(base + j) : ip4(base + j);
        const bool named = i % 8 == 5 || j % 2 == 0;
        s.endpoints.push_back(endpoint(addr, named ? "pod-" + std::to_string(j) : "",
                                       named ? s.name : "", (j + variant) % 4 != 3));
      }
      // A Pod address another headless service also names: a shared PTR.
      if (i % 8 == 6) s.endpoints.push_back(endpoint(ip4(0xac100001), "shared", s.name));
      break;
  }
  return s;
}

Config make_config(uint32_t services) {
  Config c;
  c.dns.zone = "cluster.local";
  c.dns.service_ip = dp::Ip4::from_host(0x0a60000a);
  c.dns.ttl = 5;
  for (uint32_t i = 0; i < services; ++i) c.services.push_back(make_service(i, 0));
  return c;
}

// "\x03www\x07example\x00" -> "www.example".
std::string dotted(const std::string& wire) {
  std::string out;
  for (size_t i = 0; i < wire.size() && wire[i] != 0; i += 1 + static_cast<uint8_t>(wire[i])) {
    if (!out.empty()) out += '.';
    out.append(wire, i + 1, static_cast<uint8_t>(wire[i]));
  }
  return out;
}

std::vector<uint8_t> answer(const Zone& z, const std::string& name, uint16_t qtype) {
  std::vector<uint8_t> out(kMaxMessage);
  out.resize(respond(make_query(name, qtype), z, QueryContext{Transport::kTcp, 1}, out));
  return out;
}

// Every node of `whole` is in `updated` with the same records, nothing
// more, and every name answers the same, byte for byte.
void expect_same(const Zone& whole, const Zone& updated) {
  ASSERT_EQ(whole.node_count(), updated.node_count());
  EXPECT_EQ(whole.serial(), updated.serial());
  std::vector<std::string> names = {"nope.default.svc.cluster.local", "4.3.2.1.in-addr.arpa",
                                    "example.com"};
  for (const Zone::Node* n : whole.nodes()) {
    const Zone::Node* u = updated.node(n->owner);
    ASSERT_NE(u, nullptr) << dotted(n->owner);
    EXPECT_EQ(*u, *n) << dotted(n->owner);
    names.push_back(dotted(n->owner));
  }
  for (const std::string& name : names) {
    for (uint16_t t : {rrtype::kA, rrtype::kAaaa, rrtype::kSrv, rrtype::kPtr, rrtype::kAny}) {
      ASSERT_EQ(answer(whole, name, t), answer(updated, name, t)) << name << " type " << t;
    }
  }
}

TEST(ZoneUpdate, ARandomRunOfChangesAnswersAsAZoneBuiltWhole) {
  Config c = make_config(64);
  ZoneUpdater updater;
  updater.rebuild(c, 1);
  std::mt19937 rng(7);
  uint32_t next = 64;
  for (uint32_t version = 2; version < 160; ++version) {
    const ServiceList before = c.services;
    const uint32_t what = rng() % 4;
    const size_t at = rng() % c.services.size();
    if (what == 0 && c.services.size() > 8) {
      c.services.erase(c.services.begin() + static_cast<ptrdiff_t>(at));
    } else if (what == 1) {
      c.services.push_back(make_service(next++, rng() % 12));
    } else {
      const ServiceConfig& s = std::as_const(c.services)[at];
      const uint32_t i = static_cast<uint32_t>(std::stoul(s.name.substr(4)));
      c.services.replace(at, make_service(i, rng() % 12));
    }
    const ServiceDiff diff = diff_services(before, c.services);
    auto updated = updater.follow(c, &diff, version);
    auto whole = build_zone(c, updated->serial());
    SCOPED_TRACE("version " + std::to_string(version));
    expect_same(*whole, *updated);
    if (HasFatalFailure()) return;
  }
}

TEST(ZoneBuild, AHeadlessPodWithTwoAddressesHasOneSrvPerPortPastManyPods) {
  // Past 32 records a node's SRV duplicates are found by a set, not a scan.
  Config c = make_config(0);
  ServiceConfig s;
  s.ns = "default";
  s.name = "many";
  s.ports = {{"http", 80, 8080, dp::Proto::kTcp}, {"dns", 53, 5353, dp::Proto::kUdp}};
  for (uint32_t j = 0; j < 40; ++j) {
    const std::string pod = "pod-" + std::to_string(j);
    s.endpoints.push_back(endpoint(ip4(0xac110000 + j), pod, "many"));
    s.endpoints.push_back(endpoint(ip6(j), pod, "many"));  // dual-stack: the same name
  }
  c.services.push_back(s);
  auto z = build_zone(c, 1);
  for (const char* srv : {"_http._tcp.many.default.svc.cluster.local", "_dns._udp.many.default.svc.cluster.local"}) {
    const Zone::Node* n = z->node(*encode_name(srv));
    ASSERT_NE(n, nullptr) << srv;
    ASSERT_EQ(n->srv.size(), 40u) << srv;
    for (uint32_t j = 0; j < 40; ++j) {
      EXPECT_EQ(dotted(n->srv[j].target), "pod-" + std::to_string(j) + ".many.default.svc.cluster.local");
    }
  }
  const Zone::Node* pod = z->node(*encode_name("pod-39.many.default.svc.cluster.local"));
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->a.size(), 1u);
  EXPECT_EQ(pod->aaaa.size(), 1u);
}

TEST(ZoneUpdate, AChangeNotVisibleInDnsKeepsTheZoneAndItsSerial) {
  Config c = make_config(16);
  ZoneUpdater updater;
  auto first = updater.follow(c, nullptr, 1);
  const ServiceList before = c.services;
  c.services[0].endpoints.push_back(endpoint(ip4(0xac120001)));  // a ClusterIP service's endpoint
  const ServiceDiff diff = diff_services(before, c.services);
  EXPECT_EQ(updater.follow(c, &diff, 2), first);
  // The next change to that service finds it under its new identity.
  const ServiceList again = c.services;
  c.services[0].cluster_ip = ip4(0x0a6000ff);
  const ServiceDiff diff2 = diff_services(again, c.services);
  auto z = updater.follow(c, &diff2, 3);
  expect_same(*build_zone(c, 3), *z);
}

TEST(ZoneUpdate, AChangeToOneServiceSharesEveryOtherName) {
  Config c = make_config(200);
  ZoneUpdater updater;
  auto first = updater.rebuild(c, 1);
  const ServiceList before = c.services;
  c.services.replace(5, make_service(5, 1));  // a headless service: endpoints and a port more
  const ServiceDiff diff = diff_services(before, c.services);
  auto second = updater.update(diff, c.services, 2);
  size_t shared = 0;
  for (const Zone::Node* n : second->nodes()) shared += first->node(n->owner) == n;
  // Every node is the last version's, but svc-5's names and the PTRs to
  // them (and ancestors that came or went with them).
  const std::string svc = *encode_name("svc-5.ns0.svc.cluster.local");
  const auto under_svc = [&](const std::string& wire) {
    return wire.size() >= svc.size() && wire.compare(wire.size() - svc.size(), svc.size(), svc) == 0;
  };
  const auto of_svc5 = [&](const Zone::Node* n) {
    if (n == nullptr) return false;
    if (under_svc(n->owner)) return true;
    for (const std::string& p : n->ptr) {
      if (under_svc(p)) return true;
    }
    return false;
  };
  size_t changed = 0;
  for (const Zone::Node* n : second->nodes()) {
    const Zone::Node* old = first->node(n->owner);
    if (old == n) continue;
    ++changed;
    EXPECT_TRUE(of_svc5(n) || of_svc5(old) || (old == nullptr && n->ptr.empty() && n->a.empty()))
        << dotted(n->owner);
  }
  EXPECT_GT(changed, 0u);
  EXPECT_GT(shared, second->node_count() - 20);
  expect_same(*build_zone(c, 2), *second);
  // The version before is unchanged: the responder may still be reading it.
  expect_same(*build_zone([&] {
    Config old = c;
    old.services = before;
    return old;
  }(), 1), *first);
}

}  // namespace
}  // namespace podgate::ctl::dns
