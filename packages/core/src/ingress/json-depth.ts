/**
 * How deeply a JSON text nests, measured on the text before it is parsed. V8's JSON.parse takes 100,000
 * levels of `[` without complaint, but what comes after recurses (structured clone to the replica,
 * JSON.stringify, user code walking the value) and dies with "Maximum call stack size exceeded"; so the
 * proxies refuse such bodies up front with a 400 (or hand the reason on as `bodyError`). Pure, one pass,
 * no allocation: brackets inside strings (and escaped quotes) do not count.
 */

/** Deepest nesting the proxies accept in a JSON body or gRPC JSON payload. OpenAI tool schemas stay far below. */
export const MAX_JSON_DEPTH = 128;

/** True when `text` nests arrays/objects deeper than `max` (stops scanning as soon as it does). */
export function exceedsJsonDepth(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return false;
}

/** The message for a body over the limit, in the words both proxies use. */
export function tooDeepMessage(max = MAX_JSON_DEPTH): string {
  return `JSON nested deeper than ${max} levels; flatten the value (arrays and objects may nest at most ${max} deep).`;
}
