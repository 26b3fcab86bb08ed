/* SPDX-License-Identifier: MIT */
/*
 * ffs_test - the native library's backends (native/ffs.h) on real devices in the QEMU
 * guest.  Linked statically with the library's sources.  Prints "PASS ffs.<backend>.<name>"
 * / "FAIL ffs.<backend>.<name>: why" and exits non-zero if anything failed.
 *
 *   ffs_test func  BACKEND DEV                functional tests
 *   ffs_test one   BACKEND DEV NAME[,NAME]    some of them in one open (sizes, big-alloc, ...)
 *   ffs_test hold  BACKEND DEV                I/O in flight, print HOLDING, sleep (kill -9 test)
 *   ffs_test fill  BACKEND DEV MIB            write the first MIB MiB sequentially (bench prefill)
 *   ffs_test bench BACKEND DEV SECS OP QD     4 KiB random OP (randread|randwrite) at depth QD
 *   ffs_test crash-write  BACKEND DEV BASE    endless write+flush workload on 16384 blocks from
 *                                             LBA BASE; prints "ACKB <backend> <seq>" after each
 *                                             flush that made seq and everything before durable
 *   ffs_test crash-verify BACKEND DEV BASE ACKED
 *
 * Options through the environment: FFS_TEST_QD (queue depth, default 64), and the
 * backend's own (FFS_NVMED_MAX_CMD_BYTES, ...).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ffs.h"
#include "ffs_backend.h"
#include "nvme_spec.h"
#include "nvmed_uapi.h"

#define SEC 1000000000ull

static int failures;
static const char *backend, *devpath;

static void pass(const char *name)
{
	printf("PASS ffs.%s.%s\n", backend, name);
	fflush(stdout);
}

static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	failures++;
	printf("FAIL ffs.%s.%s: ", backend, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void info(const char *fmt, ...)
{
	va_list ap;

	printf("INFO ffs.%s: ", backend);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t ctx_switches(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * SEC +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t rnd(void)
{
	rng_state += 0x9e3779b97f4a7c15ull;
	return mix64(rng_state);
}

/* block content: every 8-byte word depends on the LBA, the word index and a seed */
static void fill(void *p, uint64_t lba, uint32_t n, uint64_t seed, uint32_t bs)
{
	uint64_t *w = p;

	for (uint64_t b = 0; b < n; b++)
		for (uint32_t i = 0; i < bs / 8; i++)
			w[b * (bs / 8) + i] = mix64((lba + b) * 0x100000001b3ull ^ seed ^ ((uint64_t)i << 48));
}

/* index of the first bad block, or -1 */
static long check(const void *p, uint64_t lba, uint32_t n, uint64_t seed, uint32_t bs)
{
	const uint64_t *w = p;

	for (uint64_t b = 0; b < n; b++)
		for (uint32_t i = 0; i < bs / 8; i++)
			if (w[b * (bs / 8) + i] != mix64((lba + b) * 0x100000001b3ull ^ seed ^ ((uint64_t)i << 48)))
				return (long)b;
	return -1;
}

static int is_zero(const void *p, size_t len)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

static uint32_t env_u32(const char *name, uint32_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? (uint32_t)strtoul(v, NULL, 0) : dflt;
}

static struct ffs_dev *open_dev(uint32_t flags, char *err, size_t errlen)
{
	return ffs_open(backend, devpath, flags, 0, env_u32("FFS_TEST_QD", 64), err, (uint32_t)errlen);
}

static struct ffs_dev *must_open(uint32_t flags)
{
	char err[256];
	struct ffs_dev *d = open_dev(flags, err, sizeof(err));

	if (!d) {
		printf("FAIL ffs.%s.open: %s: %s\n", backend, devpath, err);
		exit(2);
	}
	return d;
}

/* completions */
static struct ffs_cqe last_cqe;

/* Submits n commands (tags 0..n-1 unless given) and waits for all; returns the first
 * failing result (and its cqe in last_cqe), 0 if all succeeded, or a submit error. */
static int run_cmds(struct ffs_dev *d, struct ffs_cmd *c, uint32_t n)
{
	struct ffs_cqe cq[256];
	uint32_t got = 0;
	int first = 0, r;

	r = ffs_submit(d, c, n);
	if (r < 0)
		return r;
	while (got < n) {
		r = ffs_reap(d, cq, 256, 1);
		if (r < 0)
			return r;
		for (int i = 0; i < r; i++)
			if (cq[i].result && !first) {
				first = cq[i].result;
				last_cqe = cq[i];
			}
		got += (uint32_t)r;
	}
	return first;
}

static int io1(struct ffs_dev *d, int op, uint64_t lba, uint32_t n, void *buf, uint8_t flags)
{
	struct ffs_cmd c = { .buf = (uint64_t)(uintptr_t)buf, .lba = lba, .nblocks = n,
			     .opcode = (uint8_t)op, .flags = flags, .tag = 1 };

	return run_cmds(d, &c, 1);
}

static const char *err_str(int r)
{
	static char buf[160];

	if (r < 0 && last_cqe.status)
		snprintf(buf, sizeof(buf), "%s (NVMe status %#x: %s)", strerror(-r), last_cqe.status,
			 nvme_status_str((uint16_t)last_cqe.status));
	else
		snprintf(buf, sizeof(buf), "%s", r < 0 ? strerror(-r) : "ok");
	return buf;
}

/* ------------------------------------------------------------------ functional */

static struct ffs_geometry geo;

