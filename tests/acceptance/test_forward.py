"""Forwarding with Telethon's forward_messages: the header, Saved Messages, channels, pushes."""

from telethon import events, functions, types

from harness import (
    EventCollector,
    async_test,
    create_channel,
    expect_rpc_error,
    invite_to_channel,
    make_account,
    make_chat,
    peer_of,
)


@async_test
async def test_forward_to_a_third_user_names_the_origin(server):
    chat = await make_chat(server)
    carol = await make_account(server, "Carol")
    original = await chat.alice.client.send_message(chat.to_bob, "worth sharing")
    (received,) = await chat.bob.client.get_messages(chat.to_alice, limit=1)
    inbox = EventCollector(carol.client, events.NewMessage(incoming=True))
    to_carol = await peer_of(chat.bob, carol)
    forwarded = await chat.bob.client.forward_messages(to_carol, received)
    assert forwarded.raw_text == "worth sharing" and forwarded.out
    assert forwarded.fwd_from is not None
    assert forwarded.fwd_from.from_id == types.PeerUser(chat.alice.id)
    assert forwarded.fwd_from.date == original.date
    got = await inbox.next()
    assert got.raw_text == "worth sharing" and got.sender_id == chat.bob.id
    assert got.fwd_from.from_id == types.PeerUser(chat.alice.id)
    # The original sender comes with the push, so Telethon knows who it was.
    assert (await got.forward.get_sender()).id == chat.alice.id


@async_test
async def test_forward_several_keeps_order_and_saved_messages_remember_the_source(server):
    chat = await make_chat(server)
    ids = []
    for text in ["one", "two", "three"]:
        ids.append((await chat.alice.client.send_message(chat.to_bob, text)).id)
    saved = await chat.alice.client.forward_messages("me", ids, chat.to_bob)
    assert [m.raw_text for m in saved] == ["one", "two", "three"]
    for m, src in zip(saved, ids):
        assert m.fwd_from.saved_from_msg_id == src
        assert m.fwd_from.saved_from_peer == types.PeerUser(chat.bob.id)
    history = await chat.alice.client.get_messages("me", limit=3)
    assert [m.raw_text for m in reversed(history)] == ["one", "two", "three"]


@async_test
async def test_forward_a_channel_post_names_the_channel(server):
    chat = await make_chat(server)
    news = await create_channel(chat.bob.client, "News", megagroup=False)
    await invite_to_channel(chat.bob, news, [chat.alice])
    post = await chat.bob.client.send_message(news, "breaking")
    channel = types.PeerChannel(news.id)
    (seen,) = await chat.alice.client.get_messages(channel, limit=1)
    forwarded = await chat.alice.client.forward_messages(chat.to_bob, seen)
    assert forwarded.fwd_from.from_id == types.PeerChannel(news.id)
    assert forwarded.fwd_from.channel_post == post.id
    # A missing id, and lists that do not pair up.
    with expect_rpc_error({"MESSAGE_ID_INVALID"}, 400):
        await chat.alice.client(functions.messages.ForwardMessagesRequest(
            from_peer=chat.to_bob, id=[987654], random_id=[1], to_peer=chat.to_bob))
    with expect_rpc_error({"RANDOM_ID_INVALID"}, 400):
        await chat.alice.client(functions.messages.ForwardMessagesRequest(
            from_peer=chat.to_bob, id=[forwarded.id, forwarded.id], random_id=[2], to_peer=chat.to_bob))


@async_test
async def test_forwards_privacy_shows_a_name_instead_of_the_account(server):
    chat = await make_chat(server)
    carol = await make_account(server, "Carol")
    await chat.alice.client(functions.account.SetPrivacyRequest(
        key=types.InputPrivacyKeyForwards(), rules=[types.InputPrivacyValueDisallowAll()]))
    await chat.alice.client.send_message(chat.to_bob, "do not link me")
    (received,) = await chat.bob.client.get_messages(chat.to_alice, limit=1)
    forwarded = await chat.bob.client.forward_messages(await peer_of(chat.bob, carol), received)
    assert forwarded.fwd_from.from_id is None
    assert forwarded.fwd_from.from_name == chat.alice.me.first_name
