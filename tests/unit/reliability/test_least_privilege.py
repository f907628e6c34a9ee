"""The deploying identity's role list in docs/permissions.md is enforced: the site converges with exactly those roles,
fails at the first call a removed role would have allowed, and every method the sandbox serves is mapped to the
permissions the real API checks."""

import json
import os
import re
import tempfile

import pytest

from .site_runner import try_site

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def documented_roles(heading="The deploying identity"):
    """The roles in the table under `heading` in docs/permissions.md (the site's own, by default)."""
    with open(os.path.join(REPO, "docs", "permissions.md")) as fh:
        text = fh.read()
    section = text.split("## " + heading, 1)[1].split("\n## ", 1)[0]
    roles = re.findall(r"^\|\s*`(roles/[^`]+)`\s*\|", section, re.M)
    assert roles, "could not parse the role table under %r in docs/permissions.md" % heading
    return roles


@pytest.fixture
def enforce(sandbox):
    """Set the deployer's roles for one test; enforcement is off again afterwards (the sandbox is shared)."""
    iam = sandbox.apps["gcp"].iam

    def set_roles(roles):
        iam.set_roles(roles)
        return iam

    yield set_roles
    iam.set_roles(None)


@pytest.fixture
def enable_api(sandbox):
    """Turn a service on for one test and restore it afterwards."""
    app = sandbox.apps["gcp"]
    saved = {}

    def enable(api):
        key = "projects/%s/services/%s.googleapis.com" % (app.project_number, api)
        saved.setdefault(key, app.enabled.get(key))
        app.enabled[key] = True

    yield enable
    for key, was in saved.items():
        app.enabled[key] = was


# ---- the tables -----------------------------------------------------------------------------------------------
def test_every_served_method_has_a_permission_mapping():
    from sandbox.core import Config, Sandbox
    from sandbox.gcp import iam_enforce
    from sandbox.gcp.app import GcpApp

    sb = Sandbox(Config(state_dir=tempfile.mkdtemp(), port_base=0), with_postgres=False)
    served = sorted(GcpApp(sb).handlers)
    assert len(served) > 50, "the sandbox should serve the collection's methods"
    unmapped = [m for m in served if not iam_enforce.permissions_for(m)]
    assert not unmapped, "add these method ids to sandbox/gcp/iam_enforce.py METHOD_PERMISSIONS: %s" % unmapped
    assert iam_enforce.permissions_for("compute.networks.insert") == ("compute.networks.create",)
    assert iam_enforce.permissions_for("sql.instances.insert") == ("cloudsql.instances.create",)
    assert iam_enforce.permissions_for("secretmanager.projects.secrets.versions.access") == \
        ("secretmanager.versions.access",)
    assert iam_enforce.permissions_for("compute.bogus.frobnicate") is None
    assert iam_enforce.permissions_for("run.projects.locations.jobs.run") == ("run.jobs.run",)


def test_documented_roles_grant_every_mapped_permission_and_the_error_hint_names_a_documented_role():
    from ansible_collections.skyforge.prefect_platform.plugins.module_utils import gcp
    from sandbox.gcp import iam_enforce

    roles = documented_roles() + documented_roles("What the production (HA) profile adds")
    assert len(roles) >= 5
    unknown = [r for r in roles if r not in iam_enforce.ROLE_PERMISSIONS]
    assert not unknown, "the sandbox has no permission table for %s" % unknown
    granted = set().union(*(iam_enforce.ROLE_PERMISSIONS[r] for r in roles))
    assert iam_enforce.grants(granted, "container.managedCertificates.create")
    assert not iam_enforce.grants(granted, "storage.buckets.create"), "a wildcard must not reach other services"
    # The ML artifact profile's roles (Cloud KMS, Cloud Storage, Artifact Registry) are checked like the others.
    ml_roles = documented_roles("What the ML artifact profile adds")
    unknown = [r for r in ml_roles if r not in iam_enforce.ROLE_PERMISSIONS]
    assert not unknown, "the sandbox has no permission table for %s" % unknown
    roles = roles + ml_roles
    granted = granted.union(*(iam_enforce.ROLE_PERMISSIONS[r] for r in ml_roles))
    needed = set()
    for method_id, perms in iam_enforce.METHOD_PERMISSIONS.items():
        # Cloud Run jobs are made by the Prefect worker's own identity (docs/permissions.md, runtime identities).
        if not method_id.startswith("run."):
            needed.update(perms)
    needed.update(iam_enforce.extra_permissions("compute.instances.insert", {
        "serviceAccounts": [{"email": "x"}], "metadata": {"items": [{}]}, "tags": {"items": ["t"]},
        "labels": {"a": "b"}, "networkInterfaces": [{"accessConfigs": [{}]}]}))
    assert {p for p in needed if not iam_enforce.grants(granted, p)} == set()
    for perm in sorted(needed):
        role = gcp.role_for_permission(perm)
        assert role in roles, "module_utils/gcp.py PERMISSION_ROLES sends %s to %s, not a documented role" % (
            perm, role)
        assert iam_enforce.grants(iam_enforce.ROLE_PERMISSIONS[role], perm), "%s does not grant %s" % (role, perm)


