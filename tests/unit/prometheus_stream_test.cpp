// PrometheusStream: /metrics a piece at a time is the text render_prometheus
// makes of the `stats` reply of the same state, for any piece size, with
// each family's HELP/TYPE once, before its samples, and its samples one
// group; the health-checked targets too, read a page at a time.
#include "control/observe/prometheus_stream.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "control/config/validate.hpp"
#include "dataplane/net.hpp"

namespace podgate::ctl {
namespace {

using nlohmann::json;

dp::IpAddr ip(const char* text) { return *dp::parse_ip(text); }

ServiceConfig service(std::string ns, std::string name, std::optional<dp::IpAddr> vip,
                      std::vector<ServicePortConfig> ports, std::vector<EndpointConfig> endpoints) {
  ServiceConfig s;
  s.ns = std::move(ns);
  s.name = std::move(name);
  s.cluster_ip = vip;
  s.ports = std::move(ports);
  s.endpoints = std::move(endpoints);
  return s;
}

EndpointConfig endpoint(const char* address, std::string pod) {
  EndpointConfig e;
  e.ip = ip(address);
  e.pod = std::move(pod);
  return e;
}

// Figures that differ per service port and endpoint, moved on by `epoch`.
TrafficTotals figures(const std::string& key, uint64_t epoch) {
  const uint64_t h = std::hash<std::string>{}(key) % 100000;
  return TrafficTotals{h + epoch, 100 * h + epoch, h / 2, 50 * h, h % 77 + 3, h % 77};
}

std::string port_key(const ServiceConfig& s, const ServicePortConfig& p) {
  return s.ns + "/" + s.name + ":" + std::to_string(p.port);
}

health::TargetStatus target(std::string ns, std::string name, const char* address, uint16_t port,
                            bool healthy) {
  health::TargetStatus t;
  t.ns = std::move(ns);
  t.name = std::move(name);
  t.ip = ip(address);
  t.port = port;
  t.healthy = healthy;
  return t;
}

auto target_key(const health::TargetStatus& t) { return std::tie(t.ns, t.name, t.ip, t.port); }

// `n` checked targets of services chk/svc-*, 10 endpoints each, every
// seventh unhealthy, every fifth service's endpoints IPv6.
std::vector<health::TargetStatus> many_targets(size_t n) {
  std::vector<health::TargetStatus> out;
  for (size_t i = 0; i < n; ++i) {
    const size_t svc = i / 10;
    const std::string host = std::to_string(i % 10 + 1);
    const std::string address = svc % 5 == 4 ? "fd00:7::" + host
                                             : "10.3." + std::to_string(svc % 250) + "." + host;
    out.push_back(target("chk", "svc-" + std::to_string(svc), address.c_str(), 8080, i % 7 != 3));
  }
  return out;
}

// The lines of `text` that are podgate_endpoint_healthy samples.
std::vector<std::string> healthy_samples(const std::string& text) {
  std::vector<std::string> out;
  for (size_t pos = text.find("\npodgate_endpoint_healthy{"); pos != std::string::npos;
       pos = text.find("\npodgate_endpoint_healthy{", pos + 1)) {
    out.push_back(text.substr(pos + 1, text.find('\n', pos + 1) - pos - 1));
  }
  return out;
}

class PrometheusStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::vector<ServicePortConfig> web_ports = {{"http", 80, 8080, dp::Proto::kTcp},
                                                      {"dns", 53, 5353, dp::Proto::kUdp}};
    ServiceList list;
    // web's one IPv6 endpoint is terminating: none of its family is
    // ready, so it takes new flows (state "fallback").
    EndpointConfig terminating = endpoint("fd00::5", "web-v6");
    terminating.ready = false;
    terminating.terminating = true;
    ServiceConfig web = service("default", "web", ip("10.96.0.10"), web_ports,
                                {endpoint("10.1.0.1", "web-0"), endpoint("10.1.0.2", "web-1"), terminating});
    web.secondary_cluster_ip = ip("fd00:96::10");
    list.push_back(web);
    list.push_back(service("default", "headless", std::nullopt, web_ports,
                           {endpoint("10.1.0.9", "db-0")}));
    list.push_back(service("default", "empty", ip("10.96.0.11"), {{"", 443, 8443, dp::Proto::kTcp}}, {}));
    list.push_back(service("odd", "quo\"te", ip("10.96.0.12"), {{"", 81, 81, dp::Proto::kTcp}},
                           {endpoint("10.1.0.3", "pod\\with\nodd\"chars")}));
    for (int i = 0; i < 40; ++i) {
      std::vector<EndpointConfig> eps;
      for (int j = 0; j < 10; ++j) {
        eps.push_back(endpoint(("10.2." + std::to_string(i) + "." + std::to_string(j + 1)).c_str(),
                               "big-" + std::to_string(i) + "-" + std::to_string(j)));
      }
      eps[1].ready = false;  // out of rotation: draining
      eps[2].ready = eps[2].serving = false;  // not ready
      list.push_back(service("big", "svc-" + std::to_string(i),
                             ip(("10.97.0." + std::to_string(i + 1)).c_str()), web_ports, eps));
    }
    services_ = std::make_shared<const ServiceList>(std::move(list));
    targets_ = many_targets(600);
    targets_.push_back(target("default", "web", "10.1.0.1", 8080, true));
    targets_.push_back(target("default", "web", "fd00::5", 8080, false));
    targets_.push_back(target("odd", "quo\"te", "10.1.0.3", 81, false));
    sort_targets();
    stats_ = {{"workers", {{{"worker", 0}, {"counters", {{"rx_packets", 5}}}, {"drops", {{"no_service", 1}}}}}},
              {"dns", {{"queries", {{"udp", 7}}}, {"truncated", 1}}},
              {"health", {{"probes", 900}, {"results", {{"ok", 880}, {"timeout", 20}}},
                          {"transitions", {{"unhealthy", 4}, {"healthy", 1}}},
                          {"deferred_turns", 0}, {"in_flight", 12}}},
              {"snapshot", {{"generation", 3}}},
              {"stats_slots", {{"in_use", 880}, {"quarantined", 6}, {"exhausted", 1}}},
              {"kernel_twins", {{{"port", "uplink"}, {"iface", "pg-kup"}, {"to_kernel", 12}}}},
              {"services", json::array()}};
    status_ = {{"podgate_version", "1.0"}, {"uptime_seconds", 12}, {"services", 44}};
  }

