#include "control/control_wait.hpp"

namespace podgate::ctl {

bool control_busy(const ControlLoad& load) noexcept {
  return load.punts_left || load.polled_twins || load.packets_held || load.flow_listing ||
         load.snapshots_to_free || load.health_changes;
}

int control_wait_ms(const ControlLoad& load, uint64_t now_ms) noexcept {
  if (control_busy(load)) return kBusyWaitMs;
  if (!load.next_due_ms) return kIdleWaitMs;
  const uint64_t due = *load.next_due_ms;
  if (due <= now_ms + kBusyWaitMs) return kBusyWaitMs;
  if (due >= now_ms + kIdleWaitMs) return kIdleWaitMs;
  return static_cast<int>(due - now_ms);
}

}  // namespace podgate::ctl
