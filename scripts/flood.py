#!/usr/bin/env python3
"""Herald flood benchmark: how does a legitimate client fare while one address attacks?

This is a standalone benchmark, not part of the test suite. It starts its own `herald serve`
(binary from $HERALD_BIN, else target/release/herald, else target/debug/herald) on a free
port of 127.0.0.1 with --test-phones, and for each scenario:

  1. starts a fresh server (an empty data directory: the server generates its own RSA key,
     which the script then trusts) and logs in one legitimate account from 127.0.0.1 with a
     test phone (99966XYYYY, code XXXXX);
  2. BASELINE on the idle server, from 127.0.0.1:
       - handshake: the time a fresh Telethon client takes to connect() (TCP, the whole key
         exchange, initConnection/help.getConfig, users.getUsers) -- the median of --handshakes;
       - resume: an existing logged-in key reconnecting with a new session id (the "app
         restarted" path) -- successes and failures only;
       - send: latency of --sends sequential send_message('me', ...) from the already
         connected, logged-in client -- p50 and p99;
  3. starts the ATTACK from 127.0.0.2 in a separate process (so the attacker's CPU work does
     not run in the legit client's event loop), waits until it has ramped up, measures the
     same figures again while it runs, then stops it;
  4. reports the attack/baseline ratio, what the attacker observed, and the server's RSS,
     CPU, open fds, database and log growth.

Scenarios (each bounded in count and time; each stops by itself):

  conns       Connection exhaustion. Up to --conns (default 12000) TCP connections, each sends
              the intermediate tag 0xeeeeeeee and one valid plain req_pq_multi frame (so it
              looks like a client starting a key exchange, not a slowloris) and then holds the
              socket open; a connection the server closes is re-opened after --reopen-delay s.
              Without per-address limits one address can take the server's whole connection
              cap, and then the legit client's *fresh* connections fail (its already open
              connection keeps working). With them, the attacker's excess connections are
              refused (-429 / closed within 1 s) and the legit figures stay near 1.0x.
  partial     Memory exhaustion with half-sent frames. Up to --partial (default 2000)
              connections, each sends the tag, the length of a 1 MiB frame and 1 MiB - 1 bytes
              of body, then stalls. A server that buffers every partial frame grows by ~1 MiB
              per connection: watch RSS. Stalled connections are closed by the server's frame
              deadlines and re-opened by the attacker (--attack-min-duration 15 shows that).
              The attacker stops opening connections if this machine's MemAvailable drops
              below --mem-floor-mb.
  handshakes  CPU exhaustion with key exchanges (RSA decryption and 2048-bit DH on the
              server). --hs-clients (default 50) concurrent Telethon key exchanges
              (authenticator.do_authentication over ConnectionTcpFull, one per connection) in a
              loop for at least --hs-duration (default 20) s. Reports completed exchanges/s.
              The Python attacker needs CPU too: on a small machine it may be the bottleneck,
              so read exchanges/s together with the attacker's CPU figure.
  sessions    Session-registry exhaustion. --keys (default 200) fresh auth keys, each opening
              --sessions-per-key (default 64) sessions: an encrypted ping per new session id on
              the key's connection (the server keeps a session per (key, session_id), with its
              replay window). A registry bounded only globally and per key (HEAD: 64 per key,
              100 000 in all, -429 to new sessions when full of recent ones) is not filled by
              200 x 64; use --keys 1600 to try. After the attack the legit client must still
              connect (no -429), resume its logged-in key and send.
  sendcode    Login-code flood. auth.sendCode for random non-test numbers (1555xxxxxxx) from
              --sendcode-clients Telethon clients with 8 requests in flight each, for at least
              --sendcode-duration (default 10) s. Counts successes vs FLOOD_WAIT and reports the
              growth of herald.db (+ -wal) and of the server log: every accepted code is a row
              (and, on a real deployment, an SMS).

Attack traffic always comes from 127.0.0.2 and legit traffic from 127.0.0.1; nothing leaves
127.0.0.0/8. Raw sockets use the intermediate transport; a transport error is a 4-byte frame
whose payload is the little-endian int32 code (-429 flood, -404 unknown key).

Reading the results
  * "ratio" is attack / baseline (1.0x = unaffected; 3.0x = three times slower). A ratio is
    computed from the successful samples only, so always read it with the failure counts: a
    scenario where every fresh handshake failed shows "FAILED" and the failure kinds.
  * "legit failures" lists what went wrong for the legit client under attack: handshake (hs),
    resume, send. Any entry there is a denial of service for a legitimate user.
  * The attacker line shows how the server treated the attacking address: connections made,
    answered, closed by the server (and their median lifetime), transport -429s received,
    peak simultaneously open. A server with per-address limits should keep the attacker's
    answered / peak-open / accepted counts small (its -429 and closed counts grow instead)
    and the legit figures close to 1.0x with no legit failures.
  * The server line: RSS before -> peak during the attack, server CPU during the attack
    (100% = one core), peak open fds, database and log growth.
  * Attacker, server and legit client share this machine's CPUs, so absolute numbers depend on
    the machine (and a debug build is much slower than release). Compare runs of different
    server versions on the same machine and build profile.

Usage
  scripts/flood.py                        all scenarios, full sizes (several minutes)
  scripts/flood.py --quick                small sizes, a smoke run of under a minute
  scripts/flood.py --scenario conns partial --conns 5000
Output: progress on stderr; one JSON line per scenario (as each finishes) and the table at
the end on stdout. Uses only the standard library and Telethon, from .venv-acceptance (created
if missing; the script re-executes itself with that interpreter).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV = REPO_ROOT / ".venv-acceptance"
REQUIREMENTS = REPO_ROOT / "tests" / "acceptance" / "requirements.txt"


def _ensure_venv() -> None:
    """Re-exec under .venv-acceptance (creating it like scripts/test.sh) unless Telethon is here."""
    try:
        import telethon  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("HERALD_FLOOD_REEXEC"):
        sys.exit(f"telethon is not importable from {sys.executable}; check {VENV}")
    import filecmp
    import subprocess
    py = VENV / "bin" / "python"
    stamp = VENV / ".requirements"
    if not py.exists() or not stamp.exists() or not filecmp.cmp(REQUIREMENTS, stamp, shallow=False):
        print(f"flood: creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(REQUIREMENTS)], check=True)
        stamp.write_bytes(REQUIREMENTS.read_bytes())
    os.environ["HERALD_FLOOD_REEXEC"] = "1"
    os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


_ensure_venv()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import collections  # noqa: E402
import errno  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any, Optional  # noqa: E402

from telethon import TelegramClient, errors, functions, types  # noqa: E402
from telethon.crypto import rsa as telethon_rsa  # noqa: E402
from telethon.errors import InvalidBufferError  # noqa: E402
from telethon.network import ConnectionTcpFull, ConnectionTcpIntermediate, authenticator  # noqa: E402
from telethon.network.mtprotoplainsender import MTProtoPlainSender  # noqa: E402
from telethon.network.mtprotostate import MTProtoState  # noqa: E402
from telethon.sessions import StringSession  # noqa: E402
from telethon.tl.core import MessageContainer  # noqa: E402

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
DC_ID = 1
HOST = "127.0.0.1"          # where the server listens
LEGIT_ADDR = "127.0.0.1"    # source address of the legitimate client
ATTACK_ADDR = "127.0.0.2"   # source address of every attacking socket
SCENARIOS = ["conns", "partial", "handshakes", "sessions", "sendcode"]

TAG_INTERMEDIATE = b"\xee\xee\xee\xee"
REQ_PQ_MULTI = 0xBE7E8EF1
PARTIAL_FRAME = 1024 * 1024          # announced length of the never-completed frame
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux value
READY_TIMEOUT = 60.0                  # server start-up
_READY_RE = re.compile(r"\bready\b")

# Sizes: (full, quick). Every one can be overridden on the command line.
DEFAULTS = {
    "handshakes": (5, 3),            # legit fresh connects per measurement
    "sends": (200, 30),              # legit sequential sends per measurement
    "hs_timeout": (20.0, 8.0),       # bound on one legit connect()
    "send_timeout": (10.0, 5.0),     # bound on one legit send
    "measure_budget": (120.0, 20.0),  # bound on the legit sends of one measurement
    "conns": (12000, 300),
    "partial": (2000, 40),
    "hs_clients": (50, 6),
    "hs_duration": (20.0, 4.0),
    "keys": (200, 8),
    "sessions_per_key": (64, 8),
    "sendcode_clients": (4, 2),
    "sendcode_duration": (10.0, 3.0),
    "ramp_timeout": (90.0, 15.0),    # attack ramp-up bound (sessions: x4)
    "scenario_timeout": (900.0, 90.0),  # hard bound on one scenario, start to finish
}
SENDCODE_INFLIGHT = 8                 # concurrent auth.sendCode per attacking client
PROBE_KEYS = 50                       # sessions: keys whose first session is re-checked at the end
CONNECT_PARALLEL = 256                # raw connects in flight while ramping up

def say(msg: str) -> None:
    print(f"[flood {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Small helpers shared by both processes
# --------------------------------------------------------------------------------------------

class Loggers(dict):
    """What Telethon's low-level classes expect as `loggers` (as TelegramClient builds it)."""

    def __missing__(self, key):
        if key.startswith("telethon."):
            key = key.split(".", maxsplit=1)[1]
        return logging.getLogger("telethon").getChild(key)


