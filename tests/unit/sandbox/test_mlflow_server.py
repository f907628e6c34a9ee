"""An MLflow tracking server as roles/mlflow_server deploys it, run by the sandbox's kube family, used by a real client.

The Deployment runs ghcr.io/mlflow/mlflow:v<installed>-full (mapped to the installed MLflow by sandbox/images.py) with
its backend store on a PostgreSQL reached at a Cloud SQL private IP and `--serve-artifacts` into a sandbox bucket,
which the server reaches as its Google service account through Workload Identity (the pod's metadata server).
"""

import base64
import os
import time

import pytest

from sandbox.images import ImageError, installed, local_argv

from .test_gcp_ml_artifacts import storage_client
from .gcp_helpers import enable
from .test_workloads import wait_for
from tests.unit.conftest import REPO

pytest.importorskip("mlflow")

NS = "mlflow"
DB_IP = "10.40.0.3"
BUCKET = "mlflow-proof-artifacts"
# The Service's names as in-cluster clients use them: MLflow's Host-header check (DNS rebinding) allows only these.
HOSTS = ["mlflow-server.%s.svc.cluster.local" % NS, "mlflow-server.%s.svc" % NS, "mlflow-server.%s" % NS,
         "mlflow-server"]
IMAGE = "ghcr.io/mlflow/mlflow:v%s-full" % installed("mlflow")


def test_the_plain_image_is_refused_for_what_it_lacks_and_other_versions_with_the_reason():
    server = ["mlflow", "server", "--host", "0.0.0.0"]
    plain = "ghcr.io/mlflow/mlflow:v%s" % installed("mlflow")
    assert local_argv(plain, None, server)[1:] == server[1:]
    with pytest.raises(ImageError, match="no psycopg2"):
        local_argv(plain, None, server + ["--backend-store-uri", "postgresql://u:p@10.0.0.1/db"])
    with pytest.raises(ImageError, match="no psycopg2"):
        local_argv(plain, None, server, {"MLFLOW_BACKEND_STORE_URI": "postgresql+psycopg2://u:p@10.0.0.1/db"})
    with pytest.raises(ImageError, match="no google-cloud-storage"):
        local_argv(plain, None, server + ["--artifacts-destination", "gs://b/x"])
    with pytest.raises(ImageError, match="not 2.0.0"):
        local_argv("ghcr.io/mlflow/mlflow:v2.0.0-full", None, server)
    with pytest.raises(ImageError, match="not an MLflow release tag"):
        local_argv("ghcr.io/mlflow/mlflow:latest", None, server)
    assert local_argv(IMAGE, None, server + ["--backend-store-uri", "postgresql://u:p@10.0.0.1/db"])[1] == "server"


@pytest.fixture(scope="module")
def platform(sandbox, tmp_path_factory):
    """A cluster, a Cloud SQL-like PostgreSQL with the role's database and user, a bucket and a GSA for the pods with
    object access on it."""
    from sandbox.postgres import Postgres

    project = sandbox.config.project
    enable(sandbox, "storage.googleapis.com")
    storage_client(sandbox).buckets().insert(project=project,
                                             body={"name": BUCKET, "location": "europe-west1"}).execute()
    email = "mlflow-server@%s.iam.gserviceaccount.com" % project
    resource = "projects/%s/serviceAccounts/%s" % (project, email)
    sandbox.store.table("iam.serviceAccounts")[resource] = {"name": resource, "email": email, "projectId": project}
    # As the role grants it: object access on this bucket only (the sandbox refuses the pod's writes without it).
    st = storage_client(sandbox)
    policy = st.buckets().getIamPolicy(bucket=BUCKET).execute()
    policy["bindings"].append({"role": "roles/storage.objectAdmin", "members": ["serviceAccount:%s" % email]})
    st.buckets().setIamPolicy(bucket=BUCKET, body=policy).execute()
    sandbox.store.table("iam.policies")[resource] = {"bindings": [{
        "role": "roles/iam.workloadIdentityUser",
        "members": ["serviceAccount:%s.svc.id.goog[%s/mlflow-server]" % (project, NS)]}]}

    pg = Postgres(str(tmp_path_factory.mktemp("mlflow-pg")), sandbox.free_port())
    pg.start()
    pg.sql("CREATE USER mlflow PASSWORD 'tracking-pw'")
    pg.sql("CREATE DATABASE mlflow OWNER mlflow")
    sandbox.map_address(DB_IP, 5432, "127.0.0.1", pg.port, "test: the mlflow Cloud SQL instance's private IP")

    kube = sandbox.apps["kube"]
    key = "projects/p/locations/europe-west1/clusters/mlflow-%d" % int(time.time() * 1000)
    kube.register_cluster(key, "172.16.9.8")
    api = kube.clusters[key]
    try:
        yield {"api": api, "email": email, "pg": pg}
    finally:
        kube.unregister_cluster(key)
        sandbox.unmap_address(DB_IP, 5432)
        pg.destroy()


