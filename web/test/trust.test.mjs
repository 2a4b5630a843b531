// Unit tests of the widget's security decision (node --test): every rule of
// trust.js, driven the way chat.js drives it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Trust, NOTES } from '../src/trust.js';

const GOOD = '0123456789ABCDEF0123456789ABCDEF01234567'; // the published key
const GOOD2 = '1111222233334444555566667777888899990000'; // a second published key
const EVIL = 'FEDCBA9876543210FEDCBA9876543210FEDCBA98'; // the service's own key
const grouped = (fp) => fp.replace(/(.{8})(?!$)/g, '$1 ');

// chat starts a chat the way chat.js does: the XMPP session comes up and
// the first round begins.
function chat(opts) {
  const t = new Trust({ skinPolicy: 'require', skinFingerprints: [grouped(GOOD)], ...opts });
  const o = t.connected();
  return { t, o };
}

const secure = (t, instance, fingerprint, round = t.round) => t.engine({ ev: 'secure', round, instance, fingerprint, refreshed: false });
const show = (t, text, instance, fingerprint, encrypted = true, round = t.round) => t.engine({ ev: 'show', round, text, encrypted, instance, fingerprint });
const sentIds = (o) => o.send.map((s) => s.id);

test('verified: the sentence and the bound session are the same session', () => {
  const { t, o } = chat();
  assert.equal(o.fresh, true);
  assert.equal(t.round, 1);
  assert.equal(t.sentence(), 'pending');
  const a = t.type('before');
  assert.deepEqual(a.send, [], 'held while pending');
  assert.deepEqual(a.status, [{ id: a.id, state: 'held' }]);
  const s = secure(t, 0x101, grouped(GOOD).toLowerCase());
  assert.equal(t.sentence(), 'verified');
  assert.deepEqual(t.bound(), { instance: 0x101, fingerprint: GOOD });
  assert.deepEqual(s.send, [{ id: a.id, text: 'before', instance: 0x101, fingerprint: GOOD }]);
  const b = t.type('after');
  assert.deepEqual(b.send, [{ id: b.id, text: 'after', instance: 0x101, fingerprint: GOOD }]);
  assert.deepEqual(t.engine({ ev: 'sent', round: 1, id: b.id }).status, [{ id: b.id, state: 'sent' }]);
  assert.equal(show(t, 'hi', 0x101, GOOD).show.mark, '');
});

test('second instance finishing after the verified one: visible change, nothing sent until settled', () => {
  const { t } = chat();
  secure(t, 0x101, GOOD);
  const c = secure(t, 0x202, EVIL);
  assert.equal(t.sentence(), 'unverified', 'the line describes the newest session');
  assert.equal(t.bound(), null);
  assert.equal(t.needsConfirm(), true);
  assert.ok(c.notes.some((n) => n.includes('The encrypted session changed') && n.includes(grouped(EVIL))), c.notes.join('|'));
  const m = t.type('secret');
  assert.deepEqual(m.send, [], 'held: the change is not settled');
  // Text from the first session is no longer from the session the line describes.
  assert.equal(show(t, 'from the first', 0x101, GOOD).show.mark, 'other-session');
  assert.equal(show(t, 'from the second', 0x202, EVIL).show.mark, '');
  // Choosing to write to the unverified session sends to that one only.
  const k = t.confirm({ instance: 0x202, fingerprint: EVIL });
  assert.deepEqual(k.send, [{ id: m.id, text: 'secret', instance: 0x202, fingerprint: EVIL }]);
  assert.equal(t.sentence(), 'unverified');
});

test('second instance finishing before the verified one: the verified one wins, the other is marked', () => {
  const { t } = chat();
  const m = t.type('secret');
  const first = secure(t, 0x202, EVIL);
  assert.equal(t.sentence(), 'unverified');
  assert.deepEqual(first.send, []);
  assert.ok(first.notes.some((n) => n === NOTES.unverifiedHeld(grouped(EVIL))));
  const second = secure(t, 0x101, GOOD);
  assert.equal(t.sentence(), 'verified');
  assert.deepEqual(second.send, [{ id: m.id, text: 'secret', instance: 0x101, fingerprint: GOOD }]);
  // The attacker's session speaks after: marked, and it does not move what is sent.
  assert.equal(show(t, 'trust me', 0x202, EVIL).show.mark, 'other-session');
  assert.deepEqual(t.type('next').send[0], { id: 2, text: 'next', instance: 0x101, fingerprint: GOOD });
  assert.equal(t.sentence(), 'verified');
});

