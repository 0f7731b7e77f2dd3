#!/usr/bin/env python3
"""A Pod for end-to-end tests: a real HTTP server (and a UDP echo server)
bound to one address, answering every request with its Pod name.

    pod_server.py POD_NAME ADDRESS HTTP_PORT [UDP_PORT]

HTTP GET answers "POD_NAME\n" (GET /status/N answers with status N, and
GET /healthz with $POD_HEALTH_STATUS, default 200: health check tests); a UDP datagram is answered with
"POD_NAME <datagram>".  HTTPServer's server_bind() reverse-resolves its
address (socket.getfqdn), which stalls in a namespace without DNS, so the
plain TCPServer bind is used instead.
"""
import http.server
import os
import socket
import socketserver
import sys
import threading


class PodHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = (self.server.pod_name + "\n").encode()
        if self.path.startswith("/big/"):
            # /big/N: N bytes in full-sized segments (path MTU tests).
            body = b"x" * int(self.path.split("/")[2])
        if self.path.startswith("/status/") or self.path == "/healthz":
            # /status/N: answers with HTTP status N; /healthz with
            # $POD_HEALTH_STATUS (health check tests).
            status = (self.path.split("/")[2] if self.path.startswith("/status/")
                      else os.environ.get("POD_HEALTH_STATUS", "200"))
            self.send_response(int(status))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/slow/"):
            # /slow/N: a long-lived response, dribbled one line a second.
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            for _ in range(int(self.path.split("/")[2])):
                self.wfile.write(body)
                self.wfile.flush()
                threading.Event().wait(1)
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class PodHttpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class PodHttp6Server(PodHttpServer):
    address_family = socket.AF_INET6


def family_of(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def serve_udp(pod_name, address, port):
    sock = socket.socket(family_of(address), socket.SOCK_DGRAM)
    sock.bind((address, port))
    while True:
        data, peer = sock.recvfrom(65535)  # whole datagrams, fragmented or not
        sock.sendto(pod_name.encode() + b" " + data, peer)


def main():
    pod_name, address, http_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:
        threading.Thread(target=serve_udp, args=(pod_name, address, int(sys.argv[4])),
                         daemon=True).start()
    server_class = PodHttp6Server if family_of(address) == socket.AF_INET6 else PodHttpServer
    server = server_class((address, http_port), PodHandler)
    server.pod_name = pod_name
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
