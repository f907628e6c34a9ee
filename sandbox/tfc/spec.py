"""Strictness from HCP Terraform's OpenAPI description (go-tfe v2), the file in ../shared/specs/tfc.

OpenAPI 3.0 schemas become JSON Schema (``nullable`` turned into a null alternative) and request bodies
are validated against the operation's schema: wrong types, bad enum values and missing required members
are rejected with JSON:API 422 errors. The spec leaves ``additionalProperties`` open, so unknown
attributes are checked separately against the attributes the resource's schema names plus the few the
API documentation uses that the spec lacks (see WRITE_EXTRAS).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re

import jsonschema

SPEC_FILE = os.path.join("tfc", "hcp-terraform-openapi.go-tfe-v2.spec.json")

# Writable attributes the API docs (../shared/specs/tfc/*.json) show that the OpenAPI file does not list.
WRITE_EXTRAS = {
    "workspaces": {"agent-pool-id", "terraform_version"},
    "runs": {"variables", "terraform-version"},
}
# The official SDK (pytfe) echoes the resource type and relationship objects inside `attributes`; the API
# ignores those keys, so they are not "unknown attributes" (any other unknown key is).
SDK_ECHOES = {"type"}


def _convert(node):
    """OpenAPI 3.0 schema -> JSON Schema draft 7 (recursively)."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in ("nullable", "example", "discriminator")}
    if node.get("nullable"):
        if "type" in out and isinstance(out["type"], str) and not any(k in out for k in ("allOf", "$ref", "anyOf", "oneOf")):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


class Spec:
    def __init__(self, path):
        with open(path) as fh:
            self.doc = json.load(fh)
        self.components = {"schemas": _convert(self.doc["components"]["schemas"])}
        self.raw_schemas = self.doc["components"]["schemas"]
        self.ops = {}
        for template, item in self.doc["paths"].items():
            for verb, op in item.items():
                if verb in ("get", "post", "put", "patch", "delete"):
                    self.ops[(verb.upper(), norm(template))] = op

    def has(self, method, template):
        return (method.upper(), norm(template)) in self.ops

    # ---- schemas ------------------------------------------------------------------------
    def _wrap(self, schema):
        return dict(_convert(schema), components=self.components)

    @functools.lru_cache(maxsize=None)
    def _validator(self, key):
        schema = json.loads(key)
        return jsonschema.Draft7Validator(self._wrap(schema))

    def request_schema(self, method, template):
        op = self.ops.get((method.upper(), norm(template)))
        if not op or "requestBody" not in op:
            return None, False
        body = op["requestBody"]
        content = body.get("content", {})
        media = content.get("application/vnd.api+json") or next(iter(content.values()), {})
        return media.get("schema"), bool(body.get("required"))

    def response_schema(self, method, template, status):
        op = self.ops.get((method.upper(), norm(template)))
        if not op:
            raise KeyError("%s %s is not in the spec" % (method, template))
        resp = op["responses"].get(str(status)) or op["responses"].get("default")
        if resp is None:
            raise KeyError("%s %s documents no response %s" % (method, template, status))
        content = resp.get("content") or {}
        media = content.get("application/vnd.api+json") or next(iter(content.values()), None)
        return media.get("schema") if media else None

    def errors_for(self, schema, instance):
        validator = self._validator(json.dumps(schema, sort_keys=True))
        out = []
        for err in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
            pointer = "/" + "/".join(str(p) for p in err.absolute_path)
            out.append((pointer, err.message))
        return out

    def resolve(self, schema):
        """Follow $ref (and single allOf) to the raw component schema."""
        seen = 0
        while isinstance(schema, dict) and seen < 20:
            seen += 1
            if "$ref" in schema:
                schema = self.raw_schemas[schema["$ref"].rsplit("/", 1)[-1]]
            elif "allOf" in schema and len(schema["allOf"]) == 1:
                schema = schema["allOf"][0]
            else:
                break
        return schema

    def resource_schema(self, envelope):
        """The `data` member's schema of an envelope (object or array-of-objects document)."""
        env = self.resolve(envelope)
        data = self.resolve((env.get("properties") or {}).get("data") or {})
        if data.get("type") == "array":
            data = self.resolve(data.get("items") or {})
        return data

    def unknown_members(self, envelope, body):
        """(pointer, name) of attributes/relationships the resource's schema does not name."""
        res = self.resource_schema(envelope)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not res:
            return []
        rtype = data.get("type")
        props = res.get("properties") or {}
        attrs = set((self.resolve(props.get("attributes") or {}).get("properties") or {}).keys())
        rels = set((self.resolve(props.get("relationships") or {}).get("properties") or {}).keys())
        attrs |= WRITE_EXTRAS.get(rtype, set())
        extra_rels = {"workspaces": {"tag-bindings"}}.get(rtype, set())
        out = []
        for name in (data.get("attributes") or {}):
            if name in attrs or name in SDK_ECHOES or name in rels or name.replace("_", "-") in attrs:
                continue
            out.append(("/data/attributes/%s" % name, name))
        for name in (data.get("relationships") or {}):
            if name not in rels and name not in extra_rels:
                out.append(("/data/relationships/%s" % name, name))
        for name in data:
            if name not in ("type", "id", "attributes", "relationships", "links", "meta"):
                out.append(("/data/%s" % name, name))
        return out

    def read_only(self, envelope):
        res = self.resource_schema(envelope)
        attrs = self.resolve((res.get("properties") or {}).get("attributes") or {}).get("properties") or {}
        return {k for k, v in attrs.items() if isinstance(v, dict) and v.get("readOnly")}


@functools.lru_cache(maxsize=4)
def load(specs_dir):
    path = os.path.join(specs_dir, SPEC_FILE)
    if not os.path.exists(path):
        return None
    return Spec(path)


_TEMPLATE_VAR = re.compile(r"\{[^}]+\}")


def norm(template):
    """'/workspaces/{workspace_id}/vars' and '/workspaces/{ws}/vars' are the same operation."""
    return _TEMPLATE_VAR.sub("{}", template)


def template_regex(template):
    return re.compile("^" + _TEMPLATE_VAR.sub("[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$")


def copy_json(value):
    return copy.deepcopy(value)
