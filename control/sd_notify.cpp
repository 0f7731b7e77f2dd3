#include "control/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include <rte_rcu_qsbr.h>

#include "control/log.hpp"

namespace podgate::ctl {

SdNotify SdNotify::from_environment() {
  const char* s = std::getenv("NOTIFY_SOCKET");
  return SdNotify(s != nullptr ? s : "");
}

Result<void> SdNotify::send(std::string_view state) const {
  if (!enabled()) return {};
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket_.size() >= sizeof sa.sun_path || (socket_[0] != '/' && socket_[0] != '@')) {
    return make_error(ErrorCode::kIo, "NOTIFY_SOCKET \"" + socket_ +
                                          "\" is not an absolute path or @abstract name that fits");
  }
  std::memcpy(sa.sun_path, socket_.data(), socket_.size());
  if (socket_[0] == '@') sa.sun_path[0] = '\0';  // the abstract namespace
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size());
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return make_error(ErrorCode::kIo, std::string("sd_notify: socket: ") + std::strerror(errno));
  }
  const ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                           reinterpret_cast<const sockaddr*>(&sa), len);
  const int err = errno;
  close(fd);
  if (n < 0) {
    return make_error(ErrorCode::kIo, "sd_notify: cannot send to " + socket_ + ": " +
                                          std::error_code(err, std::generic_category()).message());
  }
  return {};
}

uint64_t watchdog_interval_ms_from_environment() {
  const char* usec = std::getenv("WATCHDOG_USEC");
  if (usec == nullptr) return 0;
  if (const char* pid = std::getenv("WATCHDOG_PID")) {
    if (std::strtoll(pid, nullptr, 10) != static_cast<long long>(getpid())) return 0;
  }
  char* end = nullptr;
  const unsigned long long v = std::strtoull(usec, &end, 10);
  if (end == usec || *end != '\0') return 0;
  return v / 1000;
}

std::function<bool()> workers_report_in(rte_rcu_qsbr* qsv) {
  return [qsv, token = rte_rcu_qsbr_start(qsv)]() mutable {
    if (rte_rcu_qsbr_check(qsv, token, false) != 1) return false;
    token = rte_rcu_qsbr_start(qsv);
    return true;
  };
}

void Watchdog::tick(uint64_t now_ms) {
  if (period_ms_ == 0) return;
  if (!started_) {  // the first period starts now
    started_ = true;
    last_ms_ = last_fed_ms_ = now_ms;
    return;
  }
  if (now_ms - last_ms_ < period_ms_) return;
  last_ms_ = now_ms;
  if (!all_reported_()) {
    ++withheld_;
    if (!withholding_) {
      withholding_ = true;
      log_error("watchdog: a worker has not reported in for " +
                std::to_string(now_ms - last_fed_ms_) +
                " ms; systemd is no longer told podgate is alive (WatchdogSec restarts it)");
    }
    return;
  }
  if (withholding_) {
    withholding_ = false;
    log_info("watchdog: every worker reports in again");
  }
  if (auto r = notify_.send("WATCHDOG=1"); !r) {
    log_warn(r.error().message);
    return;
  }
  last_fed_ms_ = now_ms;
  ++fed_;
}

}  // namespace podgate::ctl
