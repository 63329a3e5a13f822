/*
 * A fake libnvidia-ml.so.1 for podvisor's tests: NVIDIA's exact signatures and x86-64 struct layouts (nvml.h,
 * NVML_API_VERSION 13; see ../../../../shared/reference/accelerators.md §3.3, §3.4), answering from a scenario file
 * that test/support/fake-nvml.ts writes. Built by that file with
 *   gcc -shared -fPIC -O1 -pthread -o <dir>/libnvidia-ml.so.1 fake-nvml.c [-DFAKE_NVML_NO_V3 ...]
 *
 * Environment, read on every call:
 *   FAKE_NVML_SCENARIO  the scenario file; re-read whenever its inode, size or mtime change (tests change the state of
 *                       the "driver" mid-run). Unset or unreadable: nvmlInit_v2 answers DRIVER_NOT_LOADED.
 *   FAKE_NVML_LOG       optional; one line appended per call: `<function>[ <device uuid>]`. A call that starts while
 *                       another is still running in this library also appends `!concurrent <n> <function>`.
 *
 * Scenario format (one directive a line, space-separated; strings are hex-encoded bytes so any byte can pass):
 *   fake-nvml 1                     header
 *   driver <hex>                    nvmlSystemGetDriverVersion (no hex: empty)
 *   init <code>                     what nvmlInit_v2 returns
 *   delay <ms>                      every call sleeps this long before it answers (to make overlap observable)
 *   hang <function|*>               before any gpu line: that call never returns while the line is there
 *   fail <function> <code>          before any gpu line: that call returns <code>
 *   gpu <hex uuid>                  starts a GPU; the lines below describe it
 *   mig <hex uuid> <slot>           starts a MIG device of the last GPU in MIG slot <slot> (0..6)
 *   name <hex> | minor <n> | memTotal|memUsed|memFree|memReserved <u64|na> | utilGpu|utilMem|powerMw <u32> |
 *   tempC <int> | migMode <0|1> | lost | gi <n> | ci <n> | growing <n|always> |
 *   compute-list | compute <pid> <u64|na> | graphics-list | graphics <pid> <u64|na> |
 *   samples-list | sample <pid> <sm> <mem> <tsUs|now> | hang <function|*> | fail <function> <code>
 * A field that is not given makes its call answer NOT_SUPPORTED (an empty list is `compute-list` alone).
 * `growing n`: a sizing call (NULL array) reports n fewer entries than there are, as if processes started between the
 * two calls; `growing always`: every call with an array answers INSUFFICIENT_SIZE, asking for one more entry.
 * A hung call logs itself, then sleeps 20 ms at a time re-reading the scenario, and answers from the current state
 * once its hang line is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
  NVML_ERROR_UNKNOWN = 999,
};

#define NOT_AVAILABLE 0xFFFFFFFFFFFFFFFFULL
#define NO_ID 0xFFFFFFFFu
#define MAX_GPUS 16
#define MAX_MIGS 7
#define MAX_PROCS 64
#define MAX_RULES 16
#define MAX_STR 128
#define MAX_FN 64
#define MAX_SCENARIO_BYTES (1 << 20)

/* ---- NVIDIA's structs (x86-64 layouts as in nvml.h) ---- */

