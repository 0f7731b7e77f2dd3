#include "dataplane/net.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

namespace podgate::dp {

namespace {

// Parses a decimal number in [0, max] that fills `text` exactly; no sign,
// no leading zeros beyond a single "0" (as inet_pton requires).
std::optional<uint32_t> parse_decimal(std::string_view text, uint32_t max) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > max) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<Ip4> parse_ip4(std::string_view text) noexcept {
  uint32_t host = 0;
  for (int i = 0; i < 4; ++i) {
    size_t dot = text.find('.');
    std::string_view part = i == 3 ? text : text.substr(0, dot);
    if (i < 3 && dot == std::string_view::npos) return std::nullopt;
    auto octet = parse_decimal(part, 255);
    if (!octet) return std::nullopt;
    host = host << 8 | *octet;
    if (i < 3) text.remove_prefix(dot + 1);
  }
  return Ip4::from_host(host);
}

// Digits written by hand rather than by snprintf (~2k instructions): the
// control plane writes an address per endpoint in places, e.g. its Maglev
// key (200k at 10k services).
std::string to_string(Ip4 ip) {
  const uint32_t h = ip.host();
  char buf[16];  // "255.255.255.255"
  char* end = buf;
  for (int shift = 24; shift >= 0; shift -= 8) {
    const uint32_t v = (h >> shift) & 0xff;
    if (v >= 100) *end++ = static_cast<char>('0' + v / 100);
    if (v >= 10) *end++ = static_cast<char>('0' + v / 10 % 10);
    *end++ = static_cast<char>('0' + v % 10);
    if (shift != 0) *end++ = '.';
  }
  return std::string(buf, end);
}

std::optional<Prefix4> parse_prefix4(std::string_view text) noexcept {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = parse_ip4(text.substr(0, slash));
  auto len = parse_decimal(text.substr(slash + 1), 32);
  if (!ip || !len) return std::nullopt;
  return Prefix4{*ip, static_cast<uint8_t>(*len)};
}

std::string to_string(Prefix4 p) {
  return to_string(p.addr) + "/" + std::to_string(p.length);
}

std::optional<Ip6> parse_ip6(std::string_view text) noexcept {
  char buf[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  Ip6 ip;
  if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
  return ip;
}

std::string to_string(const Ip6& ip) {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, ip.bytes.data(), buf, sizeof buf) == nullptr) return "::";
  return buf;
}

Ip6 solicited_node(const Ip6& ip) noexcept {
  Ip6 s;
  s.bytes[0] = 0xff;
  s.bytes[1] = 0x02;
  s.bytes[11] = 0x01;
  s.bytes[12] = 0xff;
  s.bytes[13] = ip.bytes[13];
  s.bytes[14] = ip.bytes[14];
  s.bytes[15] = ip.bytes[15];
  return s;
}

std::optional<IpAddr> parse_ip(std::string_view text) noexcept {
  if (text.find(':') != std::string_view::npos) {
    if (auto ip = parse_ip6(text)) return IpAddr::v6(*ip);
    return std::nullopt;
  }
  if (auto ip = parse_ip4(text)) return IpAddr::v4(*ip);
  return std::nullopt;
}

std::string to_string(const IpAddr& ip) {
  return ip.is_v4() ? to_string(ip.as_v4()) : to_string(ip.as_v6());
}

std::optional<Prefix6> parse_prefix6(std::string_view text) noexcept {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = parse_ip6(text.substr(0, slash));
  auto len = parse_decimal(text.substr(slash + 1), 128);
  if (!ip || !len) return std::nullopt;
  return Prefix6{*ip, static_cast<uint8_t>(*len)};
}

std::string to_string(const Prefix6& p) { return to_string(p.addr) + "/" + std::to_string(p.length); }

std::optional<MacAddr> parse_mac(std::string_view text) noexcept {
  if (text.size() != 17) return std::nullopt;
  MacAddr mac;
  for (size_t i = 0; i < 6; ++i) {
    if (i < 5 && text[i * 3 + 2] != ':') return std::nullopt;
    uint32_t byte = 0;
    auto first = text.data() + i * 3;
    auto [end, ec] = std::from_chars(first, first + 2, byte, 16);
    if (ec != std::errc{} || end != first + 2) return std::nullopt;
    mac.bytes[i] = static_cast<uint8_t>(byte);
  }
  return mac;
}

std::string to_string(const MacAddr& mac) {
  char buf[18];
  const auto& b = mac.bytes;
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1],
                b[2], b[3], b[4], b[5]);
  return buf;
}

}  // namespace podgate::dp
