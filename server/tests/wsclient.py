"""A minimal RFC 6455 WebSocket client over TLS, standard library only, for
the commy-server end-to-end tests."""
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import time


class Closed(Exception):
    pass


class WS:
    def __init__(self, port, tls=True, cafile=None, host="127.0.0.1", timeout=10, certfile=None, keyfile=None):
        raw = socket.create_connection((host, port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context(cafile=cafile)
            ctx.check_hostname = False  # the demo certificate names localhost; we dial 127.0.0.1
            if cafile is None:
                ctx.verify_mode = ssl.CERT_NONE
            if certfile:
                ctx.load_cert_chain(certfile, keyfile)
            raw = ctx.wrap_socket(raw, server_hostname="localhost")
        self.sock = raw
        self.buf = b""
        self.next_id = 1
        self.pushes = []
        self.close_code = None
        self.deadline = None
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: commy.v1\r\n\r\n" % key)
        self.sock.sendall(req.encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        if " 101 " not in lines[0]:
            raise Closed("handshake refused: " + lines[0])
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        if not any(l.lower().startswith("sec-websocket-accept:") and l.split(":", 1)[1].strip() == want for l in lines):
            raise Closed("bad Sec-WebSocket-Accept")

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed("connection closed")
        self.buf += data

    def _need(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, opcode, payload, fin=True):
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else _mask_fast(payload, mask)
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self.send_frame(1, text.encode() if isinstance(text, str) else text)

    def recv_frame(self):
        """The next data frame as (opcode, bytes); answers pings."""
        msg, op0 = b"", None
        while True:
            b0, b1 = self._need(2)
            op, fin = b0 & 0x0F, b0 & 0x80
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._need(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._need(8))[0]
            payload = self._need(n)
            if op == 9:
                self.send_frame(10, payload)
                if self.deadline and time.time() > self.deadline:
                    raise TimeoutError("no data frame before the deadline")
                continue
            if op == 10:
                continue
            if op == 8:
                self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed("close frame %s %r" % (self.close_code, payload[2:]))
            if op0 is None:
                op0 = op
            msg += payload
            if fin:
                return op0, msg

    def recv(self):
        return json.loads(self.recv_frame()[1])

    def request(self, op, **fields):
        rid = self.next_id
        self.next_id += 1
        fields.update({"v": 1, "id": rid, "op": op})
        self.send_text(json.dumps(fields))
        return self.wait_reply(rid)

    def wait_reply(self, rid):
        while True:
            m = self.recv()
            if "push" in m:
                self.pushes.append(m)
                continue
            if m.get("id") == rid or m.get("id") is None:
                return m

    def wait_push(self, kind, timeout=5.0):
        deadline = time.time() + timeout
        while True:
            for i, p in enumerate(self.pushes):
                if p["push"] == kind:
                    return self.pushes.pop(i)
            left = deadline - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            self.deadline = deadline
            try:
                m = self.recv()
            except (socket.timeout, TimeoutError):
                return None
            finally:
                self.sock.settimeout(10)
                self.deadline = None
            if "push" in m:
                self.pushes.append(m)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _mask_fast(payload, mask):
    n = len(payload)
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big")


def i64(v):
    return {"t": "i64", "v": str(v)}
