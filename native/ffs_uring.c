/*
 * The io_uring ring shared by the uring and uring-cmd backends (see ffs_uring.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ffs_uring.h"

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

int ffs_ring_probe(uint32_t setup_flags, uint32_t need_features)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = setup_flags;
	int fd = sys_setup(2, &p);
	if (fd < 0)
		return 0;
	close(fd);
	return (p.features & need_features) == need_features ? 1 : 0;
}

static void *notifier(void *arg)
{
	struct ffs_ring *r = arg;
	for (;;) {
		uint64_t v;
		ssize_t n = read(r->event_fd, &v, sizeof(v));
		if (atomic_load(&r->stop))
			break;
		if (n == (ssize_t)sizeof(v))
			ffs_notify(r->dev);
		else if (n < 0 && errno != EINTR && errno != EAGAIN)
			break;
	}
	return NULL;
}

void ffs_ring_exit(struct ffs_ring *r)
{
	if (r->notifier_running) {
		uint64_t one = 1;
		atomic_store(&r->stop, 1);
		ssize_t n = write(r->event_fd, &one, sizeof(one));
		(void)n;
		pthread_join(r->notifier, NULL);
		r->notifier_running = 0;
	}
	if (r->sqes)
		munmap(r->sqes, r->sqes_len);
	if (r->cq_map && r->cq_map != r->sq_map)
		munmap(r->cq_map, r->cq_map_len);
	if (r->sq_map)
		munmap(r->sq_map, r->sq_map_len);
	r->sqes = NULL;
	r->sq_map = r->cq_map = NULL;
	free(r->slots);
	r->slots = NULL;
	if (r->fd >= 0)
		close(r->fd);
	if (r->event_fd >= 0)
		close(r->event_fd);
	r->fd = r->event_fd = -1;
}

static int map_ring(struct ffs_dev *dev, struct ffs_ring *r)
{
	struct io_uring_params *p = &r->p;
	r->sq_map_len = p->sq_off.array + p->sq_entries * sizeof(uint32_t);
	r->cq_map_len = p->cq_off.cqes + (size_t)p->cq_entries * r->cqe_size;
	if (p->features & IORING_FEAT_SINGLE_MMAP) {
		if (r->cq_map_len > r->sq_map_len)
			r->sq_map_len = r->cq_map_len;
		r->cq_map_len = r->sq_map_len;
	}
	r->sq_map = mmap(NULL, r->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 r->fd, IORING_OFF_SQ_RING);
	if (r->sq_map == MAP_FAILED) {
		r->sq_map = NULL;
		ffs_set_error(dev, "io_uring: mmap of the SQ ring: %s", strerror(errno));
		return -errno;
	}
	if (p->features & IORING_FEAT_SINGLE_MMAP) {
		r->cq_map = r->sq_map;
	} else {
		r->cq_map = mmap(NULL, r->cq_map_len, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
		if (r->cq_map == MAP_FAILED) {
			r->cq_map = NULL;
			ffs_set_error(dev, "io_uring: mmap of the CQ ring: %s", strerror(errno));
			return -errno;
		}
	}
	r->sqes_len = (size_t)p->sq_entries * r->sqe_size;
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED) {
		r->sqes = NULL;
		ffs_set_error(dev, "io_uring: mmap of the SQEs: %s", strerror(errno));
		return -errno;
	}
	char *sq = r->sq_map, *cq = r->cq_map;
	r->sq_head = (_Atomic uint32_t *)(sq + p->sq_off.head);
	r->sq_tail = (_Atomic uint32_t *)(sq + p->sq_off.tail);
	r->sq_mask = *(uint32_t *)(sq + p->sq_off.ring_mask);
	r->sq_entries = *(uint32_t *)(sq + p->sq_off.ring_entries);
	r->sq_array = (uint32_t *)(sq + p->sq_off.array);
	r->cq_head = (_Atomic uint32_t *)(cq + p->cq_off.head);
	r->cq_tail = (_Atomic uint32_t *)(cq + p->cq_off.tail);
	r->cq_mask = *(uint32_t *)(cq + p->cq_off.ring_mask);
	r->cqes = cq + p->cq_off.cqes;
	r->local_tail = atomic_load_explicit(r->sq_tail, memory_order_relaxed);
	return 0;
}

int ffs_ring_init(struct ffs_dev *dev, struct ffs_ring *r, uint32_t setup_flags)
{
	uint32_t qd = dev->geo.queue_depth;
	r->dev = dev;
	r->fd = -1;
	r->event_fd = -1;
	r->sqe_size = (setup_flags & IORING_SETUP_SQE128) ? 128 : 64;
	r->cqe_size = (setup_flags & IORING_SETUP_CQE32) ? 32 : 16;
	memset(&r->p, 0, sizeof(r->p));
	r->p.flags = setup_flags | IORING_SETUP_CQSIZE;
	r->p.cq_entries = qd * 2;
	r->fd = sys_setup(qd, &r->p);
	if (r->fd < 0) {
		int e = errno;
		ffs_set_error(dev, "io_uring_setup(%u, flags 0x%x): %s", qd, setup_flags, strerror(e));
		return -e;
	}
	int rc = map_ring(dev, r);
	if (rc)
		return rc;
	/* The common layer must never exceed what the ring holds. */
	if (dev->geo.queue_depth > r->sq_entries)
		dev->geo.queue_depth = r->sq_entries;
	r->nslots = dev->geo.queue_depth;
	r->slots = calloc(r->nslots, sizeof(*r->slots));
	if (!r->slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nslots; i++)
		r->slots[i].next_free = i + 1;
	r->free_slot = 0;
	r->event_fd = eventfd(0, EFD_CLOEXEC);
	if (r->event_fd < 0) {
		int e = errno;
		ffs_set_error(dev, "eventfd: %s", strerror(e));
		return -e;
	}
	if (sys_register(r->fd, IORING_REGISTER_EVENTFD, &r->event_fd, 1) != 0) {
		int e = errno;
		ffs_set_error(dev, "io_uring_register(EVENTFD): %s", strerror(e));
		return -e;
	}
	if (pthread_create(&r->notifier, NULL, notifier, r) != 0) {
		ffs_set_error(dev, "io_uring: cannot start the notifier thread");
		return -EAGAIN;
	}
	r->notifier_running = 1;
	return 0;
}

