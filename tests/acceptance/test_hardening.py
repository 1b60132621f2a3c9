"""Hardening of the front door: attacks an unmodified client can mount, and the data directory.

Each test names the attack it covers. Most use the shared ``server`` (``--test-phones``);
the code-logging tests start servers of their own without ``--test-phones``, and the data
directory tests run ``herald serve`` / ``herald check`` directly on copies of a directory a
real server wrote.

Not covered here: a constructor that is not a method sent as a request (Telethon cannot send
one); the Rust wire tests cover it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from telethon import errors, events, functions, types
from telethon.sessions import StringSession

from harness import (
    API_HASH,
    API_ID,
    EventCollector,
    HeraldServer,
    async_test,
    code_for,
    connect,
    connect_from,
    expect_rpc_error,
    free_port,
    herald_binary,
    login,
    make_account,
    make_user,
    random_id,
    random_phone,
    rpc_error_code,
    rpc_error_name,
    set_username,
    wrong_code_for,
)

SERVICE_PHONE = "42777"  # user 777000

OWNER_ADDR = "127.0.0.1"
ATTACKER_ADDR = "127.0.0.2"

# The login limits of the contract: 5 codes per (phone, address) per hour, 5 tries per
# code, 20 wrong codes per (phone, address) and per (phone, auth key) per day.
ATTEMPTS_PER_CODE = 5
WRONG_CODES_PER_DAY = 20

NAME_MAX = 64
INVISIBLE_NAMES = ["\u200b\u200b", "\u2060", "\u3164", " \u200e "]
INVISIBLE_MESSAGES = ["\u200b", "\u2060\u200d", "\u3164"]

# A login code in a log line, however it is formatted (`code=12345`, `code: 12345`, ...).
LOGGED_CODE_RE = re.compile(r"code\W+\d{5}\b|code=\d{5}")

PROC_TIMEOUT = 30.0  # bound on one direct `herald serve` / `herald check` run


def real_looking_phone() -> str:
    """A German mobile number: not of the 99966XYYYY test form, so its code is random."""
    return "4915" + "".join(random.choice("0123456789") for _ in range(8))


def send_code_request(phone: str) -> functions.auth.SendCodeRequest:
    return functions.auth.SendCodeRequest(phone, API_ID, API_HASH, types.CodeSettings())


def from_server(exc: errors.RPCError) -> bool:
    """True when the server sent ``exc``; Telethon raises a remembered FLOOD_WAIT by itself
    (without a request) on later calls of the same method, and those must not count."""
    return getattr(exc, "wire_message", None) is not None


# --------------------------------------------------------------------------------------------
# 1. The service account
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("phone", [SERVICE_PHONE, "+42777", "+4 27 77"])
@async_test
async def test_service_account_phone_cannot_receive_a_code(server, phone):
    """Attack: sign in as the service account 777000 (whose messages carry login codes) by
    requesting a code for its phone 42777. auth.sendCode must refuse the number outright."""
    client = await connect(server)
    with pytest.raises(errors.PhoneNumberInvalidError):
        await client.send_code_request(phone)
    with expect_rpc_error({"PHONE_NUMBER_INVALID"}, code=400):
        await client(send_code_request(phone))
    # Nor does a sign-in with a made-up hash and code get anywhere.
    with expect_rpc_error({"PHONE_NUMBER_INVALID", "PHONE_CODE_EXPIRED"}, code=400):
        await client(functions.auth.SignInRequest(phone, "0123456789abcdef", "12345"))
    assert await client.get_me() is None


# --------------------------------------------------------------------------------------------
# 2. Login codes stay out of the log
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def quiet_server(request):
    """A server with neither --test-phones nor --log-codes: a production configuration."""
    server = HeraldServer.launch("herald-quiet", test_phones=False)
    yield server
    server.cleanup(keep_data=request.session.testsfailed > 0)


@pytest.fixture(scope="module")
def log_codes_server(request):
    """A server with --log-codes but without --test-phones (a developer's setup)."""
    server = HeraldServer.launch("herald-logcodes", test_phones=False, extra_args=["--log-codes"])
    yield server
    server.cleanup(keep_data=request.session.testsfailed > 0)


@async_test
async def test_login_codes_are_not_logged_by_default(quiet_server):
    """Attack: read login codes from the server log (log shipping, shared hosts, support
    staff) and sign in as anyone. Without --test-phones/--log-codes no code reaches the log."""
    offset = quiet_server.log_size()
    client = await connect(quiet_server)
    phone = real_looking_phone()
    sent = await client(send_code_request(phone))
    assert isinstance(sent, types.auth.SentCode) and sent.phone_code_hash
    # A resend issues a second code; it must not be logged either.
    resent = await client(functions.auth.ResendCodeRequest(phone, sent.phone_code_hash))
    assert isinstance(resent, types.auth.SentCode)

    # Marker: a later request has been answered, so anything logged for the codes is there.
    await client(functions.help.GetConfigRequest())
    leaked = [line for line in quiet_server.log_text(offset).splitlines()
              if LOGGED_CODE_RE.search(line)]
    assert not leaked, "login code written to the log:\n" + "\n".join(leaked)


@async_test
async def test_log_codes_flag_logs_usable_codes(log_codes_server):
    """The opt-in counterpart: with --log-codes (and no test phones) the issued code appears
    in the log as the structured field ``code=NNNNN``, and that code signs a new number up."""
    offset = log_codes_server.log_size()
    client = await connect(log_codes_server)
    phone = real_looking_phone()
    sent = await client.send_code_request(phone)

    codes = [m.group(1) for line in log_codes_server.log_text(offset).splitlines()
             if phone in line for m in [re.search(r"\bcode=(\d{5})\b", line)] if m]
    assert len(codes) == 1, (
        f"expected one `code=NNNNN` for {phone} in the log, found {codes}\n"
        f"{log_codes_server.log_tail(since=offset)}")

    with pytest.raises(errors.PhoneNumberUnoccupiedError):
        await client.sign_in(phone, codes[0])
    result = await client(functions.auth.SignUpRequest(
        phone_number=phone, phone_code_hash=sent.phone_code_hash,
        first_name="Logged", last_name=""))
    assert isinstance(result, types.auth.Authorization)
    assert result.user.phone == phone
    await client._on_login(result.user)
    assert (await client.get_me()).phone == phone


# --------------------------------------------------------------------------------------------
# 3. Login limits cannot lock the owner out
# --------------------------------------------------------------------------------------------

@async_test(timeout=90)
async def test_code_flood_from_another_address_does_not_lock_out_the_owner(server):
    """Attack: lock a victim out of their account by burning the login limits for their
    phone: request codes and enter wrong ones from another address (127.0.0.2) with fresh
    auth keys until the server answers FLOOD_WAIT (25+ wrong codes in total). The limits
    are per (phone, address) and (phone, auth key), so the owner, from 127.0.0.1 with a
    fresh client, still gets a code and signs in."""
    victim, phone = await make_user(server, "Victim")
    victim_id = (await victim.get_me()).id

    wrong = wrong_code_for(phone)
    sent_wrong = 0              # signIn calls with a wrong code the server answered
    invalid = 0                 # ... with PHONE_CODE_INVALID
    send_floods = sign_floods = 0
    last_hash = None
    for _ in range(15):  # bounded: a fresh auth key per round
        if sent_wrong >= 25 and sign_floods:
            break
        attacker = await connect_from(server, ATTACKER_ADDR, flood_sleep_threshold=0)
        try:
            sent = await attacker(send_code_request(phone))
            last_hash = sent.phone_code_hash
        except errors.FloodWaitError as e:
            assert from_server(e), e
            assert e.seconds >= 1, e
            send_floods += 1
        if last_hash is None:
            pytest.fail("the attacker could not obtain a single code")
        for _ in range(ATTEMPTS_PER_CODE + 1):
            try:
                await attacker(functions.auth.SignInRequest(phone, last_hash, wrong))
            except errors.PhoneCodeInvalidError:
                sent_wrong += 1
                invalid += 1
                continue
            except errors.PhoneCodeExpiredError:
                sent_wrong += 1
                break  # code burnt (or another key's hash): next key
            except errors.FloodWaitError as e:
                assert from_server(e), e
                assert e.seconds >= 1, e
                sent_wrong += 1
                sign_floods += 1
                break  # Telethon would now refuse signIn on this client by itself
            raise AssertionError("a wrong code signed the attacker in")
        await attacker.disconnect()

    assert sent_wrong >= 25, f"only {sent_wrong} wrong codes got an answer"
    assert sign_floods >= 1, "the attacker never met FLOOD_WAIT on signIn"
    assert invalid <= WRONG_CODES_PER_DAY, f"{invalid} wrong codes were checked in one day"

    # The owner, from the usual address, with a fresh key.
    owner = await connect_from(server, OWNER_ADDR, flood_sleep_threshold=0)
    await owner.send_code_request(phone)
    me = await owner.sign_in(phone, code_for(phone))
    assert isinstance(me, types.User) and me.id == victim_id
    assert (await owner.get_me()).id == victim_id
    assert (await victim.get_me()).id == victim_id  # the victim's session is untouched


@async_test
async def test_code_hash_is_bound_to_the_requesting_key(server):
    """Attack: let one auth key request the code (spending its budget) and guess or enter
    it from others, or hijack a hash seen elsewhere. A phone_code_hash is only valid on the
    key that requested it: signIn with another key's hash answers 400 PHONE_CODE_EXPIRED,
    even with the right code."""
    victim, phone = await make_user(server, "Victim")
    requester = await connect(server)
    sent = await requester(send_code_request(phone))

    other = await connect(server)
    with expect_rpc_error({"PHONE_CODE_EXPIRED"}, code=400):
        await other(functions.auth.SignInRequest(phone, sent.phone_code_hash, code_for(phone)))
    assert await other.get_me() is None
    with expect_rpc_error({"PHONE_CODE_EXPIRED"}, code=400):
        await other(functions.auth.ResendCodeRequest(phone, sent.phone_code_hash))

    # The key that asked for the code still signs in with it.
    result = await requester(functions.auth.SignInRequest(phone, sent.phone_code_hash, code_for(phone)))
    assert isinstance(result, types.auth.Authorization)
    assert result.user.id == (await victim.get_me()).id


# --------------------------------------------------------------------------------------------
# 4. Log out (or a sign-in elsewhere) ends the account on every connection of the key
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class SharedKey:
    """Two connections of one auth key (different MTProto sessions) signed in as one
    account, a third key on that account as witness, and a sender who can reach it."""
    a: object
    b: object
    me: types.User
    phone: str
    username: str
    sender: object          # Account
    to_owner: object        # the owner as the sender addresses them
    witness_inbox: EventCollector
    b_inbox: EventCollector
    seen_by_b: list


async def shared_key(server) -> SharedKey:
    a, phone = await make_user(server, "Owner")
    me = await a.get_me()
    b = await connect(server, StringSession(a.session.save()))
    assert (await b.get_me()).id == me.id
    assert a._sender._state.id != b._sender._state.id  # two sessions, one key

    sender = await make_account(server, "Sender")
    username = await set_username(a, "owner")
    to_owner = await sender.client.get_input_entity(username)
    # Updates go to the key's last active connection: B's request makes it that one.
    await b.get_me()

    b_inbox = EventCollector(b, events.NewMessage(incoming=True))
    seen_by_b: list[str] = []

    async def record(event):
        seen_by_b.append(event.raw_text)

    b.add_event_handler(record, events.NewMessage(incoming=True))
    await sender.client.send_message(to_owner, "before")
    await b_inbox.next(lambda e: e.raw_text == "before",
                       what="B receives the owner's messages while signed in")

    # A third key on the same account: proves a later message was fanned out.
    witness = await connect(server)
    assert (await login(witness, phone)).id == me.id
    witness_inbox = EventCollector(witness, events.NewMessage(incoming=True))
    return SharedKey(a, b, me, phone, username, sender, to_owner, witness_inbox, b_inbox, seen_by_b)


async def assert_b_no_longer_receives_the_owner(k: SharedKey) -> None:
    """Sends the owner a message, sees the witness get it, then proves B did not: B signs
    in to a brand-new account and receives a message for it on the same connection; a
    push of the owner's message would have come first."""
    await k.sender.client.send_message(k.to_owner, "after")
    await k.witness_inbox.next(lambda e: e.raw_text == "after",
                               what="the owner's other key receives the message")
    await login(k.b, random_phone(), "Other")
    other_username = await set_username(k.b, "other")
    to_other = await k.sender.client.get_input_entity(other_username)
    await k.sender.client.send_message(to_other, "marker for the new account")
    await k.b_inbox.next(lambda e: e.raw_text == "marker for the new account",
                         what="B receives messages for the account it signed in to")
    assert "after" not in k.seen_by_b, "B kept receiving the old account's messages"


@async_test(timeout=90)
async def test_log_out_reaches_every_connection_of_the_key(server):
    """Attack: keep using an account after its owner logged out, through a second
    connection (another MTProto session) of the same auth key. After auth.logOut on
    connection A, connection B's next call answers 401 AUTH_KEY_UNREGISTERED and B stops
    receiving the user's updates."""
    k = await shared_key(server)

    assert await k.a.log_out() is True

    with expect_rpc_error({"AUTH_KEY_UNREGISTERED"}, code=401):
        await k.b(functions.users.GetUsersRequest([types.InputUserSelf()]))
    with expect_rpc_error({"AUTH_KEY_UNREGISTERED"}, code=401):
        await k.b(functions.updates.GetStateRequest())
    await assert_b_no_longer_receives_the_owner(k)


@async_test(timeout=90)
async def test_sign_in_elsewhere_on_the_key_reaches_every_connection(server):
    """Attack: keep acting as account X on connection B after the same auth key signed in
    to account Y on connection A (no log-out in between). B must never act as X again (its
    calls are Y's, or 401 AUTH_KEY_UNREGISTERED) and stops receiving X's updates."""
    k = await shared_key(server)
    other, other_phone = await make_user(server, "Yvonne")
    y_id = (await other.get_me()).id

    # The same key, now Y on A. Telethon's sign_in() returns the current user when already
    # authorized, so the raw request is sent.
    sent = await k.a.send_code_request(other_phone)
    result = await k.a(functions.auth.SignInRequest(other_phone, sent.phone_code_hash, code_for(other_phone)))
    assert result.user.id == y_id

    try:
        users = await k.b(functions.users.GetUsersRequest([types.InputUserSelf()]))
    except errors.RPCError as e:
        assert (rpc_error_code(e), rpc_error_name(e)) == (401, "AUTH_KEY_UNREGISTERED"), e
    else:
        assert users[0].id != k.me.id, "B still acts as the account its key left"
        assert users[0].id == y_id, users[0]
    # X's next message reaches X's other key, not B. (B's Telethon state is X's, so a message
    # to Y is no reliable marker here: B's own round trips after the witness got the message
    # are, since a push already queued for B's connection would have been written first.)
    await k.sender.client.send_message(k.to_owner, "after")
    await k.witness_inbox.next(lambda e: e.raw_text == "after",
                               what="the owner's other key receives the message")
    for _ in range(3):
        await k.b(functions.PingRequest(ping_id=random.randrange(1 << 62)))
    assert "after" not in k.seen_by_b, "B kept receiving the old account's messages"


# --------------------------------------------------------------------------------------------
# 5. Names
# --------------------------------------------------------------------------------------------

async def verified_new_number(server):
    """A client with a fresh number whose code is verified, ready for auth.signUp."""
    client = await connect(server)
    phone = random_phone()
    sent = await client.send_code_request(phone)
    with pytest.raises(errors.PhoneNumberUnoccupiedError):
        await client.sign_in(phone, code_for(phone))
    return client, phone, sent.phone_code_hash


@pytest.mark.parametrize("first_name", INVISIBLE_NAMES,
                         ids=["zwsp-zwsp", "word-joiner", "hangul-filler", "space-lrm-space"])
@async_test
async def test_sign_up_with_an_invisible_first_name_is_refused(server, first_name):
    """Attack: an account whose name renders as nothing (impersonation, invisible senders
    in chat lists). auth.signUp with a first name of only invisible characters answers
    400 FIRSTNAME_INVALID."""
    client, phone, phone_hash = await verified_new_number(server)
    with expect_rpc_error({"FIRSTNAME_INVALID"}, code=400):
        await client(functions.auth.SignUpRequest(phone, phone_hash, first_name, ""))
    assert await client.get_me() is None


@async_test
async def test_sign_up_with_a_long_last_name_is_refused(server):
    """Attack: oversized names (layout breaking, storage). auth.signUp with a last name
    longer than 64 characters answers 400 LASTNAME_INVALID instead of cutting it."""
    client, phone, phone_hash = await verified_new_number(server)
    with expect_rpc_error({"LASTNAME_INVALID"}, code=400):
        await client(functions.auth.SignUpRequest(phone, phone_hash, "Long", "x" * (NAME_MAX + 1)))
    assert await client.get_me() is None


@async_test
async def test_sign_up_strips_bidi_overrides_and_control_characters(server):
    """Attack: spoof a name with a right-to-left override (U+202E) or control characters
    (bell, escape). They are removed and the rest of the name is kept."""
    client, phone, phone_hash = await verified_new_number(server)
    result = await client(functions.auth.SignUpRequest(
        phone, phone_hash, "Ev\u202eil\x07", "Sm\u202eith\x1b"))
    assert isinstance(result, types.auth.Authorization)
    await client._on_login(result.user)
    me = await client.get_me()
    assert (me.first_name, me.last_name) == ("Evil", "Smith")


@async_test
async def test_update_profile_refuses_invisible_and_long_names(server):
    """Attack: the same invisible or oversized names through account.updateProfile."""
    client, _ = await make_user(server, "Plain")
    for name in INVISIBLE_NAMES:
        with expect_rpc_error({"FIRSTNAME_INVALID"}, code=400):
            await client(functions.account.UpdateProfileRequest(first_name=name))
    with expect_rpc_error({"LASTNAME_INVALID"}, code=400):
        await client(functions.account.UpdateProfileRequest(last_name="x" * (NAME_MAX + 1)))
    me = await client.get_me()
    assert (me.first_name, me.last_name or "") == ("Plain", "")


@async_test
async def test_update_profile_strips_bidi_overrides_and_control_characters(server):
    """Attack: a right-to-left override or control characters in a profile update; they
    are removed and the rest of the name is kept."""
    client, _ = await make_user(server, "Plain")
    user = await client(functions.account.UpdateProfileRequest(
        first_name="Ev\u202eil\x07", last_name="\x1bSm\u202eith"))
    assert (user.first_name, user.last_name) == ("Evil", "Smith")
    me = await client.get_me()
    assert (me.first_name, me.last_name) == ("Evil", "Smith")


# --------------------------------------------------------------------------------------------
# 6. Invisible messages
# --------------------------------------------------------------------------------------------

@async_test
async def test_invisible_messages_are_refused(server):
    """Attack: messages that render as nothing (invisible spam, unread-badge pings with no
    visible content). A text of only invisible characters answers 400 MESSAGE_EMPTY; a
    visible character next to them is a normal message."""
    client, _ = await make_user(server, "Sender")
    for text in INVISIBLE_MESSAGES:
        with pytest.raises(errors.MessageEmptyError):
            await client(functions.messages.SendMessageRequest(
                peer=types.InputPeerSelf(), message=text, random_id=random_id()))
    with expect_rpc_error({"MESSAGE_EMPTY"}, code=400):
        await client(functions.messages.SendMessageRequest(
            peer=types.InputPeerSelf(), message="\u200b\u3164\u2060", random_id=random_id()))

    visible = await client.send_message("me", "a\u200b")
    assert visible is not None and visible.id
    history = await client.get_messages("me", limit=10)
    assert [m.message for m in history] == ["a\u200b"]  # nothing else was stored


# --------------------------------------------------------------------------------------------
# 9. Send rate limit
# --------------------------------------------------------------------------------------------

FLOOD_SENDS = 200
# The defaults (a burst of 5000, then 1000 a second) sit far above what a person sends; this
# server is configured lower so a quick test reaches the limit.
SEND_LIMITS = '[flood]\nsends = "100,10/s"\n'


@pytest.fixture(scope="module")
def limited_server(request, tmp_path_factory):
    config = tmp_path_factory.mktemp("limits") / "herald.toml"
    config.write_text(SEND_LIMITS)
    server = HeraldServer.launch("herald-limited", extra_args=["--config", str(config)])
    yield server
    server.cleanup(keep_data=request.session.testsfailed > 0)


@async_test(timeout=90)
async def test_send_flood_is_rate_limited_per_account(limited_server):
    """Attack: flood the server (and a chat) with messages from one account. RATE LIMIT
    TEST: 200 sends to Saved Messages, all in flight at once, meet FLOOD_WAIT_X (X >= 1)
    after a burst of about 100 (a token bucket that then refills at a steady rate of some
    messages per second; configured with the `sends` flood row). It uses accounts
    of its own; the limit is per account, so another account sends at once, and the
    flooded one sends again after the wait."""
    server = limited_server
    client, _ = await make_user(server, "Flooder", flood_sleep_threshold=0)

    async def send(i):
        return await client(functions.messages.SendMessageRequest(
            peer=types.InputPeerSelf(), message=f"flood {i:03d}", random_id=random_id()))

    started = time.monotonic()
    results = await asyncio.gather(*(send(i) for i in range(FLOOD_SENDS)), return_exceptions=True)
    elapsed = time.monotonic() - started
    floods = [r for r in results if isinstance(r, errors.FloodWaitError)]
    others = [r for r in results if isinstance(r, BaseException)
              and not isinstance(r, errors.FloodWaitError)]
    sent = len(results) - len(floods) - len(others)
    assert not others, f"unexpected errors: {others[:3]}"
    assert floods, f"all {FLOOD_SENDS} sends went through without FLOOD_WAIT (in {elapsed:.1f}s)"
    wire = [f for f in floods if from_server(f)]
    assert wire, "no FLOOD_WAIT came from the server"
    for f in wire:
        m = re.fullmatch(r"FLOOD_WAIT_(\d+)", rpc_error_name(f))
        assert m and int(m.group(1)) >= 1, rpc_error_name(f)  # Telethon turns 0 into 1
        assert rpc_error_code(f) == 420, f
    assert sent >= 80, f"only {sent} sends before FLOOD_WAIT; the burst should be about 100"

    # Per account: someone else is not slowed down.
    bystander, _ = await make_user(server, "Bystander", flood_sleep_threshold=0)
    assert await bystander.send_message("me", "not flooded")

    # Temporary: after the advertised wait the flooder can send again.
    wait = max(f.seconds for f in wire)
    if wait <= 10:
        await asyncio.sleep(wait + 0.5)
        client._flood_waited_requests.clear()
        assert await client.send_message("me", "after the wait")


@pytest.fixture(scope="module")
def search_limited_server(request):
    server = HeraldServer.launch("herald-search-limited", extra_args=["--flood", "search=2,1/s"])
    yield server
    server.cleanup(keep_data=request.session.testsfailed > 0)


@async_test(timeout=90)
async def test_repeat_flooders_wait_longer(search_limited_server):
    """Flood control is one table configured by row (`--flood search=2,1/s` here): the
    account that runs out of searches waits 1 s; coming back on time and running out again
    at once makes it a repeat offender (2 s, then 4 s); asking again before the wait is over
    gets the rest of it; another account is not affected."""
    server = search_limited_server
    client, _ = await make_user(server, "Searcher", flood_sleep_threshold=0)

    async def search():
        return await client(functions.messages.SearchGlobalRequest(
            q="anything", filter=types.InputMessagesFilterEmpty(), min_date=None, max_date=None,
            offset_rate=0, offset_peer=types.InputPeerEmpty(), offset_id=0, limit=10))

    async def searches_until_refused() -> tuple[int, int]:
        for served in range(10):
            try:
                await search()
            except errors.FloodWaitError as e:
                assert from_server(e) and rpc_error_code(e) == 420, e
                return served, e.seconds
        raise AssertionError("ten searches and no FLOOD_WAIT")

    assert await searches_until_refused() == (2, 1), "the burst of two, then a one-second wait"
    waits = []
    for _ in range(2):
        await asyncio.sleep(waits[-1] + 0.3 if waits else 1.3)
        client._flood_waited_requests.clear()
        served, wait = await searches_until_refused()
        assert served >= 1, "served again after the wait"
        waits.append(wait)
    assert waits == [2, 4], f"a repeat offender's wait doubles: {waits}"
    # Back before the wait is over: the rest of it, not a fresh one.
    client._flood_waited_requests.clear()
    with pytest.raises(errors.FloodWaitError) as e:
        await search()
    assert from_server(e.value) and 1 <= e.value.seconds <= 4, e.value.seconds
    # Per account: another one searches at once.
    other, _ = await make_user(server, "Bystander", flood_sleep_threshold=0)
    await other(functions.messages.SearchGlobalRequest(
        q="anything", filter=types.InputMessagesFilterEmpty(), min_date=None, max_date=None,
        offset_rate=0, offset_peer=types.InputPeerEmpty(), offset_id=0, limit=10))


# --------------------------------------------------------------------------------------------
# 8. The data directory guard
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template_dir(request):
    """A data directory written by a real server: started, a few accounts and messages
    (so herald.db has well over three pages), stopped cleanly with SIGTERM."""
    server = HeraldServer.launch("herald-template")
    try:
        asyncio.run(_populate(server))
        assert server.stop() == 0, "a clean stop should exit 0"
        yield server.data_dir
    finally:
        server.cleanup(keep_data=request.session.testsfailed > 0)


async def _populate(server: HeraldServer) -> None:
    clients = []
    try:
        for i in range(4):
            client, _ = await make_user(server, f"Filler{i}")
            clients.append(client)
            for j in range(25):
                await client.send_message("me", f"filler {i}.{j} " + "x" * 200)
    finally:
        for c in clients:
            await c.disconnect()


@pytest.fixture
def data_copy(template_dir):
    """A throwaway copy of the template directory (its own log file)."""
    root = Path(tempfile.mkdtemp(prefix="herald-guard-"))
    copy = root / "data"
    shutil.copytree(template_dir, copy, ignore=shutil.ignore_patterns("herald.log"))
    yield copy
    shutil.rmtree(root, ignore_errors=True)


def _guard_server(data_dir: Path) -> HeraldServer:
    binary = herald_binary()
    if not binary.is_file():
        pytest.fail(f"herald binary not found at {binary}", pytrace=False)
    return HeraldServer(binary, data_dir, free_port())


def serve_once(data_dir: Path, timeout: float = PROC_TIMEOUT) -> tuple[str, int | None, str]:
    """Run ``herald serve`` on ``data_dir`` until it exits or logs ``ready``.

    Returns ``("exited", code, output)`` or ``("ready", None, output)``; a server that got
    ready is stopped at once with SIGTERM.
    """
    srv = _guard_server(data_dir)
    out_path = data_dir.parent / f"serve-{time.monotonic_ns()}.log"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(srv.serve_argv(), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, env=srv.env())
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = out_path.read_text(errors="replace")
            if proc.poll() is not None:
                return "exited", proc.returncode, out_path.read_text(errors="replace")
            if re.search(r"\bready\b", text):
                proc.terminate()
                proc.wait(timeout=20)
                return "ready", None, out_path.read_text(errors="replace")
            time.sleep(0.05)
        raise AssertionError(f"herald serve neither exited nor got ready within {timeout:.0f}s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def expect_refusal(data_dir: Path, must_mention: str) -> str:
    state, code, output = serve_once(data_dir)
    assert state == "exited", (
        f"herald serve started on a damaged data directory ({must_mention}):\n{output[-3000:]}")
    assert code != 0, f"herald serve exited 0 on a damaged data directory:\n{output[-3000:]}"
    assert must_mention in output, (
        f"the refusal does not name {must_mention}:\n{output[-3000:]}")
    return output


def herald_check(data_dir: Path) -> subprocess.CompletedProcess:
    srv = _guard_server(data_dir)
    return subprocess.run([str(srv.binary), "check", "--data-dir", str(data_dir)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=srv.env(), timeout=PROC_TIMEOUT)


def settle_db(data_dir: Path) -> Path:
    """Checkpoint the WAL into herald.db and drop the -wal/-shm files (server stopped)."""
    db = data_dir / "herald.db"
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    return db


def integrity_ok(db: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def test_guard_control_healthy_copy_starts_and_checks(data_copy):
    """Control for the guard tests: an undamaged copy of the directory starts, and
    `herald check` accepts it (exit 0)."""
    state, code, output = serve_once(data_copy)
    assert state == "ready", f"herald serve did not start on a healthy copy ({code}):\n{output[-3000:]}"
    result = herald_check(data_copy)
    assert result.returncode == 0, (
        f"herald check failed on a healthy directory ({result.returncode}):\n"
        f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


@pytest.mark.parametrize("name", ["server.secret", "server.key.pem"])
def test_missing_key_file_refuses_to_start(data_copy, name):
    """Attack/accident: a key file lost (partial restore, wrong volume). Silently making a
    new one would change the server's identity (clients reject it) or every salt and access
    hash. `herald serve` exits non-zero and names the missing file."""
    (data_copy / name).unlink()
    expect_refusal(data_copy, name)
    assert not (data_copy / name).exists(), f"{name} was recreated"


def test_empty_database_refuses_to_start(data_copy):
    """Accident: herald.db truncated to 0 bytes while the keys are there (a failed copy).
    Starting would silently serve an empty server under the old identity; it refuses."""
    db = settle_db(data_copy)
    db.write_bytes(b"")
    expect_refusal(data_copy, "herald.db")


def test_foreign_database_refuses_to_start(data_copy):
    """Accident: herald.db replaced by another program's SQLite database. The server
    refuses to start, and does not create its own tables in that database."""
    db = settle_db(data_copy)
    db.unlink()
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.execute("INSERT INTO recipes (name) VALUES ('bread')")
        conn.commit()
    finally:
        conn.close()
    expect_refusal(data_copy, "herald.db")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    finally:
        conn.close()
    assert tables == ["recipes"], f"herald wrote its schema into the foreign database: {tables}"


def test_check_detects_a_damaged_database(data_copy):
    """Accident: herald.db damaged in the middle (disk error, torn copy). `herald check`
    exits 0 on the healthy directory and non-zero once a page holds garbage."""
    healthy = herald_check(data_copy)
    assert healthy.returncode == 0, (
        f"herald check failed on a healthy directory ({healthy.returncode}):\n"
        f"{healthy.stdout[-2000:]}\n{healthy.stderr[-2000:]}")

    db = settle_db(data_copy)
    conn = sqlite3.connect(db)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
    finally:
        conn.close()
    assert page_count > 3, f"herald.db has only {page_count} pages"

    with open(db, "r+b") as f:  # page 3
        f.seek(2 * page_size)
        f.write(b"\xff" * page_size)
    if integrity_ok(db):  # the page was free: damage every page after the first
        with open(db, "r+b") as f:
            f.seek(page_size)
            f.write(b"\xff" * (page_size * (page_count - 1)))
    assert not integrity_ok(db), "could not damage herald.db for the test"

    damaged = herald_check(data_copy)
    assert damaged.returncode != 0, (
        f"herald check passed a damaged herald.db:\n{damaged.stdout[-2000:]}\n{damaged.stderr[-2000:]}")
