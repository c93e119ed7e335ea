/**
 * What the launcher (launch/bundle.ts, in dist/cli.js) did with the code cache, for the bundle it started to log
 * (commands/run.ts). The two are bundled apart, so the report goes through a global under a registered symbol.
 */
export type CodeCacheReport = { used: true; path: string } | { used: false; path: string; why: string }

const KEY = Symbol.for('xdplinkd.codeCache')

export function setCodeCacheReport(r: CodeCacheReport): void {
  ;(globalThis as Record<symbol, unknown>)[KEY] = r
}

/** undefined: not started by the launcher (a unit test importing the modules). */
export function codeCacheReport(): CodeCacheReport | undefined {
  return (globalThis as Record<symbol, unknown>)[KEY] as CodeCacheReport | undefined
}
