"""Private messages: sending, receiving, history, dialogs, read/edit/delete and typing.

Message ids are compared per side: each account has its own id space, so
alice's id of a message is never assumed to equal bob's.
"""

import asyncio

import pytest
from telethon import errors, events, functions, types

from harness import (
    EventCollector,
    async_test,
    connect,
    expect_rpc_error,
    login,
    make_chat,
    message_ids,
    random_id,
    rpc_error_name,
    send_and_receive,
    send_raw,
    sent_message_id,
)


def incoming(client):
    return EventCollector(client, events.NewMessage(incoming=True))


async def send_texts(client, peer, texts):
    return [await client.send_message(peer, text) for text in texts]


# --------------------------------------------------------------------------------------------
# Sending and receiving
# --------------------------------------------------------------------------------------------

@async_test
async def test_send_by_username_and_receive(server):
    chat = await make_chat(server)
    alice, bob = chat.alice, chat.bob
    inbox = incoming(bob.client)

    sent, got = await send_and_receive(alice.client, bob.username, "hello bob", inbox)

    assert sent.out and sent.id > 0 and sent.message == "hello bob"
    assert sent.peer_id == types.PeerUser(bob.id)
    assert not got.out and got.id > 0
    assert got.sender_id == alice.id and got.chat_id == alice.id
    sender = await got.get_sender()
    assert sender.id == alice.id and sender.username == alice.username


@async_test
async def test_markdown_entities_arrive(server):
    chat = await make_chat(server)
    inbox = incoming(chat.bob.client)

    sent, got = await send_and_receive(chat.alice.client, chat.to_bob, "plain **bold** end", inbox)

    assert got.message == "plain bold end"
    assert got.entities == [types.MessageEntityBold(offset=6, length=4)]
    assert got.text == "plain **bold** end"  # Telethon re-renders the entities as markdown
    assert sent.entities == got.entities


@async_test
async def test_reply_to_uses_each_sides_ids(server):
    chat = await make_chat(server)
    alice_inbox, bob_inbox = incoming(chat.alice.client), incoming(chat.bob.client)

    question, question_at_alice = await send_and_receive(
        chat.bob.client, chat.to_alice, "question?", alice_inbox)
    answer, answer_at_bob = await send_and_receive(
        chat.alice.client, chat.to_bob, "answer!", bob_inbox, reply_to=question_at_alice.id)

    assert answer.reply_to_msg_id == question_at_alice.id
    assert answer_at_bob.reply_to_msg_id == question.id
    replied = await answer_at_bob.get_reply_message()
    assert replied is not None and replied.message == "question?"


@async_test
async def test_message_length_limit(server):
    chat = await make_chat(server)
    inbox = incoming(chat.bob.client)

    _, got = await send_and_receive(chat.alice.client, chat.to_bob, "b" * 4096, inbox)
    assert len(got.message) == 4096

    with pytest.raises(errors.MessageTooLongError):
        await chat.alice.client.send_message(chat.to_bob, "a" * 4097)
    history = await chat.alice.client.get_messages(chat.to_bob, limit=10)
    assert [len(m.message) for m in history] == [4096]


@async_test
async def test_empty_message_is_rejected(server):
    chat = await make_chat(server)

    with expect_rpc_error({"MESSAGE_EMPTY"}, code=400):
        await send_raw(chat.alice.client, chat.to_bob, "")
    assert (await chat.alice.client.get_messages(chat.to_bob, limit=0)).total == 0


@async_test
async def test_same_random_id_makes_one_message(server):
    # request_retries=0: RANDOM_ID_DUPLICATE is a 500, which Telethon would otherwise retry.
    chat = await make_chat(server, request_retries=0)
    rid = random_id()

    first = await send_raw(chat.alice.client, chat.to_bob, "only once", rid)
    first_id = sent_message_id(first, rid)
    # A retried send (same random_id) is answered with the message it already made.
    second = await send_raw(chat.alice.client, chat.to_bob, "only once", rid)
    assert sent_message_id(second, rid) == first_id

    for side, peer in ((chat.alice, chat.to_bob), (chat.bob, chat.to_alice)):
        history = await side.client.get_messages(peer, limit=10)
        assert [m.message for m in history] == ["only once"], f"{side.me.first_name}: {history}"
        assert history.total == 1
        if side is chat.alice:
            assert history[0].id == first_id


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------

