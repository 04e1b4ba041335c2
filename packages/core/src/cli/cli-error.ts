/**
 * Errors the CLI reports to a person: what went wrong, where (file, deployment), and what to do next.
 * Printed without a stack trace; anything else is a bug and is printed with one.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly hint: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The one-line cause of any thrown value (first line of the message; esbuild errors keep their location). */
export function causeOf(err: unknown): string {
  if (err instanceof Error) return `${err.name && err.name !== 'Error' ? `${err.name}: ` : ''}${err.message}`;
  return String(err);
}

export function formatCliError(err: unknown): string {
  if (err instanceof CliError) return `error: ${err.message}\n  next: ${err.hint}\n`;
  return (
    `error: ${causeOf(err)}\n${err instanceof Error && err.stack ? `${err.stack.split('\n').slice(1, 6).join('\n')}\n` : ''}` +
    '  next: this looks like a bug in Flotilla; please report it with the command you ran.\n'
  );
}
