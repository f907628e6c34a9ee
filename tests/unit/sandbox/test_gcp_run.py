"""run v2 jobs in the sandbox, through google-api-python-client: lifecycle, Cloud Run's checks, executions."""

import copy
import json

import pytest
from googleapiclient.errors import HttpError
from sandbox.core import DURATIONS

from .gcp_helpers import client, enable, wait_compute, wait_lro

REGION = "europe-west1"
OTHER_REGION = "us-central1"


@pytest.fixture(scope="module")
def project(sandbox):
    return sandbox.config.project


@pytest.fixture(scope="module")
def run(sandbox):
    enable(sandbox, "run.googleapis.com", "compute.googleapis.com", "iam.googleapis.com",
           "secretmanager.googleapis.com")
    return client(sandbox, "run", "v2")


@pytest.fixture(scope="module")
def world(sandbox, run, project):
    """The network, subnetworks, service account and secret a job may reference."""
    compute = client(sandbox, "compute")
    wait_compute(compute, project, compute.networks().insert(
        project=project, body={"name": "run-vpc", "autoCreateSubnetworks": False}).execute())
    for region, name, cidr in ((REGION, "run-subnet", "10.40.0.0/20"), (OTHER_REGION, "run-subnet-us", "10.41.0.0/20")):
        wait_compute(compute, project, compute.subnetworks().insert(project=project, region=region, body={
            "name": name, "network": "global/networks/run-vpc", "ipCidrRange": cidr}).execute())
    iam = client(sandbox, "iam")
    sa = iam.projects().serviceAccounts().create(
        name="projects/%s" % project, body={"accountId": "run-flows"}).execute()
    sm = client(sandbox, "secretmanager")
    sm.projects().secrets().create(parent="projects/%s" % project, secretId="run-auth",
                                   body={"replication": {"automatic": {}}}).execute()
    sm.projects().secrets().addVersion(parent="projects/%s/secrets/run-auth" % project,
                                       body={"payload": {"data": "dG9rZW4="}}).execute()
    enable(sandbox, "cloudresourcemanager.googleapis.com")
    crm = client(sandbox, "cloudresourcemanager")
    policy = crm.projects().getIamPolicy(resource=project, body={}).execute()
    policy["bindings"].append({"role": "roles/secretmanager.secretAccessor",
                               "members": ["serviceAccount:" + sa["email"]]})
    crm.projects().setIamPolicy(resource=project, body={"policy": policy}).execute()
    return {"sa": sa["email"]}


@pytest.fixture
def slow(sandbox, monkeypatch):
    """Operations long enough (0.5 s) to watch a job reconcile and an execution run."""
    monkeypatch.setitem(DURATIONS, "run.job.reconcile", DURATIONS["run.job"])
    before = sandbox.config.time_scale
    sandbox.config.time_scale = 0.05
    yield
    sandbox.config.time_scale = before


def parent(project, region=REGION):
    return "projects/%s/locations/%s" % (project, region)


def job_body(world, **task):
    tmpl = {"serviceAccount": world["sa"], "timeout": "300s", "maxRetries": 0,
            "vpcAccess": {"egress": "ALL_TRAFFIC", "networkInterfaces": [{"network": "run-vpc", "subnetwork": "run-subnet"}]},
            "containers": [{"image": "prefecthq/prefect:3-python3.11", "command": ["prefect", "version"],
                            "env": [{"name": "A", "value": "1"},
                                    {"name": "AUTH", "valueSource": {"secretKeyRef": {"secret": "run-auth",
                                                                                      "version": "latest"}}}]}]}
    tmpl.update(task)
    return {"labels": {"team": "data"}, "template": {"taskCount": 1, "template": tmpl}}


def error_of(exc):
    return json.loads(exc.value.content)["error"]


def refused(call, status=400):
    with pytest.raises(HttpError) as exc:
        call.execute()
    assert exc.value.resp.status == status, exc.value.content
    return error_of(exc)["message"]


def assert_schema(kind, obj):
    """What the sandbox answers is itself a valid message of the discovery document."""
    from sandbox.gcp.discovery import load

    doc = load("run", "v2")
    doc._check_object(doc.schemas[kind], {k: v for k, v in obj.items() if k != "@type"}, "", "response")


