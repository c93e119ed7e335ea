#!/usr/bin/env node
// Counts the leaf assertions of the last tap run (.tap/test-results/**/*.tap) and prints one line for CI:
// "N passed, N failed, N skipped". A subtest's own summary point is not counted again; a test file that failed
// without a failing assertion (a crash, a timeout) counts as one failure.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Parser } from 'tap-parser'

const dir = process.argv[2] ?? '.tap/test-results'
const counts = { passed: 0, failed: 0, skipped: 0 }
const failures = []

function walk(d) {
  let out = []
  for (const e of readdirSync(d)) {
    const p = join(d, e)
    if (statSync(p).isDirectory()) out = out.concat(walk(p))
    else if (p.endsWith('.tap')) out.push(p)
  }
  return out
}

function attach(parser, file, path) {
  let childPending = false
  parser.on('child', (c) => {
    childPending = true
    attach(c, file, [...path, c.name ?? ''])
  })
  parser.on('assert', (a) => {
    if (childPending) {
      childPending = false
      return
    }
    if (a.skip || a.todo) counts.skipped++
    else if (a.ok) counts.passed++
    else {
      counts.failed++
      failures.push(`${file}: ${[...path, a.name].filter(Boolean).join(' > ')}`)
    }
  })
}

let files = []
try {
  files = walk(dir)
} catch {
  console.error(`no test results under ${dir}`)
}
for (const file of files) {
  const before = counts.failed
  const p = new Parser()
  attach(p, file, [])
  const done = new Promise((r) => p.on('complete', r))
  p.end(readFileSync(file, 'utf8'))
  const results = await done
  if (!results.ok && counts.failed === before) {
    counts.failed++
    failures.push(`${file}: failed without a failing assertion (crash or timeout?)`)
  }
}
if (process.argv.includes('--tap-failed') && counts.failed === 0) {
  counts.failed = 1
  failures.push('tap exited non-zero')
}
for (const f of failures) console.log(`failed: ${f}`)
console.log(`${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`)
