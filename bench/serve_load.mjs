#!/usr/bin/env node
// Load driver for `gemma serve` (or any OpenAI-compatible server): N concurrent streams, aggregate tokens/s and TTFT.
//
//   node bench/serve_load.mjs --url http://127.0.0.1:8080 --streams 1,4,8 --tokens 64
//
// Each level starts N streamed chat completions at once (different seeds, ignore_eos so each one runs
// exactly --tokens tokens), parses the server-sent events with fetch, and reports:
//   aggregate tok/s  = all completion tokens / wall time from the first request to the last [DONE]
//   per-stream tok/s = each stream's tokens after its first one / time from its first token to its end
//   TTFT             = time from sending a request to its first content chunk (median and max)

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
    return acc;
  }, []),
);
const url = args.url ?? 'http://127.0.0.1:8080';
const levels = (args.streams ?? '1,4,8').split(',').map(Number);
const tokens = Number(args.tokens ?? 64);
const apiKey = args['api-key'] ?? process.env.GEMMA_API_KEY;
const prompt = args.prompt ?? 'Write a long story about a lighthouse keeper and the sea.';
const warmup = args.warmup !== 'false';

async function oneStream(seed) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(apiKey ? { Authorization: `Bearer ${apiKey}` } : {}) },
    body: JSON.stringify({
      messages: [{ role: 'user', content: prompt }],
      max_tokens: tokens, seed, temperature: 1.0, ignore_eos: true, stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let buf = '';
  let first = null;
  let usage = null;
  let timings = null;
  for await (const part of res.body) {
    buf += decoder.decode(part, { stream: true });
    let e;
    while ((e = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, e);
      buf = buf.slice(e + 2);
      if (!ev.startsWith('data: ')) continue;
      const data = ev.slice(6);
      if (data === '[DONE]') continue;
      const j = JSON.parse(data);
      if (j.error) throw new Error(j.error.message);
      if (j.usage) usage = j.usage;
      if (j.timings) timings = j.timings;
      const c = j.choices?.[0];
      if (first === null && c && !c.delta?.role && (c.delta?.content || c.finish_reason)) first = performance.now();
    }
  }
  const t1 = performance.now();
  return { t0, first: first ?? t1, t1, n: usage?.completion_tokens ?? 0, timings };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

async function level(n) {
  const start = performance.now();
  const runs = await Promise.all(Array.from({ length: n }, (_, i) => oneStream(1000 + i)));
  const wall = (Math.max(...runs.map((r) => r.t1)) - start) / 1e3;
  const total = runs.reduce((a, r) => a + r.n, 0);
  const ttft = runs.map((r) => r.first - r.t0);
  const per = runs.map((r) => (r.n > 1 ? (r.n - 1) / ((r.t1 - r.first) / 1e3) : 0));
  return { n, total, wall, agg: total / wall, ttftMed: median(ttft), ttftMax: Math.max(...ttft), perMed: median(per) };
}

if (warmup) await oneStream(1);  // page the weights in before anything is timed
console.log(`${url}  ${tokens} tokens per stream`);
console.log('streams  tokens   wall s   aggregate tok/s   per-stream tok/s   TTFT median ms   TTFT max ms');
for (const n of levels) {
  const r = await level(n);
  console.log(
    `${String(r.n).padStart(7)}  ${String(r.total).padStart(6)}  ${r.wall.toFixed(2).padStart(7)}  ` +
      `${r.agg.toFixed(2).padStart(16)}  ${r.perMed.toFixed(2).padStart(17)}  ${r.ttftMed.toFixed(0).padStart(15)}  ` +
      `${r.ttftMax.toFixed(0).padStart(12)}`,
  );
}
