/*
 * native-reader: the floor for one gather pass over cgroup v1.
 *
 * Walks every directory under /sys/fs/cgroup/{cpu,cpuacct,memory,blkio,pids}
 * and reads, with plain open/read/close into one reused buffer, the files a
 * cAdvisor-compatible gather needs per cgroup:
 *   cpuacct: cpuacct.usage cpuacct.usage_percpu cpuacct.stat
 *   cpu:     cpu.stat cpu.cfs_quota_us cpu.cfs_period_us cpu.shares
 *            cgroup.procs, then /proc/<first pid>/net/dev
 *   memory:  memory.usage_in_bytes memory.max_usage_in_bytes memory.limit_in_bytes
 *            memory.soft_limit_in_bytes memory.memsw.limit_in_bytes memory.stat
 *            memory.failcnt
 *   blkio:   blkio.throttle.io_service_bytes_recursive
 *   pids:    pids.current pids.max
 * No parsing: this is the cost of the syscalls and the kernel's formatting only.
 *
 * usage: native-reader [passes=20] [root=/sys/fs/cgroup]
 * prints: cgroups, files, bytes per pass, and ms per pass (min/median/max).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];
static long files_read, files_missing, bytes_read, cgroups;

static long read_file(const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		files_missing++;
		return -1;
	}
	long total = 0;
	for (;;) {
		ssize_t n = read(fd, buf + total, sizeof(buf) - 1 - (size_t)total);
		if (n <= 0) break;
		total += n;
		if ((size_t)total >= sizeof(buf) - 1) break;
	}
	close(fd);
	buf[total] = '\0';
	files_read++;
	bytes_read += total;
	return total;
}

struct hierarchy {
	const char *name;
	const char *files[8];
	int procs; /* also read cgroup.procs and the first pid's net/dev here */
};

static const struct hierarchy hierarchies[] = {
	{"cpuacct", {"cpuacct.usage", "cpuacct.usage_percpu", "cpuacct.stat", NULL}, 0},
	{"cpu", {"cpu.stat", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares", NULL}, 1},
	{"memory",
	 {"memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.limit_in_bytes",
	  "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.stat", "memory.failcnt", NULL},
	 0},
	{"blkio", {"blkio.throttle.io_service_bytes_recursive", NULL}, 0},
	{"pids", {"pids.current", "pids.max", NULL}, 0},
};

static void visit(const struct hierarchy *h, char *path, size_t len) {
	if (h->procs) cgroups++;
	for (int i = 0; h->files[i]; i++) {
		snprintf(path + len, 4096 - len, "/%s", h->files[i]);
		read_file(path);
	}
	if (h->procs) {
		snprintf(path + len, 4096 - len, "/cgroup.procs");
		if (read_file(path) > 0) {
			long pid = strtol(buf, NULL, 10);
			if (pid > 0) {
				char net[64];
				snprintf(net, sizeof(net), "/proc/%ld/net/dev", pid);
				read_file(net);
			}
		}
	}
	path[len] = '\0';

	DIR *d = opendir(path);
	if (!d) return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
		size_t n = (size_t)snprintf(path + len, 4096 - len, "/%s", e->d_name);
		if (len + n >= 4096) continue;
		visit(h, path, len + n);
		path[len] = '\0';
	}
	closedir(d);
}

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	int passes = argc > 1 ? atoi(argv[1]) : 20;
	const char *root = argc > 2 ? argv[2] : "/sys/fs/cgroup";
	if (passes < 1) passes = 1;
	double *ms = calloc((size_t)passes, sizeof(double));
	if (!ms) return 1;
	char path[4096];
	for (int p = 0; p < passes; p++) {
		files_read = files_missing = bytes_read = cgroups = 0;
		double t0 = now_ms();
		for (size_t i = 0; i < sizeof(hierarchies) / sizeof(hierarchies[0]); i++) {
			size_t len = (size_t)snprintf(path, sizeof(path), "%s/%s", root, hierarchies[i].name);
			visit(&hierarchies[i], path, len);
		}
		ms[p] = now_ms() - t0;
	}
	qsort(ms, (size_t)passes, sizeof(double), cmp);
	printf("cgroups %ld\nfiles_read %ld\nfiles_missing %ld\nbytes %ld\npasses %d\n", cgroups, files_read,
	       files_missing, bytes_read, passes);
	printf("ms_min %.3f\nms_median %.3f\nms_max %.3f\n", ms[0], ms[passes / 2], ms[passes - 1]);
	free(ms);
	return 0;
}
