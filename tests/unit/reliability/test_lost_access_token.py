"""A run stopped between issuing the Cloudflare Access service token and storing its secret in Secret Manager loses
the secret for good (Cloudflare shows it once). The next run must notice the empty store and re-issue the token, as
tfc_agent does for its agent token; no read of the store may create an empty secret."""

import subprocess

from .site_runner import REPO, owned, run_site, site_command


def stored_versions(sandbox, secret_id):
    number = sandbox.apps["gcp"].project_number
    prefix = "projects/%s/secrets/%s/versions/" % (number, secret_id)
    with sandbox.store.lock:
        return [k for k in sandbox.store.table("secretmanager.versions") if k.startswith(prefix)]


def drop_secret(sandbox, secret_id):
    number = sandbox.apps["gcp"].project_number
    name = "projects/%s/secrets/%s" % (number, secret_id)
    with sandbox.store.lock:
        sandbox.store.table("secretmanager.secrets").pop(name, None)
        versions = sandbox.store.table("secretmanager.versions")
        for key in [k for k in versions if k.startswith(name + "/")]:
            versions.pop(key)


def test_a_lost_access_token_secret_is_reissued_on_the_next_run(sandbox, tmp_path):
    name = "losttok"
    secret = "%s-cf-access-token" % name
    run_site(sandbox, name, tmp_path)
    assert stored_versions(sandbox, secret), "the converged site stores the Access token"
    tokens_before = owned(sandbox, name).get("cloudflare.service_tokens")
    assert tokens_before and len(tokens_before) == 1
    # The crash: Cloudflare issued the token, Secret Manager never got it.
    drop_secret(sandbox, secret)
    changed, output = run_site(sandbox, name, tmp_path)
    assert changed > 0
    assert "Service token for automation" in output
    assert len(stored_versions(sandbox, secret)) == 1, "the re-issued token is stored once"
    assert owned(sandbox, name).get("cloudflare.service_tokens") == tokens_before, "rotated, not duplicated"
    again, again_out = run_site(sandbox, name, tmp_path)
    assert again == 0, again_out[-3000:]


def test_tags_verify_alone_passes_on_the_converged_site(sandbox, tmp_path):
    """The README documents `--tags verify` as one component: on a converged site it must pass its own checks."""
    name = "losttok"
    if not owned(sandbox, name).get("cloudflare.service_tokens"):
        run_site(sandbox, name, tmp_path)
    argv, env = site_command(sandbox, name, tmp_path, "--tags", "verify")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, "site.yml --tags verify failed on a converged site:\n" + output[-5000:]
    assert "ended Completed" in output, "verify ends with the smoke flow run"


def test_check_mode_on_a_fresh_platform_prints_the_plan(sandbox, tmp_path):
    """README: `--check --diff` prints the plan. On a platform that does not exist yet it must not fail (for example
    on an allow-list that is empty because the NAT IPs are not reserved yet), and it writes nothing."""
    start = sandbox.log.mark()
    argv, env = site_command(sandbox, "planonly", tmp_path, "--check", "--diff")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, "check mode on a fresh platform failed:\n" + output[-5000:]
    for planned in ("Helm release prefect-server", "Helm release prefect-worker", "work pool cloud-run (cloud-run-v2)",
                    "smoke flow run reaches"):
        assert planned in output, "the plan names what a real run would create: %r missing" % planned
    writes = [e for e in sandbox.log.by_deployer(start) if e["method"] in ("POST", "PUT", "PATCH", "DELETE")
              and not e["path"].split("?")[0].endswith((":getIamPolicy", ":testIamPermissions", "/token"))]
    assert not writes, "check mode wrote: %r" % writes[:10]
    assert not owned(sandbox, "planonly"), "check mode created resources"
