/*
 * native-reader: the floor for one podvisor gather, in C with plain syscalls.
 *
 * One pass opens, reads and closes the same files, lists the same directories and follows the same links as
 * one gather of podvisor (src/gather/gatherer.ts), in the same order, with no parsing beyond what is needed to
 * find the next files (the pids in cgroup.procs, the netns of a process, whether a blkio file has a device row):
 *
 *   1. /proc/partitions; readlink /proc/1/ns/net (the host's network namespace; then /proc/2/ns/net, then
 *      /proc/self/ns/net while they fail)
 *   2. discovery: every directory of each hierarchy podvisor reads (v1: the cpu, cpuacct, memory, blkio, pids
 *      mounts, each distinct mount once; v2: the cgroup2 mount), opendir + getdents, except that on cgroupfs a
 *      directory with link count 2 (a leaf) is stat()ed instead; the union of the paths, sorted, is the cgroup list
 *   3. v1/hybrid: the blkio probe at the blkio root (the first of blkio.io_service_bytes_recursive,
 *      blkio.bfq.io_service_bytes_recursive, blkio.throttle.io_service_bytes_recursive with a device row)
 *   4. per cgroup path, in every hierarchy, existing there or not (a missing one is a failed open, as in podvisor):
 *      v1:     cpuacct.usage cpuacct.usage_percpu cpuacct.stat cpu.stat memory.usage_in_bytes memory.stat
 *              memory.max_usage_in_bytes memory.failcnt pids.max pids.current cpu.cfs_quota_us
 *              memory.limit_in_bytes memory.soft_limit_in_bytes memory.memsw.limit_in_bytes cpu.cfs_period_us
 *              cpu.shares, the probed blkio file(s) until one has a device row
 *      hybrid: the v1 files, then cpu.pressure memory.pressure io.pressure under the cgroup2 mount
 *      v2:     cpu.stat memory.current memory.swap.current (root: /proc/meminfo once) memory.stat memory.peak
 *              pids.max pids.current cpu.max cpu.weight memory.max memory.min memory.swap.max io.stat
 *              cpu.pressure memory.pressure io.pressure
 *      then stat() the cgroup's directory in the pids, cpu, cpuacct, memory, blkio hierarchies until one exists
 *      and read its cgroup.procs; per pid: opendir /proc/<pid>/fd, getdents, readlink every entry (a process that
 *      is gone is skipped; another failure, e.g. EACCES, ends the cgroup's fd count, as in podvisor); the network
 *      owner: readlink /proc/<pid>/ns/net of the first live pid (pid 1 for /), and if that namespace was not
 *      reported yet, /proc/<pid>/net/dev; finally (not for /) stat() the cgroup's directories until one exists.
 *
 * Not done, as podvisor does not do it per gather either: the mount table (read once at start), start times
 * (the directories' mtime, read the first time a cgroup is seen), machine facts (every 5 minutes). Not done,
 * and not part of a gather: podvisor's own process metrics (/proc/self/{stat,status,fd}), rendering, HTTP.
 * bench/native-reader-strace.sh compares the two under strace; bench/README.md lists what differs.
 *
 * usage: native-reader [passes=20]
 * prints "key value" lines: mode, cgroups, files_read, files_missing, bytes, dirs_listed, fd_dirs, readlinks,
 * stats, pids, passes, ms_min, ms_median, ms_p95, ms_max, ms_all (every pass, comma-separated, in order).
 * Counts are those of the last pass.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define PATH_MAX_LEN 4096

static char buf[1 << 22];
static long files_read, files_missing, bytes_read, dirs_listed, fd_dirs, readlinks, stats, pids_seen;

enum mode { V1, HYBRID, V2 };
static enum mode mode;
/* v1 mounts, by controller; the cgroup2 mount (v2, or hybrid's unified hierarchy). */
static char cpu_root[PATH_MAX_LEN], cpuacct_root[PATH_MAX_LEN], memory_root[PATH_MAX_LEN], blkio_root[PATH_MAX_LEN],
    pids_root[PATH_MAX_LEN], v2_root[PATH_MAX_LEN];
/* The hierarchies walked (each distinct mount once, podvisor's order), and where cgroup.procs is looked for. */
static const char *walk_roots[5], *procs_roots[5];
static int n_walk_roots, n_procs_roots;

/* ------------------------------------------------------------------ syscalls with counting */

