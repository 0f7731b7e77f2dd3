#!/usr/bin/env bash
# The second command of the README: sets up the machine, builds, and runs
# every test suite (unit, dataplane on DPDK virtual devices, end to end in
# network namespaces; the dataplane suite also under AddressSanitizer), then fuzzes the DNS responder for a bounded time
# (FUZZ_SECONDS, default 60; 0 skips it), the packet path for half that and the config loader,
# Kubernetes JSON, control requests and the worker on net_ring ports for a third each: short runs
# that replay every seed (regressions included) and look a little further; the long campaigns are
# `tools/fuzz.sh --campaign` (tests/fuzz/README.md).  Extra arguments go to `meson test` (e.g.
# --suite unit).  Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
status=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || status=$?
# The dataplane suite again under AddressSanitizer: the snapshot stress test
# turns a snapshot freed too early into a use-after-free report.
logs=(build/meson-logs/testlog.json)
if [ "${ASAN_DATAPLANE:-1}" = 1 ] && [ $# -eq 0 ]; then
  [ -f build-asan/build.ninja ] || meson setup build-asan -Db_sanitize=address > /dev/null
  ninja -C build-asan -j"$(nproc)" tests/dataplane_test
  meson test -C build-asan --no-rebuild --print-errorlogs --suite dataplane || status=$?
  logs+=(build-asan/meson-logs/testlog.json)
fi
fuzz_result=skipped
if [ "${FUZZ_SECONDS:-60}" -gt 0 ]; then
  fuzz_result=passed
  # The DNS responder for FUZZ_SECONDS, the packet path for half of it, the
  # other targets for a third (20 s by default).
  for target in dns_responder packet config k8s control worker; do
    seconds=${FUZZ_SECONDS:-60}
    case $target in
      dns_responder) ;;
      packet) seconds=$(( (seconds + 1) / 2 )) ;;
      *) seconds=$(( (seconds + 2) / 3 )) ;;
    esac
    if JOBS=$(nproc) tools/fuzz.sh --target "$target" "$seconds" > "build/fuzz-$target.log" 2>&1; then
      echo "fuzz: $target ran $seconds s clean ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "build/fuzz-$target.log" | grep -o '[0-9]*$') runs)"
    else
      fuzz_result=failed
      status=1
      echo "fuzz: $target FAILED, see build/fuzz-$target.log:"
      tail -40 "build/fuzz-$target.log"
    fi
  done
fi
# A plain closing line that any CI reads: "N passed, N failed, N skipped",
# preceded by one line per skipped suite with its reason (a suite whose
# every test was skipped exits 77, which meson reports as SKIP).
FUZZ_RESULT=$fuzz_result python3 - "${logs[@]}" <<'PY'
import json, os, sys
passed = failed = skipped = 0
skipped_names = []
fuzz = os.environ["FUZZ_RESULT"]
passed += fuzz == "passed"
failed += fuzz == "failed"
if fuzz == "skipped":
    skipped += 1
    skipped_names.append("fuzz")
    print("SKIPPED fuzz: FUZZ_SECONDS=0")
for log in sys.argv[1:]:
    with open(log) as f:
        for line in f:
            entry = json.loads(line)
            r = entry["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
                skipped_names.append(entry["name"])
                reasons = [l[len("SKIP: "):] for l in (entry.get("stdout") or "").splitlines()
                           + (entry.get("stderr") or "").splitlines() if l.startswith("SKIP: ")]
                print(f"SKIPPED {entry['name']}: " + ("; ".join(reasons[:1]) or "(no reason given)"))
            else:
                failed += 1
suffix = f" ({', '.join(skipped_names)})" if skipped_names else ""
print(f"{passed} passed, {failed} failed, {skipped} skipped{suffix}")
PY
exit $status
