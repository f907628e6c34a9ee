"""Kubernetes' protobuf wire format for the built-in kinds client-go sends that way.

client-go's typed clients (Helm's release storage, namespace creation, deletes) encode bodies as
`application/vnd.kubernetes.protobuf`: the 4-byte magic `k8s\\0`, then a `runtime.Unknown` whose `raw` holds the
object's generated.proto message. This decodes those bodies into the JSON shape the rest of the stand-in works on;
answers stay JSON, which every client-go Accept header allows. Field numbers are k8s.io/api's generated.proto.
"""

from __future__ import annotations

import base64
import datetime

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    pass


def _varint(buf, pos):
    out = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        out |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return out, pos
        shift += 7


def fields(buf):
    """[(field number, value)] of one message: varints as int, length-delimited as bytes."""
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = bytes(buf[pos:pos + length])
            if len(value) != length:
                raise ProtobufError("truncated field %d" % number)
            pos += length
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise ProtobufError("unsupported wire type %d" % wire)
        out.append((number, value))
    return out


def _str(value):
    return value.decode("utf-8")


def _int64(value):
    return value - (1 << 64) if value >= (1 << 63) else value


def _map(entries, value_fn):
    out = {}
    for raw in entries:
        parts = dict(fields(raw))
        out[_str(parts.get(1, b""))] = value_fn(parts.get(2, b""))
    return out


EPOCH = "1970-01-01T00:00:00Z"


def _time(raw):
    parts = dict(fields(raw))
    stamp = datetime.datetime.fromtimestamp(_int64(parts.get(1, 0)), datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


# message -> {field number: (json name, decoder, repeated)}
def _schema():
    s = {}
    s["ObjectMeta"] = {1: ("name", _str), 2: ("generateName", _str), 3: ("namespace", _str), 4: ("selfLink", _str),
                       5: ("uid", _str), 6: ("resourceVersion", _str), 7: ("generation", _int64),
                       8: ("creationTimestamp", _time), 9: ("deletionTimestamp", _time),
                       10: ("deletionGracePeriodSeconds", _int64), 11: ("labels", "map:str"),
                       12: ("annotations", "map:str"), 13: ("ownerReferences", "OwnerReference[]"),
                       14: ("finalizers", "str[]")}
    s["OwnerReference"] = {1: ("kind", _str), 3: ("name", _str), 4: ("uid", _str), 5: ("apiVersion", _str),
                           6: ("controller", bool), 7: ("blockOwnerDeletion", bool)}
    s["Secret"] = {1: ("metadata", "ObjectMeta"), 2: ("data", "map:bytes"), 3: ("type", _str),
                   4: ("stringData", "map:str"), 5: ("immutable", bool)}
    s["ConfigMap"] = {1: ("metadata", "ObjectMeta"), 2: ("data", "map:str"), 3: ("binaryData", "map:bytes"),
                      4: ("immutable", bool)}
    s["Namespace"] = {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec")}
    s["NamespaceSpec"] = {1: ("finalizers", "str[]")}
    s["ServiceAccount"] = {1: ("metadata", "ObjectMeta"), 2: ("secrets", "ObjectReference[]"),
                           3: ("automountServiceAccountToken", bool),
                           4: ("imagePullSecrets", "LocalObjectReference[]")}
    s["ObjectReference"] = {1: ("kind", _str), 2: ("namespace", _str), 3: ("name", _str), 4: ("uid", _str),
                            5: ("apiVersion", _str), 6: ("resourceVersion", _str), 7: ("fieldPath", _str)}
    s["LocalObjectReference"] = {1: ("name", _str)}
    s["DeleteOptions"] = {1: ("gracePeriodSeconds", _int64), 2: ("preconditions", "Preconditions"),
                          3: ("orphanDependents", bool), 4: ("propagationPolicy", _str), 5: ("dryRun", "str[]")}
    s["Preconditions"] = {1: ("uid", _str), 2: ("resourceVersion", _str)}
    return s


SCHEMA = _schema()
KINDS = {"Secret", "ConfigMap", "Namespace", "ServiceAccount", "DeleteOptions"}


def decode_message(name, raw):
    spec = SCHEMA[name]
    out = {}
    for number, value in fields(raw):
        if number not in spec:
            continue  # a field this stand-in never reads (managedFields, status)
        key, kind = spec[number]
        if kind == "map:str":
            out.setdefault(key, {}).update(_map([value], _str))
        elif kind == "map:bytes":
            out.setdefault(key, {}).update(_map([value], lambda b: base64.b64encode(b).decode()))
        elif kind == "str[]":
            out.setdefault(key, []).append(_str(value))
        elif isinstance(kind, str) and kind.endswith("[]"):
            out.setdefault(key, []).append(decode_message(kind[:-2], value))
        elif isinstance(kind, str):
            out[key] = decode_message(kind, value)
        elif kind is bool:
            out[key] = bool(value)
        else:
            out[key] = kind(value)
    # gogo-protobuf writes every non-pointer field; its zero value means unset, as omitempty does in JSON.
    for key in [k for k, v in out.items() if v in ("", None) or (k in ("generation",) and v == 0)
                or (k == "creationTimestamp" and v == EPOCH)]:
        out.pop(key)
    return out


def decode(body):
    """A `k8s\\0`-framed body -> the object as JSON would carry it (apiVersion and kind included)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic number")
    envelope = dict(fields(body[len(MAGIC):]))
    type_meta = dict(fields(envelope.get(1, b"")))
    api_version, kind = _str(type_meta.get(1, b"")), _str(type_meta.get(2, b""))
    if kind not in KINDS:
        raise ProtobufError("the sandbox API server decodes protobuf for %s only, not %s; send it as JSON"
                            % (", ".join(sorted(KINDS)), kind or "an untyped body"))
    obj = decode_message(kind, envelope.get(2, b""))
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    return obj


def _varint_bytes(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def message(pairs):
    """Encode [(field number, bytes)] as length-delimited fields (all this stand-in writes)."""
    out = bytearray()
    for number, value in pairs:
        out += _varint_bytes(number << 3 | 2) + _varint_bytes(len(value)) + value
    return bytes(out)
