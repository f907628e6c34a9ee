"""teardown.yml is idempotent: run against a platform that is already gone (as a second teardown finds it), it makes
no write to any control plane; it never creates a resource in order to delete it."""

import json
import os
import subprocess

from ..sandbox.gcp_helpers import enable
from .site_runner import REPO, site_command

WRITES = ("POST", "PUT", "PATCH", "DELETE")
# POSTs that read or authenticate, not writes.
READ_SUFFIXES = (":getIamPolicy", ":testIamPermissions", "/token")


def teardown(sandbox, name, tmp_path):
    argv, env = site_command(sandbox, name, tmp_path)
    argv[1] = os.path.join(REPO, "teardown.yml")
    argv += ["-e", json.dumps({"skyforge_teardown_confirm": sandbox.config.project})]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def writes(sandbox, start):
    return ["%s %s %s -> %s" % (e["family"], e["method"], e["path"], e["status"]) for e in sandbox.log.by_deployer(start)
            if e["method"] in WRITES and not e["path"].split("?")[0].endswith(READ_SUFFIXES)]


def test_teardown_of_a_platform_already_gone_makes_no_write(sandbox, tmp_path):
    # A teardown leaves the project's APIs on, so a second one finds them enabled.
    enable(sandbox, "compute.googleapis.com", "servicenetworking.googleapis.com", "container.googleapis.com",
           "sqladmin.googleapis.com", "secretmanager.googleapis.com", "iam.googleapis.com", "run.googleapis.com")
    start = sandbox.log.mark()
    rc, output = teardown(sandbox, "gone", tmp_path)
    assert rc == 0, "a teardown with nothing left to remove must succeed:\n" + output[-4000:]
    made = writes(sandbox, start)
    assert not made, "a teardown with nothing to remove made writes:\n" + "\n".join(made)
    assert not [k for k in sandbox.store.table("sqladmin.instances") if "gone" in k], "no Cloud SQL instance created"
