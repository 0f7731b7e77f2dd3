#!/usr/bin/env python3
"""End to end: podgate-gen against podgate over net_memif (issue 5).

podgate's two ports are memif servers; podgate-gen opens the client side of
both, plays the clients on the uplink and the Pods on the pods port, and
checks every packet (the lab: tools/memiflab.py).  Low rates, a couple of
seconds per run; no timing or throughput is asserted.  The IPv6 classes run
podgate dual-stack (issue 11) and podgate-gen in its IPv6 mode.

Run as root: python3 tests/e2e/test_trafficgen.py [-v]
PODGATE_BIN overrides build/control/podgate, PODGATE_GEN_BIN
build/tools/trafficgen/podgate-gen.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import memiflab  # noqa: E402
from memiflab import endpoint_flows, service_arg  # noqa: E402

GEN = memiflab.gen_binary()

PODS = ["172.17.0.10", "172.17.0.11", "172.17.0.12"]
WEB = ("10.96.0.20", 80, 8080, "TCP", PODS)          # three Pods
DNS = ("10.96.0.30", 5353, 5354, "UDP", PODS[:2])    # two Pods

# Dual-stack: each service has a VIP of each family, and Pods of each; each
# VIP forwards to its own family's Pods.
PODS6 = ["fd00:17::10", "fd00:17::11", "fd00:17::12"]
WEB6 = ("fd00:96::20", 80, 8080, "TCP", PODS6)
DNS6 = ("fd00:96::30", 5353, 5354, "UDP", PODS6[:2])
CLIENTS6 = "2001:db8:100::1-2001:db8:100::14"       # 20 clients, as the IPv4 runs


def start_podgate(prefix, static_neighbors):
    """podgate serving WEB and DNS; with static neighbours for the Pods and
    the client gateway (the benchmark setup), or without (ARP)."""
    services = "".join(memiflab.service_toml(name, vip, port, target, proto,
                                             memiflab.ready_endpoints(pods))
                       for name, (vip, port, target, proto, pods) in (("web", WEB), ("dns", DNS)))
    return memiflab.MemifPodgate(prefix, services, neighbors=PODS if static_neighbors else None)


def generate(podgate, *options, services=None):
    """Runs podgate-gen against podgate with clients 198.51.100.1-20 and the
    expected services (default: WEB and DNS as configured); returns
    (exit code, parsed --json results or None, output)."""
    if services is None:
        services = [service_arg(*WEB), service_arg(*DNS)]
    args = ["--clients", "198.51.100.1-198.51.100.20"]
    for s in services:
        args += ["--service", s]
    return podgate.generate(*args, *options)


class TrafficGenTest(unittest.TestCase):
    """podgate with static neighbours: the benchmark setup."""

    @classmethod
    def setUpClass(cls):
        cls.podgate = start_podgate("pgtg", static_neighbors=True)

    @classmethod
    def tearDownClass(cls):
        cls.podgate.stop()

    def test_every_packet_reaches_a_right_pod_intact_and_replies_are_reverse_natted(self):
        code, r, out = generate(self.podgate, "--flows", "1000", "--rate", "20000",
                                "--duration", "2", "--reply", "--max-loss", "0")
        self.assertIsNotNone(r, out)
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertGreater(r["tx"]["packets"], 0, out)
        self.assertGreater(r["tx"]["syn"], 0, "TCP flows open with a SYN")
        self.assertEqual(r["loss"]["packets"], 0, out)
        self.assertEqual(r["rx_pods"]["packets"], r["tx"]["packets"], out)
        self.assertEqual(r["flows"]["seen"], 1000, "every flow reached a Pod")
        # Every flow stayed on its first Pod (flow_moved is a violation),
        # and every Pod of each service took some flows.
        self.assertEqual(r["violations"]["pod_flow_moved"], 0)
        shares = endpoint_flows(r)
        self.assertEqual(set(shares), {"10.96.0.20:80/TCP", "10.96.0.30:5353/UDP"})
        for service, pods in shares.items():
            self.assertTrue(all(n > 0 for n in pods.values()), f"{service}: {pods}")
        self.assertEqual(sum(sum(p.values()) for p in shares.values()), 1000)
        # Replies: every answer came back from VIP:port to the client.
        self.assertEqual(r["replies"]["sent"], r["rx_pods"]["packets"])
        self.assertEqual(r["replies"]["received"], r["replies"]["sent"], out)
        self.assertEqual(r["violations"]["reply_wrong_source"], 0)
        self.assertGreater(r["latency_ns"]["client_to_pod"]["count"], 0)
        self.assertGreater(r["latency_ns"]["round_trip"]["count"], 0)
        self.assertTrue(r["ok"])
        self.assertEqual(code, 0, out)

    def test_wrong_expected_endpoints_are_reported_as_violations(self):
        # Expect the web service on one of its three Pods only: packets
        # podgate rightly sends to the other two must be flagged.
        wrong_web = service_arg(WEB[0], WEB[1], WEB[2], WEB[3], PODS[:1])
        code, r, out = generate(self.podgate, "--flows", "300", "--rate", "20000", "--count", "3000",
                                services=[wrong_web, service_arg(*DNS)])
        self.assertIsNotNone(r, out)
        self.assertGreater(r["violations"]["pod_wrong_endpoint"], 0, out)
        self.assertEqual(r["violations"]["pod_wrong_source"], 0)
        self.assertFalse(r["ok"])
        self.assertEqual(code, 1, out)
        self.assertIn("pod_wrong_endpoint", out)

    def test_wrong_target_port_is_reported(self):
        wrong_port = service_arg(DNS[0], DNS[1], DNS[2] + 1, DNS[3], DNS[4])
        code, r, out = generate(self.podgate, "--flows", "100", "--count", "1000", "--rate", "20000",
                                services=[wrong_port])
        self.assertIsNotNone(r, out)
        self.assertEqual(r["violations"]["pod_wrong_endpoint"], r["rx_pods"]["packets"], out)
        self.assertEqual(code, 1, out)

    def test_new_flows_sends_every_packet_as_the_syn_of_a_new_connection(self):
        code, r, out = generate(self.podgate, "--new-flows", "--rate", "20000", "--count", "3000",
                                "--clients", "198.51.100.21-198.51.100.30",
                                services=[service_arg(*WEB)])
        self.assertIsNotNone(r, out)
        self.assertEqual(r["tx"]["syn"], r["tx"]["packets"], "every packet is a SYN")
        self.assertEqual(r["tx"]["packets"], 3000)
        # Each SYN reached a ready Pod of the service, checksums intact.
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertEqual(r["rx_pods"]["packets"], 3000, out)
        self.assertEqual(sum(e["packets"] for s in r["services"] for e in s["endpoints"]), 3000)
        self.assertEqual(code, 0, out)

    def test_no_check_counts_arrivals_without_judging_them(self):
        # The same wrong expectation that fails the test above passes
        # unjudged: --no-check only counts (the testpmd baseline's mode).
        wrong_web = service_arg(WEB[0], WEB[1], WEB[2], WEB[3], PODS[:1])
        code, r, out = generate(self.podgate, "--flows", "300", "--rate", "20000", "--count", "3000",
                                "--no-check", services=[wrong_web])
        self.assertIsNotNone(r, out)
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertEqual(r["rx_pods"]["packets"], 3000, out)
        self.assertEqual(code, 0, out)

    def test_new_flows_refuses_udp_services_and_reply(self):
        res = subprocess.run([GEN, "--", "--new-flows", "--service", service_arg(*DNS)],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn("is not a TCP service", res.stderr)
        res = subprocess.run([GEN, "--", "--new-flows", "--reply", "--service", service_arg(*WEB)],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--new-flows and --reply do not go together", res.stderr)

    def test_usage_errors_exit_2_without_starting_eal(self):
        res = subprocess.run([GEN, "--", "--flows", "0"], capture_output=True, text=True, timeout=30)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--flows: '0' is not in 1..67108864", res.stderr)
        help_ = subprocess.run([GEN, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(help_.returncode, 0)
        for option in ("--service", "--services", "--clients", "--client-ports", "--flows",
                       "--size", "--rate", "--duration", "--count", "--drain-ms", "--reply",
                       "--json", "--csv", "--max-loss", "--tx-lcores", "--rx-lcores",
                       "--new-flows", "--no-check", "--steer-workers"):
            self.assertIn(option, help_.stdout)


def start_dual_stack_podgate(prefix, static_neighbors, workers=1):
    """podgate serving WEB/WEB6 and DNS/DNS6 as two dual-stack services."""
    services = "".join(
        memiflab.service_toml(name, [v4[0], v6[0]], v4[1], v4[2], v4[3],
                              memiflab.ready_endpoints(v4[4] + v6[4]))
        for name, v4, v6 in (("web", WEB, WEB6), ("dns", DNS, DNS6)))
    return memiflab.MemifPodgate(prefix, services, ipv6=True, workers=workers,
                                 neighbors=PODS + PODS6 if static_neighbors else None)


def generate6(podgate, *options, services=None):
    """generate() for IPv6: clients 2001:db8:100::1-14 to WEB6 and DNS6."""
    if services is None:
        services = [service_arg(*WEB6), service_arg(*DNS6)]
    args = ["--ipv6", "--clients", CLIENTS6]
    for s in services:
        args += ["--service", s]
    return podgate.generate(*args, *options)


class TrafficGenIpv6Test(unittest.TestCase):
    """Dual-stack podgate with static neighbours; podgate-gen sends IPv6
    flows to the IPv6 VIPs and checks them at the IPv6 Pods."""

    @classmethod
    def setUpClass(cls):
        cls.podgate = start_dual_stack_podgate("pgtg6", static_neighbors=True)

    @classmethod
    def tearDownClass(cls):
        cls.podgate.stop()

    def test_every_ipv6_packet_reaches_a_right_pod_intact_and_replies_are_reverse_natted(self):
        code, r, out = generate6(self.podgate, "--flows", "1000", "--rate", "20000",
                                 "--duration", "2", "--reply", "--max-loss", "0")
        self.assertIsNotNone(r, out)
        self.assertEqual(r["config"]["family"], "IPv6")
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertGreater(r["tx"]["packets"], 0, out)
        self.assertGreater(r["tx"]["syn"], 0, "TCP flows open with a SYN")
        self.assertEqual(r["loss"]["packets"], 0, out)
        self.assertEqual(r["rx_pods"]["packets"], r["tx"]["packets"], out)
        self.assertEqual(r["flows"]["seen"], 1000, "every flow reached a Pod")
        shares = endpoint_flows(r)
        self.assertEqual(set(shares), {"[fd00:96::20]:80/TCP", "[fd00:96::30]:5353/UDP"})
        for service, pods in shares.items():
            self.assertTrue(all(n > 0 for n in pods.values()), f"{service}: {pods}")
        self.assertEqual(sum(sum(p.values()) for p in shares.values()), 1000)
        self.assertEqual(r["replies"]["sent"], r["rx_pods"]["packets"])
        self.assertEqual(r["replies"]["received"], r["replies"]["sent"], out)
        self.assertTrue(r["ok"])
        self.assertEqual(code, 0, out)

    def test_ipv4_flows_to_the_same_dual_stack_services_still_pass(self):
        code, r, out = generate(self.podgate, "--flows", "500", "--rate", "20000", "--count", "4000",
                                "--reply", "--max-loss", "0")
        self.assertIsNotNone(r, out)
        self.assertEqual(r["config"]["family"], "IPv4")
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertEqual(r["rx_pods"]["packets"], 4000, out)
        self.assertEqual(code, 0, out)

    def test_services_file_gives_the_ipv6_vips_and_pods_of_dual_stack_services(self):
        code, r, out = self.podgate.generate("--ipv6", "--services", self.podgate.config,
                                             "--clients", CLIENTS6, "--flows", "200",
                                             "--rate", "20000", "--count", "2000", "--size", "90")
        self.assertIsNotNone(r, out)
        self.assertEqual(set(endpoint_flows(r)), {"[fd00:96::20]:80/TCP", "[fd00:96::30]:5353/UDP"})
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertEqual(r["rx_pods"]["packets"], 2000, out)
        self.assertEqual(code, 0, out)

    def test_smallest_ipv6_udp_frames_and_a_syn_flood(self):
        code, r, out = generate6(self.podgate, "--flows", "100", "--rate", "20000", "--count", "2000",
                                 "--size", "78", services=[service_arg(*DNS6)])
        self.assertIsNotNone(r, out)
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertEqual(r["rx_pods"]["packets"], 2000, out)
        self.assertEqual(code, 0, out)
        code, r, out = generate6(self.podgate, "--new-flows", "--rate", "20000", "--count", "2000",
                                 "--clients", "2001:db8:100::21-2001:db8:100::2a",
                                 services=[service_arg(*WEB6)])
        self.assertIsNotNone(r, out)
        self.assertEqual(r["tx"]["syn"], 2000)
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertEqual(r["rx_pods"]["packets"], 2000, out)
        self.assertEqual(code, 0, out)

    def test_wrong_expected_ipv6_endpoints_are_reported_as_violations(self):
        wrong_web = service_arg(WEB6[0], WEB6[1], WEB6[2], WEB6[3], PODS6[:1])
        code, r, out = generate6(self.podgate, "--flows", "300", "--rate", "20000", "--count", "3000",
                                 services=[wrong_web])
        self.assertIsNotNone(r, out)
        self.assertGreater(r["violations"]["pod_wrong_endpoint"], 0, out)
        self.assertEqual(r["violations"]["pod_wrong_source"], 0)
        self.assertIn("[fd00:17::1", r["violation_examples"]["pod_wrong_endpoint"])
        self.assertEqual(code, 1, out)

    def test_ipv6_usage_errors(self):
        mixed = f"[{WEB6[0]}]:80/tcp=172.17.0.10:8080"
        for args, message in (
                (["--service", mixed], "every address of a run is IPv6"),
                (["--ipv6", "--service", service_arg(*WEB)], "every address of a run is IPv6"),
                (["--service", service_arg(*WEB6), "--clients", "198.51.100.1"],
                 "must be IPv6 addresses"),
                (["--clients", "2001:db8::1-2001:db9::1", "--service", service_arg(*WEB6)],
                 "differing in the last 32 bits only"),
                (["--service", service_arg(*DNS6), "--size", "77"], "at least 78 bytes")):
            res = subprocess.run([GEN, "--no-huge", "--no-pci", "-m", "64", "--no-shconf",
                                  "--file-prefix", "pgtg6usage", "--", *args],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(res.returncode, 2, (args, res.stdout, res.stderr))
            self.assertIn(message, res.stderr, args)


class TrafficGenNdpTest(unittest.TestCase):
    """Dual-stack podgate without static neighbours: it resolves the IPv6
    Pods and client gateway by NDP, and the generator answers for them
    (and resolves podgate itself with a solicitation)."""

    def test_generator_answers_ndp_and_ipv6_packets_stay_valid(self):
        podgate = start_dual_stack_podgate("pgtgn", static_neighbors=False)
        try:
            code, r, out = generate6(podgate, "--flows", "200", "--rate", "5000", "--duration", "1",
                                     "--reply", "--drain-ms", "1500")
        finally:
            podgate.stop()
        self.assertIsNotNone(r, out)
        self.assertGreaterEqual(r["ndp"]["answered"], len(PODS6) + 1, out)
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertEqual(r["flows"]["seen"], 200, out)
        self.assertGreater(r["replies"]["received"], 0, out)
        self.assertEqual(code, 0, out)


class TrafficGenSteeringTest(unittest.TestCase):
    """Two workers on memif ports (no RSS).  podgate-gen --steer-workers
    sends each flow on the queue of the worker that owns it, as a NIC with
    RSS on the client's source would (issue 9): no packet is handed off.
    Without it the generator sends everything on queue 0, and worker 0
    hands worker 1's packets over.  The service is dual-stack, so that IPv6
    flows are steered by the same ownership function over IPv6 sources.

    The uplink says its peer steers (steered_by_peer), so the workers take
    its queues' packets as their own without hashing them.  That trust
    decides no owner: a SYN on a queue not its owner's is still handed on,
    and a later packet there misses the owner's flow and is handed on too.
    So a steered run with no handoff still shows that podgate-gen and
    podgate agree on every owner, and an unsteered run, a peer that says it
    steers and does not, still delivers every packet."""

    @classmethod
    def setUpClass(cls):
        services = memiflab.service_toml("web", [WEB[0], WEB6[0]], *WEB[1:4],
                                         memiflab.ready_endpoints(PODS + PODS6))
        cls.podgate = memiflab.MemifPodgate("pgtgs", services, neighbors=PODS + PODS6, workers=2,
                                            ipv6=True, steered_uplink=True)

    @classmethod
    def tearDownClass(cls):
        cls.podgate.stop()

    def handoffs(self):
        return sum(w["counters"]["handoff_out"] for w in self.podgate.ask("stats")["workers"])

    def drops(self):
        """podgate's drops by reason, over both workers (the nonzero ones)."""
        total = {}
        for w in self.podgate.ask("stats")["workers"]:
            for reason, n in w["drops"].items():
                total[reason] = total.get(reason, 0) + n
        return {reason: n for reason, n in total.items() if n}

    def run_flows(self, *options, ipv6=False):
        before = self.handoffs()
        code, r, out = (generate6 if ipv6 else generate)(
            self.podgate, "--flows", "1000", "--rate", "20000", "--count", "4000",
            "--tx-queues", "2", "--rx-queues", "3", *options,
            services=[service_arg(*(WEB6 if ipv6 else WEB))])
        self.assertIsNotNone(r, out)
        self.assertEqual(r["violations"]["total"], 0, out)
        # Where a packet went missing: podgate's drops say whether it did.
        self.assertEqual(r["rx_pods"]["packets"], 4000, f"{out}\npodgate drops: {self.drops()}")
        self.assertEqual(code, 0, out)
        return self.handoffs() - before

    def test_steered_flows_reach_their_owner_with_no_handoff(self):
        self.assertEqual(self.run_flows("--steer-workers", "2"), 0)

    def test_unsteered_flows_are_handed_to_their_owner(self):
        self.assertGreater(self.run_flows(), 0)

    def test_steered_syn_flood_reaches_the_owners_with_no_handoff(self):
        self.assertEqual(self.run_flows("--steer-workers", "2", "--new-flows"), 0)

    def test_steered_ipv6_flows_reach_their_owner_with_no_handoff(self):
        self.assertEqual(self.run_flows("--steer-workers", "2", ipv6=True), 0)
        self.assertEqual(self.run_flows("--steer-workers", "2", "--new-flows", ipv6=True), 0)

    def test_unsteered_ipv6_flows_are_handed_to_their_owner(self):
        self.assertGreater(self.run_flows(ipv6=True), 0)

    def test_the_log_says_which_port_its_peer_steers(self):
        log = self.podgate.log_text()
        self.assertIn("port 'uplink': flows owned by the client's address, the packets' source; "
                      "steered by its peer (steered_by_peer): each connection arrives at its owner",
                      log)
        self.assertIn("port 'pods': flows owned by the client's address, the packets' destination; "
                      "no RSS on it: packets are handed to their owner", log)

    def test_steering_needs_a_queue_per_worker(self):
        res = subprocess.run([GEN, "--", "--steer-workers", "4", "--tx-queues", "2",
                              "--service", service_arg(*WEB)], capture_output=True, text=True)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--steer-workers 4 needs --tx-queues 4 or more", res.stderr + res.stdout)


class TrafficGenArpTest(unittest.TestCase):
    """podgate without static neighbours: it resolves the Pods and the
    client gateway by ARP, and the generator answers for them."""

    def test_generator_answers_arp_and_packets_stay_valid(self):
        podgate = start_podgate("pgtga", static_neighbors=False)
        try:
            code, r, out = generate(podgate, "--flows", "200", "--rate", "5000", "--duration", "1",
                                    "--reply", "--drain-ms", "1500")
        finally:
            podgate.stop()
        self.assertIsNotNone(r, out)
        # podgate asked for every Pod it sent to and for the client gateway.
        self.assertGreaterEqual(r["arp"]["answered"], len(PODS) + 1, out)
        self.assertEqual(r["violations"]["total"], 0, out)
        self.assertEqual(r["flows"]["seen"], 200, out)
        # Packets that wait for ARP in podgate may be dropped (its queue is
        # bounded), so loss is not asserted here; replies must come back.
        self.assertGreater(r["replies"]["received"], 0, out)
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    e2e_main.main()