static void t_geometry(struct ffs_dev *d)
{
	ffs_geometry(d, &geo);
	info("geometry: capacity %" PRIu64 " lba %u max_transfer %u queue_depth %u vwc %d awu %u "
	     "flags %#x", geo.capacity, geo.lba_size, geo.max_transfer, geo.queue_depth,
	     geo.volatile_cache, geo.atomic_write, geo.flags);
	if (geo.lba_size < 4096 || (geo.lba_size & (geo.lba_size - 1)) || geo.capacity < (1ull << 30) ||
	    geo.capacity % geo.lba_size || geo.max_transfer < geo.lba_size || geo.queue_depth < 1 ||
	    !(geo.flags & FFS_GEO_DIRECT))
		fail("geometry", "implausible geometry");
	else
		pass("geometry");
}

static void t_rw_basic(struct ffs_dev *d)
{
	uint32_t bs = geo.lba_size;
	uint64_t blocks = geo.capacity / bs, lbas[3] = { 0, blocks / 2 + 3, blocks - 4 };
	char *w = ffs_alloc(d, 4 * bs), *r = ffs_alloc(d, 4 * bs);
	int bad = 0;

	for (int i = 0; i < 3 && !bad; i++) {
		int rc;

		fill(w, lbas[i], 4, 11, bs);
		memset(r, 0, 4 * bs);
		rc = io1(d, FFS_OP_WRITE, lbas[i], 4, w, 0);
		if (!rc)
			rc = io1(d, FFS_OP_READ, lbas[i], 4, r, 0);
		if (rc) {
			fail("rw-basic", "LBA %" PRIu64 ": %s", lbas[i], err_str(rc));
			bad = 1;
		} else if (check(r, lbas[i], 4, 11, bs) >= 0) {
			fail("rw-basic", "LBA %" PRIu64 ": data mismatch", lbas[i]);
			bad = 1;
		}
	}
	if (!bad)
		pass("rw-basic");
	ffs_free(d, w, 4 * bs);
	ffs_free(d, r, 4 * bs);
}

/* Transfers of many sizes, at several buffer offsets: one PRP, two, lists, chained lists
 * (nvmed); the kernel's mapping of user pages (uring-cmd, uring, psync). */
static void t_sizes(struct ffs_dev *d)
{
	uint32_t bs = geo.lba_size, maxb = geo.max_transfer / bs;
	uint32_t sizes[] = { 1, 2, 3, 7, 8, 9, 31, 64, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025 };
	uint32_t offs[] = { 0, 1, 3 };
	size_t len = (size_t)(maxb + 4) * bs;
	char *w = ffs_alloc(d, len), *r = ffs_alloc(d, len);
	uint32_t count = 0;

	if (!w || !r) {
		fail("sizes", "ffs_alloc(%zu): %s", len, ffs_last_error(d));
		return;
	}
	for (size_t si = 0; si <= sizeof(sizes) / sizeof(sizes[0]); si++) {
		uint32_t n = si < sizeof(sizes) / sizeof(sizes[0]) ? sizes[si] : maxb;

		if (n > maxb)
			continue;
		for (size_t oi = 0; oi < sizeof(offs) / sizeof(offs[0]); oi++) {
			uint64_t lba = 1024 + rnd() % (geo.capacity / bs / 2);
			char *wp = w + (size_t)offs[oi] * bs, *rp = r + (size_t)offs[oi] * bs;
			int rc;

			fill(wp, lba, n, 22 + n, bs);
			memset(rp, 0xee, (size_t)n * bs);
			rc = io1(d, FFS_OP_WRITE, lba, n, wp, 0);
			if (!rc)
				rc = io1(d, FFS_OP_READ, lba, n, rp, 0);
			if (rc || check(rp, lba, n, 22 + n, bs) >= 0) {
				fail("sizes", "%u blocks at buffer offset %u blocks: %s", n, offs[oi],
				     rc ? err_str(rc) : "data mismatch");
				goto out;
			}
			count++;
		}
	}
	info("sizes: %u transfers of 1..%u blocks verified", count, maxb);
	pass("sizes");
out:
	ffs_free(d, w, len);
	ffs_free(d, r, len);
}

/* One allocation larger than a driver DMA buffer (nvmed: several buffers in one range). */
static void t_big_alloc(struct ffs_dev *d)
{
	uint32_t bs = geo.lba_size;
	size_t len = 12u << 20;
	uint32_t per = geo.max_transfer / bs, total = (uint32_t)(len / bs), n = 0;
	char *w = ffs_alloc(d, len), *r = ffs_alloc(d, len);
	struct ffs_cmd c[64];
	uint64_t base = 300000;
	int rc;

	if (!w || !r) {
		fail("big-alloc", "ffs_alloc(12 MiB): %s", ffs_last_error(d));
		goto out;
	}
	fill(w, base, total, 33, bs);
	memset(r, 0, len);
	for (uint32_t b = 0; b < total && n < 64; b += per, n++)
		c[n] = (struct ffs_cmd){ .buf = (uint64_t)(uintptr_t)(w + (size_t)b * bs), .lba = base + b,
					 .nblocks = total - b < per ? total - b : per,
					 .opcode = FFS_OP_WRITE, .tag = n };
	rc = run_cmds(d, c, n);
	for (uint32_t i = 0; i < n && !rc; i++) {
		c[i].buf = c[i].buf - (uint64_t)(uintptr_t)w + (uint64_t)(uintptr_t)r;
		c[i].opcode = FFS_OP_READ;
	}
	if (!rc)
		rc = run_cmds(d, c, n);
	if (rc)
		fail("big-alloc", "%s", err_str(rc));
	else if (check(r, base, total, 33, bs) >= 0)
		fail("big-alloc", "data mismatch at block %ld", check(r, base, total, 33, bs));
	else
		pass("big-alloc");
out:
	ffs_free(d, w, len);
	ffs_free(d, r, len);
}

