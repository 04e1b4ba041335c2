/**
 * Chat templates with tools: a template that reads `tools` gets them (and tool calls with parsed
 * arguments, tool messages with their ids) as Hugging Face's apply_chat_template passes them; the default
 * template and templates without tool support get the default tool prompt in the first system message;
 * plain chats render as before.
 */
import { describe, expect, it } from 'vitest';
import {
  ChatTemplate,
  DEFAULT_CHAT_TEMPLATE,
  defaultToolPrompt,
  type ToolDefinition,
} from '../../packages/engine/src/chat-template.js';
import { InvalidPromptError } from '../../packages/engine/src/errors.js';

const tools: ToolDefinition[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

// A Hermes/Qwen-style template (abridged): tools in the system turn, calls as <tool_call> JSON, tool results.
const hermes =
  '{% if tools %}<|im_start|>system\n# Tools\n{% for t in tools %}{{ t | tojson }}\n{% endfor %}<|im_end|>\n{% endif %}' +
  '{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.tool_calls %}{% for c in m.tool_calls %}' +
  '<tool_call>{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}</tool_call>{% endfor %}' +
  "{% elif m.role == 'tool' %}<tool_response id={{ m.tool_call_id }}>{{ m.content }}</tool_response>" +
  '{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';
const chatml =
  '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

const turns = [
  { role: 'user', content: 'Weather in Oslo?' },
  {
    role: 'assistant',
    content: null,
    tool_calls: [
      { id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city": "Oslo"}' } },
    ],
  },
  { role: 'tool', tool_call_id: 'call_1', content: '12 C' },
];

describe('ChatTemplate with tools', () => {
  it('gives a template that reads tools the tools, parsed call arguments and tool_call_id', () => {
    const t = new ChatTemplate(hermes);
    expect(t.supportsTools).toBe(true);
    const text = t.render(turns, { tools });
    expect(text).toContain(`# Tools\n${JSON.stringify(tools[0]).replace(/":/g, '": ').replace(/,"/g, ', "')}`);
    expect(text).toContain('<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>');
    expect(text).toContain('<tool_response id=call_1>12 C</tool_response>');
    expect(text).not.toContain('You may call functions');
  });

  it('puts the default tool prompt into the first system message of a template without tool support', () => {
    const t = new ChatTemplate(chatml);
    expect(t.supportsTools).toBe(false);
    const prompt = defaultToolPrompt(tools);
    expect(prompt).toContain('"name":"get_weather"');
    expect(prompt).toContain('<tool_call>');
    expect(t.render([{ role: 'user', content: 'hi' }], { tools })).toBe(
      `<|im_start|>system\n${prompt}<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n`,
    );
    expect(
      t.render(
        [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'hi' },
        ],
        { tools },
      ),
    ).toBe(
      `<|im_start|>system\n${prompt}\n\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n`,
    );
    // no tools: unchanged
    expect(t.render([{ role: 'user', content: 'hi' }], { tools: [] })).toBe(
      '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('the default template writes calls as <tool_call> JSON and tool results as Tool lines; plain chats as before', () => {
    const t = new ChatTemplate(undefined);
    expect(t.source).toBe(DEFAULT_CHAT_TEMPLATE);
    expect(t.supportsTools).toBe(false);
    expect(t.render([{ role: 'user', content: 'Hi' }])).toBe('User: Hi\nAssistant:');
    expect(t.render(turns, { tools })).toBe(
      `System: ${defaultToolPrompt(tools)}\nUser: Weather in Oslo?\n` +
        'Assistant: <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\nTool: 12 C\nAssistant:',
    );
  });

  it('refuses a tool call without a name, and content missing without calls', () => {
    const t = new ChatTemplate(undefined);
    expect(() => t.render([{ role: 'assistant', content: null, tool_calls: [{ function: {} }] }])).toThrow(
      InvalidPromptError,
    );
    expect(() => t.render([{ role: 'assistant', content: null }])).toThrow(/content must be/);
  });
});
