#!/usr/bin/env python3
"""End to end: packet capture from a running podgate with dpdk-dumpcap
(rte_pdump, issue 4).  dpdk-dumpcap is a DPDK secondary process: podgate must
run with hugepages and EAL's shared config, so this suite is skipped (with
the reason) on a machine without free hugepages.

Run as root: python3 tests/e2e/test_capture.py [-v]
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import netlab  # noqa: E402
from netlab import endpoint, service_toml  # noqa: E402

VIP = "10.96.0.20"
PODS = {"my-app-0": "172.17.0.10"}
NEEDED_HUGEPAGES = 160  # 256 MiB for podgate, some for dpdk-dumpcap, in 2 MiB pages


def free_hugepages():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return 0


def pcapng_packets(path):
    """The packet data of every Enhanced Packet Block (pcapng, RFC draft
    draft-ietf-opsawg-pcapng section 4.3), little-endian files only."""
    with open(path, "rb") as f:
        data = f.read()
    packets, at = [], 0
    while at + 12 <= len(data):
        block_type, length = struct.unpack_from("<II", data, at)
        if length < 12 or at + length > len(data):
            raise ValueError(f"truncated pcapng block at {at}")
        if block_type == 6:  # EPB: interface, ts high, ts low, captured, original, data
            captured = struct.unpack_from("<I", data, at + 20)[0]
            packets.append(data[at + 28:at + 28 + captured])
        at += length
    return packets


def ipv4_dst(frame):
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    return ".".join(str(b) for b in frame[30:34])


@unittest.skipUnless(shutil.which("dpdk-dumpcap"), "dpdk-dumpcap is not installed")
@unittest.skipUnless(free_hugepages() >= NEEDED_HUGEPAGES,
                     f"needs {NEEDED_HUGEPAGES} free 2 MiB hugepages "
                     f"(HugePages_Free is {free_hugepages()}); tools/setup.sh reserves them")
class CaptureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = netlab.Appliance("pgcap", hugepages=True)
        services = service_toml("default", "my-app", VIP, [("http", 80, 8080, "TCP")],
                                [endpoint(PODS["my-app-0"], "my-app-0")])
        cls.app.start(services, PODS)
        cls.tmp = tempfile.mkdtemp(prefix="pgcap-")

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        # With shared config, DPDK leaves a primary's hugepage files in
        # hugetlbfs after it exits (for a restart to find them): give this
        # run's pages back.
        for name in os.listdir("/dev/hugepages"):
            if name.startswith(cls.app.tag + "map_"):
                os.unlink(os.path.join("/dev/hugepages", name))

    def test_dumpcap_captures_the_uplinks_traffic_to_a_vip(self):
        self.assertTrue(self.app.log_has("pdump: ready"), self.app.log_text())
        out = os.path.join(self.tmp, "uplink.pcapng")
        dumpcap = subprocess.Popen(
            ["dpdk-dumpcap", "--file-prefix", self.app.tag, "-i", "0", "-c", "10", "-w", out],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            # Until it attaches, traffic is not captured: send until it has 10.
            deadline = time.monotonic() + 30
            while dumpcap.poll() is None and time.monotonic() < deadline:
                answers = self.app.curl_many(f"http://{VIP}/", 3)
                self.assertNotIn(None, answers, "forwarding works while capturing")
            self.assertIsNotNone(dumpcap.poll(), "dpdk-dumpcap did not capture 10 packets")
        finally:
            if dumpcap.poll() is None:
                dumpcap.kill()
            log = dumpcap.communicate()[0]
        self.assertEqual(dumpcap.returncode, 0, log)
        packets = pcapng_packets(out)
        self.assertGreaterEqual(len(packets), 10, log)  # -c stops after the burst that reaches 10
        self.assertIn(VIP, {ipv4_dst(p) for p in packets},
                      "the clients' packets to the VIP, as received on the uplink")
        # podgate kept forwarding after the secondary process left.
        self.assertNotIn(None, self.app.curl_many(f"http://{VIP}/", 5))


if __name__ == "__main__":
    e2e_main.main()
