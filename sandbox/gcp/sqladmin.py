"""sqladmin v1: instances, databases and users, backed by the sandbox's real PostgreSQL.

MySQL instances (MYSQL_8_0, MYSQL_8_4) are control-plane objects only: the machine has no MySQL server, so their
databases and users are records with MySQL's defaults (utf8mb4; users keyed by name and host) and their private IP
maps to nothing.

An instance gets a private IP from its network's Private Service Access range; that address is mapped to the
loopback PostgreSQL, never dialled. Databases and users are created for real; passwords are never stored here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import threading
import uuid

from ..web import ApiError
from .app import now_rfc3339
from .compute_common import unlink
from .kms import cmek_problem
from .servicenetworking import psa_ranges

NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,96}[a-z0-9])?$")
TIER_RE = re.compile(r"^(db-f1-micro|db-g1-small|db-custom-\d+-\d+|db-perf-optimized-N-\d+)$")
VERSIONS = ("POSTGRES_13", "POSTGRES_14", "POSTGRES_15", "POSTGRES_16", "POSTGRES_17", "MYSQL_8_0", "MYSQL_8_4")
ROOT = "https://sqladmin.googleapis.com/v1/"


def bad(message, reason="invalid"):
    return ApiError(400, message, reason=reason)


def is_mysql(row):
    return row["databaseVersion"].startswith("MYSQL_")


def user_key(key, row, name, host):
    # A MySQL user is a name at a host: 'app'@'%' and 'app'@'10.0.0.1' are two users.
    if is_mysql(row):
        return "%s/users/%s@%s" % (key, name, host or "")
    return "%s/users/%s" % (key, name)


class SqlAdmin:
    def __init__(self, app):
        self.app = app
        self.sandbox = app.sandbox
        self.instances = app.sandbox.store.table("sqladmin.instances")
        self.databases = app.sandbox.store.table("sqladmin.databases")
        self.users = app.sandbox.store.table("sqladmin.users")
        self.ops = {}
        self.busy = {}
        self.servers = {}
        self.lock = threading.RLock()

    # Each instance is its own PostgreSQL server, as each Cloud SQL instance is: names never clash across instances.
    def start_server(self, key):
        from ..postgres import Postgres

        if not self.sandbox.with_postgres:
            raise ApiError(503, "the sandbox runs without PostgreSQL: Cloud SQL is unavailable", reason="backendError")
        state = os.path.join(self.sandbox.config.state_dir, "cloudsql", key.replace("/", "_"))
        server = Postgres(state, self.sandbox.free_port(), pid_dir=self.sandbox.config.state_dir)
        ready = threading.Event()
        errors = []

        def run():
            try:
                server.start()
            except Exception as exc:  # noqa: BLE001 - reported through the operation
                errors.append(exc)
            ready.set()

        threading.Thread(target=run, name="pg-%s" % key, daemon=True).start()
        self.servers[key] = (server, ready, errors)

    def pg_of(self, key):
        server, ready, errors = self.servers[key]
        ready.wait(120)
        if errors:
            raise errors[0]
        return server

    def stop_all(self):
        for server, ready, _errors in list(self.servers.values()):
            ready.wait(60)
            server.destroy()
        self.servers.clear()

    # ---- operations ---------------------------------------------------------------------
    def operation(self, project, instance, op_type, duration_key, on_done):
        with self.lock:
            running = self.busy.get(instance)
            if running is not None and not running.poll():
                raise ApiError(409, "Operation failed because another operation was already in progress. Try your "
                                    "request after the current operation is complete.", reason="operationInProgress")

            def done():
                try:
                    return on_done()
                finally:
                    with self.lock:
                        self.busy.pop(instance, None)

            op = self.sandbox.ops.start(duration_key, done, resource="sqladmin/%s" % instance, can_fail=False)
            self.busy[instance] = op
            name = str(uuid.uuid4())
            self.ops[name] = (op, project, instance, op_type, now_rfc3339())
        return self.render_op(name)

    def render_op(self, name):
        op, project, instance, op_type, inserted = self.ops[name]
        op.poll()
        out = {"kind": "sql#operation", "name": name, "operationType": op_type, "status": "DONE" if op.done else "RUNNING",
               "targetId": instance, "targetProject": project, "insertTime": inserted, "startTime": inserted,
               "targetLink": ROOT + "projects/%s/instances/%s" % (project, instance),
               "selfLink": ROOT + "projects/%s/operations/%s" % (project, name), "user": "deployer"}
        if op.done:
            out["endTime"] = now_rfc3339()
            if op.error:
                out["error"] = {"kind": "sql#operationErrors", "errors": [{"kind": "sql#operationError",
                                                                           "code": "INTERNAL_ERROR", "message": op.error}]}
        return out

    def op_get(self, req, p):
        if p["operation"] not in self.ops:
            raise ApiError(404, "The Cloud SQL operation %s does not exist." % p["operation"], reason="operationDoesNotExist")
        return self.render_op(p["operation"])

    def op_list(self, req, p):
        instance = req.query.get("instance")
        names = [n for n, entry in self.ops.items() if entry[1] == p["project"] and (instance is None or entry[2] == instance)]
        items = [self.render_op(n) for n in reversed(names)]
        return {"kind": "sql#operationsList", "items": items} if items else {"kind": "sql#operationsList"}

    # ---- instances ---------------------------------------------------------------------
    def instance(self, p):
        key = "projects/%s/instances/%s" % (p["project"], p["instance"])
        row = self.instances.get(key)
        if row is None:
            raise ApiError(404, "The Cloud SQL instance does not exist.", reason="instanceDoesNotExist")
        return key, row

    def _private_ip(self, network_link, allocated):
        ranges = psa_ranges(self.sandbox, network_link)
        if not ranges:
            raise bad("Failed to create instance because the network doesn't have at least 1 private services "
                      "connection. Please create a private services connection on network %s." % network_link,
                      reason="failedPrecondition")
        if allocated:
            ranges = [r for r in ranges if r[0] == allocated]
            if not ranges:
                raise bad("The allocated IP range '%s' is not peered with the network." % allocated)
        used = {ip["ipAddress"] for row in self.instances.values() for ip in row.get("ipAddresses", [])}
        for _name, cidr in ranges:
            for host in list(ipaddress.ip_network(cidr).hosts())[2:]:
                if str(host) not in used:
                    return str(host)
        raise bad("The allocated ranges are exhausted.")

    def _validate_settings(self, settings, creating):
        tier = settings.get("tier")
        if creating and not tier:
            raise bad("Invalid request: Missing tier.", reason="invalid")
        if tier and not TIER_RE.match(tier):
            raise bad("Invalid request: Invalid Tier (%s) for (SECOND_GEN) Edition." % tier, reason="invalid")
        edition = settings.get("edition")
        if edition == "ENTERPRISE_PLUS" and tier and not tier.startswith("db-perf-optimized"):
            raise bad("Invalid Tier (%s) for (ENTERPRISE_PLUS) Edition: use a db-perf-optimized-N-* tier." % tier)
        for flag in settings.get("databaseFlags") or []:
            if not re.match(r"^[a-z][a-z0-9_.]*$", flag.get("name") or ""):
                raise bad("Invalid flag name: %s" % flag.get("name"))

    def insert(self, req, p):
        body = dict(req.json)
        name = body.get("name") or ""
        if not NAME_RE.match(name):
            raise bad("Invalid request: instance name (%s)." % name)
        key = "projects/%s/instances/%s" % (p["project"], name)
        if key in self.instances or name in self.busy:
            raise ApiError(409, "The Cloud SQL instance already exists. When you delete an instance, you can't reuse "
                                "the name of the deleted instance until one week from the date of deletion.",
                           reason="instanceAlreadyExists")
        version = body.get("databaseVersion", "POSTGRES_16")
        if version not in VERSIONS:
            raise bad("Invalid request: Invalid database version %s for this sandbox (PostgreSQL, or MySQL without a "
                      "server)." % version)
        settings = dict(body.get("settings") or {})
        self._validate_settings(settings, creating=True)
        region = body.get("region", "us-central1")
        dec = body.get("diskEncryptionConfiguration") or {}
        if dec.get("kmsKeyName"):
            problem = cmek_problem(self.app, dec["kmsKeyName"], region, "diskEncryptionConfiguration.kmsKeyName",
                                   "Cloud SQL instance")
            if problem:
                raise bad(problem)
        ipc = dict(settings.get("ipConfiguration") or {})
        ipv4 = ipc.get("ipv4Enabled", True)
        addresses = []
        if ipc.get("privateNetwork"):
            network = unlink(ipc["privateNetwork"])
            if not network.startswith("projects/"):
                network = "projects/%s/global/networks/%s" % (p["project"], network.rsplit("/", 1)[-1])
            ipc["privateNetwork"] = "projects/%s/global/networks/%s" % (p["project"], network.rsplit("/", 1)[-1])
            addresses.append({"type": "PRIVATE", "ipAddress": self._private_ip(network, ipc.get("allocatedIpRange"))})
        elif not ipv4:
            raise bad("Invalid request: At least one IP address must be enabled: set ipv4Enabled or privateNetwork.")
        if ipv4:
            addresses.insert(0, {"type": "PRIMARY", "ipAddress": "34.118.200.%d" % (len(self.instances) + 10)})
        ipc.setdefault("ipv4Enabled", ipv4)
        ipc.setdefault("sslMode", "ALLOW_UNENCRYPTED_AND_ENCRYPTED")
        ipc["requireSsl"] = ipc["sslMode"] != "ALLOW_UNENCRYPTED_AND_ENCRYPTED"
        settings["ipConfiguration"] = ipc
        settings.setdefault("edition", "ENTERPRISE")
        settings.setdefault("availabilityType", "ZONAL")
        settings.setdefault("activationPolicy", "ALWAYS")
        settings.setdefault("dataDiskType", "PD_SSD")
        settings.setdefault("dataDiskSizeGb", "10")
        settings.setdefault("pricingPlan", "PER_USE")
        settings.setdefault("backupConfiguration", {"enabled": False})
        settings["settingsVersion"] = "1"
        settings["kind"] = "sql#settings"
        row = {
            "kind": "sql#instance", "name": name, "project": p["project"], "region": region,
            "databaseVersion": version, "databaseInstalledVersion": version + "_0", "backendType": "SECOND_GEN",
            "instanceType": "CLOUD_SQL_INSTANCE", "gceZone": region + "-b", "state": "PENDING_CREATE",
            "connectionName": "%s:%s:%s" % (p["project"], region, name), "ipAddresses": addresses,
            "settings": settings, "selfLink": ROOT + key, "createTime": now_rfc3339(), "etag": uuid.uuid4().hex,
            "serverCaCert": {"kind": "sql#sslCert", "certSerialNumber": "0", "commonName": "skyforge-sandbox-cloudsql",
                             "instance": name},
            "serviceAccountEmailAddress": "p%s-sandbox@gcp-sa-cloud-sql.iam.gserviceaccount.com" % self.app.project_number,
        }
        if dec.get("kmsKeyName"):
            row["diskEncryptionConfiguration"] = {"kind": "sql#diskEncryptionConfiguration",
                                                  "kmsKeyName": dec["kmsKeyName"]}
        self.instances[key] = row
        if is_mysql(row):
            # No MySQL server on the machine: the instance is a record only.
            return self.operation(p["project"], name, "CREATE", "sqladmin.instance.create",
                                  lambda: row.__setitem__("state", "RUNNABLE"))
        self.start_server(key)

        def done():
            pg = self.pg_of(key)
            row["serverCaCert"]["cert"] = pg.server_ca()
            row["state"] = "RUNNABLE"
            for ip in row["ipAddresses"]:
                if ip["type"] == "PRIVATE":
                    self.sandbox.map_address(ip["ipAddress"], 5432, "127.0.0.1", pg.port, "cloudsql:%s" % name)

        return self.operation(p["project"], name, "CREATE", "sqladmin.instance.create", done)

    def get(self, req, p):
        return self.instance(p)[1]

    def list(self, req, p):
        rows = [r for k, r in sorted(self.instances.items()) if k.startswith("projects/%s/" % p["project"])]
        return {"kind": "sql#instancesList", "items": rows} if rows else {"kind": "sql#instancesList"}

    def patch(self, req, p, replace=False):
        key, row = self.instance(p)
        body = req.json
        settings = body.get("settings") or {}
        if replace and not settings.get("tier"):
            raise bad("Invalid request: Missing tier.")
        sent = settings.get("settingsVersion")
        if sent is not None and str(sent) != row["settings"]["settingsVersion"]:
            raise ApiError(412, "Precondition check failed: the instance's settings version (%s) is newer than the one "
                                "in the request (%s). Re-read the instance and retry." % (row["settings"]["settingsVersion"], sent),
                           reason="staleData")
        if body.get("databaseVersion") and body["databaseVersion"] != row["databaseVersion"]:
            raise bad("Invalid request: changing databaseVersion needs a major version upgrade.")
        dec = body.get("diskEncryptionConfiguration")
        current_key = (row.get("diskEncryptionConfiguration") or {}).get("kmsKeyName")
        if dec is not None and dec.get("kmsKeyName") != current_key:
            raise bad("Invalid request: the disk encryption key of an instance cannot be changed after it is created.")
        self._validate_settings(settings, creating=False)
        ipc = settings.get("ipConfiguration") or {}
        if ipc.get("privateNetwork") and unlink(ipc["privateNetwork"]).rsplit("/", 1)[-1] != \
                row["settings"]["ipConfiguration"].get("privateNetwork", "").rsplit("/", 1)[-1]:
            raise bad("Invalid request: the private network of an instance cannot be changed.")
        if row["state"] != "RUNNABLE":
            raise ApiError(409, "Operation failed because another operation was already in progress.",
                           reason="operationInProgress")

        def done():
            new = dict(row["settings"])
            for k, v in settings.items():
                if k == "settingsVersion":
                    continue
                if isinstance(v, dict) and isinstance(new.get(k), dict) and not replace:
                    merged = dict(new[k])
                    merged.update(v)
                    new[k] = merged
                else:
                    new[k] = v
            if "ipConfiguration" in new:
                new["ipConfiguration"]["requireSsl"] = new["ipConfiguration"].get("sslMode") not in (
                    None, "ALLOW_UNENCRYPTED_AND_ENCRYPTED")
            new["settingsVersion"] = str(int(row["settings"]["settingsVersion"]) + 1)
            row["settings"] = new
            row["etag"] = uuid.uuid4().hex

        return self.operation(p["project"], p["instance"], "UPDATE", "sqladmin.instance.update", done)

    def delete(self, req, p):
        key, row = self.instance(p)
        if row["settings"].get("deletionProtectionEnabled"):
            raise bad("The instance is protected from deletion. Please disable deletion protection and try again.",
                      reason="deletionProtectionEnabled")

        def done():
            for dkey in [k for k in self.databases if k.startswith(key + "/")]:
                self.databases.pop(dkey)
            for ukey in [k for k in self.users if k.startswith(key + "/")]:
                self.users.pop(ukey)
            server = self.servers.pop(key, None)
            if server:
                server[1].wait(60)
                server[0].destroy()
            for ip in row["ipAddresses"]:
                self.sandbox.unmap_address(ip["ipAddress"], 5432)
            self.instances.pop(key, None)

        return self.operation(p["project"], p["instance"], "DELETE", "sqladmin.instance.delete", done)

    # ---- databases and users (real PostgreSQL) ---------------------------------------
    def _grant_all(self, key):
        pg = self.pg_of(key)
        dbs = [r["name"] for k, r in self.databases.items() if k.startswith(key + "/")]
        users = [r["name"] for k, r in self.users.items() if k.startswith(key + "/")]
        for db in dbs:
            for user in users:
                pg.sql("GRANT ALL ON DATABASE %s TO %s" % (pg.ident(db), pg.ident(user)))
                pg.sql("GRANT ALL ON SCHEMA public TO %s" % pg.ident(user), dbname=db)

    def _drop_role(self, key, name):
        pg = self.pg_of(key)
        for dkey, drow in list(self.databases.items()):
            if dkey.startswith(key + "/"):
                pg.sql("REASSIGN OWNED BY %s TO postgres; DROP OWNED BY %s" % (pg.ident(name), pg.ident(name)),
                       dbname=drow["name"])
        pg.sql("DROP ROLE IF EXISTS %s" % pg.ident(name))

    def db_insert(self, req, p):
        key, row = self.instance(p)
        body = req.json
        name = body.get("name") or ""
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$", name):
            raise bad("Invalid request: database name (%s)." % name)
        dkey = "%s/databases/%s" % (key, name)
        if dkey in self.databases:
            raise ApiError(409, "Database %s already exists." % name, reason="alreadyExists")
        if row["state"] != "RUNNABLE":
            raise ApiError(409, "Operation failed because another operation was already in progress.",
                           reason="operationInProgress")

        mysql = is_mysql(row)
        charset, collation = ("utf8mb4", "utf8mb4_0900_ai_ci") if mysql else ("UTF8", "en_US.UTF8")

        def done():
            if not mysql:
                pg = self.pg_of(key)
                if not pg.sql("SELECT 1 FROM pg_database WHERE datname = %s" % pg.literal(name)).strip():
                    pg.sql("CREATE DATABASE %s ENCODING 'UTF8'" % pg.ident(name))
            self.databases[dkey] = {"kind": "sql#database", "name": name, "instance": p["instance"],
                                    "project": p["project"], "charset": body.get("charset") or charset,
                                    "collation": body.get("collation") or collation, "selfLink": ROOT + dkey,
                                    "etag": uuid.uuid4().hex}
            if not mysql:
                self._grant_all(key)

        return self.operation(p["project"], p["instance"], "CREATE_DATABASE", "sqladmin.database", done)

    def db_get(self, req, p):
        key, _row = self.instance(p)
        dkey = "%s/databases/%s" % (key, p["database"])
        if dkey not in self.databases:
            raise ApiError(404, "Not Found", reason="notFound")
        return self.databases[dkey]

    def db_list(self, req, p):
        key, _row = self.instance(p)
        return {"kind": "sql#databasesList", "items": [r for k, r in sorted(self.databases.items()) if k.startswith(key + "/")]}

    def db_delete(self, req, p):
        key, row = self.instance(p)
        dkey = "%s/databases/%s" % (key, p["database"])
        if dkey not in self.databases:
            raise ApiError(404, "Not Found", reason="notFound")

        def done():
            if not is_mysql(row):
                pg = self.pg_of(key)
                pg.sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % pg.ident(p["database"]))
            self.databases.pop(dkey, None)

        return self.operation(p["project"], p["instance"], "DELETE_DATABASE", "sqladmin.database", done)

    def user_insert(self, req, p):
        key, row = self.instance(p)
        body = req.json
        name = body.get("name") or ""
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$", name) or name in ("postgres", "cloudsqlsuperuser"):
            raise bad("Invalid request: user name (%s)." % name)
        mysql = is_mysql(row)
        host = body.get("host") or ""
        if mysql and (not host or name in ("root", "mysql.sys", "cloudsqlsuperuser")):
            raise bad("Invalid request: a MySQL user needs a host ('%%' for any) and must not be a reserved name (%s)."
                      % name)
        ukey = user_key(key, row, name, host)
        if ukey in self.users:
            raise ApiError(409, "User %s already exists." % name, reason="alreadyExists")
        password = body.get("password") or ""

        def done():
            if not mysql:
                pg = self.pg_of(key)
                pg.sql("CREATE ROLE %s LOGIN CREATEDB PASSWORD %s" % (pg.ident(name), pg.literal(password)))
            self.users[ukey] = {"kind": "sql#user", "name": name, "instance": p["instance"], "project": p["project"],
                                "type": body.get("type", "BUILT_IN"), "host": host if mysql else "",
                                "etag": uuid.uuid4().hex}
            if not mysql:
                self._grant_all(key)

        return self.operation(p["project"], p["instance"], "CREATE_USER", "sqladmin.user", done)

    def user_update(self, req, p):
        key, row = self.instance(p)
        name = req.query.get("name") or ""
        ukey = user_key(key, row, name, req.query.get("host"))
        if ukey not in self.users:
            raise ApiError(404, "User %s does not exist." % name, reason="notFound")
        password = req.json.get("password")

        def done():
            if password is not None and not is_mysql(row):
                pg = self.pg_of(key)
                pg.sql("ALTER ROLE %s PASSWORD %s" % (pg.ident(name), pg.literal(password)))
            self.users[ukey]["etag"] = uuid.uuid4().hex

        return self.operation(p["project"], p["instance"], "UPDATE_USER", "sqladmin.user", done)

    def user_get(self, req, p):
        key, row = self.instance(p)
        ukey = user_key(key, row, p["name"], req.query.get("host"))
        if ukey not in self.users:
            raise ApiError(404, "User %s does not exist." % p["name"], reason="notFound")
        return self.users[ukey]

    def user_list(self, req, p):
        key, _row = self.instance(p)
        return {"kind": "sql#usersList", "items": [r for k, r in sorted(self.users.items()) if k.startswith(key + "/")]}

    def user_delete(self, req, p):
        key, row = self.instance(p)
        name = req.query.get("name") or ""
        ukey = user_key(key, row, name, req.query.get("host"))
        if ukey not in self.users:
            raise ApiError(404, "User %s does not exist." % name, reason="notFound")

        def done():
            if not is_mysql(row):
                self._drop_role(key, name)
            self.users.pop(ukey, None)

        return self.operation(p["project"], p["instance"], "DELETE_USER", "sqladmin.user", done)


def stopping(app):
    app.sqladmin.stop_all()


def register(app):
    sql = SqlAdmin(app)
    app.sqladmin = sql
    h = app.handle
    h("sql.instances.insert", sql.insert)
    h("sql.instances.get", sql.get)
    h("sql.instances.list", sql.list)
    h("sql.instances.patch", sql.patch)
    h("sql.instances.update", lambda req, p: sql.patch(req, p, replace=True))
    h("sql.instances.delete", sql.delete)
    h("sql.databases.insert", sql.db_insert)
    h("sql.databases.get", sql.db_get)
    h("sql.databases.list", sql.db_list)
    h("sql.databases.delete", sql.db_delete)
    h("sql.users.insert", sql.user_insert)
    h("sql.users.get", sql.user_get)
    h("sql.users.list", sql.user_list)
    h("sql.users.update", sql.user_update)
    h("sql.users.delete", sql.user_delete)
    h("sql.operations.get", sql.op_get)
    h("sql.operations.list", sql.op_list)
