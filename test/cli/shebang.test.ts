/**
 * dist/cli.js runs by its `#!` line (the bin, the unit, the image), and that line carries the one node flag that
 * only works on the command line: --no-memory-reducer (src/cli/heap.ts). Run the file itself, as they do.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { CLI } from '../helpers/netns.js'

t.test('the built CLI starts through its #! line with the memory reducer off', async (t) => {
  const first = readFileSync(CLI, 'utf8').split('\n', 1)[0]
  t.equal(first, '#!/usr/bin/env -S node --no-memory-reducer')
  const { NODE_OPTIONS: _, ...env } = process.env
  // What execve does with a `#!` line: the interpreter, the rest of the line as ONE argument, then the script and
  // its arguments (fs/binfmt_script.c); `env -S` splits that argument again.
  const [interpreter, arg] = [first.slice(2, first.indexOf(' ')), first.slice(first.indexOf(' ') + 1)]
  const out = execFileSync(interpreter, [arg, CLI, '--version'], { encoding: 'utf8', env })
  t.match(out.trim(), /^\d+\.\d+\.\d+/)
  const probe = execFileSync(interpreter, [`${arg} -p process.execArgv[0]`], { encoding: 'utf8', env })
  t.equal(probe.trim(), '--no-memory-reducer', 'node takes it as its own flag')
})
