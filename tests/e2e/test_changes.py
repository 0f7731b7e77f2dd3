#!/usr/bin/env python3
"""End to end: runtime changes through the control socket and podgatectl
(issue 4; docs/control-protocol.md): apply and delete of TOML service
fragments and Kubernetes objects, endpoint set, per-service statistics,
flows, config save against reload, /metrics, the socket's idle timeout,
mode and group.  Traffic flows through podgate (net_tap, network
namespaces, real HTTP Pods and curl, tools/netlab.py) wherever the
behaviour is about forwarding.

Run as root: python3 tests/e2e/test_changes.py [-v]
PODGATE_BIN overrides the binary (default build/control/podgate).
"""
import copy
import grp
import json
import os
import pwd
import shutil
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import e2e_main  # noqa: E402
import netlab  # noqa: E402
from netlab import endpoint, service_toml  # noqa: E402

PODGATECTL = os.path.join(netlab.ROOT, "tools", "podgatectl")
FIXTURES = os.path.join(netlab.ROOT, "tests", "fixtures", "k8s")
DNS_PORT = netlab.DNS_PORT + 40  # apart from the other suites' listeners
VIP = "10.96.0.20"
PODS = {"my-app-0": "172.17.0.10", "my-app-1": "172.17.0.11", "my-app-2": "172.17.0.12",
        "web-0": "172.17.0.20", "web-1": "172.17.0.21"}
WEB_PODS = {"web-0", "web-1"}

MONGO = """
[[services]]
namespace = "default"
name = "mongodb-service"
cluster_ip = "None"
ports = [ { name = "mongo", port = 27017 } ]
endpoints = [ { ip = "172.17.1.10", hostname = "mongodb-0", subdomain = "mongodb-service" } ]
"""


def base_services():
    return service_toml("default", "my-app", VIP, [("http", 80, 8080, "TCP")],
                        [endpoint(PODS[p], p) for p in ("my-app-0", "my-app-1", "my-app-2")]
                        ) + MONGO


def web_toml(name, vip, pods=("web-0", "web-1")):
    """A [[services]] fragment as `apply` takes it (the config file's tables)."""
    return service_toml("default", name, vip, [("http", 80, 8080, "TCP")],
                        [endpoint(PODS[p], p) for p in pods])


# ---- Kubernetes objects shaped as `kubectl get -o json` prints them ---------

def k8s_service(name, vip, target_port="web", client_ip_affinity=False):
    """tests/fixtures/k8s/web-service.json (real kubectl output) renamed and
    moved to the lab's addresses; targetPort stays the fixture's named port
    unless a number is given.  The fixture's sessionAffinity ClientIP
    (timeoutSeconds 3600) is kept only when asked for."""
    with open(os.path.join(FIXTURES, "web-service.json")) as f:
        s = json.load(f)
    s["metadata"]["name"] = name
    s["metadata"]["uid"] = f"6f1c2a4e-93d1-4b7a-a5e0-{abs(hash(name)) % 10**12:012d}"
    s["spec"]["clusterIP"], s["spec"]["clusterIPs"] = vip, [vip]
    if not client_ip_affinity:
        # 5-tuple spreading, so several connections from one client reach several Pods.
        s["spec"]["sessionAffinity"] = "None"
        del s["spec"]["sessionAffinityConfig"]
    s["spec"]["ports"][0]["targetPort"] = target_port
    return s


def k8s_slice(service, pods):
    """The first EndpointSlice of tests/fixtures/k8s/web-endpointslices.json,
    relabelled to `service`, with one endpoint per Pod name (its lab
    address, a Pod targetRef).  Its ports say http -> 8080."""
    with open(os.path.join(FIXTURES, "web-endpointslices.json")) as f:
        sl = json.load(f)["items"][0]
    sl["metadata"]["name"] = f"{service}-x7k2p"
    sl["metadata"]["labels"]["kubernetes.io/service-name"] = service
    sl["metadata"]["ownerReferences"][0]["name"] = service
    template = sl["endpoints"][0]
    sl["endpoints"] = []
    for pod in pods:
        e = copy.deepcopy(template)
        e["addresses"] = [PODS[pod]]
        e["targetRef"]["name"] = pod
        sl["endpoints"].append(e)
    return sl


def k8s_list(*items):
    return {"apiVersion": "v1", "items": list(items), "kind": "List",
            "metadata": {"resourceVersion": ""}}


# ---- helpers ---------------------------------------------------------------

Client = netlab.ControlClient

def dig(name, qtype="A", port=DNS_PORT):
    """(rcode, sorted answers) from the kernel listener."""
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+noall", "+comments",
                          "+answer", "+time=2", "+tries=1", name, qtype],
                         capture_output=True, text=True, timeout=10).stdout
    status = re.search(r"status: (\w+)", out)
    answers = sorted(l.split()[-1] for l in out.splitlines()
                     if l and not l.startswith(";") and l.split()[3:4] == [qtype])
    return (status.group(1) if status else None), answers


def ctl(socket_path, *args, stdin=None):
    return subprocess.run([sys.executable, PODGATECTL, "-s", socket_path, *args], input=stdin,
                          capture_output=True, text=True, timeout=30)


