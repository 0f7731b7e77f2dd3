#!/usr/bin/env python3
"""Scale benchmark (issue 14), not a test: podgate with many services.

Generates a config of N services (default 10,000) x 2 ports x 10 endpoints,
then against a real podgate (net_null ports, run as root; DPDK memory from
`--no-huge`, or with --hugepages from 2 MiB hugepages, as an appliance runs):

  check    `podgate --check`: wall time and the memory report;
  start    from exec to the "running:" log line (config read, validated,
           first snapshot built and published, ports and workers up),
           and from exec to the first snapshot's log line;
  replies  `services`, `stats`, `config dump` over the control socket:
           bytes and time (they used to exceed the 4 MiB reply limit);
  long     DNS latency (as below) while one client asks `stats`, then
           `config dump`, then scrapes GET /metrics, back to back: the long
           replies (and the scrape) are written a piece per loop turn, so
           DNS is answered between the pieces;
  scrape   one GET /metrics: bytes and time;
  dns      DNS latency over UDP at a steady rate (one query at a time, as
           a stub resolver does; names of random services), first with the
           control socket idle, then while `endpoint set` changes stream in
           (CHANGES per second): p50, p99, max;
  change   the time one `endpoint set` takes, round trip.

Usage (root, from the source tree):
  tools/bench/scale_bench.py [--build build] [--services 10000] [--seconds 10]
                             [--qps 500] [--changes 20] [--cpu 1]
                             [--hugepages]
Prints a table; nothing is compared against a threshold (machines are
shared and noisy: see docs/benchmarks.md for measured figures).
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def make_config(tmp, services, dns_port, metrics_port, memory_mb, prefix, hugepages=False):
    memory = '"--in-memory"' if hugepages else '"--no-huge", "--no-shconf"'
    lines = [f"""[eal]
args = [{memory}, "-m", "{memory_mb}", "--no-pci", "-l", "0-1",
        "--file-prefix", "{prefix}"]
[dataplane]
flow_table_size = 4096
[[ports]]
name = "uplink"
device = "net_null0"
address = "192.0.2.1/24"
[[ports]]
name = "pods"
device = "net_null1"
address = "172.16.0.1/12"
[dns]
listen = ["127.0.0.1:{dns_port}"]
[metrics]
listen = "127.0.0.1:{metrics_port}"
[control]
socket = "{tmp}/control.sock"
"""]
    for i in range(services):
        vip = 0x0a600000 + i + 1
        eps = []
        for j in range(10):
            ip = 0xac110000 + i * 10 + j + 2
            eps.append('{ ip = "%s", pod = "svc-%d-%d" }' % (socket.inet_ntoa(struct.pack("!I", ip)), i, j))
        lines.append(f"""[[services]]
namespace = "default"
name = "svc-{i}"
cluster_ip = "{socket.inet_ntoa(struct.pack('!I', vip))}"
ports = [ {{ name = "http", port = 80, target_port = 8080 }}, {{ name = "https", port = 443, target_port = 8443 }} ]
endpoints = [ {", ".join(eps)} ]
""")
    path = os.path.join(tmp, "scale.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


class Control:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""

    def ask(self, **req):
        self.sock.sendall((json.dumps(req) + "\n").encode())
        chunks = [self.buf]
        while b"\n" not in chunks[-1]:  # a reply is one line: look at new bytes only
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("control socket closed")
            chunks.append(chunk)
        line, self.buf = b"".join(chunks).split(b"\n", 1)
        return line


def ask_back_to_back(path, request, stop, results):
    """Asks `request` again and again until `stop`; puts [(seconds, bytes)]."""
    c = Control(path)
    times = []
    while not stop.is_set():
        t = time.monotonic()
        r = c.ask(**request)
        if b'"ok":true' not in r[:65536] and b'"ok":true' not in r[-4096:]:
            print(f"{request['command']} failed: {r[:200]!r}", file=sys.stderr)
        times.append((time.monotonic() - t, len(r)))
    results.put(times)


def scrape(port):
    """One GET /metrics: its body, and whether it came whole."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=300) as r:
        try:
            return r.read(), True
        except http.client.IncompleteRead as e:  # closed before the Content-Length
            return e.partial, False


