// The Registry: the single truth the control thread publishes from
// (architecture decisions 9 and 10).  Control thread only.
//
// Layers, each with its own owner:
//   file     the config file's desired state, as last read (start, reload)
//            or written (`config save` to the config file);
//   edits    runtime changes from podgatectl (apply, delete, endpoint set):
//            unsaved config until `config save` writes them;
//   learnt   what the appliance learns that is not config (per-endpoint
//            health and drain, later the Kubernetes sync): never counted as
//            unsaved, never written by `config save`.
// desired() = file + edits, what `config dump` shows and `config save`
// writes; view() = desired() with the learnt state applied, what snapshots
// and zones are built from.
//
// A change is staged first (stage_*: a Proposal, validated whole by
// validate(), nothing changed yet), then built and published by its owner
// (Appliance: snapshot to the workers), and only then committed: a refused
// or failed change leaves the Registry untouched.  commit() makes a new
// version and tells every listener (DNS zone, telemetry, later BGP and
// health) "version N was published".  A staged change that changes nothing
// (Proposal::changed false) is not to be published: the same state twice
// publishes nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "control/config/config.hpp"
#include "control/config/service_index.hpp"
#include "control/result.hpp"

namespace podgate::dp {
struct Snapshot;
}

namespace podgate::ctl {

// Which layer a change belongs to.
enum class Layer : uint8_t { kFile, kEdit, kLearnt };

// An endpoint of a service, by name: learnt state follows it across
// renumbering and reloads.
struct EndpointRef {
  std::string ns;
  std::string name;
  dp::IpAddr ip;
  friend auto operator<=>(const EndpointRef&, const EndpointRef&) = default;
  friend bool operator==(const EndpointRef&, const EndpointRef&) = default;
};

// What the appliance learnt about one endpoint.  Default: nothing learnt.
struct LearntEndpoint {
  // The service ports whose health check it fails (sorted; issue 13); for
  // a service without ports (headless), the port its check probes.  The
  // service's health_check says what that costs it (on_failure,
  // all_unhealthy); ignored while the service has no health_check.
  std::vector<PortRef> unhealthy;
  bool drained = false;    // taken out of rotation: keeps its flows, no new ones
  friend bool operator==(const LearntEndpoint&, const LearntEndpoint&) = default;
};

using LearntState = std::map<EndpointRef, LearntEndpoint>;

// `desired` with `learnt` applied: a drained endpoint is not ready (it
// keeps its flows); an unhealthy one gets EndpointConfig::unhealthy_ports
// (the ports its service's check covers), which the snapshot builder reads
// per service port.  In a headless service, which only DNS serves, an
// unhealthy endpoint is not ready (left out of DNS like a not-ready Pod)
// unless every ready endpoint is unhealthy and the check says fail_open.
// Learnt state about an endpoint the config does not have is kept for when
// it comes back, and changes nothing.
Config apply_learnt(const Config& desired, const LearntState& learnt);

// Whether `a` and `b` are equal apart from their services (and source).
bool same_but_services(const Config& a, const Config& b);

// A published Registry version, as listeners see it.
struct Publication {
  uint64_t version = 0;
  Layer layer = Layer::kFile;
  const Config& config;             // view(): what was built and published
  const dp::Snapshot* snapshot = nullptr;  // the forwarding snapshot, when there is one
  // What changed in config.services since the previous version, when only
  // services changed (null otherwise: a listener starts over).
  const ServiceDiff* changes = nullptr;
};

class Registry {
 public:
  // A change staged against the current version; see the file comment.
  struct Proposal {
    Layer layer = Layer::kFile;
    bool changed = false;
    std::shared_ptr<const Config> desired;
    LearntState learnt;
    std::shared_ptr<const Config> view;  // desired with learnt applied (== desired without)
    // What the change did to the services, by identity (service_list.hpp):
    // desired's for the Registry's index, view's for an incremental snapshot
    // build.  Only when everything but the services is as it was
    // (services_only); otherwise builders start over.
    bool services_only = false;
    ServiceDiff desired_changes;
    ServiceDiff view_changes;
  };

