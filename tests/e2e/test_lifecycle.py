#!/usr/bin/env python3
"""End to end: what podgate leaves behind and how it says what is in its
way (issue 15, "Leftovers and unclear errors").

- A clean SIGTERM releases the hugepage files EAL created (rte_eal_cleanup
  leaves them in hugetlbfs).
- A second podgate with the same EAL file prefix is refused naming the
  process that holds it, not "EAL init failed: Success".
- A second podgate on the same DNS or metrics address fails naming the
  address in use.
- EAL argument combinations DPDK refuses are named, --check included,
  instead of EAL's usage text.
- systemd's notify protocol (Type=notify, WatchdogSec) against a socket the
  test listens on.

Run as root: python3 tests/e2e/test_lifecycle.py [-v]
"""
import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import netlab  # noqa: E402
from netlab import endpoint, service_toml  # noqa: E402

PODS = {"my-app-0": "172.17.0.10"}
SERVICES = service_toml("default", "my-app", "10.96.0.20", [("http", 80, 8080, "TCP")],
                        [endpoint(PODS["my-app-0"], "my-app-0")])
NEEDED_HUGEPAGES = 140  # 256 MiB for podgate in 2 MiB pages, and some slack


def free_hugepages():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return 0


def hugepage_files(prefix):
    return sorted(glob.glob(f"/dev/hugepages/{prefix}map_*"))


def run_podgate(config_text, *args, timeout=60):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config_text)
    try:
        return subprocess.run([netlab.podgate_binary(), *args, "-c", f.name],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(f.name)


@unittest.skipUnless(os.path.ismount("/dev/hugepages") and free_hugepages() >= NEEDED_HUGEPAGES,
                     f"needs hugetlbfs on /dev/hugepages and {NEEDED_HUGEPAGES} free 2 MiB pages")
class HugepagesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = netlab.Appliance("pglif", dns_port=netlab.DNS_PORT + 70,
                                   metrics_port=netlab.DNS_PORT + 71, hugepages=True)
        cls.app.start(SERVICES, PODS)

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def second(self, change):
        """The running podgate's config, changed; the second podgate gets
        its own control socket."""
        text = self.app.base_config() + SERVICES
        text = text.replace(self.app.socket_path, self.app.socket_path + ".2")
        return change(text)

    def test_1_a_second_podgate_with_the_same_file_prefix_names_the_holder(self):
        r = run_podgate(self.second(lambda t: t))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"another DPDK process (podgate, pid {self.app.proc.pid}) holds EAL file "
                      f"prefix '{self.app.tag}' (/var/run/dpdk/{self.app.tag}/config)", r.stderr)
        self.assertNotIn("Success", r.stderr)
        self.assertIsNone(self.app.proc.poll(), "the first podgate runs on")

    def test_2_a_second_podgate_on_the_same_addresses_names_the_address(self):
        # Its own prefix and no hugepages: it gets as far as the listeners.
        def own_prefix(t):
            return t.replace(f'"--file-prefix", "{self.app.tag}"', f'"--file-prefix", "{self.app.tag}b"') \
                    .replace('args = [', 'args = ["--no-huge", "--no-shconf", ', 1)
        r = run_podgate(self.second(own_prefix))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"dns.listen: cannot bind UDP 127.0.0.1:{self.app.dns_port}: Address already "
                      "in use (another DNS server, a local resolver or a second podgate, holds it",
                      r.stderr)
        r = run_podgate(self.second(lambda t: own_prefix(t).replace(
            f'listen = ["127.0.0.1:{self.app.dns_port}"]', "listen = []")))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"metrics.listen: cannot bind 127.0.0.1:{self.app.metrics_port}: Address "
                      "already in use (another server, or a second podgate, holds it", r.stderr)

    def test_3_a_clean_stop_releases_the_hugepage_files(self):
        self.assertTrue(hugepage_files(self.app.tag), "podgate runs on hugepage files")
        self.assertEqual(self.app.stop(), 0)
        self.assertEqual(hugepage_files(self.app.tag), [])
        self.assertRegex(self.app.log_text(),
                         rf"released \d+ hugepage file\(s\), \d+ MiB, of EAL file prefix "
                         rf"'{self.app.tag}'")


