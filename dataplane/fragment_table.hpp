// Virtual reassembly of IPv4 and IPv6 fragments (issues 12, 11), as VPP's shallow
// reassembly does: podgate never rebuilds a datagram, it learns the ports
// from the first fragment and gives them to the later ones, so that every
// fragment of a datagram is NATed like its first, to the same Pod, and sent
// on as it came.  The Pod's (or the client's) kernel reassembles.
//
// One table per worker and family, keyed by what identifies a datagram:
// source, destination, protocol and identification (RFC 791 §3.2); source,
// destination and the 32-bit identification in IPv6 (RFC 8200 §4.5), whose
// protocol the first fragment gives.  Bounded in
// every way, so that no fragment flood can pin memory:
//   - kSlots contexts, 4-way set-associative; a new datagram takes an
//     expired or the oldest way of its set;
//   - a context lives kLifetimeMs from its datagram's first-arriving
//     fragment (RFC 8200 §4.5, RFC 1122 §3.3.2: reassembly is bounded from
//     there; later fragments do not extend it), and, once the first
//     fragment comes, kLifetimeMs from that (for the rest to follow);
//   - fragments that come before their first fragment wait, at most
//     kHeldPerDatagram per datagram and kMaxHeld per worker, until the
//     first one comes or the context goes (then they are dropped and
//     counted, fragment_unmatched);
//   - a sweep forgets expired contexts, so that none is left to read as
//     live again when the 32-bit millisecond clock comes round (sweep()).
// Overlapping fragments are forwarded as they are: resolving overlaps is
// the reassembling host's job (and Linux drops overlapping fragments).
// Worker-private; allocated at construction, never after.
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include "dataplane/dp_memory.hpp"
#include "dataplane/net.hpp"

namespace podgate::dp {

struct FragmentKey {
  uint32_t src = 0;  // network order
  uint32_t dst = 0;
  uint16_t id = 0;   // network order
  uint8_t proto = 0;
  uint8_t pad = 0;
  friend bool operator==(const FragmentKey&, const FragmentKey&) = default;

  uint32_t hash() const noexcept {
    uint32_t h = crc32c_u32(0x9e3779b9, src);
    h = crc32c_u32(h, dst);
    return crc32c_u32(h, uint32_t{id} << 8 | proto);
  }
};

struct FragmentKey6 {
  Ip6 src;
  Ip6 dst;
  uint32_t id = 0;  // network order
  friend bool operator==(const FragmentKey6&, const FragmentKey6&) = default;

  uint32_t hash() const noexcept { return crc32c_u32(crc_ip6(dst, crc_ip6(src, 0x9e3779b9)), id); }
};

// The worker whose fragment table a datagram's fragments meet in, of
// `workers`, from its key's hash: by the hash's high bits (a multiply and
// a shift, Lemire's range reduction), as its set in that table is chosen
// by the low ones.  Taken modulo the worker count, a power of two of
// workers would each have used 1/workers of their sets.
inline uint32_t fragment_owner(uint32_t key_hash, uint32_t workers) noexcept {
  return static_cast<uint32_t>((uint64_t{key_hash} * workers) >> 32);
}

// A fragment handed to the worker that owns its connection carries the
// ports (and protocol) its first fragment gave.  Set before each hand-off
// of a fragment and read only by its receiver (Worker::Arrival::kHandoff),
// so stale bytes never count: PMDs do not clear dynamic fields.
struct FragmentMeta {
  rte_be16_t sport;
  rte_be16_t dport;
  uint8_t annotated;  // 1: ports valid, the receiver owns the connection
  Proto proto;
};
extern int g_fragment_field_offset;  // punt.cpp: register_mbuf_fields()
inline FragmentMeta& fragment_meta(rte_mbuf* m) noexcept {
  return *RTE_MBUF_DYNFIELD(m, g_fragment_field_offset, FragmentMeta*);
}

template <class Key>
class BasicFragmentTable {
 public:
  static constexpr uint32_t kSlots = 1024;
  static constexpr uint32_t kWays = 4;
  static constexpr uint32_t kLifetimeMs = 2000;
  static constexpr uint32_t kHeldPerDatagram = 4;
  static constexpr uint32_t kMaxHeld = 64;

  struct Context {
    Key key;
    uint32_t expires = 0;  // 0: free
    bool ports_known = false;
    Proto proto = Proto::kTcp;  // with the ports
    rte_be16_t sport = 0;
    rte_be16_t dport = 0;
    uint8_t held = 0;
    rte_mbuf* waiting[kHeldPerDatagram];
  };

