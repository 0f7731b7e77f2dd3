// Next-hop address -> MAC, one table per family: NeighborTable (IPv4,
// learnt by ARP) and NeighborTable6 (IPv6, issue 11, learnt by neighbour
// solicitation and advertisement).  Shared by all workers, written only by
// the control thread (which sends the requests and learns the replies
// workers punt to it).  Workers read it lock-free: every word of a slot is
// an atomic.  Both families are one template, BasicNeighborTable<A>; what
// differs is the slot, NeighborSlot<A>:
//  - IPv4: the address word (0 = empty), a sequence word and a MAC word,
//    16 bytes;
//  - IPv6: a used flag, a sequence word, the address as two words and a
//    MAC word, 32 bytes.  The address does not fit one atomic word, so a
//    separate flag says whether the slot was ever used.
//
// Linear probing, kMaxProbe slots from the address's hash.  A slot goes from
// empty (where every probe stops) to used and never back, so no probe chain
// is ever cut.  forget() clears the MAC only (the address stays: a reader
// sees it unresolved); set() of another address whose window holds that
// forgotten slot takes it over (else aging would leave every next hop ever
// learnt holding a slot until restart).
//
// Writes, and what a reader can see of them:
//  - into an empty slot: the address and the MAC, then the mark of a used
//    slot (release), so a reader that sees the mark (acquire) sees the
//    whole address and its MAC.  For IPv4 the address word is the mark: the
//    MAC, then the address (release);
//  - a new MAC for the same address, or 0 to forget it: one store; a reader
//    gets the old MAC or the new one, both this address's;
//  - a forgotten slot taken over by another address: a seqlock.  The slot's
//    sequence goes odd, then the address and the MAC are rewritten, then it
//    goes even (release).  A reader whose address matches reads the
//    sequence before (acquire) and after (acquire fence) the address and
//    MAC, and takes the MAC only if it did not move and is even: else the
//    slot was being taken over while it looked, and the answer is
//    "unresolved" (the old address had no MAC; the new one is not there
//    yet), never the old address with the new MAC.  An IPv6 reader racing
//    a takeover reads each address word whole, and a mix of the two
//    addresses is caught by the sequence too.  A reader never waits.
//  - every change bumps version() last, so workers drop what they cached.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>


#include "dataplane/dp_memory.hpp"
#include "dataplane/net.hpp"

namespace podgate::dp {

// What a probe finds in a slot, for one address.
enum class SlotHolds : uint8_t { kNothing, kThisAddress, kAnotherAddress };

// One family's slot: how its address is compared, written and marked
// used.  Every slot has a `seq` and a `mac` word, which BasicNeighborTable
// reads and writes itself (the takeover's seqlock included).  The control
// thread's reads are relaxed: it reads its own stores.
template <typename A>
struct NeighborSlot;

template <>
struct NeighborSlot<Ip4> {
  using AddressParam = Ip4;  // one word: by value
  using Key = uint32_t;      // the address as the slot holds it

  std::atomic<uint32_t> ip{0};   // network order; 0 = empty
  std::atomic<uint32_t> seq{0};  // odd while set() gives the slot to another address
  std::atomic<uint64_t> mac{0};  // 0 = no MAC (forgotten)

  static Key key_of(Ip4 addr) noexcept { return addr.be; }
  static uint32_t hash(Ip4 addr) noexcept { return crc32c_u32(0x5bd1e995, addr.be); }

  // `order` is the address word's load: acquire for a worker, relaxed for
  // the control thread.  One load answers both questions: the word is the
  // address, or 0 when the slot is empty.
  SlotHolds holds(Key key, std::memory_order order) const noexcept {
    const uint32_t held = ip.load(order);
    if (held == key) return SlotHolds::kThisAddress;
    if (held == 0) return SlotHolds::kNothing;
    return SlotHolds::kAnotherAddress;
  }
  bool empty() const noexcept { return ip.load(std::memory_order_relaxed) == 0; }
  Ip4 address() const noexcept { return Ip4{ip.load(std::memory_order_relaxed)}; }