@async_test
async def test_history_is_newest_first(server):
    chat = await make_chat(server)
    texts = [f"message {i}" for i in range(5)]
    sent = await send_texts(chat.alice.client, chat.to_bob, texts)

    for side, peer, out in ((chat.alice, chat.to_bob, True), (chat.bob, chat.to_alice, False)):
        history = await side.client.get_messages(peer, limit=5)
        assert [m.message for m in history] == texts[::-1]
        ids = [m.id for m in history]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5
        assert all(m.out is out for m in history)
        assert history.total == 5

        newest = await side.client.get_messages(peer, limit=3)
        assert [m.message for m in newest] == texts[:1:-1]
        assert newest.total == 5  # a messagesSlice with the full count

        oldest_first = await side.client.get_messages(peer, limit=5, reverse=True)
        assert [m.message for m in oldest_first] == texts

    assert [m.id for m in await chat.alice.client.get_messages(chat.to_bob, limit=5)] == \
        [m.id for m in sent][::-1]


def expected_window(ids_desc, *, offset_id=0, add_offset=0, limit=100, max_id=0, min_id=0):
    """Reference messages.getHistory: newest first, offset_id exclusive, add_offset
    shifts the window (negative values reach newer messages), then max_id/min_id
    (both exclusive) filter."""
    start = 0
    if offset_id:
        start = next((i for i, m in enumerate(ids_desc) if m < offset_id), len(ids_desc))
    start += add_offset
    window = ids_desc[max(start, 0):max(start + limit, 0)]
    return [m for m in window if (not max_id or m < max_id) and (not min_id or m > min_id)]


@async_test
async def test_get_history_offsets_and_bounds(server):
    chat = await make_chat(server)
    await send_texts(chat.alice.client, chat.to_bob, [f"h{i}" for i in range(10)])

    async def history(**params):
        request = dict(offset_id=0, offset_date=None, add_offset=0, limit=100,
                       max_id=0, min_id=0, hash=0)
        request.update(params)
        result = await chat.alice.client(
            functions.messages.GetHistoryRequest(peer=chat.to_bob, **request))
        return message_ids(result.messages)

    ids = await history()
    assert len(ids) == 10 and ids == sorted(ids, reverse=True)

    cases = [
        dict(limit=3),
        dict(offset_id=ids[4], limit=3),
        dict(offset_id=ids[4], add_offset=-2, limit=4),
        dict(offset_id=ids[0] + 1, limit=100),
        dict(add_offset=2, limit=3),
        dict(min_id=ids[3]),
        dict(max_id=ids[6]),
        dict(min_id=ids[7], max_id=ids[2]),
        dict(offset_id=ids[9]),
    ]
    for params in cases:
        assert await history(**params) == expected_window(ids, **params), params


@async_test
async def test_get_messages_by_ids(server):
    chat = await make_chat(server)
    first, second, third = await send_texts(chat.alice.client, chat.to_bob, ["one", "two", "three"])
    missing = third.id + 1000

    got = await chat.alice.client.get_messages(chat.to_bob, ids=[third.id, missing, first.id])

    assert got[0].id == third.id and got[0].message == "three"
    assert got[1] is None
    assert got[2].id == first.id and got[2].message == "one"
    single = await chat.alice.client.get_messages(chat.to_bob, ids=second.id)
    assert single.message == "two"


# --------------------------------------------------------------------------------------------
# Dialogs and read state
# --------------------------------------------------------------------------------------------

async def dialog_with(client, user_id):
    dialogs = await client.get_dialogs()
    matches = [d for d in dialogs if d.is_user and d.entity.id == user_id]
    assert len(matches) <= 1, matches
    return matches[0] if matches else None