LOGGERS = Loggers()


def quiet_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    level = logging.WARNING if verbose else logging.CRITICAL
    logging.getLogger("telethon").setLevel(level)
    logging.getLogger("asyncio").setLevel(level)


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    return soft


def kind(e: BaseException) -> str:
    """A short, countable name for an exception."""
    if isinstance(e, InvalidBufferError) and e.code:
        return f"transport -{e.code}"
    if isinstance(e, errors.FloodWaitError):
        return "FLOOD_WAIT"
    if isinstance(e, errors.RPCError):
        return f"rpc {e.code} {e.message}"
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(e, asyncio.IncompleteReadError):
        return "closed by server"
    if isinstance(e, OSError) and e.errno:
        return errno.errorcode.get(e.errno, f"errno {e.errno}")
    text = str(e)
    return f"{type(e).__name__}: {text[:70]}" if text else type(e).__name__


def percentile(xs: list, p: float) -> Optional[float]:
    """Nearest-rank percentile; None for no samples."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def median(xs: list) -> Optional[float]:
    if not xs:
        return None
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def rnd(x: Optional[float], nd: int = 2) -> Optional[float]:
    return None if x is None else round(x, nd)


def mem_available_mb() -> Optional[float]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def proc_rss_mb(pid: int) -> Optional[float]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def proc_cpu_secs(pid: int) -> Optional[float]:
    """utime + stime of a process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def proc_fds(pid: int) -> Optional[int]:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def new_client(port: int, session=None, local: str = LEGIT_ADDR, **kwargs) -> TelegramClient:
    """A Telethon client (not connected) pointed at the server, bound to `local`."""
    TelegramClient._config = None  # class-wide help.getConfig cache; never reuse a stale one
    options = dict(
        connection_retries=0,
        retry_delay=0,
        timeout=10,
        request_retries=1,
        flood_sleep_threshold=0,   # never sleep on FLOOD_WAIT: we want to see it
        local_addr=local,
    )
    options.update(kwargs)
    client = TelegramClient(session if session is not None else StringSession(), API_ID, API_HASH, **options)
    client.session.set_dc(DC_ID, HOST, port)
    return client


async def disconnect_quietly(client: TelegramClient) -> None:
    try:
        if client.is_connected():
            await asyncio.wait_for(client.disconnect(), 5)
    except BaseException:  # noqa: B036 -- cleanup must never raise
        pass


async def close_connection(conn) -> None:
    try:
        await asyncio.wait_for(conn.disconnect(), 3)
    except BaseException:  # noqa: B036
        pass


# --------------------------------------------------------------------------------------------
# Attacker process
#
# The attack runs in a child process (`flood.py --attack-worker '<json>'`) so its CPU work and
# thousands of sockets do not share the legit client's event loop. Protocol on stdout:
#   READY <json>    the ramp-up is done (or timed out); the legit measurement may start
#   RESULT <json>   final statistics, after the parent wrote a line to stdin (or closed it),
#                   or after the worker's own --max-duration bound
# --------------------------------------------------------------------------------------------

class Stats:
    """What the attacker observed; everything is a counter so partial runs still report."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.c: collections.Counter = collections.Counter()
        self.errors: collections.Counter = collections.Counter()
        self.frames: collections.Counter = collections.Counter()   # transport error codes seen
        self.open = 0
        self.peak_open = 0
        self.lifetimes: list[float] = []   # seconds until the server closed a connection
        self.durations: list[float] = []   # seconds per completed operation
        self.notes: list[str] = []

    def opened(self) -> None:
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)

    def error_frame(self, code: int) -> None:
        self.frames[str(code)] += 1

    def error(self, where: str, e: BaseException) -> None:
        k = kind(e)
        if isinstance(e, InvalidBufferError) and e.code:
            self.error_frame(-e.code)
        self.errors[f"{where}: {k}"] += 1

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def snapshot(self) -> dict:
        return {
            "elapsed_s": round(time.monotonic() - self.t0, 2),
            "counts": dict(self.c),
            "errors": dict(self.errors.most_common(12)),
            "error_frames": dict(self.frames),
            "open_now": self.open,
            "peak_open": self.peak_open,
            "server_closed_lifetime_s": {
                "n": len(self.lifetimes),
                "median": rnd(median(self.lifetimes)),
                "within_1s": sum(1 for x in self.lifetimes if x < 1.0),
            },
            "op_ms": {
                "n": len(self.durations),
                "p50": rnd(percentile([d * 1000 for d in self.durations], 50), 1),
                "p99": rnd(percentile([d * 1000 for d in self.durations], 99), 1),
            },
            "notes": self.notes,
        }


class MemGuard:
    """Stops the ramp when this machine is running out of memory (checked at most 2x/s)."""

    def __init__(self, floor_mb: float):
        self.floor_mb = floor_mb
        self.checked = 0.0
        self.low = False

    def is_low(self) -> bool:
        now = time.monotonic()
        if now - self.checked > 0.5:
            self.checked = now
            avail = mem_available_mb()
            self.low = avail is not None and avail < self.floor_mb
        return self.low


async def raw_connect(port: int, timeout: float = 10.0) -> socket.socket:
    """A non-blocking TCP socket from ATTACK_ADDR, connected to the server."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        try:  # let connect() pick the port from the whole 4-tuple space
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        except OSError:
            pass
        sock.bind((ATTACK_ADDR, 0))
        await asyncio.wait_for(loop.sock_connect(sock, (HOST, port)), timeout)
        return sock
    except BaseException:
        sock.close()
        raise


