#!/usr/bin/env python3
"""End to end: the control socket and podgatectl against a running podgate
(issue 4, read-only commands; docs/control-protocol.md).

Run as root: python3 tests/e2e/test_control.py [-v]
PODGATE_BIN overrides the binary (default build/control/podgate).
"""
import email.utils
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import netlab  # noqa: E402
from netlab import endpoint, service_toml  # noqa: E402

PODGATECTL = os.path.join(netlab.ROOT, "tools", "podgatectl")
VIP = "10.96.0.20"
PODS = {"my-app-0": "172.17.0.10", "my-app-1": "172.17.0.11", "my-app-2": "172.17.0.12"}
APP_FQDN = "my-app.default.svc.cluster.local"
DNS_PORT = netlab.DNS_PORT + 20  # apart from the other suites' listeners


def services(extra_endpoint=""):
    eps = [endpoint(PODS["my-app-0"], "my-app-0"),
           endpoint(PODS["my-app-1"], "my-app-1", weight=2),
           endpoint(PODS["my-app-2"], "my-app-2", ready=False, serving=True, terminating=True)]
    if extra_endpoint:
        eps.append(extra_endpoint)
    return (service_toml("default", "my-app", VIP, [("http", 80, 8080, "TCP")], eps) + """
[[services]]
namespace = "default"
name = "mongodb-service"
cluster_ip = "None"
ports = [ { name = "mongo", port = 27017 } ]
endpoints = [
  { ip = "172.17.1.10", hostname = "mongodb-0", subdomain = "mongodb-service" },
  { ip = "172.17.1.11", hostname = "mongodb-1", subdomain = "mongodb-service" },
]
""")


Client = netlab.ControlClient

def status_ok(path):
    c = Client(path)
    try:
        return c.ask({"command": "status"})["ok"]
    finally:
        c.close()


def dig(name, qtype="A", port=DNS_PORT):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=2",
                          "+tries=1", name, qtype], capture_output=True, text=True, timeout=10)
    return sorted(l for l in out.stdout.split("\n") if l)


def ctl(*args, socket_path=None):
    return subprocess.run([sys.executable, PODGATECTL, "-s", socket_path, *args],
                          capture_output=True, text=True, timeout=30)


