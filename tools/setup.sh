#!/usr/bin/env bash
# Prepares a Debian 12 machine for podgate, idempotently: installs the
# Debian packages it builds and tests with, reserves hugepages where the
# kernel gives them (podgate's default config runs without them, with
# --no-huge), and builds podgate into ./build (release).  Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build
  g++ meson ninja-build pkg-config
  dpdk dpdk-dev libdpdk-dev libjemalloc-dev libtomlplusplus-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # fuzzing (clang's libFuzzer and sanitizer runtimes)
  clang libclang-rt-14-dev
  # test tools and real clients (man-db: the install test renders the man pages)
  python3 iproute2 iputils-ping curl socat man-db
  bind9-dnsutils knot-dnsutils dnsperf knot
  # routing: the scale-out test's BGP router and appliances (issue 10)
  bird2
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run tools/setup.sh as root to install them" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine's unattended-upgrades may hold the dpkg lock for a while.
  apt-get -o DPkg::Lock::Timeout=600 update -q
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

# Hugepages: wanted for real deployments and by the e2e_capture suite
# (dpdk-dumpcap is a secondary process); podgate's default config runs
# without them.  A failed reservation is said plainly, not hidden.
want_pages=512
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt "$want_pages" ]; then
  if ! echo "$want_pages" > /proc/sys/vm/nr_hugepages 2>/dev/null; then
    echo "setup: WARNING: cannot write /proc/sys/vm/nr_hugepages (not root, or no hugepage support)"
  fi
fi
if ! mountpoint -q /dev/hugepages 2>/dev/null; then
  if ! { mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages; } 2>/dev/null; then
    echo "setup: WARNING: cannot mount hugetlbfs on /dev/hugepages"
  fi
fi
pages=$(cat /proc/sys/vm/nr_hugepages)
if [ "$pages" -ge "$want_pages" ] && mountpoint -q /dev/hugepages; then
  echo "setup: $pages hugepages of $(awk '/Hugepagesize/ {print $2 $3}' /proc/meminfo) mounted on /dev/hugepages"
else
  echo "setup: WARNING: hugepage reservation FAILED: asked for $want_pages pages, the kernel gave $pages" \
       "$(mountpoint -q /dev/hugepages && echo '(hugetlbfs mounted)' || echo '(hugetlbfs not mounted)')."
  echo "setup: podgate still runs with --no-huge (as conf/podgate.toml does), but suites that need" \
       "hugepages (e2e_capture) will be SKIPPED, and tools/test.sh will count them as skipped."
fi

# The release build (-O3, asserts off) is the one that runs and is tested:
# what ships is what passes.  A plain `meson setup` gives debugoptimized for
# development; both build warning-free with werror.
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release
elif ! grep -q -- "-O3" build/build.ninja; then
  meson configure build -Dbuildtype=release
fi
ninja -C build -j"$(nproc)"