/* open/read until read() returns 0 (or a first read under 2 KiB)/close into buf; the length, or -1 if the open failed. */
static long read_file(const char *path) {
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		files_missing++;
		buf[0] = '\0';
		return -1;
	}
	size_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf + total, sizeof(buf) - 1 - total);
		if (n <= 0) break;
		total += (size_t)n;
		if (total >= sizeof(buf) - 1) break;
		/* as podvisor's FileReader: a short first read under 2 KiB is the whole pseudo-file */
		if (total == (size_t)n && n < 2048) break;
	}
	close(fd);
	buf[total] = '\0';
	files_read++;
	bytes_read += (long)total;
	return (long)total;
}

static int is_dir(const char *path) {
	struct stat st;
	stats++;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* hostPath(root, path, name) into out (PATH_MAX_LEN): path "/" is the root itself; name may be NULL. */
static void join(char *out, const char *root, const char *path, const char *name) {
	int n;
	if (strcmp(path, "/") == 0) path = "";
	if (name)
		n = snprintf(out, PATH_MAX_LEN, "%s%s/%s", root, path, name);
	else
		n = snprintf(out, PATH_MAX_LEN, "%s%s", root, path);
	if (n < 0 || n >= PATH_MAX_LEN) out[0] = '\0'; /* too long: an open of "" fails, as a missing file */
}

/* ------------------------------------------------------------------ the cgroup list */

static char **paths;
static size_t n_paths, cap_paths;

static void add_path(const char *p) {
	if (n_paths == cap_paths) {
		cap_paths = cap_paths ? cap_paths * 2 : 1024;
		paths = realloc(paths, cap_paths * sizeof(char *));
		if (!paths) exit(2);
	}
	paths[n_paths++] = strdup(p);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/*
 * walkCgroups: a stack of paths, one readdir per directory, children that are directories pushed; on cgroupfs a
 * directory other than the root with link count 2 has no subdirectory and is stat()ed instead of listed.
 */
static void walk(const char *root) {
	char **stack = NULL;
	size_t n = 0, cap = 0;
	char dir[PATH_MAX_LEN], child[PATH_MAX_LEN];
	struct statfs sfs;
	int counts_subdirs = statfs(root, &sfs) == 0 && (sfs.f_type == 0x27e0eb || sfs.f_type == 0x63677270);
	stack = malloc(sizeof(char *) * (cap = 256));
	stack[n++] = strdup("/");
	while (n > 0) {
		char *path = stack[--n];
		join(dir, root, path, NULL);
		if (counts_subdirs && strcmp(path, "/") != 0) {
			struct stat st;
			stats++;
			if (stat(dir, &st) != 0) {
				free(path);
				continue;
			}
			if (st.st_nlink == 2) {
				add_path(path);
				free(path);
				continue;
			}
		}
		DIR *d = opendir(dir);
		if (d) {
			dirs_listed++;
			struct dirent *e;
			while ((e = readdir(d))) {
				if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
				int len = snprintf(child, sizeof(child), "%s/%s", strcmp(path, "/") == 0 ? "" : path, e->d_name);
				if (len < 0 || (size_t)len >= sizeof(child)) continue;
				if (n == cap) stack = realloc(stack, sizeof(char *) * (cap *= 2));
				stack[n++] = strdup(child);
			}
			closedir(d);
			add_path(path);
		}
		free(path);
	}
	free(stack);
}

/* ------------------------------------------------------------------ per cgroup */

static const char *const BLKIO_CANDIDATES[] = {"blkio.io_service_bytes_recursive", "blkio.bfq.io_service_bytes_recursive",
                                               "blkio.throttle.io_service_bytes_recursive"};
static int blkio_first, blkio_last; /* the probed candidates: [first, last) */

/* A v1 blkio *_recursive file has a device row when a line starts with a digit ("8:0 Read 123"). */
static int has_device_row(long len) {
	if (len <= 0) return 0;
	for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (*p >= '0' && *p <= '9') return 1;
	return 0;
}

static void probe_blkio(void) {
	char file[PATH_MAX_LEN];
	int first_existing = -1;
	blkio_first = blkio_last = 0;
	if (!blkio_root[0]) return;
	for (int i = 0; i < 3; i++) {
		join(file, blkio_root, "/", BLKIO_CANDIDATES[i]);
		long len = read_file(file);
		if (len < 0) continue;
		if (has_device_row(len)) {
			blkio_first = i;
			blkio_last = 3;
			return;
		}
		if (first_existing < 0) first_existing = i;
	}
	if (first_existing >= 0) {
		blkio_first = first_existing;
		blkio_last = first_existing + 1;
	}
}

static void read_in(const char *root, const char *path, const char *name) {
	char file[PATH_MAX_LEN];
	if (!root[0]) return; /* controller not mounted: podvisor reads nothing either */
	join(file, root, path, name);
	read_file(file);
}

static void read_v1(const char *path) {
	read_in(cpuacct_root, path, "cpuacct.usage");
	read_in(cpuacct_root, path, "cpuacct.usage_percpu");
	read_in(cpuacct_root, path, "cpuacct.stat");
	read_in(cpu_root, path, "cpu.stat");
	read_in(memory_root, path, "memory.usage_in_bytes");
	read_in(memory_root, path, "memory.stat");
	read_in(memory_root, path, "memory.max_usage_in_bytes");
	read_in(memory_root, path, "memory.failcnt");
	read_in(pids_root, path, "pids.max");
	read_in(pids_root, path, "pids.current");
	read_in(cpu_root, path, "cpu.cfs_quota_us");
	read_in(memory_root, path, "memory.limit_in_bytes");
	read_in(memory_root, path, "memory.soft_limit_in_bytes");
	read_in(memory_root, path, "memory.memsw.limit_in_bytes");
	read_in(cpu_root, path, "cpu.cfs_period_us");
	read_in(cpu_root, path, "cpu.shares");
	if (blkio_root[0]) {
		char file[PATH_MAX_LEN];
		for (int i = blkio_first; i < blkio_last; i++) {
			join(file, blkio_root, path, BLKIO_CANDIDATES[i]);
			if (has_device_row(read_file(file))) break;
		}
	}
}

static void read_pressure(const char *path) {
	read_in(v2_root, path, "cpu.pressure");
	read_in(v2_root, path, "memory.pressure");
	read_in(v2_root, path, "io.pressure");
}

static int meminfo_read;

static void read_v2(const char *path) {
	char file[PATH_MAX_LEN];
	read_in(v2_root, path, "cpu.stat");
	join(file, v2_root, path, "memory.current");
	long usage = read_file(file);
	read_in(v2_root, path, "memory.swap.current");
	if (strcmp(path, "/") == 0 && usage < 0 && !meminfo_read) {
		meminfo_read = 1;
		read_file("/proc/meminfo");
	}
	read_in(v2_root, path, "memory.stat");
	read_in(v2_root, path, "memory.peak");
	read_in(v2_root, path, "pids.max");
	read_in(v2_root, path, "pids.current");
	read_in(v2_root, path, "cpu.max");
	read_in(v2_root, path, "cpu.weight");
	read_in(v2_root, path, "memory.max");
	read_in(v2_root, path, "memory.min");
	read_in(v2_root, path, "memory.swap.max");
	read_in(v2_root, path, "io.stat");
	read_pressure(path);
}

/* pids of the last cgroup.procs read */
static long *pids;
static size_t n_pids, cap_pids;

static void parse_pids(void) {
	n_pids = 0;
	for (char *p = buf; *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p) break;
		if (n_pids == cap_pids) {
			cap_pids = cap_pids ? cap_pids * 2 : 1024;
			pids = realloc(pids, cap_pids * sizeof(long));
			if (!pids) exit(2);
		}
		pids[n_pids++] = v;
		p = end;
		while (*p == '\n') p++;
	}
	pids_seen += (long)n_pids;
}

/* #pids: the cgroup's directory in the first procs hierarchy where it exists, then its cgroup.procs. */
static int read_procs(const char *path) {
	char dir[PATH_MAX_LEN], file[PATH_MAX_LEN];
	for (int i = 0; i < n_procs_roots; i++) {
		join(dir, procs_roots[i], path, NULL);
		if (!is_dir(dir)) continue;
		join(file, procs_roots[i], path, "cgroup.procs");
		if (read_file(file) < 0) return 0;
		parse_pids();
		return 1;
	}
	return 0;
}

/* The process (or fd) went away: ENOENT, ENOTDIR, ESRCH. Anything else (EACCES) is an error. */
static int gone(int err) { return err == ENOENT || err == ENOTDIR || err == ESRCH; }

/*
 * countFileDescriptors for every pid: readdir /proc/<pid>/fd, readlink each entry. As in podvisor, a process that
 * went away is skipped, and any other failure ends the cgroup's count (podvisor then reports no fd numbers for it).
 */
static long *fds;
static size_t cap_fds;

static void count_fds(void) {
	char dir[64], link[96], target[256];
	for (size_t i = 0; i < n_pids; i++) {
		snprintf(dir, sizeof(dir), "/proc/%ld/fd", pids[i]);
		DIR *d = opendir(dir);
		if (!d) {
			if (gone(errno)) continue;
			return;
		}
		fd_dirs++;
		/* the whole listing first, then the links (podvisor: readdirSync, then readlinkSync per name) */
		size_t n_fds = 0;
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.') continue;
			if (n_fds == cap_fds) {
				cap_fds = cap_fds ? cap_fds * 2 : 1024;
				fds = realloc(fds, cap_fds * sizeof(long));
				if (!fds) exit(2);
			}
			fds[n_fds++] = strtol(e->d_name, NULL, 10);
		}
		closedir(d);
		for (size_t k = 0; k < n_fds; k++) {
			snprintf(link, sizeof(link), "%s/%ld", dir, fds[k]);
			readlinks++;
			if (readlink(link, target, sizeof(target)) < 0 && !gone(errno)) return;
		}
	}
}

