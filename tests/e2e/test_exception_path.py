#!/usr/bin/env python3
"""End to end: the exception path (issue 10), podgate's kernel twins.

podgate runs in a namespace of its own (the appliance's), with a kernel
twin on each port.  The appliance's kernel reaches the Pods and the client
through the dataplane ports (ping, curl), a kernel server on the port's
address answers the client (as BGP or SSH would), TCP queries to the DNS
VIP reach the kernel's DNS listener (`dig +tcp`), ARP learnt by the kernel
teaches the dataplane too, and service traffic still goes through the NAT
and never up to the kernel.  A reload adds, moves and removes the twins'
routes with the config's, and refuses to move the DNS VIP (set up on the
twins at start).

Run as root: python3 tests/e2e/test_exception_path.py [-v]
"""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import netlab  # noqa: E402
from netlab import endpoint, ns_exec, service_toml  # noqa: E402

VIP = "10.96.0.20"
PODS = {"web-0": "172.17.0.10", "web-1": "172.17.0.11"}
UPLINK_ADDRESS = "192.0.2.1"


def idle_loop_turns(app):
    """The control loop's turns in a second with nothing to do: a few
    dozen when it sleeps in epoll, about a thousand when it polls."""
    def turns():
        return app.ask({"command": "stats"})["control"]["loop_turns"]
    before = turns()
    time.sleep(1.0)
    return turns() - before


def services():
    return service_toml("default", "web", VIP, [("http", 80, 8080, "TCP")],
                        [endpoint(ip, name) for name, ip in PODS.items()])


