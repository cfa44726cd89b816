import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { LOOPBACK, type Endpoint } from './endpoint.js';
import { MariaDbReplication } from './mariadb-replication.js';
import { pollUntil } from './poll.js';
import { parseInfo, redisInfo, withRedis } from './redis-admin.js';
import { CLUSTER_SLOTS, RedisClusterServer, type ClusterNode } from './redis-cluster.js';
import { RedisSentinelServer } from './redis-sentinel.js';
import { TcpProxy } from './tcp-proxy.js';
import { TIMEOUTS } from './topology-timeouts.js';

// Self-checks of the throwaway topologies the scale-out specs run on: each starts its
// own servers on 127.0.0.1 and stops them in `after`, whatever the tests did.

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(2)} s`;
}

/** Reads a socket until `expected` bytes arrived, or fails after `timeoutMs`. */
async function receive(socket: Socket, expected: number, timeoutMs = 2_000): Promise<string> {
  let data = '';
  const onData = (chunk: Buffer) => (data += chunk.toString());
  socket.on('data', onData);
  try {
    await pollUntil(`${expected} bytes through the proxy`, async () => (data.length >= expected ? true : undefined), {
      timeoutMs,
      intervalMs: 5,
    });
    return data;
  } finally {
    socket.off('data', onData);
  }
}

/** What a socket receives within `ms`: nothing, when the proxy holds it back. */
async function receivedWithin(socket: Socket, ms: number): Promise<string> {
  let data = '';
  const onData = (chunk: Buffer) => (data += chunk.toString());
  socket.on('data', onData);
  await sleep(ms);
  socket.off('data', onData);
  return data;
}

describe('TcpProxy', { timeout: TIMEOUTS.suite }, () => {
  // An upper-casing echo server: what comes back proves it went through the target.
  let target: Server;
  let proxy: TcpProxy;
  const clients: Socket[] = [];

  async function dial(): Promise<Socket> {
    const socket = connect(proxy.endpoint);
    clients.push(socket);
    socket.on('error', () => {});
    await once(socket, 'connect');
    return socket;
  }

  before(async () => {
    target = createServer((socket) => {
      socket.on('error', () => {});
      socket.on('data', (chunk) => socket.write(chunk.toString().toUpperCase()));
    });
    await new Promise<void>((resolve) => target.listen(0, LOOPBACK, resolve));
    proxy = new TcpProxy({ host: LOOPBACK, port: (target.address() as AddressInfo).port });
    await proxy.start();
  }, { timeout: TIMEOUTS.hook });
  after(async () => {
    for (const socket of clients) socket.destroy();
    await proxy?.stop();
    await new Promise((resolve) => target?.close(resolve));
  }, { timeout: TIMEOUTS.hook });

  it('forwards both ways; a paused connection stays open and silent, and resume delivers what it held, in order', { timeout: TIMEOUTS.test }, async () => {
    const socket = await dial();
    socket.write('a');
    assert.equal(await receive(socket, 1), 'A');

    proxy.pause();
    socket.write('b');
    socket.write('c');
    assert.equal(await receivedWithin(socket, 200), '');
    assert.equal(socket.destroyed, false);
    assert.equal(proxy.connections.length, 1);

    proxy.resume();
    assert.equal(await receive(socket, 2), 'BC');
  });

  it('holding the answers back still lets requests reach the target', { timeout: TIMEOUTS.test }, async () => {
    const socket = await dial();
    proxy.pause('from-target');
    try {
      socket.write('req');
      assert.equal(await receivedWithin(socket, 200), '');
    } finally {
      proxy.resume();
    }
    // The target answered while held: the answer was waiting, nothing was sent again.
    assert.equal(await receive(socket, 3), 'REQ');
  });

  it('a connection opened during a pause is held as well', { timeout: TIMEOUTS.test }, async () => {
    proxy.pause();
    try {
      const socket = await dial();
      socket.write('late');
      assert.equal(await receivedWithin(socket, 200), '');
      proxy.resume();
      assert.equal(await receive(socket, 4), 'LATE');
    } finally {
      proxy.resume();
    }
  });

  it('cutAll closes every open connection and the proxy keeps accepting new ones', { timeout: TIMEOUTS.test }, async () => {
    const open = [await dial(), await dial()];
    await pollUntil('both connections to reach the proxy', async () => (proxy.connections.length >= 2 ? true : undefined), {
      timeoutMs: 2_000,
    });
    proxy.cutAll();
    await Promise.all(open.map((socket) => (socket.destroyed ? undefined : once(socket, 'close'))));
    assert.equal(proxy.connections.length, 0);

    const fresh = await dial();
    fresh.write('again');
    assert.equal(await receive(fresh, 5), 'AGAIN');
  });
});

/** A key `master` serves, found by the helper's own slot computation. */
function keyOn(cluster: RedisClusterServer, master: ClusterNode, prefix: string): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}:${i}`;
    if (cluster.masterForKey(key).id === master.id) return key;
  }
}