/* network namespaces already reported in this pass (their inode numbers) */
static unsigned long *claimed;
static size_t n_claimed, cap_claimed;

/* readlink /proc/<pid>/ns/net (pid 0: /proc/self): 1 and the namespace's inode; 0 if gone; -1 on another error */
static int netns_of(long pid, unsigned long *ino) {
	char link[64], target[64];
	if (pid == 0)
		snprintf(link, sizeof(link), "/proc/self/ns/net");
	else
		snprintf(link, sizeof(link), "/proc/%ld/ns/net", pid);
	readlinks++;
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n < 0) return gone(errno) ? 0 : -1;
	target[n] = '\0';
	char *open = strchr(target, '[');
	*ino = open ? strtoul(open + 1, NULL, 10) : 0;
	return 1;
}

static int claim(unsigned long ino) {
	for (size_t i = 0; i < n_claimed; i++)
		if (claimed[i] == ino) return 0;
	if (n_claimed == cap_claimed) {
		cap_claimed = cap_claimed ? cap_claimed * 2 : 256;
		claimed = realloc(claimed, cap_claimed * sizeof(unsigned long));
		if (!claimed) exit(2);
	}
	claimed[n_claimed++] = ino;
	return 1;
}

static void network(const char *path, int have_pids) {
	long pid = 0;
	if (strcmp(path, "/") == 0) {
		pid = 1;
	} else if (have_pids) {
		for (size_t i = 0; i < n_pids; i++) {
			unsigned long ino;
			int r = netns_of(pids[i], &ino);
			if (r == 0) continue; /* exited */
			if (r < 0 || !claim(ino)) return;
			pid = pids[i];
			break;
		}
	}
	if (pid == 0) return;
	char file[64];
	snprintf(file, sizeof(file), "/proc/%ld/net/dev", pid);
	read_file(file);
}

