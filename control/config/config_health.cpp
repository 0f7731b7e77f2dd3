// [services.health_check]; see config_health.hpp.
#include "control/config/config_health.hpp"

#include <charconv>
#include <limits>

#include "control/config/json_input.hpp"
#include "control/config/validate.hpp"

namespace podgate::ctl {

std::optional<uint64_t> parse_duration_ms(std::string_view s) noexcept {
  uint64_t n = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, n);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  const std::string_view unit(p, static_cast<size_t>(end - p));
  uint64_t scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60 * 1000;
  } else {
    return std::nullopt;
  }
  if (n > (uint64_t{1} << 40)) return std::nullopt;
  return n * scale;
}

std::string duration_text(uint32_t ms) {
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string_view health_kind_name(HealthKind k) noexcept {
  switch (k) {
    case HealthKind::kTcp: return "tcp";
    case HealthKind::kHttp: return "http";
    case HealthKind::kDns: return "dns";
  }
  return "tcp";
}

std::optional<HealthKind> parse_health_kind(std::string_view s) noexcept {
  if (s == "tcp") return HealthKind::kTcp;
  if (s == "http") return HealthKind::kHttp;
  if (s == "dns") return HealthKind::kDns;
  return std::nullopt;
}

std::string_view on_failure_name(HealthOnFailure f) noexcept {
  return f == HealthOnFailure::kReset ? "reset" : "drain";
}

std::string_view all_unhealthy_name(AllUnhealthy a) noexcept {
  return a == AllUnhealthy::kDrop ? "drop" : "fail_open";
}

namespace {

std::optional<uint16_t> status_code(std::string_view s) noexcept {
  uint16_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 100 || v > 599) return std::nullopt;
  return v;
}

constexpr std::pair<std::string_view, uint16_t> kQueryTypes[] = {
    {"A", 1}, {"NS", 2}, {"CNAME", 5}, {"SOA", 6}, {"PTR", 12}, {"TXT", 16}, {"AAAA", 28}, {"SRV", 33}};

}  // namespace

std::optional<StatusRange> parse_status_range(std::string_view s) noexcept {
  const size_t dash = s.find('-');
  if (dash == std::string_view::npos) {
    auto v = status_code(s);
    if (!v) return std::nullopt;
    return StatusRange{*v, *v};
  }
  auto lo = status_code(s.substr(0, dash));
  auto hi = status_code(s.substr(dash + 1));
  if (!lo || !hi || *lo > *hi) return std::nullopt;
  return StatusRange{*lo, *hi};
}

std::string status_range_text(const StatusRange& r) {
  if (r.lo == r.hi) return std::to_string(r.lo);
  return std::to_string(r.lo) + "-" + std::to_string(r.hi);
}

std::optional<uint16_t> parse_query_type(std::string_view s) noexcept {
  for (const auto& [name, type] : kQueryTypes) {
    if (name == s) return type;
  }
  return std::nullopt;
}

std::string_view query_type_name(uint16_t t) noexcept {
  for (const auto& [name, type] : kQueryTypes) {
    if (type == t) return name;
  }
  return "A";
}

std::optional<std::string> bad_http_method(std::string_view m) {
  const bool ok = !m.empty() && m.size() <= 16 &&
                  m.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string_view::npos;
  if (ok) return std::nullopt;
  return quote(m) + " is not an HTTP method such as \"GET\" or \"HEAD\" (1..16 of A-Z)";
}

std::optional<std::string> bad_http_path(std::string_view p) {
  bool ok = !p.empty() && p.front() == '/' && p.size() <= 1024;
  for (char c : p) ok = ok && c > 0x20 && c < 0x7f;
  if (ok) return std::nullopt;
  return quote(p) + " is not a request path such as \"/healthz\" (starts with '/', at most 1024 "
                    "printable ASCII characters, no spaces)";
}

std::optional<std::string> bad_http_host(std::string_view h) {
  bool ok = h.size() <= 255;
  for (char c : h) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_');
  }
  if (ok) return std::nullopt;
  return quote(h) + " is not a Host header such as \"www.example.com\" or \"web:8080\" (at most "
                    "255 of letters, digits, '.', '-', '_', ':', '[', ']')";
}

