#include "control/publish/snapshot_publisher.hpp"

#include <rte_errno.h>
#include <rte_malloc.h>

namespace podgate::ctl {

namespace {
constexpr unsigned kRingSize = 1024;        // snapshots in flight per worker
constexpr unsigned kDeferQueueSize = 4096;  // snapshots awaiting a grace period
// publish()'s wait on a full defer queue ends: the snapshots that no
// grace period has freed are those published since the slowest online
// worker's last quiescent state, and that worker's ring (at most
// kRingSize - 1) fills first, when check_room() refuses further
// publications.  The rest are freed by the reclaim the wait calls.
static_assert(kDeferQueueSize > kRingSize, "a stalled worker must fill its ring before the defer queue fills");
}  // namespace

Result<std::unique_ptr<SnapshotPublisher>> SnapshotPublisher::create(uint32_t workers,
                                                                     const std::string& name) {
  std::unique_ptr<SnapshotPublisher> p(new SnapshotPublisher);
  size_t size = rte_rcu_qsbr_get_memsize(workers);
  p->qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("podgate_qsbr", size, RTE_CACHE_LINE_SIZE));
  if (p->qsbr_ == nullptr || rte_rcu_qsbr_init(p->qsbr_, workers) != 0) {
    return make_error(ErrorCode::kDpdk, "cannot create the RCU QSBR variable: " +
                                            std::string(rte_strerror(rte_errno)));
  }
  for (uint32_t w = 0; w < workers; ++w) {
    if (rte_rcu_qsbr_thread_register(p->qsbr_, w) != 0) {
      return make_error(ErrorCode::kDpdk, "cannot register worker " + std::to_string(w) + " in QSBR");
    }
    std::string ring_name = name + "_snap" + std::to_string(w);
    rte_ring* r = rte_ring_create(ring_name.c_str(), kRingSize, SOCKET_ID_ANY,
                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (r == nullptr) {
      return make_error(ErrorCode::kDpdk, "cannot create ring " + ring_name + ": " +
                                              rte_strerror(rte_errno));
    }
    p->rings_.push_back(r);
  }
  std::string dq_name = name + "_dq";
  rte_rcu_qsbr_dq_parameters params{};
  params.name = dq_name.c_str();
  params.size = kDeferQueueSize;
  params.esize = sizeof(void*);
  params.trigger_reclaim_limit = 0;  // reclaim whenever asked
  params.max_reclaim_size = kDeferQueueSize;
  params.free_fn = &SnapshotPublisher::free_snapshots;
  params.p = p.get();
  params.v = p->qsbr_;
  p->defer_ = rte_rcu_qsbr_dq_create(&params);
  if (p->defer_ == nullptr) {
    return make_error(ErrorCode::kDpdk, "cannot create the RCU defer queue: " +
                                            std::string(rte_strerror(rte_errno)));
  }
  return p;
}

SnapshotPublisher::~SnapshotPublisher() {
  // Workers are stopped (offline) by now: everything deferred can go.
  if (defer_ != nullptr) rte_rcu_qsbr_dq_delete(defer_);
  for (rte_ring* r : rings_) {
    void* stale = nullptr;  // g++ cannot always tell that a dequeue wrote it
    while (rte_ring_dequeue(r, &stale) == 0) {
      // Pointers still in a ring were also deferred or are current_.
    }
    rte_ring_free(r);
  }
  delete current_;
  rte_free(qsbr_);
}

void SnapshotPublisher::free_snapshots(void* self, void* elements, unsigned n) {
  auto* publisher = static_cast<SnapshotPublisher*>(self);
  auto** snaps = static_cast<dp::Snapshot**>(elements);
  for (unsigned i = 0; i < n; ++i) delete snaps[i];
  publisher->freed_ += n;
}

Result<void> SnapshotPublisher::check_room() const {
  for (size_t w = 0; w < rings_.size(); ++w) {
    if (rte_ring_free_count(rings_[w]) == 0) {
      return make_error(ErrorCode::kInternal, "worker " + std::to_string(w) +
                                                  " is not taking snapshots (ring full)");
    }
  }
  return {};
}

Result<void> SnapshotPublisher::publish(std::unique_ptr<dp::Snapshot> next) {
  // Check room first so a snapshot reaches every worker or none.
  if (auto r = check_room(); !r) return r;
  const dp::Snapshot* snap = next.release();
  for (size_t w = 0; w < rings_.size(); ++w) {
    rte_ring_sp_enqueue(rings_[w], const_cast<dp::Snapshot*>(snap));
    if (w < wakes_.size() && wakes_[w] != nullptr) wakes_[w]->ring();
  }
  const dp::Snapshot* old = current_;
  current_ = snap;
  if (old != nullptr) {
    void* element = const_cast<dp::Snapshot*>(old);
    // The defer queue copies the pointer and takes a QSBR token now.
    while (rte_rcu_qsbr_dq_enqueue(defer_, &element) != 0) {
      // Full: wait for workers to pass a quiescent state, then retry.
      rte_rcu_qsbr_dq_reclaim(defer_, kDeferQueueSize, nullptr, nullptr, nullptr);
    }
    ++enqueued_;
  }
  return {};
}

uint32_t SnapshotPublisher::reclaim() {
  unsigned freed = 0, pending = 0, available = 0;
  rte_rcu_qsbr_dq_reclaim(defer_, kDeferQueueSize, &freed, &pending, &available);
  return freed;
}

}  // namespace podgate::ctl
