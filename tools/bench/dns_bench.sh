#!/usr/bin/env bash
# DNS benchmark (not a test): dnsperf against podgate's kernel UDP listener
# and against Knot DNS (knotd) serving the same names from a zone file.
#
# Both servers answer on one core (podgate's control thread is single-
# threaded; knotd runs with udp-workers: 1, background-workers: 1), pinned
# to CPU $SERVER_CPU, with dnsperf pinned to CPU $CLIENT_CPU, on the same
# machine, with the same query file: positive ClusterIP A, headless A,
# per-Pod (StatefulSet) A, SRV, and mostly NXDOMAIN/NODATA names, as a Pod's
# search list (ndots:5) produces them.  The servers run one after the other,
# alternating, $ROUNDS rounds each, in two modes:
#   max    dnsperf sends as fast as answers come back ($OUTSTANDING queries
#          in flight): the QPS a server sustains; its latency is mostly the
#          queue of outstanding queries, not the work per query.  Keep
#          OUTSTANDING within what both servers' socket buffers hold: knotd
#          (default SO_RCVBUF) drops queries beyond ~250 queued, which caps
#          what dnsperf keeps in flight, and dnsperf's own cost per query
#          grows with the number in flight, so a deeper -q penalises the
#          server that does not drop (podgate: 4 MiB buffer).
#   fixed  dnsperf -Q $LATENCY_QPS (a load both sustain): the latency of one
#          query at equal load.
# The summary gives the median of the rounds and podgate/knot ratios.
#
# podgate needs a worker lcore, which busy-polls (the benchmark sends it no
# packets).  It shares the server's CPU at SCHED_IDLE, so it runs only while
# the control thread sleeps in epoll_wait and is preempted when a query
# wakes it.  (On the client's CPU it would take cycles from dnsperf instead:
# measured here, that cut podgate's QPS by ~15-50%.)  A CPU kept busy that
# way never goes idle, and on a virtual machine waking an idle vCPU costs
# hundreds of microseconds (measured here: knotd alone on its CPU answered
# 20k qps with 0.5-1 ms average latency, next to a busy task with 0.05-0.3
# ms), so knotd's runs get the same companion: a SCHED_IDLE busy loop on the
# server CPU.  Both servers then run on a CPU that never sleeps and that
# they never have to share.
#
# Usage (root, from the source tree):
#   tools/bench/dns_bench.sh [BUILD_DIR]        default: build
# Environment: DURATION (s per run, default 20), ROUNDS (default 3),
#   CLIENT_CPU (0), SERVER_CPU (1), PORT_PODGATE (5310), PORT_KNOT (5311),
#   CLIENTS (dnsperf -c, default 8), OUTSTANDING (dnsperf -q, default 100),
#   LATENCY_QPS (dnsperf -Q in the fixed mode, default 20000).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-3}
CLIENT_CPU=${CLIENT_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
PORT_PODGATE=${PORT_PODGATE:-5310}
PORT_KNOT=${PORT_KNOT:-5311}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-100}
LATENCY_QPS=${LATENCY_QPS:-20000}
PODGATE=$BUILD/control/podgate
for tool in "$PODGATE" dnsperf knotd; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

DIR=$(mktemp -d /tmp/podgate-dns-bench.XXXXXX)
PODGATE_PID=
KNOT_PID=
SPIN_PID=
cleanup() {
  [ -n "$SPIN_PID" ] && kill "$SPIN_PID" 2>/dev/null && wait "$SPIN_PID" 2>/dev/null
  [ -n "$PODGATE_PID" ] && kill "$PODGATE_PID" 2>/dev/null && wait "$PODGATE_PID" 2>/dev/null
  [ -n "$KNOT_PID" ] && kill "$KNOT_PID" 2>/dev/null && wait "$KNOT_PID" 2>/dev/null
  true
}
trap cleanup EXIT

