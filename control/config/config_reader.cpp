// Error-collecting TOML access; see config_reader.hpp.
#include "control/config/config_reader.hpp"

#include <algorithm>

namespace podgate::ctl {

namespace {

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

}  // namespace

std::string ConfigReader::format(toml::source_position at, std::string_view text) const {
  return diags_.at_position(at.line, at.column).prefix.append(text);
}

void ConfigReader::error(const toml::source_region& where, std::string_view path,
                         std::string_view what) {
  diags_.error(diags_.at_position(where.begin.line, where.begin.column),
               path.empty() ? "top level" : path, what);
}

void ConfigReader::check_keys(const toml::table& t, std::string_view path,
                              std::initializer_list<std::string_view> allowed) {
  for (auto&& [key, value] : t) {
    (void)value;
    if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
    std::string list;
    for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    // The key is input: one quote() would change (a control byte in a
    // quoted key) is written escaped, never raw to a log or terminal.
    // Appended, not `"'" + std::string(key) + "'"`: g++ 12 at -O3 sees a
    // false overlap in that (-Wrestrict).
    std::string name;
    if (is_plain(key.str())) {
      name.append(1, '\'').append(key.str()).append(1, '\'');
    } else {
      name = quote(key.str());
    }
    error(key.source(), path, "unknown key " + name + "; allowed: " + list);
  }
}

const toml::node* ConfigReader::find(const toml::table& t, std::string_view path,
                                     std::string_view key, bool required, std::string_view hint) {
  const toml::node* n = t.get(key);
  if (n == nullptr && required) {
    error(t.source(), path, "missing required key '" + std::string(key) + "'" +
                                std::string(hint));
  }
  return n;
}

void ConfigReader::wrong_type(const toml::node& n, std::string_view path,
                              std::string_view expected) {
  error(n.source(), path, expected_found(expected, type_name(n.type())));
}

std::optional<int64_t> ConfigReader::get_int(const toml::table& t, std::string_view path,
                                             std::string_view key, int64_t lo, int64_t hi,
                                             bool required) {
  const toml::node* n = find(t, path, key, required);
  if (n == nullptr) return std::nullopt;
  const auto* v = n->as_integer();
  if (v == nullptr) {
    wrong_type(*n, key_path(path, key), "an integer");
    return std::nullopt;
  }
  int64_t value = v->get();
  if (value < lo || value > hi) {
    error(n->source(), key_path(path, key), not_in_range(value, lo, hi));
    return std::nullopt;
  }
  return value;
}

bool ConfigReader::get_u32(const toml::table& t, std::string_view path, std::string_view key,
                           int64_t lo, int64_t hi, uint32_t& out) {
  auto v = get_int(t, path, key, lo, hi);
  if (v) out = static_cast<uint32_t>(*v);
  return v.has_value();
}

std::optional<std::string> ConfigReader::get_string(const toml::table& t, std::string_view path,
                                                    std::string_view key, bool required,
                                                    std::string_view hint) {
  const toml::node* n = find(t, path, key, required, hint);
  if (n == nullptr) return std::nullopt;
  const auto* v = n->as_string();
  if (v == nullptr) {
    wrong_type(*n, key_path(path, key), "a string");
    return std::nullopt;
  }
  return v->get();
}

void ConfigReader::get_bool(const toml::table& t, std::string_view path, std::string_view key,
                            bool& out) {
  const toml::node* n = find(t, path, key, false);
  if (n == nullptr) return;
  if (const auto* v = n->as_boolean()) {
    out = v->get();
  } else {
    wrong_type(*n, key_path(path, key), "a boolean");
  }
}

const toml::array* ConfigReader::get_array(const toml::table& t, std::string_view path,
                                           std::string_view key, std::string_view expected,
                                           bool required, std::string_view hint) {
  const toml::node* n = find(t, path, key, required, hint);
  if (n == nullptr) return nullptr;
  if (n->as_array() == nullptr) wrong_type(*n, key_path(path, key), expected);
  return n->as_array();
}

std::optional<dp::Ip4> ConfigReader::get_ip4(const toml::table& t, std::string_view path,
                                             std::string_view key, bool required) {
  auto s = get_string(t, path, key, required);
  if (!s) return std::nullopt;
  auto ip = dp::parse_ip4(*s);
  if (!ip) {
    error(t.get(key)->source(), key_path(path, key),
          dp::parse_ip6(*s) ? ip6_where_ip4(*s, key_path(path, key)) : not_ip4(*s, "192.0.2.1"));
    return std::nullopt;
  }
  if (!is_unicast_ip4(*ip)) {
    error(t.get(key)->source(), key_path(path, key), not_unicast_ip4(*s));
    return std::nullopt;
  }
  return ip;
}

// ip_value() with the node's path made by path() only for an error: the
// path of every endpoint's ip (200k at 10k services) is seldom needed.
template <class Path>
std::optional<dp::IpAddr> ConfigReader::ip_at(const toml::node& n, Path path,
                                              std::string_view link_local_use) {
  const auto* v = n.as_string();
  if (v == nullptr) {
    wrong_type(n, path(), "a string");
    return std::nullopt;
  }
  const std::string& s = v->get();
  auto ip = dp::parse_ip(s);
  if (!ip) {
    error(n.source(), path(), not_ip(s, "192.0.2.1\" or \"2001:db8::1"));
  } else if (!is_unicast_ip(*ip)) {
    error(n.source(), path(), ip->is_v4() ? not_unicast_ip4(s) : not_unicast_ip6(s));
    ip.reset();
  } else if (!link_local_use.empty() && ip->is_v6() && ip->as_v6().is_link_local()) {
    error(n.source(), path(), link_local_not_allowed(s, link_local_use));
    ip.reset();
  }
  return ip;
}

std::optional<dp::IpAddr> ConfigReader::ip_value(const toml::node& n, std::string_view path,
                                                 std::string_view link_local_use) {
  return ip_at(n, [path] { return path; }, link_local_use);
}

std::optional<dp::IpAddr> ConfigReader::get_ip(const toml::table& t, std::string_view path,
                                               std::string_view key, bool required,
                                               std::string_view link_local_use) {
  const toml::node* n = find(t, path, key, required);
  if (n == nullptr) return std::nullopt;
  return ip_at(*n, [path, key] { return key_path(path, key); }, link_local_use);
}

std::optional<dp::MacAddr> ConfigReader::get_mac(const toml::table& t, std::string_view path,
                                                 std::string_view key, bool required) {
  auto s = get_string(t, path, key, required);
  if (!s) return std::nullopt;
  auto mac = dp::parse_mac(*s);
  std::string_view problem;
  if (!mac) {
    problem = " is not a MAC address such as \"02:00:00:00:00:01\"";
  } else if (!is_unicast_mac(*mac)) {
    problem = " is not a unicast MAC address (the first octet's low bit must be 0, not all "
              "zero), e.g. \"02:00:00:00:00:01\"";
  }
  if (problem.empty()) return mac;
  error(t.get(key)->source(), key_path(path, key), quote(*s) + std::string(problem));
  return std::nullopt;
}

std::optional<std::string> ConfigReader::get_label(const toml::table& t, std::string_view path,
                                                   std::string_view key, bool required,
                                                   bool rfc1035) {
  auto s = get_string(t, path, key, required);
  if (!s) return std::nullopt;
  if (rfc1035 ? is_dns1035_label(*s) : is_dns1123_label(*s)) return s;
  error(t.get(key)->source(), key_path(path, key),
        rfc1035 ? not_dns1035_label(*s) : not_dns1123_label(*s));
  return std::nullopt;
}

}  // namespace podgate::ctl
