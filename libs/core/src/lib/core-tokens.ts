/** Injection tokens of core's own parts (the ports' tokens are in `@unicrm/model`). */
export const CORE_TOKENS = {
  /** The {@link CursorCodec} of the data directory. */
  CursorCodec: Symbol.for('unicrm.core.CursorCodec'),
  /** The key (Buffer, 32 bytes) the connect page's CSRF tokens are made with: the same on every node. */
  ConnectKey: Symbol.for('unicrm.core.ConnectKey'),
  /** The {@link Pacer} of the process: the one the transport consults, and the one operations tag their calls in. */
  Pacer: Symbol.for('unicrm.core.Pacer'),
} as const;