test('a confirmation given for one session does not carry over to another', () => {
  const { t } = chat();
  secure(t, 0x202, EVIL);
  t.type('x');
  secure(t, 0x303, GOOD2 /* untrusted here */);
  assert.deepEqual(t.confirm({ instance: 0x202, fingerprint: EVIL }).send, [], 'stale confirm');
  assert.equal(t.needsConfirm(), true);
  // A confirmed unverified session replaced by another unverified one needs a new choice.
  assert.equal(t.confirm({ instance: 0x303, fingerprint: GOOD2 }).send.length, 1);
  const c = secure(t, 0x404, EVIL);
  assert.equal(t.needsConfirm(), true);
  assert.ok(c.notes[0].includes('Nothing you write is sent'));
  assert.deepEqual(t.type('y').send, []);
});

test('re-key of the same instance to another fingerprint is a change', () => {
  const { t } = chat();
  secure(t, 0x101, GOOD);
  const o = t.engine({ ev: 'secure', round: 1, instance: 0x101, fingerprint: EVIL, refreshed: true });
  assert.equal(t.sentence(), 'unverified');
  assert.equal(t.bound(), null);
  assert.ok(o.notes[0].startsWith('The encrypted session changed'));
  assert.deepEqual(t.type('held').send, []);
  // A refresh with the same key changes nothing.
  const { t: t2 } = chat();
  secure(t2, 0x101, GOOD);
  const r = t2.engine({ ev: 'secure', round: 1, instance: 0x101, fingerprint: GOOD, refreshed: true });
  assert.deepEqual(r.notes, []);
  assert.equal(t2.sentence(), 'verified');
});

test('re-key to another published key is a change that settles itself', () => {
  const { t } = chat({ skinFingerprints: [GOOD, GOOD2] });
  secure(t, 0x101, GOOD);
  const o = secure(t, 0x505, GOOD2);
  assert.equal(o.notes[0], NOTES.changedTrusted(grouped(GOOD2)));
  assert.equal(t.sentence(), 'verified');
  assert.deepEqual(t.type('z').send[0].instance, 0x505);
});

test('stale rounds lose: a secure event in flight across a transfer is dropped', () => {
  const { t } = chat();
  t.peer('?OTR:AAMC...'); // the AKE is under way
  const tr = t.status('transferred');
  assert.equal(tr.fresh, true);
  assert.equal(t.round, 2);
  const late = secure(t, 0x101, GOOD, 1);
  assert.deepEqual(late, { fresh: false, send: [], plain: [], status: [], notes: [], show: null, id: 0 });
  assert.equal(t.sentence(), 'pending');
  assert.equal(t.type('wait').send.length, 0);
  // An insecure event of the old round does not touch the new one either.
  secure(t, 0x102, GOOD, 2);
  t.engine({ ev: 'insecure', round: 1, instance: 0x102 });
  assert.equal(t.sentence(), 'verified');
  // A line decrypted in the old round is not from the current session.
  assert.equal(show(t, 'bye', 0x101, GOOD, true, 1).show.mark, 'other-session');
});

test('rounds: assigned, transferred, queued after OTR start a new round; before OTR they do not', () => {
  const { t } = chat();
  assert.equal(t.status('queued').fresh, false, 'the first query is still held by the service');
  assert.equal(t.status('assigned').fresh, false);
  secure(t, 0x101, GOOD);
  for (const [i, st] of ['assigned', 'transferred', 'queued'].entries()) {
    if (i) secure(t, 0x101 + i, GOOD);
    const o = t.status(st);
    assert.equal(o.fresh, true, st);
    assert.equal(t.round, 2 + i, st);
    assert.equal(t.sentence(), 'pending', st);
    assert.equal(t.bound(), null, st);
  }
  // A reconnect is a new round too.
  t.disconnected();
  assert.equal(t.sentence(), 'pending');
  assert.equal(t.connected().fresh, true);
  assert.equal(t.round, 5);
});

