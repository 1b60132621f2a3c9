"""The calls clients (TDLib, Telegram Desktop, kurigram) make at start-up for features Herald
does not have yet: each gets Telegram's empty answer, not an error; and getPeerDialogs /
getPinnedDialogs, which TDLib needs for its chat list and the self chat."""

from telethon import functions, types

from harness import async_test, make_chat, send_raw


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
    assert await c(functions.messages.GetSplitRangesRequest()) == []
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
    # Alice has a dialog with bob, not (yet) with herself.
    assert [d.peer for d in result.dialogs] == [types.PeerUser(chat.bob.id)]
    assert [m.message for m in result.messages] == ["hello bob"]
    assert chat.bob.id in {u.id for u in result.users}
    assert result.state.pts > 0
    pinned = await c(functions.messages.GetPinnedDialogsRequest(folder_id=0))
    assert pinned.dialogs == [] and pinned.state.pts == result.state.pts
