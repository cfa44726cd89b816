import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

// Debian installs mariadbd in /usr/sbin, which is not on a regular user's PATH.
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin'];

export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export function requireBinary(name: string, aptPackage: string): string {
  const path = findBinary(name);
  if (!path) {
    throw new Error(
      `${name} not found on PATH or in /usr/sbin: install the Debian package ${aptPackage} ` +
        '(`npm test` installs it automatically when run as root)',
    );
  }
  return path;
}