def put(api, resource, body):
    body["metadata"].setdefault("uid", "uid-%s-%s" % (resource, body["metadata"]["name"]))
    body["metadata"].setdefault("generation", 1)
    api.put_object(resource, body["metadata"].get("namespace"), body)
    if resource in ("deployments",):
        api.watchers[-1](api, "ADDED", resource, {})


def mlflow_objects(email):
    """What the role applies, in its order: roles/mlflow_server/templates/objects.yaml.j2 and the Secret."""
    import jinja2
    import yaml

    uri = "postgresql+psycopg2://mlflow:tracking-pw@%s:5432/mlflow?sslmode=require" % DB_IP
    with open(os.path.join(REPO, "roles", "mlflow_server", "templates", "objects.yaml.j2")) as fh:
        text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(fh.read()).render(
            mlflow_server_name="mlflow-server", mlflow_server_namespace=NS, mlflow_server_gsa_email=email,
            mlflow_server_replicas=1, mlflow_server_image=IMAGE, mlflow_server_bucket=BUCKET,
            mlflow_server_artifacts_prefix="mlflow", mlflow_server_db_secret="mlflow-server-database",
            mlflow_server_cpu="500m", mlflow_server_memory="1Gi")
    docs = list(yaml.safe_load_all(text))
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "mlflow-server-database", "namespace": NS},
              "data": {"backend-store-uri": base64.b64encode(uri.encode()).decode()}}
    plural = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "Secret": "secrets",
              "Service": "services", "Deployment": "deployments"}
    return [(plural[d["kind"]], d) for d in docs[:2] + [secret] + docs[2:]]


def pod_log(sandbox, api):
    pods = [p for p in sandbox.apps["kube"].workloads.describe()["pods"] if p["name"].startswith("mlflow-server-")]
    for c in (pods[0]["containers"] if pods else []):
        if os.path.exists(c["log"]):
            return open(c["log"]).read()[-3000:]
    return "(no log)"


def log_and_read_back(sandbox, bucket, tmp_path, monkeypatch):
    """A real MlflowClient, as an in-cluster client, logs a run with a param, a metric and an artifact through the
    Service, reads them back, and finds the artifact written into `bucket` under mlflow/. Returns the run ID."""
    import socket

    from mlflow.tracking import MlflowClient

    # Cluster DNS for the client: the Service's name resolves to the loopback address standing for its clusterIP,
    # so the client sends the Host header an in-cluster client sends.
    fqdn = HOSTS[0]
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == fqdn:
            host, port = sandbox.resolve(fqdn, int(port))
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    client = MlflowClient(tracking_uri="http://%s" % fqdn)

    experiment = client.create_experiment("proof-%d" % int(time.time() * 1000))
    run = client.create_run(experiment)
    run_id = run.info.run_id
    client.log_param(run_id, "alpha", "0.5")
    client.log_metric(run_id, "rmse", 0.25, step=1)
    model = tmp_path / "model.txt"
    model.write_text("weights v1\n")
    client.log_artifact(run_id, str(model), artifact_path="model")
    client.set_terminated(run_id)

    back = client.get_run(run_id)
    assert back.data.params == {"alpha": "0.5"} and back.data.metrics == {"rmse": 0.25}
    assert back.info.status == "FINISHED"
    assert back.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert [f.path for f in client.list_artifacts(run_id, "model")] == ["model/model.txt"]
    local = client.download_artifacts(run_id, "model/model.txt", str(tmp_path / "down"))
    assert open(local).read() == "weights v1\n"

    # The server wrote the object into the bucket as its own GSA (Workload Identity).
    objects = storage_client(sandbox).objects().list(bucket=bucket).execute().get("items", [])
    names = [o["name"] for o in objects]
    mine = [n for n in names if n.startswith("mlflow/") and n.endswith("/%s/artifacts/model/model.txt" % run_id)]
    assert mine, names
    assert storage_client(sandbox).objects().get_media(bucket=bucket, object=mine[0]).execute() == b"weights v1\n"
    return run_id


def test_a_real_mlflow_client_logs_a_run_with_an_artifact_through_the_server_into_the_bucket(
        sandbox, platform, tmp_path, monkeypatch):
    api = platform["api"]
    for resource, body in mlflow_objects(platform["email"]):
        put(api, resource, body)
    try:
        wait_for(lambda: (api.get_object("deployments", NS, "mlflow-server").get("status") or {}).get(
            "readyReplicas") == 1, timeout=150, what="mlflow-server ready")
    except AssertionError:
        raise AssertionError("mlflow-server never became ready:\n" + pod_log(sandbox, api)) from None
    run_id = log_and_read_back(sandbox, BUCKET, tmp_path, monkeypatch)
    # ... and the run into PostgreSQL.
    rows = platform["pg"].sql("SELECT key, value FROM params WHERE run_uuid = '%s'" % run_id, dbname="mlflow")
    assert rows.strip() == "alpha|0.5"

    api.remove_object("deployments", NS, "mlflow-server")
    api.watchers[-1](api, "DELETED", "deployments", {})
    wait_for(lambda: not [p for p in api.find("pods", NS) if p["metadata"]["name"].startswith("mlflow-server-")],
             what="pods gone")
