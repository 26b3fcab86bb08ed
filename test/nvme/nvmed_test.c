/* SPDX-License-Identifier: MIT */
/*
 * nvmed_test - exercises the nvmed driver through its ABI (runs in the QEMU
 * guest, statically linked).  Prints "PASS nvmed.<name>" / "FAIL nvmed.<name>:
 * why" lines and exits non-zero if anything failed.
 *
 *   nvmed_test func    DEV               functional and errno tests
 *   nvmed_test hold    DEV               hold max queues + buffers with I/O in flight, forever
 *   nvmed_test maxq    DEV               create the per-open maximum of queues, I/O on each
 *   nvmed_test stats   DEV [--expect-idle]
 *   nvmed_test strict  DEV               queue creation under strict_doorbells=1
 *   nvmed_test fill    DEV LBA N SEED    write N blocks of pattern SEED through nvmed
 *   nvmed_test check   DEV LBA N SEED    verify them through nvmed
 *   nvmed_test fillblk BLKDEV LBA N SEED write through a block device (O_DIRECT)
 *   nvmed_test checkblk BLKDEV LBA N SEED
 *   nvmed_test crash-write  DEV          endless write+flush workload, prints "ACK <seq>"
 *   nvmed_test crash-verify DEV ACKED    verifies every acknowledged write after a crash
 *   nvmed_test bench-nvmed  DEV SECONDS [randread|randwrite QD]
 *   nvmed_test bench-kernel BLKDEV SECONDS [all|psync|uring|uring-poll [randread|randwrite QD]]
 *
 * The queue layer (nvmed_queue.c/.h) and the NVMe definitions (nvme_spec.h,
 * nvme_status.c) are the native library's: build with -I native.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/io_uring.h>

#include "nvmed_queue.h"

#define SEC 1000000000ull

static int failures;
static const char *devpath;
static const char *prefix = "nvmed.";	/* NVMED_TEST_PREFIX overrides */

static void pass(const char *name)
{
	printf("PASS %s%s\n", prefix, name);
	fflush(stdout);
}

