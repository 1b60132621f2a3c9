"""The address book through Telethon: import by phone, add, delete, search, and what a
contact relation changes in how users are shown."""

import random

from telethon import functions, types

from harness import EventCollector, async_test, expect_rpc_error, make_account, make_pair, random_phone
from telethon import events


def phone_contact(phone: str, first: str, last: str = "") -> types.InputPhoneContact:
    return types.InputPhoneContact(client_id=random.getrandbits(62), phone="+" + phone,
                                   first_name=first, last_name=last)


async def import_one(client, phone: str, first: str, last: str = ""):
    return await client(functions.contacts.ImportContactsRequest([phone_contact(phone, first, last)]))


@async_test
async def test_import_by_phone_then_message_by_phone(server):
    alice, bob = await make_pair(server)
    unknown = random_phone()
    contact = phone_contact(bob.phone, "Bobby", "Tables")
    result = await alice.client(functions.contacts.ImportContactsRequest(
        [contact, phone_contact(unknown, "Nobody")]))
    assert [(i.user_id, i.client_id) for i in result.imported] == [(bob.id, contact.client_id)]
    assert result.retry_contacts == []
    (user,) = result.users
    assert user.id == bob.id and user.contact and not user.mutual_contact
    assert (user.first_name, user.last_name, user.phone) == ("Bobby", "Tables", bob.phone)

    listed = await alice.client(functions.contacts.GetContactsRequest(hash=0))
    assert [(c.user_id, c.mutual) for c in listed.contacts] == [(bob.id, False)]
    # The same hash again: not modified.
    again = await alice.client(functions.contacts.GetContactsRequest(hash=_hash([0, bob.id])))
    assert isinstance(again, types.contacts.ContactsNotModified)

    # Telethon resolves a phone number through getContacts.
    inbox = EventCollector(bob.client, events.NewMessage(incoming=True))
    await alice.client.send_message("+" + bob.phone, "found you by number")
    got = await inbox.next()
    assert got.raw_text == "found you by number" and got.sender_id == alice.id


def _hash(ids):
    h, mask = 0, (1 << 64) - 1
    for i in sorted(ids):
        h ^= h >> 21
        h ^= (h << 35) & mask
        h ^= h >> 4
        h = (h + i) & mask
    return h - (1 << 64) if h >= 1 << 63 else h


@async_test
async def test_mutual_contacts_and_who_sees_the_phone(server):
    alice, bob = await make_pair(server)
    carol = await make_account(server, "Carol")
    await import_one(alice.client, bob.phone, "Bob")
    # Alice has Bob in her book, so her number shows to him (Telegram's default phone privacy:
    # "my contacts"), though she is not his contact.
    bob_view_of_alice = (await bob.client(functions.users.GetUsersRequest([await bob.client.get_input_entity(alice.username)])))[0]
    assert bob_view_of_alice.phone == alice.phone and not bob_view_of_alice.contact
    # Bob adds her by id, under his own name for her: now the pair is mutual.
    alice_in_bob = await bob.client(functions.contacts.AddContactRequest(
        id=await bob.client.get_input_entity(alice.username), first_name="Ally", last_name="", phone=""))
    assert isinstance(alice_in_bob, types.Updates)
    (shown,) = alice_in_bob.users
    assert shown.first_name == "Ally" and shown.contact and shown.mutual_contact
    assert shown.phone == alice.phone
    listed = await alice.client(functions.contacts.GetContactsRequest(hash=0))
    assert [(c.user_id, c.mutual) for c in listed.contacts] == [(bob.id, True)]
    # A stranger sees neither number nor contact names.
    carol_view = (await carol.client(functions.users.GetUsersRequest([await carol.client.get_input_entity(bob.username)])))[0]
    assert carol_view.phone is None and not carol_view.contact and carol_view.first_name == "Bob"

    # Deleting is one-sided.
    result = await alice.client(functions.contacts.DeleteContactsRequest([await alice.client.get_input_entity(bob.username)]))
    assert isinstance(result, types.Updates) and [u.id for u in result.users] == [bob.id]
    assert not result.users[0].contact
    assert (await alice.client(functions.contacts.GetContactsRequest(hash=0))).contacts == []
    listed = await bob.client(functions.contacts.GetContactsRequest(hash=0))
    assert [(c.user_id, c.mutual) for c in listed.contacts] == [(alice.id, False)]


@async_test
async def test_add_contact_errors_and_delete_by_phone(server):
    alice, bob = await make_pair(server)
    to_bob = await alice.client.get_input_entity(bob.username)
    with expect_rpc_error({"CONTACT_NAME_EMPTY"}, 400):
        await alice.client(functions.contacts.AddContactRequest(id=to_bob, first_name=" ", last_name="", phone=""))
    with expect_rpc_error({"CONTACT_ID_INVALID"}, 400):
        await alice.client(functions.contacts.AddContactRequest(id=types.InputUserSelf(), first_name="Me", last_name="", phone=""))
    await alice.client(functions.contacts.AddContactRequest(id=to_bob, first_name="B", last_name="", phone=bob.phone))
    assert len((await alice.client(functions.contacts.GetContactsRequest(hash=0))).contacts) == 1
    assert await alice.client(functions.contacts.DeleteByPhonesRequest(["+" + bob.phone]))
    assert (await alice.client(functions.contacts.GetContactsRequest(hash=0))).contacts == []


@async_test
async def test_search_and_resolve_phone(server):
    alice, bob = await make_pair(server)
    await import_one(alice.client, bob.phone, "Robert", "Builder")
    found = await alice.client(functions.contacts.SearchRequest(q="build", limit=10))
    assert [p.user_id for p in found.my_results] == [bob.id] and found.results == []
    carol = await make_account(server, "Carol")
    found = await carol.client(functions.contacts.SearchRequest(q="@" + bob.username[:6], limit=10))
    assert bob.id in [p.user_id for p in found.results if isinstance(p, types.PeerUser)]
    assert found.my_results == []
    with expect_rpc_error({"QUERY_TOO_SHORT"}, 400):
        await carol.client(functions.contacts.SearchRequest(q="@", limit=10))

    resolved = await carol.client(functions.contacts.ResolvePhoneRequest(phone=bob.phone))
    assert resolved.peer.user_id == bob.id and resolved.users[0].id == bob.id
    with expect_rpc_error({"PHONE_NOT_OCCUPIED"}, 400):
        await carol.client(functions.contacts.ResolvePhoneRequest(phone=random_phone()))
