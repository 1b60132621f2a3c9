"""Shared machinery for the Herald acceptance suite.

Everything a test needs to talk to a real ``herald`` process through an
unmodified Telethon 1.44.0 client lives here:

* :class:`HeraldServer` starts, stops and restarts the binary and reads its log;
* :func:`async_test` runs an ``async def`` test body under ``asyncio.run`` with a
  bounded timeout and disconnects every client the test created;
* :func:`new_client`, :func:`make_user` and :func:`make_account` build clients
  pointed at the server and log them in through the ``--test-phones`` codes;
* :class:`EventCollector` turns Telethon event handlers into awaitable queues;
* the "Groups and channels" section builds basic groups, supergroups and channels, and
  :func:`make_bulk_accounts` makes hundreds of accounts quickly for large-group tests.

Telethon itself is not modified; the one hook is a wrapper that records the
error code and string the server sent on each RPCError (see ``rpc_error_name``).
The file is a plain module (not a conftest) so test modules can import it.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Optional

import pytest
from telethon import TelegramClient, errors, events, functions, types, utils
from telethon.crypto import rsa as telethon_rsa
from telethon.network import mtprotosender as _mtprotosender
from telethon.network import (
    ConnectionTcpAbridged,
    ConnectionTcpFull,
    ConnectionTcpIntermediate,
    ConnectionTcpObfuscated,
)
from telethon.sessions import StringSession

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO_ROOT / "target" / "debug" / "herald"

API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
DC_ID = 1
HOST = "127.0.0.1"

READY_TIMEOUT = 60.0      # seconds to wait for the `ready` log line
STOP_TIMEOUT = 20.0       # seconds a SIGTERM'd server gets to exit
EVENT_TIMEOUT = 10.0      # seconds to wait for one pushed update
TEST_TIMEOUT = 60.0       # default bound on one async test body
DISCONNECT_TIMEOUT = 10.0  # per-client bound on cleanup

TRANSPORTS = [
    ConnectionTcpFull,
    ConnectionTcpAbridged,
    ConnectionTcpIntermediate,
    ConnectionTcpObfuscated,
]
TRANSPORT_IDS = [t.__name__ for t in TRANSPORTS]

_READY_RE = re.compile(r"\bready\b")


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------

class ServerError(RuntimeError):
    """The herald process failed to start, stop or stay up."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def herald_binary() -> Path:
    return Path(os.environ.get("HERALD_BIN", DEFAULT_BINARY))


