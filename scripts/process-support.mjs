// What scripts/test.mjs and scripts/bench.mjs share: finding server binaries and running commands
// whose exit code (or signal) decides the script's own.
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';

/** A failure whose message is the whole story: printed without a stack. */
export class Failure extends Error {}

function hasBinary(name) {
  // An absolute path names a file a package installs off the PATH (a shared library, say).
  if (isAbsolute(name)) {
    try {
      accessSync(name, fsConstants.R_OK);
      return true;
    } catch {
      return false;
    }
  }
  // Debian installs mariadbd in /usr/sbin, which is not on a regular user's PATH.
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/usr/local/sbin'];
  return dirs.some((dir) => {
    try {
      accessSync(join(dir, name), fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Installs the Debian packages behind `required` binaries that are missing (as root, with apt-get);
 * as another user, fails with the command to run.
 */
export async function ensureBinaries(run, required) {
  const missing = () => required.filter(({ binary }) => !hasBinary(binary));
  if (missing().length === 0) return;

  const binaries = missing().map(({ binary }) => binary).join(', ');
  const packages = [...new Set(missing().map(({ aptPackage }) => aptPackage))];
  if (process.getuid?.() !== 0) {
    throw new Failure(`Missing ${binaries}. Install the Debian packages and run again:\n  sudo apt-get install -y ${packages.join(' ')}`);
  }

  console.log(`Missing ${binaries}; installing ${packages.join(' ')} with apt-get.`);
  const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if ((await run('apt-get', ['update'], { env: aptEnv })) !== 0) throw new Failure('apt-get update failed.');
  if ((await run('apt-get', ['install', '-y', ...packages], { env: aptEnv })) !== 0) {
    throw new Failure(`apt-get install ${packages.join(' ')} failed.`);
  }
  if (missing().length > 0) throw new Failure(`Still missing after apt-get install: ${binaries}.`);
}

/** The exit code for a death by `signal`, as a shell reports it. */
export function signalExitCode(signal) {
  return 128 + osConstants.signals[signal];
}

/**
 * Runs commands in `cwd` with inherited stdio, one at a time; `forward(signal)` passes a signal to
 * the one running, so Ctrl-C stops it rather than orphaning it.
 */
export function commandRunner(cwd) {
  let foreground;
  return {
    run(command, args, options = {}) {
      return new Promise((resolve, reject) => {
        const child = spawn(command, args, { cwd, stdio: 'inherit', ...options });
        foreground = child;
        child.once('error', (error) => reject(new Failure(`Could not run ${command}: ${error.message}`)));
        child.once('exit', (code, signal) => {
          foreground = undefined;
          resolve(code ?? signalExitCode(signal));
        });
      });
    },
    forward(signal) {
      foreground?.kill(signal);
    }
  };
}