# ---- the 403 and the message built from it ----------------------------------------------------------------------
def test_denied_call_answers_403_like_gcp_and_the_module_names_permission_and_role(
        sandbox, gcp_args, module_runner, enforce, enable_api):
    enable_api("compute")
    roles = [r for r in documented_roles() if r != "roles/compute.networkAdmin"]
    iam = enforce(roles)
    out = module_runner("gcp_network", dict(gcp_args, name="least-denied-net"), expect_fail=True)
    msg = out["msg"]
    assert "\n" not in msg
    # roles/compute.securityAdmin and instanceAdmin.v1 can read networks: the create is what fails.
    assert "Required 'compute.networks.create' permission for 'projects/%s/global/networks/least-denied-net'" \
        % gcp_args["project"] in msg, msg
    assert "grant the deploying identity roles/compute.networkAdmin on project %s, which holds " \
           "compute.networks.create" % gcp_args["project"] in msg, msg
    assert iam.denied and iam.denied[0][:2] == ("compute.networks.insert", "compute.networks.create")
    assert "least-denied-net" not in json.dumps(sandbox.store.table("compute.networks")), "nothing may be created"


def test_raw_403_body_for_one_platform_apis(sandbox, gcp_args, enforce, enable_api):
    import urllib.error
    import urllib.request

    import google.auth.transport.requests
    from google.oauth2 import service_account

    from ansible_collections.skyforge.prefect_platform.plugins.module_utils import gcp

    enable_api("secretmanager")
    enforce([r for r in documented_roles() if r != "roles/secretmanager.admin"])
    creds = service_account.Credentials.from_service_account_file(
        gcp_args["service_account_file"], scopes=["https://www.googleapis.com/auth/cloud-platform"])
    creds.refresh(google.auth.transport.requests.Request())
    url = gcp_args["api_endpoint_template"].format(api="secretmanager") + \
        "v1/projects/%s/secrets?secretId=least-denied" % gcp_args["project"]
    req = urllib.request.Request(url, data=json.dumps({"replication": {"automatic": {}}}).encode(),
                                 method="POST", headers={"Authorization": "Bearer " + creds.token,
                                                         "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 403
    body = json.loads(err.value.read())["error"]
    assert body["status"] == "PERMISSION_DENIED" and body["code"] == 403
    assert body["message"] == "Permission 'secretmanager.secrets.create' denied on resource 'projects/%s' (or it may " \
                              "not exist)." % gcp_args["project"]
    assert body["errors"][0]["reason"] == "forbidden"
    info = [d for d in body["details"] if d["@type"].endswith("ErrorInfo")][0]
    assert info["reason"] == "IAM_PERMISSION_DENIED"
    assert info["metadata"]["permission"] == "secretmanager.secrets.create"

    class Err(Exception):
        resp = type("R", (), {"status": 403})()
        content = json.dumps({"error": body}).encode()

    msg = gcp.explain_http_error("secretmanager", "create", "secret least-denied", Err(), gcp_args["project"])
    assert "grant the deploying identity roles/secretmanager.admin on project %s, which holds " \
           "secretmanager.secrets.create" % gcp_args["project"] in msg, msg


def test_kubernetes_api_requires_a_gke_role(sandbox):
    from sandbox.gcp.iam_enforce import Enforcer
    from sandbox.web import ApiError

    iam = Enforcer(lambda: "deployer@p.iam.gserviceaccount.com")
    iam.set_roles(["roles/compute.networkAdmin"])
    with pytest.raises(ApiError) as err:
        iam.check_kube("deployer@p.iam.gserviceaccount.com", "POST", "configmaps", "prefect", None)
    assert err.value.status == 403
    assert 'requires one of ["container.clusters.get"]' in err.value.message
    iam.check_kube("someone-else@p.iam.gserviceaccount.com", "POST", "configmaps", "prefect", None)
    iam.set_roles(["roles/container.developer"])
    iam.check_kube("deployer@p.iam.gserviceaccount.com", "POST", "configmaps", "prefect", None)
    with pytest.raises(ApiError) as err:
        iam.check_kube("deployer@p.iam.gserviceaccount.com", "POST", "clusterrolebindings", None, None)
    assert 'cannot create resource "clusterrolebindings"' in err.value.message
    assert '["container.clusterRoleBindings.create"]' in err.value.message
    iam.set_roles(["roles/container.admin"])
    iam.check_kube("deployer@p.iam.gserviceaccount.com", "POST", "clusterrolebindings", None, None)
    iam.set_roles(None)
    iam.check_kube("deployer@p.iam.gserviceaccount.com", "DELETE", "namespaces", None, "x")


def test_env_variable_turns_enforcement_on(monkeypatch):
    from sandbox.gcp.iam_enforce import ENV, Enforcer

    monkeypatch.setenv(ENV, "roles/cloudsql.admin, roles/container.admin")
    iam = Enforcer(lambda: "d@p.iam.gserviceaccount.com")
    assert iam.enabled and iam.roles == ["roles/cloudsql.admin", "roles/container.admin"]
    monkeypatch.setenv(ENV, "roles/owner")
    with pytest.raises(ValueError, match="roles/owner"):
        Enforcer(lambda: None)
    monkeypatch.delenv(ENV)
    assert not Enforcer(lambda: None).enabled


def test_admin_endpoint_sets_and_clears_roles(sandbox):
    import urllib.request

    url = sandbox.url("gcp") + "/_sandbox/iam/deployer-roles"

    def post(body):
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    try:
        out = post({"roles": ["roles/cloudsql.admin"]})
        assert out["enabled"] is True and out["roles"] == ["roles/cloudsql.admin"]
        with pytest.raises(urllib.error.HTTPError) as err:
            post({"roles": ["roles/owner"]})
        assert err.value.code == 400
    finally:
        out = post({"roles": None})
    assert out["enabled"] is False


# ---- the whole site ---------------------------------------------------------------------------------------------
def test_site_converges_with_exactly_the_documented_roles_and_fails_without_one(sandbox, tmp_path, enforce):
    from sandbox.gcp import iam_enforce

    roles = documented_roles()
    iam = enforce(roles)
    rc, _recap, output = try_site(sandbox, "least", tmp_path, timeout=1500)
    assert rc == 0, output[-5000:]
    assert "ended Completed" in output, "the site should have ended with a completed smoke flow run"
    assert iam.checked > 100, "enforcement should have checked the site's calls (%d)" % iam.checked
    assert iam.checked_kube > 5, "the Kubernetes calls into the cluster should have been checked too"
    assert not iam.denied, "with the documented roles nothing may be denied (not even a 403 a module tolerated): " \
                           "%r" % iam.denied
    # Exact, not just enough: each documented role grants some permission the site used that no other one grants.
    for role in roles:
        others = set().union(*(iam_enforce.ROLE_PERMISSIONS[r] for r in roles if r != role))
        only = {p for p in iam.used if iam_enforce.grants(iam_enforce.ROLE_PERMISSIONS[role], p)
                and not iam_enforce.grants(others, p)}
        assert only, "the site needed nothing only %s grants: drop it from docs/permissions.md" % role

    iam = enforce([r for r in roles if r != "roles/cloudsql.admin"])
    rc, _recap, output = try_site(sandbox, "least", tmp_path, timeout=1500)
    assert rc != 0, "without roles/cloudsql.admin the site must fail"
    assert iam.denied, "the failure must come from the enforcement"
    first = iam.denied[0]
    assert first[0].startswith("sql."), "the first denied call should be Cloud SQL's, not %r" % (first,)
    failed = [line for line in output.splitlines() if "FAILED!" in line or '"msg":' in line]
    assert any(first[1] in line and "roles/cloudsql.admin" in line for line in failed), \
        "the failure should name %s and roles/cloudsql.admin:\n%s" % (first[1], "\n".join(failed)[-3000:])
    assert first[1] in ("cloudsql.instances.get", "cloudsql.instances.create")
