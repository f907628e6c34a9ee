"""A minimal reader of Terraform's HCL native syntax: enough to plan what the sandbox emulates.

It parses bodies (attributes and labelled blocks), strings with interpolation, heredocs, numbers,
booleans, null, lists and objects, and evaluates only literals and `var.x` references; any other
expression (function calls, resource attributes, operators) is "unknown", which is what a real plan
shows as "(known after apply)". Syntax errors and the validation errors Terraform reports before
planning (undeclared variables, duplicate blocks, unsupported block types, missing required
arguments) raise HclError with Terraform's wording.
"""

from __future__ import annotations

import hashlib
import json
import re

TOP_LEVEL = {"terraform", "provider", "variable", "output", "locals", "module", "resource", "data", "moved",
             "import", "check", "removed", "ephemeral"}
LABELS = {"variable": 1, "output": 1, "module": 1, "resource": 2, "data": 2, "provider": 1, "ephemeral": 2}


class HclError(Exception):
    def __init__(self, summary, detail="", filename="", line=0):
        super().__init__(summary)
        self.summary = summary
        self.detail = detail
        self.filename = filename
        self.line = line

    def render(self):
        where = "\n\n  on %s line %d:" % (self.filename, self.line) if self.filename else ""
        return "Error: %s%s\n\n%s" % (self.summary, where, self.detail)


class _Unknown:
    def __repr__(self):
        return "(known after apply)"


UNKNOWN = _Unknown()
MISSING = object()

_PUNCT = ["<<-", "<<", "==", "!=", "<=", ">=", "&&", "||", "=>", "...", "{", "}", "[", "]", "(", ")", "=", ",",
          ":", ".", "?", "+", "-", "*", "/", "%", "<", ">", "!"]
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


class Tok:
    __slots__ = ("kind", "value", "line")

    def __init__(self, kind, value, line):
        self.kind = kind  # ident number string heredoc punct nl
        self.value = value
        self.line = line

    def __repr__(self):
        return "%s(%r)" % (self.kind, self.value)


def _scan_interp(src, i, line, filename):
    """src[i] is just after '${' or '%{': return (raw expression text, index after the closing brace)."""
    depth, start = 1, i
    while i < len(src):
        c = src[i]
        if c == '"':
            i = _scan_string(src, i + 1, line, filename)[1]
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return src[start:i], i + 1
        elif c == "\n":
            line += 1
        i += 1
    raise HclError("Unterminated template string", "No closing marker was found for the string.", filename, line)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _scan_string(src, i, line, filename):
    """src[i] is just after the opening quote: return (parts, index after the closing quote)."""
    parts, buf = [], []
    while i < len(src):
        c = src[i]
        if c == '"':
            if buf:
                parts.append(("lit", "".join(buf)))
            return parts, i + 1
        if c == "\n":
            raise HclError("Invalid multi-line string", "Quoted strings may not be split over multiple lines. To "
                           "produce a multi-line string, either use the \\n escape to represent a newline "
                           "character or use the \"heredoc\" multi-line template syntax.", filename, line)
        if c == "\\" and i + 1 < len(src):
            nxt = src[i + 1]
            if nxt in _ESCAPES:
                buf.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt == "u" and re.match(r"[0-9a-fA-F]{4}", src[i + 2:i + 6]):
                buf.append(chr(int(src[i + 2:i + 6], 16)))
                i += 6
                continue
            raise HclError("Invalid escape sequence", "The symbol %r is not a valid escape sequence selector."
                           % nxt, filename, line)
        if c in "$%" and src[i + 1:i + 2] == "{":
            if src[i + 2:i + 3] == c:  # not an escape: "$${" is a literal "${"
                pass
            if buf:
                parts.append(("lit", "".join(buf)))
                buf = []
            raw, i = _scan_interp(src, i + 2, line, filename)
            parts.append(("interp" if c == "$" else "directive", raw))
            continue
        if c in "$%" and src[i + 1:i + 3] == c + "{":
            buf.append(c + "{")
            i += 3
            continue
        buf.append(c)
        i += 1
    raise HclError("Unterminated template string", "No closing marker was found for the string.", filename, line)


