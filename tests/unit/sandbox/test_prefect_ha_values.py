"""The prefect_server role's HA profile through real Helm: what the chart renders from the role's values.

The role's values template (roles/prefect_server/templates/values.yaml.j2) with prefect_server_ha on is installed
with the sandbox's helm (real Helm rendering, the chart's schema and hooks) into a sandbox cluster; the test reads
the Deployments, the migrations hook and their env back, and checks the role's PodDisruptionBudget selects the API
pods only. No pod of the release runs: the Secrets they name are left out, so each waits in CreateContainerConfigError
and nothing dials the Redis address. That Prefect really runs this way is tests/unit/sandbox/test_prefect_ha.py.
"""

import json
import os
import subprocess

import jinja2
import pytest
import yaml

from tests.unit.conftest import REPO, specs_path
from tests.unit.sandbox.kube_helpers import kube_cluster

HELM = os.path.join(REPO, "sandbox", "helm", "bin", "helm")
REPO_URL = "--repo=https://prefecthq.github.io/prefect-helm"
HA_VARS = {
    "prefect_server_auth_secret": "prefect-basic-auth", "prefect_server_hostname": "prefect.example.com",
    "prefect_server_resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
    "prefect_server_db_secret": "prefect-server-database", "prefect_server_ingress_ip_name": "prefect-ingress-ip",
    "prefect_server_origin_tls": "self_signed", "prefect_server_origin_tls_secret": "prefect-origin-tls",
    "prefect_server_backend_config": "prefect-server-backend",
    "prefect_server_ha_enabled": True, "prefect_server_image_tag": "3.8.8-python3.11", "prefect_server_replicas": 2,
    "prefect_server_services_replicas": 1,
    "prefect_server_redis_package": "prefect-redis==0.3.0", "prefect_server_redis_secret": "prefect-server-redis",
    "prefect_server_redis_ca_path": "/etc/prefect-redis", "prefect_server_redis_host": "10.100.0.3",
    "prefect_server_redis_port": 6378, "prefect_server_db_pool_size": 5, "prefect_server_db_max_overflow": 10,
}


def role_file(*parts):
    return os.path.join(REPO, "roles", "prefect_server", *parts)


def render_values(variables):
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps
    with open(role_file("templates", "values.yaml.j2")) as fh:
        return yaml.safe_load(env.from_string(fh.read()).render(**variables))


def role_pdb(release, namespace):
    """The role's PodDisruptionBudget (vars/main.yml prefect_server_pdb_object), its templates filled in."""
    with open(role_file("vars", "main.yml")) as fh:
        role_vars = yaml.safe_load(fh)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    context = {"prefect_server_pdb": "prefect-server", "prefect_server_namespace": namespace,
               "prefect_server_release": release,
               "prefect_server_secret_label": role_vars["prefect_server_secret_label"]}

    def fill(value):
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, str) and "{{" in value:
            out = env.from_string(value).render(**context)
            return yaml.safe_load(out) if out.startswith("{") else out
        return value
    return fill(role_vars["prefect_server_pdb_object"])


@pytest.fixture(scope="module")
def cluster(sandbox, tmp_path_factory):
    yield from kube_cluster(sandbox, tmp_path_factory, "ha", "172.16.9.3")