# ---- the names: podgate config, Knot zone file and the query file ----
python3 - "$DIR" "$PORT_PODGATE" "$SERVER_CPU" "$CLIENT_CPU" <<'PY'
import random, sys
out, port, server_cpu, client_cpu = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
Z = "cluster.local"
TTL = 30
N_CLUSTERIP, N_HEADLESS, PODS = 50, 10, 3

cfg = [f'''[eal]
args = ["--no-huge", "--no-shconf", "-m", "256", "--no-pci",
        "--lcores", "0@{server_cpu},1@{server_cpu}", "--file-prefix", "pgdnsbench"]
[dataplane]
workers = 1
flow_table_size = 16384
[[ports]]
name = "uplink"
device = "net_tap0,iface=pgdnsb-up"
address = "192.0.2.1/24"
[[ports]]
name = "pods"
device = "net_tap1,iface=pgdnsb-pods"
address = "172.17.0.1/16"
[dns]
zone = "{Z}"
ttl = {TTL}
listen = ["127.0.0.1:{port}"]
service_ip = "10.96.0.10"
''']
zone = [f"$ORIGIN {Z}.", f"$TTL {TTL}",
        f"@ SOA ns.dns.{Z}. hostmaster.{Z}. 1 7200 1800 86400 {TTL}",
        f"@ NS ns.dns.{Z}.", "ns.dns A 10.96.0.10", 'dns-version TXT "1.1.0"']
for i in range(N_CLUSTERIP):
    vip = f"10.96.1.{i + 1}"
    cfg.append(f'''[[services]]
namespace = "default"
name = "svc-{i}"
cluster_ip = "{vip}"
ports = [ {{ name = "http", port = 80, target_port = 8080 }} ]
endpoints = [ {{ ip = "172.17.2.{i + 1}" }}, {{ ip = "172.17.3.{i + 1}" }} ]
''')
    zone += [f"svc-{i}.default.svc A {vip}",
             f"_http._tcp.svc-{i}.default.svc SRV 0 100 80 svc-{i}.default.svc.{Z}."]
for i in range(N_HEADLESS):
    eps = []
    for p in range(PODS):
        ip = f"172.17.{10 + i}.{p + 10}"
        eps.append(f'{{ ip = "{ip}", hostname = "db-{i}-{p}", subdomain = "db-{i}" }}')
        zone += [f"db-{i}.default.svc A {ip}", f"db-{i}-{p}.db-{i}.default.svc A {ip}",
                 f"_mongo._tcp.db-{i}.default.svc SRV 0 {100 // PODS} 27017 "
                 f"db-{i}-{p}.db-{i}.default.svc.{Z}."]
    cfg.append(f'''[[services]]
namespace = "default"
name = "db-{i}"
cluster_ip = "None"
ports = [ {{ name = "mongo", port = 27017 }} ]
endpoints = [ {", ".join(eps)} ]
''')
open(f"{out}/podgate.toml", "w").write("\n".join(cfg))
open(f"{out}/{Z}.zone", "w").write("\n".join(zone) + "\n")

# The mix: what Pods in namespace "default" ask with ndots:5 and the search
# list default.svc.Z svc.Z Z.  A short service name is found on the first
# try (A, and AAAA which is NODATA); an external name walks the whole list
# (NXDOMAIN 3 times per type) before leaving the cluster zone.
rnd = random.Random(42)
search = [f"default.svc.{Z}", f"svc.{Z}", Z]
external = ["www.example.com", "api.github.com", "s3.amazonaws.com", "db.billing.example.com",
            "login.microsoftonline.com", "registry-1.docker.io", "pypi.org", "mirror.local"]
