#!/usr/bin/env python3
"""A scripted TLS peer for the TLS fault tests (t/tests/faults_tls.rs), with Python's ssl
module over memory BIOs, so that it can send what no well-behaved TLS stack sends: half a
record, or a reset in the middle of a stream.

    tls-peer.py client HOST:PORT CA CERT KEY FAULT
        Opens a hijacked attach stream through the proxy (101 expected), sends "ping\\n"
        and reads it back (an echoing daemon behind the proxy), then ends with FAULT.
    tls-peer.py server PORTFILE CA CERT KEY FAULT
        A daemon over TLS on 127.0.0.1 (its port written to PORTFILE): answers every
        request with a raw-stream 200 and "hello from the daemon\\n", then ends with
        FAULT.

FAULT: close-notify (a clean TLS half-close, then read to the end), rst (a TCP reset),
truncate-fin (half of a record, then FIN), truncate-rst (half of a record, then a reset).
Prints what it received and "ok" on stdout; any unexpected turn exits non-zero.
"""
import socket
import ssl
import struct
import sys
import threading
import time

LIMIT = 15.0


class Tls:
    def __init__(self, sock, ctx, server_side, hostname=None):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=server_side,
                                server_hostname=hostname)
        self.sock.settimeout(LIMIT)

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def feed(self):
        data = self.sock.recv(65536)
        if not data:
            self.inc.write_eof()
            return False
        self.inc.write(data)
        return True

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                if not self.feed():
                    raise EOFError("EOF in the handshake")

    def write(self, data):
        self.obj.write(data)
        self.flush()

    def read(self):
        """Some bytes, or b"" at the peer's close_notify or EOF."""
        while True:
            try:
                return self.obj.read(65536)
            except ssl.SSLWantReadError:
                self.flush()
                if not self.feed():
                    try:
                        return self.obj.read(65536)
                    except (ssl.SSLError, ssl.SSLEOFError):
                        return b""
            except ssl.SSLZeroReturnError:
                return b""

    def read_until(self, needle):
        got = b""
        while needle not in got:
            chunk = self.read()
            if not chunk:
                raise EOFError("EOF before %r, got %r" % (needle, got))
            got += chunk
        return got

    def read_to_end(self):
        got = b""
        deadline = time.time() + LIMIT
        while time.time() < deadline:
            try:
                chunk = self.read()
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            got += chunk
        return got

    def send_close_notify(self):
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self.flush()

    def send_half_record(self, size=2000):
        self.obj.write(b"x" * size)
        data = self.out.read()
        self.sock.sendall(data[: len(data) // 2])

    def reset(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def end_with(t, fault):
    if fault == "close-notify":
        t.send_close_notify()
        return t.read_to_end()
    if fault == "rst":
        t.reset()
        return b""
    if fault in ("truncate-fin", "truncate-rst"):
        t.send_half_record()
        if fault == "truncate-rst":
            time.sleep(0.2)
            t.reset()
            return b""
        t.sock.shutdown(socket.SHUT_WR)
        rest = b""
        try:
            while True:
                d = t.sock.recv(65536)
                if not d:
                    break
                rest += d
        except OSError:
            pass
        t.sock.close()
        return rest
    raise SystemExit("unknown fault " + fault)


def client(addr, ca, cert, key, fault):
    host, port = addr.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    sock = socket.create_connection((host, int(port)), timeout=LIMIT)
    t = Tls(sock, ctx, False, host)
    t.handshake()
    t.write(b"POST /containers/x/attach HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n"
            b"Upgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
    head = t.read_until(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit("no 101: %r" % head)
    rest = head.split(b"\r\n\r\n", 1)[1]
    t.write(b"ping\n")
    while b"ping\n" not in rest:
        chunk = t.read()
        if not chunk:
            raise SystemExit("EOF before the echo: %r" % rest)
        rest += chunk
    tail = end_with(t, fault)
    sys.stdout.write("received %r\nok\n" % (rest + tail))


def server(portfile, ca, cert, key, fault):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(lsock.getsockname()[1]))
    import os
    os.rename(portfile + ".tmp", portfile)

    def serve(conn):
        try:
            t = Tls(conn, ctx, True)
            t.handshake()
            t.read_until(b"\r\n\r\n")
            t.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                    b"Api-Version: 1.41\r\n\r\nhello from the daemon\n")
            time.sleep(0.3)
            end_with(t, fault)
        except Exception as e:  # one connection's trouble is not the server's
            sys.stderr.write("connection: %r\n" % e)

    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "client":
        client(*sys.argv[2:7])
    elif role == "server":
        server(*sys.argv[2:7])
    else:
        raise SystemExit(__doc__)
