"""OAuth2 for the GCP stand-in: google-auth's real service-account JWT flow runs against /token."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from ..web import ApiError, Response

DEPLOYER = "skyforge-deployer"


class Auth:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.key_file = os.path.join(sandbox.config.state_dir, "gcp-deployer-key.json")
        self.public_keys = {}  # key id -> PEM
        self.emails = {}  # key id -> client_email
        self.tokens = {}  # token -> (email, expiry, origin)
        self.lock = threading.Lock()

    def ensure_deployer_key(self, token_uri):
        project = self.sandbox.config.project
        email = "%s@%s.iam.gserviceaccount.com" % (DEPLOYER, project)
        info = None
        if os.path.exists(self.key_file):
            with open(self.key_file) as fh:
                info = json.load(fh)
            if info.get("token_uri") != token_uri:
                info = None
        if info is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
            info = {
                "type": "service_account",
                "project_id": project,
                "private_key_id": secrets.token_hex(20),
                "private_key": pem,
                "client_email": email,
                "client_id": "1%020d" % secrets.randbelow(10 ** 19),
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/%s"
                % urllib.parse.quote(email),
                "universe_domain": "googleapis.com",
            }
            fd = os.open(self.key_file + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh, indent=2)
            os.replace(self.key_file + ".tmp", self.key_file)
        private = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        self.public_keys[info["private_key_id"]] = public
        self.emails[info["private_key_id"]] = info["client_email"]
        self.deployer_email = info["client_email"]

    def mint(self, email, lifetime=3600, origin=None):
        """An access token for `email`. `origin` names a workload the sandbox runs (a pod, a Cloud Run task) when
        its metadata server asked: the request log carries it, so what the platform's own workloads do is told
        apart from what the deployer (Ansible, a test) does."""
        token = "ya29.sandbox-" + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = (email, time.time() + lifetime, origin)
        return token

    def token_endpoint(self, req):
        form = urllib.parse.parse_qs(req.body.decode("utf-8"))
        grant = (form.get("grant_type") or [""])[0]
        assertion = (form.get("assertion") or [""])[0]
        if grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not assertion:
            return Response(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        try:
            header = jwt.decode_header(assertion)
            kid = header.get("kid")
            if kid not in self.public_keys:
                return Response(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
            claims = jwt.decode(assertion, certs=self.public_keys[kid], audience=[self.sandbox.url("gcp") + "/token", "https://oauth2.googleapis.com/token"])
            # google-auth always signs for Google's token URI, whatever token_uri it posts to.
        except ValueError as exc:
            return Response(400, {"error": "invalid_grant", "error_description": "Invalid JWT: %s" % exc})
        if claims.get("iss") != self.emails[kid]:
            return Response(400, {"error": "invalid_grant", "error_description": "Invalid JWT issuer."})
        token = self.mint(claims["iss"])
        return Response(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def check(self, req):
        token = req.bearer
        if not token:
            raise ApiError(401, "Request is missing required authentication credential. Expected OAuth 2 access "
                                "token, login cookie or other valid authentication credential.",
                           reason="required", status="UNAUTHENTICATED")
        if token.count(".") == 2:
            return self.self_signed(req, token)
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None or entry[1] < time.time():
            raise ApiError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                                "login cookie or other valid authentication credential.",
                           reason="authError", status="UNAUTHENTICATED")
        if entry[2]:
            req.origin = entry[2]
        return entry[0]

    def self_signed(self, req, token):
        """A service account's self-signed JWT used as the access token, as Google APIs accept it (AIP-4111).

        google-cloud-* clients send one instead of calling the token endpoint: signed by one of the account's keys,
        iss == sub == the account, and aud the API's own `https://<api>.googleapis.com/` (or a `scope` claim).
        """
        def refuse(why):
            return ApiError(401, "Request had invalid authentication credentials (%s). Expected OAuth 2 access "
                                 "token, login cookie or other valid authentication credential." % why,
                            reason="authError", status="UNAUTHENTICATED")

        try:
            kid = jwt.decode_header(token).get("kid")
            if kid not in self.public_keys:
                raise refuse("unknown signing key")
            claims = jwt.decode(token, certs=self.public_keys[kid], verify=True)
        except ValueError as exc:
            raise refuse("invalid JWT: %s" % str(exc)[:200])
        email = self.emails[kid]
        if claims.get("iss") != email or claims.get("sub") != email:
            raise refuse("the JWT's iss and sub must both be the signing service account")
        host = (req.header("Host") or "").split(":")[0]
        if not claims.get("scope") and claims.get("aud") != "https://%s/" % host:
            raise refuse("audience %r is not this API" % claims.get("aud"))
        return email