/* Many small allocations of different sizes (nvmed: carved from arenas), used at once. */
static void t_many_allocs(struct ffs_dev *d)
{
	enum { N = 300 };
	uint32_t bs = geo.lba_size;
	char *bufs[N];
	uint32_t nb[N];
	struct ffs_cmd c[N];
	uint64_t lba = 400000;
	int rc, bad = 0;

	for (int round = 0; round < 2 && !bad; round++) {
		for (int i = 0; i < N; i++) {
			if (round == 1 && i % 2 == 0)
				continue; /* keep the even ones from round 0 */
			nb[i] = 1 + (uint32_t)(rnd() % 16);
			bufs[i] = ffs_alloc(d, (uint64_t)nb[i] * bs);
			if (!bufs[i] || (uintptr_t)bufs[i] % bs) {
				fail("many-allocs", "allocation %d of %u blocks: %p %s", i, nb[i],
				     (void *)bufs[i], ffs_last_error(d));
				return;
			}
		}
		lba = 400000 + (uint64_t)round * 10000;
		for (int i = 0; i < N; i++) {
			fill(bufs[i], lba + (uint64_t)i * 16, nb[i], 44, bs);
			c[i] = (struct ffs_cmd){ .buf = (uint64_t)(uintptr_t)bufs[i], .lba = lba + (uint64_t)i * 16,
						 .nblocks = nb[i], .opcode = FFS_OP_WRITE, .tag = (uint64_t)i };
		}
		rc = run_cmds(d, c, N);
		for (int i = 0; i < N; i++) {
			memset(bufs[i], 0, (size_t)nb[i] * bs);
			c[i].opcode = FFS_OP_READ;
		}
		if (!rc)
			rc = run_cmds(d, c, N);
		if (rc) {
			fail("many-allocs", "%s", err_str(rc));
			bad = 1;
		}
		for (int i = 0; i < N && !bad; i++)
			if (check(bufs[i], lba + (uint64_t)i * 16, nb[i], 44, bs) >= 0) {
				fail("many-allocs", "buffer %d: data mismatch", i);
				bad = 1;
			}
		for (int i = 0; i < N; i++)
			if (round == 1 || i % 2)
				ffs_free(d, bufs[i], (uint64_t)nb[i] * bs);
	}
	if (!bad)
		pass("many-allocs");
}

/* A batch of 8 x queue_depth + 3 commands: the software FIFO feeds the device queue. */
static void t_qd_overflow(struct ffs_dev *d)
{
	uint32_t bs = geo.lba_size, n = geo.queue_depth * 8 + 3;
	char *w = ffs_alloc(d, (size_t)n * bs), *r = ffs_alloc(d, (size_t)n * bs);
	struct ffs_cmd *c = calloc(n, sizeof(*c));
	uint64_t base = 500000;
	int rc;

	/* distinct LBAs in a scattered order */
	for (uint32_t i = 0; i < n; i++) {
		uint64_t lba = base + (uint64_t)((i * 7919u) % n) * 3;

		fill(w + (size_t)i * bs, lba, 1, 55, bs);
		c[i] = (struct ffs_cmd){ .buf = (uint64_t)(uintptr_t)(w + (size_t)i * bs), .lba = lba,
					 .nblocks = 1, .opcode = FFS_OP_WRITE, .tag = i };
	}
	rc = run_cmds(d, c, n);
	for (uint32_t i = 0; i < n; i++) {
		c[i].buf = (uint64_t)(uintptr_t)(r + (size_t)i * bs);
		c[i].opcode = FFS_OP_READ;
	}
	memset(r, 0, (size_t)n * bs);
	if (!rc)
		rc = run_cmds(d, c, n);
	if (rc) {
		fail("qd-overflow", "%s", err_str(rc));
	} else {
		uint32_t i;

		for (i = 0; i < n; i++)
			if (check(r + (size_t)i * bs, c[i].lba, 1, 55, bs) >= 0)
				break;
		if (i < n)
			fail("qd-overflow", "command %u: data mismatch", i);
		else if (ffs_outstanding(d))
			fail("qd-overflow", "%u commands still outstanding", ffs_outstanding(d));
		else
			pass("qd-overflow");
	}
	free(c);
	ffs_free(d, w, (size_t)n * bs);
	ffs_free(d, r, (size_t)n * bs);
}

static void t_flush_fua(struct ffs_dev *d)
{
	uint32_t bs = geo.lba_size;
	char *w = ffs_alloc(d, 2 * bs);
	struct ffs_cmd c[3] = {
		{ .buf = (uint64_t)(uintptr_t)w, .lba = 510000, .nblocks = 2, .opcode = FFS_OP_WRITE,
		  .flags = FFS_CMD_FUA, .tag = 1 },
		{ .opcode = FFS_OP_FLUSH, .flags = FFS_CMD_BARRIER, .tag = 2 },
		{ .opcode = FFS_OP_FLUSH, .tag = 3 },
	};
	int rc;

	fill(w, 510000, 2, 66, bs);
	rc = run_cmds(d, c, 3);
	if (rc)
		fail("flush-fua", "%s", err_str(rc));
	else
		pass("flush-fua");
	ffs_free(d, w, 2 * bs);
}

