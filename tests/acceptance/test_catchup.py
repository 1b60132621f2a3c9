"""Catching up after being offline: updates.getDifference with many missed messages.

Telethon only catches up from a stored update state. A StringSession stores the
auth key and address but not the state (pts/date), so the event-based test uses
a SQLite session file, which persists both; the StringSession test checks what
such a client can see: the key still works and history holds everything.
(Telethon treats a stored pts of 0 as "no state"; the server therefore never
reports pts 0, which test_brand_new_account_catches_up checks.)
"""

import collections

from telethon import events
from telethon.sessions import StringSession

from harness import (
    EVENT_TIMEOUT,
    EventCollector,
    async_test,
    connect,
    make_account,
    new_client,
    offline_receiver,
    peer_of,
    send_and_receive,
    send_many,
)

MISSED = 500


async def assert_full_history(client, peer, texts):
    """Every text in order, paging through messages.getHistory (100 per request)."""
    history = await client.get_messages(peer, limit=None)
    assert history.total == len(texts)
    assert [m.message for m in history] == texts[::-1]
    ids = [m.id for m in history]
    assert all(a > b for a, b in zip(ids, ids[1:])), "history ids not strictly decreasing"


@async_test(timeout=240)
async def test_reconnect_delivers_every_missed_message_once(server, tmp_path):
    session_file = str(tmp_path / "bob")
    alice, bob, to_bob = await offline_receiver(server, session_file)
    texts = await send_many(alice.client, to_bob, "missed", MISSED)

    bob2 = new_client(server, session_file, catch_up=True)
    inbox = EventCollector(bob2, events.NewMessage(incoming=True))
    await bob2.connect()
    assert (await bob2.get_me()).id == bob.id
    await bob2.catch_up()

    received = await inbox.take(MISSED, timeout=120, what="missed messages as NewMessage events")
    await bob2.catch_up()  # a second getDifference must not replay anything
    # A message sent now is the next event: a duplicate would have come before it.
    await alice.client.send_message(to_bob, "marker")
    after = await inbox.take(1, timeout=EVENT_TIMEOUT, what="the marker")
    assert [e.message.message for e in after] == ["marker"], "something arrived before the marker"

    ids = collections.Counter(e.message.id for e in received)
    duplicates = {i: n for i, n in ids.items() if n > 1}
    assert not duplicates, f"messages delivered more than once: {duplicates}"
    got = [e.message.message for e in received]
    assert sorted(got) == texts, (
        f"missing: {sorted(set(texts) - set(got))[:10]}, "
        f"unexpected: {sorted(set(got) - set(texts))[:10]}")
    to_alice = await bob2.get_input_entity(alice.username)
    await assert_full_history(bob2, to_alice, ["before going offline"] + texts + ["marker"])


@async_test(timeout=240)
async def test_string_session_reconnect_sees_missed_history(server):
    alice, bob, to_bob = await offline_receiver(server)
    saved = bob.client.session.save()
    texts = await send_many(alice.client, to_bob, "missed", MISSED)

    bob2 = await connect(server, StringSession(saved))
    me = await bob2.get_me()
    assert me is not None and me.id == bob.id, "saved auth key no longer authorized"
    to_alice = await bob2.get_input_entity(alice.username)

    await assert_full_history(bob2, to_alice, ["before going offline"] + texts)
    dialog = next(d for d in await bob2.get_dialogs() if d.is_user and d.entity.id == alice.id)
    assert dialog.unread_count == MISSED
    assert dialog.message.message == texts[-1]

    # Live delivery resumes on the reconnected session.
    inbox = EventCollector(bob2, events.NewMessage(incoming=True))
    await send_and_receive(alice.client, to_bob, "welcome back", inbox)


@async_test(timeout=120)
async def test_brand_new_account_catches_up(server, tmp_path):
    """An account that goes offline before its first update still catches up.

    Regression: with a box starting at pts 0, Telethon saved "no state" and
    silently skipped everything sent while it was away.
    """
    session_file = str(tmp_path / "newbie")
    alice = await make_account(server, "Alice")
    bob = await make_account(server, "Bob", session=session_file)
    to_bob = await peer_of(alice, bob)
    await bob.client.disconnect()  # saves bob's (initial) update state

    texts = await send_many(alice.client, to_bob, "first ever", 3)
    bob2 = new_client(server, session_file, catch_up=True)
    inbox = EventCollector(bob2, events.NewMessage(incoming=True))
    await bob2.connect()
    await bob2.catch_up()
    received = await inbox.take(3, timeout=30, what="messages sent before bob's first update")
    assert sorted(e.message.message for e in received) == texts

