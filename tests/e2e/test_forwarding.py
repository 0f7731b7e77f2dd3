#!/usr/bin/env python3
"""End to end: real clients in a client namespace reach real Pod servers
through podgate's ClusterIP VIPs (issue 2's acceptance tests).

Run as root: python3 tests/e2e/test_forwarding.py [-v]
PODGATE_BIN overrides the binary (default build/control/podgate).
"""
import collections
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import netlab  # noqa: E402
from netlab import endpoint, service_toml  # noqa: E402

VIP = "10.96.0.20"
UDP_VIP = "10.96.0.30"
PODS = {"my-app-0": "172.17.0.10", "my-app-1": "172.17.0.11", "my-app-2": "172.17.0.12",
        "my-app-3": "172.17.0.13"}


def my_app(*endpoints):
    return service_toml("default", "my-app", VIP, [("http", 80, 8080, "TCP")], list(endpoints))


def echo_udp(*endpoints):
    return service_toml("default", "echo-udp", UDP_VIP, [("echo", 5353, 5353, "UDP")],
                        list(endpoints))


READY_0 = endpoint(PODS["my-app-0"], "my-app-0")
READY_1_W2 = endpoint(PODS["my-app-1"], "my-app-1", weight=2)
NOT_READY_2 = endpoint(PODS["my-app-2"], "my-app-2", ready=False, serving=True, terminating=True)
READY_3 = endpoint(PODS["my-app-3"], "my-app-3")


def default_services(weight_1=2):
    return (my_app(READY_0, endpoint(PODS["my-app-1"], "my-app-1", weight=weight_1), NOT_READY_2) +
            echo_udp(endpoint(PODS["my-app-0"], "my-app-0"), endpoint(PODS["my-app-1"], "my-app-1"),
                     endpoint(PODS["my-app-2"], "my-app-2")))


