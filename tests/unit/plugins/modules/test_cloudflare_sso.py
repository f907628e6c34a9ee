"""SSO at the edge: Access identity providers, policies that admit IdP groups, and the edge verifying Access JWTs
from the sandbox login while automation keeps its service token and the NAT IP list."""

import base64
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.unit.idempotence import converge

ZONE = "skyforge.example"
OKTA_SECRET = "okta-client-secret-0123456789"


def writes(sandbox, since):
    return [e for e in sandbox.log.entries[since:] if e["family"] == "cloudflare" and e["method"] != "GET"]


def cf(sandbox):
    return sandbox.apps["cloudflare"]


def okta_args(cf_args, name, **extra):
    args = dict(cf_args, name=name, type="okta", client_id="0oa-sso", client_secret=OKTA_SECRET,
                config={"okta_account": "https://example.okta.com", "claims": ["groups"]})
    args.update(extra)
    return args


def no_secret(result, secret):
    text = json.dumps(dict((k, v) for k, v in result.items() if not k.startswith("_")))
    assert secret not in text and secret not in result["_stdout"] and secret not in result["_stderr"]


def test_identity_provider_converges_and_never_shows_its_secret(sandbox, cf_args, module_runner):
    args = okta_args(cf_args, "sso-okta")
    check, real, again = converge(module_runner, "cloudflare_access_identity_provider", args, sandbox, writes)
    for out in (check, real, again):
        no_secret(out, OKTA_SECRET)
    assert real["identity_provider"]["config"] == {"client_id": "0oa-sso", "okta_account": "https://example.okta.com",
                                                   "claims": ["groups"]}
    assert real["diff"]["before"] == {} and real["diff"]["after"]["config"]["client_secret"] == "new value"
    assert check["diff"]["after"]["config"]["client_secret"] == "new value"
    assert "client_secret" not in again["diff"]["after"].get("config", {}), "an unchanged run shows no secret"
    idp_id = real["identity_provider"]["id"]
    assert cf(sandbox).idp_secrets[idp_id] == OKTA_SECRET

    # A config change is a PUT without the secret (on_create): the stored secret stays.
    mark = sandbox.log.mark()
    moved = dict(args, client_secret="not-sent", config=dict(args["config"], authorization_server_id="aus1"))
    upd = module_runner("cloudflare_access_identity_provider", moved)
    assert upd["changed"] and upd["changes"] == ["config.authorization_server_id"]
    assert [e["method"] for e in writes(sandbox, mark)] == ["PUT"]
    assert cf(sandbox).idp_secrets[idp_id] == OKTA_SECRET and "client_secret" not in upd["diff"]["after"]["config"]
    # A setting left out is removed.
    back = module_runner("cloudflare_access_identity_provider", args)
    assert back["changes"] == ["config.authorization_server_id"]
    assert "authorization_server_id" not in cf(sandbox).idps[idp_id]["config"]

    # update_secret=always sends it on every run, which then always reports a change; the diff names no value.
    rotate = dict(args, client_secret="rotated-secret-987", update_secret="always")
    pred = module_runner("cloudflare_access_identity_provider", rotate, check=True)
    assert pred["changed"] and pred["changes"] == ["config.client_secret"]
    assert cf(sandbox).idp_secrets[idp_id] == OKTA_SECRET, "check mode sends nothing"
    rot = module_runner("cloudflare_access_identity_provider", rotate)
    no_secret(rot, "rotated-secret-987")
    assert rot["changed"] and cf(sandbox).idp_secrets[idp_id] == "rotated-secret-987"
    assert rot["diff"]["before"]["config"]["client_secret"] == "previous value"
    assert rot["diff"]["after"]["config"]["client_secret"] == "new value"
    assert module_runner("cloudflare_access_identity_provider", rotate)["changed"] is True

    # What cannot be done fails in one line naming the fix.
    retype = module_runner("cloudflare_access_identity_provider",
                           dict(args, type="azureAD", config={"directory_id": "d"}), expect_fail=True)
    assert "type cannot be changed in place" in retype["msg"]
    nosecret = module_runner("cloudflare_access_identity_provider",
                             dict(okta_args(cf_args, "sso-new"), client_secret=None), expect_fail=True)
    assert "client_secret is required to create" in nosecret["msg"]
    wrong = module_runner("cloudflare_access_identity_provider",
                          dict(args, config=dict(args["config"], directory_id="x")), expect_fail=True)
    assert "config.directory_id is not a setting of a okta provider" in wrong["msg"]
    in_config = module_runner("cloudflare_access_identity_provider",
                              dict(args, config=dict(args["config"], client_secret=OKTA_SECRET)), expect_fail=True)
    assert "client_secret" in in_config["msg"]
    no_secret(in_config, OKTA_SECRET)

    # SAML and OIDC, then removal.
    saml = dict(cf_args, name="sso-saml", type="saml", config={
        "issuer_url": "https://idp.example.com", "sso_target_url": "https://idp.example.com/sso",
        "attributes": ["groups"], "sign_request": True})
    converge(module_runner, "cloudflare_access_identity_provider", saml, sandbox, writes)
    oidc = dict(cf_args, name="sso-oidc", type="oidc", client_id="c", client_secret="oidc-secret-42", config={
        "auth_url": "https://id.example.com/auth", "token_url": "https://id.example.com/token",
        "certs_url": "https://id.example.com/certs", "scopes": ["openid", "email", "groups"]})
    converge(module_runner, "cloudflare_access_identity_provider", oidc, sandbox, writes)
    for name in ("sso-saml", "sso-oidc"):
        gone = dict(cf_args, name=name, state="absent")
        assert module_runner("cloudflare_access_identity_provider", gone, check=True)["changed"]
        assert module_runner("cloudflare_access_identity_provider", gone)["changed"]
        assert module_runner("cloudflare_access_identity_provider", gone)["changed"] is False
    assert cf(sandbox).violations == []


