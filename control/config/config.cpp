// TOML -> Config, validated in one pass that collects every error.
//
// Every message reads `FILE:LINE:COL: KEY.PATH: what was found and what is
// allowed` (architecture decision 6, style habit 7); the position is the
// offending value's (the table's for a missing key, the key's for an unknown
// one).  All errors of a file are reported together, sorted by position, so
// one edit-and-retry fixes them all.  No value falls back silently: a key is
// either absent (documented default) or valid.
//
// This file holds what the sections mean; how values are read and errors
// collected is control/config/config_reader.hpp, the shared rules and their wording
// control/config/validate.hpp, the [dns] table control/config/config_dns.hpp and
// the [[services]] tables control/config/config_services.hpp.
#include "control/config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <system_error>
#include <tuple>

#include <toml++/toml.h>

#include "control/config/config_dns.hpp"
#include "control/config/config_health.hpp"
#include "control/config/config_net6.hpp"
#include "control/config/config_reader.hpp"
#include "control/config/config_services.hpp"
#include "control/config/validate.hpp"

namespace podgate::ctl {

namespace {

using dp::Ip4;
using dp::Prefix4;

// The sections' meaning; values are read, and errors collected, through
// ConfigReader.
class Loader : private ConfigReader {
 public:
  explicit Loader(std::string_view source) : ConfigReader(source) {}

  using ConfigReader::format;

  Result<Config> run(const toml::table& root) {
    check_keys(root, "", {"eal", "dataplane", "ports", "routes", "neighbors", "services", "dns",
                      "control", "metrics", "announce"});
    load_eal(root);
    load_dataplane(root);
    load_ports(root);
    load_routes(root);
    load_neighbors(root);
    read_services(*this, root, cfg_.ports, cfg_.services);
    // After ports and services: service_ip is checked against their addresses.
    read_dns_section(*this, root, cfg_.ports, cfg_.services, cfg_.dns);
    load_control(root);
    load_metrics(root);
    load_announce(root);
    if (has_errors()) return make_error(ErrorCode::kInvalidConfig, error_report());
    cfg_.source = source();
    // The structural rules every Config obeys, however it was made (a
    // runtime change, Kubernetes objects): what was read above already
    // passes them with positions, so this only speaks where the rules grow
    // apart, then naming the object.
    validate(cfg_, diagnostics());
    if (has_errors()) return make_error(ErrorCode::kInvalidConfig, error_report());
    return std::move(cfg_);
  }

  // A document of [[services]] tables only, checked by the same rules.
  Result<std::vector<ServiceConfig>> run_services(const toml::table& root) {
    check_keys(root, "", {"services"});
    read_services(*this, root, cfg_.ports, cfg_.services);
    if (!has_errors()) return cfg_.services.to_vector();
    return make_error(ErrorCode::kInvalidConfig, error_report());
  }

 private:
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
        wrong_type((*args)[i], element_path("eal.args", i), "a string");
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
               {"workers", "flow_table_size", "ipv6_flow_table_size", "maglev_table_size", "mbufs", "rx_ring_size",
                "tx_ring_size", "tcp_syn_timeout", "tcp_established_timeout",
                "tcp_fin_timeout", "tcp_closing_timeout", "udp_timeout", "idle_sleep_us", "rx_interrupts"});
    DataplaneConfig& d = cfg_.dataplane;
    get_u32(*t, p, "workers", 1, kMaxWorkers, d.workers);
    get_u32(*t, p, "flow_table_size", 1024, int64_t{1} << 28, d.flow_table_size);
    if (uint32_t v6 = 0; get_u32(*t, p, "ipv6_flow_table_size", 1024, int64_t{1} << 28, v6)) {
      d.ipv6_flow_table_size = v6;
    }
    if (auto m = read_maglev_size(*this, *t, p)) d.maglev_table_size = *m;
    get_u32(*t, p, "mbufs", 1023, int64_t{1} << 24, d.mbufs);
    for (std::string_view ring : {"rx_ring_size", "tx_ring_size"}) {
      uint32_t& out = ring == "rx_ring_size" ? d.rx_ring_size : d.tx_ring_size;
      if (get_u32(*t, p, ring, 64, 32768, out) && (out & (out - 1)) != 0) {
        error(t->get(ring)->source(), key_path(p, ring),
              std::to_string(out) + " is not a power of two (64, 128, ... 32768)");
      }
    }
    get_u32(*t, p, "tcp_syn_timeout", 1, kMaxTimeout, d.tcp_syn_timeout);
    get_u32(*t, p, "tcp_established_timeout", 1, kMaxTimeout, d.tcp_established_timeout);
    get_u32(*t, p, "tcp_fin_timeout", 1, kMaxTimeout, d.tcp_fin_timeout);
    get_u32(*t, p, "tcp_closing_timeout", 1, kMaxTimeout, d.tcp_closing_timeout);
    get_u32(*t, p, "udp_timeout", 1, kMaxTimeout, d.udp_timeout);
    get_u32(*t, p, "idle_sleep_us", 0, kMaxIdleSleepUs, d.idle_sleep_us);
    get_bool(*t, p, "rx_interrupts", d.rx_interrupts);
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
      check_keys(t, p, {"name", "device", "address", "address6", "mac", "mtu", "client_address", "kernel",
                        "kernel_rate", "steered_by_peer"});
      PortConfig port;
      if (auto name = get_string(t, p, "name", true)) {
        port.name = *name;
        if (!is_port_name(*name)) {
          error(t.get("name")->source(), key_path(p, "name"),
                quote(*name) + " is not a port name (1..32 of a-z, 0-9, '_' and '-')");
        }
        for (size_t j = 0; j < cfg_.ports.size(); ++j) {
          if (cfg_.ports[j].name == *name) {
            error(t.get("name")->source(), key_path(p, "name"),
                  quote(*name) + " is already the name of ports[" + std::to_string(j) + "]");
          }
        }
      }
      if (auto device = get_string(t, p, "device", true)) {
        port.device = *device;
        if (device->empty()) {
          error(t.get("device")->source(), key_path(p, "device"),
                "empty; a DPDK device such as \"0000:01:00.0\" or \"net_tap0,iface=pg0\" is needed");
        }
      }
      port.address = load_port_address(t, p);
      port.address6 = read_port_address6(*this, t, p, cfg_.ports, ports6_complete_);
      port.mac = get_mac(t, p, "mac");
      if (auto mtu = get_int(t, p, "mtu", kMinPortMtu, kMaxPortMtu)) {
        port.mtu = static_cast<uint16_t>(*mtu);
        if (port.address6 && *mtu < kMinPortMtu6) {
          error(t.get("mtu")->source(), key_path(p, "mtu"), mtu_too_small_for_ipv6(*mtu));
        }
      }
      if (auto side = get_string(t, p, "client_address")) {
        if (*side == "source") {
          port.client_address = dp::ClientAddress::kSource;
        } else if (*side == "destination") {
          port.client_address = dp::ClientAddress::kDestination;
        } else {
          error(t.get("client_address")->source(), key_path(p, "client_address"),
                quote(*side) + " is not allowed; allowed: source, destination");
        }
      }
      if (auto kernel = get_string(t, p, "kernel")) {
        port.kernel = *kernel;
        if (!is_interface_name(*kernel)) {
          error(t.get("kernel")->source(), key_path(p, "kernel"),
                quote(*kernel) + " is not an interface name (1..15 of a-z, A-Z, 0-9, '_', '-' "
                                 "and '.')");
        }
        for (size_t j = 0; j < cfg_.ports.size(); ++j) {
          if (cfg_.ports[j].kernel == *kernel) {
            error(t.get("kernel")->source(), key_path(p, "kernel"),
                  quote(*kernel) + " is already the kernel twin of ports[" + std::to_string(j) + "]");
          }
        }
      }
      if (auto rate = get_int(t, p, "kernel_rate", 1, 10000000)) {
        port.kernel_rate = static_cast<uint32_t>(*rate);
      }
      get_bool(t, p, "steered_by_peer", port.steered_by_peer);
      cfg_.ports.push_back(std::move(port));
    });
  }

  // The port's own address and connected subnet; checks it against earlier ports.
  Prefix4 load_port_address(const toml::table& t, const std::string& p) {
    auto s = get_string(t, p, "address", true);
    const std::string path = key_path(p, "address");
    std::optional<Prefix4> pfx = s ? dp::parse_prefix4(*s) : std::nullopt;
    if (!pfx) {
      ports_complete_ = false;
      if (s && dp::parse_prefix6(*s)) {
        error(t.get("address")->source(), path,
              ip6_where_ip4(*s, path) + "; a port's IPv6 address and prefix go in address6");
      } else if (s) {
        error(t.get("address")->source(), path,
              quote(*s) + " is not an address with prefix length such as \"192.0.2.1/24\"");
      }
      return {};
    }
    const toml::source_region& at = t.get("address")->source();
    uint32_t host = pfx->addr.host() & ~pfx->mask_host();
    if (pfx->length == 0) {
      error(at, path, quote(*s) + ": prefix length 0 is not allowed for a port; use 1..32");
    } else if (!is_unicast_ip4(pfx->addr)) {
      error(at, path, not_unicast_ip4(*s));
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
      if (is_ip6_entry(t, "prefix")) {
        return read_route6(*this, t, p, cfg_.ports, ports6_complete_, cfg_.routes6);
      }
      RouteConfig route;
      if (auto s = get_string(t, p, "prefix", true)) {
        const toml::source_region& at = t.get("prefix")->source();
        if (auto pfx = dp::parse_prefix4(*s); !pfx) {
          error(at, key_path(p, "prefix"), quote(*s) + " is not a prefix such as \"10.0.0.0/8\"");
        } else if (pfx->network() != pfx->addr) {
          error(at, key_path(p, "prefix"),
                quote(*s) + " has host bits set; the network is \"" +
                    dp::to_string(Prefix4{pfx->network(), pfx->length}) + "\"");
        } else {
          route.prefix = *pfx;
          for (size_t j = 0; j < cfg_.routes.size(); ++j) {
            if (cfg_.routes[j].prefix == *pfx) {
              error(at, key_path(p, "prefix"),
                    quote(*s) + " is already routed by routes[" + std::to_string(j) + "]");
            }
          }
        }
      }
      if (is_ip6_entry(t, "via")) {
        error(t.get("via")->source(), key_path(p, "via"),
              quote(t.get("via")->as_string()->get()) +
                  " is IPv6 but the prefix is IPv4; a route's next hop is of its prefix's family");
      } else if (auto via = get_ip4(t, p, "via", true)) {
        route.via = *via;
        check_on_link(*via, t.get("via")->source(), key_path(p, "via"));
      }
      cfg_.routes.push_back(route);
    });
  }

  void load_neighbors(const toml::table& root) {
    const toml::array* a = get_array(root, "", "neighbors", "an array of tables");
    if (a == nullptr) return;
    for_each_table(*a, "neighbors", [&](const toml::table& t, const std::string& p) {
      check_keys(t, p, {"ip", "mac"});
      if (is_ip6_entry(t, "ip")) {
        return read_neighbor6(*this, t, p, cfg_.ports, ports6_complete_, cfg_.neighbors6);
      }
      NeighborConfig nb;
      if (auto ip = get_ip4(t, p, "ip", true)) {
        nb.ip = *ip;
        check_on_link(*ip, t.get("ip")->source(), key_path(p, "ip"));
        for (size_t j = 0; j < cfg_.neighbors.size(); ++j) {
          if (cfg_.neighbors[j].ip == *ip) {
            error(t.get("ip")->source(), key_path(p, "ip"),
                  dp::to_string(*ip) + " is already neighbors[" + std::to_string(j) + "]");
          }
        }
      }
      if (auto mac = get_mac(t, p, "mac", true)) nb.mac = *mac;
      cfg_.neighbors.push_back(nb);
    });
  }

  // ---- [control] (docs/control-protocol.md) ----

  void load_control(const toml::table& root) {
    const toml::node* n = find(root, "", "control", false);
    if (n == nullptr) return;
    const toml::table* t = n->as_table();
    if (t == nullptr) return wrong_type(*n, "control", "a table");
    const std::string p = "control";
    check_keys(*t, p, {"socket", "mode", "group", "idle_timeout"});
    get_u32(*t, p, "idle_timeout", 0, 86400, cfg_.control.idle_timeout);
    if (auto mode = get_string(*t, p, "mode")) {
      // Octal text as in chmod and systemd's SocketMode=, e.g. "0660".
      const bool octal = mode->size() >= 3 && mode->size() <= 4 &&
                         mode->find_first_not_of("01234567") == std::string::npos;
      const uint32_t value = octal ? static_cast<uint32_t>(std::stoul(*mode, nullptr, 8)) : 0;
      if (!octal || value > 0777 || (value & 0600) != 0600) {
        error(t->get("mode")->source(), key_path(p, "mode"),
              quote(*mode) + " is not a file mode such as \"0660\" (octal, at most 0777, "
                             "readable and writable by its owner)");
      } else {
        cfg_.control.mode = value;
      }
    }
    if (auto group = get_string(*t, p, "group")) {
      if (!is_group_name(*group)) {
        error(t->get("group")->source(), key_path(p, "group"),
              quote(*group) + " is not a group name (1..32 of a-z, A-Z, 0-9, '.', '_', '-', "
                              "not starting with '-')");
      } else {
        cfg_.control.group = *group;
      }
    }
    auto path = get_string(*t, p, "socket");
    if (!path) return;
    const toml::source_region& at = t->get("socket")->source();
    if (path->empty() || path->front() != '/' || path->back() == '/') {
      error(at, key_path(p, "socket"),
            quote(*path) + " is not an absolute file path such as \"/run/podgate/podgate.sock\"");
    } else if (path->size() > kMaxSocketPath) {
      error(at, key_path(p, "socket"),
            "a path of " + std::to_string(path->size()) + " bytes; a Unix socket path has at most " +
                std::to_string(kMaxSocketPath) + " (sun_path)");
    } else {
      cfg_.control.socket = *path;
    }
  }

  // ---- [metrics] ----

  void load_metrics(const toml::table& root) {
    const toml::node* n = find(root, "", "metrics", false);
    if (n == nullptr) return;
    const toml::table* t = n->as_table();
    if (t == nullptr) return wrong_type(*n, "metrics", "a table");
    check_keys(*t, "metrics", {"listen"});
    auto listen = get_string(*t, "metrics", "listen");
    if (!listen) return;
    if (listen->empty()) {
      cfg_.metrics.listen.reset();
      return;
    }
    auto addr = parse_listen(*listen);
    if (!addr) {
      error(t->get("listen")->source(), "metrics.listen",
            is_ip6_listen(*listen)
                ? ip6_where_ip4(*listen, "metrics.listen")
                : quote(*listen) + " is not an IPv4 address and port such as \"127.0.0.1:9470\", "
                                   "or \"\" for no metrics endpoint");
      return;
    }
    cfg_.metrics.listen = *addr;
  }

  // ---- [announce] ----

  void load_announce(const toml::table& root) {
    const toml::node* n = find(root, "", "announce", false);
    if (n == nullptr) return;
    const toml::table* t = n->as_table();
    if (t == nullptr) return wrong_type(*n, "announce", "a table");
    check_keys(*t, "announce", {"port", "table", "stop_grace"});
    if (auto port = get_string(*t, "announce", "port", true)) {
      cfg_.announce.port = *port;
      const auto it = std::find_if(cfg_.ports.begin(), cfg_.ports.end(),
                                   [&](const PortConfig& p) { return p.name == *port; });
      if (it == cfg_.ports.end()) {
        error(t->get("port")->source(), "announce.port", quote(*port) + " is not the name of a port");
      } else if (it->kernel.empty()) {
        error(t->get("port")->source(), "announce.port",
              "port " + quote(*port) + " has no kernel twin (kernel = \"NAME\"); the routes "
              "BIRD announces live on it");
      }
    }
    if (auto table = get_int(*t, "announce", "table", 1, 0xffffffff)) {
      cfg_.announce.table = static_cast<uint32_t>(*table);
      if (*table >= 253 && *table <= 255) {
        error(t->get("table")->source(), "announce.table",
              std::to_string(*table) + " is one of the kernel's own tables (default, main, local); "
              "use a table of podgate's own, such as 4242");
      }
    }
    if (auto grace = get_string(*t, "announce", "stop_grace")) {
      const auto ms = parse_duration_ms(*grace);
      if (!ms) {
        error(t->get("stop_grace")->source(), "announce.stop_grace",
              quote(*grace) + " is not a duration such as \"1s\" or \"500ms\"");
      } else if (*ms > AnnounceConfig::kMaxStopGraceMs) {
        error(t->get("stop_grace")->source(), "announce.stop_grace", quote(*grace) + " is not in 0s..1m");
      } else {
        cfg_.announce.stop_grace_ms = static_cast<uint32_t>(*ms);
      }
    }
  }

  Config cfg_;
  bool ports6_complete_ = true;  // every port address6 parsed
  bool ports_complete_ = true;  // every port address parsed: on-link checks are meaningful
};

}  // namespace

