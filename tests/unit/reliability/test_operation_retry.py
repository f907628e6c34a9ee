"""A create whose long-running operation fails, leaving nothing behind, is sent again (GcpModule.ensure)."""

import random

import pytest


@pytest.fixture(autouse=True)
def compute_enabled(sandbox):
    app = sandbox.apps["gcp"]
    app.enabled["projects/%s/services/compute.googleapis.com" % app.project_number] = True
    yield
    sandbox.ops.fail_rate = 0.0


def inserts(sandbox, start):
    return [e for e in sandbox.log.entries[start:]
            if e["method"] == "POST" and e["path"].split("?")[0].endswith("/global/networks") and e["status"] == 200]


def first_fails_then_succeeds(rate):
    """A seed whose first draw is below `rate` and second is not: one failed operation, then a good one."""
    for seed in range(1000):
        rng = random.Random(seed)
        if rng.random() < rate <= rng.random():
            return seed
    raise AssertionError("no such seed")


def test_failed_create_operation_is_sent_again(sandbox, gcp_args, module_runner):
    key = "projects/%s/global/networks/opretry-net" % gcp_args["project"]
    sandbox.faults.rng.seed(first_fails_then_succeeds(0.5))
    sandbox.ops.fail_rate = 0.5
    start = sandbox.log.mark()
    result = module_runner("gcp_network", dict(gcp_args, name="opretry-net"))
    sandbox.ops.fail_rate = 0.0
    assert result["changed"] is True and key in sandbox.store.table("compute.networks")
    assert sandbox.faults.injected.get("operation", 0) >= 1
    assert len(inserts(sandbox, start)) == 2, "one failed insert, then one that took"
    assert module_runner("gcp_network", dict(gcp_args, name="opretry-net"))["changed"] is False


def test_operation_that_keeps_failing_gives_up_with_one_line(sandbox, gcp_args, module_runner):
    key = "projects/%s/global/networks/opfail-net" % gcp_args["project"]
    sandbox.ops.fail_rate = 1.0
    start = sandbox.log.mark()
    result = module_runner("gcp_network", dict(gcp_args, name="opfail-net"), expect_fail=True)
    sandbox.ops.fail_rate = 0.0
    assert "injected operation failure" in result["msg"] and "(after 3 attempts)" in result["msg"]
    assert "\n" not in result["msg"]
    assert len(inserts(sandbox, start)) == 3
    assert key not in sandbox.store.table("compute.networks"), "a failed insert leaves nothing"
    # The name is free again: the next run creates it.
    assert module_runner("gcp_network", dict(gcp_args, name="opfail-net"))["changed"] is True
    assert key in sandbox.store.table("compute.networks")
