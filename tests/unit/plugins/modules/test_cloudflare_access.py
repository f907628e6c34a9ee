"""Zero Trust list, Access policies, service tokens and applications against the sandbox, and the edge they drive."""

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.unit.idempotence import converge

ZONE = "skyforge.example"


def table(sandbox, name):
    return sandbox.store.table("cloudflare." + name)


def by_name(sandbox, name, value):
    return [r for r in table(sandbox, name).values() if r.get("name") == value]


def writes(sandbox, since):
    return [e for e in sandbox.log.entries[since:] if e["family"] == "cloudflare" and e["method"] != "GET"]


def test_zero_trust_list_patches_items_in_place(sandbox, cf_args, module_runner):
    items = [{"value": "203.0.113.7/32", "description": "nat"}, {"value": "198.51.100.0/24", "description": "ops"}]
    args = dict(cf_args, name="t-allow", items=items)
    check, real, _again = converge(module_runner, "cloudflare_zero_trust_list", args, sandbox, writes)
    assert check["list"]["items"] == real["list"]["items"]
    list_id = real["list"]["id"]
    new = dict(args, items=[{"value": "203.0.113.7/32", "description": "nat"},
                            {"value": "192.0.2.10/32", "description": "new operator"}])
    mark = sandbox.log.mark()
    upd = module_runner("cloudflare_zero_trust_list", new)
    assert upd["changes"] == ["items"]
    assert [e["method"] for e in writes(sandbox, mark)] == ["PATCH", "PATCH"], "items change by PATCH, never recreate"
    assert table(sandbox, "gateway_lists")[list_id]["id"] == list_id
    assert sorted(i["value"] for i in table(sandbox, "gateway_lists")[list_id]["items"]) == \
        ["192.0.2.10/32", "203.0.113.7/32"]
    assert upd["diff"]["before"]["items"] != upd["diff"]["after"]["items"]
    assert module_runner("cloudflare_zero_trust_list", new)["changed"] is False
    bad = module_runner("cloudflare_zero_trust_list", dict(cf_args, name="x", items=[{"value": "10.0.0.1/8"}]),
                        expect_fail=True)
    assert "10.0.0.1/8 is not an IP address or CIDR" in bad["msg"]


def test_policy_token_application_and_edge(sandbox, cf_args, module_runner):
    start = sandbox.log.mark()
    module_runner("cloudflare_zero_trust_list", dict(cf_args, name="e-allow", items=[{"value": "203.0.113.0/24"}]))
    # Service token: the secret comes back once, at creation, then never again.
    tok_args = dict(cf_args, name="e-automation")
    tok_check = module_runner("cloudflare_access_service_token", tok_args, check=True)
    assert tok_check["changed"] and "client_secret" not in tok_check
    tok = module_runner("cloudflare_access_service_token", tok_args)
    assert tok["changed"] and tok["secret_issued"] and tok["client_secret"] and tok["client_id"].endswith(".access")
    assert tok["client_secret"] not in json.dumps(tok["diff"]) and tok["client_secret"] not in json.dumps(tok["service_token"])
    again = module_runner("cloudflare_access_service_token", tok_args)
    assert again["changed"] is False and "client_secret" not in again and again["client_id"] == tok["client_id"]
    rotated = module_runner("cloudflare_access_service_token", dict(tok_args, rotate=True))
    assert rotated["changed"] and rotated["client_secret"] != tok["client_secret"]
    secret = rotated["client_secret"]

    ip_pol = dict(cf_args, name="e-ips", decision="allow", include=[{"ip_list": "e-allow"}])
    converge(module_runner, "cloudflare_access_policy", ip_pol, sandbox, writes)
    svc_pol = dict(cf_args, name="e-svc", decision="non_identity", include=[{"service_token": "e-automation"}])
    converge(module_runner, "cloudflare_access_policy", svc_pol, sandbox, writes)
    pol = by_name(sandbox, "access_policies", "e-svc")[0]
    assert pol["include"] == [{"service_token": {"token_id": tok["service_token"]["id"]}}]
    upd = module_runner("cloudflare_access_policy", dict(ip_pol, session_duration="8h"))
    assert upd["changes"] == ["session_duration"]

    module_runner("cloudflare_dns_record", dict(cf_args, zone=ZONE, name="edge", type="A", content="203.0.113.50",
                                                proxied=True))
    app_args = dict(cf_args, name="e-app", domain="edge." + ZONE, policies=["e-svc", "e-ips"])
    check, real, _again = converge(module_runner, "cloudflare_access_application", app_args, sandbox, writes)
    assert [p["name"] for p in real["app"]["policies"]] == ["e-svc", "e-ips"]
    assert [p["precedence"] for p in real["app"]["policies"]] == [1, 2]
    reorder = module_runner("cloudflare_access_application", dict(app_args, policies=["e-ips", "e-svc"]))
    assert reorder["changed"] and "policies[0].id" in reorder["changes"]
    mark = sandbox.log.mark()
    module_runner("cloudflare_access_application", dict(app_args, session_duration="12h"))
    assert [e["method"] for e in writes(sandbox, mark)] == ["PUT"], "applications update with PUT"

    # The edge enforces it: an origin on the record's IP, then requests with and without credentials.
    origin = _origin(sandbox, "203.0.113.50")
    try:
        url = json.load(urllib.request.urlopen(sandbox.url("cloudflare") + "/_sandbox/edge"))["edge." + ZONE]
        assert _get(url, {"X-Sandbox-Client-IP": "192.0.2.1"})[0] == 403, "deny by default"
        assert _get(url, {"X-Sandbox-Client-IP": "203.0.113.9"}) == (200, b"origin says hi"), "IP list admits"
        headers = {"X-Sandbox-Client-IP": "192.0.2.1", "CF-Access-Client-Id": tok["client_id"],
                   "CF-Access-Client-Secret": secret}
        assert _get(url, headers)[0] == 200, "service token admits"
        assert _get(url, dict(headers, **{"CF-Access-Client-Secret": tok["client_secret"]}))[0] == 403, \
            "the secret from before the rotation no longer works"
    finally:
        origin.shutdown()
        origin.server_close()
        sandbox.unmap_address("203.0.113.50", 80)

    # Every request the modules made passed the sandbox's validation against the API description.
    refused = [e for e in sandbox.log.entries[start:] if e["family"] == "cloudflare" and e["status"] == 400]
    assert refused == [] and sandbox.apps["cloudflare"].violations == []

    # Deleting a policy still in use fails with the reason; after the app is gone it works.
    in_use = module_runner("cloudflare_access_policy", dict(ip_pol, state="absent"), expect_fail=True)
    assert "used by applications e-app" in in_use["msg"]
    assert module_runner("cloudflare_access_application", dict(app_args, state="absent"))["changed"]
    assert module_runner("cloudflare_access_policy", dict(ip_pol, state="absent"))["changed"]
    assert not by_name(sandbox, "access_policies", "e-ips")


