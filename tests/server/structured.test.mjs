// Structured outputs through the official openai client: replies of a random-weight model validate (ajv) against their schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Ajv from 'ajv';

const url = process.env.GEMMA_SERVER_URL;
const apiKey = process.env.GEMMA_API_KEY;
const modelId = process.env.GEMMA_MODEL_ID;
if (!url || !apiKey || !modelId) throw new Error('set GEMMA_SERVER_URL, GEMMA_API_KEY and GEMMA_MODEL_ID');

const client = new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0, timeout: 300_000 });
const ajv = new Ajv({ strict: false, allErrors: true });

const messages = [{ role: 'user', content: 'Describe a person as JSON.' }];

// Bounded everywhere (strings, arrays, integers, nesting) so a random model reaches the end within max_tokens.
const schemas = {
  person: {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 12 },
      age: { type: 'integer', minimum: 0, maximum: 120 },
      role: { enum: ['admin', 'user', 'guest'] },
      active: { type: 'boolean' },
      address: {
        type: 'object',
        properties: { city: { type: 'string', minLength: 1, maxLength: 10 }, zip: { type: 'string', pattern: '^[0-9]{5}$' } },
        required: ['city', 'zip'],
        additionalProperties: false,
      },
      tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, minItems: 1, maxItems: 3 },
      nickname: { type: 'string', maxLength: 6 },
    },
    required: ['name', 'age', 'role', 'active', 'address', 'tags'],
    additionalProperties: false,
  },
  refs: {
    $defs: {
      point: {
        type: 'object',
        properties: { x: { type: 'integer', minimum: -50, maximum: 50 }, y: { type: 'integer', minimum: -50, maximum: 50 } },
        required: ['x', 'y'],
        additionalProperties: false,
      },
    },
    type: 'object',
    properties: {
      start: { $ref: '#/$defs/point' },
      path: { type: 'array', items: { $ref: '#/$defs/point' }, maxItems: 3 },
      label: { anyOf: [{ type: 'string', maxLength: 8 }, { type: 'null' }] },
      kind: { const: 'route' },
    },
    required: ['start', 'path', 'label', 'kind'],
    additionalProperties: false,
  },
  pattern: {
    type: 'object',
    properties: { code: { type: 'string', pattern: '^[a-z]{2,6}-\\d{2}$' }, count: { type: 'integer', exclusiveMinimum: 10, maximum: 9999 } },
    required: ['code', 'count'],
    additionalProperties: false,
  },
};

const format = (name) => ({ type: 'json_schema', json_schema: { name, schema: schemas[name], strict: true } });

function validate(name, text) {
  let value;
  assert.doesNotThrow(() => { value = JSON.parse(text); }, `not JSON: ${JSON.stringify(text)}`);
  const ok = ajv.validate(schemas[name], value);
  assert.ok(ok, `${name}: ${ajv.errorsText()} in ${text}`);
  return value;
}

test('unconstrained output of the random model is not JSON', async () => {
  const r = await client.chat.completions.create({ model: modelId, messages, max_tokens: 60, seed: 1 });
  assert.throws(() => JSON.parse(r.choices[0].message.content));
});

for (const name of Object.keys(schemas)) {
  test(`json_schema ${name}: every seed gives valid JSON for the schema`, async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({
        model: modelId, messages, max_tokens: 1500, seed, temperature: 1.0, response_format: format(name),
      });
      assert.equal(r.choices[0].finish_reason, 'stop', `seed ${seed}: ${r.choices[0].message.content}`);
      validate(name, r.choices[0].message.content);
    }
  });
}

test('json_schema streamed and on /v1/completions', async () => {
  const stream = await client.chat.completions.create({
    model: modelId, messages, max_tokens: 1500, seed: 4, response_format: format('person'), stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  validate('person', text);
  const c = await client.completions.create({
    model: modelId, prompt: 'JSON:', max_tokens: 1500, seed: 5, response_format: format('refs'),
  });
  validate('refs', c.choices[0].text);
});

test('json_object: a JSON object', async () => {
  // A random model rarely closes a free string: favour the closing bytes (", }, ]) so replies end in time.
  const logit_bias = { 251: 6, 342: 6, 310: 6 };
  for (const seed of [1, 2]) {
    const r = await client.chat.completions.create({
      model: modelId, messages, max_tokens: 1500, seed, logit_bias, response_format: { type: 'json_object' },
    });
    const text = r.choices[0].message.content;
    assert.equal(r.choices[0].finish_reason, 'stop', text);
    const v = JSON.parse(text);
    assert.equal(typeof v, 'object');
    assert.ok(v !== null && !Array.isArray(v));
  }
});

test('unsupported schema features and bad response_format are 400s naming the problem', async () => {
  const bad = async (response_format, what) => {
    await assert.rejects(client.chat.completions.create({ model: modelId, messages, max_tokens: 5, response_format }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.match(e.message, what);
      return true;
    });
  };
  const schema = (s) => ({ type: 'json_schema', json_schema: { name: 'x', schema: s } });
  await bad(schema({ oneOf: [{ type: 'string' }] }), /'oneOf'/);
  await bad(schema({ type: 'object', properties: { d: { type: 'string', format: 'date' } } }), /'format'.*#\/properties\/d|#\/properties\/d.*'format'/);
  await bad(schema({ type: 'number', minimum: 1 }), /'minimum'/);
  await bad(schema({ type: 'string', pattern: '(?=x)' }), /lookaround/);
  await bad(schema({ $ref: '#/$defs/nope' }), /does not exist/);
  await bad({ type: 'xml' }, /response_format\.type/);
  await bad({ type: 'json_schema' }, /json_schema/);
  // ... and the server keeps serving.
  const r = await client.chat.completions.create({ model: modelId, messages, max_tokens: 1500, seed: 9, response_format: format('pattern') });
  validate('pattern', r.choices[0].message.content);
});
