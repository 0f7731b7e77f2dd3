#!/usr/bin/env python3
"""Runs podgate on a config (default conf/podgate.toml) with a client
namespace and a Pods namespace around it, so it can be tried at once:

    ip netns exec pg-client curl http://10.96.0.20/
    ip netns exec pg-client dig @10.96.0.10 my-app.default.svc.cluster.local

The config's ports must be net_tap devices named iface=pg-up and
iface=pg-pods (as conf/podgate.toml has).  Pods: every endpoint of the
config's ClusterIP services gets an HTTP server on its target ports' 8080
and a UDP echo server on 5353, answering with its Pod name.  Ctrl-C stops
podgate and removes the namespaces.
"""
import argparse
import os
import signal
import sys
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netlab  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default=str(netlab.ROOT / "conf" / "podgate.toml"))
    args = parser.parse_args()
    with open(args.config, "rb") as f:
        config = tomllib.load(f)
    pods = {}
    for svc in config.get("services", []):
        if svc.get("cluster_ip", "None") == "None":
            continue
        for ep in svc.get("endpoints", []):
            pods.setdefault(ep.get("pod") or ep["ip"].replace(".", "-"), ep["ip"])

    app = netlab.Appliance("pg", config_path=os.path.abspath(args.config))
    app.start("", pods)
    print(f"podgate is running (log: {app.log_path}); Pods: {', '.join(sorted(pods))}")
    for svc in config.get("services", []):
        ip = svc.get("cluster_ip", "None")
        if ip == "None":
            continue
        for port in svc.get("ports", []):
            if port.get("protocol", "TCP") == "TCP":
                print(f"  ip netns exec pg-client curl http://{ip}:{port['port']}/")
    dns = config.get("dns", {})
    zone = dns.get("zone", "cluster.local")
    for svc in config.get("services", [])[:3]:
        name = f"{svc['name']}.{svc['namespace']}.svc.{zone}"
        if dns.get("service_ip"):
            print(f"  ip netns exec pg-client dig @{dns['service_ip']} {name}")
        for listen in dns.get("listen", ["127.0.0.1:53"])[:1]:
            host, port = listen.rsplit(":", 1)
            print(f"  dig @{host} -p {port} {name}")
    print("counters: kill -USR1 %d; reload: kill -HUP %d; Ctrl-C stops" % (app.proc.pid, app.proc.pid))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while app.proc.poll() is None:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping")
        app.stop()
        sys.stdout.write(app.log_text().split("final counters:")[-1])


if __name__ == "__main__":
    main()
