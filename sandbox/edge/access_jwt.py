"""Access's application tokens, in miniature: RS256 JWTs the sandbox signs at a login and the edge verifies.

Cloudflare signs each Access application token with its team's key and publishes the public keys at
`https://<team>.cloudflareaccess.com/cdn-cgi/access/certs`; the token comes back as the `CF_Authorization` cookie
or the `Cf-Access-Jwt-Assertion` header, and an origin checks its signature, `aud` (the application's AUD tag) and
`exp`. The sandbox has no IdP to redirect to, so its login (the edge's `POST /cdn-cgi/access/login`) takes the
user, the groups and the SAML attributes the IdP would assert, and the token carries them (`idp`, `groups`,
`custom`), so the edge can evaluate group rules on every request.

Only RS256 with this sandbox's key is accepted: `alg: none`, HS256 and unknown `kid`s are refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from .. import tls

ISSUER = "https://skyforge-sandbox.cloudflareaccess.com"
COOKIE = "CF_Authorization"
HEADER = "Cf-Access-Jwt-Assertion"
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class JwtError(Exception):
    """A token the edge refuses; the message says why (expired, wrong audience, bad signature, ...)."""


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seconds(duration):
    """Seconds of a Go duration such as 24h or 1h30m (Access's session_duration)."""
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(duration or "")) or 24 * 3600


class AccessJwt:
    """The team's signing key (made on first use: RSA is slow to generate) and the tokens it signs."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self._key = None
        self._cert = None
        self.kid = None

    def _ensure(self):
        with self._lock:
            if self._key is None:
                cert, key = tls.new_ca("skyforge-sandbox.cloudflareaccess.com", 365, use_rsa=True,
                                       key_usage=("digital_signature",))
                numbers = key.public_key().public_numbers()
                self.kid = hashlib.sha256(_int_bytes(numbers.n)).hexdigest()
                self._cert, self._key = cert, key
            return self._key

    def certs(self):
        """The body of /cdn-cgi/access/certs: the JWKS and the same key as a certificate."""
        key = self._ensure()
        numbers = key.public_key().public_numbers()
        jwk = {"kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig", "e": b64url(_int_bytes(numbers.e)),
               "n": b64url(_int_bytes(numbers.n))}
        cert = {"kid": self.kid, "cert": tls.pem(self._cert).decode("ascii")}
        return {"keys": [jwk], "public_cert": cert, "public_certs": [cert]}

    def issue(self, aud, email, idp, groups=(), custom=None, ttl=None, now=None):
        """A signed application token for `aud`; `idp` is {"id", "type"} of the provider the user logged in with."""
        key = self._ensure()
        now = int(self.clock() if now is None else now)
        claims = {
            "aud": [aud], "email": email, "exp": now + int(ttl if ttl is not None else 24 * 3600), "iat": now,
            "nbf": now, "iss": ISSUER, "type": "app", "identity_nonce": uuid.uuid4().hex,
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, "mailto:" + email.lower())), "country": "XX",
            "idp": {"id": idp["id"], "type": idp["type"]}, "groups": list(groups), "custom": dict(custom or {}),
        }
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = "%s.%s" % (b64url(_json(header)), b64url(_json(claims)))
        signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return "%s.%s" % (signing_input, b64url(signature))

    def verify(self, token, aud):
        """The claims of `token` when it is a current token of application `aud` signed by this team; else JwtError."""
        key = self._ensure()
        parts = (token or "").split(".")
        if len(parts) != 3:
            raise JwtError("not a JWT")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except ValueError:
            raise JwtError("not a JWT")
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            raise JwtError("algorithm %s is not accepted (RS256 only)" % (header or {}).get("alg"))
        if header.get("kid") != self.kid:
            raise JwtError("unknown signing key %s" % header.get("kid"))
        try:
            key.public_key().verify(signature, ("%s.%s" % (parts[0], parts[1])).encode("ascii"), padding.PKCS1v15(),
                                    hashes.SHA256())
        except InvalidSignature:
            raise JwtError("bad signature")
        if not isinstance(claims, dict):
            raise JwtError("not a JWT")
        now = self.clock()
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] <= now:
            raise JwtError("expired")
        if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > now + 60:
            raise JwtError("not valid yet")
        if claims.get("iss") != ISSUER:
            raise JwtError("issuer %s is not this team" % claims.get("iss"))
        auds = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
        if aud not in auds:
            raise JwtError("audience does not match this application")
        return claims


def _int_bytes(value):
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def _json(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")
