import t from 'tap'
import { BPF_PROG_TYPE_XDP, BPF_XDP, BPF_XDP_DEVMAP, type ProgramSpec } from '../../src/ffi/bpf-object.js'
import { describeSelectError, selectProgram } from '../../src/programs/select.js'

const xdp = (name: string, sectionName = 'xdp'): ProgramSpec => ({
  name,
  sectionName,
  type: BPF_PROG_TYPE_XDP,
  typeName: 'xdp',
  expectedAttachType: BPF_XDP,
})
const tc: ProgramSpec = { name: 'tc_other', sectionName: 'tc', type: 3, typeName: 'sched_cls', expectedAttachType: 0 }
const devmap: ProgramSpec = { ...xdp('in_devmap', 'xdp/devmap'), expectedAttachType: BPF_XDP_DEVMAP }

t.test('the only XDP program is picked when none is named', async (t) => {
  const r = selectProgram([tc, xdp('only'), devmap])
  t.ok(r.ok)
  if (r.ok) t.equal(r.value.name, 'only')
})

t.test('several XDP programs and no name: the error lists them', async (t) => {
  const r = selectProgram([xdp('xdp_first'), tc, xdp('xdp_second')])
  t.same(r, { ok: false, error: { kind: 'ambiguous', candidates: ['xdp_first', 'xdp_second'] } })
  if (!r.ok) t.match(describeSelectError(r.error), /2 XDP programs \(xdp_first, xdp_second\)/)
})

t.test('by name', async (t) => {
  const r = selectProgram([xdp('a'), xdp('b')], 'b')
  t.ok(r.ok && r.value.name === 'b')
})

t.test('a named program that is missing, or not for an interface', async (t) => {
  const missing = selectProgram([xdp('a'), tc], 'zzz')
  t.equal(missing.ok, false)
  if (!missing.ok) {
    t.equal(missing.error.kind, 'not-found')
    t.match(describeSelectError(missing.error), /a \(xdp, SEC\("xdp"\)\), tc_other \(sched_cls, SEC\("tc"\)\)/)
  }
  const notXdp = selectProgram([tc], 'tc_other')
  t.equal(!notXdp.ok && notXdp.error.kind, 'not-xdp')
  if (!notXdp.ok) t.match(describeSelectError(notXdp.error), /sched_cls program/)
  const dm = selectProgram([devmap], 'in_devmap')
  t.equal(!dm.ok && dm.error.kind, 'not-xdp', 'devmap programs cannot attach to an interface')
})

t.test('no XDP program at all', async (t) => {
  const r = selectProgram([tc, devmap])
  t.equal(!r.ok && r.error.kind, 'none')
  t.equal(selectProgram([]).ok, false)
})