  ServiceTraffic traffic() const {
    ServiceTraffic t;
    t.services = services_;
    t.counted = [](const ServiceConfig& s) { return s.cluster_ip.has_value(); };
    const uint64_t* epoch = &epoch_;
    t.port = [epoch](const ServiceConfig& s, const ServicePortConfig& p) {
      return figures(port_key(s, p), *epoch);
    };
    t.endpoint = [epoch](const ServiceConfig& s, const ServicePortConfig& p, const EndpointConfig& e) {
      return figures(port_key(s, p) + "/" + dp::to_string(e.ip), *epoch);
    };
    return t;
  }

  static json traffic_json(const TrafficTotals& t) {
    return {{"packets_in", t.packets_in},       {"bytes_in", t.bytes_in},
            {"packets_out", t.packets_out},     {"bytes_out", t.bytes_out},
            {"flows_created", t.flows_created}, {"flows_active", t.flows_active()}};
  }

  // The `stats` reply's "services" of the same state, as the control
  // socket writes it (control_commands.cpp services_traffic()).
  json stats_with_services() const {
    const ServiceTraffic t = traffic();
    json services = json::array();
    for (const ServiceConfig& s : *services_) {
      if (!t.counted(s)) continue;
      for (const ServicePortConfig& p : s.ports) {
        json j = {{"name", s.ns + "/" + s.name}, {"vip", dp::to_string(*s.cluster_ip)},
                  {"port", p.port}, {"protocol", std::string(dp::proto_name(p.protocol))}};
        j.update(traffic_json(t.port(s, p)));
        j["endpoints"] = json::array();
        for (const EndpointConfig& e : s.endpoints) {
          json ej = {{"ip", dp::to_string(e.ip)}, {"target_port", p.target_port}, {"pod", e.pod},
                     {"state", endpoint_state(e, new_flow_rule(s))}};
          ej.update(traffic_json(t.endpoint(s, p, e)));
          j["endpoints"].push_back(std::move(ej));
        }
        services.push_back(std::move(j));
      }
    }
    json st = stats_;
    st["services"] = std::move(services);
    // And stats.health's targets, as health_metrics_json wrote them whole
    // before /metrics read them from the checker.
    json targets = json::array();
    for (const health::TargetStatus& t : targets_) {
      targets.push_back({{"service", t.ns + "/" + t.name},
                         {"endpoint", vip_port_text(t.ip, std::to_string(t.port))},
                         {"healthy", t.healthy}});
    }
    st["health"]["targets"] = std::move(targets);
    return st;
  }

