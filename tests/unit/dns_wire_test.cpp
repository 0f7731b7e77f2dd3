// The DNS wire codec: bounded name reading (RFC 1035 §4.1.4 pointers,
// §2.3.4 limits), EDNS0 OPT parsing (RFC 6891), and the writer's name
// compression and whole-record truncation.
#include "control/dns/wire.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "control/dns/message.hpp"
#include "control/dns/zone.hpp"

namespace podgate::ctl::dns {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes wire(std::string_view dotted) {
  auto w = encode_name(dotted);
  EXPECT_TRUE(w.has_value()) << dotted;
  return w ? Bytes(w->begin(), w->end()) : Bytes{};
}

std::string read_text(const Bytes& msg, size_t pos, size_t* next = nullptr) {
  Name n;
  if (!read_name(msg, pos, n)) return "<malformed>";
  if (next != nullptr) *next = pos;
  return to_text(n);
}

// A name of `labels` labels of `size` octets each, in wire form.
Bytes long_name(size_t labels, size_t size) {
  Bytes b;
  for (size_t i = 0; i < labels; ++i) {
    b.push_back(static_cast<uint8_t>(size));
    b.insert(b.end(), size, 'a');
  }
  b.push_back(0);
  return b;
}

TEST(DnsName, PlainNameIsReadAndPositionMovesPastRoot) {
  Bytes m = {0xff, 3, 'F', 'o', 'o', 3, 'c', 'o', 'm', 0, 0xee};
  size_t next = 0;
  EXPECT_EQ(read_text(m, 1, &next), "Foo.com.");
  EXPECT_EQ(next, 10u);
}

TEST(DnsName, RootIsOneOctet) {
  Bytes m = {0};
  size_t next = 0;
  EXPECT_EQ(read_text(m, 0, &next), ".");
  EXPECT_EQ(next, 1u);
}

TEST(DnsName, BackwardPointerIsFollowedAndPositionMovesPastPointer) {
  // "com." at 0, "foo" + pointer to 0 at 5.
  Bytes m = {3, 'c', 'o', 'm', 0, 3, 'f', 'o', 'o', 0xc0, 0x00, 0x77};
  size_t next = 0;
  EXPECT_EQ(read_text(m, 5, &next), "foo.com.");
  EXPECT_EQ(next, 11u);
}

TEST(DnsName, ChainedBackwardPointersAreFollowed) {
  // "com." at 0; "b" -> 0 at 5; "a" -> 5 at 9.
  Bytes m = {3, 'c', 'o', 'm', 0, 1, 'b', 0xc0, 0x00, 1, 'a', 0xc0, 0x05};
  EXPECT_EQ(read_text(m, 9), "a.b.com.");
}

TEST(DnsName, PointerToItselfIsRejected) {
  Bytes m = {0xc0, 0x00};
  EXPECT_EQ(read_text(m, 0), "<malformed>");
}

TEST(DnsName, PointerIntoItsOwnLabelsIsRejected) {
  // "a" then a pointer back to the "a": a loop that only goes backwards
  // relative to the pointer, not relative to the labels it interrupts.
  Bytes m = {1, 'a', 0xc0, 0x00};
  EXPECT_EQ(read_text(m, 0), "<malformed>");
}

TEST(DnsName, TwoPointerCycleIsRejected) {
  Bytes m = {0xc0, 0x02, 0xc0, 0x00};
  EXPECT_EQ(read_text(m, 2), "<malformed>");
  EXPECT_EQ(read_text(m, 0), "<malformed>");
}

TEST(DnsName, ForwardPointerIsRejected) {
  Bytes m = {0xc0, 0x02, 3, 'c', 'o', 'm', 0};
  EXPECT_EQ(read_text(m, 0), "<malformed>");
}

TEST(DnsName, ExtendedLabelTypesAreRejected) {
  // 0x40 (a "label" of 64) and 0x80: label types RFC 6891 retired.
  for (uint8_t t : {uint8_t{0x40}, uint8_t{0x80}, uint8_t{0x7f}}) {
    Bytes m = {t, 'a', 'b', 0};
    EXPECT_EQ(read_text(m, 0), "<malformed>") << int{t};
  }
}

TEST(DnsName, Label63IsAcceptedAndNameOf255Octets) {
  // 3 x 63 + 1 x 61 labels: 4*64 - 2 + 1 = 255 octets.
  Bytes m = long_name(3, 63);
  m.pop_back();
  m.push_back(61);
  m.insert(m.end(), 61, 'b');
  m.push_back(0);
  ASSERT_EQ(m.size(), 255u);
  Name n;
  size_t pos = 0;
  ASSERT_TRUE(read_name(m, pos, n));
  EXPECT_EQ(n.size, 255);
}

TEST(DnsName, NameOf256OctetsIsRejected) {
  Bytes m = long_name(3, 63);
  m.pop_back();
  m.push_back(62);
  m.insert(m.end(), 62, 'b');
  m.push_back(0);
  ASSERT_EQ(m.size(), 256u);
  EXPECT_EQ(read_text(m, 0), "<malformed>");
}

TEST(DnsName, NameOver255ThroughPointersIsRejected) {
  // Each segment is short but the decompressed whole is too long.
  Bytes m = long_name(2, 63);  // 129 octets at 0
  Bytes tail = {63};
  tail.insert(tail.end(), 63, 'c');
  tail.push_back(63);
  tail.insert(tail.end(), 63, 'd');
  tail.push_back(0xc0);
  tail.push_back(0x00);
  const size_t at = m.size();
  m.insert(m.end(), tail.begin(), tail.end());
  EXPECT_EQ(read_text(m, at), "<malformed>");
}

TEST(DnsName, TruncatedLabelOrPointerIsRejected) {
  EXPECT_EQ(read_text(Bytes{3, 'c', 'o'}, 0), "<malformed>");
  EXPECT_EQ(read_text(Bytes{3, 'c', 'o', 'm'}, 0), "<malformed>");  // no root
  EXPECT_EQ(read_text(Bytes{0xc0}, 0), "<malformed>");
  EXPECT_EQ(read_text(Bytes{}, 0), "<malformed>");
}

TEST(DnsName, LowercaseFoldsAsciiOnly) {
  Bytes m = {4, 'M', 'y', 0xc4, 'Z', 0};
  Name in, out;
  size_t pos = 0;
  ASSERT_TRUE(read_name(m, pos, in));
  lowercase(in, out);
  EXPECT_EQ(Bytes(out.wire().begin(), out.wire().end()), (Bytes{4, 'm', 'y', 0xc4, 'z', 0}));
}

TEST(DnsName, EncodeNameLowercasesAndChecksLimits) {
  EXPECT_EQ(wire("A.b."), (Bytes{1, 'a', 1, 'b', 0}));
  EXPECT_EQ(*encode_name("."), std::string(1, '\0'));
  EXPECT_FALSE(encode_name("a..b"));
  EXPECT_FALSE(encode_name("a.b.."));
  EXPECT_FALSE(encode_name(std::string(64, 'x') + ".com"));
  std::string big;
  for (int i = 0; i < 4; ++i) big += std::string(63, 'x') + ".";
  EXPECT_FALSE(encode_name(big));  // 4 * 64 + 1 = 257 octets
}

TEST(DnsName, ToTextEscapesDotsAndUnprintables) {
  Name n;
  Bytes m = {3, 'a', '.', 0x01, 0};
  size_t pos = 0;
  ASSERT_TRUE(read_name(m, pos, n));
  EXPECT_EQ(to_text(n), "a\\046\\001.");
}

// --- EDNS0 and record walking ------------------------------------------------

Bytes query_with(const Bytes& additional, uint16_t arcount, uint16_t ancount = 0) {
  Bytes q = make_query("a.example", rrtype::kA);
  q[7] = static_cast<uint8_t>(ancount);
  q[11] = static_cast<uint8_t>(arcount);
  q.insert(q.end(), additional.begin(), additional.end());
  return q;
}

bool records_ok(const Bytes& q, Edns& edns) {
  Header h;
  EXPECT_TRUE(read_header(q, h));
  size_t pos = kHeaderSize;
  Question question;
  EXPECT_TRUE(read_question(q, pos, question));
  return read_records(q, pos, h, edns);
}

const Bytes kOpt4096Do = {0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0x00, 0, 0};

TEST(DnsEdns, OptGivesPayloadVersionAndDoBit) {
  QueryOptions o;
  o.edns_payload = 4096;
  o.dnssec_ok = true;
  o.edns_version = 1;
  Edns e;
  ASSERT_TRUE(records_ok(make_query("a.example", rrtype::kA, o), e));
  EXPECT_TRUE(e.present);
  EXPECT_EQ(e.udp_payload, 4096);
  EXPECT_EQ(e.version, 1);
  EXPECT_TRUE(e.dnssec_ok);
}

TEST(DnsEdns, NoOptMeansNoEdns) {
  Edns e;
  ASSERT_TRUE(records_ok(make_query("a.example", rrtype::kA), e));
  EXPECT_FALSE(e.present);
}

TEST(DnsEdns, OptionsWithConsistentLengthsAreAccepted) {
  // One option {code 10 (cookie), length 8}.
  Bytes opt = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
  Edns e;
  EXPECT_TRUE(records_ok(query_with(opt, 1), e));
  EXPECT_EQ(e.udp_payload, 1232);
}

TEST(DnsEdns, MalformedOptIsRejected) {
  Edns e;
  Bytes two = kOpt4096Do;
  two.insert(two.end(), kOpt4096Do.begin(), kOpt4096Do.end());
  EXPECT_FALSE(records_ok(query_with(two, 2), e)) << "two OPT records";
  EXPECT_TRUE(e.repeated) << "told apart: FORMERR whatever the opcode";
  e = Edns{};
  Bytes owned = {1, 'x', 0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(records_ok(query_with(owned, 1), e)) << "OPT not owned by the root";
  Bytes bad_option = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 6, 0, 10, 0, 8, 1, 2};
  EXPECT_FALSE(records_ok(query_with(bad_option, 1), e)) << "option longer than rdata";
  EXPECT_FALSE(records_ok(query_with(kOpt4096Do, 0, 1), e)) << "OPT in the answer section";
  Bytes cut(kOpt4096Do.begin(), kOpt4096Do.end() - 3);
  EXPECT_FALSE(records_ok(query_with(cut, 1), e)) << "truncated OPT";
  EXPECT_FALSE(records_ok(query_with({}, 1), e)) << "counted record missing";
  EXPECT_FALSE(e.repeated);
}

TEST(DnsEdns, OtherAdditionalRecordsWithCompressedOwnersAreSkipped) {
  // An A record owned by a pointer to the question name, then the OPT.
  Bytes rr = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 1};
  rr.insert(rr.end(), kOpt4096Do.begin(), kOpt4096Do.end());
  Edns e;
  EXPECT_TRUE(records_ok(query_with(rr, 2), e));
  EXPECT_TRUE(e.present);
}

