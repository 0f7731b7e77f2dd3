// IPv6 frames for the dataplane tests (issue 11), built byte by byte from
// RFC 8200 (IPv6 header, extension headers, the upper-layer pseudo-header
// of §8.1), RFC 4443 (ICMPv6) and RFC 4861 (neighbour discovery), with
// every checksum computed in full: a second opinion on the worker's
// incremental updates, as packet_builder.hpp is for IPv4.
#pragma once

#include "tests/dataplane/packet_builder.hpp"

namespace podgate::test {

using dp::Ip6;

inline constexpr uint16_t kEtherIpv6 = 0x86dd;
inline constexpr size_t kIp6Len = 40;
inline constexpr uint8_t kProtoIcmp6 = 58;
inline constexpr uint8_t kHopByHop = 0, kRoutingHeader = 43, kFragmentHeader = 44, kDestinationOptions = 60;

inline Ip6 ip6(std::string_view text) {
  auto v = dp::parse_ip6(text);
  if (!v) {
    std::fprintf(stderr, "packet_builder6: bad IPv6 literal '%.*s'\n", static_cast<int>(text.size()), text.data());
    std::abort();
  }
  return *v;
}

inline void put_ip6(Bytes& f, size_t off, const Ip6& a) {
  for (size_t i = 0; i < 16; ++i) f.at(off + i) = a.bytes[i];
}
inline Ip6 get_ip6(const Bytes& f, size_t off) {
  Ip6 a;
  for (size_t i = 0; i < 16; ++i) a.bytes[i] = f.at(off + i);
  return a;
}

struct L3v6 {
  Ip6 src;
  Ip6 dst;
  uint8_t hop_limit = 64;
};

// One extension header: its type and its body after the two bytes of Next
// Header and Hdr Ext Len (RFC 8200 §4.2), padded to a multiple of 8.
struct Extension {
  uint8_t type;
  Bytes body;  // 6 + 8k bytes
};

// The checksum over the §8.1 pseudo-header and the upper-layer packet at
// [off, off + len), its own checksum field counted as zero.
inline uint16_t upper_checksum6(const Bytes& f, const Ip6& src, const Ip6& dst, uint8_t proto, size_t off,
                                size_t len, size_t checksum_off) {
  Bytes pseudo(40, 0);
  put_ip6(pseudo, 0, src);
  put_ip6(pseudo, 16, dst);
  put32(pseudo, 32, static_cast<uint32_t>(len));
  pseudo[39] = proto;
  uint32_t s = sum16(pseudo, 0, 40);
  s = sum16(f, off, len, s) - get16(f, checksum_off);
  return fold_complement(s);
}

// An Ethernet + IPv6 frame carrying `upper` (of protocol `proto`) after
// `extensions`; the upper-layer checksum at `checksum_at` (relative to the
// upper-layer header; none when negative) computed in full.
inline Bytes ipv6_frame(const L2& l2, const L3v6& l3, uint8_t proto, const Bytes& upper, int checksum_at,
                        const std::vector<Extension>& extensions = {}) {
  Bytes f = ethernet(l2, kEtherIpv6);
  size_t ext_len = 0;
  for (const Extension& e : extensions) ext_len += 2 + e.body.size();
  const size_t ip = f.size();
  f.resize(ip + kIp6Len + ext_len + upper.size(), 0);
  put32(f, ip, 6u << 28);
  put16(f, ip + 4, static_cast<uint16_t>(ext_len + upper.size()));
  put8(f, ip + 6, extensions.empty() ? proto : extensions.front().type);
  put8(f, ip + 7, l3.hop_limit);
  put_ip6(f, ip + 8, l3.src);
  put_ip6(f, ip + 24, l3.dst);
  size_t at = ip + kIp6Len;
  for (size_t i = 0; i < extensions.size(); ++i) {
    const Extension& e = extensions[i];
    put8(f, at, i + 1 < extensions.size() ? extensions[i + 1].type : proto);
    put8(f, at + 1, static_cast<uint8_t>((2 + e.body.size()) / 8 - 1));
    std::copy(e.body.begin(), e.body.end(), f.begin() + static_cast<long>(at + 2));
    at += 2 + e.body.size();
  }
  std::copy(upper.begin(), upper.end(), f.begin() + static_cast<long>(at));
  if (checksum_at >= 0) {
    const size_t c = at + static_cast<size_t>(checksum_at);
    put16(f, c, 0);
    put16(f, c, upper_checksum6(f, l3.src, l3.dst, proto, at, upper.size(), c));
  }
  pad_frame(f);
  return f;
}

inline Bytes tcp6_frame(const L2& l2, const L3v6& l3, const Tcp& t, const Bytes& payload = {},
                        const std::vector<Extension>& extensions = {}) {
  Bytes seg(20, 0);
  put16(seg, 0, t.sport);
  put16(seg, 2, t.dport);
  put32(seg, 4, t.seq);
  put32(seg, 8, t.ack);
  put8(seg, 12, 5 << 4);
  put8(seg, 13, t.flags);
  put16(seg, 14, t.window);
  // Appended, not copied into a presized segment: g++ 12 at -O3 takes a
  // copy of an empty payload to offset 20 of 20 bytes for an overflow.
  seg.insert(seg.end(), payload.begin(), payload.end());
  return ipv6_frame(l2, l3, kProtoTcp, seg, 16, extensions);
}

inline Bytes udp6_frame(const L2& l2, const L3v6& l3, const Udp& u, const Bytes& payload = {}) {
  Bytes d(8 + payload.size(), 0);
  put16(d, 0, u.sport);
  put16(d, 2, u.dport);
  put16(d, 4, static_cast<uint16_t>(d.size()));
  std::copy(payload.begin(), payload.end(), d.begin() + 8);
  Bytes f = ipv6_frame(l2, l3, kProtoUdp, d, 6);
  if (get16(f, kEthLen + kIp6Len + 6) == 0) put16(f, kEthLen + kIp6Len + 6, 0xffff);  // RFC 8200 §8.1
  return f;
}

inline Bytes echo6_frame(const L2& l2, const L3v6& l3, uint8_t type, uint16_t ident, uint16_t seq) {
  Bytes m(8 + 8, 0);
  m[0] = type;
  put16(m, 4, ident);
  put16(m, 6, seq);
  for (size_t i = 8; i < m.size(); ++i) m[i] = static_cast<uint8_t>(i);
  return ipv6_frame(l2, l3, kProtoIcmp6, m, 2);
}

// RFC 4861 §4.3: a neighbour solicitation for `target`, with a Source
// Link-Layer Address option when `sll` is given.
inline Bytes solicitation_frame(const L2& l2, const L3v6& l3, const Ip6& target, const MacAddr* sll) {
  Bytes m(24 + (sll != nullptr ? 8 : 0), 0);
  m[0] = 135;
  put_ip6(m, 8, target);
  if (sll != nullptr) {
    m[24] = 1;
    m[25] = 1;
    put_mac(m, 26, *sll);
  }
  return ipv6_frame(l2, l3, kProtoIcmp6, m, 2);
}

// RFC 4861 §4.4: an advertisement of `target` at `tll` with flags R/S/O.
inline Bytes advertisement_frame(const L2& l2, const L3v6& l3, const Ip6& target, const MacAddr& tll,
                                 uint8_t flags, bool with_tll = true) {
  Bytes m(with_tll ? 32 : 24, 0);
  m[0] = 136;
  m[4] = flags;
  put_ip6(m, 8, target);
  if (with_tll) {
    m[24] = 2;
    m[25] = 1;
    put_mac(m, 26, tll);
  }
  return ipv6_frame(l2, l3, kProtoIcmp6, m, 2);
}

// ICMPv6 (RFC 4443 §3) error of `type`/`code` quoting `quoted` (from its
// IPv6 header on, up to 1232 bytes), with the 32-bit field `field`.
inline Bytes icmp6_error_frame(const L2& l2, const L3v6& l3, uint8_t type, uint8_t code, uint32_t field,
                               const Bytes& quoted_frame) {
  const size_t quote = std::min<size_t>(quoted_frame.size() - kEthLen, 1232);
  Bytes m(8 + quote, 0);
  m[0] = type;
  m[1] = code;
  put32(m, 4, field);
  std::copy(quoted_frame.begin() + kEthLen, quoted_frame.begin() + static_cast<long>(kEthLen + quote), m.begin() + 8);
  return ipv6_frame(l2, l3, kProtoIcmp6, m, 2);
}

}  // namespace podgate::test
