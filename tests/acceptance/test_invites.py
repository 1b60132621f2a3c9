"""Invite links: export, check, import, usage limits, revocation, join requests, bans, listing,
for supergroups and basic groups.

Links look like Telegram's current ones, ``https://t.me/+HASH``; the hash is what
messages.checkChatInvite and messages.importChatInvite take.
"""

import re

from telethon import events, functions, types, utils

from harness import (
    updates_of,
    EventCollector,
    action_event,
    async_test,
    channel_in,
    channel_peer_id,
    channel_seen_by,
    chat_in,
    create_channel,
    create_group,
    expect_rpc_error,
    input_user,
    make_account,
    make_accounts,
    peer_of,
    raw_history,
    send_and_receive,
    service_actions,
)

LINK = re.compile(r"https://t\.me/\+([A-Za-z0-9_-]+)")
UNKNOWN_HASH = "AAAAAAAAAAAAAAAAAAAAAA"  # well-formed, never issued


async def export(client, peer, **options) -> types.ChatInviteExported:
    """messages.exportChatInvite with no limits unless ``options`` set some."""
    params = dict(expire_date=None, usage_limit=None, request_needed=False, title=None)
    params.update(options)
    invite = await client(functions.messages.ExportChatInviteRequest(peer=peer, **params))
    assert isinstance(invite, types.ChatInviteExported), invite
    assert not invite.revoked
    return invite


def hash_of(invite: types.ChatInviteExported) -> str:
    match = LINK.fullmatch(invite.link)
    assert match, f"not a t.me/+ invite link: {invite.link!r}"
    assert utils.parse_username(invite.link) == (match.group(1), True)  # Telethon reads it too
    return match.group(1)


async def check(account, invite_hash):
    return await account.client(functions.messages.CheckChatInviteRequest(invite_hash))


async def join(account, invite_hash):
    return await account.client(functions.messages.ImportChatInviteRequest(invite_hash))


def is_updates(result) -> bool:
    return isinstance(updates_of(result), (types.Updates, types.UpdatesCombined))


async def links(account, channel, **options) -> dict:
    """link -> ChatInviteExported, the links ``account`` made for ``channel``."""
    result = await account.client(functions.messages.GetExportedChatInvitesRequest(
        peer=channel, admin_id=types.InputUserSelf(), limit=10, **options))
    assert isinstance(result, types.messages.ExportedChatInvites), result
    assert result.count == len(result.invites) <= 10
    return {i.link: i for i in result.invites}


# --------------------------------------------------------------------------------------------
# Supergroups
# --------------------------------------------------------------------------------------------

