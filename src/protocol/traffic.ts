/** Counts the bytes mesh's protocols move per peer (payload on our streams, before noise and yamux). */
export interface TrafficMeter {
  received(peer: string, bytes: number): void;
  sent(peer: string, bytes: number): void;
}

/** The reader and writer options that report a stream's bytes to `traffic` as `peer`'s. */
export function metered(traffic: TrafficMeter | undefined, peer: string): { onBytesRead?: (bytes: number) => void; onBytesWritten?: (bytes: number) => void } {
  if (traffic === undefined) return {};
  return { onBytesRead: (bytes) => traffic.received(peer, bytes), onBytesWritten: (bytes) => traffic.sent(peer, bytes) };
}
