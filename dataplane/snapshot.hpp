// The Snapshot: everything a worker reads to forward packets, immutable once
// published (architecture decision 1).  The dataplane owns this format; the
// control thread builds it (control/publish/snapshot_builder) and publishes its
// pointer through each worker's SPSC ring, and frees it through RCU (QSBR).
//
// Per-service data is shared between consecutive snapshots when a service did
// not change, so an endpoint change rebuilds one Maglev table, not all of them.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>


#include "dataplane/dp_memory.hpp"
#include "dataplane/net.hpp"

namespace podgate::dp {

// Index of a configured DPDK port (0..N-1 in config order).
enum class PortIdx : uint16_t {};

// One Pod address a service port forwards to; A is the family's address
// (Ip4, or Ip6 since issue 11: a family's VIP forwards to its own family).
template <class A>
struct BasicBackend {
  A ip;
  rte_be16_t port = 0;  // the target port, network order
  uint16_t pad = 0;
  friend bool operator==(const BasicBackend&, const BasicBackend&) = default;
  friend bool operator<(const BasicBackend& a, const BasicBackend& b) noexcept {
    return a.ip != b.ip ? a.ip < b.ip : a.port < b.port;
  }
};
using Backend = BasicBackend<Ip4>;
using Backend6 = BasicBackend<Ip6>;

inline constexpr uint16_t kNoBackend = 0xffff;

// What a VIP:port/protocol forwards to.  Built by the control thread, read
// by workers, shared between snapshots while unchanged.
template <class A>
struct BasicServiceData : DpObject {
  using Backend = BasicBackend<A>;
  A vip;
  rte_be16_t port = 0;           // the service port, network order
  Proto proto = Proto::kTcp;
  bool client_ip_affinity = false;  // Maglev on the client address only
  uint32_t service_id = 0;       // stable id of the service (kept while it exists)
  DpVector<uint16_t> maglev;     // Maglev lookup table: slot -> ready[i]
  DpVector<Backend> ready;       // endpoints that take new flows
  DpVector<Backend> alive;       // ready + draining, sorted: flows may stay
  DpVector<uint16_t> ready_slots;  // stats slot of ready[i] (TrafficCounters)
  DpVector<uint16_t> alive_slots;  // stats slot of alive[i]
  std::vector<uint32_t> weights; // control thread only: Maglev weight of ready[i]

  // Whether an existing flow to `b` may continue (endpoint still present).
  bool keeps(const Backend& b) const noexcept {
    return std::binary_search(alive.begin(), alive.end(), b);
  }
  // The stats slot of an alive endpoint (replies without a flow entry).
  uint16_t slot_of(const Backend& b) const noexcept {
    auto it = std::lower_bound(alive.begin(), alive.end(), b);
    if (it == alive.end() || !(*it == b)) return 0;
    const size_t i = static_cast<size_t>(it - alive.begin());
    return i < alive_slots.size() ? alive_slots[i] : uint16_t{0};
  }
};
using ServiceData = BasicServiceData<Ip4>;
using ServiceData6 = BasicServiceData<Ip6>;

template <class A>
struct BasicServiceKey {
  A vip;
  rte_be16_t port = 0;
  Proto proto = Proto::kTcp;
  uint8_t pad = 0;
  friend bool operator==(const BasicServiceKey&, const BasicServiceKey&) = default;
};
using ServiceKey = BasicServiceKey<Ip4>;
using ServiceKey6 = BasicServiceKey<Ip6>;
static_assert(sizeof(ServiceKey) == 8);
static_assert(sizeof(ServiceKey6) == 20);

// ServiceKey -> ServiceData (of one family), open addressing, read-only
// once built.
template <class A>
class BasicServiceMap {
 public:
  using ServiceKey = BasicServiceKey<A>;
  using ServiceData = BasicServiceData<A>;
  using Item = std::pair<ServiceKey, const ServiceData*>;
  // A slot's size, for the memory plan: the key and a pointer, aligned.
  static constexpr size_t kSlotBytes = (sizeof(ServiceKey) + sizeof(void*) + 7) / 8 * 8;

