"""Supergroups (megagroups) and broadcast channels.

A channel keeps one copy of each message in a box of its own, so every member sees the same
message id and the channel has its own pts (updates.getChannelDifference). Access hashes are
per viewer: each account addresses the channel through what it received itself
(``channel_seen_by``), never through the creator's ``types.Channel``.
"""

import re

import pytest
from telethon import errors, events, functions, types, utils

from harness import (
    connect,
    login,
    updates_of,
    EVENT_TIMEOUT,
    EventCollector,
    action_event,
    async_test,
    channel_in,
    channel_peer_id,
    channel_seen_by,
    create_channel,
    dialog_for,
    expect_rpc_error,
    input_user,
    invite_to_channel,
    make_account,
    make_accounts,
    make_bulk_accounts,
    make_public,
    new_client,
    participant_user_id,
    peer_of,
    random_username,
    raw_history,
    rpc_error_code,
    rpc_error_name,
    send_and_receive,
    send_many,
    send_raw,
    service_actions,
    set_username,
)

ADMIN_RIGHTS = types.ChatAdminRights(
    post_messages=True, edit_messages=True, delete_messages=True, ban_users=True,
    invite_users=True, pin_messages=True, change_info=True)
MUTED = types.ChatBannedRights(until_date=None, send_messages=True)  # until_date None: forever
KICKED = types.ChatBannedRights(until_date=None, view_messages=True)
UNRESTRICTED = types.ChatBannedRights(until_date=None)


async def channel_with(owner, members, *, megagroup=True, title="Team room"):
    """A new channel of ``owner``'s with ``members`` invited; returns (channel as the owner
    sees it, {member id: channel as that member sees it})."""
    channel = await create_channel(owner.client, title, megagroup=megagroup)
    if members:
        await invite_to_channel(owner, channel, members)
    return channel, {m.id: await channel_seen_by(m, channel.id) for m in members}


def incoming(client):
    return EventCollector(client, events.NewMessage(incoming=True))


def texts(messages) -> list[str]:
    return [m.message for m in messages if not isinstance(m, types.MessageService)]


async def full_channel(client, channel) -> types.ChannelFull:
    full = await client(functions.channels.GetFullChannelRequest(channel))
    assert isinstance(full, types.messages.ChatFull) and isinstance(full.full_chat, types.ChannelFull)
    return full.full_chat


async def listed(client, channel, filter, *, offset=0, limit=200) -> dict:
    """user id -> participant, for one channels.getParticipants page that holds everyone."""
    result = await client(functions.channels.GetParticipantsRequest(
        channel, filter, offset=offset, limit=limit, hash=0))
    assert isinstance(result, types.channels.ChannelParticipants), result
    found = {participant_user_id(p): p for p in result.participants}
    assert result.count == len(found) == len(result.participants), result
    assert {u.id for u in result.users} >= set(found)
    return found


def is_updates(result) -> bool:
    return isinstance(updates_of(result), (types.Updates, types.UpdatesCombined))


# --------------------------------------------------------------------------------------------
# Creation, invitation, delivery
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("megagroup", [True, False], ids=["megagroup", "broadcast"])
@async_test
async def test_create_channel(server, megagroup):
    alice = await make_account(server, "Alice")

    result = await alice.client(functions.channels.CreateChannelRequest(
        title="Launch", about="What we ship",
        megagroup=True if megagroup else None, broadcast=None if megagroup else True))

    assert is_updates(result), result
    channel = channel_in(result)
    assert channel.title == "Launch" and channel.creator and not channel.left
    assert bool(channel.megagroup) is megagroup and bool(channel.broadcast) is not megagroup
    assert channel.access_hash is not None and channel.username is None
    history = await alice.client.get_messages(channel, limit=5)
    assert len(history) == 1, history
    created = service_actions(history, types.MessageActionChannelCreate)
    assert [m.action.title for m in created] == ["Launch"]
    assert created[0].id == 1  # a channel numbers its own messages from 1
    full = await full_channel(alice.client, channel)
    assert full.id == channel.id and full.about == "What we ship"
    assert full.participants_count == 1
    dialog = await dialog_for(alice, channel_peer_id(channel.id))
    assert dialog is not None and dialog.is_channel and bool(dialog.is_group) is megagroup
    assert dialog.dialog.pts == full.pts


@async_test
async def test_creating_channels_has_a_daily_budget(server):
    """50 groups and channels at once per account, then FLOOD_WAIT (one more every ~29 min);
    another account is not affected (docs/security.md §3.6)."""
    alice, bob = await make_accounts(server, "Alice", "Bob", flood_sleep_threshold=0)
    for i in range(50):
        await create_channel(alice.client, f"Room {i}", megagroup=i % 2 == 0)
    with pytest.raises(errors.FloodWaitError) as e:
        await create_channel(alice.client, "One too many")
    assert 60 < e.value.seconds <= 86400 / 50 + 1, e.value.seconds
    with pytest.raises(errors.FloodWaitError):
        await alice.client(functions.messages.CreateChatRequest(users=[await input_user(alice, bob)], title="Also"))
    await create_channel(bob.client, "Bob's own")


