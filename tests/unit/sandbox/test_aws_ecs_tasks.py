"""The AWS stand-in runs an ECS service's task for real: a Prefect worker whose credentials come from Secrets Manager
through the execution role, ONLINE in a real Prefect server's pool; a role that may not read the secret starts
nothing, as ECS refuses it."""

import json
import time

from sandbox.aws.ecs_tasks import EcsTaskRunner
from tests.unit.plugins.modules.test_prefect import AUTH, prefect  # noqa: F401  # pylint: disable=unused-import

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def _role(iam, name, resource):
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": [resource]}]}))
    return iam.get_role(RoleName=name)["Role"]["Arn"]


def _service(aws_standin, cluster, name, role_arn, secret_arn, keys, subnet, group):
    ecs = aws_standin.client("ecs")
    td = ecs.register_task_definition(
        family=name, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        executionRoleArn=role_arn,
        containerDefinitions=[{
            "name": "worker", "image": "prefecthq/prefect:3.8.8-python3.11", "essential": True,
            "command": ["prefect", "worker", "start", "--pool", "ecs-pool", "--type", "process", "--name", name],
            "environment": [{"name": "PREFECT_WORKER_HEARTBEAT_SECONDS", "value": "5"}],
            "secrets": [{"name": k, "valueFrom": "%s:%s::" % (secret_arn, k)} for k in keys]}])["taskDefinition"]
    return ecs.create_service(
        cluster=cluster, serviceName=name, taskDefinition=td["taskDefinitionArn"], desiredCount=1,
        launchType="FARGATE", networkConfiguration={"awsvpcConfiguration": {
            "subnets": [subnet], "securityGroups": [group], "assignPublicIp": "DISABLED"}})["service"]["serviceArn"]


def test_service_task_runs_a_worker_that_is_online(aws_standin, prefect, module_runner, tmp_path):  # noqa: F811
    api = {"api_url": prefect["url"], "auth_string": AUTH}
    module_runner("prefect_work_pool", dict(api, name="ecs-pool", type="process"))
    ec2, iam = aws_standin.client("ec2"), aws_standin.client("iam")
    vpc = ec2.create_vpc(CidrBlock="10.95.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.95.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="ecs-tasks-test", Description="worker", VpcId=vpc)["GroupId"]
    values = {"PREFECT_API_URL": prefect["url"], "PREFECT_API_AUTH_STRING": AUTH,
              "PREFECT_CLIENT_CUSTOM_HEADERS": json.dumps({"CF-Access-Client-Id": "id.access",
                                                           "CF-Access-Client-Secret": "s"})}
    sm = aws_standin.client("secretsmanager")
    secret = sm.create_secret(Name="ecs-tasks-test/prefect", SecretString=json.dumps(values))["ARN"]
    other = sm.create_secret(Name="ecs-tasks-test/other", SecretString="{}")["ARN"]
    aws_standin.client("ecs").create_cluster(clusterName="ecs-tasks-test")

    good = _service(aws_standin, "ecs-tasks-test", "ecs-worker-ok",
                    _role(iam, "ecs-tasks-ok", secret), secret, sorted(values), subnet, group)
    denied = _service(aws_standin, "ecs-tasks-test", "ecs-worker-denied",
                      _role(iam, "ecs-tasks-denied", other), secret, sorted(values), subnet, group)
    runner = EcsTaskRunner(aws_standin, str(tmp_path)).start()
    try:
        assert good in runner.tasks
        assert denied not in runner.tasks
        refusal = runner.stopped_reasons[denied]
        assert "not authorized to perform secretsmanager:GetSecretValue on %s" % secret in refusal

        info = module_runner("prefect_work_pool_info", dict(api, name="ecs-pool", wait_for_online=1, timeout=180))
        assert info["online"] >= 1 and "ecs-worker-ok" in [w["name"] for w in info["workers"]], info["workers"]

        # desiredCount 0 stops the task.
        proc = runner.tasks[good][1]
        aws_standin.client("ecs").update_service(cluster="ecs-tasks-test", service="ecs-worker-ok", desiredCount=0)
        deadline = time.time() + 60
        while good in runner.tasks and time.time() < deadline:
            time.sleep(0.5)
        assert good not in runner.tasks and proc.poll() is not None
    finally:
        runner.stop()
