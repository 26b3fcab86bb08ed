/*
 * uring-cmd: NVMe commands through io_uring passthrough on the NVMe generic character
 * device (/dev/ngXnY, Linux >= 5.19): IORING_OP_URING_CMD with NVME_URING_CMD_IO, a ring
 * of 128-byte SQEs (the struct nvme_uring_cmd lives in the SQE) and 32-byte CQEs.
 * The ring itself (setup, mmap, slots, notifier) is shared with the uring backend
 * (ffs_uring.c).
 *
 * Commands are built here: Read/Write (FUA in CDW12 bit 30), Flush, and Dataset
 * Management with the deallocate attribute for trim (its range list lives in a small
 * per-slot buffer). The kernel maps the caller's buffer for each command, so any aligned
 * memory will do (ffs_alloc gives page-aligned heap memory). A CQE's res is -errno when
 * the kernel failed the command and the NVMe status (SCT << 8 | SC, plus the CRD/M/DNR
 * bits above) when the controller did; the latter becomes an errno through
 * nvme_status_errno() with the status kept in ffs_cqe.status.
 *
 * Geometry comes from Identify Namespace and Identify Controller (admin passthrough,
 * CAP_SYS_ADMIN). The largest command is the smallest of MDTS (assuming the usual 4 KiB
 * minimum memory page), the namespace queue's max_hw_sectors_kb and max_segments x 4 KiB
 * (the kernel maps user pages one segment each), read from /sys/block/nvmeXnY/queue,
 * rounded down to a power of two.
 *
 * Locking: a writer takes flock on the character device and, when the matching block
 * device /dev/nvmeXnY exists, holds it open with O_EXCL, so uring/psync writers (which open
 * block devices with O_EXCL) and mounts are refused while it is open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ffs_uring.h"
#include "nvme_spec.h"

#if defined(IORING_SETUP_SQE128) && defined(IORING_SETUP_CQE32) && __has_include(<linux/nvme_ioctl.h>)
#include <linux/nvme_ioctl.h>
#endif

#if defined(IORING_SETUP_SQE128) && defined(IORING_SETUP_CQE32) && defined(NVME_URING_CMD_IO)
#define HAVE_URING_CMD 1
#else
#define HAVE_URING_CMD 0
#endif

#if HAVE_URING_CMD

#define DSM_BYTES 256 /* per slot: up to 16 ranges */

struct uring_cmd {
	struct ffs_ring ring;
	uint32_t nsid;
	uint32_t shift;      /* log2(geo.lba_size / namespace block size) */
	uint32_t lba_shift;  /* log2(namespace block size) */
	int excl_fd;         /* the block device, held with O_EXCL; -1 if none */
	struct nvme_dsm_range *dsm; /* DSM_BYTES per slot */
};

static int uring_cmd_available(void)
{
	return ffs_ring_probe(IORING_SETUP_SQE128 | IORING_SETUP_CQE32, IORING_FEAT_NODROP);
}

static void uring_cmd_close(struct ffs_dev *dev)
{
	struct uring_cmd *u = dev->priv;
	if (!u)
		return;
	ffs_ring_exit(&u->ring);
	if (u->excl_fd >= 0)
		close(u->excl_fd);
	free(u->dsm);
	free(u);
	dev->priv = NULL;
}