static void t_trim(struct ffs_dev *d)
{
	uint32_t bs = geo.lba_size;
	uint64_t lba = 512000;
	char *w = ffs_alloc(d, 8 * bs);
	struct ffs_cmd c[2] = {
		{ .lba = lba + 2, .nblocks = 4, .opcode = FFS_OP_TRIM, .tag = 1 },
		{ .opcode = FFS_OP_FLUSH, .flags = FFS_CMD_BARRIER, .tag = 2 },
	};
	int rc;

	fill(w, lba, 8, 77, bs);
	rc = io1(d, FFS_OP_WRITE, lba, 8, w, 0);
	if (!rc)
		rc = run_cmds(d, c, 2);
	if (!(geo.flags & FFS_GEO_TRIM)) {
		if (rc == -EOPNOTSUPP)
			pass("trim");
		else
			fail("trim", "trim without FFS_GEO_TRIM: %s, want EOPNOTSUPP", err_str(rc));
		goto out;
	}
	memset(w, 0xee, 8 * bs);
	if (!rc)
		rc = io1(d, FFS_OP_READ, lba, 8, w, 0);
	if (rc)
		fail("trim", "%s", err_str(rc));
	else if (check(w, lba, 2, 77, bs) >= 0 || check(w + 6 * bs, lba + 6, 2, 77, bs) >= 0)
		fail("trim", "blocks next to the trimmed range changed");
	else if (!is_zero(w + 2 * bs, 4 * bs))
		fail("trim", "trimmed blocks do not read back as zeroes (QEMU deallocates them)");
	else
		pass("trim");
out:
	ffs_free(d, w, 8 * bs);
}

/* The notify fd becomes readable when a completion is ready (nvmed: the poller thread). */
static void t_notify(struct ffs_dev *d)
{
	uint32_t bs = geo.lba_size;
	char *b = ffs_alloc(d, bs);
	int fd = ffs_notify_fd(d), bad = 0;
	struct ffs_cqe cq[4];
	char sink[64];

	for (int round = 0; round < 20 && !bad; round++) {
		struct ffs_cmd c = { .buf = (uint64_t)(uintptr_t)b, .lba = rnd() % 100000, .nblocks = 1,
				     .opcode = FFS_OP_READ, .tag = 9 };
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t t0 = now_ns();
		int got = 0;

		while (read(fd, sink, sizeof(sink)) > 0)
			;
		if (ffs_submit(d, &c, 1) != 1) {
			fail("notify", "submit: %s", ffs_last_error(d));
			bad = 1;
			break;
		}
		while (!got && now_ns() - t0 < 10 * SEC) {
			if (poll(&p, 1, 10000) != 1) {
				fail("notify", "round %d: the notify fd did not become readable in 10 s", round);
				bad = 1;
				break;
			}
			while (read(fd, sink, sizeof(sink)) > 0)
				;
			got = ffs_reap(d, cq, 4, 0);
		}
		if (!bad && (got != 1 || cq[0].tag != 9 || cq[0].result)) {
			fail("notify", "round %d: reaped %d, result %d", round, got, got > 0 ? cq[0].result : 0);
			bad = 1;
		}
	}
	/* an idle device costs no CPU (nvmed: the poller sleeps when nothing is outstanding) */
	if (!bad) {
		uint64_t c0, c1;

		usleep(100000);
		c0 = cpu_ns();
		usleep(500000);
		c1 = cpu_ns();
		info("notify: CPU while idle: %.1f ms in 500 ms", (double)(c1 - c0) / 1e6);
		if (c1 - c0 > 50000000ull) {
			fail("notify", "%.0f ms of CPU in 500 ms while idle", (double)(c1 - c0) / 1e6);
			bad = 1;
		}
	}
	if (!bad)
		pass("notify");
	close(fd);
	ffs_free(d, b, bs);
}

