"""What a Galaxy user gets: `ansible-galaxy collection build`, installed offline into an empty collections path,
documented and runnable from there without this repository on any path."""

import json
import os
import subprocess
import sys
import tarfile

import ansible_collections
import pytest

from tests.unit.conftest import REPO

NOT_THE_COLLECTION = (".cache/", ".venv/", ".sandbox/", ".ci/", ".git/", ".pytest_cache/", ".ansible/", "sandbox/",
                      "scripts/", "bench/", "molecule/", "inventories/", "tests/output/", "build/")
# The collections the `ansible` package ships (kubernetes.core, a dependency), never this repo's .cache link.
BUNDLED = next(os.path.dirname(p) for p in ansible_collections.__path__
               if not os.path.realpath(p).startswith(os.path.join(REPO, ".cache")))
BIN = os.path.dirname(sys.executable)
MODULES = sorted(os.path.splitext(n)[0] for n in os.listdir(os.path.join(REPO, "plugins", "modules"))
                 if n.endswith(".py") and n != "__init__.py")


def clean_env(collections_path):
    work = os.path.dirname(collections_path.split(os.pathsep)[0])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ANSIBLE_") and k not in ("PYTHONPATH", "SKYFORGE_ROOT")}
    env.update(ANSIBLE_COLLECTIONS_PATH=collections_path, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(work, "ansible-tmp"),
               ANSIBLE_HOME=os.path.join(work, "ansible-home"))
    return env


def run(cmd, cwd, env, **kw):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False, **kw)
    assert proc.returncode == 0, "%s failed (rc=%d):\n%s\n%s" % (" ".join(cmd), proc.returncode,
                                                                 proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(tarball, collections path) after build and an offline install into an empty path."""
    work = tmp_path_factory.mktemp("galaxy")
    env = clean_env(str(work / "collections"))
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(work / "dist"), REPO],
        cwd=str(work), env=env)
    (tarball,) = list((work / "dist").iterdir())
    os.makedirs(str(work / "collections"))
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", str(tarball),
         "-p", str(work / "collections")], cwd=str(work), env=clean_env(str(work / "collections") + os.pathsep + BUNDLED))
    return tarball, str(work / "collections")


def test_tarball_holds_only_the_collection_and_no_link_leaves_it(installed):
    tarball = installed[0]
    with tarfile.open(str(tarball)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "plugins/modules/gcp_network.py" in members and "meta/runtime.yml" in members
    stray = sorted(n for n in members if (n + "/").startswith(NOT_THE_COLLECTION) or "__pycache__" in n)
    assert stray == [], "galaxy.yml build_ignore should keep these out: %s" % stray[:10]
    for name, member in members.items():
        if member.issym():
            target = os.path.normpath(os.path.join(os.path.dirname(name), member.linkname))
            assert not target.startswith("..") and target != ".", "%s -> %s leaves or loops" % (name, member.linkname)
            assert target in members, "%s -> %s dangles in the tarball" % (name, member.linkname)


def test_installed_tree_has_no_link_loop(installed):
    path = installed[1]
    root = os.path.realpath(os.path.join(path, "ansible_collections", "skyforge", "prefect_platform"))
    assert os.path.isfile(os.path.join(root, "MANIFEST.json"))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                real = os.path.realpath(full)
                assert real.startswith(root + os.sep), "%s leaves the install (-> %s)" % (full, real)
                assert not root.startswith(real + os.sep) and real != root, "%s loops to its ancestor" % full


def test_every_module_documents_itself_from_the_install(installed):
    path = installed[1]
    names = ["skyforge.prefect_platform.%s" % m for m in MODULES]
    out = run([os.path.join(BIN, "ansible-doc"), "-t", "module", "--json"] + names, cwd=path,
              env=clean_env(path + os.pathsep + BUNDLED)).stdout
    docs = json.loads(out)
    assert sorted(docs) == sorted(names)
    for name, doc in docs.items():
        assert doc["doc"]["short_description"], name
        assert doc["doc"]["collection"] == "skyforge.prefect_platform"
        assert doc["doc"]["filename"].startswith(path), "%s documented from %s" % (name, doc["doc"]["filename"])


def test_a_module_runs_from_the_install(installed, cf_args):
    path = installed[1]
    args = json.dumps({"base_url": cf_args["base_url"]})
    proc = run([os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                "-e", "ansible_python_interpreter=%s" % sys.executable,
                "-m", "skyforge.prefect_platform.cloudflare_ip_ranges_info", "-a", args],
               cwd=path, env=clean_env(path + os.pathsep + BUNDLED))
    assert "SUCCESS" in proc.stdout and "ipv4_cidrs" in proc.stdout, proc.stdout
    assert "[WARNING]" not in proc.stderr, proc.stderr
