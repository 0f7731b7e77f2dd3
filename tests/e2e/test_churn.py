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
PODGATE_BIN and PODGATE_GEN_BIN as for test_trafficgen.py (tools/memiflab.py).
"""
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import memiflab  # noqa: E402
import netlab  # noqa: E402
from memiflab import endpoint_flows, service_arg  # noqa: E402

BASE_PODS = ["172.17.0.10", "172.17.0.11", "172.17.0.12"]
EXTRA_PODS = ["172.17.0.5", "172.17.0.20"]
VIP, PORT, TARGET = "10.96.0.20", 80, 8080
UPDATE_INTERVAL_S = 0.15
FLOWS = 200
RATE = 4000


def web_service(phase):
    return memiflab.service_toml("web", VIP, PORT, TARGET, "TCP",
                                 memiflab.churn_endpoints(BASE_PODS, EXTRA_PODS, phase),
                                 port_name="http")


class ChurningPodgate(memiflab.MemifPodgate):
    """podgate on two memif servers whose web service's endpoints change."""

    def __init__(self):
        super().__init__("pgch", web_service(0), neighbors=BASE_PODS + EXTRA_PODS)

    def update(self, phase):
        self.update_services(web_service(phase))

    def generate_flows(self, clients, options, on_started=None):
        """Runs podgate-gen expecting any of the web service's Pods, calling
        on_started once traffic is about to start; returns (exit code,
        --json results, output)."""
        expected = service_arg(VIP, PORT, TARGET, "TCP", BASE_PODS + EXTRA_PODS)
        return self.generate("--clients", clients, "--service", expected, *options,
                             on_started=on_started)


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
            # Start updating once every flow's SYN has made its flow entry
            # (podgate's flows_created), not after a guessed head start.
            control = os.path.join(pg.dir, "control.sock")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not stop.is_set():
                client = netlab.ControlClient(control)
                try:
                    workers = client.ask({"command": "stats"})["workers"]
                finally:
                    client.close()
                if sum(w["counters"]["flows_created"] for w in workers) >= FLOWS:
                    break
                stop.wait(0.02)
            phase = 0
            while not stop.wait(UPDATE_INTERVAL_S):
                phase = (phase + 1) % 3
                pg.update(phase)
                sent.append(phase)

        churner = threading.Thread(target=churn)
        try:
            code, r, out = pg.generate_flows("198.51.100.1-198.51.100.20",
                                             ["--flows", str(FLOWS), "--rate", str(RATE),
                                              "--duration", "3", "--reply", "--drain-ms", "1000",
                                              "--max-loss", "0"],
                                             on_started=churner.start)
        finally:
            stop.set()
            if churner.is_alive():
                churner.join()
        self.assertIsNotNone(r, out)
        # Every SIGHUP was sent a second or more ago (the generator drains
        # for 1 s); one more reload through the control socket, answered
        # once applied, makes sure the control loop has handled them before
        # counting what was applied (that reload's own snapshot not counted).
        client = netlab.ControlClient(os.path.join(pg.dir, "control.sock"))
        try:
            self.assertTrue(client.ask({"command": "reload"})["ok"])
        finally:
            client.close()
        published = pg.published() - 1
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
        code, r, out = pg.generate_flows("198.51.100.101-198.51.100.120",
                                         ["--flows", "500", "--rate", "20000", "--count", "2000"])
        self.assertIsNotNone(r, out)
        self.assertEqual(r["violations"]["total"], 0, out)
        shares = endpoint_flows(r)[f"{VIP}:{PORT}/TCP"]
        for ip in EXTRA_PODS:
            self.assertGreater(shares[f"{ip}:{TARGET}"], 0, shares)


if __name__ == "__main__":
    e2e_main.main()
