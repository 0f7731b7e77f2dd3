// Kubernetes objects -> podgate service configuration (docs/kubernetes.md).
//
// A pure mapping, no I/O: `kubectl get svc,endpointslices -A -o json` text in,
// validated ServiceConfigs out, so `podgatectl apply -f` can mirror a cluster.
// Accepted: v1 Service and discovery.k8s.io/v1 EndpointSlice objects, alone or
// in a List (kind "List", "ServiceList", "EndpointSliceList").  Any other kind
// is an error naming its kind and metadata.name: an apply is validated whole,
// and nothing is dropped silently.  Things that are understood but have no
// podgate counterpart (nodePorts, FQDN slices, slices of services not in
// the input, ...) are skipped with a message in K8sImport::warnings.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/config/config.hpp"
#include "control/result.hpp"

namespace podgate::ctl {

struct K8sImport {
  // In input order of the Service objects; each has the endpoints of all of
  // its EndpointSlices merged, in slice order.  After them, the `known`
  // services that EndpointSlices of the input belong to (with the slices'
  // endpoints only, and the target port of each port a slice with
  // endpoints names replaced by the slice's), in order of first slice.
  std::vector<ServiceConfig> services;
  size_t service_objects = 0;  // services[0, service_objects) are Service objects
  // Per services[i]: the address families of the EndpointSlices merged
  // into it (a skipped slice does not count; an empty one does).  The
  // input replaces the service's endpoints of these families; apply keeps
  // its running endpoints of the others (those of endpoint_families).
  std::vector<std::vector<dp::Family>> families_given;
  // Per services[i]: the address families its endpoints may be of: its
  // cluster IPs' families; a headless service's ipFamilies, both when it
  // names none; none for an ExternalName service.
  std::vector<std::vector<dp::Family>> endpoint_families;
  // Per services[i].ports[j]: a named targetPort no slice of the input
  // resolved (target_port then holds the port number, with a warning).
  std::vector<std::vector<bool>> target_unresolved;
  // "SOURCE: items[3] EndpointSlice default/web-abc12: ..." lines.
  std::vector<std::string> warnings;
};

// Parses and maps `json_text`; `source` names it in messages ("-" for stdin,
// a file name).  Every error found is reported, one per line of the message,
// with ErrorCode::kInvalidConfig.
// `known` are the services podgate already runs: an EndpointSlice whose
// Service is not in the input belongs to the known service of that name (a
// slice alone updates a running service's endpoints and target ports); without
// one it is skipped with a warning.
Result<K8sImport> import_k8s_objects(std::string_view json_text, std::string_view source,
                                     const ServiceList& known = {});

}  // namespace podgate::ctl
