"""A memif lab around podgate: podgate's two ports are net_memif servers and
podgate-gen (tools/trafficgen) opens the client side of both, so one process
plays every client and every Pod and checks each packet.  Used by the memif
end-to-end tests (tests/e2e/test_trafficgen.py, tests/e2e/test_churn.py);
tools/bench/throughput.py uses its building blocks (devargs, config tables,
the generator run) around its own forwarders.

    podgate-gen                                 podgate
    net_memif0 client, mac CLIENT_MAC  <--->  net_memif0 server  "uplink" 192.0.2.1/24
      clients (e.g. 198.51.100.0/24) sit behind GATEWAY 192.0.2.2 (a static route)
    net_memif1 client, mac POD_MAC     <--->  net_memif1 server  "pods"   172.17.0.1/16
      every Pod 172.17.x.y answers on POD_MAC

A dual-stack lab (ipv6=True) adds fd00:2::1/64 to the uplink and
fd00:17::1/64 to the pods port; the IPv6 clients (2001:db8:100::/64) sit
behind GATEWAY6 fd00:2::2, and IPv6 Pods fd00:17::x answer on POD_MAC too.

The memif control sockets are files (socket-abstract=no) in the lab's own
temp dir; there is no namespace, no tap and no kernel interface, so no
packet leaves the two processes.  Rings are 2^12 = 4096 slots (rsize=12)
so a generator that is briefly descheduled does not overflow them.  Every
lab has its own temp dir and its own EAL file prefix (a tag plus the
process id), and EAL runs with --no-huge --no-shconf, so nothing is written
outside that dir and two runs (a developer's and CI's) never collide.

PODGATE_BIN overrides build/control/podgate, PODGATE_GEN_BIN
build/tools/trafficgen/podgate-gen.
"""
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

CLIENT_MAC = "02:00:00:00:01:01"   # the generator's uplink-side port
POD_MAC = "02:00:00:00:02:01"      # the generator's pods-side port
GATEWAY = "192.0.2.2"              # where podgate routes the clients' networks
CLIENTS = "198.51.100.0/24"        # the clients' network in the tests
UPLINK6 = "fd00:2::1"              # podgate's uplink address6 (dual-stack labs)
PODS6_NET = "fd00:17::1/64"        # podgate's pods address6
GATEWAY6 = "fd00:2::2"             # where podgate routes the IPv6 clients
CLIENTS6 = "2001:db8:100::/64"     # the IPv6 clients' network (RFC 3849)
RING_SIZE_LOG2 = 12                # rsize: 4096-slot memif rings


def podgate_binary():
    return os.environ.get("PODGATE_BIN", str(ROOT / "build" / "control" / "podgate"))


def gen_binary():
    return os.environ.get("PODGATE_GEN_BIN",
                          str(ROOT / "build" / "tools" / "trafficgen" / "podgate-gen"))


# ---------------------------------------------------------------------------
# The wiring: memif devargs and the config tables that go with them
# ---------------------------------------------------------------------------

def memif_devargs(index, role, socket, rsize=RING_SIZE_LOG2, mac=None):
    """net_memif<index> devargs; rsize None leaves the PMD's default ring."""
    args = f"net_memif{index},role={role},socket={socket},id=0,socket-abstract=no"
    if rsize is not None:
        args += f",rsize={rsize}"
    if mac:
        args += f",mac={mac}"
    return args


def generator_vdevs(up_socket, pods_socket, rsize=RING_SIZE_LOG2):
    """podgate-gen's EAL --vdev arguments: the client side of both ports."""
    return ["--vdev", memif_devargs(0, "client", up_socket, rsize, CLIENT_MAC),
            "--vdev", memif_devargs(1, "client", pods_socket, rsize, POD_MAC)]


def ports_toml(up_socket, pods_socket, rsize=RING_SIZE_LOG2, ipv6=False, steered_uplink=False):
    """podgate's two [[ports]]: the memif servers; with ipv6, dual-stack.
    steered_uplink: the generator steers the clients' packets onto their
    owners' queues (podgate-gen --steer-workers), and the uplink says so
    (steered_by_peer)."""
    return f"""
[[ports]]
name = "uplink"
device = "{memif_devargs(0, 'server', up_socket, rsize)}"
address = "192.0.2.1/24"
{f'address6 = "{UPLINK6}/64"' if ipv6 else ""}
{"steered_by_peer = true" if steered_uplink else ""}
[[ports]]
name = "pods"
device = "{memif_devargs(1, 'server', pods_socket, rsize)}"
address = "172.17.0.1/16"
{f'address6 = "{PODS6_NET}"' if ipv6 else ""}
"""


