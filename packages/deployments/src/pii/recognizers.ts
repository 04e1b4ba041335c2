/**
 * Recognizers for personal data in free text, one per kind. Each returns the spans it finds; none keeps
 * or logs the values. Where a maintained library does the hard part it is used: phone numbers by
 * libphonenumber-js (Google's libphonenumber metadata), IBAN check digits by ibantools. The rest are
 * small patterns with a validity check, so that random digit runs are not reported:
 *
 * - email: local@domain.tld (RFC 5322's common subset, no quoted local parts);
 * - card: 13–19 digits, optionally grouped by single spaces or dashes, passing the Luhn checksum;
 * - iban: two letters, two check digits, 11–30 alphanumerics (optionally grouped by spaces), valid per
 *   ISO 13616 (country length and mod-97 checksum);
 * - ssn: US Social Security numbers written AAA-GG-SSSS or AAA GG SSSS, excluding the never-issued
 *   areas 000, 666 and 900–999, group 00 and serial 0000 (nine bare digits are too ambiguous to flag);
 * - ip: IPv4 dotted quads and IPv6 addresses, validated by node:net;
 * - phone: numbers libphonenumber-js finds as valid for their region (international form with +, or
 *   national form in `defaultRegion`).
 */
import { isIP } from 'node:net';
import { electronicFormatIBAN, isValidIBAN } from 'ibantools';
import { type CountryCode, findPhoneNumbersInText } from 'libphonenumber-js';

export const PII_KINDS = ['email', 'phone', 'card', 'iban', 'ssn', 'ip'] as const;
export type PiiKind = (typeof PII_KINDS)[number];

/** A found span: text.slice(start, end) is the value. */
export interface PiiMatch {
  kind: PiiKind;
  start: number;
  end: number;
}

export interface RecognizerOptions {
  /** Region for phone numbers written without a country code (ISO 3166 alpha-2). Default 'US'. */
  defaultRegion?: string;
}

type Recognizer = (text: string, options: RecognizerOptions) => PiiMatch[];

function matchesOf(kind: PiiKind, re: RegExp, text: string, valid: (value: string) => boolean): PiiMatch[] {
  const out: PiiMatch[] = [];
  for (const m of text.matchAll(re)) {
    if (valid(m[0])) out.push({ kind, start: m.index, end: m.index + m[0].length });
  }
  return out;
}

/** The Luhn checksum over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

const EMAIL =
  /(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])/g;
// Digits in groups separated by at most one space or dash; not inside a longer run of digits.
const CARD = /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g;
const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])/g;
const SSN = /(?<!\d)(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?!\d)/g;
const IPV4 = /(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])/g;
const IPV6 = /(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])/g;

const RECOGNIZERS: Record<PiiKind, Recognizer> = {
  email: (text) => matchesOf('email', EMAIL, text, () => true),
  card: (text) =>
    matchesOf('card', CARD, text, (v) => {
      const digits = v.replace(/[ -]/g, '');
      return digits.length >= 13 && digits.length <= 19 && luhnValid(digits);
    }),
  // A greedy match may run into the next word ("... DE89 3704 0044 0532 0130 00 THANKS"): shorten it
  // one group at a time from the right until the remainder is a valid IBAN.
  iban: (text) => {
    const out: PiiMatch[] = [];
    for (const m of text.matchAll(IBAN)) {
      let value = m[0];
      while (value.length >= 15) {
        const electronic = electronicFormatIBAN(value) ?? '';
        if (isValidIBAN(electronic)) {
          out.push({ kind: 'iban', start: m.index, end: m.index + value.length });
          break;
        }
        const cut = value.lastIndexOf(' ');
        value = cut > 0 ? value.slice(0, cut) : value.slice(0, -1);
      }
    }
    return out;
  },
  ssn: (text) => matchesOf('ssn', SSN, text, () => true),
  ip: (text) => [
    ...matchesOf('ip', IPV4, text, (v) => isIP(v) === 4),
    ...matchesOf('ip', IPV6, text, (v) => v.includes('::') || v.split(':').length === 8).filter(
      (m) => isIP(text.slice(m.start, m.end)) === 6,
    ),
  ],
  phone: (text, options) => {
    const found = findPhoneNumbersInText(text, {
      defaultCountry: (options.defaultRegion ?? 'US') as CountryCode,
      extended: false,
    } as Parameters<typeof findPhoneNumbersInText>[1]);
    return found.map((f) => ({ kind: 'phone' as const, start: f.startsAt, end: f.endsAt }));
  },
};

/**
 * Which kind wins when spans overlap: the most specific check first (a card number or an IBAN can also
 * look like a phone number to a lenient phone parser; an SSN's digits can too).
 */
const PRIORITY: readonly PiiKind[] = ['email', 'iban', 'card', 'ssn', 'ip', 'phone'];

/** Every span of the asked kinds, sorted by start, without overlaps (higher-priority kinds kept). */
export function findPii(
  text: string,
  kinds: readonly PiiKind[] = PII_KINDS,
  options: RecognizerOptions = {},
): PiiMatch[] {
  const kept: PiiMatch[] = [];
  for (const kind of PRIORITY) {
    if (!kinds.includes(kind)) continue;
    for (const m of RECOGNIZERS[kind](text, options)) {
      if (!kept.some((k) => m.start < k.end && k.start < m.end)) kept.push(m);
    }
  }
  return kept.sort((a, b) => a.start - b.start);
}
