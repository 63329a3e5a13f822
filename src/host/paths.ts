import path from 'node:path';

/**
 * Every host path podvisor reads goes through here, so the whole exporter can run against a fixture tree
 * (`--rootfs=test/fixtures/hosts/...`) or against a host mounted at `/rootfs` in a DaemonSet.
 * `hostPath('/rootfs', '/sys/fs/cgroup')` → `/rootfs/sys/fs/cgroup`.
 */
export function hostPath(root: string, ...parts: string[]): string {
  return path.join(root, ...parts);
}
