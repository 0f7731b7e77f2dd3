"""Several podgate appliances behind an ECMP router (issue 10,
docs/scale-out.md), all in network namespaces this harness creates:

    client ns --veth-- router ns (BIRD, ECMP) --tap-- appliance i ns (podgate + BIRD)
                                                         |
    pods ns (Pod servers on lo) ------------------ tap --+   (one per appliance)

- Each appliance is podgate in a namespace of its own with a kernel twin on
  its uplink (the exception path) and [announce]; BIRD there learns the
  VIP routes podgate keeps in kernel table 4242 and announces them to the
  router over BGP (conf/bird/podgate-bird.conf, addresses substituted).
- The router runs BIRD with `merge paths`: each VIP becomes one multipath
  route, hashed on the ports (fib_multipath_hash_policy = 1).
- The Pods' namespace reaches every appliance over its own link (the
  appliance's pods tap) and returns replies by a default route through a
  nexthop group with one next hop per link: an appliance that dies takes
  its link, and its next hop, with it.

Used by tests/e2e/test_scale_out.py.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

import netlab
from netlab import ask_socket, ns_exec, run, stop_podgate

ROOT = pathlib.Path(__file__).resolve().parents[1]
APPLIANCE_BIRD_CONF = ROOT / "conf" / "bird" / "podgate-bird.conf"
CLIENT_IP = "198.51.100.7"

APPLIANCE_CONFIG = """
[eal]
args = ["--no-huge", "--no-shconf", "-m", "256", "--no-pci",
        "--lcores", "0@0,1@1", "--file-prefix", "{name}"]

[dataplane]
workers = 1
flow_table_size = 16384
idle_sleep_us = 200
rx_interrupts = true

[[ports]]
name = "uplink"
device = "net_tap0,iface={name}u"
address = "10.0.{i}.1/24"
kernel = "{name}k"

[[ports]]
name = "pods"
device = "net_tap1,iface={name}p"
address = "172.17.0.1/16"

[[routes]]
prefix = "198.51.100.0/24"
via = "10.0.{i}.254"

[dns]
listen = []
service_ip = "10.96.0.10"

[control]
socket = "{dir}/podgate.sock"

[metrics]
listen = ""