def scrape_back_to_back(port, stop, results):
    """Scrapes /metrics again and again until `stop`; puts [(seconds, bytes)]."""
    times = []
    while not stop.is_set():
        t = time.monotonic()
        body, _ = scrape(port)
        times.append((time.monotonic() - t, len(body)))
    results.put(times)


def dns_query(name, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", 1, 1)


def dns_latencies(port, services, seconds, qps):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    lat = []
    lost = 0
    qid = 0
    period = 1.0 / qps
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < end:
        qid = (qid + 1) & 0xffff
        name = f"svc-{random.randrange(services)}.default.svc.cluster.local"
        t0 = time.monotonic()
        s.sendto(dns_query(name, qid), ("127.0.0.1", port))
        try:
            while True:
                data = s.recv(4096)
                if struct.unpack("!H", data[:2])[0] == qid:
                    break
            lat.append(time.monotonic() - t0)
        except socket.timeout:
            lost += 1
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    lat.sort()
    return lat, lost


def over(v, ms):
    """How many of the latencies `v` (seconds) exceed `ms`: a stalled loop
    delays few queries of a one-at-a-time client, so p99 hides it."""
    return sum(1 for x in v if x * 1000 > ms)


def pct(v, p):
    return v[min(len(v) - 1, int(len(v) * p))] * 1000 if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--qps", type=int, default=500)
    ap.add_argument("--changes", type=float, default=20, help="endpoint changes per second")
    ap.add_argument("--memory", type=int, default=1024, help="EAL -m, MB")
    ap.add_argument("--hugepages", action="store_true",
                    help="DPDK memory from 2 MiB hugepages (mounted, and at least --memory "
                         "MB of them free) instead of --no-huge")
    ap.add_argument("--cpu", default="1", help="taskset CPU list for podgate")
    ap.add_argument("--dns-port", type=int, default=5320)
    ap.add_argument("--metrics-port", type=int, default=5321)
    a = ap.parse_args()
    binary = os.path.join(ROOT, a.build, "control", "podgate")
    tmp = tempfile.mkdtemp(prefix="pgscale-")
    config = make_config(tmp, a.services, a.dns_port, a.metrics_port, a.memory, "pgscale",
                         a.hugepages)
    print(f"config: {config} ({os.path.getsize(config) >> 10} KiB, {a.services} services x 2 ports x 10 endpoints)")

    t0 = time.monotonic()
    chk = subprocess.run([binary, "--check", "-c", config], capture_output=True, text=True)
    print(f"check: {(time.monotonic() - t0) * 1000:.0f} ms, exit {chk.returncode}: "
          f"{(chk.stdout + chk.stderr).strip()}")

    log_path = os.path.join(tmp, "podgate.log")
    log = open(log_path, "w")
    t0 = time.monotonic()
    proc = subprocess.Popen(["taskset", "-c", a.cpu, binary, "-c", config], stdout=log,
                            stderr=subprocess.STDOUT)
    published = running = None
    try:
        while time.monotonic() - t0 < 120:
            text = open(log_path).read()
            if published is None and "published snapshot" in text:
                published = time.monotonic() - t0
            if "running:" in text:
                running = time.monotonic() - t0
                break
            if proc.poll() is not None:
                sys.exit("podgate exited:\n" + text)
            time.sleep(0.01)
        print(f"start: first snapshot published at {published * 1000:.0f} ms, "
              f"running at {running * 1000:.0f} ms (exec to log line)")

        ctl = Control(os.path.join(tmp, "control.sock"))
        for cmd, extra in (("services", {}), ("stats", {}), ("config", {"action": "dump"})):
            t = time.monotonic()
            reply = ctl.ask(command=cmd, **extra)
            ok = json.loads(reply).get("ok")
            print(f"reply {cmd}: ok={ok}, {len(reply) >> 10} KiB in {(time.monotonic() - t) * 1000:.0f} ms")
        t = time.monotonic()
        body, whole = scrape(a.metrics_port)
        lines = body.count(b"\n")
        print(f"scrape /metrics: {'whole' if whole else 'CUT SHORT'}, {len(body) >> 10} KiB, {lines} lines, "
              f"in {(time.monotonic() - t) * 1000:.0f} ms")

        lat, lost = dns_latencies(a.dns_port, a.services, a.seconds, a.qps)
        print(f"dns idle: {len(lat)} answers, {lost} lost, p50 {pct(lat, .5):.2f} ms, "
              f"p99 {pct(lat, .99):.2f} ms, max {lat[-1] * 1000 if lat else 0:.2f} ms, "
              f"{over(lat, 50)} over 50 ms")

        # DNS while long replies are written: another process asks `stats`
        # (then `config dump`) back to back for the whole phase.  (A process,
        # not a thread: joining a 36 MB reply holds Python's GIL for
        # milliseconds, which the DNS timer here would count.)  Before
        # issue 14's streamed replies each one held the control thread for
        # seconds.
        sock = os.path.join(tmp, "control.sock")
        for label, target, args in (
                ("stats", ask_back_to_back, (sock, {"command": "stats"})),
                ("config dump", ask_back_to_back, (sock, {"command": "config", "action": "dump"})),
                ("GET /metrics", scrape_back_to_back, (a.metrics_port,))):
            stop = multiprocessing.Event()
            results = multiprocessing.Queue()
            reader = multiprocessing.Process(target=target, args=(*args, stop, results))
            reader.start()
            try:
                lat, lost = dns_latencies(a.dns_port, a.services, a.seconds, a.qps)
            finally:
                stop.set()
                reply_times = results.get(timeout=120)
                reader.join()
            times = sorted(t for t, _ in reply_times)
            print(f"dns while `{label}` is asked back to back: {len(lat)} answers, {lost} lost, "
                  f"p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f} ms, "
                  f"max {lat[-1] * 1000 if lat else 0:.2f} ms, {over(lat, 50)} over 50 ms; "
                  f"{len(times)} replies of "
                  f"{(reply_times[0][1] >> 10) if reply_times else 0} KiB, "
                  f"p50 {pct(times, .5):.0f} ms each")

        stop = threading.Event()
        change_times = []

        def churn():
            c = Control(os.path.join(tmp, "control.sock"))
            weight = 1
            while not stop.is_set():
                i = random.randrange(a.services)
                ip = socket.inet_ntoa(struct.pack("!I", 0xac110000 + i * 10 + 2))
                weight = 3 - weight
                t = time.monotonic()
                r = json.loads(c.ask(command="endpoint", action="set", name=f"default/svc-{i}",
                                     ip=ip, weight=weight))
                change_times.append(time.monotonic() - t)
                if not r.get("ok"):
                    print("change refused:", r, file=sys.stderr)
                time.sleep(1.0 / a.changes)

        th = threading.Thread(target=churn)
        th.start()
        try:
            lat, lost = dns_latencies(a.dns_port, a.services, a.seconds, a.qps)
        finally:
            stop.set()
            th.join()
        change_times.sort()
        print(f"dns while {a.changes:g} changes/s stream in: {len(lat)} answers, {lost} lost, "
              f"p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f} ms, "
              f"max {lat[-1] * 1000 if lat else 0:.2f} ms, {over(lat, 50)} over 50 ms")
        print(f"change (endpoint set, round trip): {len(change_times)} changes, "
              f"p50 {pct(change_times, .5):.2f} ms, p99 {pct(change_times, .99):.2f} ms")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


if __name__ == "__main__":
    main()
