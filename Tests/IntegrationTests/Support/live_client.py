#!/usr/bin/env python3
"""Live-channel client for LiveChannelTests: subscribes, prints {"open": true}
once subscribed, then one JSON line per message received ({"recv_ms", "id",
"data"}); {"refused": STATUS} when the handshake is refused, {"timeout": true}
when a message does not come within 5 s. Exits 0 in every case.

  live_client.py ws URL COUNT [--source=ADDR] [HEADER:VALUE ...]   WebSocket (python3-websockets)
  live_client.py sse URL COUNT [--source=ADDR] [HEADER:VALUE ...]  EventSource (text/event-stream)

--source=ADDR connects from that local address (127.0.0.0/8: a client address of its own).
"""
import asyncio
import http.client
import json
import sys
import time
import urllib.parse


def emit(data, ident=None):
    print(json.dumps({"recv_ms": time.time() * 1000, "id": ident, "data": data}), flush=True)


def headers_from(args):
    return dict(a.split(":", 1) for a in args)


async def websocket(url, count, headers, source):
    import websockets
    local = {"local_addr": (source, 0)} if source else {}  # passed on to loop.create_connection
    try:
        async with websockets.connect(url, extra_headers=headers, open_timeout=10, max_size=1 << 20, **local) as ws:
            print(json.dumps({"open": True}), flush=True)
            for _ in range(count):
                emit(await asyncio.wait_for(ws.recv(), 5))
    except websockets.exceptions.InvalidStatusCode as e:
        print(json.dumps({"refused": e.status_code}), flush=True)
    except asyncio.TimeoutError:
        print(json.dumps({"timeout": True}), flush=True)


def sse(url, count, headers, source):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5, source_address=(source, 0) if source else None)
    conn.request("GET", u.path + ("?" + u.query if u.query else ""),
                 headers={"Accept": "text/event-stream", **headers})
    r = conn.getresponse()
    if r.status != 200:
        print(json.dumps({"refused": r.status}), flush=True)
        return
    print(json.dumps({"open": True}), flush=True)
    ident, data, got = None, [], 0
    while got < count:
        try:
            line = r.fp.readline()
        except TimeoutError:
            print(json.dumps({"timeout": True}), flush=True)
            return
        if not line:
            break
        line = line.decode().rstrip("\r\n")
        if line.startswith("id:"):
            ident = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif line == "" and data:
            emit("\n".join(data), ident)
            ident, data, got = None, [], got + 1


def main():
    mode, url, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rest = sys.argv[4:]
    source = next((a.split("=", 1)[1] for a in rest if a.startswith("--source=")), None)
    headers = headers_from(a for a in rest if not a.startswith("--source="))
    if mode == "ws":
        asyncio.run(websocket(url, count, headers, source))
    else:
        sse(url, count, headers, source)


if __name__ == "__main__":
    main()
