// render_prometheus: the stats/status replies in the text exposition format
// 0.0.4, checked line by line and by a strict parser of that grammar
// (https://prometheus.io/docs/instrumenting/exposition_formats/); and the
// link speed `status` gives it.
#include "control/observe/prometheus.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <rte_ethdev.h>

#include "control/admin/command_views.hpp"

namespace podgate::ctl {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- a strict parser of the exposition format, for our output ----

struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // unescaped values
  double value = 0;
};

struct Parsed {
  std::map<std::string, std::string> help;  // unescaped
  std::map<std::string, std::string> type;
  std::vector<Sample> samples;
  std::string error;  // empty when the text is valid
};

const std::regex kMetricName("[a-zA-Z_:][a-zA-Z0-9_:]*");
const std::regex kLabelName("[a-zA-Z_][a-zA-Z0-9_]*");

bool parse_value(const std::string& text, double& out) {
  if (text == "NaN" || text == "+Inf" || text == "-Inf") return true;
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return errno == 0 && end == text.c_str() + text.size();
}

// Reads an escaped text up to `stop` (or the end) with only the escapes
// `allowed` (\\ and \n always; \" in label values).
bool unescape(const std::string& in, size_t& pos, char stop, bool allow_quote, std::string& out) {
  while (pos < in.size() && in[pos] != stop) {
    char c = in[pos++];
    if (c != '\\') {
      if (allow_quote && c == '"') return false;  // unescaped quote inside a value
      out += c;
      continue;
    }
    if (pos >= in.size()) return false;
    char e = in[pos++];
    if (e == '\\') {
      out += '\\';
    } else if (e == 'n') {
      out += '\n';
    } else if (e == '"' && allow_quote) {
      out += '"';
    } else {
      return false;
    }
  }
  return true;
}

Parsed parse_exposition(const std::string& text) {
  Parsed p;
  if (!text.empty() && text.back() != '\n') {
    p.error = "text does not end with a line feed";
    return p;
  }
  std::set<std::string> finished;  // families whose sample group has ended
  std::string current;             // family of the previous sample
  std::map<std::string, std::set<std::string>> series;
  std::istringstream lines(text);
  std::string line;
  int n = 0;
  auto fail = [&](const std::string& why) {
    p.error = "line " + std::to_string(n) + ": " + why + ": " + line;
    return p;
  };
  while (std::getline(lines, line)) {
    ++n;
    if (line.empty()) return fail("empty line");
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const bool is_help = line[2] == 'H';
      const size_t sp = line.find(' ', 7);
      const std::string name = line.substr(7, sp == std::string::npos ? std::string::npos : sp - 7);
      if (!std::regex_match(name, kMetricName)) return fail("bad metric name");
      if (sp == std::string::npos) return fail("no text after the name");
      if (series.count(name) != 0) return fail("HELP/TYPE after the family's samples");
      std::string rest = line.substr(sp + 1);
      if (is_help) {
        if (p.help.count(name) != 0) return fail("second HELP");
        size_t pos = 0;
        std::string help;
        if (!unescape(rest, pos, '\n', false, help)) return fail("bad escape in HELP");
        p.help[name] = help;
      } else {
        if (p.type.count(name) != 0) return fail("second TYPE");
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                     "untyped"};
        if (kTypes.count(rest) == 0) return fail("unknown type");
        p.type[name] = rest;
      }
      continue;
    }
    if (line[0] == '#') continue;  // a plain comment
    Sample s;
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
    s.name = line.substr(0, pos);
    if (!std::regex_match(s.name, kMetricName)) return fail("bad metric name");
    std::set<std::string> label_names;
    std::string label_key;
    if (pos < line.size() && line[pos] == '{') {
      ++pos;
      while (pos < line.size() && line[pos] != '}') {
        const size_t eq = line.find('=', pos);
        if (eq == std::string::npos) return fail("label without '='");
        std::string lname = line.substr(pos, eq - pos);
        if (!std::regex_match(lname, kLabelName)) return fail("bad label name");
        if (!label_names.insert(lname).second) return fail("label repeated");
        pos = eq + 1;
        if (pos >= line.size() || line[pos] != '"') return fail("label value not quoted");
        ++pos;
        std::string value;
        if (!unescape(line, pos, '"', true, value)) return fail("bad escape in label value");
        if (pos >= line.size()) return fail("unterminated label value");
        ++pos;  // closing quote
        label_key += lname + "=" + value + '\x1f';
        s.labels.emplace_back(lname, value);
        if (pos < line.size() && line[pos] == ',') ++pos;
        else if (pos < line.size() && line[pos] != '}') return fail("junk after label value");
      }
      if (pos >= line.size()) return fail("unterminated label set");
      ++pos;  // '}'
    }
    if (pos >= line.size() || line[pos] != ' ') return fail("no space before the value");
    ++pos;
    std::string rest = line.substr(pos);
    const size_t sp = rest.find(' ');
    std::string value = rest.substr(0, sp);
    if (!parse_value(value, s.value)) return fail("bad value");
    if (sp != std::string::npos) {
      const std::string ts = rest.substr(sp + 1);
      if (ts.empty() || ts.find_first_not_of("-0123456789") != std::string::npos) {
        return fail("bad timestamp");
      }
    }
    // counter/gauge only here: the family is the sample's name.
    if (p.type.count(s.name) == 0) return fail("sample before its TYPE");
    if (s.name != current) {
      if (finished.count(s.name) != 0) return fail("family's samples are not together");
      if (!current.empty()) finished.insert(current);
      current = s.name;
    }
    if (!series[s.name].insert(label_key).second) return fail("duplicate series");
    p.samples.push_back(std::move(s));
  }
  return p;
}

