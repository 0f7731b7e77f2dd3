// Sending a stream connection's pending output without blocking: the write
// queue of StreamServer (stream_server.hpp), control thread only.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <iterator>

namespace podgate::ctl {

// Sends what `out` holds from `pos` on, as far as the socket takes it now.
// Sent bytes are dropped from the buffer once all is sent, or once more
// than `compact_after` bytes and at least as much as is left were sent (so
// a slow reader's buffer does not keep its whole history, and a long reply,
// 36 MB of `stats` at 10k services, is moved O(1) times, not once per
// `compact_after` bytes sent).  False when the connection failed.
template <typename Buffer>
bool send_pending(int fd, Buffer& out, size_t& pos, size_t compact_after) {
  while (pos < out.size()) {
    ssize_t r = send(fd, out.data() + pos, out.size() - pos, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0) {
      pos += static_cast<size_t>(r);
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  if (pos == out.size()) {
    out.clear();
    pos = 0;
  } else if (pos >= compact_after && pos >= out.size() - pos) {
    out.erase(out.begin(), std::next(out.begin(), static_cast<std::ptrdiff_t>(pos)));
    pos = 0;
  }
  return true;
}

}  // namespace podgate::ctl
