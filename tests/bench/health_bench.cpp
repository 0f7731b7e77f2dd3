// Health checks at scale (issue 13): DNS and control-socket latency on the
// control thread while it probes N endpoints (default 10,000) every interval
// (default 1 s).  Not a test: a measurement, printed as a table.
//
// The control thread is modelled as the appliance runs it: one EventLoop
// serving podgate's own DNS server (UDP, a real zone) and control socket
// (a "ping" command), the HealthChecker's tick() after every turn.  The
// endpoints are loopback addresses 127.1.x.y: half point at a real TCP
// listener (a thread of its own that accepts and closes, as a Pod would),
// half at a port nobody listens on (refused at once), so both outcomes and
// their transitions are exercised.  A client thread asks DNS and the
// control socket in turn, a few hundred times a second, and records each
// round trip; the same is measured first without any health check, side
// by side in one run (the machine is shared and noisy: compare the two
// columns, not the absolute figures).
//
//   build/tests/health_bench [--endpoints N] [--interval-ms MS] [--seconds S]
//                            [--kind tcp|http]
//
// At the end of the probing phase, the scrape's podgate_endpoint_healthy
// (one sample per target): rendered whole from JSON as /metrics did
// before, and streamed from the checker in 16 KiB pieces as it does now
// (prometheus_stream.hpp); the two texts are compared.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "control/admin/control_socket.hpp"
#include "control/dns/dns.hpp"
#include "control/dns/server.hpp"
#include "control/admin/health_views.hpp"
#include "control/config/validate.hpp"
#include "control/health/health_checker.hpp"
#include "control/observe/prometheus_stream.hpp"

using namespace podgate;
using namespace podgate::ctl;
using health::HealthChecker;

namespace {

uint64_t now_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint16_t bound_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A Pod: accepts on every 127/8 address and closes (or answers HTTP 200).
struct PodThread {
  int fd = -1;
  uint16_t port = 0;
  std::atomic<bool> stop{false};
  std::thread thread;
  bool http = false;

  void start() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 4096);
    port = bound_port(fd);
    thread = std::thread([this] {
      const int ep = ::epoll_create1(0);
      epoll_event ev{EPOLLIN, {}};
      ev.data.fd = fd;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      static const char kReply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      while (!stop.load()) {
        epoll_event out[64];
        const int n = ::epoll_wait(ep, out, 64, 50);
        for (int i = 0; i < n; ++i) {
          if (out[i].data.fd == fd) {
            int c;
            while ((c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
              if (!http) {
                ::close(c);
                continue;
              }
              epoll_event cev{EPOLLIN, {}};
              cev.data.fd = c;
              ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
            }
          } else {
            char buf[2048];
            const int c = out[i].data.fd;
            if (::recv(c, buf, sizeof buf, 0) > 0) (void)::send(c, kReply, sizeof kReply - 1, MSG_NOSIGNAL);
            ::close(c);
          }
        }
      }
      ::close(ep);
    });
  }
  ~PodThread() {
    stop = true;
    if (thread.joinable()) thread.join();
    if (fd >= 0) ::close(fd);
  }
};