// ---- fixtures ----

json stats_fixture() {
  return json::parse(R"({
    "workers": [
      {"worker": 0,
       "counters": {"rx_packets": 61, "tx_packets": 60, "flows_created": 20, "flow_entries": 40},
       "drops": {"no_service": 1, "too_short": 0}},
      {"worker": 1,
       "counters": {"rx_packets": 5, "tx_packets": 5, "flows_created": 2, "flow_entries": 4},
       "drops": {"no_service": 0, "too_short": 3}}
    ],
    "control": {"counters": {"rx_packets": 0, "punted": 9, "flow_entries": 0},
                "drops": {"no_service": 2}, "waiting_for_arp": 1, "loop_turns": 5200,
                "doorbell_rings": 7},
    "ports": [
      {"name": "uplink", "ipackets": 100, "opackets": 90, "ibytes": 12000, "obytes": 11000,
       "imissed": 1, "ierrors": 2, "oerrors": 3, "rx_nombuf": 4},
      {"name": "pods", "ipackets": 7, "opackets": 8, "ibytes": 700, "obytes": 800,
       "imissed": 0, "ierrors": 0, "oerrors": 0, "rx_nombuf": 0}
    ],
    "services": [
      {"name": "default/my-app", "vip": "10.96.0.20", "port": 80, "protocol": "TCP",
       "packets_in": 10, "bytes_in": 1000, "packets_out": 9, "bytes_out": 900,
       "flows_created": 3, "flows_active": 2,
       "endpoints": [
         {"ip": "172.17.0.10", "target_port": 8080, "pod": "my-app-0",
          "packets_in": 6, "bytes_in": 600, "packets_out": 5, "bytes_out": 500,
          "flows_created": 2, "flows_active": 1},
         {"ip": "172.17.0.11", "target_port": 8080, "pod": "my-app-1",
          "packets_in": 4, "bytes_in": 400, "packets_out": 4, "bytes_out": 400,
          "flows_created": 1, "flows_active": 1}]},
      {"name": "default/dns", "vip": "10.96.0.10", "port": 53, "protocol": "UDP",
       "packets_in": 0, "bytes_in": 0, "packets_out": 0, "bytes_out": 0,
       "flows_created": 0, "flows_active": 0, "endpoints": []}
    ],
    "dns": {"queries": {"udp": 7, "tcp": 1, "dataplane": 2},
            "answers": {"noerror": 8, "formerr": 0, "nxdomain": 1},
            "truncated": 1, "silent": 0, "dropped": 0, "tcp_open": 1, "tcp_accepted": 2,
            "tcp_idle_closed": 1, "tcp_evicted": 0, "tcp_errors": 0},
    "snapshot": {"generation": 3, "awaiting_free": 1, "freed": 1},
    "stats_slots": {"in_use": 12, "quarantined": 4, "exhausted": 2},
    "kernel_twins": [
      {"port": "uplink", "iface": "pg-kup", "rate": 100000, "to_kernel": 12,
       "to_kernel_failed": 1, "from_kernel": 14, "from_kernel_rate_limited": 3,
       "from_kernel_refused": 5, "rx_wakeups": 9}
    ],
    "control_socket": {"connections": 1, "accepted": 4, "requests": 7, "errors": 1,
                       "refused": 0, "closed_oversize": 0, "closed_backlog": 0},
    "metrics_http": {"connections": 0, "accepted": 2, "requests": 2, "errors": 0,
                     "refused": 0, "closed_idle": 1}
  })");
}

