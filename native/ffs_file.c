/*
 * Opening a regular file or a block device for direct I/O, learning its geometry, the
 * single-writer lock, trim, and aligned memory: shared by the psync and uring backends.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ffs_backend.h"

#define DEFAULT_BLOCK 4096u
#define DEFAULT_MAX_TRANSFER (1u << 20)

/* Reads a small integer or word from a sysfs file; returns 0 on success. */
static int sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

static int sysfs_queue_u64(dev_t rdev, const char *attr, unsigned long long *out)
{
	char path[128], buf[64];
	/* A whole disk has queue/ directly; a partition's queue is its parent's. */
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/%s", major(rdev), minor(rdev), attr);
	if (sysfs_read(path, buf, sizeof(buf)) != 0) {
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/%s", major(rdev),
			 minor(rdev), attr);
		if (sysfs_read(path, buf, sizeof(buf)) != 0)
			return -1;
	}
	char *end;
	*out = strtoull(buf, &end, 10);
	return end == buf ? -1 : 0;
}

static int sysfs_write_cache(dev_t rdev)
{
	char path[128], buf[64];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/queue/write_cache", major(rdev),
		 minor(rdev));
	if (sysfs_read(path, buf, sizeof(buf)) != 0) {
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../queue/write_cache", major(rdev),
			 minor(rdev));
		if (sysfs_read(path, buf, sizeof(buf)) != 0)
			return -1;
	}
	if (strcmp(buf, "write back") == 0)
		return 1;
	if (strcmp(buf, "write through") == 0)
		return 0;
	return -1;
}

static int geometry_blockdev(struct ffs_dev *dev, const char *path, const struct stat *st)
{
	struct ffs_geometry *g = &dev->geo;
	int lbs = 0;
	unsigned long long size = 0, v;
	if (ioctl(dev->fd, BLKSSZGET, &lbs) != 0 || lbs <= 0) {
		ffs_set_error(dev, "%s: BLKSSZGET failed: %s", path, strerror(errno));
		return -errno;
	}
	if (ioctl(dev->fd, BLKGETSIZE64, &size) != 0) {
		ffs_set_error(dev, "%s: BLKGETSIZE64 failed: %s", path, strerror(errno));
		return -errno;
	}
	/* The store's unit is at least 4 KiB even on a 512-byte-sector device. */
	g->lba_size = (uint32_t)lbs < DEFAULT_BLOCK ? DEFAULT_BLOCK : (uint32_t)lbs;
	g->dio_align = (uint32_t)lbs;
	g->capacity = size - size % g->lba_size;
	g->max_transfer = DEFAULT_MAX_TRANSFER;
	if (sysfs_queue_u64(st->st_rdev, "max_sectors_kb", &v) == 0 && v > 0) {
		unsigned long long b = v * 1024;
		if (b < g->max_transfer)
			g->max_transfer = (uint32_t)(b - b % g->lba_size);
	}
	if (g->max_transfer < g->lba_size)
		g->max_transfer = g->lba_size;
	g->volatile_cache = sysfs_write_cache(st->st_rdev);
	g->atomic_write = 0;
	if (sysfs_queue_u64(st->st_rdev, "atomic_write_unit_max_bytes", &v) == 0)
		g->atomic_write = (uint32_t)v;
	if (sysfs_queue_u64(st->st_rdev, "discard_max_bytes", &v) == 0 && v > 0)
		g->flags |= FFS_GEO_TRIM;
	g->flags |= FFS_GEO_BLOCKDEV;
	return 0;
}

