"""Prefect modules against a real Prefect server (SQLite, basic auth) and a real process worker."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from sandbox.kube.releases import offline_env

AUTH = "admin:s3cret-pw"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(offline_env())
    env.update({"PREFECT_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def prefect(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect")
    port = _free_port()
    url = "http://127.0.0.1:%d/api" % port
    log = open(str(home / "server.log"), "wb")
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                             str(port)], env=_env(home, PREFECT_SERVER_API_AUTH_STRING=AUTH,
                                                  PREFECT_API_DATABASE_CONNECTION_URL="sqlite+aiosqlite:///%s/p.db" % home),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                break
        except Exception:  # noqa: BLE001
            if proc.poll() is not None:
                raise AssertionError("prefect server exited: %s" % (home / "server.log").read_text())
            time.sleep(0.5)
    else:
        raise AssertionError("prefect server did not answer in 120s")
    yield {"url": url, "home": home}
    os.killpg(proc.pid, 15)
    proc.wait(20)


@pytest.fixture
def args(prefect):
    return {"api_url": prefect["url"], "auth_string": AUTH}


def test_work_pool_lifecycle(module_runner, args):
    base = dict(args, name="pool-a", type="process", job_variables={"working_dir": "/tmp"})
    pred = module_runner("prefect_work_pool", base, check=True)
    assert pred["changed"] is True
    assert module_runner("prefect_work_pool_info", dict(args, name="pool-a"))["exists"] is False
    made = module_runner("prefect_work_pool", base)
    assert made["changed"] is True
    props = made["work_pool"]["base_job_template"]["variables"]["properties"]
    assert props["working_dir"]["default"] == "/tmp"
    again = module_runner("prefect_work_pool", base)
    assert again["changed"] is False
    # The same template given whole, with its keys in another order, is no change.
    template = made["work_pool"]["base_job_template"]
    reordered = json.loads(json.dumps(template, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    same = module_runner("prefect_work_pool", dict(args, name="pool-a", type="process", base_job_template=reordered))
    assert same["changed"] is False
    # A change: check mode predicts it and the diff names it, then the real run makes exactly it.
    changed = dict(base, concurrency_limit=3, description="smoke")
    pred = module_runner("prefect_work_pool", changed, check=True)
    assert pred["changed"] is True and pred["changes"] == ["concurrency_limit", "description"]
    assert module_runner("prefect_work_pool", changed)["changes"] == pred["changes"]
    assert module_runner("prefect_work_pool", changed)["changed"] is False
    assert module_runner("prefect_work_pool", dict(changed, state="absent"))["changed"] is True
    assert module_runner("prefect_work_pool", dict(changed, state="absent"))["changed"] is False


def test_job_configuration_overlay_removes_and_merges(module_runner, args):
    template = {"job_configuration": {"command": "{{ command }}", "job_body": {"vpcAccess": {"connector": "x"}}},
                "variables": {"type": "object", "properties": {"command": {"type": "string"}}}}
    res = module_runner("prefect_work_pool", dict(args, name="pool-b", type="cloud-run-v2", base_job_template=template,
                                                  job_configuration={"job_body": {"vpcAccess": {
                                                      "connector": None, "egress": "ALL_TRAFFIC"}}}))
    body = res["work_pool"]["base_job_template"]["job_configuration"]["job_body"]
    assert body == {"vpcAccess": {"egress": "ALL_TRAFFIC"}}


def test_bad_input_and_auth_errors_say_what_to_fix(module_runner, args):
    res = module_runner("prefect_work_pool", dict(args, name="pool-c", type="process", job_variables={"regoin": "x"}),
                        expect_fail=True)
    assert "regoin" in res["msg"] and "working_dir" in res["msg"]
    res = module_runner("prefect_work_pool", dict(args, name="pool-c", auth_string="admin:wrong"), expect_fail=True)
    assert "401" in res["msg"] and "auth_string" in res["msg"]
    assert "wrong" not in res["_stdout"].replace("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "")
    module_runner("prefect_work_pool", dict(args, name="pool-d", type="process"))
    res = module_runner("prefect_work_pool", dict(args, name="pool-d", type="kubernetes"), expect_fail=True)
    assert "cannot change" in res["msg"]


def test_deployment_and_flow_run_on_a_real_worker(module_runner, args, prefect, tmp_path):
    flow_dir = tmp_path / "flows"
    flow_dir.mkdir()
    (flow_dir / "smoke.py").write_text(
        "from prefect import flow\n\n@flow(name='unit-smoke')\ndef smoke(x: int = 1):\n    return x + 1\n")
    module_runner("prefect_work_pool", dict(args, name="proc", type="process"))
    dep = dict(args, flow_name="unit-smoke", name="smoke", entrypoint="smoke.py:smoke", work_pool_name="proc",
               pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(flow_dir)}}])
    assert module_runner("prefect_deployment", dep, check=True)["changed"] is True
    assert module_runner("prefect_deployment", dep)["changed"] is True
    assert module_runner("prefect_deployment", dep)["changed"] is False
    upd = module_runner("prefect_deployment", dict(dep, tags=["smoke"]))
    assert upd["changes"] == ["tags"]
    log = open(str(tmp_path / "worker.log"), "wb")
    worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "proc", "--type",
                               "process", "--name", "unit-worker"],
                              env=_env(prefect["home"], PREFECT_API_URL=args["api_url"], PREFECT_API_AUTH_STRING=AUTH,
                                       PREFECT_WORKER_QUERY_SECONDS="1"),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        info = module_runner("prefect_work_pool_info", dict(args, name="proc", wait_for_online=1, timeout=90))
        assert info["online"] == 1 and info["workers"][0]["name"] == "unit-worker"
        run = module_runner("prefect_flow_run", dict(args, flow_name="unit-smoke", deployment="smoke", timeout=240))
        assert run["flow_run"]["state_type"] == "COMPLETED"
        bad = module_runner("prefect_flow_run", dict(args, flow_name="unit-smoke", deployment="smoke",
                                                     parameters={"x": "not-an-int"}, timeout=240), expect_fail=True)
        assert "ended" in bad["msg"] or "422" in bad["msg"]
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(20)
    missing = module_runner("prefect_flow_run", dict(args, flow_name="unit-smoke", deployment="nope"), expect_fail=True)
    assert "prefect_deployment" in missing["msg"]
