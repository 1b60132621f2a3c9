"""Basic groups: creation, delivery to every member, membership, title and about, admins,
read state, edits and deletions, and migration to a supergroup.

A basic group's messages are copied into each member's own box (as on Telegram), so a
message's id is compared per member, never assumed equal across members. Service messages
(creation, joins, kicks, renames) are not NewMessage events in Telethon; they arrive as
events.ChatAction and are checked in each member's history.
"""

from telethon import events, functions, types, utils

from harness import (
    EventCollector,
    action_event,
    async_test,
    channel_in,
    channel_peer_id,
    channel_seen_by,
    chat_in,
    create_group,
    expect_rpc_error,
    input_user,
    make_accounts,
    peer_of,
    random_username,
    raw_history,
    send_and_receive,
    send_raw,
    service_actions,
    updates_of,
)

TITLE = "Weekend plans"


def group_peer(chat) -> types.InputPeerChat:
    return types.InputPeerChat(chat.id)


async def history(account, chat, limit=20):
    """``account``'s own copy of the group's history, newest first."""
    return await account.client.get_messages(group_peer(chat), limit=limit)


def texts(messages) -> list[str]:
    return [m.message for m in messages if not isinstance(m, types.MessageService)]


async def participants(account, chat) -> dict:
    """user id -> ChatParticipant* type, from messages.getFullChat as ``account`` sees it."""
    full = await account.client(functions.messages.GetFullChatRequest(chat.id))
    assert isinstance(full, types.messages.ChatFull), full
    listed = full.full_chat.participants
    assert isinstance(listed, types.ChatParticipants), listed
    return {p.user_id: type(p) for p in listed.participants}


def incoming(account):
    return EventCollector(account.client, events.NewMessage(incoming=True))


def chat_actions(account):
    return EventCollector(account.client, events.ChatAction())


# --------------------------------------------------------------------------------------------
# Creation and delivery
# --------------------------------------------------------------------------------------------

