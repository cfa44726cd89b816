/**
 * The Lua scripts of the Redis cache. Every entry is stamped with the replication id of the Redis
 * master that stored it (`master_replid`, the id of that node's current reign as master: a replica
 * takes a new random one when it is promoted, and a reign once left never comes back), and a read
 * serves an entry only if its stamp is the replication id of the master that answers, checked in
 * the same script, so atomically: an entry a new master inherited from before a failover, which
 * may predate the last acknowledged write, is never served. See the README, "The failover guard",
 * for the argument path by path.
 *
 * What costs: `INFO replication` (about 1.5-3 µs of server time, ten times a GET). On one server
 * (standalone or Sentinel) reads are not a script: a MULTI / INFO / MGET / EXEC transaction runs the
 * same check for a whole batch of reads (redis-session.cache.ts), and keeps the values out of Lua;
 * READ_CURRENT is the Cluster's read, one key on its own master. Writes, leases and refills run no
 * INFO when the client knows the reign
 * (ARGV reign, from the connection's last read or from the INFO at connect): a stamp that is wrong
 * because the reign changed meanwhile names a reign that is over, so the entry reads as a miss.
 * An empty ARGV reign makes them read INFO themselves.
 *
 * Stored entry: `v<version>.<replid>\n<expiresAt>\n<data>\n<flash>`; a lease: `lease:<random>`.
 * The scripts that check an entry's stamp read only its head (GETRANGE), never the whole entry.
 */

const INFO_REPLID = `string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')`;
/** ARGV[1] when given, else the replication id read from INFO. */
const REIGN = `local reign = ARGV[1]
if reign == '' then reign = ${INFO_REPLID} end`;

/**
 * The Cluster's read (one key there, one master per key). Reads every key (KEYS) with one MGET,
 * serving an entry only if this node is a master and the entry was stored in its current reign.
 * Returns `{ replid or false, value or false, ... }` (false for the replid on a replica, which serves
 * nothing); a Cluster's writes read the reign themselves, so the client uses only the values.
 * The stamp is checked with plain finds, which make no new Lua string per entry.
 */
export const READ_CURRENT = `local info = redis.call('INFO', 'replication')
local replid = string.match(info, 'master_replid:(%w+)')
if replid == nil or string.find(info, 'role:master', 1, true) == nil then return { false } end
local values = redis.call('MGET', unpack(KEYS))
local stamp = '.' .. replid .. '\\n'
local result = { replid }
for i = 1, #KEYS do
  local value = values[i]
  if value then
    local dot = string.find(value, '.', 2, true)
    if string.byte(value, 1) ~= 118 or dot == nil or string.find(value, stamp, dot, true) ~= dot then value = false end
  end
  result[i + 1] = value
end
return result`;

/**
 * The stamp of the entry at KEYS[1], from its first 64 bytes (`v<version>.<replid>\n` fits): the
 * entry itself never enters Lua, so a check costs the same for a 100-byte session as for a 10 KB one.
 */
const HEAD = `local version, stamp = string.match(redis.call('GETRANGE', KEYS[1], 0, 63), '^v(%d+)%.(%w+)\\n')`;

/**
 * A committed write (ARGV: reign, version, entry, ttl ms), unless this reign's entry already holds
 * that version or a newer one; an entry of another reign, a lease, or anything unstamped is
 * replaced. The client sends the entry stamped (`v<version>.<reign>\n...`) when it knows the reign,
 * so Redis stores ARGV as it came; with an empty reign it sends the entry unstamped, and the script
 * reads INFO and stamps it.
 */
export const SET_IF_NEWER = `local reign = ARGV[1]
local entry = ARGV[3]
if reign == '' then
  reign = ${INFO_REPLID}
  entry = 'v' .. ARGV[2] .. '.' .. reign .. '\\n' .. entry
end
${HEAD}
if stamp == reign and tonumber(version) >= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], entry, 'PX', ARGV[4])
return 1`;

/** A lease for a refill (ARGV: reign, lease, ttl ms), unless a current entry or another reader's lease is there. */
export const TAKE_LEASE = `${REIGN}
local head = redis.call('GETRANGE', KEYS[1], 0, 63)
if string.sub(head, 1, 6) == 'lease:' then return 0 end
if string.match(head, '^v%d+%.(%w+)\\n') == reign then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

/** A refill (ARGV: reign, lease, version, entry without its stamp, ttl ms), only while the reader's lease still stands. */
export const FILL_IF_LEASED = `if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
${REIGN}
redis.call('SET', KEYS[1], 'v' .. ARGV[3] .. '.' .. reign .. '\\n' .. ARGV[4], 'PX', ARGV[5])
return 1`;