def helm(cluster, *args, namespace):
    env = dict(os.environ, KUBECONFIG=cluster["kubeconfig"], HELM_NAMESPACE=namespace,
               SKYFORGE_SPECS_DIR=os.path.dirname(specs_path("prefect-helm")))
    return subprocess.run([HELM] + list(args), capture_output=True, text=True, env=env, timeout=180, check=False)


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_ha_profile_renders_replicas_separate_services_redis_with_tls_and_auth_and_the_migrations_job(
        cluster, tmp_path):
    from kubernetes import client, config

    values = render_values(HA_VARS)
    # The Job migrates and registers the block types once; the replicas do neither on start.
    assert values["migrations"]["command"].startswith("prefect server database upgrade -y\n")
    assert "run_block_auto_registration" in values["migrations"]["command"]
    # Only for this test: the hook Job runs `true` (Helm waits for it) and needs no Redis Secret, so no pod of the
    # release can start and dial the Redis address. The real migration is test_prefect_ha.py's.
    installed = json.loads(json.dumps(values))
    installed["migrations"]["command"] = "true"
    installed["migrations"]["env"].append({"name": "PREFECT_REDIS_MESSAGING_URL", "value": "unused"})
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(installed))
    api_client = config.new_client_from_config(cluster["kubeconfig"])
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": "ha"}})
    core.create_namespaced_secret("ha", {"metadata": {"name": "prefect-server-database"},
                                         "stringData": {"connection-string": "postgresql+asyncpg://u:p@10.1.0.9/db"}})
    res = helm(cluster, "upgrade", "-i", REPO_URL, "--version=2026.8.18172642", "-f=%s" % path, "prefect-server",
               "prefect-server", namespace="ha")
    assert res.returncode == 0, res.stderr
    api = cluster["api"]
    deps = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in api.find("deployments", "ha", {"app.kubernetes.io/instance": "prefect-server"})}
    assert set(deps) == {"server", "background-services"}
    server, services = deps["server"], deps["background-services"]
    assert server["spec"]["replicas"] == 2 and services["spec"]["replicas"] == 1
    api_c = server["spec"]["template"]["spec"]["containers"][0]
    svc_c = services["spec"]["template"]["spec"]["containers"][0]
    assert api_c["image"] == svc_c["image"] == "prefecthq/prefect:3.8.8-python3.11"
    assert api_c["args"][:4] == ["prefect", "server", "start", "--no-services"]
    assert svc_c["args"] == ["prefect", "server", "services", "start"]
    for container in (api_c, svc_c):
        env = env_of(container)
        assert env["PREFECT_SERVER_DATABASE_MIGRATE_ON_START"] == "false"
        assert env["PREFECT_SERVER_REGISTER_BLOCKS_ON_START"] == "false"
        assert env["PREFECT_MESSAGING_BROKER"] == env["PREFECT_MESSAGING_CACHE"] == "prefect_redis.messaging"
        assert env["PREFECT_SERVER_EVENTS_CAUSAL_ORDERING"] == "prefect_redis.ordering"
        assert env["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"] == "prefect_redis.lease_storage"
        assert env["PREFECT_REDIS_MESSAGING_HOST"] == "10.100.0.3" and env["PREFECT_REDIS_MESSAGING_PORT"] == "6378"
        assert env["PREFECT_REDIS_MESSAGING_SSL"] == "true"
        # AUTH, the URLs (which name the CA file) and the docket URL come from the Secret, never from the values.
        assert env["PREFECT_REDIS_MESSAGING_PASSWORD"] == {"secretKeyRef": {"name": "prefect-server-redis",
                                                                            "key": "redis-password"}}
        assert env["PREFECT_REDIS_MESSAGING_URL"] == {"secretKeyRef": {"name": "prefect-server-redis",
                                                                       "key": "messaging-url"}}
        assert env["PREFECT_SERVER_DOCKET_URL"] == {"secretKeyRef": {"name": "prefect-server-redis",
                                                                     "key": "docket-url"}}
        assert env["EXTRA_PIP_PACKAGES"] == "prefect-redis==0.3.0"
        assert env["PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE"] == "5"
        assert env["PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW"] == "10"
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["redis-ca"]["mountPath"] == "/etc/prefect-redis" and mounts["redis-ca"]["readOnly"] is True
    for dep in (server, services):
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        assert volumes["redis-ca"]["secret"] == {"secretName": "prefect-server-redis",
                                                 "items": [{"key": "ca.pem", "path": "ca.pem"}]}
    # The migrations Job is the chart's hook (post-install, pre-upgrade), with the database from the same Secret.
    hooks = [h for h in yaml.safe_load_all(helm(cluster, "get", "hooks", "prefect-server", namespace="ha").stdout) if h]
    (job,) = [h for h in hooks if h["kind"] == "Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh", "/bin/bash", "-c"]
    job_env = env_of(job["spec"]["template"]["spec"]["containers"][0])
    assert job_env["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"] == "prefect_redis.lease_storage"
    assert job_env["EXTRA_PIP_PACKAGES"] == "prefect-redis==0.3.0"
    assert job_env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == {"secretKeyRef": {
        "name": "prefect-server-database", "key": "connection-string"}}
    # The release's pods wait for their Secrets; none started a process.
    pods = api.find("pods", "ha", {"app.kubernetes.io/instance": "prefect-server"})
    running = [p["metadata"]["name"] for p in pods if p["metadata"]["labels"].get("app.kubernetes.io/component")
               in ("server", "background-services") and (p.get("status") or {}).get("phase") == "Running"]
    assert running == []
    # The role's PodDisruptionBudget selects exactly the API pods' template, not the background services'.
    pdb = role_pdb("prefect-server", "ha")
    client.PolicyV1Api(api_client).create_namespaced_pod_disruption_budget("ha", pdb)
    stored = api.find("poddisruptionbudgets", "ha")[0]
    assert stored["spec"]["minAvailable"] == 1
    selector = stored["spec"]["selector"]["matchLabels"]
    api_labels = server["spec"]["template"]["metadata"]["labels"]
    svc_labels = services["spec"]["template"]["metadata"]["labels"]
    assert all(api_labels.get(k) == v for k, v in selector.items())
    assert not all(svc_labels.get(k) == v for k, v in selector.items())
    assert server["spec"]["selector"]["matchLabels"].items() <= selector.items()
    assert helm(cluster, "uninstall", "prefect-server", namespace="ha").returncode == 0
    assert api.find("deployments", "ha") == []


