#!/usr/bin/env python3
"""podgate throughput over net_memif beside dpdk-testpmd (issue 5).

One command, as root, from the source tree:

    tools/bench/throughput.py --build build            # the full run (~6 min)
    tools/bench/throughput.py --build build --quick    # a short check (~1 min)

On one 2-CPU machine: the forwarder's worker (podgate's one worker, or
testpmd's one forwarding lcore) runs on CPU 1; podgate-gen (a single lcore
that sends and receives) and podgate's control thread share CPU 0.  Both
sides talk over two net_memif pairs; the forwarder's two ports are the memif
servers, the generator opens the client side of both.

It measures, in one run:
  * the I/O limit: testpmd --forward-mode=io and macswap, generator with
    --no-check (testpmd does no NAT, so nothing can be checked);
  * podgate with 1k, 100k and 1M concurrent flows, 64/512/1500-byte frames
    (64 is UDP: a stamped TCP frame needs 70 bytes), established traffic,
    over IPv4 and, side by side in the same run, over IPv6 (podgate is
    dual-stack in every case; 64-byte frames cannot carry IPv6 + UDP + the
    generator's 16-byte stamp, so the IPv6 stand-in for 64 is 78 bytes, the
    smallest that can, divided by testpmd io forwarding the same IPv6
    78-byte frames: the generator's own limit with them),
    and a SYN flood of new connections (70-byte TCP SYNs, each from a client
    address:port never used before); the generator counts with --no-check too,
    so both sides of every ratio cost the generator the same;
  * podgate at a fixed rate with and without endpoint churn (a service's
    extra Pods added, drained and removed 10 times a second by rewriting the
    config and sending SIGHUP), checked in full (moved flows, wrong Pods);
  * DNS (dnsperf against podgate's kernel UDP listener) and control socket
    (`status` round trips) latency, idle and while the worker is saturated;
  * the per-packet cycles of tests/bench/worker_bench (established, replies, new flow).

Elsewhere (a bigger, quieter machine without DPDK installed): pack the
programs with ../shared/tools/bundle-dpdk-run (tools/bench/device_bundle.sh
does it, and tools/bench/device_run.sh runs a subset there), then

    tools/bench/throughput.py --bundle .bench/b --cores 2-15 --workers 1,2,4,8 \
        --cases baseline,matrix,synflood,scaling,worker_bench --flows 100000,1000000 \
        --sizes 64 --no-plot --print-only

--bundle starts podgate, podgate-gen, dpdk-testpmd and worker_bench from the
bundle, with its PMDs; --cases, --flows and --sizes pick what runs.

It writes docs/bench/throughput.csv, docs/bench/throughput.png (gnuplot, the
Debian package gnuplot-nox, installed with apt-get when missing) and the
"Throughput over memif" section of docs/benchmarks.md (--print-only prints
it instead).  Throughput is never asserted: the figures and the issue-5
targets are reported, met or missed.
"""
import argparse
import csv
import datetime
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import memiflab  # noqa: E402
from memiflab import service_arg, service_toml  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------
# Core layout (--cores)
# ---------------------------------------------------------------------------

def parse_cores(text):
    """'2-15' or '0,1,4-7' -> [2, 3, ..., 15]."""
    cores = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cores += range(int(lo), int(hi or lo) + 1)
    if len(cores) < 2 or len(set(cores)) != len(cores):
        raise ValueError(f"--cores {text}: at least two distinct CPUs")
    return cores


class Layout:
    """Which CPU runs what.  The generator (one lcore) on the first CPU; the
    forwarder's control thread (podgate's, or testpmd's main lcore) on the
    second when there are enough CPUs for every worker besides, else beside
    the generator; the workers (testpmd's forwarding lcore) on the rest, one
    CPU each.  On a 2-CPU machine: generator and control on CPU 0, the
    worker on CPU 1."""

    def __init__(self, cores):
        self.cores = cores

    def max_workers(self):
        return max(1, len(self.cores) - 2) if len(self.cores) > 2 else 1

    def split(self, workers):
        c = self.cores
        if len(c) >= workers + 2:
            return c[0], c[1], c[2:2 + workers]
        if len(c) >= workers + 1:
            return c[0], c[0], c[1:1 + workers]
        raise ValueError(f"{workers} workers need {workers + 1} CPUs, --cores has {len(c)}")

    def generator_lcores(self):
        return f"0@{self.cores[0]}"

    def forwarder_lcores(self, workers=1):
        _, control, worker_cpus = self.split(workers)
        return ",".join([f"0@{control}"] + [f"{i + 1}@{cpu}" for i, cpu in enumerate(worker_cpus)])

    def first_worker_cpu(self):
        return self.split(1)[2][0]

    def describe(self, workers=1):
        gen, control, w = self.split(workers)
        return (f"generator on CPU {gen}, control thread on CPU {control}, "
                f"worker{'s' if len(w) > 1 else ''} on CPU {','.join(map(str, w))}")


TESTPMD_MAC = "02:00:00:00:00:fe"  # what the generator sends to through testpmd
# memif rings: the PMD's default 1024 slots (no rsize), as the published
# figures were measured; the tests use memiflab's 4096.
RSIZE = None
BASE_PODS = ["172.17.0.10", "172.17.0.11", "172.17.0.12", "172.17.0.13"]
CHURN_PODS = ["172.17.0.5", "172.17.0.20"]  # one sorts before the base Pods, one after
WEB = ("10.96.0.20", 80, 8080, "TCP")
UDP = ("10.96.0.40", 53, 5353, "UDP")
# The same services' IPv6 halves (both services are dual-stack) and Pods.
BASE_PODS6 = ["fd00:17::10", "fd00:17::11", "fd00:17::12", "fd00:17::13"]
WEB6 = ("fd00:96::20", 80, 8080, "TCP")
UDP6 = ("fd00:96::40", 53, 5353, "UDP")
CLIENTS6_NET = "2001:db8::/32"  # every IPv6 case's clients, routed via memiflab.GATEWAY6
# The smallest stamped IPv6 + UDP frame: 14 + 40 + 8 + the 16-byte stamp.
MIN_UDP6_FRAME = 78
DNS_ZONE_NAME = "web.default.svc.cluster.local"
SECTION = "## Throughput over memif"
# What --cases can pick, in the order they run.
CASES = ("baseline", "matrix", "synflood", "churn", "responsiveness", "scaling", "worker_bench",
         "instructions")


def log(msg):
    print(f"[throughput] {msg}", flush=True)


# ---------------------------------------------------------------------------
# Memory: hugepages when enough are free, else 4 KiB pages
# ---------------------------------------------------------------------------

def hugepages_free_mb():
    try:
        info = pathlib.Path("/proc/meminfo").read_text()
        free = int(re.search(r"HugePages_Free:\s+(\d+)", info).group(1))
        size_kb = int(re.search(r"Hugepagesize:\s+(\d+)", info).group(1))
        mounted = "hugetlbfs" in pathlib.Path("/proc/mounts").read_text()
        return free * size_kb // 1024 if mounted else 0
    except (OSError, AttributeError):
        return 0


class Memory:
    """EAL memory arguments for podgate (512 MiB), the generator and testpmd
    (256 MiB each, never at the same time as each other's peer podgate),
    and the PMDs to load (a bundle's; none for an installed DPDK)."""

    def __init__(self, force_no_huge, pmds=()):
        self.huge = not force_no_huge and hugepages_free_mb() >= 512 + 256 + 64
        self.pmds = list(pmds)

    def args(self, mb, prefix):
        if self.huge:
            # --in-memory: no runtime files in /var/run or hugetlbfs to clean.
            return ["--in-memory", "-m", str(mb), "--no-pci", "--file-prefix", prefix, *self.pmds]
        return ["--no-huge", "--no-shconf", "-m", str(mb), "--no-pci", "--file-prefix", prefix,
                *self.pmds]

    def describe(self):
        return "2 MiB hugepages" if self.huge else "4 KiB pages (--no-huge)"


