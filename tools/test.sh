#!/usr/bin/env bash
# The second command of the README: sets up the machine, builds, and runs
# every test suite (unit, dataplane on DPDK virtual devices, end to end in
# network namespaces).  Extra arguments go to `meson test` (e.g. --suite
# unit).  Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
status=0
meson test -C build --print-errorlogs --num-processes 2 "$@" || status=$?
# A plain closing line that any CI reads: "N passed, N failed".
python3 - <<'PY'
import json
passed = failed = skipped = 0
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