json status_fixture() {
  return json::parse(R"({
    "podgate_version": "0.1.0", "uptime_seconds": 3600, "workers": 2, "services": 2,
    "generation": 3, "config_file": "/etc/podgate/podgate.toml",
    "ports": [{"name": "uplink", "link_up": true, "speed_mbps": 10000},
              {"name": "pods", "link_up": false, "speed_mbps": 0}]
  })");
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// ---- the parser itself can fail ----

TEST(StrictExpositionParser, RejectsWhatTheFormatForbids) {
  EXPECT_EQ(parse_exposition("# TYPE a counter\na 1\n").error, "");
  EXPECT_NE(parse_exposition("a 1\n").error, "");                                   // no TYPE
  EXPECT_NE(parse_exposition("# TYPE a counter\na 1").error, "");                   // no final LF
  EXPECT_NE(parse_exposition("# TYPE 1a counter\n1a 1\n").error, "");               // name
  EXPECT_NE(parse_exposition("# TYPE a counter\na{x=\"\\t\"} 1\n").error, "");      // escape
  EXPECT_NE(parse_exposition("# TYPE a counter\na{x=\"q\"q\"} 1\n").error, "");     // quote
  EXPECT_NE(parse_exposition("# TYPE a counter\na{x=\"1\"} one\n").error, "");      // value
  EXPECT_NE(parse_exposition("# TYPE a counter\na 1\na 2\n").error, "");            // duplicate
  EXPECT_NE(parse_exposition("# TYPE a counter\n# TYPE a gauge\na 1\n").error, "");  // 2 TYPEs
  EXPECT_NE(parse_exposition("# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"y\"} 1\n").error,
            "");  // a's samples split
}

// ---- render_prometheus ----

TEST(Prometheus, OutputParsesWithStrictExpositionParser) {
  const std::string text = render_prometheus(stats_fixture(), status_fixture());
  Parsed p = parse_exposition(text);
  EXPECT_EQ(p.error, "") << text;
  EXPECT_GT(p.samples.size(), 50u);
}

