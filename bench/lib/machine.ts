/** What the report says about the machine, the versions measured and the rest of the node (other people's containers). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run } from './exec.js';
import { REPO } from './exporter.js';
import { CONTAINERD_NS, FILES_LABEL } from './scenario.js';

export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryMiB: number;
  kernel: string;
  os: string;
  cgroups: string;
  node: string;
}

export function machine(): Machine {
  let osName = os.type();
  try {
    const rel = fs.readFileSync('/etc/os-release', 'utf8');
    osName = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(rel)?.[1] ?? osName;
    if (fs.existsSync('/etc/debian_version')) osName += ` (${fs.readFileSync('/etc/debian_version', 'utf8').trim()})`;
  } catch {
    // keep os.type()
  }
  let cgroups = '?';
  try {
    const mounts = fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '));
    const v1 = mounts.filter((m) => m[2] === 'cgroup').length;
    const v2 = mounts.find((m) => m[2] === 'cgroup2');
    cgroups = v1 > 0 ? `v1 (${v1} hierarchies)${v2 === undefined ? '' : `, cgroup2 at ${v2[1] ?? '?'}: hybrid`}` : 'v2';
  } catch {
    // unknown
  }
  return {
    nproc: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '?',
    memoryMiB: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.release(),
    os: osName,
    cgroups,
    node: process.version,
  };
}

export interface Versions {
  podvisor: string;
  cadvisor?: string;
  docker: string;
  containerd: string;
  du: string;
  cc: string;
}

const orUnknown = async (f: () => Promise<string>): Promise<string> => {
  try {
    return (await f()).trim() || '?';
  } catch {
    return '?';
  }
};

export async function versions(cadvisorBin: string | undefined, cc: string): Promise<Versions> {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version?: string };
  const rev = await orUnknown(async () => (await run('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'])).stdout);
  const dirty = await orUnknown(async () =>
    (await run('git', ['-C', REPO, 'status', '--porcelain', '--', 'src'])).stdout.trim() === '' ? 'clean' : 'src/ modified',
  );
  const v: Versions = {
    podvisor: `${pkg.version ?? '?'} (git ${rev}, ${dirty}; dist/ built by npm run bench)`,
    docker: await orUnknown(
      async () => (await run('docker', ['info', '--format', '{{.ServerVersion}} ({{.CgroupDriver}} cgroup driver, {{.Driver}})'])).stdout,
    ),
    containerd: await orUnknown(async () => /Server:[\s\S]*?Version:\s*(\S+)/.exec((await run('ctr', ['version'])).stdout)?.[1] ?? '?'),
    du: await orUnknown(async () => (await run('du', ['--version'])).stdout.split('\n')[0] ?? '?'),
    cc,
  };
  if (cadvisorBin !== undefined) v.cadvisor = await orUnknown(async () => (await run(cadvisorBin, ['--version'])).stdout.replace(/^cAdvisor version /, ''));
  return v;
}

export interface NodeState {
  /** running Docker containers that are not the harness's */
  otherDocker: number;
  /** running containerd tasks in k8s.io that are not the harness's */
  otherContainerd: number;
  /** directories in the cpu hierarchy (cgroups) */
  cgroupDirs: number;
}

function countDirs(root: string): number {
  let n = 0;
  const stack = [root];
  for (let d = stack.pop(); d !== undefined; d = stack.pop()) {
    n++;
    try {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) stack.push(path.join(d, e.name));
    } catch {
      // vanished
    }
  }
  return n;
}

/** The rest of the node: the machine is shared, so the report says how many containers were not ours. */
export async function nodeState(): Promise<NodeState> {
  const others = async (f: () => Promise<number>): Promise<number> => f().catch(() => NaN);
  const otherDocker = await others(async () => {
    const all = (await run('docker', ['ps', '-q'])).stdout.split('\n').filter((l) => l !== '').length;
    const ours = (await run('docker', ['ps', '-q', '--filter', `label=${FILES_LABEL}`])).stdout.split('\n').filter((l) => l !== '').length;
    return all - ours;
  });
  const otherContainerd = await others(async () => {
    const running = (await run('ctr', ['-n', CONTAINERD_NS, 'tasks', 'ls'])).stdout
      .split('\n')
      .slice(1)
      .filter((l) => /\sRUNNING\s*$/.test(l) && !l.startsWith('podvisorbenchc')).length;
    return running;
  });
  const cpu = fs.existsSync('/sys/fs/cgroup/cpu') ? '/sys/fs/cgroup/cpu' : '/sys/fs/cgroup';
  return { otherDocker, otherContainerd, cgroupDirs: countDirs(cpu) };
}