@async_test
async def test_invite_and_deliver_to_members(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    channel = await create_channel(alice.client, "Team room")

    invited = await invite_to_channel(alice, channel, [bob, carol])

    assert is_updates(invited.updates)
    views = {m.id: await channel_seen_by(m, channel.id) for m in (bob, carol)}
    for view in views.values():
        assert view.megagroup and not view.creator and not view.left and view.title == "Team room"
    inboxes = {m.id: incoming(m.client) for m in (bob, carol)}

    sent = await alice.client.send_message(channel, "hello team")

    for member in (bob, carol):
        event = await inboxes[member.id].next(lambda e: e.message.message == "hello team",
                                              what=f"{member.me.first_name} gets the post")
        assert event.chat_id == channel_peer_id(channel.id)
        assert event.is_channel and event.is_group is True and not event.is_private
        assert event.sender_id == alice.id and not event.message.out
        assert event.message.id == sent.id  # one copy per channel: the same id for everyone
    alice_inbox = incoming(alice.client)
    reply, got = await send_and_receive(bob.client, views[bob.id], "hi alice", alice_inbox,
                                        reply_to=sent.id)
    assert got.id == reply.id and got.reply_to_msg_id == sent.id and got.sender_id == bob.id
    assert (await full_channel(carol.client, views[carol.id])).participants_count == 3


@async_test
async def test_each_member_gets_the_post_as_it_concerns_them(server):
    # The server renders a post once for the members it does not name and patches in each
    # one's access hashes; the author and the mentioned member get their own rendering.
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    channel, views = await channel_with(alice, [bob, carol])
    alice2 = await connect(server)
    assert (await login(alice2, alice.phone)).id == alice.id
    await alice2.get_dialogs()  # a request: the session now receives updates
    raw = {m.id: EventCollector(m.client, events.Raw(types.UpdateNewChannelMessage)) for m in (bob, carol)}
    raw[alice.id] = EventCollector(alice2, events.Raw(types.UpdateNewChannelMessage))

    # A Telethon markdown mention: an inputMessageEntityMentionName holding an inputPeerUser.
    await alice.client.send_message(channel, f"[Bob](tg://user?id={bob.id}) look at this")

    got = {uid: await collector.next(lambda u: u.message.message == "Bob look at this",
                                     what=f"user {uid} gets the post")
           for uid, collector in raw.items()}
    message = {uid: u.message for uid, u in got.items()}
    assert message[bob.id].mentioned and not message[bob.id].out
    assert not message[carol.id].mentioned and not message[carol.id].out
    assert message[alice.id].out and not message[alice.id].mentioned
    assert len({m.id for m in message.values()}) == 1
    # Every member's copy carries that member's own access hashes, which work for them.
    # (Telethon hands a raw update the users and chats of the push it came in.)
    for member in (bob, carol):
        entities = got[member.id]._entities
        chat = entities[channel_peer_id(channel.id)]
        assert chat.access_hash == views[member.id].access_hash
        author = entities[alice.id]
        assert not author.is_self and author.phone is None
        [user] = await member.client(functions.users.GetUsersRequest(
            [types.InputUser(alice.id, author.access_hash)]))
        assert user.id == alice.id
    await alice2.disconnect()


@async_test
async def test_username_mention_marks_the_member(server):
    """Plain text "@name" (Telethon sends no entity for it): the server adds the
    messageEntityMention, flags the mentioned member's copy and counts it in their dialog's
    unread_mentions_count until they read it. A username of someone outside the group
    mentions nobody."""
    alice, bob, carol, dave = await make_accounts(server, "Alice", "Bob", "Carol", "Dave")
    channel, views = await channel_with(alice, [bob, carol])
    bob_name = await set_username(bob.client, "bob")
    dave_name = await set_username(dave.client, "dave")
    raw = {m.id: EventCollector(m.client, events.Raw(types.UpdateNewChannelMessage)) for m in (bob, carol)}

    text = f"héllo 👋 @{bob_name.upper()} and @{dave_name}"
    sent = await alice.client.send_message(channel, text, parse_mode=None)
    mention = types.MessageEntityMention(offset=9, length=1 + len(bob_name))
    assert sent.entities and sent.entities[0] == mention, sent.entities

    got = {uid: (await c.next(lambda u: u.message.id == sent.id, what=f"user {uid} gets it")).message
           for uid, c in raw.items()}
    assert got[bob.id].mentioned and not got[carol.id].mentioned
    assert got[bob.id].entities[0] == mention and len(got[bob.id].entities) == 2
    bob_dialog = await dialog_for(bob, channel_peer_id(channel.id))
    assert bob_dialog.dialog.unread_mentions_count == 1
    assert (await dialog_for(carol, channel_peer_id(channel.id))).dialog.unread_mentions_count == 0
    await bob.client(functions.channels.ReadHistoryRequest(views[bob.id], max_id=sent.id))
    assert (await dialog_for(bob, channel_peer_id(channel.id))).dialog.unread_mentions_count == 0


@async_test
async def test_supergroup_typing_reaches_other_members(server):
    """setTyping in a supergroup: updateChannelUserTyping to the other members (Telethon's
    UserUpdate with the channel as chat); a repeat within 3 s is not sent again."""
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    channel, views = await channel_with(alice, [bob, carol])
    seen = {m.id: EventCollector(m.client, events.UserUpdate()) for m in (alice, bob, carol)}
    # A request on each client first: its session then receives pushes.
    for m in (alice, bob, carol):
        await m.client.get_dialogs()
    assert await bob.client(functions.messages.SetTypingRequest(
        peer=views[bob.id], action=types.SendMessageTypingAction())) is True
    for m in (alice, carol):
        event = await seen[m.id].next(lambda e: e.user_id == bob.id and e.typing,
                                      what=f"{m.me.first_name} sees bob typing")
        assert event.chat_id == channel_peer_id(channel.id)
    assert await bob.client(functions.messages.SetTypingRequest(
        peer=views[bob.id], action=types.SendMessageTypingAction())) is True
    # Typing and posts travel on the channel's topic in order: once carol has the marker,
    # a second typing event would have reached her before it.
    await send_and_receive(alice.client, channel, "marker", incoming(carol.client))
    repeats = [e for e in seen[carol.id].drain() if e.user_id == bob.id]
    assert not repeats, "a second setTyping within 3 s is not pushed"
    assert not [e for e in seen[bob.id].drain() if e.user_id == bob.id], "nor to the typist"


@async_test
async def test_broadcast_channel_only_admins_post(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob], megagroup=False, title="News")
    bob_view = views[bob.id]
    assert bob_view.broadcast and not bob_view.megagroup

    with expect_rpc_error({"CHAT_ADMIN_REQUIRED"}):
        await send_raw(bob.client, bob_view, "can I post?")
    with expect_rpc_error({"CHAT_ADMIN_REQUIRED"}):
        await bob.client(functions.channels.EditTitleRequest(bob_view, "Bob's news"))

    inbox = incoming(bob.client)
    sent = await alice.client.send_message(channel, "breaking news")
    event = await inbox.next(lambda e: e.message.message == "breaking news", what="bob gets the post")
    assert event.chat_id == channel_peer_id(channel.id)
    assert event.is_channel and event.is_group is False
    assert event.message.post and event.message.id == sent.id
    assert texts(await bob.client.get_messages(bob_view, limit=10)) == ["breaking news"]


