// Child process for test/fuzz.test.ts and test/pt2-files.test.ts:
//   node fuzz-load.js MUTANTS_JSON START [BASES_JSON]
// Loads each mutant ({ file, base }) from START on (test/fixtures/mutants.py, mutants_pt2.py and
// hostile_pt2.py wrote them), runs forward and a capture of its base's layer on the ones that
// load, and reports each on stdout, written synchronously so that the parent knows which one was
// running if this process dies. BASES_JSON adds bases: { name: { inputs: [{ data, shape, dtype }], layer } }.
//   start <i>
//   done <i> <loaded|load:CODE|run:CODE> <rss bytes>
'use strict';
const fs = require('fs');
const torch = require('../../dist/lib');

const [listFile, startArg, basesFile] = process.argv.slice(2);
const mutants = JSON.parse(fs.readFileSync(listFile, 'utf8'));

// What each base model takes, and a layer of it to capture.
const bases = {
  'resnet-tiny.pt': { inputs: () => [torch.zeros([1, 3, 32, 32])], layer: 'layer1' },
  'resnet-tiny-scripted.pt': { inputs: () => [torch.zeros([1, 3, 32, 32])], layer: 'layer1' },
  'bert-tiny.pt': {
    inputs: () => [torch.tensor(new BigInt64Array(8).fill(5n), [1, 8]), torch.tensor(new BigInt64Array(8).fill(1n), [1, 8])],
    layer: 'encoder.layer.0',
  },
};

if (basesFile) {
  for (const [name, base] of Object.entries(JSON.parse(fs.readFileSync(basesFile, 'utf8')))) {
    bases[name] = { inputs: () => base.inputs.map((i) => torch.tensor(i.data, i.shape, i.dtype)), layer: base.layer };
  }
}

const say = (line) => fs.writeSync(1, `${line}\n`);

async function one(mutant) {
  let model;
  try {
    model = await torch.load(mutant.file);
  } catch (error) {
    return `load:${error.code ?? 'UNTYPED'}`;
  }
  try {
    const base = bases[mutant.base];
    await model.forward(...base.inputs());
    await torch.activations(model, base.layer, ...base.inputs());
    return 'loaded';
  } catch (error) {
    return `run:${error.code ?? 'UNTYPED'}`;
  } finally {
    model.dispose();
  }
}

(async () => {
  for (let i = Number(startArg); i < mutants.length; i++) {
    say(`start ${i}`);
    say(`done ${i} ${await one(mutants[i])} ${process.memoryUsage().rss}`);
  }
})();
