"""secret_differs decides on one k8s_info read whether a Secret must be written."""

import base64

import pytest

from ansible_collections.skyforge.prefect_platform.plugins.filter.kube import secret_differs


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