# --------------------------------------------------------------------------------------------
# Participants
# --------------------------------------------------------------------------------------------

@async_test
async def test_participant_filters(server):
    alice, bob, carol, dave, erin = await make_accounts(
        server, "Alice", "Bob", "Carol", "Dave", "Zephyrine")
    channel, _ = await channel_with(alice, [bob, carol, dave, erin])
    await alice.client(functions.channels.EditAdminRequest(
        channel, await input_user(alice, bob), ADMIN_RIGHTS, rank="boss"))
    await alice.client(functions.channels.EditBannedRequest(
        channel, await peer_of(alice, carol), MUTED))
    await alice.client(functions.channels.EditBannedRequest(
        channel, await peer_of(alice, dave), KICKED))

    admins = await listed(alice.client, channel, types.ChannelParticipantsAdmins())
    assert set(admins) == {alice.id, bob.id}
    assert isinstance(admins[alice.id], types.ChannelParticipantCreator)
    assert isinstance(admins[bob.id], types.ChannelParticipantAdmin) and admins[bob.id].rank == "boss"

    kicked = await listed(alice.client, channel, types.ChannelParticipantsKicked(q=""))
    assert set(kicked) == {dave.id}
    assert isinstance(kicked[dave.id], types.ChannelParticipantBanned)
    assert kicked[dave.id].banned_rights.view_messages and kicked[dave.id].kicked_by == alice.id

    banned = await listed(alice.client, channel, types.ChannelParticipantsBanned(q=""))
    assert set(banned) == {carol.id}
    assert isinstance(banned[carol.id], types.ChannelParticipantBanned)
    assert banned[carol.id].banned_rights.send_messages
    assert not banned[carol.id].banned_rights.view_messages

    # Assumed as on Telegram: a restricted member is still a member; a kicked one is not.
    recent = await listed(alice.client, channel, types.ChannelParticipantsRecent())
    assert set(recent) == {alice.id, bob.id, carol.id, erin.id}
    assert (await full_channel(alice.client, channel)).participants_count == 4

    for query in ("Zephyrine", "zeph"):  # by first name, case-insensitive prefix
        assert set(await listed(alice.client, channel, types.ChannelParticipantsSearch(q=query))) \
            == {erin.id}, query
    assert await listed(alice.client, channel, types.ChannelParticipantsSearch(q="Quixotic")) == {}


@async_test
async def test_get_participant(server):
    alice, bob, eve = await make_accounts(server, "Alice", "Bob", "Eve")
    channel, views = await channel_with(alice, [bob])

    got = await alice.client(functions.channels.GetParticipantRequest(channel, await peer_of(alice, bob)))

    assert isinstance(got, types.channels.ChannelParticipant)
    assert isinstance(got.participant, types.ChannelParticipant)
    assert got.participant.user_id == bob.id
    assert any(u.id == bob.id for u in got.users)
    me = await alice.client(functions.channels.GetParticipantRequest(channel, types.InputPeerSelf()))
    assert isinstance(me.participant, types.ChannelParticipantCreator)
    assert me.participant.user_id == alice.id
    himself = await bob.client(functions.channels.GetParticipantRequest(
        views[bob.id], types.InputPeerSelf()))
    assert isinstance(himself.participant, types.ChannelParticipantSelf)
    assert himself.participant.user_id == bob.id and himself.participant.inviter_id == alice.id
    with expect_rpc_error({"USER_NOT_PARTICIPANT"}, code=400):
        await alice.client(functions.channels.GetParticipantRequest(channel, await peer_of(alice, eve)))