def req_pq_multi_frame() -> bytes:
    """One intermediate-framed plain req_pq_multi: key id 0, msg_id, length 20, body."""
    msg_id = int(time.time() * 2**32) & ~3
    body = struct.pack("<I", REQ_PQ_MULTI) + os.urandom(16)
    payload = struct.pack("<qqi", 0, msg_id, len(body)) + body
    return struct.pack("<I", len(payload)) + payload


async def _gather_until_cancelled(tasks: list) -> None:
    """Await child tasks; when cancelled, cancel them all and wait (bounded) for their cleanup."""
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)


async def attack_raw(p: dict, st: Stats, ready: asyncio.Event) -> None:
    """`conns` and `partial`: N slots, each keeps one raw connection open (re-opening later)."""
    loop = asyncio.get_running_loop()
    n = p["n"]
    partial = p["scenario"] == "partial"
    if partial:
        # tag, then the 4-byte length of a 1 MiB frame, then all but one byte of its body
        head = TAG_INTERMEDIATE + struct.pack("<I", PARTIAL_FRAME)
        body = memoryview(bytes(PARTIAL_FRAME - 1))
    guard = MemGuard(p["mem_floor_mb"])
    gate = asyncio.Semaphore(CONNECT_PARALLEL)
    first_done = 0

    def mark_first():
        nonlocal first_done
        first_done += 1
        if first_done >= n:
            ready.set()

    async def slot(i: int) -> None:
        first = True

        def first_cycle_done() -> None:  # the ramp counts each slot's first attempt once
            nonlocal first
            if first:
                first = False
                mark_first()

        while True:
            if guard.is_low():
                st.c["not_opened_low_memory"] += 1
                st.note(f"stopped opening connections: MemAvailable < {p['mem_floor_mb']} MiB")
                first_cycle_done()
                return
            try:
                async with gate:  # counted once it really connects: queued slots are not attempts
                    st.c["attempts"] += 1
                    sock = await raw_connect(p["port"])
            except (OSError, asyncio.TimeoutError) as e:
                st.error("connect", e)
                first_cycle_done()
                if p["reopen_delay"] < 0:
                    return
                await asyncio.sleep(max(p["reopen_delay"], 0.5))
                continue
            st.c["connected"] += 1
            st.opened()
            opened_at = time.monotonic()
            outcome = None
            try:
                try:
                    if partial:
                        await loop.sock_sendall(sock, head)
                        await loop.sock_sendall(sock, body)
                        st.c["partial_frames_sent"] += 1
                    else:
                        await loop.sock_sendall(sock, TAG_INTERMEDIATE + req_pq_multi_frame())
                        st.c["frames_sent"] += 1
                finally:
                    first_cycle_done()
                # Hold the connection; read (and parse) whatever the server sends.
                buf = bytearray()
                answered = False
                while True:
                    data = await loop.sock_recv(sock, 65536)
                    if not data:
                        outcome = "closed_by_server"
                        break
                    buf += data
                    while len(buf) >= 4:
                        size = int.from_bytes(buf[:4], "little") & 0x7FFFFFFF
                        if len(buf) < 4 + size:
                            break
                        frame = bytes(buf[4:4 + size])
                        del buf[:4 + size]
                        if size == 4:
                            st.error_frame(int.from_bytes(frame, "little", signed=True))
                        elif not answered:
                            answered = True
                            st.c["answered"] += 1
            except (ConnectionResetError, BrokenPipeError):
                outcome = "reset_by_server"
            except OSError as e:
                outcome = f"error {kind(e)}"
            finally:
                st.open -= 1
                sock.close()
            st.c[outcome] += 1
            st.lifetimes.append(time.monotonic() - opened_at)
            if p["reopen_delay"] < 0:
                return
            st.c["reopens"] += 1
            await asyncio.sleep(p["reopen_delay"])

    await _gather_until_cancelled([asyncio.create_task(slot(i)) for i in range(n)])


async def attack_handshakes(p: dict, st: Stats, ready: asyncio.Event) -> None:
    """`handshakes`: C workers, each running complete key exchanges back to back."""

    async def worker() -> None:
        while True:
            conn = ConnectionTcpFull(HOST, p["port"], DC_ID, loggers=LOGGERS, local_addr=(ATTACK_ADDR, 0))
            st.c["attempts"] += 1
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(conn.connect(timeout=10), 15)
                st.c["connected"] += 1
                await asyncio.wait_for(authenticator.do_authentication(MTProtoPlainSender(conn, loggers=LOGGERS)), 30)
                st.c["completed"] += 1
                st.durations.append(time.monotonic() - t0)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # refused, reset, -429, timeout: count and back off a little
                st.error("exchange", e)
                await asyncio.sleep(0.2)
            finally:
                await close_connection(conn)

    async def warmup() -> None:
        await asyncio.sleep(p["warmup"])
        ready.set()

    tasks = [asyncio.create_task(worker()) for _ in range(p["clients"])]
    tasks.append(asyncio.create_task(warmup()))
    await _gather_until_cancelled(tasks)