test('messages held across a round are sent only once the new round is settled', () => {
  const { t } = chat();
  secure(t, 0x101, GOOD);
  const a = t.type('one');
  assert.equal(a.send.length, 1);
  t.status('transferred');
  // The engine was reset: the first message comes back unsent.
  const ns = t.engine({ ev: 'not-sent', round: 1, id: a.id });
  assert.deepEqual(ns.status, [{ id: a.id, state: 'held' }]);
  assert.equal(ns.fresh, false, 'a not-sent from an older round starts nothing');
  const b = t.type('two');
  assert.deepEqual(b.send, []);
  const v = secure(t, 0x777, GOOD);
  assert.deepEqual(v.send.map((s) => [s.text, s.instance]), [['one', 0x777], ['two', 0x777]], 'in the order typed');
});

test('a not-sent for the bound session means the session is gone: held and a new round', () => {
  const { t } = chat();
  secure(t, 0x101, GOOD);
  const a = t.type('one');
  const ns = t.engine({ ev: 'not-sent', round: 1, id: a.id });
  assert.equal(ns.fresh, true);
  assert.equal(t.round, 2);
  assert.ok(ns.notes.includes(NOTES.lost));
  assert.equal(t.sentence(), 'pending');
  assert.deepEqual(secure(t, 0x102, GOOD).send.map(sentIds => sentIds.text), ['one']);
});

test('pinned page: require whatever the skin says; plaintext never downgrades', () => {
  for (const skinPolicy of ['plaintext', 'opportunistic', 'require', 'nonsense']) {
    const { t, o } = chat({ skinPolicy, fingerprintAttr: grouped(GOOD) });
    assert.equal(t.policy, 'require', skinPolicy);
    assert.equal(t.pinned, true);
    assert.equal(o.fresh, true, skinPolicy + ': the AKE starts');
    const m = t.type('secret');
    const p = show(t, 'plain hello', 0, '', false);
    assert.deepEqual(p.show, { text: 'plain hello', mark: 'unencrypted' });
    assert.deepEqual(p.plain, [], skinPolicy);
    assert.equal(t.sentence(), 'pending', skinPolicy);
    assert.deepEqual(secure(t, 0x101, GOOD).send.map((s) => s.id), [m.id]);
    // Still no downgrade once encrypted.
    show(t, 'plain again', 0, '', false);
    assert.equal(t.sentence(), 'verified');
  }
});

test('pinned page trusts its pins only, never the skin list', () => {
  const { t } = chat({ skinFingerprints: [GOOD, EVIL], fingerprintAttr: GOOD.toLowerCase().match(/../g).join(':') });
  const m = t.type('secret');
  const o = secure(t, 0x202, EVIL);
  assert.equal(t.sentence(), 'unverified');
  assert.deepEqual(o.send, []);
  assert.equal(t.needsConfirm(), true);
  assert.deepEqual(t.confirm({ instance: 0x202, fingerprint: EVIL }).send.map((s) => s.id), [m.id]);
  // After the choice, what is typed goes to that session directly.
  assert.equal(t.type('more').send[0].fingerprint, EVIL);
});

test('pins fail closed: present but unreadable trusts nothing, says misconfigured', () => {
  for (const attr of ['', ' ', 'not a fingerprint', GOOD + ', junk', GOOD.slice(1)]) {
    const { t } = chat({ fingerprintAttr: attr, skinPolicy: 'opportunistic', skinFingerprints: [GOOD] });
    assert.equal(t.misconfigured, true, JSON.stringify(attr));
    assert.equal(t.policy, 'require');
    assert.equal(t.sentence(), 'misconfigured');
    const m = t.type('secret');
    assert.deepEqual(secure(t, 0x101, GOOD).send, [], 'not even the skin key is trusted');
    assert.equal(t.sentence(), 'misconfigured');
    assert.equal(t.needsConfirm(), true);
    assert.deepEqual(t.confirm({ instance: 0x101, fingerprint: GOOD }).send.map((s) => s.id), [m.id]);
  }
  const signerBad = new Trust({ skinPolicy: 'opportunistic', skinFingerprints: [GOOD], signer: { ok: false } });
  assert.equal(signerBad.sentence(), 'misconfigured');
  assert.equal(signerBad.policy, 'require');
});

