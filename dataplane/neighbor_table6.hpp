// Next-hop IPv6 -> MAC (issue 11), as NeighborTable is for IPv4: shared by
// all workers, written only by the control thread (which sends neighbour
// solicitations and learns the advertisements workers punt to it), read
// lock-free.  A slot is marked used once, after its address is written
// (release), and never unmarked, so no probe chain is ever cut; a reader
// that sees the mark (acquire) reads a whole address.  MACs are
// overwritten, or cleared to forget one; a forgotten address's slot is
// taken over by set() of another address in its window, under the slot's
// seqlock exactly as NeighborTable does (see there): a reader whose address
// matches takes the MAC only if the sequence did not move while it looked,
// else it answers "unresolved", never the old address with the new MAC.
// The address is two atomic words, so a reader racing a takeover reads
// each word whole (a mix of the two addresses is caught by the sequence).
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
    const uint64_t w0 = ip.word(0), w1 = ip.word(1);
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      const Slot& s = slots_[i];
      const uint32_t seq = s.seq.load(std::memory_order_acquire);
      if (s.used.load(std::memory_order_acquire) == 0) return 0;
      if (s.ip[0].load(std::memory_order_relaxed) == w0 && s.ip[1].load(std::memory_order_relaxed) == w1) {
        const uint64_t mac = s.mac.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        // Taken over by another address while we looked: unresolved.
        if ((seq & 1) != 0 || s.seq.load(std::memory_order_relaxed) != seq) return 0;
        return mac;
      }
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

  // Control thread only.  `ip`'s own slot if it has one, else the first
  // slot of its window that is empty or forgotten.  False when the window
  // holds neither (kMaxProbe addresses with a MAC hash there).
  bool set(const Ip6& ip, const MacAddr& mac) noexcept {
    uint64_t w = 0;
    std::memcpy(&w, mac.bytes.data(), 6);
    Slot* free = nullptr;
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      Slot& s = slots_[i];
      if (s.used.load(std::memory_order_relaxed) == 0) {  // `ip` is not further on
        if (free == nullptr) free = &s;
        break;
      }
      if (holds(s, ip)) {
        const uint64_t old = s.mac.load(std::memory_order_relaxed);
        if (old != w) {
          s.mac.store(w, std::memory_order_relaxed);
          if (old == 0) ++size_;  // learnt again after being forgotten
          if (w == 0) --size_;
          version_.fetch_add(1, std::memory_order_release);
        }
        return true;
      }
      if (free == nullptr && s.mac.load(std::memory_order_relaxed) == 0) free = &s;
    }
    if (free == nullptr) return false;
    if (free->used.load(std::memory_order_relaxed) == 0) {
      free->ip[0].store(ip.word(0), std::memory_order_relaxed);
      free->ip[1].store(ip.word(1), std::memory_order_relaxed);
      free->mac.store(w, std::memory_order_relaxed);
      free->used.store(1, std::memory_order_release);
    } else {  // a forgotten address's slot: NeighborTable's seqlock
      const uint32_t seq = free->seq.load(std::memory_order_relaxed);
      free->seq.store(seq + 1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);
      free->ip[0].store(ip.word(0), std::memory_order_relaxed);
      free->ip[1].store(ip.word(1), std::memory_order_relaxed);
      free->mac.store(w, std::memory_order_relaxed);
      free->seq.store(seq + 2, std::memory_order_release);
    }
    if (w != 0) ++size_;
    version_.fetch_add(1, std::memory_order_release);
    return true;
  }

  // Forgets `ip`'s MAC (control thread only): the slot keeps the address,
  // unresolved, until set() gives it to another address.  False if it has
  // no entry.
  bool forget(const Ip6& ip) noexcept {
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      Slot& s = slots_[i];
      if (s.used.load(std::memory_order_relaxed) == 0) return false;
      if (holds(s, ip)) {
        if (s.mac.load(std::memory_order_relaxed) == 0) return false;  // forgotten already
        s.mac.store(0, std::memory_order_relaxed);
        --size_;
        version_.fetch_add(1, std::memory_order_release);
        return true;
      }
    }
    return false;
  }

  // Makes this table slot for slot what `other` is (control thread only, on
  // a table no worker reads: a dry run's scratch copy).
  void copy_from(const NeighborTable6& other) noexcept {
    for (uint32_t i = 0; i < kCapacity; ++i) {
      Slot& s = slots_[i];
      const Slot& o = other.slots_[i];
      s.used.store(o.used.load(std::memory_order_relaxed), std::memory_order_relaxed);
      s.seq.store(o.seq.load(std::memory_order_relaxed), std::memory_order_relaxed);
      s.ip[0].store(o.ip[0].load(std::memory_order_relaxed), std::memory_order_relaxed);
      s.ip[1].store(o.ip[1].load(std::memory_order_relaxed), std::memory_order_relaxed);
      s.mac.store(o.mac.load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    version_.store(other.version_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    size_ = other.size_;
  }

  uint32_t version() const noexcept { return version_.load(std::memory_order_acquire); }
  // Addresses with a MAC (control thread only); forgotten ones are not
  // counted: their slots are free for set().
  uint32_t size() const noexcept { return size_; }

  // Each address with a MAC, in slot order (control thread only).
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const Slot& s : slots_) {
      if (s.used.load(std::memory_order_relaxed) == 0) continue;
      const uint64_t w = s.mac.load(std::memory_order_relaxed);
      if (w == 0) continue;
      Ip6 ip;
      const uint64_t words[2] = {s.ip[0].load(std::memory_order_relaxed), s.ip[1].load(std::memory_order_relaxed)};
      std::memcpy(ip.bytes.data(), words, 16);
      MacAddr mac;
      std::memcpy(mac.bytes.data(), &w, 6);
      fn(ip, mac);
    }
  }

 private:
  struct Slot {
    std::atomic<uint32_t> used{0};     // set once, after the first address
    std::atomic<uint32_t> seq{0};      // odd while set() gives the slot to another address
    std::atomic<uint64_t> ip[2]{};     // Ip6::word(0), word(1)
    std::atomic<uint64_t> mac{0};      // 0 = no MAC (forgotten)
  };
  static_assert(sizeof(Slot) == 32);
  // Control thread only (the writer reads its own stores).
  static bool holds(const Slot& s, const Ip6& ip) noexcept {
    return s.ip[0].load(std::memory_order_relaxed) == ip.word(0) &&
           s.ip[1].load(std::memory_order_relaxed) == ip.word(1);
  }
  static uint32_t hash(const Ip6& ip) noexcept {
    return crc_ip6(ip, 0x5bd1e995) & (kCapacity - 1);
  }

  Slot slots_[kCapacity];
  std::atomic<uint32_t> version_{0};
  uint32_t size_ = 0;
};

}  // namespace podgate::dp
