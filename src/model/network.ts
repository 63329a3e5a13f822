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
