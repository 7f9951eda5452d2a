// Typed errors for the port-mapping clients. Every failure a gateway can cause surfaces as
// one of these, never as an uncaught exception or a crash.

export type PortmapErrorCode =
  | 'timeout' // no valid answer before the deadline
  | 'malformed' // a reply that failed parsing (truncated, wrong version, wrong opcode ...)
  | 'result' // the gateway answered with a non-success result code
  | 'http' // UPnP: HTTP-level failure (status, size cap, redirects)
  | 'soap' // UPnP: a SOAP fault (UPnPError)
  | 'no-gateway' // no default gateway could be found
  | 'closed'; // the client was closed while the request was in flight

export class PortmapError extends Error {
  constructor(
    readonly code: PortmapErrorCode,
    message: string,
    /** Protocol result code (NAT-PMP/PCP) or UPnP errorCode, when the gateway sent one. */
    readonly resultCode?: number,
  ) {
    super(message);
    this.name = 'PortmapError';
  }
}
