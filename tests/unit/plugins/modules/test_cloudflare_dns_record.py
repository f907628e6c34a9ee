"""cloudflare_dns_record against the sandbox: check mode predicts, real run matches, second run is a no-op."""

ZONE = "skyforge.example"


def records(sandbox, name):
    return [r for r in sandbox.store.table("cloudflare.dns_records").values() if r["name"] == name]


def writes(sandbox, since):
    return [e for e in sandbox.log.entries[since:] if e["family"] == "cloudflare" and e["method"] != "GET"]


def test_create_update_delete(sandbox, cf_args, module_runner):
    args = dict(cf_args, zone=ZONE, name="dns-a", type="A", content="203.0.113.10", proxied=True, comment="first")
    mark = sandbox.log.mark()
    check = module_runner("cloudflare_dns_record", args, check=True)
    assert check["changed"] and check["record"]["name"] == "dns-a." + ZONE
    assert not writes(sandbox, mark) and not records(sandbox, "dns-a." + ZONE), "check mode wrote nothing"
    real = module_runner("cloudflare_dns_record", args)
    assert real["changed"] and real["record"]["id"] and real["record"]["proxied"] is True
    assert real["diff"]["before"] == {} and real["diff"]["after"]["content"] == "203.0.113.10"
    again = module_runner("cloudflare_dns_record", args)
    assert again["changed"] is False, again.get("changes")

    upd_args = dict(args, content="203.0.113.11")
    mark = sandbox.log.mark()
    upd_check = module_runner("cloudflare_dns_record", upd_args, check=True)
    assert upd_check["changed"] and upd_check["changes"] == ["content"] and not writes(sandbox, mark)
    assert upd_check["diff"]["before"]["content"] == "203.0.113.10"
    assert upd_check["diff"]["after"]["content"] == "203.0.113.11"
    upd = module_runner("cloudflare_dns_record", upd_args)
    assert upd["changes"] == ["content"] and records(sandbox, "dns-a." + ZONE)[0]["content"] == "203.0.113.11"
    assert [e["method"] for e in writes(sandbox, mark)] == ["PUT"], "updates use PUT"
    # A comment the user stops managing is kept, not wiped by the PUT.
    no_comment = dict(upd_args, content="203.0.113.12")
    del no_comment["comment"]
    module_runner("cloudflare_dns_record", no_comment)
    assert records(sandbox, "dns-a." + ZONE)[0]["comment"] == "first"

    gone = module_runner("cloudflare_dns_record", dict(cf_args, zone=ZONE, name="dns-a", type="A", state="absent"))
    assert gone["changed"] and not records(sandbox, "dns-a." + ZONE)
    assert module_runner("cloudflare_dns_record", dict(cf_args, zone=ZONE, name="dns-a", type="A",
                                                       state="absent"))["changed"] is False


def test_multiple_and_one_per_name(sandbox, cf_args, module_runner):
    base = dict(cf_args, zone=ZONE, name="txt-multi." + ZONE, type="TXT", multiple=True)
    module_runner("cloudflare_dns_record", dict(base, content="v=one"))
    module_runner("cloudflare_dns_record", dict(base, content="v=two"))
    assert sorted(r["content"] for r in records(sandbox, "txt-multi." + ZONE)) == ["v=one", "v=two"]
    assert module_runner("cloudflare_dns_record", dict(base, content="v=two"))["changed"] is False
    single = dict(base, content="v=three", multiple=False)
    out = module_runner("cloudflare_dns_record", single, expect_fail=True)
    assert "2 TXT records named txt-multi.%s exist" % ZONE in out["msg"] and "multiple=true" in out["msg"]


