"""tfc_agent_token (created once, returned once, rotated) and tfc_agent_info (status, wait_for_idle)."""

import threading

import httpx

from tests.unit.plugins.modules.tfc_helpers import unique, writes


def test_token_created_once_and_rotated(sandbox, tfc_args, module_runner):
    pool = unique("tokpool")
    module_runner("tfc_agent_pool", dict(tfc_args, name=pool))
    args = dict(tfc_args, agent_pool=pool, description="mig")
    before = sandbox.log.mark()
    check = module_runner("tfc_agent_token", args, check=True)
    assert check["changed"] and check["token"] is None and not writes(sandbox, before)
    first = module_runner("tfc_agent_token", args)
    assert first["changed"] and first["created"] and first["token"] and first["token_id"].startswith("at-")
    assert first["token"] not in str(first["diff"])
    again = module_runner("tfc_agent_token", args)
    assert again["changed"] is False and again["token"] is None and again["token_id"] == first["token_id"]
    app = sandbox.apps["tfc"]
    assert app.register_agent(first["token"], name="host-a") is True
    rotated = module_runner("tfc_agent_token", dict(args, rotate=True))
    assert rotated["changed"] and rotated["token"] and rotated["token"] != first["token"]
    assert rotated["revoked"] == [first["token_id"]]
    assert app.register_agent(first["token"], name="host-b") is False, "a revoked token no longer registers"
    agent_a = next(a for a in app.agents.values() if a["name"] == "host-a")
    assert agent_a["status"] == "exited", "an agent on a revoked token exits"
    assert app.register_agent(rotated["token"], name="host-c") is True
    gone = module_runner("tfc_agent_token", dict(args, state="absent"))
    assert gone["changed"] and gone["revoked"] == [rotated["token_id"]]


def test_agent_info_statuses_and_wait_for_idle(sandbox, tfc_args, module_runner):
    pool = unique("infopool")
    module_runner("tfc_agent_pool", dict(tfc_args, name=pool))
    token = module_runner("tfc_agent_token", dict(tfc_args, agent_pool=pool, description="d"))["token"]
    empty = module_runner("tfc_agent_info", dict(tfc_args, agent_pool=pool))
    assert empty["agents"] == [] and empty["idle"] == 0 and empty["changed"] is False
    timed_out = module_runner("tfc_agent_info", dict(tfc_args, agent_pool=pool, wait_for_idle=1, timeout=1),
                              expect_fail=True)
    assert "0 idle agent(s)" in timed_out["msg"] and "valid token of this pool" in timed_out["msg"]
    # The agent connects while the module waits (through the admin endpoint, as a test harness would).
    url = sandbox.endpoints()["tfc_address"] + "/_sandbox/tfc/agent"
    timer = threading.Timer(1.0, lambda: httpx.post(url, json={"token": token, "name": "late-agent"}))
    timer.start()
    try:
        out = module_runner("tfc_agent_info", dict(tfc_args, agent_pool=pool, wait_for_idle=1, timeout=30))
    finally:
        timer.join()
    assert out["idle"] == 1 and out["agents"][0]["name"] == "late-agent" and out["agents"][0]["status"] == "idle"
    assert httpx.post(url, json={"token": "wrong"}).status_code == 403
    httpx.post(url + "/stop", json={"name": "late-agent"})
    stopped = module_runner("tfc_agent_info", dict(tfc_args, agent_pool=pool))
    assert [a["status"] for a in stopped["agents"]] == ["exited"], "statuses beyond idle/busy are kept"
    assert token not in out["_stdout"]
