// The library panel: uploads (drag and drop or the file picker), the registered sources, and
// Sync. Both uploads and syncs are server jobs, followed through their SSE progress events.

import { apiFetch, ApiError, getJSON, uploadFile } from './api.js';
import { readEvents } from './sse.js';
import { $, baseName, clearError, describeError, el, formatBytes, showError } from './ui.js';

// The server's list (ragkeep.ingest.loaders): checked here too, so a wrong file is refused at
// once instead of after its upload.
const SUFFIXES = ['.md', '.markdown', '.txt', '.html', '.htm', '.pdf', '.docx'];
let uploads = Promise.resolve(); // files go one after the other (see enqueue)
let onIndexChanged = () => {};

export function initLibrary({ indexChanged }) {
  onIndexChanged = indexChanged;
  const input = $('#upload-input');
  input.addEventListener('change', () => {
    enqueue([...input.files]);
    input.value = ''; // choosing the same file again must fire `change` again
  });
  initDropZone($('#drop-zone'));
  $('#sync-button').addEventListener('click', sync);
}

function initDropZone(zone) {
  // Without this, a file dropped anywhere else on the page would replace the page with it.
  for (const type of ['dragover', 'drop']) {
    window.addEventListener(type, (event) => {
      if (event.dataTransfer?.types.includes('Files')) event.preventDefault();
    });
  }
  let depth = 0; // dragenter/leave fire for every child: count them to know when we left
  zone.addEventListener('dragenter', (event) => {
    event.preventDefault();
    depth += 1;
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove('dragging');
  });
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    depth = 0;
    zone.classList.remove('dragging');
    enqueue([...(event.dataTransfer?.files ?? [])]);
  });
}

// -- jobs ----------------------------------------------------------------------------------

// Follow a job's events until it ends; onProgress({done, total, current}) on the way.
export async function followJob(id, onProgress) {
  let ended = null;
  const response = await apiFetch(`/api/jobs/${encodeURIComponent(id)}/events`);
  await readEvents(response, (name, data) => {
    if (name === 'progress') onProgress(data);
    else if (name === 'end') ended = data;
  });
  // The stream can break (a proxy, a restart): ask once more before giving up.
  ended ??= await getJSON(`/api/jobs/${encodeURIComponent(id)}`);
  if (!['done', 'failed', 'cancelled'].includes(ended.state)) {
    throw new ApiError(0, 'lost_job', `lost track of job ${id}; see the status panel later`);
  }
  return ended;
}

function showProgress(bar, { done, total }) {
  if (total > 0) {
    bar.max = total;
    bar.value = done;
  } else {
    bar.removeAttribute('value'); // indeterminate: the job has not counted its files yet
  }
}

// -- uploads -------------------------------------------------------------------------------

// One request per file, each waiting for its indexing job: an upload job indexes the whole
// uploads folder, so a second job started meanwhile could pick up (and report) this file.
function enqueue(files) {
  for (const file of files) {
    const row = uploadRow(file);
    $('#upload-list').prepend(row.node);
    uploads = uploads.then(() => uploadOne(file, row));
  }
}

function uploadRow(file) {
  const bar = el('progress', { max: '1', value: '0', 'aria-label': `Upload of ${file.name}` });
  const status = el('span', { class: 'upload-status' }, 'waiting');
  const node = el(
    'li',
    { class: 'upload', dataset: { name: file.name, state: 'waiting' } },
    el('span', { class: 'upload-name' }, file.name),
    el('span', { class: 'muted small' }, ` ${formatBytes(file.size)}`),
    bar,
    status,
  );
  const set = (stateName, text) => {
    node.dataset.state = stateName;
    status.textContent = text;
  };
  return { node, bar, set };
}

async function uploadOne(file, row) {
  const suffix = (file.name.match(/\.[^.]+$/)?.[0] ?? '').toLowerCase();
  if (!SUFFIXES.includes(suffix)) {
    row.bar.hidden = true;
    row.set('failed', `not uploaded: only ${SUFFIXES.join(' ')} files can be indexed`);
    return;
  }
  try {
    row.set('uploading', 'uploading…');
    const body = await uploadFile(file, (loaded, total) => {
      row.bar.max = total;
      row.bar.value = loaded;
      row.set('uploading', `uploading… ${Math.round((100 * loaded) / total)}%`);
    });
    const stored = body.files[0]?.name ?? file.name;
    row.set('indexing', 'indexing…');
    row.bar.removeAttribute('value');
    const job = await followJob(body.job.id, (progress) => showProgress(row.bar, progress));
    const outcome = outcomeOf(job, stored);
    row.bar.hidden = true;
    row.set(outcome.state, outcome.text);
    onIndexChanged();
  } catch (err) {
    row.bar.hidden = true;
    row.set('failed', `failed: ${describeError(err)}`);
  }
}

// What the job did with the stored file: added/updated (with chunks), skipped, failed + why.
function outcomeOf(job, storedName) {
  if (job.state !== 'done') return { state: 'failed', text: `failed: ${job.error ?? job.state}` };
  const file = (job.result?.files ?? []).find((f) => baseName(f.path) === storedName);
  if (!file) return { state: 'unchanged', text: 'unchanged: already indexed' };
  const chunks = file.chunks ? ` (${file.chunks} chunk${file.chunks === 1 ? '' : 's'})` : '';
  const reason = file.reason ? `: ${file.reason}` : '';
  return { state: file.outcome, text: `${file.outcome}${chunks}${reason}` };
}

// -- sources and sync ------------------------------------------------------------------------

export async function loadSources() {
  const panel = $('#library-panel');
  try {
    const body = await getJSON('/api/sources');
    const items = body.sources.map((source) => el('li', { class: 'path' }, source));
    $('#sources-list').replaceChildren(
      ...(items.length ? items : [el('li', { class: 'muted' }, 'No folders yet: upload files, or add one with the CLI.')]),
    );
    $('#uploads-dir').textContent = `Uploads are kept in ${body.uploads}`;
  } catch (err) {
    showError(panel, err);
  }
}

async function sync() {
  const panel = $('#library-panel');
  const button = $('#sync-button');
  const bar = $('#sync-progress');
  const status = $('#sync-status');
  clearError(panel);
  button.disabled = true;
  bar.hidden = false;
  bar.removeAttribute('value');
  status.textContent = 'Sync queued…';
  try {
    const job = await (await apiFetch('/api/sync', { method: 'POST' })).json();
    const ended = await followJob(job.id, (progress) => {
      showProgress(bar, progress);
      status.textContent = `Syncing ${progress.done}/${progress.total}${progress.current ? `: ${baseName(progress.current)}` : ''}`;
    });
    status.textContent = syncSummary(ended);
    if (ended.state === 'failed') showError(panel, new Error(`sync failed: ${ended.error}`));
    onIndexChanged();
  } catch (err) {
    status.textContent = '';
    showError(panel, err);
  } finally {
    button.disabled = false;
    bar.hidden = true;
  }
}

function syncSummary(job) {
  if (job.state !== 'done') return `Sync ${job.state}.`;
  const r = job.result ?? {};
  const counts = ['added', 'updated', 'removed', 'renamed', 'failed']
    .filter((key) => r[key])
    .map((key) => `${r[key]} ${key}`);
  const failures = (r.files ?? [])
    .filter((f) => f.outcome === 'failed')
    .map((f) => `${baseName(f.path)}: ${f.reason}`);
  const what = counts.length ? counts.join(', ') : 'nothing changed';
  return `Sync done: ${what}.${failures.length ? ` ${failures.join('; ')}` : ''}`;
}
