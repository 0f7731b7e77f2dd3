#!/usr/bin/env bash
# Packs what tools/bench/device_run.sh needs into .bench/b, on the build
# machine: podgate, podgate-gen, worker_bench and dpdk-testpmd with every
# library they load and glibc's loader (../shared/tools/bundle-dpdk-run),
# plus coreutils' libstdbuf.so (testpmd's output, line-buffered, for the
# bundled glibc).  .bench/ stays out of git (info/exclude).
#
#   tools/bench/device_bundle.sh [BUILD_DIR]     (default build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${1:-build}
bundler=${BUNDLER:-$root/../shared/tools/bundle-dpdk-run}
ninja -C "$build" control/podgate tools/trafficgen/podgate-gen tests/worker_bench >/dev/null
rm -rf .bench/b
"$bundler" .bench/b "$build/control/podgate" "$build/tools/trafficgen/podgate-gen" \
    "$build/tests/worker_bench" "$(command -v dpdk-testpmd)"
for lib in /usr/libexec/coreutils/libstdbuf.so /usr/lib/*/coreutils/libstdbuf.so; do
  if [ -f "$lib" ]; then cp -L "$lib" .bench/b/lib/libstdbuf.so; break; fi
done
[ -f .bench/b/lib/libstdbuf.so ] || { echo "device_bundle: no libstdbuf.so (coreutils)" >&2; exit 1; }
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.bench/' "$exclude" 2>/dev/null || echo '/.bench/' >> "$exclude"
du -sh .bench
