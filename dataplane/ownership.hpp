// Which worker owns a connection (architecture decision 4), computed the
// way a NIC's RSS spreads packets: the Toeplitz hash of the client's
// address and port, looked up in a redirection table (RETA) of workers.
//
// A port that can hash on the client's fields alone (the source on the
// uplink, the destination on the Pods side; DPDK's L3_SRC_ONLY|L4_SRC_ONLY
// and L3_DST_ONLY|L4_DST_ONLY) is given the same key and table
// (program_client_rss in port.hpp), so each packet, in either direction,
// arrives on the queue of the worker that owns its connection and nothing
// is handed off.  Where a port cannot (net_memif, net_tap, net_ring), the
// function still says who the owner is, and a packet that arrived elsewhere
// is handed to it.  podgate-gen uses the same function to steer flows over
// memif queues as such a NIC would (tools/trafficgen, --steer-workers), and
// a port told so ([[ports]] steered_by_peer) takes its queues at their word.
//
// Only the first 10 key bytes matter for a 6-byte input (48 bits, each
// taking a 32-bit window of the key), so one precomputed table per input
// byte gives the hash in six loads: the hash is linear over GF(2), the XOR
// of each byte's contribution.
#pragma once

#include <array>
#include <cstdint>

#include <rte_byteorder.h>

#include "dataplane/net.hpp"

namespace podgate::dp {

// Which address of a TCP/UDP packet arriving on a port is the client's:
// the source where clients send from (the uplink), the destination on the
// Pods' side, where their replies arrive.
enum class ClientAddress : uint8_t { kSource, kDestination };

class Ownership {
 public:
  // The key the RSS specification gives as its example and many drivers
  // use by default (40 bytes, enough for every IPv4 and IPv6 tuple).
  static constexpr std::array<uint8_t, 40> kKey = {
      0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
      0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
      0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};
  // Redirection-table sizes are powers of two; 512 is the largest used
  // here (DPDK's 64-entry RETA groups; i40e and mlx5 use 512, ixgbe 128).
  static constexpr uint32_t kMaxRetaSize = 512;

  // `reta_size`: a power of two, at most kMaxRetaSize, and no larger than
  // the RETA of any port programmed with this table (a NIC with a larger
  // table is given this one repeated, which selects the same entries).
  explicit Ownership(uint32_t workers = 1, uint32_t reta_size = 128) noexcept
      : workers_(workers == 0 ? 1 : workers), mask_(reta_size - 1) {
    for (uint32_t byte = 0; byte < 6; ++byte) {
      for (uint32_t v = 0; v < 256; ++v) {
        uint32_t h = 0;
        for (uint32_t bit = 0; bit < 8; ++bit) {
          if (v & (0x80u >> bit)) h ^= key_window(byte * 8 + bit);
        }
        table_[byte][v] = h;
      }
    }
    for (uint32_t byte = 0; byte < 18; ++byte) {
      for (uint32_t v = 0; v < 256; ++v) {
        uint32_t h = 0;
        for (uint32_t bit = 0; bit < 8; ++bit) {
          if (v & (0x80u >> bit)) h ^= key_window(byte * 8 + bit);
        }
        table6_[byte][v] = h;
      }
    }
    for (uint32_t i = 0; i < kMaxRetaSize; ++i) reta_[i] = static_cast<uint16_t>((i & mask_) % workers_);
  }

  // The Toeplitz hash of `ip:port` as a NIC computes it over these six
  // bytes in network order (what rte_softrss gives for the same input).
  uint32_t hash(Ip4 ip, rte_be16_t port) const noexcept {
    const auto* a = reinterpret_cast<const uint8_t*>(&ip.be);
    const auto* p = reinterpret_cast<const uint8_t*>(&port);
    return table_[0][a[0]] ^ table_[1][a[1]] ^ table_[2][a[2]] ^ table_[3][a[3]] ^
           table_[4][p[0]] ^ table_[5][p[1]];
  }

  // The same over an IPv6 address and port: 18 bytes (a NIC's RSS over
  // L3_SRC_ONLY|L4_SRC_ONLY of an IPv6 TCP/UDP packet).
  uint32_t hash(const Ip6& ip, rte_be16_t port) const noexcept {
    const auto* p = reinterpret_cast<const uint8_t*>(&port);
    uint32_t h = table6_[16][p[0]] ^ table6_[17][p[1]];
    for (uint32_t i = 0; i < 16; ++i) h ^= table6_[i][ip.bytes[i]];
    return h;
  }

  // The worker that owns the connection of client `ip:port`.
  uint32_t owner(Ip4 ip, rte_be16_t port) const noexcept {
    if (workers_ == 1) return 0;
    return reta_[hash(ip, port) & mask_];
  }
  uint32_t owner(const Ip6& ip, rte_be16_t port) const noexcept {
    if (workers_ == 1) return 0;
    return reta_[hash(ip, port) & mask_];
  }

  uint32_t workers() const noexcept { return workers_; }
  uint32_t reta_size() const noexcept { return mask_ + 1; }
  // Entry i of the redirection table: the worker (and RX queue) for hashes
  // whose low bits are i.  Periodic with reta_size().
  uint16_t reta_entry(uint32_t i) const noexcept { return reta_[i & mask_]; }

 private:
  // The 32 key bits starting at bit `first` (bit 0: the first byte's MSB).
  static constexpr uint32_t key_window(uint32_t first) noexcept {
    const uint32_t byte = first / 8, shift = first % 8;
    const uint64_t w = uint64_t{kKey[byte]} << 32 | uint64_t{kKey[byte + 1]} << 24 |
                       uint64_t{kKey[byte + 2]} << 16 | uint64_t{kKey[byte + 3]} << 8 | kKey[byte + 4];
    return static_cast<uint32_t>(w >> (8 - shift));
  }

  uint32_t workers_;
  uint32_t mask_;
  uint32_t table_[6][256];
  uint32_t table6_[18][256];
  uint16_t reta_[kMaxRetaSize];
};

}  // namespace podgate::dp
