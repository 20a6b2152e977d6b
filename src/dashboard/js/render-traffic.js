/* render-traffic.js: the report panels about views and where they come from: traffic (chart
   and table), pages, referrers, search, campaigns and events. Each renderer takes the API's
   `data` and the period shown (`ctx`: the range asked, the period answered) and returns
   tables.js's result. */

import { h } from './dom.js';
import { drawChart } from './chart-svg.js';
import { SERIES_LABELS, capitalise } from './format.js';
import { referrerHref } from './links.js';
import { isFull, isOther } from './rank.js';
import { trafficSeries } from './series.js';
import { S } from './state.js';
import { nameCell, pairsTable, rankedTable, result, snippetTag, table } from './tables.js';

export function renderTraffic(d, ctx) {
  const total = d.total || { views: 0, people: 0 };
  if (!total.views) {
    return result([], ['No views in this period. Views show up here within a second of ' +
      'arriving; if none ever do, add the snippet to the site’s pages: ', snippetTag()]);
  }
  const t = trafficSeries(d, ctx.range), l = SERIES_LABELS[t.unit];
  const chart = h('div', { class: 'chart' });
  drawChart(chart, {
    views: t.items.map((x) => x.views), people: t.items.map((x) => x.people),
    short: t.items.map((x) => l.short(x.k)), long: t.items.map((x) => l.long(x.k)),
    label: 'Views and people by ' + t.unit });
  return result([chart, table(null, [l.head, 'Views', 'People'],
    t.items.filter((x) => x.views || x.people).map((x) => ({ key: x.k, views: x.views,
      cells: [l.long(x.k), x.views, x.people] })),
    { cls: 'total', cells: ['Total', total.views, total.people] })]);
}

export function renderContent(d) {
  const t = rankedTable(null, 'Page', d.pages, {
    cell: (e) => (e.title
      ? [h('span', { class: 'page-title' }, e.title), h('code', { class: 'path' }, e.key)]
      : h('code', { class: 'path' }, e.key)) });
  return result([t], ['No page views in this period. If the site has none at all yet, add ' +
    'the snippet: ', snippetTag()], isFull(d.pages, S.limits.content));
}

/** A referrer's name, as a link to it (links.js's referrerHref) when it is a host or a
    host and path kept whole; a cut key is no address. */
function referrerCell(e) {
  return nameCell(e.key, () => {
    const href = e.truncated ? null : referrerHref(e.key);
    return href ? h('a', { href, rel: 'noopener noreferrer', target: '_blank' }, e.key) : e.key;
  });
}

export function renderReferrers(d) {
  return result([rankedTable('Sites', 'Host', d.hosts, { cell: referrerCell }),
    rankedTable('Links', 'Address', d.links, { cell: referrerCell })],
  'No referred views: visitors came directly, or from the site’s own pages.',
  isFull(d.hosts, S.limits.referrers) || isFull(d.links, S.limits.referrers));
}

export function renderTerms(d) {
  return result([pairsTable('Search engines', 'Engine', d.engines, capitalise),
    rankedTable('Search terms', 'Term', d.terms)],
  'No visits from search engines in these months.', isFull(d.terms, S.limits.terms));
}

export function renderCampaigns(d) {
  const l = S.limits.campaigns;
  return result([rankedTable('Sources', 'utm_source', d.sources),
    rankedTable('Mediums', 'utm_medium', d.mediums),
    rankedTable('Campaigns', 'utm_campaign', d.campaigns)],
  'No campaign views in these months. Tag the links you share with utm_source, utm_medium and ' +
    'utm_campaign, e.g. ?utm_source=newsletter&utm_medium=email&utm_campaign=launch.',
  isFull(d.sources, l) || isFull(d.mediums, l) || isFull(d.campaigns, l));
}

export function renderEvents(d) {
  const events = d.events || [];
  const t = events.length ? table(null, ['Event', 'Count', 'Total'], events.map((e) => ({
    key: e.name, views: e.count, cls: isOther(e.name) ? 'other' : null,
    cells: [nameCell(e.name), e.count, e.total] }))) : null;
  return result([t], ['No custom events. Send one from a page with ',
    h('code', {}, "tally('event', 'signup')"), ', or from a server with POST /e.']);
}
