"""Usernames, profile fields, user lookup and access-hash checks."""

import pytest
from telethon import errors, events, functions, types

from harness import (
    EventCollector,
    async_test,
    connect,
    expect_rpc_error,
    login,
    make_account,
    make_pair,
    peer_of,
    random_username,
    rpc_error_name,
    send_raw,
)

FORGED_HASH = 12345


@pytest.mark.parametrize("bad", ["ab", "1abc", "1abcdef", "a" * 33, "bad-name", "_under"],
                         ids=["too-short", "short-leading-digit", "leading-digit", "too-long",
                              "dash", "leading-underscore"])
@async_test
async def test_invalid_username_is_rejected(server, bad):
    alice = await make_account(server, "Alice", username=False)

    with expect_rpc_error({"USERNAME_INVALID"}, code=400):
        await alice.client(functions.account.UpdateUsernameRequest(bad))
    assert (await alice.client.get_me()).username is None


@async_test
async def test_username_set_occupied_and_not_modified(server):
    alice, bob = await make_pair(server)
    assert (await alice.client.get_me()).username == alice.username

    # Usernames are unique case-insensitively.
    with expect_rpc_error({"USERNAME_OCCUPIED"}, code=400):
        await bob.client(functions.account.UpdateUsernameRequest(alice.username.upper()))
    with expect_rpc_error({"USERNAME_NOT_MODIFIED"}, code=400):
        await alice.client(functions.account.UpdateUsernameRequest(alice.username))

    # A new name frees the old one.
    renamed = random_username("alice")
    user = await alice.client(functions.account.UpdateUsernameRequest(renamed))
    assert user.username == renamed
    user = await bob.client(functions.account.UpdateUsernameRequest(alice.username))
    assert user.username == alice.username


@async_test
async def test_check_username(server):
    alice, bob = await make_pair(server)

    check = functions.account.CheckUsernameRequest
    assert await bob.client(check(alice.username)) is False
    assert await bob.client(check(alice.username.upper())) is False
    assert await bob.client(check(random_username("free"))) is True


@async_test
async def test_update_profile_and_full_user(server):
    alice, bob = await make_pair(server)

    user = await alice.client(functions.account.UpdateProfileRequest(
        first_name="Alicia", last_name="Liddell", about="down the rabbit hole"))
    assert isinstance(user, types.User)
    assert (user.first_name, user.last_name) == ("Alicia", "Liddell")
    me = await alice.client.get_me()
    assert (me.first_name, me.last_name) == ("Alicia", "Liddell")

    peer = await peer_of(bob, alice)
    full = await bob.client(functions.users.GetFullUserRequest(peer))
    assert isinstance(full, types.users.UserFull)
    assert full.full_user.id == alice.id
    assert full.full_user.about == "down the rabbit hole"
    seen = next(u for u in full.users if u.id == alice.id)
    assert seen.first_name == "Alicia"


@async_test
async def test_resolve_username(server):
    alice, bob = await make_pair(server)

    resolved = await bob.client(functions.contacts.ResolveUsernameRequest(alice.username.upper()))

    assert isinstance(resolved.peer, types.PeerUser) and resolved.peer.user_id == alice.id
    user = next(u for u in resolved.users if u.id == alice.id)
    assert user.username == alice.username
    assert user.access_hash is not None and not user.is_self
    with expect_rpc_error({"USERNAME_NOT_OCCUPIED"}, code=400):
        await bob.client(functions.contacts.ResolveUsernameRequest(random_username("nobody")))


@async_test
async def test_forged_access_hash_reveals_nothing(server):
    # Carol is a stranger: alice has never resolved or talked to her.
    alice = await make_account(server, "Alice")
    carol = await make_account(server, "Carol")
    forged_user = types.InputUser(carol.id, FORGED_HASH)
    rejected = {"USER_ID_INVALID", "PEER_ID_INVALID"}

    try:
        users = await alice.client(functions.users.GetUsersRequest([forged_user]))
    except errors.RPCError as exc:  # an error is fine, if it is the right one
        assert rpc_error_name(exc) in rejected, exc
    else:
        leaked = [u for u in users if isinstance(u, types.User) and u.id == carol.id]
        assert not leaked, f"users.getUsers returned a forged-hash user: {leaked}"

    with expect_rpc_error(rejected, code=400):
        await alice.client(functions.users.GetFullUserRequest(forged_user))

    with expect_rpc_error(rejected, code=400):
        await send_raw(alice.client, types.InputPeerUser(carol.id, FORGED_HASH), "hi")
    dialogs = await carol.client.get_dialogs()
    assert all(d.entity.id != alice.id for d in dialogs), "message sent through a forged hash"


@async_test
async def test_block_and_unblock(server):
    """contacts.block: the blocked user's messages fail with USER_IS_BLOCKED, the blocker's
    own with YOU_BLOCKED_USER; getBlocked lists them, getFullUser says so, the blocker's
    other sessions get updatePeerBlocked; unblock restores everything."""
    alice, bob = await make_pair(server)
    to_bob, to_alice = await peer_of(alice, bob), await peer_of(bob, alice)
    await send_raw(bob.client, to_alice, "before")
    alice2 = await connect(server)
    await login(alice2, alice.phone)
    await alice2.get_dialogs()
    pushed = EventCollector(alice2, events.Raw(types.UpdatePeerBlocked))

    assert await alice.client(functions.contacts.BlockRequest(id=to_bob)) is True
    update = await pushed.next(lambda u: u.blocked, what="alice's other session hears of the block")
    assert update.peer_id == types.PeerUser(bob.id)
    assert await alice.client(functions.contacts.BlockRequest(id=to_bob)) is True  # idempotent
    with expect_rpc_error({"USER_IS_BLOCKED"}, code=400):
        await send_raw(bob.client, to_alice, "after")
    with expect_rpc_error({"YOU_BLOCKED_USER"}, code=400):
        await send_raw(alice.client, to_bob, "hi")
    blocked = await alice.client(functions.contacts.GetBlockedRequest(offset=0, limit=10))
    assert isinstance(blocked, types.contacts.Blocked)
    assert [b.peer_id for b in blocked.blocked] == [types.PeerUser(bob.id)]
    assert [u.id for u in blocked.users] == [bob.id]
    full = await alice.client(functions.users.GetFullUserRequest(to_bob))
    assert full.full_user.blocked
    with expect_rpc_error({"CONTACT_ID_INVALID"}, code=400):
        await alice.client(functions.contacts.BlockRequest(id=types.InputPeerSelf()))

    # The "hide my stories from" list is another list (no stories here): it touches nothing.
    assert await alice.client(functions.contacts.UnblockRequest(id=to_bob, my_stories_from=True)) is True
    with expect_rpc_error({"USER_IS_BLOCKED"}, code=400):
        await send_raw(bob.client, to_alice, "still blocked")
    stories = await alice.client(functions.contacts.GetBlockedRequest(offset=0, limit=10, my_stories_from=True))
    assert stories.blocked == []

    assert await alice.client(functions.contacts.UnblockRequest(id=to_bob)) is True
    await pushed.next(lambda u: not u.blocked, what="and of the unblock")
    await send_raw(bob.client, to_alice, "after unblock")
    assert (await alice.client(functions.contacts.GetBlockedRequest(offset=0, limit=10))).blocked == []
    assert not (await alice.client(functions.users.GetFullUserRequest(to_bob))).full_user.blocked
