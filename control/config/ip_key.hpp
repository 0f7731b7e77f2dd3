// Hash keys for the control plane's checks across objects, for addresses of
// either family (issue 11): a VIP, an endpoint address, a VIP:port/protocol.
// Control thread only; the dataplane keys its maps per family (net.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

#include "dataplane/net.hpp"

namespace podgate::ctl {

struct IpAddrHash {
  size_t operator()(const dp::IpAddr& a) const noexcept {
    uint64_t w[2];
    std::memcpy(w, a.bytes.data(), sizeof w);
    // splitmix64's finaliser over both halves and the family.
    uint64_t h = w[0] ^ (w[1] * 0x9e3779b97f4a7c15ull) ^ static_cast<uint64_t>(a.family);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    return static_cast<size_t>(h ^ (h >> 31));
  }
};

// A forwarded VIP:port/protocol; a dual-stack service has one per family.
struct VipPort {
  dp::IpAddr ip;
  uint16_t port = 0;
  dp::Proto protocol = dp::Proto::kTcp;
  friend bool operator==(const VipPort&, const VipPort&) = default;
};

struct VipPortHash {
  size_t operator()(const VipPort& k) const noexcept {
    return IpAddrHash{}(k.ip) ^ (size_t{k.port} << 8 | static_cast<uint8_t>(k.protocol)) * 0x9e3779b97f4a7c15ull;
  }
};

}  // namespace podgate::ctl