def test_check_mode_predicts_with_missing_dependencies(sandbox, cf_args, module_runner):
    out = module_runner("cloudflare_access_policy", dict(cf_args, name="later", include=[{"ip_list": "not-yet"}]),
                        check=True)
    assert out["changed"] and out["unresolved"] == ["IP list not-yet"]
    real = module_runner("cloudflare_access_policy", dict(cf_args, name="later", include=[{"ip_list": "not-yet"}]),
                         expect_fail=True)
    assert "IP list not-yet was not found" in real["msg"] and "create it first" in real["msg"]
    bad = module_runner("cloudflare_access_policy", dict(cf_args, name="bad", include=[{"ip": "1.2.3.4", "email": "a@b"}]),
                        expect_fail=True)
    assert "exactly one of" in bad["msg"]


def test_ip_ranges_info(sandbox, cf_args, module_runner):
    out = module_runner("cloudflare_ip_ranges_info", {"base_url": cf_args["base_url"]})
    assert out["changed"] is False and "173.245.48.0/20" in out["ipv4_cidrs"] and "2400:cb00::/32" in out["ipv6_cidrs"]


def _origin(sandbox, ip):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = b"origin says hi"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sandbox.map_address(ip, 80, "127.0.0.1", srv.server_address[1], "test origin")
    return srv


