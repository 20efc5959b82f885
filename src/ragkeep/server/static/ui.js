// Small DOM helpers shared by the panels. Document text is untrusted: it only ever reaches the
// page as text nodes (append(string), textContent), never as HTML.

import { ApiError } from './api.js';

export const $ = (selector, root = document) => root.querySelector(selector);

// el('li', {class: 'hit', dataset: {n: 1}}, 'text', child): strings become text nodes.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// -- errors -------------------------------------------------------------------------------

// One readable line for any failure: the API's own message, or "busy" for a 429.
export function describeError(err) {
  if (err instanceof ApiError) {
    if (err.status === 429) {
      const when = err.retryAfter ? ` (in about ${err.retryAfter} s)` : '';
      return `Busy, retry shortly${when}.`;
    }
    return sentence(err.message);
  }
  return sentence(String(err?.message ?? err));
}

function sentence(text) {
  const trimmed = text.trim();
  if (!trimmed) return 'Something went wrong.';
  // Capitalise a plain first word only: a message may begin with a file name ("notes.md is
  // empty"), which must stay as it is.
  const first = /^[a-z]+(?=[\s,;:]|$)/.test(trimmed) ? trimmed[0].toUpperCase() + trimmed.slice(1) : trimmed;
  return /[.!?…]$/.test(first) ? first : `${first}.`;
}

// Each panel has one <p class="error" role="alert">: the panel's latest failure.
export function showError(panel, err) {
  const line = panel.querySelector('.error');
  line.textContent = describeError(err);
  line.hidden = false;
}

export function clearError(panel) {
  const line = panel.querySelector('.error');
  line.textContent = '';
  line.hidden = true;
}

// -- formatting -----------------------------------------------------------------------------

export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '?';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function baseName(path) {
  return String(path).split(/[\\/]/).pop();
}

export function isPdf(path) {
  return /\.pdf$/i.test(String(path));
}

// -- query terms and highlighting ---------------------------------------------------------

// Words that would mark half of every snippet without saying why it matched.
const STOP_WORDS = new Set(
  ('a an and are as at be by can do does for from has have how i in is it its of on or ' +
    'should that the their there this to was what when where which who why will with you your')
    .split(' '),
);

// A light stem, so that "watered" also marks "water" and "tomatoes" marks "tomato"; the search
// itself matches more cleverly, this only guides the eye.
function stem(word) {
  for (const suffix of ['ing', 'ed', 'es', 's']) {
    if (word.endsWith(suffix) && word.length - suffix.length >= 4) {
      return word.slice(0, -suffix.length);
    }
  }
  return word;
}

export function queryTerms(query) {
  const words = String(query).toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const terms = words.filter((w) => w.length > 1 && !STOP_WORDS.has(w)).map(stem);
  return [...new Set(terms)];
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// A pattern matching whole words that start with one of the terms (null for no terms).
export function termPattern(terms) {
  if (!terms.length) return null;
  const alternatives = [...terms].sort((a, b) => b.length - a.length).map(escapeRegExp);
  return new RegExp(`(?<![\\p{L}\\p{N}])(?:${alternatives.join('|')})[\\p{L}\\p{N}]*`, 'giu');
}

// Append `text` to `parent` with each match of `pattern` in a <mark>, as text nodes only.
export function appendHighlighted(parent, text, pattern) {
  if (!pattern) {
    parent.append(text);
    return;
  }
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) parent.append(text.slice(last, match.index));
    parent.append(el('mark', {}, match[0]));
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(text.slice(last));
}

// About `length` characters of `text` around the first match, on word boundaries.
export function snippetOf(text, pattern, length = 280) {
  const flat = String(text).replace(/\s+/g, ' ').trim();
  if (flat.length <= length) return flat;
  let at = 0;
  if (pattern) {
    pattern.lastIndex = 0;
    const first = pattern.exec(flat);
    pattern.lastIndex = 0;
    if (first) at = Math.max(0, first.index - Math.floor(length / 4));
  }
  let start = at === 0 ? 0 : flat.indexOf(' ', at) + 1;
  if (start <= 0 || start > at + 30) start = at;
  start = Math.min(start, Math.max(0, flat.length - length));
  let end = Math.min(flat.length, start + length);
  const space = flat.lastIndexOf(' ', end);
  if (end < flat.length && space > start + length / 2) end = space;
  return `${start > 0 ? '… ' : ''}${flat.slice(start, end)}${end < flat.length ? ' …' : ''}`;
}