typedef struct {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t; /* 24 bytes */

typedef struct {
  unsigned int version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t; /* 40 bytes */
#define nvmlMemory_v2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2 << 24)))

typedef struct {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t; /* 16 bytes */

typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_t; /* 24 bytes, = nvmlProcessInfo_v2_t */

typedef struct {
  unsigned int pid;
  unsigned long long timeStamp;
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
} nvmlProcessUtilizationSample_t; /* 32 bytes */

typedef union {
  double dVal;
  int siVal;
  unsigned int uiVal;
  unsigned long ulVal;
  unsigned long long ullVal;
  signed long long sllVal;
  unsigned short usVal;
} nvmlValue_t;

typedef struct {
  unsigned long long timeStamp;
  nvmlValue_t sampleValue;
} nvmlSample_t; /* 16 bytes */

typedef struct {
  unsigned int version;
  int sensorType;
  int temperature;
} nvmlTemperature_t; /* 12 bytes */
#define nvmlTemperature_v1 ((unsigned int)(sizeof(nvmlTemperature_t) | (1 << 24)))

_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t");
_Static_assert(nvmlMemory_v2 == 0x02000028, "nvmlMemory_v2");
_Static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t");
_Static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "nvmlProcessUtilizationSample_t");
_Static_assert(sizeof(nvmlSample_t) == 16, "nvmlSample_t");
_Static_assert(nvmlTemperature_v1 == 0x0100000C, "nvmlTemperature_v1");

/* ---- scenario state ---- */

typedef struct {
  unsigned int pid;
  unsigned long long mem;
} fake_proc;

typedef struct {
  unsigned int pid, sm, mem;
  int now; /* timestamp = the time of the call */
  unsigned long long ts;
} fake_sample;

typedef struct {
  char fn[MAX_FN];
  int code;
} fake_rule;

typedef struct {
  int has;
  int n;
  fake_proc p[MAX_PROCS];
} proc_list;

struct nvmlDevice_st {
  int present, isMig, slot, lost;
  struct nvmlDevice_st *parent;
  char uuid[MAX_STR];
  unsigned char name[MAX_STR];
  int nameLen, hasName;
  int hasMinor;
  unsigned int minor;
  int hasMem[4]; /* total used free reserved */
  unsigned long long mem[4];
  int hasUtilGpu, hasUtilMem, hasPower, hasTemp, hasMigMode;
  unsigned int utilGpu, utilMem, power, migMode;
  int temp;
  unsigned int gi, ci;
  int growing; /* -1: always */
  proc_list compute, graphics;
  int hasSamples, nSamples;
  fake_sample samples[MAX_PROCS];
  int nFails, nHangs;
  fake_rule fails[MAX_RULES], hangs[MAX_RULES];
};
typedef struct nvmlDevice_st fake_dev;
typedef fake_dev *nvmlDevice_t;

static struct {
  int loaded; /* a scenario file was read */
  char driver[MAX_STR];
  int initCode;
  unsigned int delayMs;
  int nFails, nHangs;
  fake_rule fails[MAX_RULES], hangs[MAX_RULES];
  int nGpus;
} S;
static fake_dev gpus[MAX_GPUS];
static fake_dev migs[MAX_GPUS][MAX_MIGS];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int initCount;
static int inflight;
static struct {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  int valid;
} seen;

/* ---- helpers ---- */

static unsigned long long nowUs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL;
}

static void sleepMs(unsigned int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static void logLine(const char *fmt, const char *a, const char *b) {
  const char *file = getenv("FAKE_NVML_LOG");
  if (!file || !*file) return;
  char line[512];
  int n = snprintf(line, sizeof line, fmt, a, b);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t w = write(fd, line, (size_t)n);
  (void)w;
  close(fd);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes hex into out (at most cap-1 bytes, NUL-terminated); returns the byte count. */
static int unhex(const char *hex, unsigned char *out, int cap) {
  int n = 0;
  while (hex[0] && hex[1] && n < cap - 1) {
    int hi = hexval(hex[0]), lo = hexval(hex[1]);
    if (hi < 0 || lo < 0) break;
    out[n++] = (unsigned char)(hi * 16 + lo);
    hex += 2;
  }
  out[n] = 0;
  return n;
}

static unsigned long long u64(const char *s) {
  if (!s) return 0;
  if (strcmp(s, "na") == 0) return NOT_AVAILABLE;
  return strtoull(s, NULL, 10);
}

static void addRule(fake_rule *rules, int *n, const char *fn, int code) {
  if (!fn || *n >= MAX_RULES) return;
  snprintf(rules[*n].fn, MAX_FN, "%s", fn);
  rules[*n].code = code;
  (*n)++;
}

static void resetState(void) {
  memset(&S, 0, sizeof S);
  memset(gpus, 0, sizeof gpus);
  memset(migs, 0, sizeof migs);
  S.initCode = NVML_ERROR_DRIVER_NOT_LOADED;
}

static void parseLine(char *line, fake_dev **cur, fake_dev **gpu) {
  char *save = NULL;
  char *key = strtok_r(line, " \t\r", &save);
  if (!key) return;
  char *a = strtok_r(NULL, " \t\r", &save);
  char *b = strtok_r(NULL, " \t\r", &save);
  char *c = strtok_r(NULL, " \t\r", &save);
  char *d = strtok_r(NULL, " \t\r", &save);
  fake_dev *dv = *cur;
  if (strcmp(key, "driver") == 0) {
    unhex(a ? a : "", (unsigned char *)S.driver, MAX_STR);
  } else if (strcmp(key, "init") == 0 && a) {
    S.initCode = atoi(a);
  } else if (strcmp(key, "delay") == 0 && a) {
    S.delayMs = (unsigned int)strtoul(a, NULL, 10);
  } else if (strcmp(key, "hang") == 0) {
    if (dv) addRule(dv->hangs, &dv->nHangs, a, 0);
    else addRule(S.hangs, &S.nHangs, a, 0);
  } else if (strcmp(key, "fail") == 0 && b) {
    if (dv) addRule(dv->fails, &dv->nFails, a, atoi(b));
    else addRule(S.fails, &S.nFails, a, atoi(b));
  } else if (strcmp(key, "gpu") == 0 && a) {
    if (S.nGpus >= MAX_GPUS) {
      *cur = *gpu = NULL;
      return;
    }
    fake_dev *g = &gpus[S.nGpus++];
    g->present = 1;
    g->slot = S.nGpus - 1;
    unhex(a, (unsigned char *)g->uuid, MAX_STR);
    *cur = *gpu = g;
  } else if (strcmp(key, "mig") == 0 && a && b) {
    int slot = atoi(b);
    if (!*gpu || slot < 0 || slot >= MAX_MIGS) {
      *cur = NULL;
      return;
    }
    fake_dev *m = &migs[(*gpu)->slot][slot];
    memset(m, 0, sizeof *m);
    m->present = 1;
    m->isMig = 1;
    m->slot = slot;
    m->parent = *gpu;
    unhex(a, (unsigned char *)m->uuid, MAX_STR);
    *cur = m;
  } else if (!dv) {
    return;
  } else if (strcmp(key, "name") == 0) {
    dv->nameLen = unhex(a ? a : "", dv->name, MAX_STR);
    dv->hasName = 1;
  } else if (strcmp(key, "minor") == 0 && a) {
    dv->minor = (unsigned int)strtoul(a, NULL, 10);
    dv->hasMinor = 1;
  } else if (strncmp(key, "mem", 3) == 0 && a) {
    static const char *const names[4] = {"memTotal", "memUsed", "memFree", "memReserved"};
    for (int i = 0; i < 4; i++) {
      if (strcmp(key, names[i]) == 0) {
        dv->mem[i] = u64(a);
        dv->hasMem[i] = 1;
      }
    }
  } else if (strcmp(key, "utilGpu") == 0 && a) {
    dv->utilGpu = (unsigned int)strtoul(a, NULL, 10);
    dv->hasUtilGpu = 1;
  } else if (strcmp(key, "utilMem") == 0 && a) {
    dv->utilMem = (unsigned int)strtoul(a, NULL, 10);
    dv->hasUtilMem = 1;
  } else if (strcmp(key, "powerMw") == 0 && a) {
    dv->power = (unsigned int)strtoul(a, NULL, 10);
    dv->hasPower = 1;
  } else if (strcmp(key, "tempC") == 0 && a) {
    dv->temp = atoi(a);
    dv->hasTemp = 1;
  } else if (strcmp(key, "migMode") == 0 && a) {
    dv->migMode = (unsigned int)strtoul(a, NULL, 10);
    dv->hasMigMode = 1;
  } else if (strcmp(key, "lost") == 0) {
    dv->lost = 1;
  } else if (strcmp(key, "gi") == 0 && a) {
    dv->gi = (unsigned int)strtoul(a, NULL, 10);
  } else if (strcmp(key, "ci") == 0 && a) {
    dv->ci = (unsigned int)strtoul(a, NULL, 10);
  } else if (strcmp(key, "growing") == 0 && a) {
    dv->growing = strcmp(a, "always") == 0 ? -1 : atoi(a);
  } else if (strcmp(key, "compute-list") == 0) {
    dv->compute.has = 1;
  } else if (strcmp(key, "graphics-list") == 0) {
    dv->graphics.has = 1;
  } else if ((strcmp(key, "compute") == 0 || strcmp(key, "graphics") == 0) && a) {
    proc_list *l = key[0] == 'c' ? &dv->compute : &dv->graphics;
    l->has = 1;
    if (l->n < MAX_PROCS) {
      l->p[l->n].pid = (unsigned int)strtoul(a, NULL, 10);
      l->p[l->n].mem = b ? u64(b) : NOT_AVAILABLE;
      l->n++;
    }
  } else if (strcmp(key, "samples-list") == 0) {
    dv->hasSamples = 1;
  } else if (strcmp(key, "sample") == 0 && a && b && c) {
    dv->hasSamples = 1;
    if (dv->nSamples < MAX_PROCS) {
      fake_sample *s = &dv->samples[dv->nSamples++];
      s->pid = (unsigned int)strtoul(a, NULL, 10);
      s->sm = (unsigned int)strtoul(b, NULL, 10);
      s->mem = (unsigned int)strtoul(c, NULL, 10);
      s->now = !d || strcmp(d, "now") == 0;
      s->ts = s->now ? 0 : strtoull(d, NULL, 10);
    }
  }
}

/* Re-reads the scenario when the file changed (inode, size or mtime). Called with the lock held. */
static void reload(void) {
  const char *file = getenv("FAKE_NVML_SCENARIO");
  struct stat st;
  if (!file || !*file || stat(file, &st) != 0) {
    if (seen.valid || S.loaded || S.initCode != NVML_ERROR_DRIVER_NOT_LOADED) resetState();
    seen.valid = 0;
    return;
  }
  if (seen.valid && seen.dev == st.st_dev && seen.ino == st.st_ino && seen.size == st.st_size &&
      seen.mtime.tv_sec == st.st_mtim.tv_sec && seen.mtime.tv_nsec == st.st_mtim.tv_nsec)
    return;
  FILE *f = fopen(file, "re");
  if (!f) return;
  char *text = malloc(MAX_SCENARIO_BYTES + 1);
  if (!text) {
    fclose(f);
    return;
  }
  size_t n = fread(text, 1, MAX_SCENARIO_BYTES, f);
  fclose(f);
  text[n] = 0;
  resetState();
  S.loaded = 1;
  S.initCode = NVML_SUCCESS;
  fake_dev *cur = NULL, *gpu = NULL;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) parseLine(line, &cur, &gpu);
  free(text);
  seen.dev = st.st_dev;
  seen.ino = st.st_ino;
  seen.size = st.st_size;
  seen.mtime = st.st_mtim;
  seen.valid = 1;
}

static int isDevice(nvmlDevice_t d) {
  if (!d) return 0;
  uintptr_t p = (uintptr_t)d;
  uintptr_t g0 = (uintptr_t)&gpus[0], g1 = (uintptr_t)&gpus[MAX_GPUS];
  uintptr_t m0 = (uintptr_t)&migs[0][0], m1 = (uintptr_t)&migs[MAX_GPUS][0];
  if (p >= g0 && p < g1 && (p - g0) % sizeof(fake_dev) == 0) return d->present;
  if (p >= m0 && p < m1 && (p - m0) % sizeof(fake_dev) == 0) return d->present;
  return 0;
}

static const fake_rule *findRule(const fake_rule *rules, int n, const char *fn) {
  for (int i = 0; i < n; i++)
    if (strcmp(rules[i].fn, fn) == 0 || strcmp(rules[i].fn, "*") == 0) return &rules[i];
  return NULL;
}

static int hangs(const char *fn, nvmlDevice_t d) {
  if (findRule(S.hangs, S.nHangs, fn)) return 1;
  return isDevice(d) && findRule(d->hangs, d->nHangs, fn) != NULL;
}

static int isLost(nvmlDevice_t d) { return d->lost || (d->parent && d->parent->lost); }

enum { NEEDS_INIT = 1, NEEDS_DEVICE = 2 };

/*
 * The start of every call: counts it in flight, logs it, waits out a hang and the scenario's delay, then checks what
 * every call checks (initialised, a valid handle, a fail rule, a lost GPU). Returns with the lock held; leave()
 * releases it.
 */
static nvmlReturn_t enter(const char *fn, nvmlDevice_t d, int flags) {
  int n = __atomic_add_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&lock);
  reload();
  char count[16];
  snprintf(count, sizeof count, "%d", n);
  if (n > 1) logLine("!concurrent %s %s\n", count, fn);
  if (isDevice(d)) logLine("%s %s\n", fn, d->uuid);
  else logLine("%s%s\n", fn, "");
  while (hangs(fn, d)) {
    pthread_mutex_unlock(&lock);
    sleepMs(20);
    pthread_mutex_lock(&lock);
    reload();
  }
  if (S.delayMs) {
    unsigned int ms = S.delayMs;
    pthread_mutex_unlock(&lock);
    sleepMs(ms);
    pthread_mutex_lock(&lock);
    reload();
  }
  if ((flags & NEEDS_INIT) && initCount == 0) return NVML_ERROR_UNINITIALIZED;
  if ((flags & NEEDS_DEVICE) && !isDevice(d)) return NVML_ERROR_INVALID_ARGUMENT;
  const fake_rule *r = findRule(S.fails, S.nFails, fn);
  if (!r && (flags & NEEDS_DEVICE)) r = findRule(d->fails, d->nFails, fn);
  if (r) return r->code;
  if ((flags & NEEDS_DEVICE) && isLost(d)) return NVML_ERROR_GPU_IS_LOST;
  return NVML_SUCCESS;
}

static nvmlReturn_t leave(nvmlReturn_t r) {
  pthread_mutex_unlock(&lock);
  __atomic_sub_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
  return r;
}

static nvmlReturn_t copyString(const char *s, size_t len, char *out, unsigned int length) {
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  if ((size_t)length < len + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(out, s, len);
  out[len] = 0;
  return NVML_SUCCESS;
}

/* A device that does not answer utilization queries: MIG devices and MIG-enabled GPUs (as real NVML). */
static int migged(nvmlDevice_t d) { return d->isMig || (d->hasMigMode && d->migMode == 1); }

/* ---- system ---- */

EXPORT nvmlReturn_t nvmlInit_v2(void) {
  nvmlReturn_t r = enter(__func__, NULL, 0);
  if (r == NVML_SUCCESS) r = S.initCode;
  if (r == NVML_SUCCESS) initCount++;
  return leave(r);
}

EXPORT nvmlReturn_t nvmlShutdown(void) {
  nvmlReturn_t r = enter(__func__, NULL, 0);
  if (r == NVML_SUCCESS) {
    if (initCount == 0) r = NVML_ERROR_UNINITIALIZED;
    else initCount--;
  }
  return leave(r);
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
  case NVML_SUCCESS: return "Success";
  case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
  case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
  case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
  case NVML_ERROR_NOT_FOUND: return "Not Found";
  case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
  case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
  case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
  default: return "Unknown Error";
  }
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
  nvmlReturn_t r = enter(__func__, NULL, NEEDS_INIT);
  if (r == NVML_SUCCESS) r = copyString(S.driver, strlen(S.driver), version, length);
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount) {
  nvmlReturn_t r = enter(__func__, NULL, NEEDS_INIT);
  if (r == NVML_SUCCESS) {
    if (!deviceCount) r = NVML_ERROR_INVALID_ARGUMENT;
    else *deviceCount = (unsigned int)S.nGpus;
  }
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
  nvmlReturn_t r = enter(__func__, NULL, NEEDS_INIT);
  if (r == NVML_SUCCESS) {
    if (!device || index >= (unsigned int)S.nGpus) r = NVML_ERROR_INVALID_ARGUMENT;
    else if (gpus[index].lost) r = NVML_ERROR_GPU_IS_LOST;
    else *device = &gpus[index];
  }
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
  nvmlReturn_t r = enter(__func__, NULL, NEEDS_INIT);
  if (r == NVML_SUCCESS) {
    r = NVML_ERROR_NOT_FOUND;
    if (!uuid || !device) r = NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; uuid && device && i < S.nGpus; i++) {
      fake_dev *found = NULL;
      if (strcmp(gpus[i].uuid, uuid) == 0) found = &gpus[i];
      for (int j = 0; !found && j < MAX_MIGS; j++)
        if (migs[i][j].present && strcmp(migs[i][j].uuid, uuid) == 0) found = &migs[i][j];
      if (found) {
        r = isLost(found) ? NVML_ERROR_GPU_IS_LOST : NVML_SUCCESS;
        if (r == NVML_SUCCESS) *device = found;
        break;
      }
    }
  }
  return leave(r);
}

