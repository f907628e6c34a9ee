"""secret_differs decides on one k8s_info read whether a Secret must be written; helm_release_differs whether a Helm
release must be upgraded."""

import base64
import gzip
import json

import pytest

from ansible_collections.skyforge.prefect_platform.plugins.filter.kube import helm_release_differs, secret_differs


def secret(name, data, secret_type="Opaque"):
    return {"metadata": {"name": name}, "type": secret_type,
            "data": dict((k, base64.b64encode(v.encode()).decode()) for k, v in data.items())}


LISTED = [secret("db", {"connection-string": "postgresql://u:p%40ss@10.0.0.3/prefect"}),
          secret("auth", {"auth-string": "admin:s3cret", "extra": "kept"}),
          secret("tls", {"tls.crt": "C", "tls.key": "K"}, "kubernetes.io/tls")]


@pytest.mark.parametrize("name,secret_type,data,expected", [
    ("db", "Opaque", {"connection-string": "postgresql://u:p%40ss@10.0.0.3/prefect"}, False),
    ("auth", "Opaque", {"auth-string": "admin:s3cret"}, False),
    ("tls", "kubernetes.io/tls", {"tls.crt": "C", "tls.key": "K"}, False),
    ("auth", "Opaque", {"auth-string": "admin:other"}, True),
    ("auth", "Opaque", {"auth-string": "admin:s3cret", "new-key": "v"}, True),
    ("tls", "Opaque", {"tls.crt": "C", "tls.key": "K"}, True),
    ("missing", "Opaque", {"k": "v"}, True),
])
def test_secret_differs(name, secret_type, data, expected):
    assert secret_differs(LISTED, name, secret_type, data) is expected


def test_nothing_listed_or_undecodable_data_means_write():
    assert secret_differs([], "db", "Opaque", {"k": "v"}) is True
    assert secret_differs(None, "db", "Opaque", {"k": "v"}) is True
    assert secret_differs([{"metadata": {"name": "db"}, "data": {"k": "not base64!"}}], "db", "Opaque", {"k": "v"}) is True


def release_secret(status="deployed", chart="prefect-server", version="2026.8.18172642", config=None, compress=True):
    """A release Secret as Helm writes it: the record as JSON, gzipped, base64, then base64 again as Secret data."""
    record = json.dumps({"name": "prefect-server", "version": 3, "namespace": "prefect", "info": {"status": status},
                         "chart": {"metadata": {"name": chart, "version": version, "appVersion": "3.8.8"}},
                         "config": {"server": {"replicaCount": 1}, "ingress": {"enabled": True}} if config is None
                         else config, "manifest": "kind: Secret"}).encode()
    blob = base64.b64encode(gzip.compress(record) if compress else record)
    return {"metadata": {"name": "sh.helm.release.v1.prefect-server.v3", "labels": {"owner": "helm", "status": status}},
            "type": "helm.sh/release.v1", "data": {"release": base64.b64encode(blob).decode()}}


WANTED = {"ingress": {"enabled": True}, "server": {"replicaCount": 1}}


def test_the_deployed_release_of_the_same_chart_version_and_values_needs_no_helm_run():
    assert helm_release_differs([release_secret()], "prefect-server", "2026.8.18172642", WANTED) is False
    assert helm_release_differs([release_secret(compress=False)], "prefect-server", "2026.8.18172642", WANTED) is False


@pytest.mark.parametrize("resources,chart,version,values", [
    ([], "prefect-server", "2026.8.18172642", WANTED),  # not installed
    (None, "prefect-server", "2026.8.18172642", WANTED),
    ([release_secret()], "prefect-server", "2026.9.1", WANTED),  # another chart version
    ([release_secret()], "prefect-worker", "2026.8.18172642", WANTED),  # another chart
    ([release_secret()], "prefect-server", "2026.8.18172642", {"server": {"replicaCount": 2}, "ingress": {"enabled": True}}),
    ([release_secret()], "prefect-server", "2026.8.18172642", {"server": {"replicaCount": "1"}, "ingress": {"enabled": True}}),
    ([release_secret()], "prefect-server", "2026.8.18172642", {"server": {"replicaCount": 1}}),  # a value removed
    ([release_secret(status="failed")], "prefect-server", "2026.8.18172642", WANTED),
    ([release_secret(status="pending-upgrade")], "prefect-server", "2026.8.18172642", WANTED),
    # an upgrade that failed beside the deployed revision it was meant to replace
    ([release_secret(), release_secret(status="failed")], "prefect-server", "2026.8.18172642", WANTED),
    ([{"metadata": {"name": "sh.helm.release.v1.prefect-server.v3"}, "data": {"release": "not base64!"}}],
     "prefect-server", "2026.8.18172642", WANTED),
    ([{"metadata": {"name": "sh.helm.release.v1.prefect-server.v3"}}], "prefect-server", "2026.8.18172642", WANTED),
])
def test_anything_else_runs_helm(resources, chart, version, values):
    assert helm_release_differs(resources, chart, version, values) is True
