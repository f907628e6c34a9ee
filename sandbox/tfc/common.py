"""What the HCP Terraform modules share: the API prefix, ids, timestamps and JSON:API errors.

A module of its own so that app.py (routing, auth) and the resource modules (runs, workspaces, ...) import it
rather than each other.
"""

from __future__ import annotations

import secrets
import string
import time

from ..web import ApiError

JSONAPI = "application/vnd.api+json"
API = "/api/v2"
ORGANIZATION = "skyforge"
TITLES = {400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found", 405: "method not allowed",
          409: "conflict", 415: "unsupported media type", 422: "invalid attribute", 429: "Too many requests",
          500: "internal server error", 501: "not implemented", 502: "bad gateway", 503: "service unavailable"}
ALNUM = string.ascii_letters + string.digits


def rid(prefix):
    return "%s-%s" % (prefix, "".join(secrets.choice(ALNUM) for _ in range(16)))


def atlas_token():
    """A token in HCP Terraform's shape (the API token and agent tokens alike)."""
    return "%s.atlasv1.%s" % ("".join(secrets.choice(ALNUM) for _ in range(14)),
                              "".join(secrets.choice(ALNUM) for _ in range(67)))


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def invalid(detail, pointer=None, status=422, title=None):
    return ApiError(status, detail, reason=title or TITLES.get(status), pointer=pointer)


def not_found():
    return ApiError(404, None, reason="not found")