static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	failures++;
	printf("FAIL %s%s: ", prefix, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void info(const char *fmt, ...)
{
	va_list ap;

	printf("INFO ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* diagnostics go to stdout as INFO lines so the host shows them */
static void errmsg(const char *fmt, ...)
{
	va_list ap;

	printf("INFO nvmed_test error: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rng_state = 0x1234567;

static uint64_t rnd(void)
{
	rng_state = mix64(rng_state);
	return rng_state;
}

/* pattern: word i of block lba with seed */
static void fill_blocks(void *p, uint64_t lba, uint32_t n, uint64_t seed, uint32_t bs)
{
	uint64_t *w = p;
	size_t i, per = bs / 8;
	uint32_t b;

	for (b = 0; b < n; b++)
		for (i = 0; i < per; i++)
			w[b * per + i] = mix64(((lba + b) << 20) ^ (seed << 48) ^ i);
}

/* returns index of first bad block or -1 */
static long check_blocks(const void *p, uint64_t lba, uint32_t n, uint64_t seed, uint32_t bs)
{
	const uint64_t *w = p;
	size_t i, per = bs / 8;
	uint32_t b;

	for (b = 0; b < n; b++)
		for (i = 0; i < per; i++)
			if (w[b * per + i] != mix64(((lba + b) << 20) ^ (seed << 48) ^ i))
				return b;
	return -1;
}

static int is_zero(const void *p, size_t len)
{
	const uint64_t *w = p;
	size_t i;

	for (i = 0; i < len / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

/* one synchronous command already prepared: wait for it */
static int wait_one(struct nvmed_qpair *q, struct nvmed_cpl *c)
{
	if (nvmed_wait(q, c, 1, 1, 10 * SEC) != 1)
		return -ETIMEDOUT;
	return 0;
}

/* synchronous read/write; returns <0 errno, else NVMe status */
static int sync_rw(struct nvmed_qpair *q, int write, uint64_t lba, uint32_t nlb,
		   struct nvmed_buffer *b, size_t off)
{
	struct nvmed_cpl c;
	int ret = nvmed_prep_rw(q, write, lba, nlb, b, off, 0, NULL);

	if (ret < 0)
		return ret;
	ret = wait_one(q, &c);
	return ret ? ret : c.status;
}

static int sync_flush(struct nvmed_qpair *q)
{
	struct nvmed_cpl c;
	int ret = nvmed_prep_flush(q, NULL);

	if (ret < 0)
		return ret;
	ret = wait_one(q, &c);
	return ret ? ret : c.status;
}

static const char *st_str(int st)
{
	static char buf[128];

	if (st < 0)
		snprintf(buf, sizeof(buf), "errno %s", strerror(-st));
	else
		snprintf(buf, sizeof(buf), "%s (sct %d sc %#x)", nvmed_status_str((uint16_t)st),
			 (st >> 8) & 7, st & 0xff);
	return buf;
}

static int open_dev(struct nvmed_dev *d)
{
	int ret = nvmed_open(d, devpath);

	if (ret) {
		errmsg("open %s: %s\n", devpath, strerror(-ret));
		exit(2);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* functional tests                                                     */

static void t_info(struct nvmed_dev *d)
{
	struct nvmed_info *i = &d->info;
	int ok = 1;

	info("device %s: model '%.40s' nsid %u lba %u capacity %" PRIu64 " blocks (%" PRIu64
	     " MiB) max_transfer %u mqes+1 %u entries_limit %u db_stride %u vwc %u awupf %u "
	     "hw_queues %u max_queues %u max_buffer %u max_dma %" PRIu64 " flags %#x oncs %#x",
	     devpath, i->model, i->nsid, i->lba_size, (uint64_t)i->capacity_lbas,
	     ((uint64_t)i->capacity_lbas * i->lba_size) >> 20, i->max_transfer,
	     i->max_queue_entries, i->queue_entries_limit, i->db_stride,
	     !!(i->flags & NVMED_INFO_VWC), i->awupf_lbas, i->hw_queues, i->max_queues,
	     i->max_buffer_bytes, (uint64_t)i->max_dma_bytes, i->flags, i->oncs);
	if (i->lba_size < 512 || (i->lba_size & (i->lba_size - 1)) || (1u << i->lba_shift) != i->lba_size)
		ok = 0;
	if (!i->capacity_lbas || i->max_transfer < i->lba_size || i->max_queue_entries < 2 ||
	    i->db_stride < 4 || !i->awupf_lbas || !i->max_queues || !i->hw_queues || !i->nsid)
		ok = 0;
	if (ok)
		pass("info");
	else
		fail("info", "implausible device information");
}

#define EXPECT_ERRNO(name, expr, want)                                               \
	do {                                                                         \
		long _r = (long)(expr);                                              \
		int _e = errno;                                                      \
		if (_r != -1 || _e != (want)) {                                      \
			fail("errno", "%s: got %ld/%s, want %s", name, _r,           \
			     _r == -1 ? strerror(_e) : "success", strerror(want));   \
			bad++;                                                       \
		}                                                                    \
	} while (0)

static sigjmp_buf sig_jmp;
static volatile sig_atomic_t got_sig;

static void on_sig(int sig)
{
	got_sig = sig;
	siglongjmp(sig_jmp, 1);
}

/* 1 if reading (or writing) addr raises SIGBUS */
static int touch_sigbus(volatile void *addr, int write)
{
	struct sigaction sa, old;
	int hit = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sigaction(SIGBUS, &sa, &old);
	got_sig = 0;
	if (sigsetjmp(sig_jmp, 1) == 0) {
		if (write)
			*(volatile uint32_t *)addr = 0;
		else
			(void)*(volatile uint32_t *)addr;
	} else {
		hit = got_sig == SIGBUS;
	}
	sigaction(SIGBUS, &old, NULL);
	return hit;
}

static int drop_rawio_and_open(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	int fd;

	if (syscall(SYS_capget, &h, data))
		return -1000;
	data[CAP_SYS_RAWIO / 32].effective &= ~(1u << (CAP_SYS_RAWIO % 32));
	if (syscall(SYS_capset, &h, data))
		return -1001;
	fd = open(devpath, O_RDWR);
	if (fd >= 0)
		return 0;
	return errno;
}

static void t_errno(struct nvmed_dev *d)
{
	struct nvmed_info *in = &d->info;
	struct nvmed_queue_create qc;
	struct nvmed_queue_delete qd;
	struct nvmed_buf_alloc ba;
	struct nvmed_buf_free bf;
	struct nvmed_qpair q;
	struct nvmed_buffer bufs[64];
	struct nvmed_stats st0, st1;
	uint32_t nbufs = 0, i;
	uint64_t total = 0;
	int bad = 0, ret, fd2;
	void *p;
	pid_t pid;

	/* open without CAP_SYS_RAWIO */
	pid = fork();
	if (pid == 0)
		_exit(drop_rawio_and_open());
	if (pid > 0) {
		int status;

		waitpid(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != EPERM) {
			fail("errno", "open without CAP_SYS_RAWIO: want EPERM, child status %#x", status);
			bad++;
		}
	}

	memset(&qc, 0, sizeof(qc));
	qc.entries = 1;
	EXPECT_ERRNO("queue entries=1", ioctl(d->fd, NVMED_IOC_QUEUE_CREATE, &qc), EINVAL);
	memset(&qc, 0, sizeof(qc));
	qc.entries = in->queue_entries_limit + 1;
	EXPECT_ERRNO("queue entries=limit+1", ioctl(d->fd, NVMED_IOC_QUEUE_CREATE, &qc), EINVAL);
	memset(&qc, 0, sizeof(qc));
	qc.flags = 1;
	EXPECT_ERRNO("queue flags", ioctl(d->fd, NVMED_IOC_QUEUE_CREATE, &qc), EINVAL);
	memset(&qc, 0, sizeof(qc));
	qc.reserved[2] = 7;
	EXPECT_ERRNO("queue reserved", ioctl(d->fd, NVMED_IOC_QUEUE_CREATE, &qc), EINVAL);
	EXPECT_ERRNO("queue create bad pointer", ioctl(d->fd, NVMED_IOC_QUEUE_CREATE, (void *)16), EFAULT);

	memset(&qd, 0, sizeof(qd));
	qd.qid = 999;
	EXPECT_ERRNO("delete unknown queue", ioctl(d->fd, NVMED_IOC_QUEUE_DELETE, &qd), ENOENT);
	qd.qid = 0;
	EXPECT_ERRNO("delete admin queue", ioctl(d->fd, NVMED_IOC_QUEUE_DELETE, &qd), ENOENT);
	qd.flags = 1;
	EXPECT_ERRNO("delete flags", ioctl(d->fd, NVMED_IOC_QUEUE_DELETE, &qd), EINVAL);

	memset(&ba, 0, sizeof(ba));
	EXPECT_ERRNO("buffer size 0", ioctl(d->fd, NVMED_IOC_BUF_ALLOC, &ba), EINVAL);
	ba.size = (uint64_t)in->max_buffer_bytes + 1;
	EXPECT_ERRNO("buffer size max+1", ioctl(d->fd, NVMED_IOC_BUF_ALLOC, &ba), EINVAL);
	ba.size = 4096;
	ba.flags = 2;
	EXPECT_ERRNO("buffer flags", ioctl(d->fd, NVMED_IOC_BUF_ALLOC, &ba), EINVAL);
	memset(&bf, 0, sizeof(bf));
	bf.id = 4242;
	EXPECT_ERRNO("free unknown buffer", ioctl(d->fd, NVMED_IOC_BUF_FREE, &bf), ENOENT);
	EXPECT_ERRNO("unknown ioctl", ioctl(d->fd, _IO(NVMED_IOC_MAGIC, 0x7f)), ENOTTY);

	/* DMA quota: max_buffer_bytes chunks until EDQUOT */
	for (;;) {
		if (nbufs == 64)
			break;
		ret = nvmed_buffer_alloc(d, in->max_buffer_bytes, &bufs[nbufs]);
		if (ret) {
			if (ret != -EDQUOT) {
				fail("errno", "buffer quota: got %s at %" PRIu64 " bytes, want EDQUOT",
				     strerror(-ret), total);
				bad++;
			} else if (total + in->max_buffer_bytes <= in->max_dma_bytes) {
				fail("errno", "EDQUOT at %" PRIu64 " bytes, quota %" PRIu64, total,
				     (uint64_t)in->max_dma_bytes);
				bad++;
			}
			break;
		}
		total += bufs[nbufs].size;
		nbufs++;
	}
	for (i = 0; i < nbufs; i++)
		nvmed_buffer_free(d, &bufs[i]);

	/* mmap misuse */
	ret = nvmed_qpair_create(d, 8, &q);
	if (ret) {
		fail("errno", "queue create: %s", strerror(-ret));
		return;
	}
	EXPECT_ERRNO("mmap unknown type",
		     (long)mmap(NULL, 4096, PROT_READ, MAP_SHARED, d->fd, (off_t)NVMED_MMAP_OFFSET(9, 1)), EINVAL);
	EXPECT_ERRNO("mmap unknown queue",
		     (long)mmap(NULL, 4096, PROT_READ, MAP_SHARED, d->fd,
				(off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_SQ, 777)), ENOENT);
	EXPECT_ERRNO("mmap unknown buffer",
		     (long)mmap(NULL, 4096, PROT_READ, MAP_SHARED, d->fd,
				(off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_BUF, 777)), ENOENT);
	EXPECT_ERRNO("mmap offset inside object",
		     (long)mmap(NULL, 4096, PROT_READ, MAP_SHARED, d->fd,
				(off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_SQ, q.qid) + 4096), EINVAL);
	EXPECT_ERRNO("mmap longer than SQ",
		     (long)mmap(NULL, q.sq_bytes + 4096, PROT_READ, MAP_SHARED, d->fd,
				(off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_SQ, q.qid)), EINVAL);
	EXPECT_ERRNO("mmap longer than doorbells",
		     (long)mmap(NULL, q.db_bytes + 4096, PROT_READ, MAP_SHARED, d->fd,
				(off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_DB, q.qid)), EINVAL);
	EXPECT_ERRNO("mmap MAP_PRIVATE",
		     (long)mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, d->fd,
				(off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_CQ, q.qid)), EINVAL);
	EXPECT_ERRNO("mmap PROT_EXEC",
		     (long)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_SHARED, d->fd,
				(off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_CQ, q.qid)), EACCES);
	EXPECT_ERRNO("mmap CQ writable",
		     (long)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
				(off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_CQ, q.qid)), EACCES);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, d->fd, (off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_CQ, q.qid));
	if (p == MAP_FAILED) {
		fail("errno", "mmap CQ: %s", strerror(errno));
		bad++;
	} else {
		EXPECT_ERRNO("mprotect PROT_EXEC", mprotect(p, 4096, PROT_READ | PROT_EXEC), EACCES);
		EXPECT_ERRNO("mprotect CQ writable", mprotect(p, 4096, PROT_READ | PROT_WRITE), EACCES);
		munmap(p, 4096);
	}

	/* another open file cannot touch this file's queue */
	fd2 = open(devpath, O_RDWR);
	if (fd2 < 0) {
		fail("errno", "second open: %s", strerror(errno));
		bad++;
	} else {
		qd.qid = q.qid;
		qd.flags = 0;
		EXPECT_ERRNO("delete other file's queue", ioctl(fd2, NVMED_IOC_QUEUE_DELETE, &qd), ENOENT);
		EXPECT_ERRNO("mmap other file's queue",
			     (long)mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd2,
					(off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_SQ, q.qid)), ENOENT);
		close(fd2);
	}

	/* fork: mappings are not inherited */
	pid = fork();
	if (pid == 0) {
		(void)*(volatile uint32_t *)q.sq;
		_exit(0);
	}
	if (pid > 0) {
		int status;

		waitpid(pid, &status, 0);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV) {
			fail("errno", "child touching parent's SQ mapping: status %#x, want SIGSEGV", status);
			bad++;
		}
	}

	/* delete with mappings in place: they must be gone (SIGBUS), memory kept until munmap */
	nvmed_stats(d, &st0);
	qd.qid = q.qid;
	qd.flags = 0;
	if (ioctl(d->fd, NVMED_IOC_QUEUE_DELETE, &qd)) {
		fail("errno", "delete queue: %s", strerror(errno));
		bad++;
	}
	EXPECT_ERRNO("delete queue twice", ioctl(d->fd, NVMED_IOC_QUEUE_DELETE, &qd), ENOENT);
	if (!touch_sigbus(q.sq, 0) || !touch_sigbus(q.cq, 0) || !touch_sigbus(q.sq_db, 1)) {
		fail("errno", "deleted queue's SQ/CQ/doorbell still accessible");
		bad++;
	}
	nvmed_stats(d, &st1);
	if (st1.rings_live != st0.rings_live || st1.queues_live != st0.queues_live - 1) {
		fail("errno", "after delete with live mappings: rings %u->%u queues %u->%u",
		     st0.rings_live, st1.rings_live, st0.queues_live, st1.queues_live);
		bad++;
	}
	EXPECT_ERRNO("mmap deleted queue",
		     (long)mmap(NULL, 4096, PROT_READ, MAP_SHARED, d->fd,
				(off_t)NVMED_MMAP_OFFSET(NVMED_MMAP_SQ, q.qid)), ENOENT);
	/* the library's destroy unmaps, gets ENOENT for the delete, frees its scratch buffers */
	nvmed_qpair_destroy(&q);
	nvmed_stats(d, &st1);
	if (st1.rings_live != st0.rings_live - 2) {
		fail("errno", "ring memory not freed after munmap: rings %u -> %u", st0.rings_live,
		     st1.rings_live);
		bad++;
	}

	if (!bad)
		pass("errno");
}

static void t_queue_limits(struct nvmed_dev *d)
{
	struct nvmed_info *in = &d->info;
	struct nvmed_queue_create qc;
	uint32_t n = 0, n2 = 0, i;
	int bad = 0, fd2;

	for (i = 0; i < in->max_queues; i++) {
		memset(&qc, 0, sizeof(qc));
		qc.entries = 4;
		if (ioctl(d->fd, NVMED_IOC_QUEUE_CREATE, &qc)) {
			fail("queue-limits", "queue %u of %u: %s", i + 1, in->max_queues, strerror(errno));
			bad++;
			break;
		}
		n++;
	}
	memset(&qc, 0, sizeof(qc));
	qc.entries = 4;
	EXPECT_ERRNO("one queue over max_queues", ioctl(d->fd, NVMED_IOC_QUEUE_CREATE, &qc),
		     in->max_queues < in->hw_queues ? EMFILE : ENOSPC);
	if (bad)
		fail("queue-limits", "see errno failure above");

	/* a second open file takes the remaining hardware queues, then ENOSPC */
	fd2 = open(devpath, O_RDWR);
	if (fd2 >= 0 && in->hw_queues > n && in->hw_queues - n <= in->max_queues) {
		for (;;) {
			memset(&qc, 0, sizeof(qc));
			qc.entries = 4;
			if (ioctl(fd2, NVMED_IOC_QUEUE_CREATE, &qc))
				break;
			n2++;
		}
		if (errno != ENOSPC || n + n2 != in->hw_queues) {
			fail("queue-limits", "second file: %u queues then %s; want %u then ENOSPC", n2,
			     strerror(errno), in->hw_queues - n);
			bad++;
		}
	} else {
		info("hw queue exhaustion not tested (hw_queues %u, max_queues %u)", in->hw_queues,
		     in->max_queues);
	}
	if (fd2 >= 0)
		close(fd2);
	/* the first file's queues are deleted one by one */
	for (i = 1; i <= in->hw_queues; i++) {
		struct nvmed_queue_delete qd = { .qid = i };

		ioctl(d->fd, NVMED_IOC_QUEUE_DELETE, &qd);
	}
	if (!bad)
		pass("queue-limits");
}

static void t_rw_basic(struct nvmed_dev *d, struct nvmed_qpair *q, struct nvmed_buffer *b)
{
	uint32_t bs = d->info.lba_size;
	uint64_t lbas[] = { 0, 1, 7, 1000, d->info.capacity_lbas / 2, d->info.capacity_lbas - 1 };
	unsigned int i;
	int st, bad = 0;

	for (i = 0; i < sizeof(lbas) / sizeof(lbas[0]); i++) {
		fill_blocks(b->va, lbas[i], 1, 11, bs);
		st = sync_rw(q, 1, lbas[i], 1, b, 0);
		if (st) {
			fail("rw-basic", "write lba %" PRIu64 ": %s", lbas[i], st_str(st));
			bad++;
			continue;
		}
		memset(b->va, 0xa5, bs);
		st = sync_rw(q, 0, lbas[i], 1, b, 0);
		if (st) {
			fail("rw-basic", "read lba %" PRIu64 ": %s", lbas[i], st_str(st));
			bad++;
			continue;
		}
		if (check_blocks(b->va, lbas[i], 1, 11, bs) >= 0) {
			fail("rw-basic", "data mismatch at lba %" PRIu64, lbas[i]);
			bad++;
		}
	}
	if (!bad)
		pass("rw-basic");
}

/* transfers of many sizes and buffer offsets: PRP1 only, PRP2, PRP lists, chained lists */
static void t_prp(struct nvmed_dev *d, struct nvmed_qpair *q)
{
	uint32_t bs = d->info.lba_size, maxb = d->info.max_transfer / bs;
	uint32_t sizes[] = { 1, 2, 3, 4, 5, 8, 16, 31, 64, 127, 128, 129, 255, 256, 511, 512, 513, 1000, 1023, 1024 };
	size_t offs[] = { 0, 512, 4092 };
	struct nvmed_buffer wb, rb;
	unsigned int i, j, done = 0;
	int st, bad = 0, lists = 0, chained = 0;

	if (nvmed_buffer_alloc(d, d->info.max_buffer_bytes, &wb) ||
	    nvmed_buffer_alloc(d, d->info.max_buffer_bytes, &rb)) {
		fail("prp", "buffer allocation failed");
		return;
	}
	for (j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]) + 1; i++) {
			uint32_t n = i < sizeof(sizes) / sizeof(sizes[0]) ? sizes[i] : maxb;
			uint64_t len = (uint64_t)n * bs, lba = 4096 + (uint64_t)i * 1024;
			size_t roff = (offs[j] + 2048) % 4096;
			uint64_t pages;
			long badblk;

			if (n > maxb || offs[j] + len > wb.size || roff + len > rb.size)
				continue;
			pages = ((wb.dma + offs[j]) % 4096 + len + 4095) / 4096;
			if (pages > 2)
				lists++;
			if (pages - 1 > 512)
				chained++;
			fill_blocks((char *)wb.va + offs[j], lba, n, 100 + j, bs);
			st = sync_rw(q, 1, lba, n, &wb, offs[j]);
			if (st) {
				fail("prp", "write %u blocks at offset %zu: %s", n, offs[j], st_str(st));
				bad++;
				continue;
			}
			memset(rb.va, 0x5a, rb.size);
			st = sync_rw(q, 0, lba, n, &rb, roff);
			if (st) {
				fail("prp", "read %u blocks at offset %zu: %s", n, roff, st_str(st));
				bad++;
				continue;
			}
			badblk = check_blocks((char *)rb.va + roff, lba, n, 100 + j, bs);
			if (badblk >= 0) {
				fail("prp", "%u blocks, write offset %zu, read offset %zu: block %ld differs",
				     n, offs[j], roff, badblk);
				bad++;
			}
			done++;
		}
	}
	nvmed_buffer_free(d, &wb);
	nvmed_buffer_free(d, &rb);
	info("prp: %u transfers up to %u blocks, %d with PRP lists, %d with chained lists", done,
	     maxb, lists, chained);
	if (!bad)
		pass("prp");
}

