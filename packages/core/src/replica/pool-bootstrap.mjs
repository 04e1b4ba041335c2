// Plain JavaScript on purpose: piscina loads it in each pool thread, and it registers tsx before the
// TypeScript task runner (and the user's module) loads.
import { register } from 'tsx/esm/api';

register();
const { runPoolTask } = await import(new URL('./pool-worker.ts', import.meta.url).href);
export default runPoolTask;
