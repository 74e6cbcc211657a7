#!/usr/bin/env python3
"""A tiny round-robin HTTP front for the PocketBun cluster example (Python 3 stdlib only).

Each request goes to the next node of ``--upstream`` in turn (primary and replicas alike: a
replica forwards writes to the primary itself). Answers are streamed back as they arrive, so
``GET /api/realtime`` (Server-Sent Events) passes through unbuffered.

Read-your-writes: clients such as the JS SDK in Node keep no cookies, and a replica only
remembers the writes it forwarded itself, so a create sent to one node and read back through
another could miss. The front therefore remembers, per client IP (so a guest client on the
same machine also sees what a signed-in one just wrote), the last ``X-Pocketbun-Txid`` an
answer carried, for 5 s (the
nodes' own ``pb_txid`` cookie lifetime; the replica lag is ~1 s), and adds it as the
``X-Pocketbun-Txid`` request header on that client's next requests. A replica whose copy is
older waits up to 20 ms for it, else asks the primary.

This is a demo front, not a production load balancer: one thread per connection, one
upstream connection per request, no health checks.

    python3 front.py --port 8090 --upstream http://127.0.0.1:8091,http://127.0.0.1:8092
"""

import argparse
import http.client
import itertools
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TXID_HEADER = "X-Pocketbun-Txid"
# as long as the nodes' pb_txid cookie lives: the replica lag is ~1 s, 5 s leaves room
REMEMBER_SECONDS = 5.0
# Connection-level headers (RFC 9110 7.6.1) are not forwarded in either direction.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class Front:
    """The upstream rotation and the per-client TXID memory, shared by all threads."""

    def __init__(self, upstreams):
        self.upstreams = [urllib.parse.urlsplit(u) for u in upstreams]
        self._next = itertools.cycle(range(len(self.upstreams)))
        self._lock = threading.Lock()
        self._txids = {}  # client ip -> (txid int, hex, expires at)

    def pick(self):
        with self._lock:
            return self.upstreams[next(self._next)]

    def txid_for(self, client):
        with self._lock:
            entry = self._txids.get(client)
            if entry is None:
                return None
            if entry[2] < time.monotonic():
                del self._txids[client]
                return None
            return entry[1]

    def saw_txid(self, client, value):
        try:
            txid = int(value.strip(), 16)
        except ValueError:
            return
        now = time.monotonic()
        with self._lock:
            old = self._txids.get(client)
            # answers of concurrent requests may arrive out of order: keep the newest TXID
            if old is not None and old[2] >= now and old[0] > txid:
                return
            self._txids[client] = (txid, value.strip(), now + REMEMBER_SECONDS)
            if len(self._txids) > 10_000:  # drop expired entries now and then
                for key in [k for k, v in self._txids.items() if v[2] < now]:
                    del self._txids[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    front = None  # set by serve()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def _body(self):
        """The request body, read whole (Content-Length or chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _error(self, status, message):
        body = json.dumps({"status": status, "message": message, "data": {}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _proxy(self):
        front = self.front
        client = self.client_address[0]
        body = self._body()
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        if body is not None:
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        if self.headers.get(TXID_HEADER) is None:
            txid = front.txid_for(client)
            if txid is not None:
                headers.append((TXID_HEADER, txid))
        up = front.pick()
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=None)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
        except OSError as e:
            conn.close()
            self._error(502, f"The upstream node {up.netloc} is unreachable: {e}.")
            return
        try:
            txid = resp.getheader(TXID_HEADER)
            if txid:
                front.saw_txid(client, txid)
            self._relay(resp)
        finally:
            conn.close()

    def _relay(self, resp):
        """Sends the upstream answer on, streaming its body as it comes."""
        self.send_response_only(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        no_body = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        chunked = not no_body and length is None
        if chunked:
            # unknown length (an SSE stream): re-chunk each piece as soon as it is read
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        if no_body:
            return
        while True:
            piece = resp.read1(65536)
            if not piece:
                break
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                self.wfile.write(piece)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _handle(self):
        try:
            self._proxy()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle


def serve(port, upstreams, host="127.0.0.1", ready=None):
    Handler.front = Front(upstreams)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    if ready is not None:
        ready(server.server_address[1])
    server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--upstream", required=True, help="comma-separated node URLs")
    args = ap.parse_args()
    upstreams = [u.strip() for u in args.upstream.split(",") if u.strip()]

    def ready(port):
        print(f"front: http://{args.host}:{port} -> {', '.join(upstreams)}", flush=True)

    try:
        serve(args.port, upstreams, args.host, ready)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
