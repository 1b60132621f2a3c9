"""The calls clients (TDLib, Telegram Desktop, kurigram) make at start-up for features Herald
does not have yet: each gets Telegram's empty answer, not an error; and getPeerDialogs /
getPinnedDialogs, which TDLib needs for its chat list and the self chat."""

from telethon import events, functions, types

from harness import EventCollector, async_test, connect, login, make_chat, send_raw


@async_test
async def test_start_up_calls_get_empty_answers(server):
    chat = await make_chat(server)
    c = chat.alice.client
    config = await c(functions.help.GetAppConfigRequest(hash=0))
    assert isinstance(config, types.help.AppConfig) and config.config == types.JsonObject([])
    assert isinstance(await c(functions.help.GetPromoDataRequest()), types.help.PromoDataEmpty)
    assert isinstance(await c(functions.help.GetTermsOfServiceUpdateRequest()), types.help.TermsOfServiceUpdateEmpty)
    settings = await c(functions.account.GetNotifySettingsRequest(peer=types.InputNotifyPeer(chat.to_bob)))
    assert isinstance(settings, types.PeerNotifySettings)
    assert isinstance(await c(functions.account.GetContentSettingsRequest()), types.account.ContentSettings)
    filters = await c(functions.messages.GetDialogFiltersRequest())
    assert isinstance(filters, types.messages.DialogFilters) and filters.filters == []
    reactions = await c(functions.messages.GetAvailableReactionsRequest(hash=0))
    assert isinstance(reactions, types.messages.AvailableReactions) and reactions.reactions == []
    assert await c(functions.messages.GetDialogUnreadMarksRequest()) == []
    top = await c(functions.contacts.GetTopPeersRequest(offset=0, limit=10, hash=0, correspondents=True))
    assert isinstance(top, types.contacts.TopPeersDisabled)
    # History is not split: one range covers it all.
    assert [(r.min_id, r.max_id) for r in await c(functions.messages.GetSplitRangesRequest())] == [(1, 2**31 - 1)]
    preview = await c(functions.messages.GetWebPagePreviewRequest(message="see https://example.com"))
    assert isinstance(preview.media, types.MessageMediaEmpty)


@async_test
async def test_peer_dialogs_and_pinned_dialogs(server):
    chat = await make_chat(server)
    c = chat.alice.client
    await send_raw(c, chat.to_bob, "hello bob")
    result = await c(functions.messages.GetPeerDialogsRequest(peers=[
        types.InputDialogPeer(chat.to_bob), types.InputDialogPeer(types.InputPeerSelf())]))
    assert isinstance(result, types.messages.PeerDialogs)
    # Alice has a dialog with bob; the one with herself has no message yet and comes empty
    # (TDLib opens the self chat this way).
    assert [d.peer for d in result.dialogs] == [types.PeerUser(chat.bob.id), types.PeerUser(chat.alice.id)]
    assert result.dialogs[1].top_message == 0
    assert [m.message for m in result.messages] == ["hello bob"]
    assert chat.bob.id in {u.id for u in result.users}
    assert result.state.pts > 0
    pinned = await c(functions.messages.GetPinnedDialogsRequest(folder_id=0))
    assert pinned.dialogs == [] and pinned.state.pts == result.state.pts


@async_test
async def test_mark_dialog_unread(server):
    """messages.markDialogUnread: the dialog shows unread_mark, the account's other sessions
    get updateDialogUnreadMark, getDialogUnreadMarks lists it; reading new messages clears
    it, and so does markDialogUnread(unread=False)."""
    chat = await make_chat(server)
    alice = chat.alice.client
    await send_raw(chat.bob.client, chat.to_alice, "hello")
    alice2 = await connect(server)
    await login(alice2, chat.alice.phone)
    await alice2.get_dialogs()
    marks = EventCollector(alice2, events.Raw(types.UpdateDialogUnreadMark))

    assert await alice(functions.messages.MarkDialogUnreadRequest(peer=types.InputDialogPeer(chat.to_bob), unread=True)) is True
    update = await marks.next(lambda u: u.unread, what="the other session hears of the mark")
    assert update.peer == types.DialogPeer(types.PeerUser(chat.bob.id))
    dialog = [d for d in await alice.get_dialogs() if d.id == chat.bob.id][0]
    assert dialog.dialog.unread_mark
    assert await alice(functions.messages.GetDialogUnreadMarksRequest()) == [types.DialogPeer(types.PeerUser(chat.bob.id))]

    await alice.send_read_acknowledge(chat.to_bob)
    dialog = [d for d in await alice.get_dialogs() if d.id == chat.bob.id][0]
    assert not dialog.dialog.unread_mark, "reading clears the mark"

    assert await alice(functions.messages.MarkDialogUnreadRequest(peer=types.InputDialogPeer(chat.to_bob), unread=True)) is True
    assert await alice(functions.messages.MarkDialogUnreadRequest(peer=types.InputDialogPeer(chat.to_bob), unread=False)) is True
    await marks.next(lambda u: not u.unread, what="and of the mark cleared")
    assert await alice(functions.messages.GetDialogUnreadMarksRequest()) == []