class ForwardingTest(unittest.TestCase):
    WORKERS = 1
    TAG = "pge2e1"
    RX_INTERRUPTS = False
    CHECK_STATELESS = True  # see tearDown

    @classmethod
    def setUpClass(cls):
        cls.app = netlab.Appliance(cls.TAG, workers=cls.WORKERS, udp_timeout=2,
                                   rx_interrupts=cls.RX_INTERRUPTS)
        cls.app.start(default_services(), PODS)

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def setUp(self):
        # Each test starts from the default services.
        if self.app.services != default_services():
            self.assertTrue(self.app.reload(default_services()))
        self.totals_before = self.app.worker_totals()

    def tearDown(self):
        # The flow table (16384 entries per worker) has room for every
        # connection of these tests: each reply must find its flow entry.
        # A reply translated without one (the stateless path, for a full
        # table) would hide a lost or misplaced reverse entry.
        if not self.CHECK_STATELESS:
            return
        after = self.app.worker_totals()
        changed = {k: v - self.totals_before.get(k, 0) for k, v in after.items()
                   if v != self.totals_before.get(k, 0)}
        self.assertEqual(changed.get("replies_stateless", 0), 0,
                         f"replies reverse-NATed without their flow entry; counters {changed}")

    # Long enough that the change lands while every stream still has lines
    # to come (checked: streams_alive), even on a slow shared machine.
    SLOW_LINES = 8

    def open_streams(self, count):
        """`count` long-lived HTTP responses (one line a second from the Pod,
        each its own connection); returns [(process, first line)]."""
        streams = [subprocess.Popen(
            ["ip", "netns", "exec", self.app.client_ns, "curl", "-s", "-N", "-m", "60",
             f"http://{VIP}/slow/{self.SLOW_LINES}"], stdout=subprocess.PIPE, text=True)
            for _ in range(count)]
        return [(s, s.stdout.readline().strip()) for s in streams]

    def assert_streams_alive(self, streams):
        """After a change was adopted: every stream still runs, so its next
        packets (and its client's ACKs) cross the new snapshot."""
        self.assertTrue(all(s.poll() is None for s, _ in streams),
                        "a stream ended before the change took effect: nothing would be checked")

    def assert_streams_stayed(self, streams):
        for s, first in streams:
            rest = s.stdout.read().split()
            code = s.wait()
            s.stdout.close()
            self.assertEqual(code, 0, f"a stream on {first} did not complete (reset?)")
            self.assertEqual(rest, [first] * (self.SLOW_LINES - 1),
                             "every line comes from the Pod the connection started on")

    # 40 connections: a change that moves a quarter of Maglev's slots (one
    # Pod of weight 1 added to weights 1 + 2) would leave all 40 where they
    # were with probability 0.75^40 < 1e-5 if pinning were broken.
    PINNED_STREAMS = 40

    def test_every_request_succeeds_and_only_ready_pods_answer_by_weight(self):
        answers = self.app.curl_many(f"http://{VIP}/", 300)
        self.assertNotIn(None, answers, "every request through the VIP must succeed")
        shares = collections.Counter(answers)
        self.assertEqual(set(shares), {"my-app-0", "my-app-1"},
                         "both ready Pods answer; the not-ready (draining) my-app-2 and the "
                         "unlisted my-app-3 never do")
        # Weights 1:2 -> expected 100:200 of 300; a binomial sd is ~8.2, so
        # +-40 is about 5 sd and cannot be hit by chance.
        self.assertLess(abs(shares["my-app-1"] - 200), 40, shares)

    def test_udp_service_answers_from_its_endpoints(self):
        got = self.app.udp_ask(UDP_VIP, 5353, range(40000, 40060))
        self.assertNotIn(None, got.values())
        self.assertEqual(set(got.values()), {"my-app-0", "my-app-1", "my-app-2"})
        again = self.app.udp_ask(UDP_VIP, 5353, range(40000, 40060))
        self.assertEqual(got, again, "a UDP flow stays on its Pod")

    def test_a_fragmented_udp_datagram_arrives_whole_and_is_answered(self):
        # 4000 bytes over a 1500-byte link: the client's kernel sends three
        # fragments, podgate NATs each like the first (issue 12), the Pod's
        # kernel reassembles them and echoes 4000+ bytes, fragmented again.
        before = self.app.worker_totals()
        self.assertEqual(self.app.echoed_whole("192.0.2.2", UDP_VIP, 5353, "my-app"), 10,
                         "datagrams echoed whole")
        totals = self.app.worker_totals()
        self.assertGreaterEqual(totals["rx_packets"] - before["rx_packets"], 60,
                                "three fragments each way per datagram")

    def test_client_behind_a_static_route_is_answered(self):
        answers = self.app.curl_many(f"http://{VIP}/", 20, source="198.51.100.7")
        self.assertNotIn(None, answers)

    def test_long_lived_connections_stay_on_their_pods_across_a_reload_that_adds_a_pod(self):
        streams = self.open_streams(self.PINNED_STREAMS)
        self.assertEqual({first for _, first in streams}, {"my-app-0", "my-app-1"})
        with_new_pod = my_app(READY_0, READY_1_W2, NOT_READY_2, READY_3) + \
            self.app.services[self.app.services.index("\n[[services]]", 10):]
        self.assertTrue(self.app.reload(with_new_pod))
        self.assert_streams_alive(streams)
        # New connections reach the new Pod while the old ones stream on.
        answers = collections.Counter(self.app.curl_many(f"http://{VIP}/", 200))
        self.assertGreater(answers["my-app-3"], 0, answers)
        self.assertNotIn(None, answers)
        self.assert_streams_stayed(streams)

    def test_long_lived_connections_stay_on_their_pods_across_a_weight_change(self):
        streams = self.open_streams(self.PINNED_STREAMS)
        self.assertEqual({first for _, first in streams}, {"my-app-0", "my-app-1"})
        # Weights 1:2 -> 4:1 moves about half of Maglev's slots.
        reweighted = my_app(endpoint(PODS["my-app-0"], "my-app-0", weight=4),
                            endpoint(PODS["my-app-1"], "my-app-1"), NOT_READY_2) + \
            self.app.services[self.app.services.index("\n[[services]]", 10):]
        self.assertTrue(self.app.reload(reweighted))
        self.assert_streams_alive(streams)
        answers = collections.Counter(self.app.curl_many(f"http://{VIP}/", 100))
        self.assertNotIn(None, answers)
        self.assertGreater(answers["my-app-0"], answers["my-app-1"], "the new weights apply")
        self.assert_streams_stayed(streams)

    def test_a_removed_pods_connections_are_dropped_at_once(self):
        keep = netlab.KeepAliveClient(self.app)
        try:
            conns = keep.open(VIP, 80, 24)
            on_1 = [c for c in conns if c[2] == "my-app-1"]
            self.assertGreater(len(on_1), 0, conns)
            self.assertLess(len(on_1), len(conns), conns)
            gone_before = self.app.worker_totals()["flows_endpoint_gone"]
            # my-app-1 removed (not draining): its connections' entries are
            # dropped at their next packet, however long they could live.
            without_1 = my_app(READY_0, NOT_READY_2) + \
                self.app.services[self.app.services.index("\n[[services]]", 10):]
            self.assertTrue(self.app.reload(without_1))
            for index, local_port, pod in conns:
                got = keep.get(index)
                if pod == "my-app-1":
                    # Re-placed on my-app-0, which has no such connection: reset.
                    self.assertEqual(got[0], "error", f"connection {local_port} still reached {got}")
                else:
                    self.assertEqual(got, (local_port, "my-app-0"))
            # Each of its connections went at its next packet, whichever
            # side sent it: one flow record per connection, so exactly one.
            gone = self.app.worker_totals()["flows_endpoint_gone"] - gone_before
            self.assertEqual(gone, len(on_1))
        finally:
            keep.close()

    def test_removing_a_pod_moves_only_its_share(self):
        ports = range(41000, 41300)
        before = self.app.udp_ask(UDP_VIP, 5353, ports)
        self.assertNotIn(None, before.values())
        without_2 = self.app.services.replace(
            endpoint(PODS["my-app-2"], "my-app-2"), endpoint(PODS["my-app-2"], "my-app-2",
                                                             ready=False, serving=False))
        # Removing (not draining) my-app-2; the others' flows expire
        # (udp_timeout = 2 s) so that the next datagrams are placed by
        # Maglev afresh, which is what this test measures (that a removed
        # Pod's flows are dropped at once is
        # test_a_removed_pods_connections_are_dropped_at_once).
        self.assertTrue(self.app.reload(without_2.replace(
            endpoint(PODS["my-app-2"], "my-app-2", ready=False, serving=False) + ",\n", "")))
        time.sleep(2.5)
        after = self.app.udp_ask(UDP_VIP, 5353, ports)
        self.assertNotIn("my-app-2", after.values())
        self.assertNotIn(None, after.values())
        stayed = [p for p in ports if before[p] != "my-app-2"]
        moved = [p for p in stayed if after[p] != before[p]]
        # Maglev moves ~0.6% of the remaining endpoints' slots on a removal
        # (tests/unit/maglev_test); 5% leaves room for 300 samples.
        self.assertLessEqual(len(moved), len(stayed) * 0.05,
                             f"{len(moved)} of {len(stayed)} flows of remaining Pods moved")
        self.assertGreater(len(ports) - len(stayed), 0, "my-app-2 had a share to move")

    def test_invalid_reload_is_refused_and_the_old_config_keeps_forwarding(self):
        bad = self.app.services.replace("port = 80,", "port = 80000,", 1)
        self.assertFalse(self.app.reload(bad))
        log = self.app.log_text()
        self.assertRegex(log, r"reload refused.*\n.*podgate\.toml:\d+:\d+: services\[0\]\.ports\[0\]\.port: "
                              r"80000 is not in 1\.\.65535")
        self.assertNotIn(None, self.app.curl_many(f"http://{VIP}/", 10))

    def test_a_half_closed_connection_keeps_its_entry_until_the_pod_closes(self):
        # The client sends its request and its FIN (shutdown(SHUT_WR), as
        # `nc -N` or an rsh-style client does), then reads an answer that
        # the Pod takes seconds to send.  Its entry must outlive the short
        # closing timeout: half-closed, on tcp_fin_timeout (RFC 9293 §3.6).
        sport = 47123
        script = (
            "import socket,sys\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            f"s.bind(('0.0.0.0',{sport})); s.settimeout(20); s.connect(('{VIP}',80))\n"
            "s.sendall(b'GET /slow/3 HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n"
            "s.shutdown(socket.SHUT_WR)\n"
            "data=b''\n"
            "while True:\n"
            "  b=s.recv(4096)\n"
            "  if not b: break\n"
            "  data+=b\n"
            "sys.stdout.write(data.decode())\n")
        client = subprocess.Popen(["ip", "netns", "exec", self.app.client_ns, "python3", "-c", script],
                                  stdout=subprocess.PIPE, text=True)

        def entry():
            r = self.app.ask({"command": "flows", "service": "default/my-app"})
            self.assertTrue(r["ok"], r)
            mine = [f for f in r["flows"] if f["client"].endswith(f":{sport}")]
            return mine[0] if mine else None

        try:
            self.app.wait_for(lambda: (entry() or {}).get("state") == "client_fin",
                              "the connection half-closed by the client", timeout=10)
            self.assertGreater(entry()["expires_in_ms"], 60_000, "on tcp_fin_timeout (120 s), not the closing one")
            out, _ = client.communicate(timeout=30)
        finally:
            if client.poll() is None:
                client.kill()
                client.communicate()
        self.assertEqual(client.returncode, 0)
        lines = out.split("\n\n", 1)[1].split()  # text mode: CRLF read as \n
        self.assertEqual(len(lines), 3, out)
        self.assertEqual(len(set(lines)), 1, f"every line from one Pod: {out}")
        # The Pod's FIN closed the other direction.
        self.app.wait_for(lambda: (entry() or {}).get("state") == "closing", "the closed connection", timeout=10)

    def test_counters_show_flows_and_drops_by_reason(self):
        self.app.curl_many(f"http://{VIP}/", 5)
        # A port the VIP does not serve: dropped and counted as no_service,
        # and refused at once (ICMP port unreachable), not left to time out.
        r = netlab.ns_exec(self.app.client_ns, "curl", "-s", "-m", "5", f"http://{VIP}:81/", check=False)
        self.assertEqual(r.returncode, 7, "curl: (7) Failed to connect ... Connection refused")
        text = self.app.counters()
        self.assertRegex(text, r"flows_created=\d+")
        self.assertRegex(text, r"no_service=\d+")