@async_test
async def test_dialogs_unread_and_read_receipt(server):
    chat = await make_chat(server)
    inbox = incoming(chat.bob.client)
    receipts = EventCollector(chat.alice.client, events.MessageRead(inbox=False))
    received = []
    for text in ("r1", "r2", "r3"):
        received.append((await send_and_receive(chat.alice.client, chat.to_bob, text, inbox))[1])
    last_sent = (await chat.alice.client.get_messages(chat.to_bob, limit=1))[0]

    dialog = await dialog_with(chat.bob.client, chat.alice.id)
    assert dialog is not None, "bob has no dialog with alice"
    assert dialog.unread_count == 3
    assert dialog.message.message == "r3" and dialog.message.id == received[-1].id

    assert await chat.bob.client.send_read_acknowledge(chat.to_alice, max_id=received[-1].id)

    receipt = await receipts.next(lambda e: e.chat_id == chat.bob.id, what="alice sees bob read")
    assert receipt.outbox and receipt.max_id == last_sent.id
    assert (await dialog_with(chat.bob.client, chat.alice.id)).unread_count == 0
    alice_dialog = await dialog_with(chat.alice.client, chat.bob.id)
    assert alice_dialog.dialog.read_outbox_max_id == last_sent.id
    assert alice_dialog.unread_count == 0


# --------------------------------------------------------------------------------------------
# Edit and delete
# --------------------------------------------------------------------------------------------

@async_test
async def test_edit_message(server):
    chat = await make_chat(server)
    inbox = incoming(chat.bob.client)
    edits = EventCollector(chat.bob.client, events.MessageEdited())
    sent, got = await send_and_receive(chat.alice.client, chat.to_bob, "draft", inbox)

    edited = await chat.alice.client.edit_message(chat.to_bob, sent.id, "final **version**")

    assert edited.id == sent.id and edited.message == "final version"
    event = await edits.next(lambda e: e.id == got.id, what="bob sees the edit")
    assert event.message.message == "final version"
    assert event.message.entities == [types.MessageEntityBold(offset=6, length=7)]
    assert event.message.edit_date is not None
    at_bob = await chat.bob.client.get_messages(chat.to_alice, ids=got.id)
    assert at_bob.message == "final version"


@async_test
async def test_delete_for_everyone(server):
    chat = await make_chat(server)
    inbox = incoming(chat.bob.client)
    deletions = EventCollector(chat.bob.client, events.MessageDeleted())
    sent, got = await send_and_receive(chat.alice.client, chat.to_bob, "oops", inbox)

    affected = await chat.alice.client.delete_messages(chat.to_bob, [sent.id], revoke=True)
    assert sum(a.pts_count for a in affected) == 1

    await deletions.next(lambda e: got.id in e.deleted_ids, what="bob sees the deletion")
    assert await chat.alice.client.get_messages(chat.to_bob, ids=sent.id) is None
    assert await chat.bob.client.get_messages(chat.to_alice, ids=got.id) is None


@async_test
async def test_delete_for_me_only(server):
    chat = await make_chat(server)
    inbox = incoming(chat.bob.client)
    sent, got = await send_and_receive(chat.alice.client, chat.to_bob, "keep it, bob", inbox)

    await chat.alice.client.delete_messages(chat.to_bob, [sent.id], revoke=False)

    assert await chat.alice.client.get_messages(chat.to_bob, ids=sent.id) is None
    kept = await chat.bob.client.get_messages(chat.to_alice, ids=got.id)
    assert kept is not None and kept.message == "keep it, bob"


