/*
 * uring: io_uring through raw system calls and <linux/io_uring.h> (no liburing).
 *
 * The ring is sized to the queue depth; the common layer never puts more commands in
 * flight than that, and the completion ring is twice as large, so it cannot overflow.
 * An eventfd registered with the ring is watched by one helper thread that turns each
 * completion burst into a byte on the notify pipe, which Node's event loop can watch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ffs_backend.h"

struct uring {
	int ring_fd;
	int event_fd;
	struct io_uring_params p;
	void *sq_map, *cq_map;
	size_t sq_map_len, cq_map_len;
	struct io_uring_sqe *sqes;
	size_t sqes_len;
	_Atomic uint32_t *sq_head, *sq_tail, *cq_head, *cq_tail;
	uint32_t *sq_array, sq_mask, cq_mask, sq_entries;
	struct io_uring_cqe *cqes;
	uint32_t local_tail; /* SQEs filled, not yet published */
	uint32_t unsubmitted; /* published, not yet consumed by io_uring_enter */
	/* One slot per command in flight: the caller's tag and the bytes it must move, so a
	 * short transfer becomes an error instead of passing silently. */
	struct slot { uint64_t tag; uint32_t expect; uint32_t next_free; } *slots;
	uint32_t free_slot;
	pthread_t notifier;
	int notifier_running;
	_Atomic int stop;
};

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags)
{
	return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned nr)
{
	return (int)syscall(__NR_io_uring_register, fd, op, arg, nr);
}

static int uring_available(void)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	int fd = sys_setup(2, &p);
	if (fd < 0)
		return 0;
	close(fd);
	/* IORING_OP_READ/WRITE need 5.6; FEAT_NODROP arrived with it. */
	return (p.features & IORING_FEAT_NODROP) ? 1 : 0;
}

static void *notifier(void *arg)
{
	struct ffs_dev *dev = arg;
	struct uring *u = dev->priv;
	for (;;) {
		uint64_t v;
		ssize_t n = read(u->event_fd, &v, sizeof(v));
		if (atomic_load(&u->stop))
			break;
		if (n == (ssize_t)sizeof(v))
			ffs_notify(dev);
		else if (n < 0 && errno != EINTR && errno != EAGAIN)
			break;
	}
	return NULL;
}

static void uring_close(struct ffs_dev *dev)
{
	struct uring *u = dev->priv;
	if (!u)
		return;
	if (u->notifier_running) {
		uint64_t one = 1;
		atomic_store(&u->stop, 1);
		ssize_t r = write(u->event_fd, &one, sizeof(one));
		(void)r;
		pthread_join(u->notifier, NULL);
	}
	if (u->sqes)
		munmap(u->sqes, u->sqes_len);
	if (u->cq_map && u->cq_map != u->sq_map)
		munmap(u->cq_map, u->cq_map_len);
	if (u->sq_map)
		munmap(u->sq_map, u->sq_map_len);
	free(u->slots);
	if (u->ring_fd >= 0)
		close(u->ring_fd);
	if (u->event_fd >= 0)
		close(u->event_fd);
	free(u);
	dev->priv = NULL;
}

