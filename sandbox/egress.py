"""Egress of a Cloud Run task: which source address GCP gives its traffic, and a proxy that sends it from there.

A task's process gets `HTTP_PROXY`/`HTTPS_PROXY` pointing at an `EgressProxy` of its own. The proxy reaches only
what the sandbox can stand in for on the public internet: hostnames whose proxied A record Cloudflare's edge serves
(sandbox/edge/proxy.py). It hands such a request to that edge with `X-Sandbox-Client-IP` set to the source address
decided here, which is what Cloudflare Access sees. Any other destination is refused and never dialled.

HTTPS (CONNECT) is terminated here with a certificate for the hostname from the sandbox's edge CA, as Cloudflare's
edge terminates TLS; the task trusts that CA through `SSL_CERT_FILE`/`REQUESTS_CA_BUNDLE` as a container trusts
Cloudflare's certificates through its image's bundle.

Source address, as GCP decides it for Cloud Run (Direct VPC egress):
- `vpcAccess.egress: ALL_TRAFFIC` on a subnetwork whose region has a Cloud Router with a Cloud NAT covering that
  subnetwork: the NAT's reserved address;
- no vpcAccess, `PRIVATE_RANGES_ONLY` (the default), or no NAT covering the subnetwork: one of Google's serverless
  addresses, on nobody's allow-list.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import tls
from .edge.proxy import CLIENT_IP_HEADER, SOURCE_IP_HEADER

# A host in 34.0.0.0/15, one of the ranges Google publishes for its own services (gstatic.com/ipranges/goog.json):
# what a Cloud Run task without Direct VPC egress through a NAT leaves from. No allow-list of this platform holds it.
GOOGLE_EGRESS_IP = "34.0.0.17"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
              "trailers", "transfer-encoding", "upgrade", "content-length"}
NAT_ALL = ("ALL_SUBNETWORKS_ALL_IP_RANGES", "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES")


def _unlink(ref):
    ref = ref or ""
    marker = "/projects/"
    return ref[ref.index(marker) + 1:] if marker in ref else ref


def decide_source(sandbox, project, location, task):
    """(source IP, why) for traffic a task of this template sends to the internet."""
    vpc = task.get("vpcAccess") or {}
    nics = vpc.get("networkInterfaces") or []
    if not nics:
        return GOOGLE_EGRESS_IP, "no Direct VPC egress (vpcAccess.networkInterfaces unset): a Google address"
    egress = vpc.get("egress") or "PRIVATE_RANGES_ONLY"
    if egress != "ALL_TRAFFIC":
        return GOOGLE_EGRESS_IP, ("vpcAccess.egress is %s: internet traffic does not enter the VPC, it leaves from a "
                                  "Google address" % egress)
    nic = nics[0]
    subnet_name = _unlink(nic.get("subnetwork") or nic.get("network") or "").rsplit("/", 1)[-1]
    subnet_key = "projects/%s/regions/%s/subnetworks/%s" % (project, location, subnet_name)
    subnet = sandbox.store.table("compute.subnetworks").get(subnet_key)
    if subnet is None:
        return GOOGLE_EGRESS_IP, "subnetwork %s does not exist: a Google address" % subnet_key
    prefix = "projects/%s/regions/%s/routers/" % (project, location)
    for key, router in sorted(sandbox.store.table("compute.routers").items()):
        if not key.startswith(prefix) or _unlink(router.get("network")) != _unlink(subnet.get("network")):
            continue
        for nat in router.get("nats") or []:
            mode = nat.get("sourceSubnetworkIpRangesToNat")
            covered = mode in NAT_ALL or any(_unlink(s.get("name")) == subnet_key for s in nat.get("subnetworks") or [])
            if not covered:
                continue
            addresses = sandbox.store.table("compute.addresses")
            ips = [(addresses.get(_unlink(link)) or {}).get("address") for link in nat.get("natIps") or []]
            ips = [ip for ip in ips if ip]
            if ips:
                return ips[0], "Cloud NAT %s of router %s covers subnetwork %s" % (nat["name"], router["name"],
                                                                                   subnet_name)
            return GOOGLE_EGRESS_IP, ("Cloud NAT %s of router %s has no reserved address (AUTO_ONLY addresses are "
                                      "not emulated): a Google address" % (nat["name"], router["name"]))
    return GOOGLE_EGRESS_IP, ("no Cloud NAT in %s covers subnetwork %s: ALL_TRAFFIC to the internet has no way out "
                              "but a Google address" % (location, subnet_name))


class EdgeCA:
    """The CA whose certificates the egress proxy presents for Cloudflare-proxied hostnames."""

    def __init__(self, state_dir):
        self.dir = os.path.join(state_dir, "egress")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.ca_file = os.path.join(self.dir, "edge-ca.pem")
        self.lock = threading.Lock()
        self.contexts = {}
        self.cert, self.key = tls.new_ca("sandbox Cloudflare edge CA", 30, key_usage=("key_cert_sign", "crl_sign"))
        with open(self.ca_file, "wb") as fh:
            fh.write(tls.pem(self.cert))

    def context(self, hostname):
        with self.lock:
            if hostname in self.contexts:
                return self.contexts[hostname]
            cert, key = tls.issue(self.cert, self.key, hostname, [hostname])
            ctx = tls.server_context(os.path.join(self.dir, "leaf-%s.pem" % hostname.replace("/", "_")), cert, key)
            ctx.set_alpn_protocols(["http/1.1"])
            self.contexts[hostname] = ctx
            return ctx


def edge_ca(sandbox):
    ca = getattr(sandbox, "_edge_ca", None)
    if ca is None:
        ca = sandbox._edge_ca = EdgeCA(sandbox.config.state_dir)
    return ca


class EgressProxy:
    """One task's way out: a loopback HTTP proxy that sends from `source_ip`, to Cloudflare's edge only."""

    def __init__(self, sandbox, source_ip, log=None):
        self.sandbox = sandbox
        self.source_ip = source_ip
        self.log = log or (lambda line: None)
        self.ca = edge_ca(sandbox)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="egress-%s" % source_ip, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def env(self):
        """Every HTTP stack's proxy settings: the network path is the platform's, not the container's to choose."""
        out = {}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            out[name] = out[name.lower()] = self.url
        out["NO_PROXY"] = out["no_proxy"] = "localhost,127.0.0.1,::1"
        return out

    def trust_env(self):
        """The edge CA where each HTTP stack looks for its trust store (Prefect's client reads only its own
        setting, else certifi's bundle); a container may override these, as an image may ship another bundle."""
        return {name: self.ca.ca_file for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                                                   "PREFECT_API_SSL_CERT_FILE")}

    def edge_for(self, host):
        edge = self.sandbox.edge
        return edge.url_for(host) if edge is not None else None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _refusal(host):
    try:
        ipaddress.ip_address(host)
        what = "an IP address"
    except ValueError:
        what = "not a hostname Cloudflare proxies in the sandbox"
    return ("sandbox egress: %s is %s; only Cloudflare-proxied hostnames are reachable from a Cloud Run task "
            "(nothing else is ever dialled)" % (host, what))


