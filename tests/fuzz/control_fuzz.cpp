// libFuzzer target over control-socket requests (tools/fuzz.sh --target
// control): ControlSocket::handle_line(), what every connection runs on a
// request line (JSON with duplicate keys refused, version, id echo, command
// dispatch, error replies), with the commands that change the running state
// (apply, delete, endpoint; control_changes.hpp) registered against a
// Registry that starts from conf/podgate.toml.  The other commands read the
// running Appliance (ports, workers) and are not here.
//
// An input is what a client writes: request lines separated by '\n', each
// answered in turn against the state the earlier ones left; every input
// starts from the shipped config again.  The promises:
//   - every reply is one JSON object with "ok" and "version": 1, and an
//     error reply has a code and a message;
//   - the state after every request passes validate(), and `config save`
//     writes it so that it loads back the same (fuzz_check.hpp).
// Changes are logged on stderr as in podgate; tools/fuzz.sh runs this
// target with -close_fd_mask=2 (a crash still saves its input).
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/admin/control_changes.hpp"
#include "control/admin/control_socket.hpp"
#include "control/config/validate.hpp"
#include "control/loop/event_loop.hpp"
#include "control/publish/registry.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace podgate;
using nlohmann::json;
constexpr const char* kTarget = "control_fuzz";

// A Registry as the change commands' target: a change is staged (validated
// whole) and committed, nothing is published.
class RegistryTarget final : public ctl::ChangeTarget {
 public:
  void reset(const ctl::Config& config) { registry_ = std::make_unique<ctl::Registry>(config); }
  const ctl::Config& config() const override { return registry_->desired(); }
  ctl::Result<void> change(const Edit& edit) override {
    auto next = registry_->stage_edit(edit);
    if (!next) return std::move(next).error();
    if (next->changed) registry_->commit(std::move(*next));
    return {};
  }
  uint64_t generation() const override { return registry_->version(); }

 private:
  std::unique_ptr<ctl::Registry> registry_;
};

struct World {
  std::unique_ptr<ctl::EventLoop> loop;
  std::unique_ptr<ctl::ControlSocket> socket;
  std::shared_ptr<RegistryTarget> target = std::make_shared<RegistryTarget>();
};

std::string scratch_dir;
void remove_scratch_dir() { rmdir(scratch_dir.c_str()); }

// The socket is bound in a scratch directory (ControlSocket has no other
// constructor) but never served: handle_line() is called directly.
World& world() {
  static World w = [] {
    char dir[] = "/tmp/podgate-control-fuzz-XXXXXX";
    if (mkdtemp(dir) == nullptr) fuzz::broken(kTarget, "mkdtemp failed");
    scratch_dir = dir;
    std::atexit(remove_scratch_dir);  // after the socket file goes, at exit
    World w;
    auto loop = ctl::EventLoop::create();
    if (!loop) fuzz::broken(kTarget, loop.error().message);
    w.loop = std::move(*loop);
    auto socket = ctl::ControlSocket::open(*w.loop, scratch_dir + "/ctl.sock");
    if (!socket) fuzz::broken(kTarget, socket.error().message);
    w.socket = std::move(*socket);
    ctl::register_change_commands(*w.socket, w.target);
    return w;
  }();
  return w;
}

void check_reply(const std::string& text) {
  const json reply = json::parse(text, nullptr, false);
  if (!reply.is_object()) fuzz::broken(kTarget, "a reply that is not a JSON object: " + text);
  const auto ok = reply.find("ok");
  const auto version = reply.find("version");
  if (ok == reply.end() || !ok->is_boolean() || version == reply.end() || *version != 1) {
    fuzz::broken(kTarget, "a reply without \"ok\" or \"version\": 1: " + text);
  }
  if (*ok) return;
  const json error = reply.value("error", json());
  if (!error.is_object()) fuzz::broken(kTarget, "an error reply without an error object: " + text);
  const json code = error.value("code", json()), message = error.value("message", json());
  if (!code.is_string() || !message.is_string() || message.get_ref<const std::string&>().empty()) {
    fuzz::broken(kTarget, "an error reply without a code and a message: " + text);
  }
}

void check_state(const ctl::Config& c) {
  if (auto v = ctl::validate(c); !v) {
    fuzz::broken(kTarget, "a change left a state validate() refuses:\n" + v.error().message);
  }
  fuzz::check_saves_and_loads_back(kTarget, c);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  w.target->reset(fuzz::shipped_config());
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    if (line.size() > ctl::ControlSocket::kMaxRequest) continue;  // refused unread by the connection
    const uint64_t before = w.target->generation();
    check_reply(w.socket->handle_line(line));
    if (w.target->generation() != before) check_state(w.target->config());
  }
  return 0;
}