/* ---- identity ---- */

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) r = copyString(device->uuid, strlen(device->uuid), uuid, length);
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!device->hasName) r = NVML_ERROR_NOT_SUPPORTED;
    else r = copyString((const char *)device->name, (size_t)device->nameLen, name, length);
  }
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!minorNumber) r = NVML_ERROR_INVALID_ARGUMENT;
    else if (device->isMig || !device->hasMinor) r = NVML_ERROR_NOT_SUPPORTED;
    else *minorNumber = device->minor;
  }
  return leave(r);
}

/* ---- memory ---- */

/* Fills total/used/free/reserved; a MIG device without memFree gets total - used. */
static nvmlReturn_t memoryOf(nvmlDevice_t d, unsigned long long out[4]) {
  if (!d->hasMem[0]) return NVML_ERROR_NOT_SUPPORTED;
  for (int i = 0; i < 4; i++) out[i] = d->hasMem[i] ? d->mem[i] : 0;
  if (!d->hasMem[2] && out[0] != NOT_AVAILABLE && out[1] != NOT_AVAILABLE && out[0] >= out[1]) out[2] = out[0] - out[1];
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  unsigned long long m[4];
  if (r == NVML_SUCCESS && !memory) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) r = memoryOf(device, m);
  if (r == NVML_SUCCESS) {
    memory->total = m[0];
    memory->free = m[2];
    /* v1 `used` counts reserved memory too */
    memory->used = m[1] == NOT_AVAILABLE || m[3] == NOT_AVAILABLE ? m[1] : m[1] + m[3];
  }
  return leave(r);
}

