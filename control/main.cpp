// podgate: the appliance daemon.
//
//   podgate [-c FILE]          run with FILE (default: the installed config)
//   podgate --check [-c FILE]  validate FILE, report the DPDK memory it needs, and
//                              exit: 0 valid, 2 invalid or too big for eal.args' memory
#include <getopt.h>

#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_pdump.h>
#include <rte_errno.h>

#include "control/appliance.hpp"
#include "control/config/config.hpp"
#include "control/config/memory_plan.hpp"
#include "control/config/validate.hpp"
#include "control/eal_files.hpp"
#include "control/log.hpp"
#include "control/loop/event_loop.hpp"  // monotonic_ms
#include "dataplane/dp_memory.hpp"
#include "dataplane/punt.hpp"

#ifndef PODGATE_DEFAULT_CONFIG
#define PODGATE_DEFAULT_CONFIG "/etc/podgate/podgate.toml"
#endif
#ifndef PODGATE_VERSION
#define PODGATE_VERSION "unknown"
#endif

// jemalloc's compiled-in options (MALLOC_CONF in the environment still
// overrides them).  Its extents are backed by transparent huge pages: a start
// at 10k services touches ~120 MB of heap (the parsed TOML tree, the config,
// the snapshot's vectors), which is ~30k page faults in 4 KiB pages and ~600
// in 2 MiB ones, 0.3-0.4 s of a 2 s start on a virtualised MMU
// (docs/benchmarks.md "Start: page faults").  The workers never allocate from
// it, so its page size is only the control thread's.
extern "C" const char* malloc_conf;  // NOLINT: the name jemalloc reads
const char* malloc_conf = "thp:always,metadata_thp:always";

namespace {

constexpr int kExitInvalidConfig = 2;
constexpr int kExitFailure = 1;

void usage(FILE* out) {
  std::fprintf(out,
               "usage: podgate [-c FILE] [--check]\n"
               "  -c, --config FILE  config file (default %s; at most 64 MiB); a\n"
               "                     relative path is resolved once, at start-up\n"
               "  -t, --check        validate the config, report the memory it needs and\n"
               "                     exit: 0 valid, 2 invalid or not fitting DPDK memory;\n"
               "                     warnings go to stderr\n"
               "  -V, --version      print the version\n"
               "  -h, --help         this text\n"
               "signals: HUP reloads the config (refused whole, or applied whole), USR1 prints\n"
               "  counters, TERM/INT stop (hugepage files are released on the way out)\n"
               "environment (systemd, Type=notify): NOTIFY_SOCKET gets READY=1 once the ports\n"
               "  are up, RELOADING=1/READY=1 around a reload, STOPPING=1; with WATCHDOG_USEC,\n"
               "  WATCHDOG=1 every half interval while every worker reports in\n"
               "exit status: 0 stopped by a signal, 1 could not start or failed, 2 invalid config\n"
               "administration: podgatectl, over [control] socket (docs/control-protocol.md)\n"
               "see podgate(8), podgate.toml(5), podgatectl(8)\n",
               PODGATE_DEFAULT_CONFIG);
}

int podgate_main(int argc, char** argv);

// /proc/PID/comm, or "unknown".
std::string process_name(pid_t pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/comm").c_str(), "re");
  if (f == nullptr) return "unknown";
  char buf[64] = {};
  const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  std::string name = ok ? buf : "unknown";
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  return name;
}

}  // namespace

// No exception may end podgate through std::terminate (issue 15): the
// control loop survives a failing handler (EventLoop::run_once), and what
// escapes start-up or shut-down ends podgate here with a message and exit
// status 1 instead of an abort.
int main(int argc, char** argv) {
  try {
    return podgate_main(argc, argv);
  } catch (const std::bad_alloc&) {
    podgate::ctl::log_error("podgate: out of memory (std::bad_alloc); stopping");
  } catch (const std::exception& e) {
    podgate::ctl::log_error(std::string("podgate: stopping on an unexpected error: ") + e.what());
  } catch (...) {
    podgate::ctl::log_error("podgate: stopping on an unknown exception");
  }
  return kExitFailure;
}

