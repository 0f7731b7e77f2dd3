#include "control/admin/control_changes.hpp"

#include <algorithm>
#include <utility>

#include "control/appliance.hpp"
#include "control/admin/command_views.hpp"
#include "control/admin/control_socket.hpp"
#include "control/config/k8s_objects.hpp"
#include "control/config/validate.hpp"
#include "control/log.hpp"

namespace podgate::ctl {

namespace {

using nlohmann::json;

// Services read from an apply or delete request's "text".
struct Input {
  std::vector<ServiceConfig> services;
  // services[0, named) are objects of the input (TOML tables, Kubernetes
  // Services); the rest are running services EndpointSlices belong to.
  size_t named = 0;
  // Per service: the address families whose endpoints the input gives
  // (TOML: both), and those the service's endpoints may be of
  // (K8sImport::families_given and endpoint_families).
  std::vector<std::vector<dp::Family>> families_given;
  std::vector<std::vector<dp::Family>> endpoint_families;
  std::vector<std::vector<bool>> target_unresolved;  // per service port (Kubernetes)
  std::vector<std::string> warnings;
};

std::string full_name(const ServiceConfig& s) { return s.ns + "/" + s.name; }

bool contains(const std::vector<dp::Family>& families, dp::Family f) {
  return std::find(families.begin(), families.end(), f) != families.end();
}

// The index of the service named like `like`, or npos.  Searches a const
// view: a non-const ServiceList copies each service it hands out.
size_t find_index(const Config& c, const ServiceConfig& like) {
  const ServiceList& list = c.services;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].ns == like.ns && list[i].name == like.name) return i;
  }
  return std::string::npos;
}

// The service named like `like`, to change: only it is copied.
ServiceConfig* find_service(Config& c, const ServiceConfig& like) {
  const size_t i = find_index(c, like);
  return i == std::string::npos ? nullptr : &c.services[i];
}

// "toml" or "kubernetes"; absent or "auto": JSON text is Kubernetes objects.
Result<Input> read_input(const json& req, const Config& running) {
  auto text = string_arg(req, "text", true);
  if (!text) return std::move(text).error();
  auto source = string_arg(req, "source", false);
  if (!source) return std::move(source).error();
  auto format = string_arg(req, "format", false);
  if (!format) return std::move(format).error();
  const std::string name = source->value_or("-");
  std::string fmt = format->value_or("auto");
  if (fmt == "auto") {
    const size_t first = (*text)->find_first_not_of(" \t\r\n");
    fmt = first != std::string::npos && (**text)[first] == '{' ? "kubernetes" : "toml";
  }
  Input in;
  if (fmt == "toml") {
    auto services = parse_services(**text, name);
    if (!services) return std::move(services).error();
    in.services = std::move(*services);
    in.named = in.services.size();
    const std::vector<dp::Family> both = {dp::Family::kIpv4, dp::Family::kIpv6};
    in.families_given.assign(in.services.size(), both);
    in.endpoint_families.assign(in.services.size(), both);
    if (in.services.empty()) {
      return make_error(ErrorCode::kInvalidRequest,
                        name + ": no [[services]] table; apply and delete take service "
                               "tables as in the config file");
    }
    return in;
  }
  if (fmt != "kubernetes") {
    return make_error(ErrorCode::kInvalidRequest,
                      "\"format\": \"" + fmt + "\" is not supported; allowed: auto, toml, kubernetes");
  }
  auto imported = import_k8s_objects(**text, name, running.services);
  if (!imported) return std::move(imported).error();
  in.services = std::move(imported->services);
  in.named = imported->service_objects;
  in.families_given = std::move(imported->families_given);
  in.endpoint_families = std::move(imported->endpoint_families);
  in.target_unresolved = std::move(imported->target_unresolved);
  in.warnings = std::move(imported->warnings);
  if (in.services.empty()) {
    return make_error(ErrorCode::kInvalidRequest,
                      name + ": nothing to apply (no Service, and no EndpointSlice of a running "
                             "service)" + (in.warnings.empty() ? "" : ": " + in.warnings.front()));
  }
  return in;
}

