#!/usr/bin/env python3
"""DNS-flood benchmark (issue 15), not a test: how the control thread
holds up while one client floods the DNS VIP through the dataplane.

podgate runs on net_tap (tools/netlab.py: a client namespace, a Pods
namespace).  The flooder is dnsperf in the client namespace, sending to the
DNS VIP as fast as it can (-Q, from one source address), for `--seconds`.
Meanwhile, and in a quiet run before it, this measures:

  control   `status` round trips on the control socket (ms);
  metrics   GET /metrics (ms);
  victim    another client (198.51.100.7, behind the client's router)
            asking the VIP one query at a time, as a stub resolver does:
            answered share and latency (ms);

and reports what podgate counted: queries punted (answered by the control
thread), dropped by the per-source limit (dns_rate_limited, [dns]
rate_limit), and dropped at the punt ring (punt_full).  Run it with the
default rate limit, then with --rate-limit 0 to see what the limit buys.

Usage (root, from the source tree):
  tools/bench/dns_flood.py [--seconds 10] [--flood-qps 200000] [--rate-limit 1000]
Prints a table; nothing is compared against a threshold (machines are
shared and noisy: docs/benchmarks.md has measured figures).
"""
import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import netlab  # noqa: E402

VICTIM = "198.51.100.7"
NAME = "web.default.svc.cluster.local"


def query(name, qid):
    """A DNS query for `name` A (RFC 1035 §4.1)."""
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", 1, 1)


VICTIM_SCRIPT = """
import socket, struct, sys, time, json
q = bytes.fromhex(sys.argv[1]); seconds = float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("{victim}", 0)); s.settimeout(0.5)
times = []; lost = 0; end = time.time() + seconds
while time.time() < end:
    t0 = time.perf_counter(); s.sendto(q, ("{vip}", 53))
    try:
        s.recv(4096); times.append((time.perf_counter() - t0) * 1e3)
    except socket.timeout:
        lost += 1
    time.sleep(0.02)
print(json.dumps({{"times": times, "lost": lost}}))
"""


def percentiles(xs):
    if not xs:
        return "-"
    xs = sorted(xs)
    p = lambda f: xs[min(len(xs) - 1, int(f * len(xs)))]  # noqa: E731
    return f"{statistics.median(xs):.2f} / {p(0.99):.2f} / {xs[-1]:.2f}"


def control_times(app, seconds):
    times = []
    end = time.time() + seconds
    client = netlab.ControlClient(app.socket_path, timeout=5)
    try:
        while time.time() < end:
            t0 = time.perf_counter()
            client.ask({"command": "status"})
            times.append((time.perf_counter() - t0) * 1e3)
            time.sleep(0.02)
    finally:
        client.close()
    return times


def metrics_times(port, seconds):
    times = []
    end = time.time() + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            r.read()
        times.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.1)
    return times


def victim(app, seconds):
    import json
    script = VICTIM_SCRIPT.format(victim=VICTIM, vip=netlab.DNS_VIP)
    out = netlab.ns_exec(app.client_ns, "python3", "-c", script, query(NAME, 7).hex(),
                         str(seconds), timeout=seconds + 30).stdout
    return json.loads(out)


def counters(app):
    stats = app.ask({"command": "stats"})
    total = {"punted": 0, "dns_rate_limited": 0, "punt_full": 0}
    for w in stats["workers"]:
        total["punted"] += w["counters"]["punted"]
        total["dns_rate_limited"] += w["drops"]["dns_rate_limited"]
        total["punt_full"] += w["drops"]["punt_full"]
    total["answered"] = stats["dns"]["queries"]["dataplane"]
    return total


def measure(app, metrics_port, seconds):
    res = {}
    threads = [
        threading.Thread(target=lambda: res.__setitem__("control", control_times(app, seconds))),
        threading.Thread(target=lambda: res.__setitem__("metrics", metrics_times(metrics_port, seconds))),
        threading.Thread(target=lambda: res.__setitem__("victim", victim(app, seconds))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--flood-qps", type=int, default=200000)
    ap.add_argument("--rate-limit", type=int, default=None,
                    help="[dns] rate_limit for this run (default: podgate's default)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("dns_flood: run as root (network namespaces)")
    metrics_port = netlab.DNS_PORT + 1  # below the ephemeral ports, as netlab's
    app = netlab.Appliance("pgflood", metrics_port=metrics_port)
    services = netlab.service_toml("default", "web", "10.96.0.20", [("http", 80, 8080, "TCP")],
                                   [netlab.endpoint("172.17.0.10", "web-0")])
    if args.rate_limit is not None:
        original = app.base_config
        app.base_config = lambda: original().replace(
            f'service_ip = "{netlab.DNS_VIP}"',
            f'service_ip = "{netlab.DNS_VIP}"\nrate_limit = {args.rate_limit}')
    app.start(services, {"web-0": "172.17.0.10"})
    rows = []
    try:
        before = counters(app)
        quiet = measure(app, metrics_port, args.seconds)
        mid = counters(app)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(f"{NAME} A\n")
            queries = f.name
        flood = subprocess.Popen(
            ["ip", "netns", "exec", app.client_ns, "dnsperf", "-s", netlab.DNS_VIP, "-d", queries,
             "-l", str(args.seconds + 2), "-Q", str(args.flood_qps), "-c", "4", "-q", "60000", "-t", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1)
        loud = measure(app, metrics_port, args.seconds)
        flood_out = flood.communicate(timeout=args.seconds + 60)[0]
        after = counters(app)
        os.unlink(queries)
        for label, r, c0, c1 in (("quiet", quiet, before, mid), ("flood", loud, mid, after)):
            v = r["victim"]
            asked = len(v["times"]) + v["lost"]
            rows.append([label, percentiles(r["control"]), percentiles(r["metrics"]),
                         f"{len(v['times'])}/{asked}", percentiles(v["times"]),
                         c1["answered"] - c0["answered"], c1["dns_rate_limited"] - c0["dns_rate_limited"],
                         c1["punt_full"] - c0["punt_full"]])
        sent = [l for l in flood_out.split("\n") if "Queries sent" in l or "Queries per second" in l]
    finally:
        app.stop()
    limit = args.rate_limit if args.rate_limit is not None else "default (1000)"
    print(f"DNS VIP flood, {args.seconds:.0f} s, dnsperf -Q {args.flood_qps} from one client, "
          f"[dns] rate_limit {limit}")
    for line in sent:
        print("  dnsperf:" + line.strip())
    print("| run | control status p50/p99/max ms | /metrics p50/p99/max ms | victim answered | "
          "victim p50/p99/max ms | answered by podgate | dns_rate_limited | punt_full |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")


if __name__ == "__main__":
    main()