static void geometry_file(struct ffs_dev *dev, const struct stat *st)
{
	struct ffs_geometry *g = &dev->geo;
	g->lba_size = DEFAULT_BLOCK;
	g->dio_align = 512;
#ifdef STATX_DIOALIGN
	struct statx sx;
	if (statx(dev->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align > 0) {
		g->dio_align = sx.stx_dio_offset_align;
		if (g->dio_align > g->lba_size)
			g->lba_size = g->dio_align;
	}
#endif
	g->capacity = (uint64_t)st->st_size - (uint64_t)st->st_size % g->lba_size;
	g->max_transfer = DEFAULT_MAX_TRANSFER;
	g->volatile_cache = -1; /* unknowable for a file: always flush */
	g->atomic_write = 0;
	g->flags |= FFS_GEO_TRIM; /* hole punching; EOPNOTSUPP surfaces per command */
}

int ffs_open_file(struct ffs_dev *dev, const char *path, uint64_t create_size)
{
	int ro = (dev->open_flags & FFS_OPEN_READONLY) != 0;
	int lock = !ro && !(dev->open_flags & FFS_OPEN_NOLOCK);
	struct stat st;
	int exists = stat(path, &st) == 0;
	if (!exists && errno != ENOENT) {
		ffs_set_error(dev, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!exists && !(dev->open_flags & FFS_OPEN_CREATE)) {
		ffs_set_error(dev, "%s: no such file or device", path);
		return -ENOENT;
	}
	int blockdev = exists && S_ISBLK(st.st_mode);
	if (exists && !blockdev && !S_ISREG(st.st_mode)) {
		ffs_set_error(dev, "%s: not a regular file or block device", path);
		return -EINVAL;
	}
	int flags = (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	if (blockdev && lock)
		flags |= O_EXCL; /* exclusive open: refused while another writer holds it */
	if (!exists)
		flags |= O_CREAT | O_EXCL;
	dev->fd = open(path, flags | O_DIRECT, 0600);
	if (dev->fd >= 0) {
		dev->geo.flags |= FFS_GEO_DIRECT;
	} else if (errno == EINVAL) {
		/* The file system refuses O_DIRECT (tmpfs): buffered, made durable by flush. */
		dev->fd = open(path, flags, 0600);
	}
	if (dev->fd < 0) {
		int e = errno;
		if (e == EBUSY && blockdev)
			ffs_set_error(dev, "%s is in use by another writer (or mounted): opened with "
				      "O_EXCL", path);
		else
			ffs_set_error(dev, "%s: %s", path, strerror(e));
		return -e;
	}
	if (!exists)
		dev->geo.flags |= FFS_GEO_CREATED;
	if (!blockdev && lock && flock(dev->fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		ffs_set_error(dev, "%s is locked by another writer (%s)", path,
			      e == EWOULDBLOCK ? "flock held" : strerror(e));
		return e == EWOULDBLOCK ? -EWOULDBLOCK : -e;
	}
	if (!exists) {
		if (create_size == 0 || ftruncate(dev->fd, (off_t)create_size) != 0) {
			int e = create_size == 0 ? EINVAL : errno;
			ffs_set_error(dev, "%s: cannot size the new image to %llu bytes: %s", path,
				      (unsigned long long)create_size, strerror(e));
			unlink(path);
			return -e;
		}
	}
	if (fstat(dev->fd, &st) != 0) {
		ffs_set_error(dev, "%s: fstat: %s", path, strerror(errno));
		return -errno;
	}
	if (blockdev) {
		int rc = geometry_blockdev(dev, path, &st);
		if (rc)
			return rc;
	} else {
		geometry_file(dev, &st);
	}
	if (ro)
		dev->geo.flags |= FFS_GEO_READONLY;
	if (dev->geo.capacity == 0) {
		ffs_set_error(dev, "%s: capacity is zero", path);
		return -EINVAL;
	}
	return 0;
}

int ffs_trim_sync(struct ffs_dev *dev, uint64_t lba, uint32_t nblocks)
{
	uint64_t off = lba * dev->geo.lba_size, len = (uint64_t)nblocks * dev->geo.lba_size;
	if (dev->geo.flags & FFS_GEO_BLOCKDEV) {
		uint64_t range[2] = { off, len };
		return ioctl(dev->fd, BLKDISCARD, range) == 0 ? 0 : -errno;
	}
	return fallocate(dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			 (off_t)len) == 0 ? 0 : -errno;
}

void *ffs_alloc_aligned(struct ffs_dev *dev, uint64_t size)
{
	void *p = NULL;
	size_t align = dev->geo.lba_size > 4096 ? dev->geo.lba_size : 4096;
	if (size == 0 || posix_memalign(&p, align, size) != 0)
		return NULL;
	return p;
}

void ffs_free_aligned(struct ffs_dev *dev, void *p, uint64_t size)
{
	(void)dev;
	(void)size;
	free(p);
}