def watch_stats(socket_path, every, count):
    """`podgatectl -o json stats --watch EVERY` until COUNT documents or its
    end, then Ctrl-C: (documents, exit status, stderr)."""
    proc = subprocess.Popen([sys.executable, PODGATECTL, "-s", socket_path, "-o", "json", "stats",
                             "--watch", every],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    docs, buf, decoder = [], "", json.JSONDecoder()
    try:
        while len(docs) < count:
            line = proc.stdout.readline()
            if not line:
                break
            buf += line
            try:
                doc, _ = decoder.raw_decode(buf.strip())
            except ValueError:
                continue
            docs.append(doc)
            buf = ""
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    return docs, code, err


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def traffic_of(stats, name, port=80):
    """(service entry, {pod: endpoint entry}) of a stats reply."""
    s = next(x for x in stats["services"] if x["name"] == name and x["port"] == port)
    return s, {e["pod"]: e for e in s["endpoints"]}


KeepAliveClient = netlab.KeepAliveClient


class Lab(netlab.Appliance):
    """netlab.Appliance with extra [control] keys."""

    def __init__(self, tag, control_extra="", **kw):
        super().__init__(tag, **kw)
        self.control_extra = control_extra

    def base_config(self):
        text = super().base_config()
        line = f'socket = "{self.socket_path}"\n'
        return text.replace(line, line + self.control_extra, 1)


class Base(unittest.TestCase):
    def ask(self, **req):
        reply = self.c.ask(req)
        self.assertTrue(reply["ok"], reply)
        return reply

    def refused(self, code, **req):
        reply = self.c.ask(req)
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"]["code"], code, reply)
        return reply["error"]["message"]

    def apply_text(self, text, source="-", **extra):
        if not isinstance(text, str):
            text = json.dumps(text, indent=4)
        return self.ask(command="apply", text=text, source=source, **extra)

    def state(self):
        """What a refused change must leave as it was."""
        return (self.ask(command="status")["generation"],
                self.ask(command="config", action="dump")["config"])

    def endpoint_ips(self, name):
        return [e["ip"] for e in self.ask(command="endpoints", name=name)["endpoints"]]


# ---- runtime changes with traffic -----------------------------------------

class RuntimeChangesTest(Base):
    TAG = "pgchg"

    @classmethod
    def setUpClass(cls):
        cls.metrics_port = free_tcp_port()
        cls.app = netlab.Appliance(cls.TAG, dns_port=DNS_PORT, metrics_port=cls.metrics_port)
        cls.app.start(base_services(), PODS)

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def setUp(self):
        self.c = Client(self.app.socket_path)

    def tearDown(self):
        self.c.close()
        # No replies_stateless check here (test_forwarding.py has it): these
        # tests delete services right after their connections close, and
        # web-0/web-1 back several services at once, so a Pod's FIN
        # retransmitted after its service's entries went is translated by
        # another service it backs -- statelessly, and rightly.

    def delete_if_present(self, name):
        self.c.ask({"command": "delete", "name": name})

    def curl(self, vip, count, port=80):
        return self.app.curl_many(f"http://{vip}:{port}/", count)

    # ---- apply -----------------------------------------------------------
    def test_apply_of_a_vip_inside_a_connected_subnet_warns(self):
        # Issue 15: allowed (podgate answers ARP for it there), but said.
        try:
            r = self.apply_text(web_toml("ctl-lan", "192.0.2.77"))
            self.assertEqual(r["created"], ["default/ctl-lan"])
            self.assertEqual(r["warnings"], [
                "service default/ctl-lan: cluster_ip 192.0.2.77 is inside port uplink's "
                "connected subnet 192.0.2.0/24; podgate answers ARP for it there, so no host "
                "on that subnet may have it"])
            r = ctl(self.app.socket_path, "apply", "-f", "-", stdin=web_toml("ctl-lan", "192.0.2.77"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("warning", r.stderr, "unchanged: nothing new to warn about")
        finally:
            self.delete_if_present("default/ctl-lan")

    def test_apply_that_fills_half_the_stats_slots_warns(self):
        # A warning about the whole config, not one service: 128 ports x
        # 260 endpoints take more than half the stats slots.
        ports = [(f"p{i}", 1000 + i, 1000 + i, "TCP") for i in range(128)]
        pods = [endpoint(f"172.17.{2 + i // 200}.{1 + i % 200}", f"many-{i}") for i in range(260)]
        text = service_toml("default", "ctl-many", "10.96.0.77", ports, pods)
        try:
            r = self.apply_text(text)
            self.assertEqual(r["created"], ["default/ctl-many"])
            self.assertEqual(len(r["warnings"]), 1, r["warnings"])
            m = re.match(r"stats slots: (\d+) \(service port, endpoint\) pairs of the \d+ "
                         r"podgate counts: ", r["warnings"][0])
            self.assertIsNotNone(m, r["warnings"][0])
            self.assertGreaterEqual(int(m.group(1)), 128 * 260, "the lab's other services' and these")
            self.assertEqual(self.apply_text(text)["warnings"], [], "unchanged: nothing new")
        finally:
            self.delete_if_present("default/ctl-many")

    def test_apply_toml_fragment_creates_a_service_forwarded_and_in_dns(self):
        vip, fqdn = "10.96.0.30", "web-toml.default.svc.cluster.local"
        self.assertEqual(dig(fqdn)[0], "NXDOMAIN")
        try:
            r = self.apply_text(web_toml("web-toml", vip), source="web.toml")
            self.assertEqual((r["created"], r["updated"], r["unchanged"]),
                             (["default/web-toml"], [], []))
            self.assertEqual(dig(fqdn), ("NOERROR", [vip]))
            answers = self.curl(vip, 20)
            self.assertNotIn(None, answers)
            self.assertEqual(set(answers), WEB_PODS, "both Pods of the new service serve it")
            r = self.apply_text(web_toml("web-toml", vip), source="web.toml")
            self.assertEqual((r["created"], r["unchanged"]), ([], ["default/web-toml"]))
        finally:
            self.delete_if_present("default/web-toml")

    def test_apply_kubernetes_objects_changes_forwarding_and_dns(self):
        vip, fqdn = "10.96.0.40", "k8s-web.default.svc.cluster.local"
        self.assertEqual(dig(fqdn)[0], "NXDOMAIN")
        try:
            r = self.apply_text(k8s_list(k8s_service("k8s-web", vip),
                                         k8s_slice("k8s-web", ["web-0", "web-1"])),
                                source="cluster.json")
            self.assertEqual(r["created"], ["default/k8s-web"])
            s = self.ask(command="service", name="default/k8s-web")["service"]
            self.assertEqual([(p["port"], p["target_port"]) for p in s["ports"]],
                             [(80, 8080), (9090, 9090)], "named targetPort resolved by the slice")
            self.assertEqual({e["pod"]: e["state"] for e in s["endpoints"]},
                             {"web-0": "ready", "web-1": "ready"})
            self.assertEqual(dig(fqdn), ("NOERROR", [vip]))
            answers = self.curl(vip, 20)
            self.assertNotIn(None, answers)
            self.assertEqual(set(answers), WEB_PODS)
        finally:
            self.delete_if_present("default/k8s-web")
        self.assertEqual(dig(fqdn)[0], "NXDOMAIN")

    def test_client_ip_affinity_sends_each_client_to_one_pod_across_connections(self):
        vip = "10.96.0.42"
        # Sixteen more client addresses, routed like 198.51.100.7.
        extra = [f"198.51.100.{i}" for i in range(20, 36)]
        for a in extra:
            netlab.run("ip", "-n", self.app.client_ns, "addr", "add", f"{a}/32", "dev", "lo")
        try:
            self.apply_text(k8s_list(k8s_service("k8s-sticky", vip, client_ip_affinity=True),
                                     k8s_slice("k8s-sticky", ["web-0", "web-1"])))
            s = self.ask(command="service", name="default/k8s-sticky")["service"]
            self.assertEqual((s["session_affinity"], s["timeout_seconds"]), ("ClientIP", 3600))
            url = f"http://{vip}/"
            # One client, 30 new connections (new source ports): one Pod.
            answers = self.app.curl_many(url, 30)
            self.assertNotIn(None, answers)
            self.assertEqual(len(set(answers)), 1, answers)
            # Other client addresses: each sticks to one Pod, and together
            # they reach both (two equal Pods: all 17 addresses on one Pod
            # would have probability 2 * 2^-17 for a uniform hash).
            pods = set(answers)
            for a in extra:
                got = self.app.curl_many(url, 4, source=a)
                self.assertNotIn(None, got, a)
                self.assertEqual(len(set(got)), 1, (a, got))
                pods |= set(got)
            self.assertEqual(pods, WEB_PODS)
            # The premise: without affinity the same client spreads.
            self.apply_text(k8s_service("k8s-sticky", vip))
            self.assertEqual(self.ask(command="service", name="default/k8s-sticky")
                             ["service"]["session_affinity"], "None")
            self.assertEqual(set(self.app.curl_many(url, 30)), WEB_PODS)
        finally:
            self.delete_if_present("default/k8s-sticky")
            for a in extra:
                netlab.run("ip", "-n", self.app.client_ns, "addr", "del", f"{a}/32", "dev", "lo",
                           check=False)

    def test_endpointslice_only_apply_replaces_the_running_services_endpoints(self):
        vip = "10.96.0.41"
        try:
            self.apply_text(k8s_list(k8s_service("k8s-eps", vip),
                                     k8s_slice("k8s-eps", ["web-0", "web-1"])))
            r = self.apply_text(k8s_slice("k8s-eps", ["web-1"]))
            self.assertEqual(r["updated"], ["default/k8s-eps"])
            self.assertEqual(self.endpoint_ips("default/k8s-eps"), [PODS["web-1"]])
            self.assertEqual(set(self.curl(vip, 10)), {"web-1"},
                             "new connections go to the slice's only endpoint")
        finally:
            self.delete_if_present("default/k8s-eps")

    def test_service_only_apply_keeps_the_running_endpoints(self):
        vip = "10.96.0.42"
        try:
            self.apply_text(k8s_list(k8s_service("k8s-svc", vip, target_port=8080),
                                     k8s_slice("k8s-svc", ["web-0"])))
            changed = k8s_service("k8s-svc", vip, target_port=8080)
            changed["spec"]["publishNotReadyAddresses"] = True
            r = self.apply_text(changed)
            self.assertEqual(r["updated"], ["default/k8s-svc"])
            s = self.ask(command="service", name="default/k8s-svc")["service"]
            self.assertTrue(s["publish_not_ready_addresses"])
            self.assertEqual([e["ip"] for e in s["endpoints"]], [PODS["web-0"]])
            self.assertEqual(set(self.curl(vip, 5)), {"web-0"})
        finally:
            self.delete_if_present("default/k8s-svc")

    def test_service_only_apply_with_a_named_target_port_keeps_forwarding(self):
        # `kubectl get svc web -o json | podgatectl apply -f -`: the Service
        # alone, its targetPort a name the running endpoints already resolve.
        vip = "10.96.0.43"
        try:
            self.apply_text(k8s_list(k8s_service("k8s-named", vip),
                                     k8s_slice("k8s-named", ["web-0"])))
            self.assertEqual(set(self.curl(vip, 3)), {"web-0"})
            changed = k8s_service("k8s-named", vip)
            changed["spec"]["publishNotReadyAddresses"] = True
            self.apply_text(changed)
            s = self.ask(command="service", name="default/k8s-named")["service"]
            self.assertEqual([e["ip"] for e in s["endpoints"]], [PODS["web-0"]])
            self.assertEqual(s["ports"][0]["target_port"], 8080,
                             "the named targetPort keeps the number its endpoints resolved")
            self.assertEqual(set(self.curl(vip, 3)), {"web-0"})
        finally:
            self.delete_if_present("default/k8s-named")

    # ---- refused changes -------------------------------------------------
    def test_bad_toml_is_refused_with_file_line_col_and_changes_nothing(self):
        before = self.state()
        text = web_toml("bad", "10.96.0.31").replace("target_port = 8080", "target_port = 80800")
        msg = self.refused("invalid_config", command="apply", text=text, source="bad.toml")
        self.assertRegex(msg, r"^bad\.toml:\d+:\d+: services\[0\]\.ports\[0\]\.target_port: ")
        msg = self.refused("invalid_config", command="apply", text="[[services]\nname=",
                           source="broken.toml")
        self.assertRegex(msg, r"^broken\.toml:\d+:\d+: ")
        self.assertEqual(self.state(), before)
        self.assertEqual(dig("bad.default.svc.cluster.local")[0], "NXDOMAIN")

    def test_a_vip_already_used_by_another_service_is_refused_and_changes_nothing(self):
        before = self.state()
        msg = self.refused("invalid_config", command="apply", text=web_toml("thief", VIP),
                           source="thief.toml")
        # Named by object, not by a line of a file the user never saw.
        self.assertRegex(msg, r"^service default/thief, port 80/TCP: [0-9.]+:80/TCP is already "
                              r"served by service default/my-app$")
        self.assertEqual(self.state(), before)
        self.assertEqual(set(self.curl(VIP, 6)) - {"my-app-0", "my-app-1", "my-app-2"}, set())

    def test_kubernetes_error_names_item_and_path_and_changes_nothing(self):
        before = self.state()
        bad = k8s_service("k8s-bad", "10.96.0.44", target_port=8080)
        bad["spec"]["ports"][1]["port"] = 70000
        msg = self.refused("invalid_config", command="apply",
                           text=json.dumps(k8s_list(k8s_slice("k8s-bad", ["web-0"]), bad)),
                           source="bad.json")
        self.assertIn("bad.json: items[1] Service default/k8s-bad: spec.ports[1].port", msg)
        self.assertEqual(self.state(), before)

    def test_delete_naming_a_missing_service_is_refused_and_deletes_nothing(self):
        self.apply_text(web_toml("keep-me", "10.96.0.32"))
        try:
            before = self.state()
            self.refused("not_found", command="delete", name="default/nope")
            text = web_toml("keep-me", "10.96.0.32") + web_toml("nope", "10.96.0.33")
            msg = self.refused("not_found", command="delete", text=text, source="two.toml")
            self.assertIn("default/nope", msg)
            self.assertEqual(self.state(), before)
            self.assertEqual(dig("keep-me.default.svc.cluster.local"), ("NOERROR", ["10.96.0.32"]))
        finally:
            self.delete_if_present("default/keep-me")

    # ---- delete ------------------------------------------------------------
    def test_delete_service_removes_forwarding_and_dns(self):
        vip, fqdn = "10.96.0.60", "doomed.default.svc.cluster.local"
        self.apply_text(web_toml("doomed", vip))
        self.assertEqual(dig(fqdn), ("NOERROR", [vip]))
        self.assertNotIn(None, self.curl(vip, 3))
        def drops():  # a VIP no longer served is an address like any other: no_flow
            return sum(self.ask(command="stats")["workers"][0]["drops"].values())
        dropped = drops()
        r = self.ask(command="delete", name="default/doomed")
        self.assertEqual((r["deleted"], r["endpoints_removed"]), (["default/doomed"], []))
        self.assertEqual(dig(fqdn), ("NXDOMAIN", []))
        out = netlab.ns_exec(self.app.client_ns, "curl", "-s", "-m", "1", f"http://{vip}/",
                             check=False)
        self.assertNotEqual(out.returncode, 0, "nothing answers on a deleted VIP")
        self.assertGreater(drops(), dropped, "the connection attempt was dropped")

    def test_delete_of_an_endpointslice_removes_its_addresses(self):
        vip = "10.96.0.61"
        try:
            self.apply_text(k8s_list(k8s_service("k8s-del", vip),
                                     k8s_slice("k8s-del", ["web-0", "web-1"])))
            r = self.ask(command="delete", text=json.dumps(k8s_slice("k8s-del", ["web-0"])),
                         source="slice.json")
            self.assertEqual((r["deleted"], r["endpoints_removed"]),
                             ([], [f"default/k8s-del {PODS['web-0']}"]))
            self.assertEqual(self.endpoint_ips("default/k8s-del"), [PODS["web-1"]])
            self.assertEqual(set(self.curl(vip, 6)), {"web-1"})
        finally:
            self.delete_if_present("default/k8s-del")

    # ---- endpoint set --------------------------------------------------
    def test_ready_false_keeps_established_flows_and_stops_new_ones(self):
        keep = KeepAliveClient(self.app)
        try:
            conns = keep.open(VIP, 80, 3)
            index, local_port, pod = conns[0]
            ip = PODS[pod]
            r = self.ask(command="endpoint", action="set", name="default/my-app", ip=ip,
                         ready=False)
            self.assertEqual((r["endpoint"]["state"], r["endpoint"]["ready"]), ("draining", False))
            maglev = self.ask(command="maglev", name="default/my-app")["ports"][0]["endpoints"]
            self.assertNotIn(pod, [e["pod"] for e in maglev])
            answers = self.curl(VIP, 30)
            self.assertNotIn(None, answers)
            self.assertNotIn(pod, answers, "no new connection goes to the endpoint")
            self.assertEqual(keep.get(index), (local_port, pod),
                             "the established connection carries on, to the same Pod")
            flows = self.ask(command="flows", service="default/my-app", endpoint=ip)["flows"]
            self.assertIn(f"192.0.2.2:{local_port}", [f["client"] for f in flows])
            r = self.ask(command="endpoint", action="set", name="default/my-app", ip=ip,
                         ready=True)
            self.assertEqual(r["endpoint"]["state"], "ready")
            self.assertIn(pod, self.curl(VIP, 30), "ready again: new connections reach it")
        finally:
            keep.close()
            for p in ("my-app-0", "my-app-1", "my-app-2"):
                self.c.ask({"command": "endpoint", "action": "set", "name": "default/my-app",
                            "ip": PODS[p], "ready": True})

    def test_terminating_drains_the_endpoint(self):
        ip = PODS["my-app-2"]
        try:
            r = self.ask(command="endpoint", action="set", name="default/my-app", ip=ip,
                         terminating=True)
            e = r["endpoint"]
            self.assertEqual((e["ready"], e["serving"], e["terminating"], e["state"]),
                             (False, True, True, "draining"))
            self.assertNotIn("my-app-2", self.curl(VIP, 20))
        finally:
            self.ask(command="endpoint", action="set", name="default/my-app", ip=ip, ready=True)
        e = self.ask(command="service", name="default/my-app")["service"]["endpoints"][2]
        self.assertEqual((e["ready"], e["terminating"], e["state"]), (True, False, "ready"))

    def test_with_no_endpoint_ready_the_terminating_ones_take_new_flows(self):
        # KEP-1669: a service whose Pods are all shutting down but still
        # serving keeps answering new connections, until one is ready.
        pods = ("my-app-0", "my-app-1", "my-app-2")
        try:
            for p in pods:
                r = self.ask(command="endpoint", action="set", name="default/my-app", ip=PODS[p],
                             terminating=True)
            self.assertEqual(r["endpoint"]["state"], "fallback", "the last one leaves none ready")
            svc = self.ask(command="service", name="default/my-app")["service"]
            self.assertEqual([e["state"] for e in svc["endpoints"]], ["fallback"] * 3)
            self.assertEqual(svc["endpoint_counts"],
                             {"ready": 0, "fallback": 3, "draining": 0, "total": 3})
            answers = self.curl(VIP, 30)
            self.assertNotIn(None, answers)
            self.assertEqual(set(answers), set(pods))
            out = ctl(self.app.socket_path, "services").stdout
            self.assertRegex(out, r"default/my-app .* 0\+3 terminating ")
            began = ("service default/my-app: no IPv4 endpoint is ready; new connections go to "
                     "its 3 serving, terminating endpoints (terminating fallback)")
            self.assertEqual(self.app.log_text().count(began), 1, "the journal says when")

            self.ask(command="endpoint", action="set", name="default/my-app", ip=PODS["my-app-0"],
                     ready=True)
            self.assertTrue(self.app.log_has(
                "service default/my-app: 1 IPv4 endpoint is ready; the terminating fallback ends"),
                self.app.log_text()[-2000:])
            self.assertEqual(set(self.curl(VIP, 20)), {"my-app-0"})
            svc = self.ask(command="service", name="default/my-app")["service"]
            self.assertEqual([e["state"] for e in svc["endpoints"]],
                             ["ready", "draining", "draining"])
        finally:
            for p in pods:
                self.ask(command="endpoint", action="set", name="default/my-app", ip=PODS[p],
                         ready=True)

    def test_weight_changes_the_maglev_share(self):
        def shares():
            port = self.ask(command="maglev", name="default/my-app")["ports"][0]
            return {e["pod"]: e["share_percent"] for e in port["endpoints"]}
        self.assertAlmostEqual(shares()["my-app-0"], 100 / 3, delta=1.0)
        try:
            r = self.ask(command="endpoint", action="set", name="default/my-app",
                         ip=PODS["my-app-0"], weight=3)
            self.assertEqual(r["endpoint"]["weight"], 3)
            s = shares()
            self.assertAlmostEqual(s["my-app-0"], 60.0, delta=1.0)  # 3 / (3 + 1 + 1)
            self.assertAlmostEqual(s["my-app-1"], 20.0, delta=1.0)
        finally:
            self.ask(command="endpoint", action="set", name="default/my-app",
                     ip=PODS["my-app-0"], weight=1)
        self.assertAlmostEqual(shares()["my-app-0"], 100 / 3, delta=1.0)

    # ---- statistics and flows ------------------------------------------
    def test_stats_count_each_connection_on_the_service_and_the_endpoint_that_served_it(self):
        vip, name, n = "10.96.0.70", "default/counted", 20
        self.apply_text(web_toml("counted", vip))
        try:
            before = self.ask(command="stats")
            answers = self.curl(vip, n)
            self.assertNotIn(None, answers)
            s0, e0 = traffic_of(before, name)
            # curl is done before the last ACKs of the closing connections
            # have passed: wait for them (at least 3 packets each way per
            # connection), not for a fixed time.
            def counted():
                nonlocal after
                after = self.ask(command="stats")
                s = traffic_of(after, name)[0]
                return (s["packets_in"] - s0["packets_in"] >= 3 * n and
                        s["packets_out"] - s0["packets_out"] >= 3 * n)
            after = None
            self.app.wait_for(counted, "the closing connections' last packets")
            s1, e1 = traffic_of(after, name)
            self.assertEqual(s1["flows_created"] - s0["flows_created"], n)
            self.assertGreaterEqual(s1["packets_in"] - s0["packets_in"], 3 * n)
            self.assertGreaterEqual(s1["packets_out"] - s0["packets_out"], 3 * n)
            self.assertGreater(s1["bytes_in"] - s0["bytes_in"], 40 * n)
            for pod in WEB_PODS:
                with self.subTest(pod=pod):
                    served = answers.count(pod)
                    self.assertEqual(e1[pod]["flows_created"] - e0[pod]["flows_created"], served,
                                     "each connection counted on the endpoint that served it")
                    if served:
                        self.assertGreaterEqual(e1[pod]["packets_in"] - e0[pod]["packets_in"],
                                                served)
            self.assertEqual(s1["packets_in"] - s0["packets_in"],
                             sum(e1[p]["packets_in"] - e0[p]["packets_in"] for p in WEB_PODS))
            # The endpoints command shows the same per-endpoint figures.
            eps = self.ask(command="endpoints", name=name)["endpoints"]
            self.assertEqual(sum(e["ports"][0]["flows_created"] for e in eps),
                             s1["flows_created"])
            # Totals stay monotonic when an endpoint leaves.
            self.apply_text(web_toml("counted", vip, pods=("web-1",)))
            s2, e2 = traffic_of(self.ask(command="stats"), name)
            self.assertEqual(set(e2), {"web-1"})
            self.assertGreaterEqual(s2["packets_in"], s1["packets_in"])
            self.assertGreaterEqual(s2["flows_created"], s1["flows_created"])
            self.assertIn("in_use", self.ask(command="stats")["stats_slots"])
        finally:
            self.delete_if_present(name)

    def test_flows_lists_live_connections_with_filters_and_limit(self):
        vip, name = "10.96.0.80", "default/flowed"
        self.apply_text(web_toml("flowed", vip))
        keep = KeepAliveClient(self.app)
        try:
            conns = keep.open(vip, 80, 6)
            mine = {f"192.0.2.2:{port}": PODS[pod] for _, port, pod in conns}
            r = self.ask(command="flows", service=name)
            self.assertEqual((r["matched"], r["shown"], r["truncated"]), (6, 6, False))
            self.assertEqual({f["client"]: f["endpoint"].split(":")[0] for f in r["flows"]}, mine)
            for f in r["flows"]:
                self.assertEqual((f["service"], f["protocol"], f["vip"], f["state"]),
                                 (name, "TCP", f"{vip}:80", "established"))
                self.assertEqual(f["endpoint"].split(":")[1], "8080")
                self.assertGreater(f["expires_in_ms"], 0)
            for pod in WEB_PODS:
                with self.subTest(endpoint=pod):
                    r = self.ask(command="flows", service=name, endpoint=PODS[pod])
                    self.assertEqual(sorted(f["client"] for f in r["flows"]),
                                     sorted(c for c, ip in mine.items() if ip == PODS[pod]))
            r = self.ask(command="flows", service=name, port=80, client="192.0.2.2",
                         protocol="TCP")
            self.assertEqual(r["matched"], 6)
            self.assertEqual(self.ask(command="flows", service=name, client="198.51.100.7")
                             ["matched"], 0)
            self.assertEqual(self.ask(command="flows", service=name, protocol="UDP")["matched"], 0)
            r = self.ask(command="flows", service=name, limit=2)
            self.assertEqual((r["matched"], r["shown"], len(r["flows"]), r["truncated"]),
                             (6, 2, 2, True))
            r = self.ask(command="flows", client="192.0.2.2")
            self.assertGreaterEqual(r["matched"], 6, "no service filter: every service's flows")
        finally:
            keep.close()
            self.delete_if_present(name)

    def test_flows_after_lists_every_flow_a_page_at_a_time_none_twice(self):
        vip, name, limit = "10.96.0.81", "default/paged", 4
        self.apply_text(web_toml("paged", vip))
        keep = KeepAliveClient(self.app)
        try:
            mine = {f"192.0.2.2:{port}" for _, port, _ in keep.open(vip, 80, 23)}
            r = self.ask(command="flows", service=name, limit=limit)
            self.assertEqual((r["matched"], r["shown"], r["truncated"]), (23, limit, True),
                             "without `after`, the reply is as it was: the first `limit`")
            self.assertNotIn("next", r)

            def list_all(between=lambda page: None):
                listed, pages, after = [], 0, ""
                while True:
                    r = self.ask(command="flows", service=name, limit=limit, after=after)
                    pages += 1
                    self.assertLessEqual(len(r["flows"]), limit)
                    self.assertEqual(r["shown"], len(r["flows"]))
                    self.assertNotIn("matched", r)
                    listed += [f["client"] for f in r["flows"]]
                    if "next" not in r:
                        return listed, pages
                    self.assertLess(pages, 100, "the listing does not end")
                    after = r["next"]
                    between(pages)

            listed, pages = list_all()
            self.assertEqual(sorted(listed), sorted(mine), "every flow, each once")
            self.assertGreaterEqual(pages, 6, "23 flows at 4 a page")

            # Connections opened while the listing goes on are in it once
            # or not at all; those open throughout, exactly once.
            started = set()
            listed, _ = list_all(lambda page: started.update(
                f"192.0.2.2:{port}" for _, port, _ in keep.open(vip, 80, 3)) if page <= 3 else None)
            self.assertEqual(len(listed), len(set(listed)), "none twice")
            self.assertLessEqual(mine, set(listed))
            self.assertLessEqual(set(listed), mine | started)
            self.assertEqual(len(started), 9)

            self.assertIn("is not a cursor",
                          self.refused("bad_request", command="flows", after="page 2"))
            self.assertIn("a cursor is only good for the podgate that gave it",
                          self.refused("bad_request", command="flows", after="1:0.0.0"))

            # podgatectl --all follows the cursors: every row once, one header.
            out = ctl(self.app.socket_path, "flows", "--service", name, "--limit", "5", "--all")
            self.assertEqual(out.returncode, 0, out.stderr)
            lines = out.stdout.splitlines()
            self.assertTrue(lines[0].startswith("SERVICE"), out.stdout)
            rows = [l.split()[2] for l in lines[1:-1]]
            self.assertEqual(sorted(rows), sorted(mine | started))
            self.assertEqual(lines[-1], f"{len(mine | started)} matching flow(s), listed in "
                                        f"{-(-len(mine | started) // 5)} page(s)")
        finally:
            keep.close()
            self.delete_if_present(name)

    def test_flows_replies_keep_request_order_on_a_connection(self):
        reqs = [{"command": "flows", "id": 0}, {"command": "status", "id": 1},
                {"command": "flows", "limit": 1, "id": 2}, {"command": "services", "id": 3},
                {"command": "flows", "port": 80, "id": 4}]
        self.c.send_raw(b"".join(json.dumps(r).encode() + b"\n" for r in reqs))
        replies = [self.c.read_line() for _ in reqs]
        self.assertEqual([r["id"] for r in replies], [0, 1, 2, 3, 4])
        self.assertEqual([r["ok"] for r in replies], [True, True, True, True, False])

    def test_metrics_endpoint_matches_the_stats_command(self):
        self.assertNotIn(None, self.curl(VIP, 5))

        # Counters only grow: the scrape lies between two stats readings
        # taken before and after it, whenever the last packets arrive.
        def stats_in():
            return traffic_of(self.ask(command="stats"), "default/my-app")[0]["packets_in"]
        low = stats_in()
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            self.assertEqual(resp.status, 200)
            self.assertTrue(resp.headers["Content-Type"].startswith("text/plain"))
            text = resp.read().decode()
        high = stats_in()
        sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
                            r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? '
                            r'(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$')
        types, values = {}, {}
        for line in text.splitlines():
            with self.subTest(line=line):
                if line.startswith("# HELP "):
                    continue
                if line.startswith("# TYPE "):
                    _, _, family, kind = line.split(" ")
                    self.assertIn(kind, ("counter", "gauge"))
                    self.assertNotIn(family, types, "one TYPE line per family")
                    types[family] = kind
                    continue
                m = sample.match(line)
                self.assertIsNotNone(m, "a sample line")
                self.assertIn(m.group(1), types, "its family's TYPE comes first")
                values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        for family, kind in types.items():
            if family.endswith("_total"):
                self.assertEqual(kind, "counter", family)
        key = ('podgate_service_packets_total{service="default/my-app",port="80",'
               'protocol="TCP",direction="in"}')
        self.assertIn(key, values)
        self.assertGreater(values[key], 0)
        self.assertTrue(low <= values[key] <= high, (low, values[key], high))
        self.assertTrue(any(k.startswith("podgate_endpoint_packets_total{") and
                            'pod="my-app-0"' in k for k in values))
        self.assertIn("podgate_service_flows_created_total", types)
        self.assertTrue(any(k.startswith("podgate_drops_total{") for k in values))
        # my-app's endpoints by state, as `service` shows them.
        counts = self.ask(command="service", name="default/my-app")["service"]["endpoint_counts"]
        for state in ("ready", "fallback", "draining"):
            key = ('podgate_service_endpoints{service="default/my-app",port="80",protocol="TCP",'
                   f'state="{state}"}}')
            self.assertEqual(values.get(key), counts[state], key)

    # ---- the socket under changes ---------------------------------------
    def test_a_stalled_client_does_not_stall_apply_or_dns(self):
        # test_control.py covers a stalled client against DNS and reads; this
        # one is about changes going through while a client holds half a line.
        half = Client(self.app.socket_path)
        half.send_raw(b'{"command": "apply", "text": "[[serv')
        try:
            self.apply_text(web_toml("during-stall", "10.96.0.90"))
            self.assertEqual(dig("during-stall.default.svc.cluster.local"),
                             ("NOERROR", ["10.96.0.90"]))
            self.assertNotIn(None, self.curl("10.96.0.90", 2))
        finally:
            half.close()
            self.delete_if_present("default/during-stall")

    def test_bad_requests_for_the_change_commands_get_their_codes_and_the_connection_carries_on(
            self):
        toml = web_toml("x", "10.96.0.99")
        ep = {"command": "endpoint", "action": "set", "name": "default/my-app",
              "ip": PODS["my-app-0"]}
        cases = [
            ({"command": "apply"}, "bad_request"),
            ({"command": "apply", "text": 5}, "bad_request"),
            ({"command": "apply", "text": toml, "format": "yaml"}, "bad_request"),
            ({"command": "apply", "text": toml, "format": 1}, "bad_request"),
            ({"command": "apply", "text": toml, "source": ["x"]}, "bad_request"),
            ({"command": "apply", "text": ""}, "bad_request"),
            ({"command": "apply", "text": "{not json"}, "invalid_config"),
            ({"command": "apply", "text": toml, "format": "kubernetes"}, "invalid_config"),
            ({"command": "apply", "text": "[[services]]\nnamespace = 5"}, "invalid_config"),
            ({"command": "apply", "text": json.dumps({"apiVersion": "apps/v1",
                                                      "kind": "Deployment",
                                                      "metadata": {"name": "d"}})},
             "invalid_config"),
            ({"command": "delete"}, "bad_request"),
            ({"command": "delete", "name": "my-app"}, "bad_request"),
            ({"command": "delete", "name": 7}, "bad_request"),
            ({"command": "delete", "name": "default/my-app", "text": toml}, "bad_request"),
            ({"command": "delete", "name": "default/nope"}, "not_found"),
            ({"command": "delete", "text": toml}, "not_found"),
            ({"command": "endpoint"}, "bad_request"),
            ({"command": "endpoint", "action": "get", "name": "default/my-app",
              "ip": PODS["my-app-0"], "ready": True}, "bad_request"),
            ({"command": "endpoint", "action": "set", "ip": PODS["my-app-0"], "ready": True},
             "bad_request"),
            ({"command": "endpoint", "action": "set", "name": "default/my-app", "ready": True},
             "bad_request"),
            (dict(ep), "bad_request"),  # nothing to set
            (dict(ep, ready="yes"), "bad_request"),
            (dict(ep, serving=1), "bad_request"),
            (dict(ep, terminating=None), "bad_request"),
            (dict(ep, weight=0), "bad_request"),
            (dict(ep, weight=257), "bad_request"),
            (dict(ep, weight="2"), "bad_request"),
            (dict(ep, weight=1.5), "bad_request"),
            (dict(ep, ip="172.17.0.300", ready=True), "bad_request"),
            (dict(ep, ip="my-app-0", ready=True), "bad_request"),
            (dict(ep, ip=17, ready=True), "bad_request"),
            (dict(ep, ip="172.17.9.9", ready=True), "not_found"),
            (dict(ep, name="default/nope", ready=True), "not_found"),
            ({"command": "endpoints"}, "bad_request"),
            ({"command": "endpoints", "name": "default/nope"}, "not_found"),
            ({"command": "flows", "port": 80}, "bad_request"),
            ({"command": "flows", "service": "default/my-app", "port": 0}, "bad_request"),
            ({"command": "flows", "service": "default/my-app", "port": "80"}, "bad_request"),
            ({"command": "flows", "limit": 0}, "bad_request"),
            ({"command": "flows", "limit": 10001}, "bad_request"),
            ({"command": "flows", "limit": "5"}, "bad_request"),
            ({"command": "flows", "client": "192.0.2"}, "bad_request"),
            ({"command": "flows", "endpoint": "fd00::1::2"}, "bad_request"),
            ({"command": "flows", "client": 3}, "bad_request"),
            ({"command": "flows", "protocol": "SCTP"}, "bad_request"),
            ({"command": "flows", "service": "my-app"}, "bad_request"),
            ({"command": "flows", "service": "default/nope"}, "not_found"),
            ({"command": "flows", "service": "default/mongodb-service"}, "bad_request"),
            ({"command": "config", "action": "save", "path": "relative.toml"}, "bad_request"),
            ({"command": "config", "action": "save", "path": 5}, "bad_request"),
            ({"command": "config", "action": "save", "path": "/nonexistent-dir/x.toml"},
             "bad_request"),
            ({"command": "config", "action": "render"}, "bad_request"),
        ]
        before = self.state()
        for req, code in cases:
            with self.subTest(req=req):
                reply = self.c.ask(dict(req, id="t"))
                self.assertFalse(reply["ok"], reply)
                self.assertEqual((reply["error"]["code"], reply["id"]), (code, "t"), reply)
                self.assertTrue(reply["error"]["message"])
                self.assertTrue(self.ask(command="status")["ok"], "the connection carries on")
        self.assertEqual(self.state(), before, "no refused request changed anything")

    # ---- podgatectl ------------------------------------------------------
    def test_podgatectl_change_commands_exit_codes_and_output(self):
        path = self.app.socket_path
        frag = os.path.join(self.app.dir, "ctl-web.toml")
        with open(frag, "w") as f:
            f.write(web_toml("ctl-web", "10.96.0.100"))
        try:
            r = ctl(path, "apply", "-f", frag)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("created:   default/ctl-web", r.stdout)
            r = ctl(path, "-o", "json", "apply", "-f", frag)
            self.assertEqual((r.returncode, json.loads(r.stdout)["unchanged"]),
                             (0, ["default/ctl-web"]))
            # Kubernetes JSON from stdin, as `kubectl get -o json | podgatectl apply -f -`.
            objs = json.dumps(k8s_list(k8s_service("ctl-k8s", "10.96.0.101"),
                                       k8s_slice("ctl-k8s", ["web-1"])), indent=4)
            r = ctl(path, "apply", "-f", "-", stdin=objs)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("created:   default/ctl-k8s", r.stdout)
            self.assertEqual(set(self.curl("10.96.0.101", 3)), {"web-1"})
            r = ctl(path, "apply", "-f", "-", "--format", "toml", stdin=objs)
            self.assertEqual(r.returncode, 1)
            self.assertIn("invalid_config: -:1:", r.stderr)
            r = ctl(path, "apply", "-f", frag + ".missing")
            self.assertEqual(r.returncode, 2)
            self.assertIn(frag + ".missing", r.stderr)
            self.assertEqual(ctl(path, "apply").returncode, 2)

            r = ctl(path, "endpoint", "set", "default/ctl-web", PODS["web-0"], "--ready=false")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("draining", r.stdout)
            r = ctl(path, "-o", "json", "endpoint", "set", "default/ctl-web", PODS["web-0"],
                    "--ready=true", "--weight=4")
            e = json.loads(r.stdout)["endpoint"]
            self.assertEqual((e["state"], e["weight"]), ("ready", 4))
            r = ctl(path, "endpoint", "set", "default/ctl-web", PODS["web-0"], "--terminating")
            self.assertIn("terminating=true", r.stdout)
            r = ctl(path, "endpoint", "set", "default/ctl-web", PODS["web-0"], "--weight=0")
            self.assertEqual(r.returncode, 1)
            self.assertIn("bad_request:", r.stderr)
            r = ctl(path, "endpoint", "set", "default/ctl-web", "172.17.9.9", "--ready=true")
            self.assertEqual(r.returncode, 1)
            self.assertIn("not_found:", r.stderr)
            self.assertEqual(ctl(path, "endpoint", "set", "default/ctl-web", PODS["web-0"],
                                 "--ready=maybe").returncode, 2)
            self.assertEqual(ctl(path, "endpoint", "set", "default/ctl-web",
                                 PODS["web-0"]).returncode, 2)

            self.assertNotIn(None, self.curl("10.96.0.101", 4))
            r = ctl(path, "endpoints", "default/ctl-k8s")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"PKTS-IN\s+BYTES-IN\s+PKTS-OUT\s+BYTES-OUT\s+NEW\s+ACTIVE")
            row = next(l for l in r.stdout.splitlines()
                       if l.startswith(PODS["web-1"]) and "80/TCP" in l)
            self.assertGreaterEqual(int(row.split()[-2]), 7, "NEW counts the curls")
            r = ctl(path, "stats")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"SERVICE\s+PORT\s+ENDPOINT\s+POD\s+STATE\s+PKTS-IN")
            self.assertRegex(r.stdout, r"default/ctl-k8s\s+80/TCP\s+\*")
            self.assertRegex(r.stdout, rf"{PODS['web-1']}:8080\s+web-1\s+ready")

            keep = KeepAliveClient(self.app)
            try:
                ports = sorted(port for _, port, _ in keep.open("10.96.0.101", 80, 3))
                # Also the closing flows of the curls above.
                r = ctl(path, "-o", "json", "flows", "--service", "default/ctl-k8s",
                        "--endpoint", PODS["web-1"], "--client", "192.0.2.2", "--protocol", "tcp",
                        "--port", "80")
                self.assertEqual(r.returncode, 0, r.stderr)
                listing = json.loads(r.stdout)
                self.assertGreaterEqual(listing["matched"], 3)
                self.assertLessEqual(set(ports), {int(f["client"].split(":")[1])
                                                  for f in listing["flows"]
                                                  if f["state"] == "established"})
                r = ctl(path, "flows", "--service", "default/ctl-k8s", "--limit", "2")
                self.assertEqual(r.returncode, 0, r.stderr)
                shown = re.search(r"^shown 2 of (\d+) matching flow\(s\) \(truncated", r.stdout,
                                  re.M)
                self.assertIsNotNone(shown, r.stdout)
                self.assertGreaterEqual(int(shown.group(1)), 3)
                self.assertRegex(r.stdout, r"SERVICE\s+PROTO\s+CLIENT\s+VIP\s+ENDPOINT\s+STATE")
                self.assertEqual(len(r.stdout.splitlines()), 1 + 2 + 1)
                self.assertEqual(ctl(path, "flows", "--port", "80").returncode, 1)
                self.assertEqual(ctl(path, "flows", "--limit", "x").returncode, 2)
            finally:
                keep.close()

            r = ctl(path, "status")
            self.assertRegex(r.stdout, r"unsaved changes [1-9]")
            saved = os.path.join(self.app.dir, "ctl-saved.toml")
            r = ctl(path, "config", "save", saved)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"saved to {saved}", r.stdout)
            with open(saved) as f:
                self.assertIn('name = "ctl-k8s"', f.read())
            # A copy it cannot write: a local failure, exit 2.
            self.assertEqual(ctl(path, "config", "save", "/nonexistent-dir/x.toml").returncode, 2)

            r = ctl(path, "delete", "-f", frag)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("deleted:           default/ctl-web", r.stdout)
            r = ctl(path, "delete", "service", "default/ctl-k8s")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("default/ctl-k8s", r.stdout)
            r = ctl(path, "delete", "service", "default/ctl-k8s")
            self.assertEqual(r.returncode, 1)
            self.assertIn("not_found: no service default/ctl-k8s", r.stderr)
            self.assertEqual(ctl(path, "delete").returncode, 2)
            self.assertEqual(ctl(path, "delete", "service").returncode, 2)
            self.assertEqual(ctl(path, "delete", "-f", frag, "service", "a/b").returncode, 2)
            self.assertEqual(ctl(path + ".missing", "apply", "-f", frag).returncode, 2)
        finally:
            self.delete_if_present("default/ctl-web")
            self.delete_if_present("default/ctl-k8s")

    def test_podgatectl_stats_watch_refreshes_on_one_connection_until_interrupted(self):
        accepted = self.ask(command="stats")["control_socket"]["accepted"]
        docs, code, err = watch_stats(self.app.socket_path, "0.2", 3)
        self.assertEqual((len(docs), code), (3, 0), err)
        self.assertTrue(all(d["ok"] and "services" in d for d in docs))
        self.assertEqual(self.ask(command="stats")["control_socket"]["accepted"], accepted + 1,
                         "one connection for every refresh")

        proc = subprocess.Popen([sys.executable, PODGATECTL, "-s", self.app.socket_path,
                                 "stats", "--watch", "0.2"], stdout=subprocess.PIPE, text=True)
        seen = 0
        try:
            for line in proc.stdout:
                seen += line.startswith("podgatectl stats  every 0.2s")
                if seen == 2:
                    break
        finally:
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=10)
            proc.stdout.close()
        self.assertEqual((seen, code), (2, 0))