def _handler(proxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "sandbox-egress"
        # Headers and body are two writes: with Nagle on, the body waits for the client's delayed ACK of the headers,
        # 40 ms on every request after a connection's first, which no real front end adds.
        disable_nagle_algorithm = True
        tunnel_host = None

        def log_message(self, fmt, *args):
            pass

        def _reply(self, status, text, headers=()):
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_CONNECT(self):
            host, _, port = self.path.rpartition(":")
            host = host.strip("[]").lower()
            if not proxy.edge_for(host) or port not in ("443", "80"):
                proxy.log("egress: refused CONNECT %s" % self.path)
                self._reply(403, _refusal(host) if proxy.edge_for(host) is None else
                            "sandbox egress: Cloudflare's edge listens on 80 and 443 only, not %s" % port)
                self.close_connection = True
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            try:
                tunnel = proxy.ca.context(host).wrap_socket(self.connection, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                proxy.log("egress: TLS with the client failed for %s: %s" % (host, exc))
                self.close_connection = True
                return
            inner = _handler(proxy)
            inner.tunnel_host = host
            try:
                inner(tunnel, self.client_address, self.server)
            finally:
                try:
                    tunnel.close()
                except OSError:
                    pass
            self.close_connection = True

        def _forward(self):
            if self.tunnel_host:
                host, path = self.tunnel_host, self.path
            elif self.path.startswith("http://"):
                rest = self.path[len("http://"):]
                hostport, _, tail = rest.partition("/")
                host, path = hostport.rsplit(":", 1)[0] if ":" in hostport else hostport, "/" + tail
            else:
                self._reply(400, "sandbox egress: a proxy request needs an absolute http:// URL or CONNECT")
                return
            host = host.lower()
            edge = proxy.edge_for(host)
            if edge is None:
                proxy.log("egress: refused %s %s" % (self.command, host))
                self._reply(403, _refusal(host))
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP_BY_HOP
                       and k.lower() not in (CLIENT_IP_HEADER.lower(), SOURCE_IP_HEADER.lower())}
            headers["Host"] = host
            headers[CLIENT_IP_HEADER] = proxy.source_ip
            e_host, _, e_port = edge[len("http://"):].partition(":")
            try:
                conn = http.client.HTTPConnection(e_host, int(e_port), timeout=120)
                conn.request(self.command, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
            except (OSError, http.client.HTTPException) as exc:
                self._reply(502, "sandbox egress: Cloudflare's edge for %s did not answer: %s" % (host, exc))
                return
            denied = ""
            if resp.getheader("CF-Access-Denied"):
                try:
                    denied = " (Cloudflare Access: %s)" % json.loads(data)["reason"]
                except (ValueError, KeyError, TypeError):
                    denied = " (Cloudflare Access denied)"
            scheme = "https" if self.tunnel_host else "http"
            proxy.log("egress: %s %s://%s%s from %s -> %d%s" % (self.command, scheme, host, path.split("?", 1)[0],
                                                                proxy.source_ip, resp.status, denied))
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    return Handler


__all__ = ["EgressProxy", "GOOGLE_EGRESS_IP", "decide_source", "edge_ca"]
