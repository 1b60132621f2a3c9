"""Sign-up, sign-in, codes and logout through Telethon's own auth methods."""

import pytest
from telethon import errors, events, functions, types
from telethon.sessions import StringSession

from harness import (
    EventCollector,
    async_test,
    code_for,
    connect,
    expect_rpc_error,
    login,
    make_user,
    random_phone,
    wrong_code_for,
)

SERVICE_USER_ID = 777000


@async_test
async def test_sign_up_new_number(server):
    client = await connect(server)
    phone = random_phone()

    sent = await client.send_code_request(phone)
    assert isinstance(sent, types.auth.SentCode)
    assert sent.phone_code_hash
    assert client._phone_code_hash[phone] == sent.phone_code_hash

    with pytest.raises(errors.PhoneNumberUnoccupiedError):
        await client.sign_in(phone, code_for(phone))

    result = await client(functions.auth.SignUpRequest(
        phone_number=phone,
        phone_code_hash=sent.phone_code_hash,
        first_name="Alice",
        last_name="Liddell",
    ))
    assert isinstance(result, types.auth.Authorization)
    user = result.user
    assert user.is_self and not user.bot
    assert (user.first_name, user.last_name, user.phone) == ("Alice", "Liddell", phone)
    await client._on_login(user)

    me = await client.get_me()
    assert me.id == user.id and me.phone == phone
    assert await client.is_user_authorized()


@async_test
async def test_sign_in_known_number_from_second_client(server):
    first, phone = await make_user(server, "Alice")
    first_me = await first.get_me()
    second = await connect(server)

    await second.send_code_request(phone)
    me = await second.sign_in(phone, code_for(phone))

    assert isinstance(me, types.User)
    assert me.id == first_me.id and me.phone == phone and me.first_name == "Alice"
    assert (await second.get_me()).id == first_me.id
    assert (await first.get_me()).id == first_me.id  # the first session is still valid


@async_test
async def test_wrong_code_is_rejected_then_right_code_works(server):
    first, phone = await make_user(server, "Alice")
    second = await connect(server)
    await second.send_code_request(phone)

    with pytest.raises(errors.PhoneCodeInvalidError):
        await second.sign_in(phone, wrong_code_for(phone))
    assert await second.get_me() is None

    me = await second.sign_in(phone, code_for(phone))
    assert me.id == (await first.get_me()).id


@async_test
async def test_resend_code(server):
    first, phone = await make_user(server, "Alice")
    second = await connect(server)
    sent = await second.send_code_request(phone)

    resent = await second(functions.auth.ResendCodeRequest(phone, sent.phone_code_hash))
    assert isinstance(resent, types.auth.SentCode) and resent.phone_code_hash

    # Telethon's own second send_code_request goes through auth.resendCode too.
    second._phone_code_hash[phone] = resent.phone_code_hash
    again = await second.send_code_request(phone)
    assert isinstance(again, types.auth.SentCode) and again.phone_code_hash
    assert second._phone_code_hash[phone] == again.phone_code_hash

    me = await second.sign_in(phone, code_for(phone))
    assert me.id == (await first.get_me()).id


@async_test
async def test_cancelled_code_cannot_be_used(server):
    _, phone = await make_user(server, "Alice")
    second = await connect(server)
    sent = await second.send_code_request(phone)

    assert await second(functions.auth.CancelCodeRequest(phone, sent.phone_code_hash)) is True

    with expect_rpc_error({"PHONE_CODE_EXPIRED"}, code=400):
        await second(functions.auth.SignInRequest(phone, sent.phone_code_hash, code_for(phone)))
    assert await second.get_me() is None


@async_test
async def test_log_out_unauthorizes_the_key(server):
    client, phone = await make_user(server, "Alice")
    user_id = (await client.get_me()).id
    saved = client.session.save()
    assert saved

    assert await client.log_out() is True

    again = await connect(server, StringSession(saved))
    assert await again.get_me() is None
    assert await again.is_user_authorized() is False
    with expect_rpc_error({"AUTH_KEY_UNREGISTERED"}, code=401):
        await again(functions.users.GetUsersRequest([types.InputUserSelf()]))

    # The same (now unauthorized) key can log in again.
    me = await login(again, phone)
    assert me.id == user_id


