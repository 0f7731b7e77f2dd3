// The health checker against real servers on loopback (issue 13): an
// in-process TCP listener, tools/pod_server.py (Python's http.server), and
// podgate's own DNS server, probed on the real event loop with the real
// clock.  No mocks: every probe is a kernel socket.
#include "control/health/health_checker.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>

#include <cstdio>
#include <string>
#include <vector>

#include "control/config/config_health.hpp"
#include "control/dns/dns.hpp"
#include "control/dns/server.hpp"

namespace podgate::ctl::health {
namespace {

dp::Ip4 ip(const char* s) { return *dp::parse_ip4(s); }

// A TCP port nobody listens on at `addr` (bound, then closed).
uint16_t free_port(const char* addr, int type = SOCK_STREAM) {
  const int fd = ::socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = ip(addr).be;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

int bound_socket(const char* addr, uint16_t port, int type) {
  const int fd = ::socket(AF_INET, type | SOCK_NONBLOCK, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = ip(addr).be;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  if (type == SOCK_STREAM) {
    EXPECT_EQ(::listen(fd, 128), 0);
  }
  return fd;
}

// A real TCP server on the loop: accepts and closes.
class Listener {
 public:
  Listener(EventLoop& loop, const char* addr, uint16_t port) : loop_(loop) {
    fd_ = bound_socket(addr, port, SOCK_STREAM);
    watch_ = *loop_.add(fd_, EPOLLIN, [this](uint32_t) {
      int c;
      while ((c = ::accept(fd_, nullptr, nullptr)) >= 0) ::close(c);
    });
  }
  ~Listener() { close(); }
  void close() {
    if (fd_ < 0) return;
    loop_.remove(watch_);
    ::close(fd_);
    fd_ = -1;
  }

 private:
  EventLoop& loop_;
  int fd_ = -1;
  EventLoop::WatchId watch_{};
};

// tools/pod_server.py as a child process, ready when it says so.
class PodServer {
 public:
  PodServer(const char* addr, uint16_t port) {
    int out[2];
    EXPECT_EQ(::pipe(out), 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      const std::string script = std::string(PODGATE_SOURCE_DIR) + "/tools/pod_server.py";
      const std::string p = std::to_string(port);
      ::execlp("python3", "python3", script.c_str(), "web-0", addr, p.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    FILE* f = ::fdopen(out[0], "r");
    char line[64] = {};
    EXPECT_NE(std::fgets(line, sizeof line, f), nullptr);
    EXPECT_STREQ(line, "ready\n");
    std::fclose(f);
  }
  ~PodServer() { stop(); }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

// ---- IPv6 loopback (issue 11): the same probes over AF_INET6 to ::1 ----

// A socket bound to [::1]:port (0: any), listening when a stream.
int bound_socket6(uint16_t port, int type) {
  const int fd = ::socket(AF_INET6, type | SOCK_NONBLOCK, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  a.sin6_addr = in6addr_loopback;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  if (type == SOCK_STREAM) {
    EXPECT_EQ(::listen(fd, 128), 0);
  }
  return fd;
}

uint16_t port_of(int fd) {
  sockaddr_in6 a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin6_port);
}

// A TCP port on ::1 nobody listens on.
uint16_t free_port6(int type = SOCK_STREAM) {
  const int fd = bound_socket6(0, type == SOCK_STREAM ? SOCK_DGRAM : type);
  const uint16_t port = port_of(fd);
  ::close(fd);
  return port;
}

// An HTTP server on [::1]: answers 200 to each request and closes, keeping
// the last request's head so a test can read its Host header.  Each
// connection is watched on the loop (the probe sends once connected).
class Http6Server {
 public:
  explicit Http6Server(EventLoop& loop) : loop_(loop) {
    fd_ = bound_socket6(0, SOCK_STREAM);
    port_ = port_of(fd_);
    watch_ = *loop_.add(fd_, EPOLLIN, [this](uint32_t) {
      int c;
      while ((c = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
        auto w = loop_.add(c, EPOLLIN, [this, c](uint32_t) { answer(c); });
        if (w) conns_.emplace_back(c, *w);
      }
    });
  }
  ~Http6Server() {
    for (auto [c, w] : conns_) {
      loop_.remove(w);
      ::close(c);
    }
    loop_.remove(watch_);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  const std::string& last_request() const { return last_request_; }

 private:
  void answer(int c) {
    char buf[2048];
    const ssize_t n = ::recv(c, buf, sizeof buf, 0);
    if (n <= 0) return;
    last_request_.assign(buf, static_cast<size_t>(n));
    static const char kReply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    (void)::send(c, kReply, sizeof kReply - 1, MSG_NOSIGNAL);
    ::shutdown(c, SHUT_WR);  // closed for good in the destructor
  }

  EventLoop& loop_;
  int fd_ = -1;
  uint16_t port_ = 0;
  EventLoop::WatchId watch_{};
  std::vector<std::pair<int, EventLoop::WatchId>> conns_;
  std::string last_request_;
};

// podgate's DNS responder answering UDP on [::1] (the kernel listeners of
// control/dns/server.cpp bind IPv4 only).
class Dns6Server {
 public:
  Dns6Server(EventLoop& loop, std::shared_ptr<const dns::Zone> zone) : loop_(loop), zone_(std::move(zone)) {
    fd_ = bound_socket6(0, SOCK_DGRAM);
    port_ = port_of(fd_);
    watch_ = *loop_.add(fd_, EPOLLIN, [this](uint32_t) {
      uint8_t q[512];
      std::vector<uint8_t> out(1232);
      sockaddr_in6 from{};
      socklen_t len = sizeof from;
      ssize_t n;
      while ((n = ::recvfrom(fd_, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &len)) > 0) {
        const size_t m = dns::respond({q, static_cast<size_t>(n)}, *zone_, dns::QueryContext{}, out);
        if (m != 0) (void)::sendto(fd_, out.data(), m, 0, reinterpret_cast<sockaddr*>(&from), len);
        len = sizeof from;
      }
    });
  }
  ~Dns6Server() {
    loop_.remove(watch_);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  EventLoop& loop_;
  std::shared_ptr<const dns::Zone> zone_;
  int fd_ = -1;
  uint16_t port_ = 0;
  EventLoop::WatchId watch_{};
};

dp::IpAddr any_ip(const char* s) { return *dp::parse_ip(s); }

// One service "web" with `endpoints` and `check`.
Config config_with(const HealthCheckConfig& check, const std::vector<const char*>& endpoints,
                   uint16_t target_port, dp::Proto proto = dp::Proto::kTcp) {
  Config c;
  ServiceConfig s;
  s.ns = "default";
  s.name = "web";
  s.cluster_ip = dp::IpAddr::v4(ip("10.96.0.20"));
  s.secondary_cluster_ip = dp::parse_ip("fd00:10:96::20");
  s.ports = {ServicePortConfig{"p", 80, target_port, proto}};
  for (const char* a : endpoints) {
    EndpointConfig e;
    e.ip = any_ip(a);
    s.endpoints.push_back(e);
  }
  s.health_check = check;
  c.services.push_back(s);
  return c;
}

HealthCheckConfig fast(HealthKind kind) {
  HealthCheckConfig h;
  h.kind = kind;
  h.interval_ms = 100;
  h.timeout_ms = 80;
  h.rise = 2;
  h.fall = 2;
  return h;
}

class HealthCheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = EventLoop::create();
    ASSERT_TRUE(created);
    loop = std::move(*created);
    HealthChecker::Options o;
    o.seed = 42;
    checker = std::make_unique<HealthChecker>(*loop, o);
  }
  // Runs the loop as the appliance does: events, then the checker's turn.
  void run_for(uint64_t ms) {
    const uint64_t end = monotonic_ms() + ms;
    while (monotonic_ms() < end) {
      loop->run_once(2);
      checker->tick(monotonic_ms());
    }
  }
  // Runs until `pred` holds (true) or `ms` pass (false).
  template <typename P>
  bool run_until(uint64_t ms, P pred) {
    const uint64_t end = monotonic_ms() + ms;
    while (monotonic_ms() < end) {
      loop->run_once(2);
      checker->tick(monotonic_ms());
      if (pred()) return true;
    }
    return false;
  }
  TargetStatus only() {
    auto all = checker->status();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? TargetStatus{} : all[0];
  }

  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<HealthChecker> checker;
};

TEST_F(HealthCheckerTest, TcpCheckFollowsAServerThatDiesAndComesBack) {
  const uint16_t port = free_port("127.0.0.2");
  auto listener = std::make_unique<Listener>(*loop, "127.0.0.2", port);
  checker->sync(config_with(fast(HealthKind::kTcp), {"127.0.0.2"}, port), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1000, [&] { return only().successes >= 2; }));
  EXPECT_TRUE(only().healthy);
  EXPECT_TRUE(checker->take_changes().empty()) << "healthy from the start: nothing to publish";

  listener->close();
  const uint64_t died = monotonic_ms();
  // fall x interval, plus one interval of phase and the margin of a loaded machine.
  ASSERT_TRUE(run_until(2 * 100 + 100 + 500, [&] { return !only().healthy; }));
  EXPECT_LE(monotonic_ms() - died, 2 * 100 + 100 + 500u);
  EXPECT_EQ(reason_text(only().last), "refused");
  EXPECT_NE(only().changed_ms, 0u);
  auto changes = checker->take_changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].endpoint, (EndpointRef{"default", "web", dp::IpAddr::v4(ip("127.0.0.2"))}));
  EXPECT_EQ(changes[0].unhealthy, (std::vector<PortRef>{{80, dp::Proto::kTcp}}));
  EXPECT_EQ(checker->counters().to_unhealthy, 1u);

  listener = std::make_unique<Listener>(*loop, "127.0.0.2", port);
  ASSERT_TRUE(run_until(1000, [&] { return only().healthy; }));
  changes = checker->take_changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].unhealthy.empty());
}

TEST_F(HealthCheckerTest, ARecoveryThatCouldNotBePublishedIsOfferedAgain) {
  // The Registry has the endpoint unhealthy; its recovery is taken, but
  // the publication fails (out of memory, rings full).  Offered again, or
  // the endpoint would stay out of rotation for good.
  const uint16_t port = free_port("127.0.0.2");
  checker->sync(config_with(fast(HealthKind::kTcp), {"127.0.0.2"}, port), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1000, [&] { return !only().healthy; }));
  ASSERT_EQ(checker->take_changes().size(), 1u) << "published unhealthy";
  Listener listener(*loop, "127.0.0.2", port);
  ASSERT_TRUE(run_until(1000, [&] { return only().healthy; }));
  auto changes = checker->take_changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_TRUE(changes[0].unhealthy.empty());
  checker->retry_changes();
  EXPECT_TRUE(checker->has_changes());
  changes = checker->take_changes();
  ASSERT_EQ(changes.size(), 1u) << "the recovery again";
  EXPECT_TRUE(changes[0].unhealthy.empty());
  EXPECT_TRUE(checker->take_changes().empty()) << "once published";
}

TEST_F(HealthCheckerTest, HttpCheckReadsTheStatusOfARealServer) {
  const uint16_t port = free_port("127.0.0.3");
  PodServer pod("127.0.0.3", port);
  HealthCheckConfig check = fast(HealthKind::kHttp);
  check.timeout_ms = 100;
  check.path = "/";
  checker->sync(config_with(check, {"127.0.0.3"}, port), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(2000, [&] { return only().successes >= 2; }));
  EXPECT_EQ(only().last.detail, 200u);

  // The same endpoint, the check now expecting 200 of a path answering 503:
  // a reload that changes the check keeps the target (and its state).
  check.path = "/status/503";
  checker->sync(config_with(check, {"127.0.0.3"}, port), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(2000, [&] { return !only().healthy; }));
  EXPECT_EQ(reason_text(only().last), "http 503");
  EXPECT_EQ(only().failures, 2u);
}

TEST_F(HealthCheckerTest, HttpCheckOfAKilledServerIsRefused) {
  const uint16_t port = free_port("127.0.0.3");
  PodServer pod("127.0.0.3", port);
  checker->sync(config_with(fast(HealthKind::kHttp), {"127.0.0.3"}, port), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(2000, [&] { return only().successes >= 1; }));
  pod.stop();
  ASSERT_TRUE(run_until(2000, [&] { return !only().healthy; }));
  EXPECT_EQ(reason_text(only().last), "refused");
}

// A server that answers the status line at once and keeps the connection
// open: the answer stands when the probe gives up waiting for the close.
TEST_F(HealthCheckerTest, AnHttpAnswerInTimeStandsWhenTheServerNeverCloses) {
  const uint16_t port = free_port("127.0.0.8");
  const int lfd = bound_socket("127.0.0.8", port, SOCK_STREAM);
  std::vector<int> held;
  auto watch = loop->add(lfd, EPOLLIN, [&](uint32_t) {
    int c;
    while ((c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
      static const char kHead[] = "HTTP/1.1 204 No Content\r\n\r\n";
      (void)::send(c, kHead, sizeof kHead - 1, MSG_NOSIGNAL);
      held.push_back(c);
    }
  });
  ASSERT_TRUE(watch);
  HealthCheckConfig check = fast(HealthKind::kHttp);
  checker->sync(config_with(check, {"127.0.0.8"}, port), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1500, [&] { return only().successes >= 2; }));
  EXPECT_EQ(only().last.detail, 204u);
  EXPECT_EQ(checker->counters().results[static_cast<size_t>(Outcome::kTimeout)], 0u);
  loop->remove(*watch);
  ::close(lfd);
  for (int c : held) ::close(c);
}

// A server that answers and then resets the connection (SO_LINGER 0, as
// HAProxy's `option nolinger`, or a close with the request unread): the
// answer was read, and it stands; the reset is not a refusal.
TEST_F(HealthCheckerTest, AnHttpAnswerStandsWhenTheServerThenResets) {
  const uint16_t port = free_port("127.0.0.9");
  const int lfd = bound_socket("127.0.0.9", port, SOCK_STREAM);
  // Each connection: once the request is in, the answer, then the reset.
  std::function<void(int)> answer = [&](int c) {
    char peek;
    if (::recv(c, &peek, 1, MSG_PEEK | MSG_DONTWAIT) != 1) {
      loop->after(1, [&answer, c] { answer(c); });
      return;
    }
    static const char kHead[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    (void)::send(c, kHead, sizeof kHead - 1, MSG_NOSIGNAL);
    const linger reset{1, 0};
    (void)::setsockopt(c, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    ::close(c);
  };
  auto watch = loop->add(lfd, EPOLLIN, [&](uint32_t) {
    int c;
    while ((c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) answer(c);
  });
  ASSERT_TRUE(watch);
  checker->sync(config_with(fast(HealthKind::kHttp), {"127.0.0.9"}, port), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1500, [&] { return only().successes + only().failures >= 3; }));
  EXPECT_EQ(only().failures, 0u) << reason_text(only().last);
  EXPECT_EQ(only().last.detail, 200u);
  EXPECT_TRUE(only().healthy);
  loop->remove(*watch);
  ::close(lfd);
}

TEST_F(HealthCheckerTest, DnsCheckAsksARealDnsServer) {
  const uint16_t port = free_port("127.0.0.4", SOCK_DGRAM);
  DnsConfig dc;
  dc.listen = {DnsListen{ip("127.0.0.4"), port}};
  auto server = dns::DnsServer::open(*loop, dc);
  ASSERT_TRUE(server) << server.error().message;
  Config zone_config = config_with(fast(HealthKind::kTcp), {"172.17.0.10"}, 8080);
  (*server)->set_zone(dns::build_zone(zone_config, 1));

  HealthCheckConfig check = fast(HealthKind::kDns);
  check.query = "web.default.svc.cluster.local";
  check.expect_address = ip("10.96.0.20");
  checker->sync(config_with(check, {"127.0.0.4"}, port, dp::Proto::kUdp), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1000, [&] { return only().successes >= 2; }));
  EXPECT_TRUE(only().healthy);

  check.query = "nothing.default.svc.cluster.local";
  checker->sync(config_with(check, {"127.0.0.4"}, port, dp::Proto::kUdp), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1000, [&] { return !only().healthy; }));
  EXPECT_EQ(reason_text(only().last), "dns NXDOMAIN");
}

TEST_F(HealthCheckerTest, ASilentServerTimesOut) {
  const uint16_t port = free_port("127.0.0.5", SOCK_DGRAM);
  const int silent = bound_socket("127.0.0.5", port, SOCK_DGRAM);  // never read
  HealthCheckConfig check = fast(HealthKind::kDns);
  check.query = "example.com";
  checker->sync(config_with(check, {"127.0.0.5"}, port, dp::Proto::kUdp), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1500, [&] { return !only().healthy; }));
  EXPECT_EQ(reason_text(only().last), "timeout");
  EXPECT_GE(checker->counters().results[static_cast<size_t>(Outcome::kTimeout)], 2u);
  ::close(silent);
}

TEST_F(HealthCheckerTest, AChangeKeepsTheHealthOfEndpointsThatStay) {
  const uint16_t port = free_port("127.0.0.6");
  HealthCheckConfig check = fast(HealthKind::kTcp);
  checker->sync(config_with(check, {"127.0.0.6", "127.0.0.7"}, port), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1500, [&] {
    auto all = checker->status();
    return all.size() == 2 && !all[0].healthy && !all[1].healthy;
  }));
  (void)checker->take_changes();
  // A new interval, rise and fall; 127.0.0.7 removed; 127.0.0.8 added.
  check.interval_ms = 1000;
  check.timeout_ms = 500;
  check.rise = 5;
  checker->sync(config_with(check, {"127.0.0.6", "127.0.0.8"}, port), nullptr, monotonic_ms());
  auto all = checker->status();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(dp::to_string(all[0].ip), "127.0.0.6");
  EXPECT_FALSE(all[0].healthy) << "kept across the change";
  EXPECT_EQ(dp::to_string(all[1].ip), "127.0.0.8");
  EXPECT_TRUE(all[1].healthy) << "new: healthy until it fails";
  EXPECT_FALSE(all[1].probed);
  auto changes = checker->take_changes();
  ASSERT_EQ(changes.size(), 1u) << "127.0.0.7 went away while unhealthy: forgotten";
  EXPECT_EQ(changes[0].endpoint.ip, dp::IpAddr::v4(ip("127.0.0.7")));
  EXPECT_TRUE(changes[0].unhealthy.empty());
  // Without a health_check the service is not probed at all.
  Config none = config_with(check, {"127.0.0.6"}, port);
  none.services[0].health_check.reset();
  checker->sync(none, nullptr, monotonic_ms());
  EXPECT_EQ(checker->targets(), 0u);
}

