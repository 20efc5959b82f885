// The page's entry point: wires the panels, the theme toggle and the keyboard shortcuts, then
// loads what the page shows before anyone types.

import { initAsk } from './ask.js';
import { initLibrary, loadSources } from './library.js';
import { closeReader, initReader } from './reader.js';
import { focusSearch, initSearch } from './search.js';
import { initStatus, loadStatus } from './status.js';
import { initTokenPrompt } from './token.js';
import { $ } from './ui.js';

const THEME_KEY = 'ragkeep.theme';
const darkQuery = window.matchMedia('(prefers-color-scheme: dark)');

function effectiveTheme() {
  return document.documentElement.dataset.theme ?? (darkQuery.matches ? 'dark' : 'light');
}

function showThemeButton() {
  const dark = effectiveTheme() === 'dark';
  const button = $('#theme-toggle');
  button.setAttribute('aria-pressed', String(dark));
  button.textContent = dark ? 'Light theme' : 'Dark theme';
}

// The toggle remembers an explicit choice; until one is made the system theme applies.
function initTheme() {
  $('#theme-toggle').addEventListener('click', () => {
    const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem(THEME_KEY, next);
    } catch {
      // not remembered, but still applied
    }
    showThemeButton();
  });
  darkQuery.addEventListener('change', showThemeButton);
  showThemeButton();
}

function isTyping(target) {
  return target instanceof Element && target.closest('input, textarea, select, [contenteditable]') !== null;
}

// "/" jumps to the search box, as on many sites, unless the user is typing in a field.
function initKeys() {
  document.addEventListener('keydown', (event) => {
    if (event.key !== '/' || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target) || $('#token-dialog').open) return;
    event.preventDefault();
    // On a narrow screen the document view covers the search box: close it first.
    const reader = $('#reader');
    if (!reader.hidden && reader.getBoundingClientRect().left <= $('#search-q').getBoundingClientRect().right) {
      closeReader();
    }
    focusSearch();
  });
}

function refreshAfterIndexing() {
  loadStatus();
  loadSources();
}

initTokenPrompt();
initTheme();
initKeys();
initReader();
initSearch();
initAsk();
initLibrary({ indexChanged: refreshAfterIndexing });
initStatus();
loadStatus();
loadSources();
