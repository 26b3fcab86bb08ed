/*
 * nvmed: user-space NVMe queues through the nvmed kernel driver (kmod/, /dev/nvmedN).
 *
 * The driver creates a polled I/O queue pair (no interrupt) and maps its SQ and CQ rings,
 * its doorbells and DMA buffers into the process; this backend writes NVMe commands into
 * the SQ, rings the doorbell and polls the CQ's phase bits (nvmed_queue.c). No system
 * call on the I/O path.
 *
 * Commands. One ffs command becomes one or more NVMe commands: reads and writes larger
 * than the per-command limit (MDTS) are split into pieces of at most that size, each with
 * its own PRP entries (PRP1, PRP2, or a PRP list, chained past 512 entries); the ffs
 * completion is produced when every piece completed, carrying the first error. Flush is
 * Flush; trim is Dataset Management with the deallocate attribute; FUA sets CDW12 bit 30;
 * a barrier waits (EAGAIN to the common layer) until nothing is in flight. The SQ has
 * queue_depth + pieces-per-command entries, and a command is only queued when all of its
 * pieces fit, so at most entries - 1 commands are ever outstanding (an NVMe queue can
 * never be completely full). Every non-zero completion status is turned into an errno
 * (nvme_status_errno(): LBA out of range ERANGE, invalid opcode EOPNOTSUPP, media errors
 * EIO, ...) and reported with the raw (SCT << 8 | SC) in ffs_cqe.status.
 *
 * Memory. PRP entries are bus addresses, so data must live in DMA memory of the driver:
 * ffs_alloc() hands out memory mmapped from driver DMA buffers. Small allocations
 * (<= 256 KiB) are carved from 2 MiB arenas (one driver buffer each, a page bitmap
 * inside); larger ones get a region of their own, made of as many driver buffers as
 * needed (each at most max_buffer_bytes, 4 MiB) mapped back to back into one reserved
 * virtual range, so an allocation may be larger than one driver buffer and need not be
 * physically contiguous: every region keeps the bus address of each of its 4 KiB pages,
 * and PRP entries are taken from that table, so buffers from ffs_alloc() are transferred in
 * place. Any other memory (the engine hands its JS-heap commit frames to the device
 * directly) is bounced: the command gets a DMA buffer from a small pool (power-of-two
 * sizes, up to 16 MiB kept for reuse), a write copies the data in when the command is
 * queued, a read copies it out when the command completes. That costs a memcpy, never
 * correctness. FFS_NVMED_BOUNCE=0 refuses such commands instead, with EFAULT and "not DMA
 * memory from ffs_alloc() of this device" in ffs_last_error() (strict zero copy). The
 * driver's per-file quota (module parameter max_dma_mb, 64 MiB by default) bounds what can
 * be allocated; a bounce that cannot get memory waits for in-flight commands (EAGAIN to the
 * common layer) and fails with ENOMEM when nothing is in flight.
 *
 * Completions and the notify pipe. A polled queue raises no interrupt, so nothing in the
 * kernel can wake the event loop. Two paths:
 *  - ffs_reap() polls the CQ itself on the caller's thread: with min_wait > 0 (the
 *    synchronous read path, readSync) it spins on the phase bit until enough completions
 *    arrived - no system call, no thread hop.
 *  - A poller thread watches the CQ entry at the current head (read-only: only the
 *    caller's thread consumes completions) while commands are outstanding and writes one
 *    byte to the notify pipe when a completion appears; Node's event loop then calls
 *    ffs_reap(). It spins for FFS_NVMED_SPIN_US (default 50 us) after the last progress,
 *    then sleeps FFS_NVMED_SLEEP_US (default 20 us) between looks; it blocks on a
 *    condition variable when nothing is outstanding and while the caller's thread polls
 *    the CQ itself (so two threads never poll the same queue). It runs as SCHED_IDLE: it
 *    only gets CPU time no other thread wants, so it never delays the caller's thread -
 *    which matters most on a machine with one CPU, where a normal poller would hold the
 *    CPU for a time slice while the thread that must reap waits (FFS_NVMED_POLLER=normal
 *    keeps the normal policy). CPU cost: up to one otherwise idle core while I/O
 *    completes faster than the spin window, a few percent of a core for slower I/O, none
 *    when idle. On one CPU it yields (sched_yield) between looks instead of spinning: a
 *    SCHED_IDLE thread that got the CPU would otherwise keep it for a whole time slice
 *    while the caller's thread, runnable, waits. FFS_NVMED_SPIN_US=-1 makes it spin
 *    without ever sleeping. Waking a sleeping poller at submission is one futex call.
 *    Under full CPU load a SCHED_IDLE poller notices completions late (milliseconds); the
 *    synchronous path is unaffected.
 *
 * Timeouts. A wait in ffs_reap() that sees no completion for 30 s fails with ETIMEDOUT
 * (controller hung or removed); the commands stay outstanding.
 *
 * Locking. A regular writer takes flock(LOCK_EX|LOCK_NB) on the device node, so a second
 * writer through this library is refused (the driver itself lets any number of processes
 * create queues on the same namespace).
 *
 * Environment (tests and tuning): FFS_NVMED_MAX_CMD_BYTES lowers the per-command transfer
 * limit below MDTS (to exercise splitting); FFS_NVMED_SPIN_US, FFS_NVMED_SLEEP_US,
 * FFS_NVMED_POLLER, FFS_NVMED_BOUNCE as above.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ffs_backend.h"
#include "nvmed_queue.h"

#define PAGE 4096u
#define ARENA_PAGES 512u        /* 2 MiB */
#define ARENA_MAX_PAGES 64u     /* allocations up to 256 KiB come from arenas */
#define MIN_MAX_TRANSFER (1u << 20)
#define REAP_TIMEOUT_NS (30ull * 1000000000ull)
#define BOUNCE_CLASSES 16
#define BOUNCE_KEEP (16u << 20)

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

