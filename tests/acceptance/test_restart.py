"""Durability: keys, accounts, messages and update state survive restarts.

These tests use ``fresh_server``, their own herald instance, because they stop it.
"""

import asyncio
import signal

import pytest
from telethon import events
from telethon.sessions import StringSession

from harness import (
    EventCollector,
    async_test,
    connect,
    make_chat,
    new_client,
    offline_receiver,
    send_and_receive,
    send_many,
    send_raw,
)

STOPS = [
    pytest.param(True, id="sigkill"),
    pytest.param(False, id="sigterm"),
]


async def restart(server, kill9):
    """Restart without blocking the event loop; returns the stopped process's exit code."""
    return await asyncio.to_thread(server.restart, kill9)


def assert_stopped_as_asked(code, kill9):
    if kill9:
        assert code == -signal.SIGKILL, code
    else:
        assert code == 0, f"graceful shutdown exited with {code}"


@pytest.mark.parametrize("kill9", STOPS)
@async_test(timeout=150)
async def test_acknowledged_messages_survive_restart(fresh_server, kill9):
    chat = await make_chat(fresh_server)
    texts = await send_many(chat.alice.client, chat.to_bob, "durable", 20)
    saved = {side.me.id: side.client.session.save() for side in (chat.alice, chat.bob)}
    pubkey = fresh_server.pubkey
    await asyncio.gather(chat.alice.client.disconnect(), chat.bob.client.disconnect())

    assert_stopped_as_asked(await restart(fresh_server, kill9), kill9)
    assert fresh_server.pubkey == pubkey, "the server key changed across a restart"

    # Same auth keys, no new login.
    alice = await connect(fresh_server, StringSession(saved[chat.alice.id]))
    bob = await connect(fresh_server, StringSession(saved[chat.bob.id]))
    assert (await alice.get_me()).id == chat.alice.id
    assert (await bob.get_me()).id == chat.bob.id

    to_bob = await alice.get_input_entity(chat.bob.username)
    to_alice = await bob.get_input_entity(chat.alice.username)
    for client, peer in ((alice, to_bob), (bob, to_alice)):
        history = await client.get_messages(peer, limit=100)
        assert [m.message for m in history] == texts[::-1]
    last_id = (await alice.get_messages(to_bob, limit=1))[0].id

    # The server keeps serving: new ids continue after the old ones, delivery is live.
    inbox = EventCollector(bob, events.NewMessage(incoming=True))
    sent, _ = await send_and_receive(alice, to_bob, "after restart", inbox)
    assert sent.id > last_id


@pytest.mark.parametrize("kill9", STOPS)
@async_test(timeout=150)
async def test_missed_updates_survive_restart(fresh_server, kill9, tmp_path):
    session_file = str(tmp_path / "bob")
    alice, _, to_bob = await offline_receiver(fresh_server, session_file)
    texts = await send_many(alice.client, to_bob, "while offline", 10)
    await alice.client.disconnect()
    assert_stopped_as_asked(await restart(fresh_server, kill9), kill9)

    bob2 = new_client(fresh_server, session_file, catch_up=True)
    inbox = EventCollector(bob2, events.NewMessage(incoming=True))
    await bob2.connect()
    await bob2.catch_up()

    received = await inbox.take(len(texts), timeout=30, what="missed messages after restart")
    assert sorted(e.message.message for e in received) == sorted(texts)
    # A message sent now is the next event: a duplicate would have come before it.
    await alice.client.connect()
    await send_raw(alice.client, to_bob, "marker")
    after = await inbox.take(1, timeout=30, what="the marker")
    assert [e.message.message for e in after] == ["marker"], "messages delivered more than once"