// --- Writer ------------------------------------------------------------------

struct Written {
  Bytes bytes;
  Message msg;
};

// Writes A records for `owners` (all 10.0.0.1) into a buffer of `limit`.
Written write_a_records(const std::vector<std::string>& owners, size_t limit,
                        bool* all_fit = nullptr) {
  Bytes buf(limit);
  Writer w(buf);
  EXPECT_TRUE(w.header(7));
  bool fit = true;
  for (const std::string& o : owners) {
    const Bytes name = wire(o);
    w.begin_record(name, rrtype::kA, kClassIn, 60);
    w.put_bytes(Bytes{10, 0, 0, 1});
    fit = w.end_record(Section::kAnswer) && fit;
  }
  if (all_fit != nullptr) *all_fit = fit;
  buf.resize(w.finish(kFlagQr));
  auto m = decode_message(buf);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return {buf, m.ok() ? *m : Message{}};
}

TEST(DnsWriter, CompressedNamesDecodeToTheSameNames) {
  const std::vector<std::string> owners = {"a.svc.cluster.local", "b.svc.cluster.local",
                                           "svc.cluster.local", "x.a.svc.cluster.local",
                                           "cluster.local", "other.example"};
  Written out = write_a_records(owners, 512);
  ASSERT_EQ(out.msg.answer.size(), owners.size());
  for (size_t i = 0; i < owners.size(); ++i) EXPECT_EQ(out.msg.answer[i].owner, owners[i] + ".");
  // Uncompressed: 12 + sum(name + 14).  Compression must save octets.
  size_t plain = kHeaderSize;
  for (const std::string& o : owners) plain += wire(o).size() + 14;
  EXPECT_LT(out.bytes.size(), plain);
}

