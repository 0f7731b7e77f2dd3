"""A network lab around podgate: podgate on two net_tap ports, the uplink
tap moved into a client network namespace and the pods tap into a Pods
namespace, real HTTP/UDP servers as Pods and real clients (curl, Python
sockets).  Used by the end-to-end tests (tests/e2e) and by tools/demo.py.

Everything stays inside namespaces this harness creates; nothing is sent
to any other address.  Every test run uses its own namespace, interface and
EAL file-prefix names, so runs do not collide with a podgate started by hand.
"""
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
POD_SERVER = ROOT / "tools" / "pod_server.py"


def podgate_binary():
    path = os.environ.get("PODGATE_BIN")
    if path:
        return path
    return str(ROOT / "build" / "control" / "podgate")


def run(*args, check=True, timeout=30, **kw):
    return subprocess.run(list(args), check=check, timeout=timeout,
                          capture_output=True, text=True, **kw)


def stop_podgate(proc):
    """SIGTERM, then SIGKILL after 20 s; podgate's exit code (None if it
    was not started)."""
    if proc is None:
        return None
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def ask_socket(path, request):
    """One request on a fresh connection to the control socket at `path`."""
    client = ControlClient(path)
    try:
        return client.ask(request)
    finally:
        client.close()


def ns_exec(ns, *args, check=True, timeout=30):
    return run("ip", "netns", "exec", ns, *args, check=check, timeout=timeout)


BASE_CONFIG = """
[eal]
args = [{memory_args}"-m", "256", "--no-pci",
        "--lcores", "{lcores}", "--file-prefix", "{tag}"]

[dataplane]
workers = {workers}
flow_table_size = 16384
udp_timeout = {udp_timeout}
{rx_interrupts}
[[ports]]
name = "uplink"
device = "net_tap{n0},iface={tag}-up"
address = "192.0.2.1/24"
{uplink_address6}{uplink_mtu}{uplink_kernel}
[[ports]]
name = "pods"
device = "net_tap{n1},iface={tag}-pods"
address = "172.17.0.1/16"
{pods_address6}{pods_kernel}
[[routes]]
prefix = "198.51.100.0/24"
via = "192.0.2.2"

[dns]
listen = ["127.0.0.1:{dns_port}"]
service_ip = "{dns_vip}"

[control]
socket = "{socket}"

[metrics]
listen = "{metrics_listen}"
"""

# The cluster DNS: the kernel listener (root namespace, loopback only) and
# the VIP the client namespace reaches through the dataplane.
# Names and ports are made unique per test process, so two runs (a
# developer's and CI's, or two suites) never share a namespace, a tap name,
# an EAL file prefix or a DNS port.
# The DNS port, and the few above it that tests take (DNS_PORT + 1 .. + 71),
# stay below Linux's ephemeral range (net.ipv4.ip_local_port_range,
# 32768-60999 by default): a port in it may be the local port of some
# connection, and a listener's bind() on it then fails even with
# SO_REUSEADDR (it did, twice in one run, as "Address already in use").
RUN_ID = os.getpid() % 1000
DNS_PORT = 20000 + os.getpid() % 12000
DNS_VIP = "10.96.0.10"


# The IPv6 half of a dual-stack lab (Appliance(ipv6=True)): podgate's
# addresses on the two links, the client's, and the VIPs' /64.
UPLINK_IP6, CLIENT_IP6, PODS_IP6 = "fd00:2::1", "fd00:2::2", "fd00:17::1"
VIP6_NET = "fd00:96::/64"


def service_toml(namespace, name, cluster_ip, ports, endpoints, extra=""):
    port_items = ", ".join(
        "{ name = \"%s\", port = %d, target_port = %d, protocol = \"%s\" }" % p for p in ports)
    ep_items = ",\n  ".join(endpoints)
    return (f'\n[[services]]\nnamespace = "{namespace}"\nname = "{name}"\n'
            f'cluster_ip = "{cluster_ip}"\n{extra}ports = [{port_items}]\n'
            f'endpoints = [\n  {ep_items},\n]\n')


