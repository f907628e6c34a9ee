"""storage, cloudkms and artifactregistry v1 in the sandbox through real clients: strict bodies, media, 409s."""

import io
import json

import pytest
from googleapiclient.errors import HttpError

from .gcp_helpers import client, enable, wait_lro


def error_of(exc):
    return json.loads(exc.value.content)["error"]


def storage_client(sandbox):
    """googleapiclient builds media URLs from the document's rootUrl (keeping its https): point it at the sandbox."""
    import google.oauth2.service_account as sa
    from googleapiclient import discovery, discovery_cache

    ep = sandbox.endpoints()
    doc = json.loads(discovery_cache.get_static_doc("storage", "v1"))
    doc["rootUrl"] = ep["gcp_api_endpoint_template"].format(api="storage")
    doc["baseUrl"] = doc["rootUrl"] + doc["servicePath"]
    creds = sa.Credentials.from_service_account_file(ep["gcp_service_account_file"],
                                                     scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return discovery.build_from_document(doc, credentials=creds)


@pytest.fixture(scope="module")
def st(sandbox):
    enable(sandbox, "storage.googleapis.com", "cloudkms.googleapis.com", "artifactregistry.googleapis.com")
    return storage_client(sandbox)


def test_bucket_body_is_strict_and_names_follow_gcs_rules(sandbox, st):
    project = sandbox.config.project
    with pytest.raises(HttpError) as exc:
        st.buckets().insert(project=project, body={"name": "strict-one", "bogus": 1}).execute()
    assert exc.value.resp.status == 400 and 'Unknown name "bogus"' in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        st.buckets().insert(project=project, body={"name": "strict-one", "iamConfiguration": {
            "publicAccessPrevention": "sometimes"}}).execute()
    assert exc.value.resp.status == 400 and "publicAccessPrevention" in error_of(exc)["message"]
    for name in ("Upper", "ab", "goog-x", "has-google-in", "-dash"):
        with pytest.raises(HttpError) as exc:
            st.buckets().insert(project=project, body={"name": name}).execute()
        assert exc.value.resp.status == 400, name
    with pytest.raises(HttpError) as exc:
        st.buckets().insert(project=project, body={"name": "strict-two", "lifecycle": {"rule": [
            {"action": {"type": "Delete"}, "condition": {}}]}}).execute()
    assert "at least one condition" in error_of(exc)["message"]


def test_objects_media_versioning_patch_and_non_empty_delete(sandbox, st):
    from googleapiclient.http import MediaIoBaseUpload

    project = sandbox.config.project
    b = st.buckets().insert(project=project, body={"name": "media-bucket", "location": "europe-west1",
                                                   "versioning": {"enabled": True}, "labels": {"a": "1", "b": "2"},
                                                   "iamConfiguration": {"uniformBucketLevelAccess": {
                                                       "enabled": True}}}).execute()
    assert b["location"] == "EUROPE-WEST1" and b["locationType"] == "region" and b["metageneration"] == "1"
    assert b["iamConfiguration"]["bucketPolicyOnly"]["enabled"] is True
    assert b["iamConfiguration"]["uniformBucketLevelAccess"]["lockedTime"]
    with pytest.raises(HttpError) as exc:
        st.buckets().insert(project=project, body={"name": "media-bucket"}).execute()
    assert exc.value.resp.status == 409

    patched = st.buckets().patch(bucket="media-bucket", body={"labels": {"a": None, "c": "3"}}).execute()
    assert patched["labels"] == {"b": "2", "c": "3"} and patched["metageneration"] == "2"
    with pytest.raises(HttpError) as exc:
        st.buckets().patch(bucket="media-bucket", body={"location": "US"}).execute()
    assert exc.value.resp.status == 400 and "location cannot be changed" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        st.buckets().patch(bucket="media-bucket", ifMetagenerationMatch="1", body={"labels": {}}).execute()
    assert exc.value.resp.status == 412

    media = st.objects().insert(bucket="media-bucket", name="models/v1/model.bin",
                                media_body=MediaIoBaseUpload(io.BytesIO(b"weights-1"), "application/octet-stream"))
    first = media.execute()
    assert first["size"] == "9" and first["bucket"] == "media-bucket"
    second = st.objects().insert(bucket="media-bucket", body={"name": "models/v1/model.bin", "metadata": {"run": "2"}},
                                 media_body=MediaIoBaseUpload(io.BytesIO(b"weights-2"), "text/plain")).execute()
    assert second["metadata"] == {"run": "2"} and second["generation"] > first["generation"]
    assert st.objects().get_media(bucket="media-bucket", object="models/v1/model.bin").execute() == b"weights-2"
    assert st.objects().get_media(bucket="media-bucket", object="models/v1/model.bin",
                                  generation=first["generation"]).execute() == b"weights-1"
    listed = st.objects().list(bucket="media-bucket", versions=True).execute()["items"]
    assert [o["generation"] for o in listed] == [first["generation"], second["generation"]]
    top = st.objects().list(bucket="media-bucket", delimiter="/").execute()
    assert top.get("prefixes") == ["models/"] and "items" not in top
    with pytest.raises(HttpError) as exc:
        st.objects().insert(bucket="media-bucket", name="x", body={"name": "x", "bogus": 1},
                            media_body=MediaIoBaseUpload(io.BytesIO(b"x"), "text/plain")).execute()
    assert exc.value.resp.status == 400 and 'Unknown name "bogus"' in error_of(exc)["message"]

    st.objects().delete(bucket="media-bucket", object="models/v1/model.bin").execute()
    with pytest.raises(HttpError) as exc:
        st.buckets().delete(bucket="media-bucket").execute()
    assert exc.value.resp.status == 409 and "not empty" in error_of(exc)["message"], "noncurrent versions count"
    for o in st.objects().list(bucket="media-bucket", versions=True).execute()["items"]:
        st.objects().delete(bucket="media-bucket", object=o["name"], generation=o["generation"]).execute()
    st.buckets().delete(bucket="media-bucket").execute()
    with pytest.raises(HttpError) as exc:
        st.buckets().get(bucket="media-bucket").execute()
    assert exc.value.resp.status == 404


def test_google_cloud_storage_client_round_trip(sandbox, st):
    gcs = pytest.importorskip("google.cloud.storage")
    import google.oauth2.service_account as sa

    ep = sandbox.endpoints()
    creds = sa.Credentials.from_service_account_file(ep["gcp_service_account_file"],
                                                     scopes=["https://www.googleapis.com/auth/cloud-platform"])
    cl = gcs.Client(project=ep["gcp_project"], credentials=creds,
                    client_options={"api_endpoint": ep["gcp_api_endpoint_template"].format(api="storage").rstrip("/")})
    bucket = cl.create_bucket("gcs-client-bucket", location="europe-west1")
    blob = bucket.blob("runs/run 1/metrics.json")
    blob.upload_from_string(b'{"loss": 0.1}', content_type="application/json")
    assert bucket.blob("runs/run 1/metrics.json").download_as_bytes() == b'{"loss": 0.1}'
    assert [b.name for b in cl.list_blobs("gcs-client-bucket")] == ["runs/run 1/metrics.json"]
    blob.delete()
    bucket.delete()


def test_kms_is_strict_and_refuses_what_gcp_refuses(sandbox, st):
    kms = client(sandbox, "cloudkms").projects().locations().keyRings()
    parent = "projects/%s/locations/europe-west1" % sandbox.config.project
    ring = kms.create(parent=parent, keyRingId="contract", body={}).execute()
    with pytest.raises(HttpError) as exc:
        kms.cryptoKeys().create(parent=ring["name"], cryptoKeyId="k",
                                body={"purpose": "ENCRYPT_DECRYPT", "bogus": True}).execute()
    assert exc.value.resp.status == 400 and 'Unknown name "bogus"' in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        kms.cryptoKeys().create(parent=ring["name"], cryptoKeyId="k", body={
            "purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "3600s",
            "nextRotationTime": "2030-01-01T00:00:00Z"}).execute()
    assert "at least 24 hours" in error_of(exc)["message"]
    key = kms.cryptoKeys().create(parent=ring["name"], cryptoKeyId="k", body={"purpose": "ENCRYPT_DECRYPT"}).execute()
    assert key["primary"]["state"] == "ENABLED" and key["destroyScheduledDuration"] == "2592000s"
    with pytest.raises(HttpError) as exc:
        kms.cryptoKeys().patch(name=key["name"], updateMask="purpose", body={"purpose": "MAC"}).execute()
    assert exc.value.resp.status == 400
    with pytest.raises(HttpError) as exc:
        kms.delete(name=ring["name"]).execute()
    assert exc.value.resp.status == 400 and "not empty" in error_of(exc)["message"]
    with pytest.raises(HttpError) as exc:
        kms.cryptoKeys().delete(name=key["name"]).execute()
    assert "CryptoKeyVersion" in error_of(exc)["message"]
    versions = kms.cryptoKeys().cryptoKeyVersions()
    destroyed = versions.destroy(name=key["primary"]["name"], body={}).execute()
    assert destroyed["state"] == "DESTROY_SCHEDULED" and destroyed["destroyTime"]
    with pytest.raises(HttpError) as exc:
        versions.delete(name=key["primary"]["name"]).execute()
    assert "only DESTROYED versions" in error_of(exc)["message"]
    # A CMEK default key must be in the bucket's location.
    with pytest.raises(HttpError) as exc:
        st.buckets().insert(project=sandbox.config.project, body={"name": "cmek-far", "location": "US", "encryption": {
            "defaultKmsKeyName": key["name"]}}).execute()
    assert "not compatible with bucket location" in error_of(exc)["message"]


def test_artifact_registry_is_strict_about_repositories(sandbox, st):
    api = client(sandbox, "artifactregistry").projects().locations()
    parent = "projects/%s/locations/europe-west1" % sandbox.config.project
    for body, text in (({"format": "DOCKER", "bogus": 1}, 'Unknown name "bogus"'),
                       ({}, "format must be specified"),
                       ({"format": "DOCKER", "cleanupPolicies": {"p": {"action": "DELETE", "mostRecentVersions": {
                           "keepCount": 2}}}}, "only be used with a KEEP"),
                       ({"format": "DOCKER", "cleanupPolicies": {"p": {"action": "DELETE"}}}, "exactly one of"),
                       ({"format": "DOCKER", "kmsKeyName": "projects/%s/locations/%s/keyRings/no/cryptoKeys/no"
                         % (sandbox.config.project, "europe-west1")}, "does not exist")):
        with pytest.raises(HttpError) as exc:
            api.repositories().create(parent=parent, repositoryId="strict", body=body).execute()
        assert exc.value.resp.status == 400 and text in error_of(exc)["message"], body
    op = api.repositories().create(parent=parent, repositoryId="strict", body={"format": "DOCKER"}).execute()
    assert op["done"] is False or op["response"]["name"].endswith("/strict")
    wait_lro(api, op)
    with pytest.raises(HttpError) as exc:
        api.repositories().patch(name=parent + "/repositories/strict", updateMask="format",
                                 body={"format": "PYTHON"}).execute()
    assert exc.value.resp.status == 400 and "immutable" in error_of(exc)["message"]
    wait_lro(api, api.repositories().delete(name=parent + "/repositories/strict").execute())