describe('RedisClusterServer', { timeout: TIMEOUTS.suite }, () => {
  const cluster = new RedisClusterServer();
  let client: Cluster;
  let startup = '';

  before(async () => {
    const startedAt = performance.now();
    await cluster.start();
    startup = seconds(startedAt);
    client = new Cluster(cluster.startupNodes);
    client.on('error', () => {}); // node connections drop during failovers; commands report it
  }, { timeout: TIMEOUTS.hook });
  after(async () => {
    client?.disconnect();
    await cluster.stop();
  }, { timeout: TIMEOUTS.hook });

  // Set by the SIGKILL test, for the one after it.
  let deposed: ClusterNode | undefined;
  let successor: ClusterNode | undefined;

  it('serves all 16384 slots from three masters, each followed by one replica in sync', { timeout: TIMEOUTS.test }, async (t) => {
    t.diagnostic(`started in ${startup}`);
    assert.equal(cluster.masters.length, 3);
    assert.equal(cluster.nodes.length, 6);
    const covered = cluster.masters.flatMap((node) => node.slots).reduce((sum, [from, to]) => sum + to - from + 1, 0);
    assert.equal(covered, CLUSTER_SLOTS);

    for (const master of cluster.masters) {
      const replicas = cluster.replicasOf(master);
      assert.equal(replicas.length, 1, `one replica for ${master.port}`);
      const replication = await redisInfo(replicas[0], 'replication');
      assert.equal(replication.master_port, String(master.port));
      assert.equal(replication.master_link_status, 'up');
    }
    for (const node of cluster.nodes) {
      const info = parseInfo(await withRedis(node, (redis) => redis.call('CLUSTER', 'INFO') as Promise<string>));
      assert.equal(info.cluster_state, 'ok', `cluster_state on ${node.port}`);
      assert.equal(info.cluster_slots_ok, String(CLUSTER_SLOTS));
    }
  });

  it('masterForKey names the master Redis hashes the key to, and where ioredis stores it', { timeout: TIMEOUTS.test }, async () => {
    const keys = cluster.masters.map((master) => keyOn(cluster, master, 'placed'));
    keys.push('{user:1}:profile'); // the hash tag alone decides the slot
    for (const key of keys) {
      const owner = cluster.masterForKey(key);
      const serverSlot = await withRedis(owner, (redis) => redis.call('CLUSTER', 'KEYSLOT', key));
      assert.equal(cluster.masterForSlot(Number(serverSlot)).id, owner.id, `slot of ${key}`);

      assert.equal(await client.set(key, `value of ${key}`), 'OK');
      assert.equal(await withRedis(owner, (redis) => redis.get(key)), `value of ${key}`);
      const other = cluster.masters.find((node) => node.id !== owner.id)!;
      await assert.rejects(withRedis(other, (redis) => redis.get(key)), /MOVED/);
    }
    assert.equal(cluster.masterForKey('{user:1}:profile').id, cluster.masterForKey('{user:1}:session').id);
  });

  it('a SIGKILLed master is replaced by its replica, which serves its keys to the same ioredis client', { timeout: TIMEOUTS.failover }, async (t) => {
    const master = cluster.masters[0];
    const key = keyOn(cluster, master, 'failover');
    const [replica] = cluster.replicasOf(master);
    // Written and acknowledged by the replica before the crash, so it must survive it.
    await withRedis(master, async (redis) => {
      await redis.set(key, 'before the crash');
      assert.equal(await redis.call('WAIT', 1, 1_000), 1);
    });

    const killedAt = performance.now();
    const promoted = await cluster.killMaster(master);
    t.diagnostic(`master SIGKILLed, replica promoted and cluster ok in ${seconds(killedAt)}`);
    deposed = master;
    successor = promoted;

    assert.equal(promoted.id, replica.id);
    assert.equal(cluster.masterForKey(key).id, replica.id);
    assert.equal(await client.get(key), 'before the crash');
    assert.equal(await client.set(key, 'after the crash'), 'OK');
    assert.equal(await withRedis(promoted, (redis) => redis.get(key)), 'after the crash');
    for (const node of cluster.nodes.filter((node) => node.id !== master.id)) {
      const info = parseInfo(await withRedis(node, (redis) => redis.call('CLUSTER', 'INFO') as Promise<string>));
      assert.equal(info.cluster_state, 'ok', `cluster_state on ${node.port}`);
    }
  });

  it('a killed master restarted after the failover rejoins as a replica of its successor, and a manual failover gives its slots back', { timeout: TIMEOUTS.failover }, async () => {
    assert.ok(deposed && successor, 'the previous test failed a master over');
    const [old, heir] = [deposed, successor];
    assert.equal(cluster.nodes.find((node) => node.id === old.id)?.failed, true);
    const key = keyOn(cluster, heir, 'rejoin');
    await client.set(key, 'kept');

    await cluster.restart(old);
    const rejoined = cluster.nodes.find((node) => node.id === old.id)!;
    assert.equal(rejoined.role, 'replica');
    assert.equal(rejoined.masterId, heir.id);

    const master = await cluster.failover(rejoined);
    assert.equal(master.id, old.id);
    assert.equal(cluster.masterForKey(key).id, old.id);
    assert.equal(cluster.nodes.find((node) => node.id === heir.id)!.role, 'replica');
    assert.equal(await client.get(key), 'kept');
  });
});