class HeraldServer:
    """One ``herald serve`` process with its data directory and log file.

    The log (stdout and stderr of every incarnation) is appended to
    ``<data_dir>/herald.log``; :meth:`log_tail` reads it back for failure reports.
    """

    def __init__(self, binary: Path, data_dir: Path, port: int, *,
                 test_phones: bool = True, extra_args: Iterable[str] = (), dc: int = DC_ID):
        self.binary = binary
        self.dc = dc
        self.data_dir = data_dir
        self.port = port
        self.test_phones = test_phones
        self.extra_args = list(extra_args)
        self.log_path = data_dir / "herald.log"
        self.proc: Optional[subprocess.Popen] = None
        self.last_exit_code: Optional[int] = None
        self.crashes: list[int] = []  # exit codes of unexpected deaths we recovered from

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def launch(cls, name: str = "herald", *, test_phones: bool = True,
               extra_args: Iterable[str] = (), dc: int = DC_ID) -> "HeraldServer":
        """A started server on a fresh temporary data directory and a free port.

        ``test_phones=False`` leaves out ``--test-phones``; ``extra_args`` are appended to
        the ``serve`` command line (e.g. ``["--log-codes"]``); ``dc`` is the DC id the
        server presents (kurigram assumes 2 for a new session).
        """
        binary = herald_binary()
        if not binary.is_file():
            pytest.fail(
                f"herald binary not found at {binary}; build it with `cargo build` "
                f"or point HERALD_BIN at it",
                pytrace=False,
            )
        data_dir = Path(tempfile.mkdtemp(prefix=f"{name}-acceptance-"))
        server = cls(binary, data_dir, free_port(), test_phones=test_phones, extra_args=extra_args, dc=dc)
        server.start()
        return server

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def serve_argv(self) -> list[str]:
        """The ``herald serve`` command line this server runs with."""
        argv = [
            str(self.binary), "serve",
            "--data-dir", str(self.data_dir),
            "--listen", self.address,
            "--dc", str(self.dc),
        ]
        if self.test_phones:
            argv.append("--test-phones")
        return argv + self.extra_args

    def env(self) -> dict:
        """The environment the binary runs with (the caller's, minus settings that would
        turn on test phones or code logging behind the command line's back)."""
        env = dict(os.environ)
        env.setdefault("NO_COLOR", "1")
        env.setdefault("RUST_BACKTRACE", "1")
        if not self.test_phones:
            env.pop("HERALD_TEST_PHONES", None)
        if "--log-codes" not in self.extra_args:
            env.pop("HERALD_LOG_CODES", None)
        return env

    def start(self) -> None:
        if self.is_running():
            raise ServerError("herald is already running")
        offset = self.log_size()
        with open(self.log_path, "ab") as log:
            log.write(f"=== acceptance harness: starting herald on {self.address} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.serve_argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env(),
            )
        self._wait_ready(offset)

    def _wait_ready(self, offset: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if any(_READY_RE.search(line) for line in self.log_text(offset).splitlines()):
                return
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise ServerError(
                    f"herald exited with code {code} before logging `ready`\n"
                    f"{self.log_tail(since=offset)}"
                )
            time.sleep(0.05)
        self.stop(kill9=True)
        raise ServerError(
            f"herald did not log `ready` within {READY_TIMEOUT:.0f}s\n{self.log_tail(since=offset)}"
        )

    def stop(self, kill9: bool = False) -> Optional[int]:
        """Stop the process (SIGTERM, or SIGKILL when ``kill9``) and return its exit code.

        A SIGTERM that does not end the process within STOP_TIMEOUT is a failure:
        the process is then killed and :class:`ServerError` raised.
        """
        if self.proc is None:
            return self.last_exit_code
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill9 else signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.last_exit_code = proc.returncode
                raise ServerError(f"herald ignored SIGTERM for {STOP_TIMEOUT:.0f}s")
        self.last_exit_code = proc.returncode
        return self.last_exit_code

    def restart(self, kill9: bool = False) -> Optional[int]:
        """Stop (SIGTERM or SIGKILL) and start again on the same port and data dir.

        Returns the exit code of the stopped process.
        """
        code = self.stop(kill9=kill9)
        self.start()
        return code

    def exit_status(self) -> str:
        if self.proc is not None and self.proc.poll() is not None:
            return f"exited with code {self.proc.returncode}"
        return f"stopped, last exit code {self.last_exit_code}"

    def ensure_running(self) -> None:
        """Restart a server that died on its own, remembering the crash."""
        if self.proc is not None and self.proc.poll() is not None:
            self.crashes.append(self.proc.returncode)
            self.proc = None
            self.start()

    def cleanup(self, keep_data: bool) -> None:
        try:
            self.stop()
        finally:
            if not keep_data:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- files -------------------------------------------------------------------------------

    @property
    def pubkey_path(self) -> Path:
        return self.data_dir / "server.pub.pem"

    @property
    def pubkey(self) -> str:
        """The server's RSA public key, PKCS#1 PEM, as written on first start."""
        return self.pubkey_path.read_text()

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 150, since: int = 0) -> str:
        text = self.log_text(since).splitlines()
        return "\n".join(text[-lines:])


# --------------------------------------------------------------------------------------------
# Running async tests
# --------------------------------------------------------------------------------------------

# Clients created by the test currently running; all are disconnected when it ends.
_test_clients: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar(
    "herald_test_clients", default=None
)


def async_test(fn: Optional[Callable[..., Awaitable[Any]]] = None, *, timeout: float = TEST_TIMEOUT):
    """Run an ``async def`` test under ``asyncio.run``.

    The body is bounded by ``timeout`` seconds (pytest-timeout is set a little
    higher as a backstop), and every client made through :func:`new_client`
    during the test is disconnected afterwards, pass or fail.
    Usable as ``@async_test`` or ``@async_test(timeout=180)``.
    """

    def decorate(fn):
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("@async_test needs an async def function")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            async def main():
                clients: list = []
                token = _test_clients.set(clients)
                try:
                    await asyncio.wait_for(fn(*args, **kwargs), timeout)
                except asyncio.TimeoutError:
                    raise AssertionError(
                        f"test body did not finish within {timeout:.0f}s"
                    ) from None
                finally:
                    _test_clients.reset(token)
                    await asyncio.gather(*(disconnect_quietly(c) for c in clients))

            asyncio.run(main())

        return pytest.mark.timeout(timeout + 2 * DISCONNECT_TIMEOUT)(wrapper)

    return decorate(fn) if fn is not None else decorate


