"""Role ecs_prefect_worker through ansible-playbook against the AWS stand-in (moto on loopback): check mode on an
empty account, converge twice (the second changes nothing: no new task definition revision), teardown twice."""

import json
import os
import subprocess
import sys

import yaml

from sandbox.aws.ecs_tasks import EcsTaskRunner
from tests.unit.conftest import REPO
from tests.unit.idempotence import changed_tasks, recap

# Run by this interpreter: the venv's script may name another one (a copied venv keeps its shebang).
PLAYBOOK_CLI = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
NAME = "ecs-test-worker"
NAMESPACE = "ecs-test.internal"


def _vars(aws_standin, tmp_path, **extra):
    info = aws_standin.endpoint_info()
    data = {
        "skyforge_aws_auth": {"region": info["aws_region"], "endpoint_url": info["aws_endpoint_url"],
                              "access_key": info["aws_access_key_id"], "secret_key": info["aws_secret_access_key"]},
        "ecs_prefect_worker_region": info["aws_region"],
        "ecs_prefect_worker_name": NAME,
        "ecs_prefect_worker_namespace": NAMESPACE,
        "ecs_prefect_worker_vpc_cidr": "10.90.0.0/16",
        "ecs_prefect_worker_public_subnet_cidr": "10.90.0.0/24",
        "ecs_prefect_worker_private_subnet_cidr": "10.90.1.0/24",
        "ecs_prefect_worker_work_pool": "ecs-pool",
        "ecs_prefect_worker_api_url": "https://prefect.example.test/api",
        "ecs_prefect_worker_auth_string": "admin:pw-not-shown",
        "ecs_prefect_worker_access_client_id": "cid.access",
        "ecs_prefect_worker_access_client_secret": "cf-secret-not-shown",
        "ansible_python_interpreter": sys.executable,
    }
    data.update(extra)
    path = tmp_path / "vars-{}.yml".format(len(list(tmp_path.iterdir())))
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _play(aws_standin, tmp_path, check=False, **extra):
    argv = [sys.executable, PLAYBOOK_CLI, "-i", "localhost,", "-c", "local",
            os.path.join(REPO, "playbooks", "ecs_worker.yml"), "-e", "@" + _vars(aws_standin, tmp_path, **extra)]
    if check:
        argv.append("--check")
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    # Only the stand-in: no profile, IMDS or real endpoint is ever consulted.
    env.update(aws_standin.env())
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=900, check=False)
    out = proc.stdout + proc.stderr
    counts = recap(out)
    assert counts is not None and counts[2] == 0 and proc.returncode == 0, out[-4000:]
    return counts, out


def _vpcs(ec2):
    return ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [NAME + "-vpc"]}])["Vpcs"]


def test_bad_input_fails_before_any_api_call(aws_standin, tmp_path):
    argv = [sys.executable, PLAYBOOK_CLI, "-i", "localhost,", "-c", "local",
            os.path.join(REPO, "playbooks", "ecs_worker.yml"),
            "-e", "@" + _vars(aws_standin, tmp_path, ecs_prefect_worker_private_subnet_cidr="10.91.1.0/24",
                              skyforge_aws_auth={"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9"})]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0 and "holding both subnets" in out, out[-2000:]
    assert "Find the worker's VPC" not in out


def _allow_list(sandbox, name):
    """The list's entries as (value, description), sorted."""
    found = next(r for r in sandbox.store.table("cloudflare.gateway_lists").values() if r.get("name") == name)
    return sorted((i["value"], i.get("description")) for i in found["items"])


