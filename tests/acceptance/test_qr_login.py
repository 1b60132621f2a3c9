"""Login by QR code with Telethon: qr_login() on a new client, acceptLoginToken on a
logged-in one."""

import asyncio
import base64

import pytest
from telethon import errors, functions, types

from harness import async_test, connect, expect_rpc_error, make_user


@async_test
async def test_qr_login_between_two_clients(server):
    phone_client, phone = await make_user(server, "Alice")
    me = await phone_client.get_me()
    desktop = await connect(server)
    qr = await desktop.qr_login()
    assert qr.url.startswith("tg://login?token=")
    token = base64.urlsafe_b64decode(qr.url.split("=", 1)[1] + "==")
    assert token == qr.token
    waiter = asyncio.ensure_future(qr.wait(timeout=10))
    await asyncio.sleep(0.2)
    accepted = await phone_client(functions.auth.AcceptLoginTokenRequest(token=qr.token))
    assert isinstance(accepted, types.Authorization) and accepted.hash != 0
    user = await waiter
    assert user.id == me.id
    assert (await desktop.get_me()).id == me.id
    # The new session is one of the account's sessions now.
    sessions = await phone_client(functions.account.GetAuthorizationsRequest())
    assert len(sessions.authorizations) == 2
    # A token is used once.
    with expect_rpc_error({"AUTH_TOKEN_ALREADY_ACCEPTED", "AUTH_TOKEN_INVALID"}, 400):
        await phone_client(functions.auth.AcceptLoginTokenRequest(token=qr.token))


@async_test
async def test_qr_login_asks_for_the_password_and_refuses_bad_tokens(server):
    phone_client, phone = await make_user(server, "Alice")
    await phone_client.edit_2fa(new_password="qr secret")
    desktop = await connect(server)
    qr = await desktop.qr_login()
    waiter = asyncio.ensure_future(qr.wait(timeout=10))
    await asyncio.sleep(0.2)
    await phone_client(functions.auth.AcceptLoginTokenRequest(token=qr.token))
    with pytest.raises(errors.SessionPasswordNeededError):
        await waiter
    user = await desktop.sign_in(password="qr secret")
    assert user.id == (await phone_client.get_me()).id
    with expect_rpc_error({"AUTH_TOKEN_INVALID"}, 400):
        await phone_client(functions.auth.AcceptLoginTokenRequest(token=b"\x00" * 32))
