#!/usr/bin/env python3
"""End to end, dual-stack (issue 11): one service with an IPv4 and an IPv6
cluster IP, IPv4 and IPv6 Pods, real clients in network namespaces over
net_tap.  curl over IPv6 and over IPv4 reaches a Pod of the VIP's own
family; ping -6 is answered by the VIP; dig asks AAAA and the reverse of an
IPv6 Pod; a SIGHUP that adds an IPv6 endpoint leaves an IPv6 keep-alive
connection on its Pod; `stats`, `endpoints` and /metrics count the IPv6
Pods' traffic; a fragmented UDP datagram over IPv6 arrives whole.

Run as root: python3 tests/e2e/test_ipv6.py [-v]
PODGATE_BIN overrides the binary (default build/control/podgate).
"""
import os
import re
import socket
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import netlab  # noqa: E402
from netlab import endpoint  # noqa: E402

VIP4, VIP6 = "10.96.0.20", "fd00:96::20"
PODS4 = {"web-0": "172.17.0.10", "web-1": "172.17.0.11"}
PODS6 = {"web6-0": "fd00:17::10", "web6-1": "fd00:17::11", "web6-2": "fd00:17::12"}
HEADLESS6 = {"db-0": "fd00:17::20"}


def services(extra_v6_endpoint=False):
    v6 = [endpoint(PODS6["web6-0"], "web6-0"), endpoint(PODS6["web6-1"], "web6-1")]
    if extra_v6_endpoint:
        v6.append(endpoint(PODS6["web6-2"], "web6-2"))
    web = (f'\n[[services]]\nnamespace = "default"\nname = "web"\n'
           f'cluster_ips = ["{VIP4}", "{VIP6}"]\n'
           'ports = [{ name = "http", port = 80, target_port = 8080, protocol = "TCP" },\n'
           '         { name = "echo", port = 5353, target_port = 5353, protocol = "UDP" }]\n'
           "endpoints = [\n  " + ",\n  ".join(
               [endpoint(PODS4["web-0"], "web-0"), endpoint(PODS4["web-1"], "web-1")] + v6) + ",\n]\n")
    db = ('\n[[services]]\nnamespace = "default"\nname = "db"\ncluster_ip = "None"\n'
          'ports = [{ name = "sql", port = 5432, target_port = 5432, protocol = "TCP" }]\n'
          f'endpoints = [ {{ ip = "{HEADLESS6["db-0"]}", pod = "db-0", hostname = "db-0", subdomain = "db" }} ]\n')
    return web + db


def dig(app, *args):
    out = netlab.run("dig", "@127.0.0.1", "-p", str(app.dns_port), "+short", "+time=2", "+tries=2",
                     *args).stdout
    return sorted(line for line in out.split("\n") if line)


