// The cluster-DNS responder against ../shared/design/dns.md: one test per
// numbered row (1-16) and one per "Always" rule.  Limits (TC, EDNS sizes,
// rotation) and edge cases are in dns_responder_limits_test.cpp.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "tests/unit/dns_test_zone.hpp"

namespace podgate::ctl::dns {
namespace {

using namespace podgate::ctl::dns::test;

// --- dns.md rows 1-16 -----------------------------------------------------

struct Row {
  const char* test_name;
  std::string qname;
  uint16_t qtype;
  Rcode rcode;
  Strings answer;
  Strings authority;
  Strings additional;
};

std::vector<Row> rows() {
  return {
      {"Row01_ClusterIpA", kApp, rrtype::kA, Rcode::kNoError, {kApp + " 5 A 10.96.0.20"}, {}, {}},
      {"Row02_AaaaOfIpv4ServiceIsNodata", kApp, rrtype::kAaaa, Rcode::kNoError, {}, {kSoa}, {}},
      {"Row03_ClusterIpWithoutReadyPodsStillHasVip", "idle.default.svc.cluster.local.",
       rrtype::kA, Rcode::kNoError, {"idle.default.svc.cluster.local. 5 A 10.96.0.21"}, {}, {}},
      {"Row04_ClusterIpSrv", "_http._tcp." + kApp, rrtype::kSrv, Rcode::kNoError,
       {"_http._tcp." + kApp + " 5 SRV 0 100 80 " + kApp}, {}, {kApp + " 5 A 10.96.0.20"}},
      {"Row05_SrvOfWrongProtocolIsNxdomain", "_http._udp." + kApp, rrtype::kSrv,
       Rcode::kNxDomain, {}, {kSoa}, {}},
      {"Row05_SrvOfUnknownPortNameIsNxdomain", "_grpc._tcp." + kApp, rrtype::kSrv,
       Rcode::kNxDomain, {}, {kSoa}, {}},
      {"Row06_ClusterIpPtr", "20.0.96.10.in-addr.arpa.", rrtype::kPtr, Rcode::kNoError,
       {"20.0.96.10.in-addr.arpa. 5 PTR " + kApp}, {}, {}},
      {"Row07_HeadlessAIsOnePerReadyEndpoint", kMongo, rrtype::kA, Rcode::kNoError,
       {kMongo + " 5 A 172.17.1.10", kMongo + " 5 A 172.17.1.11"}, {}, {}},
      {"Row08_PerPodName", "mongodb-0." + kMongo, rrtype::kA, Rcode::kNoError,
       {"mongodb-0." + kMongo + " 5 A 172.17.1.10"}, {}, {}},
      {"Row09_NotReadyPodNameIsNxdomain", "mongodb-2." + kMongo, rrtype::kA, Rcode::kNxDomain,
       {}, {kSoa}, {}},
      {"Row10_HeadlessSrvOnePerReadyEndpoint", "_mongo._tcp." + kMongo, rrtype::kSrv,
       Rcode::kNoError,
       {"_mongo._tcp." + kMongo + " 5 SRV 0 50 27017 mongodb-0." + kMongo,
        "_mongo._tcp." + kMongo + " 5 SRV 0 50 27017 mongodb-1." + kMongo},
       {},
       {"mongodb-0." + kMongo + " 5 A 172.17.1.10", "mongodb-1." + kMongo + " 5 A 172.17.1.11"}},
      {"Row11_PodIpPtr", "10.1.17.172.in-addr.arpa.", rrtype::kPtr, Rcode::kNoError,
       {"10.1.17.172.in-addr.arpa. 5 PTR mongodb-0." + kMongo}, {}, {}},
      {"Row12_HeadlessWithoutReadyEndpointsIsNxdomain", "empty.default.svc.cluster.local.",
       rrtype::kA, Rcode::kNxDomain, {}, {kSoa}, {}},
      {"Row13_DnsVersionTxt", "dns-version.cluster.local.", rrtype::kTxt, Rcode::kNoError,
       {"dns-version.cluster.local. 5 TXT \"1.1.0\""}, {}, {}},
      {"Row14_ApexSoa", "cluster.local.", rrtype::kSoa, Rcode::kNoError, {kSoa}, {}, {}},
      {"Row14_ApexNsWithGlue", "cluster.local.", rrtype::kNs, Rcode::kNoError,
       {"cluster.local. 5 NS ns.dns.cluster.local."}, {}, {"ns.dns.cluster.local. 5 A 10.96.0.10"}},
      {"Row15_UnknownServiceIsNxdomain", "nope.default.svc.cluster.local.", rrtype::kA,
       Rcode::kNxDomain, {}, {kSoa}, {}},
      {"Row15_UnknownNamespaceIsNxdomain", "my-app.nope.svc.cluster.local.", rrtype::kA,
       Rcode::kNxDomain, {}, {kSoa}, {}},
      {"Row15_BogusPodNameIsNxdomain", "bogus." + kMongo, rrtype::kA, Rcode::kNxDomain, {},
       {kSoa}, {}},
      {"Row15_NameLongerThanAnyShapeIsNxdomain", "a.b.mongodb-0." + kMongo, rrtype::kA,
       Rcode::kNxDomain, {}, {kSoa}, {}},
      {"Row15_SearchListExpansionIsNxdomain", "my-app.default.svc.cluster.local.default.svc."
       "cluster.local.", rrtype::kA, Rcode::kNxDomain, {}, {kSoa}, {}},
      {"Row16_ExternalNameCname", "ext.default.svc.cluster.local.", rrtype::kA, Rcode::kNoError,
       {"ext.default.svc.cluster.local. 5 CNAME www.example.com."}, {}, {}},
      {"Row16_ExternalNameCnameForCnameQuery", "ext.default.svc.cluster.local.", rrtype::kCname,
       Rcode::kNoError, {"ext.default.svc.cluster.local. 5 CNAME www.example.com."}, {}, {}},
  };
}

void PrintTo(const Row& r, std::ostream* os) { *os << r.qname << " " << type_name(r.qtype); }

class DnsRow : public ::testing::TestWithParam<Row> {};

TEST_P(DnsRow, AnswersAsSpecified) {
  const Row& row = GetParam();
  const Message m = ask(row.qname, row.qtype);
  EXPECT_EQ(m.rcode(), row.rcode);
  EXPECT_TRUE(has(m, kFlagQr));
  EXPECT_TRUE(has(m, kFlagAa)) << "AA on every in-zone answer, negatives included";
  EXPECT_FALSE(has(m, kFlagRa));
  EXPECT_FALSE(has(m, kFlagTc));
  ASSERT_EQ(m.questions.size(), 1u);
  EXPECT_EQ(m.questions[0].name, row.qname);
  EXPECT_EQ(m.questions[0].qtype, row.qtype);
  EXPECT_EQ(texts(m.answer), row.answer);
  EXPECT_EQ(texts(m.authority), row.authority);
  EXPECT_EQ(texts(m.additional), row.additional);
}

INSTANTIATE_TEST_SUITE_P(DnsMd, DnsRow, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<Row>& i) { return i.param.test_name; });

// Row 9, second half: publishNotReadyAddresses puts not-ready Pods in #7-#10.
TEST(DnsPublishNotReady, NotReadyPodsAreInAPerPodAndSrv) {
  const std::string svc = "peers.default.svc.cluster.local.";
  EXPECT_EQ(texts(ask(svc, rrtype::kA).answer),
            (Strings{svc + " 5 A 172.17.2.10", svc + " 5 A 172.17.2.11", svc + " 5 A 172.17.2.12"}));
  EXPECT_EQ(texts(ask("peers-2." + svc, rrtype::kA).answer),
            Strings{"peers-2." + svc + " 5 A 172.17.2.12"});
  const Message srv = ask("_gossip._udp." + svc, rrtype::kSrv);
  EXPECT_EQ(texts(srv.answer),
            (Strings{"_gossip._udp." + svc + " 5 SRV 0 33 7000 peers-0." + svc,
                     "_gossip._udp." + svc + " 5 SRV 0 33 7000 peers-1." + svc,
                     "_gossip._udp." + svc + " 5 SRV 0 33 7000 peers-2." + svc}));
  EXPECT_EQ(srv.additional.size(), 3u);
  EXPECT_EQ(ask("_gossip._tcp." + svc, rrtype::kSrv).rcode(), Rcode::kNxDomain);
}

TEST(DnsEndpointNames, EndpointWithoutPerPodNameIsNamedByDashedIp) {
  const std::string svc = "web.default.svc.cluster.local.";
  // 172.17.4.11 has a hostname but another subdomain: no per-Pod name.
  const Message srv = ask("_http._tcp." + svc, rrtype::kSrv);
  EXPECT_EQ(texts(srv.answer),
            (Strings{"_http._tcp." + svc + " 5 SRV 0 50 8080 172-17-4-10." + svc,
                     "_http._tcp." + svc + " 5 SRV 0 50 8080 172-17-4-11." + svc}));
  EXPECT_EQ(texts(srv.additional), (Strings{"172-17-4-10." + svc + " 5 A 172.17.4.10",
                                            "172-17-4-11." + svc + " 5 A 172.17.4.11"}));
  EXPECT_EQ(texts(ask("172-17-4-10." + svc, rrtype::kA).answer),
            Strings{"172-17-4-10." + svc + " 5 A 172.17.4.10"})
      << "an SRV target always resolves";
  EXPECT_EQ(ask("web-1." + svc, rrtype::kA).rcode(), Rcode::kNxDomain);
  EXPECT_EQ(ask("10.4.17.172.in-addr.arpa", rrtype::kPtr).rcode(), Rcode::kNxDomain)
      << "PTR only for Pods with names";
}

TEST(DnsEndpointNames, DuplicateHostnamesReturnEveryAddress) {
  const std::string name = "db.dup.default.svc.cluster.local.";
  EXPECT_EQ(texts(ask(name, rrtype::kA).answer),
            (Strings{name + " 5 A 172.17.5.10", name + " 5 A 172.17.5.11"}));
}

TEST(DnsClusterIp, NamedPortsOfEachProtocolHaveSrv) {
  const std::string svc = "kube-dns.kube-system.svc.cluster.local.";
  const Message udp = ask("_dns._udp." + svc, rrtype::kSrv);
  EXPECT_EQ(texts(udp.answer), Strings{"_dns._udp." + svc + " 5 SRV 0 100 53 " + svc});
  EXPECT_EQ(texts(udp.additional), Strings{svc + " 5 A 10.96.0.10"});
  EXPECT_EQ(ask("_dns-tcp._tcp." + svc, rrtype::kSrv).answer.size(), 1u);
  EXPECT_EQ(ask("_dns._tcp." + svc, rrtype::kSrv).rcode(), Rcode::kNxDomain);
}

// --- "Always" rules -------------------------------------------------------

TEST(DnsAlways, RdIsCopiedAndRaIsClear) {
  QueryOptions no_rd;
  no_rd.flags = 0;
  const Message without = ask(kApp, rrtype::kA, no_rd);
  EXPECT_FALSE(has(without, kFlagRd));
  EXPECT_FALSE(has(without, kFlagRa));
  const Message with = ask(kApp, rrtype::kA);  // RD set by default
  EXPECT_TRUE(has(with, kFlagRd));
  EXPECT_FALSE(has(with, kFlagRa));
  EXPECT_EQ(with.header.id, 0x1234);
}

TEST(DnsAlways, NegativeAnswersCarryTheSoaWithSerialAndNegativeTtl) {
  const Message nx = ask("nope.default.svc.cluster.local", rrtype::kA);
  ASSERT_EQ(nx.authority.size(), 1u);
  EXPECT_EQ(texts(nx.authority), Strings{kSoa});
  auto other = build_zone(cluster_config(), kSerial + 1);
  Bytes out(512);
  const size_t n = respond(make_query("nope.default.svc.cluster.local", rrtype::kA), *other,
                           QueryContext{}, out);
  out.resize(n);
  const Message m = decoded(out);
  ASSERT_EQ(m.authority.size(), 1u);
  EXPECT_NE(m.authority[0].data.find(" 43 7200 1800 86400 5"), std::string::npos)
      << m.authority[0].data;
}

TEST(DnsAlways, QuestionCaseIsEchoedExactlyAndNamesMatchCaseInsensitively) {
  const std::string mixed = "mY-aPp.DeFaUlT.sVc.Cluster.LOCAL.";
  const Bytes q = make_query(mixed, rrtype::kA);
  const Bytes a = respond_to(q);
  const Message m = decoded(a);
  EXPECT_EQ(m.rcode(), Rcode::kNoError);
  ASSERT_EQ(m.questions.size(), 1u);
  EXPECT_EQ(m.questions[0].name, mixed);
  ASSERT_EQ(m.answer.size(), 1u);
  EXPECT_EQ(m.answer[0].owner, mixed);
  EXPECT_EQ(m.answer[0].data, "10.96.0.20");
  // Byte for byte: the question section of the answer is the query's.
  ASSERT_GE(a.size(), q.size());
  EXPECT_TRUE(std::equal(q.begin() + kHeaderSize, q.end(), a.begin() + kHeaderSize));
}

TEST(DnsAlways, NameWithoutTrailingDotIsTheSameName) {
  EXPECT_EQ(texts(ask("my-app.default.svc.cluster.local", rrtype::kA).answer),
            texts(ask(kApp, rrtype::kA).answer));
}

TEST(DnsAlways, EmptyNonTerminalsAreNodataNotNxdomain) {
  const Strings names = {"svc.cluster.local.",     "default.svc.cluster.local.",
                         "kube-system.svc.cluster.local.", "_tcp." + kMongo,
                         "_tcp.idle.default.svc.cluster.local.", "dns.cluster.local.",
                         "1.17.172.in-addr.arpa.", "172.in-addr.arpa.", "in-addr.arpa."};
  for (const std::string& name : names) {
    const Message m = ask(name, rrtype::kA);
    EXPECT_EQ(m.rcode(), Rcode::kNoError) << name;
    EXPECT_TRUE(m.answer.empty()) << name;
    EXPECT_TRUE(has(m, kFlagAa)) << name;
    ASSERT_EQ(m.authority.size(), 1u) << name;
    EXPECT_EQ(texts(m.authority)[0], name.find("in-addr.arpa") != std::string::npos ? kReverseSoa
                                                                                    : kSoa)
        << name;
  }
}

TEST(DnsAlways, ExistingNameWithoutTheTypeIsNodata) {
  for (uint16_t t : {rrtype::kAaaa, rrtype::kTxt, rrtype::kSrv, rrtype::kPtr, uint16_t{15}}) {
    const Message m = ask(kApp, t);
    EXPECT_EQ(m.rcode(), Rcode::kNoError) << t;
    EXPECT_TRUE(m.answer.empty()) << t;
    EXPECT_EQ(texts(m.authority), Strings{kSoa}) << t;
  }
}

TEST(DnsAlways, OutsideTheServedZonesIsRefusedWithoutAa) {
  for (const char* name : {"www.example.com.", "local.", ".", "cluster.local.example.",
                           "xcluster.local.", "arpa.", "xip6.arpa."}) {
    const Message m = ask(name, rrtype::kA);
    EXPECT_EQ(m.rcode(), Rcode::kRefused) << name;
    EXPECT_FALSE(has(m, kFlagAa)) << name;
    EXPECT_TRUE(m.answer.empty() && m.authority.empty()) << name;
    ASSERT_EQ(m.questions.size(), 1u) << name;
  }
}

TEST(DnsAlways, UnknownReverseNameIsNxdomainWithTheReverseSoa) {
  const Message m = ask("99.1.17.172.in-addr.arpa.", rrtype::kPtr);
  EXPECT_EQ(m.rcode(), Rcode::kNxDomain);
  EXPECT_TRUE(has(m, kFlagAa));
  EXPECT_EQ(texts(m.authority), Strings{kReverseSoa});
}

TEST(DnsAlways, ClassOtherThanInIsRefused) {
  for (uint16_t klass : {kClassCh, uint16_t{255}, uint16_t{4}}) {
    QueryOptions o;
    o.qclass = klass;
    const char* name = klass == kClassCh ? "version.bind." : "my-app.default.svc.cluster.local.";
    const Message m = ask(name, rrtype::kTxt, o);
    EXPECT_EQ(m.rcode(), Rcode::kRefused) << klass;
    EXPECT_TRUE(m.answer.empty());
  }
}

TEST(DnsAlways, ZoneTransfersAreRefused) {
  for (uint16_t t : {rrtype::kAxfr, rrtype::kIxfr}) {
    EXPECT_EQ(ask("cluster.local.", t, {}, Transport::kTcp).rcode(), Rcode::kRefused) << t;
  }
}

TEST(DnsAlways, OpcodesOtherThanQueryAreNotImplemented) {
  for (uint16_t opcode : {1, 2, 4, 5, 15}) {
    QueryOptions o;
    o.flags = static_cast<uint16_t>(opcode << 11 | kFlagRd);
    const Message m = ask(kApp, rrtype::kSoa, o);
    EXPECT_EQ(m.rcode(), Rcode::kNotImp) << opcode;
    EXPECT_EQ(m.header.opcode(), opcode);
    EXPECT_TRUE(m.answer.empty());
    EXPECT_EQ(m.opt(), nullptr) << opcode << ": no OPT without one in the query";
    // RFC 6891 §7: an OPT in the query gets one in the answer, NOTIMP too.
    o.edns_payload = 4096;
    o.dnssec_ok = true;
    const Message e = ask(kApp, rrtype::kSoa, o);
    EXPECT_EQ(e.rcode(), Rcode::kNotImp) << opcode;
    ASSERT_NE(e.opt(), nullptr) << opcode;
    EXPECT_EQ(e.opt()->data, "udp=1232 version=0 do=1 ercode=0") << opcode;
  }
}

Bytes with_qdcount(Bytes q, uint16_t n) {
  q[4] = static_cast<uint8_t>(n >> 8);
  q[5] = static_cast<uint8_t>(n);
  return q;
}

void expect_formerr(const Bytes& q, const char* what) {
  const Message m = decoded(respond_to(q));
  EXPECT_EQ(m.rcode(), Rcode::kFormErr) << what;
  EXPECT_EQ(m.header.id, 0x1234) << what;
  EXPECT_TRUE(has(m, kFlagQr)) << what;
  EXPECT_TRUE(has(m, kFlagRd)) << what;
  EXPECT_FALSE(has(m, kFlagAa)) << what;
  EXPECT_TRUE(m.answer.empty()) << what;
}

TEST(DnsAlways, WrongQuestionCountIsFormerr) {
  const Bytes q = make_query(kApp, rrtype::kA);
  expect_formerr(Bytes(q.begin(), q.begin() + kHeaderSize), "QDCOUNT 0, header only");
  expect_formerr(with_qdcount(q, 0), "QDCOUNT 0 with a question");
  Bytes two = with_qdcount(q, 2);
  two.insert(two.end(), q.begin() + kHeaderSize, q.end());
  expect_formerr(two, "QDCOUNT 2");
}

// RFC 6891 §7 and dns.md "Always": the OPT comes back with a wrong question
// count's FORMERR too.  The RFC 7873 §5.4 cookie probe is exactly that:
// QDCOUNT 0 and an OPT.
TEST(DnsAlways, WrongQuestionCountWithOptIsFormerrWithOpt) {
  const Bytes probe = {0x12, 0x34, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 1,
                       0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
  Message m = decoded(respond_to(probe));
  EXPECT_EQ(m.rcode(), Rcode::kFormErr);
  EXPECT_TRUE(m.questions.empty());
  ASSERT_NE(m.opt(), nullptr);
  EXPECT_EQ(m.opt()->owner, ".");
  EXPECT_EQ(m.opt()->data, "udp=1232 version=0 do=0 ercode=0");

  QueryOptions o;
  o.edns_payload = 1232;
  o.dnssec_ok = true;
  const Bytes q = make_query(kApp, rrtype::kA, o);
  const Bytes question(q.begin() + kHeaderSize, q.end() - kOptRecordSize);
  Bytes two = with_qdcount(q, 2);
  two.insert(two.begin() + kHeaderSize, question.begin(), question.end());
  m = decoded(respond_to(two));
  EXPECT_EQ(m.rcode(), Rcode::kFormErr);
  EXPECT_TRUE(m.questions.empty());
  ASSERT_NE(m.opt(), nullptr) << "QDCOUNT 2";
  EXPECT_EQ(m.opt()->data, "udp=1232 version=0 do=1 ercode=0");

  // A cookie option (RFC 7873 §4, client cookie only) is not understood and
  // not echoed: RFC 7873 §5.2.1 lets a server without cookies ignore it.
  Bytes cookie = probe;
  cookie.back() = 12;
  cookie.insert(cookie.end(), {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8});
  m = decoded(respond_to(cookie, Transport::kTcp));
  EXPECT_EQ(m.rcode(), Rcode::kFormErr);
  ASSERT_NE(m.opt(), nullptr) << "over TCP too";
}

// The OPT rules of RFC 6891 hold for these answers as for any other: a
// version above 0 is BADVERS (§6.1.3), a second OPT is FORMERR (§6.1.1),
// and records that cannot be read give a FORMERR without one (§7).
TEST(DnsAlways, OptRulesHoldWithoutAQuestionAndForOtherOpcodes) {
  QueryOptions o;
  o.edns_payload = 1232;
  o.edns_version = 1;
  const Bytes q = make_query(kApp, rrtype::kA, o);
  Bytes bare(q.begin(), q.begin() + kHeaderSize);  // QDCOUNT 0, then the OPT
  bare[5] = 0;
  bare.insert(bare.end(), q.end() - kOptRecordSize, q.end());
  Message m = decoded(respond_to(bare));
  EXPECT_EQ(m.rcode(), Rcode::kBadVers) << "QDCOUNT 0";
  ASSERT_NE(m.opt(), nullptr);
  EXPECT_EQ(m.opt()->data, "udp=1232 version=0 do=0 ercode=1");

  o.flags = static_cast<uint16_t>(4 << 11 | kFlagRd);  // NOTIFY
  m = ask(kApp, rrtype::kSoa, o);
  EXPECT_EQ(m.rcode(), Rcode::kBadVers) << "NOTIFY";
  ASSERT_EQ(m.questions.size(), 1u);
  ASSERT_NE(m.opt(), nullptr);

  o.edns_version = 0;
  for (uint16_t opcode : {0, 4}) {
    o.flags = static_cast<uint16_t>(opcode << 11 | kFlagRd);
    Bytes two_opts = make_query(kApp, rrtype::kSoa, o);
    two_opts[11] = 2;
    const Bytes opt_rr(two_opts.end() - kOptRecordSize, two_opts.end());
    two_opts.insert(two_opts.end(), opt_rr.begin(), opt_rr.end());
    m = decoded(respond_to(two_opts));
    EXPECT_EQ(m.rcode(), Rcode::kFormErr) << opcode << ": two OPT records";
    EXPECT_EQ(m.opt(), nullptr) << opcode;
    Bytes no_question = with_qdcount(two_opts, 0);
    no_question.erase(no_question.begin() + kHeaderSize, no_question.end() - 2 * kOptRecordSize);
    m = decoded(respond_to(no_question));
    EXPECT_EQ(m.rcode(), Rcode::kFormErr) << opcode << ": QDCOUNT 0, two OPT records";
    EXPECT_EQ(m.opt(), nullptr) << opcode;
  }

  o.flags = kFlagRd;
  Bytes cut = with_qdcount(make_query(kApp, rrtype::kA, o), 0);  // the question read as a record
  cut.erase(cut.end() - 3, cut.end());
  m = decoded(respond_to(cut));
  EXPECT_EQ(m.rcode(), Rcode::kFormErr);
  EXPECT_EQ(m.opt(), nullptr) << "records that cannot be read";
}

TEST(DnsAlways, MalformedQuestionIsFormerr) {
  const Bytes q = make_query(kApp, rrtype::kA);
  expect_formerr(Bytes(q.begin(), q.end() - 2), "class cut off");
  expect_formerr(Bytes(q.begin(), q.begin() + 20), "name cut off");
  Bytes header(q.begin(), q.begin() + kHeaderSize);
  auto with_name = [&](Bytes name) {
    Bytes m = header;
    m.insert(m.end(), name.begin(), name.end());
    m.insert(m.end(), {0, 1, 0, 1});
    return m;
  };
  expect_formerr(with_name({0xc0, 0x0c}), "pointer to itself");
  expect_formerr(with_name({1, 'a', 0xc0, 0x0c}), "pointer loop");
  expect_formerr(with_name({0xc0, 0x20, 0, 0, 0, 0}), "forward pointer");
  expect_formerr(with_name({0x40, 'a', 0}), "label type 01 (length 64)");
  Bytes big;
  for (int i = 0; i < 5; ++i) {
    big.push_back(60);
    big.insert(big.end(), 60, 'x');
  }
  big.push_back(0);
  expect_formerr(with_name(big), "name of 306 octets");
  Bytes extra = q;
  extra[11] = 1;  // ARCOUNT 1 without the record
  expect_formerr(extra, "missing additional record");
}

TEST(DnsAlways, NoHeaderOrAResponseGetsSilence) {
  const Bytes q = make_query(kApp, rrtype::kA);
  for (size_t n = 0; n < kHeaderSize; ++n) {
    EXPECT_TRUE(respond_to(Bytes(q.begin(), q.begin() + n)).empty()) << n;
  }
  QueryOptions o;
  o.flags = kFlagQr | kFlagRd;
  EXPECT_TRUE(respond_to(make_query(kApp, rrtype::kA, o)).empty());
  Bytes tiny(kHeaderSize - 1);
  EXPECT_EQ(respond(q, zone(), QueryContext{}, tiny), 0u) << "no room even for a header";
}

TEST(DnsAlways, CompressionPointerInTheQuestionIsFollowed) {
  // ID 0x01 'a' and flags 0x00 0x00 spell "a." at offset 0: a question
  // name "C0 00" is legal and means "a." (outside the zone: REFUSED), and
  // the answer echoes it uncompressed.
  Bytes q = {0x01, 'a', 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x00, 0, 1, 0, 1};
  const Message m = decoded(respond_to(q));
  EXPECT_EQ(m.rcode(), Rcode::kRefused);
  ASSERT_EQ(m.questions.size(), 1u);
  EXPECT_EQ(m.questions[0].name, "a.");
}

TEST(DnsAlways, CompressedRecordsInTheQueryAreSkipped) {
  QueryOptions o;
  o.edns_payload = 1232;
  Bytes q = make_query(kApp, rrtype::kA, o);
  q[11] = 2;  // an A record owned by a pointer to the question, then the OPT
  const Bytes rr = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1};
  q.insert(q.end() - kOptRecordSize, rr.begin(), rr.end());
  const Message m = decoded(respond_to(q));
  EXPECT_EQ(m.rcode(), Rcode::kNoError);
  EXPECT_EQ(m.answer.size(), 1u);
  EXPECT_NE(m.opt(), nullptr);
}

TEST(DnsAlways, OptIsEchoedWithOurPayloadAndTheDoBit) {
  QueryOptions o;
  o.edns_payload = 4096;
  o.dnssec_ok = true;
  const Message m = ask(kApp, rrtype::kA, o);
  ASSERT_NE(m.opt(), nullptr);
  EXPECT_EQ(m.opt()->data, "udp=1232 version=0 do=1 ercode=0");
  EXPECT_EQ(m.opt()->owner, ".");
  EXPECT_EQ(m.answer.size(), 1u);
  EXPECT_EQ(ask(kApp, rrtype::kA).opt(), nullptr) << "no OPT without one in the query";
  EXPECT_NE(ask("example.com", rrtype::kA, o).opt(), nullptr) << "REFUSED carries it too";
}

TEST(DnsAlways, UnknownEdnsVersionIsBadvers) {
  QueryOptions o;
  o.edns_payload = 1232;
  o.edns_version = 1;
  const Message m = ask(kApp, rrtype::kA, o);
  EXPECT_EQ(m.rcode(), Rcode::kBadVers);
  EXPECT_EQ(m.header.flags & kRcodeMask, 0);  // 16: all in the OPT's upper bits
  ASSERT_NE(m.opt(), nullptr);
  EXPECT_EQ(m.opt()->data, "udp=1232 version=0 do=0 ercode=1");
  EXPECT_TRUE(m.answer.empty());
}

}  // namespace