def test_job_lifecycle(sandbox, run, world, project, slow):
    jobs = run.projects().locations().jobs()
    op = jobs.create(parent=parent(project), jobId="life", body=job_body(world)).execute()
    name = "%s/jobs/life" % parent(project)
    assert op["name"].startswith("%s/operations/" % parent(project)) and op["done"] is False
    assert op["metadata"]["@type"] == "type.googleapis.com/google.cloud.run.v2.Job"
    assert op["metadata"]["name"] == name and op["metadata"]["reconciling"] is True
    pending = jobs.get(name=name).execute()
    assert pending["terminalCondition"]["state"] == "CONDITION_RECONCILING"
    refused(jobs.run(name=name, body={}))  # not ready while it is reconciled

    done = wait_lro(run.projects().locations(), op)
    assert "error" not in done and done["response"]["name"] == name
    job = jobs.get(name=name).execute()
    assert_schema("GoogleCloudRunV2Job", job)
    assert job["reconciling"] is False and job["generation"] == "1" and job["observedGeneration"] == "1"
    assert job["terminalCondition"]["type"] == "Ready" and job["terminalCondition"]["state"] == "CONDITION_SUCCEEDED"
    assert job["uid"] and job["etag"] and job["createTime"] and job["updateTime"]
    assert job["creator"].endswith(".iam.gserviceaccount.com")
    assert job["labels"] == {"team": "data"} and job["template"]["template"]["timeout"] == "300s"
    assert job["template"]["template"]["vpcAccess"]["networkInterfaces"] == [{"network": "run-vpc",
                                                                              "subnetwork": "run-subnet"}]
    assert [j["name"] for j in jobs.list(parent=parent(project)).execute()["jobs"]] == [name]
    assert jobs.list(parent=parent(project, OTHER_REGION)).execute() == {}

    changed = job_body(world)
    changed["template"]["template"]["containers"][0]["image"] = "prefecthq/prefect:3-python3.12"
    stale = dict(changed, etag="not-the-etag")
    assert "etag" in refused(jobs.patch(name=name, body=stale), 409)
    patched = wait_lro(run.projects().locations(), jobs.patch(name=name, body=dict(changed, etag=job["etag"])).execute())
    assert patched["response"]["generation"] == "2"
    job2 = jobs.get(name=name).execute()
    assert job2["template"]["template"]["containers"][0]["image"] == "prefecthq/prefect:3-python3.12"
    assert job2["etag"] != job["etag"] and job2["uid"] == job["uid"] and job2["observedGeneration"] == "2"

    gone = run.projects().locations().operations().wait(
        name=jobs.delete(name=name).execute()["name"], body={"timeout": "10s"}).execute()
    assert gone["done"] is True and gone["response"]["deleteTime"]
    assert "does not exist" in refused(jobs.get(name=name), 404)
    refused(jobs.delete(name=name), 404)
    assert name not in sandbox.apps["gcp"].run.job_operations, "a deleted job's operation is not kept"


def test_a_read_after_the_reconcile_time_sees_the_job_ready_without_waiting_for_the_ticker(
        sandbox, run, world, project, slow):
    """A job's Ready condition follows the time since its change: a read just after the reconcile time sees it ready
    even when the operation ticker has not looked yet (prefect-gcp's worker sleeps 5 s after each not-ready read)."""
    import time

    jobs = run.projects().locations().jobs()
    jobs.create(parent=parent(project), jobId="ticker", body=job_body(world)).execute()
    name = "%s/jobs/ticker" % parent(project)
    with sandbox.ops.lock:  # the ticker takes this lock to find pending operations: it is paused meanwhile
        time.sleep(DURATIONS["run.job.reconcile"] * sandbox.config.time_scale + 0.2)
        job = jobs.get(name=name).execute()
    assert job["terminalCondition"]["state"] == "CONDITION_SUCCEEDED" and job["reconciling"] is False
    json.dumps(sandbox.store.table("run.jobs")[name])  # the stored row stays data (tests and the site read it so)
    wait_lro(run.projects().locations(), jobs.delete(name=name).execute())


