"""Two aiortc peers meet in one call through amphi's focus and SFU."""

from __future__ import annotations

import asyncio

from harness.client import close_all, sign_in
from peer import MediaPeer

CALL = "standup@focus.localhost"


async def wait_until(cond, timeout: float, what: str, peers=()):
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            logs = {p.client.boundjid.bare: (p.log, dict(p.frames), p.owners) for p in peers}
            raise AssertionError(f"timed out waiting for {what}; peers: {logs}")
        await asyncio.sleep(0.2)


async def test_two_peers_exchange_audio_and_video(server):
    alice_c = await sign_in(server, "alice", resource="media")
    bob_c = await sign_in(server, "bob", resource="media")
    alice, bob = MediaPeer(alice_c, CALL), MediaPeer(bob_c, CALL)
    peers = (alice, bob)
    try:
        for p in peers:
            await p.enter_room()
        await alice.join()
        await wait_until(alice.accepted.is_set, 10, "alice's session-accept", peers)
        await bob.join()
        await wait_until(bob.accepted.is_set, 10, "bob's session-accept", peers)

        def flowing(p: MediaPeer, other: str, n: int) -> bool:
            f = p.frames_from(f"xmpp:{other}@localhost")
            return f.get("audio", 0) >= n and f.get("video", 0) >= n

        await wait_until(lambda: flowing(alice, "bob", 20) and flowing(bob, "alice", 20), 45,
                         "decoded audio and video both ways", peers)
        before = bob.frames_from("xmpp:alice@localhost")
        await asyncio.sleep(1.0)
        after = bob.frames_from("xmpp:alice@localhost")
        assert after["audio"] > before["audio"] and after["video"] > before["video"], "frames keep growing"

        # Alice leaves: Bob is told her two streams are gone.
        await alice.leave()
        await wait_until(lambda: len(bob.removed) == 2, 10, "content-remove at bob", peers)
        assert set(bob.removed) == {m for m, o in bob.owners.items() if o == "xmpp:alice@localhost"}
    finally:
        await alice.close()
        await bob.close()
        await close_all(alice_c, bob_c)


async def test_late_joiner_screen_share_mute_and_a_dead_network(server):
    clients = [await sign_in(server, u, resource="media") for u in ("alice", "bob", "carol")]
    alice, bob, carol = peers = [MediaPeer(c, "weekly@focus.localhost") for c in clients]
    users = {p: f"xmpp:{n}@localhost" for p, n in zip(peers, ("alice", "bob", "carol"))}

    def sees(p: MediaPeer, other: MediaPeer, n: int = 10) -> bool:
        f = p.frames_from(users[other])
        return f.get("audio", 0) >= n and f.get("video", 0) >= n

    try:
        for p in peers:
            await p.enter_room()
        for p in (alice, bob):
            await p.join()
            await wait_until(p.accepted.is_set, 10, "session-accept", peers)
        await wait_until(lambda: sees(alice, bob) and sees(bob, alice), 45, "alice and bob media", peers)
        # Carol joins a call in progress: she gets both streams, both get hers.
        await carol.join()
        await wait_until(lambda: all(sees(p, o) for p in peers for o in peers if p is not o), 60,
                         "media between all three", peers)

        # Alice shares her screen: a second video content, decoded by the other two.
        screen = await alice.add_video()

        def screen_seen(p: MediaPeer) -> bool:
            streams = p.video_streams_from(users[alice])
            return len(streams) == 2 and all(n >= 5 for n in streams.values())

        await wait_until(lambda: screen_seen(bob) and screen_seen(carol), 45, "the screen share at bob and carol", peers)

        # Mute is relayed with each receiver's own content name.
        await alice.mute("0")
        await wait_until(lambda: any(k == "mute" for k, _ in bob.infos), 10, "mute at bob", peers)
        (_, name), = [i for i in bob.infos if i[0] == "mute"]
        assert bob.owners.get(name) == users[alice]

        # Stopping the share removes exactly that stream at the others.
        await alice.remove_content(screen)
        await wait_until(lambda: len(bob.removed) == 1 and len(carol.removed) == 1, 10, "screen removed", peers)

        # Carol's network dies (no session-terminate): the SFU notices within seconds, the
        # focus tells the others and ends her session.
        await carol.drop_media()
        await wait_until(lambda: len(bob.removed) == 3 and len(alice.removed) == 2, 20, "carol's streams removed", peers)
        await wait_until(lambda: carol.terminated is not None, 5, "carol's session-terminate", peers)
        assert carol.terminated == "connectivity-error"
    finally:
        for p in peers:
            await p.close()
        await close_all(*clients)
