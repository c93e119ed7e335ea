/**
 * How the command is bundled (scripts/bundle.mjs), shared with what the benchmark bundles to compare with it
 * (bench/floor-a.mjs): an ES module for Node 20, with koffi (a native addon that finds its .node file from its own
 * directory) and pino-pretty (optional, a development aid) left to node_modules.
 */
export const NODE_BUNDLE = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi', 'pino-pretty'],
  // CommonJS packages (pino, prom-client, ...) require() Node's built-ins; an ES module has no require of its own.
  banner: { js: "import { createRequire as __xdplinkdCreateRequire } from 'node:module'; const require = __xdplinkdCreateRequire(import.meta.url);" },
  logLevel: 'warning',
}