def test_host_records_come_from_the_one_read(sandbox, cf_args, module_runner):
    name = "dns-host." + ZONE
    aaaa = module_runner("cloudflare_dns_record", dict(cf_args, zone=ZONE, name=name, type="AAAA",
                                                       content="2001:db8::5", proxied=False))
    args = dict(cf_args, zone=ZONE, name=name, type="A", content="203.0.113.20", proxied=True)
    created = module_runner("cloudflare_dns_record", args)
    assert sorted((r["type"], r["proxied"]) for r in created["host_records"]) == [("A", True), ("AAAA", False)]
    mark = sandbox.log.mark()
    again = module_runner("cloudflare_dns_record", args)
    assert again["changed"] is False
    dns_reads = [e for e in sandbox.log.entries[mark:] if e["family"] == "cloudflare" and "/dns_records" in e["path"]]
    assert len(dns_reads) == 1, "one list of the name's records serves the record and host_records"
    assert sorted(r["id"] for r in again["host_records"]) == sorted([aaaa["record"]["id"], created["record"]["id"]])
    gone = module_runner("cloudflare_dns_record", dict(args, state="absent"))
    assert [r["type"] for r in gone["host_records"]] == ["AAAA"]


def test_bad_input_fails_before_any_call(sandbox, cf_args, module_runner):
    mark = sandbox.log.mark()
    cases = [
        (dict(type="A", content="not-an-ip"), "is not an IPv4 address"),
        (dict(type="AAAA", content="10.0.0.1"), "is not an IPv6 address"),
        (dict(type="TXT", content="x", proxied=True), "only A, AAAA and CNAME can be proxied"),
        (dict(type="A", content="10.0.0.1", ttl=5), "ttl=5 is out of range"),
        (dict(type="A"), "content is required"),
    ]
    for extra, message in cases:
        out = module_runner("cloudflare_dns_record", dict(cf_args, zone=ZONE, name="bad", **extra), expect_fail=True)
        assert message in out["msg"], out["msg"]
    # A dotted name outside the zone is refused, not made into prefect.example.org.skyforge.example.
    out = module_runner("cloudflare_dns_record", dict(cf_args, zone=ZONE, name="prefect.example.org", type="A",
                                                      content="192.0.2.1"), expect_fail=True)
    assert "name=prefect.example.org is not in the zone skyforge.example" in out["msg"], out["msg"]
    assert "prefect.skyforge.example" in out["msg"], out["msg"]
    assert not records(sandbox, "prefect.example.org.skyforge.example")
    assert len(sandbox.log.entries) == mark, "bad input must fail before any API call"


def test_unknown_zone_and_missing_permission(sandbox, cf_args, module_runner):
    out = module_runner("cloudflare_dns_record", dict(cf_args, zone="nope.example", name="x", type="A",
                                                      content="10.0.0.1"), expect_fail=True)
    assert "zone nope.example was not found" in out["msg"]
    import json
    import urllib.request

    req = urllib.request.Request(sandbox.url("cloudflare") + "/_sandbox/cloudflare/tokens", method="POST",
                                 data=json.dumps({"permissions": ["Zone Read", "DNS Read"]}).encode(),
                                 headers={"Content-Type": "application/json"})
    token = json.load(urllib.request.urlopen(req))["token"]
    out = module_runner("cloudflare_dns_record", dict(cf_args, api_token=token, zone=ZONE, name="ro", type="A",
                                                      content="10.0.0.1"), expect_fail=True)
    assert "HTTP 403" in out["msg"] and "Zone > DNS > Edit" in out["msg"], out["msg"]
    assert token not in out["_stdout"], "the token never appears in the output"
    bad = module_runner("cloudflare_dns_record", dict(cf_args, api_token="x" * 40, zone=ZONE, name="ro", type="A",
                                                      content="10.0.0.1"), expect_fail=True)
    assert "HTTP 401" in bad["msg"] and "api_token" in bad["msg"]


def test_retries_rate_limits(sandbox, cf_args, module_runner):
    sandbox.faults.rate = 0.3
    sandbox.faults.kinds = ("429", "503", "drop")
    try:
        args = dict(cf_args, zone=ZONE, name="flaky", type="A", content="198.51.100.20")
        assert module_runner("cloudflare_dns_record", args)["changed"] is True
        assert module_runner("cloudflare_dns_record", args)["changed"] is False
    finally:
        sandbox.faults.rate = 0.0
        sandbox.faults.kinds = sandbox.faults.KINDS
    assert len(records(sandbox, "flaky." + ZONE)) == 1
