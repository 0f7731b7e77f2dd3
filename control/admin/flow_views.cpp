#include "control/admin/flow_views.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "control/admin/command_views.hpp"
#include "control/admin/flow_pages.hpp"
#include "control/appliance.hpp"
#include "control/config/validate.hpp"

namespace podgate::ctl {

namespace {

using nlohmann::json;

std::string_view flow_state_name(dp::FlowState s) {
  switch (s) {
    case dp::FlowState::kTcpSynSent: return "syn_sent";
    case dp::FlowState::kTcpSynReceived: return "syn_received";
    case dp::FlowState::kTcpEstablished: return "established";
    case dp::FlowState::kTcpClientFin: return "client_fin";
    case dp::FlowState::kTcpPodFin: return "pod_fin";
    case dp::FlowState::kTcpClosing: return "closing";
    case dp::FlowState::kUdp: return "udp";
    case dp::FlowState::kFree: break;
  }
  return "free";
}

// "ip:port", "[ip6]:port" for IPv6 (RFC 5952 §6).
std::string endpoint_text(const dp::IpAddr& ip, rte_be16_t port) {
  std::string text;
  if (ip.is_v6()) text.push_back('[');
  text.append(dp::to_string(ip));
  if (ip.is_v6()) text.push_back(']');
  return text.append(":").append(std::to_string(dp::from_be16(port)));
}

Result<dp::IpAddr> ip_arg(const json& req, const char* key) {
  auto text = string_arg(req, key, true);
  if (!text) return std::move(text).error();
  auto ip = dp::parse_ip(**text);
  if (!ip) {
    return make_error(ErrorCode::kInvalidRequest,
                      std::string("\"") + key + "\": " + quote(**text) + " is not an IPv4 or IPv6 address");
  }
  return *ip;
}

// The request's filters: "service" (NS/NAME) with an optional "port",
// "client", "endpoint" (addresses), "protocol"; and "limit" (a page's
// size with "after").
Result<std::pair<dp::FlowFilter, uint32_t>> flow_filter(const Appliance& app, const json& req) {
  dp::FlowFilter f;
  if (req.contains("service")) {
    auto named = name_arg(req, "service");
    if (!named) return std::move(named).error();
    json by_name = {{"name", named->first + "/" + named->second}};
    auto s = service_arg(by_name, app.config());
    if (!s) return std::move(s).error();
    if ((*s)->type != ServiceType::kClusterIp || !(*s)->cluster_ip) {
      return make_error(ErrorCode::kInvalidRequest, named->first + "/" + named->second +
                                                        " has no cluster IP and so no flows");
    }
    f.by_vip = true;
    for (const dp::IpAddr& vip : (*s)->cluster_ips()) {
      if (vip.is_v4()) {
        f.vip4 = vip.as_v4();
      } else {
        f.vip6 = vip.as_v6();
      }
    }
  }
  auto port = int_arg(req, "port", 1, 65535);
  if (!port) return std::move(port).error();
  if (*port) {
    if (!f.by_vip) {
      return make_error(ErrorCode::kInvalidRequest, "\"port\" needs \"service\"");
    }
    f.vip_port = dp::to_be16(static_cast<uint16_t>(**port));
  }
  for (auto [key, field] : {std::pair{"client", &f.client}, std::pair{"endpoint", &f.endpoint}}) {
    if (!req.contains(key)) continue;
    auto ip = ip_arg(req, key);
    if (!ip) return std::move(ip).error();
    *field = *ip;
  }
  auto proto = string_arg(req, "protocol", false);
  if (!proto) return std::move(proto).error();
  if (*proto) {
    auto p = parse_protocol(**proto);
    if (!p) return make_error(ErrorCode::kInvalidRequest, "\"protocol\": " + unsupported_protocol(**proto));
    f.proto = *p;
  }
  auto limit = int_arg(req, "limit", 1, dp::FlowQuery::kMaxRecords);
  if (!limit) return std::move(limit).error();
  return std::make_pair(f, static_cast<uint32_t>(limit->value_or(100)));
}

using ServiceNames = std::map<std::tuple<dp::IpAddr, uint16_t, uint8_t>, std::string>;

// VIP:port/protocol -> service name, for people reading the list.
std::shared_ptr<const ServiceNames> service_names(const Appliance& app) {
  auto names = std::make_shared<ServiceNames>();
  for (const ServiceConfig& s : app.config().services) {
    if (s.type != ServiceType::kClusterIp) continue;
    for (const dp::IpAddr& vip : s.cluster_ips()) {
      for (const ServicePortConfig& p : s.ports) {
        (*names)[{vip, p.port, static_cast<uint8_t>(p.protocol)}] = s.ns + "/" + s.name;
      }
    }
  }
  return names;
}

// The reply's "flows" array: element i of the listing's first `shown`.
LongArray flow_items(std::shared_ptr<const Appliance::FlowListing> listing,
                     std::shared_ptr<const ServiceNames> by_vip, size_t shown) {
  LongArray items;
  items.count = shown;
  items.element = [listing = std::move(listing), by_vip = std::move(by_vip)](size_t i) {
    const auto& [worker, f] = listing->flows[i];
    auto name = by_vip->find({f.vip, dp::from_be16(f.vip_port), static_cast<uint8_t>(f.proto)});
    return json{{"service", name == by_vip->end() ? std::string() : name->second},
                {"protocol", std::string(dp::proto_name(f.proto))},
                {"client", endpoint_text(f.client, f.client_port)},
                {"vip", endpoint_text(f.vip, f.vip_port)},
                {"endpoint", endpoint_text(f.endpoint, f.endpoint_port)},
                {"state", flow_state_name(f.state)},
                {"expires_in_ms", f.expires_in_ms},
                {"worker", worker}};
  };
  return items;
}

// With "after": one page of a listing of every match (flow_pages.hpp).
void flow_page(Appliance& app, const dp::FlowFilter& filter, uint32_t limit, const FlowCursor& after,
               ControlSocket::Reply reply) {
  app.list_flow_page(filter, limit, after.positions, [&app, limit, reply](Result<Appliance::FlowListing> r) {
    if (!r) return reply(std::move(r).error());
    const PageCut cut = cut_flow_page(r->flows, r->stopped_at, limit);
    auto listing = std::make_shared<Appliance::FlowListing>();
    listing->flows.reserve(cut.shown.size());
    for (size_t i : cut.shown) listing->flows.push_back(r->flows[i]);
    const size_t shown = listing->flows.size();
    json fields{{"flows", json::array()}, {"shown", shown}};
    if (!cut.next.done()) fields["next"] = cursor_text(cut.next);
    reply(LongReply(std::move(fields), {"flows"}, flow_items(std::move(listing), service_names(app), shown)));
  });
}

void flows(Appliance& app, const json& req, ControlSocket::Reply reply) {
  auto filter = flow_filter(app, req);
  if (!filter) return reply(std::move(filter).error());
  const uint32_t limit = filter->second;
  auto after = string_arg(req, "after", false);
  if (!after) return reply(std::move(after).error());
  if (*after) {
    auto cursor = parse_cursor(**after, app.worker_count());
    if (!cursor) return reply(std::move(cursor).error());
    return flow_page(app, filter->first, limit, *cursor, std::move(reply));
  }
  app.list_flows(filter->first, limit, [&app, limit, reply](Result<Appliance::FlowListing> r) {
    if (!r) return reply(std::move(r).error());
    const size_t shown = std::min<size_t>(r->flows.size(), limit);
    const uint64_t matched = r->matched;
    auto listing = std::make_shared<const Appliance::FlowListing>(std::move(*r));
    reply(LongReply(json{{"flows", json::array()}, {"matched", matched}, {"shown", shown},
                         {"truncated", matched > shown}},
                    {"flows"}, flow_items(std::move(listing), service_names(app), shown)));
  });
}

}  // namespace

void register_flow_commands(ControlSocket& socket, Appliance& app) {
  Appliance* a = &app;
  socket.add_async_command("flows", [a](const json& r, ControlSocket::Reply reply) {
    flows(*a, r, std::move(reply));
  });
}

}  // namespace podgate::ctl