static void t_errors(struct ffs_dev *d)
{
	uint32_t bs = geo.lba_size;
	char *b = ffs_alloc(d, 2 * bs);
	uint64_t blocks = geo.capacity / bs;
	int rc, bad = 0;

	/* A read past the end of the namespace reaches the device only if the common layer's
	 * range check is defeated: widen the geometry it checks against (white box). */
	d->geo.capacity += 64ull * bs;
	last_cqe.status = 0;
	rc = io1(d, FFS_OP_READ, blocks + 8, 1, b, 0);
	d->geo.capacity -= 64ull * bs;
	if (!strcmp(backend, "nvmed") || !strcmp(backend, "uring-cmd")) {
		if (rc != -ERANGE || last_cqe.status != NVME_SC_LBA_RANGE) {
			fail("errors", "read beyond the namespace: %s, want ERANGE with status 0x80",
			     err_str(rc));
			bad = 1;
		} else {
			info("errors: read beyond the namespace -> %s", err_str(rc));
		}
	} else if (rc >= 0) {
		fail("errors", "read beyond the device succeeded");
		bad = 1;
	} else {
		info("errors: read beyond the device -> %s", err_str(rc));
	}
	if (!strcmp(backend, "nvmed")) {
		/* memory that is not DMA memory from ffs_alloc is bounced through DMA memory ... */
		char *heap = NULL, *heap2 = NULL;

		if (posix_memalign((void **)&heap, 4096, 8 * bs) == 0 &&
		    posix_memalign((void **)&heap2, 4096, 8 * bs) == 0) {
			fill(heap, 2000, 8, 123, bs);
			memset(heap2, 0, 8 * bs);
			rc = io1(d, FFS_OP_WRITE, 2000, 8, heap, 0);
			if (!rc)
				rc = io1(d, FFS_OP_READ, 2000, 8, heap2, 0);
			if (rc || check(heap2, 2000, 8, 123, bs) >= 0) {
				fail("errors", "I/O from heap memory (bounced): %s", rc ? err_str(rc) : "data mismatch");
				bad = 1;
			}
		}
		/* ... or, with FFS_NVMED_BOUNCE=0, refused */
		if (!bad) {
			struct ffs_dev *strict;
			char err[256];

			setenv("FFS_NVMED_BOUNCE", "0", 1);
			strict = ffs_open(backend, devpath, FFS_OPEN_NOLOCK, 0, 8, err, sizeof(err));
			unsetenv("FFS_NVMED_BOUNCE");
			rc = strict ? io1(strict, FFS_OP_WRITE, 2000, 1, heap, 0) : -ENODEV;
			if (rc != -EFAULT || !strstr(ffs_last_error(strict), "not DMA memory")) {
				fail("errors", "write from heap memory with FFS_NVMED_BOUNCE=0: %s (%s), want EFAULT",
				     err_str(rc), strict ? ffs_last_error(strict) : err);
				bad = 1;
			} else {
				info("errors: heap buffer with FFS_NVMED_BOUNCE=0 -> %s: %s", strerror(-rc),
				     ffs_last_error(strict));
			}
			if (strict)
				ffs_close(strict);
		}
		free(heap);
		free(heap2);
	}
	/* statuses decode into errno values */
	if (nvme_status_errno(0) != 0 || nvme_status_errno(NVME_SC_LBA_RANGE) != -ERANGE ||
	    nvme_status_errno(NVME_SC_INVALID_OPCODE) != -EOPNOTSUPP ||
	    nvme_status_errno(NVME_STATUS(2, 0x81)) != -EIO ||
	    nvme_status_errno(NVME_STATUS(1, 0x82)) != -EROFS) {
		fail("errors", "nvme_status_errno table");
		bad = 1;
	}
	/* and the device still works */
	fill(b, 1000, 2, 88, bs);
	rc = io1(d, FFS_OP_WRITE, 1000, 2, b, 0);
	memset(b, 0, 2 * bs);
	if (!rc)
		rc = io1(d, FFS_OP_READ, 1000, 2, b, 0);
	if (rc || check(b, 1000, 2, 88, bs) >= 0) {
		fail("errors", "I/O after the errors: %s", rc ? err_str(rc) : "data mismatch");
		bad = 1;
	}
	if (!bad)
		pass("errors");
	ffs_free(d, b, 2 * bs);
}

/* A second writer is refused; a read-only opener is not. */
static void t_lock(void)
{
	char err[256];
	struct ffs_dev *a = must_open(0), *b, *ro;

	b = open_dev(0, err, sizeof(err));
	if (b) {
		fail("lock", "a second writer opened %s", devpath);
		ffs_close(b);
		ffs_close(a);
		return;
	}
	info("lock: second writer: %s", err);
	if (!strcmp(backend, "uring-cmd") && !strncmp(devpath, "/dev/ng", 7)) {
		/* uring-cmd holds the namespace's block device with O_EXCL: a writer through the
		 * block device (uring, psync) is refused too */
		char blk[64];
		struct ffs_dev *o;

		snprintf(blk, sizeof(blk), "/dev/nvme%s", devpath + 7);
		o = ffs_open("uring", blk, 0, 0, 8, err, sizeof(err));
		if (o) {
			fail("lock", "a uring writer opened %s while uring-cmd holds %s", blk, devpath);
			ffs_close(o);
			ffs_close(a);
			return;
		}
		info("lock: uring writer on %s: %s", blk, err);
	}
	ro = open_dev(FFS_OPEN_READONLY, err, sizeof(err));
	if (!ro) {
		fail("lock", "read-only open refused: %s", err);
		ffs_close(a);
		return;
	}
	ffs_close(ro);
	ffs_close(a);
	b = open_dev(0, err, sizeof(err));
	if (!b) {
		fail("lock", "the lock was not released at close: %s", err);
		return;
	}
	ffs_close(b);
	pass("lock");
}

