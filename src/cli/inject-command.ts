// The `inject` command's options and I/O; the work is in inject.ts and inject-sidecar.ts.
import fs from 'node:fs';
import { Option, type Command } from 'commander';
import YAML from 'yaml';
import { injectManifests, injectableKinds } from './inject.js';
import {
  bootstrapConfigMap,
  configMapName,
  defaultEnvoyImage,
  defaultXdsAddress,
  injectRoles,
  type InjectRole,
} from './inject-sidecar.js';

export function registerInject(cli: Command): void {
  cli
    .command('inject')
    .description(
      `add an Envoy sidecar (originate, terminate or both) to the pods of ${injectableKinds.join(', ')} ` +
        'or List manifests; prints them again, everything else unchanged. Apply the ConfigMap of --print-configmap ' +
        'to each namespace first',
    )
    .option('-f, --filename <file>', 'a YAML file of manifests, or - for standard input')
    .addOption(
      new Option(
        '--role <role>',
        'the sidecar: originate (the app connects to 127.0.0.1:PORT of a Service), terminate, or both',
      ).choices([...injectRoles, 'both']),
    )
    .option('--image <image>', 'the Envoy image', defaultEnvoyImage)
    .option('--xds-address <host:port>', 'where the shim serves ADS (in the ConfigMap)', defaultXdsAddress)
    .option(
      '--print-configmap',
      `print the ConfigMap ${configMapName} with the sidecars' bootstraps instead (one per namespace)`,
    )
    .option('--namespace <ns>', 'with --print-configmap: its namespace', 'default')
    .action((o) => {
      if (o.printConfigmap) {
        const stringify = (v: unknown) => YAML.stringify(v, { aliasDuplicateObjects: false, lineWidth: 0 });
        process.stdout.write(stringify(bootstrapConfigMap(o.namespace, o.xdsAddress, stringify)));
        return;
      }
      if (!o.filename) throw new Error('inject: -f FILE (or -f - for standard input) is required');
      if (!o.role) throw new Error('inject: --role originate|terminate|both is required');
      const file = o.filename === '-' ? '<stdin>' : String(o.filename);
      if (o.filename !== '-' && !fs.existsSync(o.filename)) throw new Error(`${o.filename} does not exist`);
      const text = fs.readFileSync(o.filename === '-' ? 0 : o.filename, 'utf8');
      const roles: InjectRole[] = o.role === 'both' ? [...injectRoles] : [o.role as InjectRole];
      const result = injectManifests(file, text, { roles, image: o.image });
      for (const line of result.errors) process.stderr.write(`${line}\n`);
      if (result.errors.length > 0) {
        process.exitCode = 1;
        return;
      }
      process.stdout.write(result.output);
    });
}
