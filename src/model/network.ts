/** One interface from /proc/<pid>/net/dev. */
export interface NetworkInterfaceStats {
  name: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/**
 * Sockets of a network namespace by state: /proc/<pid>/net/tcp and tcp6 (cAdvisor's 11 `tcp_state` values), udp and
 * udp6 (`udp_state`: listen, dropped, rxqueued, txqueued). A file that could not be read is absent.
 */
export interface SocketStats {
  tcp?: Readonly<Record<string, number>>;
  tcp6?: Readonly<Record<string, number>>;
  udp?: Readonly<Record<string, number>>;
  udp6?: Readonly<Record<string, number>>;
}