/* random single-block writes then reads at queue depth 32, verified */
static void t_qd32(struct nvmed_dev *d, struct nvmed_qpair *q)
{
	const uint32_t N = 2048, QD = 32, bs = d->info.lba_size;
	const uint64_t base = 65536;
	struct nvmed_buffer b;
	struct nvmed_cpl cpl[64];
	uint64_t *perm;
	uint32_t slots[32], nslots = 0, next, done, i, maxq = 0;
	int pass_no, bad = 0;

	if (nvmed_buffer_alloc(d, QD * bs, &b)) {
		fail("qd32", "buffer allocation failed");
		return;
	}
	perm = malloc(N * sizeof(*perm));
	for (i = 0; i < N; i++)
		perm[i] = base + i;
	for (i = N - 1; i > 0; i--) {
		uint32_t k = rnd() % (i + 1);
		uint64_t t = perm[i];

		perm[i] = perm[k];
		perm[k] = t;
	}
	for (pass_no = 0; pass_no < 2 && !bad; pass_no++) {
		int write = pass_no == 0;

		nslots = 0;
		for (i = 0; i < QD; i++)
			slots[nslots++] = i;
		next = 0;
		done = 0;
		while (done < N) {
			while (next < N && nslots && nvmed_qpair_room(q)) {
				uint32_t s = slots[--nslots];
				uint64_t lba = perm[next];
				int cid;

				if (write)
					fill_blocks((char *)b.va + s * bs, lba, 1, 32, bs);
				cid = nvmed_prep_rw(q, write, lba, 1, &b, s * bs, 0,
						    (void *)(uintptr_t)(((uint64_t)s << 32) | next));
				if (cid < 0) {
					fail("qd32", "prep: %s", strerror(-cid));
					bad++;
					goto out;
				}
				next++;
			}
			if (q->outstanding > maxq)
				maxq = q->outstanding;
			{
				int n = nvmed_wait(q, cpl, 64, 1, 10 * SEC);

				if (n <= 0) {
					fail("qd32", "timeout with %u outstanding", q->outstanding);
					bad++;
					goto out;
				}
				for (i = 0; i < (uint32_t)n; i++) {
					uint64_t v = (uint64_t)(uintptr_t)cpl[i].ctx;
					uint32_t s = v >> 32, idx = (uint32_t)v;

					if (cpl[i].status) {
						fail("qd32", "%s lba %" PRIu64 ": %s", write ? "write" : "read",
						     perm[idx], st_str(cpl[i].status));
						bad++;
					} else if (!write && check_blocks((char *)b.va + s * bs, perm[idx], 1, 32, bs) >= 0) {
						fail("qd32", "data mismatch at lba %" PRIu64, perm[idx]);
						bad++;
					}
					slots[nslots++] = s;
					done++;
				}
			}
		}
	}
out:
	/* drain whatever is left so the queue is reusable */
	while (q->outstanding) {
		if (nvmed_wait(q, cpl, 64, 1, 10 * SEC) <= 0)
			break;
	}
	free(perm);
	nvmed_buffer_free(d, &b);
	info("qd32: %u random writes and reads, max %u outstanding", N, maxq);
	if (!bad && maxq == QD)
		pass("qd32");
	else if (!bad)
		fail("qd32", "queue depth reached only %u", maxq);
}

