// Frames for the dataplane tests, built byte by byte from the RFCs, and
// compared field by field.
//
// Deliberately independent of the code under test: no DPDK header structs,
// no dataplane/checksum.hpp.  Offsets and checksums are written out here from
// RFC 894 (Ethernet), RFC 791 (IPv4), RFC 793 (TCP), RFC 768 (UDP), RFC 792
// (ICMP), RFC 826 (ARP) and RFC 1071 (Internet checksum), so a golden frame
// is a second opinion, not a copy of the worker's own arithmetic.  Every
// builder computes every checksum in full; comparing the worker's
// incrementally updated output with such a frame checks the updates.
//
// All multi-byte values in the specs below are host order.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/net.hpp"

namespace podgate::test {

using Bytes = std::vector<uint8_t>;
using dp::Ip4;
using dp::MacAddr;

// ---------------------------------------------------------------------------
// Constants and literals
// ---------------------------------------------------------------------------

inline constexpr size_t kEthLen = 14;       // RFC 894: dst, src, type
inline constexpr size_t kMinFrame = 60;     // RFC 894 minimum, without FCS
inline constexpr size_t kIpOff = kEthLen;   // IPv4 header offset
inline constexpr uint16_t kEtherIpv4 = 0x0800;
inline constexpr uint16_t kEtherArp = 0x0806;
inline constexpr uint8_t kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17;
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
inline constexpr uint16_t kArpRequest = 1, kArpReply = 2;
inline constexpr uint8_t kIcmpEchoReply = 0, kIcmpEchoRequest = 8;
inline constexpr uint16_t kDontFragment = 0x4000, kMoreFragments = 0x2000;

// "192.0.2.1" -> Ip4; aborts on a typo in a test.
inline Ip4 ip(std::string_view text) {
  auto v = dp::parse_ip4(text);
  if (!v) {
    std::fprintf(stderr, "packet_builder: bad IPv4 literal '%.*s'\n", static_cast<int>(text.size()), text.data());
    std::abort();
  }
  return *v;
}

inline MacAddr mac(std::string_view text) {
  auto v = dp::parse_mac(text);
  if (!v) {
    std::fprintf(stderr, "packet_builder: bad MAC literal '%.*s'\n", static_cast<int>(text.size()), text.data());
    std::abort();
  }
  return *v;
}

// ---------------------------------------------------------------------------
// Byte access (big-endian on the wire)
// ---------------------------------------------------------------------------

inline void put8(Bytes& f, size_t off, uint8_t v) { f.at(off) = v; }
inline void put16(Bytes& f, size_t off, uint16_t v) {
  f.at(off) = static_cast<uint8_t>(v >> 8);
  f.at(off + 1) = static_cast<uint8_t>(v);
}
inline void put32(Bytes& f, size_t off, uint32_t v) {
  put16(f, off, static_cast<uint16_t>(v >> 16));
  put16(f, off + 2, static_cast<uint16_t>(v));
}
inline void put_ip(Bytes& f, size_t off, Ip4 a) { put32(f, off, a.host()); }
inline void put_mac(Bytes& f, size_t off, const MacAddr& m) {
  for (size_t i = 0; i < 6; ++i) f.at(off + i) = m.bytes[i];
}
inline uint8_t get8(const Bytes& f, size_t off) { return f.at(off); }
inline uint16_t get16(const Bytes& f, size_t off) {
  return static_cast<uint16_t>(f.at(off) << 8 | f.at(off + 1));
}
inline uint32_t get32(const Bytes& f, size_t off) {
  return uint32_t{get16(f, off)} << 16 | get16(f, off + 2);
}
inline Ip4 get_ip(const Bytes& f, size_t off) { return Ip4::from_host(get32(f, off)); }
inline MacAddr get_mac(const Bytes& f, size_t off) {
  MacAddr m;
  for (size_t i = 0; i < 6; ++i) m.bytes[i] = f.at(off + i);
  return m;
}

// ---------------------------------------------------------------------------
// RFC 1071 checksum, written out independently of dataplane/checksum.hpp
// ---------------------------------------------------------------------------

// One's complement sum of [off, off+len) as big-endian 16-bit words, an odd
// last byte padded with zero (RFC 1071 §4.1), added to `sum`, unfolded.
inline uint32_t sum16(const Bytes& f, size_t off, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += get16(f, off + i);
  if (len % 2 == 1) sum += uint32_t{f.at(off + len - 1)} << 8;
  return sum;
}
inline uint16_t fold_complement(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Frame layout helpers (IPv4 frames).
inline size_t ihl_bytes(const Bytes& f) { return (get8(f, kIpOff) & 0x0f) * 4u; }
inline size_t l4_off(const Bytes& f) { return kIpOff + ihl_bytes(f); }
inline uint16_t ip_total_length(const Bytes& f) { return get16(f, kIpOff + 2); }
inline size_t l4_length(const Bytes& f) { return ip_total_length(f) - ihl_bytes(f); }

// The checksum the IPv4 header should carry (its checksum field ignored).
inline uint16_t ip_checksum_of(const Bytes& f) {
  uint32_t s = sum16(f, kIpOff, ihl_bytes(f)) - get16(f, kIpOff + 10);
  return fold_complement(s);
}
// The checksum the TCP/UDP segment should carry (RFC 793 §3.1 / RFC 768
// pseudo-header: source, destination, zero, protocol, L4 length), or the
// ICMP message (no pseudo-header, RFC 792).
inline size_t l4_checksum_off(const Bytes& f) {
  switch (get8(f, kIpOff + 9)) {
    case kProtoTcp: return l4_off(f) + 16;
    case kProtoUdp: return l4_off(f) + 6;
    default: return l4_off(f) + 2;  // ICMP
  }
}
inline uint16_t l4_checksum_of(const Bytes& f) {
  const uint8_t proto = get8(f, kIpOff + 9);
  const size_t off = l4_off(f), len = l4_length(f);
  uint32_t s = sum16(f, off, len) - get16(f, l4_checksum_off(f));
  if (proto == kProtoTcp || proto == kProtoUdp) {
    s = sum16(f, kIpOff + 12, 8, s);  // source and destination address
    s += proto;
    s += static_cast<uint32_t>(len);
  }
  uint16_t c = fold_complement(s);
  // RFC 768: a computed UDP checksum of zero is sent as all ones.
  if (proto == kProtoUdp && c == 0) c = 0xffff;
  return c;
}
inline void fix_ip_checksum(Bytes& f) { put16(f, kIpOff + 10, ip_checksum_of(f)); }
inline void fix_l4_checksum(Bytes& f) { put16(f, l4_checksum_off(f), l4_checksum_of(f)); }

// ---------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------

struct L2 {
  MacAddr dst;
  MacAddr src;
};

struct L3 {
  Ip4 src;
  Ip4 dst;
  uint8_t ttl = 64;
  uint16_t id = 0x1234;
  uint16_t frag = kDontFragment;  // flags + fragment offset word
  uint8_t tos = 0;
  Bytes options{};                // multiple of 4 bytes
};

struct Tcp {
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t flags = kSyn;
  uint32_t seq = 1000;
  uint32_t ack = 0;
  uint16_t window = 65535;
};

struct Udp {
  uint16_t sport = 0;
  uint16_t dport = 0;
  bool checksum = true;  // false: zero, "no checksum" (RFC 768)
};

// The Ethernet header at the front of `f` (at least kEthLen bytes).
inline void put_ethernet(Bytes& f, const L2& l2, uint16_t type) {
  put_mac(f, 0, l2.dst);
  put_mac(f, 6, l2.src);
  put16(f, 12, type);
}

inline Bytes ethernet(const L2& l2, uint16_t type) {
  Bytes f(kEthLen);
  put_ethernet(f, l2, type);
  return f;
}

// Ethernet pads short frames to its 60-byte minimum (RFC 894); the padding is
// not part of the datagram and must survive forwarding untouched.
inline void pad_frame(Bytes& f) {
  if (f.size() < kMinFrame) f.resize(kMinFrame, 0);
}

// Ethernet + IPv4 header (checksum filled) + `l4` (its checksum is the
// caller's business), padded.
inline Bytes ipv4_frame(const L2& l2, const L3& l3, uint8_t proto, const Bytes& l4) {
  // Made at its header's size at once: grown from ethernet()'s 14 bytes,
  // g++ 12 at -O3 sees a write past the end (-Wstringop-overflow).
  const size_t hlen = 20 + l3.options.size();
  Bytes f(kEthLen + hlen);
  put_ethernet(f, l2, kEtherIpv4);
  put8(f, kIpOff, static_cast<uint8_t>(0x40 | hlen / 4));
  put8(f, kIpOff + 1, l3.tos);
  put16(f, kIpOff + 2, static_cast<uint16_t>(hlen + l4.size()));
  put16(f, kIpOff + 4, l3.id);
  put16(f, kIpOff + 6, l3.frag);
  put8(f, kIpOff + 8, l3.ttl);
  put8(f, kIpOff + 9, proto);
  put_ip(f, kIpOff + 12, l3.src);
  put_ip(f, kIpOff + 16, l3.dst);
  for (size_t i = 0; i < l3.options.size(); ++i) f[kIpOff + 20 + i] = l3.options[i];
  fix_ip_checksum(f);
  f.insert(f.end(), l4.begin(), l4.end());
  pad_frame(f);
  return f;
}

inline Bytes tcp_frame(const L2& l2, const L3& l3, const Tcp& t, const Bytes& payload = {}) {
  Bytes seg(20);
  put16(seg, 0, t.sport);
  put16(seg, 2, t.dport);
  put32(seg, 4, t.seq);
  put32(seg, 8, t.ack);
  put8(seg, 12, 5 << 4);  // data offset: 5 words, no options
  put8(seg, 13, t.flags);
  put16(seg, 14, t.window);
  seg.insert(seg.end(), payload.begin(), payload.end());
  Bytes f = ipv4_frame(l2, l3, kProtoTcp, seg);
  fix_l4_checksum(f);
  return f;
}

inline Bytes udp_frame(const L2& l2, const L3& l3, const Udp& u, const Bytes& payload = {}) {
  Bytes dg(8);
  put16(dg, 0, u.sport);
  put16(dg, 2, u.dport);
  put16(dg, 4, static_cast<uint16_t>(8 + payload.size()));
  dg.insert(dg.end(), payload.begin(), payload.end());
  Bytes f = ipv4_frame(l2, l3, kProtoUdp, dg);
  if (u.checksum) fix_l4_checksum(f);
  return f;
}

// ICMP echo request or reply (RFC 792): type, code 0, checksum, identifier,
// sequence number, data.
inline Bytes icmp_echo_frame(const L2& l2, const L3& l3, uint8_t type, uint16_t ident,
                             uint16_t seq, const Bytes& data = {}) {
  Bytes msg(8);
  put8(msg, 0, type);
  put16(msg, 4, ident);
  put16(msg, 6, seq);
  msg.insert(msg.end(), data.begin(), data.end());
  Bytes f = ipv4_frame(l2, l3, kProtoIcmp, msg);
  fix_l4_checksum(f);
  return f;
}

// ARP for Ethernet/IPv4 (RFC 826): hrd 1, pro 0x0800, hln 6, pln 4, op,
// sha, spa, tha, tpa; padded to the Ethernet minimum.
struct Arp {
  uint16_t op = kArpRequest;
  MacAddr sha;
  Ip4 spa;
  MacAddr tha;  // zero in a request
  Ip4 tpa;
};
inline Bytes arp_frame(const L2& l2, const Arp& a) {
  // Sized once to the padded length (42 bytes of ARP, then Ethernet's
  // padding): growing a vector of bytes trips GCC 12's -Warray-bounds.
  Bytes f(std::max<size_t>(kEthLen + 28, kMinFrame), 0);
  put_mac(f, 0, l2.dst);
  put_mac(f, 6, l2.src);
  put16(f, 12, kEtherArp);
  put16(f, kEthLen + 0, 1);
  put16(f, kEthLen + 2, kEtherIpv4);
  put8(f, kEthLen + 4, 6);
  put8(f, kEthLen + 5, 4);
  put16(f, kEthLen + 6, a.op);
  put_mac(f, kEthLen + 8, a.sha);
  put_ip(f, kEthLen + 14, a.spa);
  put_mac(f, kEthLen + 18, a.tha);
  put_ip(f, kEthLen + 24, a.tpa);
  pad_frame(f);
  return f;
}

// A whole packet as a value, so a test can derive the expected output from
// the input by changing the fields the pipeline should change.
struct TcpPacket {
  L2 l2;
  L3 l3;
  Tcp tcp;
  Bytes payload{};
  Bytes frame() const { return tcp_frame(l2, l3, tcp, payload); }
};

struct UdpPacket {
  L2 l2;
  L3 l3;
  Udp udp;
  Bytes payload{};
  Bytes frame() const { return udp_frame(l2, l3, udp, payload); }
};

// ---------------------------------------------------------------------------
// Reading frames (outputs are IPv4 with IHL 5, or ARP)
// ---------------------------------------------------------------------------

inline MacAddr eth_dst(const Bytes& f) { return get_mac(f, 0); }
inline MacAddr eth_src(const Bytes& f) { return get_mac(f, 6); }
inline uint16_t ether_type(const Bytes& f) { return get16(f, 12); }
inline uint8_t ip_proto(const Bytes& f) { return get8(f, kIpOff + 9); }
inline uint8_t ip_ttl(const Bytes& f) { return get8(f, kIpOff + 8); }
inline Ip4 ip_src(const Bytes& f) { return get_ip(f, kIpOff + 12); }
inline Ip4 ip_dst(const Bytes& f) { return get_ip(f, kIpOff + 16); }
inline uint16_t l4_sport(const Bytes& f) { return get16(f, l4_off(f)); }
inline uint16_t l4_dport(const Bytes& f) { return get16(f, l4_off(f) + 2); }
inline uint8_t tcp_flags(const Bytes& f) { return get8(f, l4_off(f) + 13); }

inline std::string str(Ip4 a) { return dp::to_string(a); }
inline std::string str(const MacAddr& m) { return dp::to_string(m); }

// One line: "TCP 192.0.2.2:40000 -> 10.96.0.20:80 flags 0x02 ttl 64 (60 bytes)".
inline std::string describe(const Bytes& f) {
  std::ostringstream o;
  if (f.size() < kEthLen) {
    o << "runt frame of " << f.size() << " bytes";
    return o.str();
  }
  const uint16_t type = ether_type(f);
  if (type == kEtherArp && f.size() >= kEthLen + 28) {
    o << "ARP op " << get16(f, kEthLen + 6) << " " << str(get_ip(f, kEthLen + 14)) << " ("
      << str(get_mac(f, kEthLen + 8)) << ") asks/tells " << str(get_ip(f, kEthLen + 24));
  } else if (type == kEtherIpv4 && f.size() >= kEthLen + 20) {
    const uint8_t proto = ip_proto(f);
    const bool ports = (proto == kProtoTcp || proto == kProtoUdp) && f.size() >= l4_off(f) + 4;
    o << (proto == kProtoTcp ? "TCP " : proto == kProtoUdp ? "UDP " : proto == kProtoIcmp ? "ICMP " : "IP ")
      << str(ip_src(f));
    if (ports) o << ":" << l4_sport(f);
    o << " -> " << str(ip_dst(f));
    if (ports) o << ":" << l4_dport(f);
    if (proto == kProtoTcp && f.size() >= l4_off(f) + 14) {
      char flags[8];
      std::snprintf(flags, sizeof flags, "0x%02x", tcp_flags(f));
      o << " flags " << flags;
    }
    o << " ttl " << int{ip_ttl(f)};
  } else {
    o << "ethertype " << type;
  }
  o << " (" << f.size() << " bytes)";
  return o.str();
}

// ---------------------------------------------------------------------------
// Checking frames
// ---------------------------------------------------------------------------

// Recomputes every checksum of an IPv4 frame in full and compares it with
// the one it carries.  A UDP checksum of zero means "none" and passes.
inline ::testing::AssertionResult checksums_valid(const Bytes& f) {
  if (f.size() < kEthLen + 20 || ether_type(f) != kEtherIpv4) {
    return ::testing::AssertionFailure() << "not an IPv4 frame: " << describe(f);
  }
  char buf[128];
  const uint16_t ip_have = get16(f, kIpOff + 10), ip_want = ip_checksum_of(f);
  if (ip_have != ip_want) {
    std::snprintf(buf, sizeof buf, "ip.checksum is 0x%04x, full recomputation gives 0x%04x", ip_have, ip_want);
    return ::testing::AssertionFailure() << buf << " in " << describe(f);
  }
  const uint8_t proto = ip_proto(f);
  if (proto != kProtoTcp && proto != kProtoUdp && proto != kProtoIcmp) return ::testing::AssertionSuccess();
  const uint16_t l4_have = get16(f, l4_checksum_off(f));
  if (proto == kProtoUdp && l4_have == 0) return ::testing::AssertionSuccess();
  const uint16_t l4_want = l4_checksum_of(f);
  if (l4_have != l4_want) {
    const char* name = proto == kProtoTcp ? "tcp" : proto == kProtoUdp ? "udp" : "icmp";
    std::snprintf(buf, sizeof buf, "%s.checksum is 0x%04x, full recomputation gives 0x%04x", name, l4_have, l4_want);
    return ::testing::AssertionFailure() << buf << " in " << describe(f);
  }
  return ::testing::AssertionSuccess();
}

namespace detail {

enum class Fmt { kDec, kHex, kMac, kIp, kBytes };
struct Field {
  const char* name;
  size_t off;
  size_t len;
  Fmt fmt;
};

inline std::string format_field(const Bytes& f, const Field& d) {
  char buf[64];
  switch (d.fmt) {
    case Fmt::kMac: return str(get_mac(f, d.off));
    case Fmt::kIp: return str(get_ip(f, d.off));
    case Fmt::kDec: {
      uint32_t v = 0;
      for (size_t i = 0; i < d.len; ++i) v = v << 8 | f[d.off + i];
      return std::to_string(v);
    }
    case Fmt::kHex: {
      uint32_t v = 0;
      for (size_t i = 0; i < d.len; ++i) v = v << 8 | f[d.off + i];
      std::snprintf(buf, sizeof buf, "0x%0*x", static_cast<int>(d.len * 2), v);
      return buf;
    }
    case Fmt::kBytes: break;
  }
  std::string s;
  for (size_t i = 0; i < d.len && i < 16; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", f[d.off + i]);
    s += buf;
  }
  if (d.len > 16) s += "...";
  return s;
}

// The named fields of `f`'s layout, header by header; the rest is payload.
inline std::vector<Field> layout(const Bytes& f) {
  std::vector<Field> v = {{"eth.dst", 0, 6, Fmt::kMac}, {"eth.src", 6, 6, Fmt::kMac},
                          {"eth.type", 12, 2, Fmt::kHex}};
  const size_t e = kEthLen;
  if (ether_type(f) == kEtherArp && f.size() >= e + 28) {
    v.insert(v.end(), {{"arp.htype", e, 2, Fmt::kDec},       {"arp.ptype", e + 2, 2, Fmt::kHex},
                       {"arp.hlen", e + 4, 1, Fmt::kDec},    {"arp.plen", e + 5, 1, Fmt::kDec},
                       {"arp.op", e + 6, 2, Fmt::kDec},      {"arp.sha", e + 8, 6, Fmt::kMac},
                       {"arp.spa", e + 14, 4, Fmt::kIp},     {"arp.tha", e + 18, 6, Fmt::kMac},
                       {"arp.tpa", e + 24, 4, Fmt::kIp}});
    return v;
  }
  if (ether_type(f) != kEtherIpv4 || f.size() < e + 20) return v;
  v.insert(v.end(), {{"ip.version_ihl", e, 1, Fmt::kHex},   {"ip.tos", e + 1, 1, Fmt::kHex},
                     {"ip.total_length", e + 2, 2, Fmt::kDec}, {"ip.id", e + 4, 2, Fmt::kHex},
                     {"ip.flags_fragment", e + 6, 2, Fmt::kHex}, {"ip.ttl", e + 8, 1, Fmt::kDec},
                     {"ip.proto", e + 9, 1, Fmt::kDec},     {"ip.checksum", e + 10, 2, Fmt::kHex},
                     {"ip.src", e + 12, 4, Fmt::kIp},       {"ip.dst", e + 16, 4, Fmt::kIp}});
  const size_t l4 = l4_off(f);
  if (l4 > e + 20) v.push_back({"ip.options", e + 20, l4 - e - 20, Fmt::kBytes});
  switch (ip_proto(f)) {
    case kProtoTcp:
      if (f.size() < l4 + 20) break;
      v.insert(v.end(), {{"tcp.sport", l4, 2, Fmt::kDec},       {"tcp.dport", l4 + 2, 2, Fmt::kDec},
                         {"tcp.seq", l4 + 4, 4, Fmt::kDec},     {"tcp.ack", l4 + 8, 4, Fmt::kDec},
                         {"tcp.data_off", l4 + 12, 1, Fmt::kHex}, {"tcp.flags", l4 + 13, 1, Fmt::kHex},
                         {"tcp.window", l4 + 14, 2, Fmt::kDec}, {"tcp.checksum", l4 + 16, 2, Fmt::kHex},
                         {"tcp.urgent", l4 + 18, 2, Fmt::kDec}});
      break;
    case kProtoUdp:
      if (f.size() < l4 + 8) break;
      v.insert(v.end(), {{"udp.sport", l4, 2, Fmt::kDec}, {"udp.dport", l4 + 2, 2, Fmt::kDec},
                         {"udp.length", l4 + 4, 2, Fmt::kDec}, {"udp.checksum", l4 + 6, 2, Fmt::kHex}});
      break;
    case kProtoIcmp:
      if (f.size() < l4 + 8) break;
      v.insert(v.end(), {{"icmp.type", l4, 1, Fmt::kDec},  {"icmp.code", l4 + 1, 1, Fmt::kDec},
                         {"icmp.checksum", l4 + 2, 2, Fmt::kHex}, {"icmp.ident", l4 + 4, 2, Fmt::kDec},
                         {"icmp.seq", l4 + 6, 2, Fmt::kDec}});
      break;
    default:
      break;
  }
  return v;
}

}  // namespace detail

// Byte-exact comparison that names every field that differs, e.g.
//   ip.dst: got 172.17.0.12, want 172.17.0.10
// using the expected frame's layout; bytes past the headers are compared as
// "payload" (which includes Ethernet padding).
inline ::testing::AssertionResult frames_equal(const Bytes& actual, const Bytes& expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  auto fail = ::testing::AssertionFailure();
  fail << "frames differ\n  got:  " << describe(actual) << "\n  want: " << describe(expected) << "\n";
  if (actual.size() != expected.size()) {
    fail << "  length: got " << actual.size() << ", want " << expected.size() << "\n";
  }
  size_t covered = 0;
  for (const detail::Field& d : detail::layout(expected)) {
    covered = std::max(covered, d.off + d.len);
    if (d.off + d.len > actual.size()) {
      fail << "  " << d.name << ": missing (frame too short)\n";
      continue;
    }
    if (!std::equal(actual.begin() + static_cast<ptrdiff_t>(d.off),
                    actual.begin() + static_cast<ptrdiff_t>(d.off + d.len),
                    expected.begin() + static_cast<ptrdiff_t>(d.off))) {
      fail << "  " << d.name << ": got " << detail::format_field(actual, d) << ", want "
           << detail::format_field(expected, d) << "\n";
    }
  }
  const size_t n = std::min(actual.size(), expected.size());
  for (size_t i = covered; i < n; ++i) {
    if (actual[i] != expected[i]) {
      fail << "  payload: first difference at frame offset " << i << " (got "
           << int{actual[i]} << ", want " << int{expected[i]} << ")\n";
      break;
    }
  }
  return fail;
}

// frames_equal against whichever of `candidates` has the same IPv4
// destination as `actual` (e.g. one expected frame per ready Pod); fails if
// none does.
inline ::testing::AssertionResult frame_is_one_of(const Bytes& actual, const std::vector<Bytes>& candidates) {
  for (const Bytes& c : candidates) {
    if (actual == c) return ::testing::AssertionSuccess();
  }
  for (const Bytes& c : candidates) {
    if (actual.size() >= kEthLen + 20 && c.size() >= kEthLen + 20 && ether_type(c) == kEtherIpv4 &&
        ip_dst(actual) == ip_dst(c)) {
      return frames_equal(actual, c);
    }
  }
  if (candidates.size() == 1) return frames_equal(actual, candidates[0]);
  auto fail = ::testing::AssertionFailure();
  fail << "frame matches none of " << candidates.size() << " expected frames\n  got: " << describe(actual) << "\n";
  for (const Bytes& c : candidates) fail << "  one of: " << describe(c) << "\n";
  return fail;
}

}  // namespace podgate::test
