"""The shared error machinery: one error type, the fix table of each family, the one exit, the waiter's timeout.

No API and no sandbox: fake errors shaped like each SDK's, a fake module and a fake clock.
"""

import json
import types

import pytest

from ansible_collections.skyforge.prefect_platform.plugins.module_utils import (
    cloudflare,
    common,
    errors,
    gcp,
    prefect,
    tfc,
)


class Failed(Exception):
    def __init__(self, result):
        super(Failed, self).__init__(result.get("msg"))
        self.result = result


class Exit(Exception):
    def __init__(self, result):
        super(Exit, self).__init__(result)
        self.result = result


class FakeModule(common.EnsureMixin):
    def __init__(self, params=None, check_mode=False):
        self.params = dict(params or {"name": "flows", "state": "present"})
        self.check_mode = check_mode
        self.failures = []

    def exit_json(self, **result):
        raise Exit(result)

    def fail_json(self, **result):
        self.failures.append(result)
        raise Failed(result)


class Refusing(common.Resource):
    """A resource whose API refuses the create with a 403 GCP would send."""

    kind = "bucket"

    def get(self):
        return None

    def desired(self):
        return {"name": self.name}

    def create(self, desired):
        denied = gcp_error(403, "Permission 'storage.buckets.create' denied on resource")
        raise gcp.http_error("storage", "create", "bucket flows", denied, project="p1")


def gcp_error(status, message, reason=None):
    body = {"error": {"code": status, "message": message, "status": "PERMISSION_DENIED",
                      "details": [{"reason": reason}] if reason else []}}
    return types.SimpleNamespace(resp=types.SimpleNamespace(status=status), content=json.dumps(body).encode())


# ---- one error type, one exit ---------------------------------------------------------------------------------------
def test_an_error_in_ensure_fails_once_with_the_fix_from_the_table():
    module = FakeModule()
    with pytest.raises(Failed) as caught:
        module.ensure(Refusing(module))
    assert len(module.failures) == 1
    msg = caught.value.result["msg"]
    assert msg.startswith("GCP storage.googleapis.com: create bucket flows failed: HTTP 403")
    assert msg.endswith("Fix: grant the deploying identity roles/storage.admin on project p1, which holds "
                        "storage.buckets.create (docs/permissions.md lists the roles).")
    assert caught.value.result["status"] == 403


def test_check_mode_never_reaches_the_refusing_create():
    module = FakeModule(check_mode=True)
    with pytest.raises(Exit) as caught:
        module.ensure(Refusing(module))
    assert caught.value.result["changed"] is True and module.failures == []


def test_one_exit_fails_once_with_message_and_details():
    module = FakeModule()
    errors.register(module)

    @errors.one_exit
    def main():
        raise errors.OperationFailed("GCP compute.googleapis.com: operation op-1 on network n failed: boom", "run again",
                                     operation={"name": "op-1"})

    with pytest.raises(Failed) as caught:
        main()
    assert module.failures == [{"msg": "GCP compute.googleapis.com: operation op-1 on network n failed: boom. Fix: "
                                       "run again.", "operation": {"name": "op-1"}}]
    assert caught.value.result["operation"] == {"name": "op-1"}


def test_one_exit_lets_other_exceptions_through():
    errors.register(FakeModule())

    @errors.one_exit
    def main():
        raise KeyError("a bug, with its traceback")

    with pytest.raises(KeyError):
        main()


def test_error_text_is_what_failed_then_the_fix():
    err = errors.InputError("name=x is not valid.", "use lowercase letters")
    assert str(err) == err.msg == "name=x is not valid. Fix: use lowercase letters."
    assert errors.InputError("no fix here").msg == "no fix here"


def test_immutable_change_is_one_fail_with_the_fix():
    class Fixed(common.Resource):
        kind = "bucket"
        immutable = ("location",)

        def get(self):
            return {"name": "flows", "location": "EU"}

        def desired(self):
            return {"name": "flows", "location": "US"}

    module = FakeModule()
    with pytest.raises(Failed) as caught:
        module.ensure(Fixed(module))
    assert len(module.failures) == 1
    assert 'bucket flows: location cannot be changed in place (current {"location": "EU"}). Fix: keep the current ' \
           'value' in caught.value.result["msg"]


# ---- the fix table, per family ----------------------------------------------------------------------------------------
def test_every_family_has_a_default_fix():
    for family, table in errors.FIXES.items():
        assert table["default"], family
        assert errors.fix_for(family, 599) == table["default"]


def test_gcp_fixes():
    disabled = gcp.http_error("iam", "list", "service accounts",
                              gcp_error(403, "IAM API has not been used in project p1", "SERVICE_DISABLED"), "p1")
    assert disabled.reason == "SERVICE_DISABLED" and "enable iam.googleapis.com on project p1" in disabled.msg
    inferred = gcp.http_error("sqladmin", "create", "instance db", gcp_error(403, "not authorized"), "p1",
                              method_id="sql.instances.insert")
    assert "roles/cloudsql.admin on project p1, which holds cloudsql.instances.create, the permission this call " \
           "needs" in inferred.msg
    assert "stale fingerprint/etag" in gcp.http_error("compute", "patch", "x", gcp_error(412, "stale")).msg
    assert gcp.http_error("compute", "get", "x", gcp_error(404, "gone")).msg.endswith(
        "Fix: check the name, project and location; create what it depends on first.")
    expected = gcp.http_error("compute", "insert", "x", gcp_error(409, "exists"), expected=True)
    assert isinstance(expected, errors.ExpectedError) and expected.status == 409
    # The old entry point still gives the same line.
    assert gcp.explain_http_error("compute", "insert", "x", gcp_error(409, "exists")) == expected.msg


