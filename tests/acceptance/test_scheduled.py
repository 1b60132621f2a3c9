"""Scheduled messages with Telethon: send_message(schedule=...), the scheduled list, delivery
on time, deleting and sending early."""

import datetime

from telethon import events, functions

from harness import EventCollector, async_test, make_chat


def soon(seconds: float) -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.timezone.utc) + datetime.timedelta(seconds=seconds)


@async_test(timeout=90)
async def test_scheduled_message_is_delivered_on_time(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    inbox = EventCollector(b, events.NewMessage(incoming=True))
    kept = await a.send_message(chat.to_bob, "see you in three seconds", schedule=soon(3))
    assert kept.raw_text == "see you in three seconds" and kept.out
    waiting = await a.get_messages(chat.to_bob, scheduled=True)
    assert [m.raw_text for m in waiting] == ["see you in three seconds"]
    assert await b.get_messages(chat.to_alice, limit=5) == []
    got = await inbox.next(timeout=15)
    assert got.raw_text == "see you in three seconds" and got.sender_id == chat.alice.id
    assert await a.get_messages(chat.to_bob, scheduled=True) == []
    (mine,) = await a.get_messages(chat.to_bob, limit=1)
    assert mine.raw_text == "see you in three seconds" and mine.out


@async_test
async def test_scheduled_messages_can_be_deleted_or_sent_early(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    first = await a.send_message(chat.to_bob, "never mind", schedule=soon(3600))
    second = await a.send_message(chat.to_bob, "right now instead", schedule=soon(3600))
    await a(functions.messages.DeleteScheduledMessagesRequest(peer=chat.to_bob, id=[first.id]))
    assert [m.raw_text for m in await a.get_messages(chat.to_bob, scheduled=True)] == ["right now instead"]
    inbox = EventCollector(b, events.NewMessage(incoming=True))
    await a(functions.messages.SendScheduledMessagesRequest(peer=chat.to_bob, id=[second.id]))
    got = await inbox.next()
    assert got.raw_text == "right now instead"
    assert await a.get_messages(chat.to_bob, scheduled=True) == []


@async_test(timeout=90)
async def test_a_scheduled_file_waits_and_goes_out_with_its_caption(server):
    import io
    import os

    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    data = os.urandom(80_000)
    f = io.BytesIO(data)
    f.name = "later.bin"
    kept = await a.send_file(chat.to_bob, f, caption="for later", force_document=True, schedule=soon(3600))
    assert kept.document.size == len(data) and kept.raw_text == "for later"
    (waiting,) = await a.get_messages(chat.to_bob, scheduled=True)
    assert waiting.document.id == kept.document.id
    assert await b.get_messages(chat.to_alice, limit=5) == []
    inbox = EventCollector(b, events.NewMessage(incoming=True))
    await a(functions.messages.SendScheduledMessagesRequest(peer=chat.to_bob, id=[kept.id]))
    got = await inbox.next()
    assert got.raw_text == "for later" and got.document.size == len(data)
    assert await b.download_media(got.message, file=bytes) == data
