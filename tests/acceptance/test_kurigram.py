"""kurigram 2.2.24 (a Pyrogram fork, layer 227) against Herald, as its users call it: sign-up,
`get_users` / `get_chat` (which send `inputPeerUser` where the schema says `InputUser`),
messages handled once each while a media session shares the key, history count
(`messages.getSplitRanges`), search, forward, block, active sessions.

kurigram is pointed at Herald the way the README says: a connection factory with the server's
address, the server's RSA key added to its key table, and a server presenting DC 2, the DC a
new kurigram session assumes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import pytest
import rsa as pyrsa
from pyrogram import Client, errors, filters, raw
from pyrogram import types as ptypes
from pyrogram.connection import Connection
from pyrogram.crypto import rsa as prsa
from pyrogram.handlers import MessageHandler

from harness import EVENT_TIMEOUT, HeraldServer, async_test, code_for, random_phone, random_username

# Pyrogram warns once per process that TgCrypto (its optional C speed-up) is missing.
logging.getLogger("pyrogram").setLevel(logging.ERROR)

KURIGRAM_DC = 2


@pytest.fixture(scope="module")
def kuri_server(request):
    """A server of its own presenting DC 2 (Telethon, in the other modules, uses DC 1)."""
    server = HeraldServer.launch("herald-kurigram", dc=KURIGRAM_DC)
    register_key(server)
    yield server
    server.cleanup(keep_data=request.session.testsfailed > 0)


def key_fingerprint(n: int, e: int) -> int:
    """The signed low 64 bits of SHA-1 over the TL-serialised modulus and exponent."""

    def tl_bytes(b: bytes) -> bytes:
        out = bytes([len(b)]) + b if len(b) < 254 else bytes([254]) + len(b).to_bytes(3, "little") + b
        return out + b"\0" * (-len(out) % 4)

    def big(x: int) -> bytes:
        return x.to_bytes((x.bit_length() + 7) // 8, "big")

    fp = int.from_bytes(hashlib.sha1(tl_bytes(big(n)) + tl_bytes(big(e))).digest()[-8:], "little")
    return fp - (1 << 64) if fp >= 1 << 63 else fp


def register_key(server: HeraldServer) -> None:
    key = pyrsa.PublicKey.load_pkcs1(server.pubkey_path.read_bytes())
    prsa.server_public_keys[key_fingerprint(key.n, key.e)] = prsa.PublicKey(key.n, key.e)


class KuriClient(Client):
    """A kurigram client for Herald: every connection (the main one, the media one) goes to
    the server's port, and a new number is signed up without the interactive prompt."""

    def __init__(self, server: HeraldServer, first_name: str):
        herald_port = server.port

        class ToHerald(Connection):
            # kurigram passes these by keyword.
            def __init__(self, dc_id, server_address, port, *args, **kwargs):
                super().__init__(dc_id, "127.0.0.1", herald_port, *args, **kwargs)

        self.phone = random_phone()
        self.first = first_name
        super().__init__(
            f"kuri-{self.phone}", api_id=12345, api_hash="0123456789abcdef0123456789abcdef",
            in_memory=True, connection_factory=ToHerald,
            phone_number=self.phone, phone_code=code_for(self.phone),
        )

    async def authorize(self):
        sent = await self.send_code(self.phone)
        user = await self.sign_in(self.phone, sent.phone_code_hash, code_for(self.phone))
        if isinstance(user, ptypes.User):
            return user
        return await self.sign_up(self.phone, sent.phone_code_hash, self.first)


async def started(server: HeraldServer, first_name: str) -> KuriClient:
    client = KuriClient(server, first_name)
    await client.start()
    return client


class Inbox:
    """Counts each incoming private message a client's handler sees, by text."""

    def __init__(self, client: Client):
        self.seen: list[str] = []
        self.arrived = asyncio.Event()
        client.add_handler(MessageHandler(self._on, filters.private & filters.incoming))

    async def _on(self, _client, message) -> None:
        self.seen.append(message.text)
        self.arrived.set()

    async def wait_for(self, text: str) -> None:
        async def until():
            while text not in self.seen:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(until(), EVENT_TIMEOUT)


async def stop_all(*clients: Client) -> None:
    for c in clients:
        try:
            await c.stop()
        except Exception:
            pass


