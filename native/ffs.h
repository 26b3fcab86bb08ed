/*
 * ForestFS native I/O: one interface over several backends (psync, uring, uring-cmd,
 * nvmed). Commands are NVMe-shaped: opcode, starting LBA, block count, buffer.
 *
 * Threading: every ffs_* call on a device comes from one thread (Node's main thread).
 * Backends may run helper threads internally; completions are reported through
 * ffs_reap() only, and "completions may be ready" is signalled by the notify fd becoming
 * readable, so an event loop can watch it instead of blocking.
 */
#ifndef FFS_H
#define FFS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FFS_ABI_VERSION 1

enum ffs_opcode {
	FFS_OP_READ = 0,
	FFS_OP_WRITE = 1,
	FFS_OP_FLUSH = 2, /* make completed writes durable (volatile cache flush) */
	FFS_OP_TRIM = 3,  /* deallocate a block range (dataset management / discard) */
};

enum ffs_cmd_flags {
	FFS_CMD_FUA = 1u << 0,     /* write through the volatile cache */
	FFS_CMD_BARRIER = 1u << 1, /* start only after every earlier command completed */
};

/* One command. 32 bytes, no padding; the JS side packs these into a byte array. */
struct ffs_cmd {
	uint64_t buf;       /* address of an aligned buffer from ffs_alloc (read/write) */
	uint64_t lba;       /* first logical block */
	uint32_t nblocks;   /* number of logical blocks (0 for flush) */
	uint8_t opcode;     /* enum ffs_opcode */
	uint8_t flags;      /* enum ffs_cmd_flags */
	uint16_t reserved;
	uint64_t tag;       /* caller's identifier, returned in the completion */
};

/* One completion. 16 bytes. */
struct ffs_cqe {
	uint64_t tag;
	int32_t result; /* 0 on success, or -errno */
	uint32_t status; /* backend-specific detail: NVMe status field (SCT<<8|SC), else 0 */
};

enum ffs_geometry_flags {
	FFS_GEO_BLOCKDEV = 1u << 0,  /* a block device, not a regular file */
	FFS_GEO_DIRECT = 1u << 1,    /* opened with O_DIRECT (or equivalent: no page cache) */
	FFS_GEO_TRIM = 1u << 2,      /* trim is supported */
	FFS_GEO_CREATED = 1u << 3,   /* the image file was created by this open */
	FFS_GEO_READONLY = 1u << 4,
};

struct ffs_geometry {
	uint64_t capacity;       /* bytes */
	uint32_t lba_size;       /* logical block size in bytes: the I/O unit and alignment */
	uint32_t dio_align;      /* smallest alignment the kernel accepts (informational) */
	uint32_t max_transfer;   /* largest single command, bytes */
	uint32_t queue_depth;    /* commands in flight at most; more wait in software */
	int32_t volatile_cache;  /* 1: has a volatile write cache, 0: none, -1: unknown */
	uint32_t atomic_write;   /* power-fail atomic write unit in bytes, 0 if unknown */
	uint32_t flags;          /* enum ffs_geometry_flags */
	uint32_t reserved;
};

enum ffs_open_flags {
	FFS_OPEN_READONLY = 1u << 0,
	FFS_OPEN_CREATE = 1u << 1,   /* create a regular file of create_size when missing */
	FFS_OPEN_NOLOCK = 1u << 2,   /* do not take the exclusive writer lock */
};

struct ffs_dev;

/*
 * Opens `path` with backend `backend` ("psync", "uring"; "auto" is resolved by the caller).
 * Returns NULL on failure with a message in errbuf. A regular file is locked with
 * flock(LOCK_EX|LOCK_NB) and a block device opened with O_EXCL unless FFS_OPEN_NOLOCK or
 * FFS_OPEN_READONLY; a second writer gets EWOULDBLOCK/EBUSY with a clear message.
 */
struct ffs_dev *ffs_open(const char *backend, const char *path, uint32_t flags,
			 uint64_t create_size, uint32_t queue_depth, char *errbuf, uint32_t errlen);
int ffs_geometry(struct ffs_dev *dev, struct ffs_geometry *out);

/* Aligned (DMA-able where the backend needs it) memory, lba_size-aligned at least. */
void *ffs_alloc(struct ffs_dev *dev, uint64_t size);
void ffs_free(struct ffs_dev *dev, void *p, uint64_t size);

/*
 * Queues n commands (validated first: on any invalid command nothing is queued and
 * -EINVAL is returned with the reason in ffs_last_error). Commands beyond the queue depth
 * wait in software and are started as earlier ones complete. Returns n or -errno.
 */
int ffs_submit(struct ffs_dev *dev, const struct ffs_cmd *cmds, uint32_t n);

/*
 * Moves up to `max` completions into `out`, waiting until at least `min_wait` are
 * available (0: never block). Returns the number moved or -errno.
 */
int ffs_reap(struct ffs_dev *dev, struct ffs_cqe *out, uint32_t max, uint32_t min_wait);

/* Commands submitted and not yet reaped (in flight plus waiting in software). */
uint32_t ffs_outstanding(struct ffs_dev *dev);

/*
 * A new file descriptor (owned by the caller, who closes it) that becomes readable when
 * completions may be ready. The caller drains it with read() before reaping.
 */
int ffs_notify_fd(struct ffs_dev *dev);

const char *ffs_last_error(struct ffs_dev *dev);
const char *ffs_backend_name(struct ffs_dev *dev);
/* Whether a backend can work on this machine at all (e.g. io_uring_setup succeeds). */
int ffs_backend_available(const char *backend);
int ffs_abi_version(void);

/*
 * CRC32C (Castagnoli; reflected, initial value and final XOR 0xFFFFFFFF) of the len bytes at
 * buf + offset (the offset serves FFI callers that pass a whole array), continuing from
 * `seed` (0 to start; a previous result to continue). SSE4.2 where the CPU has it, tables
 * elsewhere. Pure functions: callable from any thread, no device needed.
 */
uint32_t ffs_crc32c(uint32_t seed, const void *buf, uint64_t offset, uint64_t len);
/*
 * For i < count: CRC32C of frame[spans[2i], spans[2i] + spans[2i+1]), stored little-endian in
 * the 4 bytes right after that range (a ForestFS record's trailing checksum).
 */
void ffs_crc32c_records(uint8_t *frame, const uint32_t *spans, uint32_t count);
/* 1 when ffs_crc32c uses the CPU's crc32 instruction. */
int ffs_crc32c_hw(void);
void ffs_close(struct ffs_dev *dev);

#ifdef __cplusplus
}
#endif
#endif
