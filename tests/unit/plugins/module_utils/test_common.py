"""Backoff, deadlines and diffs shared by every API family."""

from ansible_collections.skyforge.prefect_platform.plugins.module_utils import common


class Flaky:
    def __init__(self, failures, exc):
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return "ok"


def classify(exc):
    return (isinstance(exc, ConnectionError), getattr(exc, "retry_after", None))


def test_retries_then_succeeds_with_growing_jittered_delays():
    sleeps = []
    policy = common.RetryPolicy(retries=5, base_delay=1.0, max_delay=8.0, sleep=sleeps.append, rand=lambda: 1.0)
    assert policy.call(Flaky(4, ConnectionError("reset")), classify) == "ok"
    assert sleeps == [1.0, 2.0, 4.0, 8.0], "full jitter caps grow exponentially up to max_delay"


def test_jitter_spreads_delays():
    values = iter([0.1, 0.9])
    policy = common.RetryPolicy(base_delay=1.0, max_delay=30, sleep=lambda s: None, rand=lambda: next(values))
    assert policy.delay(3) != policy.delay(3)


def test_retry_after_is_honoured():
    sleeps = []
    exc = ConnectionError("throttled")
    exc.retry_after = "7"
    policy = common.RetryPolicy(retries=2, base_delay=0.5, sleep=sleeps.append, rand=lambda: 0.0)
    policy.call(Flaky(1, exc), classify)
    assert sleeps == [7.0]


def test_gives_up_after_retries_and_does_not_retry_client_errors():
    policy = common.RetryPolicy(retries=2, sleep=lambda s: None)
    flaky = Flaky(10, ConnectionError("down"))
    try:
        policy.call(flaky, classify)
    except ConnectionError:
        pass
    else:
        raise AssertionError("expected the last error to surface")
    assert flaky.calls == 3
    bad = Flaky(10, ValueError("400"))
    try:
        policy.call(bad, classify)
    except ValueError:
        pass
    assert bad.calls == 1


def test_differs_compares_only_what_was_asked():
    current = {"name": "n", "mtu": 1460, "id": "123", "routingConfig": {"routingMode": "REGIONAL"}}
    assert common.differs({"name": "n", "mtu": 1460}, current) == []
    assert common.differs({"mtu": 1500}, current) == ["mtu"]
    assert common.differs({"routingConfig": {"routingMode": "GLOBAL"}}, current) == ["routingConfig.routingMode"]


def test_differs_lists_ordered_and_unordered():
    cur = {"ranges": ["a", "b"]}
    assert common.differs({"ranges": ["b", "a"]}, cur) == ["ranges[0]", "ranges[1]"]
    assert common.differs({"ranges": ["b", "a"]}, cur, unordered=("ranges",)) == []
    assert common.differs({"ranges": ["a"]}, cur, unordered=("ranges",)) == ["ranges"]


def test_redact_hides_secrets_at_any_depth():
    value = {"user": "u", "password": "hunter2", "nested": [{"client_secret": "s"}]}
    out = common.redact(value, ("password", "client_secret"))
    assert "hunter2" not in repr(out) and "'s'" not in repr(out)
    assert out["user"] == "u"
    diff = common.diff_dict(None, value, ("password", "client_secret"))
    assert diff["before"] == {} and "hunter2" not in repr(diff)


def test_deadline():
    now = [0.0]
    d = common.Deadline(10, clock=lambda: now[0])
    assert not d.expired and d.remaining() == 10
    now[0] = 10.5
    assert d.expired and d.remaining() == 0


def test_a_wait_notices_an_operation_at_most_a_tenth_of_its_time_late():
    # Polls at 0.5 s while the wait is young, then every ~10% of the time waited, never more than 10 s apart.
    assert common.poll_after(0.0) == 0.5
    assert common.poll_after(30.0) == 3.0
    assert common.poll_after(600.0) == 10.0
    # Simulate waits on operations of several lengths: the end is seen at most max(first, 10%, capped) late.
    for duration in (4.0, 25.0, 60.0, 600.0):
        elapsed = 0.0
        while elapsed < duration:
            elapsed += common.poll_after(elapsed)
        assert elapsed - duration <= max(0.5, min(10.0, 0.1 * duration)) + 1e-9, duration