def test_policy_rules_by_identity_provider_group(sandbox, cf_args, module_runner):
    module_runner("cloudflare_access_identity_provider", okta_args(cf_args, "grp-okta"))
    module_runner("cloudflare_access_identity_provider", dict(
        cf_args, name="grp-azure", type="azureAD", client_id="a", client_secret="azure-secret-1",
        config={"directory_id": "dir-1", "support_groups": True}))
    module_runner("cloudflare_access_identity_provider", dict(
        cf_args, name="grp-saml", type="saml",
        config={"issuer_url": "https://idp.example.com", "sso_target_url": "https://idp.example.com/sso"}))
    args = dict(cf_args, name="grp-people", decision="allow", include=[
        {"okta": {"identity_provider": "grp-okta", "group": "operators"}},
        {"azure_ad": {"identity_provider": "grp-azure", "group": "0b7c-group"}},
        {"saml": {"attribute": "groups", "value": "operators"}}])
    _check, real, _again = converge(module_runner, "cloudflare_access_policy", args, sandbox, writes)
    okta_id = [i["id"] for i in cf(sandbox).idps.values() if i["name"] == "grp-okta"][0]
    assert real["policy"]["include"][0] == {"okta": {"email": "operators", "connection_id": okta_id}}
    assert real["policy"]["include"][2] == {"saml": {"attribute_name": "groups", "attribute_value": "operators"}}

    wrong_type = module_runner("cloudflare_access_policy", dict(args, include=[
        {"okta": {"identity_provider": "grp-azure", "group": "x"}}]), expect_fail=True)
    assert "grp-azure is of type azureAD" in wrong_type["msg"]
    later = dict(args, name="grp-later", include=[{"okta": {"identity_provider": "not-yet", "group": "x"}}])
    pred = module_runner("cloudflare_access_policy", later, check=True)
    assert pred["changed"] and pred["unresolved"] == ["identity provider not-yet"]
    assert "not-yet was not found" in module_runner("cloudflare_access_policy", later, expect_fail=True)["msg"]
    shape = module_runner("cloudflare_access_policy", dict(args, include=[{"okta": {"group": "x"}}]), expect_fail=True)
    assert "okta takes {identity_provider: ..., group: ...}" in shape["msg"]
    used = module_runner("cloudflare_access_identity_provider", dict(cf_args, name="grp-okta", state="absent"),
                         expect_fail=True)
    assert "used by grp-people" in used["msg"]


