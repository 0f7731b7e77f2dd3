// systemd notification by hand (control/sd_notify.hpp): datagrams to the
// socket NOTIFY_SOCKET names, and a watchdog fed only while every worker
// reports in (issue 15).  The test listens on the socket itself; systemd
// cannot run here.
#include "control/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rte_rcu_qsbr.h>

namespace podgate::ctl {
namespace {

// A datagram socket like systemd's notify socket.
struct Listener {
  explicit Listener(const std::string& name) : name(name) {
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, name.data(), name.size());
    if (name[0] == '@') sa.sun_path[0] = '\0';
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    EXPECT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&sa), len), 0) << std::strerror(errno);
  }
  ~Listener() {
    close(fd);
    if (name[0] == '/') unlink(name.c_str());
  }
  std::vector<std::string> received() {
    std::vector<std::string> out;
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.emplace_back(buf, static_cast<size_t>(n));
    return out;
  }
  std::string name;
  int fd = -1;
};

std::string temp_path() {
  return "/tmp/sd_notify_test." + std::to_string(getpid()) + ".sock";
}

TEST(SdNotify, SendsOneDatagramToAPathSocket) {
  Listener l(temp_path());
  SdNotify n(l.name);
  ASSERT_TRUE(n.send("READY=1\nSTATUS=running"));
  EXPECT_EQ(l.received(), std::vector<std::string>{"READY=1\nSTATUS=running"});
}

TEST(SdNotify, SendsToAnAbstractSocket) {
  Listener l("@podgate-sd-notify-test-" + std::to_string(getpid()));
  ASSERT_TRUE(SdNotify(l.name).send("WATCHDOG=1"));
  EXPECT_EQ(l.received(), std::vector<std::string>{"WATCHDOG=1"});
}

TEST(SdNotify, WithoutNotifySocketNothingIsSent) {
  unsetenv("NOTIFY_SOCKET");
  SdNotify n = SdNotify::from_environment();
  EXPECT_FALSE(n.enabled());
  EXPECT_TRUE(n.send("READY=1"));
}

TEST(SdNotify, ASocketNobodyListensOnIsAnErrorNamingIt) {
  auto r = SdNotify("/nonexistent/notify.sock").send("READY=1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "sd_notify: cannot send to /nonexistent/notify.sock: No such file or directory");
}

TEST(SdNotify, TheWatchdogIntervalIsOursOnlyWhenWatchdogPidIsUsOrUnset) {
  setenv("WATCHDOG_USEC", "10000000", 1);
  unsetenv("WATCHDOG_PID");
  EXPECT_EQ(watchdog_interval_ms_from_environment(), 10000u);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  EXPECT_EQ(watchdog_interval_ms_from_environment(), 10000u);
  setenv("WATCHDOG_PID", "1", 1);
  EXPECT_EQ(watchdog_interval_ms_from_environment(), 0u);
  unsetenv("WATCHDOG_PID");
  unsetenv("WATCHDOG_USEC");
  EXPECT_EQ(watchdog_interval_ms_from_environment(), 0u);
}

TEST(Watchdog, FeedsEveryPeriodWhileWorkersReportAndStopsWhenOneDoesNot) {
  Listener l(temp_path());
  SdNotify n(l.name);
  bool reporting = true;
  Watchdog w(n, 500, [&reporting] { return reporting; });
  w.tick(1000);  // starts the first period
  w.tick(1499);
  EXPECT_EQ(w.fed(), 0u);
  w.tick(1500);
  w.tick(2000);
  EXPECT_EQ(w.fed(), 2u);
  reporting = false;  // a worker is stuck
  w.tick(2500);
  w.tick(3000);
  EXPECT_EQ(w.fed(), 2u);
  EXPECT_EQ(w.withheld(), 2u);
  reporting = true;
  w.tick(3500);
  EXPECT_EQ(w.fed(), 3u);
  EXPECT_EQ(l.received(), std::vector<std::string>(3, "WATCHDOG=1"));
}

TEST(Watchdog, SaysWhenTheNextKeepAliveIsDueSoTheLoopWakesForIt) {
  Listener l(temp_path());
  SdNotify n(l.name);
  Watchdog off(n, 0, [] { return true; });
  off.tick(1000);
  EXPECT_EQ(off.next_due_ms(), std::nullopt);
  Watchdog w(n, 500, [] { return true; });
  EXPECT_EQ(w.next_due_ms(), std::nullopt);  // not started
  w.tick(1000);
  EXPECT_EQ(w.next_due_ms(), 1500u);
  w.tick(1520);  // late by 20 ms: the next period counts from the keep-alive
  EXPECT_EQ(w.fed(), 1u);
  EXPECT_EQ(w.next_due_ms(), 2020u);
}

// The real predicate on a real QSBR variable: a worker that stops passing
// quiescent states (stuck) stops the keep-alives.
TEST(Watchdog, AWorkerThatPassesNoQuiescentStateHasNotReportedIn) {
  const size_t size = rte_rcu_qsbr_get_memsize(2);
  std::unique_ptr<void, void (*)(void*)> mem(std::aligned_alloc(64, (size + 63) / 64 * 64), &std::free);
  auto* qsv = static_cast<rte_rcu_qsbr*>(mem.get());
  ASSERT_EQ(rte_rcu_qsbr_init(qsv, 2), 0);
  for (unsigned id : {0u, 1u}) {
    ASSERT_EQ(rte_rcu_qsbr_thread_register(qsv, id), 0);
    rte_rcu_qsbr_thread_online(qsv, id);
  }
  auto reported = workers_report_in(qsv);
  EXPECT_FALSE(reported()) << "nobody passed a quiescent state yet";
  rte_rcu_qsbr_quiescent(qsv, 0);
  EXPECT_FALSE(reported()) << "worker 1 is stuck";
  rte_rcu_qsbr_quiescent(qsv, 1);
  EXPECT_TRUE(reported());
  EXPECT_FALSE(reported()) << "each keep-alive needs new reports";
  rte_rcu_qsbr_quiescent(qsv, 0);
  rte_rcu_qsbr_quiescent(qsv, 1);
  EXPECT_TRUE(reported());
  rte_rcu_qsbr_thread_offline(qsv, 1);  // a stopped worker does not hold it back
  rte_rcu_qsbr_quiescent(qsv, 0);
  EXPECT_TRUE(reported());
}

}  // namespace
}  // namespace podgate::ctl
