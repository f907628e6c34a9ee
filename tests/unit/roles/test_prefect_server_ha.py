"""The Prefect server's HA profile (issue 20) converged by the site against the sandbox, end to end.

prefect_server_ha on a fresh platform: check mode plans the Memorystore instance and the HA release without a write;
the site (without the HCP Terraform components, which HA does not touch) converges with two API replicas and the
background services as processes of their own, messaging on the sandbox's Memorystore (a real redis-server, TLS
verified against the instance's own CA and AUTH), and the smoke flow run ends Completed; a second run of the roles
HA depends on changes nothing; the Prefect teardown removes the instance, and a second one makes no write.
"""

import json
import os
import subprocess

from tests.unit.idempotence import recap
from tests.unit.reliability.site_runner import REPO, site_command
from tests.unit.reliability.test_teardown import writes

NAME = "hasrv"
NS = "prefect"
HA = {"prefect_server_ha": True}


def play(sandbox, tmp_path, *args, playbook="site.yml", timeout=900, **extra):
    argv, env = site_command(sandbox, NAME, tmp_path, *args, **dict(HA, **extra))
    argv[1] = os.path.join(REPO, playbook)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    rc = recap(proc.stdout)
    assert proc.returncode == 0 and rc, "%s %s failed:\n%s" % (playbook, " ".join(args), output[-5000:])
    return rc[1], output


def test_prefect_server_ha_converges_in_the_sandbox_site_and_tears_down(sandbox, tmp_path):
    gcp = sandbox.apps["gcp"]
    instances = sandbox.store.table("redis.instances")
    key = "projects/%s/locations/europe-west1/instances/%s-redis" % (sandbox.config.project, NAME)

    # Check mode on the fresh platform: the plan names the instance and the HA release; nothing is written.
    start = sandbox.log.mark()
    changed, output = play(sandbox, tmp_path, "--check", "--tags", "prefect_server")
    assert changed >= 1 and "Memorystore instance %s-redis" % NAME in output and "2 API replicas" in output, output
    assert not writes(sandbox, start), "check mode wrote"
    assert key not in instances

    _changed, output = play(sandbox, tmp_path, "--skip-tags", "tfc", timeout=1500)
    assert "ended Completed" in output, "the smoke flow run should have ended Completed"

    # The instance: TLS and AUTH, and the server's messaging in it.
    row = instances[key]
    assert row["state"] == "READY" and row["transitEncryptionMode"] == "SERVER_AUTHENTICATION" and row["authEnabled"]
    server = gcp.memorystore.servers[key]
    assert int(server.command("DBSIZE")) > 0, "the Prefect server's messaging went through the sandbox Memorystore"
    # Two API replicas and the background services apart, each a live process of its own.
    workloads = sandbox.apps["kube"].workloads
    deployments = {k[2]: s for k, s in workloads.deployments.items() if k[0].endswith("/clusters/%s" % NAME)}
    api, services = deployments["prefect-server"], deployments["prefect-server-background-services"]
    assert len(api["pods"]) == 2 and len(services["pods"]) == 1, sorted(deployments)
    pids = set()
    for pod in api["pods"] + services["pods"]:
        assert pod.ready(), (pod.name, pod.phase)
        for container in pod.containers:
            assert container.proc is not None and container.proc.poll() is None, (pod.name, container.name)
            pids.add(container.proc.pid)
    assert len(pids) == 3
    [cluster] = [a for k, a in sandbox.apps["kube"].clusters.items() if k.endswith("/clusters/%s" % NAME)]
    [pdb] = cluster.find("poddisruptionbudgets", NS)
    assert pdb["spec"]["minAvailable"] == 1

    # A second run of what HA depends on (the data plane's facts, the server) changes nothing.
    changed, output = play(sandbox, tmp_path, "--tags", "cloudsql,gke,prefect_server")
    assert changed == 0, "the HA server's second run changed something:\n%s" % output[-5000:]

    # The Prefect teardown removes the instance and its redis-server; a second teardown makes no write.
    teardown = ("teardown.yml", {"skyforge_teardown_confirm": sandbox.config.project,
                                 "skyforge_teardown_components": ["prefect"]})
    # The first by an inventory that no longer says HA: the instance is found because its API is on.
    play(sandbox, tmp_path, "-e", json.dumps(dict(teardown[1], prefect_server_ha=False)), playbook=teardown[0])
    assert key not in instances and key not in gcp.memorystore.servers
    assert server.proc is None and not os.path.exists(server.dir)
    start = sandbox.log.mark()
    changed, _output = play(sandbox, tmp_path, "-e", json.dumps(teardown[1]), playbook=teardown[0])
    assert changed == 0 and not writes(sandbox, start), writes(sandbox, start)
