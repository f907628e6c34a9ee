"""Cloudflare's edge, in miniature: one loopback HTTP proxy per proxied A record, enforcing its Access application.

A request reaches the edge of `hostname`; if an Access application covers the host (and path), its policies decide,
in precedence order: the first policy whose rules match applies its decision (allow, bypass and non_identity let
the request through, deny refuses it); when none matches, Access refuses with 403. Without an application the
request goes straight on. Allowed requests are forwarded to whatever serves the record's IP on port 80 — found
through `sandbox.resolve`, never dialled directly.

The client address is taken from the test header `X-Sandbox-Client-IP` (default 127.0.0.1); service tokens come
in `CF-Access-Client-Id` / `CF-Access-Client-Secret`, as Cloudflare expects them. Toward the origin the edge
connects from its own address, inside Cloudflare's published ranges; `X-Sandbox-Source-IP` carries it (the origin's
load balancer stand-in reads it as the TCP source, see sandbox/kube/loadbalancer.py), and the client's address
goes in `CF-Connecting-IP` as Cloudflare sends it.

People log in through the sandbox login, `POST /cdn-cgi/access/login` on the host (JSON: `identity_provider` (name or
id), `email`, `groups`, `attributes`, `redirect_url`), which stands in for the IdP's redirect: the provider must
exist (and be in the application's `allowed_idps`, when it names any) and a policy must admit the identity, else 403.
It answers the application token (access_jwt.py) as JSON and as the `CF_Authorization` cookie. On every request the
edge verifies a token from that cookie or `Cf-Access-Jwt-Assertion` (signature, `aud` = the application's AUD tag,
`exp`) and evaluates the identity rules (email, email_domain, okta, azureAD, gsuite, github-organization, saml)
against its claims; a token that fails verification is no identity, and the 403 names why. Toward the origin the
verified token goes in `Cf-Access-Jwt-Assertion` (a client's own is never passed on) with
`Cf-Access-Authenticated-User-Email`. `GET /cdn-cgi/access/certs` publishes the signing key. Access groups
(`group`) never match: the sandbox has none.
"""

from __future__ import annotations

import http.client
import http.cookies
import ipaddress
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .access_jwt import COOKIE, HEADER, AccessJwt, JwtError, seconds

CLIENT_IP_HEADER = "X-Sandbox-Client-IP"
SOURCE_IP_HEADER = "X-Sandbox-Source-IP"
# The address this edge connects to origins from: a host in 162.158.0.0/15, one of Cloudflare's published ranges.
EDGE_EGRESS_IP = "162.158.1.17"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}
LOGIN_PATH = "/cdn-cgi/access/login"
CERTS_PATH = "/cdn-cgi/access/certs"
# What the edge sets toward the origin itself; a client's own values are dropped.
ACCESS_HEADERS = {HEADER.lower(), "cf-access-authenticated-user-email"}


