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


# ---- bench/tfc_graph.py: the component graph's critical path ------------------------------------------------------
def test_run_spans_join_each_runs_queue_plan_and_apply():
    timeline = [op("tfc.queue", 0, 2, "run-a"), op("tfc.plan", 4, 34, "run-a"), op("tfc.apply", 38, 83, "run-a"),
                op("tfc.queue", 1, 3, "run-b"), op("tfc.plan", 5, 35, "run-b"),
                op("compute.network", 0, 25, "projects/p/global/networks/n"), op("tfc.queue", 0, 2, "ws-x")]
    assert cp.run_spans(timeline) == {"run-a": (0, 83), "run-b": (1, 35)}


def test_graph_critical_path_is_the_heaviest_dependency_chain_not_the_longest():
    durations = {"a": 80, "b": 85, "c": 80, "d": 10, "e": 200}
    depends_on = {"c": ["a", "b"], "d": ["c"], "e": []}
    # b -> c -> d (175) weighs less than e alone (200), and b beats a as c's dependency.
    assert cp.graph_critical_path(durations, depends_on) == (200, ["e"])
    durations["e"] = 100
    assert cp.graph_critical_path(durations, depends_on) == (175, ["b", "c", "d"])


def test_the_bench_graph_has_12_components_and_depth_3():
    import tfc_graph

    assert len(tfc_graph.GRAPH) == 12
    seconds, chain = cp.graph_critical_path(dict.fromkeys(tfc_graph.GRAPH, 1.0), tfc_graph.GRAPH)
    assert seconds == 3.0 and len(chain) == 3
    # At the same run duration, parallel converge can reach 3 runs' time; serial takes all 12.
    assert sum(dict.fromkeys(tfc_graph.GRAPH, 1.0).values()) / seconds == 4.0
    names = [c["name"] for c in tfc_graph.components()]
    assert names == list(tfc_graph.GRAPH)
    for comp in tfc_graph.components():
        refs = [v["value_from"] for v in comp["variables"] if "value_from" in v]
        assert refs == (["%s.id" % comp["depends_on"][0]] if comp["depends_on"] else [])


def test_graph_critical_path_refuses_a_cycle():
    import pytest

    with pytest.raises(ValueError, match="cycle"):
        cp.graph_critical_path({"a": 1, "b": 1}, {"a": ["b"], "b": ["a"]})


def test_the_bench_splits_the_wall_around_the_runs():
    import tfc_graph

    spans = {"a": (105.0, 190.0), "b": (106.0, 200.0)}
    assert tfc_graph.split(spans, started=100.0, ended=203.0) == (5.0, 95.0, 3.0)