queries = []
for _ in range(20000):
    r = rnd.random()
    if r < 0.12:
        queries.append(f"svc-{rnd.randrange(N_CLUSTERIP)}.default.svc.{Z} A")
    elif r < 0.16:
        queries.append(f"svc-{rnd.randrange(N_CLUSTERIP)}.default.svc.{Z} AAAA")  # NODATA
    elif r < 0.21:
        queries.append(f"db-{rnd.randrange(N_HEADLESS)}.default.svc.{Z} A")
    elif r < 0.26:
        i = rnd.randrange(N_HEADLESS)
        queries.append(f"db-{i}-{rnd.randrange(PODS)}.db-{i}.default.svc.{Z} A")
    elif r < 0.30:
        if rnd.random() < 0.5:
            queries.append(f"_http._tcp.svc-{rnd.randrange(N_CLUSTERIP)}.default.svc.{Z} SRV")
        else:
            queries.append(f"_mongo._tcp.db-{rnd.randrange(N_HEADLESS)}.default.svc.{Z} SRV")
    else:
        name = rnd.choice(external)
        qtype = rnd.choice(["A", "AAAA"])
        queries.append(f"{name}.{rnd.choice(search)} {qtype}")  # NXDOMAIN
open(f"{out}/queries.txt", "w").write("\n".join(queries) + "\n")
PY

cat > "$DIR/knot.conf" <<EOF
server:
    rundir: "$DIR"
    listen: 127.0.0.1@$PORT_KNOT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$DIR/knotdb"
zone:
  - domain: cluster.local
    file: "$DIR/cluster.local.zone"
EOF

wait_for_answer() {  # port
  for _ in $(seq 100); do
    dig +time=1 +tries=1 @127.0.0.1 -p "$1" "svc-0.default.svc.cluster.local" A +short 2>/dev/null |
      grep -q 10.96.1.1 && return 0
    sleep 0.2
  done
  echo "server on port $1 did not answer" >&2
  return 1
}