Result<json> apply(ChangeTarget& app, const json& req) {
  auto in = read_input(req, app.config());
  if (!in) return std::move(in).error();
  json created = json::array(), updated = json::array(), unchanged = json::array();
  bool changed = false;
  auto edit = [&](Config& c) -> Result<bool> {
    for (size_t i = 0; i < in->services.size(); ++i) {
      ServiceConfig next = in->services[i];
      const size_t at = find_index(c, next);
      const ServiceConfig* existing = at == std::string::npos ? nullptr : &std::as_const(c.services)[at];
      // Kubernetes keeps a Service and its EndpointSlices as separate
      // objects: the running endpoints of a family the input has no slice
      // of stay, those the service can still have, as the EndpointSlice
      // controller deletes the slices of an ExternalName service and of a
      // family the Service dropped.  A named targetPort no slice resolved
      // is still what the running service resolved it to.
      if (existing != nullptr) {
        for (const EndpointConfig& e : existing->endpoints) {
          const dp::Family f = e.ip.family;
          if (!contains(in->families_given[i], f) && contains(in->endpoint_families[i], f)) {
            next.endpoints.push_back(e);
          }
        }
        for (size_t j = 0; j < next.ports.size(); ++j) {
          if (i >= in->target_unresolved.size() || !in->target_unresolved[i][j]) continue;
          for (const ServicePortConfig& running : existing->ports) {
            if (running.name == next.ports[j].name && running.protocol == next.ports[j].protocol) {
              next.ports[j].target_port = running.target_port;
            }
          }
        }
      }
      if (existing == nullptr) {
        created.push_back(full_name(next));
        c.services.push_back(std::move(next));
        changed = true;
      } else if (*existing == next) {
        unchanged.push_back(full_name(next));
      } else {
        updated.push_back(full_name(next));
        c.services.replace(at, std::move(next));
        changed = true;
      }
    }
    return changed;
  };
  if (auto r = app.change(edit); !r) return std::move(r).error();
  log_info("control socket: apply: " + std::to_string(created.size()) + " created, " +
           std::to_string(updated.size()) + " updated, " + std::to_string(unchanged.size()) +
           " unchanged");
  // What the running config now warns about: for the services this apply
  // created or changed (a VIP inside a connected subnet, ...), and, when
  // it changed any, about the whole config (stats slots running short).
  constexpr std::string_view kOfAService = "service ";
  for (const std::string& w : config_warnings(app.config())) {
    if (w.compare(0, kOfAService.size(), kOfAService) != 0) {
      if (!created.empty() || !updated.empty()) {
        log_warn(w);
        in->warnings.push_back(w);
      }
      continue;
    }
    for (const json* names : {&created, &updated}) {
      for (const json& n : *names) {
        const std::string prefix = "service " + n.get<std::string>() + ":";
        if (w.compare(0, prefix.size(), prefix) == 0) {
          log_warn(w);
          in->warnings.push_back(w);
        }
      }
    }
  }
  return json{{"created", std::move(created)}, {"updated", std::move(updated)},
              {"unchanged", std::move(unchanged)}, {"warnings", std::move(in->warnings)},
              {"generation", app.generation()}};
}

// delete: {"name": "NS/NAME"}, or {"text": ...} naming services (TOML
// tables, Kubernetes Services: deleted) and EndpointSlices of running
// services (their addresses leave the service).  Everything named must exist.
Result<json> remove(ChangeTarget& app, const json& req) {
  json deleted = json::array(), endpoints_removed = json::array();
  std::function<Result<bool>(Config&)> edit;
  if (req.contains("name")) {
    if (req.contains("text")) {
      return make_error(ErrorCode::kInvalidRequest, "give \"name\" or \"text\", not both");
    }
    auto named = name_arg(req);
    if (!named) return std::move(named).error();
    // The edit runs after this block: it keeps its own copy of the name
    // (captured by reference, it read a dead stack slot; control_fuzz).
    edit = [&deleted, name = std::move(*named)](Config& c) -> Result<bool> {
      const ServiceList& list = c.services;
      auto it = std::find_if(list.begin(), list.end(), [&](const ServiceConfig& s) {
        return s.ns == name.first && s.name == name.second;
      });
      if (it == list.end()) {
        return make_error(ErrorCode::kNotFound,
                          "no service " + plain_or_quoted(name.first + "/" + name.second));
      }
      deleted.push_back(full_name(*it));
      c.services.erase(it);
      return true;
    };
  } else {
    auto in = read_input(req, app.config());
    if (!in) return std::move(in).error();
    edit = [&, in = std::move(*in)](Config& c) -> Result<bool> {
      std::string missing;
      for (size_t i = 0; i < in.services.size(); ++i) {
        const ServiceConfig& named = in.services[i];
        const size_t at = find_index(c, named);
        if (at == std::string::npos) {
          missing += (missing.empty() ? "" : ", ") + full_name(named);
          continue;
        }
        if (i < in.named) {
          deleted.push_back(full_name(named));
          c.services.erase(c.services.cbegin() + static_cast<std::ptrdiff_t>(at));
          continue;
        }
        ServiceConfig* existing = &c.services[at];
        for (const EndpointConfig& e : named.endpoints) {
          auto& eps = existing->endpoints;
          auto it = std::find_if(eps.begin(), eps.end(),
                                 [&](const EndpointConfig& x) { return x.ip == e.ip; });
          if (it == eps.end()) continue;
          endpoints_removed.push_back(full_name(named) + " " + ip_text(e.ip));
          eps.erase(it);
        }
      }
      if (!missing.empty()) {
        return make_error(ErrorCode::kNotFound, "no service " + missing + "; nothing was deleted");
      }
      return !deleted.empty() || !endpoints_removed.empty();
    };
  }
  if (auto r = app.change(edit); !r) return std::move(r).error();
  log_info("control socket: delete: " + std::to_string(deleted.size()) + " service(s), " +
           std::to_string(endpoints_removed.size()) + " endpoint(s)");
  return json{{"deleted", std::move(deleted)},
              {"endpoints_removed", std::move(endpoints_removed)},
              {"generation", app.generation()}};
}