def tokenize(src, filename="", line=1):
    toks, i = [], 0
    while i < len(src):
        c = src[i]
        if c == "\n":
            toks.append(Tok("nl", "\n", line))
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#" or src.startswith("//", i):
            while i < len(src) and src[i] != "\n":
                i += 1
        elif src.startswith("/*", i):
            end = src.find("*/", i + 2)
            if end < 0:
                raise HclError("Unterminated comment", "There is no closing */ for this comment.", filename, line)
            line += src.count("\n", i, end)
            i = end + 2
        elif c == '"':
            parts, j = _scan_string(src, i + 1, line, filename)
            toks.append(Tok("string", parts, line))
            i = j
        elif src.startswith("<<", i) and re.match(r"<<-?[A-Za-z_][A-Za-z0-9_]*\n", src[i:]):
            m = re.match(r"<<(-?)([A-Za-z_][A-Za-z0-9_]*)\n", src[i:])
            strip, marker = m.group(1) == "-", m.group(2)
            body_start = i + m.end()
            end = re.compile(r"^[ \t]*%s[ \t]*$" % re.escape(marker), re.M).search(src, body_start)
            if end is None:
                raise HclError("Unterminated template string", "No closing marker was found for the string.",
                               filename, line)
            lines = src[body_start:end.start()].split("\n")[:-1]
            if strip:
                indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
                lines = [x[indent:] for x in lines]
            toks.append(Tok("string", [("lit", "\n".join(lines) + ("\n" if lines else ""))], line))
            line += src.count("\n", i, end.end())
            i = end.end()
        elif _NUMBER.match(src, i) and c.isdigit():
            m = _NUMBER.match(src, i)
            text = m.group(0)
            toks.append(Tok("number", float(text) if any(x in text for x in ".eE") else int(text), line))
            i = m.end()
        elif _IDENT.match(src, i):
            m = _IDENT.match(src, i)
            toks.append(Tok("ident", m.group(0), line))
            i = m.end()
        else:
            for p in _PUNCT:
                if src.startswith(p, i):
                    toks.append(Tok("punct", p, line))
                    i += len(p)
                    break
            else:
                raise HclError("Invalid character", "This character is not used within the language: %r." % c,
                               filename, line)
    toks.append(Tok("nl", "\n", line))
    return toks


class Body:
    def __init__(self):
        self.attrs = {}  # name -> (tokens, line)
        self.blocks = []  # Block


class Block:
    def __init__(self, type_, labels, body, line):
        self.type = type_
        self.labels = labels
        self.body = body
        self.line = line


_OPEN = {"{": "}", "[": "]", "(": ")"}


def parse_body(toks, i, filename, closing):
    body = Body()
    while True:
        while toks[i].kind == "nl":
            i += 1
            if i >= len(toks):
                if closing:
                    raise HclError("Unclosed configuration block", "There is no closing brace for this block "
                                   "before the end of the file.", filename, toks[-1].line)
                return body, i
        if i >= len(toks) - 1 and toks[i].kind == "nl":
            return body, i
        t = toks[i]
        if t.kind == "punct" and t.value == "}":
            if not closing:
                raise HclError("Argument or block definition required", "An argument or block definition is "
                               "required here.", filename, t.line)
            return body, i + 1
        if t.kind != "ident":
            raise HclError("Argument or block definition required", "An argument or block definition is required "
                           "here.", filename, t.line)
        name, line = t.value, t.line
        i += 1
        if toks[i].kind == "punct" and toks[i].value == "=":
            i += 1
            start, depth = i, 0
            while i < len(toks):
                tk = toks[i]
                if tk.kind == "punct" and tk.value in _OPEN:
                    depth += 1
                elif tk.kind == "punct" and tk.value in ("}", "]", ")"):
                    if depth == 0:
                        break
                    depth -= 1
                elif tk.kind == "nl" and depth == 0:
                    break
                i += 1
            else:
                raise HclError("Missing expression", "Expected the start of an expression.", filename, line)
            expr = [x for x in toks[start:i] if x.kind != "nl"]
            if not expr:
                raise HclError("Missing expression", "Expected the start of an expression, but found the end of "
                               "the line.", filename, line)
            if depth != 0:
                raise HclError("Missing close bracket", "An expression bracket was not closed.", filename, line)
            if name in body.attrs:
                raise HclError("Attribute redefined", "The argument %r was already set. Each argument may be set "
                               "only once." % name, filename, line)
            body.attrs[name] = (expr, line)
            continue
        labels = []
        while toks[i].kind in ("string", "ident") and not (toks[i].kind == "punct"):
            lt = toks[i]
            if lt.kind == "string":
                if any(kind != "lit" for kind, _v in lt.value):
                    raise HclError("Invalid string literal", "Template sequences are not allowed in this string.",
                                   filename, lt.line)
                labels.append("".join(v for _k, v in lt.value))
            else:
                labels.append(lt.value)
            i += 1
        if not (toks[i].kind == "punct" and toks[i].value == "{"):
            raise HclError("Invalid block definition", "Either a quoted string block label or an opening brace "
                           "(\"{\") is expected here.", filename, toks[i].line)
        sub, i = parse_body(toks, i + 1, filename, True)
        body.blocks.append(Block(name, labels, sub, line))


