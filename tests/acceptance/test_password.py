"""Two-step verification through Telethon's own calls: edit_2fa and sign_in(password=...)."""

import re

import pytest
from telethon import errors, functions, types
from telethon.password import compute_check

from harness import async_test, code_for, connect, expect_rpc_error, make_user


def emailed_code(server, email: str, since: int) -> str:
    """The last code the server logged for ``email`` (``--test-phones`` logs emailed codes)."""
    found = re.findall(r'email code issued.*?email="?' + re.escape(email) + r'"?\s+code=(\d{6})',
                       server.log_text(since))
    assert found, server.log_tail(20, since)
    return found[-1]


async def start_login(server, phone):
    """A new client that passed the login code of ``phone`` and is asked for the password."""
    client = await connect(server)
    await client.send_code_request(phone)
    with pytest.raises(errors.SessionPasswordNeededError):
        await client.sign_in(phone, code_for(phone))
    # Until the password is proven the key is not logged in.
    assert not await client.is_user_authorized()
    return client


@async_test
async def test_password_set_login_wrong_change_and_remove(server):
    alice, phone = await make_user(server, "Alice")
    me = await alice.get_me()
    pwd = await alice(functions.account.GetPasswordRequest())
    assert not pwd.has_password and pwd.current_algo is None

    assert await alice.edit_2fa(new_password="first secret", hint="the first one")
    pwd = await alice(functions.account.GetPasswordRequest())
    assert pwd.has_password and pwd.hint == "the first one" and pwd.srp_id and len(pwd.srp_B) == 256

    second = await start_login(server, phone)
    with pytest.raises(errors.PasswordHashInvalidError):
        await second.sign_in(password="not it")
    user = await second.sign_in(password="first secret")
    assert user.id == me.id
    assert (await second.get_me()).id == me.id

    # Changing needs the current password.
    with pytest.raises(errors.PasswordHashInvalidError):
        await alice.edit_2fa(current_password="wrong", new_password="second secret")
    assert await alice.edit_2fa(current_password="first secret", new_password="second secret")

    third = await start_login(server, phone)
    with pytest.raises(errors.PasswordHashInvalidError):
        await third.sign_in(password="first secret")
    assert (await third.sign_in(password="second secret")).id == me.id

    # Removing it: the next login needs the code only.
    assert await alice.edit_2fa(current_password="second secret")
    assert not (await alice(functions.account.GetPasswordRequest())).has_password
    fourth = await connect(server)
    await fourth.send_code_request(phone)
    assert (await fourth.sign_in(phone, code_for(phone))).id == me.id


@async_test
async def test_a_used_or_unknown_srp_exchange_is_refused(server):
    alice, phone = await make_user(server, "Alice")
    await alice.edit_2fa(new_password="secret")
    client = await start_login(server, phone)
    pwd = await client(functions.account.GetPasswordRequest())
    check = compute_check(pwd, "secret")
    result = await client(functions.auth.CheckPasswordRequest(check))
    assert isinstance(result, types.auth.Authorization)
    # The same proof again: its exchange was used.
    with expect_rpc_error({"SRP_ID_INVALID"}, 400):
        await client(functions.auth.CheckPasswordRequest(check))
    # A made-up exchange id.
    other = await start_login(server, phone)
    pwd = await other(functions.account.GetPasswordRequest())
    check = compute_check(pwd, "secret")
    check.srp_id ^= 1
    with expect_rpc_error({"SRP_ID_INVALID"}, 400):
        await other(functions.auth.CheckPasswordRequest(check))


@async_test
async def test_recovery_email_confirmed_then_used_to_recover(server):
    alice, phone = await make_user(server, "Alice")
    me = await alice.get_me()
    email = f"alice{phone}@example.com"
    since = server.log_size()
    assert await alice.edit_2fa(new_password="forgettable", email=email,
                                email_code_callback=lambda length: emailed_code(server, email, since))
    pwd = await alice(functions.account.GetPasswordRequest())
    assert pwd.has_password and pwd.has_recovery and pwd.email_unconfirmed_pattern is None
    settings = await alice(functions.account.GetPasswordSettingsRequest(compute_check(pwd, "forgettable")))
    assert settings.email == email

    client = await start_login(server, phone)
    since = server.log_size()
    recovery = await client(functions.auth.RequestPasswordRecoveryRequest())
    assert recovery.email_pattern == "a***@e***.com"
    code = emailed_code(server, email, since)
    with expect_rpc_error({"CODE_INVALID"}, 400):
        await client(functions.auth.RecoverPasswordRequest(code="000000" if code != "000000" else "111111"))
    result = await client(functions.auth.RecoverPasswordRequest(code=code))
    assert isinstance(result, types.auth.Authorization) and result.user.id == me.id
    await client._on_login(result.user)
    assert (await client.get_me()).id == me.id
    assert not (await alice(functions.account.GetPasswordRequest())).has_password


@async_test
async def test_recovery_without_email_is_not_available(server):
    alice, phone = await make_user(server, "Alice")
    await alice.edit_2fa(new_password="secret")
    client = await start_login(server, phone)
    with expect_rpc_error({"PASSWORD_RECOVERY_NA"}, 400):
        await client(functions.auth.RequestPasswordRecoveryRequest())
    # A key that neither logged in nor passed a code is not asked anything.
    stranger = await connect(server)
    with expect_rpc_error({"AUTH_KEY_UNREGISTERED"}, 401):
        await stranger(functions.account.GetPasswordRequest())
