"""Every file a role or playbook names must reach a clean clone. An ignored file works in the tree it was written in
and only fails in CI or for a user who cloned (tasks/kubeconfig.yml once matched `.gitignore`'s `kubeconfig*`)."""

import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.unit.conftest import REPO

# Where the collection, its playbooks and its sandbox live; an ignored file here is a file that never ships.
SHIPPED = ("roles", "playbooks", "plugins", "sandbox", "inventories", "molecule", "meta", "scripts", "docs", "bench",
           "changelogs", ".ci")
IGNORABLE = ("__pycache__", ".pyc")
# Keys whose value names a file of a role or of the repo, resolved the way Ansible resolves it.
ROLE_FILE_KEYS = {"tasks_from": "tasks", "vars_from": "vars", "defaults_from": "defaults"}
TASK_FILE_ACTIONS = ("import_tasks", "include_tasks", "ansible.builtin.import_tasks", "ansible.builtin.include_tasks")
ROLE_ACTIONS = ("import_role", "include_role", "ansible.builtin.import_role", "ansible.builtin.include_role")
PLAYBOOK_ACTIONS = ("import_playbook", "ansible.builtin.import_playbook")
# lookup('ansible.builtin.template', 'values.yaml.j2') and lookup('file', ...) in a role resolve in its folders.
LOOKUP = re.compile(r"lookup\(\s*'(?:ansible\.builtin\.)?(template|file)'\s*,\s*'([^'{}]+)'")
OURS = "skyforge.prefect_platform."
TEMPLATE_ACTIONS = ("template", "ansible.builtin.template")


def git(*args):
    return subprocess.run(["git", "-C", REPO] + list(args), capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def tracked():
    if shutil.which("git") is None or not os.path.isdir(os.path.join(REPO, ".git")) and \
            not os.path.isfile(os.path.join(REPO, ".git")):
        pytest.skip("not a git checkout: which files reach a clone cannot be told")
    return set(git("ls-files").splitlines())


def yaml_files():
    for pattern in ("roles/*/tasks/*.yml", "roles/*/handlers/*.yml", "playbooks/*.yml", "*.yml",
                    "molecule/*/*.yml"):
        for path in sorted(glob.glob(os.path.join(REPO, pattern))):
            yield os.path.relpath(path, REPO)


def tasks_of(node):
    """Every mapping in a play or task list, blocks and plays included."""
    if isinstance(node, list):
        for item in node:
            yield from tasks_of(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from tasks_of(node.get(key))


def static(value):
    return isinstance(value, str) and "{{" not in value and "{%" not in value


def named_files(relpath):
    """(file named, where it was named) for each static file reference in one YAML file."""
    with open(os.path.join(REPO, relpath), encoding="utf-8") as handle:
        text = handle.read()
    data = yaml.safe_load(text)
    here = os.path.dirname(relpath)
    role = relpath.split("/")[1] if relpath.startswith("roles/") else None
    if role:
        for kind, name in LOOKUP.findall(text):
            yield os.path.join("roles", role, "templates" if kind == "template" else "files", name), relpath
    for task in tasks_of(data):
        for action in ROLE_ACTIONS:
            args = task.get(action)
            name = args.get("name") if isinstance(args, dict) else None
            if static(name) and (name.startswith(OURS) or "." not in name):
                for key, folder in ROLE_FILE_KEYS.items():
                    if static(args.get(key)):
                        stem = args[key] if args[key].endswith(".yml") else args[key] + ".yml"
                        yield os.path.join("roles", name[len(OURS):] if name.startswith(OURS) else name, folder,
                                           stem), relpath
        for action in TASK_FILE_ACTIONS:
            args = task.get(action)
            name = args.get("file") if isinstance(args, dict) else args
            if static(name):
                yield os.path.normpath(os.path.join(here, name)), relpath
        for action in PLAYBOOK_ACTIONS:
            if static(task.get(action)):
                yield os.path.normpath(os.path.join(here, task[action])), relpath
        for action in TEMPLATE_ACTIONS:
            args = task.get(action)
            if role and isinstance(args, dict) and static(args.get("src")):
                yield os.path.join("roles", role, "templates", args["src"]), relpath


def test_every_file_a_role_or_playbook_names_is_tracked(tracked):
    references = [ref for path in yaml_files() for ref in named_files(path)]
    # The walk must see the references it exists for, or it checks nothing.
    assert "roles/gke_autopilot/tasks/reach.yml" in {ref[0] for ref in references}, references[:20]
    assert any("/templates/" in ref[0] for ref in references)
    missing = sorted({"%s (named in %s)" % ref for ref in references if ref[0] not in tracked})
    assert not missing, "not in git, so a clean clone fails: %s" % missing


def test_no_shipped_file_is_ignored_by_git(tracked):
    present = []
    for top in SHIPPED:
        for root, dirs, files in os.walk(os.path.join(REPO, top)):
            dirs[:] = [d for d in dirs if d not in IGNORABLE]
            present += [os.path.relpath(os.path.join(root, f), REPO) for f in files if not f.endswith(IGNORABLE)]
    ignored = subprocess.run(["git", "-C", REPO, "check-ignore", "--no-index", "--stdin"], input="\n".join(present),
                             capture_output=True, text=True, check=False).stdout.split()
    assert not ignored, ("these files are matched by .gitignore and never reach a clone; rename them or narrow the "
                         "pattern: %s" % ignored)


def test_the_ignore_rules_still_keep_kubeconfigs_out(tracked):
    probe = ["kubeconfig", "kubeconfig-prod.json", "admin.kubeconfig", "roles/gke_autopilot/tasks/kubeconfig.yml"]
    ignored = subprocess.run(["git", "-C", REPO, "check-ignore", "--no-index", "--stdin"], input="\n".join(probe),
                             capture_output=True, text=True, check=False).stdout.split()
    assert ignored == probe[:3]
