"""The Cloudflare sandbox against the official SDK and the API description: real shapes, strict refusals."""

import json
import urllib.error
import urllib.request

import pytest

from unit.conftest import specs_path

cloudflare = pytest.importorskip("cloudflare")


@pytest.fixture(scope="module")
def cf(sandbox):
    specs_path("cloudflare", "openapi.subset.dns-access-gateway-lists.json")
    ep = sandbox.endpoints()
    client = cloudflare.Cloudflare(api_token=ep["cloudflare_api_token"], base_url=ep["cloudflare_base_url"],
                                   max_retries=0)
    return client, ep


def raw(ep, method, path, body=None, token=None, raw_body=None):
    data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(ep["cloudflare_base_url"] + path, data=data, method=method, headers={
        "Authorization": "Bearer %s" % (token or ep["cloudflare_api_token"]), "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def assert_failure(status_body, status, code=None, text=None):
    got_status, body = status_body
    assert got_status == status, body
    assert body["success"] is False and body["result"] is None and body["messages"] == []
    assert isinstance(body["errors"][0]["code"], int) and body["errors"][0]["code"] >= 1000
    if code is not None:
        assert body["errors"][0]["code"] == code, body
    if text is not None:
        assert text in body["errors"][0]["message"], body


def test_zone_and_dns_record_lifecycle(sandbox, cf):
    client, ep = cf
    zones = client.zones.list(name=ep["cloudflare_zone"])
    assert [z.name for z in zones.result] == [ep["cloudflare_zone"]] and zones.result_info.page == 1
    zone_id = zones.result[0].id
    assert len(zone_id) == 32
    rec = client.dns.records.create(zone_id=zone_id, name="contract", type="A", content="192.0.2.1", ttl=300)
    assert rec.name == "contract." + ep["cloudflare_zone"] and rec.proxiable is True and rec.ttl == 300
    got = client.dns.records.get(rec.id, zone_id=zone_id)
    assert got.content == "192.0.2.1" and got.created_on is not None
    upd = client.dns.records.update(rec.id, zone_id=zone_id, name="contract", type="A", content="192.0.2.2", ttl=1,
                                    proxied=True)
    assert upd.proxied is True and upd.ttl == 1
    edited = client.dns.records.edit(rec.id, zone_id=zone_id, type="A", name="contract", ttl=1, comment="patched")
    assert edited.comment == "patched" and edited.content == "192.0.2.2", "PATCH keeps what it does not send"
    listed = client.dns.records.list(zone_id=zone_id, type="A", extra_query={"name": "contract." + ep["cloudflare_zone"]})
    assert [r.id for r in listed.result] == [rec.id]
    deleted = client.dns.records.delete(rec.id, zone_id=zone_id)
    assert deleted.id == rec.id
    with pytest.raises(cloudflare.NotFoundError) as err:
        client.dns.records.get(rec.id, zone_id=zone_id)
    assert err.value.body["errors"][0]["code"] == 81044


def test_pagination_walks_every_page(sandbox, cf):
    client, ep = cf
    zone_id = client.zones.list(name=ep["cloudflare_zone"]).result[0].id
    for i in range(7):
        client.dns.records.create(zone_id=zone_id, name="page", type="TXT", content="v%d" % i, ttl=1)
    first = client.dns.records.list(zone_id=zone_id, type="TXT", per_page=3, extra_query={"name": "page." + ep["cloudflare_zone"]})
    assert len(first.result) == 3 and first.result_info.per_page == 3
    every = [r.content for r in client.dns.records.list(zone_id=zone_id, type="TXT", per_page=3,
                                                        extra_query={"name": "page." + ep["cloudflare_zone"]})]
    assert sorted(every) == ["v%d" % i for i in range(7)]


def test_access_and_gateway_objects(sandbox, cf):
    client, ep = cf
    acc = ep["cloudflare_account_id"]
    lst = client.zero_trust.gateway.lists.create(account_id=acc, name="c-list", type="IP",
                                                 items=[{"value": "192.0.2.0/24", "description": "docs"}])
    assert lst.items[0].value == "192.0.2.0/24"
    client.zero_trust.gateway.lists.edit(lst.id, account_id=acc, append=[{"value": "198.51.100.1/32"}],
                                         remove=["192.0.2.0/24"])
    assert client.zero_trust.gateway.lists.get(lst.id, account_id=acc).count == 1
    tok = client.zero_trust.access.service_tokens.create(account_id=acc, name="c-token")
    assert tok.client_secret and tok.client_id.endswith(".access")
    assert "client_secret" not in client.zero_trust.access.service_tokens.get(tok.id, account_id=acc).to_dict()
    rotated = client.zero_trust.access.service_tokens.rotate(tok.id, account_id=acc)
    assert rotated.client_secret and rotated.client_secret != tok.client_secret
    pol = client.zero_trust.access.policies.create(account_id=acc, name="c-pol", decision="non_identity",
                                                   include=[{"ip_list": {"id": lst.id}}, {"service_token": {"token_id": tok.id}}])
    assert pol.reusable is True and pol.decision == "non_identity"
    app = client.zero_trust.access.applications.create(account_id=acc, type="self_hosted", name="c-app",
                                                       domain="c.%s/api" % ep["cloudflare_zone"],
                                                       policies=[{"id": pol.id, "precedence": 1}])
    assert app.aud and app.policies[0].id == pol.id
    put = client.zero_trust.access.applications.update(app.id, account_id=acc, type="self_hosted", name="c-app",
                                                       domain="c.%s/api" % ep["cloudflare_zone"],
                                                       session_duration="1h")
    assert put.session_duration == "1h" and put.policies == [], "PUT replaces: policies not sent are gone"
    # The description has no PATCH for applications: the API answers 405.
    assert_failure(raw(ep, "PATCH", "/accounts/%s/access/apps/%s" % (acc, app.id), {"name": "x"}), 405)
    client.zero_trust.access.applications.delete(app.id, account_id=acc)
    client.zero_trust.access.policies.delete(pol.id, account_id=acc)
    client.zero_trust.access.service_tokens.delete(tok.id, account_id=acc)
    client.zero_trust.gateway.lists.delete(lst.id, account_id=acc)
    ips = client.ips.list()
    assert "173.245.48.0/20" in ips.ipv4_cidrs and ips.etag


def test_bad_requests_are_refused(sandbox, cf):
    client, ep = cf
    zone_id = client.zones.list(name=ep["cloudflare_zone"]).result[0].id
    acc = ep["cloudflare_account_id"]
    z = "/zones/%s/dns_records" % zone_id
    assert_failure(raw(ep, "POST", z, {"type": "A", "name": "x", "content": "192.0.2.1", "bogus": 1}), 400,
                   text="unknown field bogus")
    assert_failure(raw(ep, "POST", z, {"type": "A", "content": "192.0.2.1"}), 400, text="'name' is a required property")
    assert_failure(raw(ep, "POST", z, {"type": "A", "name": "x", "content": "192.0.2.1", "ttl": "auto"}), 400,
                   text="ttl")
    assert_failure(raw(ep, "POST", z, {"type": "A", "name": "x", "content": "not-an-ip"}), 400, text="ipv4")
    assert_failure(raw(ep, "POST", z, raw_body=b"{not json"), 400)
    assert_failure(raw(ep, "POST", "/accounts/%s/access/policies" % acc,
                       {"name": "p", "decision": "maybe", "include": [{"everyone": {}}]}), 400, text="decision")
    assert_failure(raw(ep, "POST", "/accounts/%s/access/policies" % acc,
                       {"name": "p", "decision": "allow", "include": [{"ip": {"ip": "1.2.3.4/32"}, "nope": {}}]}), 400)
    assert_failure(raw(ep, "POST", "/accounts/%s/gateway/lists" % acc, {"name": "l", "type": "IP", "items": [{"valu": "1"}]}),
                   400, text="unknown field items[0].valu")
    assert_failure(raw(ep, "POST", "/accounts/%s/access/service_tokens/%s/rotate" % (acc, "0" * 36), {"x": 1}), 400)
    # And through the SDK: the same refusal surfaces as BadRequestError with Cloudflare's envelope.
    with pytest.raises(cloudflare.BadRequestError) as err:
        client.dns.records.create(zone_id=zone_id, name="x", type="A", content="192.0.2.1", ttl=1,
                                  extra_body={"surprise": True})
    assert err.value.body["success"] is False and "surprise" in err.value.body["errors"][0]["message"]


def test_auth_errors_have_cloudflares_shape(sandbox, cf):
    _client, ep = cf
    assert_failure(raw(ep, "GET", "/zones", token="short"), 400, code=6003)
    assert_failure(raw(ep, "GET", "/zones", token="A" * 40), 401, code=1000, text="Invalid API Token")
    req = urllib.request.Request(sandbox.url("cloudflare") + "/_sandbox/cloudflare/tokens", method="POST",
                                 data=json.dumps({"permissions": ["DNS Read"]}).encode())
    ro = json.load(urllib.request.urlopen(req))["token"]
    assert raw(ep, "GET", "/zones", token=ro)[0] == 200, "DNS Read can list zones"
    assert_failure(raw(ep, "GET", "/accounts/%s/access/apps" % ep["cloudflare_account_id"], token=ro), 403, code=10000)
    assert_failure(raw(ep, "GET", "/accounts/%s/access/apps" % ("f" * 32)), 403, code=10000)
    assert_failure(raw(ep, "GET", "/nothing/here"), 404, code=7000)
    status, body = raw(ep, "GET", "/ips", token="A" * 40)
    assert status == 200, "/ips is public"


def test_injected_rate_limit_has_retry_after(sandbox, cf):
    _client, ep = cf
    req = urllib.request.Request(ep["cloudflare_base_url"] + "/ips", headers={"X-Sandbox-Fault": "429"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 429 and err.value.headers["Retry-After"] == "1"
    assert json.load(err.value)["errors"][0]["code"] == 1015


def test_every_response_so_far_matched_the_description(sandbox, cf):
    client, ep = cf
    zone_id = client.zones.list(name=ep["cloudflare_zone"]).result[0].id
    real = raw(ep, "POST", "/zones/%s/dns_records" % zone_id, {"type": "A", "name": "shape", "content": "192.0.2.9"})
    assert real[0] == 200
    app = sandbox.apps["cloudflare"]
    assert app.violations == []
    # The check is live: a response that breaks the description is refused, not served.
    from sandbox.cloudflare import spec as specmod

    op, _params = app.spec.match("GET", "/zones/%s/dns_records/%s" % ("a" * 32, "b" * 32))
    bad = {"success": True, "errors": [], "messages": [], "result": {"id": 5, "name": "x", "type": "A"}}
    with pytest.raises(specmod.SpecError):
        app.spec.check(op.doc, op.success[200], bad, "response")
    app.spec.check(op.doc, op.success[200], real[1], "response")
    extra = dict(real[1], result=dict(real[1]["result"], invented=1))
    with pytest.raises(specmod.SpecError, match="invented"):
        app.spec.check(op.doc, op.success[200], extra, "response")