class Edge:
    def __init__(self, app):
        self.app = app
        self.sandbox = app.sandbox
        self.servers = {}  # hostname -> (server, thread, record id)
        self.lock = threading.Lock()
        self.jwt = AccessJwt()

    def urls(self):
        with self.lock:
            return dict((host, "http://127.0.0.1:%d" % srv.server_address[1]) for host, (srv, _t, _r) in
                        self.servers.items())

    def url_for(self, hostname):
        """The edge proxy serving `hostname`, or None when no proxied record names it."""
        return self.urls().get(hostname.lower().rstrip("."))

    def sync(self):
        """Start a proxy for every proxied A record, stop those whose record is gone or no longer proxied."""
        wanted = {}
        for rec in list(self.app.records.values()):
            if rec["type"] == "A" and rec["proxied"]:
                wanted.setdefault(rec["name"], rec["id"])
        with self.lock:
            for host in [h for h in self.servers if h not in wanted]:
                srv, _thread, _rid = self.servers.pop(host)
                threading.Thread(target=_close, args=(srv,), daemon=True).start()
            for host, rid in wanted.items():
                if host in self.servers:
                    continue
                port = self.sandbox.free_port()
                srv = ThreadingHTTPServer(("127.0.0.1", port), _handler(self, host))
                srv.daemon_threads = True
                thread = threading.Thread(target=srv.serve_forever, name="edge-%s" % host, daemon=True)
                thread.start()
                self.servers[host] = (srv, thread, rid)

    def stop(self):
        with self.lock:
            servers, self.servers = list(self.servers.values()), {}
        for srv, _thread, _rid in servers:
            _close(srv)

    # ---- Access -------------------------------------------------------------------------
    def origin_ip(self, host):
        for rec in list(self.app.records.values()):
            if rec["name"] == host and rec["type"] == "A" and rec["proxied"]:
                return rec["content"]
        return None

    def application(self, host, path):
        """The Access app whose domain (host + optional path prefix) covers the request; longest path wins."""
        best, best_len = None, -1
        for app in list(self.app.apps.values()):
            for domain in app.get("self_hosted_domains") or [app["domain"]]:
                d_host, _, d_path = domain.lower().partition("/")
                if d_host.startswith("*.") and host.endswith(d_host[1:]) or d_host == host:
                    prefix = "/" + d_path if d_path else ""
                    if prefix and not (path == prefix or path.startswith(prefix.rstrip("/") + "/")):
                        continue
                    if len(prefix) > best_len:
                        best, best_len = app, len(prefix)
        return best

    def decide(self, app, client_ip, headers, identity=None):
        """(allowed, reason) for a request to `app`; `identity` is the claims of a verified token, or None."""
        for link in sorted(app["policies"], key=lambda l: l["precedence"]):
            pol = self.app.policies.get(link["id"])
            if pol is None or not self._policy_matches(pol, client_ip, headers, identity):
                continue
            if pol["decision"] == "deny":
                return False, "denied by policy %s" % pol["name"]
            return True, "%s by policy %s" % (pol["decision"], pol["name"])
        return False, "no Access policy of %s admits this request" % app["name"]

    def _policy_matches(self, pol, client_ip, headers, identity):
        def check(rule):
            return self._rule_matches(rule, client_ip, headers, identity)

        return (any(check(r) for r in pol["include"])
                and all(check(r) for r in pol.get("require", []))
                and not any(check(r) for r in pol.get("exclude", [])))

    # ---- people: the sandbox login and its tokens ----------------------------------------
    @staticmethod
    def identity_token(headers):
        """The application token a request carries: the Cf-Access-Jwt-Assertion header, else the cookie."""
        token = headers.get(HEADER)
        if not token:
            cookie = http.cookies.SimpleCookie()
            try:
                cookie.load(headers.get("Cookie") or "")
            except http.cookies.CookieError:
                pass
            token = cookie[COOKIE].value if COOKIE in cookie else None
        return token

    def identity(self, app, headers):
        """(claims, None) of the request's verified application token; (None, why) when it has none or a bad one."""
        token = self.identity_token(headers)
        if not token:
            return None, None
        try:
            return self.jwt.verify(token, app["aud"]), None
        except JwtError as exc:
            return None, "Access JWT refused: %s" % exc

    def login(self, host, body, client_ip, headers):
        """(status, payload, token): the sandbox's stand-in for an IdP login followed by Access's policy check."""
        if not isinstance(body, dict) or not isinstance(body.get("email"), str) or "@" not in body["email"]:
            return 400, {"error": "Bad Request", "reason": "give email (and identity_provider, groups)"}, None
        path = (body.get("redirect_url") or "/").split("?", 1)[0]
        app = self.application(host, path if path.startswith("/") else "/" + path)
        if app is None:
            return 404, {"error": "Not Found", "reason": "no Access application covers %s%s" % (host, path)}, None
        wanted = body.get("identity_provider")
        idp = next((i for i in list(self.app.idps.values()) if wanted in (i["id"], i["name"])), None)
        if idp is None:
            return 400, {"error": "Bad Request", "reason": "identity provider %s is not configured" % wanted}, None
        if app.get("allowed_idps") and idp["id"] not in app["allowed_idps"]:
            return 403, {"error": "Forbidden", "reason": "application %s does not accept logins with %s"
                         % (app["name"], idp["name"])}, None
        groups = body.get("groups") or []
        custom = body.get("attributes") or {}
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups) or not isinstance(custom, dict):
            return 400, {"error": "Bad Request", "reason": "groups is a list of strings, attributes an object"}, None
        claims = {"email": body["email"], "idp": {"id": idp["id"], "type": idp["type"]}, "groups": groups,
                  "custom": custom}
        allowed, reason = self.decide(app, client_ip, headers, claims)
        if not allowed:
            return 403, {"error": "Forbidden", "reason": reason}, None
        ttl = seconds(app.get("session_duration"))
        token = self.jwt.issue(app["aud"], body["email"], idp, groups, custom, ttl=ttl)
        return 200, {"token": token, "aud": app["aud"], "expires_in": int(ttl), "reason": reason}, token

    def _identity_matches(self, rule, identity):
        if identity is None:
            return None
        email = (identity.get("email") or "").lower()
        idp = identity.get("idp") or {}
        groups = identity.get("groups") or []
        if "email" in rule:
            return email == rule["email"]["email"].lower()
        if "email_domain" in rule:
            return email.endswith("@" + rule["email_domain"]["domain"].lower().lstrip("@"))
        for key, field in (("okta", "email"), ("azureAD", "id"), ("gsuite", "email"), ("github-organization", "name")):
            if key in rule:
                return idp.get("id") == rule[key]["connection_id"] and rule[key][field] in groups
        if "saml" in rule:
            values = (identity.get("custom") or {}).get(rule["saml"]["attribute_name"])
            values = values if isinstance(values, list) else [values]
            return idp.get("type") == "saml" and rule["saml"]["attribute_value"] in values
        return None

    def _rule_matches(self, rule, client_ip, headers, identity=None):
        try:
            addr = ipaddress.ip_address(client_ip)
        except ValueError:
            addr = None
        if "everyone" in rule:
            return True
        person = self._identity_matches(rule, identity)
        if person is not None:
            return person
        if "ip" in rule:
            return addr is not None and _in(addr, rule["ip"]["ip"])
        if "ip_list" in rule:
            lst = self.app.lists.get(rule["ip_list"]["id"])
            return bool(lst and addr is not None and any(_in(addr, i["value"]) for i in lst["items"]))
        cid, secret = headers.get("CF-Access-Client-Id"), headers.get("CF-Access-Client-Secret")
        if "service_token" in rule:
            return self.app.access.token_matches(rule["service_token"]["token_id"], cid, secret)
        if "any_valid_service_token" in rule:
            return any(self.app.access.token_matches(tid, cid, secret) for tid in list(self.app.service_tokens))
        return False