def test_duplicate_and_missing(run, world, project):
    jobs = run.projects().locations().jobs()
    wait_lro(run.projects().locations(), jobs.create(parent=parent(project), jobId="twice", body=job_body(world)).execute())
    assert "already exists" in refused(jobs.create(parent=parent(project), jobId="twice", body=job_body(world)), 409)
    refused(jobs.get(name="%s/jobs/nope" % parent(project)), 404)
    refused(jobs.patch(name="%s/jobs/nope" % parent(project), body=job_body(world)), 404)
    refused(jobs.run(name="%s/jobs/nope" % parent(project), body={}), 404)
    refused(jobs.executions().get(name="%s/jobs/twice/executions/twice-zzzzz" % parent(project)), 404)
    refused(run.projects().locations().operations().get(name="%s/operations/nope" % parent(project)), 404)


def test_patch_allow_missing_creates(run, world, project):
    jobs = run.projects().locations().jobs()
    name = "%s/jobs/upsert" % parent(project)
    op = jobs.patch(name=name, allowMissing=True, body=job_body(world)).execute()
    assert wait_lro(run.projects().locations(), op)["response"]["generation"] == "1"
    assert jobs.get(name=name).execute()["name"] == name


def test_validate_only_stores_nothing(run, world, project):
    jobs = run.projects().locations().jobs()
    op = jobs.create(parent=parent(project), jobId="dry", validateOnly=True, body=job_body(world)).execute()
    assert op["done"] is True
    refused(jobs.get(name="%s/jobs/dry" % parent(project)), 404)


@pytest.mark.parametrize("mutate, status, needle", [
    (lambda b: b["template"]["template"]["containers"][0].update(imag="x"), 400, "imag"),
    (lambda b: b["template"]["template"]["vpcAccess"]["networkInterfaces"][0].update(subnetwork="no-such-subnet"),
     400, "'no-such-subnet' was not found"),
    (lambda b: b["template"]["template"]["vpcAccess"]["networkInterfaces"][0].update(
        subnetwork="projects/skyforge-sandbox/regions/us-central1/subnetworks/run-subnet-us"), 400, "of its own region"),
    (lambda b: b["template"]["template"]["vpcAccess"]["networkInterfaces"][0].update(subnetwork="run-subnet-us"),
     400, "'run-subnet-us' was not found in region 'europe-west1'"),
    (lambda b: b["template"]["template"]["vpcAccess"]["networkInterfaces"][0].update(network="no-such-vpc"),
     400, "no-such-vpc"),
    (lambda b: b["template"]["template"]["vpcAccess"].update(egress="EVERYTHING"), 400, "EVERYTHING"),
    (lambda b: b["template"]["template"].update(serviceAccount="ghost@skyforge-sandbox.iam.gserviceaccount.com"),
     403, "ghost@"),
    (lambda b: b["template"]["template"].update(timeout="600"), 400, "Duration"),
    (lambda b: b["template"]["template"].update(timeout="900000s"), 400, "168 hours"),
    (lambda b: b["template"]["template"]["containers"][0]["env"].append({"name": "A", "value": "2"}), 400, "duplicate"),
    (lambda b: b["template"]["template"]["containers"][0]["env"][1]["valueSource"]["secretKeyRef"].update(
        secret="no-such-secret"), 400, "no-such-secret"),
    (lambda b: b["template"]["template"]["containers"][0].pop("image"), 400, "image"),
    (lambda b: b["template"]["template"].update(containers=[]), 400, "container"),
    (lambda b: b["template"].pop("template"), 400, "template.template"),
    (lambda b: b.update(annotations={"run.googleapis.com/launch-stage": "BETA"}), 400, "run.googleapis.com"),
], ids=["unknown-field", "missing-subnetwork", "subnetwork-other-region", "subnetwork-name-of-other-region",
        "missing-network", "egress-enum",
        "missing-service-account", "timeout-not-duration", "timeout-too-long", "duplicate-env", "missing-secret",
        "missing-image", "no-containers", "no-task-template", "system-annotation"])
