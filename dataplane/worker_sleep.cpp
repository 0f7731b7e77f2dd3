// The idle worker's sleep with `[dataplane] rx_interrupts`, as l3fwd-power
// sleeps: once it has been idle for 10 ms (kIdleBeforeSleepMs,
// Worker::run()) the worker enables its RX queues' interrupts, arms its
// doorbell, looks once more at every input, and sleeps in this thread's
// epoll until
// - a port's RX interrupt (net_tap's queue descriptor is readable while
//   packets wait; a PCI NIC's interrupt is enabled for the sleep only),
// - its doorbell: another worker handed it packets (flush_handoffs()), or
//   the control thread sent it a snapshot, asked it for a flow listing, or
//   asked it to stop (Appliance),
// - or kIdleWaitMs, for the expiry sweep and the counters' gauges.
// Woken by a queue or the doorbell, it polls again as after any packet,
// for 10 ms (Worker::run()) before it sleeps again.
//
// While it sleeps it is offline in QSBR, so that the control thread frees
// old snapshots without waiting for it; back online it adopts the newest
// before it reads one (poll_once()).
#include <sys/epoll.h>

#include "dataplane/worker.hpp"

namespace podgate::dp {

namespace {

constexpr int kIdleWaitMs = 10;
// Flow records examined for expiry after a sleep that nothing cut short:
// a 1M-flow table is swept in about 10 s of idleness (at the busy loop's
// 16 a poll it would take 10 minutes of 10 ms sleeps).
constexpr uint32_t kIdleExpiryFlows = 1024;

}  // namespace

// This thread's epoll instance (DPDK's, per thread) watches every RX queue
// the worker polls and its doorbell.  Undone on failure.
//
// A queue's RX interrupt comes through DPDK (edge-triggered), but for
// net_tap's a level-triggered watch of its descriptor (RxQueue::level_fd):
// net_tap reads its descriptor only after its SIGIO handler has run in
// some thread of the process, which may be after the descriptor woke this
// one.  The 10 ms of polling after a wake-up cover that; should the
// signal take longer still, an edge would have been spent and the packet
// would wait for the next timeout, while a level wakes the worker again.
bool Worker::watch_wake_sources() noexcept {
  level_events_.assign(setup_.rx_queues.size(), rte_epoll_event{});
  auto watch = [&](size_t i, uint64_t op) {
    const RxQueue& q = setup_.rx_queues[i];
    if (q.level_fd < 0) {
      return rte_eth_dev_rx_intr_ctl_q(q.port_id, q.queue, RTE_EPOLL_PER_THREAD, static_cast<int>(op),
                                       nullptr) == 0;
    }
    rte_epoll_event& ev = level_events_[i];
    ev.epdata.event = EPOLLIN;
    return rte_epoll_ctl(RTE_EPOLL_PER_THREAD, op == RTE_INTR_EVENT_ADD ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
                         q.level_fd, &ev) == 0;
  };
  size_t added = 0;
  while (added < setup_.rx_queues.size() && watch(added, RTE_INTR_EVENT_ADD)) ++added;
  wake_event_ = rte_epoll_event{};
  wake_event_.epdata.event = EPOLLIN;
  wake_event_.epdata.data = &wake_event_;
  if (added == setup_.rx_queues.size() &&
      rte_epoll_ctl(RTE_EPOLL_PER_THREAD, EPOLL_CTL_ADD, wake()->fd(), &wake_event_) == 0) {
    return true;
  }
  for (size_t i = 0; i < added; ++i) watch(i, RTE_INTR_EVENT_DEL);
  return false;
}

// The lcore's thread outlives the worker (a later appliance in the same
// process launches its workers on it): its epoll must forget these.
void Worker::unwatch_wake_sources() noexcept {
  for (size_t i = 0; i < setup_.rx_queues.size(); ++i) {
    const RxQueue& q = setup_.rx_queues[i];
    if (q.level_fd < 0) {
      rte_eth_dev_rx_intr_ctl_q(q.port_id, q.queue, RTE_EPOLL_PER_THREAD, RTE_INTR_EVENT_DEL, nullptr);
    } else {
      rte_epoll_ctl(RTE_EPOLL_PER_THREAD, EPOLL_CTL_DEL, q.level_fd, &level_events_[i]);
    }
  }
  rte_epoll_ctl(RTE_EPOLL_PER_THREAD, EPOLL_CTL_DEL, wake()->fd(), &wake_event_);
}

// Whether anything waits that the doorbell or an interrupt would announce
// after the arming, but that may have come before it.
bool Worker::has_input(const std::atomic<bool>& stop) const noexcept {
  if (stop.load(std::memory_order_relaxed) || query_.asked()) return true;
  if (rte_ring_count(setup_.snapshot_ring) != 0) return true;
  if (setup_.count > 1 && rte_ring_count(setup_.handoff_rings[setup_.id]) != 0) return true;
  // A NIC raises its interrupt for packets that arrive once it is enabled:
  // one that came in between shows in its descriptor.  A device without a
  // descriptor status answers otherwise; net_tap needs none: its queue's
  // descriptor is watched level-triggered.
  for (const RxQueue& q : setup_.rx_queues) {
    if (rte_eth_rx_descriptor_status(q.port_id, q.queue, 0) == RTE_ETH_RX_DESC_DONE) return true;
  }
  return false;
}

bool Worker::sleep_until_woken(const std::atomic<bool>& stop) noexcept {
  // A device without an enable operation (net_tap: -ENOTSUP) raises it
  // whenever packets wait.
  for (const RxQueue& q : setup_.rx_queues) rte_eth_dev_rx_intr_enable(q.port_id, q.queue);
  wake()->arm();
  bool woken = true;
  if (!has_input(stop)) {
    rte_rcu_qsbr_thread_offline(setup_.qsbr, setup_.id);
    rte_epoll_event events[8];
    const int n = rte_epoll_wait(RTE_EPOLL_PER_THREAD, events, 8, kIdleWaitMs);
    rte_rcu_qsbr_thread_online(setup_.qsbr, setup_.id);
    counters_.idle_waits.add();
    bool by_doorbell = false;
    bool by_rx = false;
    for (int i = 0; i < n; ++i) (events[i].epdata.data == &wake_event_ ? by_doorbell : by_rx) = true;
    if (by_doorbell) counters_.doorbell_wakes.add();
    if (by_rx) counters_.rx_interrupt_wakes.add();
    if (n <= 0) {
      woken = false;
      flows_.expire_some(now_ms(), kIdleExpiryFlows);
      flows6_.expire_some(now_ms(), kIdleExpiryFlows);
    }
  }
  wake()->disarm();
  wake()->clear();
  for (const RxQueue& q : setup_.rx_queues) rte_eth_dev_rx_intr_disable(q.port_id, q.queue);
  return woken;
}

}  // namespace podgate::dp
