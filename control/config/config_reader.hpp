// Typed, error-collecting access to a parsed TOML config (control/config/config.cpp).
//
// Every accessor checks presence, type and range, and on a problem records
// `KEY.PATH: what was found and what is allowed` at the offending node's
// position instead of stopping, so one pass reports every error of a file
// (architecture decision 6, style habit 7).  Messages are collected and
// reported by the Diagnostics that Kubernetes input uses too
// (control/config/diagnostics.hpp).  What the sections mean is config.cpp's
// business; this is only how values are read and blamed.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "control/config/diagnostics.hpp"
#include "control/config/validate.hpp"
#include "dataplane/net.hpp"

namespace podgate::ctl {

class ConfigReader {
 public:
  explicit ConfigReader(std::string_view source) : diags_(source) {}

  const std::string& source() const { return diags_.source(); }
  bool has_errors() const { return diags_.has_errors(); }
  size_t error_count() const { return diags_.error_count(); }
  // For errors that are not a node's: validate()'s, which name objects.
  Diagnostics& diagnostics() { return diags_; }

  // Every error recorded, sorted by position, one "FILE:LINE:COL: ..." a line.
  std::string error_report() const { return diags_.error_report(); }

  // "FILE:LINE:COL: text"; a node without a position blames the file's start.
  std::string format(toml::source_position at, std::string_view text) const;

  // Records "PATH: what" ("top level: what" for an empty path) at `where`.
  void error(const toml::source_region& where, std::string_view path, std::string_view what);

  // An error for each key of `t` not in `allowed`, at the key.
  void check_keys(const toml::table& t, std::string_view path,
                  std::initializer_list<std::string_view> allowed);

  // The node under `key`, nullptr when absent (an error when required;
  // `hint` is appended to the message).
  const toml::node* find(const toml::table& t, std::string_view path, std::string_view key,
                         bool required, std::string_view hint = {});

  void wrong_type(const toml::node& n, std::string_view path, std::string_view expected);

  std::optional<int64_t> get_int(const toml::table& t, std::string_view path, std::string_view key,
                                 int64_t lo, int64_t hi, bool required = false);

  // An integer field stored as uint32_t; `out` keeps its default when absent.
  bool get_u32(const toml::table& t, std::string_view path, std::string_view key, int64_t lo,
               int64_t hi, uint32_t& out);

  std::optional<std::string> get_string(const toml::table& t, std::string_view path,
                                        std::string_view key, bool required = false,
                                        std::string_view hint = {});

  // `out` keeps its default when absent.
  void get_bool(const toml::table& t, std::string_view path, std::string_view key, bool& out);

  const toml::array* get_array(const toml::table& t, std::string_view path, std::string_view key,
                               std::string_view expected, bool required = false,
                               std::string_view hint = {});

  // Calls f(table, path) for each element of an array of tables.
  template <typename F>
  void for_each_table(const toml::array& a, std::string_view path, F f) {
    for (size_t i = 0; i < a.size(); ++i) {
      std::string p = element_path(path, i);
      if (const toml::table* t = a[i].as_table()) {
        f(*t, p);
      } else {
        wrong_type(a[i], p, "a table");
      }
    }
  }

  // A unicast IPv4 address (is_unicast_ip4).
  std::optional<dp::Ip4> get_ip4(const toml::table& t, std::string_view path,
                                 std::string_view key, bool required = false);

  // A unicast address of either family (is_unicast_ip); a link-local IPv6
  // address is refused too when `link_local_use` names what it would be
  // ("a cluster IP", "an endpoint"), allowed when it is empty.
  std::optional<dp::IpAddr> ip_value(const toml::node& n, std::string_view path,
                                     std::string_view link_local_use);
  std::optional<dp::IpAddr> get_ip(const toml::table& t, std::string_view path,
                                   std::string_view key, bool required,
                                   std::string_view link_local_use);

  // A unicast MAC address (is_unicast_mac).
  std::optional<dp::MacAddr> get_mac(const toml::table& t, std::string_view path,
                                     std::string_view key, bool required = false);

  // A DNS-1035 label when `rfc1035`, else a DNS-1123 label.
  std::optional<std::string> get_label(const toml::table& t, std::string_view path,
                                       std::string_view key, bool required, bool rfc1035);

 private:
  template <class Path>
  std::optional<dp::IpAddr> ip_at(const toml::node& n, Path path, std::string_view link_local_use);

  Diagnostics diags_;
};

}  // namespace podgate::ctl