class TwoWorkerForwardingTest(ForwardingTest):
    """The same behaviour with two workers on single-queue-per-worker taps:
    both directions of every connection meet at the flow's owner."""
    WORKERS = 2
    TAG = "pge2e2"
    # Checked with two workers too: a connection is one flow record found
    # by either direction's key, so its reply key cannot go missing while
    # its forward key stays.  (With one entry per direction, one run of
    # eight under heavy load counted 53 replies reverse-NATed without their
    # entry, every stream intact.)

    def test_packets_are_handed_to_the_owning_worker(self):
        self.app.curl_many(f"http://{VIP}/", 40)
        self.assertRegex(self.app.counters(), r"handoff_out=\d+")

    def test_each_worker_says_what_it_does_when_idle(self):
        expected = "sleeps" if self.RX_INTERRUPTS else "spins"
        self.assertEqual([w["idle"] for w in self.app.ask({"command": "stats"})["workers"]],
                         [expected] * self.WORKERS)


class SleepingWorkersForwardingTest(TwoWorkerForwardingTest):
    """The same behaviour with workers that sleep when idle
    ([dataplane] rx_interrupts, as l3fwd-power): each wakes for its taps'
    RX interrupts, the other worker's handoffs, the control thread's
    snapshots and flow listings, and nothing else."""
    TAG = "pge2e3"
    RX_INTERRUPTS = True

    def test_an_idle_worker_sleeps_and_each_kind_of_input_wakes_it(self):
        def delta(action):
            before = self.app.worker_totals()
            action()
            after = self.app.worker_totals()
            return {k: after[k] - before.get(k, 0) for k in after}

        def per_worker(name):
            return [w["counters"][name] for w in self.app.ask({"command": "stats"})["workers"]]

        # Idle: each worker sleeps about 100 times a second (the 10 ms
        # timeout), instead of polling millions of times.
        idle = delta(lambda: time.sleep(1))
        self.assertGreater(idle["idle_waits"], 40, f"the workers did not sleep: {idle}")
        self.assertLess(idle["idle_waits"], 2 * 150, f"the sleeps are not 10 ms long: {idle}")

        # Traffic after idle gaps (a worker sleeps after 10 ms without
        # packets): the taps' RX interrupts wake the workers, and a packet
        # handed to a sleeping owner rings its doorbell (no snapshot is
        # published meanwhile).  Each connection's first packet reaches
        # the worker that is not its owner half of the time (the kernel
        # picks the tap queue): 16 connections all missing that is not a
        # real outcome.
        spaced = f"for i in $(seq 16); do curl -s -m 5 -o /dev/null http://{VIP}/; sleep 0.03; done"
        traffic = delta(lambda: netlab.ns_exec(self.app.client_ns, "sh", "-c", spaced))
        self.assertGreater(traffic["rx_interrupt_wakes"], 0, traffic)
        self.assertGreater(traffic["handoff_in"], 0, traffic)
        self.assertGreater(traffic["doorbell_wakes"], 0, f"no handoff woke its owner: {traffic}")

        # A snapshot: published to sleeping workers, each is rung awake.
        # (A worker polls about 100 us of every 10 ms, when a publication
        # finds it awake and needs no ring: three of them all finding it
        # so is not a real outcome.)
        rung = per_worker("doorbell_wakes")
        for weight in (3, 4, 2):
            self.assertTrue(self.app.reload(default_services(weight_1=weight)))
            self.app.wait_adopted()
        woken = [after - before for before, after in zip(rung, per_worker("doorbell_wakes"))]
        self.assertTrue(all(n > 0 for n in woken), f"doorbell wake-ups per worker across 3 reloads: {woken}")

        # A flow listing, asked of sleeping workers: the connections above
        # are still in the tables (closing, for tcp_closing_timeout).
        listing = self.app.ask({"command": "flows", "service": "default/my-app"})
        self.assertTrue(listing["ok"], listing)
        self.assertGreater(len(listing["flows"]), 0, listing)


