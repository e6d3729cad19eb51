// `make fuzz-inputs`: the input fuzzers with more cases than the suite runs, and a random seed unless
// FUZZ_SEED is given; prints the case counts and the seed to reproduce a failure with.
import { checkBatches } from './batches.js';
import { fuzzInputs } from './inputs.js';

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const runs = Number(process.env.FUZZ_RUNS ?? 2000);
const batches = Number(process.env.FUZZ_BATCHES ?? 20);
console.log(
  `fuzz-inputs: seed ${seed} (FUZZ_SEED=${seed} to repeat), ${runs} runs per property, ${batches} Envoy batches`,
);
const started = Date.now();
const counts = fuzzInputs({ seed, runs });
console.log(
  `annotation cases ${counts.annotationCases} (listeners served ${counts.servicesServed}); file cases ` +
    `${counts.fileCases} (${counts.filesThatParsed} parsed as YAML): no crash, nothing refused by the resource check`,
);
const { verdicts, resources } = await checkBatches({ seed, batches });
const failed = verdicts.filter((v) => !v.ok);
console.log(
  `envoy --mode validate: ${verdicts.length} runs over ${resources} served resources, ${failed.length} rejected ` +
    `(${Math.round((Date.now() - started) / 1000)} s)`,
);
for (const v of failed) console.log(`REJECTED ${v.name}:\n${v.output.slice(0, 2000)}`);
process.exit(failed.length > 0 ? 1 : 0);
