// Address and protocol types shared by the dataplane and the control thread.
//
// Addresses are stored in network byte order, exactly as they sit in packet
// headers, so the fast path compares and copies them without conversion.
// Conversion happens only in the small accessors below (host()/from_host()).
// Both families (issue 11): IpAddr carries a family so that config, registry
// and DNS code is written family-neutral; the per-packet structures (flow
// keys, snapshot maps) are specialised per family (Ip4, Ip6), as in DPVS and
// VPP.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <rte_byteorder.h>

#include "dataplane/crc32c.hpp"

namespace podgate::dp {

static_assert(std::endian::native == std::endian::little,
              "podgate's byte-order accessors assume a little-endian CPU");

constexpr uint16_t bswap16(uint16_t v) noexcept { return __builtin_bswap16(v); }
constexpr uint32_t bswap32(uint32_t v) noexcept { return __builtin_bswap32(v); }
// Host <-> network byte order, usable in constant expressions.
// A port's MTU when neither the config nor the device says otherwise.
inline constexpr uint16_t kEthernetMtu = 1500;

constexpr rte_be16_t to_be16(uint16_t h) noexcept { return bswap16(h); }
constexpr uint16_t from_be16(rte_be16_t n) noexcept { return bswap16(n); }
constexpr rte_be32_t to_be32(uint32_t h) noexcept { return bswap32(h); }

enum class Proto : uint8_t { kTcp = 6, kUdp = 17 };

constexpr std::string_view proto_name(Proto p) noexcept {
  return p == Proto::kTcp ? "TCP" : "UDP";
}

// An IPv4 address in network byte order.
struct Ip4 {
  rte_be32_t be = 0;

  static constexpr Ip4 from_host(uint32_t h) noexcept {
    return Ip4{bswap32(h)};
  }
  constexpr uint32_t host() const noexcept { return bswap32(be); }
  constexpr bool is_zero() const noexcept { return be == 0; }
  // Never a packet's source (RFC 1812 §5.3.7, RFC 6890): 0/8, 127/8,
  // multicast 224/4, and 240/4 with the limited broadcast.
  constexpr bool is_martian_source() const noexcept {
    const uint32_t h = host();
    return (h >> 24) == 0 || (h >> 24) == 127 || (h >> 28) >= 0xe;
  }
  friend constexpr bool operator==(Ip4, Ip4) = default;
  friend constexpr auto operator<=>(Ip4 a, Ip4 b) noexcept {
    return a.host() <=> b.host();
  }
};

// "10.96.0.20" -> Ip4; nullopt when the text is not a dotted quad.
std::optional<Ip4> parse_ip4(std::string_view text) noexcept;
std::string to_string(Ip4 ip);

// An IPv6 address: its 16 bytes in network order, as in the header, with
// no alignment of its own, so it may overlay a packet.  Compared as bytes
// (which orders it as a 128-bit number).
struct Ip6 {
  std::array<uint8_t, 16> bytes{};

  // The 16 bytes at `p` (an address field of a header).
  static Ip6 load(const uint8_t* p) noexcept {
    Ip6 a;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
  bool is_zero() const noexcept { return (word(0) | word(1)) == 0; }
  // ff00::/8 (RFC 4291 §2.7).
  bool is_multicast() const noexcept { return bytes[0] == 0xff; }
  // fe80::/10 (RFC 4291 §2.5.6).
  bool is_link_local() const noexcept { return bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80; }
  // The two 64-bit halves as they sit in memory: the fast path's compare
  // and hash input.
  uint64_t word(int i) const noexcept {
    uint64_t w;
    std::memcpy(&w, bytes.data() + 8 * i, 8);
    return w;
  }
  friend bool operator==(const Ip6& a, const Ip6& b) noexcept {
    return ((a.word(0) ^ b.word(0)) | (a.word(1) ^ b.word(1))) == 0;
  }
  // Numeric order (the bytes' order), by word: sorted VIP lists are
  // searched on the new-flow path.
  friend std::strong_ordering operator<=>(const Ip6& a, const Ip6& b) noexcept {
    const uint64_t a0 = __builtin_bswap64(a.word(0)), b0 = __builtin_bswap64(b.word(0));
    if (a0 != b0) return a0 <=> b0;
    return __builtin_bswap64(a.word(1)) <=> __builtin_bswap64(b.word(1));
  }
};
static_assert(sizeof(Ip6) == 16 && alignof(Ip6) == 1);

// CRC32-C of an IPv6 address, its two words read through memcpy (never
// rte_hash_crc(), which casts: strict aliasing would let the compiler read
// an address before the stores that built it).
inline uint32_t crc_ip6(const Ip6& ip, uint32_t seed) noexcept {
  return crc32c_u64(crc32c_u64(seed, ip.word(0)), ip.word(1));
}

// RFC 4291 §2.2 text ("fd00:10:96::20", also with an embedded dotted quad)
// -> Ip6; nullopt when malformed.  to_string() writes RFC 5952's canonical
// form (lower case, the longest run of zero groups as "::").
std::optional<Ip6> parse_ip6(std::string_view text) noexcept;
std::string to_string(const Ip6& ip);

// The solicited-node multicast address of `ip` (RFC 4291 §2.7.1):
// ff02::1:ffXX:XXXX with its last 24 bits.
Ip6 solicited_node(const Ip6& ip) noexcept;

enum class Family : uint8_t { kIpv4 = 4, kIpv6 = 6 };

constexpr std::string_view family_name(Family f) noexcept { return f == Family::kIpv4 ? "IPv4" : "IPv6"; }

// A family-tagged address for control-plane data (config, registry, DNS).
struct IpAddr {
  Family family = Family::kIpv4;
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses the first 4

