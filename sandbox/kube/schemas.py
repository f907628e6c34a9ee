"""The official Kubernetes OpenAPI schemas (as JSON schema, from the kubernetes-validate package) for one version.

Every built-in object a client writes is checked against the schema of the cluster's minor version: a wrong type is
refused as the API server's decoder refuses it; a field the type does not have is dropped with a warning, or refused
under `fieldValidation=Strict`.
"""

from __future__ import annotations

import functools
import json
import os
import re

import jsonschema
from referencing import Registry, Resource


class SchemaUnavailable(RuntimeError):
    pass


def _base():
    import kubernetes_validate

    return os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")


@functools.lru_cache(maxsize=None)
def _registry(folder):
    with open(os.path.join(folder, "_definitions.json")) as fh:
        return Resource.from_contents(json.load(fh)) @ Registry()


@functools.lru_cache(maxsize=None)
def validator(minor, kind, api_version, strict):
    folder = os.path.join(_base(), "v%s.0-local%s" % (minor, "-strict" if strict else ""))
    if not os.path.isdir(folder):
        raise SchemaUnavailable("kubernetes-validate ships no schemas for Kubernetes %s" % minor)
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = os.path.join(folder, "%s-%s.json" % (kind.lower(), group))
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        schema = json.load(fh)
    registry = Resource.from_contents(schema) @ _registry(folder)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _path(error):
    return ".".join(str(p) for p in error.absolute_path)


def wrong_types(minor, obj):
    """[(path, message)] for what the schema refuses other than unknown fields."""
    check = validator(minor, obj["kind"], obj["apiVersion"], False)
    if check is None:
        return []
    return [(_path(e), e.message) for e in sorted(check.iter_errors(obj), key=lambda e: list(e.absolute_path))]


def unknown_fields(minor, obj):
    """Dotted paths of fields the type does not have."""
    check = validator(minor, obj["kind"], obj["apiVersion"], True)
    if check is None:
        return []
    out = []
    for error in check.iter_errors(obj):
        for leaf in ([error] + list(error.context or [])):
            if leaf.validator != "additionalProperties" or not isinstance(leaf.instance, dict):
                continue
            allowed = set((leaf.schema.get("properties") or {}))
            for key in leaf.instance:
                if key not in allowed:
                    path = _path(leaf)
                    out.append("%s.%s" % (path, key) if path else key)
    return sorted(set(out))
