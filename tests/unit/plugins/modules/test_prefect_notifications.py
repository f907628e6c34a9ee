"""Flow-failure mail: prefect_email_block and prefect_automation against a real Prefect server, whose actions service
sends through the sandbox's real SMTP sink (STARTTLS from its own CA, AUTH required)."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from sandbox.smtp_server import SmtpSink

from tests.unit.idempotence import changed_tasks, converge, recap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

from .prefect_helpers import AUTH, prefect_env, start_server, stop_server

SMTP_USER = "prefect-alerts"
SMTP_PASSWORD = "sm/tp:p@ss w0rd%"  # every character the URL must quote
TRIGGER = {"type": "event", "match": {"prefect.resource.id": "prefect.flow-run.*"},
           "expect": ["prefect.flow-run.Failed"], "posture": "Reactive", "threshold": 1, "within": 0}
SUBJECT = "Prefect flow run {{ flow_run.name }} failed"
BODY = "Flow run {{ flow_run.name }} of {{ flow.name }} entered {{ flow_run.state.name }}: {{ flow_run.state.message }}"


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    sink = SmtpSink(tmp_path_factory.mktemp("smtp"), {SMTP_USER: SMTP_PASSWORD}).start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def prefect(tmp_path_factory, smtp):
    home = tmp_path_factory.mktemp("prefect-notify")
    # The server's actions service sends the mail: it trusts the sink's CA, as a real server trusts its relay's.
    proc, url = start_server(home, SSL_CERT_FILE=smtp.ca_path)
    yield {"url": url, "home": home}
    stop_server(proc)


@pytest.fixture
def args(prefect):
    return {"api_url": prefect["url"], "auth_string": AUTH}


def block_args(args, smtp, **over):
    out = dict(args, name="flow-failure-mail", smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_username=SMTP_USER,
               smtp_password=SMTP_PASSWORD, from_address="prefect@example.com", to=["oncall@example.com"])
    out.update(over)
    return out


def secret_free(result):
    text = result["_stdout"] + json.dumps({k: v for k, v in result.items() if not k.startswith("_")})
    return SMTP_PASSWORD not in text and "p%40ss" not in text


def test_email_block_lifecycle_hides_the_password(module_runner, args, smtp):
    base = block_args(args, smtp)
    check, real, again = converge(module_runner, "prefect_email_block", base)
    for res in (check, real, again):
        assert secret_free(res)
        assert res["email_block"]["smtp_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert real["email_block"]["id"] and real["email_block"]["smtp_port"] == smtp.port
    assert real["diff"]["before"] == {} and real["diff"]["after"]["to"] == ["oncall@example.com"]
    # A new password alone is a change, named but never shown.
    moved = dict(base, smtp_password="another-pw")
    pred = module_runner("prefect_email_block", moved, check=True)
    assert pred["changed"] is True and pred["changes"] == ["smtp_password"] and secret_free(pred)
    assert "another-pw" not in pred["_stdout"]
    assert module_runner("prefect_email_block", base, check=True)["changed"] is False
    more = dict(base, to=["oncall@example.com", "team@example.com"])
    assert module_runner("prefect_email_block", more)["changes"] == ["to"]
    assert module_runner("prefect_email_block", more)["changed"] is False
    gone = dict(base, name="other-mail")
    module_runner("prefect_email_block", gone)
    assert module_runner("prefect_email_block", dict(gone, state="absent"))["changed"] is True
    assert module_runner("prefect_email_block", dict(gone, state="absent"))["changed"] is False


def test_email_block_bad_input_says_what_to_fix(module_runner, args, smtp):
    res = module_runner("prefect_email_block", block_args(args, smtp, smtp_port=70000), expect_fail=True)
    assert "smtp_port=70000" in res["msg"]
    res = module_runner("prefect_email_block", block_args(args, smtp, to=["oncall.example.com"]), expect_fail=True)
    assert "oncall.example.com" in res["msg"]
    res = module_runner("prefect_email_block", block_args(args, smtp, name="Flow_Mail"), expect_fail=True)
    assert "lowercase" in res["msg"]
    res = module_runner("prefect_email_block", dict(args, name="x"), expect_fail=True)
    assert "smtp_host" in res["msg"]


def test_automation_lifecycle(module_runner, args):
    base = dict(args, name="unit-automation", trigger=TRIGGER, actions=[{"type": "do-nothing"}])
    check, real, again = converge(module_runner, "prefect_automation", base)
    assert real["automation"]["trigger"]["id"] and real["automation"]["enabled"] is True
    # The server keeps `expect` as a set and lists it in its own order: that order is no change.
    expect = ["prefect.flow-run.TimedOut", "prefect.flow-run.Failed", "prefect.flow-run.Crashed"]
    changed = dict(base, trigger=dict(TRIGGER, expect=expect), enabled=False)
    pred = module_runner("prefect_automation", changed, check=True)
    assert pred["changes"] == ["enabled", "trigger"]
    made = module_runner("prefect_automation", changed)
    assert made["changes"] == pred["changes"] and made["automation"]["id"] == real["automation"]["id"]
    assert sorted(made["automation"]["trigger"]["expect"]) == sorted(expect)
    assert module_runner("prefect_automation", changed)["changed"] is False
    assert module_runner("prefect_automation", dict(changed, state="absent"))["changed"] is True
    assert module_runner("prefect_automation", dict(changed, state="absent"))["changed"] is False
    res = module_runner("prefect_automation", dict(args, name="unit-automation"), expect_fail=True)
    assert "trigger" in res["msg"]


def test_a_failed_flow_run_sends_mail(module_runner, args, prefect, smtp, tmp_path):
    block = module_runner("prefect_email_block", block_args(args, smtp, name="failure-mail"))
    auto = dict(args, name="flow-run-failed-mail", trigger=TRIGGER, actions=[{
        "type": "send-notification", "block_document_id": block["email_block"]["id"], "subject": SUBJECT,
        "body": BODY}])
    converge(module_runner, "prefect_automation", auto)
    flow = tmp_path / "fails.py"
    flow.write_text("from prefect import flow, runtime\n\n@flow(name='unit-fails')\ndef fails():\n"
                    "    print('RUN=' + runtime.flow_run.name, flush=True)\n"
                    "    raise RuntimeError('boom on purpose')\n\n"
                    "if __name__ == '__main__':\n    fails(return_state=True)\n")
    run = subprocess.run([sys.executable, str(flow)], env=prefect_env(prefect["home"], PREFECT_API_URL=args["api_url"],
                                                                      PREFECT_API_AUTH_STRING=AUTH),
                         capture_output=True, text=True, timeout=180, check=False)
    names = [line[4:] for line in run.stdout.splitlines() if line.startswith("RUN=")]
    assert names and "Failed" in run.stdout + run.stderr, "the flow did not fail as planned:\n%s\n%s" % (
        run.stdout, run.stderr)
    name = names[0]
    mail = smtp.wait_for(lambda m: name in m["subject"], timeout=120)
    assert mail["subject"] == "Prefect flow run %s failed" % name
    assert "unit-fails" in mail["body"] and "boom on purpose" in mail["body"]
    assert mail["login"] == SMTP_USER and mail["tls"] is True
    assert mail["mail_from"] == "prefect@example.com" and mail["rcpt_tos"] == ["oncall@example.com"]


ROLE = os.path.join(REPO, "roles", "prefect_worker")
PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/skyforge.prefect_platform.gcp:
      project: "{{ gcp_project }}"
      auth_kind: serviceaccount
      service_account_file: "{{ gcp_service_account_file }}"
      api_endpoint_template: "{{ gcp_api_endpoint_template }}"
  vars_files:
    - %(defaults)s
    - %(vars)s
  tasks:
    - name: The role's validation of the mail settings
      ansible.builtin.include_tasks: %(validate)s
    - name: The role's API access, as present.yml sets it
      ansible.builtin.set_fact:
        prefect_worker_api: {api_url: "{{ api_url }}", auth_string: "{{ auth_string }}"}
      no_log: true
    - name: The role's mail tasks, as present.yml includes them
      ansible.builtin.include_tasks: %(notifications)s
      when: prefect_worker_notify_email_to | length > 0
"""


