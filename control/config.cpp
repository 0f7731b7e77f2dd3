// TOML -> Config, validated in one pass that collects every error.
//
// Every message reads `FILE:LINE:COL: KEY.PATH: what was found and what is
// allowed` (architecture decision 6, style habit 7); the position is the
// offending value's (the table's for a missing key, the key's for an unknown
// one).  All errors of a file are reported together, sorted by position, so
// one edit-and-retry fixes them all.  No value falls back silently: a key is
// either absent (documented default) or valid.
#include "control/config.hpp"

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <system_error>
#include <tuple>

#include <toml++/toml.h>

namespace podgate::ctl {

namespace {

using dp::Ip4;
using dp::Prefix4;

constexpr int64_t kMaxWorkers = 64;
constexpr int64_t kMaxTimeout = 604800;  // a week; FlowTable takes up to ~24 days
constexpr int64_t kMaxMaglevSize = 1 << 24;
constexpr size_t kMaxEndpoints = 65534;  // Maglev slots hold uint16_t, kNoBackend excluded
constexpr size_t kMaxZoneLength = 200;   // [dns] zone, in characters without the final dot
constexpr size_t kMaxSocketPath = 107;   // sockaddr_un.sun_path (108) less the final NUL

bool is_prime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; d <= n / d; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

bool is_alnum_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// RFC 1123 label as Kubernetes checks it (IsDNS1123Label).
bool is_dns1123_label(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!is_alnum_lower(s.front()) || !is_alnum_lower(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_alnum_lower(c) || c == '-'; });
}

// RFC 1035 label (IsDNS1035Label): a Service name, it must start with a letter.
bool is_dns1035_label(std::string_view s) {
  return is_dns1123_label(s) && s.front() >= 'a' && s.front() <= 'z';
}

// RFC 1123 subdomain, optionally fully qualified with a trailing dot.
bool is_dns_name(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() > 253) return false;
  while (true) {
    size_t dot = s.find('.');
    if (!is_dns1123_label(s.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

bool is_port_name(std::string_view s) {
  return !s.empty() && s.size() <= 32 &&
         std::all_of(s.begin(), s.end(),
                     [](char c) { return is_alnum_lower(c) || c == '-' || c == '_'; });
}

// An address a host or a VIP may have: not 0/8, loopback, multicast or class E.
bool is_unicast(Ip4 ip) {
  uint32_t first = ip.host() >> 24;
  return first != 0 && first != 127 && first < 224;
}

bool is_unicast(const dp::MacAddr& mac) { return (mac.bytes[0] & 1) == 0 && !mac.is_zero(); }

bool overlaps(Prefix4 a, Prefix4 b) {
  Prefix4 shorter = a.length <= b.length ? a : b;
  return shorter.contains(a.addr) && shorter.contains(b.addr);
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

std::string_view type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::string join(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

std::string index(std::string_view path, size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

struct Diagnostic {
  toml::source_position at;
  std::string text;  // "KEY.PATH: what"
};

// Where a service's VIP:port/protocol is defined, for duplicate detection.
using VipKey = std::tuple<uint32_t, uint16_t, dp::Proto>;

class Loader {
 public:
  explicit Loader(std::string_view source) : source_(source) {}

  Result<Config> run(const toml::table& root) {
    check_keys(root, "", {"eal", "dataplane", "ports", "routes", "neighbors", "services", "dns",
                      "control"});
    load_eal(root);
    load_dataplane(root);
    load_ports(root);
    load_routes(root);
    load_neighbors(root);
    load_services(root);
    load_dns(root);  // after services: service_ip is checked against their VIPs
    load_control(root);
    if (diags_.empty()) {
      cfg_.source = source_;
      return std::move(cfg_);
    }
    std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.at.line, a.at.column) < std::tie(b.at.line, b.at.column);
    });
    std::string message;
    for (const Diagnostic& d : diags_) {
      if (!message.empty()) message += '\n';
      message += format(d.at, d.text);
    }
    return make_error(ErrorCode::kInvalidConfig, std::move(message));
  }

  std::string format(toml::source_position at, std::string_view text) const {
    if (at.line == 0) at = {1, 1};  // a node without a position: blame the file's start
    return source_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " +
           std::string(text);
  }

 private:
  // ---- diagnostics and typed access ----

  void error(const toml::source_region& where, std::string_view path, std::string_view what) {
    std::string text = path.empty() ? "top level" : std::string(path);
    diags_.push_back({where.begin, text + ": " + std::string(what)});
  }

  void check_keys(const toml::table& t, std::string_view path,
                  std::initializer_list<std::string_view> allowed) {
    for (auto&& [key, value] : t) {
      (void)value;
      if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      error(key.source(), path, "unknown key '" + std::string(key.str()) + "'; allowed: " + list);
    }
  }

  // The node under `key`, nullptr when absent (an error when required).
  const toml::node* find(const toml::table& t, std::string_view path, std::string_view key,
                         bool required, std::string_view hint = {}) {
    const toml::node* n = t.get(key);
    if (n == nullptr && required) {
      error(t.source(), path, "missing required key '" + std::string(key) + "'" +
                                  std::string(hint));
    }
    return n;
  }

  void wrong_type(const toml::node& n, std::string_view path, std::string_view expected) {
    error(n.source(), path,
          "expected " + std::string(expected) + ", found " + std::string(type_name(n.type())));
  }

  std::optional<int64_t> get_int(const toml::table& t, std::string_view path, std::string_view key,
                                 int64_t lo, int64_t hi, bool required = false) {
    const toml::node* n = find(t, path, key, required);
    if (n == nullptr) return std::nullopt;
    std::string p = join(path, key);
    const auto* v = n->as_integer();
    if (v == nullptr) {
      wrong_type(*n, p, "an integer");
      return std::nullopt;
    }
    int64_t value = v->get();
    if (value < lo || value > hi) {
      error(n->source(), p,
            std::to_string(value) + " is not in " + std::to_string(lo) + ".." + std::to_string(hi));
      return std::nullopt;
    }
    return value;
  }

  // An integer field stored as uint32_t; `out` keeps its default when absent.
  bool get_u32(const toml::table& t, std::string_view path, std::string_view key, int64_t lo,
               int64_t hi, uint32_t& out) {
    auto v = get_int(t, path, key, lo, hi);
    if (v) out = static_cast<uint32_t>(*v);
    return v.has_value();
  }

  std::optional<std::string> get_string(const toml::table& t, std::string_view path,
                                        std::string_view key, bool required = false,
                                        std::string_view hint = {}) {
    const toml::node* n = find(t, path, key, required, hint);
    if (n == nullptr) return std::nullopt;
    const auto* v = n->as_string();
    if (v == nullptr) {
      wrong_type(*n, join(path, key), "a string");
      return std::nullopt;
    }
    return v->get();
  }

  void get_bool(const toml::table& t, std::string_view path, std::string_view key, bool& out) {
    const toml::node* n = find(t, path, key, false);
    if (n == nullptr) return;
    if (const auto* v = n->as_boolean()) {
      out = v->get();
    } else {
      wrong_type(*n, join(path, key), "a boolean");
    }
  }

  const toml::array* get_array(const toml::table& t, std::string_view path, std::string_view key,
                               std::string_view expected, bool required = false,
                               std::string_view hint = {}) {
    const toml::node* n = find(t, path, key, required, hint);
    if (n == nullptr) return nullptr;
    if (n->as_array() == nullptr) wrong_type(*n, join(path, key), expected);
    return n->as_array();
  }

  // Calls f(table, path) for each element of an array of tables.
  template <typename F>
  void for_each_table(const toml::array& a, std::string_view path, F f) {
    for (size_t i = 0; i < a.size(); ++i) {
      std::string p = index(path, i);
      if (const toml::table* t = a[i].as_table()) {
        f(*t, p);
      } else {
        wrong_type(a[i], p, "a table");
      }
    }
  }

  std::optional<Ip4> get_ip4(const toml::table& t, std::string_view path, std::string_view key,
                             bool required = false) {
    auto s = get_string(t, path, key, required);
    if (!s) return std::nullopt;
    auto ip = dp::parse_ip4(*s);
    if (!ip) {
      error(t.get(key)->source(), join(path, key),
            quote(*s) + " is not an IPv4 address such as \"192.0.2.1\"");
      return std::nullopt;
    }
    if (!is_unicast(*ip)) {
      error(t.get(key)->source(), join(path, key),
            quote(*s) + " is not a unicast address (0/8, 127/8 and 224/3 are not allowed)");
      return std::nullopt;
    }
    return ip;
  }

  std::optional<dp::MacAddr> get_mac(const toml::table& t, std::string_view path,
                                     std::string_view key, bool required = false) {
    auto s = get_string(t, path, key, required);
    if (!s) return std::nullopt;
    auto mac = dp::parse_mac(*s);
    std::string_view problem;
    if (!mac) {
      problem = " is not a MAC address such as \"02:00:00:00:00:01\"";
    } else if (!is_unicast(*mac)) {
      problem = " is not a unicast MAC address (the first octet's low bit must be 0, not all "
                "zero), e.g. \"02:00:00:00:00:01\"";
    }
    if (problem.empty()) return mac;
    error(t.get(key)->source(), join(path, key), quote(*s) + std::string(problem));
    return std::nullopt;
  }

  std::optional<std::string> get_label(const toml::table& t, std::string_view path,
                                       std::string_view key, bool required, bool rfc1035) {
    auto s = get_string(t, path, key, required);
    if (!s) return std::nullopt;
    if (rfc1035 ? is_dns1035_label(*s) : is_dns1123_label(*s)) return s;
    error(t.get(key)->source(), join(path, key),
          quote(*s) + (rfc1035 ? " is not a DNS-1035 label (1..63 of a-z, 0-9 and '-', "
                                 "starting with a letter, ending with a letter or digit)"
                               : " is not a DNS-1123 label (1..63 of a-z, 0-9 and '-', "
                                 "starting and ending with a letter or digit)"));
    return std::nullopt;
  }

  std::optional<uint32_t> get_maglev_size(const toml::table& t, std::string_view path) {
    auto m = get_int(t, path, "maglev_table_size", 7, kMaxMaglevSize);
    if (!m) return std::nullopt;
    if (!is_prime(static_cast<uint32_t>(*m))) {
      error(t.get("maglev_table_size")->source(), join(path, "maglev_table_size"),
            std::to_string(*m) +
                " is not prime; Maglev (NSDI'16 section 3.4) needs a prime table size, e.g. 65537");
      return std::nullopt;
    }
    return static_cast<uint32_t>(*m);
  }

  // ---- sections ----

  void load_eal(const toml::table& root) {
    const toml::node* n = find(root, "", "eal", false);
    if (n == nullptr) return;
    const toml::table* t = n->as_table();
    if (t == nullptr) return wrong_type(*n, "eal", "a table");
    check_keys(*t, "eal", {"args"});
    const toml::array* args = get_array(*t, "eal", "args", "an array of strings");
    if (args == nullptr) return;
    for (size_t i = 0; i < args->size(); ++i) {
      if (const auto* s = (*args)[i].as_string()) {
        cfg_.eal.args.push_back(s->get());
      } else {
        wrong_type((*args)[i], index("eal.args", i), "a string");
      }
    }
  }

  void load_dataplane(const toml::table& root) {
    const toml::node* n = find(root, "", "dataplane", false);
    if (n == nullptr) return;
    const toml::table* t = n->as_table();
    if (t == nullptr) return wrong_type(*n, "dataplane", "a table");
    const std::string p = "dataplane";
    check_keys(*t, p,
               {"workers", "flow_table_size", "maglev_table_size", "mbufs", "rx_ring_size",
                "tx_ring_size", "tcp_syn_timeout", "tcp_established_timeout",
                "tcp_closing_timeout", "udp_timeout"});
    DataplaneConfig& d = cfg_.dataplane;
    get_u32(*t, p, "workers", 1, kMaxWorkers, d.workers);
    get_u32(*t, p, "flow_table_size", 1024, int64_t{1} << 28, d.flow_table_size);
    if (auto m = get_maglev_size(*t, p)) d.maglev_table_size = *m;
    get_u32(*t, p, "mbufs", 1023, int64_t{1} << 24, d.mbufs);
    for (std::string_view ring : {"rx_ring_size", "tx_ring_size"}) {
      uint32_t& out = ring == "rx_ring_size" ? d.rx_ring_size : d.tx_ring_size;
      if (get_u32(*t, p, ring, 64, 32768, out) && (out & (out - 1)) != 0) {
        error(t->get(ring)->source(), join(p, ring),
              std::to_string(out) + " is not a power of two (64, 128, ... 32768)");
      }
    }
    get_u32(*t, p, "tcp_syn_timeout", 1, kMaxTimeout, d.tcp_syn_timeout);
    get_u32(*t, p, "tcp_established_timeout", 1, kMaxTimeout, d.tcp_established_timeout);
    get_u32(*t, p, "tcp_closing_timeout", 1, kMaxTimeout, d.tcp_closing_timeout);
    get_u32(*t, p, "udp_timeout", 1, kMaxTimeout, d.udp_timeout);
  }

  void load_ports(const toml::table& root) {
    const toml::array* a = get_array(root, "", "ports", "an array of tables", true,
                                     " (at least one [[ports]] table)");
    if (a == nullptr) {
      ports_complete_ = false;
      return;
    }
    if (a->empty()) error(a->source(), "ports", "empty; at least one port is needed");
    for_each_table(*a, "ports", [&](const toml::table& t, const std::string& p) {
      check_keys(t, p, {"name", "device", "address", "mac", "mtu"});
      PortConfig port;
      if (auto name = get_string(t, p, "name", true)) {
        port.name = *name;
        if (!is_port_name(*name)) {
          error(t.get("name")->source(), join(p, "name"),
                quote(*name) + " is not a port name (1..32 of a-z, 0-9, '_' and '-')");
        }
        for (size_t j = 0; j < cfg_.ports.size(); ++j) {
          if (cfg_.ports[j].name == *name) {
            error(t.get("name")->source(), join(p, "name"),
                  quote(*name) + " is already the name of ports[" + std::to_string(j) + "]");
          }
        }
      }
      if (auto device = get_string(t, p, "device", true)) {
        port.device = *device;
        if (device->empty()) {
          error(t.get("device")->source(), join(p, "device"),
                "empty; a DPDK device such as \"0000:01:00.0\" or \"net_tap0,iface=pg0\" is needed");
        }
      }
      port.address = load_port_address(t, p);
      port.mac = get_mac(t, p, "mac");
      if (auto mtu = get_int(t, p, "mtu", 68, 9000)) port.mtu = static_cast<uint16_t>(*mtu);
      cfg_.ports.push_back(std::move(port));
    });
  }

  // The port's own address and connected subnet; checks it against earlier ports.
  Prefix4 load_port_address(const toml::table& t, const std::string& p) {
    auto s = get_string(t, p, "address", true);
    const std::string path = join(p, "address");
    std::optional<Prefix4> pfx = s ? dp::parse_prefix4(*s) : std::nullopt;
    if (!pfx) {
      ports_complete_ = false;
      if (s) {
        error(t.get("address")->source(), path,
              quote(*s) + " is not an address with prefix length such as \"192.0.2.1/24\"");
      }
      return {};
    }
    const toml::source_region& at = t.get("address")->source();
    uint32_t host = pfx->addr.host() & ~pfx->mask_host();
    if (pfx->length == 0) {
      error(at, path, quote(*s) + ": prefix length 0 is not allowed for a port; use 1..32");
    } else if (!is_unicast(pfx->addr)) {
      error(at, path, quote(*s) + " is not a unicast address (0/8, 127/8 and 224/3 are not allowed)");
    } else if (pfx->length <= 30 && (host == 0 || host == ~pfx->mask_host())) {
      error(at, path, quote(*s) + " is the subnet's " + (host == 0 ? "network" : "broadcast") +
                          " address; a port needs a host address such as \"" +
                          dp::to_string(Ip4::from_host(pfx->network().host() + 1)) + "/" +
                          std::to_string(pfx->length) + "\"");
    } else {
      for (size_t j = 0; j < cfg_.ports.size(); ++j) {
        const Prefix4& other = cfg_.ports[j].address;
        if (other.length == 0) continue;  // invalid, already reported
        if (other.addr == pfx->addr) {
          error(at, path, quote(*s) + ": " + dp::to_string(pfx->addr) +
                              " is already the address of ports[" + std::to_string(j) + "]");
        } else if (overlaps(other, *pfx)) {
          error(at, path, quote(*s) + ": subnet " + dp::to_string(Prefix4{pfx->network(), pfx->length}) +
                              " overlaps subnet " + dp::to_string(Prefix4{other.network(), other.length}) +
                              " of ports[" + std::to_string(j) + "]");
        }
      }
    }
    return *pfx;
  }

  // Next hops and neighbours must be on a connected subnet, and not ours.
  void check_on_link(Ip4 ip, const toml::source_region& at, std::string_view path) {
    if (!ports_complete_) return;  // the port addresses themselves are wrong
    std::string subnets;
    for (size_t j = 0; j < cfg_.ports.size(); ++j) {
      const PortConfig& port = cfg_.ports[j];
      if (port.address.addr == ip) {
        return error(at, path, dp::to_string(ip) + " is the address of ports[" +
                                   std::to_string(j) + "] (" + port.name + ")");
      }
      if (port.address.contains(ip)) return;
      subnets += (subnets.empty() ? "" : ", ") +
                 dp::to_string(Prefix4{port.address.network(), port.address.length});
    }
    error(at, path, dp::to_string(ip) + " is not in a port's connected subnet (" + subnets + ")");
  }

  void load_routes(const toml::table& root) {
    const toml::array* a = get_array(root, "", "routes", "an array of tables");
    if (a == nullptr) return;
    for_each_table(*a, "routes", [&](const toml::table& t, const std::string& p) {
      check_keys(t, p, {"prefix", "via"});
      RouteConfig route;
      if (auto s = get_string(t, p, "prefix", true)) {
        const toml::source_region& at = t.get("prefix")->source();
        if (auto pfx = dp::parse_prefix4(*s); !pfx) {
          error(at, join(p, "prefix"), quote(*s) + " is not a prefix such as \"10.0.0.0/8\"");
        } else if (pfx->network() != pfx->addr) {
          error(at, join(p, "prefix"),
                quote(*s) + " has host bits set; the network is \"" +
                    dp::to_string(Prefix4{pfx->network(), pfx->length}) + "\"");
        } else {
          route.prefix = *pfx;
          for (size_t j = 0; j < cfg_.routes.size(); ++j) {
            if (cfg_.routes[j].prefix == *pfx) {
              error(at, join(p, "prefix"),
                    quote(*s) + " is already routed by routes[" + std::to_string(j) + "]");
            }
          }
        }
      }
      if (auto via = get_ip4(t, p, "via", true)) {
        route.via = *via;
        check_on_link(*via, t.get("via")->source(), join(p, "via"));
      }
      cfg_.routes.push_back(route);
    });
  }

  void load_neighbors(const toml::table& root) {
    const toml::array* a = get_array(root, "", "neighbors", "an array of tables");
    if (a == nullptr) return;
    for_each_table(*a, "neighbors", [&](const toml::table& t, const std::string& p) {
      check_keys(t, p, {"ip", "mac"});
      NeighborConfig nb;
      if (auto ip = get_ip4(t, p, "ip", true)) {
        nb.ip = *ip;
        check_on_link(*ip, t.get("ip")->source(), join(p, "ip"));
        for (size_t j = 0; j < cfg_.neighbors.size(); ++j) {
          if (cfg_.neighbors[j].ip == *ip) {
            error(t.get("ip")->source(), join(p, "ip"),
                  dp::to_string(*ip) + " is already neighbors[" + std::to_string(j) + "]");
          }
        }
      }
      if (auto mac = get_mac(t, p, "mac", true)) nb.mac = *mac;
      cfg_.neighbors.push_back(nb);
    });
  }

  void load_services(const toml::table& root) {
    const toml::array* a = get_array(root, "", "services", "an array of tables");
    if (a == nullptr) return;
    for_each_table(*a, "services", [&](const toml::table& t, const std::string& p) {
      cfg_.services.push_back(load_service(t, p));
    });
  }

  ServiceConfig load_service(const toml::table& t, const std::string& p) {
    check_keys(t, p,
               {"namespace", "name", "type", "cluster_ip", "external_name", "session_affinity",
                "timeout_seconds", "publish_not_ready_addresses", "maglev_table_size", "ports",
                "endpoints"});
    ServiceConfig svc;
    auto ns = get_label(t, p, "namespace", true, false);
    auto name = get_label(t, p, "name", true, true);
    if (ns) svc.ns = *ns;
    if (name) svc.name = *name;
    const size_t self = cfg_.services.size();
    if (ns && name) {
      for (size_t j = 0; j < self; ++j) {
        if (cfg_.services[j].ns == *ns && cfg_.services[j].name == *name) {
          error(t.get("name")->source(), join(p, "name"),
                *ns + "/" + *name + " is already defined by services[" + std::to_string(j) + "]");
        }
      }
    }

    if (auto type = get_string(t, p, "type")) {
      if (*type == "ExternalName") {
        svc.type = ServiceType::kExternalName;
      } else if (*type != "ClusterIP") {
        error(t.get("type")->source(), join(p, "type"),
              quote(*type) + " is not supported; allowed: ClusterIP, ExternalName");
      }
    }
    const bool external = svc.type == ServiceType::kExternalName;
    if (external) {
      if (auto en = get_string(t, p, "external_name", true,
                               " (the DNS name an ExternalName service aliases)")) {
        svc.external_name = *en;
        if (!is_dns_name(*en)) {
          error(t.get("external_name")->source(), join(p, "external_name"),
                quote(*en) + " is not a DNS name (dot-separated DNS-1123 labels, at most 253 "
                             "characters), e.g. \"db.example.com\"");
        }
      }
      for (std::string_view key : {"cluster_ip", "endpoints"}) {
        if (const toml::node* n = t.get(key)) {
          error(n->source(), join(p, key), "not allowed with type = \"ExternalName\"");
        }
      }
    } else {
      if (const toml::node* n = t.get("external_name")) {
        error(n->source(), join(p, "external_name"), "only allowed with type = \"ExternalName\"");
      }
      load_cluster_ip(t, p, svc);
    }

    const toml::node* timeout = t.get("timeout_seconds");
    bool affinity_known = true;  // a wrong session_affinity is reported once, not again here
    if (auto aff = get_string(t, p, "session_affinity")) {
      if (*aff == "ClientIP") {
        svc.session_affinity = SessionAffinity::kClientIp;
      } else if (*aff != "None") {
        affinity_known = false;
        error(t.get("session_affinity")->source(), join(p, "session_affinity"),
              quote(*aff) + " is not allowed; allowed: None, ClientIP");
      }
    }
    if (!affinity_known) {
      // nothing more to say about timeout_seconds
    } else if (timeout != nullptr && svc.session_affinity != SessionAffinity::kClientIp) {
      error(timeout->source(), join(p, "timeout_seconds"),
            "only allowed with session_affinity = \"ClientIP\"");
    } else {
      get_u32(t, p, "timeout_seconds", 1, 86400, svc.affinity_timeout);
    }
    get_bool(t, p, "publish_not_ready_addresses", svc.publish_not_ready_addresses);
    // Whether the service is meant to have a VIP, even if its value was wrong
    // (then only that value is reported, not everything depending on it).
    const toml::node* cip = t.get("cluster_ip");
    const bool forwards = !external && cip != nullptr &&
                          !(cip->as_string() != nullptr && cip->as_string()->get() == "None");
    if (const toml::node* n = t.get("maglev_table_size"); n && !forwards) {
      error(n->source(), join(p, "maglev_table_size"),
            "only allowed for a service with a cluster_ip (headless and ExternalName services "
            "do not forward)");
    } else {
      svc.maglev_table_size = get_maglev_size(t, p);
    }

    load_service_ports(t, p, svc, self, forwards);
    load_endpoints(t, p, svc);
    return svc;
  }

  void load_cluster_ip(const toml::table& t, const std::string& p, ServiceConfig& svc) {
    auto s = get_string(t, p, "cluster_ip", true,
                        " (an IPv4 address, or \"None\" for a headless service)");
    if (!s || *s == "None") return;
    auto vip = get_ip4(t, p, "cluster_ip");
    if (!vip) return;
    svc.cluster_ip = dp::IpAddr::v4(*vip);
    for (size_t j = 0; j < cfg_.ports.size(); ++j) {
      if (cfg_.ports[j].address.addr == *vip) {
        error(t.get("cluster_ip")->source(), join(p, "cluster_ip"),
              *s + " is the address of ports[" + std::to_string(j) + "] (" + cfg_.ports[j].name +
                  "); a cluster IP must not be a port address");
      }
    }
  }

  void load_service_ports(const toml::table& t, const std::string& p, ServiceConfig& svc,
                          size_t self, bool forwards) {
    const std::string pp = join(p, "ports");
    const toml::array* a = get_array(t, p, "ports", "an array of tables", forwards,
                                     " (a service with a cluster_ip forwards ports)");
    if (a == nullptr) return;
    if (a->empty() && forwards) {
      error(a->source(), pp, "empty; a service with a cluster_ip needs at least one port");
    }
    for_each_table(*a, pp, [&](const toml::table& pt, const std::string& p2) {
      check_keys(pt, p2, {"name", "port", "target_port", "protocol"});
      ServicePortConfig port;
      if (a->size() > 1 && pt.get("name") == nullptr) {
        error(pt.source(), p2, "missing required key 'name' (required when a service has "
                               "several ports)");
      }
      if (auto name = get_label(pt, p2, "name", false, false)) {
        port.name = *name;
        for (size_t j = 0; j < svc.ports.size(); ++j) {
          if (svc.ports[j].name == *name) {
            error(pt.get("name")->source(), join(p2, "name"),
                  quote(*name) + " is already the name of " + index(pp, j));
          }
        }
      }
      auto number = get_int(pt, p2, "port", 1, 65535, true);
      if (number) port.port = static_cast<uint16_t>(*number);
      port.target_port = port.port;
      if (auto target = get_int(pt, p2, "target_port", 1, 65535)) {
        port.target_port = static_cast<uint16_t>(*target);
      }
      if (auto proto = get_string(pt, p2, "protocol")) {
        if (*proto == "UDP") {
          port.protocol = dp::Proto::kUdp;
        } else if (*proto != "TCP") {
          error(pt.get("protocol")->source(), join(p2, "protocol"),
                quote(*proto) + " is not supported; allowed: TCP, UDP");
          number.reset();  // no duplicate checks on an unknown protocol
        }
      }
      if (number) check_vip_port(pt.get("port")->source(), join(p2, "port"), svc, port, self);
      svc.ports.push_back(std::move(port));
    });
  }

  void check_vip_port(const toml::source_region& at, const std::string& path,
                      const ServiceConfig& svc, const ServicePortConfig& port, size_t self) {
    std::string what = std::to_string(port.port) + "/" + std::string(dp::proto_name(port.protocol));
    for (const ServicePortConfig& earlier : svc.ports) {
      if (earlier.port == port.port && earlier.protocol == port.protocol) {
        return error(at, path, what + " is listed twice in this service");
      }
    }
    if (!svc.cluster_ip) return;
    VipKey key{svc.cluster_ip->as_v4().host(), port.port, port.protocol};
    auto [it, inserted] = vip_ports_.emplace(key, self);
    if (!inserted) {
      const ServiceConfig& other = cfg_.services[it->second];
      error(at, path, dp::to_string(svc.cluster_ip->as_v4()) + ":" + what +
                          " is already served by services[" + std::to_string(it->second) + "] (" +
                          other.ns + "/" + other.name + ")");
    }
  }

  void load_endpoints(const toml::table& t, const std::string& p, ServiceConfig& svc) {
    if (svc.type == ServiceType::kExternalName) return;  // reported in load_service
    const std::string ep = join(p, "endpoints");
    const toml::array* a = get_array(t, p, "endpoints", "an array of tables");
    if (a == nullptr) return;
    if (a->size() > kMaxEndpoints) {
      error(a->source(), ep, std::to_string(a->size()) + " endpoints; at most " +
                                 std::to_string(kMaxEndpoints) + " are allowed");
    }
    for_each_table(*a, ep, [&](const toml::table& et, const std::string& p2) {
      check_keys(et, p2, {"ip", "pod", "hostname", "subdomain", "ready", "serving",
                          "terminating", "weight"});
      EndpointConfig e;
      if (auto ip = get_ip4(et, p2, "ip", true)) {
        e.ip = dp::IpAddr::v4(*ip);
        for (size_t j = 0; j < svc.endpoints.size(); ++j) {
          if (svc.endpoints[j].ip == e.ip) {
            error(et.get("ip")->source(), join(p2, "ip"),
                  dp::to_string(*ip) + " is already " + index(ep, j));
          }
        }
      }
      if (auto pod = get_string(et, p2, "pod")) e.pod = *pod;
      // Duplicate hostnames are allowed: DNS answers every matching address
      // (../shared/design/dns.md, "Endpoint names").
      if (auto h = get_label(et, p2, "hostname", false, false)) e.hostname = *h;
      if (auto sub = get_label(et, p2, "subdomain", false, false)) e.subdomain = *sub;
      get_bool(et, p2, "ready", e.ready);
      e.serving = e.ready;  // EndpointSlice: serving defaults to ready
      get_bool(et, p2, "serving", e.serving);
      get_bool(et, p2, "terminating", e.terminating);
      // EndpointSlice conditions (KEP-1672): ready = serving && !terminating.
      if (e.ready && (!e.serving || e.terminating)) {
        const toml::node* at = et.get("ready");
        if (at == nullptr) at = et.get(e.terminating ? "terminating" : "serving");
        error(at->source(), p2,
              std::string("ready = true contradicts ") +
                  (e.terminating ? "terminating = true" : "serving = false") +
                  "; a ready endpoint is serving and not terminating");
      }
      get_u32(et, p2, "weight", 1, 256, e.weight);
      svc.endpoints.push_back(std::move(e));
    });
  }

  // ---- [dns] (../shared/design/dns.md) ----

  void load_dns(const toml::table& root) {
    const toml::node* n = find(root, "", "dns", false);
    if (n == nullptr) return;
    const toml::table* t = n->as_table();
    if (t == nullptr) return wrong_type(*n, "dns", "a table");
    const std::string p = "dns";
    check_keys(*t, p, {"zone", "ttl", "listen", "service_ip", "max_udp_payload"});
    DnsConfig& d = cfg_.dns;
    if (auto zone = get_string(*t, p, "zone")) {
      std::string_view z = *zone;
      if (!z.empty() && z.back() == '.') z.remove_suffix(1);  // "cluster.local." is the same
      // 253 leaves no room for the names under it; 200 leaves 53 octets for
      // the longest shapes the zone holds (_port._proto.SVC.NS.svc.ZONE).
      if (!is_dns_name(z) || z.size() > kMaxZoneLength) {
        error(t->get("zone")->source(), join(p, "zone"),
              quote(*zone) + " is not a DNS name of at most " + std::to_string(kMaxZoneLength) +
                  " characters (dot-separated DNS-1123 labels: a-z, 0-9 and '-'), e.g. "
                  "\"cluster.local\"");
      } else {
        d.zone = std::string(z);
      }
    }
    get_u32(*t, p, "ttl", 1, 86400, d.ttl);
    if (auto payload = get_int(*t, p, "max_udp_payload", 512, 4096)) {
      d.max_udp_payload = static_cast<uint16_t>(*payload);
    }
    load_dns_listen(*t, p);
    load_dns_service_ip(*t, p);
  }

  void load_dns_listen(const toml::table& t, const std::string& p) {
    const std::string lp = join(p, "listen");
    const toml::array* a = get_array(t, p, "listen", "an array of strings");
    if (a == nullptr) return;
    cfg_.dns.listen.clear();  // given: replaces the default, [] means no listener
    for (size_t i = 0; i < a->size(); ++i) {
      const std::string ip = index(lp, i);
      const auto* s = (*a)[i].as_string();
      if (s == nullptr) {
        wrong_type((*a)[i], ip, "a string");
        continue;
      }
      auto addr = parse_listen(s->get());
      if (!addr) {
        error((*a)[i].source(), ip,
              quote(s->get()) + " is not an IPv4 address and port such as \"127.0.0.1:53\" "
                                "(port 1..65535; 0.0.0.0 listens on every address)");
        continue;
      }
      const std::string text = dp::to_string(addr->ip) + ":" + std::to_string(addr->port);
      for (size_t j = 0; j < cfg_.dns.listen.size(); ++j) {
        const DnsListen& other = cfg_.dns.listen[j];
        if (other.port != addr->port) continue;
        // The kernel refuses a second bind of the same port when one of the
        // two is the wildcard address, so that overlap is a mistake too.
        if (other.ip == addr->ip || other.ip.is_zero() || addr->ip.is_zero()) {
          error((*a)[i].source(), ip,
                text + (other.ip == addr->ip ? " is already " : " overlaps ") + index(lp, j) +
                    (other.ip == addr->ip ? ""
                                          : " (" + dp::to_string(other.ip) + ":" +
                                                std::to_string(other.port) + ")"));
          break;
        }
      }
      cfg_.dns.listen.push_back(*addr);
    }
  }

  static std::optional<DnsListen> parse_listen(std::string_view s) {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto ip = dp::parse_ip4(s.substr(0, colon));
    std::string_view port = s.substr(colon + 1);
    if (!ip || port.empty() || port.size() > 5 || (port.size() > 1 && port[0] == '0') ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    uint32_t value = 0;
    for (char c : port) value = value * 10 + static_cast<uint32_t>(c - '0');
    // Multicast and class E cannot be bound for a server; 0.0.0.0 and 127/8 can.
    if (value == 0 || value > 65535 || (ip->host() >> 24) >= 224) return std::nullopt;
    return DnsListen{*ip, static_cast<uint16_t>(value)};
  }

  // The DNS service VIP: answered on the dataplane like a cluster IP, so it
  // must not collide with an address the dataplane already answers for.
  void load_dns_service_ip(const toml::table& t, const std::string& p) {
    auto vip = get_ip4(t, p, "service_ip");
    if (!vip) return;
    const toml::source_region& at = t.get("service_ip")->source();
    const std::string path = join(p, "service_ip");
    bool ok = true;
    for (size_t j = 0; j < cfg_.ports.size(); ++j) {
      const PortConfig& port = cfg_.ports[j];
      if (port.address.length == 0) continue;  // invalid, already reported
      uint32_t host = vip->host() & ~port.address.mask_host();
      if (port.address.addr == *vip) {
        error(at, path, dp::to_string(*vip) + " is the address of ports[" + std::to_string(j) +
                            "] (" + port.name + "); the DNS service IP must not be a port address");
        ok = false;
      } else if (port.address.length <= 30 && port.address.contains(*vip) &&
                 (host == 0 || host == ~port.address.mask_host())) {
        error(at, path, dp::to_string(*vip) + " is the " + (host == 0 ? "network" : "broadcast") +
                            " address of ports[" + std::to_string(j) + "] (" + port.name + ")");
        ok = false;
      }
    }
    for (size_t j = 0; j < cfg_.services.size(); ++j) {
      const ServiceConfig& svc = cfg_.services[j];
      if (svc.cluster_ip && svc.cluster_ip->as_v4() == *vip) {
        error(at, path, dp::to_string(*vip) + " is the cluster_ip of services[" +
                            std::to_string(j) + "] (" + svc.ns + "/" + svc.name +
                            "); the DNS service IP must be an address of its own");
        ok = false;
      }
    }
    if (ok) cfg_.dns.service_ip = *vip;
  }

  // ---- [control] (docs/control-protocol.md) ----

  void load_control(const toml::table& root) {
    const toml::node* n = find(root, "", "control", false);
    if (n == nullptr) return;
    const toml::table* t = n->as_table();
    if (t == nullptr) return wrong_type(*n, "control", "a table");
    const std::string p = "control";
    check_keys(*t, p, {"socket"});
    auto path = get_string(*t, p, "socket");
    if (!path) return;
    const toml::source_region& at = t->get("socket")->source();
    if (path->empty() || path->front() != '/' || path->back() == '/') {
      error(at, join(p, "socket"),
            quote(*path) + " is not an absolute file path such as \"/run/podgate/podgate.sock\"");
    } else if (path->size() > kMaxSocketPath) {
      error(at, join(p, "socket"),
            "a path of " + std::to_string(path->size()) + " bytes; a Unix socket path has at most " +
                std::to_string(kMaxSocketPath) + " (sun_path)");
    } else {
      cfg_.control.socket = *path;
    }
  }

  std::string source_;
  std::vector<Diagnostic> diags_;
  Config cfg_;
  bool ports_complete_ = true;  // every port address parsed: on-link checks are meaningful
  std::map<VipKey, size_t> vip_ports_;
};

}  // namespace

Result<Config> parse_config(std::string_view text, std::string_view source) {
  Loader loader(source);
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    return make_error(ErrorCode::kInvalidConfig,
                      loader.format(e.source().begin, e.description()));
  }
  return loader.run(root);
}

Result<Config> load_config(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    return make_error(ErrorCode::kIo, path + ": cannot open: " +
                                          std::error_code(errno, std::generic_category()).message());
  }
  std::string text;
  char buf[16384];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, n);
  if (std::ferror(f.get())) {
    return make_error(ErrorCode::kIo, path + ": cannot read: " +
                                          std::error_code(errno, std::generic_category()).message());
  }
  return parse_config(text, path);
}

}  // namespace podgate::ctl