  BasicServiceMap() = default;
  explicit BasicServiceMap(const std::vector<Item>& items) {
    static_assert(kSlotBytes == sizeof(Slot));
    rehash(items.size());
    for (const auto& [key, service] : items) place(key, service);
  }

  // Control thread only, on a map no worker reads yet (a copy of the
  // previous snapshot's, for an incremental build): sets or removes one key.
  // The table stays at most half full, so probe chains stay short.
  void assign(const ServiceKey& key, const ServiceData* service) {
    if (Slot* s = slot_of(key)) {
      s->service = service;
      return;
    }
    if ((size_ + 1) * 2 > slots_.size()) grow();
    place(key, service);
  }
  void erase(const ServiceKey& key) noexcept {
    Slot* s = slot_of(key);
    if (s == nullptr) return;
    // Backward-shift deletion (linear probing): move later entries of the
    // chain into the hole unless their home lies cyclically in (hole, j].
    uint32_t i = static_cast<uint32_t>(s - slots_.data());
    for (uint32_t j = (i + 1) & mask_; slots_[j].service != nullptr; j = (j + 1) & mask_) {
      const uint32_t home = hash(slots_[j].key) & mask_;
      const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i] = Slot{};
    --size_;
  }
  size_t size() const noexcept { return size_; }

  const ServiceData* find(const ServiceKey& key) const noexcept {
    if (slots_.empty()) return nullptr;
    const auto& want = comparable(key);
    for (uint32_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.service == nullptr) return nullptr;
      if (comparable(slot.key) == want) return slot.service;
    }
  }

 private:
  struct Slot {
    ServiceKey key{};
    const ServiceData* service = nullptr;
  };
  void rehash(size_t items) {
    size_t cap = 8;
    while (cap < items * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = static_cast<uint32_t>(cap - 1);
    size_ = 0;
  }
  void place(const ServiceKey& key, const ServiceData* service) {
    uint32_t i = hash(key) & mask_;
    while (slots_[i].service != nullptr) i = (i + 1) & mask_;
    slots_[i] = Slot{key, service};
    ++size_;
  }
  void grow() {
    DpVector<Slot> old = std::move(slots_);
    rehash(old.size());  // twice the slots: rehash() sizes for 2x its argument
    for (const Slot& s : old) {
      if (s.service != nullptr) place(s.key, s.service);
    }
  }
  Slot* slot_of(const ServiceKey& key) noexcept {
    if (slots_.empty()) return nullptr;
    for (uint32_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.service == nullptr) return nullptr;
      if (slot.key == key) return &slot;
    }
  }
  // Through memcpy, never a cast (a uint64_t pointer into the key would
  // let strict aliasing order the loads before the stores of a key just
  // built).
  static uint32_t hash(const ServiceKey& key) noexcept {
    constexpr uint32_t kSeed = 0x9e3779b9;
    if constexpr (sizeof key == 8) {
      return crc32c_u64(kSeed, comparable(key));
    } else {
      uint64_t words[(sizeof key + 7) / 8] = {};
      std::memcpy(words, &key, sizeof key);
      uint32_t h = kSeed;
      for (uint64_t w : words) h = crc32c_u64(h, w);
      return h;
    }
  }
  // What find() compares, and an IPv4 key's hash() reads: an IPv4 key
  // as one word, made from its fields (g++ 12 spends twenty instructions
  // of masks on a key built in a register and copied, where this takes
  // six; a key in memory is one load); an IPv6 key as itself.
  static decltype(auto) comparable(const ServiceKey& key) noexcept {
    if constexpr (sizeof key == 8) {
      return uint64_t{key.vip.be} | uint64_t{key.port} << 32 | uint64_t{static_cast<uint8_t>(key.proto)} << 48 |
             uint64_t{key.pad} << 56;
    } else {
      return (key);  // a reference: no copy
    }
  }
  DpVector<Slot> slots_;
  uint32_t mask_ = 0;
  size_t size_ = 0;
};
using ServiceMap = BasicServiceMap<Ip4>;
using ServiceMap6 = BasicServiceMap<Ip6>;

