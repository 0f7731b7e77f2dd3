#include "tools/trafficgen/engine.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

#include <rte_cycles.h>
#include <rte_ethdev.h>

namespace podgate::gen {
namespace {

// A per-flow initial sequence number: any fixed value would do for podgate,
// a spread one makes captures easier to read.
uint32_t initial_seq(uint32_t flow) noexcept { return flow * 2654435761u; }

uint16_t payload_len(dp::Family family, dp::Proto proto, uint16_t frame_size) noexcept {
  return static_cast<uint16_t>(frame_size - l2l3_len(family) - l4_header_len(proto));
}

uint32_t owner(const dp::Ownership& o, const dp::IpAddr& ip, rte_be16_t port) noexcept {
  return ip.is_v4() ? o.owner(ip.as_v4(), port) : o.owner(ip.as_v6(), port);
}

// What a received packet should carry after one router hop.
constexpr uint8_t kHopLimitAfterPodgate = kTtl - 1;

}  // namespace

// ---------------------------------------------------------------------------
// TX
// ---------------------------------------------------------------------------

TxEngine::TxEngine(const TxConfig& cfg, Counters& counters) : cfg_(cfg), counters_(counters) {
  const uint32_t total = cfg_.flows->size();
  own_flows_ = cfg_.first_flow < total ? (total - cfg_.first_flow + cfg_.stride - 1) / cfg_.stride : 0;
  seq_.resize(own_flows_);
  started_.assign(own_flows_, 0);
  for (uint32_t k = 0; k < own_flows_; ++k) seq_[k] = initial_seq(cfg_.first_flow + k * cfg_.stride);
  next_tuple_ = cfg_.first_flow % cfg_.tuples;
  if (cfg_.steer == nullptr) {
    lanes_.push_back(Lane{cfg_.queue, {}, 0, 0});
    if (!cfg_.new_flows) {
      lanes_[0].flows.resize(own_flows_);
      for (uint32_t k = 0; k < own_flows_; ++k) lanes_[0].flows[k] = k;
    }
  } else {
    for (uint32_t w = 0; w < cfg_.steer->workers(); ++w) {
      lanes_.push_back(Lane{static_cast<uint16_t>(w), {}, 0, 0});
    }
    if (!cfg_.new_flows) {
      for (uint32_t k = 0; k < own_flows_; ++k) {
        const Flow& f = cfg_.flows->flow(cfg_.first_flow + k * cfg_.stride);
        lanes_[owner(*cfg_.steer, f.client, f.client_port)].flows.push_back(k);
      }
      std::erase_if(lanes_, [](const Lane& l) { return l.flows.empty(); });
    }
  }
  if (cfg_.rate_pps != 0) {
    packets_per_cycle_ = static_cast<double>(cfg_.rate_pps) / static_cast<double>(rte_get_tsc_hz());
  }
}

TxEngine::~TxEngine() { abandon(); }

void TxEngine::start(uint64_t now, uint64_t deadline) noexcept {
  start_ = now;
  deadline_ = deadline;
}

bool TxEngine::step(uint64_t now) noexcept {
  if (pending_n_ == 0) {
    const bool done = own_flows_ == 0 || (cfg_.count != 0 ? built_ >= cfg_.count : now >= deadline_);
    if (done) return false;
    uint64_t want = kBurst;
    if (cfg_.rate_pps != 0) {
      const auto due = static_cast<uint64_t>(static_cast<double>(now - start_) * packets_per_cycle_);
      want = due > built_ ? due - built_ : 0;
    }
    if (cfg_.count != 0) want = std::min(want, cfg_.count - built_);
    want = std::min<uint64_t>(want, kBurst);
    if (want == 0) return true;
    lane_ = lane_ + 1 < lanes_.size() ? lane_ + 1 : 0;
    pending_n_ = build_burst(static_cast<uint16_t>(want), now);
    pending_off_ = 0;
    if (pending_n_ == 0) return true;  // pool empty for now: the port still holds mbufs
  }
  const uint16_t sent = rte_eth_tx_burst(cfg_.port, lanes_[lane_].queue, pending_ + pending_off_,
                                         static_cast<uint16_t>(pending_n_ - pending_off_));
  for (uint16_t i = 0; i < sent; ++i) counters_.tx_bytes += pending_[pending_off_ + i]->pkt_len;
  counters_.tx_packets += sent;
  pending_off_ = static_cast<uint16_t>(pending_off_ + sent);
  if (pending_off_ == pending_n_) pending_n_ = pending_off_ = 0;
  return true;
}

uint64_t TxEngine::take_tuple(Lane& lane) noexcept {
  if (cfg_.steer == nullptr) {
    const uint64_t t = next_tuple_;
    next_tuple_ = (next_tuple_ + cfg_.stride) % cfg_.tuples;
    return t;
  }
  // Each lane walks the whole tuple space for the tuples its worker owns
  // (1 in N); a bounded walk, in case the space holds none of them.
  for (uint64_t tries = 0;; ++tries) {
    const uint64_t t = lane.next_tuple;
    lane.next_tuple = lane.next_tuple + 1 == cfg_.tuples ? 0 : lane.next_tuple + 1;
    const dp::IpAddr ip = nth_address(cfg_.client_first, static_cast<uint32_t>(t / cfg_.client_ports));
    const rte_be16_t port = dp::to_be16(static_cast<uint16_t>(cfg_.client_port_first + t % cfg_.client_ports));
    if (owner(*cfg_.steer, ip, port) == lane.queue || tries >= cfg_.tuples) return t;
  }
}

uint16_t TxEngine::build_burst(uint16_t n, uint64_t now) noexcept {
  if (rte_pktmbuf_alloc_bulk(cfg_.pool, pending_, n) != 0) return 0;
  const FlowSet& flows = *cfg_.flows;
  Lane& lane = lanes_[lane_];
  for (uint16_t i = 0; i < n; ++i) {
    uint32_t k;
    if (cfg_.new_flows) {
      k = next_;
      next_ = next_ + 1 == own_flows_ ? 0 : next_ + 1;
    } else {
      k = lane.flows[lane.next];
      lane.next = lane.next + 1 == lane.flows.size() ? 0 : lane.next + 1;
    }
    const uint32_t id = cfg_.first_flow + k * cfg_.stride;
    const Flow& f = flows.flow(id);
    const Service& svc = flows.services()[f.service];
    PacketSpec spec;
    spec.eth_src = cfg_.src_mac;
    spec.eth_dst = cfg_.dst_mac;
    spec.src = f.client;
    spec.dst = svc.vip;
    spec.sport = f.client_port;
    spec.dport = svc.port;
    spec.proto = svc.proto;
    spec.stamp.flow = id;
    if (cfg_.new_flows) {
      // A connection never seen before: the next client address x port.
      const uint64_t t = take_tuple(lane);
      spec.src = nth_address(cfg_.client_first, static_cast<uint32_t>(t / cfg_.client_ports));
      spec.sport = dp::to_be16(static_cast<uint16_t>(cfg_.client_port_first + t % cfg_.client_ports));
      spec.tcp_flags = RTE_TCP_SYN_FLAG;
      spec.seq = seq_[k];
      ++counters_.tx_syn;
    } else if (svc.proto == dp::Proto::kTcp) {
      // RFC 793 §3.4: a connection opens with a SYN (which takes one
      // sequence number); then the flow sends ACK+PSH data segments.
      if (started_[k] == 0) {
        started_[k] = 1;
        spec.tcp_flags = RTE_TCP_SYN_FLAG;
        spec.seq = seq_[k]++;
        ++counters_.tx_syn;
      } else {
        spec.tcp_flags = RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG;
        spec.seq = seq_[k];
        spec.ack = 1;
        seq_[k] += payload_len(svc.vip.family, svc.proto, cfg_.frame_size);
      }
    }
    // Stamped when built: the rest of a burst the port takes only partly
    // keeps its stamps when it is offered again, so latency under
    // back-pressure includes the wait here (podgate-gen(1)).  Stamping
    // again would mean updating each L4 checksum on every retry.
    spec.stamp.tsc = now;
    build_packet(pending_[i], spec, cfg_.frame_size);
  }
  built_ += n;
  return n;
}

void TxEngine::abandon() noexcept {
  if (pending_n_ > pending_off_) {
    rte_pktmbuf_free_bulk(pending_ + pending_off_, pending_n_ - pending_off_);
  }
  pending_n_ = pending_off_ = 0;
}

// ---------------------------------------------------------------------------
// RX and checks
// ---------------------------------------------------------------------------

RxEngine::RxEngine(RxConfig cfg, Counters& counters) : cfg_(std::move(cfg)), counters_(counters) {
  counters_.endpoint_packets.assign(cfg_.flows->endpoint_count(), 0);
}

uint32_t RxEngine::poll() noexcept {
  uint32_t read = 0;
  for (const RxQueue& q : cfg_.queues) {
    const uint16_t n = rte_eth_rx_burst(q.port, q.queue, rx_, kBurst);
    if (n == 0) continue;
    read += n;
    const uint64_t now = rte_rdtsc();
    for (uint16_t i = 0; i < n; ++i) {
      if (q.port == cfg_.pod_port) {
        on_pod_packet(rx_[i], now);
      } else {
        on_client_packet(rx_[i], now);
      }
    }
    flush(cfg_.pod_port, cfg_.pod_tx_queue, out_pod_);
    flush(cfg_.client_port, cfg_.client_tx_queue, out_client_);
  }
  return read;
}

void RxEngine::flush(uint16_t port, uint16_t queue, AnswerBurst& out) noexcept {
  if (out.n == 0) return;
  const uint16_t sent = rte_eth_tx_burst(port, queue, out.frames, out.n);
  out.count(sent, counters_);
  if (sent < out.n) rte_pktmbuf_free_bulk(out.frames + sent, out.n - sent);
  out.n = 0;
}

bool RxEngine::is_ours(const RxView& v) const noexcept {
  const FlowSet& flows = *cfg_.flows;
  if (!v.is_ip() || !v.stamped || v.stamp.flow >= flows.size()) return false;
  const Service& svc = flows.services()[flows.flow(v.stamp.flow).service];
  return v.proto == svc.proto && v.family() == svc.vip.family;
}

void RxEngine::on_pod_packet(rte_mbuf* m, uint64_t now) noexcept {
  RxView v = view_frame(m);
  if (v.kind == RxView::Kind::kArp) {
    on_arp(m, v, true);
    return;
  }
  if (v.kind == RxView::Kind::kNdp) {
    on_ndp(m, v, true);
    return;
  }
  FlowSet& flows = *cfg_.flows;
  if (!is_ours(v)) {
    violation(Violation::kPodUnexpected, v);
    rte_pktmbuf_free(m);
    return;
  }
  ++counters_.rx_pod_packets;
  counters_.rx_pod_bytes += m->pkt_len;
  if (now > v.stamp.tsc) counters_.one_way.record(now - v.stamp.tsc);
  if (!cfg_.check) {
    rte_pktmbuf_free(m);
    return;
  }

  const uint32_t id = v.stamp.flow;
  const Flow& f = flows.flow(id);
  bool ok = true;
  if (v.ip != nullptr && !ip_checksum_ok(v.ip)) {  // IPv6 has no header checksum
    violation(Violation::kPodBadIpChecksum, v);
    ok = false;
  }
  if (!l4_checksum_ok(v)) {
    violation(Violation::kPodBadL4Checksum, v);
    ok = false;
  }
  if (v.hop_limit() != kHopLimitAfterPodgate) {
    violation(Violation::kPodBadHopLimit, v);
    ok = false;
  }
  const uint32_t ep = flows.endpoint_of(f.service, Endpoint{v.dst(), v.dport()});
  if (ep == kNoEndpoint) {
    violation(Violation::kPodWrongEndpoint, v);
    ok = false;
  } else {
    ++counters_.endpoint_packets[ep - 1];
    if (cfg_.pin_flows && !flows.pin(id, ep)) {
      violation(Violation::kPodFlowMoved, v);
      ok = false;
    }
  }
  if (cfg_.pin_flows && (v.src() != f.client || v.sport() != f.client_port)) {
    violation(Violation::kPodWrongSource, v);
    ok = false;
  }
  // Only a packet that passed every check is answered, so that a reply's
  // own checks judge podgate's reverse NAT, not a copy of a forward error.
  if (!cfg_.reply || !ok) {
    rte_pktmbuf_free(m);
    return;
  }
  make_reply(v, cfg_.pod_mac);
  out_pod_.add(m, AnswerBurst::Kind::kReply);
}

void RxEngine::on_client_packet(rte_mbuf* m, uint64_t now) noexcept {
  RxView v = view_frame(m);
  if (v.kind == RxView::Kind::kArp) {
    on_arp(m, v, false);
    return;
  }
  if (v.kind == RxView::Kind::kNdp) {
    on_ndp(m, v, false);
    return;
  }
  const FlowSet& flows = *cfg_.flows;
  if (!cfg_.reply || !is_ours(v)) {
    violation(Violation::kClientUnexpected, v);
    rte_pktmbuf_free(m);
    return;
  }
  ++counters_.rx_replies;
  if (now > v.stamp.tsc) counters_.round_trip.record(now - v.stamp.tsc);
  const Flow& f = flows.flow(v.stamp.flow);
  const Service& svc = flows.services()[f.service];
  if (v.ip != nullptr && !ip_checksum_ok(v.ip)) violation(Violation::kReplyBadIpChecksum, v);
  if (!l4_checksum_ok(v)) violation(Violation::kReplyBadL4Checksum, v);
  if (v.hop_limit() != kHopLimitAfterPodgate) violation(Violation::kReplyBadHopLimit, v);
  if (v.src() != svc.vip || v.sport() != svc.port) violation(Violation::kReplyWrongSource, v);
  if (v.dst() != f.client || v.dport() != f.client_port) {
    violation(Violation::kReplyWrongDestination, v);
  }
  rte_pktmbuf_free(m);
}

void RxEngine::on_arp(rte_mbuf* m, RxView& v, bool pod_side) noexcept {
  const dp::IpAddr asked = dp::IpAddr::v4(dp::Ip4{v.arp->arp_data.arp_tip});
  const bool ours = pod_side ? cfg_.flows->is_endpoint_ip(asked)
                             : asked == cfg_.client_gw || cfg_.flows->is_client(asked);
  if (v.arp->arp_opcode != dp::to_be16(RTE_ARP_OP_REQUEST) || !ours) {
    ++counters_.arp_ignored;
    rte_pktmbuf_free(m);
    return;
  }
  make_arp_reply(v, pod_side ? cfg_.pod_mac : cfg_.client_mac);
  ++counters_.arp_answered;
  (pod_side ? out_pod_ : out_client_).add(m, AnswerBurst::Kind::kArp);
}

void RxEngine::on_ndp(rte_mbuf* m, RxView& v, bool pod_side) noexcept {
  const dp::IpAddr asked = dp::IpAddr::v6(v.ndp_target);
  const bool ours = pod_side ? cfg_.flows->is_endpoint_ip(asked)
                             : asked == cfg_.client_gw || cfg_.flows->is_client(asked);
  // A solicitation from the unspecified address is duplicate address
  // detection (RFC 4862 §5.4): nobody to answer but all-nodes; not ours to do.
  const bool from_unspecified = RxView::address6(v.ip6->src_addr).as_v6().is_zero();
  if (v.ndp_type != kNeighborSolicitation || !ours || from_unspecified) {
    ++counters_.ndp_ignored;
    rte_pktmbuf_free(m);
    return;
  }
  make_neighbor_advertisement(m, v, pod_side ? cfg_.pod_mac : cfg_.client_mac);
  ++counters_.ndp_answered;
  (pod_side ? out_pod_ : out_client_).add(m, AnswerBurst::Kind::kNdp);
}

void RxEngine::violation(Violation kind, const RxView& v) noexcept {
  const auto i = static_cast<size_t>(kind);
  ++counters_.violations[i];
  char* text = counters_.first_example[i].data();
  if (text[0] != '\0') return;
  // Described once per kind: snprintf into a fixed buffer, no allocation.
  const size_t size = counters_.first_example[i].size();
  if (!v.is_ip()) {
    std::snprintf(text, size, "%s frame of %u bytes",
                  v.kind == RxView::Kind::kArp   ? "ARP"
                  : v.kind == RxView::Kind::kNdp ? "NDP"
                                                 : "non-TCP/UDP",
                  v.frame_len);
    return;
  }
  // IPv6 in brackets ([fd00::1]:80), as the reports write endpoints.
  char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
  const int af = v.ip != nullptr ? AF_INET : AF_INET6;
  const dp::IpAddr s = v.src(), d = v.dst();
  inet_ntop(af, s.bytes.data(), src, sizeof src);
  inet_ntop(af, d.bytes.data(), dst, sizeof dst);
  const char* open = af == AF_INET ? "" : "[";
  const char* close = af == AF_INET ? "" : "]";
  std::snprintf(text, size, "%s %s%s%s:%u -> %s%s%s:%u ttl %u flow %u%s",
                dp::proto_name(v.proto).data(), open, src, close, dp::from_be16(v.sport()), open,
                dst, close, dp::from_be16(v.dport()), v.hop_limit(), v.stamp.flow,
                v.stamped ? "" : " (no stamp)");
}

}  // namespace podgate::gen