TEST_F(HealthCheckerTest, ProbesAreSpreadOverTheIntervalAndBoundedPerTurn) {
  // 2,000 endpoints at 1 s: a refused port on loopback answers at once.
  std::vector<std::string> names;
  for (int i = 0; i < 2000; ++i) names.push_back("127.1." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250));
  std::vector<const char*> eps;
  for (const std::string& n : names) eps.push_back(n.c_str());
  HealthCheckConfig check = fast(HealthKind::kTcp);
  check.interval_ms = 1000;
  check.timeout_ms = 500;
  checker->sync(config_with(check, eps, free_port("127.0.0.1")), nullptr, monotonic_ms());
  ASSERT_EQ(checker->targets(), 2000u);
  // Probes started per 50 ms window over the first second: about 100 each
  // (2,000 / 20), never the 2,000 at once.
  std::vector<uint64_t> per_window;
  uint64_t last = 0;
  const uint64_t start = monotonic_ms();
  for (int w = 0; w < 20; ++w) {
    run_for(start + 50 * (w + 1) - std::min<uint64_t>(monotonic_ms(), start + 50 * (w + 1)));
    per_window.push_back(checker->counters().probes - last);
    last = checker->counters().probes;
  }
  EXPECT_GE(last, 1800u) << "nearly all probed once in the first interval";
  for (uint64_t n : per_window) EXPECT_LE(n, 250u) << "a window holds a fraction of them";
  EXPECT_EQ(*std::max_element(per_window.begin(), per_window.end()) > 0, true);
}

