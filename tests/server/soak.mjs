// Soak client for scripts/soak_serve.sh: N concurrent clients of mixed good and bad requests against one local server.
// Usage: node soak.mjs --url http://127.0.0.1:PORT --pid PID [--seconds 300] [--clients 64] [--ctx 1024]
// Prints a summary (JSON) and exits 1 when a rule is broken: a 5xx on a valid request, a bad request not
// answered with a 4xx in OpenAI's error shape, RSS growth beyond 5 % after warm-up, a slot left busy.
import fs from 'node:fs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const url = args.url;
const pid = Number(args.pid);
const seconds = Number(args.seconds ?? 300);
const clients = Number(args.clients ?? 64);
const ctx = Number(args.ctx ?? 1024);
if (!url || !/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+$/.test(url)) throw new Error('--url must be a loopback address');
if (!pid) throw new Error('--pid of the server is needed (RSS)');

const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const textOnly = Object.fromEntries(Array.from({ length: 473 }, (_, i) => [String(i), -100]));

let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const pick = (n) => Math.floor(rand() * n);

const schema = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, n: { type: 'integer', minimum: 0, maximum: 99 }, tag: { enum: ['x', 'y'] } },
  required: ['ok', 'n', 'tag'], additionalProperties: false,
};

const kinds = [
  // [name, weight, valid, make(body) -> {path, body, stream, abortAfter}]
  ['chat', 24, true, () => ({ path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: `Question ${pick(1000)}` }], max_tokens: 1 + pick(48), seed: pick(1e6), logit_bias: textOnly } })],
  ['chat_stream', 24, true, () => ({ path: '/v1/chat/completions', stream: true, body: { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `Story ${pick(1000)}` }], max_tokens: 1 + pick(64), stream: true, logit_bias: textOnly } })],
  ['disconnect', 12, true, () => ({ path: '/v1/chat/completions', stream: true, abortAfter: 1 + pick(4), body: { messages: [{ role: 'user', content: 'Go on and on.' }], max_tokens: 400, stream: true, logit_bias: textOnly } })],
  ['completion', 10, true, () => ({ path: '/v1/completions', body: { prompt: `Once upon a time ${pick(100)}`, max_tokens: 1 + pick(32), logit_bias: textOnly } })],
  ['structured', 6, true, () => ({ path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 300, response_format: { type: 'json_schema', json_schema: { name: 's', schema } } } })],
  ['bad_json', 12, false, () => ({ path: '/v1/chat/completions', raw: '{"messages": [{"role": "user", "content": "unterminated' })],
  ['too_long', 12, false, () => ({ path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'word '.repeat(ctx + 50) }], max_tokens: 4 } })],
];
const totalWeight = kinds.reduce((s, k) => s + k[1], 0);
function chooseKind() {
  let r = rand() * totalWeight;
  for (const k of kinds) if ((r -= k[1]) < 0) return k;
  return kinds[0];
}

const stats = { requests: 0, by_kind: {}, statuses: {}, violations: [], latencies_ms: [], tokens: 0 };
const note = (kind, what) => {
  const k = (stats.by_kind[kind] ??= { sent: 0, ok: 0, client_errors: 0, server_errors: 0, disconnected: 0, network_errors: 0 });
  k[what]++;
};
const violation = (msg) => { if (stats.violations.length < 50) stats.violations.push(msg); };

function isOpenAIError(j) {
  return j && typeof j.error === 'object' && typeof j.error.message === 'string' && typeof j.error.type === 'string' && 'code' in j.error;
}

