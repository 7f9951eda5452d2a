import { withLab } from '/work/main/test/netlab/netlab.ts';
import { LabControl } from '/work/main/test/engine/lab-nodes.ts';
import { joinPair, measurePair, SCENARIOS } from '/work/main/test/engine/matrix.ts';
const s = SCENARIOS.find((x) => x.name === process.argv[2])!;
await withLab('dbg', (lab) => { lab.publicHost({ name: 'control', secondaryAddr: true }); s.build(lab); }, async (lab) => {
  const control = await LabControl.start(lab, lab.hostNamed('control'));
  const { a, b } = await joinPair(lab, control, lab.hostNamed('x'), lab.hostNamed('y'), ['a', 'b'], s.xControlUrl?.(control));
  console.log(await measurePair(a, b, s.expect, 30000));
  console.log(JSON.stringify(await a.api.netcheck()));
  console.log(JSON.stringify(await b.api.netcheck()));
  console.log(JSON.stringify((await a.status()).peers));
  console.log('---A\n' + a.proc.output + '\n---B\n' + b.proc.output);
});
