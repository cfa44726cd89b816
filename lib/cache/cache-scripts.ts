/**
 * The Lua scripts of the Redis cache. Every entry is stamped with the replication id of the Redis
 * master that stored it (`master_replid`, which a replica takes a new one of when it is promoted):
 * an entry a new master inherited from before a failover, which may predate the last acknowledged
 * write, is then never served or kept. The check runs in Redis, on the node that answers, so it
 * holds whatever the client believes the topology to be, and costs no extra round trip.
 *
 * Stored entry: `v<version>.<replid>\n<expiresAt>\n<data>\n<flash>`; a lease: `lease:<random>`.
 */

const REPLID = `string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')`;

/** The entry, if it was stored by this master (not inherited through a failover); else nil. */
export const READ_CURRENT = `local value = redis.call('GET', KEYS[1])
if not value then return false end
local stamp = string.match(value, '^v%d+%.(%w+)\\n')
if stamp == nil or stamp ~= ${REPLID} then return false end
return value`;

/**
 * A committed write (ARGV: version, entry without its stamp, ttl ms), unless this master already
 * holds that version or a newer one; an inherited entry, a lease, or anything unstamped is replaced.
 */
export const SET_IF_NEWER = `local replid = ${REPLID}
local current = redis.call('GET', KEYS[1])
if current then
  local version, stamp = string.match(current, '^v(%d+)%.(%w+)\\n')
  if stamp == replid and tonumber(version) >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], 'v' .. ARGV[1] .. '.' .. replid .. '\\n' .. ARGV[2], 'PX', ARGV[3])
return 1`;

/** A lease for a refill (ARGV: lease, ttl ms), unless a current entry or another reader's lease is there. */
export const TAKE_LEASE = `local current = redis.call('GET', KEYS[1])
if current then
  if string.sub(current, 1, 6) == 'lease:' then return 0 end
  local stamp = string.match(current, '^v%d+%.(%w+)\\n')
  if stamp ~= nil and stamp == ${REPLID} then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/** A refill (ARGV: lease, version, entry without its stamp, ttl ms), only while the reader's lease still stands. */
export const FILL_IF_LEASED = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], 'v' .. ARGV[2] .. '.' .. ${REPLID} .. '\\n' .. ARGV[3], 'PX', ARGV[4])
return 1`;