struct PortAddress {
  Prefix4 address;  // own address + connected subnet
  MacAddr mac;
  Prefix6 address6;  // its IPv6 address and on-link prefix; "::": none
  bool has_address6() const noexcept { return !address6.addr.is_zero(); }
};

struct Route {
  Prefix4 prefix;
  Ip4 via;            // zero: connected, the destination itself is next hop
  PortIdx port{};
  // The prefix as network-order words, so a lookup is one AND and one
  // compare per route, with no byte swaps: (dst & mask) == network.
  rte_be32_t mask = 0;
  rte_be32_t network = 0;

  static Route make(Prefix4 prefix, Ip4 via, PortIdx port) noexcept {
    const rte_be32_t mask = Ip4::from_host(prefix.mask_host()).be;
    return Route{prefix, via, port, mask, prefix.addr.be & mask};
  }
  friend bool operator==(const Route&, const Route&) = default;
};

// The route beyond a router that each /16 of the IPv4 space takes as a
// whole.  Replies go to clients, and a gateway's clients are many and
// almost all beyond a router: a reply finds its router's adjacency from
// its client's /16 with one load (Worker::forward_to_client()), with no
// state per client and no route scan.  A /16 that a connected route
// covers, that nothing routes, or that a route longer than /16 splits
// holds 0: there, Snapshot::route() tells.  64 KiB, made with the routes
// and shared by the snapshots that have the same ones.
struct RoutedBy16 : DpObject {
  static constexpr size_t kMaxRoutes = 255;  // an entry is a route's index + 1
  std::array<uint8_t, size_t{1} << 16> route_plus_one{};

  // `routes`: a snapshot's, longest prefix first.
  static std::shared_ptr<const RoutedBy16> make(const DpVector<Route>& routes) {
    std::shared_ptr<RoutedBy16> t(new RoutedBy16);
    // Shortest prefix first, so that a longer one overwrites the /16s it
    // covers; among equal lengths, route()'s first is written last.
    for (size_t i = routes.size(); i-- > 0;) {
      const Route& r = routes[i];
      if (r.prefix.length > 16) continue;
      const uint8_t entry = r.via.is_zero() || i >= kMaxRoutes ? 0 : static_cast<uint8_t>(i + 1);
      std::fill_n(t->route_plus_one.begin() + (r.prefix.network().host() >> 16),
                  size_t{1} << (16 - r.prefix.length), entry);
    }
    for (const Route& r : routes) {
      if (r.prefix.length > 16) t->route_plus_one[r.prefix.network().host() >> 16] = 0;
    }
    return t;
  }
};

// An IPv6 route (issue 11).  Few, scanned longest prefix first.
struct Route6 {
  Prefix6 prefix;
  Ip6 via;  // "::": connected
  PortIdx port{};
  // The prefix as two masked words in memory order, so that a lookup is
  // two ANDs and two compares: (dst & mask) == network.
  uint64_t mask[2] = {};
  uint64_t network[2] = {};

  static Route6 make(const Prefix6& prefix, const Ip6& via, PortIdx port) noexcept {
    Route6 r{prefix, via, port};
    Ip6 m;
    for (int i = 0; i < 16; ++i) m.bytes[i] = prefix.mask_byte(i);
    for (int i = 0; i < 2; ++i) {
      r.mask[i] = m.word(i);
      r.network[i] = prefix.addr.word(i) & r.mask[i];
    }
    return r;
  }
  bool contains(const Ip6& dst) const noexcept {
    return ((dst.word(0) & mask[0]) ^ network[0]) == 0 && ((dst.word(1) & mask[1]) ^ network[1]) == 0;
  }
  friend bool operator==(const Route6&, const Route6&) = default;
};