std::optional<std::pair<std::string, std::string>> health_check_problem(const ServiceConfig& svc) {
  if (!svc.health_check) return std::nullopt;
  const HealthCheckConfig& h = *svc.health_check;
  if (svc.type == ServiceType::kExternalName) {
    return std::pair{std::string(), std::string("not allowed with type = \"ExternalName\" "
                                                "(it has no endpoints to probe)")};
  }
  if (h.interval_ms < kMinHealthIntervalMs || h.interval_ms > kMaxHealthIntervalMs) {
    return std::pair{std::string("interval"), duration_text(h.interval_ms) + " is not in 100ms..1h"};
  }
  if (h.timeout_ms < kMinHealthTimeoutMs || h.timeout_ms > h.interval_ms) {
    return std::pair{std::string("timeout"),
                     duration_text(h.timeout_ms) + " is not in 10ms..interval (" +
                         duration_text(h.interval_ms) + "): a probe ends before the next begins"};
  }
  if (h.rise < 1 || h.rise > kMaxHealthRiseFall) {
    return std::pair{std::string("rise"), not_in_range(h.rise, 1, kMaxHealthRiseFall)};
  }
  if (h.fall < 1 || h.fall > kMaxHealthRiseFall) {
    return std::pair{std::string("fall"), not_in_range(h.fall, 1, kMaxHealthRiseFall)};
  }
  if (h.port && *h.port == 0) return std::pair{std::string("port"), not_in_range(0, kMinPort, kMaxPort)};
  if (auto bad = bad_http_method(h.method)) return std::pair{std::string("method"), *bad};
  if (auto bad = bad_http_path(h.path)) return std::pair{std::string("path"), *bad};
  if (auto bad = bad_http_host(h.host)) return std::pair{std::string("host"), *bad};
  if (h.expect_status.empty()) {
    return std::pair{std::string("expect_status"), std::string("empty; at least one status such as 200 "
                                                               "or \"200-399\" is needed")};
  }
  if (h.kind == HealthKind::kDns) {
    if (h.query.empty()) {
      return std::pair{std::string(), std::string("missing required key 'query' (kind = \"dns\" "
                                                  "asks a name, e.g. \"example.com\")")};
    }
    if (!is_dns_name(h.query)) return std::pair{std::string("query"), not_dns_name(h.query)};
    if (h.expect_address && h.query_type != 1) {
      return std::pair{std::string("expect_address"), std::string("only allowed with query_type = \"A\"")};
    }
  }
  if (!h.port) {
    bool any = false;
    for (const ServicePortConfig& p : svc.ports) any = any || p.protocol == h.protocol();
    if (!any) {
      return std::pair{std::string(),
                       std::string("kind = \"") + std::string(health_kind_name(h.kind)) +
                           "\" probes over " + std::string(dp::proto_name(h.protocol())) +
                           " but the service has no " + std::string(dp::proto_name(h.protocol())) +
                           " port; set health_check.port"};
    }
  }
  return std::nullopt;
}

namespace {

// The integer keys of a check and their ranges: read_health_check() reads
// them by these, and parse_health_check_json() names by them a number
// beyond TOML's integers.
struct IntegerKey {
  std::string_view name;
  int64_t lo;
  int64_t hi;
};
constexpr IntegerKey kRise{"rise", 1, kMaxHealthRiseFall};
constexpr IntegerKey kFall{"fall", 1, kMaxHealthRiseFall};
constexpr IntegerKey kPort{"port", kMinPort, kMaxPort};

// Which keys a kind takes beyond the common ones.
bool http_key(std::string_view k) {
  return k == "method" || k == "path" || k == "host" || k == "expect_status";
}
bool dns_key(std::string_view k) { return k == "query" || k == "query_type" || k == "expect_address"; }

void read_duration(ConfigReader& r, const toml::table& t, std::string_view path, std::string_view key,
                   uint32_t& out) {
  auto s = r.get_string(t, path, key);
  if (!s) return;
  auto ms = parse_duration_ms(*s);
  if (!ms) {
    r.error(t.get(key)->source(), key_path(path, key),
            quote(*s) + " is not a duration such as \"2s\", \"500ms\" or \"1m\"");
    return;
  }
  if (*ms > UINT32_MAX) {
    r.error(t.get(key)->source(), key_path(path, key), quote(*s) + " is not in 100ms..1h");
    return;
  }
  out = static_cast<uint32_t>(*ms);
}

}  // namespace

