/*
 * psync: pread/pwrite with O_DIRECT and fdatasync, run by a small pool of worker threads
 * so that the caller never blocks and several commands are in flight at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ffs_backend.h"

#define MAX_WORKERS 16

struct psync {
	pthread_mutex_t lock;
	pthread_cond_t work_cv, done_cv;
	struct ffs_cmd *work; /* ring of queue_depth commands */
	uint32_t work_head, work_count;
	struct ffs_cqe *done; /* ring of queue_depth completions */
	uint32_t done_head, done_count;
	int stop;
	uint32_t nworkers;
	pthread_t workers[MAX_WORKERS];
};

static int run_rw(int fd, const struct ffs_cmd *c, uint32_t lbs)
{
	char *p = (char *)(uintptr_t)c->buf;
	size_t left = (size_t)c->nblocks * lbs;
	off_t off = (off_t)(c->lba * lbs);
	int rwf = (c->flags & FFS_CMD_FUA) ? RWF_DSYNC : 0;
	while (left > 0) {
		struct iovec iov = { p, left };
		ssize_t n = c->opcode == FFS_OP_READ ? preadv2(fd, &iov, 1, off, 0)
						     : pwritev2(fd, &iov, 1, off, rwf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* short transfer: the file ended */
		p += n;
		off += n;
		left -= (size_t)n;
	}
	return 0;
}

static int run(struct ffs_dev *dev, const struct ffs_cmd *c)
{
	switch (c->opcode) {
	case FFS_OP_READ:
	case FFS_OP_WRITE:
		return run_rw(dev->fd, c, dev->geo.lba_size);
	case FFS_OP_FLUSH:
		return fdatasync(dev->fd) == 0 ? 0 : -errno;
	case FFS_OP_TRIM:
		return ffs_trim_sync(dev, c->lba, c->nblocks);
	default:
		return -EINVAL;
	}
}

static void *worker(void *arg)
{
	struct ffs_dev *dev = arg;
	struct psync *ps = dev->priv;
	uint32_t qd = dev->geo.queue_depth;
	pthread_mutex_lock(&ps->lock);
	for (;;) {
		while (ps->work_count == 0 && !ps->stop)
			pthread_cond_wait(&ps->work_cv, &ps->lock);
		if (ps->work_count == 0 && ps->stop)
			break;
		struct ffs_cmd c = ps->work[ps->work_head];
		ps->work_head = (ps->work_head + 1) % qd;
		ps->work_count--;
		pthread_mutex_unlock(&ps->lock);
		int rc = run(dev, &c);
		pthread_mutex_lock(&ps->lock);
		struct ffs_cqe *e = &ps->done[(ps->done_head + ps->done_count) % qd];
		e->tag = c.tag;
		e->result = rc;
		e->status = 0;
		ps->done_count++;
		pthread_cond_signal(&ps->done_cv);
		ffs_notify(dev);
	}
	pthread_mutex_unlock(&ps->lock);
	return NULL;
}

static int psync_available(void)
{
	return 1;
}

static void psync_close(struct ffs_dev *dev)
{
	struct psync *ps = dev->priv;
	if (!ps)
		return;
	pthread_mutex_lock(&ps->lock);
	ps->stop = 1;
	pthread_cond_broadcast(&ps->work_cv);
	pthread_mutex_unlock(&ps->lock);
	for (uint32_t i = 0; i < ps->nworkers; i++)
		pthread_join(ps->workers[i], NULL);
	pthread_mutex_destroy(&ps->lock);
	pthread_cond_destroy(&ps->work_cv);
	pthread_cond_destroy(&ps->done_cv);
	free(ps->work);
	free(ps->done);
	free(ps);
	dev->priv = NULL;
}

static int psync_open(struct ffs_dev *dev, const char *path, uint64_t create_size)
{
	int rc = ffs_open_file(dev, path, create_size);
	if (rc)
		return rc;
	struct psync *ps = calloc(1, sizeof(*ps));
	uint32_t qd = dev->geo.queue_depth;
	if (!ps)
		return -ENOMEM;
	dev->priv = ps;
	ps->work = calloc(qd, sizeof(*ps->work));
	ps->done = calloc(qd, sizeof(*ps->done));
	if (!ps->work || !ps->done) {
		free(ps->work);
		free(ps->done);
		free(ps);
		dev->priv = NULL;
		return -ENOMEM;
	}
	pthread_mutex_init(&ps->lock, NULL);
	pthread_cond_init(&ps->work_cv, NULL);
	pthread_cond_init(&ps->done_cv, NULL);
	uint32_t n = qd < MAX_WORKERS ? qd : MAX_WORKERS;
	for (uint32_t i = 0; i < n; i++) {
		if (pthread_create(&ps->workers[i], NULL, worker, dev) != 0)
			break;
		ps->nworkers++;
	}
	if (ps->nworkers == 0) {
		ffs_set_error(dev, "psync: cannot start worker threads");
		psync_close(dev);
		return -EAGAIN;
	}
	return 0;
}

static int psync_queue(struct ffs_dev *dev, const struct ffs_cmd *c)
{
	struct psync *ps = dev->priv;
	if ((c->flags & FFS_CMD_BARRIER) && dev->inflight > 0)
		return -EAGAIN;
	pthread_mutex_lock(&ps->lock);
	ps->work[(ps->work_head + ps->work_count) % dev->geo.queue_depth] = *c;
	ps->work_count++;
	pthread_mutex_unlock(&ps->lock);
	return 0;
}

static int psync_kick(struct ffs_dev *dev)
{
	struct psync *ps = dev->priv;
	pthread_mutex_lock(&ps->lock);
	pthread_cond_broadcast(&ps->work_cv);
	pthread_mutex_unlock(&ps->lock);
	return 0;
}

static int psync_reap(struct ffs_dev *dev, struct ffs_cqe *out, uint32_t max, uint32_t min_wait)
{
	struct psync *ps = dev->priv;
	uint32_t got = 0;
	pthread_mutex_lock(&ps->lock);
	while (ps->done_count < min_wait)
		pthread_cond_wait(&ps->done_cv, &ps->lock);
	while (got < max && ps->done_count > 0) {
		out[got++] = ps->done[ps->done_head];
		ps->done_head = (ps->done_head + 1) % dev->geo.queue_depth;
		ps->done_count--;
	}
	pthread_mutex_unlock(&ps->lock);
	return (int)got;
}

const struct ffs_backend ffs_backend_psync = {
	.name = "psync",
	.available = psync_available,
	.open = psync_open,
	.queue = psync_queue,
	.kick = psync_kick,
	.reap = psync_reap,
	.alloc = ffs_alloc_aligned,
	.free = ffs_free_aligned,
	.close = psync_close,
};