#ifndef FAKE_NVML_NO_MEMINFO_V2
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  unsigned long long m[4];
  if (r == NVML_SUCCESS && !memory) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS && memory->version != nvmlMemory_v2) r = NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  if (r == NVML_SUCCESS) r = memoryOf(device, m);
  if (r == NVML_SUCCESS) {
    memory->total = m[0];
    memory->used = m[1];
    memory->free = m[2];
    memory->reserved = m[3];
  }
  return leave(r);
}
#endif

/* ---- utilization, power, temperature ---- */

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!utilization) r = NVML_ERROR_INVALID_ARGUMENT;
    else if (migged(device) || !device->hasUtilGpu) r = NVML_ERROR_NOT_SUPPORTED;
    else {
      utilization->gpu = device->utilGpu;
      utilization->memory = device->hasUtilMem ? device->utilMem : 0;
    }
  }
  return leave(r);
}

/* nvmlSamplingType_t GPU_UTILIZATION (1) and MEMORY_UTILIZATION (2) only: one sample taken now. */
EXPORT nvmlReturn_t nvmlDeviceGetSamples(nvmlDevice_t device, int type, unsigned long long lastSeenTimeStamp,
                                         int *sampleValType, unsigned int *sampleCount, nvmlSample_t *samples) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    unsigned long long now = nowUs();
    int has = type == 1 ? device->hasUtilGpu : type == 2 ? device->hasUtilMem : 0;
    if (!sampleValType || !sampleCount) r = NVML_ERROR_INVALID_ARGUMENT;
    else if (migged(device) || !has) r = NVML_ERROR_NOT_SUPPORTED;
    else if (lastSeenTimeStamp >= now) r = NVML_ERROR_NOT_FOUND;
    else if (!samples) *sampleCount = 1;
    else if (*sampleCount < 1) {
      *sampleCount = 1;
      r = NVML_ERROR_INSUFFICIENT_SIZE;
    } else {
      *sampleValType = 1; /* NVML_VALUE_TYPE_UNSIGNED_INT */
      *sampleCount = 1;
      samples[0].timeStamp = now;
      samples[0].sampleValue.ullVal = 0;
      samples[0].sampleValue.uiVal = type == 1 ? device->utilGpu : device->utilMem;
    }
  }
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!power) r = NVML_ERROR_INVALID_ARGUMENT;
    else if (device->isMig || !device->hasPower) r = NVML_ERROR_NOT_SUPPORTED;
    else *power = device->power;
  }
  return leave(r);
}

