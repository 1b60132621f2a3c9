"""Reactions with Telethon: sendReaction, the pushed updateMessageReactions, and reactions on
messages read back."""

from telethon import events, functions, types

from harness import EventCollector, async_test, create_channel, expect_rpc_error, invite_to_channel, make_chat


def emoji(e: str) -> list:
    return [types.ReactionEmoji(emoticon=e)]


@async_test
async def test_reaction_is_pushed_to_both_sides_and_read_back(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    sent = await a.send_message(chat.to_bob, "react to this")
    (theirs,) = await b.get_messages(chat.to_alice, limit=1)
    pushed_to_alice = EventCollector(a, events.Raw(types.UpdateMessageReactions))
    result = await b(functions.messages.SendReactionRequest(peer=chat.to_alice, msg_id=theirs.id, reaction=emoji("👍")))
    (own,) = [u for u in result.updates if isinstance(u, types.UpdateMessageReactions)]
    assert own.msg_id == theirs.id
    (count,) = own.reactions.results
    assert (count.reaction.emoticon, count.count, count.chosen_order) == ("👍", 1, 0)
    # Alice gets it on her own copy, not marked as hers, with Bob as the reactor.
    update = await pushed_to_alice.next()
    assert update.msg_id == sent.id and update.peer == types.PeerUser(chat.bob.id)
    (count,) = update.reactions.results
    assert (count.count, count.chosen_order) == (1, None)
    assert [r.peer_id for r in update.reactions.recent_reactions] == [types.PeerUser(chat.bob.id)]
    # Reading the message shows the reactions.
    (mine,) = await a.get_messages(chat.to_bob, ids=[sent.id])
    assert mine.reactions.results[0].reaction.emoticon == "👍"
    # Alice reacts the same: two, hers chosen; Bob takes his back: one.
    await a(functions.messages.SendReactionRequest(peer=chat.to_bob, msg_id=sent.id, reaction=emoji("👍")))
    await b(functions.messages.SendReactionRequest(peer=chat.to_alice, msg_id=theirs.id, reaction=[]))
    got = await a(functions.messages.GetMessagesReactionsRequest(peer=chat.to_bob, id=[sent.id]))
    (update,) = [u for u in got.updates if isinstance(u, types.UpdateMessageReactions)]
    (count,) = update.reactions.results
    assert (count.count, count.chosen_order) == (1, 0)


@async_test
async def test_reaction_errors_and_channel_posts(server):
    chat = await make_chat(server)
    a = chat.alice.client
    sent = await a.send_message(chat.to_bob, "x")
    with expect_rpc_error({"REACTION_INVALID"}, 400):
        await a(functions.messages.SendReactionRequest(peer=chat.to_bob, msg_id=sent.id, reaction=emoji("no")))
    with expect_rpc_error({"REACTION_INVALID"}, 400):
        await a(functions.messages.SendReactionRequest(peer=chat.to_bob, msg_id=sent.id,
                                                       reaction=[types.ReactionCustomEmoji(document_id=1)]))
    with expect_rpc_error({"MESSAGE_ID_INVALID"}, 400):
        await a(functions.messages.SendReactionRequest(peer=chat.to_bob, msg_id=sent.id + 1000, reaction=emoji("👍")))
    # A broadcast post: counts for everyone, but not who reacted.
    news = await create_channel(chat.bob.client, "News", megagroup=False)
    await invite_to_channel(chat.bob, news, [chat.alice])
    post = await chat.bob.client.send_message(news, "vote")
    channel = types.PeerChannel(news.id)
    (seen,) = await a.get_messages(channel, limit=1)
    result = await a(functions.messages.SendReactionRequest(peer=channel, msg_id=seen.id, reaction=emoji("🔥")))
    (update,) = [u for u in result.updates if isinstance(u, types.UpdateMessageReactions)]
    assert update.reactions.results[0].count == 1 and not update.reactions.can_see_list
    (owner_view,) = await chat.bob.client.get_messages(news, ids=[post.id])
    assert owner_view.reactions.results[0].reaction.emoticon == "🔥"