/* several queues used together; data written through one is read through another */
static void t_multiqueue(struct nvmed_dev *d)
{
	const uint32_t NQ = 4, PER = 256, bs = d->info.lba_size;
	struct nvmed_qpair qs[4];
	struct nvmed_buffer b;
	struct nvmed_cpl cpl[16];
	uint32_t i, k, nq = 0, sent[4] = { 0 }, got[4] = { 0 };
	int bad = 0, pass_no, ret;

	if (nvmed_buffer_alloc(d, NQ * PER * bs, &b)) {
		fail("multiqueue", "buffer allocation failed");
		return;
	}
	for (i = 0; i < NQ; i++) {
		ret = nvmed_qpair_create(d, 16, &qs[i]);
		if (ret) {
			fail("multiqueue", "queue %u: %s", i, strerror(-ret));
			bad++;
			goto out;
		}
		nq++;
	}
	for (pass_no = 0; pass_no < 2; pass_no++) {
		int write = pass_no == 0;
		uint32_t total = 0;

		memset(sent, 0, sizeof(sent));
		memset(got, 0, sizeof(got));
		if (write) {
			for (k = 0; k < NQ; k++)
				fill_blocks((char *)b.va + k * PER * bs, 200000 + k * PER, PER, 77, bs);
		} else {
			memset(b.va, 0, b.size);
		}
		while (total < NQ * PER) {
			for (k = 0; k < NQ; k++) {
				/* reads go through the next queue */
				struct nvmed_qpair *q = &qs[write ? k : (k + 1) % NQ];

				while (sent[k] < PER && nvmed_qpair_room(q)) {
					uint64_t lba = 200000 + k * PER + sent[k];

					if (nvmed_prep_rw(q, write, lba, 1, &b, (k * PER + sent[k]) * bs, 0,
							  (void *)(uintptr_t)k) < 0)
						break;
					sent[k]++;
				}
				nvmed_ring(q);
			}
			for (k = 0; k < NQ; k++) {
				int n = nvmed_reap(&qs[k], cpl, 16);

				for (i = 0; i < (uint32_t)n; i++) {
					if (cpl[i].status) {
						fail("multiqueue", "queue %u: %s", k, st_str(cpl[i].status));
						bad++;
					}
					total++;
				}
			}
		}
	}
	for (k = 0; k < NQ; k++)
		if (check_blocks((char *)b.va + k * PER * bs, 200000 + k * PER, PER, 77, bs) >= 0) {
			fail("multiqueue", "region %u mismatch", k);
			bad++;
		}
out:
	for (i = 0; i < nq; i++)
		nvmed_qpair_destroy(&qs[i]);
	nvmed_buffer_free(d, &b);
	if (!bad)
		pass("multiqueue");
}

static void t_flush(struct nvmed_qpair *q)
{
	int st = sync_flush(q);

	if (st)
		fail("flush", "%s", st_str(st));
	else
		pass("flush");
}

static void t_dsm(struct nvmed_dev *d, struct nvmed_qpair *q, struct nvmed_buffer *b)
{
	uint32_t bs = d->info.lba_size, i;
	const uint64_t L = 300000;
	struct nvme_dsm_range r[3] = {
		{ 0, 4, L }, { 0, 2, L + 6 }, { 0, 6, L + 10 },
	};
	int dealloc[16] = { 0 };
	int zero = !!(d->info.flags & NVMED_INFO_DEALLOC_READS_ZERO);
	struct nvmed_cpl c;
	int st, bad = 0;

	if (!(d->info.flags & NVMED_INFO_DSM)) {
		info("dataset management not supported: skipped");
		pass("dsm");
		return;
	}
	for (i = 0; i < 4; i++)
		dealloc[i] = 1;
	for (i = 6; i < 8; i++)
		dealloc[i] = 1;
	for (i = 10; i < 16; i++)
		dealloc[i] = 1;
	fill_blocks(b->va, L, 16, 5, bs);
	st = sync_rw(q, 1, L, 16, b, 0);
	if (st) {
		fail("dsm", "write: %s", st_str(st));
		return;
	}
	if (nvmed_prep_dsm(q, r, 3, NVME_DSM_ATTR_DEALLOCATE, NULL) < 0 || wait_one(q, &c)) {
		fail("dsm", "submit/timeout");
		return;
	}
	if (c.status) {
		fail("dsm", "deallocate: %s", st_str(c.status));
		return;
	}
	memset(b->va, 0xee, 16 * bs);
	st = sync_rw(q, 0, L, 16, b, 0);
	if (st) {
		fail("dsm", "read: %s", st_str(st));
		return;
	}
	for (i = 0; i < 16; i++) {
		char *blk = (char *)b->va + i * bs;

		if (!dealloc[i] && check_blocks(blk, L + i, 1, 5, bs) >= 0) {
			fail("dsm", "block %u (not deallocated) changed", i);
			bad++;
		}
		if (dealloc[i] && zero && !is_zero(blk, bs)) {
			fail("dsm", "deallocated block %u does not read as zeroes", i);
			bad++;
		}
	}
	info("dsm: 3 ranges deallocated; deallocated blocks read as zeroes: %s",
	     zero ? "advertised and verified" : "not advertised (not checked)");

	if (d->info.flags & NVMED_INFO_WRITE_ZEROES) {
		fill_blocks(b->va, L, 8, 6, bs);
		st = sync_rw(q, 1, L, 8, b, 0);
		if (!st && (nvmed_prep_write_zeroes(q, L + 2, 4, NULL) < 0 || wait_one(q, &c)))
			st = -ETIMEDOUT;
		else if (!st)
			st = c.status;
		if (!st)
			st = sync_rw(q, 0, L, 8, b, 0);
		if (st) {
			fail("dsm", "write zeroes sequence: %s", st_str(st));
			bad++;
		} else if (check_blocks(b->va, L, 2, 6, bs) >= 0 || !is_zero((char *)b->va + 2 * bs, 4 * bs) ||
			   check_blocks((char *)b->va + 6 * bs, L + 6, 2, 6, bs) >= 0) {
			fail("dsm", "write zeroes: wrong data");
			bad++;
		} else {
			info("write zeroes: verified");
		}
	}
	if (!bad)
		pass("dsm");
}

