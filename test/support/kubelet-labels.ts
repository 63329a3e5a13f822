/**
 * The `docker run` arguments that make a container look like one the kubelet started: its pod cgroup as the parent and
 * the kubelet's `io.kubernetes.*` labels, from which podvisor's runtime factories fill `pod`, `namespace`, `container`.
 */
export function kubeletContainerArgs(o: { parent: string; pod: string; namespace: string; uid: string; container: string }): string[] {
  return [
    '--cgroup-parent',
    o.parent,
    '--label',
    `io.kubernetes.pod.name=${o.pod}`,
    '--label',
    `io.kubernetes.pod.namespace=${o.namespace}`,
    '--label',
    `io.kubernetes.pod.uid=${o.uid}`,
    '--label',
    `io.kubernetes.container.name=${o.container}`,
  ];
}