def route_toml(prefix):
    """A route to a clients' network via the generator (GATEWAY6 for an
    IPv6 prefix)."""
    via = GATEWAY6 if ":" in prefix else GATEWAY
    return f'[[routes]]\nprefix = "{prefix}"\nvia = "{via}"\n'


def neighbors_toml(pods, ipv6=False):
    """Static neighbours for the gateway (both, with ipv6) and `pods`, so
    podgate sends without asking ARP or NDP first."""
    entries = [(GATEWAY, CLIENT_MAC)] + ([(GATEWAY6, CLIENT_MAC)] if ipv6 else [])
    entries += [(ip, POD_MAC) for ip in pods]
    return "".join(f'[[neighbors]]\nip = "{ip}"\nmac = "{mac}"\n' for ip, mac in entries)


def ready_endpoints(ips):
    return [f'{{ ip = "{ip}" }}' for ip in ips]


def churn_endpoints(base, extra, phase):
    """A service's endpoints in churn phase 0, 1, 2 (repeating): the base
    Pods alone; plus both extra Pods ready; plus extra Pod 0 draining
    (serving + terminating: keeps its flows, takes no new ones) and extra
    Pod 1 ready."""
    eps = ready_endpoints(base)
    if phase == 1:
        eps += ready_endpoints(extra)
    elif phase == 2:
        eps += [f'{{ ip = "{extra[0]}", ready = false, serving = true, terminating = true }}',
                f'{{ ip = "{extra[1]}" }}']
    return eps


def service_toml(name, vip, port, target, proto, endpoints, port_name="p"):
    """One [[services]] table with a single port; endpoints are inline
    tables (ready_endpoints, churn_endpoints).  A list of VIPs is a
    dual-stack service's cluster_ips."""
    vips = (f'cluster_ips = [{", ".join(f"{chr(34)}{v}{chr(34)}" for v in vip)}]'
            if isinstance(vip, (list, tuple)) else f'cluster_ip = "{vip}"')
    return f"""
[[services]]
namespace = "default"
name = "{name}"
{vips}
ports = [ {{ name = "{port_name}", port = {port}, target_port = {target}, protocol = "{proto}" }} ]
endpoints = [ {", ".join(endpoints)} ]
"""


# ---------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------

def service_arg(vip, port, target, proto, pods):
    """podgate-gen's --service: what it sends to and which Pods may get it
    (IPv6 addresses in brackets)."""
    def host(ip):
        return f"[{ip}]" if ":" in ip else ip
    return f"{host(vip)}:{port}/{proto.lower()}=" + ",".join(f"{host(ip)}:{target}" for ip in pods)


def endpoint_flows(results):
    """{service: {endpoint: flows}} from the --json results."""
    return {s["service"]: {e["endpoint"]: e["flows"] for e in s["endpoints"]}
            for s in results["services"]}


def run_generator(command, json_path, on_started=None, timeout=120):
    """Runs a podgate-gen command line that writes --json json_path; calls
    on_started once its links are up and traffic is about to start.
    Returns (exit code, parsed results or None, stdout + stderr).  A run
    past `timeout` seconds is killed."""
    if os.path.exists(json_path):
        os.unlink(json_path)
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            for line in proc.stdout:
                lines.append(line)
                # Printed (and flushed) after the links are up, right before sending.
                if on_started and line.startswith("podgate-gen: client port"):
                    on_started()
                    on_started = None
            proc.wait()
        finally:
            watchdog.cancel()
    results = None
    if os.path.exists(json_path):
        with open(json_path) as f:
            results = json.load(f)
    return proc.returncode, results, "".join(lines)


# ---------------------------------------------------------------------------
# podgate on the memif servers, for the tests
# ---------------------------------------------------------------------------

CONFIG = """
[eal]
args = ["--no-huge", "--no-shconf", "-m", "256", "--no-pci", "--lcores", "{lcores}",
        "--file-prefix", "{tag}"]
[dataplane]
workers = {workers}
flow_table_size = 16384
{ports}
{route}
{neighbors}
[dns]
listen = []
[control]
socket = "{control}"
{services}"""


