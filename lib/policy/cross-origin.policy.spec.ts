import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ExecutionContext } from '@nestjs/common';
import { SessionCsrfError } from '../ez-session.errors.js';
import { SkipCsrf } from '../decorators/skip-csrf.decorator.js';
import type { HttpRequestLike } from '../http/http-request.js';
import { crossOriginRefusal, fromAnotherOrigin } from './cross-origin.policy.js';
import { exposesToken } from './token-exposure.policy.js';

const OWN = 'https://app.example.test';
const on = { csrf: { trustedOrigins: new Set(['https://front.example.test']) } };

function request(method: string, headers: Record<string, string>, extra: Partial<HttpRequestLike> = {}): HttpRequestLike {
  return { method, headers: { host: 'app.example.test', ...headers }, protocol: 'https', ...extra };
}

describe('fromAnotherOrigin (Go 1.25 CrossOriginProtection order)', () => {
  const own = () => OWN;
  const trusted = new Set(['https://front.example.test']);
  const cases: Array<[Record<string, string>, boolean]> = [
    [{}, false],
    [{ 'sec-fetch-site': 'same-origin' }, false],
    [{ 'sec-fetch-site': 'none' }, false],
    [{ 'sec-fetch-site': 'same-site' }, true],
    [{ 'sec-fetch-site': 'cross-site' }, true],
    [{ 'sec-fetch-site': 'Same-Origin' }, true],
    [{ 'sec-fetch-site': 'same-origin', origin: 'https://attacker.test' }, false],
    [{ 'sec-fetch-site': 'cross-site', origin: 'https://front.example.test' }, false],
    [{ origin: OWN }, false],
    [{ origin: 'https://attacker.test' }, true],
    [{ origin: 'http://app.example.test' }, true],
    [{ origin: 'null' }, true],
    [{ 'sec-fetch-mode': 'cors' }, false]
  ];
  for (const [headers, refused] of cases) {
    it(`${JSON.stringify(headers)}: ${refused ? 'another origin' : 'passes'}`, () => {
      assert.equal(fromAnotherOrigin(headers, own, trusted), refused);
    });
  }
});

describe('crossOriginRefusal', () => {
  const cross = { 'sec-fetch-site': 'cross-site' };

  it('refuses unsafe methods from another origin with the cookie or with no token', () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'PROPFIND', 'post']) {
      assert.ok(crossOriginRefusal(request(method, cross), 'cookie', on, undefined) instanceof SessionCsrfError, method);
      assert.ok(crossOriginRefusal(request(method, cross), undefined, on, undefined) instanceof SessionCsrfError, method);
    }
  });

  it('lets safe methods, Bearer tokens and csrf: false through', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS', 'get']) assert.equal(crossOriginRefusal(request(method, cross), 'cookie', on, undefined), undefined, method);
    assert.equal(crossOriginRefusal(request('POST', cross), 'bearer', on, undefined), undefined);
    assert.equal(crossOriginRefusal(request('POST', cross), 'cookie', { csrf: false }, undefined), undefined);
    assert.equal(crossOriginRefusal({ headers: cross }, 'cookie', on, undefined), undefined, 'no method: not an HTTP request');
  });

  it("compares Origin with the request's own origin as the framework resolved it", () => {
    assert.equal(crossOriginRefusal(request('POST', { origin: OWN }), 'cookie', on, undefined), undefined);
    assert.ok(crossOriginRefusal(request('POST', { origin: OWN }, { protocol: 'http' }), 'cookie', on, undefined));
    assert.equal(crossOriginRefusal(request('POST', { origin: 'https://app.example.test:8443' }, { host: 'app.example.test:8443' }), 'cookie', on, undefined), undefined);
    assert.equal(crossOriginRefusal(request('POST', { origin: 'https://app.example.test' }, { host: 'APP.example.test:443' }), 'cookie', on, undefined), undefined, 'default port and case as the URL parser writes them');
    assert.equal(crossOriginRefusal({ method: 'POST', headers: { host: 'a.test', origin: 'http://a.test' } }, 'cookie', on, undefined), undefined, "Node's own request: Host header, no TLS");
    assert.ok(crossOriginRefusal({ method: 'POST', headers: { origin: 'http://a.test' } }, 'cookie', on, undefined), 'no Host: nothing to match');
  });

  it('reads @SkipCsrf() from the handler or the class of the context, never from anything else', () => {
    class Hooks {
      @SkipCsrf()
      exempt() {}
      checked() {}
    }
    @SkipCsrf()
    class Open {
      any() {}
    }
    const context = (handler: () => void, type: object) => ({ getHandler: () => handler, getClass: () => type }) as unknown as ExecutionContext;
    assert.equal(crossOriginRefusal(request('POST', cross), 'cookie', on, context(Hooks.prototype.exempt, Hooks)), undefined);
    assert.equal(crossOriginRefusal(request('POST', cross), 'cookie', on, context(Open.prototype.any, Open)), undefined);
    assert.ok(crossOriginRefusal(request('POST', cross), 'cookie', on, context(Hooks.prototype.checked, Hooks)));
    assert.ok(crossOriginRefusal(request('POST', cross), 'cookie', on, undefined), 'a bare request');
  });
});

describe('exposesToken', () => {
  it("'auto': to Bearer clients, and to requests with neither Sec-Fetch-Site nor Origin", () => {
    assert.equal(exposesToken('auto', request('POST', {}), 'cookie'), true);
    assert.equal(exposesToken('auto', request('POST', { 'sec-fetch-mode': 'cors' }), 'cookie'), true, "Node's fetch");
    assert.equal(exposesToken('auto', request('POST', {}), undefined), true);
    assert.equal(exposesToken('auto', request('POST', { 'sec-fetch-site': 'same-origin' }), 'cookie'), false);
    assert.equal(exposesToken('auto', request('POST', { 'sec-fetch-site': 'none' }), undefined), false);
    assert.equal(exposesToken('auto', request('POST', { origin: OWN }), 'cookie'), false, 'a browser over plain HTTP sends Origin on unsafe requests');
    assert.equal(exposesToken('auto', request('POST', { 'sec-fetch-site': 'same-origin', origin: OWN }), 'bearer'), true);
  });

  it("'always' and 'never'", () => {
    assert.equal(exposesToken('always', request('POST', { 'sec-fetch-site': 'same-origin' }), 'cookie'), true);
    assert.equal(exposesToken('never', request('POST', {}), 'bearer'), false);
  });
});
