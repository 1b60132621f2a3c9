"""Connecting: key exchange over every transport, config, and unauthorized calls."""

import struct

import pytest
from telethon import errors, functions, types
from telethon.tl.tlobject import TLRequest

from harness import (
    TRANSPORT_IDS,
    TRANSPORTS,
    async_test,
    connect,
    expect_rpc_error,
    make_user,
)


@pytest.mark.parametrize("transport", TRANSPORTS, ids=TRANSPORT_IDS)
@async_test
async def test_get_config_over_each_transport(server, transport):
    client = await connect(server, transport=transport)

    config = await client(functions.help.GetConfigRequest())

    assert isinstance(config, types.Config)
    assert config.this_dc == 1
    own = [o for o in config.dc_options if o.id == 1 and not o.ipv6 and not o.cdn]
    assert own, f"no IPv4 dc_option for DC 1 in {config.dc_options}"
    assert any(o.ip_address == "127.0.0.1" and o.port == server.port for o in own), own


@async_test
async def test_get_nearest_dc(server):
    client = await connect(server)

    nearest = await client(functions.help.GetNearestDcRequest())

    assert isinstance(nearest, types.NearestDc)
    assert nearest.this_dc == 1
    assert nearest.nearest_dc == 1


@async_test
async def test_unauthorized_key_is_rejected_with_401(server):
    client = await connect(server)

    assert await client.get_me() is None
    assert await client.is_user_authorized() is False
    with expect_rpc_error({"AUTH_KEY_UNREGISTERED"}, code=401):
        await client(functions.users.GetUsersRequest([types.InputUserSelf()]))
    # The connection survives the error.
    assert (await client(functions.help.GetConfigRequest())).this_dc == 1


@pytest.mark.parametrize("request_factory,name", [
    (lambda: functions.stickers.CheckShortNameRequest(short_name="herald_pack"),
     "METHOD_NOT_IMPLEMENTED_STICKERS_CHECKSHORTNAME"),
    (lambda: functions.payments.GetStarsStatusRequest(peer=types.InputPeerSelf()),
     "METHOD_NOT_IMPLEMENTED_PAYMENTS_GETSTARSSTATUS"),
], ids=["stickers.checkShortName", "payments.getStarsStatus"])
@async_test
async def test_unimplemented_method_answers_with_rpc_error(server, request_factory, name):
    # request_retries=0: a 5xx answer must surface at once, not after Telethon's retries.
    client, _ = await make_user(server, "Unimpl", request_retries=0)

    with expect_rpc_error({name}, code=400):
        await client(request_factory())
    # ...and the session keeps working afterwards.
    assert (await client.get_me()) is not None


class _UnknownConstructorRequest(TLRequest):
    """A method no layer defines: the server cannot even parse its body."""
    CONSTRUCTOR_ID = 0x0BADF00D
    SUBCLASS_OF_ID = 0x8AF52AAC

    def to_dict(self):
        return {"_": "UnknownConstructorRequest"}

    def _bytes(self):
        return struct.pack("<Ii", self.CONSTRUCTOR_ID, 42)


@async_test
async def test_unknown_constructor_answers_with_rpc_error(server):
    client, _ = await make_user(server, "Unknown", request_retries=0)

    with expect_rpc_error({"INPUT_METHOD_INVALID_0BADF00D"}, code=400):
        await client(_UnknownConstructorRequest())
    assert (await client.get_me()) is not None
