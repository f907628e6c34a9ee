"""A run stopped between issuing the Cloudflare Access service token and storing its secret in Secret Manager loses
the secret for good (Cloudflare shows it once). The next run must notice the empty store and re-issue the token, as
tfc_agent does for its agent token; no read of the store may create an empty secret."""

from .site_runner import owned, run_site


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
