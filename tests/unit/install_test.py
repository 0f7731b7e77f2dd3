#!/usr/bin/env python3
"""`meson install` installs what an appliance needs (issue 15): the
daemon, podgatectl, the default config, the systemd unit with this build's
paths, the control socket's group (sysusers.d), the docs the unit names
and the man pages podgate(8), podgatectl(8), podgate.toml(5) and podgate-gen(1).  Installs into a scratch DESTDIR; nothing outside it is touched.

Run: python3 tests/unit/install_test.py BUILD_DIR [-v]
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD = os.path.abspath(sys.argv.pop(1)) if len(sys.argv) > 1 else "build"


def introspect(what):
    import json
    out = subprocess.run(["meson", "introspect", BUILD, what], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.destdir = tempfile.mkdtemp(prefix="podgate-install-")
        r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet",
                            "--destdir", cls.destdir], capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("meson install failed:\n" + r.stdout + r.stderr)
        opts = {o["name"]: o["value"] for o in introspect("--buildoptions")}
        cls.prefix = opts["prefix"]
        cls.bindir = os.path.join(cls.prefix, opts["bindir"])
        cls.sysconfdir = os.path.join(cls.prefix, opts["sysconfdir"])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.destdir, ignore_errors=True)

    def installed(self, path):
        full = self.destdir + path
        self.assertTrue(os.path.exists(full), f"{path} is not installed")
        return full

    def test_binaries_config_unit_group_and_docs(self):
        for name in ("podgate", "podgatectl"):
            self.assertTrue(os.access(self.installed(f"{self.bindir}/{name}"), os.X_OK))
        self.installed(f"{self.sysconfdir}/podgate/podgate.toml")
        sysusers = self.installed(f"{self.prefix}/lib/sysusers.d/podgate.conf")
        with open(sysusers) as f:
            self.assertRegex(f.read(), r"(?m)^g podgate -$")
        with open(self.installed(f"{self.prefix}/lib/systemd/system/podgate.service")) as f:
            unit = f.read()
        self.assertNotIn("@", re.sub(r"(?m)^#.*$", "", unit), "every @VAR@ substituted")
        for line in ("Type=notify", "NotifyAccess=main", f"ExecReload={self.bindir}/podgatectl reload", "RestartPreventExitStatus=2",
                     f"ExecStart={self.bindir}/podgate -c {self.sysconfdir}/podgate/podgate.toml",
                     f"ReadWritePaths={self.sysconfdir}/podgate", "NoNewPrivileges=yes"):
            self.assertIn(line + "\n", unit)
        self.assertRegex(unit, r"(?m)^WatchdogSec=\d+$")
        for doc in re.findall(r"file://(\S+)", unit):
            self.installed(doc)

    def test_the_installed_config_passes_check(self):
        r = subprocess.run([self.installed(f"{self.bindir}/podgate"), "--check", "-c",
                            self.installed(f"{self.sysconfdir}/podgate/podgate.toml")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    MAN_PAGES = ("man8/podgate.8", "man8/podgatectl.8", "man5/podgate.toml.5", "man1/podgate-gen.1")

    def man_page(self, page):
        opts = {o["name"]: o["value"] for o in introspect("--buildoptions")}
        return self.installed(f"{self.prefix}/{opts['mandir']}/{page}")

    def test_man_pages_name_this_build_and_cover_what_help_lists(self):
        for page in self.MAN_PAGES:
            with open(self.man_page(page)) as f:
                text = f.read()
            self.assertNotRegex(text, r"@[A-Z]+@", f"{page}: every @VAR@ substituted")
            if "podgatectl" not in page and "podgate-gen" not in page:
                self.assertIn(f"{self.sysconfdir}/podgate/podgate.toml", text)
        with open(self.man_page("man8/podgate.8")) as f:
            podgate = f.read().replace("\\-", "-")
        help_text = subprocess.run([self.installed(f"{self.bindir}/podgate"), "--help"],
                                   capture_output=True, text=True, timeout=30).stdout
        options = set(re.findall(r"--[a-z-]+", help_text))
        self.assertTrue({"--config", "--check", "--version", "--help"} <= options, help_text)
        for option in sorted(options) + ["SIGHUP", "SIGUSR1", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                                         "EXIT STATUS"]:
            self.assertIn(option, podgate)
        with open(self.man_page("man8/podgatectl.8")) as f:
            podgatectl = f.read().replace("\\-", "-")
        help_text = subprocess.run([self.installed(f"{self.bindir}/podgatectl"), "--help"],
                                   capture_output=True, text=True, timeout=30).stdout
        commands = re.findall(r"(?m)^    ([a-z]+) ", help_text)
        self.assertGreater(len(commands), 10)
        for option in ("--socket", "--output", "PODGATE_SOCKET", "EXIT STATUS"):
            self.assertIn(option, podgatectl)
        for command in commands:
            self.assertRegex(podgatectl, rf"(?m)^\.(B|BR|BI) \"?{command}\b", command)
        with open(self.man_page("man1/podgate-gen.1")) as f:
            gen = f.read().replace("\\-", "-")
        help_text = subprocess.run([self.installed(f"{self.bindir}/podgate-gen"), "--help"],
                                   capture_output=True, text=True, timeout=30).stdout
        options = set(re.findall(r"--[a-z0-9-]+", help_text))
        self.assertIn("--ipv6", options)
        for option in sorted(options) + ["EXIT STATUS"]:
            self.assertIn(option, gen)

    @unittest.skipUnless(shutil.which("man"), "needs man (apt package man-db)")
    def test_man_pages_render_without_warnings(self):
        for page in self.MAN_PAGES:
            r = subprocess.run(["man", "--warnings", "-l", self.man_page(page)],
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "", f"{page}: groff warnings")
            self.assertIn("NAME", r.stdout)
            self.assertIn("SEE ALSO", r.stdout)

    @unittest.skipUnless(shutil.which("systemd-analyze"), "needs systemd-analyze")
    def test_systemd_analyze_verifies_the_unit(self):
        # The unit names the installed binary; verify checks that it exists,
        # so the copy verified here names the one in DESTDIR.
        with open(self.installed(f"{self.prefix}/lib/systemd/system/podgate.service")) as f:
            unit = f.read().replace(f"{self.bindir}/", f"{self.destdir}{self.bindir}/")
        unit_dir = tempfile.mkdtemp(prefix="podgate-unit-")
        try:
            path = os.path.join(unit_dir, "podgate.service")
            with open(path, "w") as f:
                f.write(unit)
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                               text=True, timeout=60)
        finally:
            shutil.rmtree(unit_dir, ignore_errors=True)
        # Only complaints about this unit count (unknown directives, bad
        # values, missing commands); the host's own units are not ours.
        own = [l for l in (r.stdout + r.stderr).splitlines() if "podgate.service" in l]
        self.assertEqual(own, [], r.stdout + r.stderr)

if __name__ == "__main__":
    unittest.main()
