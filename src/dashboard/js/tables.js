/* tables.js: the pieces every report panel is drawn with: a table with row and column
   headers, ranked and name–count tables (rank.js's rows), name cells for "(other)" and
   "unknown", a panel's result or what to say when it is empty, and the site's snippet.
   Numbers are written in full; keys from the server only ever become text. */

import { h } from './dom.js';
import { formatFull } from './format.js';
import { OTHER, countsPeople, isOther, pairRows, rankedRows } from './rank.js';
import { S } from './state.js';

/** A table: columns (strings; all but the first are numbers, right-aligned unless marked
    {label, text: true}), rows `{cells, cls, key, views, people, share}`; the first cell of a
    row is its header. */
export function table(caption, cols, rows, foot) {
  cols = cols.map((c) => (typeof c === 'string' ? { label: c } : c));
  const cell = (v, i, tag) => {
    const numeric = i > 0 && !cols[i].text;
    const attrs = { class: numeric ? 'n' : null, scope: tag === 'th' ? 'row' : null };
    return h(tag, attrs, typeof v === 'number' ? formatFull(v) : v);
  };
  const tr = (row) => h('tr', { class: row.cls, 'data-key': row.key, 'data-views': row.views,
    'data-people': row.people, style: row.share != null ? '--share:' + row.share + '%' : null },
  row.cells.map((v, i) => cell(v, i, i ? 'td' : 'th')));
  return h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, cols.map((c, i) =>
      h('th', { scope: 'col', class: i && !c.text ? 'n' : null }, c.label)))),
    h('tbody', {}, rows.map(tr)),
    foot ? h('tfoot', {}, tr(foot)) : null);
}

/** A name cell: "(other)" and "unknown" shown as such, else `pretty(name)` or the name. */
export function nameCell(name, pretty) {
  if (isOther(name)) return h('span', { class: 'other-name' }, OTHER);
  if (name === 'unknown') return h('span', { class: 'muted' }, 'unknown');
  return pretty ? pretty(name) : name;
}

/** A ranked list ({entries, other}) as a table; rows carry data-key and data-views, a cut
    name ends in "…", `(other)` is its own italic row. `opts.cell(entry)`: the name cell. A
    list that counts people (pages) gets a People column, and rows their data-people. */
export function rankedTable(caption, label, ranked, opts) {
  const o = opts || {};
  const people = countsPeople(ranked);
  const counts = (r) => (people ? [r.views, r.people] : [r.views]);
  const rows = rankedRows(ranked).map((r) => (r.other
    ? { key: r.key, views: r.views, people: r.people, cls: 'other', share: r.share,
      cells: [h('span', { title: 'views of names that came after the month was full' }, OTHER),
        ...counts(r)] }
    : { key: r.key, views: r.views, people: r.people, share: r.share,
      cells: [[o.cell ? o.cell(r.entry) : nameCell(r.key), r.entry.truncated
        ? h('span', { class: 'cut', title: 'cut: longer than tally keeps' }, '…') : null],
      ...counts(r)] }));
  if (!rows.length) return null;
  const cols = [label, 'Views'];
  if (people) {
    cols.push({ label: h('abbr', { title: 'visitors who viewed the page, once per day or ' +
      'month (a range adds its months and edge days); 0 without the snippet' }, 'People') });
  }
  return table(caption, cols, rows);
}

/** Name–count pairs ([["chrome", 5]]) as a table with each one's share. */
export function pairsTable(caption, label, pairs, pretty) {
  const rows = pairRows(pairs);
  if (!rows.length) return null;
  return table(caption, [label, 'Views', 'Share'], rows.map((r) => ({
    key: r.key, views: r.views, cls: r.other ? 'other' : null, share: r.share,
    cells: [nameCell(r.key, pretty), r.views, r.percent] })));
}

/** Rendered nodes, or `.empty` (what to say and do instead) when none has data; `.full`:
    a ranked list may have more ("Show more"). */
export function result(nodes, empty, full) {
  const list = nodes.filter(Boolean);
  if (!list.length) list.empty = empty;
  list.full = !!full;
  return list;
}

/** The site's snippet, as `tally site show` prints it, for this tally's address. */
export function snippetTag() {
  const base = new URL('.', location.href).href;
  return h('code', { class: 'snippet' }, '<script async src="' + base + 't.js" data-site="' +
    S.site + '" data-tz="' + S.zone + '"></script>');
}
