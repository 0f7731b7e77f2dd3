// How long the control thread may sleep between two turns of its loop.
//
// It turns every kBusyWaitMs while something needs it that no descriptor
// and no doorbell announces: punts left over from a bounded turn, kernel
// twins without RX interrupts (only polling finds what their kernel sent;
// net_tap's wake the loop through their queue's descriptor), packets held
// until their next hop resolves, a flow listing the workers are
// answering, old snapshots waiting for the workers' quiescence, health
// changes waiting to be published.  Otherwise it sleeps until the next
// health probe or systemd watchdog keep-alive is due, and at most
// kIdleWaitMs: what only polling times (neighbour aging, telemetry)
// comes at most that late.  Sockets and the loop's timers wake it themselves
// (EventLoop::run_once), and a worker that punts rings the doorbell
// (dataplane/doorbell.hpp), so an idle appliance answers ARP, DNS and the
// control socket as fast as a busy one, from 20 wake-ups a second instead
// of 1,000.
#pragma once

#include <cstdint>
#include <optional>

namespace podgate::ctl {

inline constexpr int kBusyWaitMs = 1;
inline constexpr int kIdleWaitMs = 50;

// What the control thread has on its hands after a turn.
struct ControlLoad {
  bool punts_left = false;         // the turn's punt budget ran out
  bool polled_twins = false;       // kernel twins with no RX descriptor to wake on
  bool packets_held = false;       // waiting for ARP / neighbour discovery
  bool flow_listing = false;       // a flow listing waits for the workers
  bool snapshots_to_free = false;  // RCU: freed once every worker is quiescent
  bool health_changes = false;     // to publish, no sooner than their pacing allows
  // The earliest deadline a turn must meet: a health probe's start or
  // timeout, the watchdog's keep-alive.
  std::optional<uint64_t> next_due_ms;

  // Keeps the earlier of next_due_ms and `due`.
  void due_by(std::optional<uint64_t> due) noexcept {
    if (due && (!next_due_ms || *due < *next_due_ms)) next_due_ms = due;
  }
};

// Whether the loop must turn every kBusyWaitMs.
bool control_busy(const ControlLoad& load) noexcept;

// The next turn's epoll timeout in ms, kBusyWaitMs..kIdleWaitMs (never 0:
// what is due now waits for the next turn, as the health checker's
// per-turn bound expects).
int control_wait_ms(const ControlLoad& load, uint64_t now_ms) noexcept;

}  // namespace podgate::ctl
