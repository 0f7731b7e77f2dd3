// Publishes Snapshots to the workers and frees old ones through RCU
// (architecture decision 1, style habit 6).
//
// publish(): the whole new Snapshot is built before it gets here; its
// pointer is enqueued on every worker's SPSC ring, then the previous one is
// handed to the rte_rcu_qsbr defer queue.  QSBR frees it once every worker
// has reported quiescence after the hand-over.  Workers report quiescence at
// the top of their loop and drain their ring right after, so a worker that
// has reported holds no pointer to a snapshot older than the newest it was
// sent.  Control thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "control/result.hpp"
#include "dataplane/doorbell.hpp"
#include "dataplane/snapshot.hpp"

namespace podgate::ctl {

class SnapshotPublisher {
 public:
  // Creates the QSBR variable for `workers` reader threads, one ring each,
  // and the defer queue.  `name` keeps DPDK object names unique per process.
  static Result<std::unique_ptr<SnapshotPublisher>> create(uint32_t workers, const std::string& name);
  ~SnapshotPublisher();
  SnapshotPublisher(const SnapshotPublisher&) = delete;
  SnapshotPublisher& operator=(const SnapshotPublisher&) = delete;

  // Hands `next` to every worker; the previous snapshot is freed later.
  // Fails (changing nothing) only when check_room() does.
  Result<void> publish(std::unique_ptr<dp::Snapshot> next);

  // Whether every worker's ring has room for one more snapshot: callers
  // that change other state along with a publication ask first.
  Result<void> check_room() const;

  // Rings worker w's doorbell (null: none) after each snapshot sent to it:
  // a worker sleeping with rx_interrupts takes it at once.
  void wake_with(std::vector<dp::Doorbell*> wakes) { wakes_ = std::move(wakes); }
  // Frees the snapshots every worker has moved past; returns how many.
  uint32_t reclaim();

  const dp::Snapshot* current() const noexcept { return current_; }
  rte_rcu_qsbr* qsbr() const noexcept { return qsbr_; }
  rte_ring* ring(uint32_t worker) const noexcept { return rings_[worker]; }
  uint64_t pending_frees() const noexcept { return enqueued_ - freed_; }
  uint64_t freed() const noexcept { return freed_; }

 private:
  SnapshotPublisher() = default;
  static void free_snapshots(void* self, void* elements, unsigned n);

  rte_rcu_qsbr* qsbr_ = nullptr;
  rte_rcu_qsbr_dq* defer_ = nullptr;
  std::vector<rte_ring*> rings_;
  std::vector<dp::Doorbell*> wakes_;  // by worker; empty: none sleeps
  const dp::Snapshot* current_ = nullptr;
  uint64_t enqueued_ = 0;
  uint64_t freed_ = 0;
};

}  // namespace podgate::ctl
