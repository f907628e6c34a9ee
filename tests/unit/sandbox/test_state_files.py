"""The sandbox's state dir: its log and every file holding a credential are the owner's only, and no log holds a
token (the serve line used to print the Cloudflare and HCP Terraform tokens into sandbox.log, mode 0644)."""

import json
import os
import stat
import subprocess
import sys
import urllib.request

from tests.unit.conftest import REPO

from .test_cli import _free_base


def test_state_dir_files_with_tokens_are_private_and_logs_hold_none(tmp_path):
    state = tmp_path / "sb"
    env = dict(os.environ, SKYFORGE_SANDBOX_DIR=str(state), SKYFORGE_SANDBOX_PORT_BASE=str(_free_base()),
               SKYFORGE_SANDBOX_TIME_SCALE="0.002")

    def sandbox(*args):
        return subprocess.run([sys.executable, "-m", "sandbox"] + list(args), cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=120, check=False)

    up = sandbox("up", "--fresh")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        with open(state / "endpoints.json") as fh:
            endpoints = json.load(fh)
        tokens = [endpoints["cloudflare_api_token"], endpoints["tfc_token"]]
        # A request carrying a token as a query parameter must not put it in the request log either.
        try:
            urllib.request.urlopen(endpoints["gcp_url"] + "/_sandbox/health?access_token=%s" % tokens[0], timeout=5)
        except OSError:
            pass
    finally:
        down = sandbox("down")
    assert down.returncode == 0, down.stdout + down.stderr
    leaks, public = [], []
    for dirpath, _dirs, files in os.walk(state):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as fh:
                data = fh.read()
            holds = any(t.encode() in data for t in tokens)
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if name.endswith(".log") and holds:
                leaks.append(path)
            if (holds or name in ("sandbox.log", "requests.log")) and mode & 0o077:
                public.append("%s %o" % (path, mode))
    assert (state / "sandbox.log").exists()
    assert not leaks, "logs hold a token: %r" % leaks
    assert not public, "files with tokens (or the logs) readable by others: %r" % public