@async_test
async def test_export_check_and_import(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel = await create_channel(alice.client, "Invite club")

    invite = await export(alice.client, channel)

    assert invite.admin_id == alice.id and not invite.request_needed
    invite_hash = hash_of(invite)
    info = await check(bob, invite_hash)
    assert isinstance(info, types.ChatInvite), info
    assert info.title == "Invite club" and info.participants_count == 1
    assert info.channel and info.megagroup and not info.broadcast and not info.request_needed

    result = await join(bob, invite_hash)

    assert is_updates(result), result
    joined = channel_in(result, channel.id)
    assert not joined.left and joined.megagroup
    assert isinstance(await raw_history(bob.client, joined), types.messages.ChannelMessages)
    # As on Telegram: a join by link posts messageActionChatJoinedByLink, from the joiner.
    history = await alice.client.get_messages(channel, limit=10)
    by_link = service_actions(history, types.MessageActionChatJoinedByLink)
    assert [(m.sender_id, m.action.inviter_id) for m in by_link] == [(bob.id, alice.id)]
    inbox = EventCollector(bob.client, events.NewMessage(incoming=True))
    await send_and_receive(alice.client, channel, "glad you came", inbox)

    already = await check(bob, invite_hash)
    assert isinstance(already, types.ChatInviteAlready), already
    assert isinstance(already.chat, types.Channel) and already.chat.id == channel.id
    with expect_rpc_error({"USER_ALREADY_PARTICIPANT"}, code=400):
        await join(bob, invite_hash)


@async_test
async def test_usage_limit(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    channel = await create_channel(alice.client, "Just one seat")
    invite = await export(alice.client, channel, usage_limit=1)
    assert invite.usage_limit == 1

    assert is_updates(await join(bob, hash_of(invite)))

    with expect_rpc_error({"INVITE_HASH_EXPIRED"}):
        await check(carol, hash_of(invite))
    with expect_rpc_error({"INVITE_HASH_EXPIRED"}):
        await join(carol, hash_of(invite))
    used = (await links(alice, channel)).get(invite.link)
    assert used is not None and used.usage == 1
    assert await channel_seen_by(bob, channel.id)


@async_test
async def test_revoked_and_unknown_links(server):
    alice, carol = await make_accounts(server, "Alice", "Carol")
    channel = await create_channel(alice.client, "Closed door")
    invite = await export(alice.client, channel)

    edited = await alice.client(functions.messages.EditExportedChatInviteRequest(
        peer=channel, link=invite.link, revoked=True))

    assert isinstance(edited, types.messages.ExportedChatInvite), edited
    assert edited.invite.link == invite.link and edited.invite.revoked
    for attempt in (check, join):
        with expect_rpc_error({"INVITE_HASH_EXPIRED"}):
            await attempt(carol, hash_of(invite))
        with expect_rpc_error({"INVITE_HASH_INVALID"}, code=400):
            await attempt(carol, UNKNOWN_HASH)


@async_test
async def test_join_request_needs_approval(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    channel = await create_channel(alice.client, "Members by approval")
    invite = await export(alice.client, channel, request_needed=True, title="apply here")
    assert invite.request_needed and invite.title == "apply here"
    invite_hash = hash_of(invite)

    info = await check(bob, invite_hash)
    assert isinstance(info, types.ChatInvite) and info.request_needed
    for applicant in (bob, carol):
        with expect_rpc_error({"INVITE_REQUEST_SENT"}, code=400):
            await join(applicant, invite_hash)

    pending = await alice.client(functions.messages.GetChatInviteImportersRequest(
        peer=channel, offset_date=None, offset_user=types.InputPeerEmpty(), limit=10,
        requested=True))
    assert isinstance(pending, types.messages.ChatInviteImporters), pending
    assert {i.user_id for i in pending.importers} == {bob.id, carol.id}
    assert pending.count == 2 and all(i.requested for i in pending.importers)

    assert is_updates(await alice.client(functions.messages.HideChatJoinRequestRequest(
        peer=channel, user_id=await input_user(alice, bob), approved=True)))
    assert is_updates(await alice.client(functions.messages.HideChatJoinRequestRequest(
        peer=channel, user_id=await input_user(alice, carol), approved=False)))

    bob_view = await channel_seen_by(bob, channel.id)
    assert isinstance(await raw_history(bob.client, bob_view), types.messages.ChannelMessages)
    assert isinstance(await check(bob, invite_hash), types.ChatInviteAlready)
    history = await alice.client.get_messages(channel, limit=10)
    approved = service_actions(history, types.MessageActionChatJoinedByRequest)
    assert [m.sender_id for m in approved] == [bob.id]
    # Carol was turned down: still outside, and no request is left pending.
    assert isinstance(await check(carol, invite_hash), types.ChatInvite)
    pending = await alice.client(functions.messages.GetChatInviteImportersRequest(
        peer=channel, offset_date=None, offset_user=types.InputPeerEmpty(), limit=10,
        requested=True))
    assert pending.importers == []
    participants = await alice.client.get_participants(channel)
    assert {u.id for u in participants} == {alice.id, bob.id}


@async_test
async def test_kicked_user_cannot_rejoin_by_link(server):
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel = await create_channel(alice.client, "No return")
    invite = await export(alice.client, channel)
    assert is_updates(await join(bob, hash_of(invite)))

    await alice.client(functions.channels.EditBannedRequest(
        channel, await peer_of(alice, bob), types.ChatBannedRights(until_date=None, view_messages=True)))

    # Assumed (the brief's reading of Telegram): the ban, not the link, is what refuses him.
    with expect_rpc_error({"USER_BANNED_IN_CHANNEL"}):
        await join(bob, hash_of(invite))
    participants = await alice.client.get_participants(channel)
    assert {u.id for u in participants} == {alice.id}


@async_test
async def test_list_exported_invites(server):
    alice = await make_account(server, "Alice")
    channel = await create_channel(alice.client, "Many doors")
    first = await export(alice.client, channel, title="first")
    second = await export(alice.client, channel, title="second", usage_limit=5)
    assert first.link != second.link

    active = await links(alice, channel)

    # Telegram may also list the channel's primary (permanent) link: at least these two.
    assert {first.link, second.link} <= set(active)
    assert active[first.link].title == "first" and active[second.link].usage_limit == 5
    assert all(i.admin_id == alice.id for i in active.values())

    await alice.client(functions.messages.EditExportedChatInviteRequest(
        peer=channel, link=first.link, revoked=True))
    active = await links(alice, channel)
    assert first.link not in active and second.link in active
    revoked = await links(alice, channel, revoked=True)
    assert first.link in revoked and revoked[first.link].revoked and second.link not in revoked


# --------------------------------------------------------------------------------------------
# Basic groups
# --------------------------------------------------------------------------------------------

@async_test
async def test_basic_group_invite_link(server):
    alice, bob, carol = await make_accounts(server, "Alice", "Bob", "Carol")
    chat = await create_group(alice, [bob], "Small circle")
    peer = types.InputPeerChat(chat.id)
    invite = await export(alice.client, peer)
    invite_hash = hash_of(invite)

    info = await check(carol, invite_hash)
    assert isinstance(info, types.ChatInvite), info
    assert info.title == "Small circle" and info.participants_count == 2 and not info.channel
    bob_actions = EventCollector(bob.client, events.ChatAction())

    result = await join(carol, invite_hash)

    assert is_updates(result), result
    assert chat_in(result, chat.id).participants_count == 3
    joined = await bob_actions.next(action_event(types.MessageActionChatJoinedByLink, -chat.id),
                                    what="bob sees carol join by link")
    assert joined.user_joined and joined.user_ids == [carol.id]
    assert joined.action_message.action.inviter_id == alice.id
    history = await alice.client.get_messages(peer, limit=10)
    by_link = service_actions(history, types.MessageActionChatJoinedByLink)
    assert [m.sender_id for m in by_link] == [carol.id]

    bob_inbox = EventCollector(bob.client, events.NewMessage(incoming=True))
    await send_and_receive(carol.client, peer, "thanks for the link", bob_inbox)
    already = await check(carol, invite_hash)
    assert isinstance(already, types.ChatInviteAlready) and already.chat.id == chat.id
    with expect_rpc_error({"USER_ALREADY_PARTICIPANT"}, code=400):
        await join(carol, invite_hash)


@async_test
async def test_link_for_a_channel_reaches_its_members(server):
    """A member who joined by link is a member like any other: posts reach him live."""
    alice, bob = await make_accounts(server, "Alice", "Bob")
    channel = await create_channel(alice.client, "News by link", megagroup=False)
    invite = await export(alice.client, channel)
    info = await check(bob, hash_of(invite))
    assert isinstance(info, types.ChatInvite) and info.broadcast and not info.megagroup

    joined = channel_in(await join(bob, hash_of(invite)), channel.id)

    assert joined.broadcast and not joined.left
    inbox = EventCollector(bob.client, events.NewMessage(incoming=True))
    sent = await alice.client.send_message(channel, "first edition")
    event = await inbox.next(lambda e: e.message.message == "first edition",
                             what="bob gets the post")
    assert event.chat_id == channel_peer_id(channel.id) and event.message.id == sent.id