def test_a_module_ends_when_the_run_that_started_it_is_killed(tmp_path):
    """ansible-playbook -> shell -> module: SIGKILL the top and the module (a long wait) must not live on."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pidfile = tmp_path / "module.pid"
    module = ("import os, sys, time; sys.path.insert(0, %r); "
              "from ansible_collections.skyforge.prefect_platform.plugins.module_utils.process import die_with_parent; "
              "die_with_parent(interval=0.2); open(%r, 'w').write(str(os.getpid())); time.sleep(60)") % (
                  common.__file__.split("/ansible_collections/", maxsplit=1)[0], str(pidfile))
    # The stand-in for ansible-playbook starts a shell that starts the module, as the local connection does.
    top = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.call(['/bin/sh', '-c', "
                            "sys.argv[1] + ' && sleep 0'])", "%s -c %s" % (sys.executable, _sh_quote(module))])
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pidfile.exists(), "the module never started"
    time.sleep(0.3)
    pid = int(pidfile.read_text())
    os.kill(top.pid, signal.SIGKILL)
    top.wait()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _alive(pid)
    if alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "the module outlived the killed run"


def _sh_quote(text):
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _alive(pid):
    import os

    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---- Member: an entry inside a parent, written by read-modify-write of the parent --------------------------------

class Exit(Exception):
    def __init__(self, result):
        super(Exit, self).__init__(result.get("msg", ""))
        self.result = result


class Conflict(Exception):
    """What a stale etag gets back."""


class FakeModule(common.EnsureMixin):
    def __init__(self, check_mode=False, **params):
        self.check_mode = check_mode
        self.params = dict(dict(name="mine", value="v1", state="present"), **params)

    def exit_json(self, **result):
        raise Exit(result)

    def fail_json(self, **result):
        raise Exit(dict(result, failed=True))


class FakeParent:
    """A parent object with an etag: a write based on a stale read is refused."""

    def __init__(self, entries=None):
        self.etag = 1
        self.entries = dict(entries or {})
        self.reads = self.writes = self.refused = 0
        self.before_write = []  # other writers, each run just before one of our writes

    def read(self):
        self.reads += 1
        return {"etag": self.etag, "entries": dict(self.entries)}

    def write(self, parent):
        if self.before_write:
            self.before_write.pop(0)(self)
        self.writes += 1
        if parent["etag"] != self.etag:
            self.refused += 1
            raise Conflict("etag %s is stale" % parent["etag"])
        self.entries = dict(parent["entries"])
        self.etag += 1
        return self.read()


class Entry(common.Member):
    kind = "entry"

    def __init__(self, module, store, sleeps):
        super(Entry, self).__init__(module)
        self.store = store
        self.sleeps = sleeps

    def read(self):
        return self.store.read()

    def find(self, parent):
        value = parent["entries"].get(self.name)
        return None if value is None else {"name": self.name, "value": value}

    def desired(self):
        return {"name": self.name, "value": self.params["value"]}

    def write(self, parent, current, target):
        entries = dict(parent["entries"])
        if target is None:
            entries.pop(self.name)
        else:
            entries[self.name] = target["value"]
        return self.store.write(dict(parent, entries=entries))

    def is_conflict(self, exc):
        return isinstance(exc, Conflict)

    def conflict_retry(self):
        return common.RetryPolicy(retries=self.conflict_attempts - 1, base_delay=0.2, sleep=self.sleeps.append)


def run_member(store, check_mode=False, **params):
    sleeps = []
    module = FakeModule(check_mode, **params)
    try:
        module.ensure(Entry(module, store, sleeps))
    except Exit as done:
        return done.result, sleeps
    raise AssertionError("ensure() must end the module")


def test_member_conflict_is_read_again_and_the_other_writers_change_kept():
    store = FakeParent({"theirs": "a"})
    store.before_write.append(lambda s: s.write(dict(s.read(), entries=dict(s.entries, racer="r"))))
    result, sleeps = run_member(store)
    assert result["changed"] is True and result["entry"] == {"name": "mine", "value": "v1"}
    assert store.entries == {"theirs": "a", "racer": "r", "mine": "v1"}, "the other writers' entries survive"
    assert store.refused == 1 and len(sleeps) == 1 and 0 <= sleeps[0] <= 0.2, "one jittered retry after the conflict"
    assert result["diff"] == {"before": {}, "after": {"name": "mine", "value": "v1"}}
    reads, writes = store.reads, store.writes
    again, _sleeps = run_member(store)
    assert again["changed"] is False and store.writes == writes and store.reads == reads + 1, "a no-op only reads"


def test_member_check_mode_writes_nothing_and_predicts_the_real_run():
    store = FakeParent({"mine": "v0"})
    check, _sleeps = run_member(store, check_mode=True, value="v1")
    assert store.writes == 0 and store.entries == {"mine": "v0"}, "check mode writes nothing"
    real, _sleeps = run_member(store, value="v1")
    assert check["changed"] is real["changed"] is True
    assert check["diff"] == real["diff"] == {"before": {"name": "mine", "value": "v0"},
                                             "after": {"name": "mine", "value": "v1"}}
    assert check["entry"] == real["entry"]
    gone_check, _sleeps = run_member(store, check_mode=True, state="absent")
    assert gone_check["changed"] and store.entries == {"mine": "v1"}
    gone, _sleeps = run_member(store, state="absent")
    assert gone["diff"] == gone_check["diff"] and gone["entry"] == {} and store.entries == {}
    assert run_member(store, state="absent")[0]["changed"] is False


def test_member_gives_up_after_bounded_conflicts_with_the_fix():
    store = FakeParent()
    store.before_write.extend([lambda s: setattr(s, "etag", s.etag + 1)] * 10)
    result, sleeps = run_member(store)
    assert result["failed"] and "kept changing under us (5 conflicting writes)" in result["msg"]
    assert "Fix: run again" in result["msg"]
    assert store.writes == 5 and len(sleeps) == 4 and store.entries == {}


def test_a_duplicate_is_adopted_only_when_it_is_ours_and_matches():
    class Duplicate(Exception):
        pass

    module = FakeModule()
    module.is_own_duplicate = lambda exc: isinstance(exc, Duplicate)
    module.duplicate_must_match = True
    existing = {"name": "mine", "value": "v1"}
    assert module.adopt_duplicate(Duplicate(), lambda: existing, lambda cur: cur == existing) is existing
    assert module.adopt_duplicate(Duplicate(), lambda: existing, lambda cur: False) is None, "someone else's"
    assert module.adopt_duplicate(Duplicate(), lambda: None, lambda cur: True) is None
    assert module.adopt_duplicate(ValueError(), lambda: existing, lambda cur: True) is None