// RoutedBy16 for IPv6.  One byte of /16 does not do there: an operator's
// own /48s and /64s split the /16 most of its clients are in (2001::/16).
// So a trie: a first level of 16 bits (65,536 entries, 128 KiB), then
// 256-entry nodes, a byte of the address a level.  An entry is a route's
// index + 1, where everything below it takes that route beyond a router;
// 0, where it takes a connected route or none (there, the destination
// cache and Snapshot::route() tell); or a child node.  A client is found
// in one load where no route longer than /16 shares its first 16 bits,
// and a level more for each further byte it shares with the operator's
// own prefixes (two for the bench's clients; a first level of 8 bits,
// three loads, was slower than the destination cache it replaces,
// docs/benchmarks.md).  512 bytes a node, a few nodes a route; made with
// the routes and shared by the snapshots that have the same ones.
struct RoutedTrie6 : DpObject {
  static constexpr size_t kMaxRoutes = 255;      // an entry is a route's index + 1 ...
  static constexpr uint16_t kChild = 0x8000;     // ... or this and a child node's number
  static constexpr size_t kMaxNodes = 4096;      // 2 MiB in all; a trie larger: route() alone
  DpVector<uint16_t> entries;                    // node n's 256 at n * 256; nodes 0-255 the first level

  // The route index + 1 (see above), or 0, for `dst`, in the trie whose
  // entries are `at` (a worker keeps the pointer: one load less a packet).
  static uint32_t find(const uint16_t* at, const Ip6& dst) noexcept {
    uint32_t e = at[dst.bytes[0] * 256u + dst.bytes[1]];
    for (int i = 2; (e & kChild) != 0 && i < 16; ++i) e = at[(e & ~uint32_t{kChild}) * 256 + dst.bytes[i]];
    return e;
  }
  uint32_t find(const Ip6& dst) const noexcept { return find(entries.data(), dst); }

  // `routes`: a snapshot's.  Null when the trie would outgrow kMaxNodes.
  // The first level is 16 bits: nodes 0-255, node b0's entry b1.
  static std::shared_ptr<const RoutedTrie6> make(const DpVector<Route6>& routes) {
    std::shared_ptr<RoutedTrie6> t(new RoutedTrie6);
    t->entries.assign(65536, 0);
    std::vector<size_t> order(routes.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = order.size() - 1 - i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return routes[a].prefix.length < routes[b].prefix.length; });
    for (const size_t i : order) {
      const Route6& r = routes[i];
      const uint16_t value = r.via.is_zero() || i >= kMaxRoutes ? 0 : static_cast<uint16_t>(i + 1);
      const Ip6 net = r.prefix.network();
      const int length = r.prefix.length;
      if (length <= 16) {
        std::fill_n(t->entries.begin() + (net.bytes[0] * 256 + net.bytes[1]), size_t{1} << (16 - length), value);
        continue;
      }
      const int last = (length - 1) / 8;
      size_t node = net.bytes[0];
      for (int level = 1; level < last; ++level) {
        uint16_t& e = t->entries[node * 256 + net.bytes[level]];
        if ((e & kChild) == 0) {
          const size_t child = t->entries.size() / 256;
          if (child >= kMaxNodes) return nullptr;
          const uint16_t below = e;
          t->entries.resize(t->entries.size() + 256, below);
          t->entries[node * 256 + net.bytes[level]] = static_cast<uint16_t>(kChild | child);
        }
        node = t->entries[node * 256 + net.bytes[level]] & ~uint32_t{kChild};
      }
      const int bits = length - 8 * last;
      const size_t first = node * 256 + net.bytes[last];
      std::fill_n(t->entries.begin() + static_cast<std::ptrdiff_t>(first), size_t{1} << (8 - bits), value);
    }
    return t;
  }
};

