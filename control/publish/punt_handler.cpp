#include "control/publish/punt_handler.hpp"

#include <cstring>

#include <rte_arp.h>
#include <rte_ethdev.h>

#include "control/log.hpp"
#include "dataplane/packet.hpp"

namespace podgate::ctl {

PuntHandler::~PuntHandler() {
  for (auto& [ip, hop] : hops_) {
    for (Waiting& w : hop.packets) rte_pktmbuf_free(w.m);
  }
  for (auto& [ip, hop] : hops6_) {
    for (Waiting& w : hop.packets) rte_pktmbuf_free(w.m);
  }
}

unsigned PuntHandler::poll(const dp::Snapshot& snap, uint64_t now_ms) {
  constexpr unsigned kBurst = 32;
  rte_mbuf* pkts[kBurst];
  unsigned n = rte_ring_sc_dequeue_burst(setup_.punt_ring, reinterpret_cast<void**>(pkts), kBurst, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    switch (dp::punt_meta(m).kind) {
      case dp::PuntKind::kArp:
        on_arp(m, snap, now_ms);
        break;
      case dp::PuntKind::kUnresolved:
        on_unresolved(m, snap, now_ms);
        break;
      case dp::PuntKind::kDns:
        if (!dns_ || !dns_(m, snap)) drop(m, dp::DropReason::kNoService);
        break;
      case dp::PuntKind::kKernel:
        if (kernel_) {
          kernel_(m, dp::PortIdx{dp::punt_meta(m).port});
        } else {
          drop(m, dp::DropReason::kNotForUs);
        }
        break;
      case dp::PuntKind::kNdp:
        on_ndp(m, snap, now_ms);
        break;
      case dp::PuntKind::kUnresolved6:
        on_unresolved6(m, snap, now_ms);
        break;
    }
  }
  return n;
}

void PuntHandler::set_static_neighbors(const std::vector<dp::Ip4>& ips) {
  std::unordered_set<uint32_t> next;
  for (dp::Ip4 ip : ips) next.insert(ip.be);
  for (uint32_t be : static_) {
    if (next.count(be) == 0 && setup_.neighbors->forget(dp::Ip4{be})) {
      log_info("neighbour " + dp::to_string(dp::Ip4{be}) +
               ": no longer static; forgotten, resolved afresh when next needed");
    }
  }
  static_ = std::move(next);
}

void PuntHandler::set_static_neighbors6(const std::vector<dp::Ip6>& ips) {
  std::set<dp::Ip6> next(ips.begin(), ips.end());
  for (const dp::Ip6& ip : static6_) {
    if (next.count(ip) == 0 && setup_.neighbors6 != nullptr && setup_.neighbors6->forget(ip)) {
      log_info("IPv6 neighbour " + dp::to_string(ip) +
               ": no longer static; forgotten, resolved afresh when next needed");
    }
  }
  static6_ = std::move(next);
}

// What a careful router learns from ARP (issue 15): a reply to a request
// of ours creates or updates an entry; a gratuitous ARP (sender = target,
// a host announcing its address, RFC 5227 §3) updates an entry that exists
// (a Pod that moved, or restarted with a new MAC) but creates none; any
// other reply is unsolicited and changes nothing, so a host on a segment
// cannot take over a Pod's address or fill the table by answering
// questions nobody asked.  Static neighbours never change.
void PuntHandler::on_arp(rte_mbuf* m, const dp::Snapshot& snap, uint64_t now_ms) {
  dp::ParsedPacket p;
  dp::DropReason why;
  if (!dp::parse_packet(rte_pktmbuf_mtod(m, uint8_t*), rte_pktmbuf_data_len(m), false, p, why) ||
      p.kind != dp::PacketKind::kArp) {
    drop(m, dp::DropReason::kBadArp);
    return;
  }
  const rte_arp_ipv4& a = p.arp->arp_data;
  dp::Ip4 sender{a.arp_sip};
  dp::Ip4 target{a.arp_tip};
  const bool gratuitous = sender == target;
  // From a host on the subnet it arrived on, to us (or announcing itself),
  // never claiming one of our own addresses.
  uint16_t rx = dp::punt_meta(m).port;
  if (!snap.arp_may_teach(rx, sender, target)) {
    drop(m, dp::DropReason::kArpNotForUs);
    return;
  }
  // The kernel twin keeps its own table, by its own rules (it takes a
  // reply to what it asked, and updates what it has).
  copy_to_kernel(m, rx);
  const auto asked = asked_.find(sender.be);
  const bool solicited = !gratuitous && asked != asked_.end() && now_ms - asked->second <= kSolicitedMs;
  const bool known = setup_.neighbors->find(sender).has_value();
  if (static_.count(sender.be) != 0 || !(solicited || (gratuitous && known))) {
    drop(m, dp::DropReason::kArpUnsolicited);
    return;
  }
  dp::MacAddr mac;
  std::memcpy(mac.bytes.data(), a.arp_sha.addr_bytes, 6);
  if (!setup_.neighbors->set(sender, mac)) {
    // The table is full where this address hashes: counted, and logged on
    // the first time and every 256th after.
    if (table_full_logged_++ % 256 == 0) {
      log_info("neighbour table: no room for " + dp::to_string(sender) + " (" +
               std::to_string(setup_.neighbors->size()) + " entries, at most " +
               std::to_string(dp::NeighborTable::kMaxProbe) + " resolved per hash bucket); " +
               std::to_string(table_full_logged_) + " time(s) so far");
    }
    drop(m, dp::DropReason::kNeighborTableFull);
    return;
  }
  if (solicited) asked_.erase(asked);
  learnt_[sender.be] = confirmed_at(sender.be, rx, now_ms);
  rte_pktmbuf_free(m);
  flush(sender, mac, snap);
}

void PuntHandler::on_unresolved(rte_mbuf* m, const dp::Snapshot& snap, uint64_t now_ms) {
  const dp::PuntMeta meta = dp::punt_meta(m);
  if (auto mac = setup_.neighbors->find(meta.next_hop)) {
    send_resolved(m, dp::PortIdx{meta.port}, *mac, snap);  // resolved meanwhile
    return;
  }
  wait_for(
      asked_, hops_, meta.next_hop.be, m, dp::PortIdx{meta.port},
      [&](uint32_t be, dp::PortIdx port) { send_arp_request(snap, dp::Ip4{be}, port, now_ms); }, now_ms);
}

PuntHandler::Learnt PuntHandler::confirmed_at(uint32_t hash, uint16_t port, uint64_t now_ms) const {
  // 0.5x..1.5x kReachableMs, fixed per address (Knuth's multiplicative hash).
  const uint64_t spread = (uint64_t{hash * 2654435761u} * kReachableMs) >> 32;
  return Learnt{now_ms + kReachableMs / 2 + spread, 0, 0, dp::PortIdx{port}};
}

namespace {

// One family's neighbour aging (PuntHandler::kReachableMs): `addr_of` is
// the address of a key of `learnt`, `table` the family's neighbour table,
// `probe(addr, port, mac)` sends a unicast probe, `forgot(addr, mac)` says
// an entry was forgotten.
template <class Learnts, class AddrOf, class Table, class IsStatic, class Probe, class Forgot>
void age_learnt(Learnts& learnt, AddrOf addr_of, Table& table, IsStatic is_static, Probe probe, Forgot forgot,
                uint64_t now_ms) {
  for (auto it = learnt.begin(); it != learnt.end();) {
    auto& l = it->second;
    const auto ip = addr_of(it->first);
    const auto mac = table.find(ip);
    if (is_static(ip) || !mac) {  // made static, or forgotten already
      it = learnt.erase(it);
      continue;
    }
    if (now_ms < l.stale_at_ms || (l.probes != 0 && now_ms - l.last_probe_ms < PuntHandler::kArpRetryMs)) {
      ++it;
      continue;
    }
    if (l.probes == PuntHandler::kMaxProbes) {
      table.forget(ip);
      forgot(ip, *mac);
      it = learnt.erase(it);
      continue;
    }
    probe(ip, l.port, *mac);
    ++l.probes;
    l.last_probe_ms = now_ms;
    ++it;
  }
}

}  // namespace

void PuntHandler::age_neighbors(const dp::Snapshot& snap, uint64_t now_ms) {
  age_learnt(
      learnt_, [](uint32_t be) { return dp::Ip4{be}; }, *setup_.neighbors,
      [this](dp::Ip4 ip) { return static_.count(ip.be) != 0; },
      [&](dp::Ip4 ip, dp::PortIdx port, const dp::MacAddr& mac) { send_arp_request(snap, ip, port, now_ms, &mac); },
      [this](dp::Ip4 ip, const dp::MacAddr& mac) {
        counters_.neighbors_forgotten.add();
        log_info("neighbour " + dp::to_string(ip) + " (" + dp::to_string(mac) + "): no answer to " +
                 std::to_string(kMaxProbes) + " ARP probes; forgotten, resolved afresh when next needed");
      },
      now_ms);
}

void PuntHandler::age_neighbors6(const dp::Snapshot& snap, uint64_t now_ms) {
  if (setup_.neighbors6 == nullptr) return;
  age_learnt(
      learnt6_, [](const dp::Ip6& ip) { return ip; }, *setup_.neighbors6,
      [this](const dp::Ip6& ip) { return static6_.count(ip) != 0; },
      [&](const dp::Ip6& ip, dp::PortIdx port, const dp::MacAddr& mac) {
        send_solicitation(snap, ip, port, now_ms, &mac);
      },
      [this](const dp::Ip6& ip, const dp::MacAddr& mac) {
        counters_.neighbors_forgotten.add();
        log_info("IPv6 neighbour " + dp::to_string(ip) + " (" + dp::to_string(mac) + "): no answer to " +
                 std::to_string(kMaxProbes) + " unicast solicitations; forgotten, resolved afresh when next needed");
      },
      now_ms);
}

// One family's packets waiting for their next hop (on_unresolved(),
// on_unresolved6()): sent once the next hop's MAC is known, dropped once
// they waited kWaitLimitMs, the request repeated every kArpRetryMs until
// then (request_due).  `find(ip)` looks the next hop up in the family's
// neighbour table, `flush(ip, mac)` sends its packets, `ask(ip, port)`
// requests its MAC.
// Answers are taken as solicited for kSolicitedMs after a request.
template <class Asked, class Hops, class AddrOf, class Find, class Flush, class Ask>
void PuntHandler::serve_waiting(Asked& asked, Hops& hops, AddrOf addr_of, Find find, Flush flush, Ask ask,
                                uint64_t now_ms) {
  for (auto it = asked.begin(); it != asked.end();) {
    it = now_ms - it->second > kSolicitedMs ? asked.erase(it) : std::next(it);
  }
  for (auto it = hops.begin(); it != hops.end();) {
    Hop& hop = it->second;
    const auto ip = addr_of(it->first);
    if (auto mac = find(ip)) {
      flush(ip, *mac);
      it = hops.erase(it);
      continue;
    }
    while (!hop.packets.empty() && now_ms - hop.packets.front().since_ms >= kWaitLimitMs) {
      drop(hop.packets.front().m, dp::DropReason::kNeighborUnresolved);
      hop.packets.pop_front();
      --waiting_count_;
    }
    if (hop.packets.empty()) {
      it = hops.erase(it);
      continue;
    }
    if (request_due(asked, it->first, now_ms)) ask(ip, hop.port);
    ++it;
  }
}

void PuntHandler::tick(const dp::Snapshot& snap, uint64_t now_ms) {
  serve_waiting(
      asked6_, hops6_, [](const dp::Ip6& ip) { return ip; },
      [this](const dp::Ip6& ip) { return setup_.neighbors6->find(ip); },
      [&](const dp::Ip6& ip, const dp::MacAddr& mac) { flush6(ip, mac, snap); },
      [&](const dp::Ip6& ip, dp::PortIdx port) { send_solicitation(snap, ip, port, now_ms); }, now_ms);
  if (now_ms - last_aging_ms_ >= 100) {
    last_aging_ms_ = now_ms;
    age_neighbors(snap, now_ms);
    age_neighbors6(snap, now_ms);
  }
  serve_waiting(
      asked_, hops_, [](uint32_t be) { return dp::Ip4{be}; },
      [this](dp::Ip4 ip) { return setup_.neighbors->find(ip); },
      [&](dp::Ip4 ip, const dp::MacAddr& mac) { flush(ip, mac, snap); },
      [&](dp::Ip4 ip, dp::PortIdx port) { send_arp_request(snap, ip, port, now_ms); }, now_ms);
}

void PuntHandler::flush(dp::Ip4 ip, const dp::MacAddr& mac, const dp::Snapshot& snap) {
  auto it = hops_.find(ip.be);
  if (it == hops_.end()) return;
  for (Waiting& w : it->second.packets) {
    send_resolved(w.m, w.port, mac, snap);
    --waiting_count_;
  }
  it->second.packets.clear();
}

void PuntHandler::send_resolved(rte_mbuf* m, dp::PortIdx port, const dp::MacAddr& mac,
                                const dp::Snapshot& snap) {
  uint16_t idx = static_cast<uint16_t>(port);
  if (idx >= snap.ports.size()) {
    drop(m, dp::DropReason::kNoRoute);
    return;
  }
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  std::memcpy(eth->dst_addr.addr_bytes, mac.bytes.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, snap.ports[idx].mac.bytes.data(), 6);
  transmit(m, port);
}

// RFC 826 request: who has `target`? tell our address on `port`.
void PuntHandler::send_arp_request(const dp::Snapshot& snap, dp::Ip4 target, dp::PortIdx port,
                                   uint64_t now_ms, const dp::MacAddr* known) {
  asked_[target.be] = now_ms;
  uint16_t idx = static_cast<uint16_t>(port);
  if (idx >= snap.ports.size()) return;
  send_arp(snap.ports[idx], port, known != nullptr ? *known : dp::MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
           target);
}

void PuntHandler::announce_addresses(const dp::Snapshot& snap) {
  for (size_t i = 0; i < snap.ports.size(); ++i) {
    const dp::PortAddress& own = snap.ports[i];
    const dp::PortIdx port{static_cast<uint16_t>(i)};
    // RFC 5227 §2.3: a request for our own address, broadcast.
    send_arp(own, port, dp::MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, own.address.addr);
    if (own.has_address6()) send_unsolicited_advertisement(own, port);
  }
}

// An ARP request for `target` from the port's address at its MAC, to
// `to_mac`.
void PuntHandler::send_arp(const dp::PortAddress& own, dp::PortIdx port, const dp::MacAddr& to_mac, dp::Ip4 target) {
  rte_mbuf* m = rte_pktmbuf_alloc(setup_.pool);
  if (m == nullptr) return;
  constexpr uint16_t kLen = sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, kLen));
  if (eth == nullptr) {
    rte_pktmbuf_free(m);
    return;
  }
  std::memcpy(eth->dst_addr.addr_bytes, to_mac.bytes.data(), 6);
  std::memcpy(eth->src_addr.addr_bytes, own.mac.bytes.data(), 6);
  eth->ether_type = dp::to_be16(RTE_ETHER_TYPE_ARP);
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  arp->arp_hardware = dp::to_be16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = dp::to_be16(RTE_ETHER_TYPE_IPV4);
  arp->arp_hlen = RTE_ETHER_ADDR_LEN;
  arp->arp_plen = 4;
  arp->arp_opcode = dp::to_be16(RTE_ARP_OP_REQUEST);
  std::memcpy(arp->arp_data.arp_sha.addr_bytes, own.mac.bytes.data(), 6);
  arp->arp_data.arp_sip = own.address.addr.be;
  std::memset(arp->arp_data.arp_tha.addr_bytes, 0, 6);
  arp->arp_data.arp_tip = target.be;
  transmit(m, port);
}

void PuntHandler::transmit(rte_mbuf* m, dp::PortIdx port) {
  uint16_t port_id = setup_.port_ids[static_cast<uint16_t>(port)];
  if (rte_eth_tx_burst(port_id, setup_.tx_queue, &m, 1) != 1) {
    drop(m, dp::DropReason::kTxFull);
    return;
  }
  counters_.tx_packets.add();
}

void PuntHandler::copy_to_kernel(const rte_mbuf* m, uint16_t port) {
  if (!kernel_ || port >= kernel_twins_.size() || kernel_twins_[port] == 0) return;
  if (rte_mbuf* copy = rte_pktmbuf_copy(m, setup_.pool, 0, UINT32_MAX)) kernel_(copy, dp::PortIdx{port});
}

void PuntHandler::drop(rte_mbuf* m, dp::DropReason why) {
  counters_.drop(why);
  rte_pktmbuf_free(m);
}

}  // namespace podgate::ctl
