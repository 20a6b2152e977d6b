// Every module but the entry loads in node, without a DOM: what each imports exists, and
// none touches the page when it is loaded (main.js starts the page, so it is left out).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';

test('the modules load without a DOM', async () => {
  const dir = new URL('../', import.meta.url);
  const names = readdirSync(dir).filter((n) => n.endsWith('.js') && n !== 'main.js');
  assert.ok(names.length > 10, names.join(' '));
  for (const name of names) await import(new URL(name, dir));
});
