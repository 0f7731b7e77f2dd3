#!/usr/bin/env python3
"""End to end: endpoint churn under live traffic over net_memif (issue 5).

podgate-gen sends established TCP flows (and checks every packet and every
reply) while the service's endpoints change several times a second: the
config file is rewritten and podgate gets SIGHUP.  The changes only touch
extra Pods that no checked flow uses, on the same service the flows are on:

  phase 0: the 3 base Pods
  phase 1: base + 2 extra Pods, ready
  phase 2: base + extra Pod A draining (ready=false, serving=true,
           terminating=true) + extra Pod B ready

Every flow opens (SYN) before the first update, when only the base Pods
exist, so each is pinned to a base Pod; the base Pods never leave, so
podgate must keep every flow where it is (a flow moves only when its own
Pod leaves).  Extra Pod A's address sorts before the base Pods and B's
after, so every update shifts endpoint positions in the service.  The
assertion is exact: zero loss, zero moved flows, zero violations, every
reply back, no checked flow on an extra Pod.  A last run checks that the
updates really took effect: new flows then reach the extra Pods.

Low rate, a few seconds; no throughput or timing is asserted.

Run as root: python3 tests/e2e/test_churn.py [-v]
PODGATE_BIN and PODGATE_GEN_BIN as for test_trafficgen.py.
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from test_trafficgen import CLIENT_MAC, GEN, POD_MAC, PODGATE, endpoint_flows, service_arg

BASE_PODS = ["172.17.0.10", "172.17.0.11", "172.17.0.12"]
EXTRA_PODS = ["172.17.0.5", "172.17.0.20"]
VIP, PORT, TARGET = "10.96.0.20", 80, 8080
UPDATE_INTERVAL_S = 0.15
FLOWS = 200
RATE = 4000


def endpoints_toml(phase):
    eps = [f'{{ ip = "{ip}" }}' for ip in BASE_PODS]
    if phase == 1:
        eps += [f'{{ ip = "{ip}" }}' for ip in EXTRA_PODS]
    elif phase == 2:
        eps += [f'{{ ip = "{EXTRA_PODS[0]}", ready = false, serving = true, terminating = true }}',
                f'{{ ip = "{EXTRA_PODS[1]}" }}']
    return ", ".join(eps)


class ChurningPodgate:
    """podgate on two memif servers whose web service's endpoints change."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pgchurn-")
        self.tag = f"pgch{os.getpid() % 100000}"
        self.config = os.path.join(self.dir, "podgate.toml")
        self.log_path = os.path.join(self.dir, "podgate.log")
        self.write_config(0)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([PODGATE, "-c", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "running:" not in self.log_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("podgate did not start:\n" + self.log_text())
            time.sleep(0.05)

    def socket(self, name):
        return os.path.join(self.dir, f"{name}.sock")

    def write_config(self, phase):
        neighbors = [("192.0.2.2", CLIENT_MAC)] + [(ip, POD_MAC) for ip in BASE_PODS + EXTRA_PODS]
        neigh = "".join(f'[[neighbors]]\nip = "{ip}"\nmac = "{mac}"\n' for ip, mac in neighbors)
        text = f"""
[eal]
args = ["--no-huge", "--no-shconf", "-m", "256", "--no-pci", "--lcores", "0@0,1@1",
        "--file-prefix", "{self.tag}"]
[dataplane]
workers = 1
flow_table_size = 16384
[[ports]]
name = "uplink"
device = "net_memif0,role=server,socket={self.socket('up')},id=0,socket-abstract=no,rsize=12"
address = "192.0.2.1/24"
[[ports]]
name = "pods"
device = "net_memif1,role=server,socket={self.socket('pods')},id=0,socket-abstract=no,rsize=12"
address = "172.17.0.1/16"
[[routes]]
prefix = "198.51.100.0/24"
via = "192.0.2.2"
{neigh}
[dns]
listen = []
[control]
socket = "{os.path.join(self.dir, 'control.sock')}"

[[services]]
namespace = "default"
name = "web"
cluster_ip = "{VIP}"
ports = [ {{ name = "http", port = {PORT}, target_port = {TARGET}, protocol = "TCP" }} ]
endpoints = [ {endpoints_toml(phase)} ]
"""
        # Atomic replace: a SIGHUP never reads a half-written file.
        with open(self.config + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.config + ".tmp", self.config)

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def published(self):
        """Snapshots published after start (one per applied update)."""
        text = self.log_text()
        return text[text.find("running:"):].count("published snapshot")

    def update(self, phase):
        self.write_config(phase)
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def generate(self, clients, options, on_started=None):
        """Runs podgate-gen, calling on_started once traffic is about to
        start; returns (exit code, --json results, output)."""
        out = os.path.join(self.dir, f"gen-{time.monotonic_ns()}.json")
        expected = service_arg(VIP, PORT, TARGET, "TCP", BASE_PODS + EXTRA_PODS)
        args = [GEN, "--no-huge", "--no-shconf", "-m", "256", "--no-pci", "--lcores", "0@0",
                "--file-prefix", f"{self.tag}gen",
                "--vdev", f"net_memif0,role=client,socket={self.socket('up')},id=0,"
                          f"socket-abstract=no,rsize=12,mac={CLIENT_MAC}",
                "--vdev", f"net_memif1,role=client,socket={self.socket('pods')},id=0,"
                          f"socket-abstract=no,rsize=12,mac={POD_MAC}",
                "--", "--json", out, "--clients", clients, "--service", expected, *options]
        lines = []
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) as proc:
            for line in proc.stdout:
                lines.append(line)
                # Printed (and flushed) after the links are up, right before sending.
                if on_started and line.startswith("podgate-gen: client port"):
                    on_started()
                    on_started = None
            proc.wait(timeout=120)
        results = None
        if os.path.exists(out):
            with open(out) as f:
                results = json.load(f)
        return proc.returncode, results, "".join(lines)


class EndpointChurnTest(unittest.TestCase):
    def setUp(self):
        self.podgate = ChurningPodgate()

    def tearDown(self):
        self.podgate.stop()

    def test_updates_to_the_service_lose_no_packet_and_move_no_established_flow(self):
        pg = self.podgate
        stop = threading.Event()
        sent = []

        def churn():
            # FLOWS flows at RATE open within FLOWS / RATE = 50 ms; start
            # updating well after every flow has sent its SYN.
            time.sleep(0.4)
            phase = 0
            while not stop.wait(UPDATE_INTERVAL_S):
                phase = (phase + 1) % 3
                pg.update(phase)
                sent.append(phase)

        churner = threading.Thread(target=churn)
        try:
            code, r, out = pg.generate("198.51.100.1-198.51.100.20",
                                       ["--flows", str(FLOWS), "--rate", str(RATE),
                                        "--duration", "3", "--reply", "--drain-ms", "1000",
                                        "--max-loss", "0"],
                                       on_started=churner.start)
        finally:
            stop.set()
            if churner.is_alive():
                churner.join()
        self.assertIsNotNone(r, out)
        # Let the last SIGHUPs land before counting what was applied.
        time.sleep(0.5)
        published = pg.published()
        log = pg.log_text()
        self.assertNotIn("reload refused", log)
        # Several updates a second really reached podgate (SIGHUPs that
        # arrive together are one reload, so fewer may be published than sent).
        self.assertGreaterEqual(len(sent), 10, "the churn thread updated the service")
        self.assertGreaterEqual(published, 8, log[-2000:])
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertEqual(r["violations"]["pod_flow_moved"], 0, out)
        self.assertEqual(r["loss"]["packets"], 0, out)
        self.assertEqual(r["rx_pods"]["packets"], r["tx"]["packets"], out)
        self.assertEqual(r["flows"]["seen"], FLOWS, out)
        self.assertEqual(r["replies"]["received"], r["replies"]["sent"], out)
        shares = endpoint_flows(r)[f"{VIP}:{PORT}/TCP"]
        for ip in EXTRA_PODS:
            self.assertEqual(shares[f"{ip}:{TARGET}"], 0,
                             f"every flow opened before the first update: {shares}")
        for ip in BASE_PODS:
            self.assertGreater(shares[f"{ip}:{TARGET}"], 0, shares)
        self.assertEqual(code, 0, out)

        # The updates took effect: with the extra Pods ready, new flows
        # (other clients) reach them too, and the old flows' Pods still check.
        before = pg.published()
        pg.update(1)
        deadline = time.monotonic() + 10
        while pg.published() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        code, r, out = pg.generate("198.51.100.101-198.51.100.120",
                                   ["--flows", "500", "--rate", "20000", "--count", "2000"])
        self.assertIsNotNone(r, out)
        self.assertEqual(r["violations"]["total"], 0, out)
        shares = endpoint_flows(r)[f"{VIP}:{PORT}/TCP"]
        for ip in EXTRA_PODS:
            self.assertGreater(shares[f"{ip}:{TARGET}"], 0, shares)


if __name__ == "__main__":
    unittest.main(verbosity=2)
