#!/usr/bin/env python3
"""The systemd units in deploy/systemd: `systemd-analyze verify` on copies whose ExecStart points at the
built binary (verify insists that the executable exists), then the values that matter read back from the
files and asserted: notify readiness, the watchdog, restarts, a stop timeout above the 1 s goodbye flush,
CAP_NET_ADMIN and nothing else, the TUN device, the token as a credential, the client's boot behaviour.
A copy with a deliberate error is verified too, to show that an error in a unit does fail this test.

    systemd_units_test.py /path/to/firebreak

Exit status: 0 passed, 1 failed, 77 skipped (no systemd-analyze).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.realpath(__file__))
UNIT_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "deploy", "systemd"))
ROLES = ("client", "gateway")
INSTALLED_BINARY = "/usr/bin/firebreak"
SKIP = 77

results = []  # (passed, what)


def check(ok, what):
    results.append((bool(ok), what))
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    return bool(ok)


# ---- reading unit files ----------------------------------------------------------------------------


def parse_unit(text):
    """{section: {key: [values]}}: comments and blank lines skipped, backslash continuations joined, an
    empty assignment resetting the list as systemd does for list settings."""
    units = {}
    section = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = units.setdefault(line[1:-1], {})
            continue
        if section is None or "=" not in line:
            raise ValueError("not a unit file line: " + line)
        key, value = (part.strip() for part in line.split("=", 1))
        if value == "":
            section[key] = []
        else:
            section.setdefault(key, []).append(value)
    return units


def last(unit, section, key):
    values = unit.get(section, {}).get(key, [])
    return values[-1] if values else None


def words(unit, section, key):
    return " ".join(unit.get(section, {}).get(key, [])).split()


_UNITS = {"us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "s": 1, "sec": 1, "second": 1, "seconds": 1,
          "m": 60, "min": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600,
          "hours": 3600, "d": 86400, "day": 86400, "days": 86400}


def timespan(text):
    """A systemd time span in seconds ("5s", "1min 30s", "90"); float('inf') for "infinity"."""
    if text is None:
        return None
    if text.strip() == "infinity":
        return float("inf")
    if re.fullmatch(r"\d+(\.\d+)?", text.strip()):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    if not parts or re.sub(r"\s+", "", "".join(n + u for n, u in parts)) != re.sub(r"\s+", "", text):
        raise ValueError("not a time span: " + text)
    return sum(float(n) * _UNITS[u] for n, u in parts)


# ---- systemd-analyze verify ------------------------------------------------------------------------


def copy_units(binary, into, edit=None):
    """The units copied into `into` with ExecStart's binary replaced; returns their paths."""
    exec_path = '"' + binary + '"' if re.search(r"\s", binary) else binary
    paths = []
    for role in ROLES:
        name = "firebreak-%s.service" % role
        with open(os.path.join(UNIT_DIR, name)) as f:
            text = f.read()
        text = re.sub(r"^(ExecStart=[-@:+!]*)" + re.escape(INSTALLED_BINARY) + r"(?=\s|$)",
                      lambda m: m.group(1) + exec_path, text, flags=re.M)
        if edit:
            text = edit(text)
        path = os.path.join(into, name)
        with open(path, "w") as f:
            f.write(text)
        paths.append(path)
    return paths


def verify(paths):
    """systemd-analyze verify's exit code and the lines of its output that name one of our units (it may
    also talk about the host's other units, which are not ours to judge)."""
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + paths,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    names = [os.path.basename(p) for p in paths]
    ours = [line for line in r.stdout.splitlines() if any(n in line for n in names)]
    return r.returncode, ours, r.stdout


# ---- the values --------------------------------------------------------------------------------------


