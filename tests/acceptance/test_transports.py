"""A whole conversation (sign-up, resolve, send, receive, history) over each transport."""

import pytest
from telethon import events

from harness import (
    TRANSPORT_IDS,
    TRANSPORTS,
    EventCollector,
    async_test,
    make_chat,
    send_and_receive,
)


@pytest.mark.parametrize("transport", TRANSPORTS, ids=TRANSPORT_IDS)
@async_test
async def test_login_and_messaging(server, transport):
    chat = await make_chat(server, transport)
    alice_inbox = EventCollector(chat.alice.client, events.NewMessage(incoming=True))
    bob_inbox = EventCollector(chat.bob.client, events.NewMessage(incoming=True))

    _, ping = await send_and_receive(chat.alice.client, chat.to_bob, "ping", bob_inbox)
    assert ping.sender_id == chat.alice.id
    _, pong = await send_and_receive(chat.bob.client, chat.to_alice, "pong", alice_inbox,
                                     reply_to=ping.id)
    assert pong.sender_id == chat.bob.id

    # A long message exercises the multi-byte length prefixes (abridged: > 127 words).
    long_text = "x" * 3000
    _, got = await send_and_receive(chat.alice.client, chat.to_bob, long_text, bob_inbox)
    assert got.message == long_text

    history = await chat.alice.client.get_messages(chat.to_bob, limit=10)
    assert [m.message for m in history] == [long_text, "pong", "ping"]
    assert history[1].reply_to_msg_id == history[2].id
