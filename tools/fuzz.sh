#!/usr/bin/env bash
# Builds fuzz targets with clang (libFuzzer + AddressSanitizer,
# LeakSanitizer, UBSan) and runs them for a bounded time.
#
#   tools/fuzz.sh                        # the DNS responder, 60 s
#   tools/fuzz.sh 600                    # 10 minutes
#   tools/fuzz.sh --target packet 60     # one target (names below)
#   tools/fuzz.sh 60 -jobs=2             # extra arguments go to libFuzzer
#   tools/fuzz.sh --campaign 600         # every target in turn, 600 s each,
#                                        # one summary line per target
#   CAMPAIGN_packet=1800 tools/fuzz.sh --campaign 600   # packet 30 min, others 10
#   CAMPAIGN_worker=0 tools/fuzz.sh --campaign 600      # 0 leaves a target out
#
# Targets (tests/fuzz/NAME_fuzz.cpp; tests/fuzz/README.md says what each
# promises and what the campaigns found):
#   dns_responder  the DNS responder              seeds tests/fuzz/corpus/
#   packet         packet parse, NAT, ICMP errors seeds tests/fuzz/packet-corpus/
#   config         the TOML config loader         seeds tests/fuzz/config-corpus/
#   k8s            Kubernetes JSON import         seeds tests/fuzz/k8s-corpus/
#   control        control-socket requests        seeds tests/fuzz/control-corpus/
#   worker         two workers on net_ring ports  seeds tests/fuzz/worker-corpus/
#                  (EAL, so root)
# Seeds are read only; what a run discovers goes to a scratch corpus under
# the build directory (FUZZ_BUILD_DIR, default build-fuzz), crashes to
# build-fuzz/artifacts/.  Exits non-zero when a fuzzer finds a crash, a leak
# or a broken invariant (in a campaign: when any target does).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
targets=(dns_responder packet config k8s control worker)

seconds=60
target=dns_responder
campaign=0
if [[ $# -gt 1 && $1 == --target ]]; then
  target=$2
  shift 2
elif [[ $# -gt 0 && $1 == --campaign ]]; then
  campaign=1
  shift
fi
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi

# The seed directory, longest input and extra libFuzzer flags of a target.
target_settings() {
  extra=()
  case $1 in
    # Its dictionary: record types and the names the fuzz zone serves
    # (AAAA and ip6.arpa nibbles included, issue 11).
    dns_responder) seeds=$root/tests/fuzz/corpus; max_len=2048
      extra=(-dict="$root/tests/fuzz/dns_responder.dict") ;;
    packet) seeds=$root/tests/fuzz/packet-corpus; max_len=2048 ;;
    config) seeds=$root/tests/fuzz/config-corpus; max_len=16384 ;;
    k8s) seeds=$root/tests/fuzz/k8s-corpus; max_len=32768 ;;
    # The change commands log every change on stderr, as in podgate.
    control) seeds=$root/tests/fuzz/control-corpus; max_len=32768; extra=(-close_fd_mask=2) ;;
    worker) seeds=$root/tests/fuzz/worker-corpus; max_len=4096 ;;
    *) echo "fuzz.sh: unknown target '$1' (${targets[*]})" >&2; exit 2 ;;
  esac
}

build_targets() {
  if [[ ! -f $build/build.ninja ]]; then
    # The fuzzing runtime needs clang; every library gets coverage
    # instrumentation (fuzzer-no-link) and the sanitizers, the target links
    # libFuzzer's main (tests/meson.build).
    CC=clang CXX=clang++ meson setup "$build" "$root" \
      -Dfuzz=true -Db_lundef=false -Db_sanitize=address,undefined \
      -Dcpp_args=-fsanitize=fuzzer-no-link -Dbuildtype=debugoptimized
  fi
  local names=()
  for t in "$@"; do names+=("tests/${t}_fuzz"); done
  ninja -C "$build" -j"${JOBS:-1}" "${names[@]}"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Runs target $1 for $2 seconds; further arguments go to libFuzzer.
run_target() {
  local name=$1 secs=$2
  shift 2
  target_settings "$name"
  local corpus=$build/fuzz-corpus-$name
  mkdir -p "$corpus" "$build/artifacts"
  "$build/tests/${name}_fuzz" \
    -max_total_time="$secs" -print_final_stats=1 -max_len="$max_len" -timeout=25 \
    -artifact_prefix="$build/artifacts/$name-" "${extra[@]}" "$@" \
    "$corpus" "$seeds"
}

if [[ $campaign == 0 ]]; then
  target_settings "$target"
  build_targets "$target"
  run_target "$target" "$seconds" "$@"
  exit
fi

# A campaign: every target in turn, its output in build-fuzz/campaign-NAME.log,
# and one line per target: executions, coverage (edges, features), corpus,
# findings (new files under artifacts/).
build_targets "${targets[@]}"
status=0
for t in "${targets[@]}"; do
  own=CAMPAIGN_$t
  secs=${!own:-$seconds}
  [[ $secs == 0 ]] && continue
  log=$build/campaign-$t.log
  before=$(find "$build/artifacts" -name "$t-*" 2>/dev/null | wc -l)
  rc=0
  run_target "$t" "$secs" "$@" > "$log" 2>&1 || rc=$?
  after=$(find "$build/artifacts" -name "$t-*" 2>/dev/null | wc -l)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 || true)
  findings=$((after - before))
  [[ $rc != 0 || $findings != 0 ]] && status=1
  printf '%-14s %6ss %12s execs  %-36s findings %d%s\n' "$t" "$secs" "${execs:-0}" \
    "${cov:-cov: ?}" "$findings" "$([[ $rc != 0 ]] && echo " (exit $rc, see $log)")"
done
exit $status