def check_unit(role, unit):
    s = "Service"
    name = "firebreak-%s.service" % role
    check(last(unit, s, "Type") == "notify", name + ": Type=notify (READY=1 once joined)")
    check(last(unit, s, "NotifyAccess") == "main", name + ": NotifyAccess=main")
    exec_start = words(unit, s, "ExecStart")
    check(exec_start == [INSTALLED_BINARY, role], name + ": ExecStart=%s %s" % (INSTALLED_BINARY, role))
    check(last(unit, s, "EnvironmentFile") == "-/etc/firebreak/%s.env" % role,
          name + ": EnvironmentFile=-/etc/firebreak/%s.env" % role)
    check(last(unit, s, "Restart") == "on-failure", name + ": Restart=on-failure")
    check(timespan(last(unit, s, "RestartSec") or "0") >= 1, name + ": RestartSec of a second or more")
    check("2" in words(unit, s, "RestartPreventExitStatus"),
          name + ": no restart after exit 2 (a configuration error)")

    watchdog = timespan(last(unit, s, "WatchdogSec"))
    check(watchdog is not None and 0 < watchdog < float("inf"), name + ": WatchdogSec set")
    stop = timespan(last(unit, s, "TimeoutStopSec"))
    check(stop is not None and 1 < stop <= 30,
          name + ": TimeoutStopSec above the 1 s goodbye flush and short (%s)" % last(unit, s, "TimeoutStopSec"))
    start = timespan(last(unit, s, "TimeoutStartSec"))
    if role == "client":
        # Offline at boot: READY=1 may take hours, and the boot must not wait for it.
        check(start == float("inf"), name + ": TimeoutStartSec=infinity (a laptop may boot offline)")
        check(last(unit, "Unit", "DefaultDependencies") == "no",
              name + ": DefaultDependencies=no (multi-user.target does not wait for the portal)")
        check("shutdown.target" in words(unit, "Unit", "Conflicts") and
              "shutdown.target" in words(unit, "Unit", "Before"),
              name + ": still stopped (with its goodbye) at shutdown")
    else:
        check(start is not None and 0 < start < float("inf"), name + ": a finite TimeoutStartSec")

    check(words(unit, s, "AmbientCapabilities") == ["CAP_NET_ADMIN"], name + ": AmbientCapabilities=CAP_NET_ADMIN exactly")
    check(words(unit, s, "CapabilityBoundingSet") == ["CAP_NET_ADMIN"],
          name + ": CapabilityBoundingSet=CAP_NET_ADMIN exactly")
    user = last(unit, s, "User")
    check(user not in (None, "root", "0"), name + ": a non-root User= (%s)" % user)
    check(last(unit, s, "NoNewPrivileges") == "yes", name + ": NoNewPrivileges=yes")
    check(last(unit, s, "ProtectSystem") == "strict", name + ": ProtectSystem=strict")
    for key, what in (("StateDirectory", "the key"), ("RuntimeDirectory", "the status socket"),
                      ("LogsDirectory", "the trace")):
        check("firebreak" in words(unit, s, key), name + ": %s=firebreak (%s)" % (key, what))

    # The TUN device, netlink and nftables must keep working under the hardening.
    check(any(v.split() == ["/dev/net/tun", "rw"] for v in unit.get(s, {}).get("DeviceAllow", [])),
          name + ": DeviceAllow=/dev/net/tun rw")
    check(last(unit, s, "PrivateDevices") in (None, "no"), name + ": no PrivateDevices (it hides /dev/net/tun)")
    families = words(unit, s, "RestrictAddressFamilies")
    check(all(f in families for f in ("AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK")) and
          not any(f.startswith("~") for f in families), name + ": AF_UNIX AF_INET AF_INET6 AF_NETLINK allowed")
    for key in ("PrivateNetwork", "PrivateUsers"):
        check(last(unit, s, key) in (None, "no"), name + ": no %s (the TUN device and routes are the host's)" % key)
    if role == "gateway":
        check(last(unit, s, "ProtectKernelTunables") in (None, "no"),
              name + ": no ProtectKernelTunables (the gateway turns on IP forwarding)")

    # The token as a credential, never in the unit.
    check(any(v.startswith("token:/etc/firebreak/%s.token" % role) for v in unit.get(s, {}).get("LoadCredential", [])),
          name + ": the token file loaded as a credential")
    check("FIREBREAK_TOKEN_FILE=%d/token" in unit.get(s, {}).get("Environment", []),
          name + ": FIREBREAK_TOKEN_FILE points at the credential")
    check(not any(re.match(r"FIREBREAK_TOKEN=", v) for v in unit.get(s, {}).get("Environment", [])),
          name + ": no FIREBREAK_TOKEN in the unit")

    check("network-online.target" in words(unit, "Unit", "After") and
          "network-online.target" in words(unit, "Unit", "Wants"), name + ": After= and Wants=network-online.target")
    check(last(unit, "Install", "WantedBy") == "multi-user.target", name + ": WantedBy=multi-user.target")


def check_env_example(role):
    name = "%s.env.example" % role
    with open(os.path.join(UNIT_DIR, name)) as f:
        lines = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    pairs = [l.split("=", 1) for l in lines]
    check(all(len(p) == 2 and re.fullmatch(r"FIREBREAK_[A-Z_]+", p[0]) for p in pairs),
          name + ": only FIREBREAK_*=value lines")
    keys = [p[0] for p in pairs]
    check("FIREBREAK_PORTAL_URL" in keys, name + ": sets FIREBREAK_PORTAL_URL")
    check("FIREBREAK_TOKEN" not in keys, name + ": no token in the example")


def main():
    if len(sys.argv) != 2:
        print("usage: systemd_units_test.py /path/to/firebreak", file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    if shutil.which("systemd-analyze") is None:
        print("skipped: systemd-analyze is needed (Debian: apt-get install systemd)")
        return SKIP
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print("not ok - the firebreak binary %s is not an executable file" % binary)
        return 1

    with tempfile.TemporaryDirectory(prefix="firebreak-units-") as tmp:
        good = os.path.join(tmp, "good")
        os.mkdir(good)
        code, ours, output = verify(copy_units(binary, good))
        check(code == 0 and not ours, "systemd-analyze verify: both units clean")
        if code != 0 or ours:
            print(output)

        # The same with a misspelt setting and an unknown key: verify must complain, or the check above
        # proves nothing.
        bad = os.path.join(tmp, "bad")
        os.mkdir(bad)
        code, ours, output = verify(copy_units(binary, bad, lambda t: t.replace(
            "Type=notify", "Type=notfy\nRestartSecs=5s", 1)))
        check(any("notfy" in l for l in ours) and any("RestartSecs" in l for l in ours),
              "systemd-analyze verify: a unit with errors is caught (self-check)")
        if not ours:
            print(output)

    for role in ROLES:
        with open(os.path.join(UNIT_DIR, "firebreak-%s.service" % role)) as f:
            check_unit(role, parse_unit(f.read()))
        check_env_example(role)
    with open(os.path.join(UNIT_DIR, "firebreak.sysusers.conf")) as f:
        check(any(l.split()[:2] == ["u", "firebreak"] for l in f if l.strip() and not l.startswith("#")),
              "firebreak.sysusers.conf: creates the firebreak user")

    passed = sum(1 for ok, _ in results if ok)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