# Paging through members needs hundreds of accounts. make_account costs a key exchange and
# about eight requests, and keeps a connection open, per account: at an estimated few hundred
# ms each, 250 members would take a minute or more and 1,000 several. make_bulk_accounts signs
# accounts up back to back on four auth keys (five or six requests each, no key exchange, no
# connection kept), so the 250-member test can stay in the default suite and the 1,000-member
# one (marked large_group) should take a minute or two. (Estimates, from the README's
# benchmark figures; not yet timed against a server with groups.)
PAGE = 200                   # the most channels.getParticipants returns at once
PAGING_MEMBERS = 250         # more than one page
LARGE_GROUP_MEMBERS = 1000
INVITED_MEMBERS = 100        # Telegram lets admins add only a group's first 200 members
INVITE_BATCH = 50


async def fill_megagroup(server, owner, channel, count, *, invited=0) -> list[int]:
    """``count`` bulk accounts made members of ``channel``: the first ``invited`` added by
    ``owner`` (channels.inviteToChannel, INVITE_BATCH at a time), the others joining by
    themselves through the channel's public username. Returns their ids."""
    name = await make_public(owner.client, channel)

    async def join(client, user):
        resolved = await client(functions.contacts.ResolveUsernameRequest(name))
        found = channel_in(resolved, channel.id)
        result = await client(functions.channels.JoinChannelRequest(
            types.InputChannel(found.id, found.access_hash)))
        assert is_updates(result), result

    invitees = await make_bulk_accounts(server, invited, "Invitee", username=True)
    for start in range(0, invited, INVITE_BATCH):
        users = [utils.get_input_user(await owner.client.get_input_entity(a.username))
                 for a in invitees[start:start + INVITE_BATCH]]
        result = await owner.client(functions.channels.InviteToChannelRequest(channel, users))
        assert isinstance(result, types.messages.InvitedUsers) and not result.missing_invitees
    joiners = await make_bulk_accounts(server, count - invited, "Joiner", then=join)
    return [a.id for a in invitees + joiners]


async def assert_participant_pages(client, channel, expected: set):
    """channels.getParticipants (recent), PAGE at a time: a stable count, full pages that do
    not overlap and together hold exactly ``expected``; Telethon's own paging agrees."""
    pages, offset = [], 0
    while True:
        result = await client(functions.channels.GetParticipantsRequest(
            channel, types.ChannelParticipantsRecent(), offset=offset, limit=PAGE, hash=0))
        assert isinstance(result, types.channels.ChannelParticipants), result
        assert result.count == len(expected), f"count {result.count} at offset {offset}"
        ids = [participant_user_id(p) for p in result.participants]
        assert {u.id for u in result.users} >= set(ids)
        if not ids:
            break
        pages.append(ids)
        offset += len(ids)
        assert offset <= len(expected), f"offset {offset} ran past {len(expected)} members"
    seen = [i for page in pages for i in page]
    assert len(seen) == len(set(seen)), "pages overlap"
    assert set(seen) == expected
    full, rest = divmod(len(expected), PAGE)
    assert [len(p) for p in pages] == [PAGE] * full + ([rest] if rest else [])

    everyone = await client.get_participants(channel)  # ChannelParticipantsSearch(""), 200 a page
    assert everyone.total == len(expected)
    assert sorted(u.id for u in everyone) == sorted(expected)


@async_test(timeout=180)
async def test_participants_paging(server):
    alice = await make_account(server, "Alice")
    channel = await create_channel(alice.client, "Crowd")

    members = await fill_megagroup(server, alice, channel, PAGING_MEMBERS, invited=INVITED_MEMBERS)

    assert len(set(members)) == PAGING_MEMBERS
    await assert_participant_pages(alice.client, channel, {alice.id, *members})
    assert (await full_channel(alice.client, channel)).participants_count == PAGING_MEMBERS + 1


@pytest.mark.large_group
@async_test(timeout=480)
async def test_participants_paging_thousand_members(server):
    alice = await make_account(server, "Alice")
    channel = await create_channel(alice.client, "Town square")

    members = await fill_megagroup(server, alice, channel, LARGE_GROUP_MEMBERS)

    await assert_participant_pages(alice.client, channel, {alice.id, *members})
    assert (await full_channel(alice.client, channel)).participants_count == LARGE_GROUP_MEMBERS + 1


# --------------------------------------------------------------------------------------------
# Admins, restrictions, bans
# --------------------------------------------------------------------------------------------