test('a signer pin: nothing trusted until its keyring vouches; union with data-fingerprint', () => {
  const { t } = chat({ signer: { ok: true }, skinFingerprints: [GOOD] });
  assert.equal(t.policy, 'require');
  const m = t.type('secret');
  secure(t, 0x101, GOOD);
  assert.equal(t.sentence(), 'pending', 'no verdict while the keyring is being verified; the skin list is not an anchor');
  assert.equal(t.needsConfirm(), false);
  assert.equal(t.bound(), null);
  const k = t.anchor('signer', [GOOD]);
  assert.equal(t.sentence(), 'verified');
  assert.deepEqual(k.send.map((s) => s.id), [m.id]);

  // A keyring that fails verification vouches for nothing.
  const { t: f } = chat({ signer: { ok: true }, skinFingerprints: [GOOD] });
  f.type('secret');
  secure(f, 0x101, GOOD);
  const r = f.anchor('signer', []);
  assert.equal(f.sentence(), 'unverified');
  assert.equal(f.needsConfirm(), true);
  assert.deepEqual(r.send, []);
  assert.ok(r.notes.includes(NOTES.unverifiedHeld(grouped(GOOD))));

  const { t: both } = chat({ signer: { ok: true }, fingerprintAttr: GOOD2 });
  secure(both, 0x100, GOOD2);
  assert.equal(both.sentence(), 'verified', 'the fingerprint pin vouches while the keyring is on its way');
  both.anchor('signer', [GOOD]);
  secure(both, 0x101, GOOD);
  assert.equal(both.sentence(), 'verified');
  secure(both, 0x102, GOOD2);
  assert.equal(both.sentence(), 'verified');
  secure(both, 0x103, EVIL);
  assert.equal(both.sentence(), 'unverified');
});

test('require without a pin: unverified AKE holds until the visitor confirms', () => {
  const { t } = chat();
  const a = t.type('one');
  const s = secure(t, 0x101, EVIL);
  assert.deepEqual(s.send, []);
  assert.equal(t.needsConfirm(), true);
  const b = t.type('two');
  assert.deepEqual(b.send, []);
  const c = t.confirm({ instance: 0x101, fingerprint: EVIL });
  assert.deepEqual(sentIds(c), [a.id, b.id]);
  assert.ok(c.notes[0].startsWith('You chose to write'));
  assert.equal(t.needsConfirm(), false);
  assert.equal(t.confirm({ instance: 0x101, fingerprint: EVIL }).notes.length, 0, 'once');
});

test('opportunistic without a pin: first session accepted; plaintext answer makes it plaintext', () => {
  const { t } = chat({ skinPolicy: 'opportunistic' });
  const a = t.type('one');
  assert.deepEqual(sentIds(secure(t, 0x101, EVIL)), [a.id]);
  assert.equal(t.sentence(), 'unverified');
  // but a change still needs a choice
  secure(t, 0x102, EVIL.replace('F', 'E'));
  assert.equal(t.needsConfirm(), true);

  const { t: p } = chat({ skinPolicy: 'opportunistic' });
  const m = p.type('hello');
  const o = show(p, 'plain answer', 0, '', false);
  assert.equal(p.sentence(), 'plaintext');
  assert.deepEqual(o.plain, [{ id: m.id, text: 'hello' }]);
  assert.deepEqual(o.show, { text: 'plain answer', mark: 'unencrypted' });
  assert.deepEqual(p.type('more').plain.map((x) => x.text), ['more']);
  // OTR traffic in the round keeps a later plaintext line from downgrading.
  const { t: q } = chat({ skinPolicy: 'opportunistic' });
  q.peer('?OTR:AAMC');
  show(q, 'plain', 0, '', false);
  assert.equal(q.sentence(), 'pending');
});

test('plaintext skin without a pin: plaintext from the start, no rounds', () => {
  const t = new Trust({ skinPolicy: 'plaintext' });
  const a = t.type('early');
  assert.deepEqual(a.plain, [], 'offline: held');
  const c = t.connected();
  assert.equal(c.fresh, false);
  assert.deepEqual(c.plain.map((x) => x.text), ['early']);
  assert.equal(t.sentence(), 'plaintext');
});