def _in(addr, network):
    try:
        return addr in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _close(srv):
    srv.shutdown()
    srv.server_close()


def _handler(edge, host):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "cloudflare"
        # Headers and body are two writes: with Nagle on, the body waits for the client's delayed ACK of the headers,
        # 40 ms on every request after a connection's first, which no real front end adds.
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):
            pass

        def _reply(self, status, payload, content_type="text/plain; charset=utf-8", headers=()):
            data = payload if isinstance(payload, bytes) else payload.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Server", "cloudflare")
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            path = self.path.split("?", 1)[0]
            client_ip = self.headers.get(CLIENT_IP_HEADER) or "127.0.0.1"
            if path == CERTS_PATH and self.command == "GET":
                self._reply(200, json.dumps(edge.jwt.certs()), "application/json")
                return
            if path == LOGIN_PATH:
                if self.command != "POST":
                    self._reply(405, json.dumps({"error": "Method Not Allowed"}), "application/json",
                                [("Allow", "POST")])
                    return
                try:
                    login = json.loads(body or b"null")
                except ValueError:
                    login = None
                status, payload, token = edge.login(host, login, client_ip, self.headers)
                extra = [("Set-Cookie", "%s=%s; Path=/; HttpOnly; Secure; SameSite=Lax" % (COOKIE, token))] \
                    if token else [("CF-Access-Denied", "1")] if status == 403 else []
                self._reply(status, json.dumps(payload), "application/json", extra)
                return
            app = edge.application(host, path)
            claims = None
            if app is not None:
                claims, refused = edge.identity(app, self.headers)
                allowed, reason = edge.decide(app, client_ip, self.headers, claims)
                if not allowed:
                    self._reply(403, json.dumps({"error": "Forbidden", "reason": "; ".join(
                        r for r in (reason, refused) if r)}), "application/json", [("CF-Access-Denied", "1")])
                    return
            ip = edge.origin_ip(host)
            try:
                if ip is None:
                    raise LookupError("no proxied record for %s" % host)
                o_host, o_port = edge.sandbox.resolve(ip, 80)
            except LookupError:
                self._reply(502, "origin not reachable: nothing serves %s:80" % (ip or host))
                return
            headers = dict((k, v) for k, v in self.headers.items()
                           if k.lower() not in HOP_BY_HOP and k.lower() not in ACCESS_HEADERS
                           and k.lower() not in (CLIENT_IP_HEADER.lower(), SOURCE_IP_HEADER.lower()))
            if claims is not None:
                headers[HEADER] = edge.identity_token(self.headers)
                headers["Cf-Access-Authenticated-User-Email"] = claims["email"]
            headers["Host"] = host
            headers[SOURCE_IP_HEADER] = EDGE_EGRESS_IP
            headers["CF-Connecting-IP"] = client_ip
            headers["X-Forwarded-For"] = client_ip
            try:
                conn = http.client.HTTPConnection(o_host, o_port, timeout=60)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
            except OSError as exc:
                self._reply(502, "origin not reachable: %s" % exc)
                return
            out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP
                           and k.lower() not in ("content-type", "server")]
            self._reply(resp.status, data, resp.getheader("Content-Type", "application/octet-stream"), out_headers)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    return Handler
