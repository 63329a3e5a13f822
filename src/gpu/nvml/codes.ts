/**
 * NVML's return codes (`nvmlReturn_t`, nvml.h of NVML_API_VERSION 13) and the three ways an NVML call fails for
 * podvisor: the library answered an error code (NvmlError), the call did not answer within its timeout
 * (NvmlTimeoutError), or an earlier call is still stuck in the driver so nothing is sent (NvmlHungError). Pure.
 */

export const NVML_SUCCESS = 0;
export const NVML_ERROR_UNINITIALIZED = 1;
export const NVML_ERROR_INVALID_ARGUMENT = 2;
export const NVML_ERROR_NOT_SUPPORTED = 3;
export const NVML_ERROR_NO_PERMISSION = 4;
export const NVML_ERROR_ALREADY_INITIALIZED = 5;
export const NVML_ERROR_NOT_FOUND = 6;
export const NVML_ERROR_INSUFFICIENT_SIZE = 7;
export const NVML_ERROR_INSUFFICIENT_POWER = 8;
export const NVML_ERROR_DRIVER_NOT_LOADED = 9;
export const NVML_ERROR_TIMEOUT = 10;
export const NVML_ERROR_IRQ_ISSUE = 11;
export const NVML_ERROR_LIBRARY_NOT_FOUND = 12;
export const NVML_ERROR_FUNCTION_NOT_FOUND = 13;
export const NVML_ERROR_CORRUPTED_INFOROM = 14;
export const NVML_ERROR_GPU_IS_LOST = 15;
export const NVML_ERROR_RESET_REQUIRED = 16;
export const NVML_ERROR_OPERATING_SYSTEM = 17;
export const NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18;
export const NVML_ERROR_IN_USE = 19;
export const NVML_ERROR_MEMORY = 20;
export const NVML_ERROR_NO_DATA = 21;
export const NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22;
export const NVML_ERROR_INSUFFICIENT_RESOURCES = 23;
export const NVML_ERROR_FREQ_NOT_SUPPORTED = 24;
export const NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25;
export const NVML_ERROR_DEPRECATED = 26;
export const NVML_ERROR_NOT_READY = 27;
export const NVML_ERROR_GPU_NOT_FOUND = 28;
export const NVML_ERROR_INVALID_STATE = 29;
export const NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30;
export const NVML_ERROR_UNKNOWN = 999;

const NAMES: ReadonlyMap<number, string> = new Map([
  [NVML_SUCCESS, 'NVML_SUCCESS'],
  [NVML_ERROR_UNINITIALIZED, 'NVML_ERROR_UNINITIALIZED'],
  [NVML_ERROR_INVALID_ARGUMENT, 'NVML_ERROR_INVALID_ARGUMENT'],
  [NVML_ERROR_NOT_SUPPORTED, 'NVML_ERROR_NOT_SUPPORTED'],
  [NVML_ERROR_NO_PERMISSION, 'NVML_ERROR_NO_PERMISSION'],
  [NVML_ERROR_ALREADY_INITIALIZED, 'NVML_ERROR_ALREADY_INITIALIZED'],
  [NVML_ERROR_NOT_FOUND, 'NVML_ERROR_NOT_FOUND'],
  [NVML_ERROR_INSUFFICIENT_SIZE, 'NVML_ERROR_INSUFFICIENT_SIZE'],
  [NVML_ERROR_INSUFFICIENT_POWER, 'NVML_ERROR_INSUFFICIENT_POWER'],
  [NVML_ERROR_DRIVER_NOT_LOADED, 'NVML_ERROR_DRIVER_NOT_LOADED'],
  [NVML_ERROR_TIMEOUT, 'NVML_ERROR_TIMEOUT'],
  [NVML_ERROR_IRQ_ISSUE, 'NVML_ERROR_IRQ_ISSUE'],
  [NVML_ERROR_LIBRARY_NOT_FOUND, 'NVML_ERROR_LIBRARY_NOT_FOUND'],
  [NVML_ERROR_FUNCTION_NOT_FOUND, 'NVML_ERROR_FUNCTION_NOT_FOUND'],
  [NVML_ERROR_CORRUPTED_INFOROM, 'NVML_ERROR_CORRUPTED_INFOROM'],
  [NVML_ERROR_GPU_IS_LOST, 'NVML_ERROR_GPU_IS_LOST'],
  [NVML_ERROR_RESET_REQUIRED, 'NVML_ERROR_RESET_REQUIRED'],
  [NVML_ERROR_OPERATING_SYSTEM, 'NVML_ERROR_OPERATING_SYSTEM'],
  [NVML_ERROR_LIB_RM_VERSION_MISMATCH, 'NVML_ERROR_LIB_RM_VERSION_MISMATCH'],
  [NVML_ERROR_IN_USE, 'NVML_ERROR_IN_USE'],
  [NVML_ERROR_MEMORY, 'NVML_ERROR_MEMORY'],
  [NVML_ERROR_NO_DATA, 'NVML_ERROR_NO_DATA'],
  [NVML_ERROR_VGPU_ECC_NOT_SUPPORTED, 'NVML_ERROR_VGPU_ECC_NOT_SUPPORTED'],
  [NVML_ERROR_INSUFFICIENT_RESOURCES, 'NVML_ERROR_INSUFFICIENT_RESOURCES'],
  [NVML_ERROR_FREQ_NOT_SUPPORTED, 'NVML_ERROR_FREQ_NOT_SUPPORTED'],
  [NVML_ERROR_ARGUMENT_VERSION_MISMATCH, 'NVML_ERROR_ARGUMENT_VERSION_MISMATCH'],
  [NVML_ERROR_DEPRECATED, 'NVML_ERROR_DEPRECATED'],
  [NVML_ERROR_NOT_READY, 'NVML_ERROR_NOT_READY'],
  [NVML_ERROR_GPU_NOT_FOUND, 'NVML_ERROR_GPU_NOT_FOUND'],
  [NVML_ERROR_INVALID_STATE, 'NVML_ERROR_INVALID_STATE'],
  [NVML_ERROR_RESET_TYPE_NOT_SUPPORTED, 'NVML_ERROR_RESET_TYPE_NOT_SUPPORTED'],
  [NVML_ERROR_UNKNOWN, 'NVML_ERROR_UNKNOWN'],
]);

