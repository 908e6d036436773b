/** Types for cluster-key-slot, the hash-slot function ioredis itself uses (the package ships none). */
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0 to 16383) of a key, honouring `{hash tags}`. */
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