TEST_F(HealthCheckerTest, TcpCheckOfAnIpv6EndpointConnectsToTheLoopback) {
  const uint16_t port = free_port6();
  checker->sync(config_with(fast(HealthKind::kTcp), {"::1"}, port), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(2000, [&] { return !only().healthy; }));
  EXPECT_EQ(reason_text(only().last), "refused");
  EXPECT_EQ(only().ip, any_ip("::1"));
  auto changes = checker->take_changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].endpoint, (EndpointRef{"default", "web", any_ip("::1")}));

  const int lfd = bound_socket6(port, SOCK_STREAM);
  auto watch = loop->add(lfd, EPOLLIN, [&](uint32_t) {
    int c;
    while ((c = ::accept(lfd, nullptr, nullptr)) >= 0) ::close(c);
  });
  ASSERT_TRUE(watch);
  ASSERT_TRUE(run_until(2000, [&] { return only().healthy; }));
  loop->remove(*watch);
  ::close(lfd);
}

TEST_F(HealthCheckerTest, HttpCheckOfAnIpv6EndpointSendsABracketedHost) {
  Http6Server server(*loop);
  checker->sync(config_with(fast(HealthKind::kHttp), {"::1"}, server.port()), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(2000, [&] { return only().successes >= 2; }));
  EXPECT_EQ(only().last.detail, 200u);
  EXPECT_NE(server.last_request().find("\r\nHost: [::1]:" + std::to_string(server.port()) + "\r\n"),
            std::string::npos)
      << server.last_request();
}

