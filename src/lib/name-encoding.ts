/**
 * Names (providers, buckets, API keys) become single path segments. Valid §8
 * names already are safe segments, but the stores must not trust that, so
 * every name goes through this reversible encoding:
 *
 * - `A-Z a-z 0-9 _ @ + . -` are kept, except a leading `.` (no `.`, `..` or
 *   hidden files);
 * - every other character becomes `%XX` per UTF-8 byte (uppercase hex), which
 *   covers `%`, `/`, `\`, NUL and all non-ASCII. Lone UTF-16 surrogates are
 *   encoded as their 3-byte generalized UTF-8 form (WTF-8), so even ill-formed
 *   strings map to distinct segments;
 * - the empty string encodes to `%` alone, which no other name produces
 *   (every other `%` is followed by two hex digits).
 *
 * So a valid name encodes to itself and no name encodes to `.`, `..`, an empty
 * segment or anything containing a separator.
 */

const SAFE_NAME = /^[A-Za-z0-9_@+-][A-Za-z0-9_@+.-]*$/
const SAFE_CHAR = /[A-Za-z0-9_@+.-]/
const HEX = "0123456789ABCDEF"

const EMPTY_SEGMENT = "%"

const percent = (byte: number): string => "%" + HEX[byte >> 4] + HEX[byte & 0x0f]

/** UTF-8 bytes of one code point, surrogates included (WTF-8). */
const encodeCodePoint = (cp: number): string => {
  if (cp < 0x80) return percent(cp)
  if (cp < 0x800) return percent(0xc0 | (cp >> 6)) + percent(0x80 | (cp & 0x3f))
  if (cp < 0x10000) {
    return percent(0xe0 | (cp >> 12)) + percent(0x80 | ((cp >> 6) & 0x3f)) + percent(0x80 | (cp & 0x3f))
  }
  return (
    percent(0xf0 | (cp >> 18)) +
    percent(0x80 | ((cp >> 12) & 0x3f)) +
    percent(0x80 | ((cp >> 6) & 0x3f)) +
    percent(0x80 | (cp & 0x3f))
  )
}

/** The path segment for `name`; valid names come back unchanged. */
export const encodeName = (name: string): string => {
  if (SAFE_NAME.test(name)) return name
  if (name.length === 0) return EMPTY_SEGMENT
  let out = ""
  let i = 0
  while (i < name.length) {
    const cp = name.codePointAt(i)!
    const char = name[i]!
    if (cp < 0x80 && SAFE_CHAR.test(char) && !(i === 0 && char === ".")) {
      out += char
    } else {
      out += encodeCodePoint(cp)
    }
    i += cp > 0xffff ? 2 : 1
  }
  return out
}

const hexValue = (code: number): number => {
  if (code >= 0x30 && code <= 0x39) return code - 0x30
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10
  return -1
}

/** Decodes a run of generalized UTF-8 bytes; `undefined` when malformed. */
const decodeBytes = (bytes: ReadonlyArray<number>): string | undefined => {
  let out = ""
  let i = 0
  while (i < bytes.length) {
    const first = bytes[i]!
    let extra: number
    if (first < 0x80) extra = 0
    else if (first >= 0xc0 && first < 0xe0) extra = 1
    else if (first >= 0xe0 && first < 0xf0) extra = 2
    else if (first >= 0xf0 && first < 0xf8) extra = 3
    else return undefined
    let cp = extra === 0 ? first : first & (0x3f >> extra)
    for (let k = 1; k <= extra; k++) {
      const next = bytes[i + k]
      if (next === undefined || (next & 0xc0) !== 0x80) return undefined
      cp = (cp << 6) | (next & 0x3f)
    }
    if (cp > 0x10ffff) return undefined
    out += String.fromCodePoint(cp)
    i += extra + 1
  }
  return out
}

/**
 * The name a segment stands for, or `undefined` when the segment is not
 * exactly what `encodeName` produces for some name (stray files, hand-made
 * or non-canonical spellings such as `%41`): listings skip those.
 */
export const decodeName = (segment: string): string | undefined => {
  if (SAFE_NAME.test(segment)) return segment
  if (segment === EMPTY_SEGMENT) return ""
  let out = ""
  let i = 0
  while (i < segment.length) {
    if (segment[i] !== "%") {
      out += segment[i]
      i += 1
      continue
    }
    const bytes: Array<number> = []
    while (i < segment.length && segment[i] === "%") {
      const high = hexValue(segment.charCodeAt(i + 1))
      const low = hexValue(segment.charCodeAt(i + 2))
      if (high < 0 || low < 0) return undefined
      bytes.push((high << 4) | low)
      i += 3
    }
    const decoded = decodeBytes(bytes)
    if (decoded === undefined) return undefined
    out += decoded
  }
  return encodeName(out) === segment ? out : undefined
}
