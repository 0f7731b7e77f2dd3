#include "control/eal_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace podgate::ctl {

namespace {

// The value of `opt` in "OPT VALUE" or "OPT=VALUE" form; the last one wins.
std::optional<std::string> option_value(const std::vector<std::string>& args,
                                        std::string_view opt) {
  std::optional<std::string> value;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == opt && i + 1 < args.size()) {
      value = args[i + 1];
    } else if (a.size() > opt.size() && a.compare(0, opt.size(), opt) == 0 && a[opt.size()] == '=') {
      value = a.substr(opt.size() + 1);
    }
  }
  return value;
}

bool has_flag(const std::vector<std::string>& args, std::string_view opt) {
  for (const std::string& a : args) {
    if (a == opt) return true;
  }
  return false;
}

std::vector<std::string> hugetlbfs_mounts() {
  std::vector<std::string> out;
  std::FILE* f = std::fopen("/proc/mounts", "re");
  if (f == nullptr) return out;
  char dev[256], dir[4096], type[64];
  while (std::fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
    if (std::strcmp(type, "hugetlbfs") == 0) out.emplace_back(dir);
  }
  std::fclose(f);
  return out;
}

// EAL's eal_get_runtime_dir(): /var/run/dpdk for root, else
// $XDG_RUNTIME_DIR/dpdk (or /tmp/dpdk).
std::string runtime_base() {
  if (getuid() == 0) return "/var/run/dpdk";
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  return std::string(xdg != nullptr ? xdg : "/tmp") + "/dpdk";
}

}  // namespace

EalFiles eal_files_of(const std::vector<std::string>& args) {
  EalFiles f;
  if (auto p = option_value(args, "--file-prefix")) f.prefix = *p;
  const bool in_memory = has_flag(args, "--in-memory");
  f.shared_config = !in_memory && !has_flag(args, "--no-shconf");
  f.hugepage_files = !in_memory && !has_flag(args, "--no-huge");
  if (auto d = option_value(args, "--huge-dir")) {
    f.huge_dirs.push_back(*d);
  } else if (f.hugepage_files) {
    f.huge_dirs = hugetlbfs_mounts();
  }
  f.runtime_dir = runtime_base() + "/" + f.prefix;
  return f;
}

std::optional<pid_t> eal_prefix_holder(const EalFiles& files) {
  if (!files.shared_config) return std::nullopt;
  const std::string path = files.runtime_dir + "/config";
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct flock lk {};
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  const int rc = fcntl(fd, F_GETLK, &lk);
  close(fd);
  if (rc != 0 || lk.l_type == F_UNLCK) return std::nullopt;
  return lk.l_pid;
}

Released remove_hugepage_files(const EalFiles& files) {
  Released r;
  if (!files.hugepage_files) return r;
  const std::string stem = files.prefix + "map_";
  for (const std::string& dir : files.huge_dirs) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) continue;
    while (const dirent* e = readdir(d)) {
      const std::string_view name = e->d_name;
      if (name.size() <= stem.size() || name.compare(0, stem.size(), stem) != 0) continue;
      const std::string_view rest = name.substr(stem.size());
      if (rest.find_first_not_of("0123456789-") != std::string_view::npos) continue;
      const std::string path = dir + "/" + std::string(name);
      struct stat st {};
      if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (unlink(path.c_str()) == 0) {
        ++r.files;
        r.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
      }
    }
    closedir(d);
  }
  return r;
}

}  // namespace podgate::ctl
