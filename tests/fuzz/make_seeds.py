#!/usr/bin/env python3
"""Writes the seed corpora of the config, k8s and control fuzz targets
(tests/fuzz/{config,k8s,control}-corpus/) from conf/podgate.toml, the
kubectl fixtures under tests/fixtures/k8s/ and request lines as
docs/control-protocol.md describes them.  The worker target writes its
own seeds (PODGATE_FUZZ_WRITE_SEEDS, tests/fuzz/worker_fuzz.cpp).

Seeds are small and meaningful: valid inputs of every shape, and a few
near misses that the readers must refuse.  Run from anywhere; it rewrites
its own seeds and leaves the regression inputs.
"""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "tests" / "fuzz"


def strip_comments(toml):
    """conf/podgate.toml without its comment lines and trailing comments
    (none of its strings holds a '#')."""
    lines = []
    for line in toml.splitlines():
        line = re.sub(r"\s*#.*$", "", line)
        if line.strip():
            lines.append(line)
    return "\n".join(lines) + "\n"


SHIPPED = strip_comments((ROOT / "conf" / "podgate.toml").read_text())

MINIMAL = """[[ports]]
name = "p0"
device = "net_null0"
address = "192.0.2.1/24"
"""

# Every optional key, every service shape, strings that need escaping.
RICH = r"""[eal]
args = ["--no-huge", "-m", "512", "a \"quoted\" \\ arg", "tab\there"]
[dataplane]
workers = 3
flow_table_size = 2048
maglev_table_size = 251
mbufs = 4095
rx_ring_size = 512
tx_ring_size = 2048
tcp_syn_timeout = 5
tcp_established_timeout = 604800
tcp_fin_timeout = 3
tcp_closing_timeout = 1
udp_timeout = 77
idle_sleep_us = 100
rx_interrupts = true
[[ports]]
name = "uplink"
device = "0000:01:00.0"
address = "192.0.2.1/24"
mac = "02:00:00:00:00:01"
mtu = 9000
client_address = "source"
kernel = "pg-up-k"
kernel_rate = 5000
steered_by_peer = true
[[ports]]
name = "pods"
device = "net_tap1,iface=pg-pods"
address = "172.17.0.1/16"
mtu = 1400
client_address = "destination"
[[routes]]
prefix = "0.0.0.0/0"
via = "192.0.2.254"
[[routes]]
prefix = "10.244.0.0/16"
via = "172.17.0.254"
[[neighbors]]
ip = "192.0.2.254"
mac = "02:00:00:00:01:fe"
[dns]
zone = "k8s.example.test"
ttl = 86400
listen = ["127.0.0.1:5300", "192.0.2.1:53"]
service_ip = "10.96.0.10"
max_udp_payload = 4096
[control]
socket = "/run/podgate/ctl.sock"
mode = "0600"
group = "podgate-admin"
idle_timeout = 0
[metrics]
listen = ""
[announce]
port = "uplink"
table = 4243
[[services]]
namespace = "shop"
name = "cart"
cluster_ip = "10.96.0.40"
session_affinity = "ClientIP"
timeout_seconds = 3600
publish_not_ready_addresses = true
maglev_table_size = 1021
ports = [ { name = "http", port = 80, target_port = 8080, protocol = "TCP" },
          { name = "dns", port = 53, target_port = 5353, protocol = "UDP" } ]
endpoints = [
  { ip = "172.17.2.10", pod = "cart-0.shop", weight = 256 },
  { ip = "172.17.2.12", pod = "cart-2", ready = false, serving = true, terminating = true },
]
[[services]]
namespace = "default"
name = "mongodb"
cluster_ip = "None"
ports = [ { port = 27017 } ]
endpoints = [ { ip = "172.17.1.10", hostname = "mongodb-0", subdomain = "mongodb" } ]
[[services]]
namespace = "shop"
name = "catalog"
cluster_ip = "10.96.0.41"
ports = [ { name = "http", port = 80, target_port = 8080 } ]
endpoints = [ { ip = "172.17.2.20" } ]
[services.health_check]
kind = "http"
path = "/healthz"
expect_status = [200, "204-299"]
interval = "1s"
timeout = "500ms"
rise = 2
fall = 3
on_failure = "reset"
all_unhealthy = "drop"
[[services]]
namespace = "billing"
name = "db"
type = "ExternalName"
external_name = "db.billing.example.com."
ports = [ { name = "pg", port = 5432 } ]
"""

FRAGMENT = """[[services]]
namespace = "default"
name = "added"
cluster_ip = "10.96.0.70"
ports = [ { name = "http", port = 80, target_port = 8080 } ]
endpoints = [ { ip = "172.17.0.30", pod = "added-0" }, { ip = "172.17.0.31", weight = 3 } ]
"""

