"""Run the whole site through the sandbox inventory, and count what it left in the sandbox's store."""

import json
import os
import re
import subprocess

from tests.unit.idempotence import recap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIGURES = os.path.join(REPO, "docs", "reliability-figures.json")


def site_command(sandbox, name, tmp_path, *extra_args, **extra_vars):
    """argv and env for `ansible-playbook site.yml` against this sandbox, for the platform called `name`."""
    ep = sandbox.endpoints()
    extra = {"skyforge_name": name, "prefect_server_hostname": "%s.%s" % (name, ep["cloudflare_zone"]),
             "gke_autopilot_kubeconfig_path": str(tmp_path / ("kubeconfig-%s.json" % name))}
    extra.update(extra_vars)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", SKYFORGE_POLL_FIRST="0.05",
               SKYFORGE_POLL_MAX="0.5", SKYFORGE_SANDBOX_DIR=sandbox.config.state_dir, PYTHONUNBUFFERED="1")
    argv = ["ansible-playbook", os.path.join(REPO, "site.yml"), "-i", os.path.join(REPO, "inventories", "sandbox"),
            "-e", json.dumps(extra)] + list(extra_args)
    return argv, env


def try_site(sandbox, name, tmp_path, timeout=1200):
    """Run the site; return (returncode, recap or None, output)."""
    argv, env = site_command(sandbox, name, tmp_path)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout, check=False)
    return proc.returncode, recap(proc.stdout), proc.stdout + proc.stderr


def run_site(sandbox, name, tmp_path, timeout=1200):
    """Run the site to the end; return (changed, output). Fails the test when the run fails."""
    returncode, rc, output = try_site(sandbox, name, tmp_path, timeout)
    assert returncode == 0 and rc, "site run for %s failed:\n%s" % (name, output[-5000:])
    assert "ended Completed" in output, "the site should have ended with a completed smoke flow run"
    return rc[1], output


def owned(sandbox, name):
    """{table: sorted keys} of every stored row whose key or body names this platform (`name-...` or `name.`)."""
    marker = re.compile(r"(?<![A-Za-z0-9-])%s(?=[-.]|$|[^A-Za-z0-9-])" % re.escape(name))
    out = {}
    with sandbox.store.lock:
        for table, rows in sandbox.store.tables.items():
            keys = []
            for key, row in rows.items():
                try:
                    body = json.dumps(row, default=str, sort_keys=True)
                except (TypeError, ValueError):
                    body = repr(row)
                if marker.search(key) or marker.search(body):
                    keys.append(key)
            if keys:
                out[table] = sorted(keys)
    return out


# Each smoke flow run is a Cloud Run job (with its execution and task) that the real cloud-run-v2 worker creates and
# deletes once it sees the run finished, seconds after the playbook has moved on: the worker's, not the playbook's.
FLOW_RUN_TABLES = ("run.jobs", "run.executions", "run.tasks")


def counts(inventory):
    """How many of each kind the playbook owns (a flow run's Cloud Run job, made and removed by the worker, not)."""
    return {table: len(keys) for table, keys in sorted(inventory.items()) if table not in FLOW_RUN_TABLES}


def record_figures(section, figures):
    """Merge this test's figures into docs/reliability-figures.json, which docs/reliability.md cites.

    Only with SKYFORGE_RECORD_FIGURES=1, so an ordinary test run leaves the work tree clean.
    """
    if os.environ.get("SKYFORGE_RECORD_FIGURES") != "1":
        return
    data = {}
    if os.path.exists(FIGURES):
        with open(FIGURES) as fh:
            data = json.load(fh)
    data[section] = figures
    with open(FIGURES, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