@async_test
async def test_create_group(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    actions = {m.id: chat_actions(m) for m in (bob, carol)}

    chat = await create_group(alice, [bob, carol], TITLE)

    assert isinstance(chat, types.Chat)
    assert chat.title == TITLE and chat.participants_count == 3
    assert chat.creator and not chat.left and not chat.deactivated
    for member in (bob, carol):
        event = await actions[member.id].next(
            action_event(types.MessageActionChatCreate, -chat.id),
            what=f"{member.me.first_name} is told about the new group")
        assert event.created and event.new_title == TITLE
    for member in (alice, bob, carol):
        messages = await history(member, chat)
        created = service_actions(messages, types.MessageActionChatCreate)
        assert len(messages) == 1 and len(created) == 1, messages
        assert created[0].action.title == TITLE
        # Assumed: the action lists the invited users; whether the creator is listed too
        # differs between Telegram's clients and servers over time, so both are accepted.
        assert {bob.id, carol.id} <= set(created[0].action.users) <= {alice.id, bob.id, carol.id}
        assert created[0].sender_id == alice.id
        assert created[0].out is (member is alice)


@async_test
async def test_group_message_reaches_every_member(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    # Two private messages first put bob's and carol's boxes two ids ahead of alice's.
    to_carol = await peer_of(bob, carol)
    for text in ("p1", "p2"):
        await bob.client.send_message(to_carol, text)
    chat = await create_group(alice, [bob, carol], TITLE)
    inboxes = {m.id: incoming(m) for m in (bob, carol)}

    sent = await alice.client.send_message(group_peer(chat), "hello group")

    assert sent.out and sent.message == "hello group" and sent.chat_id == -chat.id
    copies = {}
    for member in (bob, carol):
        event = await inboxes[member.id].next(lambda e: e.message.message == "hello group",
                                              what=f"{member.me.first_name} gets the message")
        assert event.chat_id == -chat.id and event.sender_id == alice.id
        assert event.is_group and not event.is_private and not event.is_channel
        assert not event.message.out
        copies[member.id] = event.message.id
    # Each member's copy carries an id of that member's own box.
    assert copies[bob.id] != sent.id and copies[carol.id] != sent.id
    for member in (bob, carol):
        messages = await history(member, chat)
        assert texts(messages) == ["hello group"]
        assert messages[0].id == copies[member.id] and messages[0].sender_id == alice.id
        assert (await member.client.get_messages(group_peer(chat), ids=copies[member.id])).message \
            == "hello group"
    assert texts(await history(alice, chat)) == ["hello group"]


@async_test
async def test_group_mentions_by_name_and_username(server):
    """In a basic group (a copy per member), a mention by name entity and one by plain
    "@username" flag the mentioned member's copy and count in their dialog."""
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    chat = await create_group(alice, [bob, carol], TITLE)
    carol_name = random_username("carol")
    await carol.client(functions.account.UpdateUsernameRequest(carol_name))
    await alice.client.send_message(group_peer(chat), f"[Bob](tg://user?id={bob.id}), ask @{carol_name}")
    [bob_copy] = [m for m in await history(bob, chat) if m.message and m.message.startswith("Bob")]
    [carol_copy] = [m for m in await history(carol, chat) if m.message and m.message.startswith("Bob")]
    [alice_copy] = [m for m in await history(alice, chat) if m.message and m.message.startswith("Bob")]
    assert bob_copy.mentioned and carol_copy.mentioned and not alice_copy.mentioned
    assert any(isinstance(e, types.MessageEntityMention) for e in carol_copy.entities)
    for member in (bob, carol):
        dialog = {d.id: d for d in await member.client.get_dialogs()}[-chat.id]
        assert dialog.dialog.unread_mentions_count == 1, member.me.first_name


@async_test
async def test_group_dialog_unread_and_read(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    chat = await create_group(alice, [bob], TITLE)
    peer = group_peer(chat)
    # Bob reads the creation message first, so only alice's texts below count as unread.
    created = await history(bob, chat)
    await bob.client.send_read_acknowledge(peer, max_id=created[0].id)
    inbox = incoming(bob)
    receipts = EventCollector(alice.client, events.MessageRead(inbox=False))

    received = [(await send_and_receive(alice.client, peer, text, inbox))[1]
                for text in ("u1", "u2", "u3")]
    last_sent = (await history(alice, chat, limit=1))[0]

    dialogs = {d.id: d for d in await bob.client.get_dialogs()}
    dialog = dialogs.get(-chat.id)
    assert dialog is not None, "the group is not among bob's dialogs"
    assert dialog.is_group and isinstance(dialog.entity, types.Chat)
    assert dialog.title == TITLE
    assert dialog.unread_count == 3
    assert dialog.message.message == "u3" and dialog.message.id == received[-1].id

    assert await bob.client.send_read_acknowledge(peer, max_id=received[-1].id)

    # (Bob's first read, of alice's creation message, may also reach alice: skip it.)
    receipt = await receipts.next(lambda e: e.chat_id == -chat.id and e.max_id >= last_sent.id,
                                  what="alice sees bob read her texts")
    assert receipt.outbox and receipt.max_id == last_sent.id
    dialogs = {d.id: d for d in await bob.client.get_dialogs()}
    assert dialogs[-chat.id].unread_count == 0
    alice_dialog = {d.id: d for d in await alice.client.get_dialogs()}[-chat.id]
    assert alice_dialog.unread_count == 0 and alice_dialog.title == TITLE


@async_test
async def test_group_edit_and_delete_reach_members(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    chat = await create_group(alice, [bob, carol], TITLE)
    peer = group_peer(chat)
    members = (bob, carol)
    inboxes = {m.id: incoming(m) for m in members}
    edits = {m.id: EventCollector(m.client, events.MessageEdited()) for m in members}
    deletions = {m.id: EventCollector(m.client, events.MessageDeleted()) for m in members}

    sent = await alice.client.send_message(peer, "draft")
    copies = {}
    for m in members:
        event = await inboxes[m.id].next(lambda e: e.message.message == "draft",
                                         what=f"{m.me.first_name} gets the draft")
        copies[m.id] = event.message.id

    edited = await alice.client.edit_message(peer, sent.id, "final")
    assert edited.id == sent.id and edited.message == "final"
    for m in members:
        event = await edits[m.id].next(lambda e, mine=copies[m.id]: e.id == mine,
                                       what=f"{m.me.first_name} sees the edit")
        assert event.message.message == "final" and event.message.edit_date is not None
        assert event.chat_id == -chat.id
    with expect_rpc_error({"MESSAGE_AUTHOR_REQUIRED"}):
        await carol.client.edit_message(peer, copies[carol.id], "hijacked")

    affected = await alice.client.delete_messages(peer, [sent.id], revoke=True)
    assert sum(a.pts_count for a in affected) == 1
    for m in members:
        await deletions[m.id].next(lambda e, mine=copies[m.id]: mine in e.deleted_ids,
                                   what=f"{m.me.first_name} sees the deletion")
        assert await m.client.get_messages(peer, ids=copies[m.id]) is None
    assert await alice.client.get_messages(peer, ids=sent.id) is None


# --------------------------------------------------------------------------------------------
# Membership
# --------------------------------------------------------------------------------------------

@async_test
async def test_add_member_then_kick(server):
    alice, bob, dave = await make_accounts(server, "Alice", "Bob", "Dave")
    chat = await create_group(alice, [bob], TITLE)
    peer = group_peer(chat)
    dave_actions, bob_actions = chat_actions(dave), chat_actions(bob)

    result = await alice.client(functions.messages.AddChatUserRequest(
        chat.id, await input_user(alice, dave), fwd_limit=10))
    # Since layer 166 Telegram answers messages.invitedUsers; older layers bare Updates.
    assert isinstance(updates_of(result), (types.Updates, types.UpdatesCombined)), result

    added = await dave_actions.next(action_event(types.MessageActionChatAddUser, -chat.id),
                                    what="dave is told he was added")
    assert added.user_added and added.user_ids == [dave.id]
    adds = service_actions(await history(dave, chat), types.MessageActionChatAddUser)
    assert [m.action.users for m in adds] == [[dave.id]] and adds[0].sender_id == alice.id
    assert set(await participants(alice, chat)) == {alice.id, bob.id, dave.id}
    dave_inbox = incoming(dave)
    await send_and_receive(alice.client, peer, "welcome dave", dave_inbox)

    await alice.client(functions.messages.DeleteChatUserRequest(chat.id, await input_user(alice, dave)))

    kicked = await bob_actions.next(action_event(types.MessageActionChatDeleteUser, -chat.id),
                                    what="bob sees dave kicked")
    assert kicked.user_kicked and kicked.user_ids == [dave.id]
    for member in (alice, bob):
        removals = service_actions(await history(member, chat), types.MessageActionChatDeleteUser)
        assert [m.action.user_id for m in removals] == [dave.id]
        assert removals[0].sender_id == alice.id
    assert set(await participants(alice, chat)) == {alice.id, bob.id}
    with expect_rpc_error({"CHAT_WRITE_FORBIDDEN"}, code=403):
        await send_raw(dave.client, peer, "let me back in")
    assert "let me back in" not in texts(await history(alice, chat))


@async_test
async def test_member_leaves(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    chat = await create_group(alice, [bob, carol], TITLE)
    alice_actions = chat_actions(alice)

    await bob.client(functions.messages.DeleteChatUserRequest(chat.id, types.InputUserSelf()))

    left = await alice_actions.next(action_event(types.MessageActionChatDeleteUser, -chat.id),
                                    what="alice sees bob leave")
    assert left.user_left and left.user_ids == [bob.id]
    assert left.action_message.sender_id == bob.id
    assert set(await participants(alice, chat)) == {alice.id, carol.id}
    with expect_rpc_error({"CHAT_WRITE_FORBIDDEN"}, code=403):
        await send_raw(bob.client, group_peer(chat), "still here?")
    carol_inbox = incoming(carol)
    await send_and_receive(alice.client, group_peer(chat), "just us now", carol_inbox)


# --------------------------------------------------------------------------------------------
# Title, about, admins
# --------------------------------------------------------------------------------------------

@async_test
async def test_edit_group_title(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    chat = await create_group(alice, [bob], TITLE)
    bob_actions = chat_actions(bob)

    result = await alice.client(functions.messages.EditChatTitleRequest(chat.id, "Renamed"))

    assert chat_in(result, chat.id).title == "Renamed"
    event = await bob_actions.next(action_event(types.MessageActionChatEditTitle, -chat.id),
                                   what="bob sees the new title")
    assert event.new_title == "Renamed"
    for member in (alice, bob):
        chats = await member.client(functions.messages.GetChatsRequest([chat.id]))
        assert [(c.id, c.title) for c in chats.chats] == [(chat.id, "Renamed")]
        renames = service_actions(await history(member, chat), types.MessageActionChatEditTitle)
        assert [m.action.title for m in renames] == ["Renamed"]
    seen_by_bob = (await bob.client(functions.messages.GetChatsRequest([chat.id]))).chats[0]
    assert not seen_by_bob.creator and seen_by_bob.participants_count == 2


@async_test
async def test_empty_group_title_is_rejected(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")

    with expect_rpc_error({"CHAT_TITLE_EMPTY"}, code=400):
        await alice.client(functions.messages.CreateChatRequest(
            users=[await input_user(alice, bob)], title=""))
    chat = await create_group(alice, [bob], TITLE)
    # Assumed as on Telegram: the title is trimmed, so blanks alone are empty too.
    for empty in ("", "   "):
        with expect_rpc_error({"CHAT_TITLE_EMPTY"}, code=400):
            await alice.client(functions.messages.EditChatTitleRequest(chat.id, empty))
    chats = await bob.client(functions.messages.GetChatsRequest([chat.id]))
    assert chats.chats[0].title == TITLE


@async_test
async def test_full_chat_lists_participants_and_about(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    chat = await create_group(alice, [bob, carol], TITLE)

    full = await bob.client(functions.messages.GetFullChatRequest(chat.id))

    assert isinstance(full, types.messages.ChatFull)
    assert isinstance(full.full_chat, types.ChatFull) and full.full_chat.id == chat.id
    assert full.full_chat.about == ""
    listed = full.full_chat.participants.participants
    assert {p.user_id: type(p) for p in listed} == {
        alice.id: types.ChatParticipantCreator,
        bob.id: types.ChatParticipant,
        carol.id: types.ChatParticipant,
    }
    assert all(p.inviter_id == alice.id for p in listed if isinstance(p, types.ChatParticipant))
    assert {u.id for u in full.users} >= {alice.id, bob.id, carol.id}
    assert [c.id for c in full.chats if isinstance(c, types.Chat)] == [chat.id]

    about = "Who brings what"
    assert await alice.client(functions.messages.EditChatAboutRequest(
        peer=group_peer(chat), about=about)) is True
    full = await carol.client(functions.messages.GetFullChatRequest(chat.id))
    assert full.full_chat.about == about

    assert await alice.client(functions.messages.EditChatAboutRequest(
        peer=group_peer(chat), about="a" * 255)) is True
    with expect_rpc_error({"CHAT_ABOUT_TOO_LONG"}, code=400):
        await alice.client(functions.messages.EditChatAboutRequest(
            peer=group_peer(chat), about="b" * 256))
    full = await bob.client(functions.messages.GetFullChatRequest(chat.id))
    assert full.full_chat.about == "a" * 255


@async_test
async def test_make_group_admin(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    chat = await create_group(alice, [bob, carol], TITLE)

    assert await alice.client(functions.messages.EditChatAdminRequest(
        chat.id, await input_user(alice, bob), is_admin=True)) is True

    for viewer in (alice, carol):
        assert await participants(viewer, chat) == {
            alice.id: types.ChatParticipantCreator,
            bob.id: types.ChatParticipantAdmin,
            carol.id: types.ChatParticipant,
        }
    # Only the creator appoints admins in a basic group.
    with expect_rpc_error({"CHAT_ADMIN_REQUIRED"}):
        await carol.client(functions.messages.EditChatAdminRequest(
            chat.id, await input_user(carol, bob), is_admin=False))

    assert await alice.client(functions.messages.EditChatAdminRequest(
        chat.id, await input_user(alice, bob), is_admin=False)) is True
    assert (await participants(alice, chat))[bob.id] is types.ChatParticipant


@async_test
async def test_non_member_cannot_read_group(server):
    alice, bob, eve = await make_accounts(server, "Alice", "Bob", "Eve")
    chat = await create_group(alice, [bob], TITLE)
    await alice.client.send_message(group_peer(chat), "members only")

    with expect_rpc_error({"CHAT_ID_INVALID", "PEER_ID_INVALID"}, code=400):
        await raw_history(eve.client, group_peer(chat))
    # Assumed: any of these refusals is Telegram-like for a stranger writing to a group.
    with expect_rpc_error({"CHAT_ID_INVALID", "PEER_ID_INVALID", "CHAT_WRITE_FORBIDDEN"}):
        await send_raw(eve.client, group_peer(chat), "let me in")
    assert texts(await history(bob, chat)) == ["members only"]


# --------------------------------------------------------------------------------------------
# Migration to a supergroup
# --------------------------------------------------------------------------------------------

@async_test
async def test_migrate_group_to_supergroup(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    chat = await create_group(alice, [bob], TITLE)
    bob_inbox = incoming(bob)
    await send_and_receive(alice.client, group_peer(chat), "before migration", bob_inbox)

    result = await alice.client(functions.messages.MigrateChatRequest(chat.id))

    assert isinstance(result, (types.Updates, types.UpdatesCombined)), result
    channel = channel_in(result)
    assert channel.megagroup and not channel.broadcast and channel.creator
    assert channel.title == TITLE and channel.access_hash is not None
    old = chat_in(result, chat.id)
    assert old.deactivated
    assert isinstance(old.migrated_to, types.InputChannel) and old.migrated_to.channel_id == channel.id

    # The old group's history stays readable, ending with where it went.
    for member in (alice, bob):
        old_history = await history(member, chat)
        assert texts(old_history) == ["before migration"]
        moved = service_actions(old_history, types.MessageActionChatMigrateTo)
        assert [m.action.channel_id for m in moved] == [channel.id]
    # Assumed: any of these refusals is Telegram-like for writing to a deactivated group.
    with expect_rpc_error({"CHAT_ID_INVALID", "PEER_ID_INVALID", "CHAT_WRITE_FORBIDDEN"}):
        await send_raw(bob.client, group_peer(chat), "old group")

    # The supergroup starts with where it came from, and knows it.
    new_history = await alice.client.get_messages(channel, limit=10)
    came_from = service_actions(new_history, types.MessageActionChannelMigrateFrom)
    assert [(m.action.chat_id, m.action.title) for m in came_from] == [(chat.id, TITLE)]
    full = await alice.client(functions.channels.GetFullChannelRequest(channel))
    assert full.full_chat.migrated_from_chat_id == chat.id
    assert full.full_chat.participants_count == 2

    # Bob moved along: he sees the supergroup and talks there.
    bob_channel = await channel_seen_by(bob, channel.id)
    assert bob_channel.megagroup and not bob_channel.creator
    alice_inbox = incoming(alice)
    sent, got = await send_and_receive(bob.client, bob_channel, "after migration", alice_inbox)
    assert got.chat_id == channel_peer_id(channel.id) == utils.get_peer_id(channel)
    assert got.id == sent.id and got.sender_id == bob.id


@async_test
async def test_common_chats(server):
    """messages.getCommonChats: the groups and channels both users are in, newest first,
    paged by max_id; a group one of them left is not common any more."""
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    first = await create_group(alice, [bob], "First")
    await create_group(alice, [carol], "Not with bob")
    second = await create_group(alice, [bob, carol], "Second")
    to_bob = await input_user(alice, bob)
    common = await alice.client(functions.messages.GetCommonChatsRequest(user_id=to_bob, max_id=0, limit=10))
    assert [c.id for c in common.chats] == [second.id, first.id]
    page = await alice.client(functions.messages.GetCommonChatsRequest(user_id=to_bob, max_id=second.id, limit=10))
    assert [c.id for c in page.chats] == [first.id]
    await bob.client(functions.messages.DeleteChatUserRequest(chat_id=first.id, user_id=types.InputUserSelf()))
    common = await alice.client(functions.messages.GetCommonChatsRequest(user_id=to_bob, max_id=0, limit=10))
    assert [c.id for c in common.chats] == [second.id]