async function one(kind) {
  const [name, , valid, make] = kind;
  const req = make();
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new Error('timeout')), 180_000);
  const t0 = performance.now();
  const sentAt = Date.now();
  stats.requests++;
  note(name, 'sent');
  try {
    const res = await fetch(url + req.path, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, signal: ctrl.signal,
      body: req.raw ?? JSON.stringify(req.body),
    });
    stats.statuses[res.status] = (stats.statuses[res.status] ?? 0) + 1;
    if (!valid) {
      const j = await res.json().catch(() => null);
      if (res.status >= 400 && res.status < 500 && isOpenAIError(j)) note(name, 'client_errors');
      else { note(name, res.status >= 500 ? 'server_errors' : 'ok'); violation(`${name}: got ${res.status} ${JSON.stringify(j)?.slice(0, 200)}`); }
      return;
    }
    if (res.status >= 500) {
      note(name, 'server_errors');
      violation(`${name}: ${res.status} ${(await res.text()).slice(0, 200)}`);
      return;
    }
    if (res.status !== 200) {
      note(name, 'client_errors');
      violation(`${name}: valid request got ${res.status} ${(await res.text()).slice(0, 200)}`);
      return;
    }
    if (req.stream) {
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      let chunks = 0;
      let sawDone = false;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(6, cut);
          buf = buf.slice(cut + 2);
          if (ev === '[DONE]') { sawDone = true; continue; }
          const j = JSON.parse(ev);
          if (j.error) violation(`${name}: error event ${JSON.stringify(j.error).slice(0, 200)}`);
          if (j.usage) stats.tokens += j.usage.completion_tokens;
          chunks++;
        }
        if (req.abortAfter && chunks >= req.abortAfter) {
          ctrl.abort();
          note(name, 'disconnected');
          return;
        }
      }
      if (!sawDone) violation(`${name}: stream ended without [DONE]`);
    } else {
      const j = await res.json();
      stats.tokens += j.usage?.completion_tokens ?? 0;
      if (name === 'structured') {
        const v = JSON.parse(j.choices[0].message.content);
        if (typeof v.ok !== 'boolean' || !Number.isInteger(v.n) || !['x', 'y'].includes(v.tag)) violation(`structured: ${j.choices[0].message.content}`);
      }
    }
    note(name, 'ok');
    if (warmedAt !== null && sentAt >= warmedAt) stats.latencies_ms.push(performance.now() - t0);  // measured run only
  } catch (e) {
    if (ctrl.signal.aborted && req.abortAfter) return;
    note(name, 'network_errors');
    violation(`${name}: ${e.message}`);
  } finally {
    clearTimeout(timer);
  }
}

// Warm-up, part 1: fill every slot's KV cache to the end of its context once, so the pages of all caches
// are resident before RSS is measured (they are touched as positions are first used, which would otherwise
// look like growth for as long as longer replies keep turning up).
const slotCount = (await (await fetch(`${url}/slots`)).json()).length;
await Promise.all(Array.from({ length: slotCount }, async (_, i) => {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt: `Fill ${i}`, max_tokens: ctx, ignore_eos: true, logit_bias: textOnly }),
  });
  const j = await res.json();
  if (res.status !== 200 || j.choices[0].finish_reason !== 'length') violation(`warm-up fill: ${res.status} ${JSON.stringify(j).slice(0, 200)}`);
}));

// Part 2: the mixed load until RSS settles (HTTP threads reach their stack depths, malloc its arenas):
// at least 10 s, then until it grew less than 1 % over the last 10 s (at most 60 s). Then the measured run.
const start = Date.now();
let endAt = Infinity;
let rssWarm = null;
let warmedAt = null;
const rssStart = rssKiB();
const timeline = [];
const recent = [];
const monitor = setInterval(() => {
  const now = Date.now();
  const rss = rssKiB();
  recent.push([now, rss]);
  while (recent.length && recent[0][0] < now - 10_000) recent.shift();
  if ((now - start) % 5000 < 1000) timeline.push([Math.round((now - start) / 1000), rss]);
  if (rssWarm === null && now - start >= 10_000 &&
      (rss < recent[0][1] * 1.01 || now - start >= 60_000)) {
    rssWarm = rss;
    warmedAt = now;
    endAt = now + seconds * 1000;
  }
}, 1000);

async function worker() {
  while (Date.now() < endAt) await one(chooseKind());
}
await Promise.all(Array.from({ length: clients }, worker));
clearInterval(monitor);

// No slot may stay busy once the clients are gone.
let idle = false;
for (let i = 0; i < 100 && !idle; i++) {
  const slots = await (await fetch(`${url}/slots`)).json();
  idle = slots.every((s) => !s.is_processing);
  if (!idle) await sleep(100);
}
if (!idle) violation('a slot is still busy after the run');
const rssEnd = rssKiB();
const growth = (rssEnd - rssWarm) / rssWarm;
if (growth > 0.05) violation(`RSS grew ${(100 * growth).toFixed(1)} % after warm-up (${rssWarm} -> ${rssEnd} KiB)`);

const lat = stats.latencies_ms.sort((a, b) => a - b);
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0);
const summary = {
  seconds, warmup_s: Math.round((warmedAt - start) / 1000), clients, requests: stats.requests, tokens_generated: stats.tokens, statuses: stats.statuses,
  by_kind: stats.by_kind, rss_kib: { after_fill: rssStart, after_warmup: rssWarm, end: rssEnd, growth_pct: +(100 * growth).toFixed(2), timeline },
  latency_ms: { p50: +pct(0.5).toFixed(1), p99: +pct(0.99).toFixed(1), n: lat.length }, violations: stats.violations,
};
console.log(JSON.stringify(summary, null, 2));
console.log(stats.violations.length ? 'soak: FAIL' : 'soak: PASS');
process.exit(stats.violations.length ? 1 : 0);