static void t_queue_full(struct nvmed_dev *d, struct nvmed_buffer *b)
{
	uint32_t sizes[] = { 2, 4, 33 };
	struct nvmed_cpl cpl[64];
	unsigned int i;
	int bad = 0;

	for (i = 0; i < 3; i++) {
		struct nvmed_qpair q;
		uint32_t round, n, got;
		int ret = nvmed_qpair_create(d, sizes[i], &q);

		if (ret) {
			fail("queue-full", "create %u entries: %s", sizes[i], strerror(-ret));
			bad++;
			continue;
		}
		for (round = 0; round < 3; round++) {
			for (n = 0;; n++) {
				ret = nvmed_prep_rw(&q, 0, n, 1, b, 0, 0, NULL);
				if (ret < 0)
					break;
				if (n > sizes[i]) {
					ret = 0;
					break;
				}
			}
			if (ret != -EAGAIN || n != sizes[i] - 1) {
				fail("queue-full", "%u entries: accepted %u before %s, want %u then EAGAIN",
				     sizes[i], n, ret ? strerror(-ret) : "no error", sizes[i] - 1);
				bad++;
			}
			got = 0;
			while (got < n) {
				int k = nvmed_wait(&q, cpl, 64, 1, 10 * SEC);

				if (k <= 0)
					break;
				got += k;
			}
			if (got != n || q.outstanding) {
				fail("queue-full", "%u entries: reaped %u of %u", sizes[i], got, n);
				bad++;
				break;
			}
		}
		nvmed_qpair_destroy(&q);
	}
	if (!bad)
		pass("queue-full");
}

/* errors reported by the controller, decoded */
static void t_errors(struct nvmed_dev *d, struct nvmed_qpair *q, struct nvmed_buffer *b)
{
	uint64_t cap = d->info.capacity_lbas;
	struct nvme_sqe c;
	struct nvmed_cpl cpl;
	int st, bad = 0;

	st = sync_rw(q, 0, cap, 1, b, 0);
	info("read at LBA %" PRIu64 " (= capacity): %s", cap, st_str(st));
	if (st != NVME_SC_LBA_RANGE) {
		fail("errors", "read past end: got %s, want LBA Out of Range", st_str(st));
		bad++;
	}
	st = sync_rw(q, 1, cap - 1, 2, b, 0);
	info("write 2 blocks at LBA %" PRIu64 ": %s", cap - 1, st_str(st));
	if (st != NVME_SC_LBA_RANGE) {
		fail("errors", "write across end: got %s, want LBA Out of Range", st_str(st));
		bad++;
	}

	memset(&c, 0, sizeof(c));
	c.opc = 0x7e;
	c.nsid = d->info.nsid;
	if (nvmed_prep_raw(q, &c, NULL) < 0 || wait_one(q, &cpl))
		st = -ETIMEDOUT;
	else
		st = cpl.status;
	info("opcode 0x7e: %s", st_str(st));
	if (st != NVME_SC_INVALID_OPCODE) {
		fail("errors", "invalid opcode: got %s", st_str(st));
		bad++;
	}

	memset(&c, 0, sizeof(c));
	c.opc = NVME_OPC_READ;
	c.nsid = 0x4242;
	c.prp1 = b->dma;
	if (nvmed_prep_raw(q, &c, NULL) < 0 || wait_one(q, &cpl))
		st = -ETIMEDOUT;
	else
		st = cpl.status;
	info("read from namespace 0x4242: %s", st_str(st));
	if (st != NVME_SC_INVALID_NS) {
		fail("errors", "invalid namespace: got %s", st_str(st));
		bad++;
	}

	/* one block more than MDTS allows; the controller must refuse before any transfer */
	if (d->info.max_transfer < d->info.max_buffer_bytes ||
	    d->info.max_transfer / d->info.lba_size < 65536) {
		memset(&c, 0, sizeof(c));
		c.opc = NVME_OPC_READ;
		c.nsid = d->info.nsid;
		c.prp1 = b->dma;
		c.prp2 = b->dma + 4096;	/* not a valid list: must not be followed */
		c.cdw12 = d->info.max_transfer / d->info.lba_size;	/* 0-based: max + 1 blocks */
		if (nvmed_prep_raw(q, &c, NULL) < 0 || wait_one(q, &cpl))
			st = -ETIMEDOUT;
		else
			st = cpl.status;
		info("read of max_transfer + 1 block: %s", st_str(st));
		if (st != NVME_SC_INVALID_FIELD) {
			fail("errors", "transfer over MDTS: got %s, want Invalid Field in Command", st_str(st));
			bad++;
		}
	}

	/* the queue still works */
	fill_blocks(b->va, 5, 1, 9, d->info.lba_size);
	st = sync_rw(q, 1, 5, 1, b, 0);
	if (st) {
		fail("errors", "queue unusable after errors: %s", st_str(st));
		bad++;
	}
	if (!bad)
		pass("errors");
}

static int check_idle(struct nvmed_dev *d, const char *name, uint32_t open_files)
{
	struct nvmed_stats s;

	if (nvmed_stats(d, &s)) {
		fail(name, "stats ioctl failed");
		return 0;
	}
	info("stats: open_files %u queues_live %u rings_live %u bufs_live %u dma_bytes_live %" PRIu64
	     " queues %" PRIu64 "/%" PRIu64 " bufs %" PRIu64 "/%" PRIu64 " admin %" PRIu64
	     " errors %" PRIu64 " timeouts %" PRIu64 " leaked %" PRIu64 " failed %u"
	     " module: devs %u dma_bytes %" PRIu64,
	     s.open_files, s.queues_live, s.rings_live, s.bufs_live, (uint64_t)s.dma_bytes_live,
	     (uint64_t)s.queues_created, (uint64_t)s.queues_deleted, (uint64_t)s.bufs_allocated,
	     (uint64_t)s.bufs_freed, (uint64_t)s.admin_cmds, (uint64_t)s.admin_errors,
	     (uint64_t)s.admin_timeouts, (uint64_t)s.leaked_bytes, s.ctrl_failed,
	     s.module_devs_live, (uint64_t)s.module_dma_bytes_live);
	if (s.open_files != open_files || s.queues_live || s.rings_live || s.bufs_live ||
	    s.dma_bytes_live || s.leaked_bytes || s.ctrl_failed || s.admin_timeouts ||
	    s.module_dma_bytes_live ||
	    s.queues_created != s.queues_deleted || s.bufs_allocated != s.bufs_freed) {
		fail(name, "driver still holds resources (see stats above)");
		return 0;
	}
	return 1;
}

