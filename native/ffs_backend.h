/*
 * The contract between the common layer (ffs.c) and each backend.
 *
 * The common layer validates commands, keeps the software queue of commands that do not
 * fit the device queue, keeps completions produced in software (errors found before a
 * command reached the device), and owns the notify pipe. A backend only moves commands
 * into its hardware (or kernel) queue and harvests their completions.
 */
#ifndef FFS_BACKEND_H
#define FFS_BACKEND_H

#include <pthread.h>
#include "ffs.h"

struct ffs_backend;

struct ffs_dev {
	const struct ffs_backend *ops;
	void *priv;                 /* the backend's state */
	struct ffs_geometry geo;
	int fd;                     /* the opened file or device, -1 if the backend has none */
	uint32_t open_flags;
	uint32_t inflight;          /* accepted by the backend, not yet reaped */

	/* commands waiting for a free queue slot (FIFO ring, grows) */
	struct ffs_cmd *pending;
	uint32_t pending_cap, pending_head, pending_count;

	/* completions produced in software (FIFO ring, grows) */
	struct ffs_cqe *soft;
	uint32_t soft_cap, soft_head, soft_count;

	int notify_rd, notify_wr;   /* pipe: a byte is written when completions may be ready */
	char err[256];
};

struct ffs_backend {
	const char *name;
	/* Is it usable on this machine at all? 1 yes, 0 no. */
	int (*available)(void);
	/* Open dev->fd (or equivalent) and fill dev->geo. 0 or -errno (message in dev->err). */
	int (*open)(struct ffs_dev *dev, const char *path, uint64_t create_size);
	/* Put one command into the device queue; not yet visible to the device. 0, or
	 * -EAGAIN when the queue is full (or a barrier must wait), or -errno. */
	int (*queue)(struct ffs_dev *dev, const struct ffs_cmd *cmd);
	/* Make everything queued since the last kick visible (doorbell, io_uring_enter). */
	int (*kick)(struct ffs_dev *dev);
	/* Harvest up to max completions, blocking until min_wait are available. */
	int (*reap)(struct ffs_dev *dev, struct ffs_cqe *out, uint32_t max, uint32_t min_wait);
	void *(*alloc)(struct ffs_dev *dev, uint64_t size);
	void (*free)(struct ffs_dev *dev, void *p, uint64_t size);
	void (*close)(struct ffs_dev *dev);
};

extern const struct ffs_backend ffs_backend_psync;
extern const struct ffs_backend ffs_backend_uring;

/* Helpers shared by backends (ffs.c / ffs_file.c). */
void ffs_set_error(struct ffs_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ffs_notify(struct ffs_dev *dev);
/* Opens a regular file or block device for direct I/O, takes the writer lock, fills
 * dev->fd and the geometry fields it can know (capacity, lba_size, dio_align,
 * max_transfer, volatile_cache, atomic_write, flags). 0 or -errno. */
int ffs_open_file(struct ffs_dev *dev, const char *path, uint64_t create_size);
/* Executes a trim synchronously (BLKDISCARD or hole punching). 0 or -errno. */
int ffs_trim_sync(struct ffs_dev *dev, uint64_t lba, uint32_t nblocks);
void *ffs_alloc_aligned(struct ffs_dev *dev, uint64_t size);
void ffs_free_aligned(struct ffs_dev *dev, void *p, uint64_t size);

#endif
