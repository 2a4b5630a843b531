#!/usr/bin/python3
"""An OMEMO 0.3 device on python-omemo's SessionManager with the oldmemo
backend (Syndace's libraries, Debian 12: python3-omemo, python3-oldmemo),
driven by omemo's tests over stdin/stdout, one JSON object per line each
way. Its XML is oldmemo.etree's, the serialization slixmpp-omemo uses, and
oldmemo.etree checks every element it reads against the XEP's schema.

Where a client would talk to its server, this peer talks to a PEP service
in memory that the test fills ("publish"), and it answers with what the
library sent on its own (the empty messages that complete a session).

Requests:
  {"op": "init", "jid": J [, "device": D]}  -> {"device": ID, "fingerprint": HEX}
      D forces the device ID, to play an impostor of a device the test knows.
  {"op": "publish", "jid": J, "device": D, "bundle": XML}
      J's device list gains D and D's bundle is XML, pushed as PEP would.
                                            -> {}
  {"op": "bundle"}                          -> {"bundle": XML, "uploads": N}
      the bundle published last, and how many times one was published.
  {"op": "encrypt", "to": J, "text": T}     -> {"xml": XML}
      to every device J published; {"error": E} if there was none.
  {"op": "decrypt", "from": J, "xml": XML}  -> {"text": T or null, "prekey": bool, "sent": [XML]}
      or {"error": E}, E the class name of the exception.

Run as "oldmemo_peer.py bench N" it times, in this process, a session
built between two such devices and a round trip on it, and prints one JSON
line {"build_ns": ..., "roundtrip_ns": ...} (see bench_test.go).
"""
import asyncio
import base64
import json
import statistics
import logging
import sys
import time
import types
import xml.etree.ElementTree as ET

import omemo
import omemo.session_manager
import oldmemo
import oldmemo.etree
import xeddsa

logging.disable(logging.WARNING)  # the library warns on stderr about normal events
NS = oldmemo.oldmemo.NAMESPACE
ET.register_namespace("", NS)


class Storage(omemo.Storage):
    """omemo.Storage in memory: what a client keeps on disk."""

    def __init__(self):
        super().__init__()
        self.data = {}

    async def _load(self, key):
        if key in self.data:
            return omemo.Just(json.loads(self.data[key]))
        return omemo.Nothing()

    async def _store(self, key, value):
        self.data[key] = json.dumps(value)

    async def _delete(self, key):
        self.data.pop(key, None)


class PEP:
    """The device lists and bundles of every account, as a server keeps
    them: bundles as XML, so that each one goes through oldmemo.etree."""

    def __init__(self):
        self.lists = {}    # jid -> {device id: None}
        self.bundles = {}  # (jid, device id) -> XML
        self.uploads = {}  # jid -> bundles published


def manager_class(pep, jid, outbox):
    """A SessionManager for account jid on pep. The library calls its
    network methods on the class it was created from, so each device gets
    its own class."""

    class Manager(omemo.SessionManager):
        async def _upload_bundle(self, bundle):
            xml = ET.tostring(oldmemo.etree.serialize_bundle(bundle)).decode()
            pep.bundles[(jid, bundle.device_id)] = xml
            pep.uploads[jid] = pep.uploads.get(jid, 0) + 1

        async def _download_bundle(self, namespace, bare_jid, device_id):
            xml = pep.bundles.get((bare_jid, device_id))
            if xml is None:
                raise omemo.BundleNotFound("no bundle for %s/%d" % (bare_jid, device_id))
            return oldmemo.etree.parse_bundle(ET.fromstring(xml), bare_jid, device_id)

        async def _delete_bundle(self, namespace, device_id):
            pep.bundles.pop((jid, device_id), None)

        async def _upload_device_list(self, namespace, device_list):
            pep.lists[jid] = dict(device_list)

        async def _download_device_list(self, namespace, bare_jid):
            return dict(pep.lists.get(bare_jid, {}))

        # Blind trust before verification, as Gajim and Conversations do
        # by default: the test is about the protocol, not the trust UI.
        # A key that changes under a known device is still refused by the
        # library itself (PublicDataInconsistency).
        async def _evaluate_custom_trust_level(self, device):
            return {"trusted": omemo.TrustLevel.TRUSTED,
                    "distrusted": omemo.TrustLevel.DISTRUSTED}.get(
                        device.trust_level_name, omemo.TrustLevel.UNDECIDED)

        async def _make_trust_decision(self, undecided, identifier):
            for device in undecided:
                await self.set_trust(device.bare_jid, device.identity_key, "trusted")

        async def _send_message(self, message, bare_jid):
            outbox.append((bare_jid, ET.tostring(oldmemo.etree.serialize_message(message)).decode()))

    return Manager


