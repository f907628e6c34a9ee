"""The environment the bench scripts run Ansible in: the one scripts/env.sh makes for the site and the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ansible_env(**extra):
    out = subprocess.run(
        ["bash", "-c", 'source scripts/env.sh >/dev/null && python -c "import json, os; print(json.dumps(dict(os.environ)))"'],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout
    env = json.loads(out.strip().splitlines()[-1])
    env.update({k: str(v) for k, v in extra.items()})
    return env


def in_venv():
    """Re-run this script with the repo's venv Python (bootstrap.sh makes it) when started with another one."""
    venv_python = os.path.join(ROOT, ".venv", "bin", "python")
    if os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(ROOT, ".venv")) and os.path.exists(venv_python):
        os.execv(venv_python, [venv_python] + sys.argv)
