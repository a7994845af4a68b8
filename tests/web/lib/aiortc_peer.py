"""An independent media peer in a room's call, driven by the browser call test.

slixmpp over TCP (STARTTLS) joins the MUC room, then tests/media/peer.py (aiortc, with its
own Jingle<->SDP mapping written from the XEPs) joins the call at the focus.

Usage: aiortc_peer.py PORT JID PASSWORD ROOM NICK CALL
Prints JSON lines: {"event": "joined"}, then every half second {"event": "frames",
"from": {"alice@localhost": {"audio": N, "video": N}, ...}}. Leaves when stdin closes.
"""
import asyncio
import json
import ssl
import sys
from pathlib import Path

import slixmpp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "media"))
from peer import MediaPeer  # noqa: E402


def say(**event):
    print(json.dumps(event), flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0045")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.ssl_context = ctx
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        self.started = asyncio.Event()
        self.add_event_handler("session_start", lambda _: self.started.set())


async def main():
    port, jid, password, room, nick, call = sys.argv[1:7]
    client = Client(jid, password)
    client.connect("127.0.0.1", int(port))
    await asyncio.wait_for(client.started.wait(), 15)
    client.send_presence()
    await client.plugin["xep_0045"].join_muc_wait(room, nick, maxstanzas=0, timeout=15)
    media = MediaPeer(client, call)
    await media.join()
    await asyncio.wait_for(media.accepted.wait(), 15)
    say(event="joined")
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    while not stdin_closed.done():
        owners = {o.removeprefix("xmpp:") for o in media.owners.values()}
        say(event="frames", log=media.log[-5:], **{"from": {o: media.frames_from(f"xmpp:{o}") for o in owners}})
        await asyncio.wait([stdin_closed], timeout=0.5)
    await media.leave()
    client.disconnect()
    await asyncio.sleep(0.2)


asyncio.run(main())
