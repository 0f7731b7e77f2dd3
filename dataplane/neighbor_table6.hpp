// Next-hop IPv6 -> MAC (issue 11), as NeighborTable is for IPv4: shared by
// all workers, written only by the control thread (which sends neighbour
// solicitations and learns the advertisements workers punt to it), read
// lock-free.  A slot's address is written once, before the slot is marked
// used (release); it never changes after, so a reader that sees the mark
// (acquire) reads a whole address.  MACs are overwritten, or cleared to
// forget one.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>


#include "dataplane/dp_memory.hpp"
#include "dataplane/net.hpp"

namespace podgate::dp {

class NeighborTable6 : public DpObject {
 public:
  static constexpr uint32_t kCapacity = 4096;  // power of two
  static constexpr uint32_t kMaxProbe = 16;

  // Worker side: the MAC's six bytes in a word's low bytes (memory order),
  // or 0 when unresolved.
  uint64_t find_word(const Ip6& ip) const noexcept {
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      const Slot& s = slots_[i];
      if (s.used.load(std::memory_order_acquire) == 0) return 0;
      if (s.ip == ip) return s.mac.load(std::memory_order_relaxed);
    }
    return 0;
  }
  std::optional<MacAddr> find(const Ip6& ip) const noexcept {
    const uint64_t w = find_word(ip);
    if (w == 0) return std::nullopt;
    MacAddr mac;
    std::memcpy(mac.bytes.data(), &w, 6);
    return mac;
  }

  // Control thread only.  False when the probe window is full.
  bool set(const Ip6& ip, const MacAddr& mac) noexcept {
    uint64_t w = 0;
    std::memcpy(&w, mac.bytes.data(), 6);
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      Slot& s = slots_[i];
      if (s.used.load(std::memory_order_relaxed) == 0) {
        s.ip = ip;
        s.mac.store(w, std::memory_order_relaxed);
        s.used.store(1, std::memory_order_release);
        ++size_;
        version_.fetch_add(1, std::memory_order_release);
        return true;
      }
      if (s.ip == ip) {
        if (s.mac.load(std::memory_order_relaxed) != w) {
          s.mac.store(w, std::memory_order_relaxed);
          version_.fetch_add(1, std::memory_order_release);
        }
        return true;
      }
    }
    return false;
  }

  // Forgets `ip`'s MAC (control thread only); false if it has no entry.
  bool forget(const Ip6& ip) noexcept {
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      Slot& s = slots_[i];
      if (s.used.load(std::memory_order_relaxed) == 0) return false;
      if (s.ip == ip) {
        s.mac.store(0, std::memory_order_relaxed);
        version_.fetch_add(1, std::memory_order_release);
        return true;
      }
    }
    return false;
  }

  uint32_t version() const noexcept { return version_.load(std::memory_order_acquire); }
  uint32_t size() const noexcept { return size_; }  // control thread only

  template <typename Fn>
  void for_each(Fn&& fn) const {  // control thread only
    for (const Slot& s : slots_) {
      if (s.used.load(std::memory_order_relaxed) == 0) continue;
      const uint64_t w = s.mac.load(std::memory_order_relaxed);
      MacAddr mac;
      std::memcpy(mac.bytes.data(), &w, 6);
      fn(s.ip, mac);
    }
  }

 private:
  struct Slot {
    std::atomic<uint32_t> used{0};
    Ip6 ip;  // written once, before `used`
    std::atomic<uint64_t> mac{0};
  };
  static uint32_t hash(const Ip6& ip) noexcept {
    return crc_ip6(ip, 0x5bd1e995) & (kCapacity - 1);
  }

  Slot slots_[kCapacity];
  std::atomic<uint32_t> version_{0};
  uint32_t size_ = 0;
};

}  // namespace podgate::dp
