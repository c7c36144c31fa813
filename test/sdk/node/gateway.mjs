// Starts `weir dev` on free loopback ports and resolves with its base URL.
// The gateway announces readiness with a JSON log line on stderr, so the
// tests wait on that event, never on a timer.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export async function startGateway() {
  const bin = process.env.WEIR_BIN;
  if (!bin) throw new Error('WEIR_BIN must point at the weir binary (make test sets it)');
  const child = spawn(bin, ['dev', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr = [];
  const url = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stderr });
    rl.on('line', (line) => {
      stderr.push(line);
      try {
        const rec = JSON.parse(line);
        if (rec.msg === 'weir dev ready') resolve(rec.url);
      } catch { /* banner text */ }
    });
    child.on('exit', (code) => reject(new Error(`weir dev exited with ${code}:\n${stderr.join('\n')}`)));
  });
  return {
    baseURL: `${url}/v1`,
    url,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
