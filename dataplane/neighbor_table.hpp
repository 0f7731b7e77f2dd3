// Next-hop IPv4 -> MAC, shared by all workers, written only by the control
// thread (which sends ARP requests and learns the replies workers punt to
// it).  Workers read it lock-free: each slot is an address word, a sequence
// word and a MAC word, all atomics, in one 16-byte slot (one cache line).
//
// Linear probing, kMaxProbe slots from the address's hash.  A slot's address
// goes from 0 (empty, where every probe stops) to an address and never back
// to 0, so no probe chain is ever cut.  forget() clears the MAC only (the
// address stays: a reader sees it unresolved); set() of another address
// whose window holds that forgotten slot takes it over (else aging would
// leave every next hop ever learnt holding a slot until restart).
//
// Writes, and what a reader can see of them:
//  - into an empty slot: the MAC, then the address (release), so a reader
//    that sees the address (acquire) sees its MAC;
//  - a new MAC for the same address, or 0 to forget it: one store; a reader
//    gets the old MAC or the new one, both this address's;
//  - a forgotten slot taken over by another address: a seqlock.  The slot's
//    sequence goes odd, then the address and the MAC are rewritten, then it
//    goes even (release).  A reader whose address matches reads the
//    sequence before (acquire) and after (acquire fence) the address and
//    MAC, and takes the MAC only if it did not move and is even: else the
//    slot was being taken over while it looked, and the answer is
//    "unresolved" (the old address had no MAC; the new one is not there
//    yet), never the old address with the new MAC.  A reader never waits.
//  - every change bumps version() last, so workers drop what they cached.
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
      const Slot& s = slots_[i];
      const uint32_t seq = s.seq.load(std::memory_order_acquire);
      const uint32_t key = s.ip.load(std::memory_order_acquire);
      if (key == ip.be) {
        const uint64_t mac = s.mac.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        // Taken over by another address while we looked: unresolved.
        if ((seq & 1) != 0 || s.seq.load(std::memory_order_relaxed) != seq) return 0;
        return mac;
      }
      if (key == 0) return 0;
    }
    return 0;
  }

  // Control thread only.  `ip`'s own slot if it has one, else the first
  // slot of its window that is empty or forgotten.  False when the window
  // holds neither (kMaxProbe addresses with a MAC hash there).
  bool set(Ip4 ip, const MacAddr& mac) noexcept {
    const uint64_t w = pack(mac);
    Slot* free = nullptr;
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      Slot& s = slots_[i];
      const uint32_t key = s.ip.load(std::memory_order_relaxed);
      if (key == ip.be) {
        const uint64_t old = s.mac.load(std::memory_order_relaxed);
        if (old != w) {
          s.mac.store(w, std::memory_order_relaxed);
          if (old == 0) ++size_;  // learnt again after being forgotten
          if (w == 0) --size_;
          version_.fetch_add(1, std::memory_order_release);
        }
        return true;
      }
      if (key == 0) {  // `ip` is not further on: addresses never move
        if (free == nullptr) free = &s;
        break;
      }
      if (free == nullptr && s.mac.load(std::memory_order_relaxed) == 0) free = &s;
    }
    if (free == nullptr) return false;
    if (free->ip.load(std::memory_order_relaxed) == 0) {
      free->mac.store(w, std::memory_order_relaxed);
      free->ip.store(ip.be, std::memory_order_release);
    } else {  // a forgotten address's slot: see the header comment
      const uint32_t seq = free->seq.load(std::memory_order_relaxed);
      free->seq.store(seq + 1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);
      free->ip.store(ip.be, std::memory_order_relaxed);
      free->mac.store(w, std::memory_order_relaxed);
      free->seq.store(seq + 2, std::memory_order_release);
    }
    if (w != 0) ++size_;
    version_.fetch_add(1, std::memory_order_release);
    return true;
  }

  // Forgets `ip`'s MAC (control thread only): its slot keeps the address,
  // with no MAC, so the next packet for it is resolved afresh (a reader
  // sees the address with MAC 0: unresolved), until set() gives the slot to
  // another address.  False if it has no entry.
  bool forget(Ip4 ip) noexcept {
    uint32_t i = hash(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      Slot& s = slots_[i];
      const uint32_t key = s.ip.load(std::memory_order_relaxed);
      if (key == ip.be) {
        if (s.mac.load(std::memory_order_relaxed) == 0) return false;  // forgotten already
        s.mac.store(0, std::memory_order_relaxed);
        --size_;
        version_.fetch_add(1, std::memory_order_release);
        return true;
      }
      if (key == 0) return false;
    }
    return false;
  }

  // Makes this table slot for slot what `other` is (control thread only, on
  // a table no worker reads: a dry run's scratch copy).
  void copy_from(const NeighborTable& other) noexcept {
    for (uint32_t i = 0; i < kCapacity; ++i) {
      slots_[i].ip.store(other.slots_[i].ip.load(std::memory_order_relaxed), std::memory_order_relaxed);
      slots_[i].seq.store(other.slots_[i].seq.load(std::memory_order_relaxed), std::memory_order_relaxed);
      slots_[i].mac.store(other.slots_[i].mac.load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    version_.store(other.version_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    size_ = other.size_;
  }

  // Changes with every entry added, changed, forgotten or taken over:
  // workers that cache what they read (Worker's adjacency cache) start over
  // when it moves.
  uint32_t version() const noexcept { return version_.load(std::memory_order_acquire); }

  // Addresses with a MAC (control thread only); forgotten ones are not
  // counted: their slots are free for set().
  uint32_t size() const noexcept { return size_; }

  // Each address with a MAC, in slot order (control thread only).
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (const Slot& s : slots_) {
      const uint32_t key = s.ip.load(std::memory_order_relaxed);
      const uint64_t mac = s.mac.load(std::memory_order_relaxed);
      if (key != 0 && mac != 0) fn(Ip4{key}, unpack(mac));
    }
  }

 private:
  struct Slot {
    std::atomic<uint32_t> ip{0};   // network order; 0 = empty
    std::atomic<uint32_t> seq{0};  // odd while set() gives the slot to another address
    std::atomic<uint64_t> mac{0};  // 0 = no MAC (forgotten)
  };
  static_assert(sizeof(Slot) == 16);
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