/* nvmed: after closing, the driver holds nothing for us (queues, rings, DMA buffers). */
static void t_teardown(void)
{
	struct nvmed_stats st;
	int fd = open(devpath, O_RDWR);

	if (fd < 0 || ioctl(fd, NVMED_IOC_STATS, &st) != 0) {
		fail("teardown", "NVMED_IOC_STATS: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	if (st.open_files != 1 || st.queues_live || st.rings_live || st.bufs_live || st.dma_bytes_live)
		fail("teardown", "after close: open_files %u queues %u rings %u bufs %u dma bytes %llu",
		     st.open_files, st.queues_live, st.rings_live, st.bufs_live,
		     (unsigned long long)st.dma_bytes_live);
	else
		pass("teardown");
}

/* nvmed: commands larger than the per-command limit are split into several NVMe commands.
 * Data written split is read back whole and the other way round. */
static struct ffs_dev *open_split(int split)
{
	struct ffs_dev *d;

	if (split)
		setenv("FFS_NVMED_MAX_CMD_BYTES", "65536", 1);
	d = must_open(0);
	unsetenv("FFS_NVMED_MAX_CMD_BYTES");
	return d;
}

static int split_pass(int split_write, uint64_t seed)
{
	struct ffs_dev *d = open_split(split_write);
	struct ffs_geometry g;
	struct ffs_cmd c[8];
	uint32_t bs, n, total;
	size_t len;
	char *b;
	int rc;

	ffs_geometry(d, &g);
	bs = g.lba_size;
	n = 1048576 / bs; /* 1 MiB commands: 16 pieces of 64 KiB when split */
	total = 8 * n - 3;
	len = (size_t)8 * n * bs;
	if (split_write)
		info("split: 64 KiB per NVMe command, max_transfer %u bytes", g.max_transfer);
	b = ffs_alloc(d, len);
	fill(b, 514000, total, seed, bs);
	for (int i = 0; i < 8; i++)
		c[i] = (struct ffs_cmd){ .buf = (uint64_t)(uintptr_t)(b + (size_t)i * n * bs),
					 .lba = 514000 + (uint64_t)i * n, .nblocks = n - (i == 7 ? 3 : 0),
					 .opcode = FFS_OP_WRITE, .tag = (uint64_t)i };
	rc = run_cmds(d, c, 8);
	ffs_free(d, b, len);
	ffs_close(d);
	if (rc) {
		fail("split", "writes (%s): %s", split_write ? "split" : "whole", err_str(rc));
		return 1;
	}
	d = open_split(!split_write);
	b = ffs_alloc(d, len);
	memset(b, 0, len);
	for (int i = 0; i < 8; i++) {
		c[i].buf = (uint64_t)(uintptr_t)(b + (size_t)i * n * bs);
		c[i].opcode = FFS_OP_READ;
	}
	rc = run_cmds(d, c, 8);
	if (rc || check(b, 514000, total, seed, bs) >= 0) {
		fail("split", "reading back (%s): %s", split_write ? "whole" : "split",
		     rc ? err_str(rc) : "data mismatch");
		rc = 1;
	}
	ffs_free(d, b, len);
	ffs_close(d);
	return rc ? 1 : 0;
}

static void t_split(void)
{
	if (!split_pass(1, 99) && !split_pass(0, 100))
		pass("split");
}

static int cmd_func(void)
{
	struct ffs_dev *d;

	if (!ffs_backend_available(backend)) {
		printf("FAIL ffs.%s.available: backend not available\n", backend);
		return 1;
	}
	d = must_open(0);
	t_geometry(d);
	t_rw_basic(d);
	t_sizes(d);
	t_big_alloc(d);
	t_many_allocs(d);
	t_qd_overflow(d);
	t_flush_fua(d);
	t_trim(d);
	t_notify(d);
	t_errors(d);
	ffs_close(d);
	t_lock();
	if (!strcmp(backend, "nvmed")) {
		t_split();
		t_teardown();
	}
	return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ hold (kill -9) */

static int cmd_hold(void)
{
	struct ffs_dev *d = must_open(0);
	uint32_t bs;
	char *bufs[16];
	struct ffs_cmd c[64];

	ffs_geometry(d, &geo);
	bs = geo.lba_size;
	for (int i = 0; i < 16; i++)
		bufs[i] = ffs_alloc(d, (size_t)(1 + i) * 16 * bs);
	for (int i = 0; i < 64; i++)
		c[i] = (struct ffs_cmd){ .buf = (uint64_t)(uintptr_t)bufs[i % 16], .lba = (uint64_t)i * 64,
					 .nblocks = 8, .opcode = FFS_OP_READ, .tag = (uint64_t)i };
	if (ffs_submit(d, c, 64) != 64)
		return 2;
	printf("HOLDING %s with I/O submitted\n", backend);
	fflush(stdout);
	for (;;)
		pause();
}

/* ------------------------------------------------------------------ fill (bench prefill) */

static int cmd_fill(uint32_t mib)
{
	struct ffs_dev *d = must_open(FFS_OPEN_NOLOCK);
	uint32_t bs, chunk;
	char *b;
	struct ffs_cmd c[8];
	uint64_t lba = 0, end;
	int rc = 0;

	ffs_geometry(d, &geo);
	bs = geo.lba_size;
	chunk = geo.max_transfer < (1u << 20) ? geo.max_transfer : (1u << 20);
	b = ffs_alloc(d, 8ull * chunk);
	memset(b, 0x5c, 8ull * chunk);
	end = ((uint64_t)mib << 20) / bs;
	while (lba < end && !rc) {
		uint32_t n = 0;

		for (; n < 8 && lba < end; n++, lba += chunk / bs)
			c[n] = (struct ffs_cmd){ .buf = (uint64_t)(uintptr_t)(b + (size_t)n * chunk), .lba = lba,
						 .nblocks = chunk / bs, .opcode = FFS_OP_WRITE, .tag = n };
		rc = run_cmds(d, c, n);
	}
	if (!rc) {
		struct ffs_cmd f = { .opcode = FFS_OP_FLUSH, .flags = FFS_CMD_BARRIER };

		rc = run_cmds(d, &f, 1);
	}
	ffs_close(d);
	if (rc)
		printf("FAIL ffs.%s.fill: %s\n", backend, err_str(rc));
	return rc ? 1 : 0;
}

/* ------------------------------------------------------------------ bench */

#define BENCH_SPAN 65536ull /* random 4 KiB blocks in the first 256 MiB (prefilled) */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmd_bench(double secs, const char *op, uint32_t qd)
{
	struct ffs_dev *d;
	int w = !strcmp(op, "randwrite");
	uint64_t stamp[256], *lat = NULL, nlat = 0, cap = 0, t0, end, c0, x0, ops = 0, elapsed, cpu, csw;
	struct ffs_cmd c[256];
	struct ffs_cqe cq[256];
	char *buf;
	uint32_t inflight = 0;
	double sum = 0;

	if (qd < 1 || qd > 256)
		return 2;
	setenv("FFS_TEST_QD", "256", 0);
	d = must_open(FFS_OPEN_NOLOCK);
	ffs_geometry(d, &geo);
	buf = ffs_alloc(d, (size_t)qd * 4096);
	memset(buf, 0x3c, (size_t)qd * 4096);
	t0 = now_ns();
	end = t0 + (uint64_t)(secs * 1e9);
	c0 = cpu_ns();
	x0 = ctx_switches();
	for (uint32_t i = 0; i < qd; i++) {
		c[i] = (struct ffs_cmd){ .buf = (uint64_t)(uintptr_t)(buf + (size_t)i * 4096),
					 .lba = rnd() % BENCH_SPAN, .nblocks = 4096 / geo.lba_size,
					 .opcode = (uint8_t)(w ? FFS_OP_WRITE : FFS_OP_READ), .tag = i };
		stamp[i] = now_ns();
	}
	if (ffs_submit(d, c, qd) != (int)qd)
		return 3;
	inflight = qd;
	while (inflight > 0) {
		int n = ffs_reap(d, cq, 256, 1);
		uint64_t t = now_ns();
		uint32_t again = 0;

		if (n < 0)
			return 4;
		for (int i = 0; i < n; i++) {
			uint32_t s = (uint32_t)cq[i].tag;

			if (cq[i].result) {
				printf("FAIL ffs.%s.bench: %s\n", backend, strerror(-cq[i].result));
				return 5;
			}
			if (nlat == cap) {
				cap = cap ? cap * 2 : 65536;
				lat = realloc(lat, cap * sizeof(*lat));
			}
			lat[nlat++] = t - stamp[s];
			ops++;
			inflight--;
			if (t < end) {
				c[again] = (struct ffs_cmd){ .buf = (uint64_t)(uintptr_t)(buf + (size_t)s * 4096),
							     .lba = rnd() % BENCH_SPAN, .nblocks = 4096 / geo.lba_size,
							     .opcode = (uint8_t)(w ? FFS_OP_WRITE : FFS_OP_READ),
							     .tag = s };
				stamp[s] = t;
				again++;
			}
		}
		if (again) {
			if (ffs_submit(d, c, again) != (int)again)
				return 6;
			inflight += again;
		}
	}
	elapsed = now_ns() - t0;
	cpu = cpu_ns() - c0;
	csw = ctx_switches() - x0;
	ffs_close(d);
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	for (uint64_t i = 0; i < nlat; i++)
		sum += (double)lat[i];
	printf("BENCH layer=c backend=%s op=%s qd=%u iops=%.0f lat_avg_us=%.1f lat_p50_us=%.1f "
	       "lat_p99_us=%.1f cpu_us_per_io=%.1f ctxsw_per_io=%.2f\n", backend, op, qd,
	       (double)ops * 1e9 / (double)elapsed,
	       nlat ? sum / (double)nlat / 1000.0 : 0.0, nlat ? (double)lat[nlat / 2] / 1000.0 : 0.0,
	       nlat ? (double)lat[nlat * 99 / 100] / 1000.0 : 0.0,
	       ops ? (double)cpu / (double)ops / 1000.0 : 0.0, ops ? (double)csw / (double)ops : 0.0);
	fflush(stdout);
	free(lat);
	return 0;
}

/* ------------------------------------------------------------------ crash */

#define CRASH_MAGIC	0x464653435241534eull	/* "FFSCRASN" */
#define CRASH_SLOTS	16384ull
#define CRASH_BATCH	32
#define CRASH_ACK_EVERY	4

struct crash_hdr {
	uint64_t magic;
	uint64_t seq;
	uint64_t lba;
	uint64_t sum;
};

static uint64_t crash_sum(const void *blk, uint32_t bs)
{
	const uint64_t *w = blk;
	uint64_t h = 0xcbf29ce484222325ull;

	for (uint32_t i = 0; i < bs / 8; i++)
		if (i != 3)
			h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

static void crash_fill(void *blk, uint64_t seq, uint64_t lba, uint32_t bs)
{
	struct crash_hdr *h = blk;
	uint64_t *w = blk;

	for (uint32_t i = 4; i < bs / 8; i++)
		w[i] = mix64(seq * 1000003 + i);
	h->magic = CRASH_MAGIC;
	h->seq = seq;
	h->lba = lba;
	h->sum = crash_sum(blk, bs);
}

static int cmd_crash_write(uint64_t base)
{
	struct ffs_dev *d = must_open(FFS_OPEN_NOLOCK);
	uint32_t bs;
	char *b;
	struct ffs_cmd c[CRASH_BATCH];
	uint64_t seq = 0;
	uint32_t batches = 0;
	int rc;

	ffs_geometry(d, &geo);
	bs = geo.lba_size;
	b = ffs_alloc(d, (size_t)CRASH_BATCH * bs);
	printf("CRASH-START backend=%s base=%" PRIu64 " slots=%llu\n", backend, base, CRASH_SLOTS);
	fflush(stdout);
	for (;;) {
		for (uint32_t i = 0; i < CRASH_BATCH; i++) {
			uint64_t s = seq + i, lba = base + s % CRASH_SLOTS;

			crash_fill(b + (size_t)i * bs, s, lba, bs);
			c[i] = (struct ffs_cmd){ .buf = (uint64_t)(uintptr_t)(b + (size_t)i * bs), .lba = lba,
						 .nblocks = 1, .opcode = FFS_OP_WRITE, .tag = i };
		}
		rc = run_cmds(d, c, CRASH_BATCH);
		if (rc) {
			printf("CRASH-ERROR %s: %s\n", backend, err_str(rc));
			return 5;
		}
		seq += CRASH_BATCH;
		/* durable only after a flush that started after the writes completed */
		if (++batches % CRASH_ACK_EVERY == 0) {
			struct ffs_cmd f = { .opcode = FFS_OP_FLUSH, .flags = FFS_CMD_BARRIER };

			rc = run_cmds(d, &f, 1);
			if (rc) {
				printf("CRASH-ERROR %s flush: %s\n", backend, err_str(rc));
				return 6;
			}
			printf("ACKB %s %" PRIu64 "\n", backend, seq - 1);
			fflush(stdout);
		}
	}
}

static int cmd_crash_verify(uint64_t base, uint64_t acked, int any)
{
	struct ffs_dev *d = must_open(FFS_OPEN_NOLOCK);
	uint32_t bs, chunk = 64;
	char *b;
	uint64_t lost = 0, corrupt = 0, newer = 0, checked = 0, unacked_present = 0, torn = 0;
	char name[64];

	snprintf(name, sizeof(name), "crash-verify");
	ffs_geometry(d, &geo);
	bs = geo.lba_size;
	b = ffs_alloc(d, (size_t)chunk * bs);
	for (uint64_t slot = 0; slot < CRASH_SLOTS; slot += chunk) {
		int rc = io1(d, FFS_OP_READ, base + slot, chunk, b, 0);

		if (rc) {
			fail(name, "read: %s", err_str(rc));
			return 1;
		}
		for (uint32_t i = 0; i < chunk; i++) {
			uint64_t s = slot + i, need;
			char *blk = b + (size_t)i * bs;
			struct crash_hdr *h = (struct crash_hdr *)blk;
			int valid = h->magic == CRASH_MAGIC && h->sum == crash_sum(blk, bs) &&
				    h->lba == base + s && h->seq % CRASH_SLOTS == s;

			if (!any || s > acked) {
				if (valid)
					unacked_present++;
				else if (!is_zero(blk, bs))
					torn++;
				continue;
			}
			need = s + ((acked - s) / CRASH_SLOTS) * CRASH_SLOTS;
			checked++;
			if (!valid) {
				if (is_zero(blk, bs))
					lost++;
				else
					corrupt++;
			} else if (h->seq < need) {
				lost++;
			} else if (h->seq > need) {
				newer++;
			}
		}
	}
	ffs_close(d);
	info("crash-verify: acked up to seq %" PRIu64 "%s, %" PRIu64 " slots checked, %" PRIu64
	     " lost, %" PRIu64 " corrupt, %" PRIu64 " newer; beyond the last ACK: %" PRIu64
	     " unacknowledged writes present, %" PRIu64 " torn", acked, any ? "" : " (none acked)",
	     checked, lost, corrupt, newer, unacked_present, torn);
	if (lost || corrupt) {
		fail(name, "%" PRIu64 " acknowledged writes lost, %" PRIu64 " corrupt", lost, corrupt);
		return 1;
	}
	pass(name);
	return 0;
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: ffs_test func|hold|fill|bench|crash-write|crash-verify BACKEND DEV ...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *cmd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4)
		usage();
	cmd = argv[1];
	backend = argv[2];
	devpath = argv[3];
	rng_state ^= (uint64_t)getpid() << 32 ^ now_ns();
	if (!strcmp(cmd, "func"))
		return cmd_func();
	if (!strcmp(cmd, "one") && argc == 5) {	/* one functional test, for debugging */
		struct ffs_dev *d = must_open(0);

		char *names = strdup(argv[4]), *save = NULL;

		ffs_geometry(d, &geo);
		for (char *n = strtok_r(names, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
			if (!strcmp(n, "rw-basic"))
				t_rw_basic(d);
			else if (!strcmp(n, "sizes"))
				t_sizes(d);
			else if (!strcmp(n, "big-alloc"))
				t_big_alloc(d);
			else if (!strcmp(n, "many-allocs"))
				t_many_allocs(d);
			else if (!strcmp(n, "qd-overflow"))
				t_qd_overflow(d);
			else if (!strcmp(n, "trim"))
				t_trim(d);
			else if (!strcmp(n, "notify"))
				t_notify(d);
			else if (!strcmp(n, "errors"))
				t_errors(d);
			else
				usage();
		}
		free(names);
		ffs_close(d);
		return failures ? 1 : 0;
	}
	if (!strcmp(cmd, "hold"))
		return cmd_hold();
	if (!strcmp(cmd, "fill") && argc == 5)
		return cmd_fill((uint32_t)atoi(argv[4]));
	if (!strcmp(cmd, "bench") && argc == 7)
		return cmd_bench(atof(argv[4]), argv[5], (uint32_t)atoi(argv[6]));
	if (!strcmp(cmd, "crash-write") && argc == 5)
		return cmd_crash_write(strtoull(argv[4], NULL, 0));
	if (!strcmp(cmd, "crash-verify") && argc == 6) {
		long long acked = strtoll(argv[5], NULL, 0);

		return cmd_crash_verify(strtoull(argv[4], NULL, 0), acked < 0 ? 0 : (uint64_t)acked,
					acked >= 0);
	}
	usage();
	return 2;
}
