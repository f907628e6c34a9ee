"""The no-op bench's per-task breakdown, read from a profile_tasks log."""

import os
import sys

from tests.unit.conftest import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))

import converge  # noqa: E402  pylint: disable=wrong-import-position

LOG = """PLAY [x] ***

TASK [skyforge.prefect_platform.gcp_foundation : The VPC] ***
Tuesday 01 December 2026  03:08:59 +0000 (0:00:00.569)       0:00:01.000 ******
ok: [localhost]

TASK [skyforge.prefect_platform.gcp_foundation : Check it] ***
Tuesday 01 December 2026  03:09:01 +0000 (0:00:02.500)       0:00:03.500 ******
ok: [localhost]

TASK [Summary] ***
Tuesday 01 December 2026  03:09:01 +0000 (0:00:00.200)       0:00:03.700 ******
ok: [localhost]

PLAY RECAP ***
localhost                  : ok=3    changed=0

TASKS RECAP ***
Tuesday 01 December 2026  03:09:02 +0000 (0:01:00.300)       0:01:03.950 ******
"""


def test_each_task_gets_the_duration_printed_after_it():
    assert converge.task_durations(LOG) == [
        ("skyforge.prefect_platform.gcp_foundation : The VPC", 2.5),
        ("skyforge.prefect_platform.gcp_foundation : Check it", 0.2),
        ("Summary", 60.3),
    ]


def test_breakdown_splits_module_tasks_from_controller_side_ones(tmp_path):
    log = tmp_path / "noop.log"
    log.write_text(LOG)
    out = converge.task_breakdown(str(log))
    assert "tasks: 3 in 63.0s; 2 of them >= 1.0s took 62.8s, the 1 shorter ones 0.2s" in out
    assert "gcp_foundation" in out and "2 tasks     2.7s" in out


def test_median_of_odd_and_even_counts():
    assert converge.median([3.0, 1.0, 2.0]) == 2.0
    assert converge.median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_a_baseline_tree_gets_its_own_collection_link_roles_and_config(tmp_path):
    tree = tmp_path / "baseline"
    tree.mkdir()
    env = {"ANSIBLE_COLLECTIONS_PATH": "/repo/.cache/collections:/bundled", "ANSIBLE_ROLES_PATH": "/repo/roles"}
    out = converge.tree_env(env, str(tree))
    link = tree / ".cache" / "collections" / "ansible_collections" / "skyforge" / "prefect_platform"
    assert os.path.realpath(str(link)) == os.path.realpath(str(tree))
    assert out["ANSIBLE_COLLECTIONS_PATH"] == "%s:/bundled" % (tree / ".cache" / "collections")
    assert out["ANSIBLE_ROLES_PATH"] == str(tree / "roles")
    assert out["ANSIBLE_CONFIG"] == str(tree / "ansible.cfg")
    assert env["ANSIBLE_ROLES_PATH"] == "/repo/roles"
    assert converge.tree_env(env, str(tree)) == out