TEST(Prometheus, RendersExactSamplesForKnownFamilies) {
  const std::string text = render_prometheus(stats_fixture(), status_fixture());
  const std::vector<std::string> lines = lines_of(text);
  for (const char* expected : {
           "podgate_info{version=\"0.1.0\"} 1",
           "podgate_uptime_seconds 3600",
           "podgate_port_link_up{port=\"uplink\"} 1",
           "podgate_port_link_up{port=\"pods\"} 0",
           "podgate_port_link_speed_bytes_per_second{port=\"uplink\"} 1250000000",
           "podgate_port_rx_packets_total{port=\"uplink\"} 100",
           "podgate_port_tx_bytes_total{port=\"pods\"} 800",
           "podgate_port_rx_missed_total{port=\"uplink\"} 1",
           "podgate_port_rx_errors_total{port=\"uplink\"} 2",
           "podgate_port_tx_errors_total{port=\"uplink\"} 3",
           "podgate_port_rx_nombuf_total{port=\"uplink\"} 4",
           "podgate_worker_rx_packets_total{worker=\"0\"} 61",
           "podgate_worker_rx_packets_total{worker=\"1\"} 5",
           "podgate_worker_punted_total{worker=\"control\"} 9",
           "podgate_worker_flow_entries{worker=\"0\"} 40",
           "podgate_drops_total{worker=\"1\",reason=\"too_short\"} 3",
           "podgate_drops_total{worker=\"control\",reason=\"no_service\"} 2",
           "podgate_control_waiting_for_arp 1",
           "podgate_control_loop_turns_total 5200",
           "podgate_control_doorbell_rings_total 7",
           "podgate_service_packets_total{service=\"default/my-app\",port=\"80\","
           "protocol=\"TCP\",direction=\"in\"} 10",
           "podgate_service_bytes_total{service=\"default/my-app\",port=\"80\","
           "protocol=\"TCP\",direction=\"out\"} 900",
           "podgate_service_flows_created_total{service=\"default/my-app\",port=\"80\","
           "protocol=\"TCP\"} 3",
           "podgate_service_flows_active{service=\"default/my-app\",port=\"80\","
           "protocol=\"TCP\"} 2",
           "podgate_endpoint_bytes_total{service=\"default/my-app\",port=\"80\",protocol=\"TCP\","
           "endpoint=\"172.17.0.10:8080\",pod=\"my-app-0\",direction=\"out\"} 500",
           "podgate_endpoint_flows_active{service=\"default/my-app\",port=\"80\",protocol=\"TCP\","
           "endpoint=\"172.17.0.11:8080\",pod=\"my-app-1\"} 1",
           "podgate_dns_queries_total{transport=\"udp\"} 7",
           "podgate_dns_queries_total{transport=\"dataplane\"} 2",
           "podgate_dns_responses_total{rcode=\"nxdomain\"} 1",
           "podgate_dns_truncated_total 1",
           "podgate_dns_tcp_connections 1",
           "podgate_snapshot_generation 3",
           "podgate_stats_slots_in_use 12",
           "podgate_stats_slots_quarantined 4",
           "podgate_stats_slots_exhausted_total 2",
           "podgate_kernel_twin_to_kernel_total{port=\"uplink\",iface=\"pg-kup\"} 12",
           "podgate_kernel_twin_to_kernel_failed_total{port=\"uplink\",iface=\"pg-kup\"} 1",
           "podgate_kernel_twin_from_kernel_total{port=\"uplink\",iface=\"pg-kup\"} 14",
           "podgate_kernel_twin_from_kernel_rate_limited_total{port=\"uplink\",iface=\"pg-kup\"} 3",
           "podgate_kernel_twin_from_kernel_refused_total{port=\"uplink\",iface=\"pg-kup\"} 5",
           "podgate_kernel_twin_rx_wakeups_total{port=\"uplink\",iface=\"pg-kup\"} 9",
           "podgate_control_socket_connections 1",
           "podgate_control_socket_requests_total 7",
           "podgate_metrics_http_closed_idle_total 1",
       }) {
    EXPECT_THAT(lines, ::testing::Contains(std::string(expected))) << text;
  }
  EXPECT_THAT(lines, ::testing::Contains(std::string("# TYPE podgate_worker_flow_entries gauge")));
  EXPECT_THAT(lines, ::testing::Contains(std::string("# TYPE podgate_drops_total counter")));
  EXPECT_THAT(lines, ::testing::Contains(std::string("# TYPE podgate_stats_slots_in_use gauge")));
  EXPECT_THAT(lines,
              ::testing::Contains(std::string("# TYPE podgate_stats_slots_quarantined gauge")));
  EXPECT_THAT(lines, ::testing::Contains(
                         std::string("# TYPE podgate_stats_slots_exhausted_total counter")));
  EXPECT_THAT(lines, ::testing::Contains(std::string(
                         "# HELP podgate_worker_flows_created_total new connections pinned in "
                         "the flow table")));
}

TEST(Prometheus, DeclaresHelpAndTypeOncePerFamilyBeforeItsSamples) {
  const std::string text = render_prometheus(stats_fixture(), status_fixture());
  const std::vector<std::string> lines = lines_of(text);
  std::map<std::string, int> help, type;
  std::set<std::string> sampled;
  for (const std::string& l : lines) {
    if (l.rfind("# HELP ", 0) == 0 || l.rfind("# TYPE ", 0) == 0) {
      const std::string name = l.substr(7, l.find(' ', 7) - 7);
      EXPECT_EQ(sampled.count(name), 0u) << "HELP/TYPE after samples: " << l;
      ++(l[2] == 'H' ? help : type)[name];
      continue;
    }
    const std::string name = l.substr(0, l.find_first_of("{ "));
    EXPECT_EQ(help[name], 1) << name;
    EXPECT_EQ(type[name], 1) << name;
    sampled.insert(name);
  }
  for (const auto& [name, count] : type) {
    EXPECT_EQ(count, 1) << name;
    EXPECT_EQ(help[name], 1) << name;
    EXPECT_EQ(sampled.count(name), 1u) << "family without samples: " << name;
  }
}

TEST(Prometheus, CountersEndInTotalAndGaugesDoNot) {
  Parsed p = parse_exposition(render_prometheus(stats_fixture(), status_fixture()));
  ASSERT_EQ(p.error, "");
  size_t counters = 0, gauges = 0;
  for (const auto& [name, type] : p.type) {
    const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    if (type == "counter") {
      ++counters;
      EXPECT_TRUE(total) << name;
    } else {
      ++gauges;
      EXPECT_EQ(type, "gauge") << name;
      EXPECT_FALSE(total) << name;
    }
    EXPECT_EQ(name.rfind("podgate_", 0), 0u) << name;
  }
  EXPECT_GT(counters, 20u);
  EXPECT_GT(gauges, 5u);
}