class MemifPodgate:
    """podgate (one worker on CPU 1, control on CPU 0; more workers share
    the two CPUs) on the two memif servers, in a temp dir of its own.

    services: the [[services]] tables (service_toml).  neighbors: the Pod
    addresses that get static neighbour entries, with the gateway; None
    for none at all, so podgate resolves Pods and gateway by ARP (the
    generator answers).  ipv6: a dual-stack lab (address6 on both ports,
    a route to CLIENTS6 via GATEWAY6, and GATEWAY6 among the static
    neighbours); podgate then resolves IPv6 next hops by NDP.
    steered_uplink: see ports_toml."""

    def __init__(self, prefix, services, neighbors=None, workers=1, ipv6=False,
                 steered_uplink=False):
        self.workers = workers
        self.ipv6 = ipv6
        self.steered_uplink = steered_uplink
        self.dir = tempfile.mkdtemp(prefix=f"{prefix}-")
        self.tag = f"{prefix}{os.getpid() % 100000}"
        self.neighbors = neighbors
        self.config = os.path.join(self.dir, "podgate.toml")
        self.log_path = os.path.join(self.dir, "podgate.log")
        self.write_config(services)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([podgate_binary(), "-c", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while "running:" not in self.log_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("podgate did not start:\n" + self.log_text())
            time.sleep(0.05)

    def socket(self, name):
        return os.path.join(self.dir, f"{name}.sock")

    def write_config(self, services):
        text = CONFIG.format(
            tag=self.tag, workers=self.workers,
            lcores=",".join(["0@0"] + [f"{w + 1}@{1 - w % 2}" for w in range(self.workers)]),
            ports=ports_toml(self.socket("up"), self.socket("pods"), ipv6=self.ipv6,
                             steered_uplink=self.steered_uplink),
            route=route_toml(CLIENTS) + (route_toml(CLIENTS6) if self.ipv6 else ""),
            neighbors=(neighbors_toml(self.neighbors, self.ipv6)
                       if self.neighbors is not None else ""),
            control=os.path.join(self.dir, "control.sock"), services=services)
        # Atomic replace: a SIGHUP never reads a half-written file.
        with open(self.config + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.config + ".tmp", self.config)

    def update_services(self, services):
        """Rewrites the config with these services and sends SIGHUP
        without waiting (published() counts what was applied)."""
        self.write_config(services)
        self.proc.send_signal(signal.SIGHUP)

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def published(self):
        """Snapshots published after start (one per applied update)."""
        text = self.log_text()
        return text[text.find("running:"):].count("published snapshot")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def ask(self, command):
        """One control-socket request; the parsed reply."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        try:
            sock.connect(os.path.join(self.dir, "control.sock"))
            sock.sendall(json.dumps({"command": command}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            sock.close()
        return json.loads(data)

    def links_up(self):
        """Each port's link state as podgate sees it (`status`): a memif
        server's link is up while a client is connected."""
        return [p["link_up"] for p in self.ask("status")["ports"]]

    def wait_links_down(self, timeout=20):
        """A memif server serves one client at a time: before a generator
        connects, wait until podgate has seen the previous one leave (its
        ports' links down), rather than racing its interrupt thread."""
        deadline = time.monotonic() + timeout
        while any(self.links_up()):
            if time.monotonic() > deadline:
                raise RuntimeError("podgate's memif ports stayed up after the last generator left")
            time.sleep(0.02)

    def generate(self, *args, on_started=None, timeout=120):
        """Runs podgate-gen on CPU 0 against this podgate with these
        options (after its --json); returns run_generator's
        (exit code, results or None, output), the output followed by
        drop_report()."""
        self.wait_links_down()
        out = os.path.join(self.dir, f"gen-{time.monotonic_ns()}.json")
        command = [gen_binary(), "--no-huge", "--no-shconf", "-m", "256", "--no-pci",
                   "--lcores", "0@0", "--file-prefix", f"{self.tag}gen",
                   *generator_vdevs(self.socket("up"), self.socket("pods")),
                   "--", "--json", out, *args]
        code, results, output = run_generator(command, out, on_started=on_started, timeout=timeout)
        return code, results, output + self.drop_report()

    def drop_report(self):
        """podgate's packet totals since it started, its nonzero drop
        counters (control thread and each worker, by reason) and port
        errors, as a line for a test's failure message: a lost packet
        then says whether, and where, podgate lost it."""
        if self.proc.poll() is not None:
            return f"podgate exited ({self.proc.returncode})\n"
        try:
            stats = self.ask("stats")
        except (OSError, ValueError) as e:
            return f"podgate stats unavailable: {e}\n"
        workers = stats["workers"]
        parts = ["workers received {} and sent {} packets".format(
            sum(w["counters"]["rx_packets"] for w in workers),
            sum(w["counters"]["tx_packets"] for w in workers))]
        for name, c in [("control", stats["control"])] + [
                (f"worker {w['worker']}", w) for w in workers]:
            drops = {k: v for k, v in c["drops"].items() if v}
            if drops:
                parts.append(f"{name} drops {drops}")
        for port in stats["ports"]:
            errors = {k: port[k] for k in ("ierrors", "imissed", "oerrors", "rx_nombuf") if port[k]}
            if errors:
                parts.append(f"port {port['name']} {errors}")
        if len(parts) == 1:
            parts.append("no drops, no port errors")
        return "podgate since it started: " + "; ".join(parts) + "\n"
