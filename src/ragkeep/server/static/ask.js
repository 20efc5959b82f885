// The ask panel: the answer streams in token by token (POST /api/ask/stream read as SSE), then
// its [n] markers become buttons that show the cited passage and open its document.

import { apiFetch, ApiError } from './api.js';
import { openDocument } from './reader.js';
import { readEvents } from './sse.js';
import { $, clearError, el, showError } from './ui.js';

let controller = null; // the answer being streamed, so Stop (or a new question) can end it
let renderQueued = false;
const state = { text: '', citations: new Map(), done: false, progress: '' };

export function initAsk() {
  $('#ask-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const question = $('#ask-q').value.trim();
    if (question) ask(question);
  });
  // Enter asks, Shift+Enter starts a new line: the textarea behaves like a chat box.
  $('#ask-q').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('#ask-form').requestSubmit();
    }
  });
  $('#ask-stop').addEventListener('click', () => controller?.abort());
}

function setBusy(busy) {
  $('#ask-submit').disabled = busy;
  $('#ask-stop').hidden = !busy;
  $('#answer').setAttribute('aria-busy', String(busy));
  $('#ask-panel').setAttribute('aria-busy', String(busy));
}

function reset() {
  state.text = '';
  state.citations = new Map();
  state.done = false;
  state.progress = '';
  clearError($('#ask-panel'));
  const notice = $('#ask-notice');
  notice.hidden = true;
  notice.replaceChildren();
  $('#answer').replaceChildren();
  $('#answer').dataset.state = 'waiting';
  delete $('#answer').dataset.mode;
  $('#answer-meta').textContent = '';
  $('#citations').replaceChildren();
  $('#citations-block').hidden = true;
  $('#passage').hidden = true;
}

async function ask(question) {
  controller?.abort();
  const mine = new AbortController();
  controller = mine;
  reset();
  setBusy(true);
  $('#ask-progress').textContent = 'Finding passages…';
  try {
    const response = await apiFetch('/api/ask/stream', {
      method: 'POST',
      json: { question },
      signal: mine.signal,
    });
    await readEvents(response, (name, data) => {
      if (controller === mine) onEvent(name, data);
    });
    if (controller === mine && !state.done) {
      throw new ApiError(0, 'stream_ended', 'the answer stopped before it was complete');
    }
  } catch (err) {
    if (controller !== mine) return; // a newer question took over
    if (err.name === 'AbortError') {
      $('#answer').dataset.state = 'stopped';
      $('#answer-meta').textContent = 'Stopped.';
    } else {
      $('#answer').dataset.state = 'error';
      showError($('#ask-panel'), err);
    }
  } finally {
    if (controller === mine) {
      controller = null;
      setBusy(false);
      $('#ask-progress').textContent = '';
    }
  }
}

const handlers = {
  passages({ hits }) {
    state.progress =
      hits.length ? `Answering from ${hits.length} passage${hits.length === 1 ? '' : 's'}…` : '';
    $('#ask-progress').textContent = state.progress;
  },
  // The LLM failed before its first token and is tried again: say so, the wait is real.
  retry({ attempt, attempts, reason }) {
    $('#ask-progress').textContent = `LLM: ${reason}; retrying (${attempt}/${attempts})…`;
  },
  token({ text }) {
    if (!state.text) $('#ask-progress').textContent = state.progress; // retries are over
    state.text += text;
    $('#answer').dataset.state = 'streaming';
    queueRender();
  },
  notice({ message, interrupted }) {
    showNotice(message, interrupted);
  },
  citations({ citations }) {
    state.citations = new Map(citations.map((c) => [c.number, c]));
  },
  done(answer) {
    state.done = true;
    $('#ask-progress').textContent = ''; // with the answer shown, not when the stream closes
    state.text = answer.answer;
    state.citations = new Map(answer.citations.map((c) => [c.number, c]));
    if (answer.mode === 'passages' && answer.notice) showNotice(answer.notice, false);
    renderAnswer();
    renderCitations();
    $('#answer').dataset.state = 'done';
    $('#answer').dataset.mode = answer.mode;
    $('#answer-meta').textContent =
      answer.mode === 'llm' ? `Answered by ${answer.model ?? 'the LLM'}.` : '';
  },
  error(error) {
    throw new ApiError(500, error.code, error.message);
  },
};

function onEvent(name, data) {
  handlers[name]?.(data); // unknown events are skipped: a newer server may send more
}

// No LLM, or it failed: say so plainly above the passages shown instead of an answer.
function showNotice(message, interrupted) {
  const notice = $('#ask-notice');
  const lead = interrupted ? 'The answer broke off:' : 'Passages only:';
  notice.replaceChildren(el('strong', {}, lead), ' ', message);
  notice.hidden = false;
  if (interrupted) {
    state.text = ''; // the partial answer is not part of the result: the passages replace it
    queueRender();
  }
}

// Tokens can arrive faster than frames: render at most once per frame.
function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderAnswer();
  });
}

// The answer text with each [n] (or [n, m]) marker a button when citation n is known.
function renderAnswer() {
  const answer = $('#answer');
  if (!state.done) {
    answer.textContent = state.text; // while streaming: plain text, cheap and safe
    return;
  }
  answer.replaceChildren();
  const marker = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
  let last = 0;
  for (const match of state.text.matchAll(marker)) {
    answer.append(state.text.slice(last, match.index));
    appendMarker(answer, match[0], match[1]);
    last = match.index + match[0].length;
  }
  answer.append(state.text.slice(last));
}

function appendMarker(parent, raw, numbers) {
  const known = numbers.split(',').map((n) => Number(n.trim()));
  if (!known.every((n) => state.citations.has(n))) {
    parent.append(raw); // not a citation we can show: keep the text as written
    return;
  }
  known.forEach((n, i) => {
    if (i) parent.append(' ');
    parent.append(citeButton(state.citations.get(n), `[${n}]`, 'cite'));
  });
}

function citeButton(citation, label, className) {
  const where = citation.page ? `, page ${citation.page}` : '';
  const button = el(
    'button',
    {
      type: 'button',
      class: className,
      dataset: { n: citation.number, docId: citation.doc_id ?? '', chunkId: citation.chunk_id },
      title: `${citation.title || citation.path}${where}`,
      'aria-label': `Source ${citation.number}: ${citation.title || citation.path}${where}`,
    },
    label,
  );
  button.addEventListener('click', () => showCitation(citation, button));
  return button;
}

function renderCitations() {
  const items = [...state.citations.values()].map((c) =>
    el(
      'li',
      { dataset: { n: c.number, path: c.path } },
      citeButton(c, `[${c.number}]`, 'cite'),
      ' ',
      el('span', { class: 'cite-title' }, c.title || c.path),
      el('span', { class: 'muted path' }, ` — ${c.path}${c.page ? ` · page ${c.page}` : ''}`),
    ),
  );
  $('#citations').replaceChildren(...items);
  $('#citations-block').hidden = items.length === 0;
}

// Show the passage under the answer and open its document at that passage.
function showCitation(citation, button) {
  $('#passage-heading').textContent = `Cited passage [${citation.number}]`;
  $('#passage-source').textContent =
    `${citation.title || citation.path} — ${citation.path}${citation.page ? ` · page ${citation.page}` : ''}`;
  $('#passage-text').textContent = citation.text;
  $('#passage').hidden = false;
  $('#passage').dataset.n = citation.number;
  if (citation.doc_id !== null && citation.doc_id !== undefined) {
    openDocument(citation.doc_id, citation.chunk_id, { page: citation.page, opener: button });
  }
}
