// The status panel: what is indexed, the model, the cache, the LLM, the health figures
// (health.js) and the feature flags.

import { getJSON } from './api.js';
import { initHealth, loadHealth } from './health.js';
import { $, clearError, el, formatBytes, showError } from './ui.js';

let statusSeq = 0;
let recheck = null; // while the model loads, the status is fetched again until it is ready
const RECHECK_MS = 2000;

export function initStatus() {
  $('#status-refresh').addEventListener('click', loadStatus);
  initHealth();
}

export async function loadStatus() {
  const panel = $('#status-panel');
  const seq = ++statusSeq;
  clearTimeout(recheck);
  panel.setAttribute('aria-busy', 'true');
  loadHealth(); // its own request: a failure there does not hide the rest of the status
  try {
    const status = await getJSON('/api/status');
    if (seq !== statusSeq) return;
    clearError(panel);
    render(status);
    if (status.server && !status.server.model_ready) recheck = setTimeout(loadStatus, RECHECK_MS);
  } catch (err) {
    if (seq === statusSeq) showError(panel, err);
  } finally {
    if (seq === statusSeq) panel.setAttribute('aria-busy', 'false');
  }
}

function cacheText(cache) {
  if (!cache?.enabled) return 'off';
  const lookups = (cache.memory?.hits ?? 0) + (cache.memory?.misses ?? 0);
  if (!lookups) return 'no lookups yet';
  return `${(100 * cache.hit_rate).toFixed(0)}% of ${lookups} lookup${lookups === 1 ? '' : 's'}`;
}

function llmText(llm) {
  if (!llm || llm.provider === 'none') return 'not configured: answers show the best passages';
  return `${llm.provider} · ${llm.model || '(no model set)'}`;
}

function render(status) {
  const server = status.server ?? {};
  const rows = [
    ['Documents', String(status.documents), 'documents'],
    ['Chunks', String(status.chunks), 'chunks'],
    ['Database', formatBytes(status.database_bytes), 'database'],
    ['Model', `${status.model_id} (${status.dimension} dims)${server.model_ready ? '' : ', loading…'}`, 'model'],
    ['Generation', String(status.generation), 'generation'],
    ['Cache hit rate', cacheText(status.cache), 'cache'],
    ['LLM', llmText(status.llm), 'llm'],
    ['Access', server.auth ? 'token required' : 'open (no token)', 'auth'],
    ['Version', status.version, 'version'],
  ];
  $('#status-list').replaceChildren(
    ...rows.flatMap(([label, value, key]) => [
      el('dt', {}, label),
      el('dd', { dataset: { key }, title: key === 'database' ? status.database_path : null }, value),
    ]),
  );
  $('#status-panel').dataset.llm = status.llm?.provider ?? 'none';
  $('#flags-list').replaceChildren(...(status.flags ?? []).map(flagItem));
}

function flagItem(flag) {
  return el(
    'li',
    { dataset: { flag: flag.name, enabled: String(flag.enabled) }, title: flag.description },
    el('span', { class: `flag-state ${flag.enabled ? 'on' : 'off'}` }, flag.enabled ? 'on' : 'off'),
    ' ',
    el('code', {}, flag.name),
    el('span', { class: 'muted small' }, ` ${flag.stage}${flag.source !== 'default' ? `, set in ${flag.source}` : ''}`),
  );
}