class ExceptionPathTest(unittest.TestCase):
    TAG = "pgexc"

    @classmethod
    def setUpClass(cls):
        cls.app = netlab.Appliance(cls.TAG, kernel_twins=True)
        # A second DNS listener, on every address but another port: the
        # DNS VIP's port 53 is still not covered, and still gets its own
        # TCP listener (test_dig_over_tcp_on_the_dns_vip).
        base = cls.app.base_config
        port = cls.app.dns_port
        cls.app.base_config = lambda: base().replace(
            f'listen = ["127.0.0.1:{port}"]', f'listen = ["127.0.0.1:{port}", "0.0.0.0:{port + 2}"]')
        cls.app.start(services(), PODS)

    @classmethod
    def tearDownClass(cls):
        code = cls.app.stop()
        assert code == 0, f"podgate exited with {code}"

    def app_exec(self, *args, check=True, timeout=30):
        return ns_exec(self.app.app_ns, *args, check=check, timeout=timeout)

    def twin_counters(self):
        return {t["port"]: t for t in self.app.ask({"command": "stats"})["kernel_twins"]}

    def test_twins_have_the_ports_mac_address_and_mtu(self):
        for port, iface in (("uplink", f"{self.app.tag}-kup"), ("pods", f"{self.app.tag}-kpods")):
            link = self.app_exec("ip", "-o", "link", "show", iface).stdout
            status = self.app.ask({"command": "status"})
            mac = next(p["mac"] for p in status["ports"] if p["name"] == port)
            self.assertIn(f"link/ether {mac}", link, link)
            self.assertIn("mtu 1500", link)
            self.assertIn("UP", link)
        addrs = self.app_exec("ip", "-o", "-4", "addr", "show").stdout
        self.assertIn(f"inet {UPLINK_ADDRESS}/24", addrs)
        self.assertIn("inet 172.17.0.1/16", addrs)
        self.assertIn(f"inet {netlab.DNS_VIP}/32", addrs)
        # The config's route through the uplink is the kernel's too.
        routes = self.app_exec("ip", "-4", "route").stdout
        self.assertIn("198.51.100.0/24 via 192.0.2.2", routes)
        # No IPv6 chatter from the twins.
        self.assertNotIn("inet6", self.app_exec("ip", "-o", "addr", "show",
                                                f"{self.app.tag}-kup").stdout)

    def test_twins_ask_arp_from_the_ports_own_address(self):
        # The twin also holds the DNS VIP /32: with Linux's default
        # arp_announce=0 its ARP requests could name the VIP as sender, and
        # the workers drop replies to the VIP (arp_not_for_us).
        for iface in (f"{self.app.tag}-kup", f"{self.app.tag}-kpods"):
            conf = f"/proc/sys/net/ipv4/conf/{iface}"
            self.assertEqual(self.app_exec("cat", f"{conf}/arp_announce").stdout.strip(), "2", iface)
            self.assertEqual(self.app_exec("cat", f"{conf}/arp_ignore").stdout.strip(), "1", iface)

    def test_kernel_pings_a_pod_and_the_client(self):
        before = self.twin_counters()
        out = self.app_exec("ping", "-c", "3", "-i", "0.2", "-W", "2", PODS["web-0"],
                            check=False).stdout
        self.assertIn("3 received", out, out)
        out = self.app_exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.7",
                            check=False).stdout
        self.assertIn("2 received", out, out)
        after = self.twin_counters()
        self.assertGreaterEqual(after["pods"]["to_kernel"] - before["pods"]["to_kernel"], 3)
        # The kernel's ARP request was answered to the port: the dataplane
        # learnt the Pod from the same reply (no service traffic went to
        # web-0 before this test: tests run in name order).
        neighbors = {n["ip"]: n for n in self.app.ask({"command": "neighbors"})["neighbors"]}
        self.assertIn(PODS["web-0"], neighbors)
        self.assertFalse(neighbors[PODS["web-0"]]["static"])
        self.assertGreaterEqual(after["pods"]["from_kernel"] - before["pods"]["from_kernel"], 3)

    def test_an_idle_control_thread_sleeps_though_it_has_twins(self):
        # The twins are net_tap ports with RX interrupts: their queue's
        # descriptor is in the control loop's epoll set, so the loop need
        # not poll them every millisecond (control/control_wait.hpp), and
        # what the kernel sends still goes out.
        idle = idle_loop_turns(self.app)
        self.assertLess(idle, 200, f"{idle} turns in an idle second: the loop polled the twins")
        before = self.twin_counters()["pods"]["rx_wakeups"]
        out = self.app_exec("ping", "-c", "3", "-i", "0.3", "-W", "2", PODS["web-1"],
                            check=False).stdout
        self.assertIn("3 received", out, out)
        # Each echo request (and the kernel's ARP) woke the loop itself, not
        # its 50 ms timeout.
        self.assertGreaterEqual(self.twin_counters()["pods"]["rx_wakeups"] - before, 3)

    def test_kernel_reaches_a_pods_http_server(self):
        # A health probe's way: a kernel socket to the Pod's target port.
        out = self.app_exec("curl", "-s", "-m", "5", f"http://{PODS['web-1']}:8080/",
                            check=False).stdout
        self.assertTrue(out.startswith("web-1"), out)

    def test_client_reaches_a_kernel_server_on_the_ports_address(self):
        # As a BGP speaker or sshd on the appliance would be reached.
        server = subprocess.Popen(
            ["ip", "netns", "exec", self.app.app_ns, "python3", "-c",
             "import socket\n"
             "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
             f"s.bind(('{UPLINK_ADDRESS}',1179)); s.listen(); print('ready',flush=True)\n"
             "c,_=s.accept(); c.sendall(b'hello from the appliance\\n'); c.close()\n"],
            stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(server.stdout.readline().strip(), "ready")
            out = ns_exec(self.app.client_ns, "python3", "-c",
                          "import socket\n"
                          f"s=socket.create_connection(('{UPLINK_ADDRESS}',1179),timeout=5)\n"
                          "print(s.recv(100).decode().strip())\n", check=False)
            self.assertEqual(out.stdout.strip(), "hello from the appliance", out.stderr)
        finally:
            server.kill()
            server.wait()
            server.stdout.close()

    def test_dig_over_tcp_on_the_dns_vip(self):
        out = ns_exec(self.app.client_ns, "dig", "+tcp", "+short", "+time=3", "+tries=1",
                      f"@{netlab.DNS_VIP}", "web.default.svc.cluster.local", "A",
                      check=False).stdout
        self.assertEqual(out.strip(), VIP)
        # And over UDP, still answered by the dataplane's punt path.
        out = ns_exec(self.app.client_ns, "dig", "+short", "+time=3", "+tries=1",
                      f"@{netlab.DNS_VIP}", "web.default.svc.cluster.local", "A",
                      check=False).stdout
        self.assertEqual(out.strip(), VIP)

    def twin_routes(self, port):
        iface = {"uplink": f"{self.app.tag}-kup", "pods": f"{self.app.tag}-kpods"}[port]
        return self.app_exec("ip", "-4", "route", "show", "dev", iface).stdout

    def test_reload_keeps_the_twins_routes_in_step_with_the_config(self):
        # Routes can change on reload; the twins' kernel routes follow, so
        # BGP, probes and TCP DNS answers leave by the routes the dataplane
        # has.  Each [[routes]] goes to the twin of the port its next hop is on.
        def routes(*items):
            return "".join(f'\n[[routes]]\nprefix = "{p}"\nvia = "{v}"\n' for p, v in items)
        base_route = "198.51.100.0/24 via 192.0.2.2"
        ns_exec(self.app.client_ns, "ip", "addr", "add", "198.18.0.7/32", "dev", "lo")
        try:
            self.assertTrue(self.app.reload(services() + routes(("198.18.0.0/15", "192.0.2.2"),
                                                                ("203.0.113.0/24", "172.17.0.254"))))
            self.assertIn("198.18.0.0/15 via 192.0.2.2", self.twin_routes("uplink"))
            self.assertIn(base_route, self.twin_routes("uplink"))
            self.assertIn("203.0.113.0/24 via 172.17.0.254", self.twin_routes("pods"))
            self.assertNotIn("203.0.113.0", self.twin_routes("uplink"))
            # The kernel reaches the client's new network by it.
            out = self.app_exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "198.18.0.7",
                                check=False).stdout
            self.assertIn("2 received", out, out)
            # One route removed, one moved to the other twin.
            self.assertTrue(self.app.reload(services() + routes(("203.0.113.0/24", "192.0.2.2"))))
            self.assertNotIn("198.18.0.0/15", self.twin_routes("uplink"))
            self.assertIn("203.0.113.0/24 via 192.0.2.2", self.twin_routes("uplink"))
            self.assertNotIn("203.0.113.0", self.twin_routes("pods"))
            self.assertIn(base_route, self.twin_routes("uplink"))
        finally:
            self.app.reload(services())
            ns_exec(self.app.client_ns, "ip", "addr", "del", "198.18.0.7/32", "dev", "lo", check=False)
        self.assertNotIn("203.0.113.0", self.twin_routes("uplink"))
        self.assertIn(base_route, self.twin_routes("uplink"))
        self.assertNotIn("via", self.twin_routes("pods"))

    def test_reload_refuses_a_new_dns_vip_while_twins_exist(self):
        # The VIP's /32 on the twins and the TCP listener on it are set up
        # at start: a file that moves the VIP is refused whole, here with a
        # service added that must not appear either.
        def dig(name, *how):
            return ns_exec(self.app.client_ns, "dig", *how, "+short", "+time=3", "+tries=1",
                           f"@{netlab.DNS_VIP}", name, "A", check=False).stdout.strip()

        def observed():
            return {"generation": self.app.ask({"command": "status"})["generation"],
                    "config": self.app.ask({"command": "config", "action": "dump"})["config"],
                    "web over tcp": dig("web.default.svc.cluster.local", "+tcp"),
                    "added": dig("added.default.svc.cluster.local")}
        before = observed()
        self.assertEqual(before["web over tcp"], VIP)
        self.assertEqual(before["added"], "")
        moved = self.app.base_config().replace(f'service_ip = "{netlab.DNS_VIP}"',
                                               'service_ip = "10.96.0.11"', 1)
        self.assertNotEqual(moved, self.app.base_config())
        added = service_toml("default", "added", "10.96.0.90", [("http", 80, 8080, "TCP")],
                             [endpoint(PODS["web-0"], "web-0")])
        message = ("dns.service_ip cannot change on reload while ports have kernel twins (its "
                   "address and TCP listener are set up at start); restart podgate to change it")
        tmp = self.app.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(moved + services() + added)
        os.replace(tmp, self.app.config_path)
        try:
            log = self.app.log_text()
            refused, applied = log.count("reload refused"), log.count("published snapshot")
            self.app.signal(signal.SIGHUP)
            self.app.wait_for(lambda: self.app.log_text().count("reload refused") > refused or
                              self.app.log_text().count("published snapshot") > applied, "the reload")
            log = self.app.log_text()
            self.assertEqual(log.count("published snapshot"), applied, "the reload was applied")
            self.assertIn(message, log.split("reload refused")[-1])
            reply = self.app.ask({"command": "reload"})
            self.assertFalse(reply["ok"], reply)
            self.assertIn(message, reply["error"]["message"])
            self.assertEqual(observed(), before)
            answers = self.app.curl_many(f"http://{VIP}/", 10)
            self.assertNotIn(None, answers, "forwarding goes on")
        finally:
            self.app.write_config(services())

    def test_service_traffic_stays_in_the_dataplane(self):
        # The other tests' kernel connections may still be closing (a Pod's
        # last ACK to the port's address goes up): wait until nothing has
        # gone up for a second, so that what is counted is this test's.
        before = self.app.worker_totals()
        for _ in range(20):
            time.sleep(1)
            now = self.app.worker_totals()
            if now["to_kernel"] == before["to_kernel"]:
                break
            before = now
        answers = self.app.curl_many(f"http://{VIP}/", 10)
        self.assertEqual(sum(1 for a in answers if a), 10, answers)
        after = self.app.worker_totals()
        self.assertGreaterEqual(after["flows_created"] - before["flows_created"], 10)
        # The Pods' replies go to the client, not up to the kernel: only
        # what the other tests send may reach it meanwhile (nothing here).
        self.assertEqual(after["to_kernel"] - before["to_kernel"], 0)


