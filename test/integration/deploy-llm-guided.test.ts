/**
 * Structured output through the official openai client against `serve run examples/llm-server.ts:app`
 * on the bundled story model: response_format json_schema (six samples at temperature 1 validate with
 * ajv), json_object, streaming, n > 1, vLLM's guided_choice / guided_regex, a mixed batch whose unguided
 * requests give what they give alone, 400s naming bad schemas and regexes, the SDK's harmless extra
 * fields accepted while unknown ones are refused; TGI's grammar parameter.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { describeWithModels, repoRoot } from '../helpers/models.js';

const KEY = 'sk-flotilla-guided-0001';
const MODEL = path.join(repoRoot, 'models/flotilla-stories/target');
const schema = JSON.parse(readFileSync(path.join(repoRoot, 'bench/guided/schemas/person.json'), 'utf8'));
const messages = [{ role: 'user' as const, content: 'Tell me about a girl in the park.' }];
let server: ServeRun;
let client: OpenAI;

/** Extra body fields (vLLM's) the SDK passes through as they are. */
type Extra = Record<string, unknown>;
const chat = (body: Extra) =>
  client.chat.completions.create({
    model: 'm',
    messages,
    ...body,
  } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);

describeWithModels('LLMServer: guided decoding through the openai client (bundled model)', () => {
  beforeAll(async () => {
    server = await serveRun(['examples/llm-server.ts:app', `model=${MODEL}`, `api_keys=${KEY}`]);
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('response_format json_schema: six samples at temperature 1 all validate', async () => {
    const validate = new Ajv().compile(schema);
    const r = await chat({
      temperature: 1,
      n: 6,
      seed: 21,
      max_tokens: 150,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
    });
    expect(r.choices).toHaveLength(6);
    for (const c of r.choices) {
      expect(c.finish_reason, c.message.content ?? '').toBe('stop');
      expect(validate(JSON.parse(c.message.content!)), c.message.content ?? '').toBe(true);
    }
  });

  it('response_format json_object: the output parses as an object (or is cut by max_tokens: length)', async () => {
    const r = await chat({ temperature: 0.8, seed: 3, max_tokens: 200, response_format: { type: 'json_object' } });
    const c = r.choices[0]!;
    if (c.finish_reason === 'stop') expect(typeof JSON.parse(c.message.content!)).toBe('object');
    else expect(c.finish_reason).toBe('length');
    const cut = await chat({ temperature: 0.8, seed: 3, max_tokens: 4, response_format: { type: 'json_object' } });
    expect(cut.choices[0]!.finish_reason).toBe('length'); // incomplete JSON, as OpenAI does
  });

  it('streaming, n = 2: each choice concatenates to the JSON of the same request unstreamed', async () => {
    const body = {
      temperature: 1,
      n: 2,
      seed: 8,
      max_tokens: 150,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema } },
    };
    const whole = await chat(body);
    const stream = await client.chat.completions.create({
      model: 'm',
      messages,
      stream: true,
      ...body,
    } as unknown as OpenAI.ChatCompletionCreateParamsStreaming);
    const text = ['', ''];
    for await (const chunk of stream) for (const c of chunk.choices) text[c.index] += c.delta.content ?? '';
    const validate = new Ajv().compile(schema);
    for (let i = 0; i < 2; i++) {
      expect(text[i]).toBe(whole.choices[i]!.message.content);
      expect(validate(JSON.parse(text[i]!))).toBe(true);
    }
  });

  it("vLLM's guided_choice and guided_regex; completions take them too", async () => {
    const choices = ['sunny', 'rainy', 'a big storm'];
    const r = await chat({ temperature: 1, n: 4, seed: 1, max_tokens: 20, guided_choice: choices });
    for (const c of r.choices) expect(choices).toContain(c.message.content);
    const re = await chat({ temperature: 1, n: 3, seed: 2, max_tokens: 30, guided_regex: '(Tom|Mia) is [1-9][0-9]?' });
    for (const c of re.choices) {
      expect(c.finish_reason).toBe('stop');
      expect(c.message.content).toMatch(/^(Tom|Mia) is [1-9][0-9]?$/);
    }
    const comp = await client.completions.create({
      model: 'm',
      prompt: 'The weather was',
      max_tokens: 20,
      guided_choice: choices,
    } as unknown as OpenAI.CompletionCreateParamsNonStreaming);
    expect(choices).toContain(comp.choices[0]!.text);
  });

  it('a mixed batch: unguided greedy requests give what they give alone', async () => {
    const plain = (content: string) =>
      client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content }],
        temperature: 0,
        max_tokens: 40,
      });
    const prompts = ['Tell me about a dog.', 'Tell me about a boat.'];
    const alone = [];
    for (const p of prompts) alone.push((await plain(p)).choices[0]!.message.content);
    const together = await Promise.all([
      plain(prompts[0]!),
      chat({ temperature: 1, n: 3, seed: 5, max_tokens: 120, response_format: { type: 'json_object' } }),
      plain(prompts[1]!),
      chat({ temperature: 1, seed: 6, max_tokens: 20, guided_regex: '[a-z]+' }),
    ]);
    expect(together[0].choices[0]!.message.content).toBe(alone[0]);
    expect(together[2].choices[0]!.message.content).toBe(alone[1]);
  });

  it('400 naming the problem: an invalid schema, an invalid regex, a schema nothing satisfies, two constraints', async () => {
    const bad = async (body: Extra) =>
      chat({ max_tokens: 5, ...body }).then(
        () => null,
        (e: unknown) => e,
      );
    const s = (await bad({
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'nope' } } },
    })) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(s).toBeInstanceOf(OpenAI.BadRequestError);
    expect(s.param).toBe('response_format.json_schema.schema');
    expect(s.message).toContain('Unsupported type "nope"');
    const re = (await bad({ guided_regex: '[ab' })) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(re.status).toBe(400);
    expect(re.param).toBe('guided_regex');
    expect(re.message).toContain("Unclosed '['");
    // a schema no value satisfies: nothing can be generated
    const none = (await bad({ guided_json: false })) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(none.status).toBe(400);
    expect(none.param).toBe('guided_json');
    expect(none.message).toContain('cannot accept any value');
    const two = (await bad({ guided_regex: 'a', guided_choice: ['b'] })) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(two.param).toBe('guided_choice');
    // and the server still serves guided requests
    expect((await chat({ max_tokens: 10, guided_choice: ['ok'] })).choices[0]!.message.content).toBe('ok');
  });

  it("the SDK's harmless fields are accepted and ignored; unknown ones are refused by name", async () => {
    const r = await chat({
      temperature: 0,
      max_tokens: 8,
      store: false,
      metadata: { run: 'x' },
      service_tier: 'auto',
      user: 'u-1',
    });
    expect(r.choices[0]!.message.content!.length).toBeGreaterThan(0);
    const e = (await chat({ max_tokens: 8, audio: { voice: 'alloy', format: 'wav' } }).then(
      () => null,
      (err: unknown) => err,
    )) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.status).toBe(400);
    expect(e.param).toBe('audio');
  });

  it("TGI's grammar parameter (json and regex)", async () => {
    const post = (parameters: Extra) =>
      fetch(`${server.url}/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
        body: JSON.stringify({ inputs: 'Once upon a time', parameters }),
      });
    const r = await post({ max_new_tokens: 150, do_sample: true, seed: 4, grammar: { type: 'json', value: schema } });
    expect(r.status).toBe(200);
    const text = ((await r.json()) as { generated_text: string }).generated_text;
    expect(new Ajv().compile(schema)(JSON.parse(text))).toBe(true);
    const re = await post({ max_new_tokens: 20, grammar: { type: 'regex', value: '[0-9]{3}' } });
    expect(((await re.json()) as { generated_text: string }).generated_text).toMatch(/^[0-9]{3}$/);
    const bad = await post({ grammar: { type: 'regex', value: '(' } });
    expect(bad.status).toBe(422);
  });
});