def endpoint(ip, pod, **fields):
    items = [f'ip = "{ip}"', f'pod = "{pod}"']
    for key, value in fields.items():
        items.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    return "{ " + ", ".join(items) + " }"


class Appliance:
    """podgate plus its two namespaces, Pods and their servers."""

    def __init__(self, tag, workers=1, udp_timeout=300, config_path=None, dns_port=DNS_PORT,
                 metrics_port=None, hugepages=False, uplink_mtu=None, kernel_twins=False,
                 ipv6=False, rx_interrupts=False):
        if config_path is None:
            tag = f"{tag}{RUN_ID:03d}"  # interface names stay <= 15 bytes
        self.tag = tag
        self.dns_port = dns_port
        self.metrics_port = metrics_port  # None: no /metrics endpoint
        # Hugepages with EAL's shared config (what dpdk-dumpcap needs), or
        # none and no shared files (the default: runs anywhere).
        self.hugepages = hugepages
        self.workers = workers
        # podgate's uplink MTU, below the client interface's 1500: a
        # smaller link on the path (path MTU discovery tests).
        self.uplink_mtu = uplink_mtu
        self.udp_timeout = udp_timeout
        self.client_ns = f"{tag}-client"
        self.pods_ns = f"{tag}-pods"
        # With kernel twins (the exception path), podgate runs in a
        # namespace of its own, the appliance's: its twins' addresses and
        # routes then stay out of the host's (and other runs') tables.
        self.kernel_twins = kernel_twins
        # Dual-stack links (issue 11): IPv6 addresses on both, Pods may be
        # IPv6 (add_pod with an IPv6 address).
        self.ipv6 = ipv6
        # Idle workers sleep until their taps' RX interrupts or a doorbell
        # wakes them ([dataplane] rx_interrupts), instead of spinning.
        self.rx_interrupts = rx_interrupts
        self.app_ns = f"{tag}-app" if kernel_twins else None
        self.dir = tempfile.mkdtemp(prefix=f"{tag}-")
        self.fixed_config = config_path is not None
        self.config_path = config_path or os.path.join(self.dir, "podgate.toml")
        self.log_path = os.path.join(self.dir, "podgate.log")
        self.socket_path = os.path.join(self.dir, "podgate.sock")  # the control socket
        self.proc = None
        self.servers = {}
        self.services = ""

    # --- config ---------------------------------------------------------
    def base_config(self):
        lcores = ",".join(["0@0"] + [f"{w + 1}@1" for w in range(self.workers)])
        return BASE_CONFIG.format(lcores=lcores, tag=self.tag, workers=self.workers,
                                  udp_timeout=self.udp_timeout, n0=0, n1=1,
                                  rx_interrupts=("rx_interrupts = true\n" if self.rx_interrupts else ""),
                                  dns_port=self.dns_port, dns_vip=DNS_VIP,
                                  socket=self.socket_path,
                                  uplink_mtu=(f"mtu = {self.uplink_mtu}\n" if self.uplink_mtu else ""),
                                  uplink_address6=(f'address6 = "{UPLINK_IP6}/64"\n' if self.ipv6 else ""),
                                  pods_address6=(f'address6 = "{PODS_IP6}/64"\n' if self.ipv6 else ""),
                                  uplink_kernel=(f'kernel = "{self.tag}-kup"\n'
                                                 if self.kernel_twins else ""),
                                  pods_kernel=(f'kernel = "{self.tag}-kpods"\n'
                                               if self.kernel_twins else ""),
                                  memory_args=("" if self.hugepages
                                               else '"--no-huge", "--no-shconf", '),
                                  metrics_listen=(f"127.0.0.1:{self.metrics_port}"
                                                  if self.metrics_port else ""))

    def write_config(self, services):
        self.services = services
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.base_config() + services)
        os.replace(tmp, self.config_path)  # a reload never reads a half file

    # --- lifecycle ------------------------------------------------------
    def start(self, services, pods):
        """pods: {pod_name: ip}; each gets an HTTP server on :8080 and a
        UDP echo server on :5353."""
        try:
            self._start(services, pods)
        except BaseException:
            self.stop()
            raise

    def _start(self, services, pods):
        self.cleanup_namespaces()
        if not self.fixed_config:
            self.write_config(services)
        self.log = open(self.log_path, "w")
        command = [podgate_binary(), "-c", self.config_path]
        if self.app_ns:
            run("ip", "netns", "add", self.app_ns)
            run("ip", "-n", self.app_ns, "link", "set", "lo", "up")
            command = ["ip", "netns", "exec", self.app_ns] + command  # execs podgate
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        up, pods_if = f"{self.tag}-up", f"{self.tag}-pods"
        self.wait_for(lambda: self.log_has("running:"), "podgate to start")
        run("ip", "netns", "add", self.client_ns)
        run("ip", "netns", "add", self.pods_ns)
        where = ["-n", self.app_ns] if self.app_ns else []
        run("ip", *where, "link", "set", up, "netns", self.client_ns)
        run("ip", *where, "link", "set", pods_if, "netns", self.pods_ns)
        c, p = self.client_ns, self.pods_ns
        run("ip", "-n", c, "link", "set", "lo", "up")
        run("ip", "-n", p, "link", "set", "lo", "up")
        run("ip", "-n", c, "addr", "add", "192.0.2.2/24", "dev", up)
        # A second client address in a routed network (via 192.0.2.2).
        run("ip", "-n", c, "addr", "add", "198.51.100.7/32", "dev", "lo")
        if self.uplink_mtu:
            # net_tap gave the kernel side podgate's MTU; the client's link
            # stays at Ethernet's, so podgate is the narrow hop.
            run("ip", "-n", c, "link", "set", up, "mtu", "1500")
        run("ip", "-n", c, "link", "set", up, "up")
        run("ip", "-n", c, "route", "add", "10.96.0.0/12", "via", "192.0.2.1")
        run("ip", "-n", p, "link", "set", pods_if, "up")
        run("ip", "-n", p, "route", "add", "default", "via", "172.17.0.1", "dev", pods_if, "onlink")
        if self.ipv6:
            # nodad: the addresses are usable at once (no duplicate address
            # detection's second of waiting).
            run("ip", "-n", c, "addr", "add", f"{CLIENT_IP6}/64", "dev", up, "nodad")
            run("ip", "-n", c, "-6", "route", "add", VIP6_NET, "via", UPLINK_IP6)
            run("ip", "-n", p, "-6", "route", "add", "default", "via", PODS_IP6, "dev", pods_if, "onlink")
        for name, ip in pods.items():
            self.add_pod(name, ip)

    def add_pod(self, name, ip):
        if ":" in ip:
            run("ip", "-n", self.pods_ns, "addr", "add", f"{ip}/64", "dev", f"{self.tag}-pods", "nodad")
        else:
            run("ip", "-n", self.pods_ns, "addr", "add", f"{ip}/16", "dev", f"{self.tag}-pods")
        proc = subprocess.Popen(["ip", "netns", "exec", self.pods_ns, "python3", str(POD_SERVER),
                                 name, ip, "8080", "5353"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = proc.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"pod {name} did not start: {line}")
        self.servers[name] = proc

    def stop(self):
        for proc in self.servers.values():
            proc.kill()
            proc.wait()
            proc.stdout.close()
        self.servers = {}
        code = stop_podgate(self.proc)
        self.cleanup_namespaces()
        if getattr(self, "log", None):
            self.log.close()
        return code

    def cleanup_namespaces(self):
        for ns in (self.client_ns, self.pods_ns, self.app_ns):
            if ns:
                run("ip", "netns", "del", ns, check=False)

    # --- observation ----------------------------------------------------
    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def log_has(self, text):
        return text in self.log_text()

    def wait_for(self, predicate, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"podgate exited ({self.proc.returncode}) waiting for {what}:\n"
                                   + self.log_text())
            time.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what}:\n" + self.log_text())

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, services):
        """Rewrites the config and sends SIGHUP; returns True when podgate
        applied it, False when it refused it."""
        text = self.log_text()
        applied, refused = text.count("published snapshot"), text.count("reload refused")
        self.write_config(services)
        self.signal(signal.SIGHUP)
        self.wait_for(lambda: self.log_text().count("published snapshot") > applied
                      or self.log_text().count("reload refused") > refused, "the reload")
        if self.log_text().count("published snapshot") == applied:
            return False
        self.wait_adopted()
        return True

    def ask(self, request):
        """One request on a fresh control-socket connection; the reply."""
        return ask_socket(self.socket_path, request)

    def wait_adopted(self, generation=None):
        """Waits until every worker forwards with snapshot `generation` (by
        default the live one).  Observable through `stats`: the snapshot a
        publication replaced is freed only after every worker has passed a
        quiescent state since, and a worker takes the newest snapshot from
        its ring right after that state, before its next packet
        (control/publish/snapshot_publisher.hpp).  So once nothing awaits freeing,
        every packet sent from now on meets the new snapshot."""
        def adopted():
            snap = self.ask({"command": "stats"})["snapshot"]
            return ((generation is None or snap["generation"] >= generation)
                    and snap["awaiting_free"] == 0)
        self.wait_for(adopted, f"every worker to adopt snapshot {generation or 'live'}")

    def worker_totals(self):
        """Each worker counter summed over the workers (`stats`)."""
        totals = {}
        for w in self.ask({"command": "stats"})["workers"]:
            for name, value in w["counters"].items():
                totals[name] = totals.get(name, 0) + value
        return totals

    def counters(self):
        """Sends SIGUSR1 and returns the printed counter block."""
        before = self.log_text().count("counters:")
        self.signal(signal.SIGUSR1)
        # The block is one log line; its last part is the snapshot's.
        self.wait_for(lambda: self.log_text().count("counters:") > before and
                      "snapshot generation=" in self.log_text().split("counters:")[-1]
                      and self.log_text().endswith("\n"), "counters")
        return self.log_text().split("counters:")[-1]

    # --- clients ----------------------------------------------------------
    def curl_many(self, url, count, source=None):
        """count requests, each on a new connection; returns the answers
        (None for a failed request)."""
        args = ["curl", "-s", "-m", "5", "-H", "Connection: close", "-w", "\\n%{http_code}\\n"]
        if source:
            args += ["--interface", source]
        answers = []
        batch = 50
        for start in range(0, count, batch):
            n = min(batch, count - start)
            out = ns_exec(self.client_ns, *args, *([url] * n), check=False, timeout=120).stdout
            lines = [l for l in out.split("\n") if l]
            # Each request prints its body line then its status code.
            got = []
            i = 0
            while i < len(lines):
                if lines[i] == "200" or lines[i] == "000":
                    got.append(None)
                    i += 1
                elif i + 1 < len(lines) and lines[i + 1] == "200":
                    got.append(lines[i])
                    i += 2
                else:
                    got.append(None)
                    i += 1
            answers += got + [None] * (n - len(got))
        return answers

    def echoed_whole(self, client, vip, port, pod_prefix, source_ports=range(41000, 41010), size=4000):
        """Sends a `size`-byte datagram from `client` (either family) to
        vip:port from each source port, larger than the links' MTU so that
        it travels in fragments both ways; returns how many came back whole
        from a Pod whose name starts with `pod_prefix`."""
        family = "AF_INET6" if ":" in client else "AF_INET"
        script = (
            "import socket\n"
            f"data=bytes(i*7%256 for i in range({size}))\n"
            "ok=0\n"
            f"for port in {list(source_ports)!r}:\n"
            f"  s=socket.socket(socket.{family},socket.SOCK_DGRAM); s.settimeout(3)\n"
            f"  s.bind(('{client}',port))\n"
            f"  s.sendto(data,('{vip}',{port}))\n"
            "  try:\n"
            f"    r=s.recv(65535); name,echo=r.split(b' ',1); ok+=echo==data and name.startswith(b'{pod_prefix}')\n"
            "  except socket.timeout: pass\n"
            "print(ok)\n")
        return int(ns_exec(self.client_ns, "python3", "-c", script, timeout=60).stdout.strip() or 0)

    def udp_ask(self, vip, port, source_ports, message="hi", timeout=2.0):
        """Sends one datagram from each source port; returns {port: pod}."""
        script = (
            "import socket,sys,json\n"
            "res={}\n"
            f"for p in {list(source_ports)!r}:\n"
            "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "  s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "  s.bind(('192.0.2.2',p)); s.settimeout(%f)\n" % timeout +
            f"  s.sendto({message!r}.encode(),('{vip}',{port}))\n"
            "  try: res[p]=s.recvfrom(2048)[0].decode().split(' ')[0]\n"
            "  except socket.timeout: res[p]=None\n"
            "  s.close()\n"
            "print(json.dumps(res))\n")
        import json
        out = ns_exec(self.client_ns, "python3", "-c", script, timeout=300).stdout
        return {int(k): v for k, v in json.loads(out).items()}


