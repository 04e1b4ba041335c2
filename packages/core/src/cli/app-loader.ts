/**
 * Loads `FILE:EXPORT` for `serve run`: imports the user's module (TypeScript through tsx, which the CLI
 * runs under) and turns the export into an Application — either an Application itself or a builder
 * function called with the `key=value` arguments. Every failure names the file, the export and the cause.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isApplication, type Application } from '../application.js';
import { getDeploymentDefinition } from '../deployment.js';
import { CliError, causeOf } from './cli-error.js';

export interface AppSpec {
  /** Absolute path of the module. */
  file: string;
  /** As the user wrote it, for messages. */
  given: string;
  exportName: string;
}

/** 'examples/default.ts:app' → file + export; the export defaults to 'app'. */
export function parseAppSpec(spec: string, cwd = process.cwd()): AppSpec {
  const colon = spec.lastIndexOf(':');
  const given = colon > 0 ? spec.slice(0, colon) : spec;
  const exportName = colon > 0 ? spec.slice(colon + 1) : 'app';
  if (!exportName)
    throw new CliError(`'${spec}' names no export after ':'.`, 'Write FILE:EXPORT, e.g. examples/default.ts:app.', 2);
  return { file: path.resolve(cwd, given), given, exportName };
}

/** `key=value` words → a record; anything else is a usage error. */
export function parseKeyValues(words: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq <= 0)
      throw new CliError(
        `'${word}' is not a key=value argument.`,
        'Pass builder arguments as key=value, e.g. model=/path/to/model.bin.',
        2,
      );
    out[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return out;
}

export async function loadApplication(spec: AppSpec, args: Record<string, string>): Promise<Application> {
  if (!existsSync(spec.file)) {
    throw new CliError(
      `${spec.given}: file not found (looked at ${spec.file}).`,
      'Check the path; it is relative to the current directory.',
    );
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(spec.file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new CliError(
      `${spec.given}: failed to load the module: ${causeOf(err)}`,
      'Fix the error above in your module (or the deployment options it names), then run again.',
    );
  }
  if (!(spec.exportName in mod)) {
    const names = Object.keys(mod).filter((k) => k !== '__esModule');
    throw new CliError(
      `${spec.given} has no export '${spec.exportName}' (exports: ${names.join(', ') || 'none'}).`,
      `Export your application, e.g. \`export const ${spec.exportName} = MyDeployment.bind();\`, or name an existing export after ':'.`,
    );
  }
  return resolveExport(spec, mod[spec.exportName], args);
}

async function resolveExport(spec: AppSpec, value: unknown, args: Record<string, string>): Promise<Application> {
  const where = `${spec.given}:${spec.exportName}`;
  if (isApplication(value)) {
    if (Object.keys(args).length > 0) {
      throw new CliError(
        `${where} is an Application, so it takes no key=value arguments (got ${Object.keys(args).join(', ')}).`,
        'Drop the arguments, or export a builder: `export const app = (args) => MyDeployment.bind(args.x);`.',
        2,
      );
    }
    return value;
  }
  if (typeof value !== 'function') {
    throw new CliError(
      `${where} is ${value === null ? 'null' : typeof value}, not an Application or a builder function.`,
      'Export `MyDeployment.bind(...)` or a function `(args) => MyDeployment.bind(...)`.',
    );
  }
  const definition = getDeploymentDefinition(value);
  if (definition || /^class[\s{]/.test(Function.prototype.toString.call(value))) {
    throw new CliError(
      `${where} is the class ${definition?.name ?? value.name}, not an application.`,
      `Export a bound application, e.g. \`export const app = ${value.name}.bind(...args);\`${definition ? '' : ' (and decorate the class with @deployment())'}, and run ${spec.given}:app.`,
    );
  }
  let built: unknown;
  try {
    built = await (value as (a: Record<string, string>) => unknown)(args);
  } catch (err) {
    throw new CliError(
      `${where}: the application builder threw: ${causeOf(err)}`,
      'Check the key=value arguments the builder expects, then run again.',
    );
  }
  if (!isApplication(built)) {
    throw new CliError(
      `${where}: the builder returned ${built === null ? 'null' : typeof built}, not an Application.`,
      'Return `MyDeployment.bind(...)` from the builder.',
    );
  }
  return built;
}
