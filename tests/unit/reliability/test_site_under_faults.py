"""The whole site converges through throttling, 5xx and dropped connections, without duplicates, and re-runs clean;
a long-running operation that fails ends a run with one line, and the re-run finishes the job.

HTTP faults never stop a run: every module retries them. A failed operation (sandbox.ops.fail_rate, on compute and
service-networking operations) is re-sent by the modules built on GcpModule.ensure() when it changed nothing; the
others (router/NAT, PSA peering, instance) fail the task, and the test allows re-runs for exactly that reason and no
other, counting them.

Every API family takes the random faults except the Kubernetes API stand-in: its clients are kubernetes.core's and
Helm's, not ours, so their retry behaviour is not what this test measures (sandbox/kube/cluster.py, rate_faults).
"""

import time

from tests.unit.idempotence import changed_tasks

from .site_runner import counts, owned, record_figures, run_site, try_site

NAME = "faulty"
# One of each, however often a create was retried: a second row would be a duplicate the retry made.
SINGLE = ("compute.networks", "compute.subnetworks", "compute.routers", "compute.instances", "sqladmin.instances",
          "container.clusters", "servicenetworking.connections", "tfc.agent_pools", "tfc.agent_tokens",
          "cloudflare.dns_records", "cloudflare.gateway_lists", "cloudflare.service_tokens", "cloudflare.access_apps")


def test_whole_site_converges_under_faults(sandbox, tmp_path):
    faults = sandbox.faults
    before = dict(faults.injected)
    faults.rng.seed(11)
    faults.kinds = ("429", "500", "503", "drop")
    faults.rate = 0.10
    sandbox.ops.fail_rate = 0.10
    started = time.monotonic()
    reruns = 0
    try:
        for _attempt in range(4):
            returncode, rc, output = try_site(sandbox, NAME, tmp_path)
            if returncode == 0:
                break
            failures = [line for line in output.splitlines() if line.startswith("fatal:")]
            boots = [row.get("bootReport") for row in sandbox.store.table("compute.instances").values()]
            assert failures and all("injected operation failure" in line for line in failures), \
                "only a failed operation may stop a run; HTTP faults must be retried (VM boot reports: %s):\n%s" % (
                    boots, output[-5000:])
            reruns += 1
        assert returncode == 0 and rc, "the site did not converge in %d runs:\n%s" % (reruns + 1, output[-5000:])
        assert "ended Completed" in output
        changed = rc[1]
        first = owned(sandbox, NAME)
        changed_again, second_out = run_site(sandbox, NAME, tmp_path)
        second = owned(sandbox, NAME)
    finally:
        faults.rate = 0.0
        faults.kinds = faults.KINDS
        sandbox.ops.fail_rate = 0.0
    by_kind = {k: v - before.get(k, 0) for k, v in faults.injected.items() if v - before.get(k, 0)}
    injected = sum(by_kind.values())
    assert changed > 0 or reruns
    assert injected >= 20, "too few faults were injected (%r) for this test to mean anything" % by_kind
    assert changed_again == 0, "a second run under faults must change nothing; changed:\n%s\n\n%s" % (
        changed_tasks(second_out), second_out[-3000:])
    assert counts(second) == counts(first), "the second run added or removed resources: %r -> %r" % (
        counts(first), counts(second))
    dupes = {t: first.get(t, []) for t in SINGLE if len(first.get(t, [])) != 1}
    assert not dupes, "expected exactly one of each of these, found: %r" % dupes
    addresses = [k.rsplit("/", 1)[-1] for k in first["compute.addresses"]]
    assert sorted(addresses) == sorted(set(addresses)) and len(addresses) == 4, \
        "PSA range, NAT IP, agent IP and ingress IP, each once: %r" % addresses
    workspaces = first.get("tfc.workspaces", [])
    assert len(workspaces) == 2, "one workspace per component: %r" % workspaces
    record_figures("faults", {
        "date": time.strftime("%Y-%m-%d"), "fault_rate": 0.10, "operation_fail_rate": 0.10,
        "injected": injected, "by_kind": by_kind, "survived": injected, "site_runs": reruns + 2,
        "reruns_after_failed_operation": reruns,
        "second_run_changed": changed_again, "resources": counts(first), "seconds": round(time.monotonic() - started),
        "not_faulted": "Kubernetes API stand-in (kubernetes.core and Helm clients)"})
