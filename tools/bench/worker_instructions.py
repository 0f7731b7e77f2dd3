#!/usr/bin/env python3
"""Instructions per packet of the worker's fast path, counted by callgrind.

Cycles move with the machine's load; instruction counts do not, so this is
the figure that shows progress honestly on a shared machine (issue 9).  For
each worker_bench case it runs valgrind's callgrind collecting only the
timed calls (worker_bench's `timed_poll`, one Worker::poll_once() over a
burst of 32 packets, and `timed_io`, the same burst through rx_burst +
tx_burst with no processing: testpmd io on these ports), counts how often
each was called, and prints instructions per packet.  In the two workers'
cases each round is a poll of each worker, a burst of 32 each, the
handed-off packets forwarded within them:

    podgate/pkt = Ir(timed_poll) / (calls x 32)
    io/pkt      = Ir(timed_io) / (calls x 32)
    own/pkt     = podgate/pkt - io/pkt

Usage (as root, from the source tree; valgrind from Debian's `valgrind`):
    tools/bench/worker_instructions.py --build build-rel [--top 12]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

CASES = [
    ("established, 10k flows", "BM_Established/flows:10000/"),
    ("established, 1M flows", "BM_Established/flows:1000000/"),
    ("reply, 10k flows", "BM_Reply/flows:10000/"),
    ("reply, 1M flows", "BM_Reply/flows:1000000/"),
    ("new flow, 10k flows", "BM_NewFlow/flows:10000/"),
    ("new flow, 1M flows", "BM_NewFlow/flows:1000000/"),
    ("IPv6 established, 10k flows", "BM_Established6/flows:10000/"),
    ("IPv6 established, 1M flows", "BM_Established6/flows:1000000/"),
    ("IPv6 reply, 10k flows", "BM_Reply6/flows:10000/"),
    ("IPv6 reply, 1M flows", "BM_Reply6/flows:1000000/"),
    ("IPv6 new flow, 10k flows", "BM_NewFlow6/flows:10000/"),
    ("IPv6 new flow, 1M flows", "BM_NewFlow6/flows:1000000/"),
    ("UDP established, 10k flows", "BM_EstablishedUdp/flows:10000/"),
    ("UDP established, 1M flows", "BM_EstablishedUdp/flows:1000000/"),
    ("2 workers RSS-steered, established, 10k flows", "BM_Established2Steered/flows:10000/"),
    ("2 workers RSS-steered, established, 1M flows", "BM_Established2Steered/flows:1000000/"),
    ("2 workers with handoff, established, 10k flows", "BM_Established2Handoff/flows:10000/"),
    ("2 workers with handoff, established, 1M flows", "BM_Established2Handoff/flows:1000000/"),
    ("IPv6, 2 workers RSS-steered, established, 10k flows", "BM_Established6_2Steered/flows:10000/"),
]
BURST = 32


def calls_and_cost(out_file, function):
    """(calls, inclusive Ir) of every call to `function` in a callgrind file."""
    names = {}
    calls = cost = 0
    lines = open(out_file).read().split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?$", line)
        if m and m.group(2):
            names[m.group(1)] = m.group(2)
        if not line.startswith("cfn="):
            continue
        name = names.get(re.match(r"cfn=\((\d+)\)", line).group(1), "")
        if function in name and i + 2 < len(lines) and lines[i + 1].startswith("calls="):
            calls += int(lines[i + 1].split("=")[1].split()[0])
            cost += int(lines[i + 2].split()[1])
    return calls, cost


def run_case(bench, pattern, collect, top):
    with tempfile.NamedTemporaryFile(suffix=".callgrind", delete=False) as f:
        out = f.name
    try:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
               f"--toggle-collect=*{collect}*", bench, f"--benchmark_filter={pattern}",
               "--benchmark_min_time=0.05"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # The caller's record of the call: worker_loop calls timed_poll /
        # timed_io, so the inclusive cost sits on the calling line.
        calls, cost = calls_and_cost(out, collect)
        profile = ""
        if top:
            ann = subprocess.run(["callgrind_annotate", out], check=True, capture_output=True,
                                 text=True).stdout
            rows = [l for l in ann.split("\n") if re.match(r"\s*[\d,]+ \(", l)][1:top + 1]
            profile = "\n".join(rows)
        return calls, cost, profile
    finally:
        os.unlink(out)


def instructions_per_packet(bench, pattern, top=0):
    """(podgate instructions/pkt, io instructions/pkt, profile) of one
    worker_bench case; None when callgrind recorded no timed call."""
    calls, cost, profile = run_case(bench, pattern, "timed_poll", top)
    io_calls, io_cost, _ = run_case(bench, pattern, "timed_io", 0)
    if calls == 0 or io_calls == 0:
        return None
    return cost / (calls * BURST), io_cost / (io_calls * BURST), profile


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="meson build directory (default: build)")
    ap.add_argument("--top", type=int, default=0, help="also print the top N functions of each case")
    ap.add_argument("--cases", default="", help="substring filter on the case names")
    args = ap.parse_args()
    bench = os.path.join(args.build, "tests", "worker_bench")
    if not os.access(bench, os.X_OK):
        sys.exit(f"{bench} not found: build it first (ninja -C {args.build} tests/worker_bench)")
    print("| case | podgate instructions/pkt | io instructions/pkt | podgate's own instructions/pkt |")
    print("|---|---|---|---|")
    profiles = []
    for name, pattern in CASES:
        if args.cases not in name:
            continue
        measured = instructions_per_packet(bench, pattern, args.top)
        if measured is None:
            sys.exit(f"{name}: no timed calls recorded")
        per, io, profile = measured
        print(f"| {name} | {per:.0f} | {io:.0f} | **{per - io:.0f}** |", flush=True)
        if profile:
            profiles.append((name, profile))
    for name, profile in profiles:
        print(f"\n{name}, top functions (self instructions over the whole run):\n{profile}")


if __name__ == "__main__":
    main()
