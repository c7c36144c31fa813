// The official `@anthropic-ai/sdk` against `weir dev`'s /v1/messages, for
// every provider of the embedded default config. Anthropic-family backends
// (Anthropic, Bedrock with a Claude model, Vertex rawPredict) get the
// request in Anthropic's own format; the others get it translated to the
// OpenAI shape, and the answer back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { kube, startGateway } from './gateway.mjs';

// Under the controller every key's model list is explicit (the models of
// its routes), and the key's check runs before the model lookup, so an
// unknown model is a 403 (this key may not use the model) there, never
// the 404 these tests assert.
const unknownModelSkip = kube && 'WEIR_STACK=kube: a VirtualKey lists its models, so an unknown model is refused by the key check (403) before the lookup (404)';

let gw;
let client;
before(async () => {
  gw = await startGateway();
  // The SDK appends /v1/messages to the base URL itself.
  client = new Anthropic({ baseURL: gw.url, apiKey: gw.apiKey, maxRetries: 0 });
});
after(async () => gw?.stop());

const weatherTool = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

const models = [
  'claude-sonnet-4-5',
  'gpt-4o-mini',
  'azure-gpt-4o-mini',
  'gemini-2.5-flash',
  'bedrock-claude-sonnet-4-5',
  'bedrock-nova-lite',
  'bedrock-invoke-claude-sonnet-4-5',
  'vertex-gemini-2.5-flash',
  'vertex-claude-sonnet-4-5',
];

for (const model of models) {
  describe(`messages via ${model}`, () => {
    test('plain reply with usage', async () => {
      const m = await client.messages.create({
        model, max_tokens: 64, system: 'Be brief.',
        messages: [{ role: 'user', content: 'hello there' }],
      });
      assert.equal(m.type, 'message');
      assert.equal(m.role, 'assistant');
      assert.equal(m.model, model);
      assert.equal(m.stop_reason, 'end_turn');
      assert.match(m.content[0].text, /You said: hello there/);
      assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
    });

    test('stream', async () => {
      const events = [];
      const stream = client.messages.stream({
        model, max_tokens: 64, messages: [{ role: 'user', content: 'stream it' }],
      });
      stream.on('streamEvent', (e) => events.push(e.type));
      const m = await stream.finalMessage();
      assert.match(m.content[0].text, /You said: stream it/);
      assert.equal(m.stop_reason, 'end_turn');
      assert.ok(m.usage.output_tokens > 0);
      assert.equal(events[0], 'message_start');
      assert.equal(events.at(-1), 'message_stop');
    });

    test('tool use, then the result', async () => {
      const m = await client.messages.create({
        model, max_tokens: 64, tools: [weatherTool],
        messages: [{ role: 'user', content: 'weather in Paris?' }],
      });
      assert.equal(m.stop_reason, 'tool_use');
      const use = m.content.find((b) => b.type === 'tool_use');
      assert.equal(use.name, 'get_weather');
      assert.deepEqual(use.input, { city: 'test' });
      const m2 = await client.messages.create({
        model, max_tokens: 64, tools: [weatherTool],
        messages: [
          { role: 'user', content: 'weather in Paris?' },
          { role: 'assistant', content: m.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] },
        ],
      });
      assert.equal(m2.stop_reason, 'end_turn');
      assert.equal(m2.content[0].type, 'text');
    });

    test('streamed tool use', async () => {
      const m = await client.messages.stream({
        model, max_tokens: 64, tools: [weatherTool],
        messages: [{ role: 'user', content: 'weather?' }],
      }).finalMessage();
      const use = m.content.find((b) => b.type === 'tool_use');
      assert.equal(use.name, 'get_weather');
      assert.deepEqual(use.input, { city: 'test' });
    });

    test('upstream 429 is an Anthropic rate_limit_error', async () => {
      await assert.rejects(
        client.messages.create(
          { model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
          { headers: { 'x-fake-behavior': 'status=429' } },
        ),
        (err) => {
          assert.equal(err.status, 429);
          assert.equal(err.error?.type, 'error');
          assert.equal(err.error?.error?.type, 'rate_limit_error');
          return true;
        },
      );
    });
  });
}

// Served natively: what the OpenAI shape cannot carry reaches the client.
const nativeModels = [
  'claude-sonnet-4-5',
  'bedrock-claude-sonnet-4-5',
  'bedrock-invoke-claude-sonnet-4-5',
  'vertex-claude-sonnet-4-5',
];

for (const model of nativeModels) {
  describe(`native messages via ${model}`, () => {
    test('stop_sequence', async () => {
      const m = await client.messages.create({
        model, max_tokens: 64, stop_sequences: ['STOP'],
        messages: [{ role: 'user', content: 'please STOP here' }],
      });
      assert.equal(m.stop_reason, 'stop_sequence');
      assert.equal(m.stop_sequence, 'STOP');
      assert.match(m.content[0].text, /You said: please\s*$/);
    });

    test('stop_sequence in a stream', async () => {
      const m = await client.messages.stream({
        model, max_tokens: 64, stop_sequences: ['STOP'],
        messages: [{ role: 'user', content: 'please STOP here' }],
      }).finalMessage();
      assert.equal(m.stop_reason, 'stop_sequence');
      assert.equal(m.stop_sequence, 'STOP');
    });

    test('prompt cache: a write, then a read of the same tokens', async () => {
      const system = [{
        type: 'text',
        text: `You are terse. ${model} ${'Context word. '.repeat(40)}`,
        cache_control: { type: 'ephemeral' },
      }];
      const ask = () => client.messages.create({
        model, max_tokens: 64, system, messages: [{ role: 'user', content: 'hello' }],
      });
      const first = await ask();
      assert.ok(first.usage.cache_creation_input_tokens > 0, JSON.stringify(first.usage));
      assert.equal(first.usage.cache_read_input_tokens, 0);
      const second = await ask();
      assert.equal(second.usage.cache_read_input_tokens, first.usage.cache_creation_input_tokens);
      assert.equal(second.usage.cache_creation_input_tokens, 0);
      // input_tokens is the uncached rest, as Anthropic reports it.
      assert.equal(second.usage.input_tokens, first.usage.input_tokens);
    });

    test('prompt cache usage in a stream', async () => {
      const system = [{
        type: 'text',
        text: `You are terse, streaming. ${model} ${'Context word. '.repeat(40)}`,
        cache_control: { type: 'ephemeral' },
      }];
      const m = await client.messages.stream({
        model, max_tokens: 64, system, messages: [{ role: 'user', content: 'hello' }],
      }).finalMessage();
      assert.ok(m.usage.cache_creation_input_tokens > 0, JSON.stringify(m.usage));
    });

    test('thinking block with its signature', async () => {
      const m = await client.messages.create({
        model, max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 },
        messages: [{ role: 'user', content: 'think first' }],
      });
      assert.equal(m.content[0].type, 'thinking');
      assert.ok(m.content[0].thinking.length > 0 && m.content[0].signature.length > 0);
      assert.equal(m.content[1].type, 'text');
    });
  });
}

describe('messages errors decided by Weir', () => {
  test('unknown model is an Anthropic not_found_error', { skip: unknownModelSkip }, async () => {
    await assert.rejects(
      client.messages.create({ model: 'no-such-model', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
      (err) => {
        assert.equal(err.status, 404);
        assert.equal(err.error?.error?.type, 'not_found_error');
        return true;
      },
    );
  });

  test('count_tokens', async () => {
    const r = await client.messages.countTokens({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hello there' }] });
    assert.ok(r.input_tokens > 0);
  });
});
