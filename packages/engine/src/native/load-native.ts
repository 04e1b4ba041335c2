/**
 * The one module that loads the native addon (native/build/Release/flotilla_native.node). Everything
 * else imports the types from native-types.ts and gets the binding through loadNative().
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { EngineError, registerWireErrors } from '../errors.js';
import type { NativeBinding } from './native-types.js';

/** The addon is not built, or was built for another Node / machine. */
export class NativeAddonError extends EngineError {
  override readonly code: string = 'E_NATIVE_ADDON';
}
registerWireErrors({ NativeAddonError });

const require = createRequire(import.meta.url);
let binding: NativeBinding | undefined;

function bindingPath(): string {
  try {
    return (require('@flotilla/native') as { bindingPath: string }).bindingPath;
  } catch (err) {
    throw new NativeAddonError(
      `the @flotilla/native workspace package cannot be resolved (${(err as Error).message}); run \`npm install\` at the repository root`,
    );
  }
}

/** Loads the addon once and returns it; throws NativeAddonError saying how to build it when missing. */
export function loadNative(): NativeBinding {
  if (binding) return binding;
  const file = bindingPath();
  if (!existsSync(file)) {
    throw new NativeAddonError(
      `the native engine is not built (${file} is missing): run \`npm install\` at the repository root, or \`npm rebuild @flotilla/native\``,
      { file },
    );
  }
  try {
    binding = require(file) as NativeBinding;
  } catch (err) {
    throw new NativeAddonError(
      `the native engine at ${file} cannot be loaded (${(err as Error).message}); rebuild it with \`npm rebuild @flotilla/native\``,
      { file },
    );
  }
  return binding;
}