async def disconnect_quietly(client: TelegramClient) -> None:
    try:
        if client.is_connected():
            await asyncio.wait_for(client.disconnect(), DISCONNECT_TIMEOUT)
    except Exception:  # cleanup must not mask the test's own outcome
        pass


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------

_registered_keys: set[str] = set()
_used_phones: set[str] = set()


def register_server_key(server: HeraldServer) -> None:
    """Make Telethon trust the server's RSA key (module-global, once per key)."""
    pem = server.pubkey
    if pem not in _registered_keys:
        telethon_rsa.add_key(pem, old=False)
        _registered_keys.add(pem)


def new_client(server: HeraldServer, session=None, transport=ConnectionTcpFull, **kwargs) -> TelegramClient:
    """A client (not yet connected) pointed at ``server``, tracked for cleanup.

    ``session`` defaults to a fresh :class:`StringSession`; pass
    ``StringSession(saved)`` to reuse a saved key, or a file path for a SQLite
    session (which, unlike a StringSession, also persists the update state).
    """
    register_server_key(server)
    if session is None:
        session = StringSession()
    TelegramClient._config = None  # class-wide help.getConfig cache; never reuse a stale one
    options = dict(
        connection=transport,
        retry_delay=0,
        connection_retries=3,
        timeout=10,
        raise_last_call_error=True,
    )
    options.update(kwargs)
    client = TelegramClient(session, API_ID, API_HASH, **options)
    client.session.set_dc(DC_ID, HOST, server.port)
    clients = _test_clients.get()
    if clients is not None:
        clients.append(client)
    return client


async def connect(server: HeraldServer, session=None, transport=ConnectionTcpFull, **kwargs) -> TelegramClient:
    client = new_client(server, session, transport, **kwargs)
    await client.connect()
    return client


async def connect_from(server: HeraldServer, local_addr: str, session=None,
                       transport=ConnectionTcpFull, **kwargs) -> TelegramClient:
    """Like :func:`connect`, with the client's socket bound to ``local_addr`` (e.g.
    ``127.0.0.2``) so the server sees a different source address; any 127.x address
    reaches the server on Linux loopback."""
    return await connect(server, session, transport, local_addr=local_addr, **kwargs)


def random_phone() -> str:
    """A phone of the ``--test-phones`` form 99966XYYYY, unique within this process."""
    while True:
        phone = f"99966{random.randint(1, 9)}{random.randint(0, 9999):04d}"
        if phone not in _used_phones:
            _used_phones.add(phone)
            return phone


def code_for(phone: str) -> str:
    """The login code ``--test-phones`` accepts: digit X of 99966XYYYY, five times."""
    assert re.fullmatch(r"99966[1-9]\d{4}", phone), phone
    return phone[5] * 5


def wrong_code_for(phone: str) -> str:
    digit = "1" if phone[5] != "1" else "2"
    return digit * 5


async def login(client: TelegramClient, phone: str, first_name: str = "Test", last_name: str = "") -> types.User:
    """Log ``client`` in as ``phone``, signing up first when the number is new."""
    await client.send_code_request(phone)
    try:
        return await client.sign_in(phone, code_for(phone))
    except errors.PhoneNumberUnoccupiedError:
        pass
    # Telethon's sign_up() is disabled in 1.44; call auth.signUp directly with the
    # hash send_code_request cached, then run the same bookkeeping sign_in does
    # (self-user cache, updates.getState + getDifference).
    result = await client(functions.auth.SignUpRequest(
        phone_number=phone,
        phone_code_hash=client._phone_code_hash[phone],
        first_name=first_name,
        last_name=last_name,
    ))
    assert isinstance(result, types.auth.Authorization), result
    return await client._on_login(result.user)


async def make_user(server: HeraldServer, first_name: str, transport=ConnectionTcpFull,
                    session=None, **kwargs) -> tuple[TelegramClient, str]:
    """A connected client logged in as a brand-new account; returns (client, phone)."""
    client = await connect(server, session, transport, **kwargs)
    phone = random_phone()
    await login(client, phone, first_name)
    return client, phone