def parse(src, filename="main.tf"):
    toks = tokenize(src, filename)
    body, _ = parse_body(toks, 0, filename, False)
    return body


# ---- expressions ------------------------------------------------------------------------------
class _NotLiteral(Exception):
    pass


def references(tokens):
    """Every `var.NAME` in an expression, including inside string templates."""
    out = []
    for idx, t in enumerate(tokens):
        if t.kind == "ident" and t.value == "var" and idx + 2 < len(tokens) + 0 and idx + 2 <= len(tokens) - 1:
            nxt, name = tokens[idx + 1], tokens[idx + 2]
            if nxt.kind == "punct" and nxt.value == "." and name.kind == "ident":
                out.append((name.value, t.line))
        if t.kind == "string":
            for kind, raw in t.value:
                if kind != "lit":
                    out.extend(references(tokenize(raw, line=t.line)[:-1]))
    return out


def evaluate(tokens, variables):
    """The value of an expression, UNKNOWN when it is not a literal or var reference."""
    try:
        value, i = _value(tokens, 0, variables)
    except (_NotLiteral, IndexError):
        return UNKNOWN
    return value if i == len(tokens) else UNKNOWN


def _skip_nl(tokens, i):
    while i < len(tokens) and tokens[i].kind == "nl":
        i += 1
    return i


def _value(tokens, i, variables):
    t = tokens[i]
    if t.kind == "number":
        return t.value, i + 1
    if t.kind == "punct" and t.value == "-" and i + 1 < len(tokens) and tokens[i + 1].kind == "number":
        return -tokens[i + 1].value, i + 2
    if t.kind == "string":
        return _template(t, variables), i + 1
    if t.kind == "ident":
        if t.value in ("true", "false"):
            return t.value == "true", i + 1
        if t.value == "null":
            return None, i + 1
        if t.value == "var" and i + 2 < len(tokens) + 1 and tokens[i + 1].value == "." and tokens[i + 2].kind == "ident":
            name = tokens[i + 2].value
            value = variables.get(name, UNKNOWN)
            return value, i + 3
        raise _NotLiteral()
    if t.kind == "punct" and t.value == "[":
        out, i = [], i + 1
        while True:
            if tokens[i].kind == "punct" and tokens[i].value == "]":
                return out, i + 1
            v, i = _value(tokens, i, variables)
            out.append(v)
            if tokens[i].kind == "punct" and tokens[i].value == ",":
                i += 1
            elif not (tokens[i].kind == "punct" and tokens[i].value == "]"):
                raise _NotLiteral()
    if t.kind == "punct" and t.value == "{":
        out, i = {}, i + 1
        while True:
            if tokens[i].kind == "punct" and tokens[i].value == "}":
                return out, i + 1
            k = tokens[i]
            if k.kind == "ident":
                key = k.value
            elif k.kind == "string" and all(kind == "lit" for kind, _v in k.value):
                key = "".join(v for _k, v in k.value)
            else:
                raise _NotLiteral()
            if not (tokens[i + 1].kind == "punct" and tokens[i + 1].value in ("=", ":")):
                raise _NotLiteral()
            v, i = _value(tokens, i + 2, variables)
            out[key] = v
            if tokens[i].kind == "punct" and tokens[i].value == ",":
                i += 1
    raise _NotLiteral()