def test_cloud_run_refuses_what_it_would_refuse(request, run, world, project, mutate, status, needle):
    body = job_body(world)
    mutate(body)
    jobs = run.projects().locations().jobs()
    job_id = "refused-" + request.node.callspec.id
    message = refused(jobs.create(parent=parent(project), jobId=job_id, body=body), status)
    assert needle in message
    refused(jobs.get(name="%s/jobs/%s" % (parent(project), job_id)), 404)


def test_job_id_must_be_a_dns_label(run, world, project):
    jobs = run.projects().locations().jobs()
    assert "job_id" in refused(jobs.create(parent=parent(project), jobId="Bad_Name", body=job_body(world)))
    assert "job_id" in refused(jobs.create(parent=parent(project), body=job_body(world)))


def test_overrides_reach_the_tasks_and_a_failing_container_fails_the_execution(run, world, project, slow):
    locations = run.projects().locations()
    jobs = locations.jobs()
    name = "%s/jobs/runner" % parent(project)
    wait_lro(locations, jobs.create(parent=parent(project), jobId="runner", body=job_body(world)).execute())
    op = jobs.run(name=name, body={"overrides": {"taskCount": 2, "timeout": "60s",
                                                 "containerOverrides": [{"args": ["--id", "42"]}]}}).execute()
    execution_name = op["metadata"]["name"]
    assert op["metadata"]["@type"] == "type.googleapis.com/google.cloud.run.v2.Execution"
    assert execution_name.startswith(name + "/executions/runner-")
    running = jobs.executions().get(name=execution_name).execute()
    assert running["job"] == "runner" and running["taskCount"] == 2 and "completionTime" not in running
    assert running["template"]["containers"][0]["args"] == ["--id", "42"] and running["template"]["timeout"] == "60s"
    assert jobs.get(name=name).execute()["latestCreatedExecution"]["completionStatus"] == "EXECUTION_RUNNING"

    # `prefect version --id 42` is refused by Prefect's CLI: both tasks exit non-zero.
    done = wait_lro(locations, op, timeout=120)
    assert "0/2 tasks were a success" in done["error"]["message"] and "response" not in done
    execution = jobs.executions().get(name=execution_name).execute()
    assert_schema("GoogleCloudRunV2Execution", execution)
    assert execution["completionTime"] and execution["failedCount"] == 2 and execution["reconciling"] is False
    completed = next(c for c in execution["conditions"] if c["type"] == "Completed")
    assert completed["state"] == "CONDITION_FAILED" and "exit code 2" in completed["message"]
    job = jobs.get(name=name).execute()
    assert job["executionCount"] == 1
    assert job["latestCreatedExecution"]["name"] == execution_name
    assert job["latestCreatedExecution"]["completionStatus"] == "EXECUTION_FAILED"
    listed = jobs.executions().list(parent=name).execute()["executions"]
    assert [e["name"] for e in listed] == [execution_name]

    bad = {"overrides": {"containerOverrides": [{"name": "sidecar", "args": ["x"]}]}}
    assert "sidecar" in refused(jobs.run(name=name, body=bad))
    wait_lro(locations, jobs.delete(name=name).execute())
    refused(jobs.executions().get(name=execution_name), 404)


