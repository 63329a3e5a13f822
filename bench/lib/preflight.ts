/**
 * What must hold before anything is started, each failure one line saying what to do: root, the built podvisor, both
 * daemons answering with the test image, a C compiler (the native reader is built here), du, cAdvisor when asked for,
 * room for the files, and no other benchmark run at the same time.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Args } from './args.js';
import { run, succeeds } from './exec.js';
import { PODVISOR_MAIN, REPO } from './exporter.js';
import { buildNativeReader } from './native.js';
import { CONTAINERD_IMAGE, CONTAINERD_NS, DOCKER_IMAGE } from './scenario.js';

const PROVISION = 'run test/support/provision.sh';

export interface Preflight {
  /** the C compiler's version line */
  cc: string;
}

export async function preflight(a: Args): Promise<Preflight> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it reads every cgroup, runs containers and cAdvisor (sudo npm run bench)');
  if (!fs.existsSync(PODVISOR_MAIN)) throw new Error(`${path.relative(REPO, PODVISOR_MAIN)} missing: run \`npm run build\` (npm run bench does)`);
  if (!(await succeeds('docker', ['version', '--format', '{{.Server.Version}}'], 15_000)))
    throw new Error(`dockerd is not answering on /var/run/docker.sock: ${PROVISION}`);
  if (!(await succeeds('ctr', ['version'], 15_000))) throw new Error(`containerd is not answering on /run/containerd/containerd.sock: ${PROVISION}`);
  if (!(await succeeds('docker', ['image', 'inspect', DOCKER_IMAGE], 15_000))) throw new Error(`image ${DOCKER_IMAGE} missing in Docker: ${PROVISION}`);
  const ctrImages = await run('ctr', ['-n', CONTAINERD_NS, 'images', 'ls', '-q'], { timeoutMs: 15_000 }).then(
    (r) => r.stdout,
    () => '',
  );
  if (!ctrImages.split('\n').includes(CONTAINERD_IMAGE))
    throw new Error(`image ${CONTAINERD_IMAGE} missing in containerd's ${CONTAINERD_NS} namespace: ${PROVISION}`);
  if (!(await succeeds('cc', ['--version']))) throw new Error('no C compiler (cc) for the native reader: apt-get install gcc');
  if (!(await succeeds('du', ['--version']))) throw new Error('du (coreutils) not found');
  if (a.cadvisor !== undefined) {
    try {
      fs.accessSync(a.cadvisor, fs.constants.X_OK);
    } catch {
      throw new Error(`cAdvisor not found or not executable at ${a.cadvisor} (bench/cadvisor-fetch.sh puts 0.38.7 in bench/.work/cadvisor/usr/bin/cadvisor)`);
    }
    if (!(await succeeds(a.cadvisor, ['--version']))) throw new Error(`${a.cadvisor} --version failed: not a cAdvisor binary?`);
  }
  // Room for the files: inodes and (every 10th file is one block) space where the writable layers live.
  const maxN = Math.max(...a.containers);
  const inodes = maxN * a.filesPerContainer * 1.05 + maxN * 1000;
  for (const dir of ['/var/lib/docker', '/var/lib/containerd']) {
    if (!fs.existsSync(dir)) continue;
    const st = fs.statfsSync(dir);
    if (st.ffree > 0 && st.ffree < inodes)
      throw new Error(`${dir}: ${st.ffree} free inodes, the scenario needs about ${Math.round(inodes)}: fewer --files-per-container or --containers`);
    const bytes = (maxN * a.filesPerContainer * 4096) / 10 + maxN * 5 * 2 ** 20; // a 4 KiB block per 10th file; ~5 MiB per container
    if (st.bavail * st.bsize < bytes)
      throw new Error(`${dir}: ${((st.bavail * st.bsize) / 2 ** 30).toFixed(1)} GiB free, the scenario needs about ${(bytes / 2 ** 30).toFixed(1)} GiB`);
  }
  let cc: string;
  try {
    cc = await buildNativeReader();
  } catch (err) {
    throw new Error(`compiling bench/native-reader.c failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return { cc };
}

const LOCK = path.join(REPO, 'bench/.work/bench.lock');

/** One benchmark at a time on a node (they would share, and remove, each other's containers). */
export function takeLock(): () => void {
  fs.mkdirSync(path.dirname(LOCK), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(LOCK, { force: true });
    } catch {
      const pid = Number(fs.readFileSync(LOCK, 'utf8').trim());
      let alive: boolean;
      try {
        process.kill(pid, 0);
        alive = pid > 0;
      } catch {
        alive = false;
      }
      if (alive) throw new Error(`another benchmark run (pid ${pid}) holds ${path.relative(REPO, LOCK)}`);
      fs.rmSync(LOCK, { force: true }); // stale
    }
  }
  throw new Error(`cannot take ${LOCK}`);
}