class SdNotifyTest(unittest.TestCase):
    """systemd cannot run here (no systemd as PID 1), so the test is the
    notify socket: a datagram socket podgate finds in NOTIFY_SOCKET, as
    under Type=notify with WatchdogSec."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pgsdn-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []
        saved = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        os.environ["NOTIFY_SOCKET"] = self.path
        os.environ["WATCHDOG_USEC"] = "400000"  # 0.4 s: a keep-alive every 0.2 s
        os.environ.pop("WATCHDOG_PID", None)
        self.app = netlab.Appliance("pgsdn", dns_port=netlab.DNS_PORT + 72)
        try:
            self.app.start(SERVICES, PODS)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def tearDown(self):
        self.app.stop()
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def receive(self, until, timeout=10):
        """Collects datagrams until one satisfies `until`; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.messages.append(msg)
            if until(msg):
                return msg
        self.fail(f"no such message; got {self.messages}")

    def test_ready_watchdog_reload_and_stopping(self):
        ready = self.receive(lambda m: "READY=1" in m.splitlines())
        self.assertIn(f"MAINPID={self.app.proc.pid}", ready.splitlines())
        self.assertTrue(self.app.log_has("running:"), "READY=1 comes once podgate runs")
        # The workers report in: keep-alives every 0.2 s.
        start = time.monotonic()
        for _ in range(5):
            self.receive(lambda m: m == "WATCHDOG=1")
        self.assertLess(time.monotonic() - start, 5)
        self.assertIn("watchdog: systemd expects a keep-alive every 400 ms", self.app.log_text())
        self.app.signal(signal.SIGHUP)
        reloading = self.receive(lambda m: "RELOADING=1" in m.splitlines())
        self.assertRegex(reloading, r"MONOTONIC_USEC=\d+")
        self.receive(lambda m: "READY=1" in m.splitlines())
        self.app.signal(signal.SIGTERM)
        self.receive(lambda m: "STOPPING=1" in m.splitlines())
        self.assertEqual(self.app.proc.wait(timeout=30), 0)


    def worker_tid(self):
        for tid in os.listdir(f"/proc/{self.app.proc.pid}/task"):
            with open(f"/proc/{self.app.proc.pid}/task/{tid}/comm") as f:
                if f.read().strip().startswith("rte-worker"):
                    return int(tid)
        self.fail("no worker thread")

    def test_a_stuck_worker_stops_the_keep_alives(self):
        self.receive(lambda m: "READY=1" in m.splitlines())
        self.receive(lambda m: m == "WATCHDOG=1")
        # Stop the worker thread alone: PTRACE_SEIZE + PTRACE_INTERRUPT stop
        # one thread, where a signal would stop the whole process.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
        tid = self.worker_tid()
        if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
            self.skipTest(f"cannot ptrace the worker: {os.strerror(ctypes.get_errno())}")
        try:
            self.assertEqual(libc.ptrace(PTRACE_INTERRUPT, tid, None, None), 0)
            os.waitpid(tid, 0x40000000)  # __WALL: the thread has stopped
            self.app.wait_for(lambda: self.app.log_has("watchdog: a worker has not reported in"),
                              "the watchdog to notice")
            self.sock.settimeout(0.05)
            try:  # what was sent before it noticed
                while True:
                    self.sock.recv(4096)
            except socket.timeout:
                pass
            self.sock.settimeout(1.5)  # several keep-alive periods of 0.2 s
            with self.assertRaises(socket.timeout, msg="WATCHDOG=1 while a worker is stuck"):
                while True:
                    msg = self.sock.recv(4096).decode()
                    if msg == "WATCHDOG=1":
                        break
            self.assertIsNone(self.app.proc.poll())
        finally:
            libc.ptrace(PTRACE_DETACH, tid, None, None)
        self.receive(lambda m: m == "WATCHDOG=1")
        self.app.wait_for(lambda: self.app.log_has("watchdog: every worker reports in again"),
                          "the watchdog to resume")


class EalArgumentsTest(unittest.TestCase):
    def test_in_memory_with_no_huge_is_refused_by_name_not_with_eal_usage(self):
        app = netlab.Appliance("pglie")
        text = app.base_config().replace('args = [', 'args = ["--in-memory", ', 1) + SERVICES
        for args in (["--check"], []):
            with self.subTest(args=args):
                r = run_podgate(text, *args)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn("eal: args: --in-memory and --no-huge cannot go together", r.stderr)
                self.assertNotIn("Usage", r.stdout + r.stderr)
                self.assertLess(len(r.stderr.splitlines()), 5, r.stderr)


if __name__ == "__main__":
    e2e_main.main()
