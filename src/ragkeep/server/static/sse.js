// Server-sent events read from a fetch() Response. EventSource cannot POST a question nor
// send an Authorization header, so the page parses the text/event-stream itself.

// A line-by-line parser (https://html.spec.whatwg.org/#event-stream-interpretation, the parts
// the API uses): `event:` and `data:` fields, comments, events ended by a blank line.
export function createParser(onEvent) {
  let rest = '';
  let event = '';
  let data = [];

  function line(text) {
    if (text === '') {
      if (data.length) onEvent(event || 'message', data.join('\n'));
      event = '';
      data = [];
      return;
    }
    if (text.startsWith(':')) return; // a comment (keep-alive)
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }

  return {
    push(chunk) {
      rest += chunk;
      // A CR at the very end may be the first half of a CRLF split across two chunks.
      const heldCR = rest.endsWith('\r');
      if (heldCR) rest = rest.slice(0, -1);
      const lines = rest.split(/\r\n|\r|\n/);
      rest = lines.pop() + (heldCR ? '\r' : '');
      lines.forEach(line);
    },
    end() {
      if (rest) line(rest.replace(/\r$/, ''));
      line(''); // a last event without its blank line still counts
      rest = '';
    },
  };
}

// Calls onEvent(name, parsedData) for each event until the stream ends.
export async function readEvents(response, onEvent) {
  const parser = createParser((name, data) => onEvent(name, JSON.parse(data)));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
    finished = true;
    parser.end();
  } finally {
    // Stopped early (an error, or the caller gave up): close the stream, so the server sees
    // the client leave and stops the work behind it.
    if (!finished) reader.cancel().catch(() => {});
  }
}