  void sort_targets() {
    std::sort(targets_.begin(), targets_.end(),
              [](const auto& a, const auto& b) { return target_key(a) < target_key(b); });
  }

  // HealthChecker::status_after() over targets_.
  std::vector<health::TargetStatus> targets_after(const health::TargetStatus* after, size_t max) const {
    auto it = after == nullptr
                  ? targets_.begin()
                  : std::upper_bound(targets_.begin(), targets_.end(), *after,
                                     [](const auto& a, const auto& b) { return target_key(a) < target_key(b); });
    std::vector<health::TargetStatus> out;
    for (; it != targets_.end() && out.size() < max; ++it) out.push_back(*it);
    ++health_pages_;
    return out;
  }

  PrometheusStream stream() const {
    PrometheusParts parts;
    parts.head = [this] { return render_prometheus_head(stats_, status_); };
    parts.traffic = traffic();
    parts.dns = [this] { return render_prometheus_dns(stats_); };
    parts.health = [this](const health::TargetStatus* after, size_t max) {
      return targets_after(after, max);
    };
    parts.tail = [this] { return render_prometheus_tail(stats_); };
    return PrometheusStream(std::move(parts));
  }

  std::shared_ptr<const ServiceList> services_;
  std::vector<health::TargetStatus> targets_;  // in the checker's key order
  mutable size_t health_pages_ = 0;
  json stats_;
  json status_;
  uint64_t epoch_ = 0;
};

TEST_F(PrometheusStreamTest, PiecesTogetherAreTheWholeRenderingOfTheSameState) {
  const std::string whole = render_prometheus(stats_with_services(), status_);
  ASSERT_NE(whole.find("podgate_endpoint_flows_active{service=\"big/svc-39\""), std::string::npos);
  ASSERT_NE(whole.find("podgate_endpoint_healthy{service=\"chk/svc-59\",endpoint=\"[fd00:7::8]:8080\"} 1\n"),
            std::string::npos);
  ASSERT_NE(whole.find("podgate_endpoint_healthy{service=\"odd/quo\\\"te\",endpoint=\"10.1.0.3:81\"} 0\n"),
            std::string::npos);
  for (size_t budget : {size_t{1}, size_t{100}, size_t{4096}, size_t{16384}, size_t{1} << 30}) {
    PrometheusStream s = stream();
    std::string text;
    size_t pieces = 0;
    for (bool more = true; more; ++pieces) more = s.next(text, budget);
    EXPECT_EQ(text, whole) << "budget " << budget;
    EXPECT_TRUE(s.done());
    if (budget <= 4096) {
      EXPECT_GT(pieces, 10u) << budget;
    }
  }
}

