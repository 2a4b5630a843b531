// Unit tests of the widget's delivery bookkeeping (node --test): what is
// kept, what goes again (the same bytes, only what bounced), what the
// visitor is told, driven the way chat.js drives it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox, AWAY } from '../src/outbox.js';

const box = (o) => new Outbox({ random: () => 0.5, base: 1000, max: 8000, confirmAfter: 500, ...o });

test('a message confirmed by a later ping is delivered', () => {
  const b = box();
  const a = b.sent('w1', 1, '?OTR:AAMD1.', 1);
  assert.equal(a.probeIn, 500, 'a ping to confirm it, a little later');
  assert.equal(b.sent('w2', 2, '?OTR:AAMD2.', 1).probeIn, null, 'one ping confirms both');
  b.probe('p1');
  b.sent('w3', 3, '?OTR:AAMD3.', 1); // after the ping: not confirmed by it
  const r = b.answered('p1', 1);
  assert.deepEqual(r.status, [
    { id: 1, state: 'delivered', late: false },
    { id: 2, state: 'delivered', late: false },
  ]);
  assert.deepEqual(r.resend, []);
  assert.equal(r.probeIn, 500, 'message 3 still waits for its confirmation');
  b.probe('p2');
  assert.deepEqual(b.answered('p2', 1).status, [{ id: 3, state: 'delivered', late: false }]);
  assert.equal(b.entries.length, 0, 'nothing is kept once delivered');
});

test('a bounced message goes again, the same bytes, once the service answers', () => {
  const b = box();
  b.sent('w1', 1, 'BYTES-1', 1);
  const x = b.bounced('w1', 'service-unavailable');
  assert.deepEqual(x.status, [{ id: 1, state: 'pending' }]);
  assert.equal(x.down, true);
  assert.equal(b.pending(), true);
  // The confirming ping was already scheduled; it goes and bounces too.
  b.probe('p1');
  const f = b.probeFailed('p1');
  assert.deepEqual(f.status, [], 'a bounced message is not in doubt: it is known not to have arrived');
  assert.equal(f.probeIn, 2000, 'backing off');
  b.sent('w2', 2, 'BYTES-2', 1); // typed during the outage
  assert.deepEqual(b.bounced('w2', 'service-unavailable').status, [{ id: 2, state: 'pending' }]);
  b.probe('p2');
  assert.equal(b.probeFailed('p2').probeIn, 4000, 'backing off more');
  b.probe('p3');
  const r = b.answered('p3', 1);
  assert.equal(r.down, false);
  assert.deepEqual(r.resend.map((s) => s.body), ['BYTES-1', 'BYTES-2'], 'the same bytes, in the order first sent');
  assert.notEqual(r.resend[0].sid, 'w1', 'under a new stanza id');
  assert.equal(r.probeIn, 500, 'and a ping to confirm them');
  b.probe('p4');
  assert.deepEqual(b.answered('p4', 1).status, [
    { id: 1, state: 'delivered', late: true },
    { id: 2, state: 'delivered', late: true },
  ]);
});

test('only what bounced goes again: an unconfirmed message is in doubt, never sent twice', () => {
  const b = box();
  b.sent('w1', 1, 'BYTES-1', 1); // reached the service just before it died, or not
  b.probe('p1');
  const f = b.probeFailed('p1');
  assert.deepEqual(f.status, [{ id: 1, state: 'unconfirmed' }]);
  assert.equal(f.down, true);
  b.probe('p2');
  const r = b.answered('p2', 1);
  assert.deepEqual(r.resend, [], 'a second copy would be a replay to the operator');
});

test('bytes of an earlier round are not sent again: that session is gone', () => {
  const b = box();
  b.sent('w1', 1, 'BYTES-1', 1);
  b.bounced('w1', 'remote-server-not-found');
  b.probe('p1');
  const r = b.answered('p1', 2);
  assert.deepEqual(r.resend, []);
  assert.deepEqual(r.status, [{ id: 1, state: 'failed' }]);
});

