"""Cloud Storage IAM in the sandbox: a workload's token (Workload Identity, a Cloud Run task, a VM) reaches objects
only through a binding on the bucket or the project, as IAM decides; a binding on one bucket opens no other."""

import json

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaInMemoryUpload

from .gcp_helpers import enable
from .test_gcp_ml_artifacts import storage_client


def workload_client(sandbox, email):
    """A storage client holding a token minted for a pod acting as `email`, as its metadata server mints it."""
    import google.oauth2.credentials
    from googleapiclient import discovery, discovery_cache

    token = sandbox.apps["gcp"].auth.mint(email, origin="workload:pod/test/%s" % email.split("@")[0])
    doc = json.loads(discovery_cache.get_static_doc("storage", "v1"))
    doc["rootUrl"] = sandbox.endpoints()["gcp_api_endpoint_template"].format(api="storage")
    doc["baseUrl"] = doc["rootUrl"] + doc["servicePath"]
    return discovery.build_from_document(doc, credentials=google.oauth2.credentials.Credentials(token))


def put(st, bucket, name, data=b"x"):
    return st.objects().insert(bucket=bucket, name=name, media_body=MediaInMemoryUpload(data)).execute()


def refused(call, permission):
    with pytest.raises(HttpError) as exc:
        call()
    error = json.loads(exc.value.content)["error"]
    assert exc.value.resp.status == 403 and permission in error["message"], error
    return error


def test_workload_object_access_needs_a_bucket_or_project_binding(sandbox):
    enable(sandbox, "storage.googleapis.com")
    project = sandbox.config.project
    admin = storage_client(sandbox)
    for name in ("wi-own-bucket", "wi-other-bucket"):
        admin.buckets().insert(project=project, body={"name": name, "location": "europe-west1"}).execute()
    put(admin, "wi-own-bucket", "seed.txt", b"seed")
    email = "wi-reader@%s.iam.gserviceaccount.com" % project
    member = "serviceAccount:%s" % email
    pod = workload_client(sandbox, email)

    refused(lambda: put(pod, "wi-own-bucket", "a.txt"), "storage.objects.create")
    refused(lambda: pod.objects().get_media(bucket="wi-own-bucket", object="seed.txt").execute(),
            "storage.objects.get")
    refused(lambda: pod.objects().list(bucket="wi-own-bucket").execute(), "storage.objects.list")

    # A read-only role on the bucket: reads pass, writes still need a role that grants them.
    policy = admin.buckets().getIamPolicy(bucket="wi-own-bucket").execute()
    policy["bindings"].append({"role": "roles/storage.objectViewer", "members": [member]})
    policy = admin.buckets().setIamPolicy(bucket="wi-own-bucket", body=policy).execute()
    assert pod.objects().get_media(bucket="wi-own-bucket", object="seed.txt").execute() == b"seed"
    refused(lambda: put(pod, "wi-own-bucket", "a.txt"), "storage.objects.create")

    policy["bindings"].append({"role": "roles/storage.objectAdmin", "members": [member]})
    admin.buckets().setIamPolicy(bucket="wi-own-bucket", body=policy).execute()
    put(pod, "wi-own-bucket", "a.txt", b"mine")
    pod.objects().delete(bucket="wi-own-bucket", object="a.txt").execute()
    refused(lambda: put(pod, "wi-other-bucket", "a.txt"), "storage.objects.create")

    # A project binding opens every bucket of the project, the deployer's token needs neither.
    policies = sandbox.store.table("iam.policies")
    key = "projects/%s" % project
    saved = json.loads(json.dumps(policies.get(key)))
    try:
        policies[key] = dict(saved or {"version": 1, "etag": "x"}, bindings=list((saved or {}).get("bindings", []))
                             + [{"role": "roles/storage.objectAdmin", "members": [member]}])
        put(pod, "wi-other-bucket", "b.txt")
        pod.objects().delete(bucket="wi-other-bucket", object="b.txt").execute()
    finally:
        if saved is None:
            policies.pop(key, None)
        else:
            policies[key] = saved
    refused(lambda: put(pod, "wi-other-bucket", "b.txt"), "storage.objects.create")
    admin.objects().delete(bucket="wi-own-bucket", object="seed.txt").execute()
    for name in ("wi-own-bucket", "wi-other-bucket"):
        admin.buckets().delete(bucket=name).execute()
    assert "projects/_/buckets/wi-own-bucket" not in policies, "a deleted bucket's policy goes with it"
