"""Cloudflare's OpenAPI description as the sandbox's contract: routing, request and response validation.

The operations come from the DNS/Access/Gateway subset; `/zones`, `/ips` and the account's Access identity providers
are not in it, so they come from the full description it was cut from. Schemas are inlined once per direction and their validators cached.

OpenAPI 3.0 is not JSON Schema, and this description shares one schema between requests and responses, so each
schema is rewritten for its direction before it is compiled:
- `nullable: true` becomes a `null` type;
- in a request, fields the server assigns are not required (`readOnly`, and the record `id` the DNS schema lists
  as required without marking it read-only);
- a PATCH body is partial: nothing is required and `oneOf` becomes `anyOf` (a partial body fits several variants);
- in a response `oneOf` becomes `anyOf`: `/ips` answers fit both of its overlapping variants.

The description never sets `additionalProperties: false`, yet the API refuses fields it does not know; `unknown_fields`
walks a body against the schema and names every key no matching variant declares.
"""

from __future__ import annotations

import json
import os
import re
import threading

import jsonschema

SUBSET = "openapi.subset.dns-access-gateway-lists.json"
FULL = "openapi.2024-08-06.json"
# Served paths the subset lacks, taken from the full description.
FROM_FULL = ("/zones", "/ips", "/accounts/{account_id}/access/identity_providers",
             "/accounts/{account_id}/access/identity_providers/{identity_provider_id}")
SERVER_ASSIGNED = frozenset(["id"])
ENVELOPE = frozenset(["success", "errors", "messages", "result", "result_info"])

_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SpecError(Exception):
    """A request that the description refuses; `path` says where."""

    def __init__(self, message, path=""):
        super().__init__(message)
        self.message = message
        self.path = path


