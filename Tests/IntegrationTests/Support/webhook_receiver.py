"""A webhook receiver for NotificationDeliveryTests: answers each POST with
the next status of STATUSES (then 200), and appends one JSON line per
request (path, headers, parsed body, status answered) to RECORDS.

usage: webhook_receiver.py PORT RECORDS [STATUS,STATUS,...]
"""
import http.server
import json
import sys

port, records = int(sys.argv[1]), sys.argv[2]
statuses = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 and sys.argv[3] else []


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status = statuses.pop(0) if statuses else 200
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        with open(records, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": parsed, "status": status}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