  using Listener = std::function<void(const Publication&)>;
  using ListenerId = uint64_t;

  // `file` is the config as read; nothing is published yet (version 0).
  explicit Registry(Config file);

  // ---- reading ----
  const Config& file() const noexcept { return *file_; }
  const Config& desired() const noexcept { return *desired_; }
  const Config& view() const noexcept { return *view_; }
  const LearntState& learnt() const noexcept { return learnt_; }
  uint64_t version() const noexcept { return version_; }
  // Runtime edits published since the file layer was last read or written.
  uint64_t unsaved_changes() const noexcept { return unsaved_; }

  // ---- staging (nothing changes until commit) ----

  // The current state as it is, e.g. the first version at start.
  Proposal stage_current() const;

  // A new file layer (reload): replaces the file and drops the runtime edits;
  // learnt state stays.  Validated whole like every layer.
  Result<Proposal> stage_file(Config file) const;

  // A runtime edit: `edit` changes a copy of desired() and says whether it
  // changed anything; the result is validated whole.  An error from `edit`
  // or from validate() is returned as it is.
  Result<Proposal> stage_edit(const std::function<Result<bool>(Config&)>& edit) const;

  // Learnt state about one endpoint; LearntEndpoint{} forgets it.
  Proposal stage_learnt(const EndpointRef& endpoint, const LearntEndpoint& state) const;
  // The health checker's findings, many endpoints in one version: each
  // endpoint's unhealthy ports replaced (drained kept).
  Proposal stage_health(const std::vector<std::pair<EndpointRef, std::vector<PortRef>>>& changes) const;

  // ---- publication ----

  // Makes `p` the current state as version() + 1 and tells the listeners,
  // in the order they subscribed.  Call once the change is published
  // (snapshot handed to the workers); `snapshot` is passed on to listeners.
  // False when a listener ran out of memory (std::bad_alloc): the others
  // are still told, and the next version tells every one of them to start
  // over (Publication::changes null), so they catch up.  Never throws: the
  // snapshot runs already, so the state is taken whatever memory is left.
  bool commit(Proposal p, const dp::Snapshot* snapshot = nullptr);

  // `config save` wrote desired() to the config file: it is the file layer now.
  void saved_to_file();

  ListenerId subscribe(Listener listener);
  void unsubscribe(ListenerId id);

 private:
  Proposal unchanged_learnt() const;
  // A proposal of `desired` and `learnt`; `relearnt` names every endpoint
  // whose learnt entry differs from learnt_ (none for a desired change).
  Proposal make(Layer layer, bool changed, std::shared_ptr<const Config> desired,
                LearntState learnt, const std::vector<EndpointRef>& relearnt) const;
  // `desired` with `learnt` applied, sharing view_'s copy of every service
  // that neither `desired_changes` nor `relearnt` touched.
  std::shared_ptr<const Config> next_view(const Config& desired, const ServiceDiff& desired_changes,
                                          const LearntState& learnt,
                                          const std::vector<EndpointRef>& relearnt) const;
  std::shared_ptr<const Config> file_;
  std::shared_ptr<const Config> desired_;  // == file_ until the first edit
  std::shared_ptr<const Config> view_;     // == desired_ without learnt state; its
                                           // services are desired_'s, index for index
  LearntState learnt_;
  uint64_t version_ = 0;
  uint64_t unsaved_ = 0;
  std::vector<std::pair<ListenerId, Listener>> listeners_;
  bool listener_behind_ = false;  // one missed a version (commit())
  ListenerId next_listener_ = 1;
  ServiceIndex index_;  // of desired_'s services: validate_change() checks edits against it
  bool index_current_ = true;  // false: memory ran out updating it (commit())
};

}  // namespace podgate::ctl