TEST_F(HealthCheckerTest, DnsCheckOfAnIpv6EndpointAsksOverIpv6) {
  Config zone_config = config_with(fast(HealthKind::kTcp), {"172.17.0.10"}, 8080);
  Dns6Server server(*loop, dns::build_zone(zone_config, 1));
  HealthCheckConfig check = fast(HealthKind::kDns);
  check.query = "web.default.svc.cluster.local";
  check.query_type = 28;  // AAAA: the service is dual-stack
  checker->sync(config_with(check, {"::1"}, server.port(), dp::Proto::kUdp), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1000, [&] { return only().successes >= 2; }));
  EXPECT_TRUE(only().healthy);

  check.query = "nothing.default.svc.cluster.local";
  checker->sync(config_with(check, {"::1"}, server.port(), dp::Proto::kUdp), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1000, [&] { return !only().healthy; }));
  EXPECT_EQ(reason_text(only().last), "dns NXDOMAIN");
}

TEST_F(HealthCheckerTest, TargetsOfBothFamiliesAreKeptApart) {
  const uint16_t port = free_port("127.0.0.9");
  checker->sync(config_with(fast(HealthKind::kTcp), {"127.0.0.9", "::1"}, port), nullptr, monotonic_ms());
  auto v6 = checker->status("default", "web", any_ip("::1"));
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_EQ(v6[0].ip, any_ip("::1"));
  auto v4 = checker->status("default", "web", any_ip("127.0.0.9"));
  ASSERT_EQ(v4.size(), 1u);
  EXPECT_EQ(checker->status().size(), 2u);
}

