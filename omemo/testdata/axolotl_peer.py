#!/usr/bin/python3
"""An OMEMO 0.3 device on python-axolotl (the library under Gajim's OMEMO
plugin in Debian 12), driven by omemo's tests over stdin/stdout, one JSON
object per line each way. It builds and reads the XML and the AES-128-GCM
payload the way Gajim's plugin does, independently of the Go package.

Requests:
  {"op": "init", "prekeys": N}             -> {"device": ID, "bundle": XML, "fingerprint": HEX}
  {"op": "encrypt", "text": T, "to": [{"jid": J, "device": D, "bundle": XML or ""}]}
                                            -> {"xml": XML}
  {"op": "decrypt", "from": J, "xml": XML}  -> {"text": T or null, "prekey": bool} or {"error": E}
  {"op": "bundle"}                          -> {"bundle": XML}
"""
import base64
import logging
import json
import os
import random
import sys
import xml.etree.ElementTree as ET

from axolotl.ecc.curve import Curve
from axolotl.identitykey import IdentityKey
from axolotl.protocol.prekeywhispermessage import PreKeyWhisperMessage
from axolotl.protocol.whispermessage import WhisperMessage
from axolotl.sessionbuilder import SessionBuilder
from axolotl.sessioncipher import SessionCipher
from axolotl.state.prekeybundle import PreKeyBundle
from axolotl.tests.inmemoryaxolotlstore import InMemoryAxolotlStore
from axolotl.util.keyhelper import KeyHelper
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

logging.disable(logging.WARNING)  # python-axolotl warns on stderr about normal events
NS = "eu.siacs.conversations.axolotl"
b64 = lambda b: base64.b64encode(bytes(b)).decode()


class Peer:
    def init(self, req):
        self.store = InMemoryAxolotlStore()
        # Gajim: the device ID is the registration ID, a 31-bit number.
        self.device = random.SystemRandom().randint(1, 2**31 - 1)
        self.store.identityKeyStore.localRegistrationId = self.device
        ikp = self.store.getIdentityKeyPair()
        self.spk = KeyHelper.generateSignedPreKey(ikp, 1)
        self.store.storeSignedPreKey(1, self.spk)
        self.next_prekey = 1
        self.add_prekeys(req.get("prekeys", 10))
        fp = ikp.getPublicKey().serialize().hex()[2:]
        return {"device": self.device, "bundle": self.bundle_xml(), "fingerprint": fp}

    def add_prekeys(self, n):
        for pk in KeyHelper.generatePreKeys(self.next_prekey, n):
            self.store.storePreKey(pk.getId(), pk)
        self.next_prekey += n
        self.prekey_ids = list(range(1, self.next_prekey))

    def bundle_xml(self):
        ikp = self.store.getIdentityKeyPair()
        out = "<bundle xmlns='%s'>" % NS
        out += "<signedPreKeyPublic signedPreKeyId='1'>%s</signedPreKeyPublic>" % b64(
            self.spk.getKeyPair().getPublicKey().serialize())
        out += "<signedPreKeySignature>%s</signedPreKeySignature>" % b64(self.spk.getSignature())
        out += "<identityKey>%s</identityKey><prekeys>" % b64(ikp.getPublicKey().serialize())
        for i in self.prekey_ids:
            if self.store.containsPreKey(i):
                pk = self.store.loadPreKey(i)
                out += "<preKeyPublic preKeyId='%d'>%s</preKeyPublic>" % (
                    i, b64(pk.getKeyPair().getPublicKey().serialize()))
        return out + "</prekeys></bundle>"

    def encrypt(self, req):
        key, iv = os.urandom(16), os.urandom(12)
        sealed = AESGCM(key).encrypt(iv, req["text"].encode(), None)
        payload, material = sealed[:-16], key + sealed[-16:]
        out = "<encrypted xmlns='%s'><header sid='%d'>" % (NS, self.device)
        for r in req["to"]:
            jid, dev = r["jid"], r["device"]
            if not self.store.containsSession(jid, dev):
                b = ET.fromstring(r["bundle"])
                q = lambda name: b.find("{%s}%s" % (NS, name))
                spk = q("signedPreKeyPublic")
                pks = b.findall("{%s}prekeys/{%s}preKeyPublic" % (NS, NS))
                pk = random.choice(pks)
                bundle = PreKeyBundle(
                    dev, dev, int(pk.get("preKeyId")),
                    Curve.decodePoint(base64.b64decode(pk.text), 0),
                    int(spk.get("signedPreKeyId")),
                    Curve.decodePoint(base64.b64decode(spk.text), 0),
                    base64.b64decode(q("signedPreKeySignature").text),
                    IdentityKey(base64.b64decode(q("identityKey").text), 0))
                SessionBuilder(self.store, self.store, self.store, self.store, jid, dev).processPreKeyBundle(bundle)
            msg = SessionCipher(self.store, self.store, self.store, self.store, jid, dev).encrypt(material)
            prekey = " prekey='true'" if isinstance(msg, PreKeyWhisperMessage) else ""
            out += "<key%s rid='%d'>%s</key>" % (prekey, dev, b64(msg.serialize()))
        out += "<iv>%s</iv></header><payload>%s</payload></encrypted>" % (b64(iv), b64(payload))
        return {"xml": out}

    def decrypt(self, req):
        e = ET.fromstring(req["xml"])
        header = e.find("{%s}header" % NS)
        sid = int(header.get("sid"))
        key = [k for k in header.findall("{%s}key" % NS) if int(k.get("rid")) == self.device][0]
        prekey = key.get("prekey") in ("true", "1")
        data = base64.b64decode(key.text)
        cipher = SessionCipher(self.store, self.store, self.store, self.store, req["from"], sid)
        try:
            if prekey:
                material = cipher.decryptPkmsg(PreKeyWhisperMessage(serialized=data), False)
            else:
                material = cipher.decryptMsg(WhisperMessage(serialized=data), False)
        except Exception as ex:  # the test reads the class name
            return {"error": type(ex).__name__}
        payload = e.find("{%s}payload" % NS)
        if payload is None:
            return {"text": None, "prekey": prekey}
        iv = base64.b64decode(header.find("{%s}iv" % NS).text)
        sealed = base64.b64decode(payload.text or "") + material[16:]
        text = AESGCM(material[:16]).decrypt(iv, sealed, None).decode()
        return {"text": text, "prekey": prekey}

    def bundle(self, req):
        return {"bundle": self.bundle_xml()}


def main():
    peer = Peer()
    for line in sys.stdin:
        req = json.loads(line)
        resp = getattr(peer, req["op"])(req)
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