TEST(DnsWriter, RepeatedOwnerBecomesATwoOctetPointer) {
  Written one = write_a_records({"a.svc.cluster.local"}, 512);
  Written two = write_a_records({"a.svc.cluster.local", "A.SVC.cluster.local"}, 512);
  // The second record is a pointer (2) + type..rdlength (10) + rdata (4).
  EXPECT_EQ(two.bytes.size() - one.bytes.size(), 16u);
  EXPECT_EQ(two.msg.answer[1].owner, "a.svc.cluster.local.");  // case of the first
}

TEST(DnsWriter, RecordThatDoesNotFitIsRolledBackWhole) {
  const std::vector<std::string> owners = {"one.example", "two.example", "three.example",
                                           "four.example"};
  Written full = write_a_records(owners, 512);
  const size_t after_two = write_a_records({owners[0], owners[1]}, 512).bytes.size();
  bool all_fit = true;
  Written cut = write_a_records(owners, after_two + 5, &all_fit);
  EXPECT_FALSE(all_fit);
  EXPECT_EQ(cut.bytes.size(), after_two);
  EXPECT_EQ(cut.msg.answer.size(), 2u);
  EXPECT_GT(full.msg.answer.size(), cut.msg.answer.size());
}

TEST(DnsWriter, RolledBackNamesAreNotCompressionTargets) {
  // "long-name.example" does not fit and is rolled back; a later shorter
  // record must not point into the octets that were discarded.
  Bytes buf(100);
  Writer w(buf);
  ASSERT_TRUE(w.header(1));
  w.begin_record(wire("a-very-long-label-here.example"), rrtype::kA, kClassIn, 1);
  w.put_bytes(Bytes{1, 2, 3, 4});
  w.put_bytes(Bytes(60, 0));
  EXPECT_FALSE(w.end_record(Section::kAnswer));
  w.begin_record(wire("b.example"), rrtype::kA, kClassIn, 1);
  w.put_bytes(Bytes{1, 2, 3, 4});
  ASSERT_TRUE(w.end_record(Section::kAnswer));
  w.begin_record(wire("a-very-long-label-here.example"), rrtype::kA, kClassIn, 1);
  w.put_bytes(Bytes{1, 2, 3, 4});
  ASSERT_TRUE(w.end_record(Section::kAnswer));
  buf.resize(w.finish(kFlagQr));
  auto m = decode_message(buf);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ(m->answer.size(), 2u);
  EXPECT_EQ(m->answer[0].owner, "b.example.");
  EXPECT_EQ(m->answer[1].owner, "a-very-long-label-here.example.");
}

