"""Driving TDLib (`tdjson` 1.8.65, layer 227; Telegram's own client core) against Herald.

TDLib has no option for a server's key or address, so, as docs/client-compat.md §6.5 says:
* a private copy of `libtdjson` gets the server's public key in place of the test DCs' key
  (any 2048-bit PKCS#1 PEM with 64-column lines is exactly 425 bytes, so the swap is in
  place), and TDLib runs with `use_test_dc`;
* a SOCKS5 proxy (`addProxy`) sends each of TDLib's connections to the server, whatever
  address it dials.
The library is not otherwise changed.
"""

from __future__ import annotations

import ctypes
import json
import socket
import tempfile
import threading
import time
from pathlib import Path

import tdjson  # the pinned wheel ships the library next to its package

TEST_DC_KEY_HEAD = b"-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEAyMEdY1aR"


def library_with_key(pem: bytes) -> Path:
    """A copy of libtdjson whose test-DC key is `pem` (425 bytes without the final newline)."""
    pem = pem.rstrip(b"\n")
    assert len(pem) == 425, len(pem)
    libs = Path(tdjson.__file__).resolve().parent.parent / "tdjson.libs"
    (original,) = list(libs.glob("libtdjson-*.so*"))
    data = bytearray(original.read_bytes())
    at = data.find(TEST_DC_KEY_HEAD)
    assert at >= 0, "the test DCs' key was not found in libtdjson"
    data[at:at + 425] = pem
    copy = Path(tempfile.mkdtemp()) / original.name
    copy.write_bytes(data)
    return copy


class Socks5ToServer:
    """A SOCKS5 proxy without authentication whose every CONNECT goes to `port` on loopback."""

    def __init__(self, port: int):
        self.target = port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(32)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        try:
            conn.recv(262)
            conn.sendall(b"\x05\x00")
            conn.recv(262)
            upstream = socket.create_connection(("127.0.0.1", self.target))
            conn.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
        except OSError:
            conn.close()
            return
        for a, b in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.listener.close()


class TdClient:
    """One TDLib client: JSON requests in, updates and answers out (`td_receive`). The
    library is loaded once per process, with the key of the first server it was made for."""

    _lib = None

    def __init__(self, library: Path, proxy_port: int, *, use_pfs: bool):
        if TdClient._lib is None:
            lib = ctypes.CDLL(str(library))
            lib.td_create_client_id.restype = ctypes.c_int
            lib.td_send.argtypes = [ctypes.c_int, ctypes.c_char_p]
            lib.td_receive.argtypes = [ctypes.c_double]
            lib.td_receive.restype = ctypes.c_char_p
            lib.td_execute.argtypes = [ctypes.c_char_p]
            lib.td_execute.restype = ctypes.c_char_p
            lib.td_execute(json.dumps({"@type": "setLogVerbosityLevel", "new_verbosity_level": 0}).encode())
            TdClient._lib = lib
        self.lib = TdClient._lib
        self.id = self.lib.td_create_client_id()
        self.proxy_port = proxy_port
        self.use_pfs = use_pfs
        self.database = tempfile.mkdtemp()
        self.events: list[dict] = []
        self.next_extra = 0
        self.send({"@type": "getOption", "name": "version"})

    def send(self, query: dict):
        self.lib.td_send(self.id, json.dumps(query).encode())

    def pump(self, until, timeout: float = 30.0):
        """Receives until `until(event)` is true for an event of this client; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            raw = self.lib.td_receive(0.5)
            if not raw:
                continue
            event = json.loads(raw)
            if event.get("@client_id") != self.id:
                continue
            self.events.append(event)
            self._react(event)
            if until(event):
                return event
        raise TimeoutError("TDLib did not get there in time: " + json.dumps(self.events[-5:])[:2000])

    def call(self, query: dict, timeout: float = 30.0) -> dict:
        self.next_extra += 1
        extra = f"q{self.next_extra}"
        self.send({**query, "@extra": extra})
        answer = self.pump(lambda e: e.get("@extra") == extra, timeout)
        assert answer.get("@type") != "error", answer
        return answer

    def _react(self, event: dict):
        """Answers what TDLib asks for while logging in."""
        if event.get("@type") != "updateAuthorizationState":
            return
        state = event["authorization_state"]["@type"]
        if state == "authorizationStateWaitTdlibParameters":
            if self.use_pfs:
                self.send({"@type": "setOption", "name": "use_pfs", "value": {"@type": "optionValueBoolean", "value": True}})
            self.send({
                "@type": "setTdlibParameters", "use_test_dc": True, "database_directory": self.database,
                "use_message_database": False, "use_secret_chats": False, "api_id": 12345,
                "api_hash": "0123456789abcdef0123456789abcdef", "system_language_code": "en",
                "device_model": "tdjson", "application_version": "1.8.65", "use_file_database": False,
            })
            self.send({"@type": "addProxy", "enable": True, "proxy": {
                "@type": "proxy", "server": "127.0.0.1", "port": self.proxy_port, "type": {"@type": "proxyTypeSocks5"}}})

    def log_in(self, phone: str, code: str, first_name: str):
        self.pump(lambda e: _state(e) == "authorizationStateWaitPhoneNumber")
        self.send({"@type": "setAuthenticationPhoneNumber", "phone_number": phone})
        self.pump(lambda e: _state(e) == "authorizationStateWaitCode")
        self.send({"@type": "checkAuthenticationCode", "code": code})
        event = self.pump(lambda e: _state(e) in ("authorizationStateWaitRegistration", "authorizationStateReady"))
        if _state(event) == "authorizationStateWaitRegistration":
            self.send({"@type": "registerUser", "first_name": first_name, "last_name": ""})
            self.pump(lambda e: _state(e) == "authorizationStateReady")

    def close(self):
        self.send({"@type": "close"})
        try:
            self.pump(lambda e: _state(e) == "authorizationStateClosed", timeout=10)
        except TimeoutError:
            pass


def _state(event: dict):
    if event.get("@type") == "updateAuthorizationState":
        return event["authorization_state"]["@type"]
    return None


def text_message(text: str) -> dict:
    return {"@type": "inputMessageText", "text": {"@type": "formattedText", "text": text}}