// /metrics reads the targets a page at a time (prometheus_stream.hpp).
TEST_F(HealthCheckerTest, PagesOfTargetsAfterACursorAreEveryTargetOnceInKeyOrder) {
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i) names.push_back("127.2.0." + std::to_string(i + 1));
  names.push_back("::1");
  std::vector<const char*> eps;
  for (const std::string& n : names) eps.push_back(n.c_str());
  const uint16_t port = free_port("127.0.0.1");
  checker->sync(config_with(fast(HealthKind::kTcp), eps, port), nullptr, monotonic_ms());
  const std::vector<TargetStatus> all = checker->status();
  ASSERT_EQ(all.size(), 51u);
  std::vector<TargetStatus> paged;
  for (auto page = checker->status_after(nullptr, 7); !page.empty();
       page = checker->status_after(&paged.back(), 7)) {
    EXPECT_LE(page.size(), 7u);
    paged.insert(paged.end(), page.begin(), page.end());
  }
  ASSERT_EQ(paged.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(paged[i].ip, all[i].ip) << i;
  // A cursor whose target is gone still finds the next one.
  TargetStatus gone = all[20];
  std::erase_if(eps, [&gone](const char* e) { return any_ip(e) == gone.ip; });
  ASSERT_EQ(eps.size(), 50u);
  checker->sync(config_with(fast(HealthKind::kTcp), eps, port), nullptr, monotonic_ms());
  const auto next = checker->status_after(&gone, 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].ip, all[21].ip);
}

