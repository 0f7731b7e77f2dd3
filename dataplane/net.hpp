// Address and protocol types shared by the dataplane and the control thread.
//
// Addresses are stored in network byte order, exactly as they sit in packet
// headers, so the fast path compares and copies them without conversion.
// Conversion happens only in the small accessors below (host()/from_host()).
// IPv6 arrives in a later issue: IpAddr already carries a family so that
// config, registry and snapshot code is written family-neutral; the per-packet
// structures (flow keys) are specialised per family, as in DPVS and VPP.
#pragma once

#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <rte_byteorder.h>

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
  friend constexpr bool operator==(Ip4, Ip4) = default;
  friend constexpr auto operator<=>(Ip4 a, Ip4 b) noexcept {
    return a.host() <=> b.host();
  }
};

// "10.96.0.20" -> Ip4; nullopt when the text is not a dotted quad.
std::optional<Ip4> parse_ip4(std::string_view text) noexcept;
std::string to_string(Ip4 ip);

enum class Family : uint8_t { kIpv4 = 4, kIpv6 = 6 };

// A family-tagged address for control-plane data (config, registry, DNS).
struct IpAddr {
  Family family = Family::kIpv4;
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses the first 4

  static IpAddr v4(Ip4 ip) noexcept {
    IpAddr a;
    std::memcpy(a.bytes.data(), &ip.be, 4);
    return a;
  }
  Ip4 as_v4() const noexcept {
    Ip4 ip;
    std::memcpy(&ip.be, bytes.data(), 4);
    return ip;
  }
  friend bool operator==(const IpAddr&, const IpAddr&) = default;
  friend auto operator<=>(const IpAddr&, const IpAddr&) = default;
};

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
