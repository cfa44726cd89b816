// Child process for the killed-lock-holder specs: `node lock-holder.js <mysqlUrl> <sid> <busySeconds>`.
// Takes the session's lock the way EzSession names it, on a connection of its own, says "locked",
// then either idles (busySeconds = 0) or starts a long statement and says "busy". The parent SIGKILLs it.
import { createConnection, type RowDataPacket } from 'mysql2/promise';
import { lockName } from '../../lib/storage/session.repository.js';

const [mysqlUrl, sid, busy] = process.argv.slice(2);
const connection = await createConnection(mysqlUrl);
const [[{ locked }]] = await connection.query<RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS locked', [lockName(sid)]);
if (Number(locked) !== 1) {
  console.error(`could not take the lock: ${locked}`);
  process.exit(2);
}
process.stdout.write('locked\n');
const busySeconds = Number(busy);
if (busySeconds > 0) {
  void connection.query('SELECT SLEEP(?)', [busySeconds]);
  // Give the statement time to reach the server before the parent may kill us.
  setTimeout(() => process.stdout.write('busy\n'), 200);
}
setInterval(() => {}, 60_000);