static int identify(int fd, uint32_t nsid, uint32_t cns, void *buf)
{
	struct nvme_passthru_cmd c;
	memset(&c, 0, sizeof(c));
	c.opcode = NVME_ADMIN_IDENTIFY;
	c.nsid = nsid;
	c.addr = (uint64_t)(uintptr_t)buf;
	c.data_len = 4096;
	c.cdw10 = cns;
	int r = ioctl(fd, NVME_IOCTL_ADMIN_CMD, &c);
	if (r < 0)
		return -errno;
	return r > 0 ? nvme_status_errno((uint16_t)(r & 0x7ff)) : 0;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int sysfs_u64(const char *blk, const char *attr, unsigned long long *out)
{
	char path[256], buf[64];
	snprintf(path, sizeof(path), "/sys/block/%s/queue/%s", blk, attr);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *end;
	*out = strtoull(buf, &end, 10);
	return end == buf ? -1 : 0;
}

/* "ng0n1" -> "nvme0n1" (the block device of the same namespace), or "" */
static void block_name(const char *path, char *out, size_t len)
{
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s", path);
	const char *base = basename(tmp);
	out[0] = 0;
	if (strncmp(base, "ng", 2) == 0)
		snprintf(out, len, "nvme%s", base + 2);
}

static int uring_cmd_open(struct ffs_dev *dev, const char *path, uint64_t create_size)
{
	(void)create_size;
	struct stat st;
	if (stat(path, &st) != 0) {
		int e = errno;
		ffs_set_error(dev, "%s: %s", path, e == ENOENT ? "no such file or device" : strerror(e));
		return -e;
	}
	if (!S_ISCHR(st.st_mode)) {
		ffs_set_error(dev, "%s: not an NVMe generic character device (/dev/ngXnY); the "
			      "uring and psync backends open block devices", path);
		return -EINVAL;
	}
	int ro = (dev->open_flags & FFS_OPEN_READONLY) != 0;
	dev->fd = open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (dev->fd < 0) {
		int e = errno;
		ffs_set_error(dev, "%s: %s", path, strerror(e));
		return -e;
	}
	struct uring_cmd *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->excl_fd = -1;
	u->ring.fd = -1;
	u->ring.event_fd = -1;
	dev->priv = u;
	int rc;
	int id = ioctl(dev->fd, NVME_IOCTL_ID);
	if (id <= 0) {
		rc = id < 0 ? -errno : -EINVAL;
		ffs_set_error(dev, "%s: not an NVMe namespace device (NVME_IOCTL_ID: %s)", path,
			      id < 0 ? strerror(errno) : "no namespace id");
		goto fail;
	}
	u->nsid = (uint32_t)id;
	char blk[64];
	block_name(path, blk, sizeof(blk));
	if (!ro && !(dev->open_flags & FFS_OPEN_NOLOCK)) {
		if (flock(dev->fd, LOCK_EX | LOCK_NB) != 0) {
			int e = errno;
			ffs_set_error(dev, "%s is locked by another writer (%s)", path,
				      e == EWOULDBLOCK ? "flock held" : strerror(e));
			rc = e == EWOULDBLOCK ? -EWOULDBLOCK : -e;
			goto fail;
		}
		if (blk[0]) {
			char bpath[96];
			snprintf(bpath, sizeof(bpath), "/dev/%s", blk);
			u->excl_fd = open(bpath, O_RDONLY | O_EXCL | O_CLOEXEC);
			if (u->excl_fd < 0 && errno == EBUSY) {
				ffs_set_error(dev, "%s is in use by another writer (or mounted): %s is "
					      "held open exclusively", path, bpath);
				rc = -EBUSY;
				goto fail;
			}
		}
	}

	uint8_t *idc = NULL, *idn = NULL;
	if (posix_memalign((void **)&idc, 4096, 4096) || posix_memalign((void **)&idn, 4096, 4096)) {
		free(idc);
		rc = -ENOMEM;
		goto fail;
	}
	memset(idc, 0, 4096);
	memset(idn, 0, 4096);
	rc = identify(dev->fd, 0, NVME_CNS_CTRL, idc);
	if (rc == 0)
		rc = identify(dev->fd, u->nsid, NVME_CNS_NS, idn);
	if (rc) {
		ffs_set_error(dev, "%s: Identify through the admin passthrough ioctl failed: %s%s",
			      path, strerror(-rc), rc == -EPERM || rc == -EACCES ?
			      " (needs CAP_SYS_ADMIN: run as root)" : "");
		free(idc);
		free(idn);
		goto fail;
	}
	uint8_t flbas = idn[NVME_IDNS_FLBAS];
	uint32_t fmt = (flbas & 0xf) | ((uint32_t)(flbas >> 5 & 3) << 4);
	const uint8_t *lbaf = idn + NVME_IDNS_LBAF + 4 * fmt;
	uint32_t lbads = lbaf[2];
	uint64_t nsze = le64(idn + NVME_IDNS_NSZE);
	uint8_t mdts = idc[NVME_IDC_MDTS];
	uint16_t oncs = le16(idc + NVME_IDC_ONCS);
	int vwc = idc[NVME_IDC_VWC] & 1;
	uint32_t awupf = le16(idc + NVME_IDC_AWUPF) + 1u;
	if (idn[NVME_IDNS_NSFEAT] & 2)
		awupf = le16(idn + NVME_IDNS_NAWUPF) + 1u;
	uint16_t ms = le16(lbaf);
	free(idc);
	free(idn);
	if (lbads < 9 || lbads > 16) {
		ffs_set_error(dev, "%s: unsupported LBA data size 2^%u", path, lbads);
		rc = -EINVAL;
		goto fail;
	}
	if (ms != 0) {
		ffs_set_error(dev, "%s: the namespace is formatted with %u bytes of metadata per "
			      "block, which this backend does not handle", path, ms);
		rc = -EINVAL;
		goto fail;
	}
	struct ffs_geometry *g = &dev->geo;
	uint32_t lbs = 1u << lbads;
	u->lba_shift = lbads;
	g->lba_size = lbs < 4096 ? 4096 : lbs;
	while ((lbs << u->shift) < g->lba_size)
		u->shift++;
	g->capacity = nsze * lbs;
	g->capacity -= g->capacity % g->lba_size;
	g->dio_align = 4;
	g->volatile_cache = vwc;
	g->atomic_write = awupf * lbs;
	g->flags |= FFS_GEO_BLOCKDEV | FFS_GEO_DIRECT;
	if (oncs & NVME_ONCS_DSM)
		g->flags |= FFS_GEO_TRIM;
	if (ro)
		g->flags |= FFS_GEO_READONLY;
	uint64_t maxt = mdts ? (uint64_t)4096 << mdts : (uint64_t)4 << 20;
	unsigned long long v;
	if (blk[0] && sysfs_u64(blk, "max_hw_sectors_kb", &v) == 0 && v > 0 && v * 1024 < maxt)
		maxt = v * 1024;
	unsigned long long segs = 127; /* the NVMe driver's limit when sysfs does not say */
	if (blk[0])
		sysfs_u64(blk, "max_segments", &segs);
	if (segs > 0 && segs * 4096 < maxt)
		maxt = segs * 4096;
	if (maxt > (uint64_t)NVME_RW_MAX_BLOCKS * lbs)
		maxt = (uint64_t)NVME_RW_MAX_BLOCKS * lbs;
	/* a power of two (508 KiB of 127 segments becomes 256 KiB): batchers split evenly */
	uint64_t p2 = g->lba_size;
	while (p2 * 2 <= maxt)
		p2 *= 2;
	g->max_transfer = (uint32_t)p2;
	if (g->capacity == 0) {
		ffs_set_error(dev, "%s: capacity is zero", path);
		rc = -EINVAL;
		goto fail;
	}

	rc = ffs_ring_init(dev, &u->ring, IORING_SETUP_SQE128 | IORING_SETUP_CQE32);
	if (rc)
		goto fail;
	if (posix_memalign((void **)&u->dsm, 4096, (size_t)u->ring.nslots * DSM_BYTES)) {
		rc = -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	uring_cmd_close(dev);
	return rc;
}

static int uring_cmd_queue(struct ffs_dev *dev, const struct ffs_cmd *c)
{
	struct uring_cmd *u = dev->priv;
	uint32_t slot;
	struct io_uring_sqe *sqe = ffs_ring_get_sqe(&u->ring, &slot);
	if (!sqe)
		return -EAGAIN;
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = dev->fd;
	sqe->cmd_op = NVME_URING_CMD_IO;
	struct nvme_uring_cmd *nc = (struct nvme_uring_cmd *)sqe->cmd;
	nc->nsid = u->nsid;
	uint64_t slba = c->lba << u->shift;
	uint64_t nlb = (uint64_t)c->nblocks << u->shift;
	switch (c->opcode) {
	case FFS_OP_READ:
	case FFS_OP_WRITE:
		nc->opcode = c->opcode == FFS_OP_READ ? NVME_OPC_READ : NVME_OPC_WRITE;
		nc->addr = c->buf;
		nc->data_len = (uint32_t)(nlb << u->lba_shift);
		nc->cdw10 = (uint32_t)slba;
		nc->cdw11 = (uint32_t)(slba >> 32);
		nc->cdw12 = (uint32_t)(nlb - 1);
		if (c->opcode == FFS_OP_WRITE && (c->flags & FFS_CMD_FUA))
			nc->cdw12 |= NVME_RW_FUA;
		break;
	case FFS_OP_FLUSH:
		nc->opcode = NVME_OPC_FLUSH;
		break;
	case FFS_OP_TRIM: {
		struct nvme_dsm_range *r = (struct nvme_dsm_range *)((char *)u->dsm + (size_t)slot * DSM_BYTES);
		uint32_t nr = 0;
		while (nlb > 0 && nr < DSM_BYTES / sizeof(*r)) {
			uint32_t n = nlb > UINT32_MAX ? UINT32_MAX : (uint32_t)nlb;
			r[nr].cattr = 0;
			r[nr].nlb = n;
			r[nr].slba = slba;
			nr++;
			slba += n;
			nlb -= n;
		}
		nc->opcode = NVME_OPC_DSM;
		nc->addr = (uint64_t)(uintptr_t)r;
		nc->data_len = nr * (uint32_t)sizeof(*r);
		nc->cdw10 = nr - 1;
		nc->cdw11 = NVME_DSM_ATTR_DEALLOCATE;
		break;
	}
	default:
		return -EINVAL;
	}
	if (c->flags & FFS_CMD_BARRIER)
		sqe->flags |= IOSQE_IO_DRAIN;
	ffs_ring_push(&u->ring, sqe, slot, c->tag, 0);
	return 0;
}

static int uring_cmd_kick(struct ffs_dev *dev)
{
	struct uring_cmd *u = dev->priv;
	return ffs_ring_kick(dev, &u->ring);
}

static void uring_cmd_decode(struct ffs_dev *dev, const struct io_uring_cqe *cqe,
			     const struct ffs_ring_slot *s, struct ffs_cqe *out)
{
	(void)dev;
	(void)s;
	if (cqe->res < 0) {
		out->result = cqe->res;
	} else if (cqe->res > 0) {
		out->status = (uint32_t)cqe->res & 0x7ff;
		out->result = out->status ? nvme_status_errno((uint16_t)out->status) : -EIO;
	}
}

static int uring_cmd_reap(struct ffs_dev *dev, struct ffs_cqe *out, uint32_t max, uint32_t min_wait)
{
	struct uring_cmd *u = dev->priv;
	return ffs_ring_reap(dev, &u->ring, out, max, min_wait, uring_cmd_decode);
}


#else /* !HAVE_URING_CMD: built against kernel headers without io_uring passthrough */

static int uring_cmd_available(void)
{
	return 0;
}

static int uring_cmd_open(struct ffs_dev *dev, const char *path, uint64_t create_size)
{
	(void)create_size;
	ffs_set_error(dev, "%s: this library was built against kernel headers without io_uring "
		      "NVMe passthrough (<linux/nvme_ioctl.h> NVME_URING_CMD_IO, Linux >= 5.19)", path);
	return -EOPNOTSUPP;
}

static int uring_cmd_queue(struct ffs_dev *dev, const struct ffs_cmd *c)
{
	(void)dev;
	(void)c;
	return -EOPNOTSUPP;
}

static int uring_cmd_kick(struct ffs_dev *dev)
{
	(void)dev;
	return 0;
}

static int uring_cmd_reap(struct ffs_dev *dev, struct ffs_cqe *out, uint32_t max, uint32_t min_wait)
{
	(void)dev;
	(void)out;
	(void)max;
	(void)min_wait;
	return 0;
}

static void uring_cmd_close(struct ffs_dev *dev)
{
	(void)dev;
}

#endif

/* One table for both builds: without passthrough the functions refuse (see above). */
const struct ffs_backend ffs_backend_uring_cmd = {
	.name = "uring-cmd",
	.available = uring_cmd_available,
	.open = uring_cmd_open,
	.queue = uring_cmd_queue,
	.kick = uring_cmd_kick,
	.reap = uring_cmd_reap,
	.alloc = ffs_alloc_aligned,
	.free = ffs_free_aligned,
	.close = uring_cmd_close,
};
