// Config -> TOML and atomic file replacement; see config_writer.hpp.
#include "control/config/config_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <system_error>

#include "control/config/config_health.hpp"

namespace podgate::ctl {

namespace {

// A TOML basic string (TOML 1.0, "String"): '"' and '\' are escaped, and so
// is every control character (U+0000..U+001F, U+007F), which may not appear
// raw.  Other bytes, UTF-8 included, are copied as they are.
std::string toml_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default: {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", u);
          out += buf;
        } else {
          out += c;
        }
      }
    }
  }
  out += '"';
  return out;
}

std::string ip_text(const dp::IpAddr& ip) { return dp::to_string(ip); }

// a + b + c, appended in order (g++ 12 at -O3 reports a false -Wrestrict
// in `"literal" + std::string`, which inserts at the front).
std::string concat(std::string_view a, std::string_view b, std::string_view c = {}) {
  std::string s;
  s.reserve(a.size() + b.size() + c.size());
  s.append(a).append(b).append(c);
  return s;
}

// Appends `key = value` lines and inline-table fields to one string.
class TomlOut {
 public:
  void comment(std::string_view text) { line(concat("# ", text)); }
  void blank() { text_ += '\n'; }
  void header(std::string_view name) { line(concat("[", name, "]")); }
  void array_header(std::string_view name) { line(concat("[[", name, "]]")); }
  void key(std::string_view k, std::string_view raw_value) {
    line(std::string(k) + " = " + std::string(raw_value));
  }
  void line(std::string_view l) {
    text_ += l;
    text_ += '\n';
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

std::string str(std::string_view s) { return toml_string(s); }
std::string num(uint64_t v) { return std::to_string(v); }
std::string boolean(bool b) { return b ? "true" : "false"; }

// ["a", "b"] on one line.
template <typename Range, typename F>
std::string inline_array(const Range& items, F element) {
  std::string out = "[";
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += ", ";
    first = false;
    out += element(item);
  }
  return out + "]";
}

// { k = v, k = v }: fields are appended as "k = v" strings.
std::string inline_table(const std::vector<std::string>& fields) {
  std::string out = "{ ";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i != 0) out += ", ";
    out += fields[i];
  }
  return out + " }";
}

std::string field(std::string_view k, std::string_view raw_value) {
  return std::string(k) + " = " + std::string(raw_value);
}

// key = [ one element a line, trailing comma ] as conf/podgate.toml writes
// ports and endpoints; `key = []` when empty.
void table_array(TomlOut& out, std::string_view k, const std::vector<std::string>& elements) {
  if (elements.empty()) return out.key(k, "[]");
  out.line(std::string(k) + " = [");
  for (const std::string& e : elements) out.line("  " + e + ",");
  out.line("]");
}

void write_eal(TomlOut& out, const EalConfig& eal) {
  out.header("eal");
  out.key("args", inline_array(eal.args, [](const std::string& a) { return str(a); }));
}

void write_dataplane(TomlOut& out, const DataplaneConfig& d) {
  out.header("dataplane");
  out.key("workers", num(d.workers));
  out.key("flow_table_size", num(d.flow_table_size));
  if (d.ipv6_flow_table_size) out.key("ipv6_flow_table_size", num(*d.ipv6_flow_table_size));
  out.key("maglev_table_size", num(d.maglev_table_size));
  out.key("mbufs", num(d.mbufs));
  out.key("rx_ring_size", num(d.rx_ring_size));
  out.key("tx_ring_size", num(d.tx_ring_size));
  out.key("tcp_syn_timeout", num(d.tcp_syn_timeout));
  out.key("tcp_established_timeout", num(d.tcp_established_timeout));
  out.key("tcp_fin_timeout", num(d.tcp_fin_timeout));
  out.key("tcp_closing_timeout", num(d.tcp_closing_timeout));
  out.key("udp_timeout", num(d.udp_timeout));
  if (d.idle_sleep_us != 0) out.key("idle_sleep_us", num(d.idle_sleep_us));
  if (d.rx_interrupts) out.key("rx_interrupts", boolean(true));
}

