// The addresses the page makes: API paths, report queries and CSV names (links.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvFileName, reportPath, siteUrl } from '../links.js';

const content = { name: 'content', day: true };
const terms = { name: 'terms', day: false };

test('API paths are relative and the site is encoded', () => {
  assert.equal(siteUrl('acme', 'summary'), 'api/v1/sites/acme/summary');
  assert.equal(siteUrl('acme', ''), 'api/v1/sites/acme');
  assert.equal(siteUrl('a/b', 'live'), 'api/v1/sites/a%2Fb/live');
});

test('a report asks for its day, or its month, with its limit and format', () => {
  assert.equal(reportPath(content, 'day', '2026-11-02', 20),
    'reports/content?date=2026-11-02&limit=20');
  assert.equal(reportPath(content, 'month', '2026-11-02', 100, 'csv'),
    'reports/content?date=2026-11&limit=100&format=csv');
  assert.equal(reportPath(terms, 'day', '2026-11-02', null, 'csv'),
    'reports/terms?date=2026-11&format=csv');
});

test('a CSV is saved under the site, report and period', () => {
  assert.equal(csvFileName('acme', content, '2026-11-02'), 'tally-acme-content-2026-11-02.csv');
  assert.equal(csvFileName('acme', terms, '2026-11'), 'tally-acme-terms-2026-11.csv');
});
