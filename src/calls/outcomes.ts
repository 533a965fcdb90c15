import type { Outcome } from '../store/call-record.js';

/** What a final SIP failure from the agent's side means for the call record (and which Graph action follows). */
export function outcomeOfSipFailure(status: number): Outcome {
  if (status === 486 || status === 600) return 'busy';
  if (status === 603) return 'rejected';
  if (status === 408 || status === 480) return 'no_answer';
  if (status === 487) return 'cancelled';
  return 'failed';
}

export function sipClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}
