// What a login stores, the same in every app with a stored session, in the two sizes the bench
// measures: `small`, the few fields the bench always had, and `1k`, a realistic session of about
// 1 KB as JSON (a user object and a 10-item cart), where parsing and copying start to show.

export type SessionSize = 'small' | '1k';

export function sessionSizeOf(query: unknown): SessionSize {
  return query === '1k' ? '1k' : 'small';
}

const CART_ITEMS = [
  'Stainless steel water bottle, 750 ml',
  'Merino wool hiking socks (pair)',
  'USB-C charging cable, 2 m',
  'Ceramic pour-over coffee dripper',
  'Paperback: The Pragmatic Programmer',
  'Bamboo cutting board, large',
  'LED desk lamp with dimmer',
  'Noise-cancelling earbuds',
  'Cast iron skillet, 26 cm',
  'Organic green tea, 100 bags'
];

/** A fresh object every call: the apps mutate what they store. `userId` is 42 in both, which the bench's checks read. */
export function sessionData(size: SessionSize): Record<string, unknown> {
  if (size === 'small') return { userId: 42, cart: ['apple'] };
  return {
    userId: 42,
    user: {
      id: 42,
      email: 'ada.lovelace@example.com',
      name: 'Ada Lovelace',
      roles: ['customer', 'beta'],
      locale: 'en-GB',
      timezone: 'Europe/London',
      plan: 'plus',
      verified: true,
      lastLoginAt: '2025-05-14T08:21:07.000Z'
    },
    cart: CART_ITEMS.map((name, i) => ({ sku: `SKU-${10421 + i * 37}`, name, qty: 1 + (i % 3), unitPrice: Math.round((4.5 + i * 3.25) * 100) / 100 }))
  };
}


/**
 * Keys the contention scenarios write (`k0`, `k1`, … one per connection; `shared`; the probe's
 * `probe`): plain names that cannot clash with what the apps keep in a session themselves
 * (express-session's `cookie`, the login's fields).
 */
export const CONTENTION_KEY = /^(k\d{1,4}|shared|probe)$/;