static int cmd_func(void)
{
	struct nvmed_dev d;
	struct nvmed_qpair q;
	struct nvmed_buffer b;
	int ret;

	open_dev(&d);
	t_info(&d);
	t_errno(&d);
	t_queue_limits(&d);
	ret = nvmed_qpair_create(&d, 64, &q);
	if (ret) {
		fail("qpair", "create: %s", strerror(-ret));
		return 1;
	}
	if (nvmed_buffer_alloc(&d, 1 << 20, &b)) {
		fail("buffer", "alloc failed");
		return 1;
	}
	t_rw_basic(&d, &q, &b);
	t_prp(&d, &q);
	t_qd32(&d, &q);
	t_multiqueue(&d);
	t_flush(&q);
	t_dsm(&d, &q, &b);
	t_queue_full(&d, &b);
	t_errors(&d, &q, &b);
	nvmed_buffer_free(&d, &b);
	nvmed_qpair_destroy(&q);
	nvmed_close(&d);

	/* a fresh open sees nothing left behind */
	open_dev(&d);
	if (check_idle(&d, "teardown", 1))
		pass("teardown");
	nvmed_close(&d);
	return failures ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* hold / maxq / stats                                                  */

static int cmd_hold(void)
{
	struct nvmed_dev d;
	struct nvmed_qpair qs[64];
	struct nvmed_buffer bufs[4];
	struct nvmed_cpl cpl[64];
	uint32_t nq, i, k;
	int ret;

	open_dev(&d);
	nq = d.info.max_queues > 64 ? 64 : d.info.max_queues;
	for (i = 0; i < 4; i++)
		if (nvmed_buffer_alloc(&d, 1 << 20, &bufs[i])) {
			errmsg("hold: buffer alloc failed\n");
			return 1;
		}
	for (i = 0; i < nq; i++) {
		ret = nvmed_qpair_create(&d, 64, &qs[i]);
		if (ret) {
			errmsg("hold: queue %u: %s\n", i, strerror(-ret));
			return 1;
		}
	}
	/* fill every queue; queue 0 is never reaped (its CQ fills up) */
	for (i = 0; i < nq; i++) {
		while (nvmed_qpair_room(&qs[i]))
			nvmed_prep_rw(&qs[i], 1, 100000 + (rnd() % 10000), 1, &bufs[i % 4], (rnd() % 256) * 4096, 0, NULL);
		nvmed_ring(&qs[i]);
	}
	printf("HOLDING queues=%u buffers=4 outstanding=%u each\n", nq, qs[0].outstanding);
	fflush(stdout);
	for (;;) {
		for (i = 1; i < nq; i++) {
			int n = nvmed_reap(&qs[i], cpl, 64);

			for (k = 0; k < (uint32_t)n; k++)
				nvmed_prep_rw(&qs[i], (int)(rnd() & 1), 100000 + (rnd() % 10000), 1, &bufs[i % 4],
					      (rnd() % 256) * 4096, 0, NULL);
			nvmed_ring(&qs[i]);
		}
	}
	return 0;
}

static int cmd_maxq(void)
{
	struct nvmed_dev d;
	struct nvmed_qpair qs[64];
	struct nvmed_buffer b;
	struct nvmed_queue_create qc;
	uint32_t i, n;
	int ret, bad = 0, st;

	open_dev(&d);
	n = d.info.max_queues > 64 ? 64 : d.info.max_queues;
	if (nvmed_buffer_alloc(&d, 65536, &b)) {
		fail("maxq", "buffer alloc failed");
		return 1;
	}
	for (i = 0; i < n; i++) {
		ret = nvmed_qpair_create(&d, 16, &qs[i]);
		if (ret) {
			fail("maxq", "queue %u of %u: %s", i + 1, n, strerror(-ret));
			return 1;
		}
	}
	memset(&qc, 0, sizeof(qc));
	qc.entries = 4;
	if (ioctl(d.fd, NVMED_IOC_QUEUE_CREATE, &qc) == 0 || (errno != EMFILE && errno != ENOSPC)) {
		fail("maxq", "queue %u: want EMFILE/ENOSPC, got %s", n + 1, strerror(errno));
		bad++;
	}
	for (i = 0; i < n; i++) {
		fill_blocks(b.va, 123456 + i, 1, i, d.info.lba_size);
		st = sync_rw(&qs[i], 1, 123456 + i, 1, &b, 0);
		if (!st)
			st = sync_rw(&qs[(i + 1) % n], 0, 123456 + i, 1, &b, 4096);
		if (st || check_blocks((char *)b.va + 4096, 123456 + i, 1, i, d.info.lba_size) >= 0) {
			fail("maxq", "I/O on queue %u: %s", qs[i].qid, st_str(st));
			bad++;
		}
	}
	info("maxq: %u queues created and used", n);
	if (!bad)
		pass("maxq");
	return bad;
}

/* with strict_doorbells=1 a controller whose doorbell page is shared gives EOPNOTSUPP */
static int cmd_strict(void)
{
	struct nvmed_dev d;
	struct nvmed_queue_create qc;
	int r, want_fail;

	open_dev(&d);
	want_fail = (d.info.flags & NVMED_INFO_DB_STRICT) && (d.info.flags & NVMED_INFO_DB_SHARED_PAGE);
	memset(&qc, 0, sizeof(qc));
	qc.entries = 4;
	r = ioctl(d.fd, NVMED_IOC_QUEUE_CREATE, &qc);
	info("strict doorbells %s, shared doorbell page %s: queue create %s",
	     d.info.flags & NVMED_INFO_DB_STRICT ? "on" : "off",
	     d.info.flags & NVMED_INFO_DB_SHARED_PAGE ? "yes" : "no", r ? strerror(errno) : "succeeded");
	if (want_fail ? (r == 0 || errno != EOPNOTSUPP) : r != 0) {
		fail("strict-doorbells", "unexpected result");
		return 1;
	}
	pass("strict-doorbells");
	return 0;
}

static int cmd_stats(int expect_idle)
{
	struct nvmed_dev d;

	open_dev(&d);
	if (!expect_idle) {
		check_idle(&d, "stats", 1);
		return 0;
	}
	if (check_idle(&d, "idle", 1)) {
		pass("idle");
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------ */
/* fill / check through nvmed or a block device                         */

static int cmd_fill_check(int write, uint64_t lba, uint32_t n, uint64_t seed)
{
	struct nvmed_dev d;
	struct nvmed_qpair q;
	struct nvmed_buffer b;
	uint32_t bs, i, chunk;
	int st;

	open_dev(&d);
	bs = d.info.lba_size;
	if (nvmed_qpair_create(&d, 8, &q) || nvmed_buffer_alloc(&d, 256 * bs, &b))
		return 2;
	for (i = 0; i < n; i += chunk) {
		chunk = n - i > 256 ? 256 : n - i;
		if (chunk * bs > d.info.max_transfer)
			chunk = d.info.max_transfer / bs;
		if (write)
			fill_blocks(b.va, lba + i, chunk, seed, bs);
		st = sync_rw(&q, write, lba + i, chunk, &b, 0);
		if (st) {
			errmsg("%s at %" PRIu64 ": %s\n", write ? "write" : "read", lba + i, st_str(st));
			return 1;
		}
		if (!write && check_blocks(b.va, lba + i, chunk, seed, bs) >= 0) {
			errmsg("mismatch in blocks %" PRIu64 "..%" PRIu64 "\n", lba + i, lba + i + chunk - 1);
			return 1;
		}
	}
	if (write && sync_flush(&q))
		return 1;
	return 0;
}

static int cmd_blk_fill_check(const char *path, int write, uint64_t lba, uint32_t n, uint64_t seed)
{
	const uint32_t bs = 4096;
	int fd = open(path, (write ? O_RDWR : O_RDONLY) | O_DIRECT);
	void *p;
	ssize_t r;

	if (fd < 0) {
		errmsg("%s: %s\n", path, strerror(errno));
		return 2;
	}
	if (posix_memalign(&p, 4096, (size_t)n * bs))
		return 2;
	if (write) {
		fill_blocks(p, lba, n, seed, bs);
		r = pwrite(fd, p, (size_t)n * bs, (off_t)(lba * bs));
	} else {
		r = pread(fd, p, (size_t)n * bs, (off_t)(lba * bs));
	}
	if (r != (ssize_t)((size_t)n * bs)) {
		errmsg("%s: %s returned %zd (%s)\n", path, write ? "pwrite" : "pread", r,
			r < 0 ? strerror(errno) : "short");
		return 1;
	}
	if (write && fdatasync(fd)) {
		errmsg("%s: fdatasync: %s\n", path, strerror(errno));
		return 1;
	}
	if (!write && check_blocks(p, lba, n, seed, bs) >= 0) {
		errmsg("%s: data mismatch\n", path);
		return 1;
	}
	close(fd);
	return 0;
}

/* ------------------------------------------------------------------ */
/* crash test                                                           */

#define CRASH_MAGIC	0x4e564d4544435253ull	/* "NVMEDCRS" */
#define CRASH_BASE	(1ull << 18)		/* LBA 262144: 1 GiB into a 4 KiB-block disk */
#define CRASH_SLOTS	16384ull
#define CRASH_BATCH	32
#define CRASH_ACK_EVERY	4			/* batches per ACK line */

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
	uint32_t i;

	for (i = 0; i < bs / 8; i++)
		if (i != 3)	/* skip the sum word itself */
			h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

static void crash_fill(void *blk, uint64_t seq, uint64_t lba, uint32_t bs)
{
	struct crash_hdr *h = blk;
	uint64_t *w = blk;
	uint32_t i;

	for (i = 4; i < bs / 8; i++)
		w[i] = mix64(seq * 1000003 + i);
	h->magic = CRASH_MAGIC;
	h->seq = seq;
	h->lba = lba;
	h->sum = crash_sum(blk, bs);
}

static int cmd_crash_write(void)
{
	struct nvmed_dev d;
	struct nvmed_qpair q;
	struct nvmed_buffer b;
	struct nvmed_cpl cpl[64];
	uint64_t seq = 0;
	uint32_t bs, i, batches = 0;
	int n, got;

	open_dev(&d);
	bs = d.info.lba_size;
	if (d.info.capacity_lbas < CRASH_BASE + CRASH_SLOTS) {
		errmsg("crash-write: device too small\n");
		return 2;
	}
	if (nvmed_qpair_create(&d, 64, &q) || nvmed_buffer_alloc(&d, CRASH_BATCH * bs, &b))
		return 2;
	printf("CRASH-START slots=%llu base=%llu\n", CRASH_SLOTS, CRASH_BASE);
	fflush(stdout);
	for (;;) {
		for (i = 0; i < CRASH_BATCH; i++) {
			uint64_t s = seq + i, lba = CRASH_BASE + s % CRASH_SLOTS;

			crash_fill((char *)b.va + i * bs, s, lba, bs);
			if (nvmed_prep_rw(&q, 1, lba, 1, &b, i * bs, 0, NULL) < 0)
				return 3;
		}
		for (got = 0; got < CRASH_BATCH; got += n) {
			n = nvmed_wait(&q, cpl, 64, 1, 10 * SEC);
			if (n <= 0)
				return 4;
			for (i = 0; i < (uint32_t)n; i++)
				if (cpl[i].status) {
					printf("CRASH-ERROR %s\n", st_str(cpl[i].status));
					return 5;
				}
		}
		seq += CRASH_BATCH;
		/* durable only after a flush that was submitted after the writes completed */
		if (++batches % CRASH_ACK_EVERY == 0) {
			if (sync_flush(&q))
				return 6;
			printf("ACK %" PRIu64 "\n", seq - 1);
			fflush(stdout);
		}
	}
}

static int cmd_crash_verify(uint64_t acked)
{
	struct nvmed_dev d;
	struct nvmed_qpair q;
	struct nvmed_buffer b;
	uint32_t bs, chunk = 64;
	uint64_t slot, lost = 0, corrupt = 0, torn_unacked = 0, newer = 0, checked = 0, unacked_present = 0;
	int st;

	open_dev(&d);
	bs = d.info.lba_size;
	if (nvmed_qpair_create(&d, 8, &q) || nvmed_buffer_alloc(&d, chunk * bs, &b))
		return 2;
	for (slot = 0; slot < CRASH_SLOTS; slot += chunk) {
		uint32_t i;

		st = sync_rw(&q, 0, CRASH_BASE + slot, chunk, &b, 0);
		if (st) {
			fail("crash-verify", "read: %s", st_str(st));
			return 1;
		}
		for (i = 0; i < chunk; i++) {
			uint64_t s = slot + i, need;
			char *blk = (char *)b.va + i * bs;
			struct crash_hdr *h = (struct crash_hdr *)blk;
			int valid = h->magic == CRASH_MAGIC && h->sum == crash_sum(blk, bs) &&
				    h->lba == CRASH_BASE + s && h->seq % CRASH_SLOTS == s;

			if (s > acked) {	/* never acknowledged: may hold anything whole */
				if (valid)
					unacked_present++;
				else if (!is_zero(blk, bs))
					torn_unacked++;
				continue;
			}
			need = s + ((acked - s) / CRASH_SLOTS) * CRASH_SLOTS;
			checked++;
			if (!valid) {
				if (is_zero(blk, bs))
					lost++;
				else
					corrupt++;
				if (lost + corrupt <= 5)
					info("slot %" PRIu64 ": acked seq %" PRIu64 " %s", s, need,
					     is_zero(blk, bs) ? "missing" : "corrupt");
			} else if (h->seq < need) {
				lost++;
				if (lost + corrupt <= 5)
					info("slot %" PRIu64 ": has seq %" PRIu64 ", acked seq %" PRIu64 " lost",
					     s, h->seq, need);
			} else if (h->seq > need) {
				newer++;
			}
		}
	}
	info("crash-verify: acked up to seq %" PRIu64 ", %" PRIu64 " slots checked, %" PRIu64
	     " lost, %" PRIu64 " corrupt, %" PRIu64 " hold newer unacked writes; beyond the last ACK: %"
	     PRIu64 " unacknowledged writes present, %" PRIu64 " torn",
	     acked, checked, lost, corrupt, newer, unacked_present, torn_unacked);
	if (lost || corrupt) {
		fail("crash-verify", "%" PRIu64 " acknowledged writes lost, %" PRIu64 " corrupt", lost, corrupt);
		return 1;
	}
	pass("crash-verify");
	return 0;
}

/* ------------------------------------------------------------------ */
/* benchmarks                                                           */

struct lat {
	uint64_t *v;
	size_t n, cap;
};

static void lat_add(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 65536;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void bench_report(const char *backend, const char *op, int qd, uint64_t ops, uint64_t elapsed,
			 struct lat *l)
{
	double sum = 0;
	size_t i;

	qsort(l->v, l->n, sizeof(*l->v), cmp_u64);
	for (i = 0; i < l->n; i++)
		sum += (double)l->v[i];
	printf("BENCH backend=%-14s op=%-9s qd=%-2d iops=%-8.0f lat_avg_us=%-8.1f lat_p50_us=%-8.1f lat_p99_us=%.1f\n",
	       backend, op, qd, (double)ops * 1e9 / (double)elapsed,
	       l->n ? sum / (double)l->n / 1000.0 : 0.0, l->n ? (double)l->v[l->n / 2] / 1000.0 : 0.0,
	       l->n ? (double)l->v[l->n * 99 / 100] / 1000.0 : 0.0);
	fflush(stdout);
	l->n = 0;
}

/* random LBAs in the first 1 GiB (4 KiB blocks); NVMED_BENCH_SPAN (blocks) overrides */
static uint64_t bench_span = 262144ull;

/* optional filter: only this op (1 write, 0 read) and queue depth */
static int bench_only_w = -1, bench_only_qd;

static int bench_skip(int w, int qd)
{
	return (bench_only_w >= 0 && w != bench_only_w) || (bench_only_qd && qd != bench_only_qd);
}

static int cmd_bench_nvmed(double secs)
{
	struct nvmed_dev d;
	struct nvmed_qpair q;
	struct nvmed_buffer b;
	struct nvmed_cpl cpl[64];
	struct lat l = { 0 };
	int qds[] = { 1, 32 }, qi, w;
	uint64_t stamp[64];

	open_dev(&d);
	if (nvmed_qpair_create(&d, 64, &q) || nvmed_buffer_alloc(&d, 64 * 4096, &b))
		return 2;
	memset(b.va, 0x3c, b.size);
	for (w = 1; w >= 0; w--) {
		for (qi = 0; qi < 2; qi++) {
			int qd = qds[qi];
			uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9), ops = 0, t;

			if (bench_skip(w, qd))
				continue;
			for (;;) {
				t = now_ns();
				if (t >= end && q.outstanding == 0)
					break;
				while (t < end && (int)q.outstanding < qd) {
					int cid = nvmed_prep_rw(&q, w, rnd() % bench_span, 1, &b,
								(q.outstanding % 64) * 4096, 0, NULL);

					if (cid < 0)
						break;
					stamp[cid] = t;
				}
				nvmed_ring(&q);
				{
					int n = nvmed_reap(&q, cpl, 64), i;

					if (n) {
						t = now_ns();
						for (i = 0; i < n; i++) {
							if (cpl[i].status)
								return 3;
							lat_add(&l, t - stamp[cpl[i].cid]);
						}
						ops += (uint64_t)n;
					}
				}
			}
			bench_report("nvmed", w ? "randwrite" : "randread", qd, ops, now_ns() - t0, &l);
		}
	}
	return 0;
}

/* minimal io_uring through raw system calls */
struct uring {
	int fd;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	unsigned pending;
};

static int uring_init(struct uring *u, unsigned entries, int iopoll)
{
	struct io_uring_params p;
	void *sq, *cq;

	memset(&p, 0, sizeof(p));
	if (iopoll)
		p.flags = IORING_SETUP_IOPOLL;
	u->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
	if (u->fd < 0)
		return -errno;
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_CQ_RING);
	u->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || u->sqes == MAP_FAILED)
		return -errno;
	u->sq_head = (unsigned *)((char *)sq + p.sq_off.head);
	u->sq_tail = (unsigned *)((char *)sq + p.sq_off.tail);
	u->sq_mask = (unsigned *)((char *)sq + p.sq_off.ring_mask);
	u->sq_array = (unsigned *)((char *)sq + p.sq_off.array);
	u->cq_head = (unsigned *)((char *)cq + p.cq_off.head);
	u->cq_tail = (unsigned *)((char *)cq + p.cq_off.tail);
	u->cq_mask = (unsigned *)((char *)cq + p.cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)((char *)cq + p.cq_off.cqes);
	u->pending = 0;
	return 0;
}

static void uring_prep(struct uring *u, int fd, int write, void *buf, unsigned len, uint64_t off,
		       uint64_t data)
{
	unsigned tail = *u->sq_tail, idx = tail & *u->sq_mask;
	struct io_uring_sqe *s = &u->sqes[idx];

	memset(s, 0, sizeof(*s));
	s->opcode = write ? IORING_OP_WRITE : IORING_OP_READ;
	s->fd = fd;
	s->addr = (uint64_t)(uintptr_t)buf;
	s->len = len;
	s->off = off;
	s->user_data = data;
	u->sq_array[idx] = idx;
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	u->pending++;
}

static int uring_enter(struct uring *u, unsigned min_complete)
{
	int r = (int)syscall(__NR_io_uring_enter, u->fd, u->pending, min_complete,
			     min_complete ? IORING_ENTER_GETEVENTS : 0, NULL, 0);

	if (r >= 0)
		u->pending -= (unsigned)r;
	return r;
}

static int bench_kernel(const char *path, double secs, int mode /* 0 psync, 1 uring, 2 uring iopoll */)
{
	const char *names[] = { "kernel-psync", "kernel-uring", "kernel-uring-poll" };
	int qds[] = { 1, 32 }, qi, w, fd;
	struct lat l = { 0 };
	char *buf;
	uint64_t stamp[64];

	fd = open(path, O_RDWR | O_DIRECT);
	if (fd < 0) {
		errmsg("%s: %s\n", path, strerror(errno));
		return 2;
	}
	if (posix_memalign((void **)&buf, 4096, 64 * 4096))
		return 2;
	memset(buf, 0x3c, 64 * 4096);
	for (w = 1; w >= 0; w--) {
		for (qi = 0; qi < (mode == 0 ? 1 : 2); qi++) {
			int qd = qds[qi];
			uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9), ops = 0, t;

			if (bench_skip(w, qd))
				continue;

			if (mode == 0) {
				while ((t = now_ns()) < end) {
					off_t off = (off_t)((rnd() % bench_span) * 4096);
					ssize_t r = w ? pwrite(fd, buf, 4096, off) : pread(fd, buf, 4096, off);

					if (r != 4096)
						return 3;
					lat_add(&l, now_ns() - t);
					ops++;
				}
			} else {
				struct uring u = { 0 };
				unsigned inflight = 0, slot = 0;

				if (uring_init(&u, 64, mode == 2)) {
					info("io_uring%s unavailable: %s", mode == 2 ? " IOPOLL" : "", strerror(errno));
					return 0;
				}
				for (;;) {
					unsigned head, tail;

					t = now_ns();
					if (t >= end && inflight == 0)
						break;
					while (t < end && (int)inflight < qd) {
						slot = (slot + 1) % 64;
						stamp[slot] = t;
						uring_prep(&u, fd, w, buf + slot * 4096, 4096,
							   (rnd() % bench_span) * 4096, slot);
						inflight++;
					}
					if (uring_enter(&u, 1) < 0)
						return 4;
					head = *u.cq_head;
					tail = __atomic_load_n(u.cq_tail, __ATOMIC_ACQUIRE);
					t = now_ns();
					while (head != tail) {
						struct io_uring_cqe *c = &u.cqes[head & *u.cq_mask];

						if (c->res != 4096)
							return 5;
						lat_add(&l, t - stamp[c->user_data]);
						head++;
						inflight--;
						ops++;
					}
					__atomic_store_n(u.cq_head, head, __ATOMIC_RELEASE);
				}
				close(u.fd);
			}
			bench_report(names[mode], w ? "randwrite" : "randread", qd, ops, now_ns() - t0, &l);
		}
	}
	close(fd);
	return 0;
}

