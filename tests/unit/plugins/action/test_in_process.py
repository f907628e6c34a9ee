"""plugins/plugin_utils/in_process.py: a module run in a fork of the worker returns what the module process returns
(result, check mode, diff, failures, no_log), leaves no temporary directory, and falls back where it must."""

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.unit.conftest import REPO
from tests.unit.sandbox.gcp_helpers import enable

FORKED = "in a fork of the worker"

TASK = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: The module under test
      skyforge.prefect_platform.gcp_network: %s
      register: out
%s
    - name: Its result
      ansible.builtin.copy:
        content: "{{ out | to_json }}"
        dest: %s
      check_mode: false
      diff: false
"""


def play(tmp_path, args, extra="", check=False, interpreter=None, more=()):
    """Run one gcp_network task; (its registered result, the run's -vvv output)."""
    result = tmp_path / ("result-%s.json" % uuid.uuid4().hex[:8])
    playbook = tmp_path / "play.yml"
    playbook.write_text(TASK % (json.dumps(args), extra, result))
    env = dict(os.environ, ANSIBLE_REMOTE_TMP=str(tmp_path / "remote"), ANSIBLE_NOCOLOR="1")
    cmd = ["ansible-playbook", "-vvv", "-i", "localhost,", "-c", "local", "-e",
           "ansible_python_interpreter=%s" % (interpreter or sys.executable), str(playbook)] + list(more)
    if check:
        cmd += ["--check", "--diff"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert result.exists(), output
    return json.loads(result.read_text()), output


def comparable(result):
    return {k: v for k, v in result.items() if k not in ("invocation",)}


@pytest.fixture
def net(gcp_args, sandbox):
    enable(sandbox, "compute.googleapis.com")
    return dict(gcp_args, name="inproc-%s" % uuid.uuid4().hex[:6], description="first")


def test_same_result_as_a_module_process(tmp_path, net):
    created, output = play(tmp_path, net)
    assert FORKED in output and created["changed"] is True
    forked, output = play(tmp_path, net)
    assert FORKED in output
    usual, output = play(tmp_path, net, more=["-e", "skyforge_in_process=false"])
    assert FORKED not in output
    assert forked["changed"] is False and comparable(forked) == comparable(usual)


def test_check_mode_and_diff_match_and_write_nothing(tmp_path, net):
    play(tmp_path, net)
    changed = dict(net, description="second")
    forked, output = play(tmp_path, changed, check=True)
    assert FORKED in output
    usual = play(tmp_path, changed, check=True, more=["-e", "skyforge_in_process=false"])[0]
    assert forked["changed"] is True and forked["diff"] == usual["diff"]
    assert forked["diff"]["before"]["description"] == "first" and forked["diff"]["after"]["description"] == "second"
    after = play(tmp_path, net)[0]
    assert after["changed"] is False, "check mode wrote the change"


def test_failures_are_the_same(tmp_path, net):
    bad = dict(net, bogus=1)
    forked, output = play(tmp_path, bad, extra="      ignore_errors: true")
    assert FORKED in output
    usual = play(tmp_path, bad, extra="      ignore_errors: true", more=["-e", "skyforge_in_process=false"])[0]
    assert forked["failed"] is True and forked["msg"] == usual["msg"] and "bogus" in forked["msg"]


def test_no_log_arguments_stay_hidden(tmp_path, net, sandbox):
    key_file = sandbox.endpoints()["gcp_service_account_file"]
    with open(key_file) as fh:
        contents = fh.read()
    private = json.loads(contents)["private_key"].splitlines()[1]
    args = {k: v for k, v in net.items() if k != "service_account_file"}
    args["service_account_contents"] = contents
    result, output = play(tmp_path, args)
    assert FORKED in output and result["changed"] is True
    assert private not in output and private not in json.dumps(result)


def test_no_module_temporary_directory_is_left(tmp_path, net):
    play(tmp_path, net)
    play(tmp_path, dict(net, bogus=1), extra="      ignore_errors: true")
    remote = tmp_path / "remote"
    left = [p.name for p in remote.iterdir()] if remote.exists() else []
    assert not left, "module temporary directories left behind: %r" % left


def test_falls_back_where_a_fork_would_differ(tmp_path, net):
    # Another interpreter (here a wrapper script): the module must run in it.
    wrapper = tmp_path / "python"
    wrapper.write_text("#!/bin/sh\nexec %s \"$@\"\n" % sys.executable)
    wrapper.chmod(0o755)
    result, output = play(tmp_path, net, interpreter=str(wrapper))
    assert FORKED not in output and result["changed"] is True
    # A task environment: it reaches the module process the usual way.
    result, output = play(tmp_path, net, extra="      environment:\n        SKYFORGE_POLL_FIRST: '0.2'")
    assert FORKED not in output and result["changed"] is False
