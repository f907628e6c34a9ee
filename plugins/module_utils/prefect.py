# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Skyforge platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base for the Prefect modules: the server's REST API with basic auth, Access headers, retries and clear errors.

A module declares what it manages as a `PrefectResource` and hands it to `PrefectModule.ensure()`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import socket

from ansible.module_utils.basic import AnsibleModule, env_fallback
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

from ansible_collections.skyforge.prefect_platform.plugins.module_utils.common import (
    EnsureMixin,
    Resource,
    RETRYABLE_STATUS,
    RetryPolicy,
)
from ansible_collections.skyforge.prefect_platform.plugins.module_utils.errors import ApiError, fix_for

PREFECT_ARGS = dict(
    api_url=dict(type="str", required=True, fallback=(env_fallback, ["PREFECT_API_URL"])),
    auth_string=dict(type="str", no_log=True, fallback=(env_fallback, ["PREFECT_API_AUTH_STRING"])),
    access_client_id=dict(type="str", fallback=(env_fallback, ["CF_ACCESS_CLIENT_ID"])),
    access_client_secret=dict(type="str", no_log=True, fallback=(env_fallback, ["CF_ACCESS_CLIENT_SECRET"])),
    validate_certs=dict(type="bool", default=True),
    request_timeout=dict(type="int", default=30),
    retries=dict(type="int", default=6),
)


# What failed for each status, before the fix the table gives.
_WHAT = {
    401: "{where} was refused (401): the server's basic auth rejected the credentials",
    403: "{where} was refused (403) before it reached Prefect: Cloudflare Access denied the caller",
    404: "{where}: not found ({detail})",
    422: "{where}: the server rejected the request body: {detail}",
    None: "{where}: cannot reach the Prefect API ({detail})",
}


def api_error(status, method, path, detail, api_url):
    """The ApiError of a failed request: what failed and what to do about it."""
    where = "%s %s%s" % (method, api_url.rstrip("/"), path)
    what = _WHAT.get(status, "{where} failed with HTTP %s: {detail}" % status).format(where=where, detail=detail)
    return ApiError(what, fix_for("prefect", status, "UNREACHABLE" if status is None else None), family="prefect",
                    status=status, action=method, resource=path)


def _detail(raw):
    try:
        body = json.loads(raw)
    except (TypeError, ValueError):
        return (raw or b"").decode("utf-8", "replace")[:300] if isinstance(raw, bytes) else str(raw)[:300]
    if isinstance(body, dict) and "detail" in body:
        return json.dumps(body["detail"])[:500]
    return json.dumps(body)[:500]


class PrefectResource(Resource):
    """One Prefect object: subclasses implement get/create/update/delete and desired(); `fetch` reads one by path."""

    def fetch(self, path):
        status, body = self.module.request("GET", path, allow=(404,))
        return body if status == 200 else None


class PrefectClient:
    """The REST API: basic auth, Access headers, the endpoint and retries; request() raises ApiError.

    The module mixes it in and sets api_url and retry (a RetryPolicy) from its parameters.
    """

    api_url = None
    retry = None

    def headers(self):
        out = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.params.get("auth_string"):
            out["Authorization"] = "Basic " + base64.b64encode(
                self.params["auth_string"].encode("utf-8")).decode("ascii")
        if self.params.get("access_client_id") and self.params.get("access_client_secret"):
            out["CF-Access-Client-Id"] = self.params["access_client_id"]
            out["CF-Access-Client-Secret"] = self.params["access_client_secret"]
        return out

    def request(self, method, path, body=None, allow=()):
        """JSON in, JSON out; returns (status, body). Statuses in `allow` are returned, others raise ApiError."""
        data = json.dumps(body).encode("utf-8") if body is not None else None
        url = self.api_url + path

        def once():
            try:
                resp = open_url(url, method=method, data=data, headers=self.headers(),
                                validate_certs=self.params["validate_certs"], timeout=self.params["request_timeout"])
                raw = resp.read()
                return resp.getcode(), json.loads(raw) if raw else None
            except HTTPError as err:
                raw = err.read()
                if err.code in allow:
                    try:
                        return err.code, json.loads(raw) if raw else None
                    except ValueError:
                        return err.code, None
                raise api_error(err.code, method, path, _detail(raw), self.api_url)
            except (URLError, socket.error, ValueError) as err:
                reason = getattr(err, "reason", err)
                raise api_error(None, method, path, str(reason), self.api_url)

        def classify(exc):
            if isinstance(exc, ApiError):
                return exc.status is None or exc.status in RETRYABLE_STATUS, None
            return False, None

        return self.retry.call(once, classify)


class PrefectModule(PrefectClient, EnsureMixin, AnsibleModule):
    """The Prefect family's module: the client above and the runner (EnsureMixin)."""

    common_args = PREFECT_ARGS

    def __init__(self, argument_spec=None, **kwargs):
        super(PrefectModule, self).__init__(argument_spec, **kwargs)
        self.api_url = self.params["api_url"].rstrip("/")
        self.retry = RetryPolicy(retries=self.params["retries"])
