// Plain JavaScript on purpose: it registers tsx in the new thread or process before any TypeScript loads.
import { register } from 'tsx/esm/api';

register();
await import(new URL('./actor-entry.ts', import.meta.url).href);