start_podgate() {
  "$PODGATE" -c "$DIR/podgate.toml" >"$DIR/podgate.log" 2>&1 &
  PODGATE_PID=$!
  for _ in $(seq 100); do grep -q "running:" "$DIR/podgate.log" && break; sleep 0.2; done
  wait_for_answer "$PORT_PODGATE"
  # The busy-polling worker yields to the control thread on the server CPU.
  for t in /proc/$PODGATE_PID/task/*; do
    case "$(cat "$t/comm")" in
      *worker*) chrt -i -p 0 "$(basename "$t")"
                echo "podgate $(cat "$t/comm") (tid $(basename "$t")) now SCHED_IDLE" ;;
    esac
  done
}

start_knot() {
  mkdir -p "$DIR/knotdb"
  taskset -c "$SERVER_CPU" knotd -c "$DIR/knot.conf" >"$DIR/knot.log" 2>&1 &
  KNOT_PID=$!
  wait_for_answer "$PORT_KNOT"
  # knotd pins each UDP worker to CPU (worker index mod CPUs) itself, which
  # would put its only worker on the client's CPU; move every thread back.
  for t in /proc/$KNOT_PID/task/*; do taskset -pc "$SERVER_CPU" "$(basename "$t")" >/dev/null; done
}

run_dnsperf() {  # name port [extra dnsperf args]
  local name=$1 port=$2
  shift 2
  taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$DIR/queries.txt" -l "$DURATION" \
    -T 1 -c "$CLIENTS" -q "$OUTSTANDING" "$@" >"$DIR/$name.out" 2>&1
  set -- "$name"
  local qps lat lost
  qps=$(awk '/Queries per second:/ {print $4}' "$DIR/$1.out")
  lat=$(awk '/Average Latency/ {print $4 * 1000000}' "$DIR/$1.out")
  lost=$(awk '/Queries lost:/ {print $3}' "$DIR/$1.out")
  echo "$1 qps=$qps avg_latency_us=$lat lost=$lost"
}

stop_podgate() {
  kill "$PODGATE_PID"
  wait "$PODGATE_PID" 2>/dev/null || true
  PODGATE_PID=
}

# Same answers first: the benchmark compares equal work.
start_podgate
start_knot
for q in "svc-1.default.svc.cluster.local A" "db-2.default.svc.cluster.local A" \
         "db-2-1.db-2.default.svc.cluster.local A" "_mongo._tcp.db-3.default.svc.cluster.local SRV" \
         "www.example.com.svc.cluster.local A" "svc-1.default.svc.cluster.local AAAA"; do
  # shellcheck disable=SC2086
  a=$(dig +short @127.0.0.1 -p "$PORT_PODGATE" $q | sort)
  # shellcheck disable=SC2086
  b=$(dig +short @127.0.0.1 -p "$PORT_KNOT" $q | sort)
  # shellcheck disable=SC2086
  s1=$(dig @127.0.0.1 -p "$PORT_PODGATE" $q | grep -o 'status: [A-Z]*')
  # shellcheck disable=SC2086
  s2=$(dig @127.0.0.1 -p "$PORT_KNOT" $q | grep -o 'status: [A-Z]*')
  if [ "$a" != "$b" ] || [ "$s1" != "$s2" ]; then
    echo "answers differ for $q: podgate [$s1 $a] knot [$s2 $b]" >&2
    exit 1
  fi
done
echo "answers agree; $(wc -l <"$DIR/queries.txt") queries in the mix; ${DURATION}s per run"
echo "podgate on CPU $SERVER_CPU (its worker too, at SCHED_IDLE), knotd on CPU $SERVER_CPU, dnsperf on CPU $CLIENT_CPU"

: >"$DIR/results"
# podgate runs only during its own runs: its idle worker must not take
# cycles from knotd.
stop_podgate
for r in $(seq "$ROUNDS"); do
  start_podgate >/dev/null
  run_dnsperf "podgate-max-$r" "$PORT_PODGATE" | tee -a "$DIR/results"
  run_dnsperf "podgate-fixed-$r" "$PORT_PODGATE" -Q "$LATENCY_QPS" | tee -a "$DIR/results"
  kill -USR1 "$PODGATE_PID"; sleep 0.5
  grep "dns: queries" "$DIR/podgate.log" | tail -1 | sed 's/^ */  /'
  stop_podgate
  taskset -c "$SERVER_CPU" chrt -i 0 sh -c 'while :; do :; done' &
  SPIN_PID=$!
  run_dnsperf "knot-max-$r" "$PORT_KNOT" | tee -a "$DIR/results"
  run_dnsperf "knot-fixed-$r" "$PORT_KNOT" -Q "$LATENCY_QPS" | tee -a "$DIR/results"
  kill "$SPIN_PID"
  wait "$SPIN_PID" 2>/dev/null || true
  SPIN_PID=
done
# Where knotd's work ran: CPU seconds and allowed CPUs of its threads.
for pid in "$KNOT_PID"; do
  for t in /proc/$pid/task/*; do
    awk -v n="$(cat /proc/$pid/comm)/$(cat "$t/comm")" -v c="$(taskset -pc "$(basename "$t")" | sed 's/.*: //')" \
      '{printf "  %s on CPU %s: %.1f s CPU\n", n, c, ($14 + $15) / 100}' "$t/stat"
  done
done
python3 - "$DIR/results" <<'PY'
import re, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(prefix, key):
    vals = [float(dict(kv.split("=") for kv in r[1:])[key]) for r in rows if r[0].startswith(prefix)]
    return statistics.median(vals)
for mode in ("max", "fixed"):
    pq, kq = med(f"podgate-{mode}", "qps"), med(f"knot-{mode}", "qps")
    pl, kl = med(f"podgate-{mode}", "avg_latency_us"), med(f"knot-{mode}", "avg_latency_us")
    print(f"median {mode}: podgate {pq:.0f} qps, {pl:.0f} us avg; knot {kq:.0f} qps, {kl:.0f} us "
          f"avg; podgate/knot: qps {pq / kq:.2f}, latency {pl / kl:.2f}")
PY
echo "outputs in $DIR"
