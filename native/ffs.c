/*
 * The common layer: command validation, the software queue for commands beyond the
 * device's queue depth, software completions, and the notify pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffs_backend.h"

extern const struct ffs_backend ffs_backend_nvmed;     /* backend_nvmed.c */
extern const struct ffs_backend ffs_backend_uring_cmd; /* backend_uring_cmd.c */

static const struct ffs_backend *const backends[] = {
	&ffs_backend_psync,
	&ffs_backend_uring,
	&ffs_backend_uring_cmd,
	&ffs_backend_nvmed,
};

static const struct ffs_backend *find_backend(const char *name)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

void ffs_set_error(struct ffs_dev *dev, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dev->err, sizeof(dev->err), fmt, ap);
	va_end(ap);
}

void ffs_notify(struct ffs_dev *dev)
{
	static const char one = 1;
	/* Non-blocking: a full pipe already means the reader will wake. */
	ssize_t r = write(dev->notify_wr, &one, 1);
	(void)r;
}

int ffs_abi_version(void)
{
	return FFS_ABI_VERSION;
}

int ffs_backend_available(const char *name)
{
	const struct ffs_backend *b = find_backend(name);
	return b && b->available() ? 1 : 0;
}

struct ffs_dev *ffs_open(const char *backend, const char *path, uint32_t flags,
			 uint64_t create_size, uint32_t queue_depth, char *errbuf, uint32_t errlen)
{
	const struct ffs_backend *b = find_backend(backend);
	if (!b) {
		snprintf(errbuf, errlen, "unknown native backend '%s'", backend);
		return NULL;
	}
	if (!b->available()) {
		snprintf(errbuf, errlen, "backend '%s' is not available on this machine", backend);
		return NULL;
	}
	struct ffs_dev *dev = calloc(1, sizeof(*dev));
	if (!dev) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	dev->ops = b;
	dev->fd = -1;
	dev->open_flags = flags;
	dev->geo.queue_depth = queue_depth ? queue_depth : 64;
	if (dev->geo.queue_depth > 4096)
		dev->geo.queue_depth = 4096;
	int p[2];
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
		snprintf(errbuf, errlen, "pipe2: %s", strerror(errno));
		free(dev);
		return NULL;
	}
	dev->notify_rd = p[0];
	dev->notify_wr = p[1];
	int rc = b->open(dev, path, create_size);
	if (rc != 0) {
		snprintf(errbuf, errlen, "%s", dev->err[0] ? dev->err : strerror(-rc));
		if (dev->fd >= 0)
			close(dev->fd);
		close(p[0]);
		close(p[1]);
		free(dev);
		return NULL;
	}
	return dev;
}

int ffs_geometry(struct ffs_dev *dev, struct ffs_geometry *out)
{
	*out = dev->geo;
	return 0;
}

void *ffs_alloc(struct ffs_dev *dev, uint64_t size)
{
	return dev->ops->alloc(dev, size);
}

void ffs_free(struct ffs_dev *dev, void *p, uint64_t size)
{
	if (p)
		dev->ops->free(dev, p, size);
}

static const char *op_name(uint8_t op)
{
	switch (op) {
	case FFS_OP_READ: return "read";
	case FFS_OP_WRITE: return "write";
	case FFS_OP_FLUSH: return "flush";
	case FFS_OP_TRIM: return "trim";
	default: return "unknown";
	}
}

static int validate(struct ffs_dev *dev, const struct ffs_cmd *c, uint32_t index)
{
	const struct ffs_geometry *g = &dev->geo;
	uint64_t blocks = g->capacity / g->lba_size;
	if (c->opcode > FFS_OP_TRIM) {
		ffs_set_error(dev, "command %u: unknown opcode %u", index, c->opcode);
		return -EINVAL;
	}
	if (c->opcode == FFS_OP_FLUSH)
		return 0;
	if (c->nblocks == 0) {
		ffs_set_error(dev, "command %u: %s of 0 blocks", index, op_name(c->opcode));
		return -EINVAL;
	}
	if (c->lba >= blocks || c->nblocks > blocks - c->lba) {
		ffs_set_error(dev, "command %u: %s of %u blocks at LBA %llu is beyond the capacity "
			      "of %llu blocks", index, op_name(c->opcode), c->nblocks,
			      (unsigned long long)c->lba, (unsigned long long)blocks);
		return -EINVAL;
	}
	if (c->opcode == FFS_OP_TRIM)
		return 0;
	if ((dev->open_flags & FFS_OPEN_READONLY) && c->opcode == FFS_OP_WRITE) {
		ffs_set_error(dev, "command %u: write on a device opened read-only", index);
		return -EBADF;
	}
	if (c->buf == 0 || c->buf % g->lba_size != 0) {
		ffs_set_error(dev, "command %u: %s buffer 0x%llx is not aligned to %u bytes", index,
			      op_name(c->opcode), (unsigned long long)c->buf, g->lba_size);
		return -EINVAL;
	}
	if ((uint64_t)c->nblocks * g->lba_size > g->max_transfer) {
		ffs_set_error(dev, "command %u: %s of %u blocks exceeds the maximum transfer of %u "
			      "bytes", index, op_name(c->opcode), c->nblocks, g->max_transfer);
		return -EINVAL;
	}
	return 0;
}