static int cmd_bench_kernel(const char *path, double secs, const char *mode)
{
	int r = 0, all = !strcmp(mode, "all") || !strcmp(mode, "iopoll");

	if (all || !strcmp(mode, "psync"))
		r = bench_kernel(path, secs, 0);
	if (!r && (all || !strcmp(mode, "uring")))
		r = bench_kernel(path, secs, 1);
	if (!r && (all || !strcmp(mode, "uring-poll")))
		r = bench_kernel(path, secs, 2);
	return r;
}

/* "randread 32" / "randwrite 1" -> filter */
static void bench_filter(int argc, char **argv, int i)
{
	if (argc > i + 1) {
		bench_only_w = !strcmp(argv[i], "randwrite");
		bench_only_qd = atoi(argv[i + 1]);
	}
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr, "usage: nvmed_test func|hold|maxq|stats|fill|check|crash-write|crash-verify|"
			"bench-nvmed DEV ... | fillblk|checkblk|bench-kernel BLKDEV ...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *cmd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("NVMED_TEST_PREFIX"))
		prefix = getenv("NVMED_TEST_PREFIX");
	if (argc < 3)
		usage();
	cmd = argv[1];
	devpath = argv[2];
	rng_state ^= (uint64_t)getpid() << 32 ^ now_ns();
	if (getenv("NVMED_BENCH_SPAN") && strtoull(getenv("NVMED_BENCH_SPAN"), NULL, 0) > 0)
		bench_span = strtoull(getenv("NVMED_BENCH_SPAN"), NULL, 0);
	if (!strcmp(cmd, "func"))
		return cmd_func();
	if (!strcmp(cmd, "hold"))
		return cmd_hold();
	if (!strcmp(cmd, "maxq"))
		return cmd_maxq();
	if (!strcmp(cmd, "strict"))
		return cmd_strict();
	if (!strcmp(cmd, "stats"))
		return cmd_stats(argc > 3 && !strcmp(argv[3], "--expect-idle"));
	if ((!strcmp(cmd, "fill") || !strcmp(cmd, "check")) && argc == 6)
		return cmd_fill_check(cmd[0] == 'f', strtoull(argv[3], NULL, 0),
				      (uint32_t)strtoul(argv[4], NULL, 0), strtoull(argv[5], NULL, 0));
	if ((!strcmp(cmd, "fillblk") || !strcmp(cmd, "checkblk")) && argc == 6)
		return cmd_blk_fill_check(devpath, cmd[0] == 'f', strtoull(argv[3], NULL, 0),
					  (uint32_t)strtoul(argv[4], NULL, 0), strtoull(argv[5], NULL, 0));
	if (!strcmp(cmd, "crash-write"))
		return cmd_crash_write();
	if (!strcmp(cmd, "crash-verify") && argc == 4)
		return cmd_crash_verify(strtoull(argv[3], NULL, 0));
	if (!strcmp(cmd, "bench-nvmed") && argc >= 4) {
		bench_filter(argc, argv, 4);
		return cmd_bench_nvmed(atof(argv[3]));
	}
	if (!strcmp(cmd, "bench-kernel") && argc >= 4) {
		bench_filter(argc, argv, 5);
		return cmd_bench_kernel(devpath, atof(argv[3]), argc > 4 ? argv[4] : "all");
	}
	usage();
	return 2;
}