TEST_F(PrometheusStreamTest, EachServicePortCountsItsEndpointsByStateZerosIncluded) {
  const std::string text = stream().rest();
  for (const char* sample : {
           "podgate_service_endpoints{service=\"default/web\",port=\"80\",protocol=\"TCP\",state=\"ready\"} 2\n",
           "podgate_service_endpoints{service=\"default/web\",port=\"80\",protocol=\"TCP\",state=\"fallback\"} 1\n",
           "podgate_service_endpoints{service=\"default/web\",port=\"53\",protocol=\"UDP\",state=\"fallback\"} 1\n",
           "podgate_service_endpoints{service=\"default/web\",port=\"80\",protocol=\"TCP\",state=\"draining\"} 0\n",
           "podgate_service_endpoints{service=\"big/svc-7\",port=\"80\",protocol=\"TCP\",state=\"ready\"} 8\n",
           "podgate_service_endpoints{service=\"big/svc-7\",port=\"80\",protocol=\"TCP\",state=\"draining\"} 1\n",
           "podgate_service_endpoints{service=\"big/svc-7\",port=\"80\",protocol=\"TCP\",state=\"not_ready\"} 1\n",
           "podgate_service_endpoints{service=\"default/empty\",port=\"443\",protocol=\"TCP\",state=\"ready\"} 0\n"}) {
    EXPECT_NE(text.find(sample), std::string::npos) << sample;
  }
  EXPECT_EQ(text.find("podgate_service_endpoints{service=\"default/headless\""), std::string::npos)
      << "a headless service forwards nothing, as in the traffic families";
}

TEST_F(PrometheusStreamTest, EachFamilyHasOneHelpAndTypeBeforeItsSamplesInOneGroup) {
  const std::string text = stream().rest();
  std::map<std::string, int> helps, types;
  std::set<std::string> finished;  // families whose group ended
  std::set<std::string> sampled;   // families with a sample so far
  std::string current;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    ASSERT_NE(nl, std::string::npos);
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    std::string family;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      family = line.substr(7, line.find(' ', 7) - 7);
      ++(line[2] == 'H' ? helps : types)[family];
      EXPECT_EQ(sampled.count(family), 0u) << "HELP/TYPE after a sample: " << line;
    } else {
      family = line.substr(0, line.find_first_of("{ "));
      EXPECT_EQ(types[family], 1) << "TYPE before the sample: " << line;
      sampled.insert(family);
    }
    if (family != current) {
      EXPECT_EQ(finished.count(family), 0u) << "a second group of " << family;
      if (!current.empty()) finished.insert(current);
      current = family;
    }
  }
  for (const auto& [family, n] : types) EXPECT_EQ(n, 1) << family;
  for (const auto& [family, n] : helps) EXPECT_EQ(n, 1) << family;
  EXPECT_EQ(types.count("podgate_service_packets_total"), 1u);
  EXPECT_EQ(types.count("podgate_endpoint_flows_active"), 1u);
  EXPECT_EQ(types.count("podgate_endpoint_healthy"), 1u);
  EXPECT_EQ(types.count("podgate_health_probes_total"), 1u);
}

TEST_F(PrometheusStreamTest, APieceIsTheBudgetPlusAtMostOneSample) {
  PrometheusStream s = stream();
  const size_t head = render_prometheus_head(stats_, status_).size();
  const size_t tail = render_prometheus_dns(stats_).size() + render_prometheus_tail(stats_).size();
  for (bool more = true; more;) {
    std::string piece;
    more = s.next(piece, 2048);
    // One sample line, with its family's HELP/TYPE, is under 512 bytes here.
    EXPECT_LT(piece.size(), 2048 + 512 + head + tail);
    if (more) {
      EXPECT_GE(piece.size(), 2048u);
    }
  }
}

TEST_F(PrometheusStreamTest, FiguresAreReadAsEachPieceIsWritten) {
  PrometheusStream s = stream();
  std::string first;
  ASSERT_TRUE(s.next(first, 1));  // the head and the first service port
  epoch_ = 1000000;  // traffic moves on meanwhile
  const std::string rest = s.rest();
  const TrafficTotals later = figures("default/web:53", epoch_);
  EXPECT_NE(rest.find("podgate_service_packets_total{service=\"default/web\",port=\"53\","
                      "protocol=\"UDP\",direction=\"in\"} " +
                      std::to_string(later.packets_in) + "\n"),
            std::string::npos);
}