@async_test
async def test_delete_history(server):
    chat = await make_chat(server)
    await send_texts(chat.alice.client, chat.to_bob, ["x1", "x2", "x3"])

    async def count(side, peer):
        return (await side.client.get_messages(peer, limit=0)).total

    # delete_dialog clears only alice's copy (revoke=False) and drops the dialog.
    await chat.alice.client.delete_dialog(chat.to_bob)
    assert await count(chat.alice, chat.to_bob) == 0
    assert await count(chat.bob, chat.to_alice) == 3
    assert await dialog_with(chat.alice.client, chat.bob.id) is None

    result = await chat.bob.client(functions.messages.DeleteHistoryRequest(
        peer=chat.to_alice, max_id=0, revoke=True))
    assert isinstance(result, types.messages.AffectedHistory) and result.offset == 0
    assert await count(chat.bob, chat.to_alice) == 0
    assert await count(chat.alice, chat.to_bob) == 0


# --------------------------------------------------------------------------------------------
# Typing and multiple sessions
# --------------------------------------------------------------------------------------------

@async_test
async def test_typing_notification(server):
    chat = await make_chat(server)
    typing = EventCollector(chat.bob.client, events.UserUpdate())

    def alice_typing(event):
        return event.user_id == chat.alice.id and event.typing

    assert await chat.alice.client(functions.messages.SetTypingRequest(
        peer=chat.to_bob, action=types.SendMessageTypingAction())) is True
    await typing.next(alice_typing, what="bob sees alice typing (raw setTyping)")

    async with chat.alice.client.action(chat.to_bob, "typing"):
        await typing.next(alice_typing, what="bob sees alice typing (client.action)")


@async_test
async def test_second_session_sees_outgoing_messages(server):
    chat = await make_chat(server)
    alice2 = await connect(server)
    assert (await login(alice2, chat.alice.phone)).id == chat.alice.id
    outgoing = EventCollector(alice2, events.NewMessage(outgoing=True))
    inbox = incoming(chat.bob.client)

    sent, _ = await send_and_receive(chat.alice.client, chat.to_bob, "from session one", inbox)

    event = await outgoing.next(lambda e: e.message.message == "from session one",
                                what="alice's second session sees her outgoing message")
    assert event.message.out and event.message.id == sent.id
    assert event.chat_id == chat.bob.id


# --------------------------------------------------------------------------------------------
# Requests in flight on one connection (client-compat.md §3.1)
# --------------------------------------------------------------------------------------------

@async_test
async def test_pipelined_sends_are_each_answered_with_their_own_result(server):
    chat = await make_chat(server)
    texts = [f"pipelined {i}" for i in range(30)]

    # One connection, 30 sends in flight at once: every answer pairs with its request.
    sent = await asyncio.gather(*(chat.alice.client.send_message(chat.to_bob, t) for t in texts))

    assert [m.message for m in sent] == texts
    assert len({m.id for m in sent}) == 30
    history = await chat.bob.client.get_messages(chat.to_alice, limit=50)
    assert sorted(m.message for m in history) == sorted(texts)


@async_test
async def test_ordered_batch_keeps_its_order_and_stops_after_a_failure(server):
    chat = await make_chat(server)
    alice = chat.alice.client

    # ordered=True: Telethon wraps each request after the first in invokeAfterMsg.
    batch = [functions.messages.SendMessageRequest(peer=chat.to_bob, message=f"in order {i}", random_id=random_id())
             for i in range(10)]
    await alice(batch, ordered=True)
    history = await chat.bob.client.get_messages(chat.to_alice, limit=20)
    assert [m.message for m in reversed(history)] == [f"in order {i}" for i in range(10)]

    # The second request fails; the third waited for it and is refused without running.
    failing = [functions.messages.SendMessageRequest(peer=chat.to_bob, message=text, random_id=random_id())
               for text in ("before", "", "after")]
    with pytest.raises(errors.MultiError) as caught:
        await alice(failing, ordered=True)
    first, second, third = caught.value.exceptions
    assert first is None
    assert rpc_error_name(second) == "MESSAGE_EMPTY"
    assert rpc_error_name(third) == "MSG_WAIT_FAILED"
    texts = [m.message for m in await chat.bob.client.get_messages(chat.to_alice, limit=3)]
    assert texts[0] == "before" and "after" not in texts