test('operator closes OTR: no claim, held, the next message asks for a new round', () => {
  const { t } = chat();
  secure(t, 0x101, GOOD);
  const i = t.engine({ ev: 'insecure', round: 1, instance: 0x101 });
  assert.deepEqual(i.notes, [NOTES.closed]);
  assert.equal(t.sentence(), 'pending');
  const m = t.type('again');
  assert.equal(m.fresh, true);
  assert.equal(t.round, 2);
  assert.deepEqual(m.send, []);
  assert.equal(t.type('and again').fresh, false, 'one new round, not one per message');
  // An insecure for another instance does not end the bound session.
  const { t: u } = chat();
  secure(u, 0x101, GOOD);
  u.engine({ ev: 'insecure', round: 1, instance: 0x999 });
  assert.equal(u.sentence(), 'verified');
});

test('disconnected: nothing goes out until a new round settles', () => {
  const { t } = chat();
  secure(t, 0x101, GOOD);
  t.disconnected();
  assert.equal(t.bound(), null);
  const m = t.type('offline');
  assert.deepEqual(m.send, []);
  assert.equal(m.fresh, false, 'no AKE while offline');
  t.connected();
  assert.deepEqual(sentIds(secure(t, 0x101, GOOD)), [m.id]);
});

test('engine plaintext is shown as unencrypted, also while encrypted', () => {
  const { t } = chat();
  secure(t, 0x101, GOOD);
  assert.equal(show(t, 'in a fragment', 0, '', false).show.mark, 'unencrypted');
  assert.equal(t.sentence(), 'verified');
});

test('the end drops held messages and says so', () => {
  const { t } = chat();
  const m = t.type('never');
  const e = t.status('ended');
  assert.deepEqual(e.status, [{ id: m.id, state: 'dropped' }]);
  assert.deepEqual(e.notes, [NOTES.dropped]);
  assert.equal(t.sentence(), 'ended');
  assert.deepEqual(secure(t, 0x101, GOOD).send, []);
  assert.equal(t.sentence(), 'ended');
  assert.deepEqual(t.type('late').status[0].state, 'dropped');
});

test('the engine cannot start: opportunistic goes plaintext, require holds', () => {
  const o = new Trust({ skinPolicy: 'opportunistic' });
  o.connected();
  const m = o.type('x');
  assert.deepEqual(o.engineFailed().plain.map((p) => p.id), [m.id]);
  const r = new Trust({ skinPolicy: 'opportunistic', fingerprintAttr: GOOD });
  r.connected();
  r.type('x');
  assert.deepEqual(r.engineFailed().plain, []);
  assert.equal(r.sentence(), 'pending');
});

test('a secure event with no readable fingerprint changes nothing', () => {
  const { t } = chat();
  secure(t, 0x101, 'garbage');
  assert.equal(t.sentence(), 'pending');
});

test('a resend is noted only for the current round; a stale plaintext line is still unencrypted', () => {
  const { t } = chat();
  secure(t, 0x101, GOOD);
  assert.deepEqual(t.engine({ ev: 'resent', round: 1, instance: 0x101, fingerprint: GOOD }).notes, [NOTES.resent]);
  t.status('transferred');
  assert.deepEqual(t.engine({ ev: 'resent', round: 1, instance: 0x101, fingerprint: GOOD }).notes, []);
  assert.equal(show(t, 'old plain', 0, '', false, 1).show.mark, 'unencrypted');
});

test('before the XMPP session is up, nothing is asked and nothing goes', () => {
  const t = new Trust({ skinPolicy: 'require', skinFingerprints: [GOOD] });
  const m = t.type('early');
  assert.equal(m.fresh, false);
  assert.equal(t.round, 0);
  assert.deepEqual(t.confirm(null).notes, [], 'nothing to confirm');
  const c = t.connected();
  assert.equal(c.fresh, true);
  assert.deepEqual(sentIds(secure(t, 0x101, GOOD)), [m.id]);
});

test('unknown engine events and malformed ones change nothing', () => {
  const { t } = chat();
  secure(t, 0x101, GOOD);
  for (const ev of [{ ev: 'nonsense', round: 1 }, { ev: 'sent', round: 1, id: 99 }, { ev: 'not-sent', round: 1, id: 99 }, { ev: 'secure', round: 1 }]) {
    const o = t.engine(ev);
    assert.deepEqual([o.send, o.notes, o.status, o.fresh], [[], [], [], false], JSON.stringify(ev));
  }
  assert.equal(t.sentence(), 'verified');
  assert.deepEqual(t.bound(), { instance: 0x101, fingerprint: GOOD });
});