TEST(DnsWriter, UncompressedNameIsWrittenWholeButLaterNamesPointIntoIt) {
  Bytes buf(512);
  Writer w(buf);
  ASSERT_TRUE(w.header(1));
  const Bytes target = wire("pod-0.db.default.svc.cluster.local");
  w.begin_record(wire("_x._tcp.db.default.svc.cluster.local"), rrtype::kSrv, kClassIn, 5);
  w.put_u16(0);
  w.put_u16(100);
  w.put_u16(27017);
  w.put_name(target, false);
  ASSERT_TRUE(w.end_record(Section::kAnswer));
  const size_t before = w.size();
  w.begin_record(target, rrtype::kA, kClassIn, 5);
  w.put_bytes(Bytes{10, 0, 0, 1});
  ASSERT_TRUE(w.end_record(Section::kAdditional));
  EXPECT_EQ(w.size() - before, 16u);  // owner compressed to a pointer
  buf.resize(w.finish(kFlagQr));
  // The target's bytes appear whole (RFC 2782: no compression in SRV rdata).
  EXPECT_NE(std::search(buf.begin(), buf.end(), target.begin(), target.end()), buf.end());
  auto m = decode_message(buf);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->answer[0].data, "0 100 27017 pod-0.db.default.svc.cluster.local.");
  EXPECT_EQ(m->additional[0].owner, "pod-0.db.default.svc.cluster.local.");
}

