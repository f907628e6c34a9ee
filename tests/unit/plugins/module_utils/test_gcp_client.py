"""GcpClient.client: one parse of the bundled discovery document, the same endpoint and errors as build()."""

import types

import httplib2
import pytest
from googleapiclient import discovery
from googleapiclient.errors import UnknownApiNameOrVersion

from ansible_collections.skyforge.prefect_platform.plugins.module_utils import gcp


def fake_module(root):
    return types.SimpleNamespace(_clients={}, endpoint=lambda api: root, http=lambda: httplib2.Http(timeout=1))


def test_bundled_document_is_parsed_once_and_served_at_the_endpoint(monkeypatch):
    def no_second_parse(*args, **kwargs):
        raise AssertionError("discovery.build re-reads and re-parses the document")

    monkeypatch.setattr(discovery, "build", no_second_parse)
    module = fake_module("http://127.0.0.1:9/")
    compute = gcp.GcpClient.client(module, "compute", "v1")
    assert compute._baseUrl == "http://127.0.0.1:9/compute/v1/"
    request = compute.networks().get(project="p", network="n")
    assert request.uri.startswith("http://127.0.0.1:9/compute/v1/projects/p/global/networks/n")
    assert gcp.GcpClient.client(module, "compute", "v1") is compute


def test_google_default_endpoint_without_an_override():
    compute = gcp.GcpClient.client(fake_module(None), "compute", "v1")
    assert compute._baseUrl == "https://compute.googleapis.com/compute/v1/"


def test_unknown_api_still_raises_as_build_did():
    with pytest.raises(UnknownApiNameOrVersion):
        gcp.GcpClient.client(fake_module(None), "nosuchapi", "v9")
