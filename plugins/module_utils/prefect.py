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

PREFECT_ARGS = dict(
    api_url=dict(type="str", required=True, fallback=(env_fallback, ["PREFECT_API_URL"])),
    auth_string=dict(type="str", no_log=True, fallback=(env_fallback, ["PREFECT_API_AUTH_STRING"])),
    access_client_id=dict(type="str", fallback=(env_fallback, ["CF_ACCESS_CLIENT_ID"])),
    access_client_secret=dict(type="str", no_log=True, fallback=(env_fallback, ["CF_ACCESS_CLIENT_SECRET"])),
    validate_certs=dict(type="bool", default=True),
    request_timeout=dict(type="int", default=30),
    retries=dict(type="int", default=6),
)


class PrefectApiError(Exception):
    def __init__(self, message, status=None, body=None):
        super(PrefectApiError, self).__init__(message)
        self.status = status
        self.body = body


def explain(status, method, path, detail, api_url):
    """One line that says what failed and what to do about it."""
    where = "%s %s%s" % (method, api_url.rstrip("/"), path)
    if status == 401:
        return "%s was refused (401): the server's basic auth rejected the credentials; set auth_string to the " \
               "server's server.basicAuth string (user:password)" % where
    if status == 403:
        return "%s was refused (403) before it reached Prefect: Cloudflare Access denied the caller; pass " \
               "access_client_id/access_client_secret of a service token that an Access policy allows. If the token " \
               "stored in Secret Manager no longer matches Cloudflare's (its secret was lost or replaced), run the " \
               "cloudflare_zero_trust role again with cloudflare_zero_trust_rotate_token=true, which issues and " \
               "stores a new one" % where
    if status == 404:
        return "%s: not found (%s)" % (where, detail)
    if status == 422:
        return "%s: the server rejected the request body: %s" % (where, detail)
    if status is None:
        return "%s: cannot reach the Prefect API (%s); check api_url and that the server is running" % (where, detail)
    return "%s failed with HTTP %s: %s" % (where, status, detail)


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


class PrefectModule(EnsureMixin, AnsibleModule):
    def __init__(self, argument_spec=None, **kwargs):
        spec = dict(PREFECT_ARGS)
        spec.update(argument_spec or {})
        kwargs.setdefault("supports_check_mode", True)
        super(PrefectModule, self).__init__(argument_spec=spec, **kwargs)
        self.api_url = self.params["api_url"].rstrip("/")
        self.retry = RetryPolicy(retries=self.params["retries"])

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
        """JSON in, JSON out; returns (status, body). Statuses in `allow` are returned instead of raised."""
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
                raise PrefectApiError(explain(err.code, method, path, _detail(raw), self.api_url), err.code, raw)
            except (URLError, socket.error, ValueError) as err:
                reason = getattr(err, "reason", err)
                raise PrefectApiError(explain(None, method, path, str(reason), self.api_url))

        def classify(exc):
            if isinstance(exc, PrefectApiError):
                return exc.status is None or exc.status in RETRYABLE_STATUS, None
            return False, None

        try:
            return self.retry.call(once, classify)
        except PrefectApiError as err:
            self.fail_json(msg=str(err), status=err.status)
