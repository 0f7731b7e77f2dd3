#include "control/admin/control_socket.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "control/config/diagnostics.hpp"
#include "control/config/json_input.hpp"
#include "control/log.hpp"

namespace podgate::ctl {

namespace {

using nlohmann::json;

constexpr int kListenBacklog = 64;
constexpr unsigned kAcceptsPerEvent = 16;
constexpr mode_t kDirMode = 0755;

sockaddr_un address_of(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());  // length checked by open()
  return sa;
}

// mkdir -p, the directories it creates 0755 whatever the umask.
Result<void> make_parents(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), kDirMode) == 0) {
      // The umask narrowed it (077 would lock the socket's group out).
      if (chmod(dir.c_str(), kDirMode) != 0) {
        return make_error(ErrorCode::kIo, "control.socket: cannot set mode 0755 on " + dir + ": " +
                                              errno_text(errno));
      }
    } else if (errno != EEXIST) {
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

// One connection: its requests are answered in order, so while an async
// command's reply is due the lines after it wait (and the connection is
// busy: not idle, and not closed at EOF before that reply is written).
class ControlSocket::Session final : public StreamSession {
 public:
  explicit Session(ControlSocket& socket) : socket_(socket) {}
  Input on_input(StreamConn& conn) override { return socket_.process_lines(conn, *this); }
  bool busy() const override { return waiting; }
  bool has_more_output() const override { return stream != nullptr; }

  std::unique_ptr<ReplyStream> stream;  // a long reply being written: later requests wait
  bool waiting = false;     // an async command's reply is due: hold later requests
  bool processing = false;  // inside process_lines(): replies are queued in order
  bool answered = false;    // the async handler replied before returning

 private:
  ControlSocket& socket_;
};

Result<std::unique_ptr<ControlSocket>> ControlSocket::open(EventLoop& loop,
                                                           const std::string& path,
                                                           Options options) {
  if (path.empty() || path.front() != '/' || path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return make_error(ErrorCode::kInvalidConfig,
                      "control.socket: \"" + path + "\" is not an absolute path of at most " +
                          std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes");
  }
  std::unique_ptr<ControlSocket> s(new ControlSocket(path, options));
  if (auto r = s->bind_and_listen(); !r) return std::move(r).error();
  if (auto r = s->serve(loop); !r) return std::move(r).error();
  return s;
}

Result<void> ControlSocket::serve(EventLoop& loop) {
  StreamServer::Options o;
  o.max_connections = options_.max_connections;
  // At the cap the stalest connection makes room; a newcomer is refused
  // only while every connection waits for an answer (a flow listing).
  o.at_cap = StreamServer::AtCap::kEvictStalest;
  o.refusal = error_reply(nullptr, "internal",
                          "too many control connections (at most " +
                              std::to_string(options_.max_connections) +
                              ", every one waiting for an answer)") +
              "\n";
  o.request_timeout_ms = kRequestTimeoutMs;
  // Room for a whole kMaxRequest line and its newline; beyond that a
  // client pipelining behind an async reply waits for TCP.
  o.max_input = 2 * kMaxRequest;
  o.max_output = options_.max_backlog;
  o.output_full = StreamServer::OutputFull::kClose;
  o.idle_timeout_ms = options_.idle_timeout_ms;
  o.output_is_activity = false;  // the timeout counts the client's silence only
  o.accepts_per_event = kAcceptsPerEvent;
  server_ = std::make_unique<StreamServer>(
      loop, std::move(o), [this](StreamConn&) { return std::make_unique<Session>(*this); });
  const int fd = listen_fd_;
  listen_fd_ = -1;  // the server's now
  if (auto r = server_->add_listener(fd); !r) {
    return make_error(ErrorCode::kIo,
                      "control.socket: cannot watch " + path_ + ": " + r.error().message);
  }
  return {};
}

ControlCounters ControlSocket::counters() const noexcept {
  ControlCounters c = counters_;
  if (server_) {
    const StreamCounters& sc = server_->counters();
    c.accepted = sc.accepted;
    c.refused = sc.refused;
    c.closed_oversize = sc.closed_oversize;
    c.closed_backlog = sc.closed_backlog;
    c.closed_idle = sc.closed_idle;
    c.evicted = sc.evicted;
    c.closed_slow = sc.closed_slow;
  }
  return c;
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
  const bool bound = server_ != nullptr || listen_fd_ >= 0;
  server_.reset();  // closes every connection and the listening socket
  if (listen_fd_ >= 0) close(listen_fd_);
  if (bound) {
    // Only the file this process bound: never one a later podgate replaced it with.
    struct stat st{};
    if (ino_ != 0 && lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
      unlink(path_.c_str());
    }
  }
}

void ControlSocket::add_command(std::string name, Handler handler) {
  commands_[std::move(name)] = [h = std::move(handler)](const json& request) -> Result<LongReply> {
    Result<json> r = h(request);
    if (!r) return std::move(r).error();
    return LongReply(std::move(*r));
  };
}

void ControlSocket::add_long_command(std::string name, LongHandler handler) {
  commands_[std::move(name)] = std::move(handler);
}

void ControlSocket::add_async_command(std::string name, AsyncHandler handler) {
  async_commands_[std::move(name)] = std::move(handler);
}

StreamSession::Input ControlSocket::process_lines(StreamConn& c, Session& s) {
  std::string& in = c.input();
  const StreamConn::Id conn = c.id();
  size_t pos = 0;
  s.processing = true;
  while (!c.closing()) {
    if (s.stream) {
      if (!pump(c, s)) break;  // one piece per turn; the rest when the socket drains
      continue;
    }
    if (s.waiting) break;
    size_t nl = in.find('\n', pos);
    if (nl == std::string::npos) break;
    if (nl - pos > kMaxRequest) break;  // reported below
    std::string_view line(in.data() + pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
    s.answered = false;
    auto reply = answer(line, [this, conn](Outgoing later) { deliver(conn, std::move(later)); });
    if (!reply) {
      if (!s.answered) s.waiting = true;
      continue;
    }
    send(c, s, std::move(*reply));
  }
  s.processing = false;
  in.erase(0, pos);
  if (c.closing()) return StreamSession::Input::kOk;
  // Whatever is left has no newline within kMaxRequest: it never will.
  // Said in its turn: not before a reply still being made (a stream) or
  // awaited (`flows`), which is the earlier request's.  The input is
  // bounded meanwhile by the server's max_input.
  const size_t nl = in.find('\n');
  if (!s.stream && !s.waiting && (nl == std::string::npos ? in.size() : nl) > kMaxRequest) {
    ++counters_.errors;
    c.write(error_reply(nullptr, "bad_request",
                        "request line longer than " + std::to_string(kMaxRequest) +
                            " bytes; closing the connection") +
            '\n');
    return StreamSession::Input::kTooLong;
  }
  return StreamSession::Input::kOk;
}

void ControlSocket::send(StreamConn& c, Session& s, Outgoing reply) {
  if (reply.stream) {
    ++stream_stats_.streams;
    s.stream = std::move(reply.stream);  // process_lines() writes it, a piece per turn
    return;
  }
  // False when the client stopped reading and its queue overflowed: closed.
  c.write(reply.text + '\n');
}

bool ControlSocket::pump(StreamConn& c, Session& s) {
  if (c.pending_output() >= kReplyPiece) return false;  // the client has not read the last one
  std::string piece;
  bool more = false;
  try {
    more = s.stream->next(piece, kReplyPiece);
  } catch (const std::exception& e) {
    // Part of the line is sent: no error reply can follow it.  A bug (or
    // memory running out) costs this connection, never the loop.
    log_error(std::string("control socket: a long reply failed midway, closing the connection: ") +
              e.what());
    ++counters_.errors;
    s.stream.reset();
    c.close_after_output();
    return false;
  }
  if (!more) piece += '\n';
  ++stream_stats_.pieces;
  stream_stats_.largest_piece = std::max(stream_stats_.largest_piece, piece.size());
  c.write(piece);
  if (more) return false;
  s.stream.reset();
  return true;
}

void ControlSocket::deliver(StreamConn::Id id, Outgoing reply) {
  StreamConn* c = server_->find(id);
  if (c == nullptr) return;  // the client left meanwhile
  auto& s = static_cast<Session&>(c->session());
  send(*c, s, std::move(reply));
  if (s.processing) {  // answered from inside its handler
    s.answered = true;
    return;
  }
  s.waiting = false;
  server_->resume(id);  // the reply's pieces and the requests that waited behind it
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

namespace {

std::string text_of(auto reply) {
  return reply.stream ? reply.stream->rest() : std::move(reply.text);
}

}  // namespace

std::optional<std::string> ControlSocket::handle_line(std::string_view line,
                                                      std::function<void(std::string)> deferred) {
  auto now = answer(line, [deferred](Outgoing later) { deferred(text_of(std::move(later))); });
  if (!now) return std::nullopt;
  return text_of(std::move(*now));
}

ControlSocket::Outgoing ControlSocket::success_reply(const json& id, Result<LongReply> result) {
  if (!result) {
    ++counters_.errors;
    return {error_reply(id, error_code_name(result.error().code), result.error().message), {}};
  }
  json reply = json::object();
  reply["ok"] = true;
  reply["version"] = kProtocolVersion;
  if (!id.is_null()) reply["id"] = id;
  if (result->fields.is_object()) reply.update(result->fields);
  if (result->path.empty()) return {dump_json(reply), {}};
  return {{}, std::make_unique<ReplyStream>(
                  LongReply(std::move(reply), std::move(result->path), std::move(result->items)))};
}

std::optional<ControlSocket::Outgoing> ControlSocket::answer(
    std::string_view line, std::function<void(Outgoing)> deferred) {
  ++counters_.requests;
  JsonInput input = parse_json_input(line);
  json& request = input.value;
  auto fail = [&](const json& id, std::string_view code, const std::string& message) {
    ++counters_.errors;
    return Outgoing{error_reply(id, code, message), {}};
  };
  if (input.syntax) return fail(nullptr, "bad_json", "the request is not valid JSON");
  if (input.duplicate) {
    // Which of two equal keys wins differs between parsers: refuse both.
    return fail(nullptr, "bad_request",
                "key \"" + *input.duplicate + "\" appears twice; a request says each thing once");
  }
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
      async->second(request, [this, id, deferred, name](Result<LongReply> result) {
        Outgoing out;
        try {
          out = success_reply(id, std::move(result));
        } catch (const std::exception& e) {
          ++counters_.errors;
          out = Outgoing{error_reply(id, "internal", name + ": " + e.what()), {}};
        }
        deferred(std::move(out));
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
    return fail(id, "unknown_command", "unknown command " + quote(name) + "; known: " + known);
  }
  try {
    return success_reply(id, handler->second(request));
  } catch (const std::exception& e) {
    // A handler bug must not take the appliance down; say so instead.
    return fail(id, "internal", name + ": " + e.what());
  }
}

}  // namespace podgate::ctl
