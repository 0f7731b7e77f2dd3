#!/usr/bin/env python3
"""End to end: health checks (issue 13).  The appliance notices a dead Pod
by itself.

podgate runs in a namespace of its own with kernel twins (the exception
path, issue 10): its probes are kernel sockets that reach the Pods through
the pods port.  The Pods are real servers (tools/pod_server.py, knotd):

* a Pod's checked HTTP server (its "/healthz" on 8081, a second
  pod_server: killing the service port's own server would end the
  keep-alive connection at the Pod) is killed: within fall x interval plus
  a margin, 50 new connections avoid the Pod while an established
  keep-alive connection to its service port stays (drain), and one through
  a service with on_failure = "reset" stops; restarted, it takes traffic
  again after `rise`;
* an HTTP check expecting 200 marks a Pod answering 503 unhealthy;
* a DNS check against knotd Pods, one of them stopped;
* every endpoint unhealthy: fail_open keeps forwarding, `podgatectl apply`
  of all_unhealthy = "drop" drops (counted no_endpoint) and keeps the
  endpoints' health;
* a reload that changes the check keeps the health of endpoints that stay.

Run as root: python3 tests/e2e/test_health.py [-v]
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import netlab  # noqa: E402
from netlab import endpoint, ns_exec, run, service_toml  # noqa: E402

PODGATECTL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "podgatectl")
POD_SERVER = str(netlab.POD_SERVER)

PODS = {"web-0": "172.17.0.10", "web-1": "172.17.0.11", "web-2": "172.17.0.12"}
DNS_PODS = {"dns-0": "172.17.0.20", "dns-1": "172.17.0.21"}
INTERVAL_S = 0.3
FALL = 2
RISE = 2
# fall x interval, one more interval of phase, and a loaded machine's margin.
DETECT_S = FALL * INTERVAL_S + INTERVAL_S + 3.0


def check(kind="http", interval_ms=int(INTERVAL_S * 1000), extra=""):
    return (f'[services.health_check]\nkind = "{kind}"\ninterval = "{interval_ms}ms"\n'
            f'timeout = "200ms"\nrise = {RISE}\nfall = {FALL}\n{extra}')


WEB503_CHECK = check(extra='port = 8082\npath = "/healthz"\nexpect_status = [200]\n')
DOWN_CHECK = check("tcp", extra="port = 8089\n")


def web_eps():
    return [endpoint(ip, name) for name, ip in PODS.items()]


def web_services(web503_check=WEB503_CHECK, down_check=DOWN_CHECK):
    return (
        # web: its Pods' checked server is on 8081 (killed by a test).
        service_toml("default", "web", "10.96.0.20", [("http", 80, 8080, "TCP")], web_eps())
        + check(extra='port = 8081\npath = "/healthz"\n')
        # webreset: the same Pods and check, but an unhealthy Pod loses its flows.
        + service_toml("default", "webreset", "10.96.0.24", [("http", 80, 8080, "TCP")], web_eps())
        + check(extra='port = 8081\npath = "/healthz"\non_failure = "reset"\n')
        # web503: on 8082 web-1 answers /healthz with 503.
        + service_toml("default", "web503", "10.96.0.21", [("http", 80, 8080, "TCP")], web_eps())
        + web503_check
        # down: nobody listens on 8089, every endpoint is unhealthy.
        + service_toml("default", "down", "10.96.0.22", [("http", 80, 8080, "TCP")], web_eps())
        + down_check
        # dns: knotd Pods answering pods.test.
        + service_toml("default", "dns", "10.96.0.23", [("dns", 53, 53, "UDP")],
                       [endpoint(ip, name) for name, ip in DNS_PODS.items()])
        + check("dns", extra='query = "web.pods.test"\nexpect_address = "172.17.0.50"\n'))


def ctl(app, *args, stdin=None):
    return subprocess.run([sys.executable, PODGATECTL, "-s", app.socket_path, *args],
                          input=stdin, capture_output=True, text=True, timeout=30)


class HealthTest(unittest.TestCase):
    TAG = "pghc"

    @classmethod
    def setUpClass(cls):
        cls.app = netlab.Appliance(cls.TAG, kernel_twins=True,
                                   metrics_port=netlab.DNS_PORT + 7)
        cls.extra = {}
        cls.knot_dir = tempfile.mkdtemp(prefix="pghc-knot-")
        try:
            cls.app.start(web_services(), PODS)
        except RuntimeError as e:
            if "kernel" in str(e) and "unknown key" in str(e):
                raise unittest.SkipTest("the exception path ([[ports]] kernel) is not in this build")
            raise
        for name, ip in PODS.items():
            cls.start_health_server(name, ip, 8081)
            cls.start_health_server(name, ip, 8082, status=503 if name == "web-1" else 200)
        for name, ip in DNS_PODS.items():
            run("ip", "-n", cls.app.pods_ns, "addr", "add", f"{ip}/16", "dev", f"{cls.app.tag}-pods")
            cls.start_knot(name, ip)

    @classmethod
    def tearDownClass(cls):
        for proc in cls.extra.values():
            proc.kill()
            proc.wait()
        code = cls.app.stop()
        shutil.rmtree(cls.knot_dir, ignore_errors=True)
        assert code == 0, f"podgate exited with {code}"

    # ---- Pods beyond netlab's ----
    @classmethod
    def start_health_server(cls, name, ip, port, status=200):
        env = dict(os.environ, POD_HEALTH_STATUS=str(status))
        proc = subprocess.Popen(["ip", "netns", "exec", cls.app.pods_ns, "python3", POD_SERVER,
                                 name, ip, str(port)], stdout=subprocess.PIPE, text=True, env=env)
        assert "ready" in proc.stdout.readline()
        proc.stdout.close()
        cls.extra[(name, port)] = proc

    @classmethod
    def start_knot(cls, name, ip):
        d = os.path.join(cls.knot_dir, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "pods.test.zone"), "w") as f:
            f.write("$ORIGIN pods.test.\n$TTL 30\n@ SOA ns hostmaster 1 7200 1800 86400 30\n"
                    f"@ NS ns\nns A {ip}\nweb A 172.17.0.50\n")
        with open(os.path.join(d, "knot.conf"), "w") as f:
            f.write(f"server:\n    listen: {ip}@53\n    rundir: {d}\ndatabase:\n    storage: {d}\n"
                    "log:\n  - target: stderr\n    any: error\n"
                    f"zone:\n  - domain: pods.test\n    file: {d}/pods.test.zone\n")
        proc = subprocess.Popen(["ip", "netns", "exec", cls.app.pods_ns, "knotd", "-c",
                                 os.path.join(d, "knot.conf")])
        cls.extra[(name, 53)] = proc
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = ns_exec(cls.app.pods_ns, "kdig", f"@{ip}", "+short", "+time=1", "+retry=0",
                          "web.pods.test", "A", check=False).stdout
            if "172.17.0.50" in out:
                return
            time.sleep(0.1)
        raise RuntimeError(f"knotd {name} did not answer")

    def stop_extra(self, key):
        proc = self.extra.pop(key)
        proc.kill()
        proc.wait()

    # ---- observation ----
    def health(self, service):
        """{ip: target} of `service`'s checked endpoints."""
        r = self.app.ask({"command": "health", "name": service, "all": True})
        return {t["ip"]: t for t in r["endpoints"]}

    def published(self):
        """Whether the dataplane follows every finding of the checker: they
        are published at most every 50 ms, so a test that saw a change in
        `health` and sends at once could meet the snapshot before it."""
        return not self.app.ask({"command": "health"})["unpublished"]

    def wait_health(self, service, ip, healthy, timeout):
        """The time the checker first showed `ip` so; returns once that is
        published too (wait_adopted() then waits for the workers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.health(service).get(ip)
            if t is not None and t["healthy"] == healthy:
                seen = time.monotonic()
                self.app.wait_for(self.published, "the health change to be published")
                return seen
            time.sleep(0.05)
        self.fail(f"{service} {ip} not {'healthy' if healthy else 'unhealthy'} within {timeout}s: "
                  f"{self.health(service).get(ip)}\n" + self.app.log_text()[-3000:])

    def wait_all_healthy(self, service):
        """Every endpoint of `service` healthy: setUpClass started their
        servers, but the checker may have probed (and failed) a Pod before its
        server was up, so give it `rise` probes and a loaded machine's margin."""
        deadline = time.monotonic() + DETECT_S
        while time.monotonic() < deadline:
            hs = self.health(service)
            if hs and all(t["healthy"] for t in hs.values()):
                self.app.wait_for(self.published, "the health changes to be published")
                self.app.wait_adopted()
                return hs
            time.sleep(0.05)
        self.fail(f"{service}: not every endpoint healthy within {DETECT_S}s: "
                  f"{self.health(service)}")

    # ---- tests ----
    def test_a_killed_pod_server_drains_then_takes_traffic_after_rise(self):
        self.wait_all_healthy("default/web")
        keep = netlab.KeepAliveClient(self.app)
        keep_reset = netlab.KeepAliveClient(self.app)
        try:
            conns = keep.open_until("10.96.0.20", 80, "web-0")
            to_web0 = [c for c in conns if c[2] == "web-0"]
            self.assertTrue(to_web0, conns)
            index = to_web0[0][0]
            reset_conns = keep_reset.open_until("10.96.0.24", 80, "web-0")
            reset_to_web0 = [c for c in reset_conns if c[2] == "web-0"]
            self.assertTrue(reset_to_web0, reset_conns)
            killed = time.monotonic()
            self.stop_extra(("web-0", 8081))
            noticed = self.wait_health("default/web", PODS["web-0"], False, DETECT_S)
            self.assertLess(noticed - killed, DETECT_S)
            t = self.health("default/web")[PODS["web-0"]]
            self.assertEqual(t["reason"], "refused")
            self.assertIn("changed_at", t)
            self.app.wait_adopted()
            answers = self.app.curl_many("http://10.96.0.20/", 50)
            self.assertEqual(sum(1 for a in answers if a), 50, answers)
            self.assertNotIn("web-0", answers)
            # Drain: the established connection to web-0 still works.
            port, pod = keep.get(index)
            self.assertEqual(pod, "web-0")
            # Reset (webreset): the same Pod's established connection stops.
            self.wait_health("default/webreset", PODS["web-0"], False, DETECT_S)
            self.app.wait_adopted()
            self.assertEqual(keep_reset.get(reset_to_web0[0][0])[0], "error")
            self.assertIn("health: default/web endpoint 172.17.0.10:8081 is unhealthy (refused",
                          self.app.log_text())
            # podgatectl health lists it, endpoints shows it.
            out = ctl(self.app, "health")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("172.17.0.10:8081", out.stdout)
            self.assertIn("refused", out.stdout)
            out = ctl(self.app, "endpoints", "default/web")
            self.assertIn("unhealthy", out.stdout)
            # Restarted: healthy after `rise` successes, and it takes new flows again.
            self.start_health_server("web-0", PODS["web-0"], 8081)
            self.wait_health("default/web", PODS["web-0"], True, DETECT_S)
            self.app.wait_adopted()
            answers = self.app.curl_many("http://10.96.0.20/", 30)
            self.assertIn("web-0", answers)
            self.assertEqual(keep.get(index)[1], "web-0")
        finally:
            keep.close()
            keep_reset.close()

    def test_an_http_503_marks_the_pod_unhealthy(self):
        self.wait_health("default/web503", PODS["web-1"], False, DETECT_S + 5)
        hs = self.health("default/web503")
        self.assertEqual(hs[PODS["web-1"]]["reason"], "http 503")
        self.assertTrue(hs[PODS["web-0"]]["healthy"])
        self.assertTrue(hs[PODS["web-2"]]["healthy"])
        self.app.wait_adopted()
        answers = self.app.curl_many("http://10.96.0.21/", 30)
        self.assertEqual(sum(1 for a in answers if a), 30, answers)
        self.assertNotIn("web-1", answers)

    def test_a_dns_check_asks_knotd(self):
        self.wait_all_healthy("default/dns")
        self.stop_extra(("dns-1", 53))
        self.wait_health("default/dns", DNS_PODS["dns-1"], False, DETECT_S)
        self.assertIn(self.health("default/dns")[DNS_PODS["dns-1"]]["reason"],
                      ("refused", "timeout"))
        self.assertTrue(self.health("default/dns")[DNS_PODS["dns-0"]]["healthy"])
        # Queries through the VIP reach the healthy knotd only.
        self.app.wait_adopted()
        for sport in range(40000, 40010):
            out = ns_exec(self.app.client_ns, "dig", "+short", "+time=2", "+tries=1", "-b",
                          f"192.0.2.2#{sport}", "@10.96.0.23", "web.pods.test", "A",
                          check=False).stdout
            self.assertEqual(out.strip(), "172.17.0.50", f"from port {sport}")
        self.start_knot("dns-1", DNS_PODS["dns-1"])
        self.wait_health("default/dns", DNS_PODS["dns-1"], True, DETECT_S)

    def test_when_every_endpoint_is_unhealthy(self):
        for ip in PODS.values():
            self.wait_health("default/down", ip, False, DETECT_S + 5)
        self.app.wait_adopted()
        # fail_open (the default): every ready endpoint still takes flows,
        # and the journal says so.
        answers = self.app.curl_many("http://10.96.0.22/", 10)
        self.assertEqual(sum(1 for a in answers if a), 10, answers)
        self.assertRegex(self.app.log_text(),
                         r"service default/down port 80/TCP IPv4: all \d+ endpoints taking new connections "
                         r"fail the health check; all_unhealthy = \"fail_open\" sends new connections to them")
        before = self.app.ask({"command": "health", "name": "default/down", "all": True})
        changed = {t["ip"]: t["changed_at"] for t in before["endpoints"]}
        # drop, through podgatectl apply: new flows are dropped and counted,
        # and the endpoints keep the health they had (no new transition).
        applied = ctl(self.app, "apply", "-f", "-", stdin=service_toml(
            "default", "down", "10.96.0.22", [("http", 80, 8080, "TCP")], web_eps())
            + check("tcp", extra='port = 8089\nall_unhealthy = "drop"\n'))
        self.assertEqual(applied.returncode, 0, applied.stderr + applied.stdout)
        self.app.wait_adopted()
        after = self.app.ask({"command": "health", "name": "default/down", "all": True})
        for t in after["endpoints"]:
            self.assertFalse(t["healthy"])
            self.assertAlmostEqual(t["changed_at"], changed[t["ip"]], delta=0.01,
                                   msg="health kept across apply")
        self.assertIn('service default/down port 80/TCP IPv4: all ', self.app.log_text())
        self.assertIn('all_unhealthy = "drop" refuses new connections (no_endpoint)', self.app.log_text())
        drops_before = self.drops("no_endpoint")
        answers = self.app.curl_many("http://10.96.0.22/", 5)
        self.assertEqual(answers, [None] * 5)
        self.assertGreaterEqual(self.drops("no_endpoint") - drops_before, 5)

    def test_z_a_reload_that_changes_the_check_keeps_health(self):
        # Runs last (name order): it rewrites the config file.
        self.wait_health("default/web503", PODS["web-1"], False, DETECT_S + 5)
        before = self.health("default/web503")[PODS["web-1"]]
        services = web_services(web503_check=check(
            interval_ms=400, extra='port = 8082\npath = "/healthz"\nexpect_status = [200, 204]\n'))
        self.assertTrue(self.app.reload(services))
        after = self.health("default/web503")[PODS["web-1"]]
        self.assertFalse(after["healthy"])
        self.assertAlmostEqual(after["changed_at"], before["changed_at"], delta=0.01)
        # The file never holds health: `config save` writes config only.
        saved = ctl(self.app, "config", "save")
        self.assertEqual(saved.returncode, 0, saved.stderr)
        with open(self.app.config_path) as f:
            text = f.read()
        self.assertNotIn("refused", text)
        self.assertNotIn("http 503", text)
        self.assertIn('expect_status = [200, 204]', text)

    def drops(self, reason):
        return sum(w["drops"].get(reason, 0) for w in self.app.ask({"command": "stats"})["workers"])

    def test_metrics_show_health(self):
        self.wait_health("default/web503", PODS["web-1"], False, DETECT_S + 5)
        out = ns_exec(self.app.app_ns, "curl", "-s", "-m", "5",
                      f"http://127.0.0.1:{self.app.metrics_port}/metrics").stdout
        self.assertIn('podgate_endpoint_healthy{service="default/web503",endpoint="172.17.0.11:8082"} 0',
                      out)
        self.assertIn('podgate_endpoint_healthy{service="default/web503",endpoint="172.17.0.10:8082"} 1',
                      out)
        self.assertIn("podgate_health_probes_total ", out)
        self.assertIn('podgate_health_transitions_total{to="unhealthy"}', out)


if __name__ == "__main__":
    e2e_main.main()
