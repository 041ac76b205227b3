// The official openai npm client against a live `gemma serve` (GEMMA_SERVER_URL, GEMMA_API_KEY, GEMMA_MODEL_ID).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const url = process.env.GEMMA_SERVER_URL;
const apiKey = process.env.GEMMA_API_KEY;
const modelId = process.env.GEMMA_MODEL_ID;
if (!url || !apiKey || !modelId) {
  throw new Error('set GEMMA_SERVER_URL, GEMMA_API_KEY and GEMMA_MODEL_ID (tests/e2e/test_server_openai.cpp does)');
}

// maxRetries 0: an error must surface as the typed error, not be retried away.
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0, timeout: 120_000 });

// The test model is random: keep sampling to ordinary text pieces (ids below 473 of the 1024-token
// vocabulary are control, added and byte tokens), so the text is plain and stop strings are easy to find.
const textOnly = {};
for (let id = 0; id < 473; id++) textOnly[String(id)] = -100;

const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me about the quick brown fox.' },
];

function chat(extra = {}) {
  return client.chat.completions.create({
    model: modelId, messages, max_tokens: 12, seed: 7, temperature: 1.0, logit_bias: textOnly, ...extra,
  });
}

async function collectStream(stream) {
  let text = '';
  let finish = null;
  let usage = null;
  let role = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta?.role) role = c.delta.role;
      if (c.delta?.content) text += c.delta.content;
      if (typeof c.text === 'string') text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish, usage, role };
}

test('models list names the served model', async () => {
  const page = await client.models.list();
  assert.equal(page.data.length, 1);
  assert.equal(page.data[0].id, modelId);
  assert.equal(page.data[0].object, 'model');
});

test('chat completion, not streamed: message, finish_reason, usage', async () => {
  const r = await chat();
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 10);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.ok(r.timings.predicted_n >= 1, 'llama-server timings');
});

test('chat completion, streamed: same text as unstreamed, usage chunk with include_usage', async () => {
  const whole = await chat();
  const stream = await chat({ stream: true, stream_options: { include_usage: true } });
  const s = await collectStream(stream);
  assert.equal(s.role, 'assistant');
  assert.equal(s.text, whole.choices[0].message.content);
  assert.equal(s.finish, whole.choices[0].finish_reason);
  assert.ok(s.usage, 'usage chunk');
  assert.equal(s.usage.completion_tokens, whole.usage.completion_tokens);
  assert.equal(s.usage.prompt_tokens, whole.usage.prompt_tokens);
});

test('completions (raw prompt), streamed and not', async () => {
  const args = { model: modelId, prompt: 'Once upon a time', max_tokens: 10, seed: 3, logit_bias: textOnly };
  const r = await client.completions.create(args);
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 10);
  const s = await collectStream(await client.completions.create({ ...args, stream: true }));
  assert.equal(s.text, r.choices[0].text);
  assert.equal(s.finish, 'length');
});

test('a seed reproduces the text; another seed does not', async () => {
  const a = await chat({ max_tokens: 16, seed: 11 });
  const b = await chat({ max_tokens: 16, seed: 11 });
  const c = await chat({ max_tokens: 16, seed: 12 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
});

test('stop strings end the text before them, across token boundaries', async () => {
  const full = (await chat({ max_tokens: 24, seed: 5 })).choices[0].message.content;
  assert.ok(full.length > 12, `need some text, got ${JSON.stringify(full)}`);
  // A stop taken from the middle of the text: whatever the token boundaries, the reply ends before it.
  const stop = full.slice(6, 9);
  const cut = full.slice(0, full.indexOf(stop));
  const r = await chat({ max_tokens: 24, seed: 5, stop: [stop, 'never-in-this-text'] });
  assert.equal(r.choices[0].message.content, cut);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const s = await collectStream(await chat({ max_tokens: 24, seed: 5, stop, stream: true }));
  assert.equal(s.text, cut);
  assert.equal(s.finish, 'stop');
});

test('chat logprobs: token, logprob, bytes, top_logprobs', async () => {
  const r = await chat({ logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  assert.equal(content.map((t) => t.token).join(''), r.choices[0].message.content);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.deepEqual(t.bytes, [...Buffer.from(t.token, 'utf8')]);
    assert.equal(t.top_logprobs.length, 3);
    for (let i = 1; i < 3; i++) assert.ok(t.top_logprobs[i - 1].logprob >= t.top_logprobs[i].logprob);
  }
});

test('completions logprobs: the legacy shape', async () => {
  const r = await client.completions.create({
    model: modelId, prompt: 'Hello', max_tokens: 5, seed: 1, logprobs: 2, logit_bias: textOnly,
  });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 5);
  assert.equal(lp.token_logprobs.length, 5);
  assert.equal(lp.top_logprobs.length, 5);
  assert.equal(lp.text_offset.length, 5);
  assert.equal(lp.text_offset[0], 0);
  assert.equal(lp.tokens.join(''), r.choices[0].text);
  for (const top of lp.top_logprobs) assert.ok(Object.keys(top).length >= 1 && Object.keys(top).length <= 2);
});

test('errors arrive as the client\'s typed errors', async () => {
  await assert.rejects(client.chat.completions.create({ model: modelId, messages: [] }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.status, 400);
    assert.equal(e.type, 'invalid_request_error');
    return true;
  });
  await assert.rejects(chat({ max_tokens: 'many' }), OpenAI.BadRequestError);
  await assert.rejects(
    chat({ messages: [{ role: 'user', content: 'word '.repeat(3000) }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded' && /maximum context length/.test(e.message),
  );
  const wrongKey = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'not-the-key', maxRetries: 0 });
  await assert.rejects(wrongKey.models.list(), OpenAI.AuthenticationError);
  await assert.rejects(client.models.retrieve('no-such-model'), OpenAI.NotFoundError);
  // ... and the server keeps serving.
  assert.equal((await chat({ max_tokens: 2 })).choices.length, 1);
});
