"""Real google-api-python-client clients against the sandbox, with the sandbox's service-account key."""

import time

import google.oauth2.service_account as sa
from googleapiclient import discovery, discovery_cache
import json


def client(sandbox, api, version="v1"):
    ep = sandbox.endpoints()
    creds = sa.Credentials.from_service_account_file(ep["gcp_service_account_file"],
                                                     scopes=["https://www.googleapis.com/auth/cloud-platform"])
    service_path = json.loads(discovery_cache.get_static_doc(api, version))["servicePath"]
    root = ep["gcp_api_endpoint_template"].format(api=api)
    return discovery.build(api, version, credentials=creds, static_discovery=True,
                           client_options={"api_endpoint": root + service_path})


def enable(sandbox, *services):
    app = sandbox.apps["gcp"]
    for svc in services:
        app.enabled["projects/%s/services/%s" % (app.project_number, svc)] = True


def wait_compute(compute, project, op, timeout=30):
    deadline = time.time() + timeout
    while op["status"] != "DONE":
        assert time.time() < deadline, "operation did not finish"
        if "region" in op:
            op = compute.regionOperations().wait(project=project, region=op["region"].rsplit("/", 1)[-1],
                                                 operation=op["name"]).execute()
        else:
            op = compute.globalOperations().wait(project=project, operation=op["name"]).execute()
    return op


def wait_lro(svc, op, timeout=30):
    deadline = time.time() + timeout
    while not op.get("done"):
        assert time.time() < deadline, "operation did not finish"
        time.sleep(0.02)
        op = svc.operations().get(name=op["name"]).execute()
    return op
