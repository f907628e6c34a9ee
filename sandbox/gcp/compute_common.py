"""What every Compute resource module shares: reference URLs, name rules, Compute's error shapes, fingerprints.

A module of its own so that compute.py (the collection machinery) and the per-resource modules (instances,
securityPolicies, ...) import it rather than each other.
"""

from __future__ import annotations

import base64
import os
import re

from ..web import ApiError

API = "https://www.googleapis.com/compute/v1/"
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def link(path):
    return API + path


def unlink(ref):
    """'https://.../compute/v1/projects/p/global/networks/n' or 'projects/p/...' or 'global/networks/n' -> path."""
    if not ref:
        return ref
    ref = ref.split("/compute/v1/", 1)[-1]
    return ref


def invalid(message, reason="invalid"):
    return ApiError(400, message, reason=reason)


def not_found(path):
    return ApiError(404, "The resource '%s' was not found" % path, reason="notFound")


def in_use(path, user):
    return ApiError(400, "The %s resource '%s' is already being used by '%s'" % (
        path.split("/")[-2].rstrip("s"), path, user), reason="resourceInUseByAnotherResource",
        op_code="RESOURCE_IN_USE_BY_ANOTHER_RESOURCE")


def fingerprint():
    return base64.b64encode(os.urandom(8)).decode()


def log_config(log, firewall=False):
    if firewall:
        out = {"enable": bool(log.get("enable", False))}
        if out["enable"]:
            out["metadata"] = log.get("metadata", "INCLUDE_ALL_METADATA")
        return out
    out = {"enable": bool(log.get("enable", True))}
    if out["enable"]:
        out.update({"aggregationInterval": log.get("aggregationInterval", "INTERVAL_5_SEC"),
                    "flowSampling": log.get("flowSampling", 0.5),
                    "metadata": log.get("metadata", "INCLUDE_ALL_METADATA")})
    return out
