"""Drafts, pinned dialogs and the archive through Telethon."""

from telethon import events, functions, types

from harness import EventCollector, async_test, connect, expect_rpc_error, login, make_account, make_chat


@async_test
async def test_draft_syncs_to_the_other_session_and_clears_on_send(server):
    chat = await make_chat(server)
    await chat.bob.client.send_message(chat.to_alice, "ping")
    second = await connect(server)
    await login(second, chat.alice.phone)
    synced = EventCollector(second, events.Raw(types.UpdateDraftMessage))
    draft = await chat.alice.client.get_drafts(chat.to_bob)
    assert draft.text == ""
    assert await draft.set_message("half a thought")
    update = await synced.next()
    assert update.peer == types.PeerUser(chat.bob.id) and update.draft.message == "half a thought"
    (listed,) = await second.get_drafts()
    assert listed.text == "half a thought" and listed.entity.id == chat.bob.id
    dialogs = await second.get_dialogs()
    (d,) = [d for d in dialogs if d.id == chat.bob.id]
    assert d.draft.text == "half a thought"
    # Sending with clear_draft empties it, and the other session hears so.
    await chat.alice.client.send_message(chat.to_bob, "the whole thought", clear_draft=True)
    update = await synced.next()
    assert isinstance(update.draft, types.DraftMessageEmpty)
    assert await second.get_drafts() == []


@async_test
async def test_pinned_dialogs_come_first_and_are_limited(server):
    me = await make_account(server, "Me")
    others = [await make_account(server, f"Friend{i}") for i in range(6)]
    for o in others:
        await o.client.send_message(me.username, f"hi from {o.me.first_name}")
    peers = [await me.client.get_input_entity(o.username) for o in others]
    for p in peers[:5]:
        assert await me.client(functions.messages.ToggleDialogPinRequest(peer=types.InputDialogPeer(p), pinned=True))
    with expect_rpc_error({"PINNED_DIALOGS_TOO_MUCH"}, 400):
        await me.client(functions.messages.ToggleDialogPinRequest(peer=types.InputDialogPeer(peers[5]), pinned=True))
    dialogs = await me.client.get_dialogs()
    assert [d.id for d in dialogs[:5]] == [o.id for o in reversed(others[:5])]
    assert all(d.pinned for d in dialogs[:5]) and not dialogs[5].pinned
    pinned = await me.client(functions.messages.GetPinnedDialogsRequest(folder_id=0))
    assert [d.peer.user_id for d in pinned.dialogs] == [o.id for o in reversed(others[:5])]
    await me.client(functions.messages.ReorderPinnedDialogsRequest(folder_id=0, order=[types.InputDialogPeer(peers[0])], force=True))
    pinned = await me.client(functions.messages.GetPinnedDialogsRequest(folder_id=0))
    assert [d.peer.user_id for d in pinned.dialogs] == [others[0].id]


@async_test
async def test_archive_moves_dialogs_out_of_the_main_list(server):
    chat = await make_chat(server)
    a = chat.alice.client
    await a.send_message(chat.to_bob, "see you in the archive")
    result = await a.edit_folder(chat.to_bob, 1)
    (update,) = [u for u in result.updates if isinstance(u, types.UpdateFolderPeers)]
    assert update.folder_peers[0].folder_id == 1
    assert chat.bob.id not in [d.id for d in await a.get_dialogs(folder=0)]
    # Without a folder, Telegram lists every dialog, archived ones included.
    assert chat.bob.id in [d.id for d in await a.get_dialogs()]
    archived = await a.get_dialogs(folder=1)
    assert [d.id for d in archived] == [chat.bob.id] and archived[0].archived
    await a.edit_folder(chat.to_bob, 0)
    assert chat.bob.id in [d.id for d in await a.get_dialogs(folder=0)]
    with expect_rpc_error({"FOLDER_ID_INVALID"}, 400):
        await a(functions.folders.EditPeerFoldersRequest([types.InputFolderPeer(chat.to_bob, 7)]))
