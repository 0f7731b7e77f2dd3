// The cluster-DNS responder's limits and edges (../shared/design/dns.md):
// UDP payload sizes and TC with whole records, the full answer over TCP,
// rotation, and names, zones and inputs the rows do not cover.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/dns_test_zone.hpp"

namespace podgate::ctl::dns {
namespace {

using namespace podgate::ctl::dns::test;

std::set<std::string> all_big_addresses() {
  std::set<std::string> s;
  for (int i = 0; i < 300; ++i) {
    s.insert(kBig + " 5 A 10.244." + std::to_string(1 + i / 200) + "." +
             std::to_string(1 + i % 200));
  }
  return s;
}

void expect_cut_to_whole_records(const Bytes& a, size_t limit) {
  EXPECT_LE(a.size(), limit);
  const Message m = decoded(a);  // decodes: every record is whole
  EXPECT_TRUE(has(m, kFlagTc));
  EXPECT_TRUE(has(m, kFlagAa));
  EXPECT_GT(m.answer.size(), 0u);
  EXPECT_LT(m.answer.size(), 300u);
  const std::set<std::string> all = all_big_addresses();
  for (const std::string& r : texts(m.answer)) EXPECT_TRUE(all.count(r)) << r;
  // Whole records up to the limit: one more A (16 octets) would not fit.
  EXPECT_GT(a.size() + 16, limit - (m.opt() ? kOptRecordSize : 0));
}

TEST(DnsTruncation, UdpWithoutEdnsIsCutAt512WithTc) {
  expect_cut_to_whole_records(respond_to(make_query(kBig, rrtype::kA)), 512);
}

TEST(DnsTruncation, TcpCarriesTheFullAnswer) {
  const Message m = ask(kBig, rrtype::kA, {}, Transport::kTcp);
  EXPECT_FALSE(has(m, kFlagTc));
  const Strings got = texts(m.answer);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), all_big_addresses());
  EXPECT_EQ(got.size(), 300u);
  const Message srv = ask("_http._tcp." + kBig, rrtype::kSrv, {}, Transport::kTcp);
  EXPECT_FALSE(has(srv, kFlagTc));
  EXPECT_EQ(srv.answer.size(), 300u);
  EXPECT_EQ(srv.additional.size(), 300u);
  EXPECT_NE(srv.answer[0].data.find("0 0 80 10-244-"), std::string::npos)
      << "weight floor(100 / 300) = 0, as CoreDNS: " << srv.answer[0].data;
}

TEST(DnsTruncation, UdpLimitIsTheAdvertisedSizeCappedByOurs) {
  struct Case {
    uint16_t advertised;
    size_t limit;
  };
  for (Case c : {Case{4096, 1232}, Case{1000, 1000}, Case{100, 512}, Case{512, 512}}) {
    QueryOptions o;
    o.edns_payload = c.advertised;
    const Bytes a = respond_to(make_query(kBig, rrtype::kA, o));
    SCOPED_TRACE(c.advertised);
    expect_cut_to_whole_records(a, c.limit);
    EXPECT_NE(decoded(a).opt(), nullptr) << "the OPT survives truncation";
  }
}

TEST(DnsTruncation, SmallAnswersFitWhateverTheLimit) {
  EXPECT_FALSE(has(ask("_mongo._tcp." + kMongo, rrtype::kSrv), kFlagTc));
}

TEST(DnsTruncation, CallerBufferTooSmallForTheQuestionGivesHeaderWithTc) {
  QueryOptions bad_version;
  bad_version.edns_payload = 1232;
  bad_version.edns_version = 1;
  for (const Bytes& q : {make_query(kApp, rrtype::kA), make_query("example.com", rrtype::kA),
                         make_query(kApp, rrtype::kA, bad_version)}) {
    const Bytes a = respond_to(q, Transport::kUdp, 0, 20);
    ASSERT_EQ(a.size(), kHeaderSize);
    const Message m = decoded(a);
    EXPECT_TRUE(has(m, kFlagTc)) << "not an answer that looks whole";
    EXPECT_TRUE(m.questions.empty());
  }
}

TEST(DnsRotation, RotationChangesTheOrderButNotTheSet) {
  const Message a0 = ask(kMongo, rrtype::kA, {}, Transport::kUdp, 0);
  const Message a1 = ask(kMongo, rrtype::kA, {}, Transport::kUdp, 1);
  const Message a2 = ask(kMongo, rrtype::kA, {}, Transport::kUdp, 2);
  EXPECT_NE(texts(a0.answer, false), texts(a1.answer, false));
  EXPECT_EQ(texts(a0.answer), texts(a1.answer));
  EXPECT_EQ(texts(a0.answer, false), texts(a2.answer, false)) << "period = record count";
  const std::string srv = "_mongo._tcp." + kMongo;
  const Message s0 = ask(srv, rrtype::kSrv, {}, Transport::kUdp, 0);
  const Message s1 = ask(srv, rrtype::kSrv, {}, Transport::kUdp, 1);
  EXPECT_NE(texts(s0.answer, false), texts(s1.answer, false));
  EXPECT_EQ(texts(s0.answer), texts(s1.answer));
  EXPECT_EQ(texts(s0.additional), texts(s1.additional));
}

