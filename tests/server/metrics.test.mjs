// /metrics parses as Prometheus text (parse-prometheus-text-format) and its counters and gauges move with the traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

const url = process.env.GEMMA_SERVER_URL;
const apiKey = process.env.GEMMA_API_KEY;
if (!url || !apiKey) throw new Error('set GEMMA_SERVER_URL and GEMMA_API_KEY');
const auth = { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' };

async function scrape() {
  const res = await fetch(`${url}/metrics`, { headers: auth });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(await res.text());
  const byName = Object.fromEntries(families.map((f) => [f.name, f]));
  const value = (name, labels = {}) => {
    const f = byName[name];
    assert.ok(f, `missing metric ${name}`);
    const m = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
    if (!m) return 0;
    return Number(m.value ?? m.count);
  };
  return { byName, value };
}

const chatBody = (extra = {}) => JSON.stringify({
  messages: [{ role: 'user', content: 'Count the stars.' }], max_tokens: 16, seed: 3, ...extra,
});

test('every family has the right type', async () => {
  const { byName } = await scrape();
  const want = {
    gemma_requests_total: 'COUNTER', gemma_prompt_tokens_total: 'COUNTER', gemma_generated_tokens_total: 'COUNTER',
    gemma_tokens_per_second: 'GAUGE', gemma_queue_depth: 'GAUGE', gemma_slots_busy: 'GAUGE', gemma_slots_total: 'GAUGE',
    gemma_kv_cells_used: 'GAUGE', gemma_kv_cells_total: 'GAUGE', gemma_requests_in_flight: 'GAUGE',
    gemma_time_to_first_token_seconds: 'HISTOGRAM', gemma_request_duration_seconds: 'HISTOGRAM',
  };
  for (const [name, type] of Object.entries(want)) assert.equal(byName[name]?.type, type, name);
  assert.equal(Number(byName.gemma_slots_total.metrics[0].value), 2);
});

test('counters move as requests are served', async () => {
  const a = await scrape();
  const route = { route: '/v1/chat/completions', status: '200' };
  const r1 = await (await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: auth, body: chatBody() })).json();
  const r2 = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: auth, body: chatBody({ stream: true }) });
  await r2.text();
  const bad = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: auth, body: '{"messages": [' });
  assert.equal(bad.status, 400);
  const b = await scrape();
  assert.equal(b.value('gemma_requests_total', route) - a.value('gemma_requests_total', route), 2);
  const bad400 = { route: '/v1/chat/completions', status: '400' };
  assert.equal(b.value('gemma_requests_total', bad400) - a.value('gemma_requests_total', bad400), 1);
  assert.ok(b.value('gemma_generated_tokens_total') - a.value('gemma_generated_tokens_total') >= r1.usage.completion_tokens);
  assert.ok(b.value('gemma_prompt_tokens_total') > a.value('gemma_prompt_tokens_total') ||
            r1.usage.prompt_tokens_details.cached_tokens > 0);
  const count = (s, name) => Number(s.byName[name].metrics[0].count);
  assert.equal(count(b, 'gemma_time_to_first_token_seconds') - count(a, 'gemma_time_to_first_token_seconds'), 2);
  assert.equal(count(b, 'gemma_request_duration_seconds') - count(a, 'gemma_request_duration_seconds'), 2);
  assert.ok(b.value('gemma_tokens_per_second') >= 0);
  const scrapes = { route: '/metrics', status: '200' };
  assert.ok(b.value('gemma_requests_total', scrapes) >= 2);
});

test('gauges show a running request', async () => {
  const ctrl = new AbortController();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST', headers: auth, signal: ctrl.signal, body: chatBody({ stream: true, max_tokens: -1 }),
  });
  const reader = res.body.getReader();
  await reader.read();
  let busy = 0;
  let kv = 0;
  let inFlight = 0;
  for (let i = 0; i < 50 && !(busy >= 1 && kv > 0); i++) {
    const s = await scrape();
    busy = s.value('gemma_slots_busy');
    kv = s.value('gemma_kv_cells_used');
    inFlight = s.value('gemma_requests_in_flight');
  }
  assert.ok(busy >= 1, 'slots_busy');
  assert.ok(kv > 0, 'kv_cells_used');
  assert.ok(inFlight >= 1, 'requests_in_flight');
  ctrl.abort();
  for (let i = 0; i < 100; i++) {
    if ((await scrape()).value('gemma_slots_busy') === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail('the slot stayed busy after the client left');
});
