"""Fixtures: one real server process per test module, its log attached to failing tests.

TEST_SERVER=amphi (default) runs target/debug/amphi (or $AMPHI_BIN); TEST_SERVER=prosody runs
the reference server with the same ports, limits and accounts, to check the tests themselves.
"""

from __future__ import annotations

import pytest

from harness.client import password_of
from harness.servers import Server, ServerOptions, make_server, server_kind

DEFAULT_USERS = ["alice", "bob", "carol", "dave"]


def pytest_report_header(config: pytest.Config) -> str:
    return f"server under test: {server_kind()}"


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """The module's server: accounts from the module's USERS, options from SERVER_OPTIONS."""
    options = ServerOptions(**getattr(request.module, "SERVER_OPTIONS", {}))
    name = request.module.__name__.rsplit(".", 1)[-1]
    srv = make_server(tmp_path_factory.mktemp(name), options)
    for user in getattr(request.module, "USERS", DEFAULT_USERS):
        srv.add_user(user, password_of(user))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _watch_server(request: pytest.FixtureRequest):
    """Remember where the log was at the test's start; fail the test if the server died."""
    if "server" not in request.fixturenames:
        yield
        return
    srv: Server = request.getfixturevalue("server")
    request.node._server = srv
    request.node._server_log_start = srv.log_size()
    yield
    if not srv.alive():
        code = srv.proc.returncode if srv.proc else None
        srv.stop()
        srv.start()  # let the module's later tests run against a live server
        pytest.fail(f"the server process died during this test (exit code {code})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    srv = getattr(item, "_server", None)
    if rep.failed and srv is not None:
        text = srv.log_tail(getattr(item, "_server_log_start", 0), limit=20_000)
        rep.sections.append((f"{srv.name} log during this test ({srv.log_path})", text))

