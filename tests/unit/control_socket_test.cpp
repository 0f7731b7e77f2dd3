// The control socket's file and the directories it makes: who may connect.
// (Its protocol is tested through real clients in tests/e2e/test_control.py,
// and its long replies in reply_stream_test.cpp.)
#include "control/admin/control_socket.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "control/loop/event_loop.hpp"

namespace podgate::ctl {
namespace {

mode_t mode_of(const std::string& path) {
  struct stat st{};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Under a umask of 077 (a root shell's, or a unit's UMask=0077) the
// directories podgate makes for its socket are still 0755, as documented,
// and the socket 0660: else the socket's group could not reach it.
TEST(ControlSocketFile, ItsDirectoriesAre0755AndItIs0660WhateverTheUmask) {
  char tmpl[] = "/tmp/control_socket_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop) << loop.error().message;
  const mode_t old = ::umask(077);
  auto socket = ControlSocket::open(**loop, dir + "/run/podgate/c.sock");
  ::umask(old);
  ASSERT_TRUE(socket) << socket.error().message;
  EXPECT_EQ(mode_of(dir + "/run"), 0755u);
  EXPECT_EQ(mode_of(dir + "/run/podgate"), 0755u);
  EXPECT_EQ(mode_of(dir + "/run/podgate/c.sock"), 0660u);
  socket->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace podgate::ctl
