// The health checker; see health_checker.hpp.
#include "control/health/health_checker.hpp"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "control/config/config_health.hpp"
#include "control/log.hpp"

namespace podgate::ctl::health {

struct HealthChecker::Target {
  uint64_t id = 0;
  Key key;
  ProbePlan plan;
  uint32_t interval_ms = 0;
  uint32_t timeout_ms = 0;
  uint32_t rise = 0;
  uint32_t fall = 0;
  HealthState state;
  bool probed = false;
  ProbeResult last;
  uint64_t last_probe_ms = 0;
  uint64_t changed_ms = 0;
  uint64_t due_ms = 0;
  // The probe in flight, if any.
  Probe probe;
  bool in_flight = false;
  uint64_t started_ms = 0;
  uint64_t deadline_ms = 0;
};

namespace {

// Microseconds a turn may spend on probes, checked every few operations.
class TurnBudget {
 public:
  explicit TurnBudget(uint32_t us) : end_(now_us() + us) {}
  bool spent() const noexcept { return now_us() >= end_; }

 private:
  static uint64_t now_us() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
  }
  uint64_t end_;
};

EndpointRef ref_of(const std::string& ns, const std::string& name, const dp::IpAddr& ip) {
  return EndpointRef{ns, name, ip};
}

// "172.17.0.5:8080", "[fd00::5]:8080".
std::string endpoint_text(const dp::IpAddr& ip, uint16_t port) {
  const std::string text = dp::to_string(ip);
  return (ip.is_v6() ? "[" + text + "]" : text) + ":" + std::to_string(port);
}

}  // namespace

HealthChecker::Options HealthChecker::Options::for_this_process() {
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &nofile);
    (void)getrlimit(RLIMIT_NOFILE, &nofile);
  }
  Options o;
  const uint64_t room = nofile.rlim_cur > 512 ? (nofile.rlim_cur - 256) / 2 : 128;
  o.max_in_flight = static_cast<uint32_t>(std::min<uint64_t>(16384, room));
  return o;
}

HealthChecker::HealthChecker(EventLoop& loop, Options options)
    : loop_(loop), options_(options), rng_(options.seed != 0 ? options.seed : monotonic_ms() * 2654435761u) {
  // The probes' own epoll set, watched by the loop as one descriptor: a
  // turn handles at most max_events_per_turn probe events, however many
  // are ready, so a DNS query or a control request waits for one bounded
  // slice of probe work, never for 10,000 of them.
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ >= 0) {
    auto watch = loop_.add(epoll_fd_, EPOLLIN, [this](uint32_t) { poll_probes(); });
    if (watch) {
      watch_ = *watch;
    } else {
      log_error("health: " + watch.error().message + "; no probes can run");
    }
  } else {
    log_error(std::string("health: cannot create an epoll set: ") + std::strerror(errno) +
              "; no probes can run");
  }
}

