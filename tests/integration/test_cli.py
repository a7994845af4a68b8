"""amphi's own commands, checked through the wire where it matters: `user passwd|remove|list`
change who can sign in; config mistakes and a busy port give clear messages, never a panic."""

from __future__ import annotations

import socket
import subprocess

import pytest

from harness.client import SignInFailed, password_of, sign_in
from harness.servers import AmphiServer, ServerOptions, server_kind

pytestmark = pytest.mark.skipif(server_kind() != "amphi", reason="amphi's own command line")


def amphi(srv: AmphiServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(srv.binary()), "--config", str(srv.config_path), *args],
                          input=stdin.encode(), capture_output=True, timeout=60)


def output(res: subprocess.CompletedProcess) -> str:
    return res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> AmphiServer:
    """A server whose store the commands may open: started only inside a test, then stopped."""
    srv = AmphiServer(tmp_path_factory.mktemp("cli"), ServerOptions())
    srv.add_user("carl", password_of("carl"))
    srv.add_user("gone", password_of("gone"))
    yield srv
    srv.stop()


async def test_user_list_passwd_remove(stopped):
    res = amphi(stopped, "user", "list")
    assert res.returncode == 0, output(res)
    assert {"carl@localhost", "gone@localhost"} <= set(output(res).split()), output(res)

    res = amphi(stopped, "user", "passwd", "carl@localhost", stdin="brand-new-pw\n")
    assert res.returncode == 0, output(res)
    assert "brand-new-pw" not in output(res), "password echoed"
    res = amphi(stopped, "user", "remove", "gone@localhost")
    assert res.returncode == 0, output(res)
    res = amphi(stopped, "user", "add", "carl@localhost", stdin="x\n")
    assert res.returncode != 0, "adding an existing account succeeded"

    stopped.start()
    try:
        c = await sign_in(stopped, "carl", password="brand-new-pw", mech="SCRAM-SHA-256")
        await c.close()
        with pytest.raises(SignInFailed):
            await sign_in(stopped, "carl", mech="SCRAM-SHA-256")
        with pytest.raises(SignInFailed) as err:
            await sign_in(stopped, "gone", mech="SCRAM-SHA-256")
        assert err.value.condition == "not-authorized"
    finally:
        stopped.stop()


def test_unknown_key_is_named(stopped, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(stopped.config_path.read_text().replace("[c2s]", "[c2s]\nmax_stanzas = 3", 1))
    res = subprocess.run([str(stopped.binary()), "--config", str(bad), "check-config"],
                         capture_output=True, timeout=30)
    assert res.returncode != 0
    assert "max_stanzas" in output(res), output(res)
    assert "panicked" not in output(res)


def test_port_in_use_is_a_clear_error(stopped):
    with socket.socket() as s:
        s.bind(("127.0.0.1", stopped.starttls_port))
        s.listen()
        res = subprocess.run([str(stopped.binary()), "--config", str(stopped.config_path), "serve"],
                             capture_output=True, timeout=30)
    assert res.returncode != 0
    text = output(res)
    assert str(stopped.starttls_port) in text, text
    assert "panicked" not in text, text
