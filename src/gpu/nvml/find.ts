/**
 * Where libnvidia-ml.so.1 is. Kept apart from library.ts, which loads koffi: main looks for the library first, and a
 * node without one never loads koffi at all.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

export const NVML_SONAME = 'libnvidia-ml.so.1';

/** The Debian multiarch directory of this machine's architecture. */
const TRIPLETS: Readonly<Record<string, string>> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

/**
 * Directories that hold libnvidia-ml.so.1, in search order: the host's own (Debian/Ubuntu multiarch, RHEL lib64), the
 * GPU Operator's containerised driver root (`/run/nvidia/driver`, searched as NVIDIA's k8s-driver-manager does), GKE
 * COS (`/home/kubernetes/bin/nvidia/lib64`), and the GKE device plugin's in-container path.
 */
function libraryDirs(arch: string): string[] {
  const triplet = TRIPLETS[arch];
  const distro = (root: string): string[] => [
    ...(triplet === undefined ? [] : [`${root}/usr/lib/${triplet}`]),
    `${root}/usr/lib64`,
    `${root}/usr/lib`,
    ...(triplet === undefined ? [] : [`${root}/lib/${triplet}`]),
    `${root}/lib64`,
  ];
  return [...distro(''), '/run/nvidia/driver', ...distro('/run/nvidia/driver'), '/home/kubernetes/bin/nvidia/lib64', '/usr/local/nvidia/lib64'];
}

/** Candidate absolute paths under rootfs, in order (host distro dirs, GPU-operator /run/nvidia/driver/..., GKE COS). */
export function nvmlCandidates(rootfs: string, arch: string = process.arch): string[] {
  return libraryDirs(arch).map((dir) => path.join(rootfs, dir, NVML_SONAME));
}

/**
 * The NVML library to load: first in podvisor's own filesystem (where the NVIDIA container runtime injects the
 * driver's libnvidia-ml.so.1 into a container that asks for it), then under --rootfs (the host's, or the GPU
 * Operator's driver root). Undefined when neither has one.
 */
export function findNvmlLibrary(rootfs: string): string | undefined {
  const roots = path.resolve(rootfs) === '/' ? ['/'] : ['/', rootfs];
  for (const root of roots) {
    const found = nvmlCandidates(root).find((p) => existsSync(p));
    if (found !== undefined) return found;
  }
  return undefined;
}