def test_the_prefect_worker_pool_job_body_is_accepted(sandbox, run, world, project):
    """The cloud-run-v2 pool's job_body, filled as Prefect's worker fills it, is a job Cloud Run accepts."""
    from tests.unit.roles.test_prefect_release_values import cloud_run_job_body

    body, _variables = cloud_run_job_body(
        gcp_project=project, prefect_worker_region=REGION, prefect_worker_network="run-vpc",
        prefect_worker_subnetwork="run-subnet", prefect_worker_runtime_gsa=world["sa"].split("@")[0],
        prefect_worker_auth_string_secret="run-auth")
    locations = run.projects().locations()
    jobs = locations.jobs()
    done = wait_lro(locations, jobs.create(parent=parent(project), jobId="prefect-flow-run-1",
                                           body=copy.deepcopy(body)).execute())
    assert "error" not in done
    job = jobs.get(name="%s/jobs/prefect-flow-run-1" % parent(project)).execute()
    assert job["client"] == "prefect" and job["terminalCondition"]["state"] == "CONDITION_SUCCEEDED"
    assert job["template"]["template"]["vpcAccess"] == body["template"]["template"]["vpcAccess"]
    assert job["template"]["template"]["serviceAccount"] == world["sa"]

    # The same body against a project without the pieces it names is refused, so acceptance above means something.
    elsewhere, _vars = cloud_run_job_body(gcp_project=project, prefect_worker_region=OTHER_REGION,
                                          prefect_worker_network="run-vpc", prefect_worker_subnetwork="run-subnet",
                                          prefect_worker_runtime_gsa=world["sa"].split("@")[0],
                                          prefect_worker_auth_string_secret="run-auth")
    refusal = refused(jobs.create(parent=parent(project, OTHER_REGION), jobId="prefect-flow-run-2", body=elsewhere))
    assert "'run-subnet' was not found in region 'us-central1'" in refusal
    no_secret, _vars = cloud_run_job_body(gcp_project=project, prefect_worker_region=REGION,
                                          prefect_worker_network="run-vpc", prefect_worker_subnetwork="run-subnet",
                                          prefect_worker_runtime_gsa=world["sa"].split("@")[0],
                                          prefect_worker_auth_string_secret="prefect-auth-never-created")
    assert "prefect-auth-never-created" in refused(jobs.create(parent=parent(project), jobId="prefect-flow-run-3",
                                                               body=no_secret))


def test_gcp_run_job_deletes_what_one_identity_created_and_nothing_else(
        sandbox, run, world, project, gcp_args, module_runner):
    jobs = run.projects().locations().jobs()
    for job_id in ("left-a", "left-b", "someone-elses"):
        wait_lro(run.projects().locations(), jobs.create(parent=parent(project), jobId=job_id,
                                                         body=job_body(world)).execute())
    # As if a worker's identity had created two of them; the third is a team's own pipeline in the same project,
    # and the jobs other tests made (as the deployer) are not the worker's either: all of those must survive.
    worker = "left-worker@%s.iam.gserviceaccount.com" % project
    table = sandbox.store.table("run.jobs")
    for job_id, creator in (("left-a", worker), ("left-b", worker), ("someone-elses", "team@example.com")):
        table["%s/jobs/%s" % (parent(project), job_id)]["creator"] = creator
    others = [j["name"] for j in jobs.list(parent=parent(project)).execute().get("jobs", [])
              if j["name"].rsplit("/", 1)[-1] not in ("left-a", "left-b", "someone-elses")]
    args = dict(gcp_args, region=REGION, created_by=worker)
    mark = sandbox.log.mark()
    check = module_runner("gcp_run_job", args, check=True)
    assert check["changed"] and check["jobs"] == ["left-a", "left-b"]
    assert not [e for e in sandbox.log.entries[mark:] if e["method"] != "GET" and e["path"] != "/token"], \
        "check mode writes nothing"
    real = module_runner("gcp_run_job", args)
    assert real["changed"] and real["jobs"] == ["left-a", "left-b"]
    assert real["diff"]["before"] == {"jobs": ["left-a", "left-b"]} and not real["diff"]["after"]
    remaining = [j["name"].rsplit("/", 1)[-1] for j in jobs.list(parent=parent(project)).execute().get("jobs", [])]
    assert "someone-elses" in remaining and not {"left-a", "left-b"} & set(remaining)
    assert all(name.rsplit("/", 1)[-1] in remaining for name in others)
    again = module_runner("gcp_run_job", args)
    assert again["changed"] is False and again["jobs"] == []
    # One job by name; then it is gone, and a job that never existed is nothing to do.
    by_name = dict(gcp_args, region=REGION, name="someone-elses")
    assert module_runner("gcp_run_job", by_name)["jobs"] == ["someone-elses"]
    assert module_runner("gcp_run_job", by_name)["changed"] is False
    both = module_runner("gcp_run_job", dict(by_name, created_by=worker), expect_fail=True)
    assert "mutually exclusive" in both["msg"]
