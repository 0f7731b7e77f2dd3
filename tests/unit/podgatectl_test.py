#!/usr/bin/env python3
"""podgatectl's human-readable output (issue 15): nothing the server sends
reaches the terminal unprintable, and booleans read as the config writes
them.  No podgate needed: the renderers are fed replies directly.

Run: python3 tests/unit/podgatectl_test.py [-v]
"""
import contextlib
import importlib.machinery
import importlib.util
import io
import json
import os
import random
import socket
import subprocess
import tempfile
import threading
import unittest

PODGATECTL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "podgatectl")


def load():
    loader = importlib.machinery.SourceFileLoader("podgatectl", PODGATECTL)
    spec = importlib.util.spec_from_loader("podgatectl", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


ctl = load()


def endpoints_reply(pod):
    return {"ok": True, "version": 1, "name": "default/web", "endpoints": [
        {"ip": "172.17.0.10", "pod": pod, "hostname": "", "state": "ready", "ready": True,
         "serving": True, "terminating": False, "weight": 1, "ports": []}]}


def printed(reply, render, output="table"):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ctl.report(reply, render, output)
    return code, out.getvalue(), err.getvalue()


def stats_reply():
    block = {"counters": {"rx_packets": 5, "punted": 1}, "drops": {"no_service": 0}}
    return {"ok": True, "version": 1,
            "workers": [dict(block, worker=0)],
            "control": dict(block, waiting_for_arp=2, loop_turns=5200, doorbell_rings=7),
            "ports": [{"name": "uplink", "ipackets": 1, "opackets": 2, "ibytes": 3, "obytes": 4,
                       "imissed": 0, "ierrors": 0, "oerrors": 0, "rx_nombuf": 0}],
            "dns": {"queries": {"udp": 1}, "answers": {"noerror": 1}, "truncated": 0,
                    "dropped": 0, "tcp_open": 0},
            "snapshot": {"generation": 3, "awaiting_free": 0, "freed": 2},
            "control_socket": {"connections": 1}}


class StatsTest(unittest.TestCase):
    def test_the_control_threads_own_figures_are_shown(self):
        code, out, _ = printed(stats_reply(), ctl.show_stats)
        self.assertEqual(code, 0)
        self.assertIn("control thread: waiting_for_arp=2 loop_turns=5200 doorbell_rings=7", out)


def status_reply(ports):
    return {"ok": True, "version": 1, "podgate_version": "0.1.0", "uptime_seconds": 5,
            "workers": 1, "services": 0, "generation": 1, "unsaved_changes": 0,
            "config_file": "/etc/podgate/podgate.toml", "announce": None,
            "ports": [dict({"device": "net_tap0", "port_id": i, "driver": "net_tap",
                            "mac": "02:00:00:00:00:01", "address": "192.0.2.1/24",
                            "kernel": None}, **p) for i, p in enumerate(ports)]}


class StatusTest(unittest.TestCase):
    def test_a_link_speed_nobody_knows_reads_unknown(self):
        # podgate sends null for RTE_ETH_SPEED_NUM_UNKNOWN (once 4294967295).
        code, out, _ = printed(status_reply([
            {"name": "uplink", "link_up": True, "speed_mbps": 10000},
            {"name": "vf", "link_up": True, "speed_mbps": None},
            {"name": "pods", "link_up": False, "speed_mbps": None}]), ctl.show_status)
        self.assertEqual(code, 0)
        rows = {l.split()[0]: l for l in out.splitlines() if l.split()[:1] in (["uplink"], ["vf"],
                                                                                ["pods"])}
        self.assertIn("up 10000Mb/s", rows["uplink"])
        self.assertIn("up, speed unknown", rows["vf"])
        self.assertIn("down", rows["pods"])
        self.assertNotIn("None", out)


class PrintableOutputTest(unittest.TestCase):
    def test_control_characters_in_a_name_are_escaped(self):
        code, out, _ = printed(endpoints_reply("x\x1b[2J\x00y\u2028z"), ctl.show_endpoints)
        self.assertEqual(code, 0)
        self.assertIn("x\\x1b[2J\\x00y\\u2028z", out)
        self.assertTrue(all(c == "\n" or c.isprintable() for c in out), repr(out))

    def test_error_messages_are_escaped_too(self):
        reply = {"ok": False, "version": 1,
                 "error": {"code": "bad_request", "message": "no service \x1b]0;pwned\x07"}}
        code, _, err = printed(reply, ctl.show_endpoints)
        self.assertEqual(code, 1)
        self.assertIn("no service \\x1b]0;pwned\\x07", err)
        self.assertNotIn("\x1b", err)

    def test_json_output_is_json_escaped_not_rewritten(self):
        _, out, _ = printed(endpoints_reply("x\x1by"), ctl.show_endpoints, output="json")
        self.assertIn('"x\\u001by"', out)

    def test_printable_text_passes_unchanged(self):
        self.assertEqual(ctl.printable_text("web-0 ünïcode ✓"), "web-0 ünïcode ✓")

    def test_booleans_read_true_and_false(self):
        _, out, _ = printed(endpoints_reply("web-0"), ctl.show_endpoints)
        cells = out.splitlines()[1].split()
        self.assertEqual(cells[4:7], ["true", "true", "false"], out)
        self.assertNotIn("True", out)
        self.assertNotIn("False", out)


UNHEALTHY = {"service": "default/web", "ip": "172.17.0.10", "port": 8080, "kind": "http",
             "healthy": False, "state": "unhealthy", "last_result": "http_status",
             "reason": "http 503", "successes": 0, "failures": 4, "changed_at": 1764894000.1,
             "changed_seconds_ago": 125.4, "service_ports": ["80/TCP"]}


class HealthOutputTest(unittest.TestCase):
    def test_health_lists_the_unhealthy_with_reason_and_since_when(self):
        reply = {"ok": True, "version": 1, "checked": 3, "unhealthy": 1, "probes": 9,
                 "in_flight": 0, "endpoints": [UNHEALTHY]}
        code, out, _ = printed(reply, ctl.show_health)
        self.assertEqual(code, 0)
        lines = out.splitlines()
        self.assertEqual(lines[0].split()[:4], ["SERVICE", "ENDPOINT", "CHECK", "HEALTH"])
        self.assertIn("default/web", lines[1])
        self.assertIn("172.17.0.10:8080", lines[1])
        self.assertIn("http 503", lines[1])
        self.assertIn("2m5s ago", lines[1])
        self.assertIn("1 of 3 checked endpoints unhealthy", out)

    def test_health_says_when_all_are_healthy(self):
        reply = {"ok": True, "version": 1, "checked": 3, "unhealthy": 0, "probes": 9,
                 "in_flight": 0, "endpoints": []}
        self.assertIn("all 3 checked endpoints are healthy", printed(reply, ctl.show_health)[1])

    def test_endpoints_show_health_beside_conditions(self):
        reply = endpoints_reply("web-0")
        reply["endpoints"][0]["health"] = [UNHEALTHY]
        _, out, _ = printed(reply, ctl.show_endpoints)
        self.assertIn("unhealthy", out)
        self.assertIn("http 503", out)

    def test_the_health_annotation_survives_slimming(self):
        doc = {"kind": "Service", "metadata": {"name": "web", "annotations": {
            "podgate.io/health-check": "{}", "kubectl.kubernetes.io/last-applied": "x" * 100}}}
        slim = json.loads(ctl.slim_kubernetes(json.dumps(doc), "auto"))
        self.assertEqual(slim["metadata"]["annotations"], {"podgate.io/health-check": "{}"})


class LongReplyTest(unittest.TestCase):
    """podgate writes a long reply (stats at 10k services: 36 MB) a piece per
    loop turn: podgatectl reads it whole, however it is cut, and the reply
    after it on the same connection stays the next one's."""

    def test_a_reply_in_many_pieces_reads_as_the_whole_one(self):
        big = {"ok": True, "version": 1, "services": [
            {"name": f"default/svc-{i}", "endpoints": [{"ip": f"10.0.{i % 250}.{j}"} for j in range(10)]}
            for i in range(20000)]}
        small = {"ok": True, "version": 1, "pong": True}
        wire = (json.dumps(big, separators=(",", ":")) + "\n" +
                json.dumps(small) + "\n").encode()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.sock")
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(path)
            srv.listen(1)

            def serve():
                conn, _ = srv.accept()
                with conn:
                    conn.recv(65536)  # the first request; the second is answered with it
                    rnd = random.Random(14)
                    pos = 0
                    while pos < len(wire):
                        n = rnd.choice((1, 7, 4096, 65536, 70000))
                        conn.sendall(wire[pos:pos + n])
                        pos += n
                    conn.recv(65536)

            t = threading.Thread(target=serve)
            t.start()
            try:
                c = ctl.Connection(path, timeout=30)
                self.assertEqual(c.ask({"command": "services"}), big)
                self.assertEqual(c.ask({"command": "ping"}), small)
                c.close()
            finally:
                t.join(timeout=30)
                srv.close()


class InputFileTest(unittest.TestCase):
    def test_an_input_file_that_is_not_utf8_is_unreadable_exit_2(self):
        # Once a UnicodeDecodeError traceback; --help promises exit 2.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "services.toml")
            with open(path, "wb") as f:
                f.write(b"[[services]]\nname = \"caf\xe9\"\n")  # Latin-1
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = ctl.main(["-s", os.path.join(tmp, "none.sock"), "apply", "-f", path])
            self.assertEqual(code, 2)
            self.assertIn(f"cannot read {path}: not UTF-8 text (byte 0xe9 at offset 24)",
                          err.getvalue())

    def test_standard_input_that_is_not_utf8_is_unreadable_exit_2(self):
        r = subprocess.run([PODGATECTL, "-s", "/nonexistent", "apply", "-f", "-"],
                           input=b"name = \"\xff\"\n", capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"cannot read standard input: not UTF-8 text", r.stderr)
        self.assertNotIn(b"Traceback", r.stderr)


class SaveCopyTest(unittest.TestCase):
    """config save PATH writes the copy itself: a copy it cannot write is a
    local failure (exit 2, as an unreadable input file), not an error of
    podgate's (exit 1), whose reply was fine."""

    def test_a_copy_that_cannot_be_written_exits_2(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.sock")
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(path)
            srv.listen(1)
            reply = {"ok": True, "version": 1, "toml": "x = \"caf\u00e9\"\n",
                     "source": "/etc/podgate/podgate.toml", "generation": 1, "unsaved_changes": 0}

            def serve():
                conn, _ = srv.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(json.dumps(reply).encode() + b"\n")

            t = threading.Thread(target=serve)
            t.start()
            err = io.StringIO()
            target = os.path.join(tmp, "missing", "copy.toml")
            try:
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    code = ctl.main(["-s", path, "config", "save", target])
            finally:
                t.join(timeout=10)
                srv.close()
            self.assertEqual(code, 2, err.getvalue())
            self.assertIn(f"cannot write {target}", err.getvalue())


class NotPodgateTest(unittest.TestCase):
    """-s pointed at another program's socket: whatever it answers ends
    podgatectl with a message and exit 2, never a traceback."""

    def asked(self, answer):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.sock")
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(path)
            srv.listen(1)

            def serve():
                conn, _ = srv.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(answer)

            t = threading.Thread(target=serve)
            t.start()
            out, err = io.StringIO(), io.StringIO()
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = ctl.main(["-s", path, "status"])
            finally:
                t.join(timeout=10)
                srv.close()
            return code, out.getvalue(), err.getvalue()

    def test_an_answer_that_is_not_a_podgate_reply_exits_2_with_a_message(self):
        for answer in (b"SSH-2.0-OpenSSH_9.6\n", b'{"ok": tru\n', b"\xff\xfe{}\n",
                       b'"ok"\n', b"[1, 2]\n"):
            code, out, err = self.asked(answer)
            self.assertEqual(code, 2, answer)
            self.assertEqual(out, "")
            self.assertIn("is not a podgate reply", err)
            self.assertIn("is it podgate's control socket?", err)


class WatchTest(unittest.TestCase):
    """`stats --watch N` outlives podgate's `[control] idle_timeout`: podgate
    closes a connection that was silent that long, and the next refresh
    comes over a new one.  A fake podgate that closes each connection right
    after its reply stands in for an idle timeout shorter than N."""

    def watched(self, refreshes, serve_connections):
        """Runs `podgatectl -o json stats --watch` against a fake socket that
        answers `serve_connections` connections, one reply each; the watch
        is stopped (as by Ctrl-C) at its `refreshes`-th sleep."""
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.sock")
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(path)
            srv.listen(4)
            closed = threading.Event()
            asked = []

            def serve():
                for i in range(serve_connections):
                    conn, _ = srv.accept()
                    with conn:
                        line = b""
                        while not line.endswith(b"\n"):
                            chunk = conn.recv(65536)
                            if not chunk:
                                break
                            line += chunk
                        asked.append(json.loads(line))
                        conn.sendall((json.dumps(stats_reply()) + "\n").encode())
                    if i + 1 < serve_connections:
                        closed.set()  # closed, as podgate's idle timeout does
                # After the last connection, the next sleep ends only once
                # podgate is gone: a reconnect before srv.close() was taken
                # into the backlog and then reset, a different error.
                srv.close()
                os.unlink(path)  # podgate gone
                closed.set()

            sleeps = []

            def sleep(seconds):
                sleeps.append(seconds)
                self.assertTrue(closed.wait(timeout=10), "the fake podgate closed the connection")
                closed.clear()
                if len(sleeps) == refreshes:
                    raise KeyboardInterrupt

            t = threading.Thread(target=serve, daemon=True)
            t.start()
            out, err = io.StringIO(), io.StringIO()
            real_sleep = ctl.time.sleep
            ctl.time.sleep = sleep
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = ctl.main(["-s", path, "-o", "json", "stats", "--watch", "400"])
            finally:
                ctl.time.sleep = real_sleep
                t.join(timeout=10)
            docs = [json.loads(d) for d in out.getvalue().replace("}\n{", "}\x00{").split("\x00")
                    if d.strip()]
            return code, docs, asked, sleeps, err.getvalue()

    def test_a_connection_closed_while_sleeping_is_replaced(self):
        code, docs, asked, sleeps, err = self.watched(refreshes=3, serve_connections=3)
        self.assertEqual(code, 0, err)
        self.assertEqual(err, "")
        self.assertEqual(len(docs), 3, "a refresh per interval, each over a new connection")
        self.assertTrue(all(d == stats_reply() for d in docs))
        self.assertEqual([r["command"] for r in asked], ["stats"] * 3)
        self.assertEqual(sleeps, [400.0] * 3)

    def test_an_interval_that_is_not_a_finite_positive_number_is_a_usage_error(self):
        # float() reads "nan" and "inf"; time.sleep then raised a traceback.
        for interval in ("nan", "inf", "-inf", "0", "-1", "soon"):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as stopped:
                ctl.main(["-s", "/nonexistent", "stats", f"--watch={interval}"])
            self.assertEqual(stopped.exception.code, 2, interval)
            self.assertIn("is not a positive number of seconds", err.getvalue())
        self.assertEqual(ctl.positive_float("0.5"), 0.5)

    def test_a_podgate_that_is_gone_still_ends_the_watch_with_a_clear_error(self):
        code, docs, _, _, err = self.watched(refreshes=5, serve_connections=1)
        self.assertEqual(code, 2)
        self.assertEqual(len(docs), 1)
        self.assertIn("cannot reach podgate", err)


class FlowsAllTest(unittest.TestCase):
    """`flows --all` follows the server's cursors to the end, a page per
    request, the filters sent with every page."""

    class FakeConnection:
        def __init__(self, pages):
            self.pages, self.asked = pages, []

        def ask(self, req):
            self.asked.append(req)
            return self.pages[len(self.asked) - 1]

    @staticmethod
    def flow(port, worker=0):
        return {"service": "default/web", "protocol": "TCP", "client": f"192.0.2.2:{port}",
                "vip": "10.96.0.30:80", "endpoint": "172.17.0.20:8080", "state": "established",
                "expires_in_ms": 5000, "worker": worker}

    def listed(self, pages, output="table"):
        conn = self.FakeConnection(pages)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = ctl.list_all_flows(conn, {"command": "flows", "service": "default/web",
                                             "limit": 2}, output)
        return code, conn.asked, out.getvalue(), err.getvalue()

    def test_follows_next_until_the_last_page(self):
        pages = [{"ok": True, "flows": [self.flow(1), self.flow(2)], "shown": 2, "next": "1:a"},
                 {"ok": True, "flows": [self.flow(3, 1)], "shown": 1, "next": "1:-"},
                 {"ok": True, "flows": [], "shown": 0}]
        code, asked, out, _ = self.listed(pages)
        self.assertEqual(code, 0)
        self.assertEqual([r["after"] for r in asked], ["", "1:a", "1:-"])
        self.assertTrue(all(r["service"] == "default/web" and r["limit"] == 2 for r in asked))
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("SERVICE"))
        self.assertEqual(sum(l.startswith("SERVICE") for l in lines), 1, "one header")
        self.assertEqual([l.split()[2] for l in lines[1:4]],
                         ["192.0.2.2:1", "192.0.2.2:2", "192.0.2.2:3"])
        self.assertEqual(lines[-1], "3 matching flow(s), listed in 3 page(s)")

    def test_json_prints_each_page_as_it_came(self):
        pages = [{"ok": True, "flows": [self.flow(1)], "shown": 1, "next": "1:a"},
                 {"ok": True, "flows": [], "shown": 0}]
        code, _, out, _ = self.listed(pages, "json")
        self.assertEqual(code, 0)
        docs = [json.loads(d) for d in out.replace("}\n{", "}\x00{").split("\x00")]
        self.assertEqual(docs, pages)

    def test_an_error_page_stops_the_listing(self):
        pages = [{"ok": True, "flows": [self.flow(1)], "shown": 1, "next": "1:a"},
                 {"ok": False, "error": {"code": "bad_request", "message": "\"after\": no"}}]
        code, asked, _, err = self.listed(pages)
        self.assertEqual(code, 1)
        self.assertEqual(len(asked), 2)
        self.assertIn("bad_request", err)


class StartUpTest(unittest.TestCase):
    def test_runs_the_system_interpreter_without_site(self):
        # Issue 15: 0.6 s per call, from `env python3` resolving through a
        # version manager's shim and from site's .pth processing.
        with open(PODGATECTL) as f:
            self.assertEqual(f.readline().rstrip("\n"), "#!/usr/bin/python3 -IS")
        r = subprocess.run([PODGATECTL, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("usage: podgatectl", r.stdout)

    def test_imports_only_what_every_command_needs(self):
        r = subprocess.run(["/usr/bin/python3", "-IS", "-X", "importtime", PODGATECTL, "--help"],
                           capture_output=True, text=True, timeout=30)
        imported = {l.split("|")[2].strip() for l in r.stderr.splitlines()
                    if l.startswith("import time:") and "|" in l}
        self.assertFalse(imported & {"site", "ssl", "asyncio", "email", "http", "urllib"},
                         sorted(imported))


if __name__ == "__main__":
    unittest.main()
