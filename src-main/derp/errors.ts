/** A peer violated the DERP wire protocol; only that connection is closed. */
export class DerpProtocolError extends Error {
  override name = 'DerpProtocolError';
}

/** The relay refused this node (admission control, bad mesh key, rate limit). */
export class DerpRefusedError extends Error {
  override name = 'DerpRefusedError';
}
