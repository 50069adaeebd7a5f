import * as crypto from "node:crypto"

const digest = (value: string): Buffer => crypto.createHash("sha256").update(value, "utf8").digest()

/**
 * The phantom check: whether a route header's value is exactly the phantom
 * (after the route's scheme and one space, the scheme in any case). Both
 * sides are hashed first, so the comparison takes the same time whatever the
 * value's length or content.
 */
export const makePhantomCheck = (phantom: string) => {
  const expected = digest(phantom)
  return (value: string | undefined, scheme: string | undefined): boolean => {
    if (value === undefined) return false
    let presented = value
    if (scheme !== undefined) {
      const prefix = value.slice(0, scheme.length + 1)
      presented = prefix.toLowerCase() === `${scheme.toLowerCase()} ` ? value.slice(scheme.length + 1) : ""
    }
    return crypto.timingSafeEqual(digest(presented), expected)
  }
}
