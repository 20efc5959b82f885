// The token form: shown when the API answers 401, at most one at a time (api.js shares it
// between the requests that were refused).

import { setTokenPrompt } from './api.js';
import { $ } from './ui.js';

export function initTokenPrompt() {
  setTokenPrompt(askForToken);
}

function askForToken(rejected) {
  const dialog = $('#token-dialog');
  const form = $('#token-form');
  const input = $('#token-input');
  $('#token-why').textContent = rejected
    ? 'That token was not accepted. Enter the access token again.'
    : 'This server needs an access token (the one in RAGKEEP_SERVER__TOKEN or server.token).';
  input.value = '';
  return new Promise((resolve) => {
    const listeners = new AbortController();
    const finish = (value) => {
      listeners.abort();
      if (dialog.open) dialog.close();
      resolve(value);
    };
    form.addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        finish(input.value.trim() || null);
      },
      { signal: listeners.signal },
    );
    $('#token-cancel').addEventListener('click', () => finish(null), { signal: listeners.signal });
    dialog.addEventListener('cancel', () => finish(null), { signal: listeners.signal }); // Esc
    dialog.showModal();
    input.focus();
  });
}
