// Starts `weir dev` on free loopback ports and resolves with its base URL.
// The gateway announces readiness with a JSON log line on stderr, so the
// tests wait on that event, never on a timer.
//
// With WEIR_STACK=kube it starts WEIR_KUBESTACK (test/kube/cmd/kubestack)
// instead: the same models configured as Kubernetes objects, served by the
// controller over xDS to extproc replicas and the harness, with keys
// required. Its ready line carries the issued key (apiKey); under `weir dev`
// apiKey is a dummy, since the default config needs none.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export const kube = process.env.WEIR_STACK === 'kube';

function command({ masterKey }) {
  const env = { ...process.env };
  delete env.WEIR_MASTER_KEY;
  if (kube) {
    const bin = process.env.WEIR_KUBESTACK;
    if (!bin) throw new Error('WEIR_STACK=kube needs WEIR_KUBESTACK pointing at the built test/kube/cmd/kubestack (make test-sdk builds it)');
    if (masterKey) throw new Error('the key admin API does not exist under the Kubernetes controller');
    return [bin, ['--log-level', 'warn'], env];
  }
  const bin = process.env.WEIR_BIN;
  if (!bin) throw new Error('WEIR_BIN must point at bin/weir-dev, the weir built with -tags dev (make test-sdk builds it and sets WEIR_BIN)');
  if (masterKey) env.WEIR_MASTER_KEY = masterKey;
  return [bin, ['dev', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--key-admin', '127.0.0.1:0', '--log-level', 'warn'], env];
}

// With masterKey, the gateway requires virtual keys and serves the key
// admin API (its address is keyAdmin).
export async function startGateway({ masterKey } = {}) {
  const [bin, args, env] = command({ masterKey });
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  const stderr = [];
  const ready = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stderr });
    rl.on('line', (line) => {
      stderr.push(line);
      try {
        const rec = JSON.parse(line);
        if (rec.msg === 'weir dev ready') resolve(rec);
      } catch { /* banner text */ }
    });
    child.on('exit', (code) => reject(new Error(`${bin} exited with ${code}:\n${stderr.join('\n')}`)));
  });
  const url = ready.url;
  return {
    baseURL: `${url}/v1`,
    url,
    keyAdmin: ready.key_admin ? `http://${ready.key_admin}` : '',
    apiKey: ready.api_key || 'sk-any',
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