  BasicFragmentTable() : slots_(kSlots) {}
  ~BasicFragmentTable() {
    for (Context& c : slots_) free_held(c);
  }
  BasicFragmentTable(const BasicFragmentTable&) = delete;
  BasicFragmentTable& operator=(const BasicFragmentTable&) = delete;

  // The datagram's context, made if new (a stale one in its place is let go
  // of: its waiting fragments are freed and counted in `dropped`).  Finding
  // it does not extend its life: a trickle of fragments whose first never
  // comes would otherwise keep theirs waiting, and the held slots full,
  // for ever.
  Context& find_or_make(const Key& key, uint32_t now, uint32_t& dropped) noexcept {
    Context* set = &slots_[(key.hash() % (kSlots / kWays)) * kWays];
    Context* victim = set;
    for (uint32_t w = 0; w < kWays; ++w) {
      Context& c = set[w];
      const bool live = is_live(c, now);
      if (live && c.key == key) return c;
      if (!live) {
        victim = &c;
      } else if (victim->expires != 0 && static_cast<int32_t>(c.expires - victim->expires) < 0 &&
                 static_cast<int32_t>(victim->expires - now) > 0) {
        victim = &c;  // the oldest live one, unless a free way was found
      }
    }
    dropped += free_held(*victim);
    *victim = Context{};
    victim->key = key;
    victim->expires = expiry(now);
    return *victim;
  }

  // The first fragment came: its ports, for the later fragments, which have
  // kLifetimeMs from now to follow, whenever the context was made.  The
  // caller then takes what waited (take_held()): a context whose ports are
  // known holds nothing, so renewing it keeps no fragment waiting longer.
  void learn_ports(Context& c, Proto proto, rte_be16_t sport, rte_be16_t dport, uint32_t now) noexcept {
    c.ports_known = true;
    c.proto = proto;
    c.sport = sport;
    c.dport = dport;
    c.expires = expiry(now);
  }

  // Keeps `m` until the first fragment; false when there is no room.
  bool hold(Context& c, rte_mbuf* m) noexcept {
    if (c.held == kHeldPerDatagram || held_total_ == kMaxHeld) return false;
    c.waiting[c.held++] = m;
    ++held_total_;
    return true;
  }

  // The fragments `c` held, handed to the caller (who forwards them).
  uint8_t take_held(Context& c, rte_mbuf** out) noexcept {
    const uint8_t n = c.held;
    std::memcpy(out, c.waiting, n * sizeof(rte_mbuf*));
    held_total_ -= n;
    c.held = 0;
    return n;
  }

  uint32_t held() const noexcept { return held_total_; }

  // Lets go of the expired contexts among the next `budget` (freed, with
  // what they held); returns the fragments dropped.  The clock is 32-bit
  // milliseconds compared by serial arithmetic: a context left 2^31 ms
  // (24.8 days) would read as live again, and give an old datagram's ports
  // to a new one with the same identity.  So the worker sweeps a few each
  // millisecond, and every context is visited long before then.
  uint32_t sweep(uint32_t now, uint32_t budget) noexcept {
    uint32_t dropped = 0;
    for (uint32_t n = 0; n < budget; ++n) {
      Context& c = slots_[cursor_];
      cursor_ = (cursor_ + 1) % kSlots;
      if (c.expires != 0 && !is_live(c, now)) {
        dropped += free_held(c);
        c.expires = 0;
      }
    }
    return dropped;
  }

 private:
  static bool is_live(const Context& c, uint32_t now) noexcept {
    return c.expires != 0 && static_cast<int32_t>(c.expires - now) > 0;
  }
  // 0 marks a free context: a lifetime that would end at 0 ends 1 ms later.
  static uint32_t expiry(uint32_t now) noexcept {
    const uint32_t at = now + kLifetimeMs;
    return at != 0 ? at : 1;
  }

  uint32_t free_held(Context& c) noexcept {
    const uint32_t n = c.held;
    for (uint32_t i = 0; i < n; ++i) rte_pktmbuf_free(c.waiting[i]);
    held_total_ -= n;
    c.held = 0;
    return n;
  }

  DpVector<Context> slots_;
  uint32_t held_total_ = 0;
  uint32_t cursor_ = 0;
};

using FragmentTable = BasicFragmentTable<FragmentKey>;
using FragmentTable6 = BasicFragmentTable<FragmentKey6>;

}  // namespace podgate::dp
