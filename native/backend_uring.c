/*
 * uring: io_uring through raw system calls and <linux/io_uring.h> (no liburing).
 *
 * The ring (setup, mmap, slots, submission, reaping, the eventfd notifier thread) is
 * shared with the uring-cmd backend: ffs_uring.c. This file only turns commands into
 * read/write/fsync SQEs and their CQEs into completions.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ffs_uring.h"

struct uring {
	struct ffs_ring ring;
};

static int uring_available(void)
{
	/* IORING_OP_READ/WRITE need 5.6; FEAT_NODROP arrived with it. */
	return ffs_ring_probe(0, IORING_FEAT_NODROP);
}

static void uring_close(struct ffs_dev *dev)
{
	struct uring *u = dev->priv;
	if (!u)
		return;
	ffs_ring_exit(&u->ring);
	free(u);
	dev->priv = NULL;
}

static int uring_open(struct ffs_dev *dev, const char *path, uint64_t create_size)
{
	int rc = ffs_open_file(dev, path, create_size);
	if (rc)
		return rc;
	struct uring *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	dev->priv = u;
	rc = ffs_ring_init(dev, &u->ring, 0);
	if (rc)
		uring_close(dev);
	return rc;
}

static int uring_queue(struct ffs_dev *dev, const struct ffs_cmd *c)
{
	struct uring *u = dev->priv;
	uint32_t slot;
	struct io_uring_sqe *sqe = ffs_ring_get_sqe(&u->ring, &slot);
	if (!sqe)
		return -EAGAIN;
	if (c->opcode == FFS_OP_TRIM) {
		/* io_uring (before 6.12) has no discard: do it now, complete through a NOP. */
		int rc = ffs_trim_sync(dev, c->lba, c->nblocks);
		if (rc)
			return rc;
	}
	uint32_t lbs = dev->geo.lba_size;
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
	uint32_t expect = sqe->opcode == IORING_OP_READ || sqe->opcode == IORING_OP_WRITE ? sqe->len : 0;
	ffs_ring_push(&u->ring, sqe, slot, c->tag, expect);
	return 0;
}

static int uring_kick(struct ffs_dev *dev)
{
	struct uring *u = dev->priv;
	return ffs_ring_kick(dev, &u->ring);
}

static void uring_decode(struct ffs_dev *dev, const struct io_uring_cqe *cqe,
			 const struct ffs_ring_slot *s, struct ffs_cqe *out)
{
	(void)dev;
	if (cqe->res < 0)
		out->result = cqe->res;
	else if ((uint32_t)cqe->res != s->expect)
		out->result = -EIO; /* short transfer */
}

static int uring_reap(struct ffs_dev *dev, struct ffs_cqe *out, uint32_t max, uint32_t min_wait)
{
	struct uring *u = dev->priv;
	return ffs_ring_reap(dev, &u->ring, out, max, min_wait, uring_decode);
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