// endpoint: {"action": "set", "name": "NS/NAME", "ip": IP, and one or more
// of "ready", "serving", "terminating", "weight"}.  The Kubernetes meanings:
// ready=true is ready, serving and not terminating; ready=false takes the
// Pod out of rotation (no new flows) while it keeps serving its flows;
// terminating=true drains it as a Pod shutting down does.
Result<json> endpoint(ChangeTarget& app, const json& req) {
  auto action = string_arg(req, "action", true);
  if (!action) return std::move(action).error();
  if (**action != "set") {
    return make_error(ErrorCode::kInvalidRequest,
                      "\"action\": " + quote(**action) + " is not supported; allowed: set");
  }
  auto svc = service_arg(req, app.config());
  if (!svc) return std::move(svc).error();
  auto ip_text_arg = string_arg(req, "ip", true);
  if (!ip_text_arg) return std::move(ip_text_arg).error();
  auto ip = dp::parse_ip(**ip_text_arg);
  if (!ip) {
    return make_error(ErrorCode::kInvalidRequest,
                      "\"ip\": " + quote(**ip_text_arg) +
                          " is not an IPv4 or IPv6 address such as 172.17.0.10 or fd00:10:244::10");
  }
  auto ready = bool_arg(req, "ready");
  auto serving = bool_arg(req, "serving");
  auto terminating = bool_arg(req, "terminating");
  auto weight = int_arg(req, "weight", 1, 256);
  for (const auto* r : {&ready, &serving, &terminating}) {
    if (!*r) return Error((*r).error());
  }
  if (!weight) return std::move(weight).error();
  if (!*ready && !*serving && !*terminating && !*weight) {
    return make_error(ErrorCode::kInvalidRequest,
                      "nothing to set: give one or more of \"ready\", \"serving\", "
                      "\"terminating\", \"weight\"");
  }
  const std::string ns = (*svc)->ns, name = (*svc)->name;
  json result;
  auto edit = [&](Config& c) -> Result<bool> {
    ServiceConfig* s = find_service(c, **svc);
    auto it = std::find_if(s->endpoints.begin(), s->endpoints.end(),
                           [&](const EndpointConfig& e) { return e.ip == *ip; });
    if (it == s->endpoints.end()) {
      return make_error(ErrorCode::kNotFound,
                        ns + "/" + name + " has no endpoint " + dp::to_string(*ip));
    }
    const EndpointConfig before = *it;
    if (*terminating) {
      it->terminating = **terminating;
      if (**terminating) it->ready = false;  // KEP-1672: ready = serving && !terminating
    }
    if (*ready) {
      it->ready = **ready;
      if (**ready) it->serving = true, it->terminating = false;
    }
    if (*serving) {
      it->serving = **serving;
      if (!**serving) it->ready = false;
    }
    if (*weight) it->weight = static_cast<uint32_t>(**weight);
    result = endpoint_json(*it, new_flow_rule(*s));
    return !(before == *it);
  };
  if (auto r = app.change(edit); !r) return std::move(r).error();
  log_info("control socket: endpoint " + ns + "/" + name + " " + dp::to_string(*ip) + " set: " +
           result.dump());
  return json{{"name", ns + "/" + name}, {"endpoint", std::move(result)},
              {"generation", app.generation()}};
}

class ApplianceTarget final : public ChangeTarget {
 public:
  explicit ApplianceTarget(Appliance& app) : app_(app) {}
  const Config& config() const override { return app_.config(); }
  Result<void> change(const Edit& edit) override { return app_.change(edit); }
  uint64_t generation() const override { return app_.generation(); }

 private:
  Appliance& app_;
};

}  // namespace

void register_change_commands(ControlSocket& socket, Appliance& app) {
  register_change_commands(socket, std::make_shared<ApplianceTarget>(app));
}

void register_change_commands(ControlSocket& socket, std::shared_ptr<ChangeTarget> target) {
  socket.add_command("apply", [target](const json& r) { return apply(*target, r); });
  socket.add_command("delete", [target](const json& r) { return remove(*target, r); });
  socket.add_command("endpoint", [target](const json& r) { return endpoint(*target, r); });
}

}  // namespace podgate::ctl
