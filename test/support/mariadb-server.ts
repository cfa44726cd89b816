import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { requireBinary } from './find-binary.js';
import { ManagedServer } from './managed-server.js';

const execFileAsync = promisify(execFile);

export const TEST_DATABASE = 'ezsession_test';

export interface InnoDbSizes {
  /** Default 64: enough for the tests, quick to start. */
  bufferPoolMiB?: number;
  /** Default 8. A production-sized log keeps bulk deletes from stalling every writer on checkpoints. */
  logFileMiB?: number;
}

export interface MariaDbServerOptions extends InnoDbSizes {
  /** Default 1. Every server of a replication topology needs its own. */
  serverId?: number;
  /** Default false. A replication primary writes a binary log for its replicas to read. */
  binaryLog?: boolean;
}

// mariadbd refuses to run as root unless told to; --user is an error for anyone else.
const USER_OPTIONS = process.getuid?.() === 0 ? ['--user=root'] : [];

/**
 * A private temp directory for the bootstrap and the server: at start mariadbd deletes
 * every `#sql*` file in its tmpdir, which in a shared /tmp includes the temporary tables
 * of another MariaDB's mariadb-install-db running at that moment (it then fails with
 * "Unknown table 'mysql.tmp_user_sys'").
 */
function tmpdirOption(dir: string): string {
  return `--tmpdir=${join(dir, 'tmp')}`;
}

/** A throwaway MariaDB with passwordless root over TCP and an empty `ezsession_test` database. */
export class MariaDbServer extends ManagedServer {
  protected readonly name = 'MariaDB';
  // Shared by mariadb-install-db (which passes them on to its bootstrap mariadbd) and
  // mariadbd, so InnoDB does not resize its redo log on first start.
  private readonly innodbOptions: string[];
  private readonly serverId: number;
  private readonly binaryLog: boolean;

  constructor({ bufferPoolMiB = 64, logFileMiB = 8, serverId = 1, binaryLog = false }: MariaDbServerOptions = {}) {
    super();
    this.innodbOptions = [`--innodb-buffer-pool-size=${bufferPoolMiB}M`, `--innodb-log-file-size=${logFileMiB}M`];
    this.serverId = serverId;
    this.binaryLog = binaryLog;
  }

  get url(): string {
    return `mysql://root@127.0.0.1:${this.port}/${TEST_DATABASE}`;
  }

  protected async initialize(dir: string): Promise<void> {
    const installDb = requireBinary('mariadb-install-db', 'mariadb-server');
    await mkdir(join(dir, 'tmp'));
    const args = [
      '--no-defaults',
      `--datadir=${join(dir, 'data')}`,
      tmpdirOption(dir),
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      '--skip-name-resolve',
      ...USER_OPTIONS,
      ...this.innodbOptions,
    ];
    try {
      await execFileAsync(installDb, args);
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      throw new Error(`mariadb-install-db failed: ${String(error)}\n${stdout}${stderr}`);
    }
  }

  protected command(dir: string, port: number) {
    return {
      binary: requireBinary('mariadbd', 'mariadb-server'),
      args: [
        '--no-defaults',
        `--datadir=${join(dir, 'data')}`,
        tmpdirOption(dir),
        `--socket=${join(dir, 'mariadbd.sock')}`,
        `--pid-file=${join(dir, 'mariadbd.pid')}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        '--skip-name-resolve',
        `--server-id=${this.serverId}`,
        ...(this.binaryLog ? [`--log-bin=${join(dir, 'binlog')}`] : ['--skip-log-bin']),
        // Without a config file the compiled-in default is latin1; match real deployments.
        '--character-set-server=utf8mb4',
        '--collation-server=utf8mb4_unicode_ci',
        // Commits still survive a SIGKILL of mariadbd (only an OS crash loses them).
        '--innodb-flush-log-at-trx-commit=2',
        ...USER_OPTIONS,
        ...this.innodbOptions,
      ],
    };
  }

  protected async probe(port: number, dir: string): Promise<void> {
    const connection = await createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 1_000 });
    try {
      const [[{ datadir }]] = await connection.query<RowDataPacket[]>('SELECT @@datadir AS datadir');
      if (datadir !== `${join(dir, 'data')}/`) throw new Error(`port ${port} is served by another MariaDB (${datadir})`);
      await connection.query(`CREATE DATABASE IF NOT EXISTS \`${TEST_DATABASE}\``);
    } finally {
      await connection.end();
    }
  }
}