@dataclasses.dataclass
class Account:
    """A logged-in client plus what tests usually need to know about its user."""
    client: TelegramClient
    phone: str
    me: types.User
    username: Optional[str] = None

    @property
    def id(self) -> int:
        return self.me.id


def random_username(prefix: str = "u") -> str:
    return f"{prefix}{random.getrandbits(48):012x}"


async def set_username(client: TelegramClient, prefix: str = "u") -> str:
    username = random_username(prefix)
    user = await client(functions.account.UpdateUsernameRequest(username))
    assert isinstance(user, types.User) and user.username == username, user
    return username


async def make_account(server: HeraldServer, first_name: str, transport=ConnectionTcpFull,
                       session=None, username: bool = True, **kwargs) -> Account:
    client, phone = await make_user(server, first_name, transport, session, **kwargs)
    name = await set_username(client, first_name.lower()) if username else None
    me = await client.get_me()
    assert me is not None and me.phone == phone, me
    return Account(client, phone, me, name)


async def make_pair(server: HeraldServer, transport=ConnectionTcpFull, **kwargs) -> tuple[Account, Account]:
    """Two fresh accounts, alice and bob, each with a username."""
    alice = await make_account(server, "Alice", transport, **kwargs)
    bob = await make_account(server, "Bob", transport, **kwargs)
    return alice, bob


async def peer_of(viewer: Account, other: Account):
    """``other`` as an InputPeer usable by ``viewer`` (resolved by username)."""
    assert other.username, "peer_of needs the other account to have a username"
    peer = await viewer.client.get_input_entity(other.username)
    assert isinstance(peer, types.InputPeerUser) and peer.user_id == other.id, peer
    return peer


@dataclasses.dataclass
class Chat:
    """A private chat between two fresh accounts, with each side's view of the other."""
    alice: Account
    bob: Account
    to_bob: types.InputPeerUser    # bob, as alice addresses him
    to_alice: types.InputPeerUser  # alice, as bob addresses her


async def make_chat(server: HeraldServer, transport=ConnectionTcpFull, **kwargs) -> Chat:
    alice, bob = await make_pair(server, transport, **kwargs)
    return Chat(alice, bob, await peer_of(alice, bob), await peer_of(bob, alice))


def random_id() -> int:
    return random.randrange(-2**63, 2**63)


async def send_raw(client: TelegramClient, peer, text: str, rid: Optional[int] = None, **kwargs):
    """``messages.sendMessage`` without Telethon's send_message conveniences."""
    return await client(functions.messages.SendMessageRequest(
        peer=peer, message=text, random_id=random_id() if rid is None else rid, **kwargs))


def sent_message_id(result, rid: Optional[int] = None) -> int:
    """The new message id from a raw sendMessage result (any of its valid shapes)."""
    if isinstance(result, types.UpdateShortSentMessage):
        return result.id
    updates = getattr(result, "updates", None)
    if updates is None and isinstance(result, types.UpdateShort):
        updates = [result.update]
    for update in updates or []:
        if isinstance(update, types.UpdateMessageID) and (rid is None or update.random_id == rid):
            return update.id
    for update in updates or []:
        if isinstance(update, types.UpdateNewMessage):
            return update.message.id
    raise AssertionError(f"no message id in sendMessage result {result!r}")


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

class EventCollector:
    """Queue every event ``builder`` matches on ``client``; await them with :meth:`next`."""

    def __init__(self, client: TelegramClient, builder):
        self.client = client
        self.builder = builder
        self.queue: asyncio.Queue = asyncio.Queue()
        client.add_event_handler(self._on_event, builder)

    async def _on_event(self, event) -> None:
        self.queue.put_nowait(event)

    async def next(self, predicate: Callable[[Any], bool] = lambda e: True,
                   what: str = "an event", timeout: float = EVENT_TIMEOUT):
        """The next queued event satisfying ``predicate`` (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                event = await asyncio.wait_for(self.queue.get(), remaining)
            except asyncio.TimeoutError:
                break
            if predicate(event):
                return event
        raise AssertionError(
            f"no {type(self.builder).__name__} event within {timeout:.0f}s: {what}")

    async def take(self, count: int, what: str, timeout: float = EVENT_TIMEOUT) -> list:
        """Exactly the next ``count`` events, all within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        events = []
        while len(events) < count:
            remaining = deadline - time.monotonic()
            try:
                events.append(await asyncio.wait_for(self.queue.get(), max(remaining, 0)))
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"only {len(events)} of {count} events within {timeout:.0f}s: {what}"
                ) from None
        return events

    def drain(self) -> list:
        items = []
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items

    def close(self) -> None:
        self.client.remove_event_handler(self._on_event, self.builder)


