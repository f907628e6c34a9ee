"""common.wait_for: the one wait loop, on a fake clock (no real sleeping)."""

import pytest

from ansible_collections.skyforge.prefect_platform.plugins.module_utils import common


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def reader(values, clock=None, cost=0.0):
    """read() returning the values in turn; each read takes `cost` seconds of the fake clock."""
    it = iter(values)
    calls = []

    def read():
        calls.append(1)
        if clock is not None:
            clock.now += cost
        return next(it)

    read.calls = calls
    return read


def test_done_at_the_first_read_never_sleeps():
    clock = FakeClock()
    read = reader(["DONE"])
    assert common.wait_for(read, lambda v: v == "DONE", 10, "x", clock=clock, sleep=clock.sleep) == "DONE"
    assert len(read.calls) == 1 and clock.sleeps == []


def test_a_value_already_read_is_not_read_again():
    clock = FakeClock()
    read = reader([])
    assert common.wait_for(read, lambda v: v == "DONE", 10, "x", initial="DONE", clock=clock, sleep=clock.sleep) \
        == "DONE"
    assert read.calls == [] and clock.sleeps == []
    read = reader(["RUNNING", "DONE"])
    assert common.wait_for(read, lambda v: v == "DONE", 10, "x", initial="PENDING", clock=clock,
                           sleep=clock.sleep) == "DONE"
    assert len(read.calls) == 2 and len(clock.sleeps) == 2


def test_done_after_n_polls_returns_the_last_read_with_growing_intervals():
    clock = FakeClock()
    values = ["PENDING"] * 30 + ["DONE"]
    read = reader(values)
    out = common.wait_for(read, lambda v: v == "DONE", 600, "x", first=0.5, maximum=2.0, clock=clock,
                          sleep=clock.sleep)
    assert out == "DONE"
    assert len(read.calls) == 31 and len(clock.sleeps) == 30
    # poll_after: `first` while the wait is young, a tenth of the time waited later, never above `maximum`.
    assert clock.sleeps[0] == 0.5
    assert clock.sleeps == sorted(clock.sleeps) and max(clock.sleeps) == 2.0
    for sleep, elapsed in zip(clock.sleeps, [sum(clock.sleeps[:i]) for i in range(len(clock.sleeps))]):
        assert sleep == common.poll_after(elapsed, 0.5, 2.0)


def test_never_sleeps_past_the_deadline():
    clock = FakeClock()
    read = reader(["PENDING"] * 100)
    with pytest.raises(common.WaitTimeout):
        common.wait_for(read, lambda v: False, 3, "x", first=2.0, maximum=2.0, clock=clock, sleep=clock.sleep)
    assert clock.sleeps[:2] == [2.0, 1.0], "the last sleep is cut to what is left of the timeout"
    assert clock.now == 3.0


def test_timeout_names_what_was_waited_for_and_the_option_to_raise():
    clock = FakeClock()
    read = reader(["PENDING", "RUNNING", "RUNNING", "RUNNING"], clock, cost=1.0)
    with pytest.raises(common.WaitTimeout) as info:
        common.wait_for(read, lambda v: v == "DONE", 2, lambda v: "operation op-1 (still %s)" % v,
                        option="wait_timeout", hint="the operation may still finish.", first=0.5, clock=clock,
                        sleep=clock.sleep)
    exc = info.value
    assert str(exc) == exc.msg == ("timed out after 2s waiting for operation op-1 (still RUNNING). Fix: raise "
                                   "wait_timeout; the operation may still finish.")
    assert exc.last == "RUNNING" and exc.timeout == 2
    with pytest.raises(common.WaitTimeout) as info:
        common.wait_for(reader(["x"] * 5), lambda v: False, 0, "flow run f-1", clock=clock, sleep=clock.sleep)
    assert str(info.value) == "timed out after 0s waiting for flow run f-1. Fix: raise timeout."


def test_no_timeout_waits_as_long_as_it_takes():
    clock = FakeClock()
    read = reader(["PENDING"] * 500 + ["DONE"])
    assert common.wait_for(read, lambda v: v == "DONE", None, "x", clock=clock, sleep=clock.sleep) == "DONE"
    assert clock.now > 1000 and max(clock.sleeps) == 10.0


def test_errors_from_read_or_done_end_the_wait():
    clock = FakeClock()

    def read():
        raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError):
        common.wait_for(read, lambda v: False, 10, "x", clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []
