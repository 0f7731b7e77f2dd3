#include "control/observe/telemetry.hpp"

#include <array>
#include <charconv>
#include <climits>
#include <cstring>

#include <rte_telemetry.h>

namespace podgate::ctl {

namespace {

using nlohmann::json;

// Room kept for the "truncated" note and DPDK's own framing.
constexpr size_t kNoteReserve = 160;
constexpr size_t kMaxSingleString = 8191;  // RTE_TEL_MAX_SINGLE_STRING_LEN - 1

// DPDK 22.11 accepts dict names of [A-Za-z0-9_/] only (telemetry_data.c
// valid_name); anything else becomes '_'.
std::string tel_name(std::string_view name) {
  std::string out(name.substr(0, kTelMaxName));
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '/';
    if (!ok) c = '_';
  }
  return out;
}

// A string value within RTE_TEL_MAX_STRING_LEN, cut on a UTF-8 boundary;
// control characters become spaces.
std::string tel_string(std::string_view s) {
  if (s.size() > kTelMaxName) {
    size_t n = kTelMaxName;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    s = s.substr(0, n);
  }
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return out;
}

// Built in place and returned by name (NRVO): g++ 12 with -fsanitize=address
// warns (maybe-uninitialized) about moving a std::variant holding a string
// out of a temporary.
std::optional<TelScalar> tel_scalar(const json& v) {
  std::optional<TelScalar> out;
  if (v.is_number_unsigned()) {
    out.emplace(std::in_place_type<uint64_t>, v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= 0) {
      out.emplace(std::in_place_type<uint64_t>, static_cast<uint64_t>(i));
    } else if (i >= INT_MIN) {
      out.emplace(std::in_place_type<int>, static_cast<int>(i));
    } else {
      out.emplace(std::in_place_type<std::string>, std::to_string(i));
    }
  } else if (v.is_boolean()) {
    out.emplace(std::in_place_type<uint64_t>, v.get<bool>() ? 1u : 0u);
  } else if (v.is_number_float()) {
    std::array<char, 32> buf{};
    auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v.get<double>());
    if (ec == std::errc()) out.emplace(std::in_place_type<std::string>, buf.data(), end);
  } else if (v.is_string()) {
    out.emplace(std::in_place_type<std::string>, tel_string(v.get_ref<const std::string&>()));
  }
  return out;  // nullopt for null (objects and arrays are flattened by the caller)
}

// The leaves of `v` under `prefix`, paths joined by '/'.
void flatten_leaves(const json& v, const std::string& prefix, std::vector<TelEntry>& out) {
  auto child = [&prefix](const std::string& key) {
    return prefix.empty() ? key : prefix + "/" + key;
  };
  if (v.is_object()) {
    for (const auto& [k, sub] : v.items()) flatten_leaves(sub, child(k), out);
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) flatten_leaves(v[i], child(std::to_string(i)), out);
  } else if (auto s = tel_scalar(v)) {
    out.push_back({tel_name(prefix), std::move(*s)});
  }
}

// Bytes an entry adds to the JSON reply: "name":value, (strings quoted).
size_t cost(const std::string& name, const TelScalar& v) {
  size_t n = name.size() + 4;
  if (const auto* s = std::get_if<std::string>(&v)) return n + s->size() + 2;
  if (const auto* u = std::get_if<uint64_t>(&v)) return n + std::to_string(*u).size();
  return n + std::to_string(std::get<int>(v)).size();
}

size_t cost(const TelItem& item) {
  if (const auto* s = std::get_if<TelScalar>(&item.value)) return cost(item.name, *s);
  size_t n = item.name.size() + 6;
  for (const TelEntry& e : std::get<std::vector<TelEntry>>(item.value)) n += cost(e.name, e.value);
  return n;
}

bool has_scalar_only(const json& arr) {
  for (const json& e : arr) {
    if (e.is_object() || e.is_array()) return false;
  }
  return true;
}

}  // namespace

Result<std::vector<TelItem>> flatten_for_telemetry(const json& value, std::string_view command,
                                                   std::string_view section) {
  const json wrapped = value.is_object() ? json() : json{{"value", value}};
  const json& top = value.is_object() ? value : wrapped;
  std::vector<TelItem> all;
  for (const auto& [key, v] : top.items()) {
    if (v.is_array() && !v.empty() && !has_scalar_only(v)) {
      for (size_t i = 0; i < v.size(); ++i) {
        std::vector<TelEntry> entries;
        flatten_leaves(v[i], "", entries);
        all.push_back({tel_name(key + "/" + std::to_string(i)), std::move(entries)});
      }
    } else if (v.is_object() || v.is_array()) {
      std::vector<TelEntry> entries;
      flatten_leaves(v, "", entries);
      all.push_back({tel_name(key), std::move(entries)});
    } else if (auto s = tel_scalar(v)) {
      all.push_back({tel_name(key), std::move(*s)});
    }
  }
  if (!section.empty()) {
    const std::string want = tel_name(section);
    std::vector<TelItem> kept;
    std::string known;
    for (TelItem& item : all) {
      known += (known.empty() ? "" : ", ") + item.name;
      if (item.name == want || item.name.starts_with(want + "/")) kept.push_back(std::move(item));
    }
    if (kept.empty()) {
      std::string message = std::string(command) + ": no section \"" + std::string(section) +
                            "\"; sections: " + known;
      return make_error(ErrorCode::kNotFound, message.substr(0, kMaxSingleString));
    }
    all = std::move(kept);
  }

  // Within DPDK's limits: entries per dict, and the reply's byte budget
  // ({"COMMAND":{...}}).
  const size_t budget = kTelMaxOutput - 1 - (command.size() + 8) - kNoteReserve;
  std::vector<TelItem> out;
  size_t used = 0;
  size_t omitted = 0;
  for (TelItem& item : all) {
    if (omitted != 0 || out.size() + 1 >= kTelMaxEntries) {
      ++omitted;
      continue;
    }
    if (auto* entries = std::get_if<std::vector<TelEntry>>(&item.value)) {
      // Cut a container at 255 entries or at the budget, saying how many went.
      size_t n = item.name.size() + 6;
      size_t keep = 0;
      const size_t note = item.name.size() + 40;
      while (keep < entries->size() && keep + 1 < kTelMaxEntries &&
             used + n + cost((*entries)[keep].name, (*entries)[keep].value) + note <= budget) {
        n += cost((*entries)[keep].name, (*entries)[keep].value);
        ++keep;
      }
      if (keep < entries->size()) {
        if (keep == 0) {
          ++omitted;
          continue;
        }
        const uint64_t cut = entries->size() - keep;
        entries->resize(keep);
        entries->push_back({"truncated", cut});
        n += 20;
      }
      used += n;
      out.push_back(std::move(item));
    } else {
      const size_t n = cost(item);
      if (used + n > budget) {
        ++omitted;
        continue;
      }
      used += n;
      out.push_back(std::move(item));
    }
  }
  if (omitted != 0) {
    out.push_back({"truncated", TelScalar(tel_string(
                                    std::to_string(omitted) + " sections left out (16 KiB reply "
                                    "limit); ask for one: " + std::string(command) + ",SECTION"))});
  }
  return out;
}