// A headless service without ports (its check names the port): DNS is all
// it has, so an unhealthy Pod must reach the Registry and leave the
// answers, as it does for a headless service with ports.
TEST_F(HealthCheckerTest, AnUnhealthyPodOfAPortlessHeadlessServiceLeavesItsDnsAnswers) {
  const uint16_t port = free_port("127.0.0.12");
  Listener alive(*loop, "127.0.0.12", port);  // 127.0.0.13 refuses
  HealthCheckConfig check = fast(HealthKind::kTcp);
  check.port = port;
  Config c;
  ServiceConfig s;
  s.ns = "default";
  s.name = "db";  // headless: no cluster_ip, no ports
  for (const char* a : {"127.0.0.12", "127.0.0.13"}) {
    EndpointConfig e;
    e.ip = any_ip(a);
    s.endpoints.push_back(e);
  }
  s.health_check = check;
  c.services.push_back(s);
  ASSERT_TRUE(c.services[0].headless());
  EXPECT_EQ(health_check_problem(c.services[0]), std::nullopt) << "allowed with a check port";
  Registry registry(c);
  registry.commit(registry.stage_current());

  checker->sync(registry.view(), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1500, [&] {
    auto all = checker->status();
    return all.size() == 2 && all[0].successes >= 2 && !all[1].healthy;
  }));
  const auto changes = checker->take_changes();
  ASSERT_EQ(changes.size(), 1u) << "the dead Pod is offered to the Registry";
  EXPECT_EQ(changes[0].endpoint, (EndpointRef{"default", "db", any_ip("127.0.0.13")}));
  EXPECT_EQ(changes[0].unhealthy, (std::vector<PortRef>{{port, dp::Proto::kTcp}}));
  EXPECT_TRUE(checker->status()[1].ports.empty()) << "it covers no service port";

  std::vector<std::pair<EndpointRef, std::vector<PortRef>>> learnt;
  for (const auto& ch : changes) learnt.emplace_back(ch.endpoint, ch.unhealthy);
  Registry::Proposal p = registry.stage_health(learnt);
  ASSERT_TRUE(p.changed);
  registry.commit(std::move(p));
  const ServiceConfig& view = registry.view().services[0];
  EXPECT_TRUE(view.endpoints[0].ready);
  EXPECT_FALSE(view.endpoints[1].ready) << "left out of DNS like a not-ready Pod";

  // Asked through podgate's own responder, checked by the DNS probe's parser.
  auto zone = dns::build_zone(registry.view(), 2);
  auto answer = [&](const char* expect) {
    HealthCheckConfig q;
    q.kind = HealthKind::kDns;
    q.query = "db.default.svc.cluster.local";
    q.expect_address = ip(expect);
    const ProbePlan plan = make_plan(q, ip("127.0.0.1"), 53);
    std::vector<uint8_t> query(plan.request.begin(), plan.request.end());
    query[1] = 9;  // id 9
    std::vector<uint8_t> out(dns::kMaxMessage);
    out.resize(dns::respond(query, *zone, dns::QueryContext{}, out));
    return check_dns_reply(out, 9, plan).outcome;
  };
  EXPECT_EQ(answer("127.0.0.12"), Outcome::kOk);
  EXPECT_EQ(answer("127.0.0.13"), Outcome::kDnsAnswer) << "the unhealthy Pod is left out";
}