describe('RedisClusterServer with replication proxies', { timeout: TIMEOUTS.suite }, () => {
  const cluster = new RedisClusterServer({ replicationProxy: true });
  let client: Cluster;
  let startup = '';

  before(async () => {
    const startedAt = performance.now();
    await cluster.start();
    startup = seconds(startedAt);
    client = new Cluster(cluster.startupNodes);
    client.on('error', () => {});
  }, { timeout: TIMEOUTS.hook });
  after(async () => {
    client?.disconnect();
    await cluster.stop();
  }, { timeout: TIMEOUTS.hook });

  /** A replica's own view of what it has, bypassing the proxy and the cluster's redirects. */
  async function readOnReplica(master: ClusterNode, key: string): Promise<string | null> {
    const [replica] = cluster.replicasOf(master);
    return withRedis(cluster.directEndpoint(replica), async (redis) => {
      await redis.call('READONLY');
      return redis.get(key);
    });
  }

  it('clients and replicas reach every master through its proxy', { timeout: TIMEOUTS.test }, async (t) => {
    t.diagnostic(`started in ${startup}`);
    assert.equal(cluster.masters.length, 3);
    for (const master of cluster.masters) {
      assert.notEqual(master.port, cluster.directEndpoint(master).port, 'announced at the proxy');
      const [replica] = cluster.replicasOf(master);
      const replication = await redisInfo(cluster.directEndpoint(replica), 'replication');
      assert.equal(replication.master_port, String(master.port));
      assert.equal(replication.master_link_status, 'up');
      const key = keyOn(cluster, master, 'proxied');
      assert.equal(await client.set(key, 'through the proxy'), 'OK');
      assert.equal(await withRedis(cluster.directEndpoint(master), (redis) => redis.get(key)), 'through the proxy');
    }
  });

  it("while a master's replication is paused its clients are served, and what they write reaches the replica only after resume", { timeout: TIMEOUTS.test }, async () => {
    const master = cluster.masters[0];
    const key = keyOn(cluster, master, 'held');
    await withRedis(cluster.directEndpoint(master), async (redis) => {
      await redis.set(key, 'first');
      assert.equal(await redis.call('WAIT', 1, 1_000), 1);
    });

    const links = await cluster.pauseReplication(master);
    assert.equal(links.length, 1);
    try {
      assert.equal(await client.set(key, 'second'), 'OK');
      assert.equal(await client.get(key), 'second');
      const acknowledged = await withRedis(cluster.directEndpoint(master), (redis) => redis.call('WAIT', 1, 300));
      assert.equal(acknowledged, 0, 'no replica acknowledged the SET');
      assert.equal(await readOnReplica(master, key), 'first');
    } finally {
      cluster.resumeReplication(master);
    }
    await pollUntil('the held SET to reach the replica', async () => ((await readOnReplica(master, key)) === 'second' ? true : undefined), {
      timeoutMs: 2_000,
    });
  });

  it('a write acknowledged while the replica is held back is lost when its master dies: the cluster then serves the value before it', { timeout: TIMEOUTS.failover }, async () => {
    const master = cluster.masters[1];
    const key = keyOn(cluster, master, 'lost');
    await withRedis(cluster.directEndpoint(master), async (redis) => {
      await redis.set(key, 'x = 1');
      assert.equal(await redis.call('WAIT', 1, 1_000), 1);
    });
    await cluster.pauseReplication(master);
    assert.equal(await client.set(key, 'x = 2'), 'OK');

    const promoted = await cluster.killMaster(master);
    assert.equal(cluster.masterForKey(key).id, promoted.id);
    assert.equal(await client.get(key), 'x = 1');
  });
});

