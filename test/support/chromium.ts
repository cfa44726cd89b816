import { accessSync, constants } from 'node:fs';

/** Debian's Chromium, driven by playwright-core (a test tool's own browser download cannot run here). */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless, and quiet on a machine with no network: without the background-networking flags its connections are refused many at a time. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
];

export function requireChromium(): void {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's package with \`apt-get install -y chromium\` (as root) and run again`);
  }
}