HealthChecker::~HealthChecker() {
  for (auto& [id, t] : targets_) end_probe(*t);
  if (watch_ != EventLoop::WatchId::kNone) loop_.remove(watch_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void HealthChecker::poll_probes() {
  epoll_event events[256];
  const int max = static_cast<int>(std::min<uint32_t>(options_.max_events_per_turn, 256));
  const int n = ::epoll_wait(epoll_fd_, events, max, 0);
  const TurnBudget budget(options_.max_turn_us);
  for (int i = 0; i < n; ++i) {
    // Level-triggered: an event left for later is reported again.
    if ((i & 7) == 7 && budget.spent()) break;
    on_event(events[i].data.u64, events[i].events);
  }
}

void HealthChecker::sync(const Config& config, const ServiceDiff* changes, uint64_t now_ms) {
  std::set<std::pair<std::string, std::string>> checked;
  auto take = [&](const ServiceConfig& s) {
    if (!s.health_check) return;
    checked.emplace(s.ns, s.name);
    resync(s, now_ms);
  };
  std::vector<std::pair<std::string, std::string>> gone;
  if (changes == nullptr) {
    for (const ServiceConfig& s : config.services) take(s);
    for (const auto& [name, sc] : services_) {
      if (checked.count(name) == 0) gone.push_back(name);
    }
  } else {
    // A changed service shows as removed and added: resynced, not dropped.
    for (size_t i : changes->added) take(config.services[i]);
    for (const auto& r : changes->removed) {
      if (checked.count({r->ns, r->name}) == 0) gone.emplace_back(r->ns, r->name);
    }
  }
  for (const auto& [ns, name] : gone) forget_service(ns, name);
}

void HealthChecker::resync(const ServiceConfig& svc, uint64_t now_ms) {
  ServiceCheck& sc = services_[{svc.ns, svc.name}];
  sc.check = *svc.health_check;
  sc.ports = svc.ports;
  const HealthCheckConfig& hc = sc.check;
  std::vector<uint16_t> probed;
  if (hc.port) {
    probed.push_back(*hc.port);
  } else {
    for (const ServicePortConfig& p : svc.ports) {
      if (p.protocol == hc.protocol()) probed.push_back(p.target_port);
    }
    std::sort(probed.begin(), probed.end());
    probed.erase(std::unique(probed.begin(), probed.end()), probed.end());
  }
  std::set<Key> wanted;
  for (const EndpointConfig& e : svc.endpoints) {
    const dp::IpAddr& ip = e.ip;
    for (uint16_t port : probed) {
      Key key{svc.ns, svc.name, ip, port};
      wanted.insert(key);
      auto it = by_key_.find(key);
      Target* t = nullptr;
      uint64_t id = 0;
      if (it == by_key_.end()) {
        id = next_id_++;
        auto fresh = std::make_unique<Target>();
        fresh->id = id;
        fresh->key = key;
        t = fresh.get();
        targets_.emplace(id, std::move(fresh));
        by_key_.emplace(key, id);
      } else {
        id = it->second;
        t = targets_.at(id).get();
      }
      ProbePlan plan = make_plan(hc, ip, port);
      if (t->in_flight && (t->timeout_ms != hc.timeout_ms || !(t->plan == plan))) {
        // The probe in flight was sent by the old plan: read by the new one
        // (a DNS reply as HTTP) or timed by the new timeout against the old
        // deadline, its result would be spurious.  It ends uncounted, and
        // the next probe, by the new plan, is due when it would have been.
        end_probe(*t);
        t->interval_ms = hc.interval_ms;
        schedule_next(*t, now_ms);
      }
      if (t->interval_ms != hc.interval_ms) {
        // New, or a new interval: the next probe at a random point of the
        // coming interval (a probe in flight reschedules when it ends).
        t->interval_ms = hc.interval_ms;
        if (!t->in_flight) {
          t->due_ms = now_ms + std::uniform_int_distribution<uint64_t>(0, hc.interval_ms - 1)(rng_);
          due_.emplace(t->due_ms, id);
        }
      }
      t->timeout_ms = hc.timeout_ms;
      t->rise = hc.rise;
      t->fall = hc.fall;
      t->plan = std::move(plan);
    }
    // The ports a result covers may have changed with the service's ports.
    dirty_.insert(EndpointRef{svc.ns, svc.name, e.ip});
  }
  // Targets of this service no longer wanted (endpoint or port gone).
  auto it = by_key_.lower_bound(Key{svc.ns, svc.name, dp::IpAddr{}, 0});
  while (it != by_key_.end() && it->first.ns == svc.ns && it->first.name == svc.name) {
    auto next = std::next(it);
    if (wanted.count(it->first) == 0) remove_target(it);
    it = next;
  }
}

void HealthChecker::forget_service(const std::string& ns, const std::string& name) {
  services_.erase({ns, name});
  auto it = by_key_.lower_bound(Key{ns, name, dp::IpAddr{}, 0});
  while (it != by_key_.end() && it->first.ns == ns && it->first.name == name) {
    auto next = std::next(it);
    remove_target(it);
    it = next;
  }
}

void HealthChecker::remove_target(std::map<Key, uint64_t>::iterator it) {
  const Key key = it->first;
  auto t = targets_.find(it->second);
  if (t != targets_.end()) {
    end_probe(*t->second);
    targets_.erase(t);
  }
  by_key_.erase(it);
  dirty_.insert(ref_of(key.ns, key.name, key.ip));
}

void HealthChecker::tick(uint64_t now_ms) {
  // Late probes first: their sockets make room for the due ones.  At most
  // max_events_per_turn of them a turn, like the events.
  const TurnBudget budget(options_.max_turn_us);
  uint32_t expired = 0;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms &&
         expired++ < options_.max_events_per_turn && !((expired & 7) == 0 && budget.spent())) {
    const uint64_t id = deadlines_.begin()->second;
    auto it = targets_.find(id);
    if (it == targets_.end() || !it->second->in_flight) {
      deadlines_.erase(deadlines_.begin());
      continue;
    }
    Target& late = *it->second;
    // An HTTP answer read in time stands; only the server's close was late.
    const std::optional<ProbeResult> settled = late.probe.settled();
    if (settled) {
      const linger reset{1, 0};
      (void)::setsockopt(late.probe.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
    finish(late, settled.value_or(ProbeResult{Outcome::kTimeout, 0}), now_ms);
  }
  uint32_t started = 0;
  while (!due_.empty() && due_.top().first <= now_ms) {
    if (started >= options_.max_starts_per_turn || deadlines_.size() >= options_.max_in_flight ||
        ((started & 3) == 3 && budget.spent())) {
      ++counters_.deferred_turns;
      break;
    }
    const auto [due, id] = due_.top();
    due_.pop();
    auto it = targets_.find(id);
    if (it == targets_.end() || it->second->in_flight || it->second->due_ms != due) continue;  // stale
    start_probe(*it->second, now_ms);
    ++started;
  }
}

std::optional<uint64_t> HealthChecker::next_due_ms() const noexcept {
  std::optional<uint64_t> next;
  if (!due_.empty()) next = due_.top().first;
  if (!deadlines_.empty() && (!next || deadlines_.begin()->first < *next)) {
    next = deadlines_.begin()->first;
  }
  return next;
}

void HealthChecker::start_probe(Target& t, uint64_t now_ms) {
  ++counters_.probes;
  const uint16_t query_id = next_query_id_++;
  Probe::Started s = t.probe.start(t.plan, query_id);
  t.started_ms = now_ms;
  if (s.result) {
    t.probe.close();
    return finish(t, *s.result, now_ms);
  }
  // Target ids are never reused: an event still queued for a probe that
  // ended is recognised (not in flight) and dropped.
  epoll_event ev{};
  ev.events = s.events;
  ev.data.u64 = t.id;
  if (epoll_fd_ < 0 || ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, s.fd, &ev) != 0) {
    const int err = epoll_fd_ < 0 ? EBADF : errno;
    t.probe.close();
    return finish(t, ProbeResult{Outcome::kError, static_cast<uint32_t>(err)}, now_ms);
  }
  t.in_flight = true;
  t.deadline_ms = now_ms + t.timeout_ms;
  deadlines_.emplace(t.deadline_ms, t.id);
}

void HealthChecker::on_event(uint64_t id, uint32_t events) {
  auto it = targets_.find(id);
  if (it == targets_.end() || !it->second->in_flight) return;
  Target& t = *it->second;
  const uint32_t before = t.probe.next_events();
  const bool was_settled = t.probe.settled().has_value();
  std::optional<ProbeResult> r = t.probe.on_ready(t.plan, events);
  const uint64_t now = loop_.now_ms();
  if (!was_settled && t.probe.settled() && timed_out(t.started_ms, now, t.timeout_ms)) {
    return finish(t, ProbeResult{Outcome::kTimeout, 0}, now);  // the status line came too late
  }
  if (r) {
    if (!t.probe.settled() && timed_out(t.started_ms, now, t.timeout_ms)) r = ProbeResult{Outcome::kTimeout, 0};
    return finish(t, *r, now);
  }
  if (t.probe.next_events() != before) {
    epoll_event ev{};
    ev.events = t.probe.next_events();
    ev.data.u64 = t.id;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, t.probe.fd(), &ev) != 0) {
      finish(t, ProbeResult{Outcome::kError, static_cast<uint32_t>(errno)}, now);
    }
  }
}

