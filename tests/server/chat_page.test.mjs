// The chat page at / in headless Chromium (puppeteer-core): API key, streaming, stop, errors, saved conversation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const url = process.env.GEMMA_SERVER_URL;
const apiKey = process.env.GEMMA_API_KEY;
const modelId = process.env.GEMMA_MODEL_ID;
const screenshot = process.env.GEMMA_SCREENSHOT;  // where to save a picture of the page (optional)
if (!url || !apiKey || !modelId) throw new Error('set GEMMA_SERVER_URL, GEMMA_API_KEY and GEMMA_MODEL_ID');

let browser;
let page;
let profile;

before(async () => {
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'gemma-chrome-'));
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 760 });
  // The random test model: keep it to plain text pieces (ids below 473 are control, added and byte tokens),
  // so every streamed piece shows on the page. The page's own request is otherwise sent as it is.
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (req.url().endsWith('/v1/chat/completions') && req.method() === 'POST') {
      const body = JSON.parse(req.postData());
      body.logit_bias = Object.fromEntries(Array.from({ length: 473 }, (_, i) => [String(i), -100]));
      body.seed = 42;
      req.continue({ postData: JSON.stringify(body) });
    } else {
      req.continue();
    }
  });
});

after(async () => {
  await browser?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

const lastReply = () => page.$eval('#messages .msg.assistant:last-child', (n) => ({
  state: n.dataset.state, text: n.querySelector('.content').textContent,
}));

async function setField(id, value) {
  await page.$eval(id, (el, v) => { el.value = v; el.dispatchEvent(new Event('change')); }, String(value));
}

async function sendMessage(text) {
  await page.type('#input', text);
  await page.click('#send');
  await page.waitForSelector('#messages .msg.assistant:last-child');
}

test('the page loads, asks for the API key and shows the model', async () => {
  await page.goto(url + '/', { waitUntil: 'load' });
  assert.equal(await page.title(), 'gemma chat');
  await page.waitForSelector('#key-dialog[open]', { timeout: 10_000 });
  await page.type('#api-key', apiKey);
  await page.click('#key-save');
  await page.waitForFunction((id) => document.querySelector('#model').textContent === id, { timeout: 10_000 }, modelId);
  assert.equal(await page.$eval('#key-dialog', (d) => d.open), false);
});

test('a reply streams into the page', async () => {
  await page.click('#settings summary');
  await setField('#system', 'You are terse.');
  await setField('#max-tokens', 400);
  // Record every change of the reply's text while it streams, in the page itself.
  await page.evaluate(() => {
    window.__updates = [];
    const box = document.querySelector('#messages');
    new MutationObserver(() => {
      const n = box.querySelector('.msg.assistant:last-child');
      if (n && n.dataset.state === 'streaming') {
        const t = n.querySelector('.content').textContent;
        if (window.__updates.at(-1) !== t) window.__updates.push(t);
      }
    }).observe(box, { subtree: true, childList: true, characterData: true, attributes: true });
  });
  await sendMessage('Tell me about **markdown** and `code`.');
  await page.waitForFunction(() => document.querySelector('#messages .msg.assistant:last-child').dataset.state === 'done',
    { timeout: 120_000 });
  const updates = await page.evaluate(() => window.__updates);
  const final = await lastReply();
  assert.ok(final.text.length > 20, `reply: ${JSON.stringify(final.text)}`);
  // Streaming: many partial texts, each a prefix of the next, before the reply was done.
  assert.ok(updates.length >= 5, `only ${updates.length} partial renderings: the page did not stream`);
  for (let i = 1; i < updates.length; i++) assert.ok(updates[i].length >= updates[i - 1].length);
  assert.ok(updates[0].length < final.text.length);
  // The user's message is shown as typed, the Markdown in it is not interpreted.
  const user = await page.$eval('#messages .msg.user', (n) => n.textContent);
  assert.equal(user, 'Tell me about **markdown** and `code`.');
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: false });
});

test('Markdown renders code blocks and inline marks, escaping HTML', async () => {
  const html = await page.evaluate(() => Markdown.render('# T\n\nSome **bold** and `x<y>`\n\n```js\nlet a = "<b>";\n```\n- one\n- two'));
  assert.match(html, /<h1>T<\/h1>/);
  assert.match(html, /<strong>bold<\/strong>/);
  assert.match(html, /<code>x&lt;y&gt;<\/code>/);
  assert.match(html, /<pre><code class="language-js">let a = &quot;&lt;b&gt;&quot;;<\/code><\/pre>/);
  assert.match(html, /<ul>\n<li>one<\/li>\n<li>two<\/li>\n<\/ul>/);
});

test('stop ends the reply and frees the slot', async () => {
  await setField('#max-tokens', 100000);
  await sendMessage('Go on forever.');
  await page.waitForFunction(() => {
    const n = document.querySelector('#messages .msg.assistant:last-child');
    return n.dataset.state === 'streaming' && n.querySelector('.content').textContent.length > 10;
  }, { timeout: 60_000 });
  await page.click('#stop');
  await page.waitForFunction(() => document.querySelector('#messages .msg.assistant:last-child').dataset.state === 'stopped',
    { timeout: 10_000 });
  const a = await lastReply();
  await new Promise((r) => setTimeout(r, 500));
  const b = await lastReply();
  assert.equal(b.text, a.text, 'text kept growing after stop');
  assert.equal(await page.$eval('#send', (e) => e.disabled), false);
  // The server noticed the client leaving: no slot stays busy.
  const idle = await page.evaluate(async (key) => {
    for (let i = 0; i < 100; i++) {
      const slots = await (await fetch('/slots', { headers: { Authorization: `Bearer ${key}` } })).json();
      if (slots.every((s) => !s.is_processing)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }, apiKey);
  assert.ok(idle, 'a slot is still busy after stop');
});

test('an error from the server is shown clearly', async () => {
  await setField('#max-tokens', 50);
  await setField('#temperature', 5e6);  // beyond the server's limit: 400
  await page.type('#input', 'This request is refused.');
  await page.click('#send');
  await page.waitForSelector('#error:not([hidden])', { timeout: 10_000 });
  const err = await page.$eval('#error', (e) => e.textContent);
  assert.match(err, /^400: .*temperature/);
  // The question is back in the box, nothing half-made stays in the conversation.
  assert.equal(await page.$eval('#input', (e) => e.value), 'This request is refused.');
  await setField('#temperature', 0.8);
});

test('the conversation survives a reload; New chat clears it', async () => {
  const before = await page.$$eval('#messages .msg', (ns) => ns.length);
  assert.ok(before >= 4);
  await page.reload({ waitUntil: 'load' });
  await page.waitForFunction((id) => document.querySelector('#model').textContent === id, { timeout: 10_000 }, modelId);
  assert.equal(await page.$$eval('#messages .msg', (ns) => ns.length), before);
  assert.equal(await page.$eval('#temperature', (e) => e.value), '0.8');
  await page.click('#new-chat');
  assert.equal(await page.$$eval('#messages .msg', (ns) => ns.length), 0);
});