@pytest.fixture
def role_play(sandbox, gcp_args, module_runner, args, smtp, tmp_path):
    """Runs the prefect_worker role's mail tasks (its validation task and notifications.yml) as Ansible runs them,
    against the sandbox's Secret Manager, the Prefect server and the SMTP sink."""
    module_runner("gcp_project_services", dict(gcp_args, services=["secretmanager.googleapis.com"]))
    module_runner("gcp_secret", dict(gcp_args, name="rm-smtp-password", value=SMTP_PASSWORD))
    with open(os.path.join(ROLE, "tasks", "validate.yml")) as fh:
        picked = [t for t in yaml.safe_load(fh) if t["name"].startswith("Check the flow-failure mail settings")]
    assert len(picked) == 1, "the role's validate.yml no longer checks the mail settings"
    (tmp_path / "validate.yml").write_text(yaml.safe_dump(picked, sort_keys=False))
    (tmp_path / "play.yml").write_text(PLAYBOOK % {
        "defaults": os.path.join(ROLE, "defaults", "main.yml"), "vars": os.path.join(ROLE, "vars", "main.yml"),
        "validate": tmp_path / "validate.yml", "notifications": os.path.join(ROLE, "tasks", "notifications.yml")})
    ep = sandbox.endpoints()
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "gcp_project": ep["gcp_project"], "gcp_service_account_file": ep["gcp_service_account_file"],
        "gcp_api_endpoint_template": ep["gcp_api_endpoint_template"], "skyforge_name": "rm",
        "api_url": args["api_url"], "auth_string": args["auth_string"]}}}}))
    base = {"prefect_worker_notify_email_to": ["oncall@example.com"], "prefect_worker_notify_email_from":
            "prefect@example.com", "prefect_worker_notify_smtp_host": "127.0.0.1",
            "prefect_worker_notify_smtp_port": smtp.port, "prefect_worker_notify_smtp_username": SMTP_USER,
            "prefect_worker_notify_block_name": "role-mail", "prefect_worker_notify_automation_name": "role-mail"}

    def play(extra=None, *flags, fail=False):
        cmd = ["ansible-playbook", str(tmp_path / "play.yml"), "-i", str(tmp_path / "hosts.yml"),
               "-e", json.dumps(dict(base, **(extra or {}))), "--diff", "-v", *flags]
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_ROLES_PATH=os.path.join(REPO, "roles"))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=False)
        out = proc.stdout + proc.stderr
        assert (proc.returncode != 0) is fail, out
        assert SMTP_PASSWORD not in out and "p%40ss" not in out, "the SMTP password never shows"
        return (recap(out) or (0, 0, 0))[1], out

    return play