test('a refusal by the service itself is final', () => {
  const b = box();
  b.sent('w1', 1, 'X', 1);
  const r = b.bounced('w1', 'policy-violation');
  assert.deepEqual(r.status, [{ id: 1, state: 'failed' }]);
  assert.equal(r.down, null, 'the service is there: it answered');
  assert.ok(!AWAY.includes('policy-violation'));
});

test('a message that keeps bouncing while pings are answered fails after maxTries', () => {
  const b = box({ maxTries: 2 });
  b.sent('w1', 1, 'X', 1);
  b.bounced('w1', 'service-unavailable');
  b.probe('p1');
  const r = b.answered('p1', 1);
  assert.equal(r.resend.length, 1);
  const again = b.bounced(r.resend[0].sid, 'service-unavailable');
  assert.deepEqual(again.status, [{ id: 1, state: 'failed' }]);
});

test('a message of several stanzas is pending once and delivered when all are', () => {
  const b = box();
  b.sent('w1', 1, 'F1', 1);
  b.sent('w2', 1, 'F2', 1);
  assert.deepEqual(b.bounced('w1', 'service-unavailable').status, [{ id: 1, state: 'pending' }]);
  assert.deepEqual(b.bounced('w2', 'service-unavailable').status, []);
  b.probe('p1');
  const r = b.answered('p1', 1);
  assert.deepEqual(r.resend.map((s) => s.body), ['F1', 'F2']);
  assert.deepEqual(r.status, []);
  b.probe('p2');
  assert.deepEqual(b.answered('p2', 1).status, [{ id: 1, state: 'delivered', late: true }]);
});

test('another stanza bouncing says the service is away and starts the pings', () => {
  const b = box();
  const r = b.bounced('w9', 'service-unavailable');
  assert.equal(r.down, true);
  assert.equal(r.probeIn, 1000);
  assert.equal(b.bounced('w10', 'service-unavailable').probeIn, null, 'one timer at a time');
  assert.equal(box().bounced('w9', 'item-not-found').down, null);
});

test('a lost connection: bounced messages failed, unconfirmed ones in doubt', () => {
  const b = box();
  b.sent('w1', 1, 'A', 1);
  b.sent('w2', 2, 'B', 1);
  b.bounced('w1', 'service-unavailable');
  assert.deepEqual(b.lost().status, [
    { id: 1, state: 'failed' },
    { id: 2, state: 'unconfirmed' },
  ]);
  assert.equal(b.entries.length, 0);
  assert.equal(b.sent('w3', 3, 'C', 2).probeIn, 500, 'a new session starts afresh');
});

test('answers to pings that are not the one in flight change nothing', () => {
  const b = box();
  b.sent('w1', 1, 'A', 1);
  b.probe('p1');
  assert.deepEqual(b.answered('old', 1).status, []);
  assert.deepEqual(b.probeFailed('old').status, []);
  assert.deepEqual(b.answered('p1', 1).status, [{ id: 1, state: 'delivered', late: false }]);
});

test('the backoff grows to its bound, with jitter', () => {
  const lo = box({ random: () => 0 });
  const hi = box({ random: () => 0.999 });
  for (const [b, f] of [[lo, 0.5], [hi, 1.499]]) {
    b.bounced('x', 'service-unavailable');
    const seen = [];
    for (let i = 0; i < 6; i++) {
      b.probe('p' + i);
      seen.push(b.probeFailed('p' + i).probeIn);
    }
    assert.deepEqual(seen, [2000, 4000, 8000, 8000, 8000, 8000].map((d) => Math.round(d * f)));
  }
});

test('a message sent again with a proof-of-work stamp is confirmed under its new id', () => {
  const b = box();
  b.sent('w1', 1, 'hello', 1);
  b.renamed('w1', 'w2');
  assert.deepEqual(b.bounced('w1', 'service-unavailable').status, [], 'the old id is gone');
  b.probe('p1');
  assert.deepEqual(b.answered('p1', 1).status, [{ id: 1, state: 'delivered', late: false }]);
});
