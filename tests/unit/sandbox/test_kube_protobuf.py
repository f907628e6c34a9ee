"""Kubernetes protobuf bodies as client-go writes them (gogo-protobuf: every non-pointer field, zero meaning unset)."""

import base64

import pytest

from sandbox.kube import protobuf

# What client-go v0.37 inside helm-sdkpy sent to create a namespace (captured from a real `helm --create-namespace`).
NAMESPACE = (b'k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x1f\n\x17\n\x07prefect\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00'
             b'\x12\x00\x1a\x02\n\x00\x1a\x00"\x00')


def _entry(key, value):
    return protobuf.message([(1, key), (2, value)])


def test_a_namespace_decodes_without_the_zero_values():
    assert protobuf.decode(NAMESPACE) == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prefect"},
                                          "spec": {}}


def test_a_release_secret_keeps_its_bytes_labels_and_type():
    meta = protobuf.message([(1, b"sh.helm.release.v1.r.v1"), (3, b"prefect"),
                             (11, _entry(b"owner", b"helm")), (11, _entry(b"status", b"pending-install"))])
    secret = protobuf.message([(1, meta), (2, _entry(b"release", b"\xa1\x00gz")), (3, b"helm.sh/release.v1")])
    body = protobuf.MAGIC + protobuf.message([(1, protobuf.message([(1, b"v1"), (2, b"Secret")])), (2, secret)])
    got = protobuf.decode(body)
    assert got["metadata"] == {"name": "sh.helm.release.v1.r.v1", "namespace": "prefect",
                               "labels": {"owner": "helm", "status": "pending-install"}}
    assert base64.b64decode(got["data"]["release"]) == b"\xa1\x00gz" and got["type"] == "helm.sh/release.v1"


def test_a_kind_it_cannot_decode_is_refused_by_name():
    body = protobuf.MAGIC + protobuf.message([(1, protobuf.message([(1, b"apps/v1"), (2, b"Deployment")]))])
    with pytest.raises(protobuf.ProtobufError, match="not Deployment"):
        protobuf.decode(body)
    with pytest.raises(protobuf.ProtobufError, match="magic"):
        protobuf.decode(b'{"kind": "Secret"}')