def test_role_sets_up_failure_mail_idempotently(role_play, module_runner, args, prefect, smtp, tmp_path):
    changed, out = role_play(None, "--check")
    assert changed == 2, "check mode predicts the block and the automation"
    assert module_runner("prefect_automation", dict(args, name="role-mail", state="absent"),
                         check=True)["changed"] is False, "and creates neither"
    assert role_play()[0] == 2
    changed, out = role_play()
    assert changed == 0, "a second run changes nothing:\n%s" % changed_tasks(out)
    changed, out = role_play(None, "--check")
    assert changed == 0, changed_tasks(out)
    fails = tmp_path / "role_fails.py"
    fails.write_text("from prefect import flow, runtime\n\n@flow(name='role-fails')\ndef fails():\n"
                     "    print('RUN=' + runtime.flow_run.name, flush=True)\n    raise RuntimeError('role boom')\n\n"
                     "if __name__ == '__main__':\n    fails(return_state=True)\n")
    run = subprocess.run([sys.executable, str(fails)], env=prefect_env(prefect["home"], PREFECT_API_URL=args["api_url"],
                                                                       PREFECT_API_AUTH_STRING=AUTH),
                         capture_output=True, text=True, timeout=180, check=False)
    name = [line[4:] for line in run.stdout.splitlines() if line.startswith("RUN=")][0]
    mail = smtp.wait_for(lambda m: m["subject"] == "Prefect flow run %s (role-fails) Failed" % name, timeout=120)
    assert "role boom" in mail["body"] and mail["rcpt_tos"] == ["oncall@example.com"]


@pytest.mark.parametrize("extra, text", [
    ({"prefect_worker_notify_email_to": ["oncall.example.com"]}, "oncall.example.com"),
    ({"prefect_worker_notify_smtp_port": 70000}, "prefect_worker_notify_smtp_port (70000) a TCP port 1-65535"),
    ({"prefect_worker_notify_email_from": ""}, "not mail addresses"),
    ({"prefect_worker_notify_block_name": "Role_Mail"}, "prefect_worker_notify_block_name"),
])
def test_role_rejects_bad_mail_settings_before_any_call(role_play, extra, text):
    _changed, out = role_play(extra, fail=True)
    assert text in out
    assert "Read the SMTP password" not in out
