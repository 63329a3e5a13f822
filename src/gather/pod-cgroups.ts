/**
 * Pod-level cgroups, as the kubelet names them: `pod<uid>` with the cgroupfs driver
 * (`/kubepods/burstable/pod8f2c…-…`), `kubepods[-<qos>]-pod<uid with _>.slice` with the systemd driver.
 */
const POD =
  /^(?:pod[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|kubepods(?:-[a-z]+)?-pod[0-9a-f]{8}_?[0-9a-f]{4}_?[0-9a-f]{4}_?[0-9a-f]{4}_?[0-9a-f]{12}\.slice)$/;

/** True if the last element of cgroup path `id` is a pod cgroup's name. */
export function isPodCgroup(id: string): boolean {
  return POD.test(id.slice(id.lastIndexOf('/') + 1));
}