def _origin(sandbox, ip):
    """An origin that answers with the Access headers the edge sent it."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = json.dumps({"jwt": self.headers.get("Cf-Access-Jwt-Assertion"),
                               "email": self.headers.get("Cf-Access-Authenticated-User-Email")}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sandbox.map_address(ip, 80, "127.0.0.1", srv.server_address[1], "test origin")
    return srv


def _call(url, headers=None, body=None, method="GET"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}, **(
        {"Content-Type": "application/json"} if data else {})))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), err.headers


def _b64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _verify_with_jwks(jwks, token):
    """Check a token as an origin would, from the published certs alone."""
    head, payload, sig = token.split(".")
    header = json.loads(_b64(head))
    key = [k for k in jwks["keys"] if k["kid"] == header["kid"]][0]
    assert key["alg"] == header["alg"] == "RS256"
    pub = rsa.RSAPublicNumbers(int.from_bytes(_b64(key["e"]), "big"),
                               int.from_bytes(_b64(key["n"]), "big")).public_key()
    pub.verify(_b64(sig), ("%s.%s" % (head, payload)).encode(), padding.PKCS1v15(), hashes.SHA256())
    return json.loads(_b64(payload))


def test_edge_admits_people_by_idp_group_and_automation_by_token_and_ip(
        sandbox, cf_args, module_runner, monkeypatch, capsys):
    module_runner("cloudflare_zero_trust_list", dict(cf_args, name="sso-nat", items=[{"value": "203.0.113.0/24"}]))
    tok = module_runner("cloudflare_access_service_token", dict(cf_args, name="sso-automation"))
    okta = module_runner("cloudflare_access_identity_provider", okta_args(cf_args, "sso-edge-okta"))
    idp = okta["identity_provider"]
    module_runner("cloudflare_access_policy", dict(cf_args, name="sso-svc", decision="non_identity",
                                                   include=[{"service_token": "sso-automation"}]))
    module_runner("cloudflare_access_policy", dict(cf_args, name="sso-ips", decision="non_identity",
                                                   include=[{"ip_list": "sso-nat"}]))
    module_runner("cloudflare_access_policy", dict(cf_args, name="sso-people", decision="allow", include=[
        {"okta": {"identity_provider": "sso-edge-okta", "group": "prefect-operators"}}]))
    module_runner("cloudflare_dns_record", dict(cf_args, zone=ZONE, name="sso", type="A", content="203.0.113.60",
                                                proxied=True))
    app = module_runner("cloudflare_access_application", dict(
        cf_args, name="sso-app", domain="sso." + ZONE, session_duration="1h",
        policies=["sso-svc", "sso-ips", "sso-people"]))["app"]
    edge = sandbox.edge
    origin = _origin(sandbox, "203.0.113.60")
    try:
        url = edge.url_for("sso." + ZONE)
        outside = {"X-Sandbox-Client-IP": "192.0.2.1"}
        assert _call(url + "/", outside)[0] == 403, "deny by default"

        status, jwks, _h = _call(url + "/cdn-cgi/access/certs")
        assert status == 200 and jwks["keys"][0]["kty"] == "RSA" and "BEGIN CERTIFICATE" in jwks["public_cert"]["cert"]

        login = {"identity_provider": "sso-edge-okta", "email": "ada@example.com", "groups": ["prefect-operators"]}
        status, out, headers = _call(url + "/cdn-cgi/access/login", outside, login, "POST")
        assert status == 200, out
        token = out["token"]
        assert headers["Set-Cookie"].startswith("CF_Authorization=%s;" % token)
        claims = _verify_with_jwks(jwks, token)
        assert claims["aud"] == [app["aud"]] and claims["email"] == "ada@example.com"
        assert claims["groups"] == ["prefect-operators"] and claims["idp"] == {"id": idp["id"], "type": "okta"}
        assert 3590 <= claims["exp"] - claims["iat"] <= 3600, "the application's session_duration"

        status, seen, _h = _call(url + "/", dict(outside, Cookie="CF_Authorization=%s" % token))
        assert status == 200 and seen == {"jwt": token, "email": "ada@example.com"}, "the cookie admits"
        assert _call(url + "/", dict(outside, **{"Cf-Access-Jwt-Assertion": token}))[0] == 200, "so does the header"

        # The same login from a shell: python -m sandbox access-login <host> --idp --email --group.
        from sandbox.__main__ import main as cli

        monkeypatch.setenv("SKYFORGE_SANDBOX_DIR", sandbox.config.state_dir)
        argv = ["access-login", "sso." + ZONE, "--idp", "sso-edge-okta", "--email", "bob@example.com"]
        assert cli(argv + ["--group", "prefect-operators"]) == 0
        cli_token = capsys.readouterr().out.strip()
        assert _call(url + "/", dict(outside, Cookie="CF_Authorization=%s" % cli_token))[0] == 200
        assert cli(argv + ["--group", "finance"]) == 1 and "login refused (403)" in capsys.readouterr().err

        # Refused: a wrong group (at the login and with a token), expired, another application's, tampered, alg none.
        status, out, _h = _call(url + "/cdn-cgi/access/login", outside, dict(login, groups=["finance"]), "POST")
        assert status == 403 and "no Access policy" in out["reason"]
        unknown = _call(url + "/cdn-cgi/access/login", outside, dict(login, identity_provider="nope"), "POST")
        assert unknown[0] == 400 and "not configured" in unknown[1]["reason"]

        def refused(bad, why):
            status, out, _h = _call(url + "/", dict(outside, **{"Cf-Access-Jwt-Assertion": bad}))
            assert status == 403 and why in out["reason"], out
            assert _call(url + "/", dict(outside, Cookie="CF_Authorization=%s" % bad))[0] == 403

        ref = {"id": idp["id"], "type": "okta"}
        refused(edge.jwt.issue(app["aud"], "eve@example.com", ref, ["finance"]), "no Access policy")
        refused(edge.jwt.issue(app["aud"], "ada@example.com", ref, ["prefect-operators"], ttl=-5), "expired")
        refused(edge.jwt.issue("0" * 64, "ada@example.com", ref, ["prefect-operators"]), "audience")
        head, payload, sig = token.split(".")
        forged = dict(claims, groups=["prefect-operators"], email="mallory@example.com")
        forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
        refused("%s.%s.%s" % (head, forged_payload, sig), "bad signature")
        none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        refused("%s.%s." % (none_head, payload), "RS256 only")
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signed = other_key.sign(("%s.%s" % (head, payload)).encode(), padding.PKCS1v15(), hashes.SHA256())
        refused("%s.%s.%s" % (head, payload, base64.urlsafe_b64encode(signed).rstrip(b"=").decode()), "bad signature")

        # A client's own assertion header never reaches the origin unverified.
        status, seen, _h = _call(url + "/", {"X-Sandbox-Client-IP": "203.0.113.9", "Cf-Access-Jwt-Assertion": "x.y.z"})
        assert status == 200 and seen == {"jwt": None, "email": None}

        # Automation keeps its way in: the service token and the NAT IP list, no login.
        creds = {"CF-Access-Client-Id": tok["client_id"], "CF-Access-Client-Secret": tok["client_secret"]}
        assert _call(url + "/", dict(outside, **creds))[0] == 200
        assert _call(url + "/", {"X-Sandbox-Client-IP": "203.0.113.9"})[0] == 200

        # The policy is evaluated on every request: a group taken out of the policy locks the token out.
        module_runner("cloudflare_access_policy", dict(cf_args, name="sso-people", decision="allow", include=[
            {"okta": {"identity_provider": idp["id"], "group": "prefect-admins"}}]))
        assert _call(url + "/", dict(outside, **{"Cf-Access-Jwt-Assertion": token}))[0] == 403
    finally:
        origin.shutdown()
        origin.server_close()
        sandbox.unmap_address("203.0.113.60", 80)
    assert cf(sandbox).violations == []