def test_converge_twice_then_teardown_twice(aws_standin, tmp_path, sandbox, cf_args, module_runner):
    ec2, ecs = aws_standin.client("ec2"), aws_standin.client("ecs")
    # The platform's Access allow-list, as its cloudflare_zero_trust role leaves it: the worker adds only its own entry.
    owner = {"value": "203.0.113.7/32", "description": "Cloud NAT egress"}
    module_runner("cloudflare_zero_trust_list", dict(cf_args, name="ecs-allow", items=[owner]))
    cloudflare = {"ecs_prefect_worker_access_list": "ecs-allow", "skyforge_cloudflare_auth": cf_args}

    # Check mode on an account without the worker: a predicted change, and nothing written.
    (_ok, changed, _failed), out = _play(aws_standin, tmp_path, check=True, **cloudflare)
    assert changed >= 1 and "Would create VPC %s-vpc" % NAME in out
    assert not _vpcs(ec2)
    assert not [c for c in ecs.describe_clusters(clusters=[NAME])["clusters"] if c["status"] == "ACTIVE"]

    (_ok, changed, _failed), out = _play(aws_standin, tmp_path, **cloudflare)
    assert changed > 10
    assert "pw-not-shown" not in out and "cf-secret-not-shown" not in out
    assert cf_args["api_token"] not in out

    (_ok, changed, _failed), out = _play(aws_standin, tmp_path, **cloudflare)
    assert changed == 0, "the second run must change nothing:\n%s" % changed_tasks(out)

    # A check run on the converged account predicts nothing either.
    (_ok, changed, _failed), out = _play(aws_standin, tmp_path, check=True, **cloudflare)
    assert changed == 0, changed_tasks(out)

    # The Elastic IP passes Access's IP rule beside the owner's entry.
    egress = ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": [NAME + "-nat"]}])["Addresses"][0]
    assert _allow_list(sandbox, "ecs-allow") == sorted(
        [(owner["value"], owner["description"]), (egress["PublicIp"] + "/32", "ECS worker %s egress" % NAME)])

    # A change the module alone would miss (cpu; a container's secrets) registers one new revision, once.
    (_ok, changed, _failed), out = _play(aws_standin, tmp_path, ecs_prefect_worker_cpu="512",
                                         ecs_prefect_worker_memory="1024")
    assert "Task definition of the worker" in changed_tasks(out)
    (_ok, changed, _failed), out = _play(aws_standin, tmp_path, ecs_prefect_worker_cpu="512",
                                         ecs_prefect_worker_memory="1024")
    assert changed == 0, changed_tasks(out)

    # One task definition revision, a Fargate service in the private subnet without a public IP.
    revisions = ecs.list_task_definitions(familyPrefix=NAME, status="ACTIVE")["taskDefinitionArns"]
    assert [r.rsplit(":", 1)[1] for r in revisions] == ["2"], revisions
    service = ecs.describe_services(cluster=NAME, services=[NAME])["services"][0]
    vpc = _vpcs(ec2)[0]["VpcId"]
    private = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": [NAME + "-private"]}])["Subnets"][0]
    awsvpc = service["networkConfiguration"]["awsvpcConfiguration"]
    assert service["launchType"] == "FARGATE" and service["desiredCount"] == 1
    assert awsvpc["subnets"] == [private["SubnetId"]] and awsvpc["assignPublicIp"] == "DISABLED"
    assert service["taskDefinition"].split("/")[-1] == revisions[0].split("/")[-1] == NAME + ":2"
    assert service["serviceRegistries"][0]["registryArn"].startswith("arn:aws:servicediscovery:")

    # The private subnet leaves through the NAT gateway, which sits on the tagged Elastic IP.
    nat = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NatGateways"]
    assert len(nat) == 1
    eip = ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": [NAME + "-nat"]}])["Addresses"]
    assert len(eip) == 1 and nat[0]["NatGatewayAddresses"][0]["AllocationId"] == eip[0]["AllocationId"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [private["SubnetId"]]}])
    routes = tables["RouteTables"][0]["Routes"]
    assert any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("NatGatewayId") == nat[0]["NatGatewayId"]
               for r in routes), routes

    # The secret holds the Access headers; the execution role may read exactly that secret.
    sm = aws_standin.client("secretsmanager")
    secret = sm.describe_secret(SecretId=NAME + "/prefect")
    values = json.loads(sm.get_secret_value(SecretId=secret["ARN"])["SecretString"])
    assert json.loads(values["PREFECT_CLIENT_CUSTOM_HEADERS"]) == {
        "CF-Access-Client-Id": "cid.access", "CF-Access-Client-Secret": "cf-secret-not-shown"}
    assert values["PREFECT_API_URL"] == "https://prefect.example.test/api"
    taskdef = ecs.describe_task_definition(taskDefinition=revisions[0])["taskDefinition"]
    container = taskdef["containerDefinitions"][0]
    assert sorted(s["name"] for s in container["secrets"]) == sorted(values)
    assert all(s["valueFrom"] == "%s:%s::" % (secret["ARN"], s["name"]) for s in container["secrets"])
    assert container["command"] == ["prefect", "worker", "start", "--pool", "ecs-pool", "--type", "process"]
    iam = aws_standin.client("iam")
    policy = iam.get_role_policy(RoleName=NAME + "-execution", PolicyName="read-worker-secret")["PolicyDocument"]
    reads = [s for s in policy["Statement"] if "secretsmanager:GetSecretValue" in s["Action"]]
    assert len(reads) == 1 and reads[0]["Resource"] == [secret["ARN"]]
    assert taskdef["executionRoleArn"].endswith(":role/%s-execution" % NAME)
    assert (taskdef["cpu"], taskdef["memory"]) == ("512", "1024")
    # What ECS checks before the container starts (execution role trust, GetSecretValue on the secret, its keys)
    # passes, and the worker gets its credentials (the sandbox's ECS runs it: tests/unit/sandbox/test_aws_ecs_tasks.py).
    env = EcsTaskRunner(aws_standin, str(tmp_path)).container_env(taskdef)
    assert env["PREFECT_API_AUTH_STRING"] == "admin:pw-not-shown"
    assert json.loads(env["PREFECT_CLIENT_CUSTOM_HEADERS"])["CF-Access-Client-Id"] == "cid.access"

    (_ok, changed, _failed), out = _play(aws_standin, tmp_path, ecs_prefect_worker_state="absent", **cloudflare)
    assert changed > 5
    (_ok, changed, _failed), out = _play(aws_standin, tmp_path, ecs_prefect_worker_state="absent", **cloudflare)
    assert changed == 0, "a second teardown must change nothing:\n%s" % changed_tasks(out)
    assert _allow_list(sandbox, "ecs-allow") == [(owner["value"], owner["description"])], "it removes only its entry"
    assert not _vpcs(ec2)
    assert not ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": [NAME + "-nat"]}])["Addresses"]
    assert not [c for c in ecs.describe_clusters(clusters=[NAME])["clusters"] if c["status"] == "ACTIVE"]
    assert NAMESPACE not in [n["Name"] for n in aws_standin.client("servicediscovery").list_namespaces()["Namespaces"]]
