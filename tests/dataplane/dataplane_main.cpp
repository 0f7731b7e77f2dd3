// main() of the tier-2 dataplane tests: EAL is initialised once for the
// whole binary (it cannot be initialised twice in a process), then the
// dataplane's memory and the punt mbuf field are set up exactly as the
// daemon's main() does, then every test runs.
//
// EAL arguments: no hugepages and no shared config (DPDK 22.11 refuses
// --in-memory together with --no-huge), no PCI scan, and three lcores:
// lcore 0 runs the tests, lcores 1 and 2 run workers in the stress test.
// Where the process may use two CPUs or more, lcores 1 and 2 get a CPU each
// (and lcore 0, with the stress test's feeder thread, floats over both), so
// the two workers really run in parallel; on one CPU all three share it.
// The process must be root (EAL maps memory it must lock).
#include <gtest/gtest.h>

#include <sched.h>

#include <cstdio>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>

#include "dataplane/dp_memory.hpp"
#include "dataplane/punt.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);

  // The first two CPUs this process may run on (taskset, cgroups).
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
      if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
    }
  }
  if (cpus.empty()) cpus.push_back(0);
  const std::string a = std::to_string(cpus[0]);
  const std::string lcores = cpus.size() >= 2
      ? "0@(" + a + "," + std::to_string(cpus[1]) + "),1@" + a + ",2@" + std::to_string(cpus[1])
      : "0@" + a + ",1@" + a + ",2@" + a;
  std::fprintf(stderr, "dataplane_test: --lcores %s (%s)\n", lcores.c_str(),
               cpus.size() >= 2 ? "the stress test's two workers on two CPUs"
                                : "one CPU: the workers share it");
  const char* eal_args[] = {
      argv[0],  "--no-huge", "--no-shconf", "-m", "256", "--no-pci", "--lcores", lcores.c_str(),
      "--log-level=*:warning",
  };
  int eal_argc = static_cast<int>(sizeof eal_args / sizeof eal_args[0]);
  if (rte_eal_init(eal_argc, const_cast<char**>(eal_args)) < 0) {
    std::fprintf(stderr, "dataplane_test: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer, dataplane objects (snapshots, service data, flow
  // tables) stay on the C heap, which ASan tracks, instead of rte_malloc,
  // which it cannot see into: a snapshot freed while a worker still reads it
  // is then reported as a heap-use-after-free.
  std::fprintf(stderr, "dataplane_test: ASan build, dataplane objects on the C heap\n");
#else
  podgate::dp::use_dpdk_heap();
#endif
  if (!podgate::dp::register_mbuf_fields()) {
    std::fprintf(stderr, "dataplane_test: cannot register the punt mbuf field: %s\n",
                 rte_strerror(rte_errno));
    rte_eal_cleanup();
    return 1;
  }
  int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