static nvmlReturn_t temperatureOf(nvmlDevice_t device, int sensorType, int *temp) {
  if (sensorType != 0) return NVML_ERROR_INVALID_ARGUMENT;
  if (device->isMig || !device->hasTemp) return NVML_ERROR_NOT_SUPPORTED;
  *temp = device->temp;
  return NVML_SUCCESS;
}

#ifndef FAKE_NVML_NO_OLD_TEMPERATURE
EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensorType, unsigned int *temp) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  int t = 0;
  if (r == NVML_SUCCESS && !temp) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) r = temperatureOf(device, sensorType, &t);
  if (r == NVML_SUCCESS) *temp = (unsigned int)t;
  return leave(r);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetTemperatureV(nvmlDevice_t device, nvmlTemperature_t *temperature) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS && !temperature) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS && temperature->version != nvmlTemperature_v1) r = NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  if (r == NVML_SUCCESS) r = temperatureOf(device, temperature->sensorType, &temperature->temperature);
  return leave(r);
}

/* ---- running processes ---- */

typedef struct {
  unsigned int pid, gi, ci;
  unsigned long long mem;
} proc_row;

/* The processes a handle reports: a MIG device its own (with its ids); a GPU its own plus those of its MIG devices. */
static int collectProcs(nvmlDevice_t d, int graphics, proc_row *rows, int cap, nvmlReturn_t *r) {
  const proc_list *own = graphics ? &d->graphics : &d->compute;
  int n = 0;
  if (!own->has) {
    *r = NVML_ERROR_NOT_SUPPORTED;
    return 0;
  }
  for (int i = 0; i < own->n && n < cap; i++, n++) {
    rows[n].pid = own->p[i].pid;
    rows[n].mem = own->p[i].mem;
    rows[n].gi = d->isMig ? d->gi : NO_ID;
    rows[n].ci = d->isMig ? d->ci : NO_ID;
  }
  for (int j = 0; !d->isMig && j < MAX_MIGS; j++) {
    const fake_dev *m = &migs[d->slot][j];
    const proc_list *l = graphics ? &m->graphics : &m->compute;
    for (int i = 0; m->present && i < l->n && n < cap; i++, n++) {
      rows[n].pid = l->p[i].pid;
      rows[n].mem = l->p[i].mem;
      rows[n].gi = m->gi;
      rows[n].ci = m->ci;
    }
  }
  *r = NVML_SUCCESS;
  return n;
}