class Ipv6Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with socket.socket() as s:  # a free port for /metrics
            s.bind(("127.0.0.1", 0))
            cls.metrics_port = s.getsockname()[1]
        cls.app = netlab.Appliance("pgv6", ipv6=True, metrics_port=cls.metrics_port)
        cls.app.start(services(), {**PODS4, **PODS6, **HEADLESS6})

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def test_curl_over_ipv6_and_ipv4_reach_a_pod_of_the_vips_family(self):
        answers6 = self.app.curl_many(f"http://[{VIP6}]/", 40)
        self.assertNotIn(None, answers6, "every request to the IPv6 VIP succeeds")
        self.assertEqual(set(answers6), {"web6-0", "web6-1"}, "both IPv6 Pods answer, no IPv4 one")
        answers4 = self.app.curl_many(f"http://{VIP4}/", 40)
        self.assertNotIn(None, answers4)
        self.assertEqual(set(answers4), {"web-0", "web-1"}, "the IPv4 VIP reaches IPv4 Pods only")

    def test_stats_endpoints_and_metrics_count_ipv6_traffic_per_endpoint(self):
        self.assertNotIn(None, self.app.curl_many(f"http://[{VIP6}]/", 20))

        def web():
            entries = [s for s in self.app.ask({"command": "stats"})["services"]
                       if s["name"] == "default/web" and s["port"] == 80]
            self.assertEqual(len(entries), 1, "one entry per service port, both families in it")
            return entries[0]
        entry = web()
        self.assertEqual(entry["vips"], [VIP4, VIP6])
        by_ip = {e["ip"]: e for e in entry["endpoints"]}
        v6_in = sum(by_ip[ip]["packets_in"] for ip in (PODS6["web6-0"], PODS6["web6-1"]))
        self.assertGreaterEqual(v6_in, 20 * 3, "20 connections, at least SYN, ACK, request and FIN each")
        self.assertGreater(by_ip[PODS6["web6-0"]]["flows_created"], 0)
        self.assertGreater(by_ip[PODS6["web6-1"]]["packets_out"], 0)
        self.assertGreaterEqual(entry["packets_in"], v6_in, "the port's totals include its IPv6 VIP's")
        pods = self.app.ask({"command": "endpoints", "name": "default/web"})["endpoints"]
        web6_0 = next(e for e in pods if e["ip"] == PODS6["web6-0"])
        self.assertGreater(web6_0["ports"][0]["packets_in"], 0)

        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        series = re.compile(r'^podgate_endpoint_packets_total\{([^}]*)\} ([0-9]+)$', re.M)
        scraped = {labels: int(v) for labels, v in series.findall(text)}
        mine = [v for labels, v in scraped.items()
                if f'endpoint="[{PODS6["web6-0"]}]:8080"' in labels and 'direction="in"' in labels]
        self.assertEqual(len(mine), 1, text[:2000])
        self.assertGreater(mine[0], 0)

    def test_a_fragmented_udp_datagram_over_ipv6_arrives_whole_and_is_answered(self):
        # 4000 bytes over a 1500-byte link: the client's kernel sends three
        # fragments (RFC 8200 §4.5), podgate NATs each like the first, the
        # Pod's kernel reassembles them and echoes 4000+ bytes, fragmented
        # again, which podgate NATs back from the VIP.
        before = self.app.worker_totals()
        self.assertEqual(self.app.echoed_whole(netlab.CLIENT_IP6, VIP6, 5353, "web6-"), 10,
                         "datagrams echoed whole")
        totals = self.app.worker_totals()
        self.assertGreaterEqual(totals["rx_packets"] - before["rx_packets"], 60,
                                "three fragments each way per datagram")

    def test_maglev_shows_each_familys_table(self):
        v4 = self.app.ask({"command": "maglev", "name": "default/web"})
        self.assertEqual(v4["vip"], VIP4)
        self.assertEqual({e["pod"] for e in v4["ports"][0]["endpoints"]}, {"web-0", "web-1"})
        v6 = self.app.ask({"command": "maglev", "name": "default/web", "family": "ipv6"})
        self.assertEqual(v6["vip"], VIP6)
        self.assertEqual({e["pod"] for e in v6["ports"][0]["endpoints"]}, {"web6-0", "web6-1"})
        self.assertEqual(sum(e["slots"] for e in v6["ports"][0]["endpoints"]), v6["ports"][0]["table_size"])

    def test_the_ipv6_vip_answers_ping(self):
        out = netlab.ns_exec(self.app.client_ns, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", VIP6,
                             check=False).stdout
        self.assertIn("3 received", out)

    def test_dig_aaaa_and_reverse_of_an_ipv6_pod(self):
        self.assertEqual(dig(self.app, "AAAA", "web.default.svc.cluster.local"), [VIP6])
        self.assertEqual(dig(self.app, "A", "web.default.svc.cluster.local"), [VIP4])
        self.assertEqual(dig(self.app, "AAAA", "db.default.svc.cluster.local"), [HEADLESS6["db-0"]])
        self.assertEqual(dig(self.app, "AAAA", "db-0.db.default.svc.cluster.local"), [HEADLESS6["db-0"]])
        self.assertEqual(dig(self.app, "-x", HEADLESS6["db-0"]), ["db-0.db.default.svc.cluster.local."])
        self.assertEqual(dig(self.app, "-x", VIP6), ["web.default.svc.cluster.local."])

    def test_sighup_adding_an_ipv6_endpoint_keeps_a_keepalive_connection_on_its_pod(self):
        client = netlab.KeepAliveClient(self.app)
        try:
            opened = client.open(VIP6, 80, 12)
            self.assertEqual(len(opened), 12)
            before = {index: pod for index, _, pod in opened}
            self.assertTrue(set(before.values()) <= {"web6-0", "web6-1"})
            # `flows` lists them, IPv6 in brackets, by the service's name.
            listed = self.app.ask({"command": "flows", "service": "default/web", "limit": 1000})["flows"]
            ports = {f"[{netlab.CLIENT_IP6}]:{local}" for _, local, _ in opened}
            mine = [f for f in listed if f["client"] in ports]
            self.assertEqual(len(mine), 12, listed)
            self.assertTrue(all(f["vip"] == f"[{VIP6}]:80" and f["service"] == "default/web" for f in mine))
            self.assertTrue(self.app.reload(services(extra_v6_endpoint=True)))
            for index, pod in before.items():
                _, now = client.get(index)
                self.assertEqual(now, pod, "a keep-alive connection stays on its Pod across the change")
            # New connections may reach the new Pod.
            self.assertIn("web6-2", set(self.app.curl_many(f"http://[{VIP6}]/", 60)))
        finally:
            client.close()
            self.app.reload(services())


if __name__ == "__main__":
    e2e_main.main()