# ---- config save against reload --------------------------------------------

class SaveAndReloadTest(Base):
    """Each test has its own podgate: they rewrite its config file."""

    def setUp(self):
        self.app = netlab.Appliance("pgsav", dns_port=DNS_PORT + 1)
        self.app.start(base_services(), PODS)
        self.c = Client(self.app.socket_path)

    def tearDown(self):
        self.c.close()
        self.app.stop()

    def make_changes(self):
        self.apply_text(web_toml("web", "10.96.0.30"))
        self.apply_text(k8s_list(k8s_service("k8s-web", "10.96.0.40"),
                                 k8s_slice("k8s-web", ["web-0", "web-1"])))
        self.ask(command="endpoint", action="set", name="default/my-app", ip=PODS["my-app-1"],
                 ready=False)
        self.ask(command="endpoint", action="set", name="default/my-app", ip=PODS["my-app-2"],
                 weight=5)
        self.ask(command="endpoint", action="set", name="default/k8s-web", ip=PODS["web-1"],
                 terminating=True)
        self.ask(command="delete", name="default/mongodb-service")

    def running(self):
        dump = self.ask(command="config", action="dump")["config"]
        dump.pop("source")
        services = self.ask(command="services")["services"]
        details = [self.ask(command="service", name=s["name"])["service"] for s in services]
        return dump, details

    def test_config_save_loads_back_in_a_fresh_podgate_to_the_same_state(self):
        self.make_changes()
        self.assertEqual(self.ask(command="status")["unsaved_changes"], 6)
        saved = os.path.join(self.app.dir, "saved.toml")
        r = ctl(self.app.socket_path, "config", "save", saved)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"saved to {saved} (snapshot", r.stdout)
        self.assertIn("unsaved changes 6", r.stdout,
                      "saving elsewhere leaves the config file's changes unsaved")
        state = self.running()
        self.c.close()
        self.assertEqual(self.app.stop(), 0)

        fresh = netlab.Appliance(self.app.tag, config_path=saved, dns_port=self.app.dns_port)
        fresh.socket_path = self.app.socket_path  # the saved file's
        self.app = fresh
        fresh.start("", PODS)
        self.c = Client(fresh.socket_path)
        self.assertEqual(self.running(), state)
        self.assertEqual(self.ask(command="status")["unsaved_changes"], 0)
        self.assertEqual(self.ask(command="config", action="dump")["config"]["source"], saved)
        # The saved state forwards: draining and weights as they were.
        self.assertEqual(set(self.app.curl_many("http://10.96.0.40/", 10)), {"web-0"})
        answers = self.app.curl_many(f"http://{VIP}/", 20)
        self.assertNotIn(None, answers)
        self.assertNotIn("my-app-1", answers)
        self.assertEqual(dig("web.default.svc.cluster.local", port=fresh.dns_port),
                         ("NOERROR", ["10.96.0.30"]))

    def test_save_zeroes_unsaved_changes_and_reload_discards_unsaved_ones(self):
        self.make_changes()
        r = self.ask(command="config", action="save")
        self.assertEqual((r["path"], r["unsaved_changes"]), (self.app.config_path, 0))
        self.assertEqual(self.ask(command="status")["unsaved_changes"], 0)
        saved_state = self.running()
        with open(self.app.config_path) as f:
            self.assertIn('name = "k8s-web"', f.read())

        self.ask(command="delete", name="default/web")
        self.ask(command="endpoint", action="set", name="default/my-app", ip=PODS["my-app-1"],
                 ready=True)
        self.assertEqual(self.ask(command="status")["unsaved_changes"], 2)
        self.assertNotEqual(self.running(), saved_state)
        self.ask(command="reload")
        self.assertEqual(self.ask(command="status")["unsaved_changes"], 0)
        self.assertEqual(self.running(), saved_state, "reload replaced the unsaved changes")
        self.assertEqual(dig("web.default.svc.cluster.local", port=self.app.dns_port),
                         ("NOERROR", ["10.96.0.30"]))
        self.assertNotIn(None, self.app.curl_many("http://10.96.0.30/", 2))
        self.assertIn("unsaved runtime change(s) replaced by", self.app.log_text())

    def test_save_refuses_to_overwrite_edits_made_to_the_file_since_it_was_read(self):
        self.apply_text(web_toml("web", "10.96.0.30"))
        with open(self.app.config_path, "a") as f:
            f.write("\n# an operator's edit, not yet reloaded\n")
        with open(self.app.config_path) as f:
            edited = f.read()
        message = self.refused("bad_request", command="config", action="save")
        self.assertIn(f"{self.app.config_path} was changed since podgate last read or wrote it", message)
        self.assertIn('"force": true', message)
        with open(self.app.config_path) as f:
            self.assertEqual(f.read(), edited, "the edit is kept")
        self.assertEqual(self.ask(command="status")["unsaved_changes"], 1)
        r = ctl(self.app.socket_path, "config", "save")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("was changed since podgate last read or wrote it", r.stderr)
        # --force replaces the file; then podgate knows it again.
        r = ctl(self.app.socket_path, "config", "save", "--force")
        self.assertEqual(r.returncode, 0, r)
        with open(self.app.config_path) as f:
            saved = f.read()
        self.assertNotIn("an operator's edit", saved)
        self.assertIn('name = "web"', saved)
        self.assertEqual(self.ask(command="config", action="save")["unsaved_changes"], 0)
        # A reload reads the edit: saving is allowed again.
        with open(self.app.config_path, "a") as f:
            f.write("# edited again\n")
        self.ask(command="reload")
        self.ask(command="endpoint", action="set", name="default/my-app", ip=PODS["my-app-1"], weight=3)
        self.assertEqual(self.ask(command="config", action="save")["unsaved_changes"], 0)

    def test_a_relative_config_path_saves_to_the_file_podgate_started_with(self):
        # podgate -c podgate.toml started in the config's directory: the path
        # is made absolute at start-up (issue 15), so a client naming the
        # file by its absolute path saves it, and status names it so.
        self.c.close()
        self.assertEqual(self.app.stop(), 0)
        config = self.app.config_path
        relative = netlab.Appliance(self.app.tag, config_path=os.path.basename(config),
                                    dns_port=self.app.dns_port)
        relative.socket_path = self.app.socket_path  # the config file's
        self.app = relative
        here = os.getcwd()
        os.chdir(os.path.dirname(config))
        try:
            relative.start("", PODS)
        finally:
            os.chdir(here)
        self.c = Client(relative.socket_path)
        self.assertEqual(self.ask(command="status")["config_file"], config)
        self.apply_text(web_toml("web", "10.96.0.30"))
        r = self.ask(command="config", action="save", path=config)
        self.assertEqual((r["path"], r["unsaved_changes"]), (config, 0))
        with open(config) as f:
            self.assertIn('name = "web"', f.read())
        self.assertEqual(self.ask(command="config", action="save")["path"], config)


