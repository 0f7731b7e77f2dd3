// One endpoint change (`podgatectl endpoint set --weight`) with 10, 1k and
// 10k services of 2 ports and 10 endpoints each, through the code path
// Appliance::change uses, without EAL (issue 14, "Scale"):
//
//   Before/*  the old check: the whole Config written as TOML and parsed back
//             (config_to_toml + parse_config), then the snapshot built.
//   After/*   Registry::stage_edit (copy, edit, check what changed against
//             the Registry's index), the snapshot built incrementally from
//             what changed, Registry::commit: the change as published.
//   AfterWhole/*  the same change with everything validated and every service
//             looked at again (validate() whole, build_snapshot without
//             `changes`): the path before the incremental build, measured
//             side by side.
//   *Check    the check alone, without the snapshot build, to compare the
//             ways of validating side by side.
//   DeleteOne/*   `podgatectl delete` of one service in the middle (and it
//             added back, so every iteration deletes one): with stable ids
//             no other service is rebuilt (counter "built" = Maglev tables
//             built per iteration).
//   Start/*   start: the config file's text parsed and validated
//             (parse_config) and warned about (config_warnings), the
//             Registry made, the first snapshot built with stats slots.
//   ZoneBuild/*   the DNS zone built whole; ZoneUpdateOneService/* the
//             zone after a change DNS sees to one service (dns::ZoneUpdater).
//   BigServiceRegistry/N  the Registry made for one service of N endpoints
//             (up to 65,534, the most a service may have): its ServiceIndex.
//   BigServiceChange/N    one endpoint's weight changed in that service, as
//             After/* does it: checked, its Maglev table built, committed.
//
// The Maglev size is chosen per service port from its endpoint count
// (1021 for 10 endpoints: M >= 100 N), as podgate does by default.
//
//   taskset -c 1 build/tests/registry_bench
#include <benchmark/benchmark.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "tests/unit/config_fixture.hpp"
#include "control/config/config.hpp"
#include "control/config/config_writer.hpp"
#include "control/publish/registry.hpp"
#include "control/publish/snapshot_builder.hpp"
#include "control/publish/stats_slots.hpp"
#include "control/config/service_index.hpp"
#include "control/config/validate.hpp"
#include "control/dns/dns.hpp"
#include "control/dns/zone_updater.hpp"

