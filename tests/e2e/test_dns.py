#!/usr/bin/env python3
"""End to end: cluster DNS with real clients (issue 3's acceptance tests).

`dig` and `kdig` ask podgate's kernel listener (127.0.0.1:DNS_PORT in the
root namespace) over UDP and TCP, and ask the DNS service VIP from the
client namespace, through the dataplane.  Every expectation is a row of
../../shared/design/dns.md.

Run as root: python3 tests/e2e/test_dns.py [-v]
PODGATE_BIN overrides the binary (default build/control/podgate).
"""
import os
import re
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import netlab  # noqa: E402

PORT = netlab.DNS_PORT
WILDCARD_PORT = PORT + 2  # a second listener, on 0.0.0.0
VIP = netlab.DNS_VIP
ZONE = "cluster.local"
APP = f"my-app.default.svc.{ZONE}."
MONGO = f"mongodb-service.default.svc.{ZONE}."
BIG = f"big.default.svc.{ZONE}."
BIG_COUNT = 300


def mongo_endpoint(i, ready=True):
    ready_text = "" if ready else ", ready = false"
    return (f'{{ ip = "172.17.1.{10 + i}", pod = "mongodb-{i}", hostname = "mongodb-{i}", '
            f'subdomain = "mongodb-service"{ready_text} }}')


def big_ip(i):
    return f"172.17.{10 + i // 250}.{1 + i % 250}"


def services(mongo_extra=()):
    mongo = [mongo_endpoint(0), mongo_endpoint(1), mongo_endpoint(2, ready=False)]
    mongo = ",\n  ".join(mongo + list(mongo_extra))
    big = ",\n  ".join(f'{{ ip = "{big_ip(i)}" }}' for i in range(BIG_COUNT))
    return f"""
[[services]]
namespace = "default"
name = "my-app"
cluster_ip = "10.96.0.20"
ports = [ {{ name = "http", port = 80, target_port = 8080 }} ]
endpoints = [ {{ ip = "172.17.0.10" }}, {{ ip = "172.17.0.11" }} ]

[[services]]
namespace = "default"
name = "mongodb-service"
cluster_ip = "None"
ports = [ {{ name = "mongo", port = 27017 }} ]
endpoints = [
  {mongo},
]

[[services]]
namespace = "default"
name = "big"
cluster_ip = "None"
endpoints = [
  {big},
]

[[services]]
namespace = "default"
name = "ext"
type = "ExternalName"
external_name = "www.example.com"
"""


class Answer:
    """A dig or kdig answer: status, header flags and sections, each record
    as (owner lowercased, type, rdata)."""

    def __init__(self, text):
        self.text = text
        status = re.search(r"status: (\w+)", text)
        flags = re.search(r";; [Ff]lags: ([a-z ]*);", text)
        if not status or not flags:
            raise AssertionError("no answer:\n" + text)
        self.status = status.group(1)
        self.flags = set(flags.group(1).split())
        self.sections = {"ANSWER": [], "AUTHORITY": [], "ADDITIONAL": []}
        current = None
        for line in text.splitlines():
            m = re.match(r";; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:", line)
            if m:
                current = m.group(1)
            elif not line.strip() or line.startswith(";"):
                current = None
            elif current:
                owner, _ttl, _klass, rtype, *rdata = line.split()
                self.sections[current].append((owner.lower(), rtype, " ".join(rdata)))

    @property
    def answer(self):
        return self.sections["ANSWER"]

    def rdata(self, rtype, section="ANSWER"):
        return sorted(r[2] for r in self.sections[section] if r[1] == rtype)

    def comparable(self):
        """What two servers giving the same answer agree on (the order of
        records rotates, so sections are compared as sorted lists)."""
        return (self.status, frozenset(self.flags),
                {k: sorted(v) for k, v in self.sections.items()})


def ask(name, qtype="A", tool="dig", tcp=False, server="127.0.0.1", port=PORT, extra=(),
        netns=None):
    args = [tool, f"@{server}", "-p", str(port), name, qtype]
    args += ["+time=2", "+tries=1"] if tool == "dig" else ["+time=2", "+retry=0"]
    if tcp:
        args.append("+tcp")
    args += list(extra)
    if netns:
        res = netlab.ns_exec(netns, *args, check=False)
    else:
        res = netlab.run(*args, check=False)
    return Answer(res.stdout)


def wire_query(name, qid, qtype=1):
    """A DNS query message (RFC 1035 §4.1) with RD set."""
    out = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0" + struct.pack(">HH", qtype, 1)


def read_framed(sock, count):
    """Reads `count` RFC 7766 length-prefixed messages."""
    data = b""
    messages = []
    while len(messages) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        while len(data) >= 2 and len(data) >= 2 + struct.unpack(">H", data[:2])[0]:
            n = struct.unpack(">H", data[:2])[0]
            messages.append(data[2:2 + n])
            data = data[2 + n:]
    return messages


