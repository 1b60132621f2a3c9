"""Fixtures for the Herald acceptance suite (see harness.py for the helpers).

* ``server``: the shared herald instance (session-scoped process; a process that
  died during an earlier test is restarted before the next one).
* ``fresh_server``: a separate instance per test module, for tests that restart
  or kill the server and must not disturb the others.

On failure the tail of the server log written during the test is attached to
the report.
"""

from __future__ import annotations

import pytest

from harness import TEST_TIMEOUT, HeraldServer

_SERVER_FIXTURES = ("server", "fresh_server")
_log_marks = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def shared_server(request):
    server = HeraldServer.launch("herald")
    yield server
    server.cleanup(keep_data=request.session.testsfailed > 0)
    if request.session.testsfailed:
        print(f"\nherald data dir kept for inspection: {server.data_dir}")


@pytest.fixture
def server(shared_server):
    shared_server.ensure_running()
    return shared_server


@pytest.fixture(scope="module")
def module_server(request):
    server = HeraldServer.launch("herald-fresh")
    yield server
    server.cleanup(keep_data=request.session.testsfailed > 0)


@pytest.fixture
def fresh_server(module_server):
    module_server.ensure_running()
    return module_server


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "large_group: builds a 1,000-member supergroup (minutes, not seconds); "
        "deselect with -m 'not large_group'",
    )


def pytest_collection_modifyitems(items):
    # Every test gets a hard bound; @async_test sets its own, a bit above its body's.
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    servers = {
        name: item.funcargs[name]
        for name in _SERVER_FIXTURES
        if isinstance(getattr(item, "funcargs", {}).get(name), HeraldServer)
    }
    if report.when == "setup" and report.passed:
        item.stash[_log_marks] = {name: srv.log_size() for name, srv in servers.items()}
    if report.failed:
        marks = item.stash.get(_log_marks, {})
        for name, srv in servers.items():
            note = "" if srv.is_running() else f" (not running: {srv.exit_status()})"
            report.sections.append((
                f"herald log tail [{name}, {srv.address}]{note}",
                srv.log_tail(since=marks.get(name, 0)) or "(empty)",
            ))
