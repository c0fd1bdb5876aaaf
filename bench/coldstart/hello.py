"""hello.py: the Python cold-start workload of bench/coldstart.

The smallest faasd function in Python, stdlib only: it serves "Hello, world!" on
127.0.0.1:$PORT, writes /tmp/.lock once the socket listens, and on SIGTERM removes the
lock and stops.

Each connection gets a thread: the gateway keeps idle keep-alive connections open, and a
single-threaded server would sit on one of them forever, serving nobody else and never
getting back to its loop to see the shutdown.

Run it with /usr/bin/python3: faasd runs functions as an unprivileged user, who cannot
read an interpreter installed under /root (pyenv).
"""

import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    # The constructor binds and listens: the port accepts connections from here on.
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Hello)
    server.daemon_threads = True  # idle keep-alive connections must not hold up the exit
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