TEST_F(PrometheusStreamTest, NoServicesLeavesOnlyTheHeadAndTail) {
  services_ = std::make_shared<const ServiceList>();
  targets_.clear();
  EXPECT_EQ(stream().rest(), render_prometheus(stats_, status_));
  EXPECT_EQ(stream().rest().find("podgate_service_"), std::string::npos);
  EXPECT_EQ(stream().rest().find("podgate_endpoint_healthy"), std::string::npos);
}

// `stats` figures documented as ones to alert on are in the streamed scrape
// too (the head and tail parts).
TEST_F(PrometheusStreamTest, TheStatsSlotsAndKernelTwinsAreStreamed) {
  const std::string text = stream().rest();
  for (const char* sample : {
           "\npodgate_stats_slots_in_use 880\n",
           "\npodgate_stats_slots_quarantined 6\n",
           "\npodgate_stats_slots_exhausted_total 1\n",
           "\npodgate_kernel_twin_to_kernel_total{port=\"uplink\",iface=\"pg-kup\"} 12\n",
       }) {
    EXPECT_NE(text.find(sample), std::string::npos) << sample;
  }
}

// 10,000 checked endpoints: podgate_endpoint_healthy is about 1 MB, and no
// piece holds more of it than the budget and one sample.
TEST_F(PrometheusStreamTest, TenThousandCheckedEndpointsAreWrittenAPageAtATime) {
  services_ = std::make_shared<const ServiceList>();
  targets_ = many_targets(10000);
  sort_targets();
  const std::string whole = render_prometheus(stats_with_services(), status_);
  ASSERT_EQ(healthy_samples(whole).size(), 10000u);
  const size_t budget = 16384;
  PrometheusStream s = stream();
  std::string text;
  size_t pieces = 0, largest = 0;
  for (bool more = true; more; ++pieces) {
    std::string piece;
    more = s.next(piece, budget);
    largest = std::max(largest, piece.size());
    text += piece;
  }
  EXPECT_EQ(text, whole);
  EXPECT_GE(pieces, whole.size() / budget);
  const size_t head = render_prometheus_head(stats_, status_).size();
  const size_t tail = render_prometheus_dns(stats_).size() + render_prometheus_tail(stats_).size();
  EXPECT_LT(largest, budget + 512 + head + tail);
  // The targets are read a page at a time, not all at once per piece.
  EXPECT_GT(health_pages_, 10000u / 64);
  EXPECT_LT(health_pages_, 2 * (10000u / 64) + 2 * pieces);
}

TEST_F(PrometheusStreamTest, ATargetAddedOrRemovedBetweenPiecesIsShownOnceOrNotAtAll) {
  services_ = std::make_shared<const ServiceList>();
  targets_ = many_targets(2000);
  sort_targets();
  PrometheusStream s = stream();
  std::string text;
  while (healthy_samples(text).size() < 500) ASSERT_TRUE(s.next(text, 4096));
  const std::string last_written = healthy_samples(text).back();
  // Meanwhile: a target already written and one not yet written go away,
  // one is added on either side of the cursor.
  targets_.erase(targets_.begin() + 10);
  targets_.erase(targets_.begin() + 1500);
  targets_.push_back(target("chk", "svc-0", "10.3.0.99", 8080, true));   // before the cursor
  targets_.push_back(target("chk", "svc-99", "10.3.99.99", 8080, true));  // after it
  sort_targets();
  text += s.rest();
  const std::vector<std::string> samples = healthy_samples(text);
  EXPECT_EQ(std::set<std::string>(samples.begin(), samples.end()).size(), samples.size())
      << "no target twice";
  // 2,000 less the one removed before it was written, plus the one added
  // after the cursor; the one added before the cursor is not shown.
  EXPECT_EQ(samples.size(), 2000u);
  EXPECT_NE(text.find("endpoint=\"10.3.99.99:8080\""), std::string::npos);
  EXPECT_EQ(text.find("endpoint=\"10.3.0.99:8080\""), std::string::npos);
  EXPECT_NE(text.find(last_written), std::string::npos);
}

}  // namespace
}  // namespace podgate::ctl
