"""An admission webhook for the tests, on loopback over TLS: it denies the eviction of one
pod (by name) and allows every other request. Usage: webhook.py CERT KEY PORT_FILE POD."""

import json
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

CERT, KEY, PORT_FILE, DENIED = sys.argv[1:5]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        review = json.loads(self.rfile.read(length) or b"{}")
        request = review.get("request", {})
        allowed = request.get("name") != DENIED
        response = {"uid": request.get("uid", ""), "allowed": allowed}
        if not allowed:
            response["status"] = {
                "code": 403,
                "message": f"the test's webhook denies evicting {DENIED}",
            }
        body = json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
