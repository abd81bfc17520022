/** Injection tokens of core's own parts (the ports' tokens are in `@unicrm/model`). */
export const CORE_TOKENS = {
  /** The {@link CursorCodec} of the data directory. */
  CursorCodec: Symbol.for('unicrm.core.CursorCodec'),
} as const;