# ---- the socket's idle timeout, mode and group -----------------------------

class SocketOptionsTest(Base):
    GROUP = "adm"

    @classmethod
    def setUpClass(cls):
        extra = f'mode = "0600"\ngroup = "{cls.GROUP}"\nidle_timeout = 1\n'
        cls.app = Lab("pgopt", control_extra=extra, dns_port=DNS_PORT + 2)
        cls.app.start(base_services(), {})

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def setUp(self):
        self.c = Client(self.app.socket_path)

    def tearDown(self):
        self.c.close()

    def test_socket_file_has_the_configured_mode_and_group(self):
        st = os.stat(self.app.socket_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_gid, grp.getgrnam(self.GROUP).gr_gid)

    def idle_close(self):
        """A silent client is closed; one that keeps asking is not."""
        silent = Client(self.app.socket_path)
        try:
            closed_silent = False
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not closed_silent:
                self.assertTrue(self.ask(command="status")["ok"])  # self.c stays active
                silent.sock.settimeout(0.3)
                try:
                    closed_silent = silent.sock.recv(1) == b""
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed_silent = True
            return closed_silent
        finally:
            silent.close()

    def test_silent_client_is_closed_while_an_active_one_stays(self):
        self.assertTrue(self.idle_close(), "the silent client was closed")
        # The active client asked every ~0.3 s for longer than the timeout.
        self.assertTrue(self.ask(command="status")["ok"])

    def test_idle_closes_are_counted_in_stats(self):
        self.idle_close()
        counters = self.ask(command="stats")["control_socket"]
        self.assertIn("closed_idle", counters)
        self.assertGreaterEqual(counters["closed_idle"], 1)

    def test_podgatectl_stats_watch_outlives_the_idle_timeout(self):
        # --watch 2 against idle_timeout = 1: podgate closes the connection
        # while podgatectl sleeps, and the next refresh reconnects (it
        # printed once, then exited 2 with "Broken pipe").
        accepted = self.ask(command="stats")["control_socket"]["accepted"]
        docs, code, err = watch_stats(self.app.socket_path, "2", 3)
        self.assertEqual((len(docs), code), (3, 0), err)
        self.assertTrue(all(d["ok"] and "services" in d for d in docs))
        fresh = Client(self.app.socket_path)  # self.c was idle longer than 1 s too
        try:
            after = fresh.ask({"command": "stats"})["control_socket"]["accepted"]
        finally:
            fresh.close()
        self.assertGreaterEqual(after, accepted + 3, "a new connection for every refresh")

    def test_config_dump_and_save_keep_the_socket_options(self):
        saved = os.path.join(self.app.dir, "opts.toml")
        with open(saved, "w") as f:
            f.write(self.ask(command="config", action="toml")["toml"])
        with open(saved) as f:
            text = f.read()
        self.assertIn('mode = "0600"', text)
        self.assertIn(f'group = "{self.GROUP}"', text)
        self.assertIn("idle_timeout = 1", text)