class Programs:
    """Where podgate, podgate-gen, dpdk-testpmd and worker_bench come from:
    the build directory and the installed testpmd, or (--bundle) a folder
    made by ../shared/tools/bundle-dpdk-run, whose `run` starts each program
    with the bundled loader and libraries, for a machine without DPDK."""

    def __init__(self, build, bundle=None):
        self.build = pathlib.Path(build).resolve()
        self.bundle = pathlib.Path(bundle).resolve() if bundle else None
        if self.bundle:
            run = self.bundle / "run"
            for prog in ("podgate", "podgate-gen", "dpdk-testpmd"):
                if not (self.bundle / "bin" / prog).exists():
                    sys.exit(f"throughput: {prog} is not in the bundle {self.bundle}")
            if not (self.bundle / "lib" / "libstdbuf.so").exists():
                # Without it testpmd's output stays in its buffer, and its
                # start is never seen.
                sys.exit(f"throughput: the bundle {self.bundle} has no lib/libstdbuf.so "
                         "(tools/bench/device_bundle.sh adds it)")
            self.pmds = subprocess.run([str(run), "--pmds"], capture_output=True, text=True,
                                       check=True).stdout.split()
        else:
            for b in (self.build / "control" / "podgate",
                      self.build / "tools" / "trafficgen" / "podgate-gen"):
                if not b.exists():
                    sys.exit(f"throughput: {b} is not built (ninja -C {build} control/podgate "
                             f"tools/trafficgen/podgate-gen tests/worker_bench)")
            self.pmds = []

    def argv(self, prog):
        """The command that starts `prog` (podgate, podgate-gen, dpdk-testpmd)."""
        if self.bundle:
            return [str(self.bundle / "run"), prog]
        if prog == "dpdk-testpmd":
            return [prog]
        sub_dir = "control" if prog == "podgate" else "tools/trafficgen"
        return [str(self.build / sub_dir / prog)]

    def line_buffered(self, prog):
        """(command prefix, environment) that line-buffer `prog`'s stdout
        into a file (stdbuf -oL; in a bundle, the bundled libstdbuf.so that
        tools/bench/device_bundle.sh adds, for the bundled glibc)."""
        if not self.bundle:
            return ["stdbuf", "-oL", *self.argv(prog)], None
        lib = self.bundle / "lib" / "libstdbuf.so"
        return self.argv(prog), dict(os.environ, _STDBUF_O="L", LD_PRELOAD=str(lib))

    def worker_bench(self):
        """The command that starts worker_bench, or None when there is none."""
        if self.bundle:
            if not (self.bundle / "bin" / "worker_bench").exists():
                return None
            return [str(self.bundle / "run"), "--preload", "worker_bench"]
        exe = self.build / "tests" / "worker_bench"
        return [str(exe)] if exe.exists() else None


# ---------------------------------------------------------------------------
# The forwarders
# ---------------------------------------------------------------------------

class Forwarder:
    """A process owning the two memif servers in `dir`."""

    def __init__(self, workdir, tag):
        self.dir = workdir
        self.tag = tag
        self.proc = None
        self.log_path = os.path.join(workdir, f"{tag}.log")
        self.log = None

    def socket(self, name):
        return os.path.join(self.dir, f"{self.tag}-{name}.sock")

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_for(self, text, timeout=60):
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = self.log_text()
                self.stop()
                raise RuntimeError(f"{self.tag} did not start:\n{out[-3000:]}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None
        return self.proc.returncode if self.proc else None


class Testpmd(Forwarder):
    def __init__(self, workdir, mode, memory, tag, layout, programs):
        super().__init__(workdir, tag)
        for name in ("up", "pods"):
            if os.path.exists(self.socket(name)):
                os.unlink(self.socket(name))
        # Line-buffered: testpmd's stdout is block-buffered into a file otherwise.
        command, env = programs.line_buffered("dpdk-testpmd")
        args = [*command, "--lcores", layout.forwarder_lcores(1),
                *memory.args(256, tag),
                "--vdev", memiflab.memif_devargs(0, "server", self.socket("up"), RSIZE),
                "--vdev", memiflab.memif_devargs(1, "server", self.socket("pods"), RSIZE),
                "--", f"--forward-mode={mode}", "--nb-cores=1", "--rxq=1", "--txq=1",
                "--total-num-mbufs=16384", "--auto-start", "--disable-link-check"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE, env=env)
        self.wait_for("Press enter to exit")

    def stop(self, sig=signal.SIGINT):
        # testpmd stops cleanly on enter (its "Press enter to exit").
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=15)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        return super().stop(sig)


DROP_NAMES = {"too_short", "not_ip", "bad_ip_version", "bad_ihl", "ip_options", "bad_ip_length",
              "bad_ip_checksum", "fragment", "truncated_l4", "bad_tcp_offset", "bad_udp_length",
              "unsupported_proto", "ttl_exceeded", "no_service", "no_endpoint", "no_flow",
              "not_for_us", "no_route", "neighbor_unresolved", "bad_arp", "arp_not_for_us",
              "icmp_not_echo", "bad_icmp", "handoff_full", "punt_full", "tx_full"}


def port_counters(log_text):
    """{port: {ipackets, opackets, imissed, ...}} from the last counter dump."""
    text = log_text[log_text.rfind("counters:"):]
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"port (\w+):([^\n]*)", text)}


class Podgate(Forwarder):
    def __init__(self, workdir, command, memory, tag, flow_table_size, layout, syn_timeout=30,
                 dns_port=None, workers=1, ipv6_flow_table_size=None, steered_uplink=False):
        super().__init__(workdir, tag)
        self.ipv6_flow_table_size = ipv6_flow_table_size
        self.steered_uplink = steered_uplink
        self.layout = layout
        self.workers = workers
        self.config = os.path.join(workdir, f"{tag}.toml")
        self.control = os.path.join(workdir, f"{tag}-control.sock")
        self.flow_table_size = flow_table_size
        self.syn_timeout = syn_timeout
        self.dns_port = dns_port
        self.memory = memory
        self.write_config(0)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([*command, "-c", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.wait_for("running:")

    def write_config(self, churn_phase):
        eal = json.dumps(["--lcores", self.layout.forwarder_lcores(self.workers),
                          *self.memory.args(512, self.tag)])
        listen = json.dumps([f"127.0.0.1:{self.dns_port}"] if self.dns_port else [])
        text = f"""
[eal]
args = {eal}
[dataplane]
workers = {self.workers}
flow_table_size = {self.flow_table_size}
{f"ipv6_flow_table_size = {self.ipv6_flow_table_size}" if self.ipv6_flow_table_size else ""}
mbufs = 32767
tcp_syn_timeout = {self.syn_timeout}
{memiflab.ports_toml(self.socket("up"), self.socket("pods"), RSIZE, ipv6=True,
                     steered_uplink=self.steered_uplink)}
{memiflab.route_toml("10.0.0.0/8")}
{memiflab.route_toml(CLIENTS6_NET)}
{memiflab.neighbors_toml(BASE_PODS + CHURN_PODS + BASE_PODS6, ipv6=True)}
[dns]
listen = {listen}
[control]
socket = "{self.control}"
{service_toml("web", [WEB[0], WEB6[0]], *WEB[1:],
              memiflab.churn_endpoints(BASE_PODS, CHURN_PODS, churn_phase)
              + memiflab.ready_endpoints(BASE_PODS6))}
{service_toml("udp", [UDP[0], UDP6[0]], *UDP[1:], memiflab.ready_endpoints(BASE_PODS + BASE_PODS6))}
"""
        # Atomic replace: a SIGHUP never reads a half-written file.
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config)

    def counters(self):
        """The workers' counters from the log's last counter dump, summed."""
        text = self.log_text()
        start = text.rfind("counters:")
        out = {}
        for m in re.finditer(r"worker \d+:([^\n]*)(\n  drops:([^\n]*))?", text[start:]):
            for k, v in re.findall(r"(\w+)=(\d+)", m.group(1) + " " + (m.group(3) or "")):
                out[k] = out.get(k, 0) + int(v)
        return out


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------

def run_generator(gen, fwd, memory, tag, options, queues, layout, gateway_mac=None,
                  on_started=None, timeout=300):
    """Runs podgate-gen on CPU 0 against `fwd`; returns its JSON results."""
    out = os.path.join(fwd.dir, f"{tag}.json")
    rxq = queues + 1 if isinstance(fwd, Podgate) else queues
    args = [*gen, "--lcores", layout.generator_lcores(), *memory.args(256, tag),
            *memiflab.generator_vdevs(fwd.socket("up"), fwd.socket("pods"), RSIZE),
            "--", "--json", out, "--tx-queues", str(queues), "--rx-queues", str(rxq), *options]
    if gateway_mac:
        args += ["--gateway-mac", gateway_mac]
    code, r, text = memiflab.run_generator(args, out, on_started=on_started, timeout=timeout)
    if r is None:
        raise RuntimeError(f"podgate-gen {tag} wrote no results (exit {code}):\n{text}")
    r["exit_code"] = code
    r["output"] = text
    return r


# ---------------------------------------------------------------------------
# DNS and control latency
# ---------------------------------------------------------------------------

def control_round_trips(path, count):
    """`status` requests one after another on one connection; ms each."""
    times = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        buf = b""
        for _ in range(count):
            t0 = time.perf_counter()
            s.sendall(b'{"command": "status"}\n')
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("control socket closed")
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            times.append((time.perf_counter() - t0) * 1e3)
            if not json.loads(line).get("ok", False):
                raise RuntimeError(f"status failed: {line!r}")
            time.sleep(0.01)
    return times


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p * (len(v) - 1))))] if v else float("nan")


