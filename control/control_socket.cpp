#include "control/control_socket.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "control/stream_output.hpp"

namespace podgate::ctl {

namespace {

using nlohmann::json;

constexpr size_t kReadChunk = 16384;
constexpr int kListenBacklog = 64;
constexpr unsigned kAcceptsPerEvent = 16;
constexpr mode_t kDirMode = 0755;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

sockaddr_un address_of(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());  // length checked by open()
  return sa;
}

// mkdir -p with `mode` for the directories it creates.
Result<void> make_parents(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), kDirMode) != 0 && errno != EEXIST) {
      return make_error(ErrorCode::kIo, "control.socket: cannot create directory " + dir + ": " +
                                            errno_text(errno));
    }
  }
  return {};
}

// What answers on `path`: 0 = a live server, else the errno of connect().
int probe(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_un sa = address_of(path);
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  int err = rc == 0 ? 0 : errno;
  close(fd);
  // EAGAIN: the listener's backlog is full, so somebody is listening.
  return err == EAGAIN ? 0 : err;
}

}  // namespace

std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidRequest:
    case ErrorCode::kConflict:
      return "bad_request";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kInvalidConfig:
      return "invalid_config";
    case ErrorCode::kIo:
    case ErrorCode::kDpdk:
    case ErrorCode::kInternal:
      break;
  }
  return "internal";
}

Result<std::unique_ptr<ControlSocket>> ControlSocket::open(const std::string& path,
                                                           Options options) {
  if (path.empty() || path.front() != '/' || path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return make_error(ErrorCode::kInvalidConfig,
                      "control.socket: \"" + path + "\" is not an absolute path of at most " +
                          std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes");
  }
  std::unique_ptr<ControlSocket> s(new ControlSocket(path, options));
  if (auto r = s->bind_and_listen(); !r) return std::move(r).error();
  return s;
}

Result<void> ControlSocket::bind_and_listen() {
  if (auto r = make_parents(path_); !r) return r;
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    return make_error(ErrorCode::kIo, "control.socket: cannot open a Unix socket: " +
                                          errno_text(errno));
  }
  const sockaddr_un sa = address_of(path_);
  for (int attempt = 0;; ++attempt) {
    if (bind(listen_fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) break;
    const int err = errno;
    struct stat st{};
    if (err != EADDRINUSE || attempt > 0 || lstat(path_.c_str(), &st) != 0) {
      return make_error(ErrorCode::kIo,
                        "control.socket: cannot bind " + path_ + ": " + errno_text(err));
    }
    if (!S_ISSOCK(st.st_mode)) {
      return make_error(ErrorCode::kIo, "control.socket: " + path_ +
                                            " exists and is not a socket; remove it or choose "
                                            "another path");
    }
    const int live = probe(path_);
    if (live == 0) {
      return make_error(ErrorCode::kIo, "control.socket: another podgate is serving " + path_ +
                                            "; stop it or choose another control.socket");
    }
    if (live != ECONNREFUSED) {
      return make_error(ErrorCode::kIo, "control.socket: cannot tell whether " + path_ +
                                            " is in use: " + errno_text(live));
    }
    // Nobody listens: a socket file left by a crashed run.  Replace it.
    if (unlink(path_.c_str()) != 0 && errno != ENOENT) {
      return make_error(ErrorCode::kIo, "control.socket: cannot remove the stale " + path_ +
                                            ": " + errno_text(errno));
    }
  }
  struct stat st{};
  if (stat(path_.c_str(), &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  // Before listen(): nobody can connect yet, so the mode is right from the
  // first connection on.
  if (!options_.group.empty()) {
    // getgrnam_r with a growing buffer: group entries can be large.
    std::vector<char> buf(4096);
    group gr{};
    group* found = nullptr;
    int rc;
    while ((rc = getgrnam_r(options_.group.c_str(), &gr, buf.data(), buf.size(), &found)) ==
               ERANGE &&
           buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
    }
    if (found == nullptr) {
      return make_error(ErrorCode::kInvalidConfig,
                        "control.group: no group named \"" + options_.group + "\"" +
                            (rc != 0 ? ": " + errno_text(rc) : std::string()));
    }
    if (chown(path_.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0) {
      return make_error(ErrorCode::kIo, "control.group: cannot give " + path_ + " to group " +
                                            options_.group + ": " + errno_text(errno));
    }
  }
  if (chmod(path_.c_str(), options_.mode) != 0) {
    return make_error(ErrorCode::kIo, "control.socket: cannot chmod " + path_ + ": " +
                                          errno_text(errno));
  }
  if (listen(listen_fd_, kListenBacklog) != 0) {
    return make_error(ErrorCode::kIo, "control.socket: cannot listen on " + path_ + ": " +
                                          errno_text(errno));
  }
  return {};
}

ControlSocket::~ControlSocket() {
  for (auto& [id, c] : conns_) close(c.fd);
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    // Only the file this process bound: never one a later podgate replaced it with.
    struct stat st{};
    if (ino_ != 0 && lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
      unlink(path_.c_str());
    }
  }
}

void ControlSocket::add_command(std::string name, Handler handler) {
  commands_[std::move(name)] = std::move(handler);
}

void ControlSocket::tick(uint64_t now_ms) {
  now_ms_ = now_ms;
  if (options_.idle_timeout_ms == 0) return;
  std::vector<uint64_t> idle;
  for (auto& [id, c] : conns_) {
    if (c.last_active_ms == 0) c.last_active_ms = now_ms;  // accepted before the first tick
    if (!c.waiting && now_ms - c.last_active_ms > options_.idle_timeout_ms) idle.push_back(id);
  }
  for (uint64_t id : idle) {
    ++counters_.closed_idle;
    close_conn(id);
  }
}

void ControlSocket::add_async_command(std::string name, AsyncHandler handler) {
  async_commands_[std::move(name)] = std::move(handler);
}

Result<void> ControlSocket::attach(int epoll_fd) {
  epoll_fd_ = epoll_fd;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTag | kListenerId;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
    return make_error(ErrorCode::kIo, "control.socket: cannot watch " + path_ + ": " +
                                          errno_text(errno));
  }
  return {};
}

void ControlSocket::on_event(const epoll_event& ev) {
  const uint64_t id = ev.data.u64 & ~kTagMask;
  if (id == kListenerId) return on_accept();
  on_conn(id, ev.events);
}

void ControlSocket::on_accept() {
  for (unsigned k = 0; k < kAcceptsPerEvent; ++k) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or EMFILE and kin: try again on the next event
    if (conns_.size() >= options_.max_connections) {
      // Best effort: one line saying why, then close.
      ++counters_.refused;
      std::string line = error_reply(nullptr, "internal",
                                     "too many control connections (at most " +
                                         std::to_string(options_.max_connections) + ")") + "\n";
      (void)!send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      close(fd);
      continue;
    }
    const uint64_t id = next_id_++;
    Conn& c = conns_[id];
    c.fd = fd;
    c.events = EPOLLIN;
    c.last_active_ms = now_ms_;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTag | id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close_conn(id);
      continue;
    }
    ++counters_.accepted;
  }
}

