"""Strictness from the discovery documents google-api-python-client ships.

Routes a request to its discovery method, and rejects bodies and query parameters the way the
real APIs' proto-JSON parser does: unknown names, wrong types, bad enum values, missing fields
that the document marks required for that method.
"""

from __future__ import annotations

import functools
import json
import re

from googleapiclient import discovery_cache

from ..web import ApiError, compile_template

INT_FORMATS = {"int32": "TYPE_INT32", "uint32": "TYPE_UINT32", "int64": "TYPE_INT64", "uint64": "TYPE_UINT64"}
# Query parameters every Google API accepts (system parameters).
SYSTEM_PARAMS = {"alt", "fields", "key", "prettyPrint", "quotaUser", "userIp", "$.xgafv", "access_token",
                 "callback", "upload_protocol", "uploadType", "oauth_token"}


def invalid(message, reason="invalid", field=None):
    return ApiError(400, message, reason=reason, status="INVALID_ARGUMENT", field=field)


class Discovery:
    def __init__(self, api, version):
        raw = discovery_cache.get_static_doc(api, version)
        if raw is None:
            raise ValueError("no packaged discovery document for %s %s" % (api, version))
        self.doc = json.loads(raw)
        self.api = api
        self.version = version
        self.schemas = self.doc["schemas"]
        self.service_path = self.doc.get("servicePath", "")
        self.methods = []
        self._collect(self.doc)
        self.methods.sort(key=lambda m: -m[3])
        self.by_id = {m[2]["id"]: m[2] for m in self.methods}

    def _collect(self, node):
        for method in (node.get("methods") or {}).values():
            flat = method.get("flatPath") or method["path"]
            rx_flat = compile_template("/" + self.service_path + flat)
            rx_path = compile_template("/" + self.service_path + method["path"])
            literal = len(re.sub(r"\{[^}]*\}", "", flat))
            self.methods.append((method["httpMethod"], (rx_flat, rx_path), method, literal))
        for child in (node.get("resources") or {}).values():
            self._collect(child)

    def match(self, http_method, path):
        """(method, params) for a path below the API root, or None; raises 405 on a verb mismatch."""
        wrong_verb = False
        for verb, (rx_flat, rx_path), method, _lit in self.methods:
            m = rx_flat.match(path)
            if not m:
                continue
            if verb != http_method:
                wrong_verb = True
                continue
            params = dict(m.groupdict())
            m2 = rx_path.match(path)
            if m2:
                params.update(m2.groupdict())
            return method, params
        if wrong_verb:
            raise ApiError(405, "Method not allowed", reason="methodNotAllowed", status="METHOD_NOT_ALLOWED")
        return None

    # ---- query parameters ------------------------------------------------------------
    def validate_query(self, method, query):
        params = method.get("parameters", {})
        for name, value in query.items():
            # System parameters may also be spelt with a leading '$' (google-cloud-* REST clients send
            # `$alt=json;enum-encoding=int`).
            if name in SYSTEM_PARAMS or (name.startswith("$") and name[1:] in SYSTEM_PARAMS):
                continue
            spec = params.get(name) or self._described_flag(method, name)
            if spec is None or spec.get("location") != "query":
                raise invalid('Invalid JSON payload received. Unknown name "%s": Cannot bind query parameter. '
                              "Field '%s' could not be found in request message." % (name, name))
            self._check_scalar(spec, value, name, from_query=True)

    @staticmethod
    def _described_flag(method, name):
        """A boolean query flag the method's own description tells callers to set but its parameters omit.

        Compute's packaged document says of every aggregatedList "set the `returnPartialSuccess` parameter to
        `true`" without listing it; gcloud sends it and Compute accepts it.
        """
        if re.search(r"`%s`\s+parameter\s+to\s+`true`" % re.escape(name), method.get("description") or ""):
            return {"type": "boolean", "location": "query"}
        return None

    # ---- bodies --------------------------------------------------------------------
    def validate_body(self, method, body):
        ref = (method.get("request") or {}).get("$ref")
        if ref is None:
            if body:
                raise invalid('Invalid JSON payload received. Unknown name "%s": Cannot find field.' % next(iter(body)))
            return
        if not isinstance(body, dict):
            raise invalid("Invalid JSON payload received. Expected an object for the request body.")
        self._check_object(self.schemas[ref], body, "", method["id"])

    def _check_object(self, schema, value, path, method_id):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        if "$ref" in schema:
            return self._check_object(self.schemas[schema["$ref"]], value, path, method_id)
        if not isinstance(value, dict):
            raise invalid("Invalid value at '%s' (%s), %s" % (path or "body", schema.get("id", "object"), json.dumps(value)))
        if props is None and addl is not None:
            for key, item in value.items():
                self._check_value(addl, item, "%s[%s]" % (path, key) if path else key, method_id)
            return
        props = props or {}
        for key, item in value.items():
            if key not in props:
                where = " at '%s'" % path if path else ""
                raise invalid('Invalid JSON payload received. Unknown name "%s"%s: Cannot find field.' % (key, where))
            sub = "%s.%s" % (path, key) if path else key
            self._check_value(props[key], item, sub, method_id)
        for key, spec in props.items():
            req = (spec.get("annotations") or {}).get("required") or []
            if method_id in req and value.get(key) in (None, ""):
                raise invalid("Required field '%s' not specified" % (("%s.%s" % (path, key)) if path else key),
                              reason="required")

    def _check_value(self, spec, value, path, method_id):
        if value is None:
            return
        if "$ref" in spec:
            return self._check_object(self.schemas[spec["$ref"]], value, path, method_id)
        kind = spec.get("type")
        if kind == "object":
            return self._check_object(spec, value, path, method_id)
        if kind == "array":
            if not isinstance(value, list):
                raise invalid("Invalid value at '%s' (type.googleapis.com/repeated), %s" % (path, json.dumps(value)))
            for idx, item in enumerate(value):
                self._check_value(spec.get("items", {}), item, "%s[%d]" % (path, idx), method_id)
            return
        if kind == "any":
            return
        self._check_scalar(spec, value, path)

    @staticmethod
    def _check_scalar(spec, value, path, from_query=False):
        kind = spec.get("type")
        fmt = spec.get("format")
        bad = False
        if kind == "string":
            if fmt in ("int64", "uint64"):
                bad = isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value)) if isinstance(value, (str, int)) else True
            elif from_query:
                bad = False
            else:
                bad = not isinstance(value, str)
            if not bad and spec.get("enum") and value not in spec["enum"]:
                raise invalid("Invalid value at '%s' (type.googleapis.com/enum), \"%s\"" % (path, value))
        elif kind == "integer":
            if from_query:
                bad = not re.fullmatch(r"-?\d+", str(value))
            else:
                bad = isinstance(value, bool) or not (
                    isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value))
                )
            if not bad and fmt in ("uint32", "uint64") and int(value) < 0:
                bad = True
        elif kind == "number":
            bad = isinstance(value, bool) or not isinstance(value, (int, float, str))
        elif kind == "boolean":
            # In a query string Google takes either case (gcloud's apitools sends includeAllScopes=True).
            bad = not isinstance(value, bool) if not from_query else str(value).lower() not in ("true", "false")
        if bad:
            type_name = INT_FORMATS.get(fmt, "TYPE_%s" % (kind or "unknown").upper())
            raise invalid("Invalid value at '%s' (%s), %s" % (path, type_name, json.dumps(value)))


@functools.lru_cache(maxsize=None)
def load(api, version):
    return Discovery(api, version)
