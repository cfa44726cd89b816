import { isIP } from 'node:net';
import Bowser from 'bowser';
import type { HttpRequestLike } from '../http/http-request.js';
import type { ResolvedOptions } from '../options/resolved-options.js';

/** What a stored session records of the device that created it, as stored (any part may be absent). */
export interface DeviceDetails {
  userAgent: string | null;
  ip: string | null;
  /** A short readable label: "Chrome 130 on macOS", "Safari 17 on iPhone". */
  device: string | null;
}

/** As long as the columns: a User-Agent longer than this is cut, never refused. */
export const MAX_USER_AGENT = 512;
export const MAX_DEVICE_LABEL = 64;

/**
 * The device of `request`, read once per session creation (the INSERT that creates or regenerates
 * a row), never per request. The IP is the framework's `request.ip` (Express `trust proxy`, Fastify
 * `trustProxy`), never a forwarding header read here.
 */
export function deviceOf(request: HttpRequestLike, options: Pick<ResolvedOptions, 'devices'>): DeviceDetails {
  const { ip: ipMode, userAgent: recordAgent } = options.devices;
  const header = request.headers['user-agent'];
  const agent = recordAgent && typeof header === 'string' && header.length > 0 ? printable(header).slice(0, MAX_USER_AGENT) : null;
  return {
    userAgent: agent,
    ip: ipMode === false ? null : clientIp(request.ip, ipMode),
    device: agent === null ? null : deviceLabel(agent)
  };
}

/** The address as stored: in full, or its network only (IPv4 /24, IPv6 /48); `null` when the framework gave none. */
export function clientIp(ip: string | undefined, mode: 'full' | 'truncated'): string | null {
  if (!ip) return null;
  // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
  const address = ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
  const family = isIP(address);
  if (family === 0) return null;
  if (mode === 'full') return address;
  if (family === 4) return `${address.split('.').slice(0, 3).join('.')}.0`;
  return `${expandIpv6(address).slice(0, 3).join(':')}::`;
}

/**
 * "Chrome 130 on macOS", "Safari 17 on iPhone", "Firefox 128 on Windows"; `null` when the agent
 * names no browser a person would recognise (curl, a bot). Parsed with bowser (MIT, about 9 µs).
 */
export function deviceLabel(userAgent: string): string | null {
  // Most sessions come from a few user agents: a parse (10-40 µs) once per agent, not once per login.
  const known = labels.get(userAgent);
  if (known !== undefined) return known;
  const label = parseLabel(userAgent);
  if (labels.size >= 1_000) labels.clear();
  labels.set(userAgent, label);
  return label;
}

const labels = new Map<string, string | null>();

function parseLabel(userAgent: string): string | null {
  let parsed: Bowser.Parser.ParsedResult;
  try {
    parsed = Bowser.parse(userAgent);
  } catch {
    return null;
  }
  const browser = parsed.browser.name;
  if (!browser) return null;
  const major = parsed.browser.version?.split('.')[0];
  const model = parsed.platform.model;
  const os = model === 'iPhone' || model === 'iPad' ? model : parsed.os.name;
  const label = `${browser}${major ? ` ${major}` : ''}${os ? ` on ${os}` : ''}`;
  return printable(label).slice(0, MAX_DEVICE_LABEL);
}

/** The columns are ASCII: anything else (a forged header, say) becomes "?", so it can never fail the INSERT. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

function expandIpv6(address: string): string[] {
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return groups.map((group) => group.toLowerCase().replace(/^0+(?=.)/, ''));
}
