#!/usr/bin/env python3
"""End to end: three podgate appliances behind an ECMP router, announced by
BGP through BIRD, with connections that survive an appliance's death
(issue 10; topology in tools/scaleout_lab.py, design in docs/scale-out.md).

Shows, in order (the tests share one lab and run in name order):
  a. each VIP, and the cluster DNS address, is learnt from every appliance
     (a multipath route), announced only once the workers forward; a query
     to the DNS address through the router is answered;
  b. traffic is spread over the appliances;
  c. 200 keep-alive connections carry on, on the same Pod, after one
     appliance is killed with SIGKILL, and new connections succeed;
  d. a deleted service's route is withdrawn;
  e. a route the kernel lost (deleted by hand, or with the twin taken down
     and up) is added again, and the router learns it again;
  f. drain withdraws every route while established connections carry on,
     undrain brings the routes back;
  g. a clean stop withdraws the routes first and forwards for its
     [announce] stop_grace, then exits, the router having dropped it before;
  h. a second signal during that grace stops at once.

Skipped, saying why, where BIRD (Debian's bird2) is not installed.
Run as root: python3 tests/e2e/test_scale_out.py [-v]
"""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import scaleout_lab  # noqa: E402
from netlab import KeepAliveClient, endpoint, ns_exec, service_toml  # noqa: E402

DNS_VIP = "10.96.0.10"  # scaleout_lab's [dns] service_ip
VIP = "10.96.0.20"
OTHER_VIP = "10.96.0.21"
PODS = {"web-0": "172.17.0.10", "web-1": "172.17.0.11", "web-2": "172.17.0.12"}
CONNECTIONS = 200
ROUTER_CLIENT_SIDE = "198.51.100.1"  # the router's address towards the client


def services():
    pods = [endpoint(ip, name) for name, ip in PODS.items()]
    # "other" on the Pods' UDP echo port: a Pod port that backs two service
    # ports could not be reverse-NATed where its connection is unknown
    # (podgate warns), and replies here return through any appliance.
    return (service_toml("default", "web", VIP, [("http", 80, 8080, "TCP")], pods) +
            service_toml("default", "other", OTHER_VIP, [("echo", 5353, 5353, "UDP")], pods))


@unittest.skipUnless(scaleout_lab.bird_available(),
                     "BIRD 2 (Debian package bird2) is not installed: tools/setup.sh installs it")
class ScaleOutTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lab = scaleout_lab.ScaleOutLab("so")
        cls.lab.start(services(), PODS)
        cls.uplinks = [f"10.0.{a.i}.1" for a in cls.lab.appliances]
        cls.lab.wait_for(lambda: cls.lab.router_nexthops(VIP) == cls.uplinks,
                         "the router to learn the VIP from every appliance")
        cls.keepalive = KeepAliveClient(cls.lab)
        cls.connections = None

    @classmethod
    def tearDownClass(cls):
        cls.keepalive.close()
        codes = cls.lab.stop()
        # The killed appliance aside, each stopped cleanly.
        assert codes[0] == 0 and codes[2] == 0, f"exit codes {codes}"

    def test_a_each_vip_is_learnt_from_every_appliance(self):
        self.assertEqual(self.lab.router_nexthops(VIP), self.uplinks)
        self.assertEqual(self.lab.router_nexthops(OTHER_VIP), self.uplinks)
        self.lab.wait_for(lambda: self.lab.router_nexthops(DNS_VIP) == self.uplinks,
                          "the router to learn the DNS address from every appliance")
        for a in self.lab.appliances:
            status = a.ask({"command": "status"})["announce"]
            self.assertEqual(sorted(status["routes"]), [f"{DNS_VIP}/32", f"{VIP}/32", f"{OTHER_VIP}/32"])
            self.assertFalse(status["drained"])
            self.assertIn(f"{VIP} dev {a.name}k", a.kernel_routes())
            # Announced once the workers run, not while they are set up.
            log = a.log_text()
            self.assertLess(log.index(" polling "), log.index(f"announce: {VIP}/32"), log)
        out = ns_exec(self.lab.client_ns, "dig", "+short", "+time=2", "+tries=3", f"@{DNS_VIP}",
                      "web.default.svc.cluster.local", "A", check=False).stdout
        self.assertEqual(out.strip(), VIP)

    def test_b_traffic_is_spread_over_the_appliances(self):
        before = [a.counter("flows_created") for a in self.lab.appliances]
        type(self).connections = self.keepalive.open(VIP, 80, CONNECTIONS)
        self.assertEqual(len(self.connections), CONNECTIONS)
        self.assertTrue(all(body.startswith("web-") for _, _, body in self.connections),
                        self.connections[:5])
        created = [a.counter("flows_created") - b for a, b in zip(self.lab.appliances, before)]
        print(f"\nflows per appliance: {created}", file=sys.stderr)
        self.assertEqual(sum(created), CONNECTIONS)
        for n in created:
            self.assertGreater(n, CONNECTIONS // 10, created)

    def test_c_connections_survive_an_appliance_kill(self):
        self.assertIsNotNone(self.connections, "test_b opens the connections")
        victim = self.lab.appliances[1]
        victim.kill()
        survivors = [a for a in self.lab.appliances if a is not victim]
        self.lab.wait_for(lambda: self.lab.router_nexthops(VIP) == [f"10.0.{a.i}.1" for a in survivors],
                          "the router to drop the killed appliance")
        same = 0
        for index, _, pod in self.connections:
            got = self.keepalive.get(index)
            same += 1 if got[0] != "error" and got[1] == pod else 0
        share = 100.0 * same / CONNECTIONS
        picked_up = sum(a.counter("flows_picked_up") for a in survivors)
        print(f"\nsurvival after SIGKILL of one of 3 appliances: {same}/{CONNECTIONS} "
              f"({share:.1f}%) on the same Pod; {picked_up} connections picked up mid-stream",
              file=sys.stderr)
        self.assertGreaterEqual(share, 99.0)
        self.assertGreater(picked_up, 0, "the killed appliance's connections moved")
        answers = self.lab.curl(f"http://{VIP}/", 20)
        self.assertEqual(sum(1 for a in answers if a and a.startswith("web-")), 20, answers)

    def test_d_a_deleted_services_route_is_withdrawn(self):
        alive = [a for a in self.lab.appliances if a.proc.poll() is None]
        for a in alive:
            reply = a.ask({"command": "delete", "name": "default/other"})
            self.assertEqual(reply["deleted"], ["default/other"], reply)
            self.assertNotIn(OTHER_VIP, a.kernel_routes())
        self.lab.wait_for(lambda: self.lab.router_nexthops(OTHER_VIP) == [],
                          "the router to withdraw the deleted service's VIP")
        self.assertEqual(len(self.lab.router_nexthops(VIP)), len(alive))

    def test_e_routes_the_kernel_lost_are_added_again(self):
        a = self.lab.appliances[2]
        twin = f"{a.name}k"
        every_vip = [f"{DNS_VIP}/32", f"{VIP}/32"]  # test_d deleted OTHER_VIP

        def announced():
            return sorted(a.ask({"command": "status"})["announce"]["routes"])

        # Deleted by hand: podgate's check of its table puts it back.
        ns_exec(a.ns, "ip", "route", "del", f"{VIP}/32", "dev", twin, "table", "4242")
        self.assertNotIn(VIP, a.kernel_routes())
        self.lab.wait_for(lambda: f"{VIP} dev {twin}" in a.kernel_routes(),
                          "podgate to add the deleted route again", timeout=10)
        self.assertIn(f"announce: {VIP}/32 had gone from table 4242", a.log_text())
        self.assertEqual(announced(), every_vip)
        # The twin taken down: the kernel drops every route on it, and
        # status says so instead of what podgate added once.
        ns_exec(a.ns, "ip", "link", "set", twin, "down")
        self.assertNotIn(VIP, a.kernel_routes())
        self.lab.wait_for(lambda: announced() == [], "status to show the routes gone", timeout=10)
        self.lab.wait_for(lambda: f"10.0.{a.i}.1" not in self.lab.router_nexthops(VIP),
                          "the router to drop the appliance whose twin is down")
        # And up again: they come back, and the router learns them again.
        ns_exec(a.ns, "ip", "link", "set", twin, "up")
        self.lab.wait_for(lambda: DNS_VIP in a.kernel_routes() and VIP in a.kernel_routes(),
                          "podgate to add its routes again on the twin", timeout=10)
        self.assertEqual(announced(), every_vip)
        self.lab.wait_for(lambda: len(self.lab.router_nexthops(VIP)) == 2,
                          "the router to learn the VIP from the appliance again")
        self.assertIn(f"10.0.{a.i}.1", self.lab.router_nexthops(VIP))

    def test_f_drain_withdraws_while_connections_carry_on(self):
        alive = [a for a in self.lab.appliances if a.proc.poll() is None]
        drained, other = alive
        reply = drained.ask({"command": "drain"})
        self.assertTrue(reply["drained"])
        self.assertEqual(drained.ask({"command": "status"})["announce"]["routes"], [])
        self.lab.wait_for(lambda: self.lab.router_nexthops(VIP) == [f"10.0.{other.i}.1"],
                          "the router to withdraw the drained appliance")
        sample = self.connections[:50]
        same = sum(1 for index, _, pod in sample if self.keepalive.get(index)[1] == pod)
        self.assertEqual(same, len(sample), "established connections moved with the drain")
        drained.ask({"command": "undrain"})
        self.lab.wait_for(lambda: len(self.lab.router_nexthops(VIP)) == 2,
                          "the router to learn the undrained appliance again")


    def pinned_curl(self):
        """One request to the VIP from the router itself, from its
        client-side address, which test_g's policy rule sends through one
        appliance whatever the router has learnt (table 100)."""
        out = ns_exec(self.lab.router_ns, "curl", "-s", "-m", "2", "--interface",
                      ROUTER_CLIENT_SIDE, f"http://{VIP}/", check=False).stdout
        return out.strip()

    def test_g_a_clean_stop_withdraws_then_forwards_for_its_grace(self):
        stopping = self.lab.appliances[0]
        survivor = self.lab.appliances[2]
        self.assertIsNone(stopping.proc.poll())
        r = self.lab.router_ns
        ns_exec(r, "ip", "route", "add", f"{VIP}/32", "via", f"10.0.{stopping.i}.1", "table", "100")
        ns_exec(r, "ip", "rule", "add", "from", ROUTER_CLIENT_SIDE, "lookup", "100", "priority", "100")
        try:
            self.assertTrue(self.pinned_curl().startswith("web-"), "the pinned path works")
            sent = time.monotonic()
            stopping.proc.send_signal(signal.SIGTERM)
            self.lab.wait_for(lambda: VIP not in stopping.kernel_routes(),
                              "the stopping appliance to withdraw its routes", timeout=2)
            status = stopping.ask({"command": "status"})["announce"]
            self.assertEqual((status["stopping"], status["routes"], status["stop_grace"]),
                             (True, [], "3s"))
            self.assertEqual(stopping.ask({"command": "undrain"})["error"]["code"], "bad_request",
                             "nothing announces again while it stops")
            answer = self.pinned_curl()
            self.assertIsNone(stopping.proc.poll(), "still running after the request")
            self.assertTrue(answer.startswith("web-"), "forwarded during the grace: " + answer)
            self.lab.wait_for(lambda: self.lab.router_nexthops(VIP) == [f"10.0.{survivor.i}.1"],
                              "the router to withdraw the stopping appliance")
            self.assertIsNone(stopping.proc.poll(),
                              "the router withdrew the route only when the appliance exited")
            self.assertEqual(stopping.proc.wait(timeout=20), 0)
            self.assertGreaterEqual(time.monotonic() - sent, 2.9, "it waited its grace")
            log = stopping.log_text()
            self.assertIn("stopping in 3000 ms", log)
            self.assertLess(log.index(f"announce: withdrew {VIP}/32"), log.index("final counters"))
        finally:
            ns_exec(r, "ip", "rule", "del", "priority", "100", check=False)
            ns_exec(r, "ip", "route", "flush", "table", "100", check=False)

    def test_h_a_second_signal_stops_at_once(self):
        last = self.lab.appliances[2]
        last.proc.send_signal(signal.SIGTERM)
        self.lab.wait_for(lambda: "stopping in 3000 ms" in last.log_text(), "the grace to begin", timeout=5)
        last.proc.send_signal(signal.SIGTERM)
        self.assertEqual(last.proc.wait(timeout=20), 0)
        log = last.log_text()
        self.assertIn("again: stopping now", log)
        self.assertIn("final counters", log)


if __name__ == "__main__":
    e2e_main.main()