@async_test
async def test_admin_deletes_member_message(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    channel, views = await channel_with(alice, [bob, carol])
    bob_view, carol_view = views[bob.id], views[carol.id]

    result = await alice.client(functions.channels.EditAdminRequest(
        channel, await input_user(alice, bob), ADMIN_RIGHTS, rank="boss"))

    assert is_updates(result), result
    admin = (await alice.client(functions.channels.GetParticipantRequest(
        channel, await peer_of(alice, bob)))).participant
    assert isinstance(admin, types.ChannelParticipantAdmin)
    assert admin.user_id == bob.id and admin.rank == "boss" and admin.promoted_by == alice.id
    rights = admin.admin_rights
    assert rights.delete_messages and rights.ban_users and rights.pin_messages
    assert not rights.add_admins

    deletions = EventCollector(carol.client, events.MessageDeleted())
    spam = await carol.client.send_message(carol_view, "spam")
    affected = await bob.client(functions.channels.DeleteMessagesRequest(bob_view, [spam.id]))
    assert isinstance(affected, types.messages.AffectedMessages) and affected.pts_count == 1
    await deletions.next(lambda e: spam.id in e.deleted_ids, what="carol sees her message go")
    assert await alice.client.get_messages(channel, ids=spam.id) is None

    kept = await bob.client.send_message(bob_view, "admin says")
    with expect_rpc_error({"MESSAGE_DELETE_FORBIDDEN"}, code=403):
        await carol.client(functions.channels.DeleteMessagesRequest(carol_view, [kept.id]))
    assert (await alice.client.get_messages(channel, ids=kept.id)).message == "admin says"


@async_test
async def test_restrict_then_kick(server):
    alice, carol = await make_accounts(server, "Alice", "Carol")
    channel, views = await channel_with(alice, [carol])
    await make_public(alice.client, channel)  # so that only the ban can keep carol out
    carol_view, carol_peer = views[carol.id], await peer_of(alice, carol)

    await alice.client(functions.channels.EditBannedRequest(channel, carol_peer, MUTED))
    with expect_rpc_error({"CHAT_WRITE_FORBIDDEN"}, code=403):
        await send_raw(carol.client, carol_view, "muted?")
    assert isinstance(await raw_history(carol.client, carol_view), types.messages.ChannelMessages)

    await alice.client(functions.channels.EditBannedRequest(channel, carol_peer, UNRESTRICTED))
    await carol.client.send_message(carol_view, "back")

    await alice.client(functions.channels.EditBannedRequest(channel, carol_peer, KICKED))
    with expect_rpc_error({"CHANNEL_PRIVATE"}):
        await raw_history(carol.client, carol_view)
    with expect_rpc_error({"USER_BANNED_IN_CHANNEL", "CHANNEL_PRIVATE"}):
        await carol.client(functions.channels.JoinChannelRequest(carol_view))
    assert texts(await alice.client.get_messages(channel, limit=10)) == ["back"]


@async_test
async def test_edit_channel_title(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob])
    bob_actions = EventCollector(bob.client, events.ChatAction())

    result = await alice.client(functions.channels.EditTitleRequest(channel, "New name"))

    assert channel_in(result, channel.id).title == "New name"
    event = await bob_actions.next(
        action_event(types.MessageActionChatEditTitle, channel_peer_id(channel.id)),
        what="bob sees the rename")
    assert event.new_title == "New name"
    renames = service_actions(await bob.client.get_messages(views[bob.id], limit=10),
                              types.MessageActionChatEditTitle)
    assert [m.action.title for m in renames] == ["New name"]
    seen = await bob.client(functions.channels.GetChannelsRequest([views[bob.id]]))
    assert [c.title for c in seen.chats] == ["New name"]

    with expect_rpc_error({"CHAT_TITLE_EMPTY"}, code=400):
        await alice.client(functions.channels.EditTitleRequest(channel, ""))
    with expect_rpc_error({"CHAT_TITLE_EMPTY"}, code=400):
        await alice.client(functions.channels.CreateChannelRequest(title="", about="", megagroup=True))


# --------------------------------------------------------------------------------------------
# Usernames, joining and leaving
# --------------------------------------------------------------------------------------------

@async_test
async def test_public_channel_join_and_leave(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel = await create_channel(alice.client, "Open house")
    other = await create_channel(alice.client, "Second house")
    name = random_username("club")

    assert await alice.client(functions.channels.CheckUsernameRequest(channel, name)) is True
    assert await alice.client(functions.channels.UpdateUsernameRequest(channel, name)) is True
    assert await alice.client(functions.channels.CheckUsernameRequest(other, name)) is False
    with expect_rpc_error({"USERNAME_OCCUPIED"}, code=400):
        await alice.client(functions.channels.UpdateUsernameRequest(other, name))
    with expect_rpc_error({"USERNAME_OCCUPIED"}, code=400):  # users and channels share names
        await alice.client(functions.channels.UpdateUsernameRequest(other, bob.username))

    found = await bob.client.get_entity(name)  # contacts.resolveUsername
    assert isinstance(found, types.Channel) and found.id == channel.id
    assert found.username == name and found.megagroup
    assert found.left  # as on Telegram: a channel bob is not in comes flagged left

    alice_actions = EventCollector(alice.client, events.ChatAction())
    result = await bob.client(functions.channels.JoinChannelRequest(found))
    assert not channel_in(result, channel.id).left
    # Assumed as on Telegram (small groups): a join by username posts "Bob joined".
    joined = await alice_actions.next(
        action_event(types.MessageActionChatAddUser, channel_peer_id(channel.id)),
        what="alice sees bob join")
    assert joined.user_joined and joined.user_ids == [bob.id]
    inbox = incoming(bob.client)
    await send_and_receive(alice.client, channel, "welcome", inbox)

    assert is_updates(await bob.client(functions.channels.LeaveChannelRequest(found)))
    # Nothing from the channel reaches bob any more: the next thing he gets is a private message.
    await alice.client.send_message(channel, "after bob left")
    await alice.client.send_message(await peer_of(alice, bob), "marker")
    after = await inbox.take(1, what="the marker")
    assert [e.message.message for e in after] == ["marker"]
    # Assumed as on Telegram: a public channel's history stays readable to non-members.
    assert "after bob left" in texts(await bob.client.get_messages(found, limit=10))


@async_test
async def test_leave_private_channel(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob])
    bob_view = views[bob.id]
    inbox = incoming(bob.client)
    await send_and_receive(alice.client, channel, "still here?", inbox)

    assert is_updates(await bob.client(functions.channels.LeaveChannelRequest(bob_view)))

    await alice.client.send_message(channel, "bob is gone")
    await alice.client.send_message(await peer_of(alice, bob), "marker")
    after = await inbox.take(1, what="the marker")
    assert [e.message.message for e in after] == ["marker"]
    with expect_rpc_error({"CHANNEL_PRIVATE"}):
        await raw_history(bob.client, bob_view)
    with expect_rpc_error({"USER_NOT_PARTICIPANT"}, code=400):
        await alice.client(functions.channels.GetParticipantRequest(channel, await peer_of(alice, bob)))
    assert (await full_channel(alice.client, channel)).participants_count == 1