async def attack_sessions(p: dict, st: Stats, ready: asyncio.Event) -> None:
    """`sessions`: K fresh keys, each opening S sessions (an encrypted ping per session id).

    Afterwards the first session of up to PROBE_KEYS of the earliest keys is pinged again on a
    new connection: a reply announcing new_session_created means the server had forgotten it
    (evicted: the attacker could not pin it), anything else means it was still held.
    """
    gate = asyncio.Semaphore(p["concurrency"])
    probes: list[tuple] = []   # (auth key, time offset, first session id, current salt)

    async def one_key(i: int) -> None:
        async with gate:
            conn = ConnectionTcpIntermediate(HOST, p["port"], DC_ID, loggers=LOGGERS, local_addr=(ATTACK_ADDR, 0))
            st.c["attempts"] += 1
            try:
                try:
                    await asyncio.wait_for(conn.connect(timeout=10), 15)
                    st.c["connected"] += 1
                    t0 = time.monotonic()
                    key, offset = await asyncio.wait_for(
                        authenticator.do_authentication(MTProtoPlainSender(conn, loggers=LOGGERS)), 30)
                    st.durations.append(time.monotonic() - t0)
                    st.c["keys_created"] += 1
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    st.error("key exchange", e)
                    return
                state = MTProtoState(key, LOGGERS)
                state.time_offset = offset
                first_session = None
                for _ in range(p["sessions_per_key"]):
                    state.reset()  # a new random session id on the same key
                    first_session = state.id if first_session is None else first_session
                    st.c["sessions_requested"] += 1
                    # A wrong salt (or a msg_id off by the clock) still creates the session but
                    # leaves it unannounced; resend with what the server said, as a client does.
                    for _attempt in range(3):
                        buf = io.BytesIO()
                        state.write_data_as_message(buf, bytes(functions.PingRequest(random.getrandbits(62))), True)
                        try:
                            await conn.send(state.encrypt_message_data(buf.getvalue()))
                            reply = await asyncio.wait_for(conn.recv(), 10)
                        except asyncio.CancelledError:
                            raise
                        except Exception as e:  # the server closed the connection (or -429'd it)
                            st.error("session", e)
                            return
                        if len(reply) == 4:
                            st.error_frame(int.from_bytes(reply, "little", signed=True))
                            st.c["sessions_refused"] += 1
                            return
                        try:
                            msg = state.decrypt_message_data(reply)
                        except Exception as e:
                            st.error("decrypt", e)
                            break
                        if msg is None:
                            break
                        objs = [m.obj for m in msg.obj.messages] if isinstance(msg.obj, MessageContainer) else [msg.obj]
                        retry = False
                        for obj in objs:
                            if isinstance(obj, types.BadServerSalt):
                                state.salt = obj.new_server_salt
                                retry = True
                            elif isinstance(obj, types.NewSessionCreated):
                                state.salt = obj.server_salt
                                st.c["new_session_created"] += 1
                            elif isinstance(obj, types.Pong):
                                st.c["pongs"] += 1
                            elif isinstance(obj, types.BadMsgNotification):
                                st.c[f"bad_msg_{obj.error_code}"] += 1
                                if obj.error_code in (16, 17):  # msg_id too low / high: re-sync
                                    state.update_time_offset(msg.msg_id)
                                    retry = True
                        if _attempt == 0:
                            st.c["sessions_answered"] += 1
                        if not retry:
                            break
                if first_session is not None and len(probes) < PROBE_KEYS:
                    # state.time_offset, not the handshake's: Telethon re-syncs it from the first
                    # bad_server_salt, and the probe's msg_id must be newer than every one sent here
                    probes.append((key, state.time_offset, first_session, state.salt))
            finally:
                await close_connection(conn)

    async def probe(key, offset, session_id, salt) -> None:
        conn = ConnectionTcpIntermediate(HOST, p["port"], DC_ID, loggers=LOGGERS, local_addr=(ATTACK_ADDR, 0))
        try:
            await asyncio.wait_for(conn.connect(timeout=10), 15)
            state = MTProtoState(key, LOGGERS)
            state.time_offset, state.id, state.salt = offset, session_id, salt
            state._sequence = 8  # above the seq_nos the session already saw (gaps are allowed)
            buf = io.BytesIO()
            state.write_data_as_message(buf, bytes(functions.PingRequest(random.getrandbits(62))), True)
            await conn.send(state.encrypt_message_data(buf.getvalue()))
            reply = await asyncio.wait_for(conn.recv(), 10)
            if len(reply) == 4:
                st.error_frame(int.from_bytes(reply, "little", signed=True))
                st.c["probe_refused"] += 1
                return
            msg = state.decrypt_message_data(reply)
            objs = [] if msg is None else (
                [m.obj for m in msg.obj.messages] if isinstance(msg.obj, MessageContainer) else [msg.obj])
            if p["verbose"]:
                print(f"probe {session_id:x}: {[(type(o).__name__, getattr(o, 'error_code', None)) for o in objs]}",
                      file=sys.stderr)
            if any(isinstance(o, types.NewSessionCreated) for o in objs):
                st.c["probe_forgotten"] += 1      # the server created the session anew
            elif any(isinstance(o, types.Pong) for o in objs):
                st.c["probe_still_held"] += 1     # answered within the existing session
            else:                                 # e.g. bad_msg_notification: no verdict
                st.c["probe_inconclusive"] += 1
                st.note("probe replies: " + ", ".join(sorted({type(o).__name__ for o in objs})))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            st.error("probe", e)
        finally:
            await close_connection(conn)

    await _gather_until_cancelled([asyncio.create_task(one_key(i)) for i in range(p["keys"])])
    for pr in probes:
        await probe(*pr)
    ready.set()


def random_non_test_phone() -> str:
    # 1-555-01xx-style fictional numbers: never 99966XYYYY, so never a --test-phones number
    return "1555" + "".join(random.choice("0123456789") for _ in range(7))


async def attack_sendcode(p: dict, st: Stats, ready: asyncio.Event) -> None:
    """`sendcode`: auth.sendCode for random non-test numbers, as fast as possible."""
    clients: list[TelegramClient] = []

    async def pump(client: TelegramClient) -> None:
        while True:
            if not client.is_connected():
                try:
                    await asyncio.wait_for(client.connect(), 15)
                    st.c["reconnects"] += 1
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    st.error("reconnect", e)
                    await asyncio.sleep(0.5)
                    continue
            req = functions.auth.SendCodeRequest(random_non_test_phone(), API_ID, API_HASH, types.CodeSettings())
            st.c["requests"] += 1
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(client(req), 15)
                st.c["ok"] += 1
                st.durations.append(time.monotonic() - t0)
            except asyncio.CancelledError:
                raise
            except errors.FloodWaitError:
                st.c["flood_wait"] += 1
            except Exception as e:
                st.error("sendCode", e)
                if not isinstance(e, errors.RPCError):
                    await asyncio.sleep(0.2)

    try:
        for _ in range(p["clients"]):
            c = new_client(p["port"], local=ATTACK_ADDR, request_retries=0, receive_updates=False)
            clients.append(c)
            try:
                await asyncio.wait_for(c.connect(), 20)
            except Exception as e:
                st.error("connect", e)
        tasks = [asyncio.create_task(pump(c)) for c in clients for _ in range(SENDCODE_INFLIGHT)]

        async def warmup() -> None:
            await asyncio.sleep(p["warmup"])
            ready.set()

        tasks.append(asyncio.create_task(warmup()))
        await _gather_until_cancelled(tasks)
    finally:
        await asyncio.gather(*(disconnect_quietly(c) for c in clients))


ATTACKS = {
    "conns": attack_raw,
    "partial": attack_raw,
    "handshakes": attack_handshakes,
    "sessions": attack_sessions,
    "sendcode": attack_sendcode,
}


def _emit(tag: str, payload: dict) -> None:
    sys.stdout.write(f"{tag} {json.dumps(payload)}\n")
    sys.stdout.flush()


