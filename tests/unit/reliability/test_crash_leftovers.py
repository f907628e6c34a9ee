"""A run killed with SIGKILL (no cleanup runs) leaves no module file holding its arguments in clear text."""

import base64
import io
import os
import re
import signal
import subprocess
import sys
import time
import zipfile

from tests.unit.conftest import REPO

CANARY = "canary-secret-6c1f0e"
PLAYBOOK = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: A module that runs a while, with a secret among its arguments
      ansible.builtin.wait_for:
        timeout: 60
        msg: "%s"
      no_log: true
"""


def _readable(data):
    """The bytes of a file as anyone could read them: an AnsiballZ wrapper's zipped payload unpacked too."""
    out = [data]
    for match in re.finditer(rb"ZIPDATA = [\"']+([A-Za-z0-9+/=\s]+)[\"']+", data):
        try:
            with zipfile.ZipFile(io.BytesIO(base64.b64decode(match.group(1)))) as zf:
                out.extend(zf.read(n) for n in zf.namelist())
        except (ValueError, zipfile.BadZipFile):
            pass
    return b"\n".join(out)


def test_sigkill_leaves_no_ansiballz_with_the_module_arguments(tmp_path):
    playbook = tmp_path / "slow.yml"
    playbook.write_text(PLAYBOOK % CANARY)
    remote, out = tmp_path / "remote", tmp_path / "out.txt"
    env = dict(os.environ, ANSIBLE_REMOTE_TMP=str(remote), ANSIBLE_NOCOLOR="1")
    # What the repo's own ansible.cfg decides, not an override from the caller's shell.
    for key in ("ANSIBLE_PIPELINING", "ANSIBLE_KEEP_REMOTE_FILES", "ANSIBLE_CONFIG"):
        env.pop(key, None)
    with open(out, "w") as fh:
        proc = subprocess.Popen(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e",
                                 "ansible_python_interpreter=%s" % sys.executable, str(playbook)], cwd=REPO,
                                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "TASK [A module" not in out.read_text():
            time.sleep(0.2)
        assert "TASK [A module" in out.read_text(), "the task never started:\n" + out.read_text()
        time.sleep(3.0)
        assert proc.poll() is None, "the module should still be waiting:\n" + out.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    leaks = []
    for dirpath, _dirs, files in os.walk(remote):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                if CANARY.encode() in _readable(fh.read()):
                    leaks.append(os.path.join(dirpath, name))
    assert not leaks, "files left by the killed run hold the module's secret argument: %r" % leaks