@async_test
async def test_stranger_cannot_read_private_channel(server):
    alice, bob, eve = await make_accounts(server, "Alice", "Bob", "Eve")
    channel, _ = await channel_with(alice, [bob])
    await alice.client.send_message(channel, "members only")

    # Eve knows the id and the creator's access hash, which is not hers to use.
    borrowed = types.InputPeerChannel(channel.id, channel.access_hash)
    with expect_rpc_error({"CHANNEL_PRIVATE", "CHANNEL_INVALID"}):
        await raw_history(eve.client, borrowed)
    with expect_rpc_error({"CHANNEL_PRIVATE", "CHANNEL_INVALID"}):
        await eve.client(functions.channels.JoinChannelRequest(
            types.InputChannel(channel.id, channel.access_hash)))


# --------------------------------------------------------------------------------------------
# Reading, fetching, editing, deleting
# --------------------------------------------------------------------------------------------

@async_test
async def test_read_channel_history_and_dialog(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob])
    bob_view = views[bob.id]
    # Bob reads what is already there (creation, his invitation), so only the posts count below.
    existing = await bob.client.get_messages(bob_view, limit=1)
    if existing:
        assert await bob.client(functions.channels.ReadHistoryRequest(bob_view, existing[0].id)) is True
    inbox = incoming(bob.client)

    posts = [(await send_and_receive(alice.client, channel, text, inbox))[1]
             for text in ("n1", "n2", "n3")]

    dialog = await dialog_for(bob, channel_peer_id(channel.id))
    assert dialog is not None and dialog.is_channel and dialog.is_group
    assert dialog.unread_count == 3
    assert dialog.message.id == posts[-1].id and dialog.message.message == "n3"
    assert dialog.dialog.pts == (await full_channel(bob.client, bob_view)).pts

    assert await bob.client(functions.channels.ReadHistoryRequest(bob_view, max_id=posts[-1].id)) is True

    dialog = await dialog_for(bob, channel_peer_id(channel.id))
    assert dialog.unread_count == 0 and dialog.dialog.read_inbox_max_id == posts[-1].id
    assert (await full_channel(bob.client, bob_view)).unread_count == 0


@async_test
async def test_supergroup_read_receipts_reach_the_sender(server):
    """When another member reads a supergroup, the sender gets updateReadChannelOutbox
    (Telethon's MessageRead(inbox=False)) and the dialog's outbox mark; not before."""
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob])
    bob_view = views[bob.id]
    receipts = EventCollector(alice.client, events.MessageRead(inbox=False))
    inbox = incoming(bob.client)
    posts = [(await send_and_receive(alice.client, channel, text, inbox))[1] for text in ("r1", "r2")]
    dialog = await dialog_for(alice, channel_peer_id(channel.id))
    assert dialog.dialog.read_outbox_max_id < posts[0].id, "nobody else has read them yet"

    assert await bob.client(functions.channels.ReadHistoryRequest(bob_view, max_id=posts[-1].id)) is True
    receipt = await receipts.next(lambda e: e.max_id >= posts[-1].id, what="alice sees bob read her posts")
    assert receipt.outbox and receipt.chat_id == channel_peer_id(channel.id) and receipt.max_id == posts[-1].id
    dialog = await dialog_for(alice, channel_peer_id(channel.id))
    assert dialog.dialog.read_outbox_max_id == posts[-1].id


@async_test
async def test_get_channel_messages_by_id(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob])
    first, _, third = [await alice.client.send_message(channel, t) for t in ("one", "two", "three")]
    missing = third.id + 1000

    result = await bob.client(functions.channels.GetMessagesRequest(
        views[bob.id], [types.InputMessageID(i) for i in (third.id, missing, first.id)]))

    assert isinstance(result, types.messages.ChannelMessages), result
    got = result.messages
    assert len(got) == 3
    assert isinstance(got[0], types.Message) and (got[0].id, got[0].message) == (third.id, "three")
    assert isinstance(got[1], types.MessageEmpty) and got[1].id == missing
    assert isinstance(got[2], types.Message) and (got[2].id, got[2].message) == (first.id, "one")
    assert result.pts == (await full_channel(bob.client, views[bob.id])).pts
    assert any(isinstance(c, types.Channel) and c.id == channel.id for c in result.chats)
    assert any(u.id == alice.id for u in result.users)


