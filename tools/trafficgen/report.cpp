#include "tools/trafficgen/report.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

namespace podgate::gen {
namespace {

LatencySummary summarise_latency(const LatencyHistogram& h, uint64_t tsc_hz) {
  // Whole nanoseconds: the histogram keeps ~3% precision anyway.
  const double ns = 1e9 / static_cast<double>(tsc_hz);
  auto to_ns = [ns](uint64_t cycles) { return std::round(static_cast<double>(cycles) * ns); };
  LatencySummary s;
  s.count = h.count();
  s.p50_ns = to_ns(h.percentile(0.50));
  s.p90_ns = to_ns(h.percentile(0.90));
  s.p99_ns = to_ns(h.percentile(0.99));
  s.p999_ns = to_ns(h.percentile(0.999));
  s.max_ns = to_ns(h.max());
  return s;
}

nlohmann::json latency_json(const LatencySummary& s) {
  return {{"count", s.count}, {"p50", s.p50_ns},   {"p90", s.p90_ns},
          {"p99", s.p99_ns},  {"p99_9", s.p999_ns}, {"max", s.max_ns}};
}

void print_latency(const char* what, const LatencySummary& s) {
  if (s.count == 0) return;
  std::printf("  %-22s p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f us  (%llu samples)\n",
              what, s.p50_ns / 1e3, s.p90_ns / 1e3, s.p99_ns / 1e3, s.p999_ns / 1e3,
              s.max_ns / 1e3, static_cast<unsigned long long>(s.count));
}

// "ARP  5 answered, 0 ignored"; answers the port refused, when there are
// any, in brackets after the answered count.
void print_neighbor(const char* what, uint64_t answered, uint64_t tx_failed, uint64_t ignored) {
  std::printf("  %-22s %llu answered", what, static_cast<unsigned long long>(answered));
  if (tx_failed != 0) {
    std::printf(" (%llu not taken by the port)", static_cast<unsigned long long>(tx_failed));
  }
  std::printf(", %llu ignored\n", static_cast<unsigned long long>(ignored));
}

}  // namespace

uint64_t Results::violations() const noexcept {
  uint64_t n = 0;
  for (uint64_t v : total.violations) n += v;
  return n;
}

uint64_t Results::lost() const noexcept {
  return total.tx_packets > total.rx_pod_packets ? total.tx_packets - total.rx_pod_packets : 0;
}

double Results::loss_pct() const noexcept {
  return total.tx_packets == 0 ? 0.0
                               : 100.0 * static_cast<double>(lost()) /
                                     static_cast<double>(total.tx_packets);
}

uint64_t Results::replies_lost() const noexcept {
  return total.replies_sent > total.rx_replies ? total.replies_sent - total.rx_replies : 0;
}

double Results::tx_pps() const noexcept {
  return tx_seconds > 0 ? static_cast<double>(total.tx_packets) / tx_seconds : 0;
}

double Results::rx_pps() const noexcept {
  return tx_seconds > 0 ? static_cast<double>(total.rx_pod_packets) / tx_seconds : 0;
}

Results summarise(const Counters& total, const FlowSet& flows, double tx_seconds,
                  uint64_t tsc_hz) {
  Results r;
  r.total.merge(total);
  r.tx_seconds = tx_seconds;
  r.flows = flows.size();
  r.endpoint_flows.assign(flows.endpoint_count(), 0);
  for (uint32_t id = 0; id < flows.size(); ++id) {
    const uint32_t ep = flows.pinned(id);
    if (ep == kNoEndpoint) continue;
    ++r.flows_seen;
    ++r.endpoint_flows[ep - 1];
  }
  r.one_way = summarise_latency(total.one_way, tsc_hz);
  r.round_trip = summarise_latency(total.round_trip, tsc_hz);
  return r;
}

int exit_code(const Options& o, const Results& r) {
  if (r.violations() != 0) return 1;
  if (o.max_loss_pct && r.loss_pct() > *o.max_loss_pct) return 1;
  return 0;
}

void print_summary(const Options& o, const FlowSet& flows, const Results& r) {
  const Counters& c = r.total;
  std::printf("podgate-gen: %u %s flows to %zu service port(s), %u-byte frames, %.2f s of sending\n",
              r.flows, dp::family_name(o.family).data(), flows.services().size(), o.frame_size,
              r.tx_seconds);
  std::printf("  sent to VIPs           %llu packets (%llu SYN), %.0f pps\n",
              static_cast<unsigned long long>(c.tx_packets),
              static_cast<unsigned long long>(c.tx_syn), r.tx_pps());
  std::printf("  received at the Pods   %llu packets, %.0f pps\n",
              static_cast<unsigned long long>(c.rx_pod_packets), r.rx_pps());
  std::printf("  loss                   %llu packets (%.4f%%)\n",
              static_cast<unsigned long long>(r.lost()), r.loss_pct());
  if (o.reply) {
    std::printf("  replies                %llu sent by the Pods, %llu received (%llu lost); "
                "%llu more not taken by the pod port\n",
                static_cast<unsigned long long>(c.replies_sent),
                static_cast<unsigned long long>(c.rx_replies),
                static_cast<unsigned long long>(r.replies_lost()),
                static_cast<unsigned long long>(c.replies_tx_failed));
  }
  std::printf("  flows                  %u of %u reached a Pod\n", r.flows_seen, r.flows);
  for (uint16_t s = 0; s < flows.services().size(); ++s) {
    const Service& svc = flows.services()[s];
    std::printf("  %s\n", to_string(svc).c_str());
    for (uint32_t e = 0; e < svc.endpoints.size(); ++e) {
      const uint32_t g = flows.first_endpoint(s) + e;
      std::printf("    %-22s %u flows, %llu packets\n", to_string(svc.endpoints[e]).c_str(),
                  r.endpoint_flows[g], static_cast<unsigned long long>(c.endpoint_packets[g]));
    }
  }
  std::printf("  latency\n");
  print_latency("client -> Pod", r.one_way);
  print_latency("round trip", r.round_trip);
  print_neighbor("ARP", c.arp_answered, c.arp_tx_failed, c.arp_ignored);
  if (o.family == dp::Family::kIpv6) {
    print_neighbor("NDP", c.ndp_answered, c.ndp_tx_failed, c.ndp_ignored);
  }
  std::printf("  violations             %llu\n", static_cast<unsigned long long>(r.violations()));
  for (size_t i = 0; i < kViolationCount; ++i) {
    if (c.violations[i] == 0) continue;
    const auto v = static_cast<Violation>(i);
    std::printf("    %-24s %llu  (%.*s), first: %s\n", violation_name(v).data(),
                static_cast<unsigned long long>(c.violations[i]),
                static_cast<int>(violation_help(v).size()), violation_help(v).data(),
                c.first_example[i].data());
  }
  const int code = exit_code(o, r);
  std::printf("result: %s\n", code == 0                ? "PASS"
                              : r.violations() != 0 ? "FAIL (violations)"
                                                      : "FAIL (loss above --max-loss)");
}

std::string write_json(const std::string& path, const Options& o, const FlowSet& flows,
                       const Results& r) {
  const Counters& c = r.total;
  nlohmann::json j;
  j["ok"] = exit_code(o, r) == 0;
  j["config"] = {{"flows", r.flows},     {"frame_size", o.frame_size}, {"rate_pps", o.rate_pps},
                 {"reply", o.reply},     {"duration_s", o.duration_s}, {"count", o.count},
                 {"drain_ms", o.drain_ms}, {"new_flows", o.new_flows},
                 {"no_check", o.no_check}, {"family", std::string(dp::family_name(o.family))}};
  j["tx"] = {{"packets", c.tx_packets}, {"bytes", c.tx_bytes}, {"syn", c.tx_syn},
             {"seconds", r.tx_seconds}, {"pps", r.tx_pps()}};
  j["rx_pods"] = {{"packets", c.rx_pod_packets}, {"bytes", c.rx_pod_bytes}, {"pps", r.rx_pps()}};
  j["loss"] = {{"packets", r.lost()}, {"percent", r.loss_pct()}};
  j["replies"] = {{"enabled", o.reply},          {"sent", c.replies_sent},
                  {"received", c.rx_replies},    {"lost", r.replies_lost()},
                  {"tx_failed", c.replies_tx_failed}};
  j["flows"] = {{"total", r.flows}, {"seen", r.flows_seen}};
  nlohmann::json violations = {{"total", r.violations()}};
  nlohmann::json examples = nlohmann::json::object();
  for (size_t i = 0; i < kViolationCount; ++i) {
    const std::string name(violation_name(static_cast<Violation>(i)));
    violations[name] = c.violations[i];
    if (c.violations[i] != 0) examples[name] = c.first_example[i].data();
  }
  j["violations"] = violations;
  j["violation_examples"] = examples;
  j["latency_ns"] = {{"client_to_pod", latency_json(r.one_way)},
                     {"round_trip", latency_json(r.round_trip)}};
  j["arp"] = {{"answered", c.arp_answered}, {"tx_failed", c.arp_tx_failed},
              {"ignored", c.arp_ignored}};
  j["ndp"] = {{"answered", c.ndp_answered}, {"tx_failed", c.ndp_tx_failed},
              {"ignored", c.ndp_ignored}};
  nlohmann::json services = nlohmann::json::array();
  for (uint16_t s = 0; s < flows.services().size(); ++s) {
    const Service& svc = flows.services()[s];
    nlohmann::json eps = nlohmann::json::array();
    for (uint32_t e = 0; e < svc.endpoints.size(); ++e) {
      const uint32_t g = flows.first_endpoint(s) + e;
      eps.push_back({{"endpoint", to_string(svc.endpoints[e])},
                     {"flows", r.endpoint_flows[g]},
                     {"packets", c.endpoint_packets[g]}});
    }
    services.push_back({{"service", to_string(svc)}, {"endpoints", eps}});
  }
  j["services"] = services;
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  out.close();
  if (!out) return "cannot write " + path;
  return "";
}

std::string append_csv(const std::string& path, const Options& o, const Results& r) {
  struct stat st{};
  const bool fresh = stat(path.c_str(), &st) != 0 || st.st_size == 0;
  std::ofstream out(path, std::ios::app);
  out << std::fixed << std::setprecision(3);
  const Counters& c = r.total;
  if (fresh) {
    out << "flows,frame_size,rate_pps,reply,tx_seconds,tx_packets,tx_pps,rx_pod_packets,rx_pps,"
           "lost,loss_pct,replies_sent,replies_received,violations,"
           "lat_p50_ns,lat_p90_ns,lat_p99_ns,lat_p999_ns,lat_max_ns,"
           "rtt_p50_ns,rtt_p99_ns,ok\n";
  }
  out << r.flows << ',' << o.frame_size << ',' << o.rate_pps << ',' << (o.reply ? 1 : 0) << ','
      << r.tx_seconds << ',' << c.tx_packets << ',' << r.tx_pps() << ',' << c.rx_pod_packets << ','
      << r.rx_pps() << ',' << r.lost() << ',' << r.loss_pct() << ',' << c.replies_sent << ','
      << c.rx_replies << ',' << r.violations() << ',' << r.one_way.p50_ns << ','
      << r.one_way.p90_ns << ',' << r.one_way.p99_ns << ',' << r.one_way.p999_ns << ','
      << r.one_way.max_ns << ',' << r.round_trip.p50_ns << ',' << r.round_trip.p99_ns << ','
      << (exit_code(o, r) == 0 ? 1 : 0) << '\n';
  out.close();
  if (!out) return "cannot write " + path;
  return "";
}

}  // namespace podgate::gen