@async_test
async def test_login_code_is_delivered_to_other_sessions(server):
    first, phone = await make_user(server, "Alice")
    service = EventCollector(first, events.NewMessage(incoming=True))

    second = await connect(server)
    await second.send_code_request(phone)

    code = code_for(phone)
    event = await service.next(
        lambda e: e.sender_id == SERVICE_USER_ID,
        what=f"login code message from {SERVICE_USER_ID}")
    assert code in event.raw_text, event.raw_text
    assert event.chat_id == SERVICE_USER_ID and not event.out
    assert event.is_private

    me = await second.sign_in(phone, code)
    assert me.id == (await first.get_me()).id


@async_test
async def test_new_login_is_announced_by_777000(server):
    """After a sign-in on a new device, 777000 tells the account (every session) with the
    device the new session named in initConnection."""
    first, phone = await make_user(server, "Alice")
    service = EventCollector(first, events.NewMessage(incoming=True))
    second = await connect(server, device_model="Kitchen Tablet", app_version="9.9")
    await login(second, phone)
    event = await service.next(lambda e: e.sender_id == SERVICE_USER_ID and "New login" in e.raw_text,
                               what="the new-login notice")
    assert "Kitchen Tablet" in event.raw_text and "9.9" in event.raw_text, event.raw_text
    assert "Alice" in event.raw_text


@async_test
async def test_list_and_end_sessions(server):
    """account.getAuthorizations lists the account's sessions (the current one first, hash 0,
    with what initConnection said); resetAuthorization ends one at once; a wrong hash is
    HASH_INVALID; auth.resetAuthorizations ends all the others."""
    laptop, phone = await make_user(server, "Alice")
    phone_app = await connect(server, device_model="Pixel 9", app_version="7.1")
    tablet = await connect(server, device_model="Tablet", app_version="1.0")
    await login(phone_app, phone)
    await login(tablet, phone)

    result = await laptop(functions.account.GetAuthorizationsRequest())
    sessions = result.authorizations
    assert len(sessions) == 3, sessions
    current = sessions[0]
    assert current.current and current.hash == 0
    others = {a.device_model: a for a in sessions[1:]}
    assert set(others) == {"Pixel 9", "Tablet"}
    assert all(not a.current and a.hash != 0 for a in others.values())
    assert others["Pixel 9"].app_version == "7.1" and others["Pixel 9"].api_id == current.api_id

    with expect_rpc_error({"HASH_INVALID"}):
        await laptop(functions.account.ResetAuthorizationRequest(hash=12345))
    with expect_rpc_error({"HASH_INVALID"}):
        await laptop(functions.account.ResetAuthorizationRequest(hash=0))  # the current one

    assert await laptop(functions.account.ResetAuthorizationRequest(hash=others["Pixel 9"].hash)) is True
    with expect_rpc_error({"AUTH_KEY_UNREGISTERED"}, code=401):
        await phone_app(functions.users.GetUsersRequest([types.InputUserSelf()]))
    assert await tablet.get_me() is not None
    listed = (await laptop(functions.account.GetAuthorizationsRequest())).authorizations
    assert [a.device_model for a in listed[1:]] == ["Tablet"]

    # From the tablet: end every other session (the laptop's).
    assert await tablet(functions.auth.ResetAuthorizationsRequest()) is True
    with expect_rpc_error({"AUTH_KEY_UNREGISTERED"}, code=401):
        await laptop(functions.users.GetUsersRequest([types.InputUserSelf()]))
    listed = (await tablet(functions.account.GetAuthorizationsRequest())).authorizations
    assert len(listed) == 1 and listed[0].current


@async_test
async def test_session_lifetime_is_set_and_reported(server):
    client, _ = await make_user(server, "Alice")
    before = await client(functions.account.GetAuthorizationsRequest())
    assert before.authorization_ttl_days == 180
    assert await client(functions.account.SetAuthorizationTTLRequest(authorization_ttl_days=30))
    after = await client(functions.account.GetAuthorizationsRequest())
    assert after.authorization_ttl_days == 30
    with expect_rpc_error({"TTL_DAYS_INVALID"}, 400):
        await client(functions.account.SetAuthorizationTTLRequest(authorization_ttl_days=0))