[announce]
port = "uplink"
table = 4242
stop_grace = "3s"
"""

ROUTER_BIRD_CONF = """
router id 198.51.100.1;
protocol device {{ scan time 10; }}
protocol kernel {{
  merge paths on;
  ipv4 {{ import none; export all; }};
}}
{sessions}
"""

# error wait time: a session that failed (its hold timer expired while an
# appliance's twin was down) starts again within seconds, not BIRD's 60.
ROUTER_SESSION = """
protocol bgp appliance{i} {{
  local 10.0.{i}.254 as 65000;
  neighbor 10.0.{i}.1 as 65001;
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 5;
  ipv4 {{ import all; export none; }};
}}
"""


def bird_available():
    return shutil.which("bird") is not None and shutil.which("birdc") is not None


class ApplianceNode:
    """One podgate in its own namespace, and its BIRD."""

    def __init__(self, lab, i):
        self.i = i
        self.name = f"{lab.tag}a{i}"  # interface names: NAMEu, NAMEp, NAMEk (<= 15 bytes)
        self.ns = f"{lab.tag}-a{i}"
        self.dir = tempfile.mkdtemp(prefix=f"{self.name}-")
        self.config_path = os.path.join(self.dir, "podgate.toml")
        self.socket_path = os.path.join(self.dir, "podgate.sock")
        self.log_path = os.path.join(self.dir, "podgate.log")
        self.proc = None
        self.bird = None

    def start(self, services):
        with open(self.config_path, "w") as f:
            f.write(APPLIANCE_CONFIG.format(name=self.name, i=self.i, dir=self.dir) + services)
        run("ip", "netns", "add", self.ns)
        run("ip", "-n", self.ns, "link", "set", "lo", "up")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, netlab.podgate_binary(),
                                      "-c", self.config_path],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def running(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"podgate {self.name} exited ({self.proc.returncode}):\n"
                               + self.log_text())
        return "running:" in self.log_text()

    def start_bird(self):
        conf = APPLIANCE_BIRD_CONF.read_text()
        conf = (conf.replace("192.0.2.254", f"10.0.{self.i}.254")
                    .replace("192.0.2.1", f"10.0.{self.i}.1"))
        path = os.path.join(self.dir, "bird.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.bird = subprocess.Popen(["ip", "netns", "exec", self.ns, "bird", "-f", "-c", path,
                                      "-s", os.path.join(self.dir, "bird.ctl")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def ask(self, request):
        return ask_socket(self.socket_path, request)

    def counter(self, name):
        return sum(w["counters"][name] for w in self.ask({"command": "stats"})["workers"])

    def kernel_routes(self):
        return ns_exec(self.ns, "ip", "-4", "route", "show", "table", "4242").stdout

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.bird:
            self.bird.kill()
            self.bird.wait()
        code = stop_podgate(self.proc)
        if getattr(self, "log", None):
            self.log.close()
        run("ip", "netns", "del", self.ns, check=False)
        return code


class ScaleOutLab:
    def __init__(self, tag, appliances=3):
        self.tag = f"{tag}{netlab.RUN_ID:03d}"
        self.client_ns = f"{self.tag}-cli"
        self.router_ns = f"{self.tag}-rtr"
        self.pods_ns = f"{self.tag}-pods"
        self.dir = tempfile.mkdtemp(prefix=f"{self.tag}-")
        self.appliances = [ApplianceNode(self, i) for i in range(1, appliances + 1)]
        self.servers = []
        self.router_bird = None

    # --- lifecycle ----------------------------------------------------------
    def start(self, services, pods):
        try:
            self._start(services, pods)
        except BaseException:
            self.stop()
            raise

    def _start(self, services, pods):
        self.cleanup_namespaces()
        for a in self.appliances:
            a.start(services)
        deadline = time.monotonic() + 30
        while not all(a.running() for a in self.appliances):
            if time.monotonic() > deadline:
                raise TimeoutError("appliances did not start:\n" +
                                   "\n".join(a.log_text() for a in self.appliances))
            time.sleep(0.1)
        for ns in (self.client_ns, self.router_ns, self.pods_ns):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        c, r, p = self.client_ns, self.router_ns, self.pods_ns
        # client <-> router
        run("ip", "link", "add", f"{self.tag}c", "type", "veth", "peer", "name", f"{self.tag}r")
        run("ip", "link", "set", f"{self.tag}c", "netns", c)
        run("ip", "link", "set", f"{self.tag}r", "netns", r)
        run("ip", "-n", c, "addr", "add", f"{CLIENT_IP}/24", "dev", f"{self.tag}c")
        run("ip", "-n", c, "link", "set", f"{self.tag}c", "up")
        run("ip", "-n", c, "route", "add", "default", "via", "198.51.100.1")
        run("ip", "-n", r, "addr", "add", "198.51.100.1/24", "dev", f"{self.tag}r")
        run("ip", "-n", r, "link", "set", f"{self.tag}r", "up")
        for ns in (r, p):
            ns_exec(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                    "net.ipv4.fib_multipath_hash_policy=1")
        # appliances: uplink taps to the router, pods taps to the Pods
        nexthops = []
        for a in self.appliances:
            run("ip", "-n", a.ns, "link", "set", f"{a.name}u", "netns", r)
            run("ip", "-n", a.ns, "link", "set", f"{a.name}p", "netns", p)
            run("ip", "-n", r, "addr", "add", f"10.0.{a.i}.254/24", "dev", f"{a.name}u")
            run("ip", "-n", r, "link", "set", f"{a.name}u", "up")
            run("ip", "-n", p, "link", "set", f"{a.name}p", "up")
            run("ip", "-n", p, "nexthop", "add", "id", str(a.i), "via", "172.17.0.1",
                "dev", f"{a.name}p", "onlink")
            nexthops.append(str(a.i))
        # A nexthop group, not a multipath route: when an appliance dies its
        # link goes, and the kernel drops that next hop from the group and
        # keeps the others (a multipath route would go whole).
        run("ip", "-n", p, "nexthop", "add", "id", "100", "group", "/".join(nexthops))
        run("ip", "-n", p, "route", "add", "default", "nhid", "100")
        for name, ip in pods.items():
            run("ip", "-n", p, "addr", "add", f"{ip}/32", "dev", "lo")
            proc = subprocess.Popen(["ip", "netns", "exec", p, "python3", str(netlab.POD_SERVER),
                                     name, ip, "8080", "5353"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self.servers.append(proc)
            line = proc.stdout.readline()
            if "ready" not in line:
                raise RuntimeError(f"pod {name} did not start: {line}")
        for a in self.appliances:
            a.start_bird()
        sessions = "".join(ROUTER_SESSION.format(i=a.i) for a in self.appliances)
        conf = os.path.join(self.dir, "router-bird.conf")
        with open(conf, "w") as f:
            f.write(ROUTER_BIRD_CONF.format(sessions=sessions))
        self.router_bird = subprocess.Popen(["ip", "netns", "exec", r, "bird", "-f", "-c", conf,
                                             "-s", os.path.join(self.dir, "router-bird.ctl")],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self):
        codes = []
        if self.router_bird:
            self.router_bird.kill()
            self.router_bird.wait()
        for proc in self.servers:
            proc.kill()
            proc.wait()
            proc.stdout.close()
        self.servers = []
        for a in self.appliances:
            codes.append(a.stop())
        self.cleanup_namespaces()
        return codes

    def cleanup_namespaces(self):
        for ns in (self.client_ns, self.router_ns, self.pods_ns,
                   *(a.ns for a in self.appliances)):
            run("ip", "netns", "del", ns, check=False)

    # --- observation --------------------------------------------------------
    def router_nexthops(self, vip):
        """The appliances (uplink addresses) the router's route to `vip` goes
        through; [] when it has none."""
        out = ns_exec(self.router_ns, "ip", "-4", "route", "show", f"{vip}/32").stdout
        return sorted(set(w for line in out.split("\n") for w in [_via(line)] if w))

    def wait_for(self, predicate, what, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise TimeoutError(f"timed out waiting for {what}; router routes:\n" +
                           ns_exec(self.router_ns, "ip", "-4", "route").stdout)

    def curl(self, url, count):
        """`count` requests on new connections; the answers (None: failed)."""
        out = ns_exec(self.client_ns, "curl", "-s", "-m", "5", "-H", "Connection: close",
                      "-w", "\\n", *([url] * count), check=False, timeout=120).stdout
        lines = [l for l in out.split("\n") if l]
        return lines + [None] * (count - len(lines))


def _via(line):
    words = line.split()
    return words[words.index("via") + 1] if "via" in words else None
