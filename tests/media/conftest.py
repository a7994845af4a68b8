"""tests/media: the call's media path with an independent peer (aiortc + slixmpp).

Reuses tests/integration's harness (server process, sign-in) without changing it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "integration")]

from harness.client import password_of  # noqa: E402
from harness.servers import AmphiServer, ServerOptions  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = AmphiServer(tmp_path_factory.mktemp("media"), ServerOptions())
    for user in ("alice", "bob", "carol"):
        srv.add_user(user, password_of(user))
    srv.start()
    yield srv
    srv.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    srv = item.funcargs.get("server") if hasattr(item, "funcargs") else None
    if rep.failed and srv is not None:
        rep.sections.append(("amphi log", srv.log_tail(0, limit=20_000)))