class ControlSocketTest(unittest.TestCase):
    TAG = "pgctl"

    @classmethod
    def setUpClass(cls):
        cls.app = netlab.Appliance(cls.TAG, dns_port=DNS_PORT)
        # A directory that does not exist yet: podgate creates it.
        cls.app.socket_path = os.path.join(cls.app.dir, "run", "podgate.sock")
        cls.app.start(services(), PODS)

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def setUp(self):
        self.c = Client(self.app.socket_path)

    def tearDown(self):
        self.c.close()

    def ask(self, **req):
        reply = self.c.ask(req)
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["version"], 1)
        return reply

    # ---- DPDK telemetry (what dpdk-telemetry.py speaks) -----------------
    def telemetry(self, command):
        """One command on DPDK's telemetry socket (SOCK_SEQPACKET, JSON)."""
        path = f"/var/run/dpdk/{self.app.tag}/dpdk_telemetry.v2"
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.settimeout(10)
            s.connect(path)
            hello = json.loads(s.recv(16384))
            self.assertIn("max_output_len", hello)
            s.send(command.encode())
            return json.loads(s.recv(hello["max_output_len"]))

    def test_telemetry_lists_and_answers_the_podgate_commands(self):
        listed = self.telemetry("/")["/"]
        for cmd in ("/podgate/status", "/podgate/stats", "/podgate/services"):
            self.assertIn(cmd, listed)
        # Published each second by the control thread: wait for the first copy.
        deadline = time.monotonic() + 5
        while True:
            status = self.telemetry("/podgate/status")["/podgate/status"]
            if isinstance(status, dict) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(status["workers"], 1, status)
        self.assertEqual(status["config_file"], self.app.config_path)
        # One container per service (telemetry nests one level deep).
        services = self.telemetry("/podgate/services")["/podgate/services"]
        self.assertEqual({s["name"] for s in services.values()},
                         {"default/my-app", "default/mongodb-service"}, services)
        self.assertEqual(services["services/0"]["ports/0/target_port"], 8080)

    # ---- the socket ----------------------------------------------------
    def test_socket_file_is_0660_in_a_created_0755_directory(self):
        st = os.stat(self.app.socket_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.app.socket_path)).st_mode),
                         0o755)

    def test_id_is_echoed_and_version_1_accepted(self):
        reply = self.c.ask({"command": "status", "id": "abc-7", "version": 1})
        self.assertEqual((reply["ok"], reply["id"], reply["version"]), (True, "abc-7", 1))
        reply = self.c.ask({"command": "status", "id": 42})
        self.assertEqual(reply["id"], 42)

    def test_bad_requests_get_their_error_code_and_the_connection_carries_on(self):
        cases = [
            (b"{not json", "bad_json"),
            (b"[1, 2]", "bad_request"),
            (b'"status"', "bad_request"),
            (b"{}", "bad_request"),
            (b'{"command": 7}', "bad_request"),
            (b'{"command": "launch"}', "unknown_command"),
            (b'{"command": "service", "name": 5}', "bad_request"),
            (b'{"command": "service", "name": "my-app"}', "bad_request"),
            (b'{"command": "service"}', "bad_request"),
            (b'{"command": "service", "name": "default/nope"}', "not_found"),
            (b'{"command": "maglev", "name": "default/mongodb-service"}', "bad_request"),
            (b'{"command": "maglev", "name": "default/my-app", "port": 81}', "not_found"),
            (b'{"command": "maglev", "name": "default/my-app", "port": "80"}', "bad_request"),
            (b'{"command": "dns", "name": "a.b", "type": "BOGUS"}', "bad_request"),
            (b'{"command": "config", "action": "explode"}', "bad_request"),
            (b'{"command": "status", "version": 2}', "bad_request"),
            (b'{"command": "status", "version": "1"}', "bad_request"),
            # Issue 15: the last of two equal keys ran (a reload here).
            (b'{"command": "status", "command": "reload"}', "bad_request"),
            (b'{"command": "config", "action": "dump", "action": "save"}', "bad_request"),
        ]
        for line, code in cases:
            with self.subTest(line=line):
                reply = self.c.ask(line)
                self.assertFalse(reply["ok"])
                self.assertEqual(reply["error"]["code"], code, reply)
                self.assertTrue(reply["error"]["message"])
                self.assertTrue(self.ask(command="status")["ok"], "the connection carries on")

    def test_request_values_reach_error_messages_quoted_and_escaped(self):
        # What a request names comes back in quotes, control bytes as \xNN
        # (as config errors write them), never raw into a log line.
        cases = [
            ({"command": "la\nunch"}, 'unknown command "la\\x0aunch"; known: '),
            ({"command": "service", "name": "default/no\u001bpe"}, 'no service "default/no\\x1bpe"'),
            ({"command": "service", "name": "no-slash\n"},
             '"name" must be NAMESPACE/NAME, e.g. "default/my-app"; found "no-slash\\x0a"'),
            ({"command": "config", "action": "ex\"plode"},
             '"action": "ex\\"plode" is not supported; allowed: dump, save, toml'),
            ({"command": "maglev", "name": "default/my-app", "family": "ipv\t4"},
             '"family": "ipv\\x094" is not a family; allowed: ipv4, ipv6'),
            ({"command": "dns", "name": "a.b", "type": "B\rOGUS"}, '"type": "B\\x0dOGUS" is not a DNS type'),
            ({"command": "endpoint", "action": "set", "name": "default/my-app", "ip": "1.2.3.\u00014",
              "ready": True}, '"ip": "1.2.3.\\x014" is not an IPv4 or IPv6 address'),
        ]
        for request, message in cases:
            with self.subTest(request=request):
                reply = self.c.ask(request)
                self.assertFalse(reply["ok"])
                self.assertTrue(reply["error"]["message"].startswith(message), reply["error"]["message"])

    def test_error_reply_echoes_the_id(self):
        reply = self.c.ask({"command": "nope", "id": [1]})
        self.assertEqual((reply["ok"], reply["id"], reply["error"]["code"]),
                         (False, [1], "unknown_command"))

    def test_oversized_line_gets_an_error_then_the_connection_closes(self):
        self.c.send_raw(b'{"command": "status", "pad": "' + b"x" * (70 * 1024) + b'"}\n')
        reply = self.c.read_line()
        self.assertEqual(reply["error"]["code"], "bad_request")
        self.assertIn("65536", reply["error"]["message"])
        with self.assertRaises((EOFError, ConnectionResetError)):
            self.c.read_line()
        self.assertTrue(status_ok(self.app.socket_path))

    def test_pipelined_requests_in_one_write_get_replies_in_order(self):
        self.c.send_raw(b"".join(json.dumps({"command": "status", "id": i}).encode() + b"\n"
                                 for i in range(20)))
        self.assertEqual([self.c.read_line()["id"] for _ in range(20)], list(range(20)))

    def test_many_clients_at_once(self):
        clients = [Client(self.app.socket_path) for _ in range(50)]
        try:
            for i, c in enumerate(clients):
                c.send_raw(json.dumps({"command": "services", "id": i}).encode() + b"\n")
            for i, c in enumerate(clients):
                reply = c.read_line()
                self.assertEqual((reply["ok"], reply["id"]), (True, i))
        finally:
            for c in clients:
                c.close()

    def test_stalled_clients_do_not_stall_dns_or_other_clients(self):
        half = Client(self.app.socket_path)
        half.send_raw(b'{"command": "sta')  # half a line, never finished, never read
        flood = Client(self.app.socket_path)
        # Never reads: its replies pile up until the bounded buffer closes it.
        # (`status`: a short reply, queued whole.  A long one, `stats`, is
        # written only as the client reads: see LongReplyTest.)
        flood.sock.setblocking(False)
        sent = 0
        try:
            for _ in range(4000):
                try:
                    sent += flood.sock.send(b'{"command": "status"}\n' * 10)
                except BlockingIOError:
                    time.sleep(0.01)
                except (BrokenPipeError, ConnectionResetError):
                    break
            self.assertEqual(dig(APP_FQDN), [VIP], "DNS answers while clients stall")
            self.assertTrue(self.ask(command="status")["ok"], "other clients are served")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                stats = self.ask(command="stats")["control_socket"]
                if stats["closed_backlog"] >= 1:
                    break
                time.sleep(0.1)
            self.assertGreaterEqual(stats["closed_backlog"], 1,
                                    "a client that never reads is closed")
        finally:
            half.close()
            flood.close()

    # ---- commands ------------------------------------------------------
    def test_status(self):
        r = self.ask(command="status")
        version = subprocess.run([netlab.podgate_binary(), "--version"], capture_output=True,
                                 text=True).stdout.split()[-1]
        self.assertEqual(r["podgate_version"], version)
        self.assertEqual(r["workers"], 1)
        self.assertEqual(r["config_file"], self.app.config_path)
        self.assertGreaterEqual(r["generation"], 1)
        self.assertIsInstance(r["uptime_seconds"], int)
        self.assertEqual([(p["name"], p["address"]) for p in r["ports"]],
                         [("uplink", "192.0.2.1/24"), ("pods", "172.17.0.1/16")])
        self.assertEqual(r["ports"][0]["device"], f"net_tap0,iface={self.app.tag}-up")
        for p in r["ports"]:
            self.assertRegex(p["mac"], r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
            # net_tap asks the kernel for its interface's flags by name in
            # podgate's own namespace; the lab moved them away, so the state
            # read here is not meaningful, only its presence.
            self.assertIsInstance(p["link_up"], bool)

    def test_services_lists_counts(self):
        by_name = {s["name"]: s for s in self.ask(command="services")["services"]}
        self.assertEqual(set(by_name), {"default/my-app", "default/mongodb-service"})
        app = by_name["default/my-app"]
        self.assertEqual((app["cluster_ip"], app["headless"]), (VIP, False))
        self.assertEqual(app["endpoint_counts"], {"ready": 2, "fallback": 0, "draining": 1, "total": 3})
        self.assertEqual(app["ports"], [{"name": "http", "port": 80, "target_port": 8080,
                                         "protocol": "TCP"}])
        mongo = by_name["default/mongodb-service"]
        self.assertEqual((mongo["cluster_ip"], mongo["headless"]), ("None", True))

    def test_service_shows_endpoints_with_conditions(self):
        s = self.ask(command="service", name="default/my-app")["service"]
        states = {e["pod"]: (e["state"], e["weight"]) for e in s["endpoints"]}
        self.assertEqual(states, {"my-app-0": ("ready", 1), "my-app-1": ("ready", 2),
                                  "my-app-2": ("draining", 1)})
        # Chosen from its 3 endpoints: the smallest listed prime above 100 x 3.
        self.assertEqual(s["maglev_table_size"], 1021)

    def test_stats_move_with_traffic(self):
        before = self.ask(command="stats")
        answers = self.app.curl_many(f"http://{VIP}/", 20)
        self.assertNotIn(None, answers)
        after = self.ask(command="stats")
        w0, w1 = before["workers"][0]["counters"], after["workers"][0]["counters"]
        self.assertGreaterEqual(w1["flows_created"] - w0["flows_created"], 20)
        self.assertGreaterEqual(w1["rx_packets"] - w0["rx_packets"], 20 * 3)
        self.assertGreaterEqual(after["ports"][0]["ipackets"] - before["ports"][0]["ipackets"],
                                20 * 3)
        self.assertIn("not_ip", after["workers"][0]["drops"], "every drop reason is listed")
        dig(APP_FQDN)
        self.assertGreater(self.ask(command="stats")["dns"]["queries"]["udp"],
                           after["dns"]["queries"]["udp"])

    def test_maglev_shares_follow_weights(self):
        r = self.ask(command="maglev", name="default/my-app")
        (port,) = r["ports"]
        self.assertEqual(port["table_size"], 1021)  # chosen: > 100 x 3 endpoints
        by_pod = {e["pod"]: e for e in port["endpoints"]}
        self.assertEqual(set(by_pod), {"my-app-0", "my-app-1"}, "draining endpoints hold no slots")
        self.assertEqual(sum(e["slots"] for e in port["endpoints"]), 1021)
        # Weights 1:2 -> 33.3% : 66.7% (Maglev's imbalance at M >> N is well under 1%).
        self.assertAlmostEqual(by_pod["my-app-1"]["share_percent"], 200 / 3, delta=1.0)
        self.assertAlmostEqual(by_pod["my-app-0"]["share_percent"], 100 / 3, delta=1.0)
        self.assertEqual(self.ask(command="maglev", name="default/my-app", port=80)["ports"],
                         r["ports"])

    def test_dns_answers_match_dig(self):
        for name, qtype in [(APP_FQDN, "A"), (f"mongodb-service.default.svc.cluster.local", "A"),
                            (f"_mongo._tcp.mongodb-service.default.svc.cluster.local", "SRV"),
                            ("20.0.96.10.in-addr.arpa", "PTR")]:
            with self.subTest(name=name, qtype=qtype):
                r = self.ask(command="dns", name=name, type=qtype)
                self.assertEqual(r["rcode"], "NOERROR")
                self.assertEqual(sorted(a["data"] for a in r["answer"] if a["type"] == qtype),
                                 dig(name, qtype))
        r = self.ask(command="dns", name=f"nope.default.svc.cluster.local")
        self.assertEqual((r["rcode"], r["answer"]), ("NXDOMAIN", []))

    def test_reload_applies_a_valid_config_and_refuses_a_broken_one(self):
        gen = self.ask(command="status")["generation"]
        self.app.write_config(services(endpoint("172.17.0.13", "my-app-3")))
        try:
            r = self.ask(command="reload")
            self.assertEqual(r["generation"], gen + 1)
            s = self.ask(command="service", name="default/my-app")["service"]
            self.assertEqual(s["endpoint_counts"]["total"], 4)
            with open(self.app.config_path, "a") as f:
                f.write("\n[dataplane]\nbogus = 1\n")
            r = self.c.ask({"command": "reload"})
            self.assertEqual(r["error"]["code"], "invalid_config")
            self.assertIn(self.app.config_path + ":", r["error"]["message"])
            self.assertEqual(self.ask(command="status")["generation"], gen + 1,
                             "a refused reload changes nothing")
        finally:
            self.app.write_config(services())
            self.ask(command="reload")

    def test_config_dump_is_the_running_config(self):
        c = self.ask(command="config", action="dump")["config"]
        self.assertEqual(c["control"]["socket"], self.app.socket_path)
        self.assertEqual([s["name"] for s in c["services"]], ["my-app", "mongodb-service"])
        self.assertEqual(c["services"][0]["endpoints"][1]["weight"], 2)
        self.assertEqual(c["dns"]["listen"], [f"127.0.0.1:{DNS_PORT}"])
        # Every section, defaults included: [announce] is off here.
        self.assertEqual(c["announce"], {"port": "", "table": 4242, "stop_grace": "1s"})

    # ---- podgatectl ----------------------------------------------------
    def test_podgatectl_tables_and_exit_codes(self):
        path = self.app.socket_path
        r = ctl("services", socket_path=path)
        self.assertEqual(r.returncode, 0, r.stderr)
        header, *rows = r.stdout.splitlines()
        self.assertRegex(header, r"^NAME\s+TYPE\s+CLUSTER-IP\s+PORTS\s+READY\s+DRAINING\s+TOTAL$")
        row = next(l for l in rows if l.startswith("default/my-app "))
        self.assertEqual(row.split(), ["default/my-app", "ClusterIP", VIP, "80/TCP->8080",
                                       "2", "1", "3"])
        self.assertEqual(header.index("CLUSTER-IP"), row.index(VIP), "columns are aligned")
        r = ctl("endpoints", "default/my-app", socket_path=path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("draining", r.stdout)
        # Conditions as the config writes them, not Python's True/False.
        self.assertNotRegex(r.stdout, r"\b(True|False)\b")
        self.assertRegex(r.stdout, r"\btrue\b")
        self.assertRegex(r.stdout, r"\bfalse\b")
        r = ctl("maglev", "default/my-app", socket_path=path)
        self.assertIn("M=1021", r.stdout)
        r = ctl("dns", APP_FQDN, socket_path=path)
        self.assertIn(f"\tA\t{VIP}", r.stdout)
        for args in (["status"], ["stats"], ["service", "show", "default/my-app"],
                     ["config", "dump"]):
            with self.subTest(args=args):
                self.assertEqual(ctl(*args, socket_path=path).returncode, 0)
        r = ctl("-o", "json", "services", socket_path=path)
        self.assertTrue(json.loads(r.stdout)["ok"])
        r = ctl("service", "show", "default/nope", socket_path=path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not_found: no service default/nope", r.stderr)
        r = ctl("status", socket_path=path + ".missing")
        self.assertEqual(r.returncode, 2)
        self.assertIn(path + ".missing", r.stderr)
        self.assertEqual(ctl("frobnicate", socket_path=path).returncode, 2)


class Tricklers:
    """Clients that send one byte at a time and never finish a request, and
    reconnect when closed (issue 15: 64 of them locked every administrator
    out of the control socket, 16 stopped every Prometheus scrape)."""

    def __init__(self, connect, count, payload):
        self.connect, self.count, self.payload = connect, count, payload
        self.socks, self.reconnects = [], 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open_one(self):
        try:
            s = self.connect()
            s.setblocking(False)
            return [s, 0]
        except OSError:
            return None

    def run(self):
        self.socks = [x for x in (self.open_one() for _ in range(self.count)) if x]
        while not self.stop.wait(0.3):
            for i, entry in enumerate(self.socks):
                s, pos = entry
                try:
                    s.send(self.payload[pos % len(self.payload):pos % len(self.payload) + 1])
                    entry[1] = pos + 1
                    if s.recv(4096, socket.MSG_DONTWAIT) == b"":
                        raise ConnectionResetError
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:  # closed by podgate: come back
                    s.close()
                    self.reconnects += 1
                    self.socks[i] = self.open_one() or entry
        for s, _ in self.socks:
            s.close()

    def __enter__(self):
        self.thread.start()
        time.sleep(1.5)  # every trickler connected and sending
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


class LongReplyTest(unittest.TestCase):
    """Issue 14: a long reply (here `config dump` and `stats` of 400
    services x 2 ports x 10 endpoints, megabytes) is written a piece at a
    time as the client reads: whole and identical to what podgatectl
    prints, and DNS and other clients are answered while it is unread."""
    SERVICES = 400

    @classmethod
    def setUpClass(cls):
        extra = []
        for i in range(cls.SERVICES):
            vip = f"10.97.{i // 250}.{i % 250 + 1}"
            eps = [endpoint(f"172.18.{i // 25}.{(i % 25) * 10 + j + 1}", f"big-{i}-{j}")
                   for j in range(10)]
            extra.append(service_toml("big", f"svc-{i}", vip,
                                      [("http", 80, 8080, "TCP"), ("https", 443, 8443, "TCP")],
                                      eps))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            cls.metrics_port = s.getsockname()[1]
        cls.app = netlab.Appliance("pglong", dns_port=DNS_PORT + 2, metrics_port=cls.metrics_port)
        cls.app.start(services() + "".join(extra), PODS)

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def raw(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(self.app.socket_path)
        return s

    @staticmethod
    def read_line(s, got=b""):
        chunks = [got]
        while b"\n" not in chunks[-1]:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def test_an_unread_long_reply_holds_up_nobody_and_arrives_whole(self):
        slow = self.raw()
        try:
            slow.sendall(b'{"command": "config", "action": "dump", "id": 7}\n')
            first = slow.recv(65536)
            self.assertTrue(first.startswith(b'{"config":{'), first[:80])
            # The rest waits for this client; everyone else is answered now.
            for _ in range(3):
                self.assertEqual(dig(APP_FQDN, port=DNS_PORT + 2), [VIP])
                self.assertTrue(status_ok(self.app.socket_path))
            line = self.read_line(slow, first)
        finally:
            slow.close()
        self.assertTrue(line.endswith(b"\n"), "one line")
        self.assertGreater(len(line), 8 * 65536)  # more than the socket and one piece hold
        reply = json.loads(line)
        self.assertEqual((reply["ok"], reply["id"], reply["version"]), (True, 7, 1))
        big = [s for s in reply["config"]["services"] if s["namespace"] == "big"]
        self.assertEqual(len(big), self.SERVICES)
        self.assertTrue(all(len(s["endpoints"]) == 10 for s in big))
        self.assertEqual(big[-1]["endpoints"][-1]["pod"], f"big-{self.SERVICES - 1}-9")

    def test_stats_is_complete_and_podgatectl_prints_what_came(self):
        s = self.raw()
        try:
            s.sendall(b'{"command": "stats"}\n{"command": "services"}\n')
            stats = self.read_line(s)
            line, rest = stats.split(b"\n", 1)
            services = self.read_line(s, rest)
        finally:
            s.close()
        st = json.loads(line)
        self.assertTrue(st["ok"])
        ports = [p for p in st["services"] if p["name"].startswith("big/")]
        self.assertEqual(len(ports), 2 * self.SERVICES)
        self.assertTrue(all(len(p["endpoints"]) == 10 for p in ports))
        self.assertIn("control_socket", st)
        self.assertEqual(len(json.loads(services)["services"]), self.SERVICES + 2)
        # podgatectl -o json prints the reply it read, whatever its pieces.
        for args, key in ((("config", "dump"), "config"), (("services",), "services")):
            r = subprocess.run([PODGATECTL, "-s", self.app.socket_path, "-o", "json", *args],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            printed = json.loads(r.stdout)
            again = Client(self.app.socket_path)
            try:
                direct = again.ask({"command": args[0], **({"action": args[1]} if len(args) > 1 else {})})
            finally:
                again.close()
            self.assertEqual(printed[key], direct[key], args)
        r = subprocess.run([PODGATECTL, "-s", self.app.socket_path, "stats"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"big/svc-{self.SERVICES - 1}", r.stdout)

    @staticmethod
    def dechunk(data):
        """The body of a chunked reply (RFC 9112 7.1), or None while incomplete."""
        body, pos = [], 0
        while True:
            nl = data.find(b"\r\n", pos)
            if nl < 0:
                return None
            size = int(data[pos:nl], 16)
            if len(data) < nl + 2 + size + 2:
                return None
            if size == 0:
                return b"".join(body)
            body.append(data[nl + 2:nl + 2 + size])
            pos = nl + 2 + size + 2

    def test_an_unread_scrape_holds_up_nobody_and_arrives_whole(self):
        # Issue 14: /metrics is written a piece per loop turn as the scraper
        # reads, like a long control reply.
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
        slow.settimeout(10)
        slow.connect(("127.0.0.1", self.metrics_port))
        try:
            slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: podgate\r\n\r\n")
            chunks = [slow.recv(65536)]
            self.assertTrue(chunks[0].startswith(b"HTTP/1.1 200 OK\r\n"), chunks[0][:80])
            # The rest waits for this client; everyone else is answered now.
            for _ in range(3):
                self.assertEqual(dig(APP_FQDN, port=DNS_PORT + 2), [VIP])
                self.assertTrue(status_ok(self.app.socket_path))
            tail = chunks[0][-5:]
            while tail != b"0\r\n\r\n":  # the last chunk (a body piece never ends so)
                chunk = slow.recv(1 << 20)
                self.assertTrue(chunk, "closed before the last chunk")
                chunks.append(chunk)
                tail = (tail + chunk)[-5:]
        finally:
            slow.close()
        data = b"".join(chunks)
        head_end = data.find(b"\r\n\r\n")
        body = self.dechunk(data[head_end + 4:])
        self.assertIsNotNone(body)
        self.assertIn(b"Transfer-Encoding: chunked", data[:head_end])
        text = body.decode()
        self.assertGreater(len(text), 8 * 65536)
        types, groups, current = set(), [], None
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                family = line.split(" ")[2]
                self.assertNotIn(family, types, "one TYPE line per family")
                types.add(family)
            elif not line.startswith("#"):
                family = line.split("{")[0].split(" ")[0]
                self.assertIn(family, types, line)
                if family != current:
                    self.assertNotIn(family, groups, "a family's samples are one group")
                    groups.append(family)
                    current = family
        big_in = [l for l in text.splitlines()
                  if l.startswith('podgate_endpoint_packets_total{service="big/')
                  and 'direction="in"' in l]
        self.assertEqual(len(big_in), 2 * self.SERVICES * 10)
        last = f'service="big/svc-{self.SERVICES - 1}",port="443",protocol="TCP"'
        self.assertTrue(any(last in l and f'pod="big-{self.SERVICES - 1}-9"' in l for l in big_in))
        # The families of today's scrape, in their order: the tail after the services.
        self.assertLess(groups.index("podgate_service_packets_total"),
                        groups.index("podgate_endpoint_flows_active"))
        self.assertLess(groups.index("podgate_endpoint_flows_active"),
                        groups.index("podgate_metrics_http_connections"))
        # The stats slots, documented as figures to alert on in `stats`.
        slots = {l.split(" ")[0]: int(l.split(" ")[1]) for l in text.splitlines()
                 if l.startswith("podgate_stats_slots_")}
        self.assertEqual(slots["podgate_stats_slots_exhausted_total"], 0, slots)
        self.assertGreaterEqual(slots["podgate_stats_slots_in_use"], 2 * self.SERVICES * 10, slots)
        self.assertIn("podgate_stats_slots_quarantined", slots)
        # An HTTP/1.1 client that reads as it comes gets the same families.
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=30) as resp:
            again = resp.read().decode()
            date = email.utils.parsedate_to_datetime(resp.headers["Date"])  # RFC 9110 §6.6.1
        self.assertLess(abs(time.time() - date.timestamp()), 60, resp.headers["Date"])
        self.assertEqual({l.split(" ")[2] for l in again.splitlines() if l.startswith("# TYPE ")},
                         types)


class LockoutTest(unittest.TestCase):
    """Tricklers at and beyond every stream listener's cap: an
    administrator still gets answers, scrapes still work, DNS over TCP
    still answers, and the tricklers are closed by the request deadline."""

    @classmethod
    def setUpClass(cls):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            cls.metrics_port = s.getsockname()[1]
        cls.app = netlab.Appliance("pglck", dns_port=DNS_PORT + 1, metrics_port=cls.metrics_port)
        cls.app.start(services(), PODS)

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def unix(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.app.socket_path)
        return s

    def tcp(self, port):
        return lambda: socket.create_connection(("127.0.0.1", port), timeout=2)

    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as r:
            return r.status, r.read().decode()

    def test_tricklers_at_every_cap_lock_nobody_out(self):
        control = Tricklers(self.unix, 70, b'{"command": "status"}')
        metrics = Tricklers(self.tcp(self.metrics_port), 20, b"GET /metrics HTTP/1.1\r\n")
        dns_tcp = Tricklers(self.tcp(DNS_PORT + 1), 260, b"\x00\x20" + b"x" * 32)
        with control, metrics, dns_tcp:
            for _ in range(5):
                r = ctl("status", socket_path=self.app.socket_path)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("podgate ", r.stdout)
                status, body = self.scrape()
                self.assertEqual(status, 200)
                self.assertIn("podgate_control_socket_evicted_total", body)
                out = subprocess.run(["dig", "@127.0.0.1", "-p", str(DNS_PORT + 1), "+tcp",
                                      "+short", "+time=3", "+tries=1", APP_FQDN],
                                     capture_output=True, text=True, timeout=10).stdout
                self.assertEqual(out.split(), [VIP])
                time.sleep(0.5)
            c = Client(self.app.socket_path)
            try:
                stats = c.ask({"command": "stats"})
            finally:
                c.close()
            _, body = self.scrape()
        self.assertTrue(stats["ok"], stats)
        # More tricklers than slots: they evict each other (the stalest
        # first), never the administrator's fresh connection.  Those that
        # outlive their request deadline are closed as slow
        # (stream_server_test and metrics_http_test time that on a clock).
        cs = stats["control_socket"]
        self.assertGreater(cs["evicted"] + cs["closed_slow"], 0, cs)
        self.assertGreater(stats["dns"]["tcp_evicted"] + stats["dns"]["tcp_slow_closed"], 0)
        metric = {l.split()[0]: float(l.split()[1]) for l in body.splitlines()
                  if l.startswith("podgate_metrics_http_")}
        self.assertGreater(metric["podgate_metrics_http_evicted_total"] +
                           metric["podgate_metrics_http_closed_slow_total"], 0, metric)
        self.assertGreater(control.reconnects, 0)


class SocketOwnershipTest(unittest.TestCase):
    """Stale socket files are replaced; a live one refuses a second podgate;
    a clean exit removes the file."""

    def test_stale_replaced_live_refused_removed_on_exit(self):
        app = netlab.Appliance("pgctl2", dns_port=DNS_PORT + 1)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(app.socket_path)  # bound, never listening: as a crashed run leaves it
        stale.close()
        self.assertTrue(os.path.exists(app.socket_path))
        try:
            app.start(services(), {})
            self.assertTrue(status_ok(app.socket_path),
                            "the stale file was replaced by a live socket")
            second = netlab.Appliance("pgctl3", dns_port=DNS_PORT + 2)
            second.socket_path = app.socket_path
            second.write_config(services())
            proc = subprocess.run([netlab.podgate_binary(), "-c", second.config_path],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(proc.returncode, 1)
            self.assertIn(f"another podgate is serving {app.socket_path}",
                          proc.stdout + proc.stderr)
            self.assertTrue(status_ok(app.socket_path),
                            "the refused podgate left the live socket alone")
        finally:
            code = app.stop()
        self.assertEqual(code, 0)
        self.assertFalse(os.path.exists(app.socket_path), "a clean exit removes the socket")


if __name__ == "__main__":
    e2e_main.main()