def _template(tok, variables):
    pieces = []
    for kind, raw in tok.value:
        if kind == "lit":
            pieces.append(raw)
            continue
        if kind == "directive":
            return UNKNOWN
        value = evaluate(tokenize(raw.strip("~ ").rstrip("~ "), line=tok.line)[:-1], variables)
        if value is UNKNOWN or isinstance(value, (list, dict)):
            if len(tok.value) == 1:
                return value  # "${var.x}" is var.x itself, whatever its type
            return UNKNOWN
        if len(tok.value) == 1:
            return value
        pieces.append(_to_string(value))
    return "".join(pieces)


def _to_string(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def type_of(value):
    """(type, detailed-type) as the state-version-outputs API reports them."""
    if isinstance(value, bool):
        return "boolean", "bool"
    if isinstance(value, (int, float)):
        return "number", "number"
    if isinstance(value, str) or value is None or value is UNKNOWN:
        return "string", "string"
    if isinstance(value, list):
        return "array", ["tuple", [type_of(v)[1] for v in value]]
    if isinstance(value, dict):
        return "object", ["object", {k: type_of(v)[1] for k, v in value.items()}]
    return "string", "string"


def token_text(tokens):
    return json.dumps([[t.kind, t.value if not isinstance(t.value, list) else t.value] for t in tokens],
                      default=str)


# ---- a configuration --------------------------------------------------------------------------
class Config:
    """The root module: variables, outputs, resources. Raises HclError like `terraform validate`."""

    def __init__(self, files):
        self.variables = {}
        self.outputs = {}
        self.resources = {}
        self.locals = {}
        self.terraform = []
        if not files:
            raise HclError("No configuration files", "Plan requires configuration to be present. Planning "
                           "without a configuration would mark everything for destruction, which is normally "
                           "not what is desired.")
        bodies = []
        for name in sorted(files):
            bodies.append((name, parse(files[name], name)))
        for filename, body in bodies:
            if body.attrs:
                name, (_e, line) = next(iter(body.attrs.items()))
                raise HclError("Unsupported argument", "An argument named %r is not expected here." % name,
                               filename, line)
            for block in body.blocks:
                self._block(filename, block)
        for filename, kind, name, tokens in self._expressions():
            for ref, line in references(tokens):
                if ref not in self.variables:
                    raise HclError("Reference to undeclared input variable", "An input variable with the name %r "
                                   "has not been declared. This variable can be declared with a variable %r {} "
                                   "block." % (ref, ref), filename, line)

    def _block(self, filename, block):
        if block.type not in TOP_LEVEL:
            raise HclError("Unsupported block type", "Blocks of type %r are not expected here." % block.type,
                           filename, block.line)
        want = LABELS.get(block.type, 0)
        if len(block.labels) != want:
            raise HclError("%s labels" % ("Missing" if len(block.labels) < want else "Extraneous"),
                           "A %s block requires %d label(s)." % (block.type, want), filename, block.line)
        attrs = block.body.attrs
        if block.type == "variable":
            name = block.labels[0]
            if name in self.variables:
                raise HclError("Duplicate variable declaration", "A variable named %r was already declared."
                               % name, filename, block.line)
            default = MISSING
            if "default" in attrs:
                tokens, line = attrs["default"]
                if references(tokens):
                    raise HclError("Variables not allowed", "Variables may not be used here.", filename, line)
                default = evaluate(tokens, {})
                if default is UNKNOWN:
                    raise HclError("Invalid default value for variable", "This default value is not a literal "
                                   "value.", filename, line)
            sensitive = evaluate(attrs["sensitive"][0], {}) is True if "sensitive" in attrs else False
            self.variables[name] = {"default": default, "sensitive": sensitive, "file": filename, "line": block.line}
        elif block.type == "output":
            name = block.labels[0]
            if name in self.outputs:
                raise HclError("Duplicate output definition", "An output named %r was already defined." % name,
                               filename, block.line)
            if "value" not in attrs:
                raise HclError("Missing required argument", "The argument \"value\" is required, but no "
                               "definition was found.", filename, block.line)
            sensitive = evaluate(attrs["sensitive"][0], {}) is True if "sensitive" in attrs else False
            self.outputs[name] = {"tokens": attrs["value"][0], "sensitive": sensitive, "file": filename,
                                  "line": attrs["value"][1]}
        elif block.type in ("resource", "data"):
            address = ("data." if block.type == "data" else "") + ".".join(block.labels)
            if address in self.resources:
                raise HclError("Duplicate resource %r configuration" % address, "A %s block for %r was already "
                               "declared." % (block.type, address), filename, block.line)
            self.resources[address] = {"body": block.body, "file": filename, "line": block.line,
                                       "managed": block.type == "resource"}
        elif block.type == "module":
            if "source" not in attrs:
                raise HclError("Missing required argument", "The argument \"source\" is required, but no "
                               "definition was found.", filename, block.line)
        elif block.type == "locals":
            self.locals.update(attrs)
        elif block.type == "terraform":
            self.terraform.append(block)

    def _expressions(self):
        for name, out in self.outputs.items():
            yield out["file"], "output", name, out["tokens"]
        for address, res in self.resources.items():
            for tokens in _all_expressions(res["body"]):
                yield res["file"], "resource", address, tokens
        for name, (tokens, _line) in self.locals.items():
            yield "", "local", name, tokens

    def resolve_variables(self, values):
        """name -> value from workspace/run values (already typed) and defaults; raise for missing ones."""
        out = {}
        for name, spec in sorted(self.variables.items()):
            if name in values:
                out[name] = values[name]
            elif spec["default"] is not MISSING:
                out[name] = spec["default"]
            else:
                raise HclError("No value for required variable", "The root module input variable %r is not set, "
                               "and has no default value. Use a -var or -var-file command line argument or set a "
                               "workspace variable to provide a value for this variable." % name, spec["file"],
                               spec["line"])
        return out

    def evaluate_outputs(self, values):
        out = {}
        for name, spec in self.outputs.items():
            refs = [r for r, _l in references(spec["tokens"])]
            if not spec["sensitive"] and any(self.variables.get(r, {}).get("sensitive") for r in refs):
                raise HclError("Output refers to sensitive values", "To reduce the risk of accidentally exporting "
                               "sensitive data that was intended to be only internal, Terraform requires that any "
                               "root module output containing sensitive data be explicitly marked as sensitive, "
                               "to confirm your intent.", spec["file"], spec["line"])
            value = evaluate(spec["tokens"], values)
            out[name] = {"value": None if value is UNKNOWN else value, "sensitive": spec["sensitive"]}
        return out

    def resource_hashes(self, values):
        """address -> digest of its configuration and the variable values it uses (the plan's diff basis)."""
        out = {}
        for address, res in self.resources.items():
            if not res["managed"]:
                continue
            exprs = list(_all_expressions(res["body"]))
            used = sorted({r for tokens in exprs for r, _l in references(tokens)})
            blob = json.dumps([_body_text(res["body"]), {u: values.get(u) for u in used}], default=str,
                              sort_keys=True)
            out[address] = hashlib.sha256(blob.encode()).hexdigest()
        return out


def _all_expressions(body):
    for tokens, _line in body.attrs.values():
        yield tokens
    for block in body.blocks:
        for tokens in _all_expressions(block.body):
            yield tokens


def _body_text(body):
    return [sorted((k, token_text(v[0])) for k, v in body.attrs.items()),
            [(b.type, b.labels, _body_text(b.body)) for b in body.blocks]]


def typed_value(raw, hcl):
    """A workspace variable's value as Terraform sees it: HCL-parsed when hcl is true, else a string."""
    if not hcl:
        return raw
    try:
        toks = tokenize(raw or "", "<value>")[:-1]
    except HclError:
        return UNKNOWN
    toks = [t for t in toks if t.kind != "nl"]
    return evaluate(toks, {}) if toks else None