/** Runs a command on whatever `new Redis(sentinelOptions)` is connected to: proves where ioredis went. */
async function servedPort(client: Redis): Promise<number> {
  return Number(parseInfo(await client.info('server')).tcp_port);
}

describe('RedisSentinelServer', { timeout: TIMEOUTS.suite }, () => {
  const topology = new RedisSentinelServer();
  let client: Redis;
  let startup = '';

  before(async () => {
    const startedAt = performance.now();
    await topology.start();
    startup = seconds(startedAt);
    client = new Redis(topology.sentinelOptions);
    client.on('error', () => {}); // refused connections while the master is down
  }, { timeout: TIMEOUTS.hook });
  after(async () => {
    client?.disconnect();
    await topology.stop();
  }, { timeout: TIMEOUTS.hook });

  it('a write through the Sentinel options lands on the master the Sentinels name and reaches the replica', { timeout: TIMEOUTS.test }, async (t) => {
    t.diagnostic(`started in ${startup}`);
    assert.equal(topology.sentinels.length, 3);
    const master = await topology.currentMaster();
    assert.equal(await client.set('sentinel:greeting', 'hello'), 'OK');
    assert.equal(await servedPort(client), master.port);
    assert.equal(await client.call('WAIT', 1, 1_000), 1);
    assert.equal(await withRedis(topology.initialReplica, (redis) => redis.get('sentinel:greeting')), 'hello');
  });

  it('after killMaster the Sentinels promote the replica and the same ioredis client reconnects to it', { timeout: TIMEOUTS.failover }, async (t) => {
    const killedAt = performance.now();
    const killed = await topology.killMaster();
    const promoted = await topology.waitForFailover(killed);
    t.diagnostic(`master SIGKILLed and replica promoted in ${seconds(killedAt)}`);

    assert.deepEqual(promoted, topology.initialReplica);
    assert.deepEqual(await topology.currentMaster(), promoted);
    assert.equal(await client.get('sentinel:greeting'), 'hello');
    assert.equal(await client.set('sentinel:greeting', 'hello again'), 'OK');
    assert.equal(await servedPort(client), promoted.port);
    const [role] = (await withRedis(promoted, (redis) => redis.call('ROLE'))) as [string];
    assert.equal(role, 'master');
  });
});