KEEPALIVE_CLIENT = r"""
import http.client, json, sys
conns = []
for line in sys.stdin:
    cmd = line.split()
    try:
        if cmd[0] == "open":
            out = []
            for _ in range(int(cmd[3])):
                c = http.client.HTTPConnection(cmd[1], int(cmd[2]), timeout=5)
                c.request("GET", "/")
                body = c.getresponse().read().decode().strip()
                conns.append(c)
                out.append([len(conns) - 1, c.sock.getsockname()[1], body])
            print(json.dumps(out), flush=True)
        elif cmd[0] == "get":
            c = conns[int(cmd[1])]
            c.request("GET", "/")
            body = c.getresponse().read().decode().strip()
            print(json.dumps([c.sock.getsockname()[1], body]), flush=True)
    except Exception as e:
        print(json.dumps(["error", str(e)]), flush=True)
"""


class KeepAliveClient:
    """HTTP/1.1 keep-alive connections held open in the client namespace:
    each stays one TCP connection (one flow) for as long as this lives."""

    def __init__(self, app):
        self.proc = subprocess.Popen(["ip", "netns", "exec", app.client_ns, "python3", "-c",
                                      KEEPALIVE_CLIENT], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def _ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def open(self, vip, port, count):
        """[(index, local port, pod)] of `count` new connections."""
        return [tuple(x) for x in self._ask(f"open {vip} {port} {count}")]

    def open_until(self, vip, port, pod, most=60):
        """[(index, local port, pod)] of new connections, opened a few at a
        time until one reaches `pod` or `most` are open. Maglev places each
        client port on a Pod by hash, so a fixed count only makes it likely
        that one lands on a given Pod (12 on one of 3 Pods miss it 1 time in
        130); `most` makes a miss a real failure."""
        conns = []
        while len(conns) < most:
            conns += self.open(vip, port, min(6, most - len(conns)))
            if any(c[2] == pod for c in conns):
                break
        return conns

    def get(self, index):
        """(local port, pod) of one more request on connection `index`."""
        return tuple(self._ask(f"get {index}"))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


class ControlClient:
    """One connection to podgate's control socket (docs/control-protocol.md):
    send request lines, read reply lines."""

    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def ask(self, req):
        self.send_raw((req if isinstance(req, bytes) else json.dumps(req).encode()) + b"\n")
        return self.read_line()

    def close(self):
        self.sock.close()
