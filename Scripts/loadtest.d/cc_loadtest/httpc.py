"""The target server and a small blocking HTTP client for probes, logins,
verification reads and the boundary tests (rate limit, payload)."""
import http.client
import ipaddress
import json
import os
import socket
import time
import urllib.parse

from .util import SetupError


class Resp:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body
        self.elapsed = elapsed

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception:
            return None

    def is_json(self):
        return self.json() is not None


class Target:
    def __init__(self, url, allow_remote=False):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http":
            raise SetupError("only http:// URLs are supported (nginx terminates TLS elsewhere): %s" % url)
        if not u.hostname:
            raise SetupError("no host in URL %s" % url)
        self.url = url.rstrip("/")
        self.host = u.hostname
        self.port = u.port or 80
        self.prefix = u.path.rstrip("/")
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise SetupError("cannot resolve %s: %s" % (self.host, e))
        ips = [i[4][0] for i in infos]
        ip = ips[0]
        if not allow_remote and not ipaddress.ip_address(ip).is_loopback:
            raise SetupError("refusing to load %s (%s): the harness only targets loopback addresses unless "
                             "CC_LOADTEST_ALLOW_REMOTE=1 (and you own that host)" % (self.host, ip))
        self.ip = ip
        hp = self.host if ":" not in self.host else "[%s]" % self.host
        self.hostheader = hp if self.port == 80 else "%s:%d" % (hp, self.port)
        self.token = None

    def path(self, p):
        return self.prefix + p

    def auth_headers(self):
        return {"Authorization": "Bearer " + self.token} if self.token else {}

    def request(self, method, path, body=None, headers=None, timeout=10.0, auth=False):
        h = {"Host": self.hostheader, "User-Agent": "cc-loadtest", "Accept": "application/json"}
        if auth:
            h.update(self.auth_headers())
        if headers:
            h.update(headers)
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        t0 = time.monotonic()
        c = http.client.HTTPConnection(self.ip, self.port, timeout=timeout)
        try:
            c.request(method, self.path(path), body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            return Resp(r.status, hdrs, data, time.monotonic() - t0)
        finally:
            c.close()

    def try_request(self, *a, **kw):
        """request(), but None instead of an exception when the server cannot be reached."""
        try:
            return self.request(*a, **kw)
        except (OSError, http.client.HTTPException):
            return None

    def login(self, user, password):
        try:
            r = self.request("POST", "/api/auth/login", body={"username": user, "password": password}, timeout=15)
        except (OSError, http.client.HTTPException) as e:
            raise SetupError("login failed: %s" % e)
        j = r.json() or {}
        tok = j.get("access_token") if isinstance(j, dict) else None
        if r.status != 200 or not tok:
            raise SetupError("login as %r failed: HTTP %d %s" % (user, r.status, r.body[:200]))
        self.token = tok
        return tok


def raw_request(method, target, path, headers=None, body=b""):
    """The exact bytes of one HTTP/1.1 keep-alive request, as the generator sends them."""
    h = [("Host", target.hostheader), ("User-Agent", "cc-loadtest"), ("Accept", "application/json")]
    for k, v in (headers or {}).items():
        h.append((k, v))
    if body or method in ("POST", "PUT", "PATCH"):
        h.append(("Content-Length", str(len(body))))
    head = "%s %s HTTP/1.1\r\n" % (method, target.path(path)) + "".join("%s: %s\r\n" % kv for kv in h) + "\r\n"
    return head.encode("latin-1") + (body or b"")


def env_default(name, default=None):
    v = os.environ.get(name)
    return v if v not in (None, "") else default
