// libFuzzer target over Kubernetes input (tools/fuzz.sh --target k8s):
// import_k8s_objects(), which reads `kubectl get svc,endpointslices -o json`
// text (duplicate keys refused, json_input.hpp), checks each object and
// merges EndpointSlices into services, with conf/podgate.toml's services as
// the running ones a slice alone may belong to.  Every input is JSON text;
// the import must answer with a value or an error, never a crash or an
// exception, and keep its promises (k8s_objects.hpp):
//   - one entry per service in each per-service list, one per port in
//     target_unresolved, and the Service objects come first;
//   - what it gives is applied as `podgatectl apply` does (a service of the
//     same name replaced, others added); when the result passes validate(),
//     `config save` writes it so that it loads back the same.
#include <cstdint>
#include <string>
#include <string_view>

#include "control/config/k8s_objects.hpp"
#include "control/config/validate.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace podgate;
constexpr const char* kTarget = "k8s_fuzz";

void check_shape(const ctl::K8sImport& imp) {
  const size_t n = imp.services.size();
  if (imp.service_objects > n) fuzz::broken(kTarget, "more Service objects than services");
  if (imp.families_given.size() != n) fuzz::broken(kTarget, "families_given is not one per service");
  if (imp.target_unresolved.size() != n) fuzz::broken(kTarget, "target_unresolved is not one per service");
  if (imp.endpoint_families.size() != n) fuzz::broken(kTarget, "endpoint_families is not one per service");
  for (size_t i = 0; i < n; ++i) {
    if (imp.target_unresolved[i].size() != imp.services[i].ports.size()) {
      fuzz::broken(kTarget, "target_unresolved is not one per port");
    }
  }
}

void check_applied(const ctl::K8sImport& imp) {
  ctl::Config next = fuzz::shipped_config();
  for (const ctl::ServiceConfig& s : imp.services) {
    const ctl::ServiceList& running = next.services;
    size_t at = 0;
    while (at < running.size() && !(running[at].ns == s.ns && running[at].name == s.name)) ++at;
    if (at == running.size()) {
      next.services.push_back(s);
    } else {
      next.services.replace(at, s);
    }
  }
  if (ctl::validate(next)) fuzz::check_saves_and_loads_back(kTarget, next);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto imp = ctl::import_k8s_objects(text, "fuzz.json", fuzz::shipped_config().services);
  if (!imp) return 0;
  check_shape(*imp);
  check_applied(*imp);
  return 0;
}
