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
        await alice.join()
        await wait_until(alice.accepted.is_set, 10, "alice's session-accept", peers)
        await bob.join()
        await wait_until(bob.accepted.is_set, 10, "bob's session-accept", peers)

        def flowing(p: MediaPeer, other: str, n: int) -> bool:
            f = p.frames_from(f"xmpp:{other}@localhost")
            return f.get("audio", 0) >= n and f.get("video", 0) >= n

        await wait_until(lambda: flowing(alice, "bob", 20) and flowing(bob, "alice", 20), 45,
                         "decoded audio and video both ways", peers)
        print("alice got", alice.frames_from("xmpp:bob@localhost"), "bob got", bob.frames_from("xmpp:alice@localhost"), alice.log, bob.log)
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