def _get(url, headers):
    req = urllib.request.Request(url + "/", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def reads(sandbox, since):
    """The Cloudflare GETs since `since`, by path without the query and the account prefix."""
    out = []
    for e in sandbox.log.entries[since:]:
        if e["family"] == "cloudflare" and e["method"] == "GET":
            path = e["path"].split("?")[0]
            out.append(path.split("/", 4)[-1] if path.startswith("/client/v4/accounts/") or "/accounts/" in path
                       else path)
    return out


def test_reruns_read_only_their_own_resource(sandbox, cf_args, module_runner):
    lst = module_runner("cloudflare_zero_trust_list", dict(cf_args, name="r-allow", items=[{"value": "203.0.113.0/24"}]))
    tok = module_runner("cloudflare_access_service_token", dict(cf_args, name="r-automation"))
    ip_pol = dict(cf_args, name="r-ips", decision="non_identity", include=[{"ip_list": lst["list"]["id"]}])
    svc_pol = dict(cf_args, name="r-svc", decision="non_identity",
                   include=[{"service_token": tok["service_token"]["id"]}])
    assert module_runner("cloudflare_access_policy", ip_pol)["changed"]
    assert module_runner("cloudflare_access_policy", svc_pol)["changed"]
    app_args = dict(cf_args, name="r-app", domain="r." + ZONE, policies=["r-svc", "r-ips"])
    mark = sandbox.log.mark()
    assert module_runner("cloudflare_access_application", app_args)["changed"]
    assert sum(1 for p in reads(sandbox, mark) if p.endswith("access/policies")) == 1, \
        "policies the app does not link yet are listed once for all of them"

    # Re-runs: an id the policy already holds and a policy the app already links need no look-up.
    mark = sandbox.log.mark()
    assert module_runner("cloudflare_access_policy", ip_pol)["changed"] is False
    assert module_runner("cloudflare_access_policy", svc_pol)["changed"] is False
    assert module_runner("cloudflare_access_application", app_args)["changed"] is False
    got = reads(sandbox, mark)
    assert [p.rsplit("/", 2)[-2:] for p in got] == [["access", "policies"], ["access", "policies"], ["access", "apps"]], got

    # A name is still looked up, and an id the policy does not hold yet is checked before it is used.
    mark = sandbox.log.mark()
    by_name_args = dict(ip_pol, include=[{"ip_list": "r-allow"}])
    assert module_runner("cloudflare_access_policy", by_name_args)["changed"] is False
    assert any(p.endswith("gateway/lists") for p in reads(sandbox, mark))
    unknown = module_runner("cloudflare_access_policy", dict(ip_pol, include=[{"ip_list": "0000-not-a-list"}]),
                            expect_fail=True)
    assert "IP list 0000-not-a-list was not found" in unknown["msg"]
    # A policy swapped in for a linked one is found by listing, and the change is made.
    swapped = module_runner("cloudflare_access_application", dict(app_args, policies=["r-ips", "r-svc"]))
    assert swapped["changed"] and [p["name"] for p in swapped["app"]["policies"]] == ["r-ips", "r-svc"]
    missing = module_runner("cloudflare_access_application", dict(app_args, policies=["r-ips", "nope"]),
                            expect_fail=True)
    assert "policy nope was not found" in missing["msg"]


def test_list_item_adds_and_removes_one_entry_and_leaves_the_rest(sandbox, cf_args, module_runner):
    owned = [{"value": "203.0.113.7/32", "description": "nat"}]
    lst = module_runner("cloudflare_zero_trust_list", dict(cf_args, name="i-allow", items=owned))["list"]
    args = dict(cf_args, list="i-allow", value="198.51.100.23", description="ECS worker w egress")
    check, real, _again = converge(module_runner, "cloudflare_zero_trust_list_item", args, sandbox, writes)
    assert check["item"] == real["item"] == {"value": "198.51.100.23", "description": "ECS worker w egress"}
    assert not real["diff"]["before"] and real["diff"]["after"] == real["item"]
    stored = table(sandbox, "gateway_lists")[lst["id"]]["items"]
    assert sorted(i["value"] for i in stored) == ["198.51.100.23", "203.0.113.7/32"], "the owner's entry stays"
    # A new description: out and in again, like the list module; the address's /32 form is the same entry.
    mark = sandbox.log.mark()
    moved = module_runner("cloudflare_zero_trust_list_item", dict(args, description="renamed"))
    assert moved["changed"] and [e["method"] for e in writes(sandbox, mark)] == ["PATCH", "PATCH"]
    assert module_runner("cloudflare_zero_trust_list_item", dict(args, value="198.51.100.23/32",
                                                                 description="renamed"))["changed"] is False
    # Absent, twice; and absent from a list that is gone is nothing to do.
    gone = dict(args, state="absent")
    assert module_runner("cloudflare_zero_trust_list_item", gone, check=True)["changed"] is True
    assert module_runner("cloudflare_zero_trust_list_item", gone)["changed"] is True
    mark = sandbox.log.mark()
    assert module_runner("cloudflare_zero_trust_list_item", gone)["changed"] is False
    assert not writes(sandbox, mark)
    assert [i["value"] for i in table(sandbox, "gateway_lists")[lst["id"]]["items"]] == ["203.0.113.7/32"]
    assert module_runner("cloudflare_zero_trust_list_item", dict(gone, list="no-such"))["changed"] is False


def test_list_item_refusals_name_the_fix(sandbox, cf_args, module_runner):
    mark = sandbox.log.mark()
    bad = module_runner("cloudflare_zero_trust_list_item", dict(cf_args, list="i-allow", value="10.0.0.1/8"),
                        expect_fail=True)
    assert "value: 10.0.0.1/8 is not a valid IP range" in bad["msg"] and "no host bits" in bad["msg"]
    assert len(sandbox.log.entries) == mark, "refused before any API call"
    missing = module_runner("cloudflare_zero_trust_list_item", dict(cf_args, list="no-such", value="192.0.2.1"),
                            expect_fail=True)
    assert "Zero Trust list no-such does not exist" in missing["msg"] and "Fix:" in missing["msg"]
    assert not writes(sandbox, mark)
