"""tfc_component_runs' scheduler on wait_for: dependents start when their dependencies finish, failures stop them.

The role tests (tests/unit/roles/test_tfc_roles.py) cover the graph in depth; this is the module-level check that
the wait between runs finishes every component, in order, and hands outputs on.
"""

from tests.unit.plugins.modules.tfc_helpers import GRAPH_TF, unique


def components(module_runner, tfc_args, tmp_path, spec, without_name=()):
    folder = tmp_path / "graph"
    folder.mkdir(exist_ok=True)
    (folder / "main.tf").write_text(GRAPH_TF)
    prefix = unique("cg")
    out = []
    for name, deps, refs in spec:
        ws = "%s-%s" % (prefix, name)
        module_runner("tfc_workspace", dict(tfc_args, name=ws, execution_mode="remote"))
        variables = [{"key": key, "value_from": ref} for key, ref in refs.items()]
        if name not in without_name:
            variables.append({"key": "name", "value": name})
        out.append({"name": name, "workspace": ws, "config_dir": str(folder), "depends_on": list(deps),
                    "variables": variables})
    return out


def test_dependents_wait_for_their_dependencies_and_get_their_outputs(tfc_args, module_runner, tmp_path):
    comps = components(module_runner, tfc_args, tmp_path, [
        ("a", [], {}), ("b", [], {}), ("c", ["a", "b"], {"upstream": "a.id"})])
    done = module_runner("tfc_component_runs", dict(tfc_args, components=comps, parallelism=2, timeout=60))
    assert {n: c["status"] for n, c in done["components"].items()} == dict.fromkeys("abc", "applied")
    assert done["order"][2] == "c" and sorted(done["order"][:2]) == ["a", "b"]
    assert done["outputs"]["c"] == {"id": "c<a<"}


def test_a_failed_run_stops_its_dependents_only(tfc_args, module_runner, tmp_path):
    # "bad" sets no value for the required variable `name`: its plan errors.
    comps = components(module_runner, tfc_args, tmp_path, [
        ("bad", [], {}), ("ok", [], {}), ("after", ["bad"], {})], without_name=("bad",))
    failed = module_runner("tfc_component_runs", dict(tfc_args, components=comps, timeout=60), expect_fail=True)
    status = {n: c["status"] for n, c in failed["components"].items()}
    assert status == {"bad": "failed", "ok": "applied", "after": "not_started"}
    assert "Not started because a dependency failed: after (needs bad)" in failed["msg"]