void write_port(TomlOut& out, const PortConfig& port) {
  out.array_header("ports");
  out.key("name", str(port.name));
  out.key("device", str(port.device));
  out.key("address", str(dp::to_string(port.address)));
  if (port.address6) out.key("address6", str(dp::to_string(*port.address6)));
  if (port.mac) out.key("mac", str(dp::to_string(*port.mac)));
  if (port.mtu) out.key("mtu", num(*port.mtu));
  if (!port.kernel.empty()) out.key("kernel", str(port.kernel));
  if (port.kernel_rate != PortConfig::kDefaultKernelRate) out.key("kernel_rate", num(port.kernel_rate));
  if (port.client_address) {
    out.key("client_address",
            str(*port.client_address == dp::ClientAddress::kSource ? "source" : "destination"));
  }
  if (port.steered_by_peer) out.key("steered_by_peer", boolean(true));
}

void write_route(TomlOut& out, const RouteConfig& route) {
  out.array_header("routes");
  out.key("prefix", str(dp::to_string(route.prefix)));
  out.key("via", str(dp::to_string(route.via)));
}

// [[routes]] and [[neighbors]] hold both families (issue 11).
void write_route6(TomlOut& out, const Route6Config& route) {
  out.array_header("routes");
  out.key("prefix", str(dp::to_string(route.prefix)));
  out.key("via", str(dp::to_string(route.via)));
}

void write_neighbor6(TomlOut& out, const Neighbor6Config& nb) {
  out.array_header("neighbors");
  out.key("ip", str(dp::to_string(nb.ip)));
  out.key("mac", str(dp::to_string(nb.mac)));
}

void write_neighbor(TomlOut& out, const NeighborConfig& nb) {
  out.array_header("neighbors");
  out.key("ip", str(dp::to_string(nb.ip)));
  out.key("mac", str(dp::to_string(nb.mac)));
}

void write_dns(TomlOut& out, const DnsConfig& dns) {
  out.header("dns");
  out.key("zone", str(dns.zone));
  out.key("ttl", num(dns.ttl));
  out.key("listen", inline_array(dns.listen, [](const DnsListen& l) {
            return str(dp::to_string(l.ip) + ":" + std::to_string(l.port));
          }));
  if (dns.service_ip) out.key("service_ip", str(dp::to_string(*dns.service_ip)));
  out.key("max_udp_payload", num(dns.max_udp_payload));
  out.key("rate_limit", num(dns.rate_limit));
}

void write_control(TomlOut& out, const ControlConfig& control) {
  out.header("control");
  out.key("socket", str(control.socket));
  out.key("mode", str(file_mode_text(control.mode)));
  if (!control.group.empty()) out.key("group", str(control.group));
  out.key("idle_timeout", num(control.idle_timeout));
}

void write_announce(TomlOut& out, const AnnounceConfig& announce) {
  if (announce.port.empty()) return;
  out.header("announce");
  out.key("port", str(announce.port));
  out.key("table", num(announce.table));
  out.key("stop_grace", str(duration_text(announce.stop_grace_ms)));
}

void write_metrics(TomlOut& out, const MetricsConfig& metrics) {
  out.header("metrics");
  out.key("listen", str(metrics.listen ? dp::to_string(metrics.listen->ip) + ":" +
                                             std::to_string(metrics.listen->port)
                                       : std::string()));
}

std::string service_port(const ServicePortConfig& p) {
  std::vector<std::string> f;
  if (!p.name.empty()) f.push_back(field("name", str(p.name)));
  f.push_back(field("port", num(p.port)));
  f.push_back(field("target_port", num(p.target_port)));
  f.push_back(field("protocol", str(dp::proto_name(p.protocol))));
  return inline_table(f);
}

std::string endpoint(const EndpointConfig& e) {
  std::vector<std::string> f;
  f.push_back(field("ip", str(ip_text(e.ip))));
  if (!e.pod.empty()) f.push_back(field("pod", str(e.pod)));
  if (!e.hostname.empty()) f.push_back(field("hostname", str(e.hostname)));
  if (!e.subdomain.empty()) f.push_back(field("subdomain", str(e.subdomain)));
  f.push_back(field("ready", boolean(e.ready)));
  f.push_back(field("serving", boolean(e.serving)));
  f.push_back(field("terminating", boolean(e.terminating)));
  f.push_back(field("weight", num(e.weight)));
  return inline_table(f);
}

