"""EnsureMixin.ensure(), the state machine every module family shares, on a fake Resource and a fake module.

No API and no sandbox: the fake resource keeps its one object in memory and records every call, so each test says
exactly which calls a state, check mode or a diff makes.
"""

import copy

import pytest

from ansible_collections.skyforge.prefect_platform.plugins.module_utils import common


class Exit(Exception):
    def __init__(self, result):
        super(Exit, self).__init__(result)
        self.result = result


class Failed(Exception):
    def __init__(self, result):
        super(Failed, self).__init__(result.get("msg"))
        self.result = result


class FakeModule(common.EnsureMixin):
    """What ensure() uses of AnsibleModule: params, check_mode, exit_json and fail_json."""

    def __init__(self, params, check_mode=False):
        self.params = dict(params)
        self.check_mode = check_mode

    def exit_json(self, **result):
        raise Exit(result)

    def fail_json(self, **result):
        raise Failed(result)


class FakeResource(common.Resource):
    """A bucket-like resource: `size` may change in place, `location` may not, `password` is a secret."""

    kind = "bucket"
    immutable = ("location",)
    secret_keys = ("password",)

    def __init__(self, module, stored=None):
        super(FakeResource, self).__init__(module)
        self.stored = copy.deepcopy(stored)
        self.calls = []

    def get(self):
        self.calls.append("get")
        return copy.deepcopy(self.stored)

    def desired(self):
        fields = ("name", "location", "size", "password")
        return dict((k, self.params[k]) for k in fields if self.params.get(k) is not None)

    def create(self, desired):
        self.calls.append(("create", copy.deepcopy(desired)))
        self.stored = dict(desired, id="b-1")

    def update(self, current, desired, changes):
        self.calls.append(("update", list(changes)))
        self.stored = common.merge(current, desired)

    def delete(self, current):
        self.calls.append(("delete", current["name"]))
        self.stored = None


PARAMS = {"name": "flows", "location": "EU", "size": 10, "password": "s3cret-value", "state": "present"}
STORED = {"name": "flows", "location": "EU", "size": 10, "password": "s3cret-value", "id": "b-1"}


def ensure(stored, check_mode=False, **params):
    module = FakeModule(dict(PARAMS, **params), check_mode=check_mode)
    resource = FakeResource(module, stored)
    with pytest.raises((Exit, Failed)) as caught:
        module.ensure(resource)
    outcome = caught.value
    return outcome.result, resource, isinstance(outcome, Failed)


def writes(resource):
    return [c for c in resource.calls if c != "get"]


def test_absent_resource_is_created():
    result, resource, failed = ensure(None)
    assert not failed and result["changed"] is True
    assert writes(resource) == [("create", {"name": "flows", "location": "EU", "size": 10, "password": "s3cret-value"})]
    assert resource.stored["id"] == "b-1", "what create made is read back"
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["size"] == 10 and result["bucket"]["id"] == "b-1"


def test_present_and_same_changes_nothing():
    result, resource, failed = ensure(STORED)
    assert not failed and result["changed"] is False
    assert writes(resource) == [], "nothing is written when nothing differs"
    assert "changes" not in result
    assert result["diff"]["before"] == result["diff"]["after"]


def test_present_and_different_is_updated_with_a_diff():
    result, resource, failed = ensure(STORED, size=20)
    assert not failed and result["changed"] is True
    assert result["changes"] == ["size"]
    assert writes(resource) == [("update", ["size"])]
    assert result["diff"]["before"]["size"] == 10 and result["diff"]["after"]["size"] == 20
    assert resource.stored["size"] == 20 and result["bucket"]["size"] == 20, "the result is the resource read back"


def test_an_immutable_field_fails_clearly_and_writes_nothing():
    result, resource, failed = ensure(STORED, location="US", size=20)
    assert failed
    msg = result["msg"]
    assert msg.startswith("bucket flows: location cannot be changed in place")
    assert '"location": "EU"' in msg, "the message shows the current value"
    assert "state=absent" in msg and "Fix:" in msg
    assert "\n" not in msg, "one line"
    assert writes(resource) == [], "neither the mutable nor the immutable field is changed"


def test_state_absent_deletes_then_is_a_no_op():
    result, resource, failed = ensure(STORED, state="absent")
    assert not failed and result["changed"] is True
    assert writes(resource) == [("delete", "flows")] and resource.stored is None
    assert result["diff"]["before"]["name"] == "flows" and result["diff"]["after"] == {}
    assert result["bucket"] == {}

    result, resource, failed = ensure(None, state="absent")
    assert not failed and result["changed"] is False
    assert writes(resource) == [], "deleting what is not there calls nothing"
    assert result["diff"] == {"before": {}, "after": {}}


@pytest.mark.parametrize("stored,params,changes", [
    (None, {}, None),
    (STORED, {"size": 20}, ["size"]),
    (STORED, {"state": "absent"}, None),
])
def test_check_mode_predicts_without_writing(stored, params, changes):
    real, _resource, _failed = ensure(stored, **params)
    check, resource, failed = ensure(stored, check_mode=True, **params)
    assert not failed and writes(resource) == [], "check mode calls no create, update or delete"
    assert resource.stored == stored
    assert check["changed"] is True and check.get("changes") == changes
    assert check["diff"]["before"] == real["diff"]["before"]
    expected_after = dict(real["diff"]["after"])
    if stored is None:
        del expected_after["id"]  # the server assigns it on create: no prediction can know it
    assert check["diff"]["after"] == expected_after, "the prediction is what the real run does"


def test_check_mode_on_a_matching_resource_reports_no_change():
    result, resource, failed = ensure(STORED, check_mode=True)
    assert not failed and result["changed"] is False and writes(resource) == []


@pytest.mark.parametrize("stored,params,check_mode", [
    (None, {}, False), (None, {}, True), (STORED, {"size": 20}, False), (STORED, {"size": 20}, True),
    (STORED, {}, False), (STORED, {"state": "absent"}, False),
])
def test_secrets_are_redacted_in_the_diff_and_the_result(stored, params, check_mode):
    result, _resource, failed = ensure(stored, check_mode=check_mode, **params)
    assert not failed
    assert "s3cret-value" not in repr(result), "the secret is in no diff and no returned resource"
    for side in ("before", "after"):
        if result["diff"][side]:
            assert result["diff"][side]["password"] == common.REDACTED
    if result["bucket"]:
        assert result["bucket"]["password"] == common.REDACTED


def test_a_changed_secret_is_updated_but_never_shown():
    result, resource, failed = ensure(STORED, password="n3w-value")
    assert not failed and result["changed"] is True and result["changes"] == ["password"]
    assert writes(resource) == [("update", ["password"])]
    assert "n3w-value" not in repr(result) and "s3cret-value" not in repr(result)


def test_extra_results_may_depend_on_the_resource():
    module = FakeModule(PARAMS)
    resource = FakeResource(module, STORED)
    with pytest.raises(Exit) as caught:
        module.ensure(resource, extra=lambda after: {"bucket_id": after["id"]})
    assert caught.value.result["bucket_id"] == "b-1"
