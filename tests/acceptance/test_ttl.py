"""Self-deleting messages with Telethon: messages.setHistoryTTL, ttl_period on what is sent
afterwards, and the deletion pushed to both sides on time, also across a restart."""

import asyncio

from telethon import events, functions, types
from telethon.sessions import StringSession

from harness import EventCollector, async_test, connect, expect_rpc_error, make_chat


@async_test(timeout=90)
async def test_a_five_second_message_disappears_on_both_sides(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    result = await a(functions.messages.SetHistoryTTLRequest(peer=chat.to_bob, period=5))
    (service,) = [u.message for u in result.updates if isinstance(u, types.UpdateNewMessage)]
    assert isinstance(service.action, types.MessageActionSetMessagesTTL) and service.action.period == 5
    gone_a = EventCollector(a, events.MessageDeleted())
    gone_b = EventCollector(b, events.MessageDeleted())
    sent = await a.send_message(chat.to_bob, "this will self-destruct")
    assert sent.ttl_period == 5
    (theirs,) = await b.get_messages(chat.to_alice, limit=1)
    assert theirs.ttl_period == 5 and theirs.raw_text == "this will self-destruct"
    deleted_a = await gone_a.next(lambda e: sent.id in e.deleted_ids, timeout=15)
    deleted_b = await gone_b.next(lambda e: theirs.id in e.deleted_ids, timeout=15)
    assert deleted_a and deleted_b
    assert [m.id for m in await a.get_messages(chat.to_bob, ids=[sent.id]) if m] == []
    # Only the service message is left on Bob's side.
    left = await b.get_messages(chat.to_alice, limit=5)
    assert [type(m.action) for m in left] == [types.MessageActionSetMessagesTTL]
    # The period shows on the dialog; out-of-range values are refused.
    (d,) = [d for d in await b.get_dialogs() if d.id == chat.alice.id]
    assert d.dialog.ttl_period == 5
    with expect_rpc_error({"TTL_PERIOD_INVALID"}, 400):
        await a(functions.messages.SetHistoryTTLRequest(peer=chat.to_bob, period=-5))


@async_test(timeout=150)
async def test_due_deletions_happen_after_a_restart(fresh_server):
    chat = await make_chat(fresh_server)
    a = chat.alice.client
    await a(functions.messages.SetHistoryTTLRequest(peer=chat.to_bob, period=3))
    sent = await a.send_message(chat.to_bob, "gone while down")
    saved = a.session.save()
    await asyncio.gather(chat.alice.client.disconnect(), chat.bob.client.disconnect())
    await asyncio.to_thread(fresh_server.stop, True)
    await asyncio.sleep(4)
    await asyncio.to_thread(fresh_server.start)
    alice = await connect(fresh_server, StringSession(saved))
    to_bob = await alice.get_input_entity(chat.bob.username)
    for _ in range(50):
        if not [m for m in await alice.get_messages(to_bob, ids=[sent.id]) if m]:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the due message was not deleted after the restart")


@async_test(timeout=90)
async def test_new_chats_start_with_the_default_auto_delete_period(server):
    """messages.setDefaultHistoryTTL: a private chat the account starts afterwards deletes its
    messages after that period, on both sides; users.getFullUser shows the chat's period."""
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    assert (await a(functions.messages.GetDefaultHistoryTTLRequest())).period == 0
    with expect_rpc_error({"TTL_PERIOD_INVALID"}, 400):
        await a(functions.messages.SetDefaultHistoryTTLRequest(period=-1))
    assert await a(functions.messages.SetDefaultHistoryTTLRequest(period=86400)) is True
    assert (await a(functions.messages.GetDefaultHistoryTTLRequest())).period == 86400

    sent = await a.send_message(chat.to_bob, "a new chat")
    assert sent.ttl_period == 86400
    (theirs,) = await b.get_messages(chat.to_alice, limit=1)
    assert theirs.ttl_period == 86400 and theirs.raw_text == "a new chat"
    full = await b(functions.users.GetFullUserRequest(chat.to_alice))
    assert full.full_user.ttl_period == 86400
    reply = await b.send_message(chat.to_alice, "and the reply")
    assert reply.ttl_period == 86400
