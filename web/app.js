// The chat page: conversation in localStorage, streamed replies over /v1/chat/completions, stop, settings, API key.
'use strict';

const $ = (id) => document.getElementById(id);
const store = {
  get: (k, d) => { try { return JSON.parse(localStorage.getItem('gemma-chat.' + k)) ?? d; } catch { return d; } },
  set: (k, v) => localStorage.setItem('gemma-chat.' + k, JSON.stringify(v)),
};

let conversation = store.get('conversation', []);  // [{role, content, state?}]
let controller = null;                              // the reply being streamed

function headers() {
  const h = { 'Content-Type': 'application/json' };
  const key = store.get('apiKey', '');
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

function showError(text) {
  const e = $('error');
  e.textContent = text;
  e.hidden = !text;
}

function messageNode(m) {
  const div = document.createElement('div');
  div.className = `msg ${m.role}`;
  const content = document.createElement('div');
  content.className = 'content';
  div.appendChild(content);
  fill(div, m);
  return div;
}

function fill(div, m) {
  const content = div.querySelector('.content');
  if (m.role === 'assistant') content.innerHTML = Markdown.render(m.content);
  else content.textContent = m.content;
  div.dataset.state = m.state || 'done';
}

function renderAll() {
  const box = $('messages');
  box.replaceChildren(...conversation.map(messageNode));
  box.scrollTop = box.scrollHeight;
}

function save() {
  store.set('conversation', conversation.map(({ role, content, state }) => ({ role, content, state: state === 'streaming' ? 'stopped' : state })));
}

function settings() {
  const num = (id, d) => { const v = parseFloat($(id).value); return Number.isFinite(v) ? v : d; };
  return {
    system: $('system').value,
    temperature: num('temperature', 0.8),
    top_p: num('top-p', 0.95),
    max_tokens: Math.round(num('max-tokens', 512)),
  };
}

function saveSettings() { store.set('settings', settings()); }

function loadSettings() {
  const s = store.get('settings', null);
  if (!s) return;
  $('system').value = s.system ?? '';
  $('temperature').value = s.temperature ?? 0.8;
  $('top-p').value = s.top_p ?? 0.95;
  $('max-tokens').value = s.max_tokens ?? 512;
}

function setBusy(busy) {
  $('send').disabled = busy;
  $('stop').disabled = !busy;
}

// The error an API call answered with, as one sentence for the page.
async function apiError(res) {
  let msg = `${res.status} ${res.statusText}`;
  try {
    const j = await res.json();
    if (j.error?.message) msg = `${res.status}: ${j.error.message}`;
  } catch { /* not JSON */ }
  return msg;
}

async function send(text) {
  const s = settings();
  conversation.push({ role: 'user', content: text });
  const reply = { role: 'assistant', content: '', state: 'streaming' };
  conversation.push(reply);
  renderAll();
  const node = $('messages').lastElementChild;
  showError('');
  setBusy(true);
  controller = new AbortController();
  const messages = [];
  if (s.system.trim()) messages.push({ role: 'system', content: s.system });
  for (const m of conversation.slice(0, -1)) if (m.content || m.role === 'user') messages.push({ role: m.role, content: m.content });
  try {
    const res = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(), signal: controller.signal,
      body: JSON.stringify({ messages, stream: true, temperature: s.temperature, top_p: s.top_p, max_tokens: s.max_tokens }),
    });
    if (res.status === 401) askKey('The API key was not accepted.');
    if (!res.ok) throw new Error(await apiError(res));
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const data = line.slice(6);
          if (data === '[DONE]') continue;
          const j = JSON.parse(data);
          if (j.error) throw new Error(j.error.message || 'the server reported an error');
          const delta = j.choices?.[0]?.delta?.content;
          if (delta) {
            reply.content += delta;
            fill(node, reply);
            $('messages').scrollTop = $('messages').scrollHeight;
          }
        }
      }
    }
    reply.state = 'done';
  } catch (e) {
    if (e.name === 'AbortError') {
      reply.state = 'stopped';
    } else {
      reply.state = 'error';
      showError(e.message || String(e));
      if (!reply.content) {  // nothing to keep: the question goes back into the box to send again
        conversation.splice(-2, 2);
        $('input').value = text;
      }
    }
  } finally {
    controller = null;
    setBusy(false);
    save();
    renderAll();
  }
}

function askKey(why) {
  $('key-error').textContent = why || '';
  $('key-error').hidden = !why;
  $('change-key').hidden = false;
  if (!$('key-dialog').open) $('key-dialog').showModal();
}

// The server says whether it needs a key: /v1/models answers 401 without a good one.
async function probe() {
  try {
    const res = await fetch('/v1/models', { headers: headers() });
    if (res.status === 401) {
      askKey(store.get('apiKey', '') ? 'The saved API key was not accepted.' : '');
      return;
    }
    if (res.ok) {
      const j = await res.json();
      $('model').textContent = j.data?.[0]?.id ?? '';
    } else {
      showError(await apiError(res));
    }
  } catch (e) {
    showError(`The server cannot be reached: ${e.message}`);
  }
}

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('input').value.trim();
  if (!text || controller) return;
  $('input').value = '';
  send(text);
});
$('input').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    $('composer').requestSubmit();
  }
});
$('stop').addEventListener('click', () => controller?.abort());
$('new-chat').addEventListener('click', () => {
  controller?.abort();
  conversation = [];
  save();
  renderAll();
  showError('');
  $('input').focus();
});
for (const id of ['system', 'temperature', 'top-p', 'max-tokens']) $(id).addEventListener('change', saveSettings);
$('key-form').addEventListener('submit', () => {
  store.set('apiKey', $('api-key').value.trim());
  probe();
});
$('change-key').addEventListener('click', () => askKey(''));

loadSettings();
renderAll();
probe();
