/** Resolves on the first SIGINT or SIGTERM (and stops listening), so a command can end cleanly. */
export function untilSignal(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (sig: NodeJS.Signals): void => {
      for (const s of signals) process.off(s, handler)
      resolve(sig)
    }
    for (const s of signals) process.on(s, handler)
  })
}