/* A virtual range backed by driver DMA buffers, with the bus address of each page. */
struct dma_seg {
	uint32_t id;
	uint32_t pages;
};

struct dma_region {
	char *va;
	size_t len;
	uint32_t npages;
	uint64_t *page_dma;
	struct dma_seg *segs;
	uint32_t nsegs;
	/* arenas only: per page, the pages of the allocation starting there (0 otherwise),
	 * and whether the page is in use */
	uint16_t *run;
	uint8_t *used;
	uint32_t used_pages;
	int arena;
};

/* One ffs command in flight (its NVMe pieces point here through their context). */
struct op {
	uint64_t tag;
	int32_t result;
	uint32_t status;
	uint32_t remaining;
	uint32_t next_free;
	char *bounce;    /* DMA copy of a caller's non-DMA buffer, or NULL */
	char *user;      /* the caller's buffer (read: copied out at completion) */
	uint32_t bytes;
	int read;
};

struct nvmed_be {
	struct ffs_dev *dev;
	struct nvmed_dev d;
	struct nvmed_qpair q;
	int have_q;
	uint32_t shift;     /* log2(geo.lba_size / device LBA size) */
	uint32_t cmd_max;   /* bytes per NVMe read/write command */
	uint32_t max_pieces;

	struct op *ops;
	uint32_t nops, free_op;

	struct dma_region **regs; /* sorted by va */
	uint32_t nregs, cap_regs;

	/* bounce buffers kept for reuse, per power-of-two class of pages: a list linked
	 * through each free buffer's first 8 bytes */
	void *bounce_free[BOUNCE_CLASSES];
	uint64_t bounce_kept;
	int no_bounce;
	uint64_t bounces;

	/* poller */
	pthread_t poller;
	int poller_running;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	_Atomic int stop;
	_Atomic int sleeping;
	_Atomic uint32_t busy;      /* NVMe commands outstanding, published by the caller */
	_Atomic uint32_t cq_pos;    /* CQ head | phase << 31, published by the caller */
	_Atomic int notified;       /* a byte was written and no reap happened since */
	_Atomic int caller_polling; /* the caller's thread is spinning in reap */
	int64_t spin_ns, sleep_ns;
	int uniprocessor;           /* one online CPU: the caller's polling yields now and then */
	int idle_class;             /* the poller runs as SCHED_IDLE */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int64_t env_int(const char *name, int64_t dflt)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	char *end;
	long long x = strtoll(v, &end, 0);
	if (*end == 'k' || *end == 'K')
		x <<= 10;
	else if (*end == 'm' || *end == 'M')
		x <<= 20;
	return x;
}

static int nvmed_available(void)
{
	if (access("/sys/module/nvmed", F_OK) == 0)
		return 1;
	DIR *d = opendir("/dev");
	if (!d)
		return 0;
	struct dirent *e;
	int found = 0;
	while (!found && (e = readdir(d)) != NULL)
		found = strncmp(e->d_name, "nvmed", 5) == 0;
	closedir(d);
	return found;
}

/* ------------------------------------------------------------------ DMA memory */

static void region_unmap(struct nvmed_be *b, struct dma_region *r)
{
	if (r->va)
		munmap(r->va, r->len);
	for (uint32_t i = 0; i < r->nsegs; i++) {
		struct nvmed_buf_free bf = { .id = r->segs[i].id, .flags = 0 };
		ioctl(b->d.fd, NVMED_IOC_BUF_FREE, &bf);
	}
	free(r->segs);
	free(r->page_dma);
	free(r->run);
	free(r->used);
	free(r);
}