class DnsTest(unittest.TestCase):
    TAG = "pgdns1"

    @classmethod
    def setUpClass(cls):
        cls.app = netlab.Appliance(cls.TAG)
        base = cls.app.base_config
        cls.app.base_config = lambda: base().replace(
            f'listen = ["127.0.0.1:{PORT}"]',
            f'listen = ["127.0.0.1:{PORT}", "0.0.0.0:{WILDCARD_PORT}"]')
        cls.app.start(services(), {})

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def setUp(self):
        if self.app.services != services():
            self.assertTrue(self.app.reload(services()))

    def assert_authoritative(self, a, status="NOERROR"):
        self.assertEqual(a.status, status, a.text)
        self.assertIn("aa", a.flags, "AA on every answer inside the zone")
        self.assertIn("rd", a.flags, "RD is copied from the query")
        self.assertNotIn("ra", a.flags, "podgate does not recurse")

    # --- the kernel listener ----------------------------------------------

    def test_cluster_ip_a_over_udp_and_tcp_with_dig_and_kdig(self):
        for tool in ("dig", "kdig"):
            for tcp in (False, True):
                with self.subTest(tool=tool, tcp=tcp):
                    a = ask(APP, "A", tool=tool, tcp=tcp)
                    self.assert_authoritative(a)
                    self.assertEqual(a.answer, [(APP, "A", "10.96.0.20")])

    def test_cluster_ip_srv_names_the_service_with_its_address_as_glue(self):
        for tool in ("dig", "kdig"):
            with self.subTest(tool=tool):
                a = ask(f"_http._tcp.{APP}", "SRV", tool=tool)
                self.assert_authoritative(a)
                self.assertEqual(a.rdata("SRV"), [f"0 100 80 {APP}"])
                self.assertIn((APP, "A", "10.96.0.20"), a.sections["ADDITIONAL"])

    def test_cluster_ip_ptr_names_the_service(self):
        a = ask("20.0.96.10.in-addr.arpa.", "PTR")
        self.assert_authoritative(a)
        self.assertEqual(a.rdata("PTR"), [APP])

    def test_headless_a_lists_only_ready_endpoints(self):
        for tool in ("dig", "kdig"):
            for tcp in (False, True):
                with self.subTest(tool=tool, tcp=tcp):
                    a = ask(MONGO, "A", tool=tool, tcp=tcp)
                    self.assert_authoritative(a)
                    self.assertEqual(a.rdata("A"), ["172.17.1.10", "172.17.1.11"],
                                     "mongodb-2 is not ready")

    def test_statefulset_pod_has_a_stable_name_and_a_not_ready_one_does_not(self):
        for tool in ("dig", "kdig"):
            with self.subTest(tool=tool):
                a = ask(f"mongodb-0.{MONGO}", "A", tool=tool)
                self.assert_authoritative(a)
                self.assertEqual(a.answer, [(f"mongodb-0.{MONGO}", "A", "172.17.1.10")])
                gone = ask(f"mongodb-2.{MONGO}", "A", tool=tool)
                self.assert_authoritative(gone, "NXDOMAIN")

    def test_pod_name_is_matched_case_insensitively_and_echoed_as_asked(self):
        a = ask("MongoDB-0.MONGODB-Service.default.svc.Cluster.Local.", "A")
        self.assert_authoritative(a)
        self.assertEqual(a.rdata("A"), ["172.17.1.10"])
        # DNS 0x20: the answer's owner has the question's bytes, not the zone's.
        self.assertRegex(a.text, r"(?m)^MongoDB-0\.MONGODB-Service\.default\.svc\.Cluster\.Local\."
                                 r"\s+\d+\s+IN\s+A\s+172\.17\.1\.10$")

    def test_headless_srv_has_one_target_per_ready_pod_with_their_addresses(self):
        for tcp in (False, True):
            with self.subTest(tcp=tcp):
                a = ask(f"_mongo._tcp.{MONGO}", "SRV", tcp=tcp)
                self.assert_authoritative(a)
                self.assertEqual(a.rdata("SRV"), [f"0 50 27017 mongodb-0.{MONGO}",
                                                  f"0 50 27017 mongodb-1.{MONGO}"])
                self.assertEqual(a.rdata("A", "ADDITIONAL"), ["172.17.1.10", "172.17.1.11"])

    def test_unknown_name_is_nxdomain_with_the_zone_soa(self):
        for tool in ("dig", "kdig"):
            with self.subTest(tool=tool):
                a = ask(f"nope.default.svc.{ZONE}.", "A", tool=tool)
                self.assert_authoritative(a, "NXDOMAIN")
                self.assertEqual(a.answer, [])
                soa = a.sections["AUTHORITY"]
                self.assertEqual(len(soa), 1)
                owner, rtype, rdata = soa[0]
                self.assertEqual((owner, rtype), (f"{ZONE}.", "SOA"))
                self.assertRegex(rdata, rf"^ns\.dns\.{ZONE}\. hostmaster\.{ZONE}\. \d+ 7200 1800 "
                                        r"86400 30$")

    def test_existing_name_without_the_type_is_nodata_with_soa(self):
        a = ask(APP, "AAAA")
        self.assert_authoritative(a, "NOERROR")
        self.assertEqual(a.answer, [])
        self.assertEqual([r[1] for r in a.sections["AUTHORITY"]], ["SOA"])

    def test_external_name_is_a_cname_not_chased(self):
        a = ask(f"ext.default.svc.{ZONE}.", "A")
        self.assert_authoritative(a)
        self.assertEqual(a.answer, [(f"ext.default.svc.{ZONE}.", "CNAME", "www.example.com.")])

    def test_300_endpoint_headless_service_truncates_over_udp_and_is_complete_over_tcp(self):
        udp = ask(BIG, "A", extra=["+ignore", "+noedns"])
        self.assertIn("tc", udp.flags, "300 A records do not fit 512 octets")
        self.assertLess(len(udp.answer), BIG_COUNT)
        edns = ask(BIG, "A", extra=["+ignore"])
        self.assertIn("tc", edns.flags, "300 A records do not fit 1232 octets either")
        for tool in ("dig", "kdig"):
            with self.subTest(tool=tool):
                tcp = ask(BIG, "A", tool=tool, tcp=True)
                self.assert_authoritative(tcp)
                self.assertNotIn("tc", tcp.flags)
                self.assertEqual(tcp.rdata("A"), sorted(big_ip(i) for i in range(BIG_COUNT)))
        # Without +ignore, dig itself retries a truncated answer over TCP.
        retried = ask(BIG, "A")
        self.assertEqual(len(retried.answer), BIG_COUNT)

    def test_wildcard_listener_answers_from_the_address_it_was_asked_on(self):
        # 127.0.0.2 is on lo too; an answer from 127.0.0.1 would be refused
        # by dig ("reply from unexpected source").
        for server in ("127.0.0.1", "127.0.0.2"):
            with self.subTest(server=server):
                a = ask(APP, "A", server=server, port=WILDCARD_PORT)
                self.assertEqual(a.rdata("A"), ["10.96.0.20"])

    def test_pipelined_tcp_queries_arriving_in_pieces_are_all_answered_in_order(self):
        names = [APP, MONGO, f"nope.{ZONE}."]
        stream = b"".join(struct.pack(">H", len(q)) + q
                          for q in (wire_query(n, 100 + i) for i, n in enumerate(names)))
        with socket.create_connection(("127.0.0.1", PORT), timeout=5) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Split inside a length prefix and inside a message.
            for piece in (stream[:1], stream[1:7], stream[7:40], stream[40:]):
                s.sendall(piece)
                time.sleep(0.05)
            answers = read_framed(s, len(names))
        self.assertEqual(len(answers), 3)
        ids = [struct.unpack(">H", a[:2])[0] for a in answers]
        rcodes = [a[3] & 0x0f for a in answers]
        ancounts = [struct.unpack(">H", a[6:8])[0] for a in answers]
        self.assertEqual(ids, [100, 101, 102])
        self.assertEqual(rcodes, [0, 0, 3])
        self.assertEqual(ancounts, [1, 2, 0])

    def test_stalled_tcp_client_does_not_stall_udp_or_other_tcp_clients(self):
        stalled = socket.create_connection(("127.0.0.1", PORT), timeout=5)
        try:
            stalled.sendall(b"\x00")  # one octet of a length prefix, then nothing
            for i in range(5):
                a = ask(APP, "A")
                self.assertEqual(a.rdata("A"), ["10.96.0.20"], f"UDP query {i}")
            a = ask(MONGO, "A", tool="kdig", tcp=True)
            self.assertEqual(a.rdata("A"), ["172.17.1.10", "172.17.1.11"])
            self.assertRegex(self.app.counters(), r"tcp_open=[1-9]")
        finally:
            stalled.close()

    def test_idle_tcp_connection_is_closed_by_the_server(self):
        with socket.create_connection(("127.0.0.1", PORT), timeout=30) as s:
            # The server's idle timeout is 10 s; recv returns b"" on its FIN.
            self.assertEqual(s.recv(1), b"")
        self.assertRegex(self.app.counters(), r"tcp_idle_closed=[1-9]")

    def test_a_query_not_whole_within_5_s_closes_the_connection(self):
        # Issue 15: a byte now and then kept a connection (and its slot)
        # for ever; a query must be whole 5 s after its first byte.
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", PORT), timeout=30) as s:
            s.sendall(b"\x00")
            closed = False
            while not closed and time.monotonic() - start < 20:
                time.sleep(1)
                try:
                    s.sendall(b"\x20")  # never idle: a byte a second
                    s.settimeout(0.01)
                    closed = s.recv(1) == b""
                except socket.timeout:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
            self.assertTrue(closed, "the trickling connection was closed")
        self.assertLess(time.monotonic() - start, 9, "before the 10 s idle timeout could")
        self.assertRegex(self.app.counters(), r"tcp_slow_closed=[1-9]")

    def test_reload_adding_an_endpoint_shows_in_the_next_answer(self):
        before = ask(f"{ZONE}.", "SOA")
        serial_before = int(before.rdata("SOA")[0].split()[2])
        self.assertTrue(self.app.reload(services([mongo_endpoint(3)])))
        a = ask(MONGO, "A")
        self.assertEqual(a.rdata("A"), ["172.17.1.10", "172.17.1.11", "172.17.1.13"])
        pod = ask(f"mongodb-3.{MONGO}", "A", tcp=True)
        self.assertEqual(pod.rdata("A"), ["172.17.1.13"])
        after = ask(f"{ZONE}.", "SOA")
        self.assertGreater(int(after.rdata("SOA")[0].split()[2]), serial_before,
                           "the SOA serial changes with the zone")

    # --- the dataplane: the DNS VIP from the client namespace --------------

    def test_dns_vip_through_the_dataplane_answers_as_the_kernel_listener(self):
        queries = [(APP, "A"), (f"_http._tcp.{APP}", "SRV"), ("20.0.96.10.in-addr.arpa.", "PTR"),
                   (MONGO, "A"), (f"mongodb-0.{MONGO}", "A"), (f"_mongo._tcp.{MONGO}", "SRV"),
                   (f"nope.default.svc.{ZONE}.", "A"), (APP, "AAAA"),
                   (f"{ZONE}.", "NS"), ("example.com.", "A")]
        for name, qtype in queries:
            with self.subTest(name=name, qtype=qtype):
                kernel = ask(name, qtype)
                vip = ask(name, qtype, server=VIP, port=53, netns=self.app.client_ns)
                self.assertEqual(vip.comparable(), kernel.comparable(), vip.text)
        self.assertRegex(self.app.counters(), r"queries_dataplane=[1-9]")

    def test_dns_vip_truncates_a_large_answer_like_the_kernel_listener(self):
        vip = ask(BIG, "A", server=VIP, port=53, netns=self.app.client_ns,
                  extra=["+ignore", "+noedns"])
        self.assert_authoritative(vip)
        self.assertIn("tc", vip.flags)
        kernel = ask(BIG, "A", extra=["+ignore", "+noedns"])
        self.assertEqual(len(vip.answer), len(kernel.answer))

    def test_dns_vip_answers_ping(self):
        res = netlab.ns_exec(self.app.client_ns, "ping", "-c", "1", "-W", "2", VIP, check=False)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def test_an_idle_control_thread_sleeps_and_a_query_to_the_dns_vip_wakes_it(self):
        # control/control_wait.hpp: the control loop turns every millisecond
        # only while it has work; idle, it sleeps up to 50 ms, and a worker
        # that punts a packet (here a DNS query to the VIP) rings its doorbell.
        def control():
            return self.app.ask({"command": "stats"})["control"]
        before = control()
        time.sleep(1.0)
        idle = control()
        turns = idle["loop_turns"] - before["loop_turns"]
        self.assertLess(turns, 200, f"{turns} turns in an idle second: the loop did not sleep")
        # A query finds the thread asleep unless it arrives while the thread
        # is awake (on these two shared CPUs, e.g. preempted by dig's own
        # start before it could sleep again): then no ring is needed.  One
        # ring in up to 20 queries shows the doorbell at work.
        rings = 0
        for _ in range(20):
            time.sleep(0.2)  # idle again
            vip = ask(APP, "A", server=VIP, port=53, netns=self.app.client_ns)
            self.assert_authoritative(vip)
            rings = control()["doorbell_rings"] - idle["doorbell_rings"]
            if rings > 0:
                break
        self.assertGreater(rings, 0, "no query woke the control thread: each waited for its timeout")


class DnsStartupTest(unittest.TestCase):
    def test_start_fails_naming_the_listen_address_another_server_holds(self):
        port = PORT + 7
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        app = netlab.Appliance("pgdns2", dns_port=port)
        try:
            app.write_config(services())
            res = netlab.run(netlab.podgate_binary(), "-c", app.config_path, check=False,
                             timeout=60)
        finally:
            holder.close()
        self.assertNotEqual(res.returncode, 0)
        self.assertIn(f"dns.listen: cannot bind TCP 127.0.0.1:{port}: Address already in use",
                      res.stdout + res.stderr)


if __name__ == "__main__":
    e2e_main.main()
