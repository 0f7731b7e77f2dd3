// The frame the DNS VIP answerer sends: Ethernet, IPv4 and UDP headers
// written around a DNS answer must parse as a valid datagram, addressed as
// given, with both checksums right (RFC 791, RFC 768).
#include "control/dns/vip_answerer.hpp"

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/checksum.hpp"
#include "dataplane/packet.hpp"

namespace podgate::ctl::dns {
namespace {

using dp::Ip4;

UdpReplyAddress address() {
  UdpReplyAddress a;
  a.src_mac = *dp::parse_mac("02:00:00:00:00:01");
  a.dst_mac = *dp::parse_mac("02:00:00:00:00:99");
  a.src_ip = *dp::parse_ip4("10.96.0.10");
  a.dst_ip = *dp::parse_ip4("192.0.2.2");
  a.src_port = dp::to_be16(53);
  a.dst_port = dp::to_be16(40123);
  return a;
}

std::vector<uint8_t> frame_with_payload(size_t payload_len) {
  std::vector<uint8_t> frame(kUdpFrameHeaders, 0xee);  // garbage headers
  for (size_t i = 0; i < payload_len; ++i) frame.push_back(static_cast<uint8_t>(i * 7));
  return frame;
}

// RFC 768: the sum over the pseudo-header and the datagram is all ones.
bool udp_checksum_ok(const dp::ParsedPacket& p) {
  const uint16_t len = dp::from_be16(p.udp()->dgram_len);
  uint32_t pseudo = (p.src().host() >> 16) + (p.src().host() & 0xffff) + (p.dst().host() >> 16) +
                    (p.dst().host() & 0xffff) + IPPROTO_UDP + len;
  return dp::csum_fold(dp::ones_sum({p.l4, len}, pseudo)) == 0xffff;
}

TEST(DnsVipReply, ParsesAsUdpFromTheVipToTheClientWithTtl64) {
  auto frame = frame_with_payload(100);
  write_udp_headers(frame, address(), 7, 100);
  dp::ParsedPacket p;
  dp::DropReason why;
  // false: parse_packet verifies the IPv4 header checksum itself.
  ASSERT_TRUE(dp::parse_packet(frame.data(), static_cast<uint32_t>(frame.size()), false, p, why))
      << dp::drop_reason_name(why);
  EXPECT_EQ(p.kind, dp::PacketKind::kUdp);
  EXPECT_EQ(p.src(), address().src_ip);
  EXPECT_EQ(p.dst(), address().dst_ip);
  EXPECT_EQ(p.sport(), dp::to_be16(53));
  EXPECT_EQ(p.dport(), dp::to_be16(40123));
  EXPECT_EQ(p.ip->time_to_live, 64);
  EXPECT_EQ(p.ip->packet_id, dp::to_be16(7));
  EXPECT_EQ(p.ip->fragment_offset, 0) << "not a fragment, DF clear";
  EXPECT_EQ(0, std::memcmp(p.eth->dst_addr.addr_bytes, address().dst_mac.bytes.data(), 6));
  EXPECT_EQ(0, std::memcmp(p.eth->src_addr.addr_bytes, address().src_mac.bytes.data(), 6));
  EXPECT_EQ(p.l4_len, 108);
  EXPECT_EQ(dp::from_be16(p.udp()->dgram_len), 108);
}

TEST(DnsVipReply, BothChecksumsVerify) {
  for (size_t len : {12, 13, 100, 511, 1232, 1472}) {
    SCOPED_TRACE(len);
    auto frame = frame_with_payload(len);
    write_udp_headers(frame, address(), 1, len);
    dp::ParsedPacket p;
    dp::DropReason why;
    ASSERT_TRUE(dp::parse_packet(frame.data(), static_cast<uint32_t>(frame.size()), false, p, why));
    EXPECT_TRUE(dp::internet_checksum_ok({reinterpret_cast<uint8_t*>(p.ip), 20}));
    EXPECT_NE(p.udp()->dgram_cksum, 0) << "a checksum is always sent";
    EXPECT_TRUE(udp_checksum_ok(p));
  }
}

TEST(DnsVipReply, LeavesThePayloadUntouched) {
  auto frame = frame_with_payload(64);
  const std::vector<uint8_t> payload(frame.begin() + kUdpFrameHeaders, frame.end());
  write_udp_headers(frame, address(), 0, 64);
  EXPECT_EQ(std::vector<uint8_t>(frame.begin() + kUdpFrameHeaders, frame.end()), payload);
}

TEST(DnsVipReply, ChangingOnePayloadByteBreaksTheUdpChecksum) {
  // The checksum covers the payload: proves udp_checksum_ok can fail.
  auto frame = frame_with_payload(40);
  write_udp_headers(frame, address(), 0, 40);
  frame[kUdpFrameHeaders + 5] ^= 0x01;
  dp::ParsedPacket p;
  dp::DropReason why;
  ASSERT_TRUE(dp::parse_packet(frame.data(), static_cast<uint32_t>(frame.size()), false, p, why));
  EXPECT_FALSE(udp_checksum_ok(p));
}

}  // namespace
}  // namespace podgate::ctl::dns
