// Kubernetes input, first pass: reading and checking each object on its own
// (control/config/k8s_objects.cpp does the second pass, merging slices into
// services, and import_k8s_objects()).  Private to those two files.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/config/config.hpp"
#include "control/config/diagnostics.hpp"
#include "control/config/ip_key.hpp"
#include "control/config/validate.hpp"

namespace podgate::ctl::k8s_detail {

using nlohmann::json;

inline constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";

// "an object", "a string", ...: the JSON type of `j` for messages.
std::string_view json_type(const json& j);
// "expected an object, found an array": `found` is not `expected`.
std::string expected_type(std::string_view expected, const json& found);

// Typed accessors for one object, `where` naming it ("items[3] Service
// default/web"); messages go to the Diagnostics shared with TOML input.
// JSON null counts as absent: kubectl prints `"endpoints": null` and
// `"ports": null` for an empty EndpointSlice.
class Reader {
 public:
  Reader(Diagnostics& diag, std::string where) : diag_(diag), where_(std::move(where)) {}

  const std::string& where() const { return where_; }
  void set_where(std::string where) { where_ = std::move(where); }
  void error(std::string_view path, std::string_view what) {
    diag_.error(diag_.at_object(where_), path, what);
  }
  void warning(std::string_view path, std::string_view what) {
    diag_.warning(diag_.at_object(where_), path, what);
  }
  // Each line of another check's report as an error under `path`.
  void error_lines(std::string_view path, std::string_view report) {
    diag_.error_lines(diag_.at_object(where_), path, report);
  }
  void wrong_type(std::string_view path, const json& found, std::string_view expected) {
    error(path, expected_type(expected, found));
  }

  // The member, or nullptr when absent or null (an error when required).
  const json* find(const json& obj, std::string_view path, std::string_view key,
                   bool required = false) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (required) error(path, "missing required key " + quote(key));
      return nullptr;
    }
    return &*it;
  }

  const json* find_typed(const json& obj, std::string_view path, std::string_view key,
                         json::value_t type, std::string_view type_text, bool required = false) {
    const json* v = find(obj, path, key, required);
    if (v == nullptr) return nullptr;
    bool matches = v->type() == type ||
                   (type == json::value_t::number_integer && v->is_number_unsigned());
    if (!matches) {
      wrong_type(key_path(path, key), *v, type_text);
      return nullptr;
    }
    return v;
  }

  std::optional<std::string> get_string(const json& obj, std::string_view path,
                                        std::string_view key, bool required = false) {
    const json* v = find_typed(obj, path, key, json::value_t::string, "a string", required);
    if (v == nullptr) return std::nullopt;
    return v->get<std::string>();
  }

  std::optional<bool> get_bool(const json& obj, std::string_view path, std::string_view key) {
    const json* v = find_typed(obj, path, key, json::value_t::boolean, "a boolean");
    if (v == nullptr) return std::nullopt;
    return v->get<bool>();
  }

  const json* get_object(const json& obj, std::string_view path, std::string_view key,
                         bool required = false) {
    return find_typed(obj, path, key, json::value_t::object, "an object", required);
  }

  const json* get_array(const json& obj, std::string_view path, std::string_view key,
                        bool required = false) {
    return find_typed(obj, path, key, json::value_t::array, "an array", required);
  }

  // An integer in lo..hi, checked on the JSON value itself.
  std::optional<int64_t> as_int(const json& v, std::string_view path, int64_t lo, int64_t hi) {
    if (!v.is_number_integer()) {
      wrong_type(path, v, "an integer");
      return std::nullopt;
    }
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      error(path, not_in_range(v.dump(), lo, hi));
      return std::nullopt;
    }
    int64_t n = v.get<int64_t>();
    if (n < lo || n > hi) {
      error(path, not_in_range(n, lo, hi));
      return std::nullopt;
    }
    return n;
  }

  std::optional<int64_t> get_int(const json& obj, std::string_view path, std::string_view key,
                                 int64_t lo, int64_t hi, bool required = false) {
    const json* v = find(obj, path, key, required);
    if (v == nullptr) return std::nullopt;
    return as_int(*v, key_path(path, key), lo, hi);
  }

 private:
  Diagnostics& diag_;
  std::string where_;
};

struct ObjectMeta {
  std::string ns = "default";  // kubectl apply's default for a manifest without one
  std::string name;
  std::map<std::string, std::string> labels;
  // metadata.annotations["podgate.io/health-check"] (a Service's), when set.
  std::optional<std::string> health_check;
};

struct PendingService {
  ServiceConfig cfg;
  std::string where;
  // Per cfg.ports entry: the targetPort name ("" = a number, or absent).
  std::vector<std::string> target_names;
  std::vector<bool> target_resolved;
  std::vector<std::string> resolved_by;  // the slice that resolved it, for conflicts
  // The address families whose EndpointSlices the service takes (issue 11):
  // its cluster IPs' families, or a headless service's ipFamilies; empty:
  // any (a headless service that names none).
  std::vector<dp::Family> families;
  // cfg.endpoints[0, ips_indexed)'s addresses, for merge_slice's duplicate
  // check once the service has more than a few endpoints.
  std::unordered_set<dp::IpAddr, IpAddrHash> endpoint_ips;
  size_t ips_indexed = 0;
};

struct SlicePort {
  std::string name;
  uint16_t port = 0;
  dp::Proto protocol = dp::Proto::kTcp;
};

struct PendingSlice {
  std::string where;
  std::string ns;
  std::string name;
  std::string service;  // the kubernetes.io/service-name label
  dp::Family family = dp::Family::kIpv4;  // addressType
  std::vector<SlicePort> ports;
  std::vector<EndpointConfig> endpoints;
};

ObjectMeta read_meta(Reader& r, const json& obj);
PendingService read_service(Reader& r, const json& obj, const ObjectMeta& meta);
// nullopt: the slice is skipped (with a warning) or wrong (with an error).
std::optional<PendingSlice> read_slice(Reader& r, const json& obj, const ObjectMeta& meta);

}  // namespace podgate::ctl::k8s_detail
