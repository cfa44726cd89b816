import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOOPBACK } from './endpoint.js';
import { pollUntil } from './poll.js';
import { TcpProxy } from './tcp-proxy.js';

// Self-checks of the throwaway topologies the scale-out specs run on: each starts its
// own servers on 127.0.0.1 and stops them in `after`, whatever the tests did.

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

describe('TcpProxy', () => {
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
  });
  after(async () => {
    for (const socket of clients) socket.destroy();
    await proxy?.stop();
    await new Promise((resolve) => target?.close(resolve));
  });

  it('forwards both ways; a paused connection stays open and silent, and resume delivers what it held, in order', async () => {
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

  it('holding the answers back still lets requests reach the target', async () => {
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

  it('a connection opened during a pause is held as well', async () => {
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

  it('cutAll closes every open connection and the proxy keeps accepting new ones', async () => {
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