# IPv6 and dual-stack (issue 11): address6, IPv6 routes and neighbours,
# cluster_ips, endpoints of both families, a headless service of both.
DUAL_STACK = """[[ports]]
name = "uplink"
device = "net_null0"
address = "192.0.2.1/24"
address6 = "2001:db8:1::1/64"
[[ports]]
name = "pods"
device = "net_null1"
address = "172.17.0.1/16"
address6 = "fd00:10:244::1/64"
[[routes]]
prefix = "::/0"
via = "2001:db8:1::fe"
[[routes]]
prefix = "fd00:10:244::/64"
via = "::"
[[neighbors]]
ip = "2001:db8:1::fe"
mac = "02:00:00:00:00:fe"
[[services]]
namespace = "default"
name = "web"
cluster_ips = ["10.96.0.20", "fd00:10:96::20"]
ports = [{ name = "http", port = 80, target_port = 8080 }]
endpoints = [{ ip = "172.17.0.7" }, { ip = "fd00:10:244::7", hostname = "web-0" }]
[[services]]
namespace = "default"
name = "v6"
cluster_ip = "fd00:10:96::30"
ports = [{ port = 80 }]
endpoints = [{ ip = "fd00:10:244::8" }]
[[services]]
namespace = "default"
name = "db"
cluster_ip = "None"
endpoints = [{ ip = "172.17.0.9" }, { ip = "fd00:10:244::9" }]
"""

CONFIG_SEEDS = {
    "dual-stack": DUAL_STACK,
    "bad-dual-stack-one-family": DUAL_STACK.replace('"fd00:10:96::20"]', '"10.96.0.21"]'),
    "shipped": SHIPPED,
    "minimal": MINIMAL,
    "rich": RICH,
    "services-fragment": FRAGMENT,
    # Near misses: each refused for one reason.
    "bad-vip-twice": MINIMAL + FRAGMENT + FRAGMENT.replace('"added"', '"again"'),
    "bad-port-range": MINIMAL.replace('name = "p0"', 'name = "p0"\nmtu = 70000'),
    "bad-unknown-key": MINIMAL + "[dataplane]\nworkerz = 2\n",
    "bad-toml": MINIMAL + "[[services]\nname = \n",
}


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def fixture(name):
    return json.loads((ROOT / "tests" / "fixtures" / "k8s" / name).read_text())


def my_app_slice():
    """An EndpointSlice alone, of a service podgate runs (default/my-app):
    it replaces that service's endpoints."""
    s = fixture("web-endpointslices.json")["items"][0]
    s["metadata"]["name"] = "my-app-x1"
    s["metadata"]["labels"]["kubernetes.io/service-name"] = "my-app"
    s["metadata"].pop("managedFields", None)
    s["ports"] = [{"name": "http", "port": 8080, "protocol": "TCP"}]
    s["endpoints"][0]["addresses"] = ["172.17.0.20"]
    s["endpoints"][1]["addresses"] = ["172.17.0.21"]
    return s


WEB_LIST = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
            "items": [fixture("web-service.json")] + fixture("web-endpointslices.json")["items"]}

K8S_SEEDS = {
    "all-namespaces": compact(fixture("all-namespaces.json")),
    "db-statefulset": compact(fixture("db-statefulset.json")),
    "external-name": (ROOT / "tests" / "fixtures" / "k8s" / "external-name.json").read_text(),
    "web-service": compact(fixture("web-service.json")),
    "web-endpointslices": compact(fixture("web-endpointslices.json")),
    "web-list": compact(WEB_LIST),
    "dual-stack": compact(fixture("dual-stack.json")),
    "slice-of-running-service": compact(my_app_slice()),
    "bad-duplicate-key": '{"kind":"Service","kind":"List","items":[]}',
    "bad-kind": '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}',
}


def request(**fields):
    return compact(fields)


CONTROL_SEEDS = {
    "apply-toml": request(command="apply", text=FRAGMENT, source="added.toml"),
    "apply-kubernetes": request(command="apply", text=compact(WEB_LIST)),
    "apply-slice": request(command="apply", format="kubernetes", text=compact(my_app_slice())),
    "delete-name": request(command="delete", name="default/echo-udp"),
    "delete-text": request(command="delete", format="toml", text=FRAGMENT.replace("added", "my-app")),
    "endpoint-set": request(command="endpoint", action="set", name="default/my-app",
                            ip="172.17.0.11", ready=False, weight=7),
    "endpoint-terminating": request(command="endpoint", action="set", name="default/my-app",
                                    ip="172.17.0.10", terminating=True, id=42, version=1),
    # A client's session: create, change, delete, each against the state before.
    "session": "\n".join([
        request(command="apply", text=FRAGMENT, id=1),
        request(command="endpoint", action="set", name="default/added", ip="172.17.0.30",
                serving=False, id=2),
        request(command="delete", name="default/added", id=3),
    ]) + "\n",
    "apply-dual-stack": request(command="apply", format="kubernetes",
                                text=compact(fixture("dual-stack.json"))),
    "endpoint-set-ipv6": request(command="endpoint", action="set", name="default/my-app",
                                 ip="fd00:10:244::10", ready=False),
    "bad-duplicate-key": '{"command":"status","command":"apply"}',
    "bad-version": request(command="apply", version=2),
    "bad-unknown-command": request(command="frobnicate", id="x"),
    "bad-not-object": "[1,2,3]",
    "bad-json": '{"command": "apply", "text": "\\u12',
}


def write(directory, seeds):
    """Writes `seeds`; other files there (regress-* inputs that once
    failed) stay."""
    out = FUZZ / directory
    out.mkdir(exist_ok=True)
    for name, text in seeds.items():
        (out / name).write_text(text)


def main():
    write("config-corpus", CONFIG_SEEDS)
    write("k8s-corpus", K8S_SEEDS)
    write("control-corpus", CONTROL_SEEDS)


if __name__ == "__main__":
    main()
