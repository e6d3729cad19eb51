// What a kubelet does to a container spec before it starts the process, for running an injected
// sidecar locally: environment from `env` (literal values and the downward API's fieldRef), `$(VAR)`
// expansion of env values, command and args, and volume mounts (here: a path prefix replaced by a folder).

/**
 * Kubernetes' `$(VAR)` expansion (k8s.io/kubernetes third_party/forked/golang/expansion): `$(NAME)`
 * becomes the value of a defined variable and stays as written otherwise; `$$` is a literal `$`;
 * any other `$` is kept.
 */
export function expand(input: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    if (input[i] !== '$' || i + 1 >= input.length) {
      out += input[i];
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i += 1;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      out += vars.get(name) ?? `$(${name})`;
      i = close;
    } else {
      out += `$${next}`;
      i += 1;
    }
  }
  return out;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string }[];
}

export interface ContainerProcess {
  argv: string[];
  env: Record<string, string>;
}

/**
 * The process the kubelet would start for a container. `fields` are the downward API's values
 * (`metadata.name`, `metadata.namespace`, `status.podIP`); `volumes` maps a volume name to the local
 * folder standing in for its mount.
 */
export function containerProcess(
  container: Container,
  fields: Record<string, string>,
  volumes: Record<string, string>,
): ContainerProcess {
  const vars = new Map<string, string>();
  for (const e of container.env ?? []) {
    const fieldPath = e.valueFrom?.fieldRef?.fieldPath;
    if (fieldPath !== undefined && fields[fieldPath] === undefined) {
      throw new Error(`env ${e.name}: no value for fieldRef ${fieldPath}`);
    }
    // Each value is expanded with the variables defined before it, as the kubelet does.
    vars.set(e.name, fieldPath !== undefined ? fields[fieldPath]! : expand(e.value ?? '', vars));
  }
  const mounted = (arg: string) => {
    for (const m of container.volumeMounts ?? []) {
      const dir = volumes[m.name];
      if (dir === undefined) throw new Error(`volume ${m.name}: no local folder given`);
      if (arg === m.mountPath || arg.startsWith(`${m.mountPath}/`)) return dir + arg.slice(m.mountPath.length);
    }
    return arg;
  };
  const argv = [...(container.command ?? []), ...(container.args ?? [])].map((a) => mounted(expand(a, vars)));
  return { argv, env: Object.fromEntries(vars) };
}