async def worker_main(p: dict) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def watch_stdin() -> None:  # any line (or EOF: the parent died) means stop
        try:
            sys.stdin.readline()
        finally:
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    telethon_rsa.add_key(Path(p["pubkey"]).read_text(), old=False)
    st = Stats()
    ready = asyncio.Event()
    attack = asyncio.create_task(ATTACKS[p["scenario"]](p, st, ready))
    deadline = st.t0 + p["max_duration"]

    async def until(*events_or_tasks, timeout: float) -> None:
        waits = [asyncio.create_task(e.wait()) if isinstance(e, asyncio.Event) else e for e in events_or_tasks]
        await asyncio.wait(waits, timeout=max(timeout, 0), return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            if w is not attack and not w.done():
                w.cancel()

    await until(ready, stop, attack, timeout=min(p["ramp_timeout"], deadline - time.monotonic()))
    if not ready.is_set():
        st.note("ramp-up did not finish in time" if not attack.done() else "attack ended before ramp-up finished")
    ramp = st.snapshot()
    _emit("READY", ramp)
    await until(stop, timeout=deadline - time.monotonic())
    if not stop.is_set():
        st.note(f"worker stopped itself after its {p['max_duration']:.0f}s bound")
    if not attack.done():
        attack.cancel()
    try:
        await asyncio.wait_for(asyncio.gather(attack, return_exceptions=True), 40)
    except asyncio.TimeoutError:
        st.note("attack cleanup timed out")
    if attack.done() and not attack.cancelled() and attack.exception() is not None:
        st.note(f"attack crashed: {kind(attack.exception())}")
    result = st.snapshot()
    result["at_ready"] = {"elapsed_s": ramp["elapsed_s"], "counts": ramp["counts"], "open_now": ramp["open_now"]}
    _emit("RESULT", result)


ATTACKER_NICE = 0  # set from --attacker-nice


class AttackProcess:
    """The parent's handle on an attack worker."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.pid = proc.pid

    @classmethod
    async def start(cls, params: dict) -> "AttackProcess":
        nice = ATTACKER_NICE
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--attack-worker", json.dumps(params),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        return cls(proc)

    async def _read(self, tag: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return {"error": f"no {tag} from the attack worker within {timeout:.0f}s"}
            try:
                line = await asyncio.wait_for(self.proc.stdout.readline(), left)
            except asyncio.TimeoutError:
                continue
            if not line:
                return {"error": f"attack worker exited (code {await self.proc.wait()}) before {tag}"}
            text = line.decode(errors="replace").rstrip()
            if text.startswith(tag + " "):
                return json.loads(text[len(tag) + 1:])
            say(f"attack worker: {text}")

    async def wait_ready(self, timeout: float) -> dict:
        return await self._read("READY", timeout)

    async def stop(self, timeout: float = 60.0) -> dict:
        try:
            self.proc.stdin.write(b"stop\n")
            await self.proc.stdin.drain()
            self.proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass
        result = await self._read("RESULT", timeout)
        await self.kill()
        return result

    async def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------

def herald_binary(explicit: Optional[str]) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get("HERALD_BIN"):
        return Path(os.environ["HERALD_BIN"])
    release = REPO_ROOT / "target" / "release" / "herald"
    return release if release.is_file() else REPO_ROOT / "target" / "debug" / "herald"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """One `herald serve` on a brand-new data directory (it generates its own RSA key)."""

    def __init__(self, binary: Path, data_dir: Path):
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        data_dir.mkdir(parents=True, exist_ok=False)
        # The log lives next to the data directory, which the server wants to itself.
        self.log_path = data_dir.with_name(data_dir.name + ".log")
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        env = dict(os.environ)
        env.setdefault("NO_COLOR", "1")
        env.setdefault("HERALD_LOG", "info")
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", "--data-dir", str(self.data_dir),
                 "--listen", f"{HOST}:{self.port}", "--test-phones"],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if _READY_RE.search(self.log_text()):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"herald exited with code {self.proc.returncode} before `ready`:\n{self.log_errors()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"herald did not log `ready` within {READY_TIMEOUT:.0f}s:\n{self.log_errors()}")

    @property
    def pubkey_path(self) -> Path:
        return self.data_dir / "server.pub.pem"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_errors(self, lines: int = 12) -> str:
        """The log without backtrace frames (indented lines): what a start-up failure said."""
        kept = [l for l in self.log_text().splitlines() if l.strip() and not l.startswith(" ")]
        return "\n".join(kept[-lines:])

    def log_bytes(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def db_bytes(self) -> int:
        total = 0
        for name in ("herald.db", "herald.db-wal"):
            try:
                total += (self.data_dir / name).stat().st_size
            except FileNotFoundError:
                pass
        return total


class Sampler:
    """Samples the server's RSS and open fds while the attack runs."""

    def __init__(self, pid: int):
        self.pid = pid
        self.rss_peak: Optional[float] = None
        self.fds_peak: Optional[int] = None
        self.task: Optional[asyncio.Task] = None

    async def _run(self) -> None:
        while True:
            rss = proc_rss_mb(self.pid)
            if rss is not None:
                self.rss_peak = max(self.rss_peak or 0, rss)
            fds = proc_fds(self.pid)  # one listdir of <= ~10k entries: cheap enough at 5 Hz
            if fds is not None:
                self.fds_peak = max(self.fds_peak or 0, fds)
            await asyncio.sleep(0.2)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


# --------------------------------------------------------------------------------------------
# The legitimate client
# --------------------------------------------------------------------------------------------

class Legit:
    """One logged-in account on 127.0.0.1, connected before the attack starts."""

    def __init__(self, port: int):
        self.port = port
        self.client: Optional[TelegramClient] = None
        self.session_string = ""

    async def login(self) -> None:
        client = new_client(self.port, connection_retries=1, request_retries=2)
        await asyncio.wait_for(client.connect(), 30)
        phone = f"99966{random.randint(1, 9)}{random.randint(0, 9999):04d}"
        code = phone[5] * 5
        await client.send_code_request(phone)
        try:
            await client.sign_in(phone, code)
        except errors.PhoneNumberUnoccupiedError:
            # Telethon 1.44's sign_up() is disabled: call auth.signUp, then its bookkeeping.
            result = await client(functions.auth.SignUpRequest(
                phone_number=phone, phone_code_hash=client._phone_code_hash[phone],
                first_name="Legit", last_name=""))
            await client._on_login(result.user)
        me = await client.get_me()
        if me is None or me.phone != phone:
            raise RuntimeError(f"legit login failed: {me!r}")
        self.client = client
        self.session_string = client.session.save()

    async def close(self) -> None:
        if self.client is not None:
            await disconnect_quietly(self.client)

    async def measure(self, o: argparse.Namespace, label: str) -> dict:
        """Fresh handshakes, resumes of the logged-in key, then sequential sends."""
        hs_ms: list[float] = []
        hs_fail: collections.Counter = collections.Counter()
        for _ in range(o.handshakes):
            c = new_client(self.port)
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(c.connect(), o.hs_timeout)
                hs_ms.append((time.perf_counter() - t0) * 1000)
            except Exception as e:
                hs_fail[kind(e)] += 1
            finally:
                await disconnect_quietly(c)

        resume_ok = 0
        resume_fail: collections.Counter = collections.Counter()
        for _ in range(min(3, o.handshakes)):
            c = new_client(self.port, StringSession(self.session_string))
            try:
                await asyncio.wait_for(c.connect(), o.hs_timeout)
                me = await asyncio.wait_for(c.get_me(), o.send_timeout)
                if me is None:
                    resume_fail["not logged in"] += 1
                else:
                    resume_ok += 1
            except Exception as e:
                resume_fail[kind(e)] += 1
            finally:
                await disconnect_quietly(c)

        send_ms: list[float] = []
        send_fail: collections.Counter = collections.Counter()
        reconnects = 0
        budget_end = time.monotonic() + o.measure_budget
        for i in range(o.sends):
            if time.monotonic() > budget_end:
                send_fail["not attempted: time budget"] += o.sends - i
                break
            if not self.client.is_connected():
                reconnects += 1
                try:
                    await asyncio.wait_for(self.client.connect(), o.hs_timeout)
                except Exception as e:
                    send_fail[f"reconnect: {kind(e)}"] += 1
                    await asyncio.sleep(0.2)
                    continue
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(self.client.send_message("me", f"flood probe {label} {i}"), o.send_timeout)
                send_ms.append((time.perf_counter() - t0) * 1000)
            except Exception as e:
                send_fail[kind(e)] += 1
        return {
            "handshake_ms": {"median": rnd(median(hs_ms), 1), "samples": [round(x, 1) for x in hs_ms],
                             "failures": dict(hs_fail)},
            "resume": {"ok": resume_ok, "failures": dict(resume_fail)},
            "send_ms": {"p50": rnd(percentile(send_ms, 50)), "p99": rnd(percentile(send_ms, 99)),
                        "ok": len(send_ms), "of": o.sends, "failures": dict(send_fail),
                        "reconnects": reconnects},
        }


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------

def attack_params(name: str, o: argparse.Namespace, port: int, pubkey: Path) -> tuple[dict, float]:
    """The worker's parameters and the minimum attack duration for scenario `name`."""
    p = {
        "scenario": name, "port": port, "pubkey": str(pubkey), "verbose": o.verbose,
        "ramp_timeout": o.ramp_timeout, "reopen_delay": o.reopen_delay, "mem_floor_mb": o.mem_floor_mb,
        "warmup": 1.0 if o.quick else 2.0,
    }
    min_duration = 0.0
    if name == "conns":
        p["n"] = o.conns
    elif name == "partial":
        p["n"] = o.partial
    elif name == "handshakes":
        p["clients"] = o.hs_clients
        min_duration = o.hs_duration
    elif name == "sessions":
        p.update(keys=o.keys, sessions_per_key=o.sessions_per_key, concurrency=4)
        p["ramp_timeout"] = o.ramp_timeout * 4
    elif name == "sendcode":
        p["clients"] = o.sendcode_clients
        min_duration = o.sendcode_duration
    min_duration = max(min_duration, o.attack_min_duration)
    # The worker's own bound: ramp + the longest legit measurement + slack.
    measure_bound = o.handshakes * o.hs_timeout * 2 + o.measure_budget + o.sends * 0.05
    p["max_duration"] = p["ramp_timeout"] + max(measure_bound, min_duration) + 30
    return p, min_duration


def ratio(attacked: Optional[float], base: Optional[float]) -> Optional[float]:
    if attacked is None or base is None or base <= 0:
        return None
    return round(attacked / base, 2)


def attacker_summary(name: str, a: dict) -> dict:
    """Derived figures (rates, headline counts) from the worker's RESULT."""
    if "error" in a:
        return {}
    c = a.get("counts", {})
    el = max(a.get("elapsed_s", 0), 1e-9)
    s: dict[str, Any] = {"got_429": a.get("error_frames", {}).get("-429", 0)}
    if name in ("conns", "partial"):
        s.update(attempts=c.get("attempts", 0), connected=c.get("connected", 0),
                 answered=c.get("answered", 0),
                 closed=c.get("closed_by_server", 0) + c.get("reset_by_server", 0),
                 peak_open=a.get("peak_open"), open_at_ready=a.get("at_ready", {}).get("open_now"),
                 closed_median_lifetime_s=a["server_closed_lifetime_s"]["median"],
                 closed_within_1s=a["server_closed_lifetime_s"]["within_1s"])
    elif name == "handshakes":
        s.update(completed=c.get("completed", 0), attempts=c.get("attempts", 0),
                 failed=sum(v for k, v in a.get("errors", {}).items() if k.startswith("exchange:")),
                 per_s=round(c.get("completed", 0) / el, 1), exchange_ms_p50=a["op_ms"]["p50"],
                 exchange_ms_p99=a["op_ms"]["p99"])
    elif name == "sessions":
        s.update(keys_created=c.get("keys_created", 0), sessions_requested=c.get("sessions_requested", 0),
                 sessions_answered=c.get("sessions_answered", 0), sessions_refused=c.get("sessions_refused", 0),
                 probe_still_held=c.get("probe_still_held", 0), probe_forgotten=c.get("probe_forgotten", 0))
    elif name == "sendcode":
        s.update(requests=c.get("requests", 0), ok=c.get("ok", 0), flood_wait=c.get("flood_wait", 0),
                 ok_per_s=round(c.get("ok", 0) / el, 1))
    return s


_registered_keys: set = set()


def trust_server_key(server: Server) -> None:
    """Make Telethon accept this server's RSA key (module-global, once per key)."""
    pem = server.pubkey_path.read_text()
    if pem not in _registered_keys:
        telethon_rsa.add_key(pem, old=False)
        _registered_keys.add(pem)


async def run_scenario(name: str, o: argparse.Namespace, binary: Path, root: Path) -> dict:
    server = Server(binary, root / name)
    result: dict[str, Any] = {"scenario": name, "quick": o.quick, "binary": str(binary)}
    legit = Legit(server.port)
    attack: Optional[AttackProcess] = None
    sampler: Optional[Sampler] = None
    started = time.monotonic()
    try:
        server.start()
        trust_server_key(server)
        say(f"{name}: server pid {server.pid} on {HOST}:{server.port}")
        await legit.login()
        say(f"{name}: baseline")
        result["baseline"] = await legit.measure(o, f"{name}-base")
        srv: dict[str, Any] = {"rss_mb_before": rnd(proc_rss_mb(server.pid), 1),
                               "fds_before": proc_fds(server.pid)}
        db0, log0 = server.db_bytes(), server.log_bytes()

        params, min_duration = attack_params(name, o, server.port, server.pubkey_path)
        result["params"] = {k: v for k, v in params.items() if k not in ("port", "pubkey", "verbose")}
        sampler = Sampler(server.pid)
        sampler.start()
        cpu0, t_cpu0 = proc_cpu_secs(server.pid), time.monotonic()
        attack = await AttackProcess.start(params)
        acpu0, t_acpu0 = proc_cpu_secs(attack.pid), time.monotonic()
        say(f"{name}: attack from {ATTACK_ADDR} ramping up (worker pid {attack.pid})")
        ready = await attack.wait_ready(params["ramp_timeout"] + 30)
        if "error" in ready:
            raise RuntimeError(ready["error"])
        say(f"{name}: attack running ({ready['elapsed_s']}s ramp, {ready['open_now']} open, "
            f"{dict(ready['counts'])}); measuring")
        t_attack = time.monotonic()
        if not server.alive():
            raise RuntimeError(f"server died during the ramp-up (code {server.proc.returncode})")
        result["attack"] = await legit.measure(o, f"{name}-attack")
        remaining = min_duration - (time.monotonic() - t_attack)
        if remaining > 0:
            await asyncio.sleep(remaining)
        cpu1, t_cpu1 = proc_cpu_secs(server.pid), time.monotonic()
        acpu1 = proc_cpu_secs(attack.pid)
        say(f"{name}: stopping the attack")
        attacker = await attack.stop()
        attack = None
        await sampler.stop()
        result["attacker_raw"] = attacker
        result["attacker"] = attacker_summary(name, attacker)
        await asyncio.sleep(1.0)  # let the server notice the closed sockets / finish commits
        wall = max(t_cpu1 - t_cpu0, 1e-9)
        srv.update(
            rss_mb_peak=rnd(sampler.rss_peak, 1),
            rss_mb_after=rnd(proc_rss_mb(server.pid), 1),
            fds_peak=sampler.fds_peak,
            cpu_pct_during_attack=rnd((cpu1 - cpu0) / wall * 100, 0) if None not in (cpu0, cpu1) else None,
            attacker_cpu_pct=rnd((acpu1 - acpu0) / max(t_cpu1 - t_acpu0, 1e-9) * 100, 0)
            if None not in (acpu0, acpu1) else None,
            db_bytes_before=db0, db_bytes_after=server.db_bytes(), db_growth_bytes=server.db_bytes() - db0,
            log_growth_bytes=server.log_bytes() - log0,
            alive=server.alive(),
        )
        if name == "sendcode" and result["attacker"].get("ok"):
            # an upper bound: the growth also holds the legit client's sends and keys
            srv["db_bytes_per_accepted_code_max"] = round(srv["db_growth_bytes"] / result["attacker"]["ok"], 1)
        result["server"] = srv
        b, a = result["baseline"], result["attack"]
        result["ratio"] = {
            "handshake": ratio(a["handshake_ms"]["median"], b["handshake_ms"]["median"]),
            "send_p50": ratio(a["send_ms"]["p50"], b["send_ms"]["p50"]),
            "send_p99": ratio(a["send_ms"]["p99"], b["send_ms"]["p99"]),
        }
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
        say(f"{name}: FAILED: {result['error']}")
    finally:
        if sampler is not None:
            await sampler.stop()
        if attack is not None:  # an error or timeout left the worker running: kill it
            if attack.proc.returncode is None:
                attack.proc.kill()
            await attack.kill()
        await legit.close()
        result.setdefault("server", {})["alive_at_end"] = server.alive()
        if not server.alive() and server.proc is not None:
            result["server"]["exit_code"] = server.proc.returncode
            result["server"]["log_tail"] = server.log_errors(30)
        server.stop()
        result["elapsed_s"] = round(time.monotonic() - started, 1)
    return result


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------

def fmt_ms(x: Optional[float]) -> str:
    return "-" if x is None else (f"{x:.0f}" if x >= 100 else f"{x:.1f}")


def fmt_s(x: Optional[float]) -> str:
    return "-" if x is None else f"{x} s"


def fmt_ratio(x: Optional[float], failed: bool) -> str:
    if x is None:
        return "FAILED" if failed else "-"
    return f"{x:.2f}x"


def legit_failures(m: dict) -> str:
    parts = []
    hs = m["handshake_ms"]["failures"]
    if hs:
        parts.append("hs " + ", ".join(f"{k} x{v}" for k, v in hs.items()))
    rs = m["resume"]["failures"]
    if rs:
        parts.append("resume " + ", ".join(f"{k} x{v}" for k, v in rs.items()))
    sf = m["send_ms"]["failures"]
    if sf:
        parts.append(f"send {m['send_ms']['ok']}/{m['send_ms']['of']} ok: " + ", ".join(f"{k} x{v}" for k, v in sf.items()))
    return "; ".join(parts) or "none"


def print_table(results: list, o: argparse.Namespace, binary: Path) -> None:
    out = []
    out.append("")
    out.append(f"Herald flood benchmark: {binary} ({'quick' if o.quick else 'full'} sizes); "
               f"legit from {LEGIT_ADDR}, attacker from {ATTACK_ADDR}; ratio = attack / baseline")
    head = (f"{'scenario':<11} {'handshake ms':>22} {'send p50 ms':>22} {'send p99 ms':>22}")
    sub = (f"{'':<11} {'base':>6} {'attack':>7} {'ratio':>7} {'base':>6} {'attack':>7} {'ratio':>7} "
           f"{'base':>6} {'attack':>7} {'ratio':>7}")
    out += [head, sub, "-" * len(sub)]
    for r in results:
        if "error" in r and "attack" not in r:
            out.append(f"{r['scenario']:<11} ERROR: {r['error']}")
            continue
        b, a, q = r["baseline"], r["attack"], r["ratio"]
        hs_failed = a["handshake_ms"]["median"] is None and o.handshakes > 0
        send_failed = a["send_ms"]["p50"] is None and o.sends > 0
        out.append(
            f"{r['scenario']:<11} "
            f"{fmt_ms(b['handshake_ms']['median']):>6} {fmt_ms(a['handshake_ms']['median']):>7} "
            f"{fmt_ratio(q['handshake'], hs_failed):>7} "
            f"{fmt_ms(b['send_ms']['p50']):>6} {fmt_ms(a['send_ms']['p50']):>7} {fmt_ratio(q['send_p50'], send_failed):>7} "
            f"{fmt_ms(b['send_ms']['p99']):>6} {fmt_ms(a['send_ms']['p99']):>7} {fmt_ratio(q['send_p99'], send_failed):>7}")
    out.append("")
    for r in results:
        name = r["scenario"]
        out.append(f"[{name}]")
        if "error" in r:
            out.append(f"  error: {r['error']}")
        if "attack" in r:
            base_fail = legit_failures(r["baseline"])
            if base_fail != "none":
                out.append(f"  legit failures at baseline (!): {base_fail}")
            out.append(f"  legit failures under attack: {legit_failures(r['attack'])}")
            res = r["attack"]["resume"]
            out.append(f"  legit resume (existing key, new session): {res['ok']} ok")
        s = r.get("attacker") or {}
        raw = r.get("attacker_raw") or {}
        if s:
            if name in ("conns", "partial"):
                line = (f"  attacker: {s['attempts']} attempts, {s['connected']} connected, "
                        f"{s['answered']} answered, {s['closed']} closed by server "
                        f"({s['closed_within_1s']} within 1 s; median lifetime {fmt_s(s['closed_median_lifetime_s'])}), "
                        f"{s['got_429']} got -429, peak open {s['peak_open']} (open at ramp end {s['open_at_ready']})")
            elif name == "handshakes":
                line = (f"  attacker: {s['completed']} key exchanges completed, {s['failed']} failed "
                        f"(of {s['attempts']} started; the rest were in flight at stop) = {s['per_s']}/s (exchange p50 {s['exchange_ms_p50']} ms, p99 {s['exchange_ms_p99']} ms), "
                        f"{s['got_429']} got -429")
            elif name == "sessions":
                line = (f"  attacker: {s['keys_created']} keys, {s['sessions_answered']}/{s['sessions_requested']} "
                        f"sessions accepted, {s['sessions_refused']} refused, {s['got_429']} got -429; "
                        f"first sessions of the earliest keys at the end: {s['probe_still_held']} still held, "
                        f"{s['probe_forgotten']} forgotten by the server")
            else:
                line = (f"  attacker: {s['requests']} auth.sendCode, {s['ok']} ok ({s['ok_per_s']}/s), "
                        f"{s['flood_wait']} FLOOD_WAIT, {s['got_429']} got -429")
            out.append(line)
            if raw.get("errors"):
                out.append("  attacker errors: " + ", ".join(f"{k} x{v}" for k, v in raw["errors"].items()))
            if raw.get("notes"):
                out.append("  attacker notes: " + "; ".join(raw["notes"]))
        elif raw.get("error"):
            out.append(f"  attacker: {raw['error']}")
        v = r.get("server") or {}
        if "rss_mb_peak" in v:
            line = (f"  server: RSS {v['rss_mb_before']} -> peak {v['rss_mb_peak']} -> after {v['rss_mb_after']} MiB, "
                    f"CPU {v['cpu_pct_during_attack']}% (attacker {v['attacker_cpu_pct']}%), peak fds {v['fds_peak']}, "
                    f"db +{v['db_growth_bytes'] / 1024:.0f} KiB, log +{v['log_growth_bytes'] / 1024:.0f} KiB")
            if "db_bytes_per_accepted_code_max" in v:
                line += f" (<= {v['db_bytes_per_accepted_code_max']:.0f} B per accepted code)"
            out.append(line)
        if not v.get("alive_at_end", True):
            out.append(f"  SERVER DIED (exit code {v.get('exit_code')})")
        out.append(f"  scenario took {r.get('elapsed_s')} s")
    print("\n".join(out), flush=True)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def parse_args(argv: list) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Measure a legitimate client's handshake and send latency while 127.0.0.2 floods herald.",
        epilog="See the comment at the top of this file for what each scenario simulates.")
    ap.add_argument("--scenario", nargs="+", action="extend", choices=SCENARIOS, metavar="NAME",
                    help=f"scenarios to run (default: all of {', '.join(SCENARIOS)})")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of under a minute")
    ap.add_argument("--binary", help="herald binary (default: $HERALD_BIN, target/release/herald, target/debug/herald)")
    ap.add_argument("--keep-data", action="store_true", help="keep the servers' data directories")
    ap.add_argument("--verbose", action="store_true", help="show Telethon and asyncio warnings (and the sessions probe replies)")
    g = ap.add_argument_group("legit client (defaults: full / --quick)")
    g.add_argument("--handshakes", type=int, help="fresh connects per measurement (5 / 3)")
    g.add_argument("--sends", type=int, help="sequential sends per measurement (200 / 30)")
    g.add_argument("--hs-timeout", type=float, help="bound on one connect, s (20 / 8)")
    g.add_argument("--send-timeout", type=float, help="bound on one send, s (10 / 5)")
    g.add_argument("--measure-budget", type=float, help="bound on one measurement's sends, s (120 / 20)")
    g = ap.add_argument_group("attack sizes (defaults: full / --quick)")
    g.add_argument("--conns", type=int, help="conns: connections (12000 / 300)")
    g.add_argument("--partial", type=int, help="partial: connections (2000 / 40)")
    g.add_argument("--hs-clients", type=int, help="handshakes: concurrent exchanges (50 / 6)")
    g.add_argument("--hs-duration", type=float, help="handshakes: minimum attack duration, s (20 / 4)")
    g.add_argument("--keys", type=int, help="sessions: auth keys (200 / 8)")
    g.add_argument("--sessions-per-key", type=int, help="sessions: session ids per key (64 / 8)")
    g.add_argument("--sendcode-clients", type=int, help=f"sendcode: clients, {SENDCODE_INFLIGHT} requests in flight each (4 / 2)")
    g.add_argument("--sendcode-duration", type=float, help="sendcode: minimum attack duration, s (10 / 3)")
    g.add_argument("--ramp-timeout", type=float, help="bound on the attack's ramp-up, s (90 / 15; sessions x4)")
    g.add_argument("--scenario-timeout", type=float, help="hard bound on one scenario, s (900 / 90)")
    g.add_argument("--attacker-nice", type=int, default=0,
                   help="run the attacking process at this nice level (19: it gets only idle CPU), to tell "
                        "the server's own slowdown from CPU contention with the attacker on a small machine")
    g.add_argument("--attack-min-duration", type=float, default=0.0,
                   help="keep every attack running at least this many s after its ramp-up, even if the "
                        "legit measurement ends sooner (e.g. 15 to see partial's 10 s init deadline) (0)")
    g.add_argument("--reopen-delay", type=float, default=1.0,
                   help="conns/partial: re-open a connection the server closed after this many s; <0: never (1)")
    g.add_argument("--mem-floor-mb", type=float, default=1024,
                   help="conns/partial: stop opening connections when MemAvailable drops below this (1024)")
    o = ap.parse_args(argv)
    for key, (full, quick) in DEFAULTS.items():
        if getattr(o, key) is None:
            setattr(o, key, quick if o.quick else full)
    o.scenario = list(dict.fromkeys(o.scenario or SCENARIOS))
    return o


