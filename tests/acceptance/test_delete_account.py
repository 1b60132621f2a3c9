"""Deleting an account with Telethon: the sessions end, others see a Deleted Account that
takes no messages, and the number can sign up again."""

from telethon import functions, types

from harness import async_test, connect, expect_rpc_error, login, make_chat


@async_test
async def test_deleted_account_is_gone_for_everyone(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    await b.send_message(chat.to_alice, "before")
    assert await a(functions.account.SetAccountTTLRequest(ttl=types.AccountDaysTTL(days=90)))
    assert (await a(functions.account.GetAccountTTLRequest())).days == 90
    with expect_rpc_error({"TTL_DAYS_INVALID"}, 400):
        await a(functions.account.SetAccountTTLRequest(ttl=types.AccountDaysTTL(days=1)))
    assert await a(functions.account.DeleteAccountRequest(reason="testing"))
    with expect_rpc_error({"AUTH_KEY_UNREGISTERED"}, 401):
        await a(functions.users.GetUsersRequest([types.InputUserSelf()]))
    (seen,) = await b(functions.users.GetUsersRequest([chat.to_alice]))
    assert seen.deleted and seen.first_name is None and seen.phone is None
    with expect_rpc_error({"INPUT_USER_DEACTIVATED"}, 400):
        await b.send_message(chat.to_alice, "are you there?")
    assert [m.raw_text for m in await b.get_messages(chat.to_alice, limit=5)] == ["before"]
    # The number signs up as a new account.
    fresh = await connect(server)
    user = await login(fresh, chat.alice.phone, "Alice again")
    assert user.id != chat.alice.id and user.first_name == "Alice again"


@async_test
async def test_a_password_is_needed_to_delete(server):
    chat = await make_chat(server)
    a = chat.alice.client
    await a.edit_2fa(new_password="keep me")
    with expect_rpc_error({"PASSWORD_HASH_INVALID"}, 400):
        await a(functions.account.DeleteAccountRequest(reason="no password given"))
    assert (await a.get_me()).id == chat.alice.id
