// The range picker's presets, comparisons and address (ranges.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_DAYS, PRESETS, changePercent, comparedWith, customRange, isYearView, legacyRange,
  lengthInDays, peopleNote, presetRange, rangeFromQuery, stepRange,
  rangeParams, rangeToQuery, validRange, yearEarlier } from '../ranges.js';

const TODAY = '2026-03-10';

test('"N days" are the N days ending today, today included', () => {
  assert.deepEqual(presetRange('7d', TODAY), { from: '2026-03-04', to: TODAY });
  assert.equal(lengthInDays('2026-03-04', TODAY), 7);
  for (const [name, n] of [['28d', 28], ['30d', 30], ['90d', 90]]) {
    const r = presetRange(name, TODAY);
    assert.equal(r.to, TODAY);
    assert.equal(lengthInDays(r.from, r.to), n, name);
  }
  // across February and a year boundary
  assert.deepEqual(presetRange('28d', '2026-03-01'), { from: '2026-02-02', to: '2026-03-01' });
  assert.deepEqual(presetRange('7d', '2027-01-02'), { from: '2026-12-27', to: '2027-01-02' });
});

test('today, yesterday, months and years are calendar ranges', () => {
  assert.deepEqual(presetRange('today', TODAY), { from: TODAY, to: TODAY });
  assert.deepEqual(presetRange('yesterday', '2026-03-01'), { from: '2026-02-28', to: '2026-02-28' });
  assert.deepEqual(presetRange('month', TODAY), { from: '2026-03-01', to: TODAY });
  assert.deepEqual(presetRange('last-month', TODAY), { from: '2026-02-01', to: '2026-02-28' });
  assert.deepEqual(presetRange('last-month', '2024-03-31'), { from: '2024-02-01', to: '2024-02-29' });
  assert.deepEqual(presetRange('last-month', '2026-01-15'), { from: '2025-12-01', to: '2025-12-31' });
  assert.deepEqual(presetRange('ytd', TODAY), { from: '2026-01-01', to: TODAY });
  assert.deepEqual(presetRange('12m', TODAY), { from: '2025-03-11', to: TODAY });
  assert.equal(presetRange('custom', TODAY), null);
  assert.equal(presetRange('nonsense', TODAY), null);
  assert.equal(PRESETS.length, 12);
});

test('all time starts at the first day with data, and at most three years back', () => {
  assert.deepEqual(presetRange('all', TODAY, '2025-06-01'), { from: '2025-06-01', to: TODAY });
  const far = presetRange('all', TODAY, '2001-01-01');
  assert.equal(lengthInDays(far.from, far.to), MAX_DAYS);
  assert.equal(lengthInDays(presetRange('all', TODAY).from, TODAY), MAX_DAYS);
});

test('the previous period has as many days, just before; a year earlier maps 29 February', () => {
  assert.deepEqual(comparedWith({ from: '2026-03-04', to: TODAY }, 'previous'),
    { from: '2026-02-25', to: '2026-03-03' });
  assert.deepEqual(comparedWith({ from: '2026-02-01', to: '2026-02-28' }, 'previous'),
    { from: '2026-01-04', to: '2026-01-31' });
  assert.deepEqual(comparedWith({ from: '2024-02-29', to: '2024-03-01' }, 'year'),
    { from: '2023-02-28', to: '2023-03-01' });
  assert.equal(yearEarlier('2027-01-01'), '2026-01-01');
  assert.equal(comparedWith({ from: TODAY, to: TODAY }, null), null);
});

test('a custom range is real days, in order, not in the future, at most three years', () => {
  assert.ok(validRange('2026-01-01', TODAY, TODAY));
  assert.ok(!validRange('2026-03-11', '2026-03-12', TODAY), 'the future');
  assert.ok(!validRange(TODAY, '2026-03-01', TODAY), 'reversed');
  assert.ok(!validRange('2026-02-30', TODAY, TODAY), 'not a day');
  assert.ok(!validRange('2023-03-01', TODAY, TODAY), 'over three years');
});

test('the range round-trips through the address; a bad one falls back to today', () => {
  const r = rangeFromQuery('?site=acme&range=28d&compare=previous', TODAY);
  assert.deepEqual(r, { name: '28d', from: '2026-02-11', to: TODAY, compare: 'previous' });
  const q = rangeToQuery(r, new URLSearchParams('site=acme&range=7d&from=x'));
  assert.equal(q.toString(), 'site=acme&range=28d&compare=previous');
  const custom = { name: 'custom', from: '2025-12-20', to: '2026-01-05', compare: 'year' };
  assert.deepEqual(rangeFromQuery('?' + rangeToQuery(custom, new URLSearchParams()), TODAY), custom);
  assert.equal(rangeToQuery({ name: 'today', from: TODAY, to: TODAY, compare: null },
    new URLSearchParams('site=acme')).toString(), 'site=acme');
  for (const bad of ['?range=custom&from=2026-03-09', '?range=custom&from=2026-03-09&to=2027-01-01',
    '?range=lifetime', '?compare=sideways']) {
    const back = rangeFromQuery(bad, TODAY);
    assert.equal(back.name, 'today', bad);
    assert.equal(back.from, TODAY, bad);
  }
  assert.equal(rangeParams({ from: '2026-03-04', to: TODAY, compare: 'year' }),
    'from=2026-03-04&to=2026-03-10&compare=year');
});

