"""The site run with -vvv and --diff prints no secret, and the sandbox's request log holds none."""

import base64
import json
import os
import subprocess

from .site_runner import REPO, site_command


def test_site_with_vvv_and_diff_leaks_nothing(sandbox, tmp_path):
    """The whole site, Cloudflare and Prefect included, through the sandbox inventory at this test's sandbox."""
    ep = sandbox.endpoints()
    argv, env = site_command(sandbox, "leaky", tmp_path, "-vvv", "--diff")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=1200, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "ended Completed" in output, "the site should have ended with a completed smoke flow run"

    from sandbox.gcp.secretmanager import latest_payload

    secrets = {}
    password = latest_payload(sandbox, ep["gcp_project"], "leaky-db-password")
    assert password, "the site should have generated the database password"
    secrets["database password"] = password.decode()
    secrets["database password (base64)"] = base64.b64encode(password).decode()
    key = json.load(open(ep["gcp_service_account_file"]))
    secrets["service-account private key"] = key["private_key"].splitlines()[1]
    for i, token in enumerate(sandbox.apps["gcp"].auth.tokens):
        secrets["access token %d" % i] = token
    for name in ("leaky-prefect-auth", "leaky-cf-access-token"):
        value = latest_payload(sandbox, ep["gcp_project"], name)
        assert value, "the site should have created %s" % name
        secrets[name] = value.decode()
        secrets[name + " (base64)"] = base64.b64encode(value).decode()
    token = json.loads(secrets["leaky-cf-access-token"])
    secrets["Access client secret"] = token["client_secret"]
    secrets["Cloudflare API token"] = ep["cloudflare_api_token"]
    secrets["HCP Terraform token"] = ep["tfc_token"]
    kubeconfig = json.load(open(tmp_path / "kubeconfig-leaky.json"))
    secrets["kubeconfig token"] = kubeconfig["users"][0]["user"]["token"]

    with open(os.path.join(sandbox.config.state_dir, "requests.log")) as fh:
        request_log = fh.read()
    leaks = [(what, where) for what, value in secrets.items()
             for where, text in (("ansible output", output), ("sandbox request log", request_log)) if value in text]
    assert not leaks, "secrets leaked: %r" % leaks
    assert len(output) > 10000, "-vvv output should be large; this test would be vacuous otherwise"
    import time

    from .site_runner import record_figures

    record_figures("secrets", {"date": time.strftime("%Y-%m-%d"), "secrets_searched": len(secrets), "leaks": len(leaks),
                               "output_bytes": len(output), "request_log_bytes": len(request_log)})