TEST(DnsEdges, WildcardLabelIsJustAMissingName) {
  EXPECT_EQ(ask("*.default.svc.cluster.local.", rrtype::kA).rcode(), Rcode::kNxDomain);
  EXPECT_EQ(ask("*." + kMongo, rrtype::kA).rcode(), Rcode::kNxDomain);
}

TEST(DnsEdges, AnyReturnsTheRecordsOfTheName) {
  EXPECT_EQ(texts(ask(kApp, rrtype::kAny).answer), Strings{kApp + " 5 A 10.96.0.20"});
  EXPECT_EQ(texts(ask("cluster.local.", rrtype::kAny).answer),
            (Strings{"cluster.local. 5 NS ns.dns.cluster.local.", kSoa}));
}

TEST(DnsEdges, NameServerAddressIsServed) {
  EXPECT_EQ(texts(ask("NS.dns.cluster.local", rrtype::kA).answer),
            Strings{"NS.dns.cluster.local. 5 A 10.96.0.10"});
}

TEST(DnsEdges, WithoutServiceIpNsHasNoGlue) {
  Config cfg = cluster_config();
  cfg.dns.service_ip.reset();
  auto z = build_zone(cfg, 1);
  Bytes out(512);
  out.resize(respond(make_query("cluster.local", rrtype::kNs), *z, QueryContext{}, out));
  const Message m = decoded(out);
  EXPECT_EQ(texts(m.answer), Strings{"cluster.local. 5 NS ns.dns.cluster.local."});
  EXPECT_TRUE(m.additional.empty());
}

TEST(DnsEdges, OtherZoneNameIsServed) {
  Config cfg = cluster_config();
  cfg.dns.zone = "Corp.Example.";
  auto z = build_zone(cfg, 1);
  Bytes out(512);
  out.resize(respond(make_query("my-app.default.svc.corp.example", rrtype::kA), *z,
                     QueryContext{}, out));
  EXPECT_EQ(texts(decoded(out).answer),
            Strings{"my-app.default.svc.corp.example. 5 A 10.96.0.20"});
  out.resize(512);
  out.resize(respond(make_query(kApp, rrtype::kA), *z, QueryContext{}, out));
  EXPECT_EQ(decoded(out).rcode(), Rcode::kRefused);
}

TEST(DnsEdges, SameConfigBuildsTheSameZone) {
  auto a = build_zone(cluster_config(), 9);
  auto b = build_zone(cluster_config(), 9);
  EXPECT_EQ(a->node_count(), b->node_count());
  for (const char* name : {"_mongo._tcp.mongodb-service.default.svc.cluster.local", "big.default.svc.cluster.local"}) {
    Bytes x(kMaxMessage), y(kMaxMessage);
    x.resize(respond(make_query(name, rrtype::kAny), *a, QueryContext{Transport::kTcp, 3}, x));
    y.resize(respond(make_query(name, rrtype::kAny), *b, QueryContext{Transport::kTcp, 3}, y));
    EXPECT_EQ(x, y) << name;
  }
}

TEST(DnsEdges, GarbageNeverCrashesAndEveryAnswerDecodes) {
  std::mt19937 rng(12345);
  const std::vector<Bytes> seeds = {make_query(kApp, rrtype::kA), make_query(kBig, rrtype::kA),
                                    make_query("_mongo._tcp." + kMongo, rrtype::kSrv)};
  for (int i = 0; i < 20000; ++i) {
    Bytes q;
    if (i % 2 == 0) {
      q.resize(rng() % 300);
      for (uint8_t& b : q) b = static_cast<uint8_t>(rng());
    } else {
      q = seeds[i % seeds.size()];
      for (int k = 0; k < 1 + i % 4; ++k) q[rng() % q.size()] = static_cast<uint8_t>(rng());
      q[2] &= 0x7f;  // QR clear, so most of them are answered
    }
    const Transport t = i % 3 == 0 ? Transport::kTcp : Transport::kUdp;
    const Bytes a = respond_to(q, t, static_cast<uint32_t>(i), i % 5 == 0 ? 512 : kMaxMessage);
    if (a.empty()) continue;
    auto m = decode_message(a);
    ASSERT_TRUE(m.ok()) << "query " << i << ": " << m.error().message;
    EXPECT_EQ(m->header.id, (q[0] << 8) | q[1]);
    EXPECT_TRUE(has(*m, kFlagQr));
    if (t == Transport::kUdp) {
      EXPECT_LE(a.size(), 1232u);
    }
  }
}

}  // namespace
}  // namespace podgate::ctl::dns
