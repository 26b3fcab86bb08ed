/*
 * One io_uring ring through raw system calls (no liburing), shared by the `uring` and
 * `uring-cmd` backends: setup and mmap of the rings (64- or 128-byte SQEs, 16- or 32-byte
 * CQEs), a slot table that maps each command in flight to the caller's tag, submission
 * bounded by the ring size, reaping, and the notifier thread that turns the ring's eventfd
 * into a byte on the common layer's notify pipe.
 *
 * The SQ ring holds queue_depth entries and the CQ ring twice as many, and the common layer
 * never puts more than queue_depth commands in flight, so neither ring can overflow.
 */
#ifndef FFS_URING_H
#define FFS_URING_H

#include <linux/io_uring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ffs_backend.h"

/* One command in flight: the caller's tag and, for reads and writes, the bytes it must
 * move (0 otherwise), so a short transfer becomes an error instead of passing silently. */
struct ffs_ring_slot {
	uint64_t tag;
	uint32_t expect;
	uint32_t next_free;
};

struct ffs_ring {
	struct ffs_dev *dev;
	int fd;       /* the io_uring, -1 when not set up */
	int event_fd; /* registered with the ring; read by the notifier thread */
	struct io_uring_params p;
	void *sq_map, *cq_map;
	size_t sq_map_len, cq_map_len;
	char *sqes;
	size_t sqes_len;
	uint32_t sqe_size; /* 64, or 128 with IORING_SETUP_SQE128 */
	uint32_t cqe_size; /* 16, or 32 with IORING_SETUP_CQE32 */
	_Atomic uint32_t *sq_head, *sq_tail, *cq_head, *cq_tail;
	uint32_t *sq_array, sq_mask, cq_mask, sq_entries;
	char *cqes;
	uint32_t local_tail;  /* SQEs filled, not yet published */
	uint32_t unsubmitted; /* published, not yet consumed by io_uring_enter */
	struct ffs_ring_slot *slots;
	uint32_t nslots, free_slot;
	pthread_t notifier;
	int notifier_running;
	_Atomic int stop;
};

/* Can a ring with these setup flags be created here? 1 yes, 0 no. `need_features`
 * (IORING_FEAT_*) must all be reported by the kernel. */
int ffs_ring_probe(uint32_t setup_flags, uint32_t need_features);

/*
 * Creates the ring for dev->geo.queue_depth commands (lowering queue_depth to what the
 * kernel granted), maps it, registers an eventfd and starts the notifier thread.
 * 0 or -errno with a message in dev->err; on failure ffs_ring_exit() cleans up.
 */
int ffs_ring_init(struct ffs_dev *dev, struct ffs_ring *r, uint32_t setup_flags);
void ffs_ring_exit(struct ffs_ring *r);

/* A zeroed SQE (sqe_size bytes) for the next command and a free slot for it, or NULL
 * when the ring or the slot table is full. Fill it, then ffs_ring_push(). */
struct io_uring_sqe *ffs_ring_get_sqe(struct ffs_ring *r, uint32_t *slot);
/* Records the slot's tag and expected length, stores the slot in user_data and makes the
 * SQE part of the next kick. */
void ffs_ring_push(struct ffs_ring *r, struct io_uring_sqe *sqe, uint32_t slot, uint64_t tag,
		   uint32_t expect);

/* Publishes the SQEs pushed since the last kick and submits them (io_uring_enter). */
int ffs_ring_kick(struct ffs_dev *dev, struct ffs_ring *r);

/* Turns one CQE into a completion; the slot's tag is already in out->tag. */
typedef void (*ffs_ring_decode_fn)(struct ffs_dev *dev, const struct io_uring_cqe *cqe,
				   const struct ffs_ring_slot *slot, struct ffs_cqe *out);

/* Harvests up to max completions, waiting in io_uring_enter until min_wait are there. */
int ffs_ring_reap(struct ffs_dev *dev, struct ffs_ring *r, struct ffs_cqe *out, uint32_t max,
		  uint32_t min_wait, ffs_ring_decode_fn decode);

#endif
