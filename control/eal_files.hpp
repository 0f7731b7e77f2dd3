// What EAL leaves in the file system for a set of eal.args, for main():
// who holds a file prefix before EAL is started, and the hugepage files a
// clean exit releases (issue 15).  DPDK 22.11's layout: a primary process
// write-locks RUNTIME_DIR/PREFIX/config (fcntl) for its lifetime, unless
// --no-shconf or --in-memory; it backs hugepages with files named
// PREFIXmap_N in every hugetlbfs mount (or --huge-dir), and
// rte_eal_cleanup() leaves them behind (a restart after kill -9 reuses them).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace podgate::ctl {

struct EalFiles {
  std::string prefix = "rte";          // --file-prefix
  bool shared_config = true;           // no --no-shconf, no --in-memory
  bool hugepage_files = true;          // no --no-huge, no --in-memory
  std::vector<std::string> huge_dirs;  // --huge-dir, else every hugetlbfs mount
  std::string runtime_dir;             // where EAL keeps PREFIX's config file
};

EalFiles eal_files_of(const std::vector<std::string>& eal_args);

// The process holding `files`' prefix (the write lock on its config file),
// or nullopt when none does or there is no shared config.
std::optional<pid_t> eal_prefix_holder(const EalFiles& files);

struct Released {
  size_t files = 0;
  uint64_t bytes = 0;
};
// Unlinks the prefix's hugepage files; call after rte_eal_cleanup().
Released remove_hugepage_files(const EalFiles& files);

}  // namespace podgate::ctl
