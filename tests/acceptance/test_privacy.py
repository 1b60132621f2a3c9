"""Privacy settings through Telethon: hiding the phone number and the last-seen time."""

from telethon import functions, types, utils

from harness import async_test, create_group, expect_rpc_error, make_account


async def view_of(viewer, target):
    (u,) = await viewer.client(functions.users.GetUsersRequest([await viewer.client.get_input_entity(target.username)]))
    return u


@async_test
async def test_phone_and_last_seen_follow_the_privacy_rules(server):
    alice = await make_account(server, "Alice")
    friend = await make_account(server, "Friend")
    stranger = await make_account(server, "Stranger")
    # Alice has Friend in her contacts, so by default Friend sees her number; a stranger does not.
    await alice.client(functions.contacts.AddContactRequest(
        id=await alice.client.get_input_entity(friend.username), first_name="Friend", last_name="", phone=""))
    assert (await view_of(friend, alice)).phone == alice.phone
    assert (await view_of(stranger, alice)).phone is None
    default = await alice.client(functions.account.GetPrivacyRequest(key=types.InputPrivacyKeyPhoneNumber()))
    assert [type(r) for r in default.rules] == [types.PrivacyValueAllowContacts]

    # Nobody sees the number now, contacts included.
    result = await alice.client(functions.account.SetPrivacyRequest(
        key=types.InputPrivacyKeyPhoneNumber(), rules=[types.InputPrivacyValueDisallowAll()]))
    assert [type(r) for r in result.rules] == [types.PrivacyValueDisallowAll]
    assert (await view_of(friend, alice)).phone is None

    # Last seen: shown exactly to everybody but the stranger, who gets an approximation.
    await alice.client(functions.account.UpdateStatusRequest(offline=True))
    stranger_input = utils.get_input_user(await alice.client.get_input_entity(stranger.username))
    result = await alice.client(functions.account.SetPrivacyRequest(
        key=types.InputPrivacyKeyStatusTimestamp(),
        rules=[types.InputPrivacyValueAllowAll(), types.InputPrivacyValueDisallowUsers([stranger_input])]))
    assert stranger.id in [u.id for u in result.users]
    assert isinstance((await view_of(friend, alice)).status, types.UserStatusOffline)
    assert isinstance((await view_of(stranger, alice)).status, types.UserStatusRecently)
    got = await alice.client(functions.account.GetPrivacyRequest(key=types.InputPrivacyKeyStatusTimestamp()))
    assert [type(r) for r in got.rules] == [types.PrivacyValueAllowAll, types.PrivacyValueDisallowUsers]


@async_test
async def test_chat_invites_and_number_lookups_follow_the_privacy_rules(server):
    alice = await make_account(server, "Alice")
    bob = await make_account(server, "Bob")
    carol = await make_account(server, "Carol")
    await alice.client(functions.account.SetPrivacyRequest(
        key=types.InputPrivacyKeyChatInvite(), rules=[types.InputPrivacyValueAllowContacts()]))
    await alice.client(functions.account.SetPrivacyRequest(
        key=types.InputPrivacyKeyAddedByPhone(), rules=[types.InputPrivacyValueAllowContacts()]))
    chat = await create_group(bob, [carol], "Bob's group")
    with expect_rpc_error({"USER_PRIVACY_RESTRICTED"}, 403):
        await bob.client(functions.messages.AddChatUserRequest(
            chat_id=chat.id, user_id=await bob.client.get_input_entity(alice.username), fwd_limit=0))
    imported = await bob.client(functions.contacts.ImportContactsRequest([types.InputPhoneContact(
        client_id=1, phone=alice.phone, first_name="A", last_name="")]))
    assert imported.imported == []
