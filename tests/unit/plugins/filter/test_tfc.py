"""The component graph's one cycle search, and the run specs that let tfc_component_runs create the workspaces."""

import os

from ansible_collections.skyforge.prefect_platform.plugins.filter import tfc
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.dependency_graph import dependency_cycles

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
COMPONENTS = os.path.join(REPO, "roles", "tfc_workspace_runs", "files", "components")


def test_each_cycle_is_found_once_and_unknown_or_self_dependencies_are_left_to_the_caller():
    graph = {"a": ["b"], "b": ["c", "ghost"], "c": ["a", "c"], "d": ["e"], "e": ["d"], "f": []}
    assert dependency_cycles(graph) == [["a", "b", "c", "a"], ["d", "e", "d"]]
    assert dependency_cycles(graph, ["d", "a"]) == [["d", "e", "d"], ["a", "b", "c", "a"]]
    assert dependency_cycles({"a": ["a"], "b": ["a"]}) == []


def test_both_checks_report_a_cycle_from_the_one_search():
    from ansible_collections.skyforge.prefect_platform.plugins.modules.tfc_component_runs import graph_problems

    comps = [{"name": "a", "depends_on": ["b"]}, {"name": "b", "depends_on": ["a"]}]
    assert graph_problems(comps) == ["dependency cycle a -> b -> a"]
    problems = tfc.tfc_component_problems([dict(c, config_dir="gcs_bucket") for c in comps],
                                          components_dir=COMPONENTS)
    assert problems == ["tfc_workspace_runs_components: dependency cycle a -> b -> a; remove one of these "
                        "depends_on entries"]


def test_run_specs_with_managed_workspaces_carry_the_role_settings():
    ordered = tfc.tfc_component_order([
        {"name": "a", "config_dir": "gcs_bucket", "tags": ["x", "skyforge"]},
        {"name": "b", "config_dir": "gcs_bucket", "depends_on": ["a"], "execution_mode": "remote",
         "terraform_version": "~> 1.9", "working_directory": "infra", "auto_apply": True, "description": "B"}],
        components_dir=COMPONENTS, prefix="p-", terraform_version="1.9.8")
    a, b = tfc.tfc_component_run_specs(ordered, manage_workspaces=True, agent_pool="apool-1", tags=["skyforge"])
    assert a["workspace_id"] is None and b["workspace_id"] is None
    assert a["workspace_settings"] == {
        "description": "Component a (skyforge.prefect_platform)", "execution_mode": "agent", "agent_pool": "apool-1",
        "terraform_version": "1.9.8", "working_directory": "", "auto_apply": False, "tags": ["skyforge", "x"]}
    assert b["workspace_settings"] == {
        "description": "B", "execution_mode": "remote", "terraform_version": "~> 1.9", "working_directory": "infra",
        "auto_apply": True, "tags": ["skyforge"]}
    # Without manage_workspaces the specs are as before: the workspaces exist, by ID.
    assert "workspace_settings" not in tfc.tfc_component_run_specs(ordered, {"a": "ws-1"})[0]
