// The generator's per-lcore work: TxEngine sends a share of the flows to the
// VIPs; RxEngine polls queues, checks what arrives (Pod side and replies on
// the client side), answers ARP and NDP and, with --reply, answers for the
// Pods.
//
// Like l3fwd's loop, the engines only coordinate bursts of 32; the packet
// work is in frame.cpp.  Each engine is touched by one lcore; everything it
// needs is allocated in its constructor, so step()/poll() never allocate.
#pragma once

#include <cstdint>
#include <vector>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "dataplane/ownership.hpp"
#include "tools/trafficgen/counters.hpp"
#include "tools/trafficgen/flows.hpp"
#include "tools/trafficgen/frame.hpp"

namespace podgate::gen {

inline constexpr uint16_t kBurst = 32;

struct TxConfig {
  uint16_t port = 0;
  uint16_t queue = 0;
  rte_mempool* pool = nullptr;
  const FlowSet* flows = nullptr;
  uint32_t first_flow = 0;  // this engine sends flows first_flow + k * stride
  uint32_t stride = 1;
  uint64_t rate_pps = 0;    // this engine's share; 0: as fast as possible
  uint64_t count = 0;       // this engine's share; 0: until the deadline
  uint16_t frame_size = 128;
  rte_ether_addr src_mac{};
  rte_ether_addr dst_mac{};  // podgate's client-side port
  // --new-flows: every packet is a SYN from the next tuple of the client
  // address x port space (this engine takes tuples first_flow + k * stride).
  bool new_flows = false;
  dp::IpAddr client_first;
  uint16_t client_port_first = 1024;
  uint32_t client_ports = 1;  // ports per address
  uint64_t tuples = 1;        // addresses x ports
  // --steer-workers: send each flow on the queue of the podgate worker
  // that owns it (queue w reaches worker w), as a NIC with RSS on the
  // client's source would deliver it.  Null: everything on `queue`.
  const dp::Ownership* steer = nullptr;
};

class TxEngine {
 public:
  TxEngine(const TxConfig& cfg, Counters& counters);
  TxEngine(const TxEngine&) = delete;
  TxEngine& operator=(const TxEngine&) = delete;
  ~TxEngine();

  // Sending starts at `now`; without a count it ends at `deadline`.
  void start(uint64_t now, uint64_t deadline) noexcept;
  // Sends up to one burst that is due; false once everything is sent.
  bool step(uint64_t now) noexcept;
  // Gives back packets the port never took (after a stop request).
  void abandon() noexcept;

 private:
  // One TX queue's share of the engine's flows: sent burst by burst, the
  // queues in turn.
  struct Lane {
    uint16_t queue = 0;
    std::vector<uint32_t> flows;  // indexes among own flows (not --new-flows)
    uint32_t next = 0;            // into `flows`
    uint64_t next_tuple = 0;      // --new-flows with steering
  };

  uint16_t build_burst(uint16_t n, uint64_t now) noexcept;
  // --new-flows: the next client address x port, as an index into the
  // tuple space, for `lane`.
  uint64_t take_tuple(Lane& lane) noexcept;

  TxConfig cfg_;
  Counters& counters_;
  std::vector<Lane> lanes_;
  size_t lane_ = 0;               // the lane of the pending burst
  uint32_t own_flows_ = 0;
  uint32_t next_ = 0;             // index among own flows (--new-flows)
  std::vector<uint32_t> seq_;     // per own flow: next TCP sequence number
  std::vector<uint8_t> started_;  // per own flow: SYN sent
  rte_mbuf* pending_[kBurst] = {};
  uint16_t pending_n_ = 0;
  uint16_t pending_off_ = 0;
  uint64_t built_ = 0;
  uint64_t next_tuple_ = 0;       // --new-flows
  uint64_t start_ = 0;
  uint64_t deadline_ = 0;
  double packets_per_cycle_ = 0;
};

struct RxQueue {
  uint16_t port = 0;
  uint16_t queue = 0;
};

struct RxConfig {
  std::vector<RxQueue> queues;  // polled in turn
  uint16_t client_port = 0;
  uint16_t pod_port = 1;
  uint16_t client_tx_queue = 0;  // this engine's TX queues (ARP, replies)
  uint16_t pod_tx_queue = 0;
  rte_ether_addr client_mac{};
  rte_ether_addr pod_mac{};
  dp::IpAddr client_gw;
  FlowSet* flows = nullptr;  // pins flows to Pods
  bool reply = false;
  bool check = true;       // false (--no-check): count stamped packets only
  bool pin_flows = true;   // false (--new-flows): each packet is its own flow
};

// What an RxEngine sends back on one port, a TX burst per RX burst: the
// Pods' replies (--reply) and ARP/NDP answers, each kept with its kind so
// that a frame the port refuses is counted as what it was.
struct AnswerBurst {
  enum class Kind : uint8_t { kReply, kArp, kNdp };

  rte_mbuf* frames[kBurst] = {};
  Kind kinds[kBurst] = {};
  uint16_t n = 0;

  void add(rte_mbuf* m, Kind kind) noexcept {
    frames[n] = m;
    kinds[n++] = kind;
  }
  // Counts the burst once the port took its first `sent` frames: each
  // reply once, as sent or as refused; each refused ARP/NDP answer (its
  // *_answered count already has it) as refused.
  void count(uint16_t sent, Counters& c) const noexcept {
    for (uint16_t i = 0; i < n; ++i) {
      const bool taken = i < sent;
      switch (kinds[i]) {
        case Kind::kReply:
          ++(taken ? c.replies_sent : c.replies_tx_failed);
          break;
        case Kind::kArp:
          if (!taken) ++c.arp_tx_failed;
          break;
        case Kind::kNdp:
          if (!taken) ++c.ndp_tx_failed;
          break;
      }
    }
  }
};

class RxEngine {
 public:
  RxEngine(RxConfig cfg, Counters& counters);
  // One burst from each queue, checked and answered; the packets read.
  uint32_t poll() noexcept;

 private:
  void on_pod_packet(rte_mbuf* m, uint64_t now) noexcept;
  void on_client_packet(rte_mbuf* m, uint64_t now) noexcept;
  // Answers a request for an address we own; frees anything else.
  void on_arp(rte_mbuf* m, RxView& v, bool pod_side) noexcept;
  // Answers a neighbour solicitation for an address we own (RFC 4861
  // §7.2.4); frees anything else.
  void on_ndp(rte_mbuf* m, RxView& v, bool pod_side) noexcept;
  // The checks both sides share, for a stamped packet of a known flow.
  bool is_ours(const RxView& v) const noexcept;
  void violation(Violation kind, const RxView& v) noexcept;
  // Sends the burst, counts it, frees what the port refused.
  void flush(uint16_t port, uint16_t queue, AnswerBurst& out) noexcept;

  RxConfig cfg_;
  Counters& counters_;
  rte_mbuf* rx_[kBurst] = {};
  AnswerBurst out_pod_;
  AnswerBurst out_client_;
};

}  // namespace podgate::gen