  // A first address: its MAC, then the address that marks the slot used.
  void fill(Key key, uint64_t mac_word) noexcept {
    mac.store(mac_word, std::memory_order_relaxed);
    ip.store(key, std::memory_order_release);
  }
  // Inside the takeover's seqlock: the sequence orders it.
  void write_address(Key key) noexcept { ip.store(key, std::memory_order_relaxed); }
  void copy_from(const NeighborSlot& o) noexcept {
    ip.store(o.ip.load(std::memory_order_relaxed), std::memory_order_relaxed);
    seq.store(o.seq.load(std::memory_order_relaxed), std::memory_order_relaxed);
    mac.store(o.mac.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
};
static_assert(sizeof(NeighborSlot<Ip4>) == 16);

template <>
struct NeighborSlot<Ip6> {
  using AddressParam = const Ip6&;
  using Key = std::array<uint64_t, 2>;  // Ip6::word(0), word(1)

  std::atomic<uint32_t> used{0};  // set once, after the first address
  std::atomic<uint32_t> seq{0};   // odd while set() gives the slot to another address
  std::atomic<uint64_t> ip[2]{};  // Ip6::word(0), word(1)
  std::atomic<uint64_t> mac{0};   // 0 = no MAC (forgotten)

  static Key key_of(const Ip6& addr) noexcept { return {addr.word(0), addr.word(1)}; }
  static uint32_t hash(const Ip6& addr) noexcept { return crc_ip6(addr, 0x5bd1e995); }

  // `order` is the used mark's load: acquire for a worker, relaxed for the
  // control thread.  The address words after it are relaxed: the mark
  // orders a first address, the sequence a takeover.
  SlotHolds holds(const Key& key, std::memory_order order) const noexcept {
    if (used.load(order) == 0) return SlotHolds::kNothing;
    if (ip[0].load(std::memory_order_relaxed) == key[0] && ip[1].load(std::memory_order_relaxed) == key[1]) {
      return SlotHolds::kThisAddress;
    }
    return SlotHolds::kAnotherAddress;
  }
  bool empty() const noexcept { return used.load(std::memory_order_relaxed) == 0; }
  Ip6 address() const noexcept {
    const uint64_t words[2] = {ip[0].load(std::memory_order_relaxed), ip[1].load(std::memory_order_relaxed)};
    Ip6 a;
    std::memcpy(a.bytes.data(), words, 16);
    return a;
  }

  // A first address: the address and its MAC, then the used mark.
  void fill(const Key& key, uint64_t mac_word) noexcept {
    write_address(key);
    mac.store(mac_word, std::memory_order_relaxed);
    used.store(1, std::memory_order_release);
  }
  // Inside the takeover's seqlock: the sequence orders it.
  void write_address(const Key& key) noexcept {
    ip[0].store(key[0], std::memory_order_relaxed);
    ip[1].store(key[1], std::memory_order_relaxed);
  }
  void copy_from(const NeighborSlot& o) noexcept {
    used.store(o.used.load(std::memory_order_relaxed), std::memory_order_relaxed);
    seq.store(o.seq.load(std::memory_order_relaxed), std::memory_order_relaxed);
    ip[0].store(o.ip[0].load(std::memory_order_relaxed), std::memory_order_relaxed);
    ip[1].store(o.ip[1].load(std::memory_order_relaxed), std::memory_order_relaxed);
    mac.store(o.mac.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
};
static_assert(sizeof(NeighborSlot<Ip6>) == 32);

template <typename A>
class BasicNeighborTable : public DpObject {
  using Slot = NeighborSlot<A>;
  using AddressParam = typename Slot::AddressParam;

 public:
  static constexpr uint32_t kCapacity = 4096;  // power of two
  static constexpr uint32_t kMaxProbe = 16;

  // Worker side: the MAC for `ip`, or nullopt if unresolved.
  std::optional<MacAddr> find(AddressParam ip) const noexcept {
    const uint64_t w = find_word(ip);
    if (w == 0) return std::nullopt;
    return unpack(w);
  }
  // The same, as the MAC's six bytes in the low bytes of a word (memory
  // order: copy 6 bytes from its address to write it into a header), or 0
  // if unresolved (no neighbour has the all-zero MAC).  The fast path's form.
  uint64_t find_word(AddressParam ip) const noexcept {
    const typename Slot::Key key = Slot::key_of(ip);
    uint32_t i = home(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      const Slot& s = slots_[i];
      const uint32_t seq = s.seq.load(std::memory_order_acquire);
      const SlotHolds held = s.holds(key, std::memory_order_acquire);
      if (held == SlotHolds::kThisAddress) {
        const uint64_t mac = s.mac.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        // Taken over by another address while we looked: unresolved.
        if ((seq & 1) != 0 || s.seq.load(std::memory_order_relaxed) != seq) return 0;
        return mac;
      }
      if (held == SlotHolds::kNothing) return 0;
    }
    return 0;
  }

  // Control thread only.  `ip`'s own slot if it has one, else the first
  // slot of its window that is empty or forgotten.  False when the window
  // holds neither (kMaxProbe addresses with a MAC hash there).
  bool set(AddressParam ip, const MacAddr& mac) noexcept {
    const uint64_t w = pack(mac);
    const typename Slot::Key key = Slot::key_of(ip);
    Slot* free = nullptr;
    uint32_t i = home(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      Slot& s = slots_[i];
      const SlotHolds held = s.holds(key, std::memory_order_relaxed);
      if (held == SlotHolds::kThisAddress) {
        const uint64_t old = s.mac.load(std::memory_order_relaxed);
        if (old != w) {
          s.mac.store(w, std::memory_order_relaxed);
          if (old == 0) ++size_;  // learnt again after being forgotten
          if (w == 0) --size_;
          version_.fetch_add(1, std::memory_order_release);
        }
        return true;
      }
      if (held == SlotHolds::kNothing) {  // `ip` is not further on: addresses never move
        if (free == nullptr) free = &s;
        break;
      }
      if (free == nullptr && s.mac.load(std::memory_order_relaxed) == 0) free = &s;
    }
    if (free == nullptr) return false;
    if (free->empty()) {
      free->fill(key, w);
    } else {  // a forgotten address's slot: see the header comment
      const uint32_t seq = free->seq.load(std::memory_order_relaxed);
      free->seq.store(seq + 1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);
      free->write_address(key);
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
  bool forget(AddressParam ip) noexcept {
    const typename Slot::Key key = Slot::key_of(ip);
    uint32_t i = home(ip);
    for (uint32_t n = 0; n < kMaxProbe; ++n, i = (i + 1) & (kCapacity - 1)) {
      Slot& s = slots_[i];
      const SlotHolds held = s.holds(key, std::memory_order_relaxed);
      if (held == SlotHolds::kThisAddress) {
        if (s.mac.load(std::memory_order_relaxed) == 0) return false;  // forgotten already
        s.mac.store(0, std::memory_order_relaxed);
        --size_;
        version_.fetch_add(1, std::memory_order_release);
        return true;
      }
      if (held == SlotHolds::kNothing) return false;
    }
    return false;
  }

  // Makes this table slot for slot what `other` is (control thread only, on
  // a table no worker reads: a dry run's scratch copy).
  void copy_from(const BasicNeighborTable& other) noexcept {
    for (uint32_t i = 0; i < kCapacity; ++i) slots_[i].copy_from(other.slots_[i]);
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
      const uint64_t mac = s.mac.load(std::memory_order_relaxed);
      if (!s.empty() && mac != 0) fn(s.address(), unpack(mac));
    }
  }

 private:
  static uint32_t home(AddressParam ip) noexcept { return Slot::hash(ip) & (kCapacity - 1); }
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

using NeighborTable = BasicNeighborTable<Ip4>;
using NeighborTable6 = BasicNeighborTable<Ip6>;

}  // namespace podgate::dp
