"""What the Prefect roles hand to helm and to the work pool is what the charts and Cloud Run accept.

The charts' values are checked here against the charts' values.schema.json (defaults coalesced first, as Helm does);
the whole path through real Helm, rendering included, is tests/unit/sandbox/test_kube_helm.py. The cloud-run-v2
pool's job_body, with Prefect's placeholders filled as a worker fills them, is checked against the run v2
GoogleCloudRunV2Job schema of google-api-python-client's discovery document.
"""

import copy
import json
import os
import re
import subprocess
import sys

import jinja2
import pytest
import yaml
from jinja2.nativetypes import NativeEnvironment

from tests.unit.conftest import REPO, specs_path

SERVER_VARS = {
    "prefect_server_auth_secret": "prefect-basic-auth", "prefect_server_hostname": "prefect.example.com",
    "prefect_server_resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "1Gi"}},
    "prefect_server_db_secret": "prefect-server-database", "prefect_server_ingress_ip_name": "prefect-ingress-ip",
    "prefect_server_origin_tls": "self_signed", "prefect_server_origin_tls_secret": "prefect-origin-tls",
    "prefect_server_backend_config": "prefect-server-backend",
}
WORKER_VARS = {
    "prefect_worker_server_api_url": "http://prefect-server.prefect.svc.cluster.local:4200/api",
    "prefect_worker_auth_secret": "prefect-basic-auth", "prefect_worker_release_pool_name": "cloud-run",
    "prefect_worker_release_pool_type": "cloud-run-v2", "prefect_worker_image_repository": "prefecthq/prefect",
    "prefect_worker_image_tag": "3-python3.11", "prefect_worker_extra_pip_packages": "prefect-gcp",
    "prefect_worker_resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "250m", "memory": "512Mi"}},
    "prefect_worker_release": "prefect-worker", "prefect_worker_gsa": "prefect-worker", "gcp_project": "my-project",
}


def render(role, variables):
    path = os.path.join(REPO, "roles", role, "templates", "values.yaml.j2")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["to_json"] = json.dumps
    with open(path) as fh:
        return yaml.safe_load(env.from_string(fh.read()).render(**variables))


class HelmError(Exception):
    pass


def chart(name):
    with open(specs_path("prefect-helm", name, "values.yaml")) as fh:
        defaults = yaml.safe_load(fh) or {}
    with open(specs_path("prefect-helm", name, "values.schema.json")) as fh:
        return {"name": name, "values": defaults, "schema": json.load(fh)}


