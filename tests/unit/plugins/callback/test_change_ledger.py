"""The change_ledger callback counts a run's changed task results; the lookup reads the count in a task's worker, or
returns none when the callback is not enabled (platform_verify then trusts no early smoke run)."""

import json
import os
import subprocess
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
LEDGER = "skyforge.prefect_platform.change_ledger"

PLAYBOOK = textwrap.dedent("""\
    - hosts: localhost
      gather_facts: false
      tasks:
        - name: start
          ansible.builtin.set_fact:
            seen: ["{{ lookup('%(ledger)s') }}"]
        - name: a change
          ansible.builtin.command: "true"
        - name: no change
          ansible.builtin.command: "true"
          changed_when: false
        - name: after one change
          ansible.builtin.set_fact:
            seen: "{{ seen + [lookup('%(ledger)s')] }}"
        - name: a loop whose items change counts once, as one task result
          ansible.builtin.command: "true"
          loop: [1, 2, 3]
        - name: a failure that is ignored may have changed something
          ansible.builtin.command: "false"
          ignore_errors: true
        - name: skipped
          ansible.builtin.command: "true"
          when: false
        - name: at the end
          ansible.builtin.set_fact:
            seen: "{{ seen + [lookup('%(ledger)s')] }}"
        - name: what the lookups saw
          ansible.builtin.debug:
            msg: "SEEN {{ seen | to_json }}"
    """ % {"ledger": LEDGER})


def run(tmp_path, callbacks):
    path = tmp_path / "ledger.yml"
    path.write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    if callbacks:
        env["ANSIBLE_CALLBACKS_ENABLED"] = callbacks
    else:  # an empty ANSIBLE_CALLBACKS_ENABLED crashes ansible-core 2.19: a configuration without the setting instead
        (tmp_path / "plain.cfg").write_text("[defaults]\n")
        env["ANSIBLE_CONFIG"] = str(tmp_path / "plain.cfg")
        env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    proc = subprocess.run(["ansible-playbook", str(path)], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if '"msg": "SEEN ' in ln)
    return json.loads(json.loads(line.split('"msg": ', 1)[1])[len("SEEN "):]), proc.stdout


@pytest.mark.parametrize("callbacks", [LEDGER, "%s,ansible.posix.profile_tasks" % LEDGER])
def test_the_lookup_reads_the_changed_results_counted_before_its_task(tmp_path, callbacks):
    seen, out = run(tmp_path, callbacks)
    assert seen == [0, 1, 3], out[-3000:]


def test_without_the_callback_the_lookup_says_nobody_counted(tmp_path):
    seen, _out = run(tmp_path, "")
    assert seen == [None, None, None]


def test_the_callback_prints_nothing(tmp_path):
    _seen, counted = run(tmp_path, LEDGER)
    _seen, plain = run(tmp_path, "")

    def lines(out):  # the lookups' values and the failed command's timings differ, nothing else may
        return [ln for ln in out.splitlines() if "SEEN" not in ln and '"delta"' not in ln]
    assert lines(counted) == lines(plain) and len(lines(plain)) > 30


def test_the_repository_configuration_enables_it():
    with open(os.path.join(REPO, "ansible.cfg"), encoding="utf-8") as fh:
        lines = [ln.split("=", 1)[1] for ln in fh if ln.startswith("callbacks_enabled")]
    assert LEDGER in [c.strip() for c in lines[0].split(",")]
