"""Prefect modules against a real Prefect server (SQLite, basic auth) and a real process worker."""

import json
import os
import subprocess
import sys

import pytest

from .prefect_helpers import AUTH, prefect_env as _env, start_server, stop_server


@pytest.fixture(scope="module")
def prefect(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect")
    proc, url = start_server(home)
    yield {"url": url, "home": home}
    stop_server(proc)


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
        assert run["flow_run"]["state_type"] == "COMPLETED" and run["changed"] is True
        # Started without waiting, then followed by id (the verify role checks other things in between).
        started = module_runner("prefect_flow_run", dict(args, flow_name="unit-smoke", deployment="smoke", wait=False))
        assert started["changed"] is True and started["flow_run"]["state_type"] == "SCHEDULED", started
        follow = dict(args, flow_run_id=started["flow_run"]["id"], timeout=240)
        assert module_runner("prefect_flow_run", follow, check=True)["changed"] is False
        followed = module_runner("prefect_flow_run", follow)
        assert followed["changed"] is False and followed["flow_run"]["state_type"] == "COMPLETED"
        assert followed["flow_run"]["id"] == started["flow_run"]["id"]
        bad = module_runner("prefect_flow_run", dict(args, flow_name="unit-smoke", deployment="smoke",
                                                     parameters={"x": "not-an-int"}, timeout=240), expect_fail=True)
        assert "ended" in bad["msg"] or "422" in bad["msg"]
    finally:
        # A process worker drains its runs before it exits on SIGTERM; under load that can outlast the test.
        os.killpg(worker.pid, 15)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, 9)
            worker.wait(10)
    missing = module_runner("prefect_flow_run", dict(args, flow_name="unit-smoke", deployment="nope"), expect_fail=True)
    assert "prefect_deployment" in missing["msg"]
    unknown = module_runner("prefect_flow_run", dict(args, flow_run_id="0b6e3c4e-0000-4000-8000-000000000000"),
                            expect_fail=True)
    assert "does not exist" in unknown["msg"] and "wait=false" in unknown["msg"], unknown["msg"]
    both = module_runner("prefect_flow_run", dict(args, flow_name="unit-smoke", deployment="smoke", flow_run_id="x"),
                         expect_fail=True)
    assert "mutually exclusive" in both["msg"], both["msg"]


def test_api_info_reports_health_and_what_an_anonymous_caller_gets(module_runner, args, prefect):
    res = module_runner("prefect_api_info", dict(args, check_anonymous=True))
    assert res["changed"] is False and res["healthy"] is True and res["health_status"] == 200
    assert res["health_body"] == "true" and "health_error" not in res
    assert res["anonymous_status"] == 401, "the server's basic auth refuses a caller without credentials"
    assert module_runner("prefect_api_info", args, check=True)["healthy"] is True
    assert "anonymous_status" not in module_runner("prefect_api_info", args)


def test_api_info_does_not_fail_on_what_the_api_answers_and_never_returns_the_credentials(module_runner, args):
    # A wrong path answers 404 (not healthy), a closed port no answer at all: the caller asserts and says what to fix.
    res = module_runner("prefect_api_info", dict(args, api_url=args["api_url"] + "/nothing", wait_healthy=2))
    assert res["healthy"] is False and res["health_status"] == 404 and "404" in res["health_error"]
    closed = module_runner("prefect_api_info", dict(args, api_url="http://127.0.0.1:9/api", request_timeout=2,
                                                    check_anonymous=True))
    assert closed["healthy"] is False and "health_status" not in closed and "anonymous_status" not in closed
    assert closed["health_error"]
    assert "s3cret-pw" not in json.dumps(res) + json.dumps(closed)