void read_health_check(ConfigReader& r, const toml::table& t, std::string_view path, ServiceConfig& svc) {
  const toml::node* n = t.get("health_check");
  if (n == nullptr) return;
  const std::string p = key_path(path, "health_check");
  const toml::table* ht = n->as_table();
  if (ht == nullptr) return r.wrong_type(*n, p, "a table");
  r.check_keys(*ht, p,
               {"kind", "interval", "timeout", "rise", "fall", "port", "method", "path", "host",
                "expect_status", "query", "query_type", "expect_address", "on_failure",
                "all_unhealthy"});
  HealthCheckConfig h;
  const size_t errors_before = r.error_count();
  bool kind_known = true;
  if (auto kind = r.get_string(*ht, p, "kind")) {
    if (auto k = parse_health_kind(*kind)) {
      h.kind = *k;
    } else {
      kind_known = false;
      r.error(ht->get("kind")->source(), key_path(p, "kind"),
              quote(*kind) + " is not allowed; allowed: tcp, http, dns");
    }
  }
  // Keys of another kind are mistakes, not ignored.
  if (kind_known) {
    for (const auto& [key, node] : *ht) {
      const bool wrong = (http_key(key.str()) && h.kind != HealthKind::kHttp) ||
                         (dns_key(key.str()) && h.kind != HealthKind::kDns);
      if (wrong) {
        r.error(node.source(), key_path(p, key.str()),
                std::string("only allowed with kind = \"") + (http_key(key.str()) ? "http" : "dns") + "\"");
      }
    }
  }
  read_duration(r, *ht, p, "interval", h.interval_ms);
  read_duration(r, *ht, p, "timeout", h.timeout_ms);
  r.get_u32(*ht, p, kRise.name, kRise.lo, kRise.hi, h.rise);
  r.get_u32(*ht, p, kFall.name, kFall.lo, kFall.hi, h.fall);
  if (auto port = r.get_int(*ht, p, kPort.name, kPort.lo, kPort.hi)) h.port = static_cast<uint16_t>(*port);
  auto checked = [&](std::string_view key, std::optional<std::string> (*bad)(std::string_view),
                     std::string& out) {
    auto s = r.get_string(*ht, p, key);
    if (!s) return;
    if (auto why = bad(*s)) return r.error(ht->get(key)->source(), key_path(p, key), *why);
    out = *s;
  };
  checked("method", bad_http_method, h.method);
  checked("path", bad_http_path, h.path);
  checked("host", bad_http_host, h.host);
  if (const toml::array* a = r.get_array(*ht, p, "expect_status", "an array of status codes")) {
    const std::string ap = key_path(p, "expect_status");
    h.expect_status.clear();
    if (a->empty()) r.error(a->source(), ap, "empty; at least one status such as 200 or \"200-399\" is needed");
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = (*a)[i];
      std::optional<StatusRange> range;
      if (const auto* v = e.as_integer()) {
        if (v->get() >= 100 && v->get() <= 599) {
          range = StatusRange{static_cast<uint16_t>(v->get()), static_cast<uint16_t>(v->get())};
        }
      } else if (const auto* s = e.as_string()) {
        range = parse_status_range(s->get());
      }
      if (range) {
        h.expect_status.push_back(*range);
      } else {
        r.error(e.source(), element_path(ap, i),
                "not an HTTP status (100..599) or a range of them such as \"200-399\"");
      }
    }
  }
  if (auto q = r.get_string(*ht, p, "query")) {
    if (!is_dns_name(*q)) {
      r.error(ht->get("query")->source(), key_path(p, "query"), not_dns_name(*q));
    } else {
      h.query = *q;
    }
  }
  if (auto qt = r.get_string(*ht, p, "query_type")) {
    if (auto t2 = parse_query_type(*qt)) {
      h.query_type = *t2;
    } else {
      r.error(ht->get("query_type")->source(), key_path(p, "query_type"),
              quote(*qt) + " is not allowed; allowed: A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT");
    }
  }
  if (auto ip = r.get_ip4(*ht, p, "expect_address")) h.expect_address = *ip;
  if (auto f = r.get_string(*ht, p, "on_failure")) {
    if (*f == "reset") {
      h.on_failure = HealthOnFailure::kReset;
    } else if (*f != "drain") {
      r.error(ht->get("on_failure")->source(), key_path(p, "on_failure"),
              quote(*f) + " is not allowed; allowed: drain, reset");
    }
  }
  if (auto a = r.get_string(*ht, p, "all_unhealthy")) {
    if (*a == "drop") {
      h.all_unhealthy = AllUnhealthy::kDrop;
    } else if (*a != "fail_open") {
      r.error(ht->get("all_unhealthy")->source(), key_path(p, "all_unhealthy"),
              quote(*a) + " is not allowed; allowed: fail_open, drop");
    }
  }
  svc.health_check = h;
  if (r.error_count() != errors_before) return;  // reported; the rules below need sound values
  // The rules across keys and the service, blamed on the key (or the table).
  if (auto problem = health_check_problem(svc)) {
    const toml::node* at = problem->first.empty() ? nullptr : ht->get(problem->first);
    r.error(at != nullptr ? at->source() : ht->source(),
            problem->first.empty() ? p : key_path(p, problem->first), problem->second);
  }
}

