// Next-hop IPv4 -> MAC, shared by all workers, written only by the control
// thread (which sends ARP requests and learns the replies workers punt to
// it).  Workers read it lock-free: each slot is an address word and a MAC
// word, both atomics.  The writer publishes the MAC before the address
// (release), so a reader that sees the address (acquire) sees a MAC too.
// Entries are never removed, only overwritten, so a reader can never match
// an address whose slot is being reused for another one.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>


#include "dataplane/dp_memory.hpp"
#include "dataplane/net.hpp"

namespace podgate::dp {

class NeighborTable : public DpObject {
 public:
  static constexpr uint32_t kCapacity = 4096;  // power of two
  static constexpr uint32_t kMaxProbe = 16;

  // Worker side: the MAC for `ip`, or nullopt if unresolved.
  std::optional<MacAddr> find(Ip4 ip) const noexcept {
    const uint64_t w = find_word(ip);
    if (w == 0) return std::nullopt;
    return unpack(w);
  }
  // The same, as the MAC's six bytes in the low bytes of a word (memory
  // order: copy 6 bytes from its address to write it into a header), or 0
  // if unresolved (no neighbour has the all-zero MAC).  The fast path's form.
  uint64_t find_word(Ip4 ip) const noexcept {
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      uint32_t key = slots_[i].ip.load(std::memory_order_acquire);
      if (key == ip.be) return slots_[i].mac.load(std::memory_order_relaxed);
      if (key == 0) return 0;
    }
    return 0;
  }

  // Control thread only.  False when the probe window is full.
  bool set(Ip4 ip, const MacAddr& mac) noexcept {
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      uint32_t key = slots_[i].ip.load(std::memory_order_relaxed);
      if (key == ip.be) {
        if (slots_[i].mac.load(std::memory_order_relaxed) != pack(mac)) {
          slots_[i].mac.store(pack(mac), std::memory_order_relaxed);
          version_.fetch_add(1, std::memory_order_release);
        }
        return true;
      }
      if (key == 0) {
        slots_[i].mac.store(pack(mac), std::memory_order_relaxed);
        slots_[i].ip.store(ip.be, std::memory_order_release);
        ++size_;
        version_.fetch_add(1, std::memory_order_release);
        return true;
      }
    }
    return false;
  }

  // Forgets `ip`'s MAC (control thread only): its slot keeps the address,
  // with no MAC, so the next packet for it is resolved afresh (a reader
  // sees the address with MAC 0: unresolved).  False if it has no entry.
  bool forget(Ip4 ip) noexcept {
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      const uint32_t key = slots_[i].ip.load(std::memory_order_relaxed);
      if (key == ip.be) {
        slots_[i].mac.store(0, std::memory_order_relaxed);
        version_.fetch_add(1, std::memory_order_release);
        return true;
      }
      if (key == 0) return false;
    }
    return false;
  }

  // Changes with every entry added or changed: workers that cache what
  // they read (Worker's adjacency cache) start over when it moves.
  uint32_t version() const noexcept { return version_.load(std::memory_order_acquire); }

  uint32_t size() const noexcept { return size_; }  // control thread only

  template <typename Fn>
  void for_each(Fn&& fn) const {  // control thread only
    for (const Slot& s : slots_) {
      uint32_t key = s.ip.load(std::memory_order_relaxed);
      if (key != 0) fn(Ip4{key}, unpack(s.mac.load(std::memory_order_relaxed)));
    }
  }

 private:
  struct Slot {
    std::atomic<uint32_t> ip{0};  // network order; 0 = empty
    std::atomic<uint64_t> mac{0};
  };
  static uint32_t hash(Ip4 ip) noexcept {
    return crc32c_u32(0x5bd1e995, ip.be) & (kCapacity - 1);
  }
  // The MAC's six bytes in the low bytes of a word, in memory order: one
  // copy each way, no per-byte shifts on the worker's path.
  static uint64_t pack(const MacAddr& mac) noexcept {
    uint64_t w = 0;
    std::memcpy(&w, mac.bytes.data(), 6);
    return w;
  }
  static MacAddr unpack(uint64_t w) noexcept {
    MacAddr mac;
    std::memcpy(mac.bytes.data(), &w, 6);
    return mac;
  }

  Slot slots_[kCapacity];
  std::atomic<uint32_t> version_{0};
  uint32_t size_ = 0;
};

}  // namespace podgate::dp