namespace {

int podgate_main(int argc, char** argv) {
  using namespace podgate;
  std::string path = PODGATE_DEFAULT_CONFIG;
  bool check_only = false;
  static const option kOptions[] = {{"config", required_argument, nullptr, 'c'},
                                    {"check", no_argument, nullptr, 't'},
                                    {"version", no_argument, nullptr, 'V'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  for (int c; (c = getopt_long(argc, argv, "c:tVh", kOptions, nullptr)) != -1;) {
    switch (c) {
      case 'c':
        path = optarg;
        break;
      case 't':
        check_only = true;
        break;
      case 'V':
        std::printf("podgate %s\n", PODGATE_VERSION);
        return 0;
      case 'h':
        usage(stdout);
        return 0;
      default:
        usage(stderr);
        return kExitFailure;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return kExitFailure;
  }

  // Resolved once: reloads and `config save` name this file whatever the
  // working directory later (podgate -c conf/x.toml).
  if (!check_only) path = ctl::absolute_config_path(path);
  const uint64_t exec_ms = ctl::monotonic_ms();
  auto config = ctl::load_config(path);
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return kExitInvalidConfig;
  }
  for (const std::string& w : ctl::config_warnings(*config)) {
    if (check_only) {
      std::fprintf(stderr, "%s: warning: %s\n", path.c_str(), w.c_str());
    } else {
      ctl::log_warn(path + ": " + w);
    }
  }
  if (check_only) {
    // Memory planned, not discovered: what the config needs of DPDK
    // memory, refused when eal.args give less (issue 14).
    const ctl::MemoryPlan plan = ctl::plan_memory(*config);
    if (!plan.fits()) {
      std::fprintf(stderr, "%s\n", ctl::memory_refusal(plan, path).c_str());
      return kExitInvalidConfig;
    }
    std::printf("%s: ok\n%s: %s\n", path.c_str(), path.c_str(), plan.report().c_str());
    return 0;
  }

  const uint64_t config_ms = ctl::monotonic_ms();
  // Before EAL creates its threads, so they all inherit the mask.
  ctl::block_control_signals();
  std::vector<std::string> eal_args{"podgate"};
  eal_args.insert(eal_args.end(), config->eal.args.begin(), config->eal.args.end());
  std::vector<char*> eal_argv;
  for (std::string& a : eal_args) eal_argv.push_back(a.data());
  // A prefix another process holds ended in "EAL init failed: Success".
  const ctl::EalFiles eal_files = ctl::eal_files_of(config->eal.args);
  if (auto holder = ctl::eal_prefix_holder(eal_files)) {
    ctl::log_error("another DPDK process (" + process_name(*holder) + ", pid " +
                   std::to_string(*holder) + ") holds EAL file prefix '" + eal_files.prefix +
                   "' (" + eal_files.runtime_dir + "/config); stop it, or give this podgate its " +
                   "own --file-prefix in eal.args (" + path + ")");
    return kExitFailure;
  }
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    ctl::log_error(std::string("EAL init failed: ") +
                   (rte_errno != 0 ? rte_strerror(rte_errno) : "see EAL's messages above") +
                   " (eal.args in " + path + ")");
    return kExitFailure;
  }
  // A clean exit releases the hugepages: rte_eal_cleanup() unmaps them but
  // leaves their files (256 MiB after every SIGTERM otherwise).
  auto cleanup_eal = [&eal_files] {
    rte_eal_cleanup();
    const ctl::Released r = ctl::remove_hugepage_files(eal_files);
    if (r.files != 0) {
      ctl::log_info("released " + std::to_string(r.files) + " hugepage file(s), " +
                    std::to_string(r.bytes >> 20) + " MiB, of EAL file prefix '" +
                    eal_files.prefix + "'");
    }
  };
  // Where start time goes (issue 14: 10k services start in < 2 s).
  ctl::log_info("start: config read and checked in " + std::to_string(config_ms - exec_ms) +
                " ms (" + std::to_string(config->services.size()) + " services), EAL in " +
                std::to_string(ctl::monotonic_ms() - config_ms) + " ms");
  dp::use_dpdk_heap();
  if (!dp::register_mbuf_fields()) {
    ctl::log_error("cannot register the mbuf dynamic field");
    cleanup_eal();
    return kExitFailure;
  }
  // Packet capture by dpdk-dumpcap (a secondary process): needs the shared
  // config that --no-shconf and --in-memory turn off; capture is optional.
  if (rte_pdump_init() == 0) {
    ctl::log_info("pdump: ready for dpdk-dumpcap (--file-prefix as in eal.args)");
  } else {
    ctl::log_info(std::string("pdump: not available (") + rte_strerror(rte_errno) +
                  "); dpdk-dumpcap needs EAL with shared config: hugepages, no --no-shconf or "
                  "--in-memory");
  }

  int rc = kExitFailure;
  {
    auto appliance = ctl::Appliance::start(std::move(*config), PODGATE_VERSION);
    if (!appliance) {
      ctl::log_error(appliance.error().message);
      // What only a start can find wrong with the config (more workers than
      // EAL lcores, a control.group that does not exist) is still the
      // config's fault: exit 2, as --check's refusals, which systemd does
      // not restart.
      if (appliance.error().code == ctl::ErrorCode::kInvalidConfig) rc = kExitInvalidConfig;
    } else {
      rc = (*appliance)->run();
    }
  }
  rte_pdump_uninit();
  cleanup_eal();
  return rc;
}

}  // namespace
