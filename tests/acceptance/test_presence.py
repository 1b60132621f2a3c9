"""Online status with Telethon: account.updateStatus and the updateUserStatus contacts get."""

from telethon import events, functions, types

from harness import EventCollector, async_test, make_pair


@async_test
async def test_status_changes_reach_contacts(server):
    alice, bob = await make_pair(server)
    to_bob = await alice.client.get_input_entity(bob.username)
    await alice.client(functions.contacts.AddContactRequest(id=to_bob, first_name="Bob", last_name="", phone=""))
    changes = EventCollector(alice.client, events.UserUpdate())
    assert await bob.client(functions.account.UpdateStatusRequest(offline=False))
    online = await changes.next(lambda e: e.user_id == bob.id)
    assert online.online and isinstance(online.status, types.UserStatusOnline)
    (seen,) = await alice.client(functions.users.GetUsersRequest([to_bob]))
    assert isinstance(seen.status, types.UserStatusOnline)
    assert await bob.client(functions.account.UpdateStatusRequest(offline=True))
    offline = await changes.next(lambda e: e.user_id == bob.id)
    assert isinstance(offline.status, types.UserStatusOffline)
    (seen,) = await alice.client(functions.users.GetUsersRequest([to_bob]))
    assert isinstance(seen.status, types.UserStatusOffline)
    assert seen.status.was_online == offline.status.was_online


@async_test
async def test_a_blocked_user_sees_no_status_or_number(server):
    alice, bob = await make_pair(server)
    to_alice = await bob.client.get_input_entity(alice.username)
    to_bob = await alice.client.get_input_entity(bob.username)
    # Alice has Bob as a contact: he sees her number and her exact status...
    await alice.client(functions.contacts.AddContactRequest(id=to_bob, first_name="Bob", last_name="", phone=""))
    await alice.client(functions.account.UpdateStatusRequest(offline=True))
    (seen,) = await bob.client(functions.users.GetUsersRequest([to_alice]))
    assert seen.phone == alice.phone and isinstance(seen.status, types.UserStatusOffline)
    # ...until she blocks him.
    await alice.client(functions.contacts.BlockRequest(id=to_bob))
    (seen,) = await bob.client(functions.users.GetUsersRequest([to_alice]))
    assert seen.phone is None and isinstance(seen.status, types.UserStatusRecently)