# Telethon turns a known rpc_error string into a class whose .message and .code are
# class-level generics (BAD_REQUEST, 400), losing what the server actually sent.
# Wrap the one conversion point to keep the wire values on the exception too;
# behaviour is otherwise unchanged.
_rpc_message_to_error = _mtprotosender.rpc_message_to_error


def _keep_wire_error(rpc_error, request):
    exc = _rpc_message_to_error(rpc_error, request)
    exc.wire_code = rpc_error.error_code
    exc.wire_message = rpc_error.error_message
    return exc


_mtprotosender.rpc_message_to_error = _keep_wire_error


def rpc_error_name(exc: errors.RPCError) -> str:
    """The error string the server sent (``PEER_ID_INVALID``)."""
    return getattr(exc, "wire_message", None) or exc.message


def rpc_error_code(exc: errors.RPCError) -> Optional[int]:
    """The error code the server sent (400, 401, ...)."""
    return getattr(exc, "wire_code", None) or exc.code


def expect_rpc_error(messages: Iterable[str], code: Optional[int] = None):
    """``pytest.raises`` for an RPCError whose message is one of ``messages``."""
    return _RpcErrorExpectation(set(messages), code)


class _RpcErrorExpectation:
    def __init__(self, messages: set, code: Optional[int]):
        self.messages = messages
        self.code = code
        self.error: Optional[errors.RPCError] = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            raise AssertionError(f"expected an RPCError in {sorted(self.messages)}, got success")
        if not isinstance(exc, errors.RPCError):
            return False  # let unrelated exceptions propagate unchanged
        self.error = exc
        name, code = rpc_error_name(exc), rpc_error_code(exc)
        assert name in self.messages, f"expected one of {sorted(self.messages)}, got {code} {name}"
        if self.code is not None:
            assert code == self.code, f"expected {self.code} {name}, got code {code}"
        return True


def message_ids(messages) -> list[int]:
    return [m.id for m in messages if not isinstance(m, types.MessageEmpty)]


async def send_and_receive(client: TelegramClient, peer, text: str, inbox: EventCollector, **kwargs):
    """``client.send_message`` and wait for ``inbox`` to see it; returns (sent, received).

    ``inbox`` must collect ``events.NewMessage`` on the receiving client.
    """
    sent = await client.send_message(peer, text, **kwargs)
    assert sent is not None and sent.out, sent
    event = await inbox.next(lambda e: e.message.message == sent.message,
                             what=f"delivery of {sent.message[:40]!r}")
    return sent, event.message


async def offline_receiver(server: HeraldServer, bob_session=None) -> tuple[Account, Account, types.InputPeerUser]:
    """alice, and bob who has received and read one message from her, then disconnected.

    Returns (alice, bob, to_bob). Bob's account pts is non-zero when he leaves:
    Telethon treats a stored pts of 0 as "no state" and would not catch up.
    """
    alice = await make_account(server, "Alice")
    bob = await make_account(server, "Bob", session=bob_session)
    to_bob = await peer_of(alice, bob)
    inbox = EventCollector(bob.client, events.NewMessage(incoming=True))
    _, got = await send_and_receive(alice.client, to_bob, "before going offline", inbox)
    await bob.client.send_read_acknowledge(await got.get_input_chat(), max_id=got.id)
    await bob.client.disconnect()
    return alice, bob, to_bob


async def send_many(client: TelegramClient, peer, prefix: str, count: int) -> list[str]:
    """``count`` raw sends, each awaited (acknowledged) before the next; returns the texts."""
    texts = [f"{prefix} {i:03d}" for i in range(count)]
    for text in texts:
        await send_raw(client, peer, text)
    return texts


