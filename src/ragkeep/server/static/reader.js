// The document view: one indexed document rebuilt from its chunks, the cited chunk highlighted
// and scrolled into view, and a link to the original file (at the right page for a PDF).

import { apiFetch, currentToken, getJSON } from './api.js';
import { $, clearError, el, isPdf, showError } from './ui.js';

const reader = () => $('#reader');
let returnFocusTo = null; // the citation or result that opened the view, focused again on close
let loadSeq = 0; // a slow document load must not overwrite the one opened after it

export function initReader() {
  $('#reader-close').addEventListener('click', closeReader);
  $('#reader-file').addEventListener('click', openOriginal);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !reader().hidden && !$('#token-dialog').open) closeReader();
  });
}

export function closeReader() {
  reader().hidden = true;
  document.body.classList.remove('reading');
  if (returnFocusTo?.isConnected) returnFocusTo.focus();
  returnFocusTo = null;
}

// Open document `docId` with chunk `chunkId` highlighted; `page` is the citation's page, used
// when the chunk is not found (the document changed since the answer).
export async function openDocument(docId, chunkId, { page = null, opener = null } = {}) {
  const seq = ++loadSeq;
  const view = reader();
  returnFocusTo = opener ?? returnFocusTo;
  clearError(view);
  view.hidden = false;
  view.setAttribute('aria-busy', 'true');
  document.body.classList.add('reading');
  $('#reader-title').textContent = 'Loading…';
  $('#reader-path').textContent = '';
  $('#reader-body').replaceChildren();
  try {
    const doc = await getJSON(`/api/documents/${encodeURIComponent(docId)}`);
    if (seq !== loadSeq) return;
    render(doc, chunkId, page);
  } catch (err) {
    if (seq !== loadSeq) return;
    $('#reader-title').textContent = 'Document';
    showError(view, err);
  } finally {
    if (seq === loadSeq) view.setAttribute('aria-busy', 'false');
  }
}

function render(doc, chunkId, fallbackPage) {
  const chunks = [...doc.chunks].sort((a, b) => a.start - b.start || a.end - b.end);
  const cited = chunks.find((c) => c.chunk_id === chunkId) ?? null;
  $('#reader-title').textContent = doc.title || doc.path;
  $('#reader-path').textContent = doc.path;
  const link = $('#reader-file');
  const page = cited?.page ?? fallbackPage;
  // Chromium's and Firefox's PDF viewers open at #page=N.
  link.href = `/api/documents/${doc.doc_id}/file${isPdf(doc.path) && page ? `#page=${page}` : ''}`;
  link.dataset.path = doc.path;
  $('#reader-body').replaceChildren(...pageSections(pieces(chunks), cited));
  const mark = $('#reader-body .cited');
  if (mark) {
    // Centre the passage and move focus to it, so keyboard and screen-reader users land there.
    mark.scrollIntoView({ block: 'center' });
    mark.focus({ preventScroll: true });
  } else {
    $('#reader-body').setAttribute('tabindex', '-1');
    $('#reader-body').focus();
  }
}

// The document's text without the overlap between consecutive chunks: each piece is the part
// of one chunk not already covered by the previous ones, with its offsets and page.
function pieces(chunks) {
  const out = [];
  let covered = -1;
  for (const chunk of chunks) {
    const from = Math.max(covered, chunk.start);
    if (from >= chunk.end) continue;
    const gap = covered >= 0 && chunk.start > covered;
    out.push({
      start: from,
      end: chunk.end,
      page: chunk.page,
      gap, // text between chunks was not indexed (e.g. between two pages): show a break
      text: chunk.text.slice(from - chunk.start),
    });
    covered = chunk.end;
  }
  return out;
}

// Pieces grouped into one <section> per page (one for a document without pages), with the
// cited chunk's span wrapped in <mark class="cited">.
function pageSections(parts, cited) {
  const sections = [];
  let current = null;
  for (const part of parts) {
    if (!current || part.page !== current.page) {
      const heading = part.page ? el('h3', { class: 'page-label' }, `Page ${part.page}`) : null;
      current = { page: part.page, node: el('section', { class: 'doc-page', dataset: { page: part.page ?? '' } }, heading) };
      current.body = el('div', { class: 'doc-text' });
      current.node.append(current.body);
      sections.push(current.node);
    } else if (part.gap) {
      current.body.append('\n\n');
    }
    appendPiece(current.body, part, cited);
  }
  return sections;
}

function appendPiece(parent, part, cited) {
  if (!cited || cited.end <= part.start || cited.start >= part.end) {
    parent.append(part.text);
    return;
  }
  const from = Math.max(cited.start, part.start) - part.start;
  const to = Math.min(cited.end, part.end) - part.start;
  if (from > 0) parent.append(part.text.slice(0, from));
  const attrs = { class: 'cited', tabindex: '-1', title: 'Cited passage', dataset: { chunkId: cited.chunk_id } };
  parent.append(el('mark', attrs, part.text.slice(from, to)));
  if (to < part.text.length) parent.append(part.text.slice(to));
}

// A plain link cannot send the Authorization header, and an HTML file served inline would run
// its scripts as this page's origin. In both cases fetch the file and show it from a blob:
// with the token, and HTML as plain text.
async function openOriginal(event) {
  const link = event.currentTarget;
  const html = /\.html?$/i.test(link.dataset.path ?? '');
  if (!currentToken() && !html) return; // the browser opens the link itself
  event.preventDefault();
  const target = window.open('', '_blank'); // now, while the click still allows a new tab
  try {
    const url = new URL(link.href);
    const response = await apiFetch(url.pathname);
    let blob = await response.blob();
    if (html) blob = new Blob([await blob.text()], { type: 'text/plain;charset=utf-8' });
    const objectUrl = URL.createObjectURL(blob);
    if (target) target.location.href = objectUrl + url.hash;
    else window.location.href = objectUrl + url.hash;
    setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000); // long after the tab loaded it
  } catch (err) {
    target?.close();
    showError(reader(), err);
  }
}