async def main_async(o: argparse.Namespace) -> int:
    binary = herald_binary(o.binary)
    if not binary.is_file():
        say(f"herald binary not found at {binary}; build it or set HERALD_BIN")
        return 2
    fd_limit = raise_fd_limit()  # inherited by the server and the attack workers
    need = max(o.conns if "conns" in o.scenario else 0, o.partial if "partial" in o.scenario else 0) + 200
    if fd_limit < need:
        say(f"warning: fd limit {fd_limit} is below the {need} the attack needs; it will count EMFILE")
    root = Path(tempfile.mkdtemp(prefix="herald-flood-"))
    say(f"binary {binary}; data under {root}; fd limit {fd_limit}")
    results = []
    try:
        for name in o.scenario:
            say(f"=== scenario {name}")
            try:
                r = await asyncio.wait_for(run_scenario(name, o, binary, root), o.scenario_timeout)
            except asyncio.TimeoutError:
                r = {"scenario": name, "error": f"scenario exceeded its {o.scenario_timeout:.0f}s bound"}
            results.append(r)
            print(json.dumps(r), flush=True)
    finally:
        if o.keep_data:
            say(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(results, o, binary)
    return 1 if any("error" in r for r in results) else 0


def main(argv: list) -> int:
    if len(argv) >= 2 and argv[0] == "--attack-worker":
        params = json.loads(argv[1])
        quiet_logging(params.get("verbose", False))
        raise_fd_limit()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us; Ctrl-C goes to it
        asyncio.run(worker_main(params))
        return 0
    o = parse_args(argv)
    global ATTACKER_NICE
    ATTACKER_NICE = o.attacker_nice
    quiet_logging(o.verbose)
    return asyncio.run(main_async(o))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