class LostTwinTest(unittest.TestCase):
    """A twin deleted under a running podgate (`ip link del`): its fd
    reports an error at every wait.  podgate says so once and takes it out
    of its loop; the control thread goes on sleeping when idle, and
    forwarding goes on."""

    def setUp(self):
        self.app = netlab.Appliance("pglost", kernel_twins=True)
        self.app.start(services(), PODS)

    def tearDown(self):
        self.assertEqual(self.app.stop(), 0)

    def test_a_deleted_twin_is_lost_not_a_spinning_control_loop(self):
        ns_exec(self.app.app_ns, "ip", "link", "del", f"{self.app.tag}-kpods")
        self.app.wait_for(lambda: self.app.log_has(f"kernel twin {self.app.tag}-kpods is gone"),
                          "the lost twin's log line")
        twins = {t["port"]: t for t in self.app.ask({"command": "stats"})["kernel_twins"]}
        self.assertTrue(twins["pods"]["lost"])
        self.assertFalse(twins["uplink"]["lost"])

        idle = idle_loop_turns(self.app)
        self.assertLess(idle, 200, f"{idle} turns in an idle second: the loop spins on the lost twin")
        self.assertNotIn(None, self.app.curl_many(f"http://{VIP}/", 5), "forwarding goes on")


if __name__ == "__main__":
    e2e_main.main()