struct Snapshot : DpObject {
  uint64_t generation = 0;
  ServiceMap services;          // VIP:port/proto -> service
  // Pod ip:target_port/proto -> the one service port it backs (omitted when
  // it backs several): reverse NAT for replies whose flow entry is missing
  // (flow table full), so a full table degrades to stateless, not to drops.
  ServiceMap backends;
  DpVector<Ip4> vips;          // sorted; answered for ARP and ICMP echo
  DpVector<PortAddress> ports;  // indexed by PortIdx
  DpVector<Route> routes;       // longest prefix first; connected ones included
  std::shared_ptr<const RoutedBy16> routed_by_16;  // of `routes`; null (made without it): route() alone
  Ip4 dns_vip;                  // zero: no DNS service VIP on the dataplane
  uint32_t dns_rate_limit = 0;  // queries/s per client address to dns_vip; 0: none
  // IPv6 (issue 11): the same, for the services' IPv6 cluster IPs.
  ServiceMap6 services6;
  ServiceMap6 backends6;
  DpVector<Ip6> vips6;           // sorted; answered for NDP and ICMPv6 echo
  DpVector<Route6> routes6;      // longest prefix first; connected ones included
  std::shared_ptr<const RoutedTrie6> routed_trie6;  // of `routes6`; null: route() alone

  // The addresses the appliance is itself (the VIPs of both families,
  // dns_vip, the ports' own addresses) as a bitmap filter: a clear bit says
  // an address is none of them, so a new flow's source check (issue 15)
  // looks no further for almost every client, however many VIPs there are.
  // Made by index_own_addresses() once the rest is built, 16 bits an
  // address; empty (a snapshot made without it): every address is looked up.
  DpVector<uint64_t> own_filter;
  uint32_t own_filter_shift = 32;

  // Control thread only: keeps shared per-service data alive.
  std::vector<std::shared_ptr<const ServiceData>> owned_services;
  std::vector<std::shared_ptr<const ServiceData6>> owned_services6;
  // Control thread only: the builder's record of which service built what
  // (control/publish/snapshot_index.hpp), so the next snapshot can be built
  // from this one by changing only what changed.  Opaque here.
  std::shared_ptr<const void> builder_state;