namespace {

// Whether JSON integer `j` is beyond TOML's (int64_t): an unsigned one
// past INT64_MAX, out of every key's range.
bool beyond_toml(const nlohmann::json& j) {
  return j.is_number_unsigned() &&
         j.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

// JSON integer `j` as a TOML integer: one beyond TOML's becomes INT64_MAX,
// which every key refuses as it refuses `j` (get<int64_t>() wrapped it
// around to a negative number, which messages then named).
int64_t toml_integer(const nlohmann::json& j) {
  return beyond_toml(j) ? std::numeric_limits<int64_t>::max() : j.get<int64_t>();
}

// Inserts a JSON value as the toml++ node the reader expects; false when
// the annotation holds something no key takes (an object, null, a float).
bool insert_as_toml(toml::table& t, const std::string& key, const nlohmann::json& j) {
  if (j.is_string()) return t.insert(key, j.get<std::string>()).second;
  if (j.is_boolean()) return t.insert(key, j.get<bool>()).second;
  if (j.is_number_integer()) return t.insert(key, toml_integer(j)).second;
  if (!j.is_array()) return false;
  toml::array a;
  for (const auto& e : j) {
    if (e.is_string()) {
      a.push_back(e.get<std::string>());
    } else if (e.is_number_integer()) {
      a.push_back(toml_integer(e));
    } else {
      return false;
    }
  }
  return t.insert(key, std::move(a)).second;
}

}  // namespace

Result<HealthCheckConfig> parse_health_check_json(std::string_view text, const ServiceConfig& svc) {
  JsonInput in = parse_json_input(text);
  if (in.syntax) return make_error(ErrorCode::kInvalidConfig, "not JSON: " + *in.syntax);
  if (in.duplicate) return make_error(ErrorCode::kInvalidConfig, *in.duplicate + ": a key given twice");
  if (!in.value.is_object()) {
    return make_error(ErrorCode::kInvalidConfig,
                      "not a JSON object such as {\"kind\": \"http\", \"path\": \"/healthz\"}");
  }
  toml::table check;
  for (const auto& [key, value] : in.value.items()) {
    // The reader would name INT64_MAX; the range keys name the number as written.
    for (const IntegerKey& k : {kRise, kFall, kPort}) {
      if (key == k.name && beyond_toml(value)) {
        return make_error(ErrorCode::kInvalidConfig,
                          key_path("health_check", key) + ": " + not_in_range(value.dump(), k.lo, k.hi));
      }
    }
    if (!insert_as_toml(check, key, value)) {
      return make_error(ErrorCode::kInvalidConfig,
                        input_key_path("health_check", key) + ": a " + std::string(value.type_name()) +
                            "; allowed: a string, an integer, a boolean or an array of them");
    }
  }
  toml::table service;
  service.insert("health_check", std::move(check));
  ConfigReader r("");  // no file: messages without positions
  ServiceConfig copy = svc;
  copy.health_check.reset();
  read_health_check(r, service, "", copy);
  if (r.has_errors()) return make_error(ErrorCode::kInvalidConfig, r.error_report());
  return *copy.health_check;
}

}  // namespace podgate::ctl