# ---- config save by an unprivileged member of the socket's group ------------

class GroupMemberSaveTest(Base):
    """Issue 15: `config save PATH` wrote any file as root for any member of
    the control socket's group.  Over the socket podgate writes only its own
    config file; podgatectl writes a copy elsewhere as the caller."""
    USER = f"pgsave{os.getpid() % 100000}"

    @classmethod
    def setUpClass(cls):
        subprocess.run(["groupadd", "--system", cls.USER], check=True)
        subprocess.run(["useradd", "--system", "-M", "-g", cls.USER, "-s", "/usr/sbin/nologin",
                        cls.USER], check=True)
        cls.app = Lab("pggrp", control_extra=f'mode = "0660"\ngroup = "{cls.USER}"\n',
                      dns_port=DNS_PORT + 3)
        # A socket directory the member can traverse (the lab's own is 0700).
        cls.run_dir = tempfile.mkdtemp(prefix="pgsave-run-")
        os.chmod(cls.run_dir, 0o755)
        cls.app.socket_path = os.path.join(cls.run_dir, "podgate.sock")
        # The victim: a root-owned 0600 file in a 0700 directory.
        cls.secret_dir = tempfile.mkdtemp(prefix="pgsave-secret-")
        cls.secret = os.path.join(cls.secret_dir, "secret")
        with open(cls.secret, "w") as f:
            f.write("root only\n")
        os.chmod(cls.secret, 0o600)
        try:
            cls.app.start(base_services(), {})
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()
        subprocess.run(["userdel", cls.USER], check=False)
        subprocess.run(["groupdel", cls.USER], check=False)
        shutil.rmtree(cls.secret_dir, ignore_errors=True)
        shutil.rmtree(cls.run_dir, ignore_errors=True)

    def setUp(self):
        self.c = Client(self.app.socket_path)

    def tearDown(self):
        self.c.close()

    def as_member(self, *args, stdin=None):
        return subprocess.run(["setpriv", "--reuid", self.USER, "--regid", self.USER,
                               "--init-groups", "--no-new-privs", *args], input=stdin,
                              capture_output=True, text=True, timeout=30)

    def member_asks(self, request):
        code = ("import json, socket, sys\n"
                "s = socket.socket(socket.AF_UNIX)\n"
                "s.connect(sys.argv[1])\n"
                "s.sendall(sys.stdin.buffer.read() + b'\\n')\n"
                "print(s.makefile().readline())\n")
        r = self.as_member(sys.executable, "-c", code, self.app.socket_path,
                           stdin=json.dumps(request))
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def secret_unchanged(self):
        st = os.stat(self.secret)
        with open(self.secret) as f:
            self.assertEqual(f.read(), "root only\n")
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o600))

    def test_a_member_cannot_make_podgate_write_a_path_it_chose(self):
        # The member is an administrator: it may ask and save the config file.
        self.assertTrue(self.member_asks({"command": "status"})["ok"])
        for path in (self.secret, os.path.join(self.secret_dir, "new"), "/etc/podgate-pwned"):
            with self.subTest(path=path):
                reply = self.member_asks({"command": "config", "action": "save", "path": path})
                self.assertFalse(reply["ok"], reply)
                self.assertEqual(reply["error"]["code"], "bad_request")
                self.assertIn("writes only the config file podgate was started with",
                              reply["error"]["message"])
                self.assertFalse(os.path.exists(os.path.join(self.secret_dir, "new")))
                self.assertFalse(os.path.exists("/etc/podgate-pwned"))
                self.secret_unchanged()
        reply = self.member_asks({"command": "config", "action": "save"})
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["path"], self.app.config_path)

    def test_podgatectl_writes_a_copy_with_the_callers_own_permissions(self):
        r = self.as_member(sys.executable, PODGATECTL, "-s", self.app.socket_path,
                           "config", "save", self.secret)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)  # a local failure
        self.assertIn(f"cannot write {self.secret}: Permission denied", r.stderr)
        self.secret_unchanged()
        # Where the member may write, the copy is its own file.
        copy_path = os.path.join(self.run_dir, "copy.toml")
        os.chmod(self.run_dir, 0o777)
        try:
            r = self.as_member(sys.executable, PODGATECTL, "-s", self.app.socket_path,
                               "config", "save", copy_path)
        finally:
            os.chmod(self.run_dir, 0o755)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"saved to {copy_path}", r.stdout)
        st = os.stat(copy_path)
        self.assertEqual(pwd.getpwuid(st.st_uid).pw_name, self.USER)
        self.assertTrue(netlab.run(netlab.podgate_binary(), "--check", "-c", copy_path).returncode == 0)

if __name__ == "__main__":
    e2e_main.main()
