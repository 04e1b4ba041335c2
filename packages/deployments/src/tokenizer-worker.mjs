// Plain JavaScript on purpose (as core's actor-bootstrap.mjs): it registers tsx in the new thread before any
// TypeScript loads, then runs the tokenizer worker (tokenizer-worker.ts).
import { register } from 'tsx/esm/api';

register();
await import(new URL('./tokenizer-worker.ts', import.meta.url).href);