/* The two-call protocol: a NULL array (or too small a count) answers INSUFFICIENT_SIZE with the count needed. */
static nvmlReturn_t runningProcesses(const char *fn, nvmlDevice_t device, unsigned int *infoCount, void *infos,
                                     int graphics, int version) {
  nvmlReturn_t r = enter(fn, device, NEEDS_INIT | NEEDS_DEVICE);
  proc_row rows[MAX_PROCS * (MAX_MIGS + 1)];
  int n = 0;
  if (r == NVML_SUCCESS && !infoCount) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS) n = collectProcs(device, graphics, rows, (int)(sizeof rows / sizeof rows[0]), &r);
  if (r == NVML_SUCCESS) {
    unsigned int need = (unsigned int)n;
    if (!infos || *infoCount == 0) {
      if (need > 0 && device->growing > 0) need = need > (unsigned int)device->growing ? need - (unsigned int)device->growing : 1;
      r = need == 0 ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
      *infoCount = need;
    } else if (device->growing < 0 || *infoCount < need) {
      *infoCount = device->growing < 0 && *infoCount >= need ? *infoCount + 1 : need;
      r = NVML_ERROR_INSUFFICIENT_SIZE;
    } else {
      for (int i = 0; i < n; i++) {
        if (version == 1) {
          nvmlProcessInfo_v1_t *p = (nvmlProcessInfo_v1_t *)infos + i;
          p->pid = rows[i].pid;
          p->usedGpuMemory = rows[i].mem;
        } else {
          nvmlProcessInfo_t *p = (nvmlProcessInfo_t *)infos + i;
          p->pid = rows[i].pid;
          p->usedGpuMemory = rows[i].mem;
          p->gpuInstanceId = rows[i].gi;
          p->computeInstanceId = rows[i].ci;
        }
      }
      *infoCount = need;
    }
  }
  return leave(r);
}

