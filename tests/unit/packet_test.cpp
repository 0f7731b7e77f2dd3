// parse_packet: every malformed frame is dropped with its exact reason, valid
// frames are located correctly, and no input makes the parser read past the
// end of the frame (run under -Db_sanitize=address to prove the last part:
// every parse here reads from a heap buffer of exactly frame_len bytes).
#include "dataplane/packet.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "dataplane/checksum.hpp"
#include "dataplane/flow_packet.hpp"

namespace podgate::dp {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr size_t kEth = 14;      // Ethernet header
constexpr size_t kIp = kEth;     // IPv4 header offset
constexpr size_t kL4 = kEth + 20;  // L4 offset when IHL is 5

constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1, kGre = 47;

void put16(Bytes& f, size_t off, uint16_t host) {
  f[off] = static_cast<uint8_t>(host >> 8);
  f[off + 1] = static_cast<uint8_t>(host);
}
uint16_t get16(const Bytes& f, size_t off) {
  return static_cast<uint16_t>(f[off] << 8 | f[off + 1]);
}

// Recomputes the IPv4 header checksum over IHL*4 bytes (RFC 1071), so a
// mutated header fails only the check its test case is about.
void refresh_ip_checksum(Bytes& f) {
  const size_t ihl = (f[kIp] & 0x0f) * 4u;
  put16(f, kIp + 10, 0);
  const rte_be16_t c = internet_checksum(std::span<const uint8_t>(f).subspan(kIp, ihl));
  std::memcpy(&f[kIp + 10], &c, 2);
}

Bytes ethernet(uint16_t ether_type) {
  Bytes f = {0x02, 0, 0, 0, 0, 0x01,   // dst
             0x02, 0, 0, 0, 0, 0x02};  // src
  f.push_back(static_cast<uint8_t>(ether_type >> 8));
  f.push_back(static_cast<uint8_t>(ether_type));
  return f;
}

// Ethernet + IPv4 (10.0.0.2 -> 10.96.0.10, TTL 64, DF) + `l4`, valid
// checksum; padded with zeros to `pad_to` bytes as Ethernet would.
Bytes ipv4_frame(uint8_t proto, const Bytes& l4, size_t pad_to = 0) {
  Bytes f = ethernet(RTE_ETHER_TYPE_IPV4);
  const uint16_t total = static_cast<uint16_t>(20 + l4.size());
  const Bytes ip = {0x45, 0x00, static_cast<uint8_t>(total >> 8),
                    static_cast<uint8_t>(total), 0x12, 0x34, 0x40, 0x00, 64,
                    proto, 0, 0, 10, 0, 0, 2, 10, 96, 0, 10};
  f.insert(f.end(), ip.begin(), ip.end());
  f.insert(f.end(), l4.begin(), l4.end());
  if (f.size() < pad_to) f.resize(pad_to, 0);
  refresh_ip_checksum(f);
  return f;
}

// TCP 40000 -> 80 with `option_words` 32-bit words of NOPs and `payload`
// bytes of data.
Bytes tcp_segment(uint8_t flags, size_t option_words = 0, size_t payload = 0) {
  const auto doff = static_cast<uint8_t>(5 + option_words);
  Bytes t = {0x9c, 0x40, 0x00, 0x50,  // ports
             0, 0, 0, 1,              // seq
             0, 0, 0, 0,              // ack
             static_cast<uint8_t>(doff << 4), flags, 0xff, 0xff,
             0, 0, 0, 0};             // checksum, urgent pointer
  t.insert(t.end(), option_words * 4, 0x01);
  for (size_t i = 0; i < payload; ++i) t.push_back(static_cast<uint8_t>('a' + i % 26));
  return t;
}

// UDP 53000 -> 53 with `payload` bytes and a matching length field.
Bytes udp_datagram(size_t payload) {
  const auto len = static_cast<uint16_t>(8 + payload);
  Bytes u = {0xcf, 0x08, 0x00, 0x35, static_cast<uint8_t>(len >> 8),
             static_cast<uint8_t>(len), 0, 0};
  u.insert(u.end(), payload, 0x5a);
  return u;
}

Bytes icmp_echo(size_t payload) {
  Bytes i = {RTE_IP_ICMP_ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0x00, 0x01};
  i.insert(i.end(), payload, 0x77);
  return i;
}

// Who-has 10.0.0.1 tell 10.0.0.2, padded to the 60-byte Ethernet minimum.
Bytes arp_request() {
  Bytes f = ethernet(RTE_ETHER_TYPE_ARP);
  std::fill(f.begin(), f.begin() + 6, 0xff);
  const Bytes arp = {0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
                     0x02, 0, 0, 0, 0, 0x02, 10, 0, 0, 2,
                     0, 0, 0, 0, 0, 0, 10, 0, 0, 1};
  f.insert(f.end(), arp.begin(), arp.end());
  f.resize(60, 0);
  return f;
}

// A copy of a frame in a heap block of exactly its size, so AddressSanitizer
// reports any read past the end.
struct ExactFrame {
  explicit ExactFrame(std::span<const uint8_t> bytes)
      : len(static_cast<uint32_t>(bytes.size())), data(new uint8_t[bytes.size()]) {
    if (!bytes.empty()) std::memcpy(data.get(), bytes.data(), bytes.size());
  }
  uint32_t len;
  std::unique_ptr<uint8_t[]> data;
};

// What every successful parse promises: all located headers lie inside the
// frame and agree with the length fields that were checked.
testing::AssertionResult within_frame(const ParsedPacket& p, const uint8_t* frame,
                                      uint32_t len) {
  if (p.frame != frame || p.frame_len != len) return testing::AssertionFailure() << "frame";
  if (reinterpret_cast<const uint8_t*>(p.eth) != frame) return testing::AssertionFailure() << "eth";
  if (p.kind == PacketKind::kArp) {
    if (reinterpret_cast<const uint8_t*>(p.arp) != frame + kEth || len < kEth + 28) {
      return testing::AssertionFailure() << "arp outside frame";
    }
    return testing::AssertionSuccess();
  }
  const uint32_t ihl = (p.ip->version_ihl & 0x0fu) * 4u;
  if (reinterpret_cast<const uint8_t*>(p.ip) != frame + kIp || ihl < 20 ||
      p.l4 != frame + kIp + ihl || kIp + ihl + p.l4_len > len) {
    return testing::AssertionFailure() << "ip/l4 outside frame, l4_len " << p.l4_len;
  }
  if (from_be16(p.ip->total_length) != ihl + p.l4_len) {
    return testing::AssertionFailure() << "l4_len disagrees with total length";
  }
  switch (p.kind) {
    case PacketKind::kTcp: {
      const unsigned doff = (p.tcp()->data_off >> 4) * 4u;
      if (p.l4_len < 20 || doff < 20 || doff > p.l4_len) {
        return testing::AssertionFailure() << "tcp header outside segment";
      }
      if (p.tcp_flags != p.tcp()->tcp_flags) return testing::AssertionFailure() << "flags";
      break;
    }
    case PacketKind::kUdp:
      if (p.l4_len < 8 || from_be16(p.udp()->dgram_len) != p.l4_len) {
        return testing::AssertionFailure() << "udp length";
      }
      break;
    case PacketKind::kIcmp:
      if (p.l4_len < 8) return testing::AssertionFailure() << "icmp length";
      break;
    case PacketKind::kArp:
      break;
  }
  return testing::AssertionSuccess();
}

// parse_flow_packet(), the worker's fast path, must take exactly the TCP and
// UDP packets parse_packet() takes in a 20-byte IP header (with options they
// take the classifying path), with the same 5-tuple and flags.
testing::AssertionResult fast_parse_agrees(const ExactFrame& f, bool verified, bool parsed,
                                           const ParsedPacket& p) {
  FlowKey4 key;  // every byte must be written, the pad too: the worker reuses its keys
  std::memset(static_cast<void*>(&key), 0xa5, sizeof key);
  uint8_t flags = 0xff;
  const bool fast = parse_flow_packet(f.data.get(), f.len, verified, key, flags);
  const bool flow_kind = parsed && (p.kind == PacketKind::kTcp || p.kind == PacketKind::kUdp) &&
                         (p.ip->version_ihl & 0x0f) == 5;
  if (fast != flow_kind) {
    return testing::AssertionFailure() << "fast parse " << (fast ? "took" : "declined")
                                       << " a frame parse_packet " << (parsed ? "took" : "dropped");
  }
  if (!fast) return testing::AssertionSuccess();
  const FlowKey4 want{p.src(), p.dst(), p.sport(), p.dport(), p.proto()};
  if (!(key == want)) return testing::AssertionFailure() << "different flow key";
  if (flags != (p.kind == PacketKind::kTcp ? p.tcp_flags : 0)) {
    return testing::AssertionFailure() << "different TCP flags";
  }
  const ParsedPacket view = flow_packet_view(f.data.get(), f.len, key.proto, flags);
  if (view.ip != p.ip || view.l4 != p.l4 || view.l4_len != p.l4_len || view.kind != p.kind) {
    return testing::AssertionFailure() << "flow_packet_view locates other headers";
  }
  return testing::AssertionSuccess();
}

// ---- Malformed frames: one table, one exact reason each -------------------

struct DropCase {
  std::string name;
  Bytes frame;
  DropReason expected;
  bool ip_checksum_verified = false;
};

std::ostream& operator<<(std::ostream& os, const DropCase& c) { return os << c.name; }

// `mutate` edits a valid frame; the IP checksum is then made valid again so
// that only the intended rule is broken.
template <typename F>
Bytes mutated(Bytes f, F mutate) {
  mutate(f);
  refresh_ip_checksum(f);
  return f;
}

std::vector<DropCase> drop_cases() {
  const Bytes syn = ipv4_frame(kTcp, tcp_segment(RTE_TCP_SYN_FLAG));  // 54 bytes
  std::vector<DropCase> cases;
  cases.push_back({"EmptyFrame", {}, DropReason::kTooShort});
  cases.push_back({"TruncatedEthernetHeader", Bytes(syn.begin(), syn.begin() + 13),
                   DropReason::kTooShort});
  cases.push_back({"Ipv4EthertypeWithNoIpHeader", Bytes(syn.begin(), syn.begin() + 14),
                   DropReason::kBadIhl});
  cases.push_back({"Ipv4HeaderCutShort", Bytes(syn.begin(), syn.begin() + 33),
                   DropReason::kBadIhl});
  {
    Bytes f = syn;
    put16(f, 12, 0x88cc);  // LLDP
    cases.push_back({"UnknownEthertype", f, DropReason::kNotIp});
    put16(f, 12, RTE_ETHER_TYPE_IPV6);
    cases.push_back({"Ipv6Ethertype", f, DropReason::kNotIp});
    put16(f, 12, RTE_ETHER_TYPE_VLAN);
    cases.push_back({"VlanTaggedFrame", f, DropReason::kNotIp});
  }
  {
    const Bytes arp = arp_request();
    Bytes f = arp;
    f[kEth + 4] = 8;
    cases.push_back({"ArpWrongHardwareLength", f, DropReason::kBadArp});
    f = arp;
    f[kEth + 5] = 16;
    cases.push_back({"ArpWrongProtocolLength", f, DropReason::kBadArp});
    f = arp;
    put16(f, kEth, 6);  // IEEE 802 networks
    cases.push_back({"ArpWrongHardwareType", f, DropReason::kBadArp});
    f = arp;
    put16(f, kEth + 2, RTE_ETHER_TYPE_IPV6);
    cases.push_back({"ArpWrongProtocolType", f, DropReason::kBadArp});
    cases.push_back({"ArpTruncated", Bytes(arp.begin(), arp.begin() + kEth + 27),
                     DropReason::kBadArp});
  }
  cases.push_back({"IpVersion6", mutated(syn, [](Bytes& f) { f[kIp] = 0x65; }),
                   DropReason::kBadIpVersion});
  cases.push_back({"IhlFour", mutated(syn, [](Bytes& f) { f[kIp] = 0x44; }),
                   DropReason::kBadIhl});
  // IHL 15 claims 60 header bytes; the frame holds only 40 after Ethernet.
  {
    Bytes f = syn;
    f[kIp] = 0x4f;
    cases.push_back({"IhlFifteenInShortPacket", f, DropReason::kBadIhl});
  }
  {
    // An options header whose one option claims 6 bytes where 4 are left.
    Bytes f = syn;
    f[kIp] = 0x46;
    put16(f, kIp + 2, static_cast<uint16_t>(get16(f, kIp + 2) + 4));
    const Bytes options = {0x07, 0x06, 0x04, 0x00};  // Record Route, length 6
    f.insert(f.begin() + kL4, options.begin(), options.end());
    refresh_ip_checksum(f);
    cases.push_back({"IpOptionsOverrunTheHeader", f, DropReason::kIpOptions});
  }
  cases.push_back({"TotalLengthBeyondFrame",
                   mutated(syn, [](Bytes& f) { put16(f, kIp + 2, 41); }),
                   DropReason::kBadIpLength});
  cases.push_back({"TotalLengthBelowHeader",
                   mutated(syn, [](Bytes& f) { put16(f, kIp + 2, 19); }),
                   DropReason::kBadIpLength});
  {
    Bytes f = syn;
    f[kIp + 10] ^= 0x01;
    cases.push_back({"BadIpChecksum", f, DropReason::kBadIpChecksum});
  }
  cases.push_back({"MoreFragmentsSet",
                   mutated(syn, [](Bytes& f) { put16(f, kIp + 6, RTE_IPV4_HDR_MF_FLAG); }),
                   DropReason::kFragment});
  cases.push_back({"FragmentOffsetNonZero",
                   mutated(syn, [](Bytes& f) { put16(f, kIp + 6, 185); }),
                   DropReason::kFragment});
  cases.push_back({"LastFragmentWithDontFragment",
                   mutated(syn, [](Bytes& f) { put16(f, kIp + 6, RTE_IPV4_HDR_DF_FLAG | 1); }),
                   DropReason::kFragment});
  // TCP segment of 19 bytes per total length; the frame still has 20.
  cases.push_back({"TruncatedTcp", mutated(syn, [](Bytes& f) { put16(f, kIp + 2, 39); }),
                   DropReason::kTruncatedL4});
  cases.push_back({"TcpDataOffsetFour",
                   mutated(syn, [](Bytes& f) { f[kL4 + 12] = 4 << 4; }),
                   DropReason::kBadTcpOffset});
  cases.push_back({"TcpDataOffsetBeyondSegment",
                   mutated(syn, [](Bytes& f) { f[kL4 + 12] = 6 << 4; }),
                   DropReason::kBadTcpOffset});
  {
    const Bytes udp = ipv4_frame(kUdp, udp_datagram(4));  // l4_len 12
    cases.push_back({"TruncatedUdp", mutated(udp, [](Bytes& f) { put16(f, kIp + 2, 27); }),
                     DropReason::kTruncatedL4});
    cases.push_back({"UdpLengthLongerThanIp",
                     mutated(udp, [](Bytes& f) { put16(f, kL4 + 4, 13); }),
                     DropReason::kBadUdpLength});
    cases.push_back({"UdpLengthShorterThanIp",
                     mutated(udp, [](Bytes& f) { put16(f, kL4 + 4, 11); }),
                     DropReason::kBadUdpLength});
    cases.push_back({"UdpLengthBelowEight",
                     mutated(udp, [](Bytes& f) { put16(f, kL4 + 4, 7); }),
                     DropReason::kBadUdpLength});
  }
  {
    Bytes icmp = icmp_echo(0);
    icmp.pop_back();  // 7 bytes
    cases.push_back({"IcmpShorterThanEchoHeader", ipv4_frame(kIcmp, icmp),
                     DropReason::kBadIcmp});
  }
  cases.push_back({"GreProtocol", ipv4_frame(kGre, Bytes(8, 0)),
                   DropReason::kUnsupportedProto});
  return cases;
}

class ParseDrop : public testing::TestWithParam<DropCase> {};

TEST_P(ParseDrop, RejectsWithExactReason) {
  const DropCase& c = GetParam();
  ExactFrame f(c.frame);
  ParsedPacket p;
  DropReason drop = DropReason::kCount;
  EXPECT_FALSE(parse_packet(f.data.get(), f.len, c.ip_checksum_verified, p, drop));
  EXPECT_EQ(drop_reason_name(drop), drop_reason_name(c.expected));
  EXPECT_TRUE(fast_parse_agrees(f, c.ip_checksum_verified, false, p)) << "the fast path declines it too";
}

INSTANTIATE_TEST_SUITE_P(MalformedFrames, ParseDrop, testing::ValuesIn(drop_cases()),
                         [](const testing::TestParamInfo<DropCase>& info) {
                           return info.param.name;
                         });

// ---- Valid frames ---------------------------------------------------------

TEST(ParsePacket, TcpSynIsLocatedWithFlagsAndTuple) {
  Bytes f = ipv4_frame(kTcp, tcp_segment(RTE_TCP_SYN_FLAG | RTE_TCP_ECE_FLAG));
  ParsedPacket p;
  DropReason drop{};
  ASSERT_TRUE(parse_packet(f.data(), static_cast<uint32_t>(f.size()), false, p, drop));
  EXPECT_TRUE(within_frame(p, f.data(), static_cast<uint32_t>(f.size())));
  EXPECT_EQ(p.kind, PacketKind::kTcp);
  EXPECT_EQ(p.tcp_flags, RTE_TCP_SYN_FLAG | RTE_TCP_ECE_FLAG);
  EXPECT_EQ(p.l4_len, 20);
  EXPECT_EQ(p.src(), *parse_ip4("10.0.0.2"));
  EXPECT_EQ(p.dst(), *parse_ip4("10.96.0.10"));
  EXPECT_EQ(from_be16(p.sport()), 40000);
  EXPECT_EQ(from_be16(p.dport()), 80);
  EXPECT_EQ(p.proto(), Proto::kTcp);
}

TEST(ParsePacket, TcpWithOptionsAndPayloadUsesIpTotalLengthNotPadding) {
  // 20 + 12 + 3 = 35 bytes of TCP in a frame padded far beyond the datagram.
  Bytes f = ipv4_frame(kTcp, tcp_segment(RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, 3, 3), 128);
  ParsedPacket p;
  DropReason drop{};
  ASSERT_TRUE(parse_packet(f.data(), static_cast<uint32_t>(f.size()), false, p, drop));
  EXPECT_TRUE(within_frame(p, f.data(), static_cast<uint32_t>(f.size())));
  EXPECT_EQ(p.l4_len, 35);
  EXPECT_EQ(p.tcp_flags, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG);
}

TEST(ParsePacket, UdpInMinimumSizeFrameIsLocated) {
  Bytes f = ipv4_frame(kUdp, udp_datagram(5), 60);
  ParsedPacket p;
  DropReason drop{};
  ASSERT_TRUE(parse_packet(f.data(), static_cast<uint32_t>(f.size()), false, p, drop));
  EXPECT_TRUE(within_frame(p, f.data(), static_cast<uint32_t>(f.size())));
  EXPECT_EQ(p.kind, PacketKind::kUdp);
  EXPECT_EQ(p.l4_len, 13);
  EXPECT_EQ(from_be16(p.sport()), 53000);
  EXPECT_EQ(from_be16(p.dport()), 53);
  EXPECT_EQ(p.proto(), Proto::kUdp);
}

TEST(ParsePacket, IpOptionsAreHonouredNotDropped) {
  // Issue 12: IHL 7, Record Route (7 bytes, room for one address) + EOL;
  // the TCP header starts after them and the checksum covers them.
  Bytes f = ipv4_frame(kTcp, tcp_segment(RTE_TCP_SYN_FLAG));
  const Bytes options = {0x07, 0x07, 0x04, 0, 0, 0, 0, 0x00};
  f[kIp] = 0x47;
  put16(f, kIp + 2, static_cast<uint16_t>(get16(f, kIp + 2) + options.size()));
  f.insert(f.begin() + kL4, options.begin(), options.end());
  refresh_ip_checksum(f);
  ExactFrame e(f);
  ParsedPacket p;
  DropReason why{};
  ASSERT_TRUE(parse_packet(e.data.get(), e.len, false, p, why)) << drop_reason_name(why);
  EXPECT_EQ(p.kind, PacketKind::kTcp);
  EXPECT_EQ(p.l4, e.data.get() + kL4 + options.size());
  EXPECT_EQ(p.l4_len, 20u);
  EXPECT_TRUE(within_frame(p, e.data.get(), e.len));
  // The fast path declines it (the classifying path takes it).
  FlowKey4 key;
  uint8_t flags;
  EXPECT_FALSE(parse_flow_packet(e.data.get(), e.len, false, key, flags));
  // A wrong checksum over the options is still a bad checksum.
  f[kL4 + 3] ^= 1;
  ExactFrame bad(f);
  EXPECT_FALSE(parse_packet(bad.data.get(), bad.len, false, p, why));
  EXPECT_EQ(why, DropReason::kBadIpChecksum);
}

TEST(ParsePacket, IcmpEchoHasNoPorts) {
  Bytes f = ipv4_frame(kIcmp, icmp_echo(56));
  ParsedPacket p;
  DropReason drop{};
  ASSERT_TRUE(parse_packet(f.data(), static_cast<uint32_t>(f.size()), false, p, drop));
  EXPECT_TRUE(within_frame(p, f.data(), static_cast<uint32_t>(f.size())));
  EXPECT_EQ(p.kind, PacketKind::kIcmp);
  EXPECT_EQ(p.l4_len, 64);
  EXPECT_EQ(p.icmp()->icmp_type, RTE_IP_ICMP_ECHO_REQUEST);
  EXPECT_EQ(p.sport(), 0);
  EXPECT_EQ(p.dport(), 0);
}

TEST(ParsePacket, ArpRequestWithEthernetPaddingIsLocated) {
  Bytes f = arp_request();
  ASSERT_EQ(f.size(), 60u);
  ParsedPacket p;
  DropReason drop{};
  ASSERT_TRUE(parse_packet(f.data(), static_cast<uint32_t>(f.size()), false, p, drop));
  EXPECT_TRUE(within_frame(p, f.data(), static_cast<uint32_t>(f.size())));
  EXPECT_EQ(p.kind, PacketKind::kArp);
  EXPECT_EQ(p.ip, nullptr);
  EXPECT_EQ(from_be16(p.arp->arp_opcode), RTE_ARP_OP_REQUEST);
  EXPECT_EQ(Ip4{p.arp->arp_data.arp_tip}, *parse_ip4("10.0.0.1"));
}

TEST(ParsePacket, DontFragmentAloneIsNotAFragment) {
  Bytes f = ipv4_frame(kTcp, tcp_segment(RTE_TCP_SYN_FLAG));
  ASSERT_EQ(get16(f, kIp + 6), RTE_IPV4_HDR_DF_FLAG);
  ParsedPacket p;
  DropReason drop{};
  EXPECT_TRUE(parse_packet(f.data(), static_cast<uint32_t>(f.size()), false, p, drop));
}

TEST(ParsePacket, BadIpChecksumIsAcceptedWhenTheNicVerifiedIt) {
  Bytes f = ipv4_frame(kUdp, udp_datagram(4));
  f[kIp + 10] ^= 0x01;
  ParsedPacket p;
  DropReason drop{};
  ASSERT_FALSE(parse_packet(f.data(), static_cast<uint32_t>(f.size()), false, p, drop));
  EXPECT_TRUE(parse_packet(f.data(), static_cast<uint32_t>(f.size()), true, p, drop));
  EXPECT_EQ(p.kind, PacketKind::kUdp);
}

// ---- Never read out of bounds ---------------------------------------------

// Every prefix of a valid IPv4 frame fails at the first rule the cut breaks,
// and only the whole frame parses.
TEST(ParsePacket, EveryPrefixOfAnIpFrameFailsAtTheRuleItBreaks) {
  const std::vector<Bytes> frames = {
      ipv4_frame(kTcp, tcp_segment(RTE_TCP_ACK_FLAG, 2, 17)),
      ipv4_frame(kUdp, udp_datagram(9)),
      ipv4_frame(kIcmp, icmp_echo(11)),
  };
  for (const Bytes& full : frames) {
    for (size_t len = 0; len <= full.size(); ++len) {
      ExactFrame f(std::span<const uint8_t>(full).first(len));
      ParsedPacket p;
      DropReason drop = DropReason::kCount;
      const bool ok = parse_packet(f.data.get(), f.len, false, p, drop);
      SCOPED_TRACE("prefix length " + std::to_string(len));
      if (len == full.size()) {
        ASSERT_TRUE(ok);
        EXPECT_TRUE(within_frame(p, f.data.get(), f.len));
      } else {
        ASSERT_FALSE(ok);
        const DropReason expected = len < kEth ? DropReason::kTooShort
                                    : len < kL4 ? DropReason::kBadIhl
                                                : DropReason::kBadIpLength;
        EXPECT_EQ(drop_reason_name(drop), drop_reason_name(expected));
      }
    }
  }
}

TEST(ParsePacket, EveryPrefixOfAnArpFrameFailsUntilTheArpBodyIsComplete) {
  const Bytes full = arp_request();
  for (size_t len = 0; len <= full.size(); ++len) {
    ExactFrame f(std::span<const uint8_t>(full).first(len));
    ParsedPacket p;
    DropReason drop = DropReason::kCount;
    const bool ok = parse_packet(f.data.get(), f.len, false, p, drop);
    SCOPED_TRACE("prefix length " + std::to_string(len));
    if (len >= kEth + 28) {
      ASSERT_TRUE(ok);
      EXPECT_TRUE(within_frame(p, f.data.get(), f.len));
    } else {
      ASSERT_FALSE(ok);
      EXPECT_EQ(drop, len < kEth ? DropReason::kTooShort : DropReason::kBadArp);
    }
  }
}

// Random frames, biased towards plausible headers so that every rule is
// reached: each successful parse must keep its promises, and the run must
// have exercised every parse outcome (so the generator cannot silently
// degenerate into frames that die at the EtherType).
TEST(ParsePacket, RandomFramesNeverEscapeTheFrame) {
  std::mt19937 rng(20240611);
  auto chance = [&rng](unsigned percent) { return rng() % 100 < percent; };
  std::map<std::string, int> outcomes;
  constexpr int kFrames = 100'000;
  for (int i = 0; i < kFrames; ++i) {
    Bytes b(rng() % 129);
    for (auto& byte : b) byte = static_cast<uint8_t>(rng());
    bool verified = chance(50);
    if (b.size() >= kEth) {
      const unsigned pick = rng() % 100;
      put16(b, 12, pick < 85   ? RTE_ETHER_TYPE_IPV4
                   : pick < 95 ? RTE_ETHER_TYPE_ARP
                               : static_cast<uint16_t>(rng()));
    }
    const bool is_ip = b.size() >= kEth && get16(b, 12) == RTE_ETHER_TYPE_IPV4;
    if (is_ip && b.size() >= kL4) {
      if (chance(85)) b[kIp] = 0x45;
      const size_t avail = b.size() - kEth;
      if (chance(80)) put16(b, kIp + 2, static_cast<uint16_t>(avail - rng() % 4));
      if (chance(85)) put16(b, kIp + 6, chance(50) ? RTE_IPV4_HDR_DF_FLAG : 0);
      const uint8_t protos[] = {kTcp, kUdp, kIcmp, kGre};
      if (chance(95)) b[kIp + 9] = protos[rng() % 4];
      if (!verified && chance(70) && (b[kIp] & 0x0f) * 4u <= avail) refresh_ip_checksum(b);
      const size_t total = get16(b, kIp + 2);
      if (total >= 20 && total <= avail) {
        const size_t l4_len = total - 20;
        if (b[kIp + 9] == kTcp && l4_len >= 20 && chance(70)) {
          // A data offset in 5..min(15, l4_len/4): valid for this segment.
          const size_t choices = std::min<size_t>(15, l4_len / 4) - 4;
          b[kL4 + 12] = static_cast<uint8_t>((5 + rng() % choices) << 4);
        }
        if (b[kIp + 9] == kUdp && l4_len >= 6 && chance(70)) {
          put16(b, kL4 + 4, static_cast<uint16_t>(l4_len));
        }
      }
    }
    if (b.size() >= kEth + 6 && get16(b, 12) == RTE_ETHER_TYPE_ARP && chance(70)) {
      put16(b, kEth, RTE_ARP_HRD_ETHER);
      put16(b, kEth + 2, RTE_ETHER_TYPE_IPV4);
      if (chance(80)) { b[kEth + 4] = 6; b[kEth + 5] = 4; }
    }

    ExactFrame f(b);
    ParsedPacket p;
    DropReason drop = DropReason::kCount;
    const bool ok = parse_packet(f.data.get(), f.len, verified, p, drop);
    ASSERT_TRUE(fast_parse_agrees(f, verified, ok, p)) << "frame " << i;
    if (ok) {
      ASSERT_TRUE(within_frame(p, f.data.get(), f.len)) << "frame " << i;
      constexpr const char* kKinds[] = {"arp", "tcp", "udp", "icmp"};
      ++outcomes[kKinds[static_cast<int>(p.kind)]];
    } else {
      ASSERT_NE(drop, DropReason::kCount) << "frame " << i << " dropped without a reason";
      ++outcomes[std::string(drop_reason_name(drop))];
    }
  }
  for (const char* expected :
       {"arp", "tcp", "udp", "icmp", "too_short", "not_ip", "bad_ip_version", "bad_ihl",
        "ip_options", "bad_ip_length", "bad_ip_checksum", "fragment", "truncated_l4",
        "bad_tcp_offset", "bad_udp_length", "bad_icmp", "unsupported_proto", "bad_arp"}) {
    EXPECT_GT(outcomes[expected], 0) << expected << " never reached";
  }
  for (const auto& [outcome, n] : outcomes) RecordProperty(outcome, n);
}

}  // namespace
}  // namespace podgate::dp