def dnsperf(port, seconds, qps, workdir):
    queries = os.path.join(workdir, "queries.txt")
    with open(queries, "w") as f:
        f.write(f"{DNS_ZONE_NAME} A\n")
    res = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", queries,
                          "-l", str(seconds), "-Q", str(qps), "-c", "1", "-T", "1"],
                         capture_output=True, text=True, timeout=seconds + 30)
    text = res.stdout
    def grab(pattern, cast=float):
        m = re.search(pattern, text)
        return cast(m.group(1)) if m else float("nan")
    return {"sent": grab(r"Queries sent:\s+(\d+)", int),
            "completed": grab(r"Queries completed:\s+(\d+)", int),
            "lost": grab(r"Queries lost:\s+(\d+)", int),
            "qps": grab(r"Queries per second:\s+([\d.]+)"),
            "avg_ms": grab(r"Average Latency \(s\):\s+([\d.]+)") * 1e3,
            "max_ms": grab(r"Average Latency \(s\):\s+[\d.]+ \(min [\d.]+, max ([\d.]+)\)") * 1e3,
            "stddev_ms": grab(r"Latency StdDev \(s\):\s+([\d.]+)") * 1e3}


def dig_once(port):
    if shutil.which("dig"):
        cmd = ["dig", "@127.0.0.1", "-p", str(port), DNS_ZONE_NAME, "A", "+short", "+time=2",
               "+tries=1"]
    elif shutil.which("kdig"):
        cmd = ["kdig", "@127.0.0.1", "-p", str(port), DNS_ZONE_NAME, "A", "+short",
               "+timeout=2", "+retry=0"]
    else:
        return "(no dig/kdig)"
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    return res.stdout.strip() or res.stderr.strip()


# ---------------------------------------------------------------------------
# perf: where the worker's time goes during a run
# ---------------------------------------------------------------------------

def worker_tid(pid):
    """The DPDK worker lcore thread of process `pid` (named lcore-worker-N)."""
    for task in sorted(pathlib.Path(f"/proc/{pid}/task").iterdir()):
        try:
            if "worker" in (task / "comm").read_text():
                return int(task.name)
        except OSError:
            continue
    return None


def perf_profile(pid, seconds, workdir):
    """Samples the worker thread (cpu-clock: this VM has no hardware
    counters) and returns [(percent, symbol)] above 1.5%."""
    if shutil.which("perf") is None:
        return None
    tid = worker_tid(pid)
    if tid is None:
        return None
    data = os.path.join(workdir, "perf.data")
    subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-t", str(tid), "-o", data,
                    "--", "sleep", str(seconds)], capture_output=True, timeout=seconds + 60)
    res = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                          "--sort", "dso,symbol", "--percent-limit", "1.5"],
                         capture_output=True, text=True, timeout=120)
    out = []
    for line in res.stdout.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.+)", line)
        if m:
            sym = re.sub(r"(\s+-)+\s*$", "", m.group(3)).strip()
            sym = re.sub(r"\((?!anonymous)[^()]*\)( const)?$", "", sym)  # no signature
            if sym.startswith("0x"):
                sym = "(no symbols)"
            out.append((float(m.group(1)), f"`{sym}` ({os.path.basename(m.group(2))})"))
    res = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                          "--sort", "dso", "--percent-limit", "1"],
                         capture_output=True, text=True, timeout=120)
    dsos = []
    for line in res.stdout.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)", line)
        if m:
            dsos.append((float(m.group(1)), os.path.basename(m.group(2))))
    return {"symbols": out, "dsos": dsos}


# ---------------------------------------------------------------------------
# worker_bench
# ---------------------------------------------------------------------------