def test_gcp_operation_error_names_what_still_uses_it():
    op = {"name": "op-2", "error": {"errors": [{"code": "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"}]}}
    err = gcp.operation_error("compute", op, "network n", "in use by x")
    assert isinstance(err, errors.OperationFailed) and err.operation is op
    assert "Fix: remove what still uses it" in err.msg and err.details == {"operation": op}


def test_cloudflare_fixes():
    def cf_error(status, code=None):
        return types.SimpleNamespace(status_code=status, body={"errors": [{"code": code, "message": "nope"}]})

    assert "add 'Zone > DNS > Edit' to the token" in cloudflare.api_error(cf_error(403), "create", "record x", "dns").msg
    assert "set api_token" in cloudflare.api_error(cf_error(400, 6003), "create", "record x").msg
    assert "set api_token" in cloudflare.api_error(cf_error(401), "create", "record x").msg
    assert "cloudflarestatus.com" in cloudflare.api_error(cf_error(502), "create", "record x").msg


def test_tfc_fixes():
    err = tfc.api_error("create workspace", "w1", 422, "Name has already been taken.", expected=True)
    assert isinstance(err, errors.ExpectedError) and err.detail == "Name has already been taken"
    assert err.msg == "HCP Terraform: create workspace w1 failed: HTTP 422: Name has already been taken. Fix: fix " \
                      "the module arguments the message names."
    assert "HTTP (no response)" in tfc.api_error("read run", "run-1", None, "").msg


def test_prefect_fixes():
    refused = prefect.api_error(401, "GET", "/flows/", "", "http://127.0.0.1:4200/api")
    assert refused.msg.startswith("GET http://127.0.0.1:4200/api/flows/ was refused (401)")
    assert "Fix: set auth_string" in refused.msg and refused.status == 401
    down = prefect.api_error(None, "GET", "/flows/", "connection refused", "http://127.0.0.1:4200/api")
    assert "cannot reach the Prefect API (connection refused)" in down.msg and "check api_url" in down.msg


# ---- the waiter ---------------------------------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_waiter_timeout_names_what_and_the_option_to_raise():
    clock = Clock()
    waiter = common.Waiter(3, "wait_timeout", first=1.0, maximum=1.0, clock=clock, sleep=clock.sleep)
    with pytest.raises(errors.WaitTimeout) as info:
        waiter.until(lambda: "RUNNING", lambda v: v == "DONE", lambda v: "operation op-1 (still %s)" % v,
                     hint="a re-run picks it up.")
    assert info.value.msg == "timed out after 3s waiting for operation op-1 (still RUNNING). Fix: raise " \
                             "wait_timeout; a re-run picks it up."
    assert info.value.last == "RUNNING" and isinstance(info.value, errors.SkyforgeError)


def test_waiter_settle_returns_the_last_read():
    clock = Clock()
    reads = iter(["PROVISIONING", "PROVISIONING", "RUNNING"])
    waiter = common.Waiter(60, clock=clock, sleep=clock.sleep)
    assert waiter.settle(lambda: next(reads), lambda v: v == "PROVISIONING") == "RUNNING"
    expired = common.Waiter(0, clock=clock, sleep=clock.sleep)
    assert expired.settle(lambda: "PROVISIONING", lambda v: v == "PROVISIONING") == "PROVISIONING"


def test_gcp_failed_operation_is_sent_again_then_fails_once_with_it():
    clock = Clock()
    module = object.__new__(gcp.GcpModule)
    module.params = {"project": "p1"}
    module.waiter = common.Waiter(10, "wait_timeout", first=0.0, maximum=0.0, clock=clock, sleep=clock.sleep)
    module.operations_waited = 0
    failed = {"name": "op-1", "done": True, "error": {"message": "backend error"}}
    module.gcp = types.SimpleNamespace(operation_request=lambda api, op: None,
                                       execute=lambda request, *args, **kwargs: failed)
    sent = []

    def action():
        sent.append(1)
        return module.wait("serviceusage", {"name": "op-1", "done": False}, resource="service x")

    with pytest.raises(errors.OperationFailed) as info:
        module.attempt(action, lambda: True)
    assert len(sent) == gcp.OPERATION_ATTEMPTS
    assert info.value.msg == "GCP serviceusage.googleapis.com: operation op-1 on service x failed: backend error. " \
                             "Fix: %s. (after 3 attempts)" % errors.FIXES["gcp"]["OPERATION"]
    assert info.value.details == {"operation": failed}
    del sent[:]
    assert module.attempt(action, lambda: False) is None and len(sent) == 1, "took effect after all: no error"


def test_gcp_operation_timeout_carries_the_operation():
    clock = Clock()
    module = object.__new__(gcp.GcpModule)
    module.waiter = common.Waiter(2, "wait_timeout", first=1.0, maximum=1.0, clock=clock, sleep=clock.sleep)
    running = {"name": "op-3", "done": False}
    module.gcp = types.SimpleNamespace(operation_request=lambda api, op: None,
                                       execute=lambda request, *args, **kwargs: running)
    with pytest.raises(errors.WaitTimeout) as info:
        module.wait("serviceusage", running, resource="service y")
    assert info.value.msg.startswith("GCP serviceusage.googleapis.com: timed out after 2s waiting for operation op-3 "
                                     "on service y. Fix: raise wait_timeout")
    assert info.value.details == {"operation": running}