test('links from before the picker open the same period as a range', () => {
  const day = (d) => ({ name: 'custom', from: d, to: d, compare: null });
  assert.deepEqual(legacyRange('2026-02-14', null, TODAY), day('2026-02-14'));
  assert.deepEqual(legacyRange(TODAY, null, TODAY).name, 'today');
  assert.deepEqual(legacyRange('2026-01-14', 'month', TODAY),
    { name: 'custom', from: '2026-01-01', to: '2026-01-31', compare: null });
  assert.deepEqual(legacyRange('2026-02', null, TODAY).name, 'last-month');
  assert.deepEqual(legacyRange('2026-03-02', 'month', TODAY),
    { name: 'month', from: '2026-03-01', to: TODAY, compare: null });
  assert.deepEqual(legacyRange('2025', null, TODAY),
    { name: 'custom', from: '2025-01-01', to: '2025-12-31', compare: null });
  assert.deepEqual(legacyRange('2026', null, TODAY).name, 'ytd');
  for (const bad of ['2026-04-01', '2026-02-30', 'x', '', null]) {
    assert.equal(legacyRange(bad, null, TODAY), null, bad);
  }
  assert.deepEqual(rangeFromQuery('?site=a&date=2026-02-14&unit=month&compare=year', TODAY),
    { name: 'last-month', from: '2026-02-01', to: '2026-02-28', compare: 'year' });
  const q = rangeToQuery(customRange('2026-02-01', '2026-02-03', TODAY, null),
    new URLSearchParams('site=a&date=2026-02-14&unit=month'));
  assert.equal(q.toString(), 'site=a&range=custom&from=2026-02-01&to=2026-02-03');
});

test('stepping moves by the range’s length, whole months by months, never past today', () => {
  const r = (name) => ({ name, ...presetRange(name, TODAY), compare: 'previous' });
  assert.deepEqual(stepRange(r('7d'), -1, TODAY),
    { name: 'custom', from: '2026-02-25', to: '2026-03-03', compare: 'previous' });
  assert.deepEqual(stepRange(stepRange(r('7d'), -1, TODAY), 1, TODAY), r('7d'));
  assert.equal(stepRange(r('7d'), 1, TODAY), null, 'nothing after today');
  assert.deepEqual(stepRange(r('today'), -1, TODAY), r('yesterday'));
  assert.deepEqual(stepRange(r('month'), -1, TODAY), r('last-month'));
  assert.deepEqual(stepRange(r('last-month'), 1, TODAY), r('month'));
  assert.deepEqual(stepRange(r('last-month'), -1, TODAY),
    { name: 'custom', from: '2026-01-01', to: '2026-01-31', compare: 'previous' });
  const q1 = { name: 'custom', from: '2025-01-01', to: '2025-03-31', compare: null };
  assert.deepEqual(stepRange(q1, 1, TODAY),
    { name: 'custom', from: '2025-04-01', to: '2025-06-30', compare: null });
  const y = { name: 'custom', from: '2025-01-01', to: '2025-12-31', compare: null };
  assert.deepEqual(stepRange(y, 1, TODAY), { ...r('ytd'), compare: null });
  const long = stepRange({ name: 'custom', from: '2023-03-11', to: '2026-03-10' }, -1, TODAY);
  assert.equal(lengthInDays(long.from, long.to), lengthInDays('2023-03-11', TODAY));
  assert.equal(long.to, '2023-03-10');
});

test('a year or more is a year view; the change is a whole percentage', () => {
  assert.ok(isYearView(presetRange('12m', TODAY)));
  assert.ok(isYearView({ from: '2025-01-01', to: '2025-12-31' }));
  assert.ok(!isYearView(presetRange('90d', TODAY)));
  assert.equal(changePercent(112, 100), 12);
  assert.equal(changePercent(50, 200), -75);
  assert.equal(changePercent(5, 0), null);
  assert.equal(changePercent(5, null), null);
});

test('the people note says how a range’s people were added up, and nothing for sketches', () => {
  assert.match(peopleNote('sketches', 28), /counted once/);
  assert.equal(peopleNote('sketches', 1), '');
  assert.equal(peopleNote('flags', 1), '');
  assert.equal(peopleNote(undefined, 28), '');
  assert.match(peopleNote('flags', 28), /counts twice/);
  assert.match(peopleNote('sketches and flags', 28), /partly/);
});