  const ServiceData* find_service(Ip4 vip, rte_be16_t port, Proto proto) const noexcept {
    return services.find(ServiceKey{vip, port, proto, 0});
  }
  const ServiceData* find_backend(Ip4 ip, rte_be16_t port, Proto proto) const noexcept {
    return backends.find(ServiceKey{ip, port, proto, 0});
  }
  bool is_vip(Ip4 ip) const noexcept {
    return std::binary_search(vips.begin(), vips.end(), ip);
  }
  // False only when `ip` is none of the appliance's own IPv4 addresses
  // (own_filter); true: is_vip(), dns_vip and own_address() tell.
  bool may_be_own(Ip4 ip) const noexcept { return own_filter.empty() || own_bit_set(own_bit(ip)); }
  void index_own_addresses() {
    const size_t addresses = vips.size() + vips6.size() + 2 * ports.size() + 1;
    uint32_t log2_bits = 9;
    while ((size_t{1} << log2_bits) < 16 * addresses) ++log2_bits;
    own_filter.assign((size_t{1} << log2_bits) / 64, 0);
    own_filter_shift = 32 - log2_bits;
    auto add = [this](uint32_t bit) { own_filter[bit >> 6] |= uint64_t{1} << (bit & 63); };
    for (const Ip4 vip : vips) add(own_bit(vip));
    add(own_bit(dns_vip));
    for (const Ip6& vip : vips6) add(own_bit(vip));
    for (const PortAddress& p : ports) {
      add(own_bit(p.address.addr));
      if (p.has_address6()) add(own_bit(p.address6.addr));
    }
  }
  // The port whose own address is `ip`, if any.
  const PortAddress* own_address(Ip4 ip) const noexcept {
    for (const PortAddress& p : ports) {
      if (p.address.addr == ip) return &p;
    }
    return nullptr;
  }
  // Whether ARP from `sender` about `target`, arriving on port `rx`, may
  // teach podgate a neighbour (issue 15): from a host on the port's subnet,
  // to the port's address (or announcing itself: sender = target), never
  // claiming an address of podgate's own.  Workers ask before punting it,
  // the control thread again before learning.
  bool arp_may_teach(uint16_t rx, Ip4 sender, Ip4 target) const noexcept {
    if (rx >= ports.size() || !ports[rx].address.contains(sender)) return false;
    if (sender != target && ports[rx].address.addr != target) return false;
    return own_address(sender) == nullptr && !is_vip(sender) && sender != dns_vip;
  }
  // The index + 1 in `routes` of the route beyond a router that all of
  // dst's /16 takes (RoutedBy16); 0: route() tells.
  uint32_t routed_route_plus_one(Ip4 dst) const noexcept {
    const RoutedBy16* t = routed_by_16.get();
    return t == nullptr ? 0 : t->route_plus_one[dst.host() >> 16];
  }
  // Longest-prefix match; nullptr when nothing routes there.
  const Route* route(Ip4 dst) const noexcept {
    for (const Route& r : routes) {
      if ((dst.be & r.mask) == r.network) return &r;
    }
    return nullptr;
  }

  const ServiceData6* find_service(const Ip6& vip, rte_be16_t port, Proto proto) const noexcept {
    return services6.find(ServiceKey6{vip, port, proto, 0});
  }
  const ServiceData6* find_backend(const Ip6& ip, rte_be16_t port, Proto proto) const noexcept {
    return backends6.find(ServiceKey6{ip, port, proto, 0});
  }
  bool is_vip(const Ip6& ip) const noexcept { return std::binary_search(vips6.begin(), vips6.end(), ip); }
  bool may_be_own(const Ip6& ip) const noexcept { return own_filter.empty() || own_bit_set(own_bit(ip)); }
  const PortAddress* own_address(const Ip6& ip) const noexcept {
    for (const PortAddress& p : ports) {
      if (p.has_address6() && p.address6.addr == ip) return &p;
    }
    return nullptr;
  }
  // As arp_may_teach() for a Neighbor Advertisement about `target`.
  bool nd_may_teach(uint16_t rx, const Ip6& target) const noexcept {
    return rx < ports.size() && ports[rx].has_address6() && ports[rx].address6.contains(target) &&
           own_address(target) == nullptr && !is_vip(target);
  }
  // As routed_route_plus_one(), for IPv6 (RoutedTrie6).
  uint32_t routed_route_plus_one(const Ip6& dst) const noexcept {
    const RoutedTrie6* t = routed_trie6.get();
    return t == nullptr ? 0 : t->find(dst);
  }
  const Route6* route(const Ip6& dst) const noexcept {
    for (const Route6& r : routes6) {
      if (r.contains(dst)) return &r;
    }
    return nullptr;
  }

 private:
  // Multiplicative hashing (Knuth): the top bits of the product.
  uint32_t own_bit(Ip4 ip) const noexcept { return (ip.be * 0x9e37'79b1u) >> own_filter_shift; }
  uint32_t own_bit(const Ip6& ip) const noexcept {
    const uint64_t h = (ip.word(0) ^ ip.word(1)) * 0x9e37'79b9'7f4a'7c15u;
    return static_cast<uint32_t>(h >> 32) >> own_filter_shift;
  }
  bool own_bit_set(uint32_t bit) const noexcept { return ((own_filter[bit >> 6] >> (bit & 63)) & 1) != 0; }
};

}  // namespace podgate::dp