@async_test(timeout=120)
async def test_kurigram_signs_up_and_reads_users_chats_and_sessions(kuri_server):
    alice = await started(kuri_server, "Kuri")
    try:
        me = await alice.get_me()
        assert (me.first_name, me.phone_number) == ("Kuri", alice.phone)
        # get_users and get_chat send inputPeerUser / inputPeerSelf where users.getUsers and
        # users.getFullUser take an InputUser.
        users = await alice.get_users([me.id, "me"])
        assert [u.id for u in users] == [me.id, me.id]
        chat = await alice.get_chat(me.id)
        assert (chat.id, chat.first_name) == (me.id, "Kuri")
        # Saved Messages and its history count (messages.getSplitRanges, then the count).
        sent = await alice.send_message("me", "note to self")
        assert sent.text == "note to self"
        assert await alice.get_chat_history_count("me") == 1
        # Active sessions: this one, current.
        sessions = await alice.get_active_sessions()
        assert [s.is_current for s in sessions.active_sessions] == [True]
        assert (sessions.active_sessions[0].application_version, sessions.active_sessions[0].api_id) == ("Pyrogram 2.2.24", 12345)
    finally:
        await stop_all(alice)


@async_test(timeout=150)
async def test_kurigram_handlers_fire_once_with_a_media_session_search_forward_block(kuri_server):
    alice = await started(kuri_server, "Alice")
    bob = await started(kuri_server, "Bob")
    try:
        inbox = Inbox(alice)
        name = random_username("kuri")
        await alice.set_username(name)
        # The media session kurigram opens for uploads and downloads: a second connection on
        # the same key, which says initConnection(help.getConfig) like the main one.
        media = await alice.get_session(is_media=True)
        assert media.is_media

        for text in ("one", "two", "three"):
            await bob.send_message(name, text)
        await inbox.wait_for("three")
        # Each message reached one connection of the key: the handler saw it once. A last
        # marker after a round trip on both connections proves the absence of late copies.
        await media.invoke(raw.functions.help.GetConfig())
        await alice.get_me()
        await bob.send_message(name, "marker")
        await inbox.wait_for("marker")
        assert inbox.seen == ["one", "two", "three", "marker"]

        bob_id = (await bob.get_me()).id
        assert await alice.get_chat_history_count(bob_id) == 4
        found = [m.text async for m in alice.search_messages(bob_id, query="two")]
        assert found == ["two"]
        found = [m.text async for m in alice.search_global("three")]
        assert found == ["three"]

        # Forward bob's message to Saved Messages, with the forward header.
        first = [m async for m in alice.search_messages(bob_id, query="one")][0]
        forwarded = await alice.forward_messages("me", bob_id, first.id)
        forwarded = forwarded[0] if isinstance(forwarded, list) else forwarded
        assert forwarded.text == "one"
        assert forwarded.forward_origin is not None
        assert forwarded.forward_origin.sender_user.id == bob_id

        # Blocked: bob's messages are refused; unblocked: they flow again.
        assert await alice.block_user(bob_id)
        with pytest.raises(errors.UserIsBlocked):
            await bob.send_message(name, "while blocked")
        assert await alice.unblock_user(bob_id)
        await bob.send_message(name, "after unblock")
        await inbox.wait_for("after unblock")
        assert "while blocked" not in inbox.seen
    finally:
        await stop_all(alice, bob)


@async_test(timeout=150)
async def test_kurigram_sends_and_downloads_photos_and_documents(kuri_server):
    """kurigram uploads and downloads on its media session (same key) and packs what it needs
    (DC, id, hash, reference, size type) into its own file ids."""
    import io
    import os

    from test_files import png

    alice = await started(kuri_server, "Alice")
    bob = await started(kuri_server, "Bob")
    try:
        name = random_username("kurif")
        await bob.set_username(name)
        bob_id = (await bob.get_me()).id
        alice_id = (await alice.get_me()).id
        data = os.urandom(300_000)
        doc = io.BytesIO(data)
        doc.name = "report.bin"
        sent = await alice.send_document(name, doc, caption="the report")
        assert sent.document.file_name == "report.bin" and sent.document.file_size == len(data)
        picture = io.BytesIO(png(800, 600))
        picture.name = "view.png"
        shot = await alice.send_photo(name, picture, caption="the view")
        assert (shot.photo.width, shot.photo.height) == (800, 600)

        got = [m async for m in bob.get_chat_history(alice_id, limit=2)]
        photo_msg, doc_msg = got
        assert doc_msg.caption == "the report" and photo_msg.caption == "the view"
        fetched = await bob.download_media(doc_msg, in_memory=True)
        assert bytes(fetched.getbuffer()) == data
        image = await bob.download_media(photo_msg, in_memory=True)
        jpeg = bytes(image.getbuffer())
        assert jpeg[:2] == b"\xff\xd8" and len(jpeg) == photo_msg.photo.file_size
        # A thumbnail by its own file id.
        assert photo_msg.photo.thumbs, "the smaller sizes are listed as thumbnails"
        thumb = await bob.download_media(photo_msg.photo.thumbs[0].file_id, in_memory=True)
        assert bytes(thumb.getbuffer())[:2] == b"\xff\xd8"
        assert bob_id != alice_id
    finally:
        await stop_all(alice, bob)

