/** The machine facts cAdvisor exports as machine_* series and their labels. */
export interface MachineSnapshot {
  cpuCores?: number;
  cpuPhysicalCores?: number;
  cpuSockets?: number;
  memoryBytes?: number;
  swapBytes?: number;
  /** cAdvisor's machine labels; empty strings where unknown. */
  machineId: string;
  systemUuid: string;
  bootId: string;
}
