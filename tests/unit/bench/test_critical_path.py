"""Smoke test of the benchmark's critical-path arithmetic (the benchmarks themselves are not run in CI)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench"))

import critical_path as cp  # noqa: E402


def op(kind, start, end, resource=""):
    return {"kind": kind, "start": start, "end": end, "resource": resource}


def test_longest_dependent_chain_wins_over_parallel_work():
    timeline = [
        op("compute.network", 0, 10),
        op("compute.subnetwork", 10, 15),
        op("compute.address", 10, 11),
        op("servicenetworking.connection", 11, 40),
        op("sqladmin.instance.create", 40, 100),
        op("container.cluster.create", 15, 90),
    ]
    seconds, chain = cp.critical_path(timeline)
    assert seconds == 10 + 1 + 29 + 60
    kinds = [o["kind"] for o in chain]
    assert kinds == ["compute.network", "compute.address", "servicenetworking.connection", "sqladmin.instance.create"]


def test_unrelated_operations_do_not_chain():
    timeline = [op("compute.firewall", 0, 5), op("sqladmin.database", 5, 6)]
    seconds, chain = cp.critical_path(timeline)
    assert seconds == 5 and len(chain) == 1


def test_failed_operations_are_ignored():
    timeline = [op("compute.network", 0, 10), dict(op("compute.subnetwork", 10, 50), error="boom")]
    assert cp.critical_path(timeline)[0] == 10


def test_overhead_splits_the_wall_time_off_the_path():
    chain = [op("compute.network", 5, 10), op("compute.subnetwork", 12, 15), op("compute.address", 15, 16)]
    spent = cp.overhead(chain, started=0, ended=30)
    assert spent["before"] == 5 and spent["after"] == 14
    assert spent["gaps"] == [("compute.network", "compute.subnetwork", 2), ("compute.subnetwork", "compute.address", 0)]
    # wall = before + gaps + operations + after
    assert spent["before"] + sum(gap[2] for gap in spent["gaps"]) + 5 + 3 + 1 + spent["after"] == 30
