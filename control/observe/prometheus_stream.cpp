#include "control/observe/prometheus_stream.hpp"

#include <charconv>
#include <iterator>
#include <string_view>

#include "dataplane/net.hpp"

namespace podgate::ctl {

namespace {

constexpr size_t kPortFamilies = 4;  // families 0..3: the service ports'; 4..7: the endpoints'
constexpr size_t kStateFamily = 2 * kPortFamilies;  // podgate_service_endpoints, last

void append_number(std::string& out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_label(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append("=\"").append(escape_label_value(value)).append("\"");
}

// service="ns/name",port="80",protocol="TCP": what render_services labels
// a service port with.
std::string port_labels(const ServiceConfig& s, const ServicePortConfig& p) {
  std::string out;
  append_label(out, "service", std::string(s.ns).append("/").append(s.name));
  out.append(",port=\"");
  append_number(out, p.port);
  out.append("\",");
  append_label(out, "protocol", dp::proto_name(p.protocol));
  return out;
}

// "10.0.0.5:8080"; an IPv6 address in brackets, "[fd00::5]:8080" (RFC 3986).
std::string endpoint_text(const dp::IpAddr& ip, uint16_t port) {
  std::string endpoint = dp::to_string(ip);
  if (endpoint.find(':') != std::string::npos) endpoint = std::string("[").append(endpoint).append("]");
  endpoint.append(":");
  append_number(endpoint, port);
  return endpoint;
}

// ,endpoint="10.0.0.5:8080",pod="web-0".
void append_endpoint_labels(std::string& out, const EndpointConfig& e,
                            const ServicePortConfig& p) {
  out.append(",");
  append_label(out, "endpoint", endpoint_text(e.ip, p.target_port));
  out.append(",");
  append_label(out, "pod", e.pod);
}

// Targets read from the checker at a time: a piece of 16 KiB holds about
// 200 samples, and the targets of a page not written are read again.
constexpr size_t kHealthPage = 64;

}  // namespace

PrometheusStream::PrometheusStream(PrometheusParts parts) : parts_(std::move(parts)) {
  const ServiceList& list = *parts_.traffic.services;
  for (size_t i = 0; i < list.size(); ++i) {
    if (!parts_.traffic.counted(list[i])) continue;
    for (size_t p = 0; p < list[i].ports.size(); ++p) ports_.emplace_back(i, p);
  }
}

void PrometheusStream::samples(std::string& out, TrafficField field, const std::string& labels,
                               const TrafficTotals& t) const {
  const TrafficFamily family = traffic_family(field);
  const std::string_view prefix = family_ < kPortFamilies ? kServicePrefix : kEndpointPrefix;
  const auto sample = [&](std::string_view direction, uint64_t v) {
    out.append(prefix).append(family.suffix).append("{").append(labels);
    if (!direction.empty()) out.append(",direction=\"").append(direction).append("\"");
    out.append("} ");
    append_number(out, v);
    out.append("\n");
  };
  switch (field) {
    case TrafficField::kPackets:
      sample("in", t.packets_in);
      sample("out", t.packets_out);
      break;
    case TrafficField::kBytes:
      sample("in", t.bytes_in);
      sample("out", t.bytes_out);
      break;
    case TrafficField::kFlowsCreated:
      sample("", t.flows_created);
      break;
    case TrafficField::kFlowsActive:
      sample("", t.flows_active());
      break;
  }
}

bool PrometheusStream::family_samples(std::string& out, size_t limit) {
  const TrafficField field = kTrafficFields[family_ % kPortFamilies];
  const bool endpoints = family_ >= kPortFamilies;
  const auto open_family = [&] {
    if (family_open_) return;
    family_open_ = true;
    const TrafficFamily family = traffic_family(field);
    append_family_head(out,
                       std::string(endpoints ? kEndpointPrefix : kServicePrefix).append(family.suffix),
                       family.counter, traffic_help(field, endpoints ? kEndpointWhat : kServiceWhat));
  };
  while (port_ < ports_.size()) {
    const ServiceConfig& s = service_of(port_);
    const ServicePortConfig& p = port_of(port_);
    if (!endpoints) {
      if (out.size() >= limit) return false;
      open_family();
      samples(out, field, port_labels(s, p), parts_.traffic.port(s, p));
      ++port_;
      continue;
    }
    if (endpoint_ < s.endpoints.size()) {
      if (out.size() >= limit) return false;
      open_family();
      const std::string labels = port_labels(s, p);
      std::string endpoint_labels;
      for (; endpoint_ < s.endpoints.size() && out.size() < limit; ++endpoint_) {
        const EndpointConfig& e = s.endpoints[endpoint_];
        endpoint_labels.assign(labels);
        append_endpoint_labels(endpoint_labels, e, p);
        samples(out, field, endpoint_labels, parts_.traffic.endpoint(s, p, e));
      }
      if (endpoint_ < s.endpoints.size()) return false;
    }
    ++port_;
    endpoint_ = 0;
  }
  return true;
}

bool PrometheusStream::endpoint_state_samples(std::string& out, size_t limit) {
  constexpr size_t kStates = std::size(kEndpointStates);
  while (port_ < ports_.size()) {
    if (out.size() >= limit) return false;
    if (!family_open_) {
      family_open_ = true;
      append_family_head(out, kServiceEndpoints, false, kServiceEndpointsHelp);
    }
    const ServiceConfig& s = service_of(port_);
    // The same for every port of a service, and counted again for each (and
    // when a piece ends within a port): a pass over its endpoints, as the
    // endpoint families make.
    const NewFlowRule rule = new_flow_rule(s);
    size_t counts[kStates] = {};
    for (const EndpointConfig& e : s.endpoints) {
      const std::string_view state = endpoint_state(e, rule);
      for (size_t i = 0; i < kStates; ++i) counts[i] += state == kEndpointStates[i];
    }
    const std::string labels = port_labels(s, port_of(port_));
    for (; endpoint_ < kStates && out.size() < limit; ++endpoint_) {  // endpoint_: the next state
      out.append(kServiceEndpoints).append("{").append(labels).append(",");
      append_label(out, "state", kEndpointStates[endpoint_]);
      out.append("} ");
      append_number(out, counts[endpoint_]);
      out.append("\n");
    }
    if (endpoint_ < kStates) return false;
    ++port_;
    endpoint_ = 0;
  }
  return true;
}

bool PrometheusStream::health_samples(std::string& out, size_t limit) {
  while (out.size() < limit) {
    const std::vector<health::TargetStatus> page =
        parts_.health(last_target_ ? &*last_target_ : nullptr, kHealthPage);
    if (page.empty()) return true;
    if (!health_open_) {
      health_open_ = true;
      append_family_head(out, kEndpointHealthy, false, kEndpointHealthyHelp);
    }
    size_t written = 0;  // at least one: the family's HELP/TYPE may have reached the limit
    for (; written < page.size() && (written == 0 || out.size() < limit); ++written) {
      const health::TargetStatus& t = page[written];
      out.append(kEndpointHealthy).append("{");
      append_label(out, "service", std::string(t.ns).append("/").append(t.name));
      out.append(",");
      append_label(out, "endpoint", endpoint_text(t.ip, t.port));
      out.append(t.healthy ? "} 1\n" : "} 0\n");
    }
    last_target_ = page[written - 1];
    if (written == page.size() && page.size() < kHealthPage) return true;
  }
  return false;
}

bool PrometheusStream::next(std::string& out, size_t budget) {
  const size_t limit = out.size() + budget;
  while (stage_ != Stage::kDone && out.size() < limit) {
    switch (stage_) {
      case Stage::kHead:
        out.append(parts_.head());
        stage_ = Stage::kServices;
        break;
      case Stage::kServices:
        if (family_ == kStateFamily ? !endpoint_state_samples(out, limit) : !family_samples(out, limit)) {
          return true;
        }
        ++family_;
        family_open_ = false;
        port_ = 0;
        endpoint_ = 0;
        if (family_ > kStateFamily) stage_ = Stage::kDns;
        break;
      case Stage::kDns:
        out.append(parts_.dns());
        stage_ = Stage::kHealth;
        break;
      case Stage::kHealth:
        if (!health_samples(out, limit)) return true;
        stage_ = Stage::kTail;
        break;
      case Stage::kTail:
        out.append(parts_.tail());
        stage_ = Stage::kDone;
        break;
      case Stage::kDone:
        break;
    }
  }
  return stage_ != Stage::kDone;
}

std::string PrometheusStream::rest() {
  std::string out;
  while (next(out, SIZE_MAX / 2)) {
  }
  return out;
}

}  // namespace podgate::ctl
