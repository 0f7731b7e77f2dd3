// libFuzzer target over the TOML config loader (tools/fuzz.sh --target
// config): parse_config() (the TOML parser, every section's reader and
// validate()), parse_services() (the [[services]] fragment `podgatectl
// apply -f` sends), and on an accepted config what `podgate --check` and
// `config save` do with it.  Every input is config text; the loader must
// answer with a value or an error, never a crash or an exception, and keep
// its promises:
//   - an accepted config passes validate() on its structure;
//   - its warnings and memory plan are computed without a fault;
//   - `config save` writes it so that it loads back the same
//     (fuzz_check.hpp), byte-identical when saved again;
//   - a [[services]] fragment is read without a fault, and every service
//     it gives has a namespace and a name.
#include <cstdint>
#include <string>
#include <string_view>

#include "control/config/config.hpp"
#include "control/config/memory_plan.hpp"
#include "control/config/validate.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace podgate;
constexpr const char* kTarget = "config_fuzz";

void check_config(const ctl::Config& c) {
  if (auto v = ctl::validate(c); !v) {
    fuzz::broken(kTarget, "parse_config accepted what validate() refuses:\n" + v.error().message);
  }
  (void)ctl::config_warnings(c);
  (void)ctl::plan_memory(c).report();
  fuzz::check_saves_and_loads_back(kTarget, c);
}

// The rules across services are the caller's (config.hpp), so each service
// is only known to be whole.
void check_fragment(std::string_view text) {
  auto services = ctl::parse_services(text, "fragment.toml");
  if (!services) return;
  for (const ctl::ServiceConfig& s : *services) {
    if (s.name.empty() || s.ns.empty()) fuzz::broken(kTarget, "a service without a name or namespace");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto c = ctl::parse_config(text, "fuzz.toml")) check_config(*c);
  check_fragment(text);
  return 0;
}
