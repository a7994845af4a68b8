"""Space-bound rooms (issue 7): rooms bound to directory groups, profiles and individual
members, against a real OpenLDAP slapd (the tree of tests/ldap, harness of test_ldap.py).

The binding is set with the standard owner form (XEP-0045 §10.2) and its `amphi#space_*`
fields (xep/amphi-spaces.md); whoever qualifies enters as a `member` with the space's role,
whoever does not gets registration-required. The directory is asked at each join, so a
change made with ldapmodify, or the owner narrowing the binding, counts at the next join.
In the tree: agent1 is in "agents" and "Support, EU" (departmentNumber support), agent2 in
"sales" (departmentNumber sales); "boss" and "bot" are internal accounts.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from harness.client import close_all, error_condition, sign_in
from harness.servers import ServerOptions, server_kind
# `directory`: test_ldap's fixture (a slapd with the test tree), one per module here too.
from test_ldap import BASE, DIRECTORY_PASSWORDS, Directory, LdapAmphi, directory  # noqa: F401
from test_muc import NS_ADMIN, NS_OWNER, codes, create, form, item, join

pytestmark = pytest.mark.skipif(server_kind() != "amphi", reason="amphi's space-bound rooms")

SERVICE = "conference.localhost"
NS_DATA = "jabber:x:data"


SEARCH = f"""bind_dn = "cn=amphi,ou=services,{BASE}"
bind_password = "service-secret"
search_base = "{BASE}"
"""
DIRECT_WITH_SERVICE_ACCOUNT = f"""bind_dn = "cn=amphi,ou=services,{BASE}"
bind_password = "service-secret"
bind_dn_template = "uid={{user}},ou=people,{BASE}"
"""
DIRECT_ONLY = f"""bind_dn_template = "uid={{user}},ou=people,{BASE}"
"""


def start_amphi(directory: Directory, workdir, finding: str) -> LdapAmphi:
    """amphi on the test directory; `finding` says how it finds entries (search or DN template)."""
    ldap = f"""url = "ldap://127.0.0.1:{directory.port}"
