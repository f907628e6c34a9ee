"""Every process the sandbox starts is recorded in its state dir, so `python -m sandbox down` can stop it.

Pods and PostgreSQL servers run in their own sessions (a pod must not die with a signal meant for the sandbox, and
pg_ctl detaches the postmaster), so killing the sandbox's process group does not reach them. Each one is written to
`<state dir>/pids/<pid>.json` with the kernel's start time of the process, and removed when it is stopped. `reap`
stops whatever is still recorded: it works after the sandbox itself was SIGKILLed, and the start time keeps it from
ever signalling an unrelated process that reused a pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time


def _start_time(pid):
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its closing one.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields and fields[0] == "Z":
        return None
    return fields[19] if len(fields) > 19 else None


def _dir(state_dir):
    path = os.path.join(state_dir, "pids")
    os.makedirs(path, exist_ok=True)
    return path


def record(state_dir, pid, what, stop_signal=signal.SIGTERM, group=True):
    """Remember `pid` (a session leader when group=True) as one the sandbox must stop."""
    entry = {"pid": pid, "what": what, "start": _start_time(pid), "signal": int(stop_signal), "group": group}
    path = os.path.join(_dir(state_dir), "%d.json" % pid)
    with open(path + ".tmp", "w") as fh:
        json.dump(entry, fh)
    os.replace(path + ".tmp", path)


def forget(state_dir, pid):
    try:
        os.unlink(os.path.join(state_dir, "pids", "%d.json" % pid))
    except OSError:
        pass


def spawn(state_dir, argv, what, **kw):
    """Popen in a new session, recorded until `stop` (or `reap`) ends it."""
    proc = subprocess.Popen(argv, start_new_session=True, **kw)
    record(state_dir, proc.pid, what)
    return proc


def _signal(entry, sig):
    try:
        if entry.get("group", True):
            os.killpg(entry["pid"], sig)
        else:
            os.kill(entry["pid"], sig)
    except OSError:
        pass


def stop(state_dir, proc, grace=10.0):
    """SIGTERM the process's group, SIGKILL after `grace` seconds; forget it."""
    entry = {"pid": proc.pid, "group": True}
    if proc.poll() is None:
        _signal(entry, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # Whatever the container left in its group (a child it forked) goes too, as when a pod's cgroup is torn down.
    _signal(entry, signal.SIGKILL)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    forget(state_dir, proc.pid)


def recorded(state_dir):
    out = []
    path = os.path.join(state_dir, "pids")
    for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(path, name)) as fh:
                out.append(json.load(fh))
        except (OSError, ValueError):
            continue
    return out


def reap(state_dir, grace=10.0):
    """Stop every recorded process that is still the one recorded; returns what was stopped."""
    live = []
    for entry in recorded(state_dir):
        if entry.get("start") is not None and _start_time(entry["pid"]) == entry["start"]:
            live.append(entry)
        else:
            forget(state_dir, entry["pid"])
    for entry in live:
        _signal(entry, entry.get("signal", signal.SIGTERM))
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_start_time(e["pid"]) == e["start"] for e in live):
        time.sleep(0.1)
    for entry in live:
        if _start_time(entry["pid"]) == entry["start"]:
            _signal(entry, signal.SIGKILL)
            # A non-group entry (the postmaster) has children in its own group.
            _signal(dict(entry, group=True), signal.SIGKILL)
        forget(state_dir, entry["pid"])
    return live
