// One endpoint change (`podgatectl endpoint set --weight`) with 10, 1k and
// 10k services of 2 ports and 10 endpoints each, through the code path
// Appliance::change uses, without EAL (issue 14, "Scale"):
//
//   Before/*  the old check: the whole Config written as TOML and parsed back
//             (config_to_toml + parse_config), then the snapshot built.
//   After/*   Registry::stage_edit (copy, edit, validate() on the structure),
//             the snapshot built, Registry::commit.
//   *Check    the check alone, without the snapshot build, to compare the
//             two ways of validating side by side.
//
// The Maglev size is 1021 per service port (M >= 100 N for N = 10), not the
// default 65537: 20k tables of 65537 slots would need 2.6 GB.
//
//   taskset -c 1 build/tests/registry_bench
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "control/config/config.hpp"
#include "control/config/config_writer.hpp"
#include "control/publish/registry.hpp"
#include "control/publish/snapshot_builder.hpp"
#include "control/config/validate.hpp"

namespace podgate::ctl {
namespace {

constexpr uint32_t kEndpointsPerService = 10;

Config make_config(uint32_t services) {
  Config c;
  c.source = "bench.toml";
  c.dataplane.maglev_table_size = 1021;
  c.ports.push_back(PortConfig{"uplink", "net_null0", *dp::parse_prefix4("192.0.2.1/24"), {}, {}, {}});
  c.ports.push_back(PortConfig{"pods", "net_null1", *dp::parse_prefix4("172.16.0.1/12"), {}, {}, {}});
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
  for (auto _ : state) {
    Config next = running;
    flip_weight(next);
    auto valid = validate(next);
    if (!valid) state.SkipWithError(valid.error().message.c_str());
    benchmark::DoNotOptimize(valid);
  }
}

void BM_After(benchmark::State& state) {
  Registry reg(make_config(static_cast<uint32_t>(state.range(0))));
  SnapshotInputs first{&reg.view(), kMacs, nullptr, 1, nullptr};
  std::unique_ptr<dp::Snapshot> current = build_snapshot(first);
  reg.commit(reg.stage_current(), current.get());
  for (auto _ : state) {
    auto next = reg.stage_edit([](Config& c) -> Result<bool> { return flip_weight(c); });
    if (!next) {
      state.SkipWithError(next.error().message.c_str());
      break;
    }
    SnapshotInputs in{next->view.get(), kMacs, current.get(), reg.version() + 1, nullptr};
    current = build_snapshot(in);
    reg.commit(std::move(*next), current.get());
  }
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
    benchmark::DoNotOptimize(next.services.data());
  }
}

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(10)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_BeforeCheck)->Apply(sizes);
BENCHMARK(BM_AfterCheck)->Apply(sizes);
BENCHMARK(BM_Before)->Apply(sizes);
BENCHMARK(BM_After)->Apply(sizes);
BENCHMARK(BM_AfterSnapshotBuildOnly)->Apply(sizes);
BENCHMARK(BM_AfterConfigCopyOnly)->Apply(sizes);

}  // namespace
}  // namespace podgate::ctl

BENCHMARK_MAIN();