namespace podgate::ctl {
namespace {

constexpr uint32_t kEndpointsPerService = 10;

Config make_config(uint32_t services) {
  Config c;
  c.source = "bench.toml";
  c.ports.push_back(named_port("uplink", "net_null0", "192.0.2.1/24"));
  c.ports.push_back(named_port("pods", "net_null1", "172.16.0.1/12"));
  c.routes.push_back(RouteConfig{*dp::parse_prefix4("0.0.0.0/0"), *dp::parse_ip4("192.0.2.254")});
  for (uint32_t i = 0; i < services; ++i) {
    ServiceConfig s;
    s.ns = "default";
    s.name = "svc-" + std::to_string(i);
    s.cluster_ip = dp::IpAddr::v4(dp::Ip4::from_host(0x0a600000 + i + 1));  // 10.96.0.0/12
    s.ports.push_back(ServicePortConfig{"http", 80, 8080, dp::Proto::kTcp});
    s.ports.push_back(ServicePortConfig{"https", 443, 8443, dp::Proto::kTcp});
    for (uint32_t j = 0; j < kEndpointsPerService; ++j) {
      EndpointConfig e;
      e.ip = dp::IpAddr::v4(dp::Ip4::from_host(0xac110000 + i * kEndpointsPerService + j + 2));
      e.pod = s.name + "-" + std::to_string(j);
      s.endpoints.push_back(std::move(e));
    }
    c.services.push_back(std::move(s));
  }
  return c;
}

// One service of `endpoints` endpoints (172.17.0.2 on) and one port, as
// docs/benchmarks.md's "One service of 65,534 endpoints" measured it.
Config make_big_config(uint32_t endpoints) {
  Config c = make_config(0);
  ServiceConfig s;
  s.ns = "default";
  s.name = "big";
  s.cluster_ip = dp::IpAddr::v4(dp::Ip4::from_host(0x0a600909));  // 10.96.9.9
  s.ports.push_back(ServicePortConfig{"http", 80, 8080, dp::Proto::kTcp});
  s.endpoints.reserve(endpoints);
  for (uint32_t j = 0; j < endpoints; ++j) {
    EndpointConfig e;
    e.ip = dp::IpAddr::v4(dp::Ip4::from_host(0xac110000 + j + 2));
    s.endpoints.push_back(std::move(e));
  }
  c.services.push_back(std::move(s));
  return c;
}

// The change: the weight of the middle service's first endpoint, 1 <-> 2,
// so every iteration changes something.
bool flip_weight(Config& c) {
  EndpointConfig& e = c.services[c.services.size() / 2].endpoints[0];
  e.weight = e.weight == 1 ? 2 : 1;
  return true;
}

const std::vector<dp::MacAddr> kMacs = {dp::MacAddr{{2, 0, 0, 0, 0, 1}},
                                        dp::MacAddr{{2, 0, 0, 0, 0, 2}}};

// ---- before: the TOML round trip Appliance::change used ----

void BM_BeforeCheck(benchmark::State& state) {
  const Config running = make_config(static_cast<uint32_t>(state.range(0)));
  for (auto _ : state) {
    Config next = running;
    flip_weight(next);
    auto checked = parse_config(config_to_toml(next), "(running config with this change)");
    if (!checked) state.SkipWithError(checked.error().message.c_str());
    benchmark::DoNotOptimize(checked);
  }
}

void BM_Before(benchmark::State& state) {
  Config running = make_config(static_cast<uint32_t>(state.range(0)));
  SnapshotInputs first{&running, kMacs, nullptr, 1, nullptr};
  std::unique_ptr<dp::Snapshot> current = build_snapshot(first);
  for (auto _ : state) {
    Config next = running;
    flip_weight(next);
    auto checked = parse_config(config_to_toml(next), "(running config with this change)");
    if (!checked) {
      state.SkipWithError(checked.error().message.c_str());
      break;
    }
    SnapshotInputs in{&*checked, kMacs, current.get(), current->generation + 1, nullptr};
    current = build_snapshot(in);
    running = std::move(*checked);
  }
}

// ---- after: the Registry, validate() on the structure ----

void BM_AfterCheck(benchmark::State& state) {
  const Config running = make_config(static_cast<uint32_t>(state.range(0)));
  const ServiceIndex index(running.services);
  for (auto _ : state) {
    Config next = running;
    flip_weight(next);
    auto valid = validate_change(next, diff_services(running.services, next.services), index);
    if (!valid) state.SkipWithError(valid.error().message.c_str());
    benchmark::DoNotOptimize(valid);
  }
}

void BM_AfterWholeCheck(benchmark::State& state) {
  const Config running = make_config(static_cast<uint32_t>(state.range(0)));
  for (auto _ : state) {
    Config next = running;
    flip_weight(next);
    auto valid = validate(next);
    if (!valid) state.SkipWithError(valid.error().message.c_str());
    benchmark::DoNotOptimize(valid);
  }
}

// Registry + snapshot, as Appliance::apply does them; `incremental` false:
// every service validated and looked at again.
struct Running {
  explicit Running(uint32_t services) : Running(make_config(services)) {}
  explicit Running(Config c) : reg(std::move(c)) {
    SnapshotInputs first{&reg.view(), kMacs, nullptr, 1, nullptr};
    current = build_snapshot(first);
    reg.commit(reg.stage_current(), current.get());
  }
  // Returns the Maglev tables built, or -1 on an error.  Out of line so
  // that callgrind can count it alone (--toggle-collect='*Running::change*').
  [[gnu::noinline]] int64_t change(const std::function<Result<bool>(Config&)>& edit,
                                   bool incremental, benchmark::State& state) {
    Result<Registry::Proposal> next = incremental ? reg.stage_edit(edit) : whole(edit);
    if (!next) {
      state.SkipWithError(next.error().message.c_str());
      return -1;
    }
    BuildStats stats;
    SnapshotInputs in{next->view.get(), kMacs, current.get(), reg.version() + 1, nullptr,
                      incremental && next->services_only ? &next->view_changes : nullptr};
    current = build_snapshot(in, &stats);
    reg.commit(std::move(*next), current.get());
    return stats.services_built;
  }
  // The check before issue 14's incremental one: validate() whole.
  Result<Registry::Proposal> whole(const std::function<Result<bool>(Config&)>& edit) {
    Config copy = reg.desired();
    auto changed = edit(copy);
    if (!changed) return std::move(changed).error();
    return reg.stage_file(std::move(copy));
  }
  Registry reg;
  std::unique_ptr<dp::Snapshot> current;
};

void BM_After(benchmark::State& state) {
  Running r(static_cast<uint32_t>(state.range(0)));
  int64_t built = 0;
  for (auto _ : state) {
    built += r.change([](Config& c) -> Result<bool> { return flip_weight(c); }, true, state);
  }
  state.counters["built"] = benchmark::Counter(static_cast<double>(built), benchmark::Counter::kAvgIterations);
}

void BM_AfterWhole(benchmark::State& state) {
  Running r(static_cast<uint32_t>(state.range(0)));
  int64_t built = 0;
  for (auto _ : state) {
    built += r.change([](Config& c) -> Result<bool> { return flip_weight(c); }, false, state);
  }
  state.counters["built"] = benchmark::Counter(static_cast<double>(built), benchmark::Counter::kAvgIterations);
}

void BM_DeleteOne(benchmark::State& state) {
  Running r(static_cast<uint32_t>(state.range(0)));
  int64_t built = 0;
  for (auto _ : state) {
    // Delete the middle service; then (untimed) add it back at the end.
    ServiceConfig gone;
    built += r.change(
        [&gone](Config& c) -> Result<bool> {
          const size_t mid = c.services.size() / 2;
          gone = std::as_const(c.services)[mid];
          c.services.erase(c.services.cbegin() + static_cast<std::ptrdiff_t>(mid));
          return true;
        },
        true, state);
    state.PauseTiming();
    r.change([&gone](Config& c) -> Result<bool> { c.services.push_back(gone); return true; }, true,
             state);
    state.ResumeTiming();
  }
  state.counters["built"] = benchmark::Counter(static_cast<double>(built), benchmark::Counter::kAvgIterations);
}

// What podgate's control thread does at start besides EAL and the ports
// (control/main.cpp, Appliance::apply): the config read and checked, its
// warnings, the first snapshot built with every endpoint given a stats
// slot, the slots committed and retained.
void BM_Start(benchmark::State& state) {
  const std::string text = config_to_toml(make_config(static_cast<uint32_t>(state.range(0))));
  for (auto _ : state) {
    auto cfg = parse_config(text, "bench.toml");
    if (!cfg) {
      state.SkipWithError(cfg.error().message.c_str());
      break;
    }
    benchmark::DoNotOptimize(config_warnings(*cfg).size());
    Registry reg(std::move(*cfg));
    StatsSlots slots([](uint16_t) { return TrafficTotals{}; }, 360'000);
    SnapshotInputs first{&reg.view(), kMacs, nullptr, 1, &slots};
    std::unique_ptr<dp::Snapshot> snap = build_snapshot(first);
    slots.commit_taken();
    slots.retain(*snap, 0);
    reg.commit(reg.stage_current(), snap.get());
    benchmark::DoNotOptimize(snap.get());
  }
}

// What `config toml` and `config save` do in one control-loop turn: the
// running config written as TOML (and, for `toml`, put in a JSON reply).
void BM_ConfigToToml(benchmark::State& state) {
  const Config c = make_config(static_cast<uint32_t>(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = config_to_toml(c);
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}

// ---- one service of many endpoints ----

// Made out of line so that callgrind can count it alone
// (--toggle-collect='*make_registry*').
[[gnu::noinline]] std::unique_ptr<Registry> make_registry(const Config& c) {
  return std::make_unique<Registry>(c);  // the copy shares the service
}

void BM_BigServiceRegistry(benchmark::State& state) {
  const Config c = make_big_config(static_cast<uint32_t>(state.range(0)));
  for (auto _ : state) {
    std::unique_ptr<Registry> reg = make_registry(c);
    benchmark::DoNotOptimize(reg.get());
    state.PauseTiming();
    reg.reset();
    state.ResumeTiming();
  }
}

void BM_BigServiceChange(benchmark::State& state) {
  Running r(make_big_config(static_cast<uint32_t>(state.range(0))));
  int64_t built = 0;
  for (auto _ : state) {
    built += r.change(
        [](Config& c) -> Result<bool> {
          EndpointConfig& e = c.services[0].endpoints[100];
          e.weight = e.weight == 1 ? 2 : 1;
          return true;
        },
        true, state);
  }
  state.counters["built"] = benchmark::Counter(static_cast<double>(built), benchmark::Counter::kAvgIterations);
}

void big_sizes(benchmark::internal::Benchmark* b) {
  b->Arg(1024)->Arg(8192)->Arg(65534)->Unit(benchmark::kMillisecond)->Iterations(3);
}

// ---- the parts of After ----

void BM_AfterSnapshotBuildOnly(benchmark::State& state) {
  Config running = make_config(static_cast<uint32_t>(state.range(0)));
  SnapshotInputs first{&running, kMacs, nullptr, 1, nullptr};
  std::unique_ptr<dp::Snapshot> current = build_snapshot(first);
  for (auto _ : state) {
    flip_weight(running);
    SnapshotInputs in{&running, kMacs, current.get(), current->generation + 1, nullptr};
    current = build_snapshot(in);
  }
}

void BM_AfterConfigCopyOnly(benchmark::State& state) {
  const Config running = make_config(static_cast<uint32_t>(state.range(0)));
  for (auto _ : state) {
    Config next = running;
    benchmark::DoNotOptimize(&next.services);
  }
}

// The DNS zone built whole: at start and after a reload, and before issue
// 14's incremental zone, after every change DNS sees.
void BM_ZoneBuild(benchmark::State& state) {
  const Config running = make_config(static_cast<uint32_t>(state.range(0)));
  for (auto _ : state) {
    auto zone = dns::build_zone(running, 1);
    benchmark::DoNotOptimize(zone.get());
  }
}

// The zone listener's work for a change DNS sees (dns::ZoneUpdater): the
// middle service is headless and its first endpoint turns not ready and
// back, so every iteration takes a Pod's names out (its A record, its
// per-Pod name, its SRV records) or puts them back.  The Registry's diff
// is given as it comes with the publication.
void BM_ZoneUpdateOneService(benchmark::State& state) {
  Config c = make_config(static_cast<uint32_t>(state.range(0)));
  const size_t mid = c.services.size() / 2;
  c.services[mid].cluster_ip.reset();  // headless
  dns::ZoneUpdater zones;
  zones.rebuild(c, 1);
  uint32_t version = 1;
  for (auto _ : state) {
    ServiceDiff diff;
    diff.removed.push_back(c.services.shared(mid));
    EndpointConfig& e = c.services[mid].endpoints[0];  // copied on write: a new version of it
    e.ready = !e.ready;
    diff.added.push_back(mid);
    auto zone = zones.follow(c, &diff, ++version);
    benchmark::DoNotOptimize(zone.get());
  }
}

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(10)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_BeforeCheck)->Apply(sizes);
BENCHMARK(BM_AfterCheck)->Apply(sizes);
BENCHMARK(BM_AfterWholeCheck)->Apply(sizes);
BENCHMARK(BM_Before)->Apply(sizes);
BENCHMARK(BM_After)->Apply(sizes);
BENCHMARK(BM_AfterWhole)->Apply(sizes);
BENCHMARK(BM_DeleteOne)->Apply(sizes);
BENCHMARK(BM_ZoneBuild)->Apply(sizes);
BENCHMARK(BM_ZoneUpdateOneService)->Apply(sizes);
BENCHMARK(BM_Start)->Apply(sizes)->Iterations(3);
BENCHMARK(BM_ConfigToToml)->Apply(sizes)->Iterations(3);
BENCHMARK(BM_BigServiceRegistry)->Apply(big_sizes);
BENCHMARK(BM_BigServiceChange)->Apply(big_sizes);
BENCHMARK(BM_AfterSnapshotBuildOnly)->Apply(sizes);
BENCHMARK(BM_AfterConfigCopyOnly)->Apply(sizes);

}  // namespace
}  // namespace podgate::ctl

BENCHMARK_MAIN();