// A DNS probe in flight when the check's timeout shrinks, answered after
// the new timeout but well within the one it was sent with: it ends
// uncounted (judged by the new timeout it would be a timeout, and with
// fall = 1 the endpoint would flap), and the next probe runs by the new
// check.
TEST_F(HealthCheckerTest, AProbeInFlightWhenTheCheckChangesIsNotCounted) {
  const uint16_t port = free_port("127.0.0.14", SOCK_DGRAM);
  const int fd = bound_socket("127.0.0.14", port, SOCK_DGRAM);
  auto zone = dns::build_zone(config_with(fast(HealthKind::kTcp), {"172.17.0.10"}, 8080), 1);
  struct Held {
    std::vector<uint8_t> query;
    sockaddr_in from{};
  };
  std::vector<Held> held;
  bool answer_at_once = false;
  auto reply = [&](const Held& h) {
    std::vector<uint8_t> out(1232);
    const size_t m = dns::respond(h.query, *zone, dns::QueryContext{}, out);
    if (m != 0) (void)::sendto(fd, out.data(), m, 0, reinterpret_cast<const sockaddr*>(&h.from), sizeof h.from);
  };
  auto watch = loop->add(fd, EPOLLIN, [&](uint32_t) {
    uint8_t q[512];
    Held h;
    socklen_t len = sizeof h.from;
    ssize_t n;
    while ((n = ::recvfrom(fd, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&h.from), &len)) > 0) {
      h.query.assign(q, q + n);
      if (answer_at_once) {
        reply(h);
      } else {
        held.push_back(h);
      }
      len = sizeof h.from;
    }
  });
  ASSERT_TRUE(watch);

  HealthCheckConfig check = fast(HealthKind::kDns);
  check.query = "web.default.svc.cluster.local";
  check.interval_ms = 1000;
  check.timeout_ms = 900;
  check.rise = 1;
  check.fall = 1;
  checker->sync(config_with(check, {"127.0.0.14"}, port, dp::Proto::kUdp), nullptr, monotonic_ms());
  ASSERT_TRUE(run_until(1500, [&] { return !held.empty(); }));
  ASSERT_EQ(checker->in_flight(), 1u);

  check.timeout_ms = 50;
  checker->sync(config_with(check, {"127.0.0.14"}, port, dp::Proto::kUdp), nullptr, monotonic_ms());
  run_for(150);  // past the new timeout, within the old one
  for (const Held& h : held) reply(h);
  run_for(100);
  EXPECT_EQ(checker->counters().results[static_cast<size_t>(Outcome::kTimeout)], 0u)
      << "an answer in time for the probe's own timeout is no timeout";
  EXPECT_TRUE(only().healthy);
  EXPECT_EQ(only().failures, 0u);
  EXPECT_TRUE(checker->take_changes().empty());

  answer_at_once = true;
  ASSERT_TRUE(run_until(2000, [&] { return only().probed; })) << "the next probe runs";
  EXPECT_EQ(reason_text(only().last), "ok");
  EXPECT_TRUE(only().healthy);
  loop->remove(*watch);
  ::close(fd);
}

}  // namespace
}  // namespace podgate::ctl::health
