// systemd's service notification protocol (sd_notify(3)), by hand: one
// datagram of "KEY=VALUE" lines to the Unix socket named by NOTIFY_SOCKET
// (a path, or "@name" in the abstract namespace).  libsystemd is not a
// dependency: the protocol is a sendto().  Outside systemd (no
// NOTIFY_SOCKET) every call does nothing.
//
// podgate sends READY=1 once its ports are up and its workers run,
// RELOADING=1 / READY=1 around a SIGHUP reload, STOPPING=1 on SIGTERM, and
// WATCHDOG=1 from the control loop, only while every worker has reported in
// since the previous one (Watchdog below): a stuck worker stops the
// keep-alives and systemd restarts the appliance (WatchdogSec=).
// Control thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "control/result.hpp"

struct rte_rcu_qsbr;

namespace podgate::ctl {

class SdNotify {
 public:
  // NOTIFY_SOCKET from the environment; disabled when unset or empty.
  static SdNotify from_environment();
  // `socket` "" = disabled.
  explicit SdNotify(std::string socket = {}) : socket_(std::move(socket)) {}
  bool enabled() const noexcept { return !socket_.empty(); }
  const std::string& socket() const noexcept { return socket_; }
  // One datagram; nothing when disabled.
  Result<void> send(std::string_view state) const;

 private:
  std::string socket_;
};

// The watchdog interval systemd asks for (WATCHDOG_USEC, in ms), 0 when
// there is none or WATCHDOG_PID names another process (sd_watchdog_enabled).
uint64_t watchdog_interval_ms_from_environment();

// Watchdog's all_reported for the workers of `qsv`: true when every worker
// online in `qsv` has passed a quiescent state (rte_rcu_qsbr_quiescent,
// every turn of its loop) since the previous true, or since this was made.
std::function<bool()> workers_report_in(rte_rcu_qsbr* qsv);

// Sends WATCHDOG=1 every `period_ms` (half systemd's interval, as
// sd_watchdog_enabled(3) advises), but only when `all_reported()` says
// every worker has reported in since it was last asked; logs when it
// starts and stops withholding.
class Watchdog {
 public:
  Watchdog(const SdNotify& notify, uint64_t period_ms, std::function<bool()> all_reported)
      : notify_(notify), period_ms_(period_ms), all_reported_(std::move(all_reported)) {}
  void tick(uint64_t now_ms);
  // When tick() next has a keep-alive to send (or withhold); nullopt
  // without a watchdog.  The control loop sleeps no longer than this.
  std::optional<uint64_t> next_due_ms() const noexcept {
    if (period_ms_ == 0 || !started_) return std::nullopt;
    return last_ms_ + period_ms_;
  }
  uint64_t fed() const noexcept { return fed_; }
  uint64_t withheld() const noexcept { return withheld_; }

 private:
  const SdNotify& notify_;
  uint64_t period_ms_;
  std::function<bool()> all_reported_;
  uint64_t last_ms_ = 0;
  uint64_t last_fed_ms_ = 0;
  uint64_t fed_ = 0;
  uint64_t withheld_ = 0;
  bool withholding_ = false;
  bool started_ = false;
};

}  // namespace podgate::ctl
