#!/usr/bin/env node
// The `serve` / `flotilla` executable: registers tsx in this process (so the CLI and the user's module,
// TypeScript with decorators, load without a build step), then runs core's CLI with the LLM package's
// plug-in (`serve bench`).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../packages/core/src/cli/serve.ts');
const { registerBenchCommand } = await import('../packages/deployments/src/bench/bench-command.ts');
await main(process.argv, [registerBenchCommand]);