struct Latencies {
  std::vector<double> dns_ms, control_ms;
  uint64_t dns_lost = 0;
};

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Asks DNS (UDP) and the control socket in turn every `gap_us` until `stop`.
void client(uint16_t dns_port, const std::string& control_path, const std::atomic<bool>& stop,
            std::atomic<bool>& done, Latencies& out, uint64_t gap_us) {
  const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
  timeval tv{1, 0};
  ::setsockopt(udp, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(dns_port);
  to.sin_addr.s_addr = htonl(0x7f000001);
  ::connect(udp, reinterpret_cast<sockaddr*>(&to), sizeof to);
  const int ctl = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::snprintf(un.sun_path, sizeof un.sun_path, "%s", control_path.c_str());
  ::setsockopt(ctl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(ctl, reinterpret_cast<sockaddr*>(&un), sizeof un) != 0) std::perror("control connect");
  // web.default.svc.cluster.local A
  std::string q("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  for (const char* label : {"web", "default", "svc", "cluster", "local"}) {
    q += static_cast<char>(std::strlen(label));
    q += label;
  }
  q += std::string("\x00\x00\x01\x00\x01", 5);
  const std::string ping = "{\"command\":\"ping\"}\n";
  while (!stop.load()) {
    uint64_t t0 = now_us();
    ::send(udp, q.data(), q.size(), 0);
    char buf[1500];
    if (::recv(udp, buf, sizeof buf, 0) > 0) {
      out.dns_ms.push_back(static_cast<double>(now_us() - t0) / 1000.0);
    } else {
      ++out.dns_lost;
    }
    t0 = now_us();
    ::send(ctl, ping.data(), ping.size(), MSG_NOSIGNAL);
    std::string reply;
    while (reply.find('\n') == std::string::npos) {
      const ssize_t n = ::recv(ctl, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
    out.control_ms.push_back(static_cast<double>(now_us() - t0) / 1000.0);
    std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
  }
  ::close(udp);
  ::close(ctl);
  done = true;
}

// CPU time of the calling thread, in microseconds.
uint64_t thread_cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return static_cast<uint64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
         static_cast<uint64_t>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

struct Phase {
  Latencies lat;
  uint64_t probes = 0;
  uint64_t turns = 0;
  double max_turn_ms = 0;
  double busy_fraction = 0;  // of the wall time, in handlers + ticks
  uint64_t deferred = 0;
  uint64_t transitions = 0;
};

// The health part of a scrape, both ways.
struct MetricsPart {
  size_t bytes = 0;
  bool same = false;
  double whole_ms = 0;      // before: stats.health with its targets as JSON, rendered whole
  double stream_ms = 0;     // now: every piece
  double median_piece_ms = 0;
  double worst_piece_ms = 0;
  size_t pieces = 0;
  size_t largest_piece = 0;
};

MetricsPart measure_metrics(const HealthChecker& checker) {
  MetricsPart m;
  uint64_t t0 = now_us();
  nlohmann::json health = health_metrics_json(checker);
  nlohmann::json targets = nlohmann::json::array();
  for (const health::TargetStatus& t : checker.status()) {
    targets.push_back({{"service", t.ns + "/" + t.name},
                       {"endpoint", vip_port_text(t.ip, std::to_string(t.port))},
                       {"healthy", t.healthy}});
  }
  health["targets"] = std::move(targets);
  const std::string whole = render_prometheus({{"health", std::move(health)}}, nlohmann::json::object());
  m.whole_ms = static_cast<double>(now_us() - t0) / 1000.0;
  PrometheusParts parts;
  parts.head = [] { return std::string(); };
  parts.traffic.services = std::make_shared<const ServiceList>();
  parts.traffic.counted = [](const ServiceConfig&) { return false; };
  parts.dns = [] { return std::string(); };
  parts.health = [&checker](const health::TargetStatus* after, size_t max) {
    return checker.status_after(after, max);
  };
  parts.tail = [&checker] {
    return render_prometheus_tail({{"health", health_metrics_json(checker)}});
  };
  PrometheusStream stream(std::move(parts));
  std::string text;
  std::vector<double> piece_ms;
  t0 = now_us();
  std::string piece;
  for (bool more = true; more; ++m.pieces) {
    piece.clear();  // as MetricsServer's buffer, drained between pieces
    const uint64_t p0 = now_us();
    more = stream.next(piece, 16384);
    piece_ms.push_back(static_cast<double>(now_us() - p0) / 1000.0);
    m.largest_piece = std::max(m.largest_piece, piece.size());
    text += piece;
  }
  m.stream_ms = static_cast<double>(now_us() - t0) / 1000.0;
  std::sort(piece_ms.begin(), piece_ms.end());
  m.median_piece_ms = piece_ms[piece_ms.size() / 2];
  m.worst_piece_ms = piece_ms.back();
  m.bytes = whole.size();
  m.same = text == whole;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t endpoints = 10000, interval_ms = 1000, seconds = 10;
  HealthKind kind = HealthKind::kTcp;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--endpoints") endpoints = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    if (k == "--interval-ms") interval_ms = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    if (k == "--seconds") seconds = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    if (k == "--kind") kind = std::string(argv[i + 1]) == "http" ? HealthKind::kHttp : HealthKind::kTcp;
  }
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);

  auto created = EventLoop::create();
  if (!created) return 1;
  std::unique_ptr<EventLoop> loop = std::move(*created);
  PodThread pod;
  pod.http = kind == HealthKind::kHttp;
  pod.start();
  // A port nobody listens on: bound and closed.
  const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  ::bind(probe, reinterpret_cast<sockaddr*>(&any), sizeof any);
  const uint16_t refused_port = bound_port(probe);
  ::close(probe);

  DnsConfig dc;
  const int dprobe = ::socket(AF_INET, SOCK_DGRAM, 0);
  ::bind(dprobe, reinterpret_cast<sockaddr*>(&any), sizeof any);
  dc.listen = {DnsListen{dp::Ip4::from_host(0x7f000001), bound_port(dprobe)}};
  ::close(dprobe);
  auto opened = dns::DnsServer::open(*loop, dc);
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().message.c_str());
    return 1;
  }
  std::unique_ptr<dns::DnsServer> dns = std::move(*opened);
  const std::string control_path = "/tmp/health_bench." + std::to_string(getpid()) + ".sock";
  auto control = ControlSocket::open(*loop, control_path);
  if (!control) {
    std::fprintf(stderr, "%s\n", control.error().message.c_str());
    return 1;
  }
  (*control)->add_command("ping", [](const nlohmann::json&) -> Result<nlohmann::json> {
    return nlohmann::json{{"pong", true}};
  });

  // Two services of N/2 endpoints each: "up" probes the Pod, "down" a refused port.
  Config cfg;
  for (int s = 0; s < 2; ++s) {
    ServiceConfig svc;
    svc.ns = "default";
    svc.name = s == 0 ? "up" : "down";
    svc.cluster_ip = dp::IpAddr::v4(dp::Ip4::from_host(0x0a600014 + static_cast<uint32_t>(s)));
    const uint16_t port = s == 0 ? pod.port : refused_port;
    svc.ports = {ServicePortConfig{"http", 80, port, dp::Proto::kTcp}};
    HealthCheckConfig h;
    h.kind = kind;
    h.interval_ms = interval_ms;
    h.timeout_ms = std::min<uint32_t>(interval_ms, 500);
    svc.health_check = h;
    for (uint32_t i = 0; i < endpoints / 2; ++i) {
      EndpointConfig e;
      const uint32_t n = i + 1 + static_cast<uint32_t>(s) * 32768;
      e.ip = dp::IpAddr::v4(dp::Ip4::from_host(0x7f010000 + (n / 250) * 256 + 1 + n % 250));
      svc.endpoints.push_back(e);
    }
    cfg.services.push_back(svc);
  }
  // The zone DNS answers from (web.default.svc.cluster.local).
  Config zone_cfg;
  ServiceConfig web;
  web.ns = "default";
  web.name = "web";
  web.cluster_ip = dp::IpAddr::v4(dp::Ip4::from_host(0x0a600020));
  web.ports = {ServicePortConfig{"http", 80, 80, dp::Proto::kTcp}};
  zone_cfg.services.push_back(web);
  dns->set_zone(dns::build_zone(zone_cfg, 1));

  HealthChecker::Options opts;
  opts.max_in_flight = static_cast<uint32_t>(std::min<rlim_t>(16384, (nofile.rlim_cur - 256) / 2));
  HealthChecker checker(*loop, opts);

  MetricsPart metrics;
  auto run_phase = [&](bool probing) {
    Phase ph;
    Latencies lat;
    std::atomic<bool> stop{false}, done{false};
    if (probing) checker.sync(cfg, nullptr, monotonic_ms());
    const auto c0 = checker.counters();
    std::thread cl(client, dc.listen[0].port, control_path, std::cref(stop), std::ref(done),
                   std::ref(lat), 2000);
    const uint64_t start = now_us();
    const uint64_t cpu0 = thread_cpu_us();
    const uint64_t end = start + uint64_t{seconds} * 1000000;
    while (now_us() < end) {
      loop->run_once(1);
      if (!probing) {
        ++ph.turns;
        continue;
      }
      const uint64_t t1 = now_us();
      checker.tick(monotonic_ms());
      (void)checker.take_changes();  // what the appliance would publish
      ++ph.turns;
      ph.max_turn_ms = std::max(ph.max_turn_ms, static_cast<double>(now_us() - t1) / 1000.0);
    }
    ph.busy_fraction = static_cast<double>(thread_cpu_us() - cpu0) / static_cast<double>(end - start);
    stop = true;
    // Serve the client's last round trip, then stop probing.
    while (!done.load()) {
      loop->run_once(1);
      if (probing) checker.tick(monotonic_ms());
    }
    cl.join();
    if (probing) metrics = measure_metrics(checker);
    if (probing) checker.sync(Config{}, nullptr, monotonic_ms());
    const auto& c = checker.counters();
    ph.lat = std::move(lat);
    ph.probes = c.probes - c0.probes;
    ph.deferred = c.deferred_turns - c0.deferred_turns;
    ph.transitions = (c.to_healthy + c.to_unhealthy) - (c0.to_healthy + c0.to_unhealthy);
    return ph;
  };

  std::printf("health_bench: %u endpoints (%s checks, half refused), interval %u ms, %u s per phase\n",
              endpoints, kind == HealthKind::kHttp ? "http" : "tcp", interval_ms, seconds);
  const Phase idle = run_phase(false);
  const Phase busy = run_phase(true);
  auto row = [](const char* what, const std::vector<double>& a, const std::vector<double>& b) {
    std::printf("%-22s %9.3f %9.3f %9.3f   %9.3f %9.3f %9.3f\n", what, pct(a, 0.5), pct(a, 0.99),
                pct(a, 1.0), pct(b, 0.5), pct(b, 0.99), pct(b, 1.0));
  };
  std::printf("\n%-22s %29s   %29s\n", "", "no health checks", "probing");
  std::printf("%-22s %9s %9s %9s   %9s %9s %9s\n", "latency (ms)", "p50", "p99", "max", "p50", "p99", "max");
  row("DNS (UDP)", idle.lat.dns_ms, busy.lat.dns_ms);
  row("control socket", idle.lat.control_ms, busy.lat.control_ms);
  std::printf("\n%-40s %12s %12s\n", "", "idle", "probing");
  std::printf("%-40s %12zu %12zu\n", "DNS answers", idle.lat.dns_ms.size(), busy.lat.dns_ms.size());
  std::printf("%-40s %12lu %12lu\n", "DNS lost (1 s timeout)", static_cast<unsigned long>(idle.lat.dns_lost),
              static_cast<unsigned long>(busy.lat.dns_lost));
  std::printf("%-40s %12.0f %12.0f\n", "probes per second", static_cast<double>(idle.probes) / seconds,
              static_cast<double>(busy.probes) / seconds);
  std::printf("%-40s %12lu %12lu\n", "loop turns", static_cast<unsigned long>(idle.turns),
              static_cast<unsigned long>(busy.turns));
  std::printf("%-40s %12.3f %12.3f\n", "longest tick (ms)", idle.max_turn_ms, busy.max_turn_ms);
  std::printf("%-40s %11.1f%% %11.1f%%\n", "control thread CPU (of wall time)", idle.busy_fraction * 100,
              busy.busy_fraction * 100);
  std::printf("%-40s %12lu %12lu\n", "turns that deferred due probes", static_cast<unsigned long>(idle.deferred),
              static_cast<unsigned long>(busy.deferred));
  std::printf("%-40s %12lu %12lu\n", "transitions", static_cast<unsigned long>(idle.transitions),
              static_cast<unsigned long>(busy.transitions));
  std::printf("\n/metrics, podgate_endpoint_healthy and the health counters: %zu bytes, %s\n",
              metrics.bytes, metrics.same ? "the same text both ways" : "THE TEXTS DIFFER");
  std::printf("%-40s %9.1f ms in one piece\n", "whole from JSON (before)", metrics.whole_ms);
  std::printf("%-40s %9.1f ms in %zu pieces, largest %zu bytes, p50 %.2f ms, slowest %.2f ms\n",
              "streamed from the checker (now)", metrics.stream_ms, metrics.pieces,
              metrics.largest_piece, metrics.median_piece_ms, metrics.worst_piece_ms);
  ::unlink(control_path.c_str());
  return metrics.same ? 0 : 1;
}
