"""slixmpp driver for XEP-0494 Client Access Management (tests/e2e/clients.rs), with slixmpp's
own xep_0494 plugin.

    python slix_cam.py --host H --port P --jid alice@localhost/cam --password PW
                       [--revoke-software NAME] [--revoke-id ID] [--timeout S]

Logs in (slixmpp speaks RFC 6120 SASL only), lists the account's clients with
xep_0494.get_clients(), and, when asked, revokes one: the client whose <software/> is NAME, or
the id ID as given. It revokes twice: first with the plugin's own revoke(), which sends the
<revoke/> in an IQ *get* (slixmpp 1.17; XEP-0494 §2.2 says set), to show the server's answer to
that, then with the same <revoke/> in an IQ set. Then it lists again and logs out.

stdout: one JSON object per line:
    {"event":"online","jid":…}
    {"event":"clients","clients":[{"id","type","connected","software","device","auth":[…],
                                   "first_seen","last_seen","permission"}…]}
    {"event":"revoke","via":"plugin"|"set","ok":bool,"condition":…,"text":…,"app":[…]}
    {"event":"error","error":…}
stderr: slixmpp's debug log (the raw XML). Exit 0 when everything ran (the answers are the test's
to judge), 1 on a failure to log in or list, 3 on timeout. TLS 1.3, no certificate check.
"""

import argparse
import asyncio
import json
import logging
import sys

import slixmpp
from slixmpp.exceptions import IqError

import loopback_tls

NS = "urn:xmpp:cam:0"


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def describe(client):
    auth = client.xml.find(f"{{{NS}}}auth")
    permission = client.xml.find(f"{{{NS}}}permission")
    ua = client["user_agent"]
    # Read from the XML: slixmpp 1.17's first_seen/last_seen getters parse the text and drop
    # the result (no `return`), so they always give None.
    first = client.xml.findtext(f"{{{NS}}}first-seen")
    last = client.xml.findtext(f"{{{NS}}}last-seen")
    return {
        "id": client["id"],
        "type": client["type"].value if client["type"] else None,
        "connected": client["connected"],
        "software": ua["software"] or None,
        "device": ua["device"] or None,
        "auth": [child.tag.split("}")[-1] for child in auth] if auth is not None else [],
        "first_seen": first,
        "last_seen": last,
        "permission": permission.get("status") if permission is not None else None,
    }


def revoke_error(via, err):
    error = err.iq["error"]
    app = [child.tag for child in error.xml if child.tag.startswith(f"{{{NS}}}")]
    return {
        "event": "revoke",
        "via": via,
        "ok": False,
        "condition": error["condition"],
        "text": error["text"],
        "app": app,
    }


class Client(slixmpp.ClientXMPP):
    def __init__(self, args, done):
        super().__init__(args.jid, args.password)
        self.args = args
        self.done = done
        self.closing = False
        self.ssl_context = loopback_tls.context()
        self.enable_plaintext = False
        self.register_plugin("xep_0494")
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("failed_auth", lambda _e: self.fail("authentication failed"))
        self.add_event_handler("disconnected", self.on_disconnected)

    def fail(self, error):
        emit({"event": "error", "error": error})
        if not self.done.done():
            self.done.set_result(1)

    def on_disconnected(self, reason):
        if not self.closing and not self.done.done():
            self.fail(f"disconnected: {reason}")

    async def list(self):
        clients = await self["xep_0494"].get_clients(timeout=10)
        emit({"event": "clients", "clients": [describe(c) for c in clients]})
        return clients

    async def on_session_start(self, _event):
        emit({"event": "online", "jid": str(self.boundjid.full)})
        try:
            clients = await self.list()
        except IqError as err:
            self.fail(f"list: {err.iq['error']['condition']}")
            return
        target = self.args.revoke_id
        if self.args.revoke_software:
            target = next(
                (c["id"] for c in clients if c["user_agent"]["software"] == self.args.revoke_software),
                None,
            )
            if target is None:
                self.fail(f"no client with software {self.args.revoke_software}")
                return
        if target:
            try:
                await self["xep_0494"].revoke(target, timeout=10)
                emit({"event": "revoke", "via": "plugin", "ok": True})
            except IqError as err:
                emit(revoke_error("plugin", err))
            iq = self.make_iq_set()
            iq["revoke"]["id"] = target
            try:
                await iq.send(timeout=10)
                emit({"event": "revoke", "via": "set", "ok": True})
            except IqError as err:
                emit(revoke_error("set", err))
            await self.list()
        self.closing = True
        await self.disconnect(wait=2.0)
        if not self.done.done():
            self.done.set_result(0)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--jid", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--revoke-software")
    parser.add_argument("--revoke-id")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    done = asyncio.get_running_loop().create_future()
    xmpp = Client(args, done)
    xmpp.connect(args.host, args.port)
    try:
        code = await asyncio.wait_for(done, args.timeout)
    except asyncio.TimeoutError:
        emit({"event": "error", "error": f"timed out after {args.timeout} s"})
        code = 3
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