class Device:
    """One account with one device: a SessionManager with the oldmemo
    backend, on a PEP service shared with other Devices of the process."""

    def __init__(self, pep):
        self.pep = pep
        self.outbox = []

    async def create(self, jid, device=None):
        self.jid = jid
        storage = Storage()
        cls = manager_class(self.pep, jid, self.outbox)
        real = omemo.session_manager.secrets
        if device is not None:
            # The library draws the device ID with secrets.randbelow.
            omemo.session_manager.secrets = types.SimpleNamespace(
                randbelow=lambda n: device - omemo.SessionManager.DEVICE_ID_MIN)
        try:
            self.sm = await cls.create([oldmemo.Oldmemo(storage)], storage, jid, None, "undecided")
        finally:
            omemo.session_manager.secrets = real
        # Leave the history catch-up mode a client starts in: used prekeys
        # are then deleted at once and sessions completed at once.
        await self.sm.after_history_sync()
        info, _ = await self.sm.get_own_device_information()
        self.device = info.device_id
        self.identity = info.identity_key  # Ed25519, as the library keeps it
        return self

    def fingerprint(self):
        # On the wire, and in the clients' fingerprints, the identity key
        # is Curve25519.
        return xeddsa.ed25519_pub_to_curve25519_pub(self.identity).hex()

    async def publish(self, jid, device, bundle_xml):
        devices = self.pep.lists.setdefault(jid, {})
        devices[device] = None
        self.pep.bundles[(jid, device)] = bundle_xml
        await self.sm.update_device_list(NS, jid, dict(devices))

    async def encrypt(self, to, text):
        messages, errors = await self.sm.encrypt(frozenset([to]), {NS: text.encode()})
        for e in errors:
            raise e.exception
        (message,) = messages.keys()
        return ET.tostring(oldmemo.etree.serialize_message(message)).decode()

    async def decrypt(self, sender, xml):
        element = ET.fromstring(xml)
        prekey = any(k.get("rid") == str(self.device) and k.get("prekey") in ("true", "1")
                     for k in element.iter("{%s}key" % NS))
        message = await oldmemo.etree.parse_message(element, sender, self.jid, self.sm)
        plaintext, _, _ = await self.sm.decrypt(message)
        sent = [x for (j, x) in self.outbox if j == sender]
        self.outbox.clear()
        return (None if plaintext is None else plaintext.decode()), prekey, sent


class Peer:
    """The line protocol of the module's docstring, on one Device."""

    def __init__(self, loop):
        self.loop = loop
        self.pep = PEP()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def init(self, req):
        self.dev = self.run(Device(self.pep).create(req["jid"], req.get("device")))
        return {"device": self.dev.device, "fingerprint": self.dev.fingerprint()}

    def publish(self, req):
        self.run(self.dev.publish(req["jid"], req["device"], req["bundle"]))
        return {}

    def bundle(self, req):
        return {"bundle": self.pep.bundles[(self.dev.jid, self.dev.device)],
                "uploads": self.pep.uploads.get(self.dev.jid, 0)}

    def encrypt(self, req):
        return {"xml": self.run(self.dev.encrypt(req["to"], req["text"]))}

    def decrypt(self, req):
        text, prekey, sent = self.run(self.dev.decrypt(req["from"], req["xml"]))
        return {"text": text, "prekey": prekey, "sent": sent}


def serve():
    peer = Peer(asyncio.new_event_loop())
    for line in sys.stdin:
        req = json.loads(line)
        try:
            resp = getattr(peer, req["op"])(req)
        except Exception as ex:  # the test reads the class name
            resp = {"error": type(ex).__name__}
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()
    # The library's signed prekey rotation waits in the background.
    tasks = asyncio.all_tasks(peer.loop)
    for t in tasks:
        t.cancel()
    peer.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


async def bench(n):
    """The two operations of bench_test.go, on the library as a client
    uses it: SessionManager.encrypt and decrypt, once with oldmemo.etree's
    XML between them (as on the wire) and once passing the library's
    Message objects (what the library itself costs).

    build: a device that has never talked to the receiver encrypts a first
    message from the receiver's bundle, the receiver decrypts it (and, as
    the library does, replaces the prekey, republishes its bundle and
    answers with an empty message). Each round uses a new sending account,
    so that every round builds a session.
    roundtrip: one message each way on an established session."""
    out = {}
    for name, wire in (("", True), ("_noxml", False)):
        build, roundtrip = await bench_pair(n, wire)
        out["build" + name + "_ns"] = build
        out["roundtrip" + name + "_ns"] = roundtrip
    return out


async def bench_pair(n, wire):
    async def send(a, b, text):
        if wire:
            await b.decrypt(a.jid, await a.encrypt(b.jid, text))
            return
        messages, _ = await a.sm.encrypt(frozenset([b.jid]), {NS: text.encode()})
        (message,) = messages.keys()
        await b.sm.decrypt(message)
        b.outbox.clear()

    pep = PEP()
    receiver = await Device(pep).create("op@bench.example")
    senders = [await Device(pep).create("v%d@bench.example" % i) for i in range(n)]
    for s in senders:
        await s.sm.refresh_device_list(NS, receiver.jid)  # the PEP subscription
    build = []
    for s in senders:
        start = time.perf_counter_ns()
        await send(s, receiver, "hello")
        build.append(time.perf_counter_ns() - start)
    a, b = senders[0], receiver
    await send(b, a, "ok")  # a reply completes the session
    roundtrip = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await send(a, b, "hello")
        await send(b, a, "hello")
        roundtrip.append(time.perf_counter_ns() - start)
    # The median: other processes on the machine slow some rounds.
    return statistics.median(build), statistics.median(roundtrip)


if __name__ == "__main__":
    if sys.argv[1:2] == ["bench"]:
        print(json.dumps(asyncio.run(bench(int(sys.argv[2])))))
    else:
        serve()