describe('RedisSentinelServer with a replication proxy', { timeout: TIMEOUTS.suite }, () => {
  const FAILOVER_TIMEOUT_MS = 3_000;
  const topology = new RedisSentinelServer({ replicationProxy: true, failoverTimeoutMs: FAILOVER_TIMEOUT_MS });
  let startedAt = 0;
  let startup = '';

  before(async () => {
    startedAt = performance.now();
    await topology.start();
    startup = seconds(startedAt);
  }, { timeout: TIMEOUTS.hook });
  after(() => topology.stop(), { timeout: TIMEOUTS.hook });

  /** Whether the server would run `REPLICAOF 127.0.0.1 1` for its default user (ACL DRYRUN runs nothing). */
  async function acceptsReplicaof(server: Endpoint): Promise<boolean> {
    const verdict = await withRedis(server, (redis) => redis.call('ACL', 'DRYRUN', 'default', 'REPLICAOF', LOOPBACK, '1'));
    return verdict === 'OK';
  }

  async function masterOffset(master: Endpoint): Promise<number> {
    return Number((await redisInfo(master, 'replication')).master_repl_offset);
  }
  async function replicaOffset(): Promise<number> {
    return Number((await redisInfo(topology.initialReplica, 'replication')).slave_repl_offset);
  }

  it('the replica follows the master through the proxy while the Sentinels reach the replica itself', { timeout: TIMEOUTS.test }, async (t) => {
    t.diagnostic(`started in ${startup}`);
    const proxy = topology.replicationProxy;
    const replication = await redisInfo(topology.initialReplica, 'replication');
    assert.equal(replication.master_port, String(proxy.port));
    assert.equal(replication.master_link_status, 'up');

    // The master sees the replica's link coming from the proxy's side of its one connection.
    const master = await topology.currentMaster();
    const replicaClients = String(await withRedis(master, (redis) => redis.call('CLIENT', 'LIST', 'TYPE', 'replica')));
    const [linkPort] = [...replicaClients.matchAll(/\baddr=127\.0\.0\.1:(\d+)/g)].map((match) => Number(match[1]));
    assert.deepEqual(proxy.connections.map((connection) => connection.upstreamLocalPort), [linkPort]);

    for (const sentinel of topology.sentinels) {
      const replicas = (await withRedis(sentinel, (redis) => redis.call('SENTINEL', 'REPLICAS', topology.masterName))) as string[][];
      const ports = replicas.map((fields) => Number(fields[fields.indexOf('port') + 1]));
      assert.deepEqual(ports, [topology.initialReplica.port], `replicas known to Sentinel ${sentinel.port}`);
    }
  });

  it('while the proxy is paused a SET the master acknowledged does not reach the replica; after resume it does', { timeout: TIMEOUTS.test }, async () => {
    const master = await topology.currentMaster();
    await withRedis(master, async (redis) => {
      await redis.set('held', 'first');
      assert.equal(await redis.call('WAIT', 1, 1_000), 1);

      topology.replicationProxy.pause('from-target');
      try {
        assert.equal(await redis.set('held', 'second'), 'OK');
        assert.equal(await redis.call('WAIT', 1, 300), 0, 'no replica acknowledged the SET');
        assert.ok((await replicaOffset()) < (await masterOffset(master)), 'replica offset behind the master');
        assert.equal(await withRedis(topology.initialReplica, (replica) => replica.get('held')), 'first');
      } finally {
        topology.replicationProxy.resume();
      }
      assert.equal(await redis.call('WAIT', 1, 1_500), 1);
    });
    assert.equal(await replicaOffset(), await masterOffset(master));
    assert.equal(await withRedis(topology.initialReplica, (replica) => replica.get('held')), 'second');
  });

  it("the Sentinels' periodic replica checks leave the replica on the proxy", { timeout: TIMEOUTS.test }, async () => {
    // Sentinel re-points a replica whose master address is not the master's once
    // failover-timeout has passed since it found the replica, at its next INFO of it;
    // a short INFO period makes that next check come at once.
    const setInfoPeriod = (ms: number) =>
      Promise.all(topology.sentinels.map((sentinel) => withRedis(sentinel, (redis) => redis.call('SENTINEL', 'DEBUG', 'INFO-PERIOD', ms))));
    await setInfoPeriod(100);
    try {
      await sleep(Math.max(0, startedAt + FAILOVER_TIMEOUT_MS + 1_000 - performance.now()) + 1_000);
      const replication = await redisInfo(topology.initialReplica, 'replication');
      assert.equal(replication.master_port, String(topology.replicationProxy.port));
      assert.equal(replication.master_link_status, 'up');
      assert.equal(await acceptsReplicaof(topology.initialReplica), false, 'kept on the proxy by refusing REPLICAOF');
    } finally {
      await setInfoPeriod(10_000);
    }
  });

  it('a write acknowledged while the replica is held back is lost when the master dies: the promoted replica serves the value before it', { timeout: TIMEOUTS.failover }, async () => {
    const master = await topology.currentMaster();
    await withRedis(master, async (redis) => {
      await redis.set('flag', 'x = 1');
      assert.equal(await redis.call('WAIT', 1, 1_000), 1);
      topology.replicationProxy.pause('from-target');
      assert.equal(await redis.set('flag', 'x = 2'), 'OK');
    });

    const killed = await topology.killMaster();
    const promoted = await topology.waitForFailover(killed);
    assert.deepEqual(promoted, topology.initialReplica);
    // A master must be able to become a replica again in a later failover.
    assert.equal(await acceptsReplicaof(promoted), true);

    const client = new Redis(topology.sentinelOptions);
    client.on('error', () => {});
    try {
      assert.equal(await servedPort(client), promoted.port);
      assert.equal(await client.get('flag'), 'x = 1');
    } finally {
      client.disconnect();
    }
  });
});

