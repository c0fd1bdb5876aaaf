"""hello.py: the Python cold-start workload of bench/coldstart.

The smallest faasd function in Python, stdlib only: it serves "Hello, world!" on
127.0.0.1:$PORT, writes /tmp/.lock once the socket listens, and on SIGTERM removes the
lock and stops after the request in progress. Run it with /usr/bin/python3: faasd runs
functions as an unprivileged user, who cannot read an interpreter under /root.
"""

import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

LOCK = "/tmp/.lock"


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the proxy's connection pool expects

    def do_GET(self):
        body = b"Hello, world!\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # no line per request in the daemon's log
        pass


def main():
    # HTTPServer binds and listens in its constructor: the port accepts from here on.
    server = HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Hello)
    with open(LOCK, "w"):
        pass

    def term(*_):
        try:
            os.remove(LOCK)
        except FileNotFoundError:
            pass
        # shutdown() waits for serve_forever, so it cannot run on this (the serving) thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, term)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
