import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientIp, deviceLabel, deviceOf, MAX_USER_AGENT } from './device-details.js';

const CHROME_MAC = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36';
const SAFARI_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
const FIREFOX_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';

describe('deviceLabel', () => {
  it('names browser, major version and system the way a devices page shows them', () => {
    assert.equal(deviceLabel(CHROME_MAC), 'Chrome 130 on macOS');
    assert.equal(deviceLabel(SAFARI_IPHONE), 'Safari 17 on iPhone');
    assert.equal(deviceLabel(FIREFOX_WINDOWS), 'Firefox 128 on Windows');
  });

  it('gives no label for an agent that names no browser', () => {
    assert.equal(deviceLabel('curl/8.5.0'), null);
    assert.equal(deviceLabel(''), null);
  });
});

describe('clientIp', () => {
  it('keeps the address in full, or only its /24 (IPv4) or /48 (IPv6)', () => {
    assert.equal(clientIp('203.0.113.77', 'full'), '203.0.113.77');
    assert.equal(clientIp('203.0.113.77', 'truncated'), '203.0.113.0');
    assert.equal(clientIp('2001:db8:85a3:8d3:1319:8a2e:370:7348', 'truncated'), '2001:db8:85a3::');
    assert.equal(clientIp('2001:db8::1', 'truncated'), '2001:db8:0::');
  });

  it('shows an IPv4 client of a dual-stack socket as IPv4, and records nothing that is not an address', () => {
    assert.equal(clientIp('::ffff:127.0.0.1', 'full'), '127.0.0.1');
    assert.equal(clientIp('::ffff:10.1.2.3', 'truncated'), '10.1.2.0');
    assert.equal(clientIp(undefined, 'full'), null);
    assert.equal(clientIp('not-an-ip', 'full'), null);
  });
});

describe('deviceOf', () => {
  const devices = (ip: 'full' | 'truncated' | false, userAgent = true) => ({ devices: { ip, userAgent } });

  it('reads the user agent and the framework-resolved IP, never a forwarding header', () => {
    const request = { headers: { 'user-agent': CHROME_MAC, 'x-forwarded-for': '198.51.100.9' }, ip: '203.0.113.77' };
    assert.deepEqual(deviceOf(request, devices('full')), { userAgent: CHROME_MAC, ip: '203.0.113.77', device: 'Chrome 130 on macOS' });
    assert.deepEqual(deviceOf(request, devices(false, false)), { userAgent: null, ip: null, device: null });
  });

  it('stores a long or non-ASCII agent cut and made printable, so it always fits its column', () => {
    const long = deviceOf({ headers: { 'user-agent': `${CHROME_MAC} ${'x'.repeat(1000)}` } }, devices('full'));
    assert.equal(long.userAgent!.length, MAX_USER_AGENT);
    assert.equal(deviceOf({ headers: { 'user-agent': 'Bot\u00e9\u0000' } }, devices('full')).userAgent, 'Bot??');
  });
});