namespace {

int add_scalar(rte_tel_data* d, const std::string& name, const TelScalar& v) {
  if (const auto* u = std::get_if<uint64_t>(&v)) {
    return rte_tel_data_add_dict_u64(d, name.c_str(), *u);
  }
  if (const auto* i = std::get_if<int>(&v)) return rte_tel_data_add_dict_int(d, name.c_str(), *i);
  return rte_tel_data_add_dict_string(d, name.c_str(), std::get<std::string>(v).c_str());
}

}  // namespace

int fill_tel_data(const std::vector<TelItem>& items, rte_tel_data* d) {
  int refused = 0;
  rte_tel_data_start_dict(d);
  for (const TelItem& item : items) {
    if (const auto* s = std::get_if<TelScalar>(&item.value)) {
      refused += add_scalar(d, item.name, *s) != 0;
      continue;
    }
    rte_tel_data* c = rte_tel_data_alloc();
    if (c == nullptr) {
      ++refused;
      continue;
    }
    rte_tel_data_start_dict(c);
    for (const TelEntry& e : std::get<std::vector<TelEntry>>(item.value)) {
      refused += add_scalar(c, e.name, e.value) != 0;
    }
    if (rte_tel_data_add_dict_container(d, item.name.c_str(), c, /*keep=*/0) != 0) {
      rte_tel_data_free(c);
      ++refused;
    }
  }
  return refused;
}

void TelemetryCache::publish(std::string_view command, const json& value) {
  auto copy = std::make_shared<const json>(value);  // built outside the lock
  std::lock_guard lock(mu_);
  auto it = values_.find(command);
  if (it == values_.end()) {
    values_.emplace(std::string(command), std::move(copy));
  } else {
    it->second = std::move(copy);  // the old value is freed by its last reader
  }
}

std::shared_ptr<const json> TelemetryCache::get(std::string_view command) const {
  std::lock_guard lock(mu_);
  auto it = values_.find(command);
  return it == values_.end() ? nullptr : it->second;
}

namespace {

// Process-wide (DPDK keeps the callbacks for the life of the process):
// g_cache is read by telemetry threads under g_mu, swapped by
// register_telemetry_commands under g_mu.
std::mutex g_mu;
TelemetryCache* g_cache = nullptr;
bool g_registered = false;

// Runs on a DPDK telemetry thread.  Never throws into C.
int on_command(const char* cmd, const char* params, rte_tel_data* d) {
  try {
    std::shared_ptr<const json> value;
    {
      std::lock_guard lock(g_mu);
      if (g_cache != nullptr) value = g_cache->get(cmd);
    }
    if (!value) {
      rte_tel_data_string(d, "podgate has not published this yet");
      return 0;
    }
    auto items = flatten_for_telemetry(*value, cmd, params != nullptr ? params : "");
    if (!items) {
      rte_tel_data_string(d, items.error().message.c_str());
      return 0;
    }
    fill_tel_data(*items, d);
    return 0;
  } catch (...) {
    return -1;  // the client sees null
  }
}

}  // namespace

Result<void> register_telemetry_commands(TelemetryCache* cache) {
  std::lock_guard lock(g_mu);
  g_cache = cache;
  if (g_registered || cache == nullptr) return {};
  struct Command {
    std::string_view name;
    const char* help;
  };
  static constexpr std::array<Command, 3> kCommands = {{
      {kTelemetryStatus, "podgate status (as podgatectl status). Parameter: a section name"},
      {kTelemetryStats,
       "podgate counters (as podgatectl stats). Parameter: a section, e.g. dns or workers/0"},
      {kTelemetryServices, "podgate services (as podgatectl services). Parameter: a section"},
  }};
  for (const Command& c : kCommands) {
    const int rc = rte_telemetry_register_cmd(std::string(c.name).c_str(), on_command, c.help);
    if (rc != 0) {
      return make_error(ErrorCode::kDpdk, "telemetry: cannot register " + std::string(c.name) +
                                              ": " + std::strerror(-rc));
    }
  }
  g_registered = true;
  return {};
}

}  // namespace podgate::ctl