@async_test
async def test_edit_channel_message(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob])
    inbox = incoming(bob.client)
    edits = EventCollector(bob.client, events.MessageEdited())
    sent, got = await send_and_receive(alice.client, channel, "draft", inbox)
    assert got.id == sent.id

    edited = await alice.client.edit_message(channel, sent.id, "final")

    assert edited.id == sent.id and edited.message == "final"
    event = await edits.next(lambda e: e.id == sent.id, what="bob sees the edit")
    assert event.message.message == "final" and event.message.edit_date is not None
    assert event.chat_id == channel_peer_id(channel.id)
    with expect_rpc_error({"MESSAGE_AUTHOR_REQUIRED"}):
        await bob.client.edit_message(views[bob.id], sent.id, "hijacked")
    assert (await bob.client.get_messages(views[bob.id], ids=sent.id)).message == "final"


@async_test
async def test_delete_channel(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob])
    await alice.client.send_message(channel, "last words")

    with expect_rpc_error({"CHAT_ADMIN_REQUIRED"}):
        await bob.client(functions.channels.DeleteChannelRequest(views[bob.id]))
    assert is_updates(await alice.client(functions.channels.DeleteChannelRequest(channel)))

    for client, view in ((bob.client, views[bob.id]), (alice.client, channel)):
        with expect_rpc_error({"CHANNEL_PRIVATE", "CHANNEL_INVALID"}):
            await raw_history(client, view)
    # Assumed as on Telegram: a deleted channel leaves the members' dialog lists.
    assert await dialog_for(bob, channel_peer_id(channel.id)) is None


# --------------------------------------------------------------------------------------------
# Slow mode, pins, views
# --------------------------------------------------------------------------------------------

@async_test
async def test_slow_mode(server):
    # flood_sleep_threshold=0: Telethon would otherwise sleep out SLOWMODE_WAIT and retry.
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol", flood_sleep_threshold=0)
    channel, views = await channel_with(alice, [bob, carol])
    await alice.client(functions.channels.EditAdminRequest(
        channel, await input_user(alice, carol), ADMIN_RIGHTS, rank=None))

    assert is_updates(await alice.client(functions.channels.ToggleSlowModeRequest(channel, seconds=10)))

    assert (await full_channel(bob.client, views[bob.id])).slowmode_seconds == 10
    await bob.client.send_message(views[bob.id], "first")
    with pytest.raises(errors.SlowModeWaitError) as raised:
        await bob.client.send_message(views[bob.id], "second")
    assert 1 <= raised.value.seconds <= 10
    assert re.fullmatch(r"SLOWMODE_WAIT_\d+", rpc_error_name(raised.value)), rpc_error_name(raised.value)
    assert rpc_error_code(raised.value) == 420
    # The creator and admins are exempt.
    for client, view in ((alice.client, channel), (carol.client, views[carol.id])):
        for text in ("quick", "quicker"):
            await client.send_message(view, text)
    posted = texts(await alice.client.get_messages(channel, limit=20))
    assert "second" not in posted and posted.count("quicker") == 2


@async_test
async def test_pin_and_unpin(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob], megagroup=False, title="Notices")
    post = await alice.client.send_message(channel, "read me first")

    assert is_updates(await alice.client(functions.messages.UpdatePinnedMessageRequest(
        peer=channel, id=post.id)))

    assert (await full_channel(bob.client, views[bob.id])).pinned_msg_id == post.id
    assert (await bob.client.get_messages(views[bob.id], ids=post.id)).pinned
    with expect_rpc_error({"CHAT_ADMIN_REQUIRED"}):
        await bob.client(functions.messages.UpdatePinnedMessageRequest(
            peer=views[bob.id], id=post.id, unpin=True))
    assert (await full_channel(bob.client, views[bob.id])).pinned_msg_id == post.id

    affected = await alice.client(functions.messages.UnpinAllMessagesRequest(peer=channel))
    assert isinstance(affected, types.messages.AffectedHistory)
    assert not (await full_channel(bob.client, views[bob.id])).pinned_msg_id
    assert not (await bob.client.get_messages(views[bob.id], ids=post.id)).pinned