void HealthChecker::end_probe(Target& t) {
  if (!t.in_flight) return;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, t.probe.fd(), nullptr);  // before the socket closes
  t.probe.close();
  deadlines_.erase({t.deadline_ms, t.id});
  t.in_flight = false;
}

void HealthChecker::finish(Target& t, ProbeResult r, uint64_t now_ms) {
  end_probe(t);
  ++counters_.results[static_cast<size_t>(r.outcome)];
  t.probed = true;
  t.last = r;
  t.last_probe_ms = now_ms;
  if (t.state.record(r.ok(), t.rise, t.fall)) {
    t.changed_ms = now_ms;
    const bool healthy = t.state.healthy();
    ++(healthy ? counters_.to_healthy : counters_.to_unhealthy);
    dirty_.insert(ref_of(t.key.ns, t.key.name, t.key.ip));
    log_info("health: " + t.key.ns + "/" + t.key.name + " endpoint " +
             endpoint_text(t.key.ip, t.key.port) + " is " +
             (healthy ? "healthy" : "unhealthy") + " (" + reason_text(r) + "; " +
             std::to_string(healthy ? t.state.successes() : t.state.failures()) + " in a row)");
  }
  schedule_next(t, now_ms);
}

void HealthChecker::schedule_next(Target& t, uint64_t now_ms) {
  // An interval after the last due time, +-5%, so targets keep the phases
  // they were spread over; one that fell behind starts afresh from now.
  const int64_t spread = std::max<int64_t>(1, t.interval_ms / 20);
  const int64_t jitter = std::uniform_int_distribution<int64_t>(-spread, spread)(rng_);
  int64_t next = static_cast<int64_t>(t.due_ms) + t.interval_ms + jitter;
  if (next <= static_cast<int64_t>(now_ms)) {
    // Behind (the machine could not keep up): never probe more often than
    // the interval, spread again over the next one.
    next = static_cast<int64_t>(now_ms) + t.interval_ms / 2 +
           std::uniform_int_distribution<int64_t>(1, std::max<int64_t>(1, t.interval_ms / 2))(rng_);
  }
  t.due_ms = static_cast<uint64_t>(next);
  due_.emplace(t.due_ms, t.id);
}

