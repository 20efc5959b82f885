// The health figures in the status panel: error rate, memory, cache hit rate and search p95
// over the server's window (GET /api/health), each with its level in words (not colour
// alone), and two small charts drawn as inline SVG (the CSP allows no chart library).

import { getJSON } from './api.js';
import { $, describeError, el } from './ui.js';

const REFRESH_MS = 10000; // while the panel is on screen and the tab visible
const SVG_NS = 'http://www.w3.org/2000/svg';
const CHART_W = 240;
const CHART_H = 64;
const PAD = 3; // keeps the line's stroke inside the box at 0 and at the top

const LABELS = {
  error_rate: 'Error rate',
  memory: 'Memory',
  cache_hit_rate: 'Cache hit rate',
  query_p95: 'Search p95',
};
const CHARTS = [
  { metric: 'query_p95', title: 'Search p95 latency' },
  { metric: 'cache_hit_rate', title: 'Cache hit rate' },
];

let healthSeq = 0;
let timer = null;
let onScreen = true; // the status panel intersects the viewport

export function initHealth() {
  const panel = $('#status-panel');
  if ('IntersectionObserver' in window) {
    new IntersectionObserver((entries) => {
      const was = onScreen;
      onScreen = entries.some((e) => e.isIntersecting);
      if (onScreen && !was) loadHealth();
    }).observe(panel);
  }
  // A hidden tab stops polling; coming back refreshes at once.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') loadHealth();
    else clearTimeout(timer);
  });
}

export async function loadHealth() {
  const seq = ++healthSeq;
  clearTimeout(timer);
  try {
    const report = await getJSON('/api/health');
    if (seq !== healthSeq) return;
    render(report);
  } catch (err) {
    if (seq !== healthSeq) return;
    $('#health').dataset.level = 'unknown';
    $('#health-summary').textContent = `Health figures unavailable: ${describeError(err)}`;
  } finally {
    if (seq === healthSeq) schedule();
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (document.visibilityState === 'visible' && onScreen) loadHealth();
    else schedule(); // checked again later; visibilitychange and the observer refresh sooner
  }, REFRESH_MS);
}

// -- formatting: as `ragkeep health` prints them ----------------------------------------------

export function formatAmount(value, unit) {
  if (unit === 'seconds') return value < 1 ? `${Math.round(value * 1000)} ms` : `${Number(value.toPrecision(3))} s`;
  return `${(value * 100).toFixed(1).replace(/\.0$/, '')}%`;
}

function thresholdText(row) {
  const [good, bad] = row.higher_is_worse ? ['<', '>'] : ['>', '<'];
  const parts = row.metric === 'memory' ? [] : [`target ${good} ${formatAmount(row.target, row.unit)}`];
  parts.push(`alert ${bad} ${formatAmount(row.alert, row.unit)}`);
  parts.push(`critical ${bad} ${formatAmount(row.critical, row.unit)}`);
  return parts.join(', ');
}

function levelBadge(level) {
  return el('span', { class: 'level', dataset: { level } }, level);
}

function windowText(seconds) {
  return seconds >= 60 && seconds % 60 === 0 ? `${seconds / 60} min` : `${Math.round(seconds)} s`;
}

// -- rendering ----------------------------------------------------------------------------------

function render(report) {
  const requests = report.rows.find((r) => r.metric === 'error_rate')?.samples ?? 0;
  const box = $('#health');
  box.dataset.level = report.level;
  $('#health-summary').replaceChildren(
    levelBadge(report.level),
    ` ${requests} request${requests === 1 ? '' : 's'} in the last ${windowText(report.window_s)}`,
  );
  $('#health-list').replaceChildren(...report.rows.flatMap(figure));
  $('#health-charts').replaceChildren(...CHARTS.map((c) => chart(report, c)));
}

function figure(row) {
  const value = row.value === null ? 'no data' : formatAmount(row.value, row.unit);
  const detail = row.detail ? ` (${row.detail})` : ''; // as `ragkeep health` prints it
  return [
    el('dt', {}, LABELS[row.metric] ?? row.metric),
    el(
      'dd',
      { dataset: { metric: row.metric, level: row.level }, title: `${thresholdText(row)}${detail}` },
      el('span', { class: 'figure' }, value),
      ' ',
      levelBadge(row.level),
    ),
  ];
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
}

// Runs of consecutive values (a sampling interval without searches is a gap, not a zero).
function runs(points) {
  const out = [];
  let current = [];
  for (const p of points) {
    if (p.value === null || p.value === undefined) {
      if (current.length) out.push(current);
      current = [];
    } else current.push(p);
  }
  if (current.length) out.push(current);
  return out;
}

export function chart(report, { metric, title }) {
  const row = report.rows.find((r) => r.metric === metric);
  const history = report.history ?? [];
  const points = history.map((p) => ({ time: p.time, value: p[metric] }));
  const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  // Latency: up to the alert line or the slowest point, with headroom; a hit rate: 0 to 100%.
  const top = row.unit === 'seconds' ? Math.max(row.alert * 1.25, ...values.map((v) => v * 1.1)) : 1;
  const t0 = history.length ? history[0].time : 0;
  const span = history.length ? history[history.length - 1].time - t0 : 0;
  const x = (t) => (span > 0 ? PAD + ((t - t0) / span) * (CHART_W - 2 * PAD) : CHART_W - PAD);
  const y = (v) => CHART_H - PAD - (Math.min(v, top) / top) * (CHART_H - 2 * PAD);
  const fmt = (n) => n.toFixed(1);

  const shapes = [];
  const alertY = fmt(y(row.alert));
  shapes.push(svg('line', { class: 'chart-alert', x1: 0, x2: CHART_W, y1: alertY, y2: alertY }));
  for (const run of runs(points)) {
    if (run.length === 1) {
      shapes.push(svg('circle', { class: 'chart-dot', cx: fmt(x(run[0].time)), cy: fmt(y(run[0].value)), r: 2 }));
    } else {
      const d = run.map((p, i) => `${i ? 'L' : 'M'}${fmt(x(p.time))},${fmt(y(p.value))}`).join(' ');
      shapes.push(svg('path', { class: 'chart-line', d }));
    }
  }
  const latest = values.length ? formatAmount(values[values.length - 1], row.unit) : 'no data';
  const alertText = `alert ${row.higher_is_worse ? 'above' : 'below'} ${formatAmount(row.alert, row.unit)}`;
  const summary = `${title} over the last ${windowText(report.window_s)}: latest ${latest}; ${alertText}`;
  const picture = svg(
    'svg',
    { class: 'chart', viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': summary },
    svg('title', {}, summary),
    ...shapes,
  );
  return el(
    'figure',
    { class: 'chart-box', dataset: { metric } },
    el('figcaption', {}, title, el('span', { class: 'muted small' }, `latest ${latest} · dashed line: ${alertText}`)),
    picture,
    values.length ? null : el('p', { class: 'muted small chart-empty' }, 'No data in the window yet.'),
  );
}
