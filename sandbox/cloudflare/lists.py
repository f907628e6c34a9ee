"""Cloudflare Gateway (Zero Trust) lists: IP lists the Access policies refer to."""

from __future__ import annotations

import ipaddress
import uuid

from .common import PERM_ZT, VALIDATION_CODE, Page, cf_error, now

GATEWAY_NOT_FOUND = 2016
GATEWAY_BAD_ITEM = 2044


class GatewayLists:
    def __init__(self, app):
        self.app = app

    def list_lists(self, req, params):
        self.app.check_account(params)
        items = sorted(self.app.lists.values(), key=lambda l: l["created_at"])
        if req.query.get("type"):
            items = [l for l in items if l["type"] == req.query["type"]]
        return Page([_list_view(l) for l in items])

    def _list(self, params):
        self.app.check_account(params)
        lst = self.app.lists.get(params["list_id"])
        if lst is None:
            raise cf_error(404, GATEWAY_NOT_FOUND, "list not found")
        return lst

    def get_list(self, req, params):
        return _list_view(self._list(params))

    def create_list(self, req, params):
        self.app.check_account(params)
        body = req.json
        if any(l["name"] == body["name"] for l in self.app.lists.values()):
            raise cf_error(400, VALIDATION_CODE["gateway"], "a list named %s already exists" % body["name"])
        t = now()
        lst = {"id": str(uuid.uuid4()), "name": body["name"], "type": body["type"],
               "description": body.get("description", ""), "created_at": t, "updated_at": t, "items": []}
        self._append_items(lst, body.get("items", []))
        self.app.lists[lst["id"]] = lst
        out = _list_view(lst)
        out.pop("count")
        out["items"] = [dict(i) for i in lst["items"]]
        return out

    def put_list(self, req, params):
        lst = self._list(params)
        lst["name"] = req.json["name"]
        lst["description"] = req.json.get("description", "")
        lst["updated_at"] = now()
        return _list_view(lst)

    def patch_list(self, req, params):
        lst = self._list(params)
        body = req.json
        remove = set(body.get("remove", []))
        missing = remove - {i["value"] for i in lst["items"]}
        if missing:
            raise cf_error(400, GATEWAY_BAD_ITEM, "cannot remove %s: not in the list" % ", ".join(sorted(missing)))
        lst["items"] = [i for i in lst["items"] if i["value"] not in remove]
        self._append_items(lst, body.get("append", []))
        lst["updated_at"] = now()
        return _list_view(lst)

    def delete_list(self, req, params):
        lst = self._list(params)
        users = [p["name"] for p in self.app.policies.values()
                 if any(r.get("ip_list", {}).get("id") == lst["id"] for f in ("include", "exclude", "require")
                        for r in p[f])]
        if users:
            raise cf_error(400, VALIDATION_CODE["gateway"], "list is used by Access policies %s" % ", ".join(users))
        del self.app.lists[lst["id"]]
        return {}

    def list_items(self, req, params):
        lst = self._list(params)
        # The description nests the items in one more array: result is [[item, ...]].
        page = self.app.paging(req, 100, [dict(i) for i in lst["items"]])
        return Page([page.items] if page.items else [], page.page, page.per_page, page.total)

    def _append_items(self, lst, items):
        have = {i["value"] for i in lst["items"]}
        t = now()
        for item in items:
            value = item["value"]
            if lst["type"] == "IP":
                try:
                    ipaddress.ip_network(value, strict=True)
                except ValueError:
                    raise cf_error(400, GATEWAY_BAD_ITEM, "invalid IP item %r: use an address or a CIDR with no host "
                                   "bits set" % value)
            if value in have:
                raise cf_error(400, GATEWAY_BAD_ITEM, "duplicate item %s" % value)
            have.add(value)
            entry = {"value": value, "created_at": t}
            if "description" in item:
                entry["description"] = item["description"]
            lst["items"].append(entry)


def register(app):
    lists = GatewayLists(app)
    a = "/accounts/{account_id}/gateway/lists"
    read, write = (PERM_ZT + " Read",), (PERM_ZT + " Write",)
    app.handle("GET", a, lists.list_lists, "gateway", read)
    app.handle("POST", a, lists.create_list, "gateway", write)
    app.handle("GET", a + "/{list_id}", lists.get_list, "gateway", read)
    app.handle("PUT", a + "/{list_id}", lists.put_list, "gateway", write)
    app.handle("PATCH", a + "/{list_id}", lists.patch_list, "gateway", write)
    app.handle("DELETE", a + "/{list_id}", lists.delete_list, "gateway", write)
    app.handle("GET", a + "/{list_id}/items", lists.list_items, "gateway", read)


def _list_view(lst):
    out = dict((k, v) for k, v in lst.items() if k != "items")
    out["count"] = len(lst["items"])
    return out
