"""The GCP base over HTTP: retries through injected faults, operation timeouts, error lines."""

import pytest

# No other test enables it: the session shares one sandbox, and this test needs the service off to start with.
SERVICES = ["monitoring.googleapis.com"]


@pytest.fixture
def faults(sandbox):
    yield sandbox.faults
    sandbox.faults.rate = 0.0
    sandbox.faults.kinds = sandbox.faults.KINDS


def test_converges_through_throttling_5xx_and_dropped_connections(sandbox, gcp_args, module_runner, faults):
    before = dict(faults.injected)
    faults.rate = 0.4
    faults.kinds = ("429", "500", "503", "drop")
    faults.rng.seed(7)
    out = module_runner("gcp_project_services", dict(gcp_args, services=SERVICES, retries=12),
                        env={"SKYFORGE_POLL_FIRST": "0.05"})
    faults.rate = 0.0
    injected = sum(faults.injected.values()) - sum(before.values())
    assert injected > 0, "the fault injector must have fired for this test to mean anything"
    assert out["changed"] is True
    assert sandbox.apps["gcp"].service_enabled(SERVICES[0])
    again = module_runner("gcp_project_services", dict(gcp_args, services=SERVICES, retries=12))
    assert again["changed"] is False


def test_gives_up_with_a_clear_line_when_faults_persist(sandbox, gcp_args, module_runner, faults):
    faults.rate = 1.0
    faults.kinds = ("503",)
    out = module_runner("gcp_project_services", dict(gcp_args, services=["dns.googleapis.com"], retries=1),
                        expect_fail=True)
    faults.rate = 0.0
    msg = out["msg"]
    # Whichever endpoint fails first (token or API) is named, with the status and the fix.
    assert ("serviceusage.googleapis.com" in msg or "token endpoint" in msg) and "503" in msg and "Fix:" in msg
    assert "\n" not in msg


def test_operation_wait_times_out_with_advice(sandbox, gcp_args, module_runner):
    scale = sandbox.config.time_scale
    sandbox.config.time_scale = 100.0  # enabling now takes far longer than the timeout below
    try:
        out = module_runner("gcp_project_services", dict(gcp_args, services=["pubsub.googleapis.com"], wait_timeout=2),
                            expect_fail=True, env={"SKYFORGE_POLL_FIRST": "0.2", "SKYFORGE_POLL_MAX": "0.5"})
    finally:
        sandbox.config.time_scale = scale
    assert "timed out after 2s" in out["msg"]
    assert "raise wait_timeout" in out["msg"]


def test_no_token_or_key_in_output(sandbox, gcp_args, module_runner):
    import json

    key = json.load(open(gcp_args["service_account_file"]))
    out = module_runner("gcp_project_services", dict(gcp_args, services=SERVICES))
    text = out["_stdout"] + out["_stderr"]
    assert key["private_key"].splitlines()[1] not in text
    for token in list(sandbox.apps["gcp"].auth.tokens):
        assert token not in text
