#include "control/admin/config_views.hpp"

#include <memory>

#include "control/admin/command_views.hpp"
#include "control/config/config_health.hpp"
#include "control/config/config_writer.hpp"

namespace podgate::ctl {

namespace {

using nlohmann::json;

// A service as `config dump` shows it, its endpoints left to the caller.
json service_config_json(const ServiceConfig& s) {
  json j = {{"namespace", s.ns}, {"name", s.name}};
  if (s.type == ServiceType::kExternalName) {
    j["type"] = "ExternalName";
    j["external_name"] = s.external_name;
  } else {
    j["cluster_ip"] = s.cluster_ip ? ip_text(*s.cluster_ip) : "None";
    if (s.secondary_cluster_ip) {
      j["cluster_ips"] = json::array({ip_text(*s.cluster_ip), ip_text(*s.secondary_cluster_ip)});
    }
  }
  j["session_affinity"] = s.session_affinity == SessionAffinity::kClientIp ? "ClientIP" : "None";
  if (s.session_affinity == SessionAffinity::kClientIp) j["timeout_seconds"] = s.affinity_timeout;
  j["publish_not_ready_addresses"] = s.publish_not_ready_addresses;
  if (s.maglev_table_size) j["maglev_table_size"] = *s.maglev_table_size;
  j["ports"] = json::array();
  for (const ServicePortConfig& p : s.ports) j["ports"].push_back(port_json(p));
  j["endpoints"] = json::array();
  if (s.health_check) j["health_check"] = health_check_json(*s.health_check);
  return j;
}


}  // namespace

json config_fields_json(const Config& c) {
  const DataplaneConfig& d = c.dataplane;
  json ports = json::array();
  for (const PortConfig& p : c.ports) {
    json j = {{"name", p.name}, {"device", p.device}, {"address", dp::to_string(p.address)}};
    if (p.address6) j["address6"] = dp::to_string(*p.address6);
    if (p.mac) j["mac"] = dp::to_string(*p.mac);
    if (p.mtu) j["mtu"] = *p.mtu;
    if (!p.kernel.empty()) {
      j["kernel"] = p.kernel;
      j["kernel_rate"] = p.kernel_rate;
    }
    if (p.steered_by_peer) j["steered_by_peer"] = true;
    if (p.client_address) {
      j["client_address"] = *p.client_address == dp::ClientAddress::kSource ? "source" : "destination";
    }
    ports.push_back(std::move(j));
  }
  json routes = json::array();
  for (const RouteConfig& r : c.routes) {
    routes.push_back({{"prefix", dp::to_string(r.prefix)}, {"via", dp::to_string(r.via)}});
  }
  for (const Route6Config& r : c.routes6) {  // [[routes]] holds both families
    routes.push_back({{"prefix", dp::to_string(r.prefix)}, {"via", dp::to_string(r.via)}});
  }
  json neighbors = json::array();
  for (const NeighborConfig& n : c.neighbors) {
    neighbors.push_back({{"ip", dp::to_string(n.ip)}, {"mac", dp::to_string(n.mac)}});
  }
  for (const Neighbor6Config& n : c.neighbors6) {
    neighbors.push_back({{"ip", dp::to_string(n.ip)}, {"mac", dp::to_string(n.mac)}});
  }
  json listen = json::array();
  for (const DnsListen& l : c.dns.listen) {
    listen.push_back(dp::to_string(l.ip) + ":" + std::to_string(l.port));
  }
  json dns = {{"zone", c.dns.zone},
              {"ttl", c.dns.ttl},
              {"listen", std::move(listen)},
              {"max_udp_payload", c.dns.max_udp_payload},
              {"rate_limit", c.dns.rate_limit}};
  if (c.dns.service_ip) dns["service_ip"] = dp::to_string(*c.dns.service_ip);
  return {{"source", c.source},
          {"eal", {{"args", c.eal.args}}},
          {"dataplane", {{"workers", d.workers},
                         {"flow_table_size", d.flow_table_size},
                         {"ipv6_flow_table_size", d.ipv6_flows()},
                         {"maglev_table_size", d.maglev_table_size},
                         {"mbufs", d.mbufs},
                         {"rx_ring_size", d.rx_ring_size},
                         {"tx_ring_size", d.tx_ring_size},
                         {"tcp_syn_timeout", d.tcp_syn_timeout},
                         {"tcp_established_timeout", d.tcp_established_timeout},
                         {"tcp_fin_timeout", d.tcp_fin_timeout},
                         {"tcp_closing_timeout", d.tcp_closing_timeout},
                         {"udp_timeout", d.udp_timeout},
                         {"idle_sleep_us", d.idle_sleep_us},
                         {"rx_interrupts", d.rx_interrupts}}},
          {"ports", std::move(ports)},
          {"routes", std::move(routes)},
          {"neighbors", std::move(neighbors)},
          {"services", json::array()},  // config_dump(): service by service
          {"dns", std::move(dns)},
          {"control", {{"socket", c.control.socket},
                       {"mode", file_mode_text(c.control.mode)},
                       {"group", c.control.group},
                       {"idle_timeout", c.control.idle_timeout}}},
          {"metrics", {{"listen", c.metrics.listen ? dp::to_string(c.metrics.listen->ip) + ":" +
                                                         std::to_string(c.metrics.listen->port)
                                                   : std::string()}}},
          {"announce", {{"port", c.announce.port},
                        {"table", c.announce.table},
                        {"stop_grace", duration_text(c.announce.stop_grace_ms)}}}};
}

LongReply config_dump(const Config& config) {
  // A copy shares every service with the running config (service_list.hpp):
  // what is written is this version, whatever changes meanwhile.
  auto c = std::make_shared<const Config>(config);
  LongArray items;
  items.count = c->services.size();
  items.element = [c](size_t i) { return service_config_json(c->services[i]); };
  items.inner_key = "endpoints";
  items.inner_count = [c](size_t i) { return c->services[i].endpoints.size(); };
  items.inner_item = [c](size_t i, size_t k) {
    return endpoint_conditions_json(c->services[i].endpoints[k]);
  };
  return LongReply(json{{"config", config_fields_json(*c)}}, {"config", "services"},
                   std::move(items));
}

LongReply config_toml(const Config& config, json fields) {
  // Piece 0 is the text before the services; piece i + 1 is service i's.
  auto c = std::make_shared<const Config>(config);
  LongArray text;
  text.as_text = true;
  text.count = c->services.size() + 1;
  text.element = [c](size_t i) -> json {
    return i == 0 ? config_toml_head(*c) : service_toml(c->services[i - 1]);
  };
  fields["toml"] = "";
  return LongReply(std::move(fields), {"toml"}, std::move(text));
}

json config_to_json(const Config& config) { return whole(config_dump(config))["config"]; }

}  // namespace podgate::ctl
