#!/usr/bin/env bash
# The second command of the README: sets up the machine, builds, and runs
# every test suite (unit, dataplane on DPDK virtual devices, end to end in
# network namespaces), then fuzzes the DNS responder for a bounded time
# (FUZZ_SECONDS, default 60; 0 skips it).  Extra arguments go to
# `meson test` (e.g. --suite unit).  Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
status=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || status=$?
fuzz_result=skipped
if [ "${FUZZ_SECONDS:-60}" -gt 0 ]; then
  if JOBS=$(nproc) tools/fuzz.sh "${FUZZ_SECONDS:-60}" > build/fuzz.log 2>&1; then
    fuzz_result=passed
    echo "fuzz: dns_responder ran ${FUZZ_SECONDS:-60} s clean ($(grep -o 'stat::number_of_executed_units: *[0-9]*' build/fuzz.log | grep -o '[0-9]*$') runs)"
  else
    fuzz_result=failed
    status=1
    echo "fuzz: dns_responder FAILED, see build/fuzz.log:"
    tail -40 build/fuzz.log
  fi
fi
# A plain closing line that any CI reads: "N passed, N failed".
FUZZ_RESULT=$fuzz_result python3 - <<'PY'
import json, os
passed = failed = skipped = 0
fuzz = os.environ["FUZZ_RESULT"]
passed += fuzz == "passed"
failed += fuzz == "failed"
skipped += fuzz == "skipped"
with open("build/meson-logs/testlog.json") as f:
    for line in f:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
