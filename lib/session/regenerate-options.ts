/** What `EzSessionService.regenerate(context, options)` takes besides the request. */
export interface RegenerateOptions {
  /**
   * What of the session survives the new id; without it, everything does (data, flash and claims:
   * the behaviour of 0.1). With it, only what it names, and nothing else the session held at the
   * call, stored or set earlier in the request: a plain name is a top-level data key (`'cart'`),
   * `'jwt.<name>'` a custom claim, `'flash.<key>'` a flash message. `keep: []` starts from an empty
   * session. What the request sets after the call is kept as usual. On login, name what a visitor
   * may carry into the signed-in session (a cart), so nothing an attacker planted beforehand (a
   * `returnTo`, a claim, a flash message) outlives the login.
   */
  keep?: readonly string[];
}

/** `keep`, sorted by where each name points. */
export interface KeptNames {
  data: ReadonlySet<string>;
  flash: ReadonlySet<string>;
  claims: ReadonlySet<string>;
}

const CLAIM = 'jwt.';
const FLASH = 'flash.';

/** `undefined` keeps everything; a list that is not one of strings is a programming error, refused before anything moves. */
export function keptNames(options: RegenerateOptions | undefined): KeptNames | undefined {
  const keep = options?.keep;
  if (keep === undefined) return undefined;
  if (!Array.isArray(keep) || keep.some((name) => typeof name !== 'string' || name.length === 0)) {
    throw new TypeError(`EzSessionService.regenerate(): keep must be an array of non-empty names ('cart', 'jwt.theme', 'flash.notice'); got ${JSON.stringify(keep)}`);
  }
  const data = new Set<string>();
  const flash = new Set<string>();
  const claims = new Set<string>();
  for (const name of keep as string[]) {
    if (name.startsWith(CLAIM)) claims.add(name.slice(CLAIM.length));
    else if (name.startsWith(FLASH)) flash.add(name.slice(FLASH.length));
    else data.add(name);
  }
  return { data, flash, claims };
}

/** Drops, in place, every own key of `record` that `names` does not hold. */
export function retainKeys(record: Record<string, unknown>, names: ReadonlySet<string>): void {
  for (const key of Object.keys(record)) if (!names.has(key)) delete record[key];
}
