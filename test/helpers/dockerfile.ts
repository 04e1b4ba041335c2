/**
 * A Dockerfile read into stages and instructions (pure), for test/integration/packaging-image.test.ts,
 * which runs the build and run stages as shell steps where no Docker daemon is at hand.
 *
 * Supported: line continuations, comments and parser directives, ARG (global and per stage, with
 * defaults and build-arg overrides), FROM image [AS name], ENV k=v ..., and $VAR / ${VAR} in FROM, ENV,
 * WORKDIR, COPY and USER (RUN is left to its shell, which gets ARG and ENV as environment variables).
 * Exec-form (JSON) ENTRYPOINT, CMD and HEALTHCHECK CMD are parsed into argument arrays.
 */

export interface Instruction {
  op: string;
  /** The text after the keyword, continuations joined (RUN: the shell command). */
  args: string;
  /** Leading --name=value flags (COPY --from, --chown; HEALTHCHECK --interval ...). */
  flags: Record<string, string>;
  line: number;
}

export interface Stage {
  name: string;
  /** FROM's image after substitution: another stage's name or an image reference. */
  from: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** Global ARGs (before the first FROM) after build-arg overrides. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

/** Splits `text` into instructions with their line numbers. */
export function instructionsOf(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (buf === '' && /^\s*(#|$)/.test(line)) return;
    if (buf !== '' && /^\s*#/.test(line)) return; // comment lines inside a continuation are dropped
    if (buf === '') start = i + 1;
    if (/\\\s*$/.test(line)) {
      buf += `${line.replace(/\\\s*$/, '')} `;
      return;
    }
    buf += line;
    const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(buf)!;
    let rest = m[2]!.trim();
    const flags: Record<string, string> = {};
    for (let f = /^--([a-z-]+)=(\S+)\s+/.exec(rest); f; f = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
      flags[f[1]!] = f[2]!;
      rest = rest.slice(f[0].length);
    }
    out.push({ op: m[1]!.toUpperCase(), args: rest.replace(/\s+/g, ' ').trim(), flags, line: start });
    buf = '';
  });
  if (buf !== '') throw new Error(`Dockerfile ends inside a continuation (from line ${start})`);
  return out;
}

/** $VAR and ${VAR} replaced from `vars`; an unknown variable is an error (the test must know every value). */
export function substitute(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string, b: string) => {
    const name = a ?? b;
    const v = vars[name];
    if (v === undefined) throw new Error(`Dockerfile variable ${name} has no value`);
    return v;
  });
}

/** `NAME=default` or `NAME` of an ARG. */
function argOf(args: string): [string, string | undefined] {
  const eq = args.indexOf('=');
  return eq < 0 ? [args.trim(), undefined] : [args.slice(0, eq).trim(), unquote(args.slice(eq + 1).trim())];
}

function unquote(v: string): string {
  return /^".*"$|^'.*'$/.test(v) ? v.slice(1, -1) : v;
}

/** ENV's `k=v k2="v 2"` pairs (the legacy `ENV k v` form too). */
export function envPairs(args: string): Array<[string, string]> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(args)) {
    const sp = args.indexOf(' ');
    return [[args.slice(0, sp), args.slice(sp + 1)]];
  }
  const out: Array<[string, string]> = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (let m = re.exec(args); m; m = re.exec(args)) out.push([m[1]!, unquote(m[2]!)]);
  return out;
}

/** An exec-form (JSON array) argument list; shell form is refused (containers must exec node itself). */
export function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`not an exec-form (JSON string array) instruction: ${args}`);
  return parsed;
}

export function parseDockerfile(text: string, buildArgs: Record<string, string> = {}): Dockerfile {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructionsOf(text)) {
    if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      const from = substitute(m[1]!, globalArgs);
      stages.push({ name: m[2] ?? String(stages.length), from, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.op !== 'ARG') throw new Error(`line ${ins.line}: only ARG may come before FROM, got ${ins.op}`);
      const [name, def] = argOf(ins.args);
      const v = buildArgs[name] ?? def;
      if (v !== undefined) globalArgs[name] = v;
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}
