/* reports.js: the report panels: which there are, in page order, their cards, loading each
   for the range shown (dropping answers for a range no longer shown), "Show more", and
   saving one as CSV. Each card names the period it answers for: reports kept per month answer
   for the whole months the range touches. The renderers draw the tables. */

import { getJson, request, siteFailure, apiUrl } from './api.js';
import { $, h, showMessage } from './dom.js';
import { LONG_DAY, LONG_MONTH, SHORT_DAY, dateLabel } from './format.js';
import { csvFileName, reportPath } from './links.js';
import { renderCampaigns, renderContent, renderEvents, renderReferrers, renderTerms,
  renderTraffic } from './render-traffic.js';
import { renderEngagement, renderLocations, renderResolutions, renderRetention,
  renderTechnology } from './render-audience.js';
import { S } from './state.js';

/** The reports, in page order. `day`: kept per day (exact over any range; the others answer
    for whole months); `limit`: ranked lists, with "show more". */
const REPORTS = [
  { name: 'traffic', title: 'Views and people', day: true, render: renderTraffic },
  { name: 'content', title: 'Pages', day: true, limit: 20, render: renderContent },
  { name: 'referrers', title: 'Referrers', day: true, limit: 20, render: renderReferrers },
  { name: 'events', title: 'Events', day: true, render: renderEvents },
  { name: 'engagement', title: 'Visits', day: true, render: renderEngagement },
  { name: 'terms', title: 'Search', day: false, limit: 20, render: renderTerms },
  { name: 'campaigns', title: 'Campaigns', day: false, limit: 20, render: renderCampaigns },
  { name: 'technology', title: 'Technology', day: false, render: renderTechnology },
  { name: 'resolutions', title: 'Screen and window sizes', day: false,
    render: renderResolutions },
  { name: 'locations', title: 'Countries', day: false, render: renderLocations },
  { name: 'retention', title: 'Retention', day: false, wide: true, render: renderRetention },
];

/** One card per report, loading; each report's limit back to its first. */
export function buildReportCards() {
  $('#report-grid').replaceChildren(...REPORTS.map((r) => {
    S.limits[r.name] = r.limit || null;
    return h('section', { class: 'panel report' + (r.wide ? ' wide' : ''),
      id: 'report-' + r.name, 'data-report': r.name, 'data-state': 'loading',
      'aria-labelledby': 'report-' + r.name + '-h' },
    h('div', { class: 'panel-head' },
      h('h3', { id: 'report-' + r.name + '-h' }, r.title),
      h('span', { class: 'period-tag muted' }),
      h('a', { class: 'csv', href: '#', 'aria-label': 'Download ' + r.title + ' as CSV',
        onclick: (e) => downloadCsv(e, r) }, 'CSV')),
    h('div', { class: 'body', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…')),
    h('button', { type: 'button', class: 'more', hidden: true,
      onclick: () => showMore(r) }, 'Show more'));
  }));
}

function showMore(r) {
  S.limits[r.name] = Math.min(1000, S.limits[r.name] * 5);
  loadReport(r);
}

const pathOf = (r, format) => reportPath(r, S.range, S.limits[r.name], format);

/** What a card says it answers for: the range's days, or the months a per-month report
    read ("October – November 2026, whole months"). */
export function periodTag(p) {
  if (typeof p === 'string') return dateLabel(p, p.length === 7 ? LONG_MONTH : LONG_DAY);
  if (p.months) {
    const a = dateLabel(p.from.slice(0, 7), LONG_MONTH), b = dateLabel(p.to.slice(0, 7),
      LONG_MONTH);
    return (a === b ? a : a + ' – ' + b) + ' (kept per month)';
  }
  return p.from === p.to ? dateLabel(p.from, LONG_DAY)
    : dateLabel(p.from, SHORT_DAY) + ' – ' + dateLabel(p.to, LONG_DAY);
}

/** Loads every report for the range shown. */
export function loadReports() {
  S.reportsGen++;
  for (const r of REPORTS) loadReport(r);
}

async function loadReport(r) {
  const me = S, gen = S.reportsGen;
  const card = document.getElementById('report-' + r.name);
  const body = card.querySelector('.body');
  const range = S.range;
  const csv = card.querySelector('.csv');
  csv.href = apiUrl(pathOf(r, 'csv'));
  csv.setAttribute('download', csvFileName(S.site, r, range));
  card.dataset.state = 'loading';
  body.setAttribute('aria-busy', 'true');
  let answer;
  try {
    answer = await getJson(pathOf(r));
  } catch (err) {
    if (me !== S || gen !== S.reportsGen || siteFailure(err)) return;
    card.dataset.state = 'error';
    body.removeAttribute('aria-busy');
    body.replaceChildren(h('p', { class: 'error' }, err.message));
    return;
  }
  if (me !== S || gen !== S.reportsGen) return; // the range changed meanwhile
  const period = answer.period || range;
  const ctx = { range, period };
  card.dataset.from = period.from;
  card.dataset.to = period.to;
  card.dataset.months = !!period.months;
  card.querySelector('.period-tag').textContent = periodTag(period);
  const nodes = r.render(answer.data || {}, ctx);
  const empty = nodes.empty;
  card.dataset.state = empty ? 'empty' : 'loaded';
  body.replaceChildren(...(empty ? [h('p', { class: 'empty' }, empty)] : nodes));
  body.removeAttribute('aria-busy');
  const more = card.querySelector('.more');
  more.hidden = !(S.limits[r.name] && nodes.full && S.limits[r.name] < 1000);
}

/** Fetches the report as CSV with the token and saves it (a link cannot send the header). */
async function downloadCsv(e, r) {
  e.preventDefault();
  const link = e.currentTarget;
  try {
    const blob = await (await request(pathOf(r, 'csv'), 'text/csv')).blob();
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: link.getAttribute('download'), hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    if (!siteFailure(err)) showMessage('CSV of ' + r.title + ': ' + err.message);
  }
}