struct io_uring_sqe *ffs_ring_get_sqe(struct ffs_ring *r, uint32_t *slot)
{
	uint32_t head = atomic_load_explicit(r->sq_head, memory_order_acquire);
	if (r->local_tail - head >= r->sq_entries || r->free_slot >= r->nslots)
		return NULL;
	struct io_uring_sqe *sqe =
		(struct io_uring_sqe *)(r->sqes + (size_t)(r->local_tail & r->sq_mask) * r->sqe_size);
	memset(sqe, 0, r->sqe_size);
	*slot = r->free_slot;
	return sqe;
}

void ffs_ring_push(struct ffs_ring *r, struct io_uring_sqe *sqe, uint32_t slot, uint64_t tag,
		   uint32_t expect)
{
	uint32_t idx = r->local_tail & r->sq_mask;
	r->free_slot = r->slots[slot].next_free;
	r->slots[slot].tag = tag;
	r->slots[slot].expect = expect;
	sqe->user_data = slot;
	r->sq_array[idx] = idx;
	r->local_tail++;
}

int ffs_ring_kick(struct ffs_dev *dev, struct ffs_ring *r)
{
	uint32_t published = atomic_load_explicit(r->sq_tail, memory_order_relaxed);
	r->unsubmitted += r->local_tail - published;
	atomic_store_explicit(r->sq_tail, r->local_tail, memory_order_release);
	while (r->unsubmitted > 0) {
		int n = sys_enter(r->fd, r->unsubmitted, 0, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EBUSY)
				return 0; /* retried at the next kick or reap */
			ffs_set_error(dev, "io_uring_enter(submit %u): %s", r->unsubmitted,
				      strerror(errno));
			return -errno;
		}
		r->unsubmitted -= (uint32_t)n;
		if (n == 0)
			break;
	}
	return 0;
}

int ffs_ring_reap(struct ffs_dev *dev, struct ffs_ring *r, struct ffs_cqe *out, uint32_t max,
		  uint32_t min_wait, ffs_ring_decode_fn decode)
{
	uint32_t got = 0;
	for (;;) {
		uint32_t head = atomic_load_explicit(r->cq_head, memory_order_relaxed);
		uint32_t tail = atomic_load_explicit(r->cq_tail, memory_order_acquire);
		while (head != tail && got < max) {
			const struct io_uring_cqe *cqe = (const struct io_uring_cqe *)
				(r->cqes + (size_t)(head & r->cq_mask) * r->cqe_size);
			uint32_t slot = (uint32_t)cqe->user_data;
			struct ffs_ring_slot *s = &r->slots[slot];
			out[got].tag = s->tag;
			out[got].result = 0;
			out[got].status = 0;
			decode(dev, cqe, s, &out[got]);
			s->next_free = r->free_slot;
			r->free_slot = slot;
			got++;
			head++;
		}
		atomic_store_explicit(r->cq_head, head, memory_order_release);
		if (got >= min_wait || got >= max)
			return (int)got;
		int n = sys_enter(r->fd, r->unsubmitted, min_wait - got, IORING_ENTER_GETEVENTS);
		if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EBUSY)
			return -errno;
		if (n > 0)
			r->unsubmitted -= (uint32_t)n;
	}
}