describe('MariaDbReplication', { timeout: TIMEOUTS.suite }, () => {
  const replication = new MariaDbReplication();
  let primary: Connection;
  let replica: Connection;
  let startup = '';

  before(async () => {
    const startedAt = performance.now();
    await replication.start();
    startup = seconds(startedAt);
    [primary, replica] = await Promise.all([createConnection(replication.primaryUrl), createConnection(replication.replicaUrl)]);
    await primary.query('CREATE TABLE replicated (id INT PRIMARY KEY, note VARCHAR(40))');
    await replication.waitForReplicaCatchUp();
  }, { timeout: TIMEOUTS.hook });
  after(async () => {
    // destroy(): no COM_QUIT to wait for, and it works on a server that is already gone.
    primary?.destroy();
    replica?.destroy();
    await replication.stop();
  }, { timeout: TIMEOUTS.hook });

  async function replicaComInsert(): Promise<number> {
    const [[row]] = await replica.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Com_insert'");
    return Number(row.Value);
  }

  it('a row inserted on the primary can be read on the replica once it caught up', { timeout: TIMEOUTS.test }, async (t) => {
    t.diagnostic(`started in ${startup}`);
    assert.deepEqual(await replication.replicaStatus(), { ioRunning: 'Yes', sqlRunning: 'Yes', lastError: '' });
    await primary.query("INSERT INTO replicated VALUES (1, 'from the primary')");
    await replication.waitForReplicaCatchUp();
    const [rows] = await replica.query<RowDataPacket[]>('SELECT note FROM replicated WHERE id = 1');
    assert.deepEqual(rows.map((row) => row.note), ['from the primary']);
  });

  it('statements replication applies on the replica are not counted as client statements', { timeout: TIMEOUTS.test }, async () => {
    const comInsertBefore = await replicaComInsert();
    const { statements } = await replication.replicaClientStatements(async () => {
      await primary.query("INSERT INTO replicated VALUES (2, 'a'), (3, 'b')");
      await primary.query("INSERT INTO replicated VALUES (4, 'c')");
      await replication.waitForReplicaCatchUp();
    });
    assert.equal(statements, 0);
    // The SQL thread did run the inserts on the replica (its Com_ counters show them),
    // so a count that included replication would have seen them.
    assert.ok((await replicaComInsert()) - comInsertBefore >= 2, 'replicated inserts executed on the replica');
    const [[{ n }]] = await replica.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM replicated');
    assert.equal(Number(n), 4);
  });

  it('every statement a client sends the replica is counted', { timeout: TIMEOUTS.test }, async () => {
    const { statements } = await replication.replicaClientStatements(async () => {
      await replica.query('SELECT 1');
      await replica.query('SELECT COUNT(*) FROM replicated');
      await replica.execute('SELECT note FROM replicated WHERE id = ?', [1]);
    });
    assert.equal(statements, 3);
  });
});
