"""Shared fixtures: a real sandbox on ephemeral loopback ports, and modules run as Ansible runs them."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, ".cache", "collections")
sys.path.insert(0, REPO)
sys.path.insert(0, COLLECTIONS)

SPECS_DIR = os.path.abspath(os.environ.get("SKYFORGE_SPECS_DIR") or os.path.join(REPO, "..", "shared", "specs"))


def specs_path(*parts):
    """Path under ../shared/specs, or skip the test with the reason."""
    path = os.path.join(SPECS_DIR, *parts)
    if not os.path.exists(path):
        pytest.skip("specs not found at %s: set SKYFORGE_SPECS_DIR to the shared specs folder" % path)
    return path


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    """One in-process sandbox for the whole session (fast time scale, real PostgreSQL)."""
    from sandbox.core import Config, Sandbox

    state = tmp_path_factory.mktemp("sandbox")
    cfg = Config(state_dir=str(state), port_base=0, time_scale=float(os.environ.get("SKYFORGE_TEST_TIME_SCALE", "0.002")))
    sb = Sandbox(cfg, with_postgres=os.environ.get("SKYFORGE_TEST_POSTGRES", "1") == "1").start()
    yield sb
    sb.stop()


@pytest.fixture
def gcp_args(sandbox):
    """Module arguments that point a GCP module at the sandbox with the real service-account flow."""
    ep = sandbox.endpoints()
    return {
        "project": ep["gcp_project"],
        "auth_kind": "serviceaccount",
        "service_account_file": ep["gcp_service_account_file"],
        "api_endpoint_template": ep["gcp_api_endpoint_template"],
    }


@pytest.fixture
def cf_args(sandbox):
    """Module arguments that point a Cloudflare module at the sandbox (skips when the API description is absent)."""
    specs_path("cloudflare", "openapi.subset.dns-access-gateway-lists.json")
    ep = sandbox.endpoints()
    return {
        "api_token": ep["cloudflare_api_token"],
        "base_url": ep["cloudflare_base_url"],
        "account_id": ep["cloudflare_account_id"],
    }


@pytest.fixture
def tfc_args(sandbox):
    """Module arguments that point an HCP Terraform module at the sandbox (skips when the API description is absent)."""
    specs_path("tfc", "hcp-terraform-openapi.go-tfe-v2.spec.json")
    ep = sandbox.endpoints()
    return {"address": ep["tfc_address"], "token": ep["tfc_token"], "organization": ep["tfc_organization"],
            "retries": 3}


class ModuleFailed(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def run_module(name, args, check=False, diff=True, env=None, expect_fail=False):
    """Run plugins/modules/<name>.py in a subprocess exactly as Ansible's module runner would."""
    payload = dict(args)
    payload["_ansible_check_mode"] = check
    payload["_ansible_diff"] = diff
    payload.setdefault("_ansible_tmpdir", None)
    payload.setdefault("_ansible_remote_tmp", "/tmp")
    payload.setdefault("_ansible_keep_remote_files", False)
    proc_env = dict(os.environ, PYTHONPATH=COLLECTIONS + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "ansible_collections.skyforge.prefect_platform.plugins.modules.%s" % name],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": payload}),
        capture_output=True,
        text=True,
        env=proc_env,
        timeout=600,
        check=False,
    )
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError("module %s printed no JSON result:\nstdout=%s\nstderr=%s" % (name, proc.stdout, proc.stderr))
    result["_stdout"] = proc.stdout
    result["_stderr"] = proc.stderr
    if result.get("failed") and not expect_fail:
        raise ModuleFailed(result)
    if expect_fail and not result.get("failed"):
        raise AssertionError("module %s was expected to fail but returned %r" % (name, result))
    return result


@pytest.fixture
def module_runner():
    return run_module


@pytest.fixture(scope="session")
def aws_standin():
    """The AWS stand-in (moto's server on loopback) alone, without the rest of the sandbox."""
    from sandbox.aws import AwsStandIn

    standin = AwsStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def aws_args(aws_standin):
    """Module arguments that point one of this collection's AWS modules at the stand-in."""
    info = aws_standin.endpoint_info()
    return {"region": info["aws_region"], "endpoint_url": info["aws_endpoint_url"],
            "access_key": info["aws_access_key_id"], "secret_key": info["aws_secret_access_key"], "retries": 2}
