// The search panel: query, mode, and the ranked passages with the query's words marked.

import { getJSON } from './api.js';
import { openDocument } from './reader.js';
import {
  $,
  appendHighlighted,
  clearError,
  el,
  queryTerms,
  showError,
  snippetOf,
  termPattern,
} from './ui.js';

const RESULTS = 10;
let searchSeq = 0; // answers to an older query are dropped when a newer one was sent

export function initSearch() {
  $('#search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    runSearch();
  });
  // A search in the address bar (?q=…&mode=…) runs on load, so a search can be bookmarked.
  const params = new URLSearchParams(window.location.search);
  const select = $('#search-mode');
  if ([...select.options].some((o) => o.value === params.get('mode'))) select.value = params.get('mode');
  if (params.get('q')) {
    $('#search-q').value = params.get('q');
    runSearch();
  }
}

export function focusSearch() {
  const input = $('#search-q');
  input.focus();
  input.select();
}

async function runSearch() {
  const panel = $('#search-panel');
  const query = $('#search-q').value.trim();
  if (!query) return;
  const mode = $('#search-mode').value;
  const seq = ++searchSeq;
  clearError(panel);
  panel.setAttribute('aria-busy', 'true');
  $('#search-summary').textContent = 'Searching…';
  const params = new URLSearchParams({ q: query, mode, k: String(RESULTS) });
  history.replaceState(null, '', `?${new URLSearchParams({ q: query, mode })}`);
  try {
    const body = await getJSON(`/api/search?${params}`);
    if (seq !== searchSeq) return;
    renderResults(body.hits, query, body.degraded || []);
  } catch (err) {
    if (seq !== searchSeq) return;
    $('#search-summary').textContent = '';
    showError(panel, err);
  } finally {
    if (seq === searchSeq) panel.setAttribute('aria-busy', 'false');
  }
}

function renderResults(hits, query, degraded) {
  const pattern = termPattern(queryTerms(query));
  const count =
    hits.length === 0 ? 'No passages match.' : `${hits.length} passage${hits.length === 1 ? '' : 's'}`;
  // A fallback answered (e.g. keywords alone while the embedding model is down): say so.
  const fallbacks = degraded.map((d) => `${d.part} unavailable (${d.reason}); found by ${d.fallback} alone.`);
  $('#search-summary').textContent = [count, ...fallbacks].join(' ');
  $('#search-results').replaceChildren(...hits.map((hit) => resultItem(hit, pattern)));
}

function resultItem(hit, pattern) {
  const open = el('button', { type: 'button', class: 'link hit-title' }, hit.title || hit.path);
  open.addEventListener('click', () =>
    openDocument(hit.doc_id, hit.chunk_id, { page: hit.page, opener: open }),
  );
  const snippet = el('p', { class: 'snippet' });
  appendHighlighted(snippet, snippetOf(hit.text, pattern), pattern);
  return el(
    'li',
    { class: 'hit', dataset: { docId: hit.doc_id, chunkId: hit.chunk_id } },
    el(
      'div',
      { class: 'hit-head' },
      open,
      el('span', { class: 'score', title: 'Relevance score' }, hit.score.toFixed(3)),
    ),
    el(
      'p',
      { class: 'hit-source muted' },
      el('span', { class: 'path' }, hit.path),
      hit.page ? el('span', { class: 'page' }, ` · page ${hit.page}`) : null,
    ),
    snippet,
  );
}