static int setup_ring(struct ffs_dev *dev, struct uring *u)
{
	uint32_t qd = dev->geo.queue_depth;
	memset(&u->p, 0, sizeof(u->p));
	u->p.flags = IORING_SETUP_CQSIZE;
	u->p.cq_entries = qd * 2;
	u->ring_fd = sys_setup(qd, &u->p);
	if (u->ring_fd < 0) {
		ffs_set_error(dev, "io_uring_setup(%u): %s", qd, strerror(errno));
		return -errno;
	}
	struct io_uring_params *p = &u->p;
	u->sq_map_len = p->sq_off.array + p->sq_entries * sizeof(uint32_t);
	u->cq_map_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
	if (p->features & IORING_FEAT_SINGLE_MMAP) {
		if (u->cq_map_len > u->sq_map_len)
			u->sq_map_len = u->cq_map_len;
		u->cq_map_len = u->sq_map_len;
	}
	u->sq_map = mmap(NULL, u->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 u->ring_fd, IORING_OFF_SQ_RING);
	if (u->sq_map == MAP_FAILED) {
		u->sq_map = NULL;
		ffs_set_error(dev, "io_uring: mmap of the SQ ring: %s", strerror(errno));
		return -errno;
	}
	if (p->features & IORING_FEAT_SINGLE_MMAP) {
		u->cq_map = u->sq_map;
	} else {
		u->cq_map = mmap(NULL, u->cq_map_len, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_POPULATE, u->ring_fd, IORING_OFF_CQ_RING);
		if (u->cq_map == MAP_FAILED) {
			u->cq_map = NULL;
			ffs_set_error(dev, "io_uring: mmap of the CQ ring: %s", strerror(errno));
			return -errno;
		}
	}
	u->sqes_len = p->sq_entries * sizeof(struct io_uring_sqe);
	u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       u->ring_fd, IORING_OFF_SQES);
	if (u->sqes == MAP_FAILED) {
		u->sqes = NULL;
		ffs_set_error(dev, "io_uring: mmap of the SQEs: %s", strerror(errno));
		return -errno;
	}
	char *sq = u->sq_map, *cq = u->cq_map;
	u->sq_head = (_Atomic uint32_t *)(sq + p->sq_off.head);
	u->sq_tail = (_Atomic uint32_t *)(sq + p->sq_off.tail);
	u->sq_mask = *(uint32_t *)(sq + p->sq_off.ring_mask);
	u->sq_entries = *(uint32_t *)(sq + p->sq_off.ring_entries);
	u->sq_array = (uint32_t *)(sq + p->sq_off.array);
	u->cq_head = (_Atomic uint32_t *)(cq + p->cq_off.head);
	u->cq_tail = (_Atomic uint32_t *)(cq + p->cq_off.tail);
	u->cq_mask = *(uint32_t *)(cq + p->cq_off.ring_mask);
	u->cqes = (struct io_uring_cqe *)(cq + p->cq_off.cqes);
	u->local_tail = atomic_load_explicit(u->sq_tail, memory_order_relaxed);
	/* The common layer must never exceed what the ring holds. */
	if (dev->geo.queue_depth > u->sq_entries)
		dev->geo.queue_depth = u->sq_entries;
	u->slots = calloc(dev->geo.queue_depth, sizeof(*u->slots));
	if (!u->slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < dev->geo.queue_depth; i++)
		u->slots[i].next_free = i + 1;
	u->free_slot = 0;
	return 0;
}