def _coalesce(defaults, overrides):
    out = copy.deepcopy(defaults) if isinstance(defaults, dict) else {}
    for key, value in (overrides or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _coalesce(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def validate(chart_, values):
    import jsonschema

    errors = list(jsonschema.Draft7Validator(chart_["schema"]).iter_errors(_coalesce(chart_["values"], values)))
    if errors:
        raise HelmError("\n".join("- at '/%s': %s" % ("/".join(map(str, e.absolute_path)), e.message) for e in errors))


@pytest.mark.parametrize("origin_tls", ["self_signed", "origin_ca"])
def test_server_values_meet_the_chart_schema(origin_tls):
    values = render("prefect_server", dict(SERVER_VARS, prefect_server_origin_tls=origin_tls))
    validate(chart("prefect-server"), values)
    assert values["externalDatabase"]["connectionStringSecretKey"] == "connection-string"
    assert values["postgresql"]["enabled"] is False
    assert values["ingress"]["annotations"]["kubernetes.io/ingress.global-static-ip-name"] == "prefect-ingress-ip"
    assert values["server"]["uiConfig"]["prefectUiApiUrl"] == "https://prefect.example.com/api"
    # GKE reads the BackendConfig (and its Cloud Armor policy) from the service, as JSON.
    assert json.loads(values["service"]["annotations"]["cloud.google.com/backend-config"]) == \
        {"default": "prefect-server-backend"}


def test_worker_values_meet_the_chart_schema():
    values = render("prefect_worker", WORKER_VARS)
    validate(chart("prefect-worker"), values)
    assert values["worker"]["apiConfig"] == "selfHostedServer"
    assert values["worker"]["selfHostedServerApiConfig"]["apiUrl"].endswith(".svc.cluster.local:4200/api")
    assert values["serviceAccount"]["annotations"]["iam.gke.io/gcp-service-account"] == \
        "prefect-worker@my-project.iam.gserviceaccount.com"


def test_a_misspelled_value_is_refused_as_helm_refuses_it():
    values = render("prefect_server", SERVER_VARS)
    values["server"]["basicAuht"] = values["server"].pop("basicAuth")
    with pytest.raises(HelmError, match="basicAuht"):
        validate(chart("prefect-server"), values)


class _Unsafe(yaml.SafeLoader):
    pass


_Unsafe.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _pool_task():
    with open(os.path.join(REPO, "roles", "prefect_worker", "tasks", "present.yml")) as fh:
        tasks = yaml.load(fh, Loader=_Unsafe)
    task = next(t for t in tasks if t.get("skyforge.prefect_platform.prefect_work_pool", {}).get("type") == "cloud-run-v2")
    with open(os.path.join(REPO, "roles", "prefect_worker", "vars", "main.yml")) as fh:
        role_vars = yaml.load(fh, Loader=_Unsafe)
    return task, role_vars


def _native(value, variables):
    """Render the task's Jinja as Ansible would (native types), leaving Prefect's own placeholders alone."""
    env = NativeEnvironment(undefined=jinja2.StrictUndefined)
    env.filters["combine"] = lambda a, b: dict(a, **b)
    if isinstance(value, dict):
        return {k: _native(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_native(v, variables) for v in value]
    if isinstance(value, str) and "{{" in value:
        return env.from_string(value).render(**variables)
    return value


PLACEHOLDER = re.compile(r"^\{\{\s*([a-z_]+)\s*\}\}$")


def fill(template, values):
    """Prefect's placeholder filling: a whole-string placeholder becomes the value; an unset one drops its key."""
    if isinstance(template, dict):
        out = {}
        for key, item in template.items():
            filled = fill(item, values)
            if filled is not None:
                out[key] = filled
        return out
    if isinstance(template, list):
        return [f for f in (fill(i, values) for i in template) if f is not None]
    if isinstance(template, str):
        m = PLACEHOLDER.match(template)
        if m:
            return values.get(m.group(1))
    return template


POOL_VARS = {"prefect_worker_network": "prefect-vpc", "prefect_worker_subnetwork": "prefect-subnet",
             "prefect_worker_auth_string_secret": "prefect-prefect-auth-string", "gcp_project": "my-project",
             "prefect_worker_region": "europe-west1", "prefect_worker_runtime_gsa": "prefect-flows",
             "prefect_worker_flow_image": "prefecthq/prefect:3-python3.11",
             "prefect_worker_public_api_url": "https://prefect.example.com/api", "prefect_worker_flow_headers_secret": ""}


def cloud_run_job_body(**overrides):
    """(job_body, job_variables) as the cloud-run-v2 worker submits them for the role's pool."""
    from ansible_collections.skyforge.prefect_platform.plugins.modules.prefect_work_pool import overlay

    with open(specs_path("prefect", "cloud-run-v2.default-base-job-template.json")) as fh:
        template = json.load(fh)
    task, role_vars = _pool_task()
    args = task["skyforge.prefect_platform.prefect_work_pool"]
    variables = dict(role_vars, **dict(POOL_VARS, **overrides))
    variables.update(_native(task.get("vars", {}), variables))
    job_configuration = _native(args["job_configuration"], variables)
    job_variables = _native(args["job_variables"], variables)

    configured = overlay(template["job_configuration"], job_configuration)
    values = {k: v.get("default") for k, v in template["variables"]["properties"].items()}
    values.update(job_variables)
    values.update({"name": "smoke-run-1", "command": "prefect flow-run execute", "args": ["--id", "x"]})
    body = fill(copy.deepcopy(configured["job_body"]), values)
    # The cloud-run-v2 worker writes the timeout as a Duration and splits the command before it submits the job.
    body["template"]["template"]["timeout"] = "%ds" % values["timeout"]
    container = body["template"]["template"]["containers"][0]
    container["command"] = container["command"].split()
    # ... and adds the secret references (prefect-gcp's _populate_env): env_from_secrets, then the auth string.
    refs = dict(configured.get("env_from_secrets") or {})
    if configured.get("prefect_api_auth_string_secret"):
        refs["PREFECT_API_AUTH_STRING"] = configured["prefect_api_auth_string_secret"]
    container["env"] = container.get("env", []) + [{"name": k, "valueSource": {"secretKeyRef": v}}
                                                   for k, v in refs.items()]
    return body, job_variables


def test_cloud_run_job_body_is_a_valid_run_v2_job_with_direct_vpc_egress():
    from sandbox.gcp.discovery import Discovery

    body, job_variables = cloud_run_job_body()
    run = Discovery("run", "v2")
    run._check_object(run.schemas["GoogleCloudRunV2Job"], body, "", "run.projects.locations.jobs.create")
    vpc = body["template"]["template"]["vpcAccess"]
    assert vpc == {"egress": "ALL_TRAFFIC", "networkInterfaces": [{"network": "prefect-vpc", "subnetwork": "prefect-subnet"}]}
    env = body["template"]["template"]["containers"][0]["env"]
    assert env == [{"name": "PREFECT_API_AUTH_STRING",
                    "valueSource": {"secretKeyRef": {"secret": "prefect-prefect-auth-string", "version": "latest"}}}]
    assert job_variables["env"]["PREFECT_API_URL"] == "https://prefect.example.com/api"

    broken = copy.deepcopy(body)
    broken["template"]["template"]["vpcAccess"]["egres"] = "ALL_TRAFFIC"
    with pytest.raises(Exception, match="egres"):
        run._check_object(run.schemas["GoogleCloudRunV2Job"], broken, "", "run.projects.locations.jobs.create")


def test_values_are_data_a_tag_that_yaml_reads_as_a_number_stays_a_string(tmp_path):
    """The role's own expression, through real Ansible: strings reach the chart unchanged (issue 16, bad input)."""
    tricky = {"prefect_worker_image_tag": "3.10", "prefect_worker_extra_pip_packages": "a: b # c, [d]",
              "prefect_worker_release_pool_name": "yes"}
    variables = dict(WORKER_VARS, **tricky)
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.copy:\n"
        "        dest: %s\n"
        "        content: \"{{ lookup('ansible.builtin.template', '%s') | from_yaml | to_json }}\"\n"
        % (tmp_path / "out.json", os.path.join(REPO, "roles", "prefect_worker", "templates", "values.yaml.j2")))
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", "@%s" % (tmp_path / "vars.json"),
                           "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)],
                          capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    values = json.loads((tmp_path / "out.json").read_text())
    assert values["worker"]["image"]["prefectTag"] == "3.10"
    assert values["worker"]["extraEnvVars"][0]["value"] == "a: b # c, [d]"
    assert values["worker"]["config"]["workPool"] == "yes"
    assert render("prefect_worker", variables) == values, "the unit tests' rendering matches Ansible's"
