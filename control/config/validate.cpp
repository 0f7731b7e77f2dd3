// Shared validation rules; see validate.hpp.
#include "control/config/validate.hpp"

#include <algorithm>
#include <array>

namespace podgate::ctl {

namespace {

bool is_alnum_lower(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

bool is_dns1123_label(std::string_view s) noexcept {
  if (s.empty() || s.size() > 63) return false;
  if (!is_alnum_lower(s.front()) || !is_alnum_lower(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_alnum_lower(c) || c == '-'; });
}

bool is_dns1035_label(std::string_view s) noexcept {
  return is_dns1123_label(s) && s.front() >= 'a' && s.front() <= 'z';
}

bool is_dns_name(std::string_view s) noexcept {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return false;
  while (true) {
    size_t dot = s.find('.');
    if (!is_dns1123_label(s.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

bool is_dns1123_subdomain(std::string_view s) noexcept {
  if (s.empty() || s.size() > 253) return false;
  // Kubernetes' regex: [a-z0-9]([-a-z0-9]*[a-z0-9])? joined by '.'; a
  // label's length is bounded only by the whole name's.
  while (true) {
    const std::string_view label = s.substr(0, s.find('.'));
    if (label.empty() || !is_alnum_lower(label.front()) || !is_alnum_lower(label.back()) ||
        !std::all_of(label.begin(), label.end(), [](char c) { return is_alnum_lower(c) || c == '-'; })) {
      return false;
    }
    if (label.size() == s.size()) return true;
    s.remove_prefix(label.size() + 1);
  }
}

bool is_port_name(std::string_view s) noexcept {
  return !s.empty() && s.size() <= 32 &&
         std::all_of(s.begin(), s.end(),
                     [](char c) { return is_alnum_lower(c) || c == '-' || c == '_'; });
}

bool is_interface_name(std::string_view s) noexcept {
  return !s.empty() && s.size() <= 15 && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return is_alnum_lower(c) || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.';
         });
}

bool is_unicast_ip4(dp::Ip4 ip) noexcept {
  uint32_t first = ip.host() >> 24;
  return first != 0 && first != 127 && first < 224;
}

bool is_unicast_ip6(const dp::Ip6& ip) noexcept {
  static constexpr std::array<uint8_t, 16> kLoopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static constexpr std::array<uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (ip.is_zero() || ip.is_multicast() || ip.bytes == kLoopback) return false;
  return !std::equal(kMapped.begin(), kMapped.end(), ip.bytes.begin());
}

bool is_unicast_ip(const dp::IpAddr& ip) noexcept {
  return ip.is_v4() ? is_unicast_ip4(ip.as_v4()) : is_unicast_ip6(ip.as_v6());
}

bool is_unicast_mac(const dp::MacAddr& mac) noexcept {
  return (mac.bytes[0] & 1) == 0 && !mac.is_zero();
}

bool is_prime(uint32_t n) noexcept {
  if (n < 2) return false;
  for (uint32_t d = 2; d <= n / d; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

bool overlaps(dp::Prefix4 a, dp::Prefix4 b) noexcept {
  dp::Prefix4 shorter = a.length <= b.length ? a : b;
  return shorter.contains(a.addr) && shorter.contains(b.addr);
}

bool overlaps(const dp::Prefix6& a, const dp::Prefix6& b) noexcept {
  const dp::Prefix6& shorter = a.length <= b.length ? a : b;
  return shorter.contains(a.addr) && shorter.contains(b.addr);
}

bool is_group_name(std::string_view s) noexcept {
  return !s.empty() && s.size() <= 32 && s.front() != '-' &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
             std::string_view::npos;
}

std::optional<dp::Proto> parse_protocol(std::string_view s) noexcept {
  if (s == "TCP") return dp::Proto::kTcp;
  if (s == "UDP") return dp::Proto::kUdp;
  return std::nullopt;
}

std::string port_and_protocol(uint16_t port, dp::Proto protocol) {
  return std::to_string(port) + "/" + std::string(dp::proto_name(protocol));
}

std::string vip_port_text(const dp::IpAddr& vip, std::string_view what) {
  const std::string ip = dp::to_string(vip);
  return (vip.is_v6() ? "[" + ip + "]" : ip) + ":" + std::string(what);
}

std::string not_in_range(int64_t value, int64_t lo, int64_t hi) {
  return not_in_range(std::to_string(value), lo, hi);
}

std::string not_in_range(std::string_view value, int64_t lo, int64_t hi) {
  return std::string(value) + " is not in " + std::to_string(lo) + ".." + std::to_string(hi);
}

std::string not_dns1123_label(std::string_view s) {
  return quote(s) + " is not a DNS-1123 label (1..63 of a-z, 0-9 and '-', starting and ending "
                    "with a letter or digit)";
}

std::string not_dns1123_subdomain(std::string_view s) {
  return quote(s) + " is not a DNS-1123 subdomain (at most 253 characters: dot-separated "
                    "labels of a-z, 0-9 and '-', each starting and ending with a letter or digit)";
}

std::string not_dns1035_label(std::string_view s) {
  return quote(s) + " is not a DNS-1035 label (1..63 of a-z, 0-9 and '-', starting with a "
                    "letter, ending with a letter or digit)";
}

std::string not_dns_name(std::string_view s) {
  return quote(s) + " is not a DNS name (dot-separated DNS-1123 labels, at most 253 characters), "
                    "e.g. \"db.example.com\"";
}

std::string not_ip4(std::string_view s, std::string_view example) {
  return quote(s) + " is not an IPv4 address such as \"" + std::string(example) + "\"";
}

std::string not_unicast_ip4(std::string_view s) {
  return quote(s) + " is not a unicast address (0/8, 127/8 and 224/3 are not allowed)";
}

std::string not_unicast_ip6(std::string_view s) {
  return quote(s) + " is not a unicast IPv6 address (::, ::1, ::ffff:0:0/96 and ff00::/8 are not "
                    "allowed)";
}

std::string not_unicast_ip(const dp::IpAddr& ip) {
  return ip.is_v4() ? not_unicast_ip4(dp::to_string(ip.as_v4())) : not_unicast_ip6(dp::to_string(ip.as_v6()));
}

std::string not_ip(std::string_view s, std::string_view example) {
  return quote(s) + " is not an IPv4 or IPv6 address such as \"" + std::string(example) + "\"";
}

std::string ip6_where_ip4(std::string_view s, std::string_view what) {
  return quote(s) + " is an IPv6 address; " + std::string(what) + " takes IPv4 only";
}

std::string link_local_not_allowed(std::string_view s, std::string_view what) {
  return quote(s) + " is link-local (fe80::/10); " + std::string(what) +
         " needs a global or unique-local address";
}

std::string mtu_too_small_for_ipv6(int64_t mtu) {
  return not_in_range(mtu, kMinPortMtu6, kMaxPortMtu) +
         "; a port with an address6 carries IPv6, whose links have an MTU of at least " +
         std::to_string(kMinPortMtu6) + " (RFC 8200 section 5)";
}

std::string unsupported_protocol(std::string_view s) {
  return quote(s) + " is not supported; allowed: TCP, UDP";
}

}  // namespace podgate::ctl