# --------------------------------------------------------------------------------------------
# Groups and channels
# --------------------------------------------------------------------------------------------
# Access hashes are per viewer (as on Telegram): an entity is always addressed through what the
# acting account itself received, never through an object another account's client returned.

async def make_accounts(server: HeraldServer, *first_names: str, **kwargs) -> list[Account]:
    """One fresh account (with a username) per first name, logged in concurrently."""
    return list(await asyncio.gather(*(make_account(server, n, **kwargs) for n in first_names)))


async def input_user(viewer: Account, other: Account) -> types.InputUser:
    """``other`` as an InputUser usable by ``viewer`` (resolved by username)."""
    peer = await peer_of(viewer, other)
    return types.InputUser(peer.user_id, peer.access_hash)


def updates_of(result):
    """The Updates of a result: messages.invitedUsers (createChat, inviteToChannel, ...) and,
    in layer 227, messages.chatInviteJoinResultOk (importChatInvite, joinChannel) wrap them."""
    wrapped = (types.messages.InvitedUsers, types.messages.ChatInviteJoinResultOk)
    return result.updates if isinstance(result, wrapped) else result


def _chats_of(result) -> list:
    return list(getattr(updates_of(result), "chats", None) or [])


def chat_in(result, chat_id: Optional[int] = None) -> types.Chat:
    """The one basic group (with ``chat_id`` when given) among a result's chats."""
    found = [c for c in _chats_of(result)
             if isinstance(c, types.Chat) and (chat_id is None or c.id == chat_id)]
    assert len(found) == 1, f"expected one basic group in {result!r}"
    return found[0]


def channel_in(result, channel_id: Optional[int] = None) -> types.Channel:
    """The one channel (with ``channel_id`` when given) among a result's chats."""
    found = [c for c in _chats_of(result)
             if isinstance(c, types.Channel) and (channel_id is None or c.id == channel_id)]
    assert len(found) == 1, f"expected one channel in {result!r}"
    return found[0]


def channel_peer_id(channel_id: int) -> int:
    """The marked id Telethon gives a channel (``event.chat_id``, ``dialog.id``): -100...id."""
    return utils.get_peer_id(types.PeerChannel(channel_id))


async def create_group(owner: Account, members: Iterable[Account], title: str) -> types.Chat:
    """A basic group made by ``owner`` with ``members`` (messages.createChat)."""
    users = [await input_user(owner, m) for m in members]
    result = await owner.client(functions.messages.CreateChatRequest(users=users, title=title))
    assert isinstance(result, types.messages.InvitedUsers), result
    assert not result.missing_invitees, result.missing_invitees
    return chat_in(result)


async def create_channel(client: TelegramClient, title: str, *, megagroup: bool = True,
                         about: str = "") -> types.Channel:
    """A supergroup (``megagroup=True``) or broadcast channel made by ``client``'s account."""
    result = await client(functions.channels.CreateChannelRequest(
        title=title, about=about,
        megagroup=True if megagroup else None, broadcast=None if megagroup else True))
    assert isinstance(result, (types.Updates, types.UpdatesCombined)), result
    return channel_in(result)


async def invite_to_channel(owner: Account, channel, members: Iterable[Account]):
    """channels.inviteToChannel of ``members`` by ``owner``; returns the messages.invitedUsers."""
    users = [await input_user(owner, m) for m in members]
    result = await owner.client(functions.channels.InviteToChannelRequest(channel, users))
    assert isinstance(result, types.messages.InvitedUsers), result
    assert not result.missing_invitees, result.missing_invitees
    return result


async def make_public(client: TelegramClient, channel, prefix: str = "ch") -> str:
    """Give ``channel`` a fresh public username (channels.updateUsername); returns it."""
    name = random_username(prefix)
    assert await client(functions.channels.UpdateUsernameRequest(channel, name)) is True
    return name


async def dialog_for(account: Account, peer_id: int):
    """``account``'s dialog with the marked id ``peer_id`` (Telethon's Dialog), or None."""
    async for dialog in account.client.iter_dialogs():
        if dialog.id == peer_id:
            return dialog
    return None


async def channel_seen_by(account: Account, channel_id: int) -> types.Channel:
    """The channel as ``account`` sees it (with its own access hash), from its dialogs."""
    dialog = await dialog_for(account, channel_peer_id(channel_id))
    assert dialog is not None, f"{account.me.first_name} has no dialog with channel {channel_id}"
    assert isinstance(dialog.entity, types.Channel), dialog.entity
    return dialog.entity