std::vector<PortRef> HealthChecker::covered(const ServiceCheck& sc, uint16_t probed_port) const {
  std::vector<PortRef> out;
  for (const ServicePortConfig& p : sc.ports) {
    if (sc.check.port || (p.protocol == sc.check.protocol() && p.target_port == probed_port)) {
      out.push_back(PortRef{p.port, p.protocol});
    }
  }
  return out;
}

std::vector<PortRef> HealthChecker::unhealthy_ports(const EndpointRef& ref) const {
  std::vector<PortRef> out;
  auto sc = services_.find({ref.ns, ref.name});
  if (sc == services_.end()) return out;
  const dp::IpAddr& ip = ref.ip;
  for (auto it = by_key_.lower_bound(Key{ref.ns, ref.name, ip, 0});
       it != by_key_.end() && it->first.ns == ref.ns && it->first.name == ref.name && it->first.ip == ip;
       ++it) {
    const Target& t = *targets_.at(it->second);
    if (t.state.healthy()) continue;
    if (sc->second.ports.empty()) {
      // A service without ports (a headless one, which only DNS serves)
      // has no service port for a result to cover: the endpoint as a whole
      // is unhealthy, named by the port probed (the check's `port`, which
      // validation requires there).  apply_learnt() makes a headless
      // service's unhealthy endpoint not ready (fail open as configured)
      // whatever ports its entry names; no forwarding port matches it.
      out.push_back(PortRef{it->first.port, sc->second.check.protocol()});
      continue;
    }
    for (const PortRef& p : covered(sc->second, it->first.port)) out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<HealthChecker::Change> HealthChecker::take_changes() {
  std::vector<Change> out;
  taken_.clear();
  for (const EndpointRef& ref : dirty_) {
    std::vector<PortRef> now = unhealthy_ports(ref);
    auto it = published_.find(ref);
    const bool same = it == published_.end() ? now.empty() : it->second == now;
    if (same) continue;
    taken_.emplace_back(ref, it == published_.end() ? std::vector<PortRef>{} : it->second);
    if (now.empty()) {
      published_.erase(it);
    } else {
      published_[ref] = now;
    }
    out.push_back(Change{ref, std::move(now)});
  }
  dirty_.clear();
  return out;
}

void HealthChecker::retry_changes() {
  // The Registry still has what was published before the take: so does
  // published_ again, and the taken endpoints are compared afresh (a
  // recovery forgotten here would leave its endpoint out for good).
  for (auto& [ref, before] : taken_) {
    if (before.empty()) {
      published_.erase(ref);
    } else {
      published_[ref] = std::move(before);
    }
    dirty_.insert(ref);
  }
  taken_.clear();
}

TargetStatus HealthChecker::status_of(const Target& t) const {
  TargetStatus s;
  s.ns = t.key.ns;
  s.name = t.key.name;
  s.ip = t.key.ip;
  s.port = t.key.port;
  s.kind = t.plan.kind;
  s.healthy = t.state.healthy();
  s.probed = t.probed;
  s.last = t.last;
  s.successes = t.state.successes();
  s.failures = t.state.failures();
  s.last_probe_ms = t.last_probe_ms;
  s.changed_ms = t.changed_ms;
  if (auto sc = services_.find({t.key.ns, t.key.name}); sc != services_.end()) {
    s.ports = covered(sc->second, t.key.port);
  }
  return s;
}

std::vector<TargetStatus> HealthChecker::status(const std::string& ns, const std::string& name,
                                                std::optional<dp::IpAddr> ip) const {
  std::vector<TargetStatus> out;
  auto it = ns.empty() ? by_key_.begin() : by_key_.lower_bound(Key{ns, name, ip.value_or(dp::IpAddr{}), 0});
  for (; it != by_key_.end(); ++it) {
    if (!ns.empty() && (it->first.ns != ns || it->first.name != name)) break;
    if (ip && it->first.ip != *ip) break;
    out.push_back(status_of(*targets_.at(it->second)));
  }
  return out;
}

std::vector<TargetStatus> HealthChecker::status_after(const TargetStatus* after, size_t max) const {
  std::vector<TargetStatus> out;
  auto it = after == nullptr ? by_key_.begin()
                             : by_key_.upper_bound(Key{after->ns, after->name, after->ip, after->port});
  for (; it != by_key_.end() && out.size() < max; ++it) out.push_back(status_of(*targets_.at(it->second)));
  return out;
}

}  // namespace podgate::ctl::health
