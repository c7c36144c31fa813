// The official `openai` SDK against a gateway that requires virtual keys:
// it must see 401, 403 and 429 with OpenAI's error fields and headers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { kube, startGateway } from './gateway.mjs';

// Under the Kubernetes controller keys are VirtualKey objects and there is
// no key admin API to generate them (the replicas take keys from the
// controller only), so this suite cannot run there; test/kube covers
// keys issued by the controller.
const noKeyAdmin = kube && 'WEIR_STACK=kube: no key admin API under the controller (keys are VirtualKeys; see test/kube)';

const master = 'mk-sdk-test-4e8a2c6f0b9d41736e5a8c2f0d4b7e19';
let gw;
const keys = {};

async function generate(body) {
  const r = await fetch(`${gw.keyAdmin}/key/generate`, {
    method: 'POST', headers: { authorization: `Bearer ${master}` }, body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).key;
}

// A new key reaches the gateway's keyring through the store's change
// feed; wait for that by asking until the key is known (no timers).
async function ready(key) {
  const c = new OpenAI({ baseURL: gw.baseURL, apiKey: key, maxRetries: 0 });
  for (let i = 0; i < 200; i++) {
    try {
      await c.models.list();
      return;
    } catch (e) {
      if (e.status !== 401) throw e;
    }
  }
  throw new Error('key never became valid');
}

before(async () => {
  if (noKeyAdmin) return;
  gw = await startGateway({ masterKey: master });
  keys.mini = await generate({ models: ['gpt-4o-mini'], rpm_limit: 1 });
  for (const k of Object.values(keys)) await ready(k);
});
after(async () => gw?.stop());

const client = (apiKey) => new OpenAI({ baseURL: gw.baseURL, apiKey, maxRetries: 0 });
const ask = (c, model) => c.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

describe('virtual keys through the openai SDK', { skip: noKeyAdmin }, () => {
  test('401 for an unknown key', async () => {
    await assert.rejects(ask(client('sk-weir-unknownunknownunknownunknownunknownunk'), 'gpt-4o-mini'), (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError);
      assert.equal(err.status, 401);
      assert.equal(err.type, 'authentication_error');
      assert.equal(err.code, 'invalid_api_key');
      return true;
    });
  });

  test('403 for a model the key may not use', async () => {
    await assert.rejects(ask(client(keys.mini), 'claude-sonnet-4-5'), (err) => {
      assert.ok(err instanceof OpenAI.PermissionDeniedError);
      assert.equal(err.type, 'permission_error');
      assert.match(err.message, /claude-sonnet-4-5/);
      return true;
    });
  });

  test('429 with Retry-After and rate-limit headers once the RPM is spent', async () => {
    const c = client(keys.mini);
    const ok = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(ok.response.headers.get('x-ratelimit-limit-requests'), '1');
    assert.equal(ok.response.headers.get('x-ratelimit-remaining-requests'), '0');
    await assert.rejects(ask(c, 'gpt-4o-mini'), (err) => {
      assert.ok(err instanceof OpenAI.RateLimitError);
      assert.equal(err.code, 'rate_limit_exceeded');
      assert.match(err.message, /key rpm/);
      const ra = Number(err.headers.get('retry-after'));
      assert.ok(ra >= 1 && ra <= 60, `retry-after ${ra}`);
      return true;
    });
  });
});