TEST(DnsWriter, ReserveKeepsRoomForTheLastRecord) {
  Bytes buf(12 + 27 + 11);
  Writer w(buf);
  ASSERT_TRUE(w.header(1));
  w.reserve(kOptRecordSize);
  w.begin_record(wire("one.example"), rrtype::kA, kClassIn, 1);  // 13 + 10 + 4 = 27
  w.put_bytes(Bytes{1, 2, 3, 4});
  ASSERT_TRUE(w.end_record(Section::kAnswer));
  w.begin_record(wire("a"), rrtype::kA, kClassIn, 1);
  w.put_bytes(Bytes{1, 2, 3, 4});
  EXPECT_FALSE(w.end_record(Section::kAnswer)) << "the reserve is not for answers";
  w.release_reserve();
  const uint8_t root[] = {0};
  w.begin_record(root, rrtype::kOpt, 1232, 0);
  EXPECT_TRUE(w.end_record(Section::kAdditional));
  EXPECT_EQ(w.finish(kFlagQr), buf.size());
}

TEST(DnsWriter, ManyDistinctNamesOverflowTheTableWithoutBreakingNames) {
  std::vector<std::string> owners;
  for (int i = 0; i < 600; ++i) owners.push_back("host-" + std::to_string(i) + ".big.example");
  Written out = write_a_records(owners, 65535);
  ASSERT_EQ(out.msg.answer.size(), owners.size());
  for (size_t i = 0; i < owners.size(); ++i) EXPECT_EQ(out.msg.answer[i].owner, owners[i] + ".");
}

TEST(DnsMessage, MakeQueryRoundTripsThroughDecode) {
  QueryOptions o;
  o.id = 0xbeef;
  o.edns_payload = 1400;
  auto q = make_query("My-App.default.svc.cluster.local.", rrtype::kSrv, o);
  auto m = decode_message(q);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->header.id, 0xbeef);
  ASSERT_EQ(m->questions.size(), 1u);
  EXPECT_EQ(m->questions[0].name, "My-App.default.svc.cluster.local.");
  EXPECT_EQ(m->questions[0].qtype, rrtype::kSrv);
  ASSERT_NE(m->opt(), nullptr);
  EXPECT_EQ(m->opt()->klass, 1400);
  EXPECT_TRUE(make_query(std::string(64, 'a'), rrtype::kA).empty());
}

TEST(DnsMessage, TrailingOctetsAreReported) {
  auto q = make_query("a.example", rrtype::kA);
  q.push_back(0);
  EXPECT_FALSE(decode_message(q).ok());
}

}  // namespace
}  // namespace podgate::ctl::dns
