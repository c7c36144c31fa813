// Starts `weir dev` on free loopback ports and resolves with its base URL.
// The gateway announces readiness with a JSON log line on stderr, so the
// tests wait on that event, never on a timer.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

// With masterKey, the gateway requires virtual keys and serves the key
// admin API (its address is keyAdmin).
export async function startGateway({ masterKey } = {}) {
  const bin = process.env.WEIR_BIN;
  if (!bin) throw new Error('WEIR_BIN must point at bin/weir-dev, the weir built with -tags dev (make test-sdk builds it and sets WEIR_BIN)');
  const env = { ...process.env };
  delete env.WEIR_MASTER_KEY;
  if (masterKey) env.WEIR_MASTER_KEY = masterKey;
  const child = spawn(bin, ['dev', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--key-admin', '127.0.0.1:0', '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe'], env,
  });
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
    child.on('exit', (code) => reject(new Error(`weir dev exited with ${code}:\n${stderr.join('\n')}`)));
  });
  const url = ready.url;
  return {
    baseURL: `${url}/v1`,
    url,
    keyAdmin: ready.key_admin ? `http://${ready.key_admin}` : '',
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