TEST(Prometheus, EscapesQuoteBackslashAndNewlineInLabelValues) {
  json stats = stats_fixture();
  stats["ports"][0]["name"] = "up\"link\\a\nb";
  const std::string text = render_prometheus(stats, json::object());
  EXPECT_THAT(text, HasSubstr("podgate_port_rx_packets_total{port=\"up\\\"link\\\\a\\nb\"} 100\n"));
  Parsed p = parse_exposition(text);
  ASSERT_EQ(p.error, "") << text;
  bool found = false;
  for (const Sample& s : p.samples) {
    if (s.name == "podgate_port_rx_packets_total" && s.labels[0].second == "up\"link\\a\nb") {
      found = true;
    }
  }
  EXPECT_TRUE(found) << "the parser reads the original value back";
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(Prometheus, AnIpv6EndpointLabelPutsTheAddressInBrackets) {
  json stats = stats_fixture();
  stats["services"][0]["endpoints"][0]["ip"] = "fd00:10:244::10";
  const std::string text = render_prometheus(stats, json::object());
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_THAT(text, HasSubstr("endpoint=\"[fd00:10:244::10]:8080\""));
  EXPECT_THAT(text, HasSubstr("endpoint=\"172.17.0.11:8080\""));
}

TEST(Prometheus, MissingOrMistypedSectionsAreSkipped) {
  EXPECT_EQ(render_prometheus(json::object(), json::object()), "");
  EXPECT_EQ(render_prometheus(json(), json::array()), "");
  json odd = {{"workers", "none"},
              {"ports", {{{"ipackets", 1}}, 7, {{"name", "p"}, {"ipackets", "many"}}}},
              {"services", {{{"name", "a/b"}}, {{"name", "a/c"}, {"port", 1}, {"protocol", "TCP"},
                                                 {"endpoints", {1, {{"pod", "x"}}}}}}},
              {"dns", {{"queries", 3}, {"truncated", nullptr}}},
              {"control", {{"counters", {{"rx_packets", json::object()}}}}}};
  const std::string text = render_prometheus(odd, {{"ports", {{{"link_up", true}}}}});
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_EQ(text, "");
  json partial = {{"snapshot", {{"generation", 9}}}};
  EXPECT_EQ(render_prometheus(partial, json::object()),
            "# HELP podgate_snapshot_generation generation of the snapshot the workers forward "
            "with\n# TYPE podgate_snapshot_generation gauge\npodgate_snapshot_generation 9\n");
}

TEST(Prometheus, RepeatedSeriesKeepsOnlyTheFirstSample) {
  json stats = {{"ports", {{{"name", "a"}, {"ipackets", 1}}, {{"name", "a"}, {"ipackets", 2}}}}};
  const std::string text = render_prometheus(stats, json::object());
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_THAT(text, HasSubstr("podgate_port_rx_packets_total{port=\"a\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("podgate_port_rx_packets_total{port=\"a\"} 2")));
}

TEST(Prometheus, WritesFloatsAndSpecialValuesInGoSyntax) {
  json stats = {{"snapshot", {{"generation", 1.5}, {"awaiting_free", -0.25}}},
                {"control_socket", {{"connections", std::numeric_limits<double>::infinity()}}}};
  const std::string text = render_prometheus(stats, json::object());
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_THAT(text, HasSubstr("podgate_snapshot_generation 1.5\n"));
  EXPECT_THAT(text, HasSubstr("podgate_snapshot_awaiting_free -0.25\n"));
}

// A driver that cannot tell its speed says RTE_ETH_SPEED_NUM_UNKNOWN
// (UINT32_MAX): `status` once showed it as 4294967295 Mb/s and /metrics as
// 536870911875000 bytes per second.  Unknown is no sample at all.
TEST(Prometheus, AnUnknownLinkSpeedHasNoSample) {
  EXPECT_EQ(link_speed_json(true, 25000), json(25000));
  EXPECT_EQ(link_speed_json(true, RTE_ETH_SPEED_NUM_NONE), json(0));  // link down
  EXPECT_TRUE(link_speed_json(true, RTE_ETH_SPEED_NUM_UNKNOWN).is_null());
  EXPECT_TRUE(link_speed_json(false, 0).is_null()) << "the link could not be read";
  json status = status_fixture();
  status["ports"].push_back({{"name", "vf"}, {"link_up", true},
                             {"speed_mbps", link_speed_json(true, RTE_ETH_SPEED_NUM_UNKNOWN)}});
  const std::string text = render_prometheus(json::object(), status);
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_THAT(text, HasSubstr("podgate_port_link_up{port=\"vf\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("podgate_port_link_speed_bytes_per_second{port=\"vf\"}")));
  EXPECT_THAT(text, HasSubstr("podgate_port_link_speed_bytes_per_second{port=\"uplink\"} "
                              "1250000000\n"));
}

TEST(Prometheus, UnknownCounterKeysBecomeValidMetricNames) {
  json stats = {{"workers", {{{"worker", 0}, {"counters", {{"new-thing.x", 5}}}}}}};
  const std::string text = render_prometheus(stats, json::object());
  EXPECT_EQ(parse_exposition(text).error, "") << text;
  EXPECT_THAT(text, HasSubstr("podgate_worker_new_thing_x_total{worker=\"0\"} 5\n"));
}

}  // namespace
}  // namespace podgate::ctl
