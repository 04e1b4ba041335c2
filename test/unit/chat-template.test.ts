import { describe, expect, it } from 'vitest';
import { ChatTemplate } from '../../packages/engine/src/chat-template.js';
import { ChatTemplateError, InvalidPromptError } from '../../packages/engine/src/errors.js';

const chatml =
  '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';
const llama2 =
  "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content }} [/INST]{% else %} {{ m.content }} {{ eos_token }}{% endif %}{% endfor %}";

describe('ChatTemplate', () => {
  it("renders the model's template with messages and the generation prompt", () => {
    const t = new ChatTemplate(chatml);
    const msgs = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ];
    expect(t.render(msgs)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(t.render(msgs, { addGenerationPrompt: false }).endsWith('assistant\n')).toBe(false);
  });

  it('passes bos and eos tokens', () => {
    const t = new ChatTemplate(llama2, { bosToken: '<s>', eosToken: '</s>' });
    expect(
      t.render([
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
      ]),
    ).toBe('<s>[INST] a [/INST] b </s>');
  });

  it('falls back to a plain template and joins text parts', () => {
    const t = new ChatTemplate(undefined);
    expect(t.isDefault).toBe(true);
    expect(
      t.render([
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Tell ' },
            { type: 'text', text: 'a story' },
          ],
        },
      ]),
    ).toBe('User: Tell a story\nAssistant:');
  });

  it('rejects malformed messages and broken templates with typed errors', () => {
    const t = new ChatTemplate(undefined);
    expect(() => t.render([])).toThrow(InvalidPromptError);
    expect(() => t.render([{ role: 'user' }])).toThrow(InvalidPromptError);
    expect(() => t.render([{ role: 'user', content: [{ type: 'image_url' }] }])).toThrow(InvalidPromptError);
    expect(() => new ChatTemplate('{% for %}')).toThrow(ChatTemplateError);
    expect(() => new ChatTemplate("{{ raise_exception('no') }}").render([{ role: 'user', content: 'x' }])).toThrow(
      ChatTemplateError,
    );
  });
});