void ControlSocket::on_conn(uint64_t id, uint32_t events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;  // closed earlier in this epoll batch
  Conn& c = it->second;
  if ((events & EPOLLERR) != 0) return close_conn(id);
  if ((events & (EPOLLIN | EPOLLHUP)) != 0 && !c.closing) {
    // One read per event (level-triggered): a client that sends without
    // pause cannot keep the loop to itself.
    char buf[kReadChunk];
    ssize_t r = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0) {
      c.closing = true;  // EOF: answer what came, then close
    } else if (r < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return close_conn(id);
    } else {
      c.in.append(buf, static_cast<size_t>(r));
      c.last_active_ms = now_ms_;
    }
    if (!process_lines(id, c)) return;
  }
  if (!flush(c)) return close_conn(id);
  watch(id, c);
}

bool ControlSocket::process_lines(uint64_t id, Conn& c) {
  size_t pos = 0;
  c.processing = true;
  while (!c.waiting) {
    size_t nl = c.in.find('\n', pos);
    if (nl == std::string::npos) break;
    if (nl - pos > kMaxRequest) break;  // reported below
    std::string_view line(c.in.data() + pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
    c.answered = false;
    auto reply = handle_line(line, [this, id](std::string later) { deliver(id, later); });
    if (!reply) {
      if (!c.answered) c.waiting = true;
      continue;
    }
    queue_reply(c, *reply);
    if (c.out.size() - c.out_pos > options_.max_backlog) {
      ++counters_.closed_backlog;
      close_conn(id);
      return false;
    }
  }
  c.processing = false;
  c.in.erase(0, pos);
  // Whatever is left has no newline within kMaxRequest: it never will.
  const size_t nl = c.in.find('\n');
  if ((nl == std::string::npos ? c.in.size() : nl) > kMaxRequest) {
    ++counters_.closed_oversize;
    ++counters_.errors;
    queue_reply(c, error_reply(nullptr, "bad_request",
                               "request line longer than " + std::to_string(kMaxRequest) +
                                   " bytes; closing the connection"));
    c.in.clear();
    c.closing = true;
  }
  return true;
}

void ControlSocket::deliver(uint64_t id, const std::string& line) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;  // the client left meanwhile
  Conn& c = it->second;
  queue_reply(c, line);
  if (c.processing) {  // answered from inside its handler
    c.answered = true;
    return;
  }
  c.waiting = false;
  if (!process_lines(id, c)) return;
  if (!flush(c)) return close_conn(id);
  watch(id, c);
}

