"""The environment the bench scripts run Ansible in: the one scripts/env.sh makes for the site and the tests."""

from __future__ import annotations

import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ansible_env(**extra):
    out = subprocess.run(
        ["bash", "-c", 'source scripts/env.sh >/dev/null && python -c "import json, os; print(json.dumps(dict(os.environ)))"'],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout
    env = json.loads(out.strip().splitlines()[-1])
    env.update({k: str(v) for k, v in extra.items()})
    return env