#ifndef FAKE_NVML_NO_V3
#ifndef FAKE_NVML_NO_V2_PROCS
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                            nvmlProcessInfo_t *infos) {
  return runningProcesses(__func__, device, infoCount, infos, 0, 3);
}
EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                             nvmlProcessInfo_t *infos) {
  return runningProcesses(__func__, device, infoCount, infos, 1, 3);
}
#endif
#endif

#ifndef FAKE_NVML_NO_V2_PROCS
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                            nvmlProcessInfo_t *infos) {
  return runningProcesses(__func__, device, infoCount, infos, 0, 2);
}
EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                             nvmlProcessInfo_t *infos) {
  return runningProcesses(__func__, device, infoCount, infos, 1, 2);
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                         nvmlProcessInfo_v1_t *infos) {
  return runningProcesses(__func__, device, infoCount, infos, 0, 1);
}
EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                          nvmlProcessInfo_v1_t *infos) {
  return runningProcesses(__func__, device, infoCount, infos, 1, 1);
}

/* Samples newer than lastSeenTimeStamp; NOT_FOUND when there are none. Not on MIG (as real NVML). */
EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device, nvmlProcessUtilizationSample_t *utilization,
                                                    unsigned int *processSamplesCount,
                                                    unsigned long long lastSeenTimeStamp) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS && !processSamplesCount) r = NVML_ERROR_INVALID_ARGUMENT;
  if (r == NVML_SUCCESS && (migged(device) || !device->hasSamples)) r = NVML_ERROR_NOT_SUPPORTED;
  if (r == NVML_SUCCESS) {
    unsigned long long now = nowUs();
    nvmlProcessUtilizationSample_t rows[MAX_PROCS];
    unsigned int n = 0;
    for (int i = 0; i < device->nSamples; i++) {
      const fake_sample *s = &device->samples[i];
      unsigned long long ts = s->now ? now : s->ts;
      if (ts <= lastSeenTimeStamp) continue;
      rows[n] = (nvmlProcessUtilizationSample_t){s->pid, ts, s->sm, s->mem, 0, 0};
      n++;
    }
    if (n == 0) r = NVML_ERROR_NOT_FOUND;
    else if (!utilization || *processSamplesCount == 0) {
      unsigned int need = n;
      if (device->growing > 0) need = n > (unsigned int)device->growing ? n - (unsigned int)device->growing : 1;
      *processSamplesCount = need;
      r = NVML_ERROR_INSUFFICIENT_SIZE;
    } else if (device->growing < 0 || *processSamplesCount < n) {
      *processSamplesCount = device->growing < 0 && *processSamplesCount >= n ? *processSamplesCount + 1 : n;
      r = NVML_ERROR_INSUFFICIENT_SIZE;
    } else {
      memcpy(utilization, rows, n * sizeof rows[0]);
      *processSamplesCount = n;
    }
  }
  return leave(r);
}