test('the service back after an outage: an AKE left unfinished is asked for again, a running session is kept', () => {
  const { t } = chat();
  const o = t.serviceBack();
  assert.equal(o.fresh, true, 'the query or an AKE step may have bounced');
  assert.equal(t.round, 2);
  secure(t, 0x101, GOOD);
  assert.equal(t.serviceBack().fresh, false, 'an encrypted session is not restarted');
  t.disconnected();
  assert.equal(t.serviceBack().fresh, false, 'nothing to ask for without a session to the service');
});

// ---- OMEMO ----

const OM_DESK = 'a1'.repeat(32); // the operator's desktop: trusted
const OM_PHONE = 'b2'.repeat(32); // the operator's phone: trusted too
const OM_NEW = 'c3'.repeat(32); // a device the page does not trust
const omGrouped = (k) => k.replace(/(.{8})(?!$)/g, '$1 ');

function omemoChat(opts) {
  const t = new Trust({ skinPolicy: 'require', skinFingerprints: [GOOD, OM_DESK.toUpperCase(), omGrouped(OM_PHONE)], ...opts });
  t.connected();
  const o = t.status('assigned', 'omemo', true);
  return { t, o };
}
const devices = (t, list, round = t.round) => t.engine({ ev: 'omemo-devices', round, devices: list });
const omShow = (t, text, device, fingerprint, round = t.round) => t.engine({ ev: 'show', omemo: true, encrypted: true, round, text, device, fingerprint });

test('omemo: an assignment said to be OMEMO is a new round that reads devices', () => {
  const { t, o } = omemoChat();
  assert.equal(o.fresh, true);
  assert.equal(t.mode, 'omemo');
  assert.equal(t.round, 2);
  assert.equal(t.sentence(), 'pending');
  assert.equal(t.omemoPossible(), true);
  // The service's word alone does nothing when the widget handed no keys over.
  const u = new Trust({ skinPolicy: 'require', skinFingerprints: [GOOD] });
  u.connected();
  assert.equal(u.status('assigned', 'omemo', false).fresh, false);
  assert.equal(u.mode, 'otr');
  assert.equal(u.omemoPossible(), false);
});

test('omemo: verified only for trusted devices; an untrusted device of the operator gets nothing', () => {
  const { t } = omemoChat();
  const a = t.type('before');
  assert.deepEqual(a.send, []);
  const d = devices(t, [
    { device: 7, fingerprint: OM_NEW },
    { device: 3, fingerprint: omGrouped(OM_DESK).toUpperCase() },
    { device: 5, fingerprint: OM_PHONE },
  ]);
  assert.equal(t.sentence(), 'verified');
  assert.deepEqual(d.send, [{ id: a.id, text: 'before', instance: 0, fingerprint: '', omemo: true, devices: [{ device: 3, fingerprint: OM_DESK }, { device: 5, fingerprint: OM_PHONE }] }]);
  assert.equal(omShow(t, 'from desk', 3, OM_DESK).show.mark, '');
  assert.equal(omShow(t, 'from the new device', 7, OM_NEW).show.mark, 'other-session');
  assert.equal(omShow(t, 'desk key, other id', 9, OM_DESK).show.mark, 'other-session');
  assert.equal(omShow(t, 'old round', 3, OM_DESK, t.round - 1).show.mark, 'other-session');
});

test('omemo: no trusted device: unverified, held until the visitor chooses, for that set only', () => {
  const { t } = omemoChat();
  const n = devices(t, [{ device: 7, fingerprint: OM_NEW }]);
  assert.equal(t.sentence(), 'unverified');
  assert.ok(n.notes.some((x) => x.includes(omGrouped(OM_NEW))), n.notes.join('|'));
  const m = t.type('secret');
  assert.deepEqual(m.send, []);
  assert.equal(t.needsConfirm(), true);
  // A choice offered for another set does not count.
  assert.deepEqual(t.confirm({ instance: 0, fingerprint: '', omemo: true, devices: [{ device: 8, fingerprint: OM_NEW }] }).send, []);
  const k = t.confirm(t.latest);
  assert.deepEqual(k.send.map((s) => s.devices), [[{ device: 7, fingerprint: OM_NEW }]]);
  assert.equal(t.sentence(), 'unverified');
});