starttls = true
ca_file = "{directory.workdir / 'ca.pem'}"
{finding}group_attribute = "memberOf"
profile_attributes = ["departmentNumber", "title"]
connect_timeout = "1s"
timeout = "2s"
"""
    srv = LdapAmphi(workdir, ServerOptions(registration=False), ldap)
    for user in ("boss", "bot"):
        srv.add_user(user, f"pw-{user}")
    srv.start()
    return srv


@pytest.fixture(scope="module")
def server(directory: Directory, tmp_path_factory: pytest.TempPathFactory) -> LdapAmphi:
    srv = start_amphi(directory, tmp_path_factory.mktemp("amphi-spaces"), SEARCH)
    yield srv
    srv.stop()


def ldap_modify(directory: Directory, ldif: str) -> None:
    """Change the directory as its administrator, while amphi runs."""
    subprocess.run(
        ["ldapmodify", "-x", "-H", f"ldap://127.0.0.1:{directory.port}",
         "-D", f"cn=admin,{BASE}", "-w", "admin-secret"],
        input=ldif.encode(), check=True, capture_output=True, timeout=30,
    )


def group_change(directory: Directory, group: str, op: str, uid: str) -> None:
    ldap_modify(directory, f"dn: cn={group},ou=groups,{BASE}\nchangetype: modify\n{op}: member\n"
                           f"member: uid={uid},ou=people,{BASE}\n")


async def agent(server, name: str):
    return await sign_in(server, name, password=DIRECTORY_PASSWORDS[name], mech="PLAIN", resource="spaces")


async def internal(server, name: str):
    return await sign_in(server, name, password=f"pw-{name}", resource="spaces")


async def configure(owner, room: str, fields: dict) -> None:
    reply = await owner.iq_set(f"<query xmlns='{NS_OWNER}'>{form(fields)}</query>", to=room)
    assert reply["type"] == "result", reply


async def leave(c, room: str, nick: str) -> None:
    c.send_raw(f"<presence to='{room}/{nick}' type='unavailable'/>")
    await c.next_presence(where=lambda p: str(p["from"]) == f"{room}/{nick}" and p["type"] == "unavailable")


async def refused(c, room: str, nick: str) -> tuple[str, str]:
    err = await join(c, room, nick, expect_error=True)
    return error_condition(err), err["error"]["text"]


async def members(owner, room: str) -> list[str]:
    reply = await owner.iq_get(f"<query xmlns='{NS_ADMIN}'><item affiliation='member'/></query>", to=room)
    q = reply.xml.find(f"{{{NS_ADMIN}}}query")
    return sorted(i.get("jid") for i in q.findall(f"{{{NS_ADMIN}}}item"))


async def bound_room(owner, name: str, fields: dict) -> str:
    room = f"{name}@{SERVICE}"
    await create(owner, room, "Boss", {"muc#roomconfig_persistentroom": "1", **fields})
    return room


async def test_owner_form_offers_the_space_fields(server):
    boss = await internal(server, "boss")
    try:
        room = await bound_room(boss, "space-form", {"amphi#space_groups": "agents"})
        reply = await boss.iq_get(f"<query xmlns='{NS_OWNER}'/>", to=room)
        x = reply.xml.find(f"{{{NS_OWNER}}}query/{{{NS_DATA}}}x")
        fields = {f.get("var"): f for f in x.findall(f"{{{NS_DATA}}}field")}
        assert fields["amphi#space_groups"].get("type") == "text-multi"
        assert [v.text for v in fields["amphi#space_groups"].findall(f"{{{NS_DATA}}}value")] == ["agents"]
        assert fields["amphi#space_members"].get("type") == "jid-multi"
        assert fields["amphi#space_role"].find(f"{{{NS_DATA}}}value").text == "moderator"
        members_only = fields["muc#roomconfig_membersonly"].find(f"{{{NS_DATA}}}value").text
        assert members_only == "1", "a bound room is members-only"
        # Guests and other servers' users cannot be space members.
        for jid in ("guest-abcdef@localhost", "agent1@elsewhere.example"):
            reply = await boss.iq_set(f"<query xmlns='{NS_OWNER}'>{form({'amphi#space_members': jid})}</query>",
                                      to=room)
            assert error_condition(reply) == "not-acceptable", reply
    finally:
        await close_all(boss)


async def test_group_member_enters_as_moderator_non_member_refused_member_list(server):
    boss, a1, a2 = await internal(server, "boss"), await agent(server, "agent1"), await agent(server, "agent2")
    try:
        room = await bound_room(boss, "space-group", {"amphi#space_groups": "agents"})
        p = await join(a1, room, "Agent1")
        assert item(p).get("role") == "moderator" and item(p).get("affiliation") == "member", p
        condition, text = await refused(a2, room, "Agent2")
        assert condition == "registration-required"
        assert "réservé" in text and "reserved" in text, text
        assert await members(boss, room) == [f"agent1@{server.domain}"]
    finally:
        await close_all(boss, a1, a2)


async def test_narrowing_to_one_group_takes_effect_on_the_next_join(server):
    boss, a1, a2 = await internal(server, "boss"), await agent(server, "agent1"), await agent(server, "agent2")
    try:
        room = await bound_room(boss, "space-narrow", {"amphi#space_groups": ["agents", "sales"]})
        await join(a2, room, "Agent2")
        await join(a1, room, "Agent1")
        await leave(a2, room, "Agent2")
        await configure(boss, room, {"amphi#space_groups": "agents"})
        assert (await refused(a2, room, "Agent2"))[0] == "registration-required"
        assert await members(boss, room) == [f"agent1@{server.domain}"], "agent2's membership is dropped"
        await leave(a1, room, "Agent1")
        await join(a1, room, "Agent1")
    finally:
        await close_all(boss, a1, a2)


async def test_directory_changes_count_at_the_next_join_without_restart(server, directory):
    boss, a1 = await internal(server, "boss"), await agent(server, "agent1")
    try:
        room = await bound_room(boss, "space-live", {"amphi#space_groups": "sales"})
        assert (await refused(a1, room, "Agent1"))[0] == "registration-required"
        group_change(directory, "sales", "add", "agent1")
        try:
            p = await join(a1, room, "Agent1")
            assert item(p).get("role") == "moderator"
            await leave(a1, room, "Agent1")
        finally:
            group_change(directory, "sales", "delete", "agent1")
        assert (await refused(a1, room, "Agent1"))[0] == "registration-required"
        assert await members(boss, room) == []
    finally:
        await close_all(boss, a1)


async def test_profile_binding_with_participant_role(server, directory):
    boss, a1, a2 = await internal(server, "boss"), await agent(server, "agent1"), await agent(server, "agent2")
    try:
        room = await bound_room(boss, "space-profile", {
            "amphi#space_profiles": "departmentNumber=sales", "amphi#space_role": "participant"})
        p = await join(a2, room, "Agent2")
        assert item(p).get("role") == "participant" and item(p).get("affiliation") == "member"
        assert (await refused(a1, room, "Agent1"))[0] == "registration-required"
        # A profile value given in the directory while amphi runs.
        ldap_modify(directory, f"dn: uid=agent1,ou=people,{BASE}\nchangetype: modify\nadd: title\n"
                               "title: inspecteur\n")
        try:
            await configure(boss, room, {"amphi#space_profiles": ["departmentNumber=sales", "title=Inspecteur"]})
            await join(a1, room, "Agent1")
        finally:
            ldap_modify(directory, f"dn: uid=agent1,ou=people,{BASE}\nchangetype: modify\ndelete: title\n")
    finally:
        await close_all(boss, a1, a2)


async def test_individual_member_binding(server):
    """An internal account (no directory entry) listed by name enters; others do not."""
    boss, bot, a2 = await internal(server, "boss"), await internal(server, "bot"), await agent(server, "agent2")
    try:
        room = await bound_room(boss, "space-members", {"amphi#space_members": f"bot@{server.domain}"})
        p = await join(bot, room, "Bot")
        assert item(p).get("role") == "moderator" and item(p).get("affiliation") == "member"
        assert (await refused(a2, room, "Agent2"))[0] == "registration-required"
        assert await members(boss, room) == [f"bot@{server.domain}"]
    finally:
        await close_all(boss, bot, a2)


async def test_directory_down_at_join_is_a_clear_error_not_a_hang(server, directory):
    boss, a1 = await internal(server, "boss"), await agent(server, "agent1")
    try:
        room = await bound_room(boss, "space-down", {"amphi#space_groups": "agents"})
        directory.stop()
        try:
            started = time.monotonic()
            condition, text = await refused(a1, room, "Agent1")
            assert condition == "service-unavailable" and "directory" in text, text
            assert time.monotonic() - started < 5
            # The room itself keeps working meanwhile.
            reply = await boss.iq_get("<query xmlns='http://jabber.org/protocol/disco#info'/>", to=room)
            assert reply["type"] == "result"
        finally:
            directory.start()
        p = await join(a1, room, "Agent1")
        assert codes(p)[0] == 110
    finally:
        await close_all(boss, a1)


@pytest.mark.parametrize("finding", ["direct-with-service-account", "direct-only"])
async def test_direct_bind_setups(directory, tmp_path_factory, finding):
    """With a DN template and a service account amphi reads the entry at the template's DN
    at each join. Without a service account it cannot read an entry without the user's
    password, so it goes by the entry recorded at the last sign-in (xep/amphi-spaces.md):
    a change counts once the user signs in again."""
    setup = DIRECT_WITH_SERVICE_ACCOUNT if finding == "direct-with-service-account" else DIRECT_ONLY
    srv = start_amphi(directory, tmp_path_factory.mktemp(f"amphi-{finding}"), setup)
    boss = a1 = None
    try:
        boss, a1 = await internal(srv, "boss"), await agent(srv, "agent1")
        room = await bound_room(boss, "space-direct", {"amphi#space_groups": "sales"})
        assert (await refused(a1, room, "Agent1"))[0] == "registration-required"
        group_change(directory, "sales", "add", "agent1")
        try:
            if finding == "direct-only":
                assert (await refused(a1, room, "Agent1"))[0] == "registration-required", "the record decides"
                await a1.close()
                a1 = await agent(srv, "agent1")
            p = await join(a1, room, "Agent1")
            assert item(p).get("role") == "moderator"
        finally:
            group_change(directory, "sales", "delete", "agent1")
    finally:
        await close_all(boss, a1)
        srv.stop()
