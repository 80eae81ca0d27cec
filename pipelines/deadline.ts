// Waiting with a bound: a client call that may never answer (a broker away, a close that hangs) is waited for so
// long, not for ever. What was waited for runs on unwatched; the caller says what it gave up on.

/** 'late' when `p` has not settled within `ms`; a rejection counts as settled. */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<'settled' | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => 'settled' as const,
        () => 'settled' as const,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** `p`, or a rejection with `message` (made when the time is up) if `ms` pass first. */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(typeof message === 'string' ? message : message())), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