class Operation:
    def __init__(self, spec, doc, template, method, op):
        self.spec = spec
        self.doc = doc
        self.template = template
        self.method = method.upper()
        self.op = op
        self.id = op.get("operationId", "%s %s" % (method, template))
        rx = "^" + _VAR.sub(lambda m: "(?P<%s>[^/]+)" % m.group(1), re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        self.regex = re.compile(rx)
        self.literal = len(_VAR.sub("", template))
        self.params = {}
        for p in op.get("parameters", []):
            p = doc.deref(p)
            self.params[(p["in"], p["name"])] = p
        body = op.get("requestBody") or {}
        self.body_schema = (body.get("content", {}).get("application/json") or {}).get("schema")
        self.success = {}
        self.failure = None
        for code, resp in op.get("responses", {}).items():
            schema = (resp.get("content", {}).get("application/json") or {}).get("schema")
            if code.startswith("2"):
                self.success[int(code)] = schema
            elif code.upper() == "4XX":
                self.failure = _failure_part(schema) or schema

    @property
    def status(self):
        return min(self.success) if self.success else 200


def _failure_part(schema):
    """The failure envelope inside a 4XX schema (some are allOf(success, failure), which nothing satisfies)."""
    if not isinstance(schema, dict):
        return None
    ref = schema.get("$ref", "")
    if ref.endswith("api-response-common-failure"):
        return schema
    for part in schema.get("allOf", []) + schema.get("anyOf", []):
        found = _failure_part(part)
        if found:
            return found
    return None


class Doc:
    def __init__(self, path):
        with open(path) as fh:
            self.raw = json.load(fh)
        self.schemas = self.raw.get("components", {}).get("schemas", {})

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            parts = node["$ref"].lstrip("#/").split("/")
            cur = self.raw
            for part in parts:
                cur = cur[part]
            node = cur
        return node


class Spec:
    def __init__(self, specs_dir):
        folder = os.path.join(specs_dir, "cloudflare")
        subset_path = os.path.join(folder, SUBSET)
        if not os.path.exists(subset_path):
            raise FileNotFoundError(
                "Cloudflare API description not found at %s: set SKYFORGE_SPECS_DIR to the shared specs folder" % subset_path
            )
        self.subset = Doc(subset_path)
        self.operations = []
        self._add(self.subset, lambda p: True)
        full_path = os.path.join(folder, FULL)
        if os.path.exists(full_path):
            full = Doc(full_path)
            self._add(full, lambda p: p in FROM_FULL)
        self.operations.sort(key=lambda o: -o.literal)
        self._lock = threading.Lock()
        self._inlined = {}
        self._validators = {}

    def _add(self, doc, keep):
        for template, item in doc.raw.get("paths", {}).items():
            if not keep(template):
                continue
            for method, op in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    self.operations.append(Operation(self, doc, template, method, op))

    def match(self, method, path):
        """(operation, path params) or raises LookupError('404'|'405')."""
        allowed = False
        for op in self.operations:
            m = op.regex.match(path)
            if not m:
                continue
            allowed = True
            if op.method == method:
                return op, m.groupdict()
        raise LookupError("405" if allowed else "404")

    # ---- schemas -----------------------------------------------------------------------
    def inline(self, doc, schema, mode):
        """The schema with $refs resolved and rewritten for `mode` (request, partial, response)."""
        key = (id(doc), json.dumps(schema, sort_keys=True), mode)
        with self._lock:
            if key not in self._inlined:
                self._inlined[key] = _inline(doc, schema, mode, ())
            return self._inlined[key]

    def validator(self, schema):
        key = id(schema)
        with self._lock:
            v = self._validators.get(key)
            if v is None:
                v = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
                self._validators[key] = (v, schema)  # keep the schema alive so its id stays unique
                return v
            return v[0]

    def check(self, doc, schema, instance, mode):
        """Raise SpecError for the first violation: schema errors first, then unknown fields."""
        if schema is None:
            return
        inlined = self.inline(doc, schema, mode)
        validator = self.validator(inlined)
        errors = sorted(validator.iter_errors(instance), key=lambda e: (len(list(e.absolute_path)), str(e.message)))
        if errors:
            err = _best(errors)
            raise SpecError(_describe(err), _path(err.absolute_path))
        unknown = self.unknown_fields(inlined, instance)
        if mode == "response" and isinstance(instance, dict):
            # Some response schemas declare only `result`; the envelope around it is always there.
            unknown = [u for u in unknown if u not in ENVELOPE]
        if unknown:
            raise SpecError("unknown field %s: the API does not accept it" % unknown[0], unknown[0])

    def unknown_fields(self, schema, instance, path=""):
        out = []
        if isinstance(instance, dict):
            names, subs = self._known(schema, instance)
            for key, value in instance.items():
                sub_path = "%s.%s" % (path, key) if path else key
                if names is not None and key not in names:
                    out.append(sub_path)
                    continue
                # Every part that describes the key (allOf pieces, matching variants) together names what it takes.
                parts = subs.get(key, [])
                if parts:
                    whole = parts[0] if len(parts) == 1 else {"allOf": parts}
                    out.extend(self.unknown_fields(whole, value, sub_path))
        elif isinstance(instance, list):
            for items in self._items(schema, instance):
                for idx, value in enumerate(instance):
                    out.extend(self.unknown_fields(items, value, "%s[%d]" % (path, idx)))
        return sorted(set(out))

    def _branches(self, schema, instance):
        """The parts of a schema that apply to this instance: allOf always, anyOf/oneOf only where they match."""
        yield schema
        for part in schema.get("allOf", []):
            yield from self._branches(part, instance)
        for comb in ("anyOf", "oneOf"):
            parts = schema.get(comb, [])
            if not parts:
                continue
            matching = [p for p in parts if self.validator(p).is_valid(instance)] or parts
            for part in matching:
                yield from self._branches(part, instance)

    def _known(self, schema, instance):
        names, subs, declared = set(), {}, False
        for part in self._branches(schema, instance):
            extra = part.get("additionalProperties")
            if extra not in (None, False):
                return None, subs
            props = part.get("properties")
            if props:
                declared = True
                for key, sub in props.items():
                    names.add(key)
                    subs.setdefault(key, []).append(sub)
        # A free-form object (`everyone: {type: object}`) takes any keys.
        return (names if declared else None), subs

    def _items(self, schema, instance):
        for part in self._branches(schema, instance):
            if isinstance(part.get("items"), dict):
                yield part["items"]


def _inline(doc, schema, mode, stack):
    if isinstance(schema, list):
        return [_inline(doc, s, mode, stack) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in stack:
            return {}
        return _inline(doc, doc.deref(schema), mode, stack + (ref,))
    out = {}
    for key, value in schema.items():
        if key in ("properties",):
            out[key] = dict((k, _inline(doc, v, mode, stack)) for k, v in value.items())
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _inline(doc, value, mode, stack) if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [_inline(doc, v, mode, stack) for v in value]
        elif key in ("example", "examples", "description", "title", "x-auditable", "deprecated"):
            continue
        else:
            out[key] = value
    if out.get("nullable"):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = types + ["null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = list(out["enum"]) + [None]
    out.pop("nullable", None)
    if "oneOf" in out and mode in ("partial", "response"):
        out["anyOf"] = out.pop("oneOf") + out.get("anyOf", [])
    if "required" in out:
        flags = _prop_flags(out)
        if mode == "partial":
            out.pop("required")
        elif mode == "request":
            out["required"] = [r for r in out["required"]
                               if r not in SERVER_ASSIGNED and "readOnly" not in flags.get(r, ())]
        elif mode == "response":
            out["required"] = [r for r in out["required"] if "writeOnly" not in flags.get(r, ())]
        if "required" in out and not out["required"]:
            out.pop("required")
    if "format" in out and out.get("type") not in ("string", ["string", "null"]) and "type" in out:
        out.pop("format")
    return out


def _prop_flags(schema):
    """readOnly/writeOnly of each property declared here or in this schema's allOf/anyOf/oneOf parts."""
    flags = {}
    for key, sub in schema.get("properties", {}).items():
        for flag in ("readOnly", "writeOnly"):
            if isinstance(sub, dict) and sub.get(flag):
                flags.setdefault(key, set()).add(flag)
    for comb in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(comb, []):
            for key, value in _prop_flags(part).items():
                flags.setdefault(key, set()).update(value)
    return flags


def _path(parts):
    out = ""
    for part in parts:
        out += "[%d]" % part if isinstance(part, int) else (".%s" % part if out else str(part))
    return out


def _best(errors):
    """The most useful error; inside a failed oneOf/anyOf, the one from the variant that nearly fits."""
    # jsonschema's best_match descends into oneOf by its own heuristic, which picks the wrong DNS record variant.
    relevance = jsonschema.exceptions.relevance
    err = max(errors, key=relevance)
    while err.validator in ("oneOf", "anyOf") and err.context:
        branches = {}
        for sub in err.context:
            branches.setdefault(sub.schema_path[0] if sub.schema_path else 0, []).append(sub)

        def score(item):
            subs = item[1]
            # A variant refused only for its discriminator (`type: enum [...]`) is the wrong variant.
            picked_wrong = any(s.validator == "enum" for s in subs)
            return (picked_wrong, len(subs), -max(len(list(s.absolute_path)) for s in subs))

        _idx, subs = min(branches.items(), key=score)
        err = max(subs, key=relevance)
    return err


def _describe(err):
    where = _path(err.absolute_path) or "body"
    if err.validator == "required":
        return "%s: %s" % (where, err.message)
    if err.validator in ("oneOf", "anyOf"):
        return "%s does not match any accepted form (%s)" % (where, err.message[:200])
    return "%s: %s" % (where, err.message[:300])


def coerce_query(value, schema):
    """Query strings arrive as text; convert per the parameter's schema before validating."""
    kind = schema.get("type")
    try:
        if kind == "number":
            return float(value)
        if kind == "integer":
            return int(value)
        if kind == "boolean":
            if value.lower() in ("true", "false"):
                return value.lower() == "true"
            return value
    except ValueError:
        return value
    return value