static int ring_grow(void **ring, uint32_t *cap, uint32_t head, uint32_t count, size_t elem)
{
	uint32_t ncap = *cap ? *cap * 2 : 64;
	char *n = malloc((size_t)ncap * elem);
	if (!n)
		return -ENOMEM;
	for (uint32_t i = 0; i < count; i++)
		memcpy(n + (size_t)i * elem, (char *)*ring + (size_t)((head + i) % *cap) * elem, elem);
	free(*ring);
	*ring = n;
	*cap = ncap;
	return 0;
}

static int pending_push(struct ffs_dev *dev, const struct ffs_cmd *c)
{
	if (dev->pending_count == dev->pending_cap) {
		int rc = ring_grow((void **)&dev->pending, &dev->pending_cap, dev->pending_head,
				   dev->pending_count, sizeof(*c));
		if (rc)
			return rc;
		dev->pending_head = 0;
	}
	dev->pending[(dev->pending_head + dev->pending_count) % dev->pending_cap] = *c;
	dev->pending_count++;
	return 0;
}

static int soft_complete(struct ffs_dev *dev, uint64_t tag, int32_t result)
{
	if (dev->soft_count == dev->soft_cap) {
		int rc = ring_grow((void **)&dev->soft, &dev->soft_cap, dev->soft_head,
				   dev->soft_count, sizeof(struct ffs_cqe));
		if (rc)
			return rc;
		dev->soft_head = 0;
	}
	struct ffs_cqe *e = &dev->soft[(dev->soft_head + dev->soft_count) % dev->soft_cap];
	e->tag = tag;
	e->result = result;
	e->status = 0;
	dev->soft_count++;
	ffs_notify(dev);
	return 0;
}

/* Moves waiting commands into the device queue while it has room, then kicks it. */
static int pump(struct ffs_dev *dev)
{
	int queued = 0;
	while (dev->pending_count > 0 && dev->inflight < dev->geo.queue_depth) {
		struct ffs_cmd *c = &dev->pending[dev->pending_head];
		if (c->opcode == FFS_OP_TRIM && !(dev->geo.flags & FFS_GEO_TRIM)) {
			int rc = soft_complete(dev, c->tag, -EOPNOTSUPP);
			if (rc)
				return rc;
		} else {
			int rc = dev->ops->queue(dev, c);
			if (rc == -EAGAIN)
				break;
			if (rc < 0) {
				rc = soft_complete(dev, c->tag, rc);
				if (rc)
					return rc;
			} else {
				dev->inflight++;
				queued++;
			}
		}
		dev->pending_head = (dev->pending_head + 1) % dev->pending_cap;
		dev->pending_count--;
	}
	if (queued)
		return dev->ops->kick(dev);
	return 0;
}

int ffs_submit(struct ffs_dev *dev, const struct ffs_cmd *cmds, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		int rc = validate(dev, &cmds[i], i);
		if (rc)
			return rc;
	}
	for (uint32_t i = 0; i < n; i++) {
		int rc = pending_push(dev, &cmds[i]);
		if (rc) {
			ffs_set_error(dev, "out of memory queueing command %u", i);
			return rc;
		}
	}
	int rc = pump(dev);
	if (rc < 0) {
		if (!dev->err[0])
			ffs_set_error(dev, "submitting to the device: %s", strerror(-rc));
		return rc;
	}
	return (int)n;
}

int ffs_reap(struct ffs_dev *dev, struct ffs_cqe *out, uint32_t max, uint32_t min_wait)
{
	uint32_t got = 0;
	while (got < max && dev->soft_count > 0) {
		out[got++] = dev->soft[dev->soft_head];
		dev->soft_head = (dev->soft_head + 1) % dev->soft_cap;
		dev->soft_count--;
	}
	for (;;) {
		uint32_t want = min_wait > got ? min_wait - got : 0;
		if (want > dev->inflight)
			want = dev->inflight; /* never wait for what was not submitted */
		if (got < max && dev->inflight > 0) {
			int r = dev->ops->reap(dev, out + got, max - got, want);
			if (r < 0) {
				ffs_set_error(dev, "reaping completions: %s", strerror(-r));
				return r;
			}
			dev->inflight -= (uint32_t)r;
			got += (uint32_t)r;
		}
		int rc = pump(dev);
		if (rc < 0)
			return rc;
		/* Commands that failed in pump() completed in software: hand them out too. */
		while (got < max && dev->soft_count > 0) {
			out[got++] = dev->soft[dev->soft_head];
			dev->soft_head = (dev->soft_head + 1) % dev->soft_cap;
			dev->soft_count--;
		}
		if (got >= min_wait || got >= max || (dev->inflight == 0 && dev->pending_count == 0))
			return (int)got;
	}
}

uint32_t ffs_outstanding(struct ffs_dev *dev)
{
	return dev->inflight + dev->pending_count + dev->soft_count;
}

int ffs_notify_fd(struct ffs_dev *dev)
{
	return fcntl(dev->notify_rd, F_DUPFD_CLOEXEC, 0);
}

const char *ffs_last_error(struct ffs_dev *dev)
{
	return dev->err;
}

const char *ffs_backend_name(struct ffs_dev *dev)
{
	return dev->ops->name;
}

void ffs_close(struct ffs_dev *dev)
{
	if (!dev)
		return;
	/* Let in-flight commands finish: their buffers belong to the caller. */
	struct ffs_cqe sink[64];
	while (dev->inflight > 0 || dev->pending_count > 0) {
		if (ffs_reap(dev, sink, 64, 1) < 0)
			break;
	}
	dev->ops->close(dev);
	if (dev->fd >= 0)
		close(dev->fd);
	close(dev->notify_rd);
	close(dev->notify_wr);
	free(dev->pending);
	free(dev->soft);
	free(dev);
}
