// The package ships no types. It is the one ioredis routes commands with, so a slot
// computed here is the slot ioredis sends the key to.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot of `key`: CRC16 of its hash tag (or of the whole key) mod 16384. */
  export default function calculateSlot(key: string | Buffer): number;
}
