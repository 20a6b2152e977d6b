// The addresses the page makes: API paths, report queries, CSV names and referrer links
// (links.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvFileName, referrerHref, reportPath, siteUrl } from '../links.js';

const content = { name: 'content', day: true };
const terms = { name: 'terms', day: false };

test('API paths are relative and the site is encoded', () => {
  assert.equal(siteUrl('acme', 'summary'), 'api/v1/sites/acme/summary');
  assert.equal(siteUrl('acme', ''), 'api/v1/sites/acme');
  assert.equal(siteUrl('a/b', 'live'), 'api/v1/sites/a%2Fb/live');
});

test('a report asks for the range shown, with its limit and format', () => {
  const week = { from: '2026-11-02', to: '2026-11-08' };
  assert.equal(reportPath(content, week, 20),
    'reports/content?from=2026-11-02&to=2026-11-08&limit=20');
  assert.equal(reportPath(terms, week, null, 'csv'),
    'reports/terms?from=2026-11-02&to=2026-11-08&format=csv');
});

test('a CSV is saved under the site, report and range', () => {
  assert.equal(csvFileName('acme', content, { from: '2026-11-02', to: '2026-11-02' }),
    'tally-acme-content-2026-11-02.csv');
  assert.equal(csvFileName('acme', terms, { from: '2026-11-01', to: '2026-11-30' }),
    'tally-acme-terms-2026-11-01_2026-11-30.csv');
});

test('a referrer kept as host or host/path links to it over https', () => {
  const cases = [
    ['news.ycombinator.com', 'https://news.ycombinator.com/'],
    ['news.ycombinator.com/item', 'https://news.ycombinator.com/item'],
    ['example.org/', 'https://example.org/'],
    ['example.org:8080/a/b.html', 'https://example.org:8080/a/b.html'],
    ['xn--caf-dma.example/menü', 'https://xn--caf-dma.example/men%C3%BC'],
    ['example.org/a b', 'https://example.org/a%20b'],
    // The path was decoded when it was kept: what would end it is encoded again.
    ['example.org/what?/#top', 'https://example.org/what%3F/%23top'],
    ['example.org/100%', 'https://example.org/100%25'],
    ['example.org/wiki/C++;v=1,2@x:y$&', 'https://example.org/wiki/C++;v=1,2@x:y$&'],
    ['[2001:db8::1]:8443/x', 'https://[2001:db8::1]:8443/x'],
    ['127.0.0.1/x', 'https://127.0.0.1/x'],
  ];
  for (const [key, href] of cases) assert.equal(referrerHref(key), href, key);
});

test('nothing that is not a host becomes a link', () => {
  for (const key of ['(other)', '(direct)', 'other', 'unknown', 'localhost', '', null,
    undefined, 42, 'javascript:alert(1)', 'javascript://example.org/%0Aalert(1)',
    'JAVASCRIPT:alert(1)', 'data:text/html,<script>', 'https://example.org/',
    '//example.org/x', 'example.org\\x', 'user@example.org', 'exa mple.org',
    'example.org:port/x', 'Example.org', '-example.org', 'example-.org', 'example..org',
    '.example.org', 'example.org.', 'example.org:123456', 'example.org?x', 'example.org#x',
    'example.org/\uD800']) {
    assert.equal(referrerHref(key), null, String(key));
  }
});