test('omemo: the device set changing is announced; an untrusted set is not written to', () => {
  const { t } = omemoChat();
  devices(t, [{ device: 3, fingerprint: OM_DESK }]);
  // The same device now shows another key (a hostile service swapped the bundle).
  const c = devices(t, [{ device: 3, fingerprint: OM_NEW }]);
  assert.equal(t.sentence(), 'unverified');
  assert.ok(c.notes.some((x) => x.includes('The encrypted session changed')), c.notes.join('|'));
  assert.deepEqual(t.type('x').send, []);
  // The same set again is no change.
  assert.deepEqual(devices(t, [{ device: 3, fingerprint: OM_NEW }]).notes, []);
});

test('omemo: no device at all: not verified, nothing sent, no choice offered', () => {
  const { t } = omemoChat();
  const n = devices(t, []);
  assert.deepEqual(n.notes, [NOTES.noDevices]);
  assert.equal(t.sentence(), 'unverified');
  assert.equal(t.needsConfirm(), false);
  assert.deepEqual(t.type('x').send, []);
  assert.deepEqual(devices(t, []).notes, [], 'said once');
});

test('omemo: stale device lists and events of an OTR round change nothing', () => {
  const { t } = omemoChat();
  assert.deepEqual(devices(t, [{ device: 3, fingerprint: OM_DESK }], t.round - 1).notes, []);
  assert.equal(t.latest, null);
  const o = new Trust({ skinPolicy: 'require', skinFingerprints: [OM_DESK] });
  o.connected();
  devices(o, [{ device: 3, fingerprint: OM_DESK }]);
  assert.equal(o.latest, null, 'an OTR round takes no device list');
});

test('omemo -> otr: a later assignment without OMEMO is a fresh OTR round', () => {
  const { t } = omemoChat();
  devices(t, [{ device: 3, fingerprint: OM_DESK }]);
  const r = t.round;
  const o = t.status('assigned', 'otr', true);
  assert.equal(o.fresh, true);
  assert.equal(t.mode, 'otr');
  assert.equal(t.round, r + 1);
  assert.equal(t.sentence(), 'pending');
  // And back: OTR session, then an OMEMO assignment.
  secure(t, 0x101, GOOD);
  assert.equal(t.sentence(), 'verified');
  const b = t.status('assigned', 'omemo', true);
  assert.equal(b.fresh, true);
  assert.equal(t.mode, 'omemo');
  assert.equal(t.latest, null);
  // An OTR 'secure' of the old round cannot describe the OMEMO round.
  secure(t, 0x101, GOOD, t.round - 1);
  assert.equal(t.latest, null);
});

test('omemo: a pinned page trusts only its pinned OMEMO keys, not the skin JSON', () => {
  const t = new Trust({ skinPolicy: 'opportunistic', skinFingerprints: [OM_NEW], fingerprintAttr: omGrouped(OM_DESK) });
  t.connected();
  t.status('assigned', 'omemo', true);
  devices(t, [{ device: 7, fingerprint: OM_NEW }]);
  assert.equal(t.sentence(), 'unverified');
  assert.equal(t.bound(), null, 'pinned: require, whatever the skin says');
  devices(t, [{ device: 3, fingerprint: OM_DESK }, { device: 7, fingerprint: OM_NEW }]);
  assert.equal(t.sentence(), 'verified');
  assert.deepEqual(t.bound().devices, [{ device: 3, fingerprint: OM_DESK }]);
});

test('omemo: a signer pin vouches for OMEMO keys once its keyring is in', () => {
  const t = new Trust({ skinPolicy: 'require', skinFingerprints: [OM_DESK], signer: { ok: true } });
  t.connected();
  assert.equal(t.omemoPossible(), false, 'nothing known before the keyring');
  t.status('assigned', 'omemo', true);
  devices(t, [{ device: 3, fingerprint: OM_DESK }]);
  assert.equal(t.sentence(), 'pending');
  const m = t.type('x');
  assert.deepEqual(m.send, []);
  const a = t.anchor('signer', [GOOD, OM_DESK]);
  assert.equal(t.sentence(), 'verified');
  assert.equal(t.omemoPossible(), true);
  assert.deepEqual(a.send.map((s) => s.id), [m.id]);
});
