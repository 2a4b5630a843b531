// Unit tests of the page's pins (node --test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonFP, canonOMEMO, humanFP, isOMEMO, parsePins } from '../src/pins.js';

const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const FP2 = 'FEDCBA9876543210FEDCBA9876543210FEDCBA98';

test('every form people paste reads as the same fingerprint', () => {
  const forms = {
    'upper, grouped': '01234567 89ABCDEF 01234567 89ABCDEF 01234567',
    'lower, grouped': '01234567 89abcdef 01234567 89abcdef 01234567',
    'no spaces': FP,
    'lower, no spaces': FP.toLowerCase(),
    'colons between pairs': FP.match(/../g).join(':'),
    'colons between groups': '01234567:89ABCDEF:01234567:89ABCDEF:01234567',
    'spaces around': '  ' + FP + '\n',
    'several spaces': '01234567  89ABCDEF\t01234567 89ABCDEF 01234567',
  };
  for (const [name, s] of Object.entries(forms)) {
    assert.equal(canonFP(s), FP, name);
    assert.deepEqual(parsePins(s), { present: true, ok: true, fingerprints: [FP] }, name);
  }
  assert.equal(humanFP(FP.toLowerCase()), '01234567 89ABCDEF 01234567 89ABCDEF 01234567');
});

test('several pins, comma-separated, duplicates once, trailing comma', () => {
  assert.deepEqual(parsePins(FP + ', ' + FP2.toLowerCase() + ',' + FP + ','), { present: true, ok: true, fingerprints: [FP, FP2] });
});

test('no attribute is no pin', () => {
  for (const v of [null, undefined]) assert.deepEqual(parsePins(v), { present: false, ok: true, fingerprints: [] });
});

test('a present but unreadable pin trusts nothing', () => {
  const bad = {
    empty: '',
    blank: '   ',
    commas: ',,',
    'too short': FP.slice(0, 39),
    'too long': FP + '0',
    'not hex': FP.slice(0, 39) + 'G',
    'dashes': '01234567-89ABCDEF-01234567-89ABCDEF-01234567',
    'one bad item among good ones': FP + ', nonsense',
    'a good one after a bad one': 'XYZ,' + FP,
    'two fingerprints without a comma': FP + ' ' + FP2,
    'fullwidth digits': '０' + FP.slice(1),
    'between the two lengths': FP + FP.slice(0, 8),
    'OMEMO length plus one': FP + FP.slice(0, 24) + '0',
    'OMEMO length minus one': FP + FP.slice(0, 23),
  };
  for (const [name, s] of Object.entries(bad)) {
    assert.deepEqual(parsePins(s), { present: true, ok: false, fingerprints: [] }, name);
  }
  assert.equal(canonFP(undefined), '');
  assert.equal(canonFP(null), '');
});

const OM = '0123456789abcdef'.repeat(4); // an OMEMO identity key, canonical

test('OMEMO identity keys: every form the clients show reads as the same key', () => {
  const grouped = OM.replace(/(.{8})(?!$)/g, '$1 ');
  for (const s of [OM, OM.toUpperCase(), grouped, grouped.toUpperCase(), OM.match(/../g).join(':'), ' ' + grouped + '\n']) {
    assert.equal(canonOMEMO(s), OM, s);
    assert.deepEqual(parsePins(s), { present: true, ok: true, fingerprints: [OM] }, s);
  }
  assert.equal(humanFP(OM.toUpperCase()), grouped);
  assert.equal(isOMEMO(OM), true);
  assert.equal(isOMEMO(FP), false);
  assert.equal(canonFP(OM), '', 'an OMEMO key is not an OTR fingerprint');
  assert.equal(canonOMEMO(FP), '', 'nor the other way round');
});

test('OTR and OMEMO pins together; a bad item still spoils all', () => {
  assert.deepEqual(parsePins(FP + ', ' + OM), { present: true, ok: true, fingerprints: [FP, OM] });
  assert.deepEqual(parsePins(OM + ', ' + OM.slice(1)), { present: true, ok: false, fingerprints: [] });
});