  static IpAddr v4(Ip4 ip) noexcept {
    IpAddr a;
    std::memcpy(a.bytes.data(), &ip.be, 4);
    return a;
  }
  static IpAddr v6(const Ip6& ip) noexcept {
    IpAddr a;
    a.family = Family::kIpv6;
    a.bytes = ip.bytes;
    return a;
  }
  bool is_v4() const noexcept { return family == Family::kIpv4; }
  bool is_v6() const noexcept { return family == Family::kIpv6; }
  Ip4 as_v4() const noexcept {
    Ip4 ip;
    std::memcpy(&ip.be, bytes.data(), 4);
    return ip;
  }
  Ip6 as_v6() const noexcept { return Ip6{bytes}; }
  friend bool operator==(const IpAddr&, const IpAddr&) = default;
  // The order a defaulted <=> gives (family, then the bytes
  // lexicographically), compared as two big-endian words: std::array's
  // <=> calls memcmp, and the control plane's maps keyed by addresses
  // (stats slots: 200k endpoints at 10k services) compare them a lot.
  friend std::strong_ordering operator<=>(const IpAddr& a, const IpAddr& b) noexcept {
    if (a.family != b.family) return a.family <=> b.family;
    if (a.word(0) != b.word(0)) return a.word(0) <=> b.word(0);
    return a.word(1) <=> b.word(1);
  }

 private:
  // Bytes 8i..8i+7 as a number whose order is theirs.
  uint64_t word(size_t i) const noexcept {
    uint64_t w;
    std::memcpy(&w, bytes.data() + 8 * i, sizeof w);
    if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap64(w);
    return w;
  }
};

// Either family's text -> IpAddr (a dotted quad is IPv4, anything with a
// colon IPv6); nullopt when malformed.
std::optional<IpAddr> parse_ip(std::string_view text) noexcept;
// The address's text in its family's form (to_string(Ip4) / to_string(Ip6)).
std::string to_string(const IpAddr& ip);

// An IPv4 prefix such as 172.17.0.0/16; `addr` keeps the host bits as
// written (a port's own address), network() masks them off.
struct Prefix4 {
  Ip4 addr;
  uint8_t length = 0;

  constexpr uint32_t mask_host() const noexcept {
    return length == 0 ? 0u : ~uint32_t{0} << (32 - length);
  }
  constexpr Ip4 network() const noexcept {
    return Ip4::from_host(addr.host() & mask_host());
  }
  constexpr bool contains(Ip4 ip) const noexcept {
    return (ip.host() & mask_host()) == (addr.host() & mask_host());
  }
  friend constexpr bool operator==(Prefix4, Prefix4) = default;
};

// "172.17.0.1/16" -> Prefix4; nullopt when malformed.
std::optional<Prefix4> parse_prefix4(std::string_view text) noexcept;
std::string to_string(Prefix4 p);

// An IPv6 prefix such as fd00:10:244::/64; `addr` keeps the host bits as
// written (a port's own address), network() clears them.
struct Prefix6 {
  Ip6 addr;
  uint8_t length = 0;  // 0..128

  Ip6 network() const noexcept {
    Ip6 n = addr;
    for (int i = 0; i < 16; ++i) n.bytes[i] &= mask_byte(i);
    return n;
  }
  bool contains(const Ip6& ip) const noexcept {
    for (int i = 0; i < 16; ++i) {
      if (((ip.bytes[i] ^ addr.bytes[i]) & mask_byte(i)) != 0) return false;
    }
    return true;
  }
  // Byte i of the prefix mask.
  uint8_t mask_byte(int i) const noexcept {
    const int bits = std::clamp(length - 8 * i, 0, 8);
    return static_cast<uint8_t>(0xff00u >> bits);
  }
  friend bool operator==(const Prefix6&, const Prefix6&) = default;
};

// "fd00:10:244::1/64" -> Prefix6; nullopt when malformed.
std::optional<Prefix6> parse_prefix6(std::string_view text) noexcept;
std::string to_string(const Prefix6& p);

struct MacAddr {
  std::array<uint8_t, 6> bytes{};
  friend bool operator==(const MacAddr&, const MacAddr&) = default;
  bool is_zero() const noexcept {
    return bytes == std::array<uint8_t, 6>{};
  }
};

// "02:00:00:00:00:01" -> MacAddr; nullopt when malformed.
std::optional<MacAddr> parse_mac(std::string_view text) noexcept;
std::string to_string(const MacAddr& mac);

}  // namespace podgate::dp
