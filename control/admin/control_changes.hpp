// The control socket's commands that change the running state
// (docs/control-protocol.md): apply, delete, endpoint and "config save".
//
// Each is validated whole before anything changes and goes through
// Appliance::change(), the same snapshot and zone publication as a reload:
// it happens completely or not at all.  Control thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "control/config/config.hpp"
#include "control/result.hpp"

namespace podgate::ctl {

class Appliance;
class ControlSocket;

// What the change commands act on.  The Appliance is one (a change is
// published as a snapshot); tests/fuzz/control_fuzz.cpp has a Registry
// alone, whose changes are validated and committed with nothing published,
// so the commands run without EAL or workers.
class ChangeTarget {
 public:
  using Edit = std::function<Result<bool>(Config&)>;
  virtual ~ChangeTarget() = default;
  // The desired config: what a change starts from.
  virtual const Config& config() const = 0;
  // As Appliance::change(): validated whole, then applied, or refused with
  // nothing changed.
  virtual Result<void> change(const Edit& edit) = 0;
  virtual uint64_t generation() const = 0;
};

// Registers apply, delete and endpoint.
void register_change_commands(ControlSocket& socket, Appliance& appliance);
void register_change_commands(ControlSocket& socket, std::shared_ptr<ChangeTarget> target);

}  // namespace podgate::ctl
