// What the control-side fuzz targets share: a broken promise aborts with a
// message (libFuzzer then saves the input), and the round trip `config save`
// relies on, checked member by member (Config has no operator==: its
// source differs by design).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "control/config/config.hpp"
#include "control/config/config_writer.hpp"

namespace podgate::fuzz {

[[noreturn]] inline void broken(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: invariant broken: %s\n", target, what.c_str());
  std::abort();
}

inline bool same_config(const ctl::Config& a, const ctl::Config& b) {
  return a.eal == b.eal && a.dataplane == b.dataplane && a.ports == b.ports &&
         a.routes == b.routes && a.neighbors == b.neighbors && a.services == b.services &&
         a.dns == b.dns && a.control == b.control && a.metrics == b.metrics &&
         a.announce == b.announce;
}

// `config save` writes config_to_toml(c); podgate must read that back to the
// same Config (config_writer.hpp), and writing it again gives the same bytes.
inline void check_saves_and_loads_back(const char* target, const ctl::Config& c) {
  const std::string saved = ctl::config_to_toml(c);
  auto back = ctl::parse_config(saved, "saved.toml");
  if (!back) broken(target, "a saved config does not load back:\n" + back.error().message + "\n" + saved);
  if (!same_config(*back, c)) broken(target, "a saved config loads back different:\n" + saved);
  if (ctl::config_to_toml(*back) != saved) broken(target, "saving twice gives other bytes:\n" + saved);
}

#ifdef PODGATE_SOURCE_DIR
// conf/podgate.toml, read once: the running config the targets that change
// one (Kubernetes input, control requests) start from.
inline const ctl::Config& shipped_config() {
  static const ctl::Config config = [] {
    auto c = ctl::load_config(PODGATE_SOURCE_DIR "/conf/podgate.toml");
    if (!c) broken("fuzz", "conf/podgate.toml does not load:\n" + c.error().message);
    return std::move(*c);
  }();
  return config;
}
#endif

}  // namespace podgate::fuzz