/* ---- MIG ---- */

EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!currentMode || !pendingMode) r = NVML_ERROR_INVALID_ARGUMENT;
    else if (device->isMig || !device->hasMigMode) r = NVML_ERROR_NOT_SUPPORTED;
    else *currentMode = *pendingMode = device->migMode;
  }
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!count || device->isMig) r = NVML_ERROR_INVALID_ARGUMENT;
    else *count = device->hasMigMode && device->migMode == 1 ? MAX_MIGS : 0;
  }
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                        nvmlDevice_t *migDevice) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!migDevice || device->isMig || index >= MAX_MIGS) r = NVML_ERROR_INVALID_ARGUMENT;
    else if (!device->hasMigMode || device->migMode != 1) r = NVML_ERROR_NOT_SUPPORTED;
    else if (!migs[device->slot][index].present) r = NVML_ERROR_NOT_FOUND;
    else *migDevice = &migs[device->slot][index];
  }
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *isMigDevice) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!isMigDevice) r = NVML_ERROR_INVALID_ARGUMENT;
    else *isMigDevice = (unsigned int)device->isMig;
  }
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!id) r = NVML_ERROR_INVALID_ARGUMENT;
    else if (!device->isMig) r = NVML_ERROR_NOT_SUPPORTED;
    else *id = device->gi;
  }
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id) {
  nvmlReturn_t r = enter(__func__, device, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!id) r = NVML_ERROR_INVALID_ARGUMENT;
    else if (!device->isMig) r = NVML_ERROR_NOT_SUPPORTED;
    else *id = device->ci;
  }
  return leave(r);
}

EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t migDevice, nvmlDevice_t *device) {
  nvmlReturn_t r = enter(__func__, migDevice, NEEDS_INIT | NEEDS_DEVICE);
  if (r == NVML_SUCCESS) {
    if (!device || !migDevice->isMig) r = NVML_ERROR_INVALID_ARGUMENT;
    else *device = migDevice->parent;
  }
  return leave(r);
}
