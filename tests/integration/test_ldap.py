"""Sign-in against the organisation's directory (issue 7, LDAP): a real OpenLDAP slapd.

amphi asks its internal accounts first, then the directory (auth.backends = ["internal",
"ldap"]); it finds directory users with a service account and binds as them over StartTLS,
trusting the test CA. Directory users sign in with SASL PLAIN over TLS; SCRAM cannot work for
them (no password hash on the server). The directory (tests/ldap/slapd.sh, tree.ldif) holds
agent1, agent2, "jean,luc+émile" (UTF-8 password), two entries named "twin", and a "bot"
whose name is also an internal account's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness.client import SignInFailed, password_of, sign_in
from harness.servers import REPO, AmphiServer, ServerError, ServerOptions, free_port, server_kind, wait_for_port

pytestmark = pytest.mark.skipif(server_kind() != "amphi", reason="amphi's LDAP backend")

SLAPD_SH = REPO / "tests" / "ldap" / "slapd.sh"
BASE = "dc=example,dc=org"
DIRECTORY_PASSWORDS = {
    "agent1": "directory-pw-agent1",
    "agent2": "directory-pw-agent2",
    "jean,luc+émile": "pässwörd 日本 🔑",
    "bot": "directory-pw-bot",
    "twin": "directory-pw-twin",
}


class Directory:
    """slapd as a foreground process in its own session, stopped and started by the tests."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.tls_port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.workdir / "slapd.log", "ab") as log:
            self.proc = subprocess.Popen(
                [str(SLAPD_SH), str(self.workdir), str(self.port), str(self.tls_port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            wait_for_port(self.tls_port, self.proc, 30)
        except ServerError as e:
            self.stop()
            output = (self.workdir / "slapd.log").read_text(errors="replace")[-4000:]
            raise ServerError(f"slapd: {e}\n--- tests/ldap/slapd.sh output ---\n{output}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


class LdapAmphi(AmphiServer):
    """The harness's amphi with auth.backends and an [ldap] section added to its config."""

    def __init__(self, workdir: Path, options: ServerOptions, ldap: str):
        self.ldap = ldap
        super().__init__(workdir, options)

    def write_config(self) -> None:
        super().write_config()
        text = self.config_path.read_text()
        assert "\n[auth]\n" in text
        text = text.replace("\n[auth]\n", '\n[auth]\nbackends = ["internal", "ldap"]\n', 1)
        self.config_path.write_text(text + "\n[ldap]\n" + self.ldap)


def slapd_available() -> bool:
    return shutil.which("slapd") is not None or Path("/usr/sbin/slapd").exists()


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Directory:
    if not slapd_available():
        # Not a skip: a missing directory server is a broken test setup (scripts/test.sh installs it).
        pytest.fail("slapd is not installed: run tests/ldap/run.sh (apt-get install slapd ldap-utils)")
    d = Directory(tmp_path_factory.mktemp("slapd"))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def server(directory: Directory, tmp_path_factory: pytest.TempPathFactory) -> LdapAmphi:
    ldap = f"""url = "ldap://127.0.0.1:{directory.port}"
starttls = true
ca_file = "{directory.workdir / 'ca.pem'}"
bind_dn = "cn=amphi,ou=services,{BASE}"
bind_password = "service-secret"
search_base = "{BASE}"
group_attribute = "memberOf"
group_search_base = "ou=groups,{BASE}"
connect_timeout = "1s"
timeout = "2s"
"""
    srv = LdapAmphi(tmp_path_factory.mktemp("amphi-ldap"), ServerOptions(registration=False), ldap)
    srv.add_user("bot", password_of("bot"))
    srv.start()
    yield srv
    srv.stop()


async def refused(server, user: str, password: str, mech: str = "PLAIN") -> str:
    with pytest.raises(SignInFailed) as err:
        await sign_in(server, user, password=password, mech=mech)
    return err.value.condition


@pytest.mark.parametrize("mode", ["starttls", "direct"])
async def test_directory_user_signs_in_with_plain(server, mode):
    c = await sign_in(server, "agent1", password=DIRECTORY_PASSWORDS["agent1"], mech="PLAIN", mode=mode)
    try:
        assert c.mech_used == "PLAIN"
        assert c.boundjid.bare == f"agent1@{server.domain}"
        reply = await c.iq_get("<ping xmlns='urn:xmpp:ping'/>", to=server.domain)
        assert reply["type"] == "result"
    finally:
        await c.close()


async def test_special_characters_and_utf8_password(server):
    """',' and '+' in the name, a non-ASCII password: the search finds the entry, the bind works."""
    c = await sign_in(server, "jean,luc+émile", password=DIRECTORY_PASSWORDS["jean,luc+émile"], mech="PLAIN")
    try:
        assert c.boundjid.bare == f"jean,luc+émile@{server.domain}"
    finally:
        await c.close()


async def test_wrong_password_refused(server):
    assert await refused(server, "agent2", "not-the-password") == "not-authorized"


async def test_unknown_user_refused(server):
    assert await refused(server, "nobody", DIRECTORY_PASSWORDS["agent1"]) == "not-authorized"


@pytest.mark.parametrize("name", ["*)(uid=*", "agent1*", "*"])
async def test_filter_injection_signs_in_nobody(server, name):
    """Unescaped, "(uid=agent1*)" would find agent1 and accept agent1's password."""
    assert await refused(server, name, DIRECTORY_PASSWORDS["agent1"]) == "not-authorized"


async def test_ambiguous_entry_refused(server):
    assert await refused(server, "twin", DIRECTORY_PASSWORDS["twin"]) == "not-authorized"


async def test_scram_cannot_work_for_directory_users(server):
    assert await refused(server, "agent1", DIRECTORY_PASSWORDS["agent1"], mech="SCRAM-SHA-256") == "not-authorized"


@pytest.mark.parametrize("mech", ["PLAIN", "SCRAM-SHA-256"])
async def test_internal_accounts_come_first(server, mech):
    """"bot" is internal and in the directory: internal is listed first, so it decides."""
    c = await sign_in(server, "bot", mech=mech)
    await c.close()


async def test_internal_first_ignores_the_directory_password(server):
    assert await refused(server, "bot", DIRECTORY_PASSWORDS["bot"]) == "not-authorized"


async def test_directory_user_exists_for_offline_messages(server):
    """After one sign-in a directory user is known: messages wait for them while offline."""
    agent = await sign_in(server, "agent2", password=DIRECTORY_PASSWORDS["agent2"], mech="PLAIN")
    await agent.close()
    bot = await sign_in(server, "bot", mech="SCRAM-SHA-256")
    try:
        bot.send_message(mto=f"agent2@{server.domain}", mbody="while you were away", mtype="chat")
        reply = await bot.iq_get(
            "<query xmlns='http://jabber.org/protocol/disco#info'/>", to=f"agent2@{server.domain}"
        )
        assert reply["type"] == "result", reply
    finally:
        await bot.close()
    agent = await sign_in(server, "agent2", password=DIRECTORY_PASSWORDS["agent2"], mech="PLAIN")
    try:
        m = await agent.next_message(where=lambda m: m["body"] == "while you were away")
        assert m["from"].bare == f"bot@{server.domain}"
    finally:
        await agent.close()


async def test_directory_stopped_mid_test(server, directory):
    """No hang, no crash: temporary-auth-failure at once, an error in the log, internal
    accounts still sign in, and directory sign-ins work again once it is back."""
    log_start = server.log_size()
    directory.stop()
    try:
        started = time.monotonic()
        assert await refused(server, "agent1", DIRECTORY_PASSWORDS["agent1"]) == "temporary-auth-failure"
        assert time.monotonic() - started < 5
        bot = await sign_in(server, "bot", mech="PLAIN")
        await bot.close()
        assert server.alive()
        log = server.log_tail(log_start)
        assert "authentication backend unavailable" in log and "cannot connect" in log, log
        assert DIRECTORY_PASSWORDS["agent1"] not in log
    finally:
        directory.start()
    c = await sign_in(server, "agent1", password=DIRECTORY_PASSWORDS["agent1"], mech="PLAIN")
    await c.close()


async def test_no_password_in_the_log(server):
    text = server.log_tail(0, limit=10_000_000)
    for password in DIRECTORY_PASSWORDS.values():
        assert password not in text
    assert "service-secret" not in text