def flow_table_bytes(connections):
    """dataplane/flow_table.hpp: a 32-byte record per connection, a 64-byte
    index bucket per 3 connections, and the half-open queue (an 8-byte
    entry per connection)."""
    return connections * 32 + -(-connections // 3) * 64 + connections * 8


def worker_bench(programs, quick, cpu, huge, cases_filter=""):
    """worker_bench's own cycles per packet, by case; `huge`: its DPDK
    memory from 2 MiB hugepages (1 GiB of them free), as the daemon runs,
    not 4 KiB pages, whose TLB misses would inflate the 1M-flow cases."""
    exe = programs.worker_bench()
    if exe is None:
        return None, "worker_bench not built"
    reps = "1" if quick else "3"
    min_time = "0.05" if quick else "0.3"
    cmd = ["taskset", "-c", str(cpu), *exe, *(["--hugepages"] if huge else []),
           f"--benchmark_repetitions={reps}",
           "--benchmark_report_aggregates_only=true", f"--benchmark_min_time={min_time}",
           "--benchmark_format=json"]
    if cases_filter:
        cmd.append(f"--benchmark_filter={cases_filter}")
    elif quick:
        cmd.append("--benchmark_filter=flows:10000/")
    out_path = os.path.join(tempfile.gettempdir(), f"worker_bench-{os.getpid()}.json")
    res = subprocess.run(cmd + [f"--benchmark_out={out_path}", "--benchmark_out_format=json"],
                         capture_output=True, text=True, timeout=1800)
    try:
        with open(out_path) as f:
            data = json.load(f)
        os.unlink(out_path)
    except (OSError, ValueError):
        log(f"worker_bench failed (exit {res.returncode}): {res.stderr[-1000:]}")
        return None, " ".join(cmd)
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name", "median") != "median" and reps != "1":
            continue
        name = b.get("run_name", b["name"])
        if "own_cycles/pkt" in b:
            out[name] = {"own": b["own_cycles/pkt"], "total": b["cycles/pkt"],
                         "io": b["io_cycles/pkt"], "table_full": b.get("table_full", 0)}
    cmd = [c for c in cmd if c != "--benchmark_format=json"]
    return out, " ".join(cmd)


def worker_instructions(build, quick):
    """podgate's own instructions per packet (callgrind, worker_bench's
    timed calls minus the io baseline's), by case name as worker_bench
    names it; {} when valgrind is not installed.  They do not move with
    machine load, so they sit beside the cycles."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import worker_instructions as wi  # noqa: E402
    exe = str(pathlib.Path(build) / "tests" / "worker_bench")
    if shutil.which("valgrind") is None or not os.access(exe, os.X_OK):
        log("worker instructions: valgrind or worker_bench missing, skipped")
        return {}
    out = {}
    for _, pattern in wi.CASES:
        if quick and "flows:10000/" not in pattern:
            continue
        measured = wi.instructions_per_packet(exe, pattern)
        if measured:
            out[pattern.rstrip("/")] = round(measured[0] - measured[1])
    return out


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, a):
        self.a = a
        self.build = pathlib.Path(a.build).resolve()
        self.programs = Programs(a.build, a.bundle)
        self.podgate_cmd = self.programs.argv("podgate")
        self.gen_cmd = self.programs.argv("podgate-gen")
        self.memory = Memory(a.no_huge, self.programs.pmds)
        self.layout = Layout(parse_cores(a.cores))
        self.worker_counts = [int(n) for n in a.workers.split(",")] if a.workers else []
        for n in self.worker_counts:
            self.layout.split(n)  # enough CPUs, or a clear error now
        self.dir = tempfile.mkdtemp(prefix="pgbench-")
        self.seconds = 1.0 if a.quick else a.seconds
        self.rows = []
        self.extra = {}
        self.n = 0

    def tag(self, kind):
        self.n += 1
        return f"pgb{os.getpid() % 10000}{kind}{self.n}"

    def gen(self, fwd, options, **kw):
        queues = fwd.workers if isinstance(fwd, Podgate) else 1
        return run_generator(self.gen_cmd, fwd, self.memory, self.tag("g"), options, queues,
                             self.layout, **kw)

    def add(self, kind, mode, flows, size, proto, r, notes="", family="IPv4", io_size=None):
        # io_size: the testpmd io frame size this row's ratio divides by
        # (an IPv6 78-byte row stands in for 64).
        row = {"kind": kind, "mode": mode, "flows": flows, "frame_size": size, "proto": proto,
               "family": family, "io_size": io_size or size,
               "tx_pps": round(r["tx"]["pps"]), "rx_pps": round(r["rx_pods"]["pps"]),
               "gbps": round(r["rx_pods"]["pps"] * size * 8 / 1e9, 3),
               "loss_pct": round(r["loss"]["percent"], 4),
               "violations": r["violations"]["total"],
               "moved": r["violations"]["pod_flow_moved"],
               "p50_us": round(r["latency_ns"]["client_to_pod"]["p50"] / 1e3, 1),
               "p99_us": round(r["latency_ns"]["client_to_pod"]["p99"] / 1e3, 1),
               "ratio_to_io": "", "notes": notes}
        self.rows.append(row)
        log(f"{kind} {mode} flows={flows} {size}B {proto}/{family}: rx {row['rx_pps'] / 1e6:.3f} Mpps, "
            f"tx {row['tx_pps'] / 1e6:.3f} Mpps, loss {row['loss_pct']}%, "
            f"violations {row['violations']}")
        return row

    def flow_opts(self, flows, index, size, proto, family="IPv4"):
        # Each run its own client range so no run finds the last one's flows.
        if family == "IPv6":
            base = f"2001:db8:{100 + index}:"
            svc = service_arg(*(WEB6 if proto == "TCP" else UDP6), BASE_PODS6)
            clients = f"{base}:1-{base}:40"  # 64 clients, as IPv4's
        else:
            base = f"10.{100 + index}.0"
            svc = service_arg(*(WEB if proto == "TCP" else UDP), BASE_PODS)
            clients = f"{base}.1-{base}.64"
        return ["--service", svc, "--clients", clients, "--client-ports", "1024-65535",
                "--flows", str(flows), "--size", str(size), "--duration", str(self.seconds),
                "--drain-ms", "300"]

    def baseline(self, sizes, modes=("io", "macswap"), again=False):
        for mode in modes:
            for size in sizes:
                proto = "UDP" if size < 70 else "TCP"
                t = Testpmd(self.dir, mode, self.memory, self.tag("t"), self.layout, self.programs)
                try:
                    r = self.gen(t, self.flow_opts(1000, self.n, size, proto) + ["--no-check"],
                                 gateway_mac=TESTPMD_MAC)
                finally:
                    t.stop()
                self.add("testpmd", mode + (" (again, at the end)" if again else ""), 1000, size,
                         proto, r)
            if mode == "io" and min(sizes) < MIN_UDP6_FRAME:
                # The generator's own limit with the IPv6 twin's frames:
                # what an IPv6 78-byte row's ratio divides by.
                t = Testpmd(self.dir, mode, self.memory, self.tag("t"), self.layout, self.programs)
                try:
                    r = self.gen(t, self.flow_opts(1000, self.n, MIN_UDP6_FRAME, "UDP", "IPv6") + ["--no-check"],
                                 gateway_mac=TESTPMD_MAC)
                finally:
                    t.stop()
                self.add("testpmd", mode + (" (again, at the end)" if again else ""), 1000, MIN_UDP6_FRAME,
                         "UDP", r, family="IPv6")

    def podgate_matrix(self, flow_counts, sizes):
        """Every flow count x frame size (and a checked case), IPv4 then
        IPv6 at that flow count, so the two families sit side by side."""
        for flows in flow_counts:
            for family in ("IPv4", "IPv6"):
                self.family_cases(flows, sizes, family, flow_counts)

    def family_cases(self, flows, sizes, family, flow_counts):
        # The case's connections and a little more, in the table of either
        # family: every record is usable (flow_table_test), and no case
        # opens more than its flows.
        table = max(4096, flows + flows // 64)
        # The checked case sends the largest size as TCP: a stamped TCP
        # frame needs 70 bytes.
        for size in sizes + (["checked"] if max(sizes) >= 70 else []):
            # A fresh podgate for every case: the table holds this
            # case's flows only.
            p = Podgate(self.dir, self.podgate_cmd, self.memory, self.tag("p"), table,
                        self.layout, ipv6_flow_table_size=table)
            try:
                self.matrix_case(p, flows, size, sizes, flow_counts, table, family)
            finally:
                p.stop()
            suffix = "" if family == "IPv4" else "_ipv6"
            counters = p.counters()
            self.extra[f"counters_{flows}_{size}{suffix}"] = counters
            # A flow the table could not hold went by Maglev alone: the row
            # would not measure established flows.
            self.rows[-1]["table_full"] = counters.get("flows_table_full", 0)

    def matrix_case(self, p, flows, size, sizes, flow_counts, table, family="IPv4"):
        if size == "checked":
            # At the same flow count, at half the rate just measured, with
            # every packet judged.
            size = sizes[-1]
            rate = int(self.rows[-1]["rx_pps"] * 0.5)
            r = self.gen(p, self.flow_opts(flows, self.n, size, "TCP", family) + ["--rate", str(rate)])
            self.add("podgate", "established, checked", flows, size, "TCP", r,
                     f"--rate {rate}, every packet checked", family=family)
            return
        proto = "UDP" if size < 70 else "TCP"
        io_size = size
        if family == "IPv6" and size < MIN_UDP6_FRAME:
            size = MIN_UDP6_FRAME  # 64 bytes cannot carry IPv6 + UDP + the stamp
        profile = None
        if flows == flow_counts[0] and io_size == sizes[0] and family == "IPv4":
            # Where the worker's time goes, in the first case.
            def profile_worker():
                time.sleep(0.3)
                self.extra["perf"] = perf_profile(p.proc.pid, max(0.5, self.seconds - 0.8),
                                                  self.dir)
                self.extra["perf_case"] = f"{flows} flows, {size}-byte {proto}"

            profile = threading.Thread(target=profile_worker)
        r = self.gen(p, self.flow_opts(flows, self.n, size, proto, family) + ["--no-check"],
                     on_started=profile.start if profile else None)
        if profile:
            profile.join()
        row = self.add("podgate", "established", flows, size, proto, r, f"flow_table_size {table}",
                       family=family, io_size=io_size)
        row["table_bytes_per_flow"] = flow_table_bytes(table) / flows

    def syn_flood(self):
        # Half-open flows time out after 1 s so the table holds about one
        # second of SYNs.
        p = Podgate(self.dir, self.podgate_cmd, self.memory, self.tag("p"), 1 << 22, self.layout,
                    syn_timeout=1)
        try:
            r = self.gen(p, ["--service", service_arg(*WEB, BASE_PODS), "--new-flows",
                             "--clients", "10.128.0.0-10.255.255.255", "--client-ports", "1024-65535",
                             "--size", "70", "--duration", str(self.seconds), "--drain-ms", "300"])
        finally:
            p.stop()
        c = p.counters()
        self.extra["syn_counters"] = c
        row = self.add("podgate", "SYN flood", "new", 70, "TCP", r,
                       f"flows_created {c.get('flows_created', 0)}, "
                       f"table_full {c.get('flows_table_full', 0)}")
        row["flows_created"] = c.get("flows_created", 0)
        row["table_full"] = c.get("flows_table_full", 0)

    def churn(self, rate, flows):
        """Established flows at a fixed rate, checked in full; then the same
        with the web service's extra Pods changing 10 times a second."""
        expected = service_arg(*WEB, BASE_PODS + CHURN_PODS)
        out = {}
        for churning in (False, True):
            p = Podgate(self.dir, self.podgate_cmd, self.memory, self.tag("p"), 1 << 16, self.layout)
            stop = threading.Event()
            updates = [0]

            def churner():
                # Every flow opened in the first packets; wait until all have.
                time.sleep(0.3)
                phase = 0
                while not stop.wait(0.1):
                    phase = (phase + 1) % 3
                    p.write_config(phase)
                    p.proc.send_signal(signal.SIGHUP)
                    updates[0] += 1
                p.write_config(0)

            thread = threading.Thread(target=churner)
            try:
                opts = ["--service", expected, "--clients", "10.90.0.1-10.90.0.8",
                        "--client-ports", "1024-65535", "--flows", str(flows), "--size", "512",
                        "--rate", str(rate), "--duration", str(self.seconds * 2), "--drain-ms", "500"]
                r = self.gen(p, opts, on_started=thread.start if churning else None)
            finally:
                stop.set()
                if thread.is_alive():
                    thread.join()
                p.stop()
            text = p.log_text()
            text = text[text.find("running:"):]  # updates after start only
            refused = text.count("reload refused")
            applied = text.count("published snapshot")
            c = p.counters()
            mode = "churn 10/s" if churning else "no churn"
            row = self.add("podgate", mode, flows, 512, "TCP", r,
                           f"--rate {rate}; updates applied {applied}, refused {refused}")
            churn_flows = sum(e["flows"] for s in r["services"] for e in s["endpoints"]
                              if e["endpoint"].split(":")[0] in CHURN_PODS)
            out[mode] = {"row": row, "updates": applied, "refused": refused,
                         "lost": r["loss"]["packets"], "sent": r["tx"]["packets"],
                         "moved": r["violations"]["pod_flow_moved"],
                         "violations": r["violations"]["total"], "flows_seen": r["flows"]["seen"],
                         "flows_on_churn_pods": churn_flows,
                         "revalidated": c.get("flows_revalidated", 0),
                         "endpoint_gone": c.get("flows_endpoint_gone", 0),
                         "adopted": c.get("snapshots_adopted", 0),
                         "drops": {k: v for k, v in c.items() if k in DROP_NAMES},
                         "ports": port_counters(p.log_text())}
        self.extra["churn"] = out

    def responsiveness(self, samples, dns_seconds):
        port = 20000 + os.getpid() % 12000  # below the ephemeral ports (tools/netlab.py)
        p = Podgate(self.dir, self.podgate_cmd, self.memory, self.tag("p"), 1 << 19, self.layout,
                    dns_port=port)
        out = {"dig": dig_once(port)}
        try:
            out["idle_control"] = control_round_trips(p.control, samples)
            out["idle_dns"] = dnsperf(port, dns_seconds, 1000, self.dir)
            busy = {}

            def measure():
                time.sleep(0.5)
                busy["control"] = control_round_trips(p.control, samples)
                busy["dns"] = dnsperf(port, dns_seconds, 1000, self.dir)

            thread = threading.Thread(target=measure)
            duration = max(self.seconds, dns_seconds + samples * 0.02 + 3)
            r = self.gen(p, self.flow_opts(100_000, 60, 64, "UDP") +
                         ["--no-check", "--duration", str(duration)],
                         on_started=thread.start)
            thread.join()
            out["busy_control"] = busy["control"]
            out["busy_dns"] = busy["dns"]
            out["busy_rx_pps"] = r["rx_pods"]["pps"]
        finally:
            p.stop()
        self.extra["responsiveness"] = out

    def scaling(self, flows=100_000, size=64):
        """podgate established (64-byte UDP, `flows` flows) with 1, 2, 4...
        workers: N workers should give N x one worker (issue 9), in two
        modes.  "no RSS (handoff)": the generator sends every flow on one
        memif queue, so the worker polling it hands (N-1)/N of the packets
        to their owners.  "RSS-steered": the generator sends each flow on
        its owner's queue (--steer-workers), as a NIC with RSS on the
        client's fields would, and the uplink says so (steered_by_peer), so
        the workers take those queues' packets as their own, as from such
        a NIC's queues: nothing is handed off, nothing hashed in software."""
        out = []
        for steered in (False, True):
            mode = "RSS-steered" if steered else "no RSS (handoff)"
            for n in self.worker_counts:
                if steered and n == 1:
                    continue  # one worker: the same run as without steering
                p = Podgate(self.dir, self.podgate_cmd, self.memory, self.tag("p"),
                            max(4096, flows + flows // 4), self.layout, workers=n,
                            steered_uplink=steered)
                opts = self.flow_opts(flows, self.n, size, "UDP") + ["--no-check"]
                if steered:
                    opts += ["--steer-workers", str(n)]
                try:
                    r = self.gen(p, opts)
                finally:
                    p.stop()
                c = p.counters()
                row = self.add("podgate", f"established, {n} worker{'s' if n > 1 else ''}, {mode}",
                               flows, size, "UDP", r,
                               f"handoff {c.get('handoff_out', 0)} of {c.get('rx_packets', 0)}")
                out.append({"workers": n, "mode": mode, "rx_pps": row["rx_pps"],
                            "loss_pct": row["loss_pct"], "handoff": c.get("handoff_out", 0),
                            "rx": c.get("rx_packets", 0), "layout": self.layout.describe(n)})
        self.extra["scaling"] = out

    def run(self):
        quick = self.a.quick
        sizes = self.a.sizes or ([64, 512, 1500] if not quick else [64, 512])
        flow_counts = self.a.flows or ([1000, 100_000, 1_000_000] if not quick else [1000])
        cases = self.a.cases
        log(f"memory: {self.memory.describe()}; {self.seconds} s per case; work dir {self.dir}; "
            f"cases {', '.join(sorted(cases))}")
        if "baseline" in cases:
            self.baseline(sizes)
        if "matrix" in cases:
            self.podgate_matrix(flow_counts, sizes)
        if "synflood" in cases:
            self.syn_flood()
        if "churn" in cases:
            self.churn(rate=20_000 if quick else 200_000, flows=1000)
        if "responsiveness" in cases:
            self.responsiveness(samples=50 if quick else 200, dns_seconds=2 if quick else 4)
        if self.worker_counts and "scaling" in cases:
            self.scaling()
        # io once more: on a shared machine one baseline run can land in a
        # busy moment; the better of the two is the I/O limit (the stricter
        # denominator for podgate's ratios).
        if "baseline" in cases:
            self.baseline(sizes, modes=("io",), again=True)
        if "worker_bench" in cases:
            log("worker_bench (per-packet cycles)")
            self.extra["worker_bench"], cmd = worker_bench(
                self.programs, quick, self.layout.first_worker_cpu(),
                self.memory.huge and hugepages_free_mb() >= 1024, self.a.worker_bench_filter)
            cmd = cmd.replace(str(self.build), self.a.build)
            if self.programs.bundle:
                cmd = cmd.replace(str(self.programs.bundle), self.a.bundle)
            self.extra["worker_bench_cmd"] = cmd
        if "instructions" in cases:
            log("worker instructions per packet (callgrind)")
            self.extra["worker_instructions"] = worker_instructions(self.build, quick)
        io = {}  # (family, frame size) -> the better testpmd io rate
        for r in self.rows:
            if r["kind"] == "testpmd" and r["mode"].startswith("io"):
                key = (r.get("family", "IPv4"), r["frame_size"])
                io[key] = max(io.get(key, 0), r["rx_pps"])
        for r in self.rows:
            if r["mode"] not in ("io", "io (again, at the end)", "macswap", "established",
                                 "SYN flood"):
                continue  # rate-limited runs: a ratio would say nothing
            size = r.get("io_size", r["frame_size"])
            # An IPv6 row divides by io with its own frames where measured.
            base = io.get((r.get("family", "IPv4"), r["frame_size"])) or io.get(("IPv4", size)) or \
                io.get(("IPv4", 64 if size < 70 else 512))
            if base:
                r["ratio_to_io"] = round(r["rx_pps"] / base, 3)
        return self.rows


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

CSV_FIELDS = ["kind", "mode", "flows", "frame_size", "proto", "family", "tx_pps", "rx_pps", "gbps",
              "loss_pct", "violations", "moved", "p50_us", "p99_us", "ratio_to_io", "notes"]


def write_csv(rows, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def ensure_gnuplot():
    if shutil.which("gnuplot"):
        return True
    log("gnuplot missing: apt-get install -y gnuplot-nox")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-q", "gnuplot-nox"], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return shutil.which("gnuplot") is not None


def label(r):
    if r["kind"] == "testpmd":
        return f"testpmd {r['mode']} {r['frame_size']}B"
    flows = r["flows"] if isinstance(r["flows"], str) else (
        f"{r['flows'] // 1000}k" if r["flows"] < 1_000_000 else f"{r['flows'] // 1_000_000}M")
    v6 = " IPv6" if r.get("family") == "IPv6" else ""
    return f"{r['mode']}{v6} {flows} {r['frame_size']}B"


def write_plot(rows, path, workdir):
    if not ensure_gnuplot():
        log("no gnuplot: plot skipped")
        return False
    data = os.path.join(workdir, "plot.dat")
    with open(data, "w") as f:
        for r in rows:
            if r["kind"] == "podgate" and r["mode"] in ("established, checked", "no churn",
                                                      "churn 10/s"):
                continue  # rate-limited runs: not a throughput figure
            f.write(f"\"{label(r)}\" {r['rx_pps'] / 1e6:.4f} {r['ratio_to_io'] or 0}\n")
    script = f"""
set terminal pngcairo size 1200,600 font ",10"
set output "{path}"
set title noenhanced "podgate over net_memif beside testpmd (one forwarding core; Mpps received at the Pod side)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set ylabel "Mpps"
set xtics rotate by -40 scale 0 noenhanced
set grid ytics
set key off
set yrange [0:*]
plot "{data}" using 2:xtic(1) lc rgb "#3070b0", '' using 0:2:(sprintf("%.2f", $3)) with labels offset 0,0.7
"""
    res = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    if res.returncode != 0:
        # Without the cairo terminal, the plain png one.
        res = subprocess.run(["gnuplot"], input=script.replace("pngcairo", "png"),
                             capture_output=True, text=True)
    if res.returncode != 0:
        log("gnuplot failed: " + res.stderr)
    return res.returncode == 0


def fmt_pps(v):
    return f"{v / 1e6:.3f}"


def machine():
    cpu = "unknown CPU"
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()
    return (f"{cpu}, {os.cpu_count()} vCPUs, Linux {platform.release()}, "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end")


def section(bench, rows, command):
    e = bench.extra
    quick = bench.a.quick
    L = []
    L.append(SECTION)
    L.append("")
    L.append("`tools/bench/throughput.py` (one command, as root, from the source tree; "
             "`--quick` for a short check):")
    L.append("")
    L.append(f"    {command}")
    L.append("")
    L.append("podgate and `dpdk-testpmd` each forward between two `net_memif` servers; "
             "`podgate-gen` (tools/trafficgen) opens the client side of both, sends to the "
             "service VIPs on one and receives at the \"Pods\" on the other.  CPUs: "
             f"{bench.layout.describe()} (`--cores`); the generator is one lcore that sends and "
             "receives.  "
             f"Memory: {bench.memory.describe()}.  Each case runs {bench.seconds:g} s of "
             "sending; figures are packets received at the Pod side per second.  The generator "
             "counts without checking (`--no-check`) in the throughput cases on both sides so "
             "that each ratio costs it the same.  testpmd io runs at the start and again at the end; "
             "each ratio divides by the better of the two io figures for that frame size.  The \"checked\" and churn rows check every "
             "packet (right Pod and port, checksums, TTL / hop limit, source kept, no moved "
             "flow).  64-byte "
             "frames are UDP (a stamped TCP frame needs 70 bytes); the SYN flood uses 70-byte "
             "SYNs, each from a client address:port never used before in the run.  podgate is "
             "dual-stack in every case (both services have an IPv4 and an IPv6 VIP), and each "
             "IPv4 established case is followed by its IPv6 twin (`podgate-gen --ipv6`: IPv6 "
             "clients to the IPv6 VIP, IPv6 Pods).  A 64-byte frame cannot carry IPv6 + UDP + "
             f"the generator's 16-byte stamp, so the IPv6 twin of a 64-byte case uses "
             f"{MIN_UDP6_FRAME}-byte frames, the smallest that can, and its ratio divides by "
             f"testpmd io forwarding the same IPv6 {MIN_UDP6_FRAME}-byte frames (the generator's "
             "own limit with them, a row of its own).")
    L.append("")
    L.append(f"Machine: {machine()}.  {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC.  "
             "Ratios measured in one run are the figures to read: on a shared machine (the "
             "2-vCPU VM), repeat runs move the absolute figures by 10-30%.")
    if quick:
        L.append("")
        L.append("**This is a `--quick` run (1 s per case, fewer cases): a check that the "
                 "script works, not a measurement.**")
    L.append("")
    L.append("| case | flows | frame | Mpps | Gbit/s | ratio to testpmd io | loss | p50 / p99 one-way µs |")
    L.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        flows = r["flows"] if isinstance(r["flows"], str) else f"{r['flows']:,}"
        name = f"{r['kind']} {r['mode']}"
        ratio = f"**{r['ratio_to_io']:.2f}**" if r["ratio_to_io"] != "" else "–"
        proto = r["proto"] + ("/IPv6" if r.get("family") == "IPv6" else "")
        L.append(f"| {name} | {flows} | {r['frame_size']} B {proto} | {fmt_pps(r['rx_pps'])} | "
                 f"{r['gbps']:.2f} | {ratio} | {r['loss_pct']:.3f}% | {r['p50_us']} / {r['p99_us']} |")
    L.append("")
    if any((r["ratio_to_io"] or 0) > 1.05 for r in rows if r["kind"] == "podgate"):
        L.append("**Noise warning:** in this run some podgate rows exceed testpmd io on the "
                 "same path, which a forwarder doing more work than io cannot do on a quiet "
                 "machine: the io runs landed in busier moments (other jobs share both vCPUs).  "
                 "Ratios above 1 are noise, and the others are uncertain by as much.")
        L.append("")
    plot = ("" if bench.a.no_plot else
            "; plot: `docs/bench/throughput.png` (gnuplot, the Debian package `gnuplot-nox`, "
            "which the script installs with apt-get when missing)")
    L.append(f"CSV: `docs/bench/throughput.csv`{plot}.  "
             "Loss at full rate is what the generator offered and the forwarder did not "
             "deliver (rings full); it is not asserted.")
    L.append("")
    if not bench.a.no_plot:
        L.append("![throughput](bench/throughput.png)")
        L.append("")

    # IPv4 and IPv6 side by side.
    pairs = []
    for r4 in rows:
        if r4["kind"] != "podgate" or r4.get("family", "IPv4") != "IPv4" or \
                r4["mode"] not in ("established", "established, checked"):
            continue
        twin = [r for r in rows if r.get("family") == "IPv6" and r["mode"] == r4["mode"]
                and r["flows"] == r4["flows"] and r.get("io_size") == r4.get("io_size")]
        if twin:
            pairs.append((r4, twin[0]))
    if pairs:
        L.append("**IPv4 and IPv6 side by side** (same run, same podgate config; "
                 "`established, checked` rows run at half the rate just measured, so their "
                 "figures follow the rate, not the forwarder"
                 + ("; the first IPv4 case ran under `perf record` for the profile below"
                    if e.get("perf") else "") + "):")
        L.append("")
        L.append("| case | flows | IPv4 frame | IPv4 Mpps | IPv6 frame | IPv6 Mpps | IPv6 / IPv4 | "
                 "IPv6 violations | packets without a flow entry (table full), IPv4 / IPv6 |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for r4, r6 in pairs:
            ratio = f"{r6['rx_pps'] / r4['rx_pps']:.2f}" if r4["rx_pps"] else "–"
            L.append(f"| {r4['mode']} | {r4['flows']:,} | {r4['frame_size']} B {r4['proto']} | "
                     f"{fmt_pps(r4['rx_pps'])} | {r6['frame_size']} B {r6['proto']} | "
                     f"{fmt_pps(r6['rx_pps'])} | {ratio} | {r6['violations']} | "
                     f"{r4.get('table_full', 0):,} / {r6.get('table_full', 0):,} |")
        L.append("")

    # Churn.
    ch = e.get("churn", {})
    if ch:
        no, yes = ch["no churn"], ch["churn 10/s"]
        L.append("**Endpoint churn.**  Established TCP flows (1,000, 512-byte frames, at "
                 f"{int(yes['row']['tx_pps']):,} pps, every packet checked) while the web "
                 "service's endpoints cycle every 100 ms through: 4 Pods; 4 + 2 ready; 4 + 1 "
                 "ready + 1 draining (ready=false, serving=true, terminating=true).  Each step "
                 "rewrites the config file and sends SIGHUP.  All flows open (SYN) in the first "
                 "milliseconds, before the first update, so every flow is on a base Pod and "
                 "must stay there; one churn Pod sorts before the base Pods and one after, so "
                 "endpoint positions shift on every update.")
        L.append("")
        L.append("| run | updates applied | packets sent | lost | flows moved | violations | "
                 "flows on churn Pods | worker: snapshots adopted, flows revalidated, endpoint gone "
                 "| podgate drops | uplink imissed |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for name, c in (("no churn", no), ("churn 10/s", yes)):
            drops = ", ".join(f"{k} {v}" for k, v in c["drops"].items()) or "none"
            imissed = c["ports"].get("uplink", {}).get("imissed", "n/a")
            L.append(f"| {name} | {c['updates']} (refused {c['refused']}) | {c['sent']:,} | "
                     f"{c['lost']} | {c['moved']} | {c['violations']} | {c['flows_on_churn_pods']} | "
                     f"{c['adopted']}, {c['revalidated']}, {c['endpoint_gone']} | {drops} | {imissed} |")
        L.append("")

    # Responsiveness.
    rs = e.get("responsiveness")
    if rs:
        def ctl(v):
            return (f"p50 {percentile(v, 0.5):.2f} ms, p99 {percentile(v, 0.99):.2f} ms, "
                    f"max {max(v):.2f} ms ({len(v)} requests)")

        def dns(d):
            return (f"{d['completed']:,} of {d['sent']:,} answered, {d['lost']} lost, "
                    f"average {d['avg_ms']:.2f} ms, max {d['max_ms']:.2f} ms")
        L.append("**DNS and control while the worker is saturated.**  podgate with a kernel "
                 "UDP DNS listener on 127.0.0.1; `dnsperf -Q 1000 -c 1` asks "
                 f"`{DNS_ZONE_NAME} A` (a single `dig` answered `{rs['dig']}`), and "
                 "`status` requests go one at a time over the control socket (10 ms apart), "
                 "first idle, then while the generator sends 64-byte UDP as fast as it can "
                 f"(worker delivering {rs['busy_rx_pps'] / 1e6:.2f} Mpps).  The control thread "
                 "shares CPU 0 with the busy-polling generator, so what is measured is mostly "
                 "the Linux scheduler's time slice on that CPU.")
        L.append("")
        L.append("| | control `status` round trip | DNS (dnsperf, 1000 qps) |")
        L.append("|---|---|---|")
        L.append(f"| idle | {ctl(rs['idle_control'])} | {dns(rs['idle_dns'])} |")
        L.append(f"| worker saturated | {ctl(rs['busy_control'])} | {dns(rs['busy_dns'])} |")
        L.append("")

    # Targets.
    L.append("**Targets (issue 9).**")
    L.append("")
    io = {r["frame_size"]: r for r in rows if r["kind"] == "testpmd" and r["mode"] == "io"}
    est = [r for r in rows if r["kind"] == "podgate" and r["mode"] == "established"
           and r.get("family", "IPv4") == "IPv4"]
    if est:
        worst = min(est, key=lambda r: r["ratio_to_io"] or 0)
        ok = all((r["ratio_to_io"] or 0) >= 0.95 for r in est)
        L.append(f"- Established flows at ≥ 0.95× testpmd io: **{'met' if ok else 'missed'}**; "
                 f"lowest ratio {worst['ratio_to_io']:.2f} ({label(worst)}), ratios "
                 + ", ".join(f"{label(r)} {r['ratio_to_io']:.2f}" for r in est) + ".")
        if e.get("perf"):
            L.append(f"  Why: `perf record -e cpu-clock -t <worker thread>` during the "
                     f"{e['perf_case']} run (a software clock), "
                     "share of the worker core's samples: "
                     + "; ".join(f"{pct:.1f}% {sym}" for pct, sym in e["perf"]["symbols"][:12])
                     + ".  By object: "
                     + ", ".join(f"{pct:.1f}% {dso}" for pct, dso in e["perf"]["dsos"]) + ".  "
                     "`expire_some`, `now_ms` and `poll_once` are mostly the loop polling with "
                     "nothing received: the larger their share, the more the worker waited for "
                     "packets, i.e. the generator rather than podgate set the rate.")
    wb = e.get("worker_bench")
    if wb:
        # A Pod's reply is an established packet too (BM_Reply).  The two
        # workers' cases (BM_Established2Steered, ..., BM_Established6_2Steered)
        # have a line of their own.
        two_c = {k: v for k, v in wb.items() if "2Steered" in k or "2Handoff" in k}
        est_c = {k: v for k, v in wb.items()
                 if k.startswith(("BM_Established", "BM_Reply")) and k not in two_c}
        new_c = {k: v for k, v in wb.items() if k.startswith("BM_NewFlow")}
        ins = e.get("worker_instructions", {})

        def cyc(d):
            parts = []
            for k, v in sorted(d.items()):
                case = "/".join(k.split("/")[:2])
                i = f" ({ins[case]} instructions)" if case in ins else ""
                # BM_Established (IPv4) and BM_Established6 side by side.
                parts.append(f"{k.split('/')[0]} {k.split('/')[1]} {v['own']:.0f}{i}")
            return ", ".join(parts)
        if est_c:
            ok = all(v["own"] < 100 for v in est_c.values())
            L.append(f"- podgate's own work < 100 cycles per established packet "
                     f"(worker_bench, own cycles = podgate − io): **{'met' if ok else 'missed'}**: "
                     f"{cyc(est_c)} cycles"
                     + (" (own instructions/packet from callgrind beside each; aim ≤ 200)." if ins
                        else " (aim ≤ 200 own instructions: `--cases instructions`, or "
                             "tools/bench/worker_instructions.py, where valgrind is installed)."))
        if new_c:
            ok = all(v["own"] < 300 for v in new_c.values())
            L.append(f"- < 300 cycles per new-flow packet: **{'met' if ok else 'missed'}**: "
                     f"{cyc(new_c)} cycles (aim ≤ 400 instructions).")
        if two_c:
            L.append(f"- Two workers polled in turn on one core, a burst of 32 each (RSS-steered: "
                     f"each gets its own flows; handoff: any flows, half handed to the other): "
                     f"{cyc(two_c)} own cycles per packet.  Not a target: on one core the two "
                     f"workers' tables share its caches; the instructions are the figure to "
                     f"compare with one worker's.")
        L.append(f"  (`{e['worker_bench_cmd']}`, medians.)")
    syn = [r for r in rows if r["mode"] == "SYN flood"]
    if syn:
        s = syn[0]
        ok = s["rx_pps"] >= 2e6
        L.append(f"- ≥ 2M new connections per second per worker: **{'met' if ok else 'missed'}**: "
                 f"{s['rx_pps'] / 1e6:.2f} M SYNs/s forwarded (offered {s['tx_pps'] / 1e6:.2f} M/s, "
                 f"{s.get('flows_created', 0):,} connections created, "
                 f"{s.get('table_full', 0):,} forwarded by Maglev alone with the table full).")
    big = [r for r in est if r["flows"] == 1_000_000]
    if big:
        b = big[0]
        ok = b["table_bytes_per_flow"] <= 64
        c = e.get(f"counters_1000000_{b['frame_size']}", {})
        L.append(f"- 1M concurrent flows per worker at ≤ 64 bytes per flow: "
                 f"**{'met' if ok else 'missed'}**: 1M flows ran (connections in the worker's "
                 f"table at the end: {c.get('flow_entries', 'n/a'):,}), in a table for "
                 f"{int(b['notes'].split()[-1]):,} connections (32-byte records, a 64-byte "
                 f"index bucket per 3, the half-open queue) = {b['table_bytes_per_flow']:.1f} "
                 f"bytes per flow.")
    sc = e.get("scaling")
    if sc:
        one = sc[0]["rx_pps"] if sc[0]["workers"] == 1 else None
        L.append("")
        L.append("**Workers** (established, 100,000 flows, 64-byte UDP). \"no RSS (handoff)\": "
                 "the generator sends on one memif queue, so packets reach their owner by "
                 "handoff. \"RSS-steered\": the generator sends each flow on its owner's queue "
                 "(`podgate-gen --steer-workers`), as a NIC with RSS on the client's fields "
                 "would, and podgate's uplink says so (`steered_by_peer`), so its workers "
                 "take those queues' packets as their own, as from such a NIC:")
        L.append("")
        L.append("| workers | mode | Mpps | × one worker | handed off | CPUs |")
        L.append("|---|---|---|---|---|---|")
        for r in sc:
            times = f"{r['rx_pps'] / one:.2f}" if one else "–"
            share = f"{100 * r['handoff'] / r['rx']:.0f}%" if r["rx"] else "–"
            L.append(f"| {r['workers']} | {r.get('mode', 'no RSS (handoff)')} | "
                     f"{r['rx_pps'] / 1e6:.3f} | {times} | {share} | {r['layout']} |")
    if ch:
        yes = ch["churn 10/s"]
        no = ch["no churn"]
        # tx_full: podgate's pods-port ring was full because the generator,
        # sharing CPU 0, did not empty it in time; it happens without
        # updates too.  Any other lost packet is counted against updates.
        tx_full = yes["drops"].get("tx_full", 0)
        attributable = max(0, yes["lost"] - tx_full)
        ok = attributable == 0 and yes["moved"] == 0 and yes["violations"] == 0
        L.append(f"- Zero loss attributable to updates: **{'met' if ok else 'missed'}**: "
                 f"{yes['updates']} updates, {yes['moved']} flows moved, {yes['lost']} packets "
                 f"lost with churn vs {no['lost']} without; of those with churn "
                 f"{tx_full} were podgate `tx_full` drops (the generator on the shared CPU 0 "
                 f"did not drain the memif ring in time, as in the run without updates: "
                 f"{no['drops'].get('tx_full', 0)}), {attributable} other.")
    L.append("")
    return "\n".join(L)


def replace_section(doc, text):
    content = doc.read_text() if doc.exists() else ""  # a new page: the section alone
    start = content.find(SECTION + "\n")
    if start < 0:
        content = content.rstrip("\n") + "\n\n" + text + "\n"
    else:
        nxt = content.find("\n## ", start + len(SECTION))
        tail = content[nxt + 1:] if nxt >= 0 else ""
        content = content[:start] + text + ("\n" + tail if tail else "")
    doc.write_text(content)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="meson build directory (default build)")
    ap.add_argument("--quick", action="store_true", help="a short run that checks the script")
    ap.add_argument("--seconds", type=float, default=4.0, help="sending time per case (default 4)")
    ap.add_argument("--no-huge", action="store_true", help="4 KiB pages even if hugepages are free")
    ap.add_argument("--cores", default="0-1",
                    help="CPUs to use (default 0-1): the generator on the first, the forwarder's "
                         "control thread on the second if the workers fit on the rest, the "
                         "workers one per CPU after it, e.g. --cores 2-15")
    ap.add_argument("--workers", default="",
                    help="also measure podgate with these worker counts, e.g. 1,2,4,8 "
                         "(the scaling table)")
    ap.add_argument("--out-dir", default=str(ROOT / "docs" / "bench"),
                    help="where throughput.csv and throughput.png go (default docs/bench)")
    ap.add_argument("--doc", default=str(ROOT / "docs" / "benchmarks.md"),
                    help="the Markdown page whose section is rewritten")
    ap.add_argument("--print-only", action="store_true",
                    help="print the section instead of rewriting --doc")
    ap.add_argument("--bundle", default=None,
                    help="run podgate, podgate-gen, dpdk-testpmd and worker_bench from this "
                         "folder made by ../shared/tools/bundle-dpdk-run (a machine without DPDK)")
    ap.add_argument("--cases", default=",".join(CASES),
                    help="what to run, a comma list of " + ", ".join(CASES) + " (default all)")
    ap.add_argument("--flows", default="",
                    help="flow counts of the established cases (default 1000,100000,1000000)")
    ap.add_argument("--sizes", default="",
                    help="frame sizes of the testpmd and established cases (default 64,512,1500)")
    ap.add_argument("--worker-bench-filter", default="",
                    help="worker_bench's --benchmark_filter (default: every case; --quick: 10k flows)")
    ap.add_argument("--no-plot", action="store_true",
                    help="no throughput.png (and no apt-get for gnuplot)")
    a = ap.parse_args()
    given = {c for c in a.cases.split(",") if c}
    if given - set(CASES):
        sys.exit(f"throughput: unknown --cases {', '.join(sorted(given - set(CASES)))} "
                 f"(known: {', '.join(CASES)})")
    a.cases = given
    try:
        a.flows = [int(n) for n in a.flows.split(",") if n]
        a.sizes = [int(n) for n in a.sizes.split(",") if n]
    except ValueError:
        sys.exit("throughput: --flows and --sizes are comma lists of numbers")
    if any(n < 1 for n in a.flows):
        sys.exit("throughput: --flows must be positive flow counts")
    if any(n < 64 or n > 1500 for n in a.sizes):
        sys.exit("throughput: --sizes must be frame sizes from 64 to 1500")
    if os.geteuid() != 0:
        if a.bundle is None:
            sys.exit("throughput: run as root (DPDK, hugepages)")
        log("not root: trying anyway (4 KiB pages unless hugepages are free)")
    needed = ["taskset"]
    if a.bundle is None and a.cases & {"baseline"}:
        needed.append("dpdk-testpmd")
    if "responsiveness" in a.cases:
        needed.append("dnsperf")
    for tool in needed:
        if shutil.which(tool) is None:
            sys.exit(f"throughput: {tool} not found (Debian: dpdk, dnsperf, util-linux)")
    bench = Bench(a)
    rows = bench.run()
    out = pathlib.Path(a.out_dir)
    write_csv(rows, out / "throughput.csv")
    if not a.no_plot:
        write_plot(rows, str(out / "throughput.png"), bench.dir)
    command = ("tools/bench/throughput.py " +
               (f"--bundle {a.bundle}" if a.bundle else f"--build {a.build}") +
               (" --quick" if a.quick else "") +
               (f" --cores {a.cores}" if a.cores != "0-1" else "") +
               (f" --workers {a.workers}" if a.workers else "") +
               (f" --cases {','.join(c for c in CASES if c in a.cases)}"
                if a.cases != set(CASES) else "") +
               (f" --flows {','.join(map(str, a.flows))}" if a.flows else "") +
               (f" --sizes {','.join(map(str, a.sizes))}" if a.sizes else ""))
    text = section(bench, rows, command)
    with open(out / "throughput-extra.json", "w") as f:
        json.dump(bench.extra, f, indent=1, default=str)
    if a.print_only:
        print(text)
    else:
        replace_section(pathlib.Path(a.doc), text)
        log(f"wrote {a.doc} ({SECTION[3:]}), {out / 'throughput.csv'}, {out / 'throughput.png'}")
    print(text if not a.print_only else "", end="")
    shutil.rmtree(bench.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