def test_the_site_profile_is_unchanged_without_ha():
    values = render_values({k: v for k, v in HA_VARS.items() if k != "prefect_server_ha_enabled"})
    assert "backgroundServices" not in values and "global" not in values and "migrations" not in values
    assert "replicaCount" not in values["server"] and "extraVolumes" not in values["server"]


VALIDATE_PLAY = """- hosts: localhost
  gather_facts: false
  tasks:
    - name: The role's checks, which run before any API call
      ansible.builtin.include_role:
        name: skyforge.prefect_platform.prefect_server
        tasks_from: validate
"""


@pytest.mark.parametrize("extra, expected", [
    # The prod inventory's choice: 5 processes (2 API + 1 surging, 1 services + 1 surging) x 15 + 10 <= 400.
    ({"prefect_server_ha": True, "cloudsql_tier": "db-custom-2-7680"}, None),
    ({"prefect_server_ha": True, "prefect_server_replicas": 1}, "prefect_server_replicas=1 must be 2 or more"),
    ({"prefect_server_ha": True, "prefect_server_replicas": 6, "cloudsql_tier": "db-custom-1-3840"},
     "The server needs up to 160 database connections (10 processes x (prefect_server_db_pool_size 5 + "
     "prefect_server_db_max_overflow 10) + prefect_server_db_reserved_connections 10), more than the 100 that "
     "Cloud SQL tier db-custom-1-3840 allows"),
    ({"prefect_server_ha": True, "prefect_server_replicas": 6, "cloudsql_tier": "db-custom-1-3840",
      "cloudsql_flags": {"max_connections": "200"}}, None),
])
def test_the_role_refuses_one_replica_and_pools_that_overrun_the_cloud_sql_tier(tmp_path, extra, expected):
    from tests.unit.conftest import COLLECTIONS

    (tmp_path / "play.yml").write_text(VALIDATE_PLAY)
    (tmp_path / "vars.json").write_text(json.dumps(dict(extra, prefect_server_hostname="prefect.example.com")))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS + os.pathsep + os.environ.get(
        "ANSIBLE_COLLECTIONS_PATH", ""), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", "@%s" % (tmp_path / "vars.json"),
           str(tmp_path / "play.yml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    out = " ".join((proc.stdout + proc.stderr).split())
    if expected is None:
        assert proc.returncode == 0, out[-2000:]
    else:
        assert proc.returncode != 0 and expected in out, out[-2000:]


@pytest.mark.parametrize("ha", ["true", "false"])
def test_real_ansible_renders_what_the_tests_render_and_reads_an_extra_var_false_as_false(tmp_path, ha):
    """The role's template with its defaults and vars through Ansible; `-e prefect_server_ha=false` is a string."""
    import sys

    from tests.unit.conftest import COLLECTIONS

    playbook = tmp_path / "render.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n"
        "  vars_files: [%s, %s]\n  tasks:\n"
        "    - ansible.builtin.copy:\n"
        "        dest: %s\n"
        "        content: \"{{ lookup('ansible.builtin.template', '%s') | from_yaml | to_json }}\"\n"
        % (role_file("defaults", "main.yml"), role_file("vars", "main.yml"), tmp_path / "out.json",
           role_file("templates", "values.yaml.j2")))
    facts = {"prefect_server_hostname": "prefect.example.com", "prefect_server_redis_host": "10.100.0.3",
             "prefect_server_redis_port": 6378}
    (tmp_path / "vars.json").write_text(json.dumps(facts))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS + os.pathsep + os.environ.get(
        "ANSIBLE_COLLECTIONS_PATH", ""), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", "@%s" % (tmp_path / "vars.json"),
           "-e", "prefect_server_ha=%s" % ha, "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    values = json.loads((tmp_path / "out.json").read_text())
    assert ("backgroundServices" in values) is (ha == "true")
    with open(role_file("defaults", "main.yml")) as fh:
        defaults = yaml.safe_load(fh)
    plain = {k: v for k, v in defaults.items() if not (isinstance(v, str) and "{{" in v)}
    expected = render_values(dict(plain, prefect_server_ha_enabled=ha == "true", **facts,
                                  prefect_server_auth_secret="prefect-basic-auth",
                                  prefect_server_ingress_ip_name="prefect-ingress-ip",
                                  prefect_server_db_secret="prefect-server-database"))
    assert values == expected, "the unit tests' rendering matches Ansible's"
