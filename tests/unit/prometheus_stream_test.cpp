// PrometheusStream: /metrics a piece at a time is the text render_prometheus
// makes of the `stats` reply of the same state, for any piece size, with
// each family's HELP/TYPE once, before its samples, and its samples one
// group.
#include "control/observe/prometheus_stream.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

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

class PrometheusStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::vector<ServicePortConfig> web_ports = {{"http", 80, 8080, dp::Proto::kTcp},
                                                      {"dns", 53, 5353, dp::Proto::kUdp}};
    ServiceList list;
    list.push_back(service("default", "web", ip("10.96.0.10"), web_ports,
                           {endpoint("10.1.0.1", "web-0"), endpoint("10.1.0.2", "web-1"),
                            endpoint("fd00::5", "web-v6")}));
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
      list.push_back(service("big", "svc-" + std::to_string(i),
                             ip(("10.97.0." + std::to_string(i + 1)).c_str()), web_ports, eps));
    }
    services_ = std::make_shared<const ServiceList>(std::move(list));
    stats_ = {{"workers", {{{"worker", 0}, {"counters", {{"rx_packets", 5}}}, {"drops", {{"no_service", 1}}}}}},
              {"dns", {{"queries", {{"udp", 7}}}, {"truncated", 1}}},
              {"snapshot", {{"generation", 3}}},
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
                     {"state", "ready"}};
          ej.update(traffic_json(t.endpoint(s, p, e)));
          j["endpoints"].push_back(std::move(ej));
        }
        services.push_back(std::move(j));
      }
    }
    json st = stats_;
    st["services"] = std::move(services);
    return st;
  }

  PrometheusStream stream() const {
    return PrometheusStream([this] { return render_prometheus_head(stats_, status_); }, traffic(),
                            [this] { return render_prometheus_tail(stats_); });
  }

  std::shared_ptr<const ServiceList> services_;
  json stats_;
  json status_;
  uint64_t epoch_ = 0;
};

TEST_F(PrometheusStreamTest, PiecesTogetherAreTheWholeRenderingOfTheSameState) {
  const std::string whole = render_prometheus(stats_with_services(), status_);
  ASSERT_NE(whole.find("podgate_endpoint_flows_active{service=\"big/svc-39\""), std::string::npos);
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
}

TEST_F(PrometheusStreamTest, APieceIsTheBudgetPlusAtMostOneSample) {
  PrometheusStream s = stream();
  const size_t head = render_prometheus_head(stats_, status_).size();
  const size_t tail = render_prometheus_tail(stats_).size();
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
  EXPECT_EQ(stream().rest(), render_prometheus(stats_, status_));
  EXPECT_EQ(stream().rest().find("podgate_service_"), std::string::npos);
}

}  // namespace
}  // namespace podgate::ctl