static int uring_open(struct ffs_dev *dev, const char *path, uint64_t create_size)
{
	int rc = ffs_open_file(dev, path, create_size);
	if (rc)
		return rc;
	struct uring *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->ring_fd = -1;
	u->event_fd = -1;
	dev->priv = u;
	rc = setup_ring(dev, u);
	if (rc)
		goto fail;
	u->event_fd = eventfd(0, EFD_CLOEXEC);
	if (u->event_fd < 0) {
		rc = -errno;
		ffs_set_error(dev, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (sys_register(u->ring_fd, IORING_REGISTER_EVENTFD, &u->event_fd, 1) != 0) {
		rc = -errno;
		ffs_set_error(dev, "io_uring_register(EVENTFD): %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&u->notifier, NULL, notifier, dev) != 0) {
		rc = -EAGAIN;
		ffs_set_error(dev, "io_uring: cannot start the notifier thread");
		goto fail;
	}
	u->notifier_running = 1;
	return 0;
fail:
	uring_close(dev);
	return rc;
}

static int uring_queue(struct ffs_dev *dev, const struct ffs_cmd *c)
{
	struct uring *u = dev->priv;
	uint32_t head = atomic_load_explicit(u->sq_head, memory_order_acquire);
	if (u->local_tail - head >= u->sq_entries || u->free_slot >= dev->geo.queue_depth)
		return -EAGAIN;
	if (c->opcode == FFS_OP_TRIM) {
		/* io_uring (before 6.12) has no discard: do it now, complete through a NOP. */
		int rc = ffs_trim_sync(dev, c->lba, c->nblocks);
		if (rc)
			return rc;
	}
	uint32_t idx = u->local_tail & u->sq_mask;
	struct io_uring_sqe *sqe = &u->sqes[idx];
	memset(sqe, 0, sizeof(*sqe));
	uint32_t lbs = dev->geo.lba_size;
	uint32_t slot = u->free_slot;
	switch (c->opcode) {
	case FFS_OP_READ:
	case FFS_OP_WRITE:
		sqe->opcode = c->opcode == FFS_OP_READ ? IORING_OP_READ : IORING_OP_WRITE;
		sqe->fd = dev->fd;
		sqe->addr = c->buf;
		sqe->len = c->nblocks * lbs;
		sqe->off = c->lba * lbs;
		if (c->opcode == FFS_OP_WRITE && (c->flags & FFS_CMD_FUA))
			sqe->rw_flags = RWF_DSYNC;
		break;
	case FFS_OP_FLUSH:
		sqe->opcode = IORING_OP_FSYNC;
		sqe->fd = dev->fd;
		sqe->fsync_flags = IORING_FSYNC_DATASYNC;
		break;
	case FFS_OP_TRIM:
		sqe->opcode = IORING_OP_NOP;
		break;
	default:
		return -EINVAL;
	}
	if (c->flags & FFS_CMD_BARRIER)
		sqe->flags |= IOSQE_IO_DRAIN;
	u->free_slot = u->slots[slot].next_free;
	u->slots[slot].tag = c->tag;
	u->slots[slot].expect = sqe->opcode == IORING_OP_READ || sqe->opcode == IORING_OP_WRITE
				? sqe->len : 0;
	sqe->user_data = slot;
	u->sq_array[idx] = idx;
	u->local_tail++;
	return 0;
}

static int uring_kick(struct ffs_dev *dev)
{
	struct uring *u = dev->priv;
	uint32_t published = atomic_load_explicit(u->sq_tail, memory_order_relaxed);
	u->unsubmitted += u->local_tail - published;
	atomic_store_explicit(u->sq_tail, u->local_tail, memory_order_release);
	while (u->unsubmitted > 0) {
		int n = sys_enter(u->ring_fd, u->unsubmitted, 0, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EBUSY)
				return 0; /* retried at the next kick or reap */
			ffs_set_error(dev, "io_uring_enter(submit %u): %s", u->unsubmitted,
				      strerror(errno));
			return -errno;
		}
		u->unsubmitted -= (uint32_t)n;
		if (n == 0)
			break;
	}
	return 0;
}

static int uring_reap(struct ffs_dev *dev, struct ffs_cqe *out, uint32_t max, uint32_t min_wait)
{
	struct uring *u = dev->priv;
	uint32_t got = 0;
	for (;;) {
		uint32_t head = atomic_load_explicit(u->cq_head, memory_order_relaxed);
		uint32_t tail = atomic_load_explicit(u->cq_tail, memory_order_acquire);
		while (head != tail && got < max) {
			struct io_uring_cqe *cqe = &u->cqes[head & u->cq_mask];
			struct slot *s = &u->slots[cqe->user_data];
			out[got].tag = s->tag;
			if (cqe->res < 0)
				out[got].result = cqe->res;
			else if ((uint32_t)cqe->res != s->expect)
				out[got].result = -EIO; /* short transfer */
			else
				out[got].result = 0;
			out[got].status = 0;
			s->next_free = u->free_slot;
			u->free_slot = (uint32_t)cqe->user_data;
			got++;
			head++;
		}
		atomic_store_explicit(u->cq_head, head, memory_order_release);
		if (got >= min_wait || got >= max)
			return (int)got;
		unsigned flags = IORING_ENTER_GETEVENTS;
		int n = sys_enter(u->ring_fd, u->unsubmitted, min_wait - got, flags);
		if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY)
			return -errno;
		if (n > 0)
			u->unsubmitted -= (uint32_t)n;
	}
}

const struct ffs_backend ffs_backend_uring = {
	.name = "uring",
	.available = uring_available,
	.open = uring_open,
	.queue = uring_queue,
	.kick = uring_kick,
	.reap = uring_reap,
	.alloc = ffs_alloc_aligned,
	.free = ffs_free_aligned,
	.close = uring_close,
};