@async_test
async def test_post_views(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    channel, views = await channel_with(alice, [bob, carol], megagroup=False, title="Gazette")
    post = await alice.client.send_message(channel, "count me")

    async def view_as(member):
        result = await member.client(functions.messages.GetMessagesViewsRequest(
            peer=views[member.id], id=[post.id], increment=True))
        assert isinstance(result, types.messages.MessageViews) and len(result.views) == 1, result
        return result.views[0].views

    seen_by_bob = await view_as(bob)
    assert seen_by_bob >= 1
    assert await view_as(carol) == seen_by_bob + 1  # another viewer counts once more


# --------------------------------------------------------------------------------------------
# Channel difference and offline catch-up
# --------------------------------------------------------------------------------------------

MISSED = 300          # posts missed while offline: three of Telethon's 100-message slices
TOO_FAR_BEHIND = 300
SMALL_LIMIT = 10


async def channel_difference(client, channel, pts, limit):
    return await client(functions.updates.GetChannelDifferenceRequest(
        channel=channel, filter=types.ChannelMessagesFilterEmpty(), pts=pts, limit=limit))


@async_test(timeout=90)
async def test_get_channel_difference(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob])
    bob_view = views[bob.id]
    start = (await full_channel(bob.client, bob_view)).pts
    posted = await send_many(alice.client, channel, "post", 5)

    diff = await channel_difference(bob.client, bob_view, start, 100)

    assert isinstance(diff, types.updates.ChannelDifference), diff
    assert diff.final
    assert [m.message for m in diff.new_messages] == posted
    assert diff.pts == start + len(posted)  # each new message moves the channel's pts by one
    assert any(isinstance(c, types.Channel) and c.id == channel.id for c in diff.chats)
    assert any(u.id == alice.id for u in diff.users)

    empty = await channel_difference(bob.client, bob_view, diff.pts, 100)
    assert isinstance(empty, types.updates.ChannelDifferenceEmpty), empty
    assert empty.final and empty.pts == diff.pts

    more = await send_many(alice.client, channel, "more", 150)
    first = await channel_difference(bob.client, bob_view, diff.pts, 100)
    assert isinstance(first, types.updates.ChannelDifference), first
    assert not first.final
    assert [m.message for m in first.new_messages] == more[:100]
    assert first.pts == diff.pts + 100
    rest = await channel_difference(bob.client, bob_view, first.pts, 100)
    assert isinstance(rest, types.updates.ChannelDifference), rest
    assert rest.final
    assert [m.message for m in rest.new_messages] == more[100:]
    assert rest.pts == diff.pts + len(more)


@async_test(timeout=90)
async def test_channel_difference_too_long(server):
    """Assumed: a client this far behind that asks with a small limit is told
    channelDifferenceTooLong (the latest messages and the dialog to restart from), as Telegram
    documents, while Telethon's own limit of 100 is served 300 missed posts in slices (see
    test_get_channel_difference and the catch-up test)."""
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel, views = await channel_with(alice, [bob])
    bob_view = views[bob.id]
    start = (await full_channel(bob.client, bob_view)).pts
    posted = await send_many(alice.client, channel, "flood", TOO_FAR_BEHIND)

    diff = await channel_difference(bob.client, bob_view, start, SMALL_LIMIT)

    assert isinstance(diff, types.updates.ChannelDifferenceTooLong), diff
    assert diff.final
    assert isinstance(diff.dialog, types.Dialog)
    assert diff.dialog.peer == types.PeerChannel(channel.id)
    assert diff.dialog.pts == (await full_channel(bob.client, bob_view)).pts == start + TOO_FAR_BEHIND
    newest = (await bob.client.get_messages(bob_view, limit=1))[0]
    assert diff.dialog.top_message == newest.id
    assert posted[-1] in [getattr(m, "message", None) for m in diff.messages]


@async_test(timeout=240)
async def test_offline_member_catches_up_channel_posts(server, tmp_path):
    """Bob misses 300 posts while offline. Reconnecting from his saved session, Telethon's
    getDifference learns of the channel (an updateChannelTooLong among other_updates, as
    Telegram sends) and pages updates.getChannelDifference 100 messages at a time; every post
    then reaches bob's handler once, in order."""
    session_file = str(tmp_path / "bob")
    alice = await make_account(server, "Alice")
    bob = await make_account(server, "Bob", session=session_file)
    channel = await create_channel(alice.client, "Busy room")
    await invite_to_channel(alice, channel, [bob])
    bob_view = await channel_seen_by(bob, channel.id)
    # A pushed post puts the channel's pts into bob's update state, which the session file
    # keeps (with the channel's access hash) when he disconnects.
    inbox = incoming(bob.client)
    _, got = await send_and_receive(alice.client, channel, "before going offline", inbox)
    await bob.client.send_read_acknowledge(bob_view, max_id=got.id)
    await bob.client.disconnect()
    posted = await send_many(alice.client, channel, "missed", MISSED)

    # sequential_updates: handlers run one update at a time, in the order Telethon applied them.
    bob2 = new_client(server, session_file, catch_up=True, sequential_updates=True)
    inbox2 = incoming(bob2)
    await bob2.connect()
    assert (await bob2.get_me()).id == bob.id
    await bob2.catch_up()

    received = await inbox2.take(MISSED, timeout=120, what="missed posts as NewMessage events")
    assert [e.message.message for e in received] == posted
    ids = [e.message.id for e in received]
    assert all(a < b for a, b in zip(ids, ids[1:])), "posts out of order or repeated"
    assert {e.chat_id for e in received} == {channel_peer_id(channel.id)}
    await bob2.catch_up()  # a second catch-up must not replay anything
    await alice.client.send_message(channel, "marker")
    after = await inbox2.take(1, timeout=EVENT_TIMEOUT, what="the marker")
    assert [e.message.message for e in after] == ["marker"], "something arrived before the marker"
    history = await bob2.get_messages(bob_view, limit=None)
    assert texts(history) == (["before going offline"] + posted + ["marker"])[::-1]