namespace {

// TOML syntax first (toml++ stops at the first error), then the meaning.
template <typename Run>
auto parse_with(std::string_view text, std::string_view source, Run run)
    -> decltype(run(std::declval<Loader&>(), std::declval<const toml::table&>())) {
  Loader loader(source);
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    return make_error(ErrorCode::kInvalidConfig,
                      loader.format(e.source().begin, e.description()));
  }
  return run(loader, root);
}

}  // namespace

Result<Config> parse_config(std::string_view text, std::string_view source) {
  return parse_with(text, source, [](Loader& l, const toml::table& root) { return l.run(root); });
}

Result<std::vector<ServiceConfig>> parse_services(std::string_view text, std::string_view source) {
  return parse_with(text, source,
                    [](Loader& l, const toml::table& root) { return l.run_services(root); });
}

Result<std::string> read_config_file(const std::string& path, uint64_t max_bytes) {
  auto io_error = [&path](const char* what, int err) {
    return make_error(ErrorCode::kIo, path + ": " + what + ": " +
                                          std::error_code(err, std::generic_category()).message());
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused
  // below anyway.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return io_error("cannot open", errno);
  std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  struct stat st {};
  if (::fstat(fd, &st) != 0) return io_error("cannot read", errno);
  if (S_ISDIR(st.st_mode)) return io_error("cannot read", EISDIR);
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::kIo, path + ": not a regular file (a device, FIFO or socket); "
                                             "a config must be a regular file");
  }
  const std::string limit = std::to_string(max_bytes >> 20) + " MiB";
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return make_error(ErrorCode::kIo, path + ": " + std::to_string(st.st_size) +
                                          " bytes is larger than a config file may be (" + limit +
                                          ")");
  }
  std::string text;
  text.reserve(static_cast<size_t>(st.st_size));
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot read", errno);
    if (n == 0) break;
    // The file may grow while it is read.
    if (text.size() + static_cast<size_t>(n) > max_bytes) {
      return make_error(ErrorCode::kIo, path + ": grew past " + limit +
                                            " while being read; a config file may be at most " +
                                            limit);
    }
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

std::string absolute_config_path(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) return path;
  return absolute.lexically_normal().string();
}

uint64_t config_text_digest(std::string_view text) noexcept {
  uint64_t h = 0xcbf29ce484222325;  // FNV-1a's offset basis and prime
  for (const char c : text) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3;
  return h;
}

Result<Config> load_config(const std::string& path) {
  auto text = read_config_file(path);
  if (!text) return std::move(text).error();
  auto config = parse_config(*text, path);
  if (config) config->source_digest = config_text_digest(*text);
  return config;
}

}  // namespace podgate::ctl
