"""A throwaway nginx on a free loopback port, for `selftest` (the generator's
own ceiling against nginx's `return 200`) and the parser checks."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from .deps import ensure_nginx
from .procmon import read_pidfile
from .util import SetupError

CONF = """
worker_processes {workers};
daemon on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp_body;
  proxy_temp_path {d}/tmp_proxy;
  fastcgi_temp_path {d}/tmp_fastcgi;
  uwsgi_temp_path {d}/tmp_uwsgi;
  scgi_temp_path {d}/tmp_scgi;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  default_type application/json;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location = /health {{ return 200 '{{"status":"ok"}}'; }}
    location = /big {{ alias {d}/big.json; }}
    location = /chunked {{ gzip on; gzip_min_length 0; gzip_types *; alias {d}/big.json; }}
    location = /close {{ keepalive_timeout 0; return 200 '{{"status":"ok"}}'; }}
    location = /post {{ client_max_body_size 1m; return 201 '{{"ok":true}}'; }}
    location / {{ return 404 '{{"error":{{"code":"not_found","message":"no route"}}}}'; }}
  }}
}}
"""

BIG_SIZE = 1536 * 1024


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class LocalNginx:
    def __init__(self, workers=1):
        self.workers = workers
        self.dir = None
        self.port = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        nginx = ensure_nginx()
        self.dir = tempfile.mkdtemp(prefix="cc-loadtest-nginx-")
        with open(os.path.join(self.dir, "big.json"), "w") as f:
            line = '{"pid":12345,"name":"process-name","cmdline":"/usr/bin/something --flag value"},\n'
            f.write("[")
            n = 1
            while n < BIG_SIZE - len(line) - 2:
                f.write(line)
                n += len(line)
            f.write('{"end":1}]')
        self.big_size = os.path.getsize(os.path.join(self.dir, "big.json"))
        # nginx workers started by root run as nobody: they must read the file
        os.chmod(self.dir, 0o755)
        os.chmod(os.path.join(self.dir, "big.json"), 0o644)
        for attempt in range(5):
            self.port = free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(CONF.format(d=self.dir, port=self.port, workers=self.workers))
            self.cmd = [nginx, "-p", self.dir, "-c", conf]
            r = subprocess.run(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=20)
            if r.returncode == 0:
                break
            if "Address already in use" not in r.stdout:
                raise SetupError("nginx did not start: " + r.stdout.strip())
        else:
            raise SetupError("nginx found no free port")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SetupError("nginx did not listen on %d" % self.port)

    def stop(self):
        if not self.dir:
            return
        pid = read_pidfile(os.path.join(self.dir, "nginx.pid"))
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