namespace {

// --- IPv6 dual-stack (issue 11): AAAA, ip6.arpa, both families per name ---

const std::string kDual = "dual.default.svc.cluster.local.";
const std::string kV6 = "v6app.default.svc.cluster.local.";
const std::string kCache = "cache6.default.svc.cluster.local.";
// fd00:10:96::30 and fd00:10:244:6::a in nibble form (RFC 3596 section 2.5).
const std::string kDualPtr = "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.";
const std::string kCachePtr = "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.0.0.0.4.4.2.0.0.1.0.0.0.0.d.f.ip6.arpa.";

std::vector<Row> rows6() {
  return {
      {"DualStackA", kDual, rrtype::kA, Rcode::kNoError, {kDual + " 5 A 10.96.0.30"}, {}, {}},
      {"DualStackAaaa", kDual, rrtype::kAaaa, Rcode::kNoError, {kDual + " 5 AAAA fd00:10:96::30"}, {}, {}},
      {"Ipv6OnlyAaaa", kV6, rrtype::kAaaa, Rcode::kNoError, {kV6 + " 5 AAAA fd00:10:96::31"}, {}, {}},
      {"Ipv6OnlyAIsNodata", kV6, rrtype::kA, Rcode::kNoError, {}, {kSoa}, {}},
      {"DualStackSrvHasBothAddressesAdditional", "_http._tcp." + kDual, rrtype::kSrv, Rcode::kNoError,
       {"_http._tcp." + kDual + " 5 SRV 0 100 80 " + kDual}, {},
       {kDual + " 5 A 10.96.0.30", kDual + " 5 AAAA fd00:10:96::30"}},
      {"Ipv6ClusterIpPtr", kDualPtr, rrtype::kPtr, Rcode::kNoError, {kDualPtr + " 5 PTR " + kDual}, {}, {}},
      {"Ipv4PtrOfDualStackService", "30.0.96.10.in-addr.arpa.", rrtype::kPtr, Rcode::kNoError,
       {"30.0.96.10.in-addr.arpa. 5 PTR " + kDual}, {}, {}},
      {"PartialIp6ArpaNameIsNodata", kDualPtr.substr(20), rrtype::kPtr, Rcode::kNoError, {},
       {kReverse6Soa}, {}},
      {"UnknownIp6ArpaNameIsNxdomain", "f" + kDualPtr.substr(1), rrtype::kPtr, Rcode::kNxDomain, {},
       {kReverse6Soa}, {}},
      {"Ip6ArpaNameLongerThanAnAddressIsNxdomain", "0." + kDualPtr, rrtype::kPtr, Rcode::kNxDomain,
       {}, {kReverse6Soa}, {}},
      {"Ip6ArpaApexSoa", "ip6.arpa.", rrtype::kSoa, Rcode::kNoError, {kReverse6Soa}, {}, {}},
      {"HeadlessAaaaIsOnePerIpv6Endpoint", kCache, rrtype::kAaaa, Rcode::kNoError,
       {kCache + " 5 AAAA fd00:10:244:6::a", kCache + " 5 AAAA fd00:10:244:6::b"}, {}, {}},
      {"HeadlessAIsTheIpv4Endpoints", kCache, rrtype::kA, Rcode::kNoError, {kCache + " 5 A 172.17.6.10"}, {}, {}},
      {"DualStackPodNameAaaa", "cache-0." + kCache, rrtype::kAaaa, Rcode::kNoError,
       {"cache-0." + kCache + " 5 AAAA fd00:10:244:6::a"}, {}, {}},
      {"DualStackPodNameA", "cache-0." + kCache, rrtype::kA, Rcode::kNoError,
       {"cache-0." + kCache + " 5 A 172.17.6.10"}, {}, {}},
      {"Ipv6EndpointWithoutHostnameIsNamedByDashedIp", "fd00-10-244-6--b." + kCache, rrtype::kAaaa,
       Rcode::kNoError, {"fd00-10-244-6--b." + kCache + " 5 AAAA fd00:10:244:6::b"}, {}, {}},
      {"DashedIpv6NameHasNoA", "fd00-10-244-6--b." + kCache, rrtype::kA, Rcode::kNoError, {},
       {kSoa}, {}},
      {"HeadlessSrvOnePerTargetWithBothFamiliesAdditional", "_redis._tcp." + kCache, rrtype::kSrv,
       Rcode::kNoError,
       {"_redis._tcp." + kCache + " 5 SRV 0 33 6379 cache-0." + kCache,
        "_redis._tcp." + kCache + " 5 SRV 0 33 6379 fd00-10-244-6--b." + kCache},
       {},
       {"cache-0." + kCache + " 5 A 172.17.6.10", "cache-0." + kCache + " 5 AAAA fd00:10:244:6::a",
        "fd00-10-244-6--b." + kCache + " 5 AAAA fd00:10:244:6::b"}},
      {"Ipv6PodPtr", kCachePtr, rrtype::kPtr, Rcode::kNoError, {kCachePtr + " 5 PTR cache-0." + kCache},
       {}, {}},
      {"Ipv6PodWithoutHostnameHasNoPtr", "b" + kCachePtr.substr(1), rrtype::kPtr, Rcode::kNxDomain,
       {}, {kReverse6Soa}, {}},
  };
}

INSTANTIATE_TEST_SUITE_P(DualStack, DnsRow, ::testing::ValuesIn(rows6()),
                         [](const ::testing::TestParamInfo<Row>& i) { return i.param.test_name; });

TEST(DnsDualStack, AnyAnswersBothFamilies) {
  EXPECT_EQ(texts(ask(kDual, rrtype::kAny).answer),
            (Strings{kDual + " 5 A 10.96.0.30", kDual + " 5 AAAA fd00:10:96::30"}));
}

TEST(DnsDualStack, AaaaRecordsRotate) {
  const Message a = ask(kCache, rrtype::kAaaa, {}, Transport::kUdp, 0);
  const Message b = ask(kCache, rrtype::kAaaa, {}, Transport::kUdp, 1);
  ASSERT_EQ(a.answer.size(), 2u);
  EXPECT_NE(texts(a.answer, false), texts(b.answer, false));
  EXPECT_EQ(texts(a.answer), texts(b.answer));
}

TEST(DnsDualStack, AddingASecondClusterIpChangesTheZone) {
  Config before = cluster_config();
  Config after = before;
  for (size_t i = 0; i < after.services.size(); ++i) {
    if (std::as_const(after.services)[i].name == "my-app") {
      after.services[i].secondary_cluster_ip = dp::parse_ip("fd00:10:96::20");
    }
  }
  const ServiceDiff diff = diff_services(before.services, after.services);
  EXPECT_FALSE(zone_unchanged(diff, after.services));
}

}  // namespace
}  // namespace podgate::ctl::dns
