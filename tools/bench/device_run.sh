#!/usr/bin/env bash
# Issue 9's figures on a bigger, quiet machine without DPDK (the `device`
# box): one worker against testpmd io at 100k and 1M flows, the worker
# scaling table (RSS-steered and handoff), a SYN flood, and worker_bench's
# cycles on a quiet core.  Run from the source tree, as root, after
# tools/bench/device_bundle.sh made .bench/b on the build machine:
#
#   tools/bench/device_run.sh OUT_DIR
#
# On a machine with DPDK installed (this VM), the bundled EAL also loads
# the system's PMD directory and panics on the drivers registered twice;
# try it here as the box would run it, with that directory hidden:
#   unshare -m sh -c 'mount --bind "$(mktemp -d)" /usr/lib/x86_64-linux-gnu/dpdk &&
#     CORES=0-1 WORKERS=1 CASE_SECONDS=1 tools/bench/device_run.sh /tmp/out'
#
# worker_bench runs its one-worker cases only (the box measures scaling
# with real cores; its two-worker cases share one core).
#
# Environment: CORES (default 2 to the last CPU), WORKERS (default
# 1,2,4,8), CASE_SECONDS (default 3), LIMIT (seconds, default 480).
# Writes OUT_DIR/machine.txt, log.txt, benchmarks.md (the "Throughput over
# memif" section), throughput.csv and throughput-extra.json.
set -u
out=${1:?usage: tools/bench/device_run.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
cores=${CORES:-2-$(($(nproc) - 1))}
workers=${WORKERS:-1,2,4,8}
{
  date -u
  grep -m1 "model name" /proc/cpuinfo
  echo "$(nproc) CPUs, Linux $(uname -r), python3 $(python3 --version 2>&1)"
  # 2 MiB hugepages, as an appliance runs (throughput.py falls back to 4 KiB
  # pages when fewer than 832 MiB of them are free).
  if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 1024 ]; then echo 1024 > /proc/sys/vm/nr_hugepages; fi
  grep -q hugetlbfs /proc/mounts || { mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages; }
  grep -i huge /proc/meminfo
} > "$out/machine.txt" 2>&1
if ! command -v python3 > /dev/null; then
  # No Python: worker_bench's cycles alone (it needs nothing else).
  taskset -c "${cores%%[-,]*}" .bench/b/run --preload worker_bench --benchmark_repetitions=3 \
      --benchmark_report_aggregates_only=true --benchmark_min_time=0.3 > "$out/worker_bench.txt" 2>&1
  echo "no python3: worker_bench only (exit $?)" > "$out/log.txt"
  exit 0
fi
: > "$out/benchmarks.md"
timeout "${LIMIT:-480}" python3 tools/bench/throughput.py --bundle .bench/b --cores "$cores" \
    --workers "$workers" --cases baseline,matrix,synflood,scaling,worker_bench \
    --flows 100000,1000000 --sizes 64 --seconds "${CASE_SECONDS:-3}" --no-plot \
    --worker-bench-filter '^BM_[A-Za-z]+6?/' \
    --out-dir "$out" --doc "$out/benchmarks.md" > "$out/log.txt" 2>&1
echo "throughput.py exit $?" >> "$out/log.txt"