/** `NVML_ERROR_GPU_IS_LOST` for 15; a code outside the table reads `NVML_ERROR_UNKNOWN(1234)`. */
export function nvmlCodeName(code: number): string {
  return NAMES.get(code) ?? `NVML_ERROR_UNKNOWN(${code})`;
}

/**
 * An NVML call that answered an error code: `nvmlDeviceGetPowerUsage: NVML_ERROR_NOT_SUPPORTED`. Also raised, with
 * NVML_ERROR_FUNCTION_NOT_FOUND, for a call this driver's library does not export, and with NVML_ERROR_UNKNOWN and a
 * `detail` when the library answered success with a value outside its documented range.
 */
export class NvmlError extends Error {
  /** The `nvmlReturn_t` code. */
  readonly code: number;
  /** The NVML function, e.g. `nvmlDeviceGetMemoryInfo_v2`. */
  readonly call: string;
  constructor(call: string, code: number, detail?: string) {
    super(`${call}: ${nvmlCodeName(code)}${detail === undefined ? '' : `: ${detail}`}`);
    this.name = 'NvmlError';
    this.code = code;
    this.call = call;
  }
}

/** An NVML call that did not answer within `afterMs`. It is still running in the driver: see NvmlHungError. */
export class NvmlTimeoutError extends Error {
  readonly call: string;
  readonly afterMs: number;
  constructor(call: string, afterMs: number) {
    super(`${call}: no answer within ${afterMs} ms`);
    this.name = 'NvmlTimeoutError';
    this.call = call;
    this.afterMs = afterMs;
  }
}

/**
 * A call refused without being sent because an earlier call (`hungCall`, started at `sinceMs` on the library's clock)
 * timed out and has not returned yet: the driver is stuck, and every further call would only tie up another thread.
 */
export class NvmlHungError extends Error {
  /** The call that was refused. */
  readonly call: string;
  /** The earlier call that is still outstanding. */
  readonly hungCall: string;
  /** When that earlier call was started, on the library's clock (`now()`; epoch ms by default). */
  readonly sinceMs: number;
  constructor(call: string, hungCall: string, sinceMs: number) {
    super(`${call}: not sent: NVML is hung, ${hungCall} (started at ${sinceMs} ms) has not returned`);
    this.name = 'NvmlHungError';
    this.call = call;
    this.hungCall = hungCall;
    this.sinceMs = sinceMs;
  }
}
