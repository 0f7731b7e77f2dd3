#!/usr/bin/env bash
# The first command of the README: sets up the machine, builds, and runs
# podgate on its default config (conf/podgate.toml: two net_tap virtual
# devices, no NIC needed), with a client namespace and Pods around it.
# Extra arguments go to tools/demo.py (e.g. -c another.toml).  Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
exec python3 tools/demo.py "$@"