/* cgroupExists: the cgroup's directory in the walked hierarchies, until one is a directory */
static void exists(const char *path) {
	char dir[PATH_MAX_LEN];
	if (strcmp(path, "/") == 0) return;
	for (int i = 0; i < n_walk_roots; i++) {
		join(dir, walk_roots[i], path, NULL);
		if (is_dir(dir)) return;
	}
}

/* ------------------------------------------------------------------ one pass */

static void pass(void) {
	files_read = files_missing = bytes_read = dirs_listed = fd_dirs = readlinks = stats = pids_seen = 0;
	meminfo_read = 0;
	n_claimed = 0;
	read_file("/proc/partitions");
	unsigned long host;
	/* the host's namespace: init's, else kthreadd's (pid 2), else our own, as podvisor's #hostNetns */
	if (netns_of(1, &host) > 0 || netns_of(2, &host) > 0 || netns_of(0, &host) > 0) claim(host);

	for (size_t i = 0; i < n_paths; i++) free(paths[i]);
	n_paths = 0;
	for (int i = 0; i < n_walk_roots; i++) walk(walk_roots[i]);
	qsort(paths, n_paths, sizeof(char *), cmp_str);
	size_t u = 0;
	for (size_t i = 0; i < n_paths; i++) {
		if (u > 0 && strcmp(paths[u - 1], paths[i]) == 0) {
			free(paths[i]);
			continue;
		}
		paths[u++] = paths[i];
	}
	n_paths = u;

	if (mode != V2) probe_blkio();
	for (size_t i = 0; i < n_paths; i++) {
		const char *path = paths[i];
		if (mode == V2) {
			read_v2(path);
		} else {
			read_v1(path);
			if (mode == HYBRID) read_pressure(path);
		}
		int have_pids = read_procs(path);
		if (have_pids) count_fds();
		network(path, have_pids);
		exists(path);
	}
}

/* ------------------------------------------------------------------ setup: the mount table, once */

