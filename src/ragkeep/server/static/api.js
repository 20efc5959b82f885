// Every call to the API goes through this module, so there is one place that adds the bearer
// token, turns the API's {"error": {code, message}} into an ApiError, and asks for a token
// when the server answers 401.

const TOKEN_KEY = 'ragkeep.token';

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

// Set by the page (token.js): shows the form and resolves to a token, or null if cancelled.
let promptForToken = async () => null;
// The prompt being shown: every request refused meanwhile waits for the same answer, so the
// user is asked once however many requests were in flight.
let pendingPrompt = null;

export function setTokenPrompt(fn) {
  promptForToken = fn;
}

export function currentToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the token cannot be kept, every 401 asks again
  }
}

function storeToken(value) {
  try {
    if (value === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, value);
  } catch {
    // see currentToken
  }
}

export function authHeaders() {
  const token = currentToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// After a 401 for a request sent with `sent`: get a (new) token, or throw if the user cancels.
export async function handleUnauthorized(sent) {
  if (currentToken() !== sent) return; // another request already got a new token: just retry
  if (!pendingPrompt) {
    const rejected = sent !== null;
    storeToken(null);
    pendingPrompt = Promise.resolve(promptForToken(rejected))
      .then((value) => {
        if (!value) throw new ApiError(401, 'unauthorized', 'this server needs an access token');
        storeToken(value);
      })
      .finally(() => {
        pendingPrompt = null;
      });
  }
  await pendingPrompt;
}

function retryAfterOf(header) {
  const seconds = Number.parseInt(header ?? '', 10);
  return Number.isFinite(seconds) ? seconds : null;
}

// The ApiError for a failed response; the body may not be JSON (a proxy's page, say).
export function errorFromBody(status, bodyText, retryAfterHeader) {
  let code = 'http_error';
  let message = `the server answered HTTP ${status}`;
  try {
    const error = JSON.parse(bodyText).error;
    if (error && typeof error.message === 'string') {
      code = String(error.code ?? code);
      message = error.message;
    }
  } catch {
    // not JSON: keep the generic message
  }
  return new ApiError(status, code, message, retryAfterOf(retryAfterHeader));
}

// fetch() with the token; resolves to an ok Response, or throws ApiError (or AbortError).
export async function apiFetch(path, { method = 'GET', json, signal } = {}) {
  for (;;) {
    const sent = currentToken();
    const init = { method, signal, headers: { ...authHeaders() } };
    if (json !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network', 'cannot reach the ragkeep server');
    }
    if (response.status === 401) {
      await handleUnauthorized(sent);
      continue;
    }
    if (!response.ok) {
      throw errorFromBody(response.status, await response.text(), response.headers.get('Retry-After'));
    }
    return response;
  }
}

export async function getJSON(path, options) {
  return (await apiFetch(path, options)).json();
}

export async function postJSON(path, json, options = {}) {
  return (await apiFetch(path, { ...options, method: 'POST', json })).json();
}

// One file as multipart field `files`. XMLHttpRequest, not fetch: only it reports upload
// progress. onProgress(loaded, total) is called as the bytes go out.
function sendFile(file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/uploads');
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener('load', () =>
      resolve({ status: xhr.status, body: xhr.responseText, retryAfter: xhr.getResponseHeader('Retry-After') }),
    );
    xhr.addEventListener('error', () => resolve({ status: 0, body: '', retryAfter: null }));
    const form = new FormData();
    form.append('files', file, file.name);
    xhr.send(form);
  });
}

export async function uploadFile(file, onProgress) {
  for (;;) {
    const sent = currentToken();
    const result = await sendFile(file, onProgress);
    if (result.status === 401) {
      await handleUnauthorized(sent);
      continue;
    }
    if (result.status === 0) throw new ApiError(0, 'network', 'cannot reach the ragkeep server');
    if (result.status < 200 || result.status >= 300) {
      throw errorFromBody(result.status, result.body, result.retryAfter);
    }
    return JSON.parse(result.body);
  }
}