void ControlSocket::queue_reply(Conn& c, const std::string& line) {
  if (c.out_pos == c.out.size()) {
    c.out.clear();
    c.out_pos = 0;
  }
  c.out += line;
  c.out += '\n';
}

bool ControlSocket::flush(Conn& c) {
  return send_pending(c.fd, c.out, c.out_pos, kReadChunk * 4);
}

void ControlSocket::watch(uint64_t id, Conn& c) {
  const bool pending = c.out_pos < c.out.size();
  if (c.closing && !pending && !c.waiting) return close_conn(id);
  uint32_t want = pending ? uint32_t{EPOLLOUT} : 0u;
  if (!c.closing) want |= uint32_t{EPOLLIN};
  if (want == c.events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = kTag | id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) return close_conn(id);
  c.events = want;
}

void ControlSocket::close_conn(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  close(it->second.fd);  // also leaves the epoll set
  conns_.erase(it);
}

std::string ControlSocket::error_reply(const json& id, std::string_view code,
                                       std::string_view message) {
  json reply = {{"ok", false},
                {"version", kProtocolVersion},
                {"error", {{"code", code}, {"message", message}}}};
  if (!id.is_null()) reply["id"] = id;
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ControlSocket::handle_line(std::string_view line) {
  std::string later;
  auto now = handle_line(line, [&later](std::string r) { later = std::move(r); });
  return now ? *now : later;
}

std::string ControlSocket::success_reply(const json& id, Result<json> result) {
  if (!result) {
    ++counters_.errors;
    return error_reply(id, error_code_name(result.error().code), result.error().message);
  }
  json reply = json::object();
  reply["ok"] = true;
  reply["version"] = kProtocolVersion;
  if (!id.is_null()) reply["id"] = id;
  if (result->is_object()) reply.update(*result);
  return reply.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<std::string> ControlSocket::handle_line(std::string_view line,
                                                      std::function<void(std::string)> deferred) {
  ++counters_.requests;
  json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
  auto fail = [&](const json& id, std::string_view code, const std::string& message) {
    ++counters_.errors;
    return error_reply(id, code, message);
  };
  if (request.is_discarded()) return fail(nullptr, "bad_json", "the request is not valid JSON");
  if (!request.is_object()) {
    return fail(nullptr, "bad_request",
                std::string("the request must be a JSON object, found ") + request.type_name());
  }
  const json id = request.contains("id") ? request["id"] : json();
  if (auto v = request.find("version"); v != request.end()) {
    if (!v->is_number_integer() || v->get<int64_t>() != int64_t{kProtocolVersion}) {
      return fail(id, "bad_request",
                  "unsupported protocol version " + v->dump() + "; this podgate speaks version " +
                      std::to_string(kProtocolVersion));
    }
  }
  auto cmd = request.find("command");
  if (cmd == request.end()) return fail(id, "bad_request", "missing \"command\"");
  if (!cmd->is_string()) {
    return fail(id, "bad_request",
                std::string("\"command\" must be a string, found ") + cmd->type_name());
  }
  const std::string& name = cmd->get_ref<const std::string&>();
  if (auto async = async_commands_.find(name); async != async_commands_.end()) {
    try {
      async->second(request, [this, id, deferred](Result<json> result) {
        deferred(success_reply(id, std::move(result)));
      });
    } catch (const std::exception& e) {
      return fail(id, "internal", name + ": " + e.what());
    }
    return std::nullopt;
  }
  auto handler = commands_.find(name);
  if (handler == commands_.end()) {
    std::string known;
    for (const auto& [n, h] : commands_) known += (known.empty() ? "" : ", ") + n;
    for (const auto& [n, h] : async_commands_) known += ", " + n;
    return fail(id, "unknown_command", "unknown command \"" + name + "\"; known: " + known);
  }
  Result<json> result = make_error(ErrorCode::kInternal, "no reply");
  try {
    result = handler->second(request);
  } catch (const std::exception& e) {
    // A handler bug must not take the appliance down; say so instead.
    return fail(id, "internal", name + ": " + e.what());
  }
  return success_reply(id, std::move(result));
}

}  // namespace podgate::ctl