// Every key, defaults included, except those of another kind (refused there).
void write_health_check(TomlOut& out, const HealthCheckConfig& h) {
  out.header("services.health_check");
  out.key("kind", str(health_kind_name(h.kind)));
  out.key("interval", str(duration_text(h.interval_ms)));
  out.key("timeout", str(duration_text(h.timeout_ms)));
  out.key("rise", num(h.rise));
  out.key("fall", num(h.fall));
  if (h.port) out.key("port", num(*h.port));
  if (h.kind == HealthKind::kHttp) {
    out.key("method", str(h.method));
    out.key("path", str(h.path));
    if (!h.host.empty()) out.key("host", str(h.host));
    out.key("expect_status", inline_array(h.expect_status, [](const StatusRange& r) {
              return r.lo == r.hi ? num(r.lo) : str(status_range_text(r));
            }));
  }
  if (h.kind == HealthKind::kDns) {
    out.key("query", str(h.query));
    out.key("query_type", str(query_type_name(h.query_type)));
    if (h.expect_address) out.key("expect_address", str(dp::to_string(*h.expect_address)));
  }
  out.key("on_failure", str(on_failure_name(h.on_failure)));
  out.key("all_unhealthy", str(all_unhealthy_name(h.all_unhealthy)));
}

void write_service(TomlOut& out, const ServiceConfig& svc) {
  const bool external = svc.type == ServiceType::kExternalName;
  out.array_header("services");
  out.key("namespace", str(svc.ns));
  out.key("name", str(svc.name));
  out.key("type", str(external ? "ExternalName" : "ClusterIP"));
  if (external) {
    out.key("external_name", str(svc.external_name));
  } else {
    // clusterIPs of a dual-stack service as the Service API writes them.
    if (svc.cluster_ip && svc.secondary_cluster_ip) {
      out.key("cluster_ips", inline_array(svc.cluster_ips(), [](const dp::IpAddr& ip) { return str(ip_text(ip)); }));
    } else {
      out.key("cluster_ip", str(svc.cluster_ip ? ip_text(*svc.cluster_ip) : "None"));
    }
  }
  const bool client_ip = svc.session_affinity == SessionAffinity::kClientIp;
  out.key("session_affinity", str(client_ip ? "ClientIP" : "None"));
  if (client_ip) out.key("timeout_seconds", num(svc.affinity_timeout));
  out.key("publish_not_ready_addresses", boolean(svc.publish_not_ready_addresses));
  // Only a service with a VIP forwards, so only it may override M.
  if (svc.maglev_table_size && !external && svc.cluster_ip) {
    out.key("maglev_table_size", num(*svc.maglev_table_size));
  }
  std::vector<std::string> ports;
  for (const ServicePortConfig& p : svc.ports) ports.push_back(service_port(p));
  table_array(out, "ports", ports);
  if (!external) {
    std::vector<std::string> endpoints;
    for (const EndpointConfig& e : svc.endpoints) endpoints.push_back(endpoint(e));
    table_array(out, "endpoints", endpoints);
  }
  // Last: the keys after a [services.health_check] header are its own.
  if (svc.health_check) write_health_check(out, *svc.health_check);
}

Error io_error(const std::string& path, std::string_view what, int err) {
  return make_error(ErrorCode::kIo, path + ": " + std::string(what) + ": " + errno_text(err));
}

// Closes an fd on every path out of write_file_atomically().
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // close(2) reports write-back errors of some file systems (NFS): checked.
  int close() {
    int fd = fd_;
    fd_ = -1;
    return ::close(fd);
  }

 private:
  int fd_;
};

// The directory holding `path`, for the fsync that makes a rename durable.
std::string parent_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Result<void> write_all(int fd, std::string_view text, const std::string& tmp) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(tmp, "cannot write", errno);
    }
    text.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// Steps up to and including the rename; the caller removes `tmp` on failure.
