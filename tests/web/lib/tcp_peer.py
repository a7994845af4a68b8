"""A slixmpp client over TCP (STARTTLS) in a MUC room, driven by the WebSocket test.

Usage: tcp_peer.py PORT JID PASSWORD ROOM NICK
Prints one JSON line per event on stdout: {"event": "ready"}, {"event": "message", ...}.
Answers "hello from websocket" with "hello from tcp". Exits when stdin closes.
"""
import asyncio
import json
import ssl
import sys

import slixmpp


def say(**event):
    print(json.dumps(event), flush=True)


class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid, password, room, nick):
        super().__init__(jid, password)
        self.room, self.nick = room, nick
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0045")
        self.register_plugin("xep_0004")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.ssl_context = ctx
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("groupchat_message", self.groupchat)

    async def start(self, _):
        await self.get_roster()
        self.send_presence()
        muc = self.plugin["xep_0045"]
        await muc.join_muc_wait(self.room, self.nick, maxstanzas=0, timeout=15)
        # A room made by this join stays locked until its owner accepts a configuration.
        form = self.plugin["xep_0004"].make_form(ftype="submit")
        try:
            await muc.set_room_config(self.room, form)
        except Exception as e:  # already configured: someone else made it
            say(event="config", error=str(e))
        say(event="ready")

    def groupchat(self, msg):
        nick = msg["mucnick"]
        body = msg["body"]
        say(event="message", nick=nick, body=body)
        if body == "hello from websocket" and nick != self.nick:
            self.send_message(mto=self.room, mbody="hello from tcp", mtype="groupchat")


async def main():
    port, jid, password, room, nick = sys.argv[1:6]
    peer = Peer(jid, password, room, nick)
    peer.connect("127.0.0.1", int(port))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    peer.disconnect()
    await asyncio.sleep(0.2)


asyncio.run(main())