class PathMtuTest(unittest.TestCase):
    """Issue 12: podgate's uplink MTU is 1400, the Pods' and the client's
    links 1500.  A Pod's 1500-byte segments do not fit: podgate drops them
    and sends the Pod "fragmentation needed" (MTU 1400), the Pod's kernel
    lowers its path MTU and resends smaller ones, and a large response
    completes.  Without the ICMP error the transfer would hang (the classic
    load-balancer black hole)."""

    @classmethod
    def setUpClass(cls):
        cls.app = netlab.Appliance("pgmtu", uplink_mtu=1400)
        cls.app.start(my_app(READY_0), {"my-app-0": PODS["my-app-0"]})

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def test_a_large_response_completes_through_a_smaller_mtu(self):
        size = 300_000
        res = subprocess.run(["ip", "netns", "exec", self.app.client_ns, "curl", "-s", "-m", "20",
                              "-o", "/dev/null", "-w", "%{size_download}", f"http://{VIP}/big/{size}"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 0, f"curl failed ({res.returncode}): {res.stderr}")
        self.assertEqual(int(res.stdout), size)
        totals = self.app.worker_totals()
        self.assertGreater(totals["icmp_errors_sent"], 0, "no fragmentation needed was sent")
        self.assertGreater(self.app.ask({"command": "stats"})["workers"][0]["drops"]["too_big"], 0)


class DaemonTest(unittest.TestCase):
    def test_check_accepts_the_default_config_and_rejects_a_bad_one(self):
        ok = netlab.run(netlab.podgate_binary(), "--check", "-c",
                         str(netlab.ROOT / "conf" / "podgate.toml"), check=False)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        bad = os.path.join(netlab.tempfile.mkdtemp(), "bad.toml")
        with open(bad, "w") as f:
            f.write("[dataplane]\nworkers = 0\nbogus = 1\n")
        res = netlab.run(netlab.podgate_binary(), "--check", "-c", bad, check=False)
        self.assertEqual(res.returncode, 2)
        self.assertIn("bad.toml:3:1", res.stderr)

    def test_a_device_without_an_optional_operation_is_used_with_a_log_line(self):
        # net_memif has no MTU setting in DPDK 22.11: podgate must run anyway.
        tmp = netlab.tempfile.mkdtemp(prefix="pgmemif-")
        config = os.path.join(tmp, "memif.toml")
        with open(config, "w") as f:
            f.write(f"""
[eal]
args = ["--no-huge", "--no-shconf", "-m", "256", "--no-pci", "-l", "0-1", "--file-prefix", "pgmemif"]
[dataplane]
flow_table_size = 4096
[[ports]]
name = "gen"
device = "net_memif0,role=server,socket={tmp}/memif.sock"
address = "192.0.2.1/24"
mtu = 1500
[[ports]]
name = "sink"
device = "net_null0"
address = "172.17.0.1/16"
""")
        log_path = os.path.join(tmp, "podgate.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([netlab.podgate_binary(), "-c", config], stdout=log,
                                    stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 20
                while "running:" not in open(log_path).read() and time.monotonic() < deadline:
                    self.assertIsNone(proc.poll(), open(log_path).read())
                    time.sleep(0.05)
            finally:
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(timeout=20)
        text = open(log_path).read()
        self.assertIn("running:", text)
        self.assertIn("port 'gen' (net_memif0", text)
        self.assertIn("device has no MTU setting; mtu 1500 ignored", text)
        self.assertEqual(code, 0, text)

    @staticmethod
    def null_port_config(prefix, memory_mib, dataplane):
        """A config of one net_null port and nothing listening: what is
        tested is the start itself.  Returns its path."""
        tmp = netlab.tempfile.mkdtemp(prefix=f"{prefix}-")
        config = os.path.join(tmp, f"{prefix}.toml")
        with open(config, "w") as f:
            f.write(f"""
[eal]
args = ["--no-huge", "--no-shconf", "-m", "{memory_mib}", "--no-pci", "-l", "0-1", "--file-prefix", "{prefix}"]
[dataplane]
{dataplane}
[[ports]]
name = "sink"
device = "net_null0"
address = "172.17.0.1/16"
[dns]
listen = []
[metrics]
listen = ""
[control]
socket = "{tmp}/control.sock"
""")
        return config

    def test_a_flow_table_beyond_memory_is_an_error_not_a_crash(self):
        # 2^28 connections need 15.3 GiB per worker (IPv4 alone); EAL has 256 MiB.
        config = self.null_port_config("pgbig", 256, "flow_table_size = 268435456")
        res = netlab.run(netlab.podgate_binary(), "-c", config, check=False, timeout=60)
        self.assertNotIn(res.returncode, (0, -6), res.stderr)  # -6: SIGABRT (uncaught bad_alloc)
        self.assertIn("worker 0: out of DPDK memory for its flow tables (268435456 IPv4 and 67108864 IPv6 "
                      "connections, 21930 MiB per worker); lower [dataplane] flow_table_size", res.stderr)

    def test_a_config_only_a_start_can_find_wrong_exits_2(self):
        # --check cannot know the lcores EAL will give: 3 workers need 4.
        # Found at start, it is still the config's fault: exit 2, which the
        # systemd unit does not restart (RestartPreventExitStatus=2).
        config = self.null_port_config("pglcore", 128, "workers = 3\nflow_table_size = 4096")
        self.assertEqual(netlab.run(netlab.podgate_binary(), "--check", "-c", config, check=False).returncode, 0)
        res = netlab.run(netlab.podgate_binary(), "-c", config, check=False, timeout=60)
        self.assertIn("dataplane.workers = 3 but EAL has only 1 worker lcore(s) besides the main one", res.stderr)
        self.assertEqual(res.returncode, 2, res.stderr)

    def test_sigterm_stops_cleanly_and_prints_final_counters(self):
        app = netlab.Appliance("pge2e3")
        app.start(my_app(READY_0), {"my-app-0": PODS["my-app-0"]})
        try:
            self.assertEqual(app.curl_many(f"http://{VIP}/", 3), ["my-app-0"] * 3)
        finally:
            code = app.stop()
        self.assertEqual(code, 0)
        self.assertIn("final counters:", app.log_text())


if __name__ == "__main__":
    e2e_main.main()
