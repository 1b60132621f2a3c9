"""TDLib, the core of Telegram's own apps, against Herald: log in, the self chat, send, read
history, receive a push from a Telethon user; once plainly and once with perfect forward
secrecy (`use_pfs`: a temporary key bound with auth.bindTempAuthKey)."""

import pytest
from telethon import functions, types

from harness import async_test, code_for, make_account, random_phone
from tdlib import Socks5ToServer, TdClient, library_with_key, text_message


@pytest.fixture(scope="module")
def td_env(shared_server):
    shared_server.ensure_running()
    library = library_with_key(shared_server.pubkey_path.read_bytes())
    proxy = Socks5ToServer(shared_server.port)
    yield library, proxy
    proxy.close()


@pytest.mark.parametrize("use_pfs", [False, True], ids=["plain", "pfs"])
@async_test(timeout=150)
async def test_tdlib_logs_in_sends_reads_and_receives(server, td_env, use_pfs):
    library, proxy = td_env
    td = TdClient(library, proxy.port, use_pfs=use_pfs)
    phone = random_phone()
    try:
        td.log_in(phone, code_for(phone), "Tdlib")
        me = td.call({"@type": "getMe"})
        assert me["phone_number"] == phone
        # The self chat (Saved Messages): send and read back.
        chat = td.call({"@type": "createPrivateChat", "user_id": me["id"], "force": False})
        td.call({"@type": "sendMessage", "chat_id": chat["id"], "input_message_content": text_message("note to self")})
        td.pump(lambda e: e.get("@type") == "updateMessageSendSucceeded")
        history = td.call({"@type": "getChatHistory", "chat_id": chat["id"], "from_message_id": 0, "offset": 0, "limit": 10, "only_local": False})
        assert [m["content"]["text"]["text"] for m in history["messages"]] == ["note to self"]
        # A Telethon user writes to the TDLib user: the message is pushed.
        sender = await make_account(server, "Sender")
        found = await sender.client(functions.contacts.ResolvePhoneRequest(phone=phone))
        await sender.client.send_message(types.InputPeerUser(found.users[0].id, found.users[0].access_hash), "hello tdlib")
        pushed = td.pump(lambda e: e.get("@type") == "updateNewMessage" and not e["message"]["is_outgoing"])
        assert pushed["message"]["content"]["text"]["text"] == "hello tdlib"
        assert pushed["message"]["sender_id"]["user_id"] == sender.id
    finally:
        td.close()
