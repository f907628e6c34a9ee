"""The site, interrupted mid-operation by Ctrl-C (SIGINT) or a crash (SIGKILL of the whole process group, modules
included), re-runs to the same end state as a clean run: same resources, no duplicates, no orphans; the run after
that changes nothing.
"""

import os
import re
import resource
import signal
import subprocess
import threading
import time

import pytest

from tests.unit.idempotence import changed_tasks

from .site_runner import FLOW_RUN_TABLES, REPO, counts, owned, record_figures, run_site, site_command

# (platform name, signal, task line to wait for, seconds to let the task run before the signal)
POINTS = [
    # The instance is nearly ready by then at the test time scale: signal at once, while the wait module starts.
    ("intr-sql", signal.SIGINT, "TASK [skyforge.prefect_platform.cloudsql : Wait for the instance started earlier]", 0.0),
    # The components' runs are queued by then: the crash lands while the graph module follows them.
    ("intr-tfc", signal.SIGKILL, "TASK [skyforge.prefect_platform.tfc_workspace_runs : Apply the components in "
     "dependency order", 0.3),
    ("intr-helm", signal.SIGKILL, "TASK [skyforge.prefect_platform.prefect_server : The prefect-server release, when it is missing or differs]", 1.0),
]
CLEAN = "intr-clean"
RESULTS = {}
CPU = {}


def cpu_seconds():
    """CPU of this process (the in-process sandbox) and of the waited-for children (ansible-playbook, modules)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def normalised(inventory, name):
    """Keys with the platform's name replaced, so two platforms' resources compare; other keys only count. A smoke
    run's Cloud Run job is the worker's, there or already deleted depending on when the run ended (counts())."""
    return {table: sorted(k.replace(name, "NAME") for k in keys if name in k) for table, keys in inventory.items()
            if table not in FLOW_RUN_TABLES}


@pytest.fixture(scope="module")
def clean(sandbox, tmp_path_factory):
    CPU.setdefault("start", cpu_seconds())
    CPU.setdefault("wall", time.monotonic())
    run_site(sandbox, CLEAN, tmp_path_factory.mktemp("clean"))
    return owned(sandbox, CLEAN)


def _signal_if_running(proc, sig):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except OSError:
            pass


def interrupt(sandbox, name, tmp_path, sig, marker, delay, timeout=900):
    """Start the site, send `sig` `delay` seconds after `marker` appears in its output; return the output."""
    argv, env = site_command(sandbox, name, tmp_path)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
                            start_new_session=True)
    lines, hit = [], threading.Event()
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if not hit.is_set() and (marker.search(line) if hasattr(marker, "search") else marker in line):
                hit.set()
                time.sleep(delay)
                # Ctrl-C reaches the whole foreground group; a crash takes the modules down with ansible-playbook.
                os.killpg(proc.pid, sig)
                if sig == signal.SIGINT:
                    # An operator whose first Ctrl-C lands between two tasks presses it again.
                    for again in (1.0, 3.0):
                        threading.Timer(again, _signal_if_running, (proc, sig)).start()
        proc.wait()
    finally:
        timer.cancel()
    output = "".join(lines)
    assert hit.is_set(), "the run never reached %r:\n%s" % (marker, output[-3000:])
    assert proc.returncode != 0, "the interrupted run should not have succeeded:\n" + output[-3000:]
    return output


def landed(output):
    """The last task the interrupted run had started."""
    tasks = re.findall(r"^TASK \[(.*?)\]", output, re.M)
    return tasks[-1] if tasks else "?"


@pytest.mark.parametrize("name,sig,marker,delay", POINTS, ids=[p[0] for p in POINTS])
def test_rerun_after_interruption_matches_a_clean_run(sandbox, tmp_path, clean, name, sig, marker, delay):
    interrupted = interrupt(sandbox, name, tmp_path, sig, marker, delay)
    assert "PLAY RECAP" not in interrupted or sig == signal.SIGINT
    changed, _output = run_site(sandbox, name, tmp_path)
    assert changed > 0, "the re-run should have finished the interrupted work"
    again, again_out = run_site(sandbox, name, tmp_path)
    assert again == 0, "the run after the recovery must change nothing; changed:\n%s\n\n%s" % (
        changed_tasks(again_out), again_out[-3000:])
    mine = owned(sandbox, name)
    assert counts(mine) == dict(counts(clean)), \
        "resources differ from a clean run (duplicates or orphans):\n clean: %r\n %s: %r" % (
            counts(clean), name, counts(mine))
    assert normalised(mine, name) == normalised(clean, CLEAN), "resource names differ from a clean run"
    tokens = mine.get("tfc.agent_tokens", [])
    assert len(tokens) == 1, "exactly one agent token, no orphan from the interrupted run: %r" % tokens
    RESULTS[name] = {"signal": signal.Signals(sig).name, "landed_in": landed(interrupted),
                     "recovered": True, "resources": sum(counts(mine).values())}


def test_record_interruption_figures():
    if not RESULTS:
        pytest.skip("no interruption case ran in this session")
    figures = {"date": time.strftime("%Y-%m-%d"), "interrupted": len(POINTS), "recovered": len(RESULTS),
               "cases": RESULTS}
    if "start" in CPU:
        figures["cpu_seconds"] = round(cpu_seconds() - CPU["start"])
        figures["wall_seconds"] = round(time.monotonic() - CPU["wall"])
    record_figures("interruptions", figures)