static void set_root(char *root, const char *mount_point) {
	if (!root[0]) snprintf(root, PATH_MAX_LEN, "%s", mount_point);
}

static void load_mounts(void) {
	FILE *f = fopen("/proc/1/mountinfo", "r");
	if (!f) f = fopen("/proc/self/mountinfo", "r");
	if (!f) {
		fprintf(stderr, "native-reader: cannot read the mount table\n");
		exit(1);
	}
	char line[8192];
	while (fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char *field[6] = {0};
		char *save = NULL, *tok = strtok_r(line, " \n", &save);
		int k = 0;
		while (tok && k < 6) {
			field[k++] = tok;
			tok = strtok_r(NULL, " \n", &save);
		}
		while (tok && strcmp(tok, "-") != 0) tok = strtok_r(NULL, " \n", &save);
		char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL;
		char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
		char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
		if (!field[4] || !fstype) continue;
		if (strcmp(fstype, "cgroup2") == 0) {
			set_root(v2_root, field[4]);
		} else if (strcmp(fstype, "cgroup") == 0 && super) {
			char opts[1024];
			snprintf(opts, sizeof(opts), ",%s,", super);
			if (strstr(opts, ",cpu,")) set_root(cpu_root, field[4]);
			if (strstr(opts, ",cpuacct,")) set_root(cpuacct_root, field[4]);
			if (strstr(opts, ",memory,")) set_root(memory_root, field[4]);
			if (strstr(opts, ",blkio,")) set_root(blkio_root, field[4]);
			if (strstr(opts, ",pids,")) set_root(pids_root, field[4]);
		}
	}
	fclose(f);
	int any_v1 = cpu_root[0] || cpuacct_root[0] || memory_root[0] || blkio_root[0] || pids_root[0];
	if (!any_v1 && !v2_root[0]) {
		fprintf(stderr, "native-reader: no cgroup mount found\n");
		exit(1);
	}
	mode = !any_v1 ? V2 : v2_root[0] ? HYBRID : V1;
	if (mode == V2) {
		walk_roots[n_walk_roots++] = v2_root;
		procs_roots[n_procs_roots++] = v2_root;
		return;
	}
	const char *walk_order[] = {cpu_root, cpuacct_root, memory_root, blkio_root, pids_root};
	const char *procs_order[] = {pids_root, cpu_root, cpuacct_root, memory_root, blkio_root};
	for (int i = 0; i < 5; i++) {
		int dup = !walk_order[i][0];
		for (int j = 0; j < n_walk_roots; j++) dup |= strcmp(walk_roots[j], walk_order[i]) == 0;
		if (!dup) walk_roots[n_walk_roots++] = walk_order[i];
		dup = !procs_order[i][0];
		for (int j = 0; j < n_procs_roots; j++) dup |= strcmp(procs_roots[j], procs_order[i]) == 0;
		if (!dup) procs_roots[n_procs_roots++] = procs_order[i];
	}
}

/* ------------------------------------------------------------------ main */

static double now_ms(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv) {
	int passes = argc > 1 ? atoi(argv[1]) : 20;
	if (passes < 1) passes = 1;
	load_mounts();
	double *ms = calloc((size_t)passes, sizeof(double));
	double *sorted = calloc((size_t)passes, sizeof(double));
	if (!ms || !sorted) return 2;
	for (int p = 0; p < passes; p++) {
		double t0 = now_ms();
		pass();
		ms[p] = now_ms() - t0;
	}
	memcpy(sorted, ms, (size_t)passes * sizeof(double));
	qsort(sorted, (size_t)passes, sizeof(double), cmp_double);
	/* nearest rank */
	int p95 = (int)((0.95 * passes) + 0.999999) - 1;
	printf("mode %s\ncgroups %zu\nfiles_read %ld\nfiles_missing %ld\nbytes %ld\n", mode == V1 ? "v1" : mode == HYBRID ? "hybrid" : "v2",
	       n_paths, files_read, files_missing, bytes_read);
	printf("dirs_listed %ld\nfd_dirs %ld\nreadlinks %ld\nstats %ld\npids %ld\npasses %d\n", dirs_listed, fd_dirs, readlinks, stats,
	       pids_seen, passes);
	printf("ms_min %.3f\nms_median %.3f\nms_p95 %.3f\nms_max %.3f\nms_all ", sorted[0], sorted[passes / 2],
	       sorted[p95 < 0 ? 0 : p95], sorted[passes - 1]);
	for (int p = 0; p < passes; p++) printf(p ? ",%.3f" : "%.3f", ms[p]);
	printf("\n");
	free(ms);
	free(sorted);
	return 0;
}
