"""Files with Telethon: uploads in parts (small and big), documents sent, resent, forwarded and
downloaded byte for byte, the upload rules and download ranges with their errors, channel files
refused to non-members, and uploaded parts kept across a restart."""

import asyncio
import hashlib
import io
import os
import random

import pytest
from telethon import functions, types, utils
from telethon.sessions import StringSession

from harness import (HeraldServer, async_test, connect, create_channel, create_group, expect_rpc_error, invite_to_channel,
                     make_accounts,
                     make_chat, random_id)


def named(data: bytes, name: str) -> io.BytesIO:
    f = io.BytesIO(data)
    f.name = name
    return f


async def download(client, message) -> bytes:
    data = await client.download_media(message, file=bytes)
    assert isinstance(data, bytes), data
    return data


@async_test(timeout=90)
async def test_a_document_goes_both_ways_with_its_name_and_caption(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    data = os.urandom(300_000)  # three 128 KiB parts, the last shorter
    sent = await a.send_file(chat.to_bob, named(data, "notes.bin"), caption="the **notes**", force_document=True)
    doc = sent.document
    assert isinstance(doc, types.Document) and doc.size == len(data), doc
    assert doc.dc_id == 1 and doc.file_reference
    assert [a.file_name for a in doc.attributes if isinstance(a, types.DocumentAttributeFilename)] == ["notes.bin"]
    assert sent.raw_text == "the notes" and sent.entities, "the caption keeps its formatting"
    (theirs,) = await b.get_messages(chat.to_alice, limit=1)
    assert theirs.document.id == doc.id and theirs.document.access_hash != doc.access_hash, "hashes are per viewer"
    assert await download(b, theirs) == data
    assert await download(a, sent) == data
    # Sent again without uploading (the document itself), and forwarded: the same bytes.
    again = await a.send_file(chat.to_bob, doc, caption="again")
    assert again.document.id == doc.id
    forwarded = await b.forward_messages("me", theirs)
    assert forwarded.fwd_from is not None and await download(b, forwarded) == data


@async_test(timeout=240)
async def test_a_30_mb_document_takes_the_big_file_path(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    data = random.Random(7).randbytes(30 * 1024 * 1024)
    sent = await a.send_file(chat.to_bob, named(data, "big.dat"), force_document=True)
    assert sent.document.size == len(data)
    (theirs,) = await b.get_messages(chat.to_alice, limit=1)
    got = await download(b, theirs)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


async def save_parts(client, file_id: int, parts: list[bytes], big_total: int = 0):
    for i, p in enumerate(parts):
        if big_total:
            ok = await client(functions.upload.SaveBigFilePartRequest(file_id, i, big_total, p))
        else:
            ok = await client(functions.upload.SaveFilePartRequest(file_id, i, p))
        assert ok is True


def document_media(f) -> types.InputMediaUploadedDocument:
    return types.InputMediaUploadedDocument(file=f, mime_type="application/octet-stream", attributes=[])


@async_test(timeout=90)
async def test_upload_rules_are_named_errors(server):
    chat = await make_chat(server)
    a = chat.alice.client
    k = 1024

    async def send(f):
        return await a(functions.messages.SendMediaRequest(peer=chat.to_bob, media=document_media(f), message="", random_id=random_id()))

    # A missing part, by number.
    fid = random.getrandbits(63)
    await save_parts(a, fid, [b"x" * (128 * k)])
    await a(functions.upload.SaveFilePartRequest(fid, 2, b"tail"))
    with expect_rpc_error({"FILE_PART_1_MISSING"}, 400):
        await send(types.InputFile(fid, 3, "f.bin", ""))
    # Parts of a size that does not divide 512 KiB.
    fid = random.getrandbits(63)
    await save_parts(a, fid, [b"x" * (3 * k), b"x" * (3 * k)])
    with expect_rpc_error({"FILE_PART_SIZE_INVALID"}, 400):
        await send(types.InputFile(fid, 2, "f.bin", ""))
    # A wrong MD5 for a small file; the right one is taken.
    fid = random.getrandbits(63)
    await save_parts(a, fid, [b"hello"])
    with expect_rpc_error({"MD5_CHECKSUM_INVALID"}, 400):
        await send(types.InputFile(fid, 1, "f.bin", "0" * 32))
    await send(types.InputFile(fid, 1, "f.bin", hashlib.md5(b"hello").hexdigest()))
    # Big uploads declare their part count, within 1..8000; a part past it is refused.
    with expect_rpc_error({"FILE_PARTS_INVALID"}, 400):
        await a(functions.upload.SaveBigFilePartRequest(random.getrandbits(63), 0, 0, b"x"))
    with expect_rpc_error({"FILE_PARTS_INVALID"}, 400):
        await a(functions.upload.SaveBigFilePartRequest(random.getrandbits(63), 0, 8001, b"x"))
    with expect_rpc_error({"FILE_PART_INVALID"}, 400):
        await a(functions.upload.SaveBigFilePartRequest(random.getrandbits(63), 4, 4, b"x"))
    with expect_rpc_error({"FILE_PART_SIZE_INVALID"}, 400):
        await a(functions.upload.SaveFilePartRequest(random.getrandbits(63), 0, b"x" * (512 * k + 1)))
    with expect_rpc_error({"FILE_PART_EMPTY"}, 400):
        await a(functions.upload.SaveFilePartRequest(random.getrandbits(63), 0, b""))
    # Not a mime type.
    fid = random.getrandbits(63)
    await save_parts(a, fid, [b"hello"])
    with expect_rpc_error({"MIME_TYPE_INVALID"}, 400):
        await a(functions.messages.SendMediaRequest(
            peer=chat.to_bob, message="", random_id=random_id(),
            media=types.InputMediaUploadedDocument(file=types.InputFile(fid, 1, "f", ""), mime_type="nonsense", attributes=[])))


@async_test(timeout=90)
async def test_download_ranges_follow_the_rules(server):
    chat = await make_chat(server)
    a = chat.alice.client
    data = os.urandom(3 * 1024 * 1024 + 5)
    sent = await a.send_file(chat.to_bob, named(data, "r.bin"), force_document=True)
    loc = utils.get_input_location(sent.document)[1]

    async def get(offset, limit, precise=None):
        return (await a(functions.upload.GetFileRequest(loc, offset, limit, precise=precise))).bytes

    assert await get(1024 * 1024, 1024 * 1024) == data[1024 * 1024:2 * 1024 * 1024]
    assert await get(3 * 1024 * 1024, 4096) == data[3 * 1024 * 1024:], "a short last chunk"
    assert await get(4 * 1024 * 1024, 4096) == b"", "past the end: empty, not an error"
    assert await get(1024, 1024, precise=True) == data[1024:2048]
    with expect_rpc_error({"OFFSET_INVALID"}, 400):
        await get(1000, 4096)
    with expect_rpc_error({"LIMIT_INVALID"}, 400):
        await get(0, 1000)
    with expect_rpc_error({"LIMIT_INVALID"}, 400):
        await get(768 * 1024, 512 * 1024)  # crosses a 1 MiB boundary
    with expect_rpc_error({"LIMIT_INVALID"}, 400):
        await get(0, 2 * 1024 * 1024)
    # A forged access hash or reference finds nothing.
    forged = types.InputDocumentFileLocation(loc.id, loc.access_hash ^ 1, loc.file_reference, "")
    with expect_rpc_error({"FILE_ID_INVALID"}, 400):
        await a(functions.upload.GetFileRequest(forged, 0, 4096))
    forged = types.InputDocumentFileLocation(loc.id, loc.access_hash, b"\x00" * 12, "")
    with expect_rpc_error({"FILE_REFERENCE_INVALID"}, 400):
        await a(functions.upload.GetFileRequest(forged, 0, 4096))


@async_test(timeout=90)
async def test_media_goes_through_groups_and_supergroups_and_is_forwarded_between_them(server):
    owner, member, outsider = await make_accounts(server, "Owner", "Member", "Outsider")
    chat = await create_group(owner, [member], "Media group")
    group = types.PeerChat(chat.id)
    data = os.urandom(150_000)
    sent = await owner.client.send_file(group, named(data, "g.bin"), force_document=True, caption="for the group")
    (seen,) = await member.client.get_messages(group, limit=1)
    assert seen.document.id == sent.document.id and seen.raw_text == "for the group"
    assert await download(member.client, seen) == data
    photo = await member.client.send_file(group, named(png(300, 200), "g.png"))
    (photo_seen,) = await owner.client.get_messages(group, limit=1)
    assert photo_seen.photo.id == photo.photo.id and await download(owner.client, photo_seen) == await download(member.client, photo)
    # Forwarded from the group into a supergroup: its members (the outsider among them) fetch
    # it. A location is its viewer's own: the outsider's does not work for the member (who
    # has one of their own through the group).
    supergroup = await create_channel(owner.client, "Media supergroup")
    await invite_to_channel(owner, supergroup, [outsider])
    forwarded = await owner.client.forward_messages(supergroup, sent)
    (there,) = await outsider.client.get_messages(supergroup.id, ids=[forwarded.id])
    assert there.fwd_from is not None and await download(outsider.client, there) == data
    loc = utils.get_input_location(there.document)[1]
    with expect_rpc_error({"FILE_ID_INVALID"}, 400):
        await member.client(functions.upload.GetFileRequest(loc, 0, 4096))


@async_test(timeout=90)
async def test_a_channel_file_is_refused_to_non_members(server):
    owner, member, stranger = await make_accounts(server, "Owner", "Member", "Stranger")
    channel = await create_channel(owner.client, "Files", megagroup=False)
    await invite_to_channel(owner, channel, [member])
    data = os.urandom(50_000)
    post = await owner.client.send_file(channel, named(data, "post.bin"), force_document=True)
    (seen,) = await member.client.get_messages(channel.id, ids=[post.id])
    assert await download(member.client, seen) == data
    # The stranger holds the member's location (id, hash, reference): not theirs to use.
    loc = utils.get_input_location(seen.document)[1]
    with expect_rpc_error({"FILE_ID_INVALID"}, 400):
        await stranger.client(functions.upload.GetFileRequest(loc, 0, 4096))
    # Nor with a location of their own making: the hash is keyed per viewer, and the
    # file is in no chat they can see.
    with expect_rpc_error({"FILE_ID_INVALID"}, 400):
        await stranger.client(functions.upload.GetFileRequest(
            types.InputDocumentFileLocation(loc.id, 0, loc.file_reference, ""), 0, 4096))


@async_test(timeout=150)
async def test_uploaded_parts_are_kept_across_a_restart(fresh_server):
    server = fresh_server
    chat = await make_chat(server)
    a = chat.alice.client
    session = StringSession.save(a.session)
    data = os.urandom(200_000)
    uploaded = await a.upload_file(named(data, "kept.bin"))
    await a.disconnect()
    server.restart(kill9=True)
    a = await connect(server, StringSession(session))
    sent = await a.send_file(chat.to_bob, uploaded, force_document=True)
    assert sent.document.size == len(data)
    assert await download(a, sent) == data


def server_with(name: str, *args: str):
    """A module-scoped fixture: a server of its own started with ``args``."""
    @pytest.fixture(scope="module")
    def fixture(request):
        server = HeraldServer.launch(name, extra_args=list(args))
        yield server
        server.cleanup(keep_data=request.session.testsfailed > 0)
    return fixture


quota_server = server_with("herald-quota", "--file-quota-mib", "1")
short_reference_server = server_with("herald-short-refs", "--file-reference-secs", "2")


@async_test(timeout=90)
async def test_an_account_past_its_quota_is_refused_by_name(quota_server):
    chat = await make_chat(quota_server)
    a, b = chat.alice.client, chat.bob.client
    first = os.urandom(700_000)
    sent = await a.send_file(chat.to_bob, named(first, "first.bin"), force_document=True)
    assert sent.document.size == len(first)
    # 700 KB stored; 700 KB more passes the 1 MiB quota while its parts arrive.
    with expect_rpc_error({"STORAGE_QUOTA_EXCEEDED"}, 400):
        await a.send_file(chat.to_bob, named(os.urandom(700_000), "second.bin"), force_document=True)
    # The quota is per account: Bob still sends, and the file that fitted still downloads.
    back = await b.send_file(chat.to_alice, named(first, "back.bin"), force_document=True)
    assert back.document.size == len(first)
    (theirs,) = await b.get_messages(chat.to_alice, limit=1, offset_id=back.id)
    assert await download(b, theirs) == first


@async_test(timeout=90)
async def test_an_expired_file_reference_is_refetched_with_the_message(short_reference_server):
    chat = await make_chat(short_reference_server)
    a, b = chat.alice.client, chat.bob.client
    data = os.urandom(100_000)
    await a.send_file(chat.to_bob, named(data, "later.bin"), force_document=True)
    (theirs,) = await b.get_messages(chat.to_alice, limit=1)
    stale = utils.get_input_location(theirs.document)[1]
    await asyncio.sleep(4.5)  # references here last 2 to 4 seconds
    with expect_rpc_error({"FILE_REFERENCE_EXPIRED"}, 400):
        await b(functions.upload.GetFileRequest(stale, 0, 4096))
    # Telethon's answer to that: fetch the message again for a fresh reference, and go on.
    assert await download(b, theirs) == data


def png(w: int, h: int) -> bytes:
    """A w×h RGB PNG (a gradient), written by hand: the suite has no imaging library."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // w, y * 255 // h, 128)) for x in range(w)) for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@async_test(timeout=90)
async def test_a_photo_is_sent_in_telegrams_sizes_and_downloaded(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    sent = await a.send_file(chat.to_bob, named(png(1000, 500), "pic.png"), caption="a photo")
    photo = sent.photo
    assert isinstance(photo, types.Photo), sent.media
    stripped, *stored = photo.sizes
    assert isinstance(stripped, types.PhotoStrippedSize) and stripped.type == "i"
    assert [(s.type, s.w, s.h) for s in stored] == [("s", 100, 50), ("m", 320, 160), ("x", 800, 400), ("y", 1000, 500)]
    assert photo.dc_id == 1 and sent.raw_text == "a photo"
    (theirs,) = await b.get_messages(chat.to_alice, limit=1)
    assert theirs.photo.id == photo.id
    best = await download(b, theirs)
    assert best[:2] == b"\xff\xd8" and len(best) == theirs.photo.sizes[-1].size, "the largest size, a JPEG"
    # The stripped thumbnail is made on the client from the inline bytes and a fixed header:
    # a 40×20 JPEG (the frame's height and width patched in).
    inline = await b.download_media(theirs, file=bytes, thumb=stripped)
    assert inline == utils.stripped_photo_to_jpg(stripped.bytes) and inline[:2] == b"\xff\xd8" and inline[-2:] == b"\xff\xd9"
    assert stripped.bytes[:3] == bytes([1, 20, 40]) and len(stripped.bytes) < 1024
    small = await b.download_media(theirs, file=bytes, thumb=theirs.photo.sizes[1])
    assert small[:2] == b"\xff\xd8" and len(small) == theirs.photo.sizes[1].size, "the smallest stored size"
    # Sent again by the photo itself: the same photo, no upload.
    again = await a.send_file(chat.to_bob, photo)
    assert again.photo.id == photo.id
    # Not an image: refused by name.
    with expect_rpc_error({"PHOTO_INVALID"}, 400):
        await a.send_file(chat.to_bob, named(os.urandom(5000), "fake.png"))


@async_test(timeout=90)
async def test_a_document_carries_the_thumbnail_it_was_sent_with(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    data = os.urandom(100_000)
    sent = await a.send_file(chat.to_bob, named(data, "clip.bin"), force_document=True, thumb=named(png(640, 360), "t.png"))
    stripped, m = sent.document.thumbs
    assert isinstance(stripped, types.PhotoStrippedSize) and stripped.bytes[:3] == bytes([1, 23, 40])
    assert (m.type, m.w, m.h) == ("m", 320, 180)
    (theirs,) = await b.get_messages(chat.to_alice, limit=1)
    thumb = await b.download_media(theirs, file=bytes, thumb=-1)
    assert thumb[:2] == b"\xff\xd8" and len(thumb) == m.size, "the thumbnail, downloaded by its type"
    assert await download(b, theirs) == data, "the document itself is unchanged"
    # A thumbnail that is no image is dropped; the document still goes.
    plain = await a.send_file(chat.to_bob, named(data, "plain.bin"), force_document=True,
                              thumb=named(b"not an image", "t.jpg"))
    assert plain.document.size == len(data) and not plain.document.thumbs


@async_test(timeout=90)
async def test_an_album_is_one_group_of_messages(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    files = [named(png(400, 300), "one.png"), named(png(300, 400), "two.png"), named(b"plain text", "three.txt")]
    sent = await a.send_file(chat.to_bob, files[:2], caption=["first", "second"])
    assert isinstance(sent, list) and len(sent) == 2, sent
    assert sent[0].grouped_id is not None and sent[0].grouped_id == sent[1].grouped_id
    assert [m.raw_text for m in sent] == ["first", "second"] and all(m.photo for m in sent)
    theirs = await b.get_messages(chat.to_alice, limit=2)
    assert {m.grouped_id for m in theirs} == {sent[0].grouped_id}
    for m in theirs:
        assert (await download(b, m))[:2] == b"\xff\xd8"
    # Documents make albums too; a forward of the album stays one, under a new id.
    docs = await a.send_file(chat.to_bob, [files[2], named(b"more text", "four.txt")], force_document=True)
    assert len({m.grouped_id for m in docs}) == 1 and docs[0].document
    forwarded = await a.forward_messages("me", sent)
    assert len({m.grouped_id for m in forwarded}) == 1 and forwarded[0].grouped_id not in (None, sent[0].grouped_id)


@async_test(timeout=90)
async def test_a_profile_photo_is_set_seen_downloaded_and_deleted(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    up = await a.upload_file(named(png(640, 480), "me.png"))
    result = await a(functions.photos.UploadProfilePhotoRequest(file=up))
    photo = result.photo
    assert [s.type for s in photo.sizes] == ["i", "s", "m", "x"] and result.users[0].photo.photo_id == photo.id
    # Another user sees it on the user object and downloads it, small and big.
    alice = await b.get_entity(chat.to_alice)
    assert isinstance(alice.photo, types.UserProfilePhoto) and alice.photo.photo_id == photo.id
    assert alice.photo.stripped_thumb == photo.sizes[0].bytes, "the user carries the stripped thumbnail"
    big = await b.download_profile_photo(alice, file=bytes)
    assert big[:2] == b"\xff\xd8" and len(big) == photo.sizes[-1].size
    small = await b.download_profile_photo(alice, file=bytes, download_big=False)
    assert len(small) == photo.sizes[1].size, "the smallest stored size"
    listed = await b.get_profile_photos(alice)
    assert [p.id for p in listed] == [photo.id]
    assert (await b.download_media(listed[0], file=bytes)) == big
    full = await b(functions.users.GetFullUserRequest(chat.to_alice))
    assert full.full_user.profile_photo.id == photo.id
    # Hidden by privacy: no photo on the user, none listed, none to download.
    await a(functions.account.SetPrivacyRequest(types.InputPrivacyKeyProfilePhoto(), [types.InputPrivacyValueDisallowAll()]))
    alice = (await b(functions.users.GetUsersRequest([chat.to_alice])))[0]
    assert alice.photo is None
    assert await b.get_profile_photos(chat.to_alice) == []
    with expect_rpc_error({"FILE_ID_INVALID"}, 400):
        await b(functions.upload.GetFileRequest(types.InputPeerPhotoFileLocation(chat.to_alice, photo.id, big=True), 0, 4096))
    # Deleted: gone for its owner too.
    deleted = await a(functions.photos.DeletePhotosRequest([types.InputPhoto(photo.id, photo.access_hash, photo.file_reference)]))
    assert deleted == [photo.id]
    me = await a.get_me()
    assert me.photo is None


@async_test(timeout=90)
async def test_a_media_messages_caption_and_file_are_edited(server):
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    first, second = os.urandom(60_000), os.urandom(70_000)
    sent = await a.send_file(chat.to_bob, named(first, "v1.bin"), force_document=True, caption="version one")
    (theirs,) = await b.get_messages(chat.to_alice, limit=1)
    old_location = utils.get_input_location(theirs.document)[1]
    # The caption alone; then an empty caption (allowed for media, unlike text).
    edited = await a.edit_message(sent, "version **one**, final")
    assert edited.raw_text == "version one, final" and edited.document.id == sent.document.id
    edited = await a.edit_message(sent, "")
    assert edited.raw_text == "" and edited.edit_date
    with expect_rpc_error({"MEDIA_CAPTION_TOO_LONG"}, 400):
        await a.edit_message(sent, "x" * 1025)
    # The file itself: the receiver's copy shows the new one, and the old one is no longer
    # theirs to fetch.
    edited = await a.edit_message(sent, "version two", file=named(second, "v2.bin"), force_document=True)
    assert edited.document.id != sent.document.id and edited.raw_text == "version two"
    (theirs,) = await b.get_messages(chat.to_alice, ids=[theirs.id])
    assert theirs.document.id == edited.document.id and await download(b, theirs) == second
    with expect_rpc_error({"FILE_ID_INVALID"}, 400):
        await b(functions.upload.GetFileRequest(old_location, 0, 4096))
    # A text message takes no media.
    text = await a.send_message(chat.to_bob, "just words")
    with expect_rpc_error({"MEDIA_PREV_INVALID"}, 400):
        await a.edit_message(text, file=named(first, "v1.bin"), force_document=True)


@async_test(timeout=120)
async def test_chat_and_channel_photos_are_set_seen_downloaded_and_removed(server):
    owner, member, stranger = await make_accounts(server, "Owner", "Member", "Stranger")
    # A private channel: its members see the photo on the channel, in the service message
    # and in the full channel, and download it; a stranger is refused.
    channel = await create_channel(owner.client, "Pictured", megagroup=False)
    await invite_to_channel(owner, channel, [member])
    up = await owner.client.upload_file(named(png(400, 300), "c.png"))
    result = await owner.client(functions.channels.EditPhotoRequest(channel, types.InputChatUploadedPhoto(file=up)))
    (service,) = [u.message for u in result.updates if isinstance(u, types.UpdateNewChannelMessage)]
    assert isinstance(service.action, types.MessageActionChatEditPhoto)
    photo = service.action.photo
    assert [s.type for s in photo.sizes] == ["i", "s", "m", "x"]
    seen = await member.client.get_entity(types.PeerChannel(channel.id))
    assert isinstance(seen.photo, types.ChatPhoto) and seen.photo.photo_id == photo.id
    assert seen.photo.stripped_thumb == photo.sizes[0].bytes
    big = await member.client.download_profile_photo(seen, file=bytes)
    assert big[:2] == b"\xff\xd8" and len(big) == photo.sizes[-1].size
    (msg,) = await member.client.get_messages(seen, ids=[service.id])
    assert await member.client.download_media(msg.action.photo, file=bytes) == big
    full = await member.client(functions.channels.GetFullChannelRequest(seen))
    assert full.full_chat.chat_photo.id == photo.id
    with expect_rpc_error({"CHANNEL_PRIVATE", "CHANNEL_INVALID"}, 400):
        await stranger.client(functions.upload.GetFileRequest(types.InputPeerPhotoFileLocation(
            types.InputPeerChannel(channel.id, 0), photo.id, big=True), 0, 4096))
    # Setting the same photo again changes nothing; a member without the right may not.
    same = types.InputChatPhoto(types.InputPhoto(photo.id, photo.access_hash, photo.file_reference))
    with expect_rpc_error({"CHAT_NOT_MODIFIED"}, 400):
        await owner.client(functions.channels.EditPhotoRequest(channel, same))
    with expect_rpc_error({"CHAT_ADMIN_REQUIRED"}, 400):
        await member.client(functions.channels.EditPhotoRequest(seen, types.InputChatPhotoEmpty()))
    # Removed: the channel shows none.
    await owner.client(functions.channels.EditPhotoRequest(channel, types.InputChatPhotoEmpty()))
    seen = (await member.client(functions.channels.GetChannelsRequest([seen]))).chats[0]
    assert isinstance(seen.photo, types.ChatPhotoEmpty)
    # A basic group, by any member: the same through messages.editChatPhoto.
    chat = await create_group(owner, [member], "Pictured group")
    up = await member.client.upload_file(named(png(200, 200), "g.png"))
    await member.client(functions.messages.EditChatPhotoRequest(chat.id, types.InputChatUploadedPhoto(file=up)))
    group = await owner.client.get_entity(types.PeerChat(chat.id))
    assert isinstance(group.photo, types.ChatPhoto)
    small = await owner.client.download_profile_photo(group, file=bytes, download_big=False)
    assert small[:2] == b"\xff\xd8"
    full = await owner.client(functions.messages.GetFullChatRequest(chat.id))
    assert full.full_chat.chat_photo.id == group.photo.photo_id
    with expect_rpc_error({"PHOTO_INVALID"}, 400):
        up = await member.client.upload_file(named(b"not an image at all", "x.png"))
        await member.client(functions.messages.EditChatPhotoRequest(chat.id, types.InputChatUploadedPhoto(file=up)))


@pytest.mark.skipif(not os.environ.get("HERALD_BIG_FILE"), reason="set HERALD_BIG_FILE=1: moves 2.1 GB through Telethon")
@async_test(timeout=7200)
async def test_a_file_over_2_gb_end_to_end(server):
    """Opt-in (slow: Telethon encrypts in Python unless cryptg is installed): a 2.1 GB
    document up and down again through Telethon, compared by SHA-256."""
    chat = await make_chat(server)
    a, b = chat.alice.client, chat.bob.client
    size = 2100 * 1024 * 1024
    block = random.Random(11).randbytes(1024 * 1024)

    class Big(io.RawIOBase):
        """2.1 GB of a repeated random MiB, numbered so no two MiB are alike, never held whole."""
        name = "big.bin"

        def __init__(self):
            self.pos = 0

        def readable(self):
            return True

        def seekable(self):
            return True

        def seek(self, off, whence=0):
            self.pos = off if whence == 0 else (self.pos + off if whence == 1 else size + off)
            return self.pos

        def tell(self):
            return self.pos

        def readinto(self, buf):
            n = min(len(buf), size - self.pos)
            out = bytearray()
            while len(out) < n:
                mib, at = divmod(self.pos + len(out), 1024 * 1024)
                piece = (mib.to_bytes(8, "little") + block[8:])[at:]
                out += piece[: n - len(out)]
            buf[:n] = out
            self.pos += n
            return n

    expected = hashlib.sha256()
    src = Big()
    while chunk := src.read(8 * 1024 * 1024):
        expected.update(chunk)
    sent = await a.send_file(chat.to_bob, Big(), file_size=size, force_document=True)
    assert sent.document.size == size
    (theirs,) = await b.get_messages(chat.to_alice, limit=1)
    got = hashlib.sha256()
    async for chunk in b.iter_download(theirs.document, request_size=512 * 1024):
        got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()