// `created` says whether `tmp` is ours to remove (O_EXCL: one that already
// existed belongs to someone else).
Result<void> write_and_rename(const std::string& path, const std::string& tmp,
                              std::string_view text, bool& created) {
  struct stat st{};
  bool keep_mode = false;
  if (::stat(path.c_str(), &st) == 0) {
    keep_mode = true;
  } else if (errno != ENOENT) {
    return io_error(path, "cannot stat", errno);
  }
  Fd fd(::open(tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644));
  if (fd.get() < 0) return io_error(tmp, "cannot create temporary file", errno);
  created = true;
  // The umask would otherwise narrow the existing file's mode, and the new
  // file would be its writer's (root's) rather than its owner's: a file
  // root:podgate 0640 would lock its group out.  The owner first: chown
  // clears set-id bits.
  if (keep_mode && (st.st_uid != ::geteuid() || st.st_gid != ::getegid()) &&
      ::fchown(fd.get(), st.st_uid, st.st_gid) != 0) {
    return io_error(tmp, "cannot give it the owner " + std::to_string(st.st_uid) + ":" +
                             std::to_string(st.st_gid) + " of " + path,
                    errno);
  }
  if (keep_mode && ::fchmod(fd.get(), st.st_mode & 07777) != 0) {
    return io_error(tmp, "cannot set mode", errno);
  }
  if (auto r = write_all(fd.get(), text, tmp); !r) return r;
  if (::fsync(fd.get()) != 0) return io_error(tmp, "cannot fsync", errno);
  if (fd.close() != 0) return io_error(tmp, "cannot close", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return io_error(path, "cannot rename " + tmp + " over it", errno);
  }
  return {};
}

}  // namespace

std::string file_mode_text(uint32_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode & 07777);
  return text;
}

std::string config_toml_head(const Config& config) {
  TomlOut out;
  out.comment("podgate configuration, written by podgate (config save).");
  out.comment("Every key is written, defaults included; conf/podgate.toml documents them.");
  out.blank();
  write_eal(out, config.eal);
  out.blank();
  write_dataplane(out, config.dataplane);
  // An empty array of tables has no [[...]] form; absent means empty.
  for (const PortConfig& p : config.ports) {
    out.blank();
    write_port(out, p);
  }
  for (const RouteConfig& r : config.routes) {
    out.blank();
    write_route(out, r);
  }
  for (const NeighborConfig& n : config.neighbors) {
    out.blank();
    write_neighbor(out, n);
  }
  for (const Route6Config& r : config.routes6) {
    out.blank();
    write_route6(out, r);
  }
  for (const Neighbor6Config& n : config.neighbors6) {
    out.blank();
    write_neighbor6(out, n);
  }
  out.blank();
  write_dns(out, config.dns);
  out.blank();
  write_control(out, config.control);
  out.blank();
  write_metrics(out, config.metrics);
  write_announce(out, config.announce);
  return out.take();
}

std::string service_toml(const ServiceConfig& service) {
  TomlOut out;
  out.blank();
  write_service(out, service);
  return out.take();
}

std::string config_to_toml(const Config& config) {
  std::string text = config_toml_head(config);
  for (const ServiceConfig& s : config.services) text += service_toml(s);
  return text;
}

Result<void> write_file_atomically(const std::string& link_or_path, std::string_view text) {
  // A symbolic link stays one: the file it names is replaced, as the
  // config's reader follows it (a config kept in a checkout, linked from
  // /etc).  Renamed over, the link would become a file of its own that
  // later deploys to the target no longer reach.
  std::string path = link_or_path;
  struct stat lst{};
  if (::lstat(link_or_path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
    char* target = ::realpath(link_or_path.c_str(), nullptr);
    if (target == nullptr) return io_error(link_or_path, "cannot follow the symbolic link", errno);
    path = target;
    std::free(target);
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  bool created = false;
  if (auto r = write_and_rename(path, tmp, text, created); !r) {
    if (created) ::unlink(tmp.c_str());
    return r;
  }
  const std::string dir = parent_dir(path);
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0 || ::fsync(dfd.get()) != 0) {
    return make_error(ErrorCode::kIo, path + ": replaced, but the directory " + dir +
                                          " could not be synced, so the new file may not "
                                          "survive a crash: " + errno_text(errno));
  }
  return {};
}

}  // namespace podgate::ctl