async def raw_history(client: TelegramClient, peer, limit: int = 20):
    """messages.getHistory, newest first, without Telethon's get_messages conveniences."""
    return await client(functions.messages.GetHistoryRequest(
        peer=peer, offset_id=0, offset_date=None, add_offset=0, limit=limit,
        max_id=0, min_id=0, hash=0))


def service_actions(messages, action_type) -> list:
    """The service messages among ``messages`` whose action is an ``action_type``."""
    return [m for m in messages
            if isinstance(m, types.MessageService) and isinstance(m.action, action_type)]


def action_event(action_type, chat_id: Optional[int] = None) -> Callable[[Any], bool]:
    """An :meth:`EventCollector.next` predicate for ``events.ChatAction``: a service message
    whose action is an ``action_type``, in the chat with marked id ``chat_id`` when given."""
    def matches(event) -> bool:
        message = getattr(event, "action_message", None)
        return (message is not None and isinstance(message.action, action_type)
                and (chat_id is None or event.chat_id == chat_id))
    return matches


def participant_user_id(participant) -> int:
    """The user of a ChannelParticipant* (banned and left ones name a peer instead)."""
    user_id = getattr(participant, "user_id", None)
    return user_id if user_id is not None else utils.get_peer_id(participant.peer)


@dataclasses.dataclass
class BulkAccount:
    """An account made by :func:`make_bulk_accounts` (logged out again: it has no client)."""
    id: int
    phone: str
    first_name: str
    username: Optional[str] = None


async def sign_up_raw(client: TelegramClient, phone: str, first_name: str) -> types.User:
    """Sign ``phone`` up with raw auth requests (no Telethon login bookkeeping: no update
    state, no self-user cache), as :func:`login` does underneath."""
    sent = await client(functions.auth.SendCodeRequest(phone, API_ID, API_HASH, types.CodeSettings()))
    if isinstance(sent, types.auth.SentCodeSuccess):
        return sent.authorization.user
    try:
        auth = await client(functions.auth.SignInRequest(
            phone_number=phone, phone_code_hash=sent.phone_code_hash, phone_code=code_for(phone)))
    except errors.PhoneNumberUnoccupiedError:
        auth = types.auth.AuthorizationSignUpRequired()
    if isinstance(auth, types.auth.AuthorizationSignUpRequired):
        auth = await client(functions.auth.SignUpRequest(
            phone_number=phone, phone_code_hash=sent.phone_code_hash,
            first_name=first_name, last_name=""))
    assert isinstance(auth, types.auth.Authorization), auth
    return auth.user


async def make_bulk_accounts(server: HeraldServer, count: int, first_name: str = "Member", *,
                             connections: int = 4, username: bool = False,
                             then: Optional[Callable[[TelegramClient, types.User], Awaitable[Any]]] = None,
                             ) -> list[BulkAccount]:
    """``count`` brand-new accounts, made far faster than with :func:`make_account`.

    :func:`make_account` costs a key exchange, about eight requests and a connection kept open
    per account. Here ``connections`` clients (updates off) each sign up one account after
    another on the same auth key: sendCode, signIn, signUp, then ``account.updateUsername``
    when ``username``, then ``await then(client, user)`` while logged in (e.g. to join a
    channel), then ``auth.logOut``, which leaves the key free for the next sign-up (see
    test_auth.test_log_out_unauthorizes_the_key). First names are ``"<first_name> <index>"``.
    """
    made: list[Optional[BulkAccount]] = [None] * count
    indexes = iter(range(count))  # shared by the workers: each takes the next free index

    async def worker():
        client = await connect(server, receive_updates=False)
        for i in indexes:
            phone, name = random_phone(), f"{first_name} {i}"
            user = await sign_up_raw(client, phone, name)
            uname = None
            if username:
                uname = random_username("bulk")
                await client(functions.account.UpdateUsernameRequest(uname))
            if then is not None:
                await then(client, user)
            assert isinstance(await client(functions.auth.LogOutRequest()), types.auth.LoggedOut)
            made[i] = BulkAccount(user.id, phone, name, uname)
        await disconnect_quietly(client)

    await asyncio.gather(*(worker() for _ in range(min(connections, count))))
    assert all(a is not None for a in made)
    return made
