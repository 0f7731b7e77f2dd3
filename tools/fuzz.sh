#!/usr/bin/env bash
# Builds a fuzz target with clang (libFuzzer + AddressSanitizer,
# LeakSanitizer, UBSan) and runs it for a bounded time.
#
#   tools/fuzz.sh                        # the DNS responder, 60 s
#   tools/fuzz.sh 600                    # 10 minutes
#   tools/fuzz.sh --target packet 60     # the packet parser, NAT and ICMP error translation
#   tools/fuzz.sh 60 -jobs=2             # extra arguments go to libFuzzer
#
# Targets (tests/fuzz/): dns_responder (seeds tests/fuzz/corpus/) and packet
# (seeds tests/fuzz/packet-corpus/).  Seeds are read only; what the run
# discovers goes to a scratch corpus under the build directory, crashes to
# build-fuzz/artifacts/.
# Exits non-zero when the fuzzer finds a crash, a leak or broken invariant.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=60
target=dns_responder
if [[ $# -gt 1 && $1 == --target ]]; then
  target=$2
  shift 2
fi
case $target in
  dns_responder) seeds=$root/tests/fuzz/corpus; max_len=2048 ;;
  packet) seeds=$root/tests/fuzz/packet-corpus; max_len=2048 ;;
  *) echo "fuzz.sh: unknown target '$target' (dns_responder, packet)" >&2; exit 2 ;;
esac
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi

if [[ ! -f $build/build.ninja ]]; then
  # The fuzzing runtime needs clang; every library gets coverage
  # instrumentation (fuzzer-no-link) and the sanitizers, the target links
  # libFuzzer's main (tests/meson.build).
  CC=clang CXX=clang++ meson setup "$build" "$root" \
    -Dfuzz=true -Db_lundef=false -Db_sanitize=address,undefined \
    -Dcpp_args=-fsanitize=fuzzer-no-link -Dbuildtype=debugoptimized
fi
ninja -C "$build" -j"${JOBS:-1}" "tests/${target}_fuzz"

corpus=$build/fuzz-corpus-$target
mkdir -p "$corpus" "$build/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$build/tests/${target}_fuzz" \
  -max_total_time="$seconds" -print_final_stats=1 -max_len="$max_len" \
  -artifact_prefix="$build/artifacts/" "$@" \
  "$corpus" "$seeds"
