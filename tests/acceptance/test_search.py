"""Searching messages with Telethon: in a chat (messages.search) and everywhere
(messages.searchGlobal), by word prefix, with counts and paging."""

from telethon import functions, types

from harness import async_test, create_channel, invite_to_channel, make_chat, send_raw


@async_test
async def test_search_in_a_chat_by_word_prefix(server):
    chat = await make_chat(server)
    a, to_bob = chat.alice.client, chat.to_bob
    for text in ["Lunch at the Café tomorrow?", "cafeteria is closed", "see you at noon", "CAFÉ it is"]:
        await send_raw(a, to_bob, text)
    found = await a.get_messages(to_bob, search="cafe", limit=10)
    assert [m.raw_text for m in found] == ["CAFÉ it is", "cafeteria is closed", "Lunch at the Café tomorrow?"]
    assert found.total == 3
    # Bob finds the same messages in his own box.
    found = await chat.bob.client.get_messages(chat.to_alice, search="noon")
    assert [m.raw_text for m in found] == ["see you at noon"] and found[0].out is False
    # Every word must match; punctuation alone finds nothing.
    assert (await a.get_messages(to_bob, search="cafe noon")).total == 0
    assert (await a.get_messages(to_bob, search="?!")).total == 0
    # Paging through with a small limit gets every message once.
    seen = [m.raw_text async for m in a.iter_messages(to_bob, search="cafe", limit=None, wait_time=0)]
    assert len(seen) == 3 and len(set(seen)) == 3


@async_test
async def test_search_from_a_sender_in_a_group_and_deleted_for_me(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    await send_raw(a, chat.to_bob, "alpha from alice")
    await send_raw(b, chat.to_alice, "alpha from bob")
    mine = await a.get_messages(chat.to_bob, search="alpha")
    assert mine.total == 2
    # Deleting for oneself: gone from one's own results only.
    await a.delete_messages(chat.to_bob, [m.id for m in mine if m.out], revoke=False)
    assert [m.raw_text for m in await a.get_messages(chat.to_bob, search="alpha")] == ["alpha from bob"]
    assert (await b.get_messages(chat.to_alice, search="alpha")).total == 2


@async_test
async def test_global_search_spans_chats_and_channels(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    channel = await create_channel(b, "Announcements", megagroup=False)
    await invite_to_channel(chat.bob, channel, [chat.alice])
    await b.send_message(channel, "zeppelin launch today")
    await send_raw(b, chat.to_alice, "did you see the zeppelin?")
    await send_raw(a, chat.to_bob, "unrelated")
    results = [m async for m in a.iter_messages(None, search="zeppel", limit=None, wait_time=0)]
    assert sorted(m.raw_text for m in results) == ["did you see the zeppelin?", "zeppelin launch today"]
    peers = {type(m.peer_id) for m in results}
    assert peers == {types.PeerUser, types.PeerChannel}
    # In the channel alone, and as a raw call with its count.
    # (Alice addresses the channel with her own access hash, which the results gave her.)
    in_channel = await a.get_messages(types.PeerChannel(channel.id), search="launch")
    assert [m.raw_text for m in in_channel] == ["zeppelin launch today"]
    raw = await a(functions.messages.SearchGlobalRequest(
        q="zeppelin", filter=types.InputMessagesFilterEmpty(), min_date=None, max_date=None,
        offset_rate=0, offset_peer=types.InputPeerEmpty(), offset_id=0, limit=1))
    assert raw.count == 2 and len(raw.messages) == 1 and raw.next_rate == int(raw.messages[0].date.timestamp())
