/**
 * Another user, without a second account: a child process started by setpriv(1) with the uid, gid and supplementary
 * groups a test chooses (root only). For the control socket's credential checks, on either side.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import type { Test } from 'tap'

export interface Identity {
  uid: number
  gid: number
  /** Supplementary groups (none when absent). */
  groups?: number[]
}

/** `nobody`: the usual unprivileged uid and gid. */
export const NOBODY: Identity = { uid: 65534, gid: 65534 }

/** setpriv's arguments for an identity, then the command. */
function setpriv(id: Identity, cmd: string[]): string[] {
  const groups = id.groups?.length ? ['--groups', id.groups.join(',')] : ['--clear-groups']
  return ['--reuid', String(id.uid), '--regid', String(id.gid), ...groups, '--', ...cmd]
}

/** Runs `node -e script` as `id`; resolves with its stdout lines and exit code. */
export function nodeAs(id: Identity, script: string, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn('setpriv', setpriv(id, [process.execPath, '-e', script, '--', ...args]), { stdio: 'pipe' })
    let stdout = ''
    let stderr = ''
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    c.on('error', reject)
    c.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/**
 * One request line sent to a Unix socket as `id`, on `count` connections one after the other: the first line of each
 * answer, or `error: <code>` for a connection that failed.
 */
export async function askAs(id: Identity, path: string, count = 1, line = '{"cmd":"status"}'): Promise<string[]> {
  const script = `
    const [path, line, count] = process.argv.slice(1)
    const one = () => new Promise((resolve) => {
      const s = require('net').createConnection(path)
      let out = ''
      s.on('connect', () => s.write(line + '\\n'))
      s.on('data', (d) => { out += d; if (out.includes('\\n')) s.destroy() })
      s.on('error', (e) => { out = 'error: ' + e.code; s.destroy() })
      s.on('close', () => resolve(out.split('\\n')[0]))
    })
    ;(async () => { for (let i = 0; i < Number(count); i++) console.log(await one()) })()`
  const r = await nodeAs(id, script, [path, line, String(count)])
  if (r.code !== 0) throw new Error(`client as uid ${id.uid} failed (${r.code}): ${r.stderr}`)
  return r.stdout.trim().split('\n')
}

/**
 * A process listening on the Unix socket `path` as `id`, answering every line with `answer`: an impostor in a
 * directory others may write. Resolves once it listens; killed on teardown.
 */
export async function listenAs(t: Test, id: Identity, path: string, answer: string): Promise<ChildProcess> {
  const script = `
    const srv = require('net').createServer((s) => s.on('data', () => s.write(process.argv[2] + '\\n')))
    srv.listen(process.argv[1], () => console.log('listening'))`
  const c = spawn('setpriv', setpriv(id, [process.execPath, '-e', script, '--', path, answer]), { stdio: 'pipe' })
  t.teardown(() => void c.kill('SIGKILL'))
  let stderr = ''
  c.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  await new Promise<void>((resolve, reject) => {
    let stdout = ''
    c.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
      if (stdout.includes('listening\n')) resolve()
    })
    c.on('exit', (code) => reject(new Error(`impostor exited ${code}: ${stderr}`)))
  })
  return c
}
