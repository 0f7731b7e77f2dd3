// A doorbell: how a thread that produces work wakes a thread that sleeps
// while it has none.
//
// The control thread's: it drains the punt ring (ARP replies, packets
// waiting for a next hop, DNS queries to the DNS VIP, packets for a kernel
// twin) each turn of its loop.  When it has nothing else to do it sleeps in
// epoll for longer than a turn, and a packet punted meanwhile would wait
// for the end of that sleep.  So before it sleeps it arms the doorbell, and
// a worker that punted in a poll rings it: the first ring after the arming
// writes an eventfd the loop watches; every other ring is a fence and a
// load.
//
// A worker's, with `[dataplane] rx_interrupts` (worker_sleep.cpp): an idle
// worker sleeps until an RX interrupt or its doorbell, which another
// worker rings after handing it packets, and the control thread after
// sending it a snapshot or a flow listing to answer, or asking it to stop.
//
// No lost wake-up: the sleeper arms, then looks at its inputs; a producer
// enqueues, then looks at the arming.  A full fence on both sides between
// the store and the load (Dekker's pattern) means at least one of them sees
// the other's store: either the sleeper sees the work and does not sleep,
// or the producer sees it armed and rings.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace podgate::dp {

class Doorbell {
 public:
  // Takes an eventfd (eventfd(2), non-blocking), which it closes.
  explicit Doorbell(int event_fd) noexcept : fd_(event_fd) {}
  ~Doorbell() {
    if (fd_ >= 0) ::close(fd_);
  }
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;

  // The eventfd to watch for EPOLLIN; read it (clear()) when it fires.
  int fd() const noexcept { return fd_; }

  // Producer, after its enqueue (a worker after a poll that punted).
  void ring() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the punt before the load
    if (!armed_.load(std::memory_order_relaxed)) return;
    if (!armed_.exchange(false, std::memory_order_relaxed)) return;  // another worker rang
    const uint64_t one = 1;
    if (::write(fd_, &one, sizeof one) == sizeof one) rings_.fetch_add(1, std::memory_order_relaxed);
  }

  // Sleeper: before a sleep.  Then look at the inputs (the control thread's
  // punt ring): sleep only if there is nothing to do.
  void arm() noexcept {
    armed_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // the store before the ring's load
  }
  // Sleeper: awake again (woken or not); rings are not needed.
  void disarm() noexcept { armed_.store(false, std::memory_order_relaxed); }
  bool armed() const noexcept { return armed_.load(std::memory_order_relaxed); }

  // Sleeper: consumes the eventfd's count after it fired.
  void clear() noexcept {
    uint64_t count = 0;
    while (::read(fd_, &count, sizeof count) == sizeof count) {
    }
  }

  // How many times a producer woke the sleeper.
  uint64_t rings() const noexcept { return rings_.load(std::memory_order_relaxed); }

 private:
  int fd_ = -1;
  // Its own cache line: producers read it after each enqueue they announce;
  // it is written once a sleep, by the sleeper and by the producer that rings.
  alignas(64) std::atomic<bool> armed_{false};
  std::atomic<uint64_t> rings_{0};
};

}  // namespace podgate::dp