static int region_insert(struct nvmed_be *b, struct dma_region *r)
{
	if (b->nregs == b->cap_regs) {
		uint32_t ncap = b->cap_regs ? b->cap_regs * 2 : 16;
		struct dma_region **n = realloc(b->regs, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		b->regs = n;
		b->cap_regs = ncap;
	}
	uint32_t i = b->nregs;
	while (i > 0 && b->regs[i - 1]->va > r->va) {
		b->regs[i] = b->regs[i - 1];
		i--;
	}
	b->regs[i] = r;
	b->nregs++;
	return 0;
}

static void region_remove(struct nvmed_be *b, struct dma_region *r)
{
	for (uint32_t i = 0; i < b->nregs; i++) {
		if (b->regs[i] == r) {
			memmove(&b->regs[i], &b->regs[i + 1], (b->nregs - i - 1) * sizeof(*b->regs));
			b->nregs--;
			return;
		}
	}
}

/* The region holding address a, or NULL. */
static struct dma_region *region_find(struct nvmed_be *b, uint64_t a)
{
	uint32_t lo = 0, hi = b->nregs;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if ((uint64_t)(uintptr_t)b->regs[mid]->va <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	struct dma_region *r = b->regs[lo - 1];
	return a < (uint64_t)(uintptr_t)r->va + r->len ? r : NULL;
}

/* Maps npages of driver DMA memory at a virtual address aligned to align_pages. */
static struct dma_region *region_create(struct nvmed_be *b, uint32_t npages, uint32_t align_pages,
					int arena)
{
	struct ffs_dev *dev = b->dev;
	struct dma_region *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->npages = npages;
	r->len = (size_t)npages * PAGE;
	r->arena = arena;
	r->page_dma = calloc(npages, sizeof(*r->page_dma));
	uint32_t max_segs = npages;
	r->segs = calloc(max_segs, sizeof(*r->segs));
	if (arena) {
		r->run = calloc(npages, sizeof(*r->run));
		r->used = calloc(npages, 1);
	}
	if (!r->page_dma || !r->segs || (arena && (!r->run || !r->used))) {
		region_unmap(b, r);
		return NULL;
	}
	/* Reserve the virtual range (aligned), then map the DMA buffers over it. */
	size_t extra = (size_t)(align_pages > 1 ? align_pages - 1 : 0) * PAGE;
	char *res = mmap(NULL, r->len + extra, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			 -1, 0);
	if (res == MAP_FAILED) {
		ffs_set_error(dev, "nvmed: cannot reserve %zu bytes of address space: %s", r->len,
			      strerror(errno));
		region_unmap(b, r);
		return NULL;
	}
	size_t align = (size_t)(align_pages ? align_pages : 1) * PAGE;
	char *start = (char *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
	if (start > res)
		munmap(res, (size_t)(start - res));
	if (start + r->len < res + r->len + extra)
		munmap(start + r->len, (size_t)(res + r->len + extra - (start + r->len)));
	r->va = start;

	uint32_t max_piece = b->d.info.max_buffer_bytes / PAGE;
	uint32_t done = 0;
	while (done < npages) {
		uint32_t want = npages - done;
		if (want > max_piece)
			want = max_piece;
		struct nvmed_buf_alloc ba;
		memset(&ba, 0, sizeof(ba));
		ba.size = (uint64_t)want * PAGE;
		if (ioctl(b->d.fd, NVMED_IOC_BUF_ALLOC, &ba) != 0) {
			int e = errno;
			if (e == ENOMEM && want > 1) {
				/* no physically contiguous block that large: use smaller pieces */
				max_piece = want / 2;
				continue;
			}
			if (e == EDQUOT)
				ffs_set_error(dev, "nvmed: the DMA quota of this open file is exhausted "
					      "(%llu bytes; module parameter max_dma_mb)",
					      (unsigned long long)b->d.info.max_dma_bytes);
			else
				ffs_set_error(dev, "nvmed: DMA buffer allocation of %u bytes: %s",
					      want * PAGE, strerror(e));
			region_unmap(b, r);
			return NULL;
		}
		r->segs[r->nsegs].id = ba.id;
		r->segs[r->nsegs].pages = want;
		r->nsegs++;
		void *p = mmap(r->va + (size_t)done * PAGE, (size_t)want * PAGE, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, b->d.fd, (off_t)ba.offset);
		if (p == MAP_FAILED) {
			ffs_set_error(dev, "nvmed: mmap of a DMA buffer: %s", strerror(errno));
			region_unmap(b, r);
			return NULL;
		}
		for (uint32_t i = 0; i < want; i++)
			r->page_dma[done + i] = ba.dma_addr + (uint64_t)i * PAGE;
		done += want;
	}
	if (region_insert(b, r) != 0) {
		region_unmap(b, r);
		return NULL;
	}
	return r;
}

static void region_destroy(struct nvmed_be *b, struct dma_region *r)
{
	region_remove(b, r);
	region_unmap(b, r);
}

/* First run of n free pages starting at a multiple of align in an arena, or -1. */
static int arena_find(const struct dma_region *r, uint32_t n, uint32_t align)
{
	for (uint32_t s = 0; s + n <= r->npages; s += align) {
		uint32_t i = 0;
		while (i < n && !r->used[s + i])
			i++;
		if (i == n)
			return (int)s;
		/* skip past the used page */
		s = (s + i) / align * align;
	}
	return -1;
}

static void *nvmed_alloc(struct ffs_dev *dev, uint64_t size)
{
	struct nvmed_be *b = dev->priv;
	if (size == 0 || size > (uint64_t)UINT32_MAX * PAGE)
		return NULL;
	uint32_t npages = (uint32_t)((size + PAGE - 1) / PAGE);
	uint32_t align = dev->geo.lba_size > PAGE ? dev->geo.lba_size / PAGE : 1;
	if (npages <= ARENA_MAX_PAGES) {
		for (uint32_t i = 0; i < b->nregs; i++) {
			struct dma_region *r = b->regs[i];
			if (!r->arena || r->npages - r->used_pages < npages)
				continue;
			int s = arena_find(r, npages, align);
			if (s >= 0) {
				memset(r->used + s, 1, npages);
				r->run[s] = (uint16_t)npages;
				r->used_pages += npages;
				return r->va + (size_t)s * PAGE;
			}
		}
		struct dma_region *r = region_create(b, ARENA_PAGES, align, 1);
		if (r) {
			memset(r->used, 1, npages);
			r->run[0] = (uint16_t)npages;
			r->used_pages = npages;
			return r->va;
		}
		/* no 2 MiB arena (quota): try an exact-size region */
	}
	struct dma_region *r = region_create(b, npages, align, 0);
	return r ? r->va : NULL;
}

static void nvmed_free(struct ffs_dev *dev, void *p, uint64_t size)
{
	struct nvmed_be *b = dev->priv;
	(void)size; /* the region knows the size of every allocation */
	struct dma_region *r = region_find(b, (uint64_t)(uintptr_t)p);
	if (!r)
		return;
	if (!r->arena) {
		if ((char *)p == r->va)
			region_destroy(b, r);
		return;
	}
	uint32_t s = (uint32_t)(((char *)p - r->va) / PAGE);
	uint32_t n = r->run[s];
	if (n == 0)
		return;
	memset(r->used + s, 0, n);
	r->run[s] = 0;
	r->used_pages -= n;
	if (r->used_pages == 0) {
		/* keep one empty arena for the next small allocation */
		uint32_t empty = 0;
		for (uint32_t i = 0; i < b->nregs; i++)
			empty += b->regs[i]->arena && b->regs[i]->used_pages == 0;
		if (empty > 1)
			region_destroy(b, r);
	}
}

static uint32_t bounce_class(uint64_t bytes)
{
	uint32_t c = 0;
	while (((uint64_t)PAGE << c) < bytes)
		c++;
	return c;
}

/* A DMA buffer of at least `bytes` for a command whose own buffer is not DMA memory. */
static char *bounce_get(struct nvmed_be *b, uint64_t bytes)
{
	uint32_t c = bounce_class(bytes);
	if (c < BOUNCE_CLASSES && b->bounce_free[c]) {
		char *p = b->bounce_free[c];
		memcpy(&b->bounce_free[c], p, sizeof(void *));
		b->bounce_kept -= (uint64_t)PAGE << c;
		return p;
	}
	return nvmed_alloc(b->dev, (uint64_t)PAGE << c);
}

static void bounce_put(struct nvmed_be *b, char *p, uint64_t bytes)
{
	uint32_t c = bounce_class(bytes);
	uint64_t size = (uint64_t)PAGE << c;
	if (c >= BOUNCE_CLASSES || b->bounce_kept + size > BOUNCE_KEEP) {
		nvmed_free(b->dev, p, size);
		return;
	}
	memcpy(p, &b->bounce_free[c], sizeof(void *));
	b->bounce_free[c] = p;
	b->bounce_kept += size;
}

/* ------------------------------------------------------------------ poller */

static void publish(struct nvmed_be *b)
{
	atomic_store(&b->cq_pos, b->q.cq_head | (b->q.cq_phase << 31));
	atomic_store(&b->busy, b->q.outstanding);
}

static void poller_wake(struct nvmed_be *b)
{
	if (atomic_load(&b->sleeping)) {
		pthread_mutex_lock(&b->lock);
		pthread_cond_signal(&b->cv);
		pthread_mutex_unlock(&b->lock);
	}
}

static void nap(int64_t ns)
{
	struct timespec ts = { 0, ns };
	nanosleep(&ts, NULL);
}

/* Watches the CQ while commands are outstanding; returns when none are, or when the
 * caller's thread polls the CQ itself (the outer loop then blocks until it is done). */
static void poll_busy(struct nvmed_be *b)
{
	uint64_t last = now_ns();
	uint32_t last_pos = UINT32_MAX;
	unsigned int spins = 0;
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		if (atomic_load(&b->caller_polling))
			return;
		uint32_t pos = atomic_load(&b->cq_pos);
		uint32_t head = pos & 0x7fffffffu, phase = pos >> 31;
		if ((b->q.cq[head].status & 1u) == phase) {
			if (!atomic_exchange(&b->notified, 1))
				ffs_notify(b->dev);
		} else if (atomic_load(&b->busy) == 0) {
			return;
		}
		if (pos != last_pos) {
			last_pos = pos;
			last = now_ns();
		}
		if (b->spin_ns >= 0 && (++spins & 63) == 0 && (int64_t)(now_ns() - last) > b->spin_ns)
			nap(b->sleep_ns);
		else if (b->uniprocessor)
			sched_yield(); /* one CPU: whoever else is runnable goes first (we are SCHED_IDLE) */
		else
			cpu_relax();
	}
}

static void *poller(void *arg)
{
	struct nvmed_be *b = arg;
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* 1 us: short naps stay short */
	if (b->idle_class) {
		/* Run only on CPU time nothing else wants: never delay the caller's thread (on
		 * one CPU it would otherwise wait for the poller's slice to end). */
		struct sched_param sp = { .sched_priority = 0 };
		pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	}
	pthread_mutex_lock(&b->lock);
	while (!atomic_load(&b->stop)) {
		/* sleeping is set before busy/caller_polling are read, and the caller sets those
		 * before it reads sleeping (all sequentially consistent): no wakeup is lost */
		atomic_store(&b->sleeping, 1);
		if (atomic_load(&b->busy) == 0 || atomic_load(&b->caller_polling)) {
			pthread_cond_wait(&b->cv, &b->lock);
			atomic_store(&b->sleeping, 0);
			continue;
		}
		atomic_store(&b->sleeping, 0);
		pthread_mutex_unlock(&b->lock);
		poll_busy(b);
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* ------------------------------------------------------------------ open/close */

static void nvmed_be_close(struct ffs_dev *dev)
{
	struct nvmed_be *b = dev->priv;
	if (!b)
		return;
	if (b->poller_running) {
		pthread_mutex_lock(&b->lock);
		atomic_store(&b->stop, 1);
		pthread_cond_signal(&b->cv);
		pthread_mutex_unlock(&b->lock);
		pthread_join(b->poller, NULL);
	}
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cv);
	if (b->have_q)
		nvmed_qpair_destroy(&b->q);
	while (b->nregs > 0)
		region_destroy(b, b->regs[b->nregs - 1]);
	free(b->regs);
	free(b->ops);
	free(b);
	dev->priv = NULL;
	/* dev->fd (the driver's file, b->d.fd) is closed by the common layer: the driver
	 * then tears down whatever is left. */
}

static int open_fail(struct ffs_dev *dev, int rc)
{
	nvmed_be_close(dev);
	return rc;
}

static int nvmed_be_open(struct ffs_dev *dev, const char *path, uint64_t create_size)
{
	(void)create_size;
	struct stat st;
	if (stat(path, &st) != 0) {
		int e = errno;
		ffs_set_error(dev, e == ENOENT ? "%s: no such file or device (is the nvmed driver "
				     "bound to the controller?)" : "%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISCHR(st.st_mode)) {
		ffs_set_error(dev, "%s: not an nvmed character device (/dev/nvmedN)", path);
		return -EINVAL;
	}
	struct nvmed_be *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->dev = dev;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cv, NULL);
	dev->priv = b;
	int rc = nvmed_open(&b->d, path);
	if (rc) {
		if (rc == -ENOTTY || rc == -EINVAL)
			ffs_set_error(dev, "%s: not an nvmed device (NVMED_IOC_INFO: %s)", path,
				      strerror(-rc));
		else if (rc == -EPERM || rc == -EACCES)
			ffs_set_error(dev, "%s: %s (nvmed needs CAP_SYS_RAWIO: run as root)", path,
				      strerror(-rc));
		else if (rc == -EPROTO)
			ffs_set_error(dev, "%s: the nvmed driver speaks another ABI version than "
				      "this library (%u): rebuild one of them", path, NVMED_ABI_VERSION);
		else
			ffs_set_error(dev, "%s: %s", path, strerror(-rc));
		return open_fail(dev, rc);
	}
	dev->fd = b->d.fd;
	int ro = (dev->open_flags & FFS_OPEN_READONLY) != 0;
	if (!ro && !(dev->open_flags & FFS_OPEN_NOLOCK) && flock(dev->fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		ffs_set_error(dev, "%s is locked by another writer (%s)", path,
			      e == EWOULDBLOCK ? "flock held" : strerror(e));
		return open_fail(dev, e == EWOULDBLOCK ? -EWOULDBLOCK : -e);
	}

	const struct nvmed_info *in = &b->d.info;
	struct ffs_geometry *g = &dev->geo;
	uint32_t lbs = in->lba_size;
	g->lba_size = lbs < PAGE ? PAGE : lbs;
	while ((lbs << b->shift) < g->lba_size)
		b->shift++;
	g->capacity = in->capacity_lbas * lbs;
	g->capacity -= g->capacity % g->lba_size;
	g->dio_align = lbs;
	g->volatile_cache = (in->flags & NVMED_INFO_VWC) ? 1 : 0;
	g->atomic_write = in->awupf_lbas * lbs;
	g->flags |= FFS_GEO_BLOCKDEV | FFS_GEO_DIRECT;
	if (in->flags & NVMED_INFO_DSM)
		g->flags |= FFS_GEO_TRIM;
	if (ro)
		g->flags |= FFS_GEO_READONLY;
	if (g->capacity == 0) {
		ffs_set_error(dev, "%s: capacity is zero", path);
		return open_fail(dev, -EINVAL);
	}

	/* Per NVMe command: MDTS (as the driver reports it), at most 65536 blocks. */
	uint64_t cmd_max = in->max_transfer;
	int64_t lim = env_int("FFS_NVMED_MAX_CMD_BYTES", 0);
	if (lim > 0 && (uint64_t)lim < cmd_max)
		cmd_max = (uint64_t)lim;
	if (cmd_max > (uint64_t)NVME_RW_MAX_BLOCKS * lbs)
		cmd_max = (uint64_t)NVME_RW_MAX_BLOCKS * lbs;
	cmd_max -= cmd_max % g->lba_size;
	if (cmd_max == 0) {
		ffs_set_error(dev, "%s: the controller's maximum transfer (%u bytes) is below one "
			      "%u-byte block", path, in->max_transfer, g->lba_size);
		return open_fail(dev, -EINVAL);
	}
	b->cmd_max = (uint32_t)cmd_max;
	/* What callers may submit in one command: at least 1 MiB; larger ones are split. */
	g->max_transfer = b->cmd_max > MIN_MAX_TRANSFER ? b->cmd_max : MIN_MAX_TRANSFER;
	b->max_pieces = (g->max_transfer + b->cmd_max - 1) / b->cmd_max;
	/* SQ entries: queue_depth single-piece commands, or fewer commands with more pieces;
	 * one big command always fits an empty queue (entries - 1 >= max_pieces). */
	uint32_t limit = in->queue_entries_limit;
	if (limit < 2) {
		ffs_set_error(dev, "%s: the controller allows queues of %u entries", path, limit);
		return open_fail(dev, -EINVAL);
	}
	if (b->max_pieces > limit - 1) {
		b->max_pieces = limit - 1;
		g->max_transfer = b->max_pieces * b->cmd_max;
	}
	uint32_t entries = g->queue_depth + b->max_pieces;
	if (entries > limit) {
		entries = limit;
		g->queue_depth = entries - b->max_pieces; /* >= 1: limit - 1 >= max_pieces */
	}
	rc = nvmed_qpair_create_ex(&b->d, entries, b->cmd_max, &b->q);
	if (rc) {
		if (rc == -EMFILE)
			ffs_set_error(dev, "%s: this process holds the most queues the driver allows "
				      "per open file (max_queues)", path);
		else if (rc == -ENOSPC)
			ffs_set_error(dev, "%s: the controller has no free I/O queue left (other "
				      "processes hold them all)", path);
		else if (rc == -EDQUOT || rc == -ENOMEM)
			ffs_set_error(dev, "%s: no DMA memory for a queue of %u entries: %s", path,
				      entries, strerror(-rc));
		else
			ffs_set_error(dev, "%s: creating a queue pair of %u entries: %s", path, entries,
				      strerror(-rc));
		return open_fail(dev, rc);
	}
	b->have_q = 1;
	if (b->q.entries - 1 < b->max_pieces) {
		ffs_set_error(dev, "%s: the driver granted a queue of %u entries only", path,
			      b->q.entries);
		return open_fail(dev, -ENOSPC);
	}
	if (g->queue_depth > b->q.entries - b->max_pieces)
		g->queue_depth = b->q.entries - b->max_pieces;
	b->nops = g->queue_depth;
	b->ops = calloc(b->nops, sizeof(*b->ops));
	if (!b->ops)
		return open_fail(dev, -ENOMEM);
	for (uint32_t i = 0; i < b->nops; i++)
		b->ops[i].next_free = i + 1;
	b->free_op = 0;

	b->no_bounce = env_int("FFS_NVMED_BOUNCE", 1) == 0;
	b->uniprocessor = sysconf(_SC_NPROCESSORS_ONLN) <= 1;
	{
		const char *pol = getenv("FFS_NVMED_POLLER");
		b->idle_class = !(pol && strcmp(pol, "normal") == 0);
	}
	b->spin_ns = env_int("FFS_NVMED_SPIN_US", 50) * 1000;
	b->sleep_ns = env_int("FFS_NVMED_SLEEP_US", 20) * 1000;
	if (b->sleep_ns <= 0)
		b->sleep_ns = 1000;
	if (b->sleep_ns > 999999999)
		b->sleep_ns = 999999999;
	publish(b);
	if (pthread_create(&b->poller, NULL, poller, b) != 0) {
		ffs_set_error(dev, "nvmed: cannot start the completion poller thread");
		return open_fail(dev, -EAGAIN);
	}
	b->poller_running = 1;
	return 0;
}

/* ------------------------------------------------------------------ I/O */

static int nvmed_be_queue(struct ffs_dev *dev, const struct ffs_cmd *c)
{
	struct nvmed_be *b = dev->priv;
	struct nvmed_qpair *q = &b->q;
	if ((c->flags & FFS_CMD_BARRIER) && dev->inflight > 0)
		return -EAGAIN;
	uint64_t bytes = (uint64_t)c->nblocks * dev->geo.lba_size;
	uint32_t pieces = 1;
	if (c->opcode == FFS_OP_READ || c->opcode == FFS_OP_WRITE)
		pieces = (uint32_t)((bytes + b->cmd_max - 1) / b->cmd_max);
	if (nvmed_qpair_room(q) < pieces || b->free_op >= b->nops)
		return -EAGAIN;
	uint32_t oi = b->free_op;
	struct op *op = &b->ops[oi];
	void *ctx = (void *)(uintptr_t)oi;
	int rc = 0;
	uint32_t queued = 0;
	op->bounce = NULL;
	switch (c->opcode) {
	case FFS_OP_READ:
	case FFS_OP_WRITE: {
		uint64_t addr = c->buf;
		struct dma_region *r = region_find(b, addr);
		if (!r || addr + bytes > (uint64_t)(uintptr_t)r->va + r->len) {
			if (b->no_bounce) {
				ffs_set_error(dev, "nvmed: %s buffer 0x%llx (%llu bytes) is not DMA memory "
					      "from ffs_alloc() of this device", c->opcode == FFS_OP_READ ?
					      "read" : "write", (unsigned long long)c->buf,
					      (unsigned long long)bytes);
				return -EFAULT;
			}
			op->bounce = bounce_get(b, bytes);
			if (!op->bounce) {
				if (dev->inflight > 0)
					return -EAGAIN; /* completions will return bounce memory */
				char why[sizeof(dev->err)];
				snprintf(why, sizeof(why), "%s", dev->err);
				ffs_set_error(dev, "nvmed: no DMA memory to bounce a %llu-byte %s from a "
					      "buffer that is not from ffs_alloc(): %.150s",
					      (unsigned long long)bytes,
					      c->opcode == FFS_OP_READ ? "read" : "write", why);
				return -ENOMEM;
			}
			b->bounces++;
			op->user = (char *)(uintptr_t)c->buf;
			op->bytes = (uint32_t)bytes;
			op->read = c->opcode == FFS_OP_READ;
			if (!op->read)
				memcpy(op->bounce, op->user, bytes);
			addr = (uint64_t)(uintptr_t)op->bounce;
			r = region_find(b, addr);
		}
		uint32_t page = (uint32_t)((addr - (uint64_t)(uintptr_t)r->va) / PAGE);
		uint32_t fua = (c->opcode == FFS_OP_WRITE && (c->flags & FFS_CMD_FUA)) ? NVME_RW_FUA : 0;
		uint64_t slba = c->lba << b->shift;
		for (uint64_t done = 0; done < bytes; queued++) {
			uint64_t n = bytes - done < b->cmd_max ? bytes - done : b->cmd_max;
			uint32_t nlb = (uint32_t)(n >> b->d.info.lba_shift);
			rc = nvmed_prep_rw_pages(q, c->opcode == FFS_OP_WRITE, slba, nlb,
						 &r->page_dma[page + done / PAGE], 0, fua, ctx);
			if (rc < 0)
				break;
			slba += nlb;
			done += n;
		}
		break;
	}
	case FFS_OP_FLUSH:
		rc = nvmed_prep_flush(q, ctx);
		queued = rc >= 0;
		break;
	case FFS_OP_TRIM: {
		struct nvme_dsm_range ranges[16];
		uint64_t slba = c->lba << b->shift, left = (uint64_t)c->nblocks << b->shift;
		uint32_t nr = 0;
		while (left > 0 && nr < 16) {
			uint32_t n = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
			ranges[nr].cattr = 0;
			ranges[nr].nlb = n;
			ranges[nr].slba = slba;
			nr++;
			slba += n;
			left -= n;
		}
		rc = nvmed_prep_dsm(q, ranges, nr, NVME_DSM_ATTR_DEALLOCATE, ctx);
		queued = rc >= 0;
		break;
	}
	default:
		return -EINVAL;
	}
	if (queued == 0) {
		if (op->bounce) {
			bounce_put(b, op->bounce, op->bytes);
			op->bounce = NULL;
		}
		ffs_set_error(dev, "nvmed: preparing the command: %s", strerror(-rc));
		return rc < 0 ? rc : -EINVAL;
	}
	b->free_op = op->next_free;
	op->tag = c->tag;
	op->result = rc < 0 ? rc : 0; /* a piece that could not be prepared fails the command */
	op->status = 0;
	op->remaining = queued;
	return 0;
}

static int nvmed_be_kick(struct ffs_dev *dev)
{
	struct nvmed_be *b = dev->priv;
	nvmed_ring(&b->q);
	atomic_store(&b->busy, b->q.outstanding);
	if (!atomic_load(&b->caller_polling))
		poller_wake(b);
	return 0;
}

/* Moves NVMe completions into ffs completions; returns how many ffs commands finished. */
static uint32_t harvest(struct nvmed_be *b, struct ffs_cqe *out, uint32_t room)
{
	struct nvmed_cpl cpl[64];
	uint32_t got = 0;
	while (got < room) {
		/* each NVMe completion finishes at most one ffs command: never overfill out */
		uint32_t want = room - got < 64 ? room - got : 64;
		int n = nvmed_reap(&b->q, cpl, (int)want);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			uint32_t oi = (uint32_t)(uintptr_t)cpl[i].ctx;
			if (oi >= b->nops)
				continue;
			struct op *op = &b->ops[oi];
			if (cpl[i].status && op->result == 0) {
				op->result = nvme_status_errno(cpl[i].status);
				op->status = cpl[i].status;
			}
			if (--op->remaining == 0) {
				if (op->bounce) {
					if (op->read && op->result == 0)
						memcpy(op->user, op->bounce, op->bytes);
					bounce_put(b, op->bounce, op->bytes);
					op->bounce = NULL;
				}
				out[got].tag = op->tag;
				out[got].result = op->result;
				out[got].status = op->status;
				got++;
				op->next_free = b->free_op;
				b->free_op = oi;
			}
		}
	}
	return got;
}

static int nvmed_be_reap(struct ffs_dev *dev, struct ffs_cqe *out, uint32_t max, uint32_t min_wait)
{
	struct nvmed_be *b = dev->priv;
	uint32_t got = harvest(b, out, max);
	if (got < min_wait && got < max) {
		uint64_t last = now_ns();
		unsigned int spins = 0;
		atomic_store(&b->caller_polling, 1);
		while (got < min_wait && got < max) {
			uint32_t n = harvest(b, out + got, max - got);
			if (n) {
				got += n;
				last = now_ns();
				continue;
			}
			if (b->q.outstanding == 0)
				break; /* nothing left to wait for */
			if ((++spins & 4095) == 0 && now_ns() - last > REAP_TIMEOUT_NS) {
				atomic_store(&b->caller_polling, 0);
				publish(b);
				ffs_set_error(dev, "nvmed: no completion for %llu s with %u commands "
					      "outstanding (controller hung or removed?)",
					      REAP_TIMEOUT_NS / 1000000000ull, b->q.outstanding);
				return -ETIMEDOUT;
			}
			if (b->uniprocessor && (spins & 255) == 0)
				sched_yield(); /* let other processes have the only CPU now and then */
			else
				cpu_relax();
		}
		atomic_store(&b->caller_polling, 0);
		publish(b);
		atomic_store(&b->notified, 0);
		if (b->q.outstanding > 0)
			poller_wake(b); /* it blocked while we polled; commands are still out */
		return (int)got;
	}
	publish(b);
	atomic_store(&b->notified, 0);
	return (int)got;
}

const struct ffs_backend ffs_backend_nvmed = {
	.name = "nvmed",
	.available = nvmed_available,
	.open = nvmed_be_open,
	.queue = nvmed_be_queue,
	.kick = nvmed_be_kick,
	.reap = nvmed_be_reap,
	.alloc = nvmed_alloc,
	.free = nvmed_free,
	.close = nvmed_be_close,
};
