/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * nvmed_uapi.h - user-space ABI of the nvmed driver (/dev/nvmedN).
 *
 * nvmed gives a process its own polled NVMe I/O queue pairs and DMA-coherent
 * buffers.  The process builds NVMe commands itself, writes them into the
 * mapped submission queue (SQ), writes the SQ tail doorbell, and polls the
 * mapped completion queue (CQ) for the phase bit.  No system call is made on
 * the I/O path.
 *
 * Every structure uses fixed-width types, 64-bit members are naturally
 * aligned and every structure's size is a multiple of 8, so the layout is the
 * same for 32-bit and 64-bit callers.  Reserved and flags fields must be zero
 * on input (EINVAL otherwise); the driver zeroes them on output.
 *
 * Summary of the flow:
 *   fd = open("/dev/nvmed0", O_RDWR)            needs CAP_SYS_RAWIO
 *   ioctl(fd, NVMED_IOC_INFO, &info)
 *   ioctl(fd, NVMED_IOC_QUEUE_CREATE, &qc)      -> qid, mmap offsets/lengths
 *   sq = mmap(NULL, qc.sq_bytes, PROT_READ|PROT_WRITE, MAP_SHARED, fd, qc.sq_offset)
 *   cq = mmap(NULL, qc.cq_bytes, ...,                               qc.cq_offset)
 *   db = mmap(NULL, qc.db_bytes, ...,                               qc.db_offset)
 *   sq_tail_doorbell = (u32 *)(db + qc.sq_db); cq_head_doorbell = (u32 *)(db + qc.cq_db)
 *   ioctl(fd, NVMED_IOC_BUF_ALLOC, &ba)         -> dma_addr, mmap offset
 *   buf = mmap(NULL, ba.size, ..., ba.offset)   PRP entries are ba.dma_addr + offset
 *   ... I/O ...
 *   close(fd)                                   tears everything down
 */
#ifndef NVMED_UAPI_H
#define NVMED_UAPI_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define NVMED_ABI_VERSION	1

/* Controller memory page size used for PRPs (CC.MPS = 0). */
#define NVMED_CTRL_PAGE_SIZE	4096u

/* Sizes of queue entries (CC.IOSQES = 6, CC.IOCQES = 4). */
#define NVMED_SQE_SIZE		64u
#define NVMED_CQE_SIZE		16u

/* nvmed_info.flags */
#define NVMED_INFO_VWC			(1u << 0) /* volatile write cache: Flush is needed for durability */
#define NVMED_INFO_DSM			(1u << 1) /* Dataset Management (deallocate) supported */
#define NVMED_INFO_WRITE_ZEROES		(1u << 2) /* Write Zeroes supported */
#define NVMED_INFO_DEALLOC_READS_ZERO	(1u << 3) /* deallocated blocks read back as zeroes (DLFEAT) */
#define NVMED_INFO_DB_SHARED_PAGE	(1u << 4) /* a queue's doorbell page also holds other queues'
						   * doorbells, including the admin queue's (stride < 2 KiB) */
#define NVMED_INFO_DBBUF		(1u << 5) /* controller supports Doorbell Buffer Config (not used) */
#define NVMED_INFO_DB_STRICT		(1u << 6) /* driver loaded with strict_doorbells=1: QUEUE_CREATE
						   * fails with EOPNOTSUPP when DB_SHARED_PAGE is set */

struct nvmed_info {
	__u32 abi_version;		/* NVMED_ABI_VERSION */
	__u32 nsid;			/* namespace the device file serves (first active one) */
	__u64 capacity_lbas;		/* namespace size (NSZE) in logical blocks */
	__u32 lba_size;			/* logical block size in bytes (active LBA format) */
	__u32 lba_shift;		/* log2(lba_size) */
	__u32 max_transfer;		/* largest data transfer of one command in bytes
					 * (MDTS, capped at max_buffer_bytes) */
	__u32 max_queue_entries;	/* CAP.MQES + 1 */
	__u32 queue_entries_limit;	/* largest 'entries' QUEUE_CREATE accepts */
	__u32 db_stride;		/* bytes between doorbells: 4 << CAP.DSTRD */
	__u32 awupf_lbas;		/* atomic write unit, power fail, in logical blocks
					 * (NAWUPF if the namespace reports it, else AWUPF), >= 1 */
	__u32 ctrl_page_size;		/* NVMED_CTRL_PAGE_SIZE: PRP page size */
	__u32 max_queues;		/* queue pairs one open file may hold */
	__u32 hw_queues;		/* I/O queue pairs the controller granted to nvmed */
	__u32 max_buffer_bytes;		/* largest single DMA buffer */
	__u32 flags;			/* NVMED_INFO_* */
	__u64 max_dma_bytes;		/* DMA buffer bytes one open file may hold */
	__u32 oncs;			/* Identify Controller ONCS, raw */
	__u16 vid;			/* PCI vendor id */
	__u16 max_dsm_ranges;		/* ranges in one Dataset Management command (256) */
	__u32 nn;			/* number of namespaces (Identify Controller NN) */
	__u32 version;			/* controller VS register */
	char serial[20];		/* not NUL-terminated, space padded */
	char model[40];
	char firmware[8];
	__u32 reserved0;
	__u64 reserved[8];
};

/* Create a polled I/O queue pair: an I/O CQ (interrupts disabled) and an I/O
 * SQ bound to it, with the same qid and the same number of entries.  At most
 * entries - 1 commands may be outstanding at a time. */
struct nvmed_queue_create {
	__u32 entries;		/* in: entries of SQ and CQ, 2..queue_entries_limit,
				 *     0 = default (128, capped); out: actual */
	__u32 flags;		/* in: 0 */
	__u32 qid;		/* out: queue identifier (1..hw_queues) */
	__u32 db_stride;	/* out: bytes between doorbells */
	__u64 sq_offset;	/* out: mmap offset of the SQ ring (entries * 64 bytes) */
	__u64 cq_offset;	/* out: mmap offset of the CQ ring (entries * 16 bytes) */
	__u64 db_offset;	/* out: mmap offset of the doorbell window */
	__u32 sq_bytes;		/* out: length to mmap for the SQ (page multiple) */
	__u32 cq_bytes;		/* out: length to mmap for the CQ (page multiple) */
	__u32 db_bytes;		/* out: length to mmap for the doorbells (1 or 2 pages) */
	__u32 sq_db;		/* out: byte offset of the SQ tail doorbell in the db window */
	__u32 cq_db;		/* out: byte offset of the CQ head doorbell in the db window */
	__u32 reserved0;
	__u64 reserved[4];
};

struct nvmed_queue_delete {
	__u32 qid;
	__u32 flags;		/* 0 */
};

/* Allocate a physically (bus-address) contiguous DMA-coherent buffer.  The
 * PRP entry for byte X of the buffer is dma_addr + X. */
struct nvmed_buf_alloc {
	__u64 size;		/* in: bytes, 1..max_buffer_bytes; out: rounded up to pages */
	__u32 flags;		/* in: 0 */
	__u32 id;		/* out: buffer id (1..65535) */
	__u64 dma_addr;		/* out: bus address of byte 0 */
	__u64 offset;		/* out: mmap offset */
	__u64 reserved[2];
};

struct nvmed_buf_free {
	__u32 id;
	__u32 flags;		/* 0 */
};

/* Driver counters for one controller (also in /sys/class/misc/nvmedN/stats). */
struct nvmed_stats {
	__u32 open_files;	/* open file descriptions of this device */
	__u32 queues_live;	/* I/O queue pairs existing on the controller */
	__u32 rings_live;	/* queue ring allocations not yet freed (a deleted queue's
				 * rings stay until its last mapping is gone) */
	__u32 bufs_live;	/* DMA buffers not yet freed (same rule) */
	__u64 dma_bytes_live;	/* bytes of rings + buffers not yet freed */
	__u64 queues_created;
	__u64 queues_deleted;
	__u64 bufs_allocated;
	__u64 bufs_freed;
	__u64 admin_cmds;	/* admin commands issued since probe */
	__u64 admin_errors;	/* admin commands that completed with an error status */
	__u64 admin_timeouts;
	__u64 leaked_bytes;	/* DMA memory deliberately not freed because the controller
				 * could not be stopped (should always be 0) */
	__u32 ctrl_failed;	/* 1 once the controller was declared failed */
	__u32 module_devs_live;	/* nvmed device structures alive in the module, including
				 * unbound controllers still referenced by open files */
	__u64 module_dma_bytes_live; /* DMA bytes alive in the whole module (all devices) */
	__u64 reserved[3];
};

#define NVMED_IOC_MAGIC		0xD7
#define NVMED_IOC_INFO		_IOR(NVMED_IOC_MAGIC, 0x00, struct nvmed_info)
#define NVMED_IOC_QUEUE_CREATE	_IOWR(NVMED_IOC_MAGIC, 0x10, struct nvmed_queue_create)
#define NVMED_IOC_QUEUE_DELETE	_IOW(NVMED_IOC_MAGIC, 0x11, struct nvmed_queue_delete)
#define NVMED_IOC_BUF_ALLOC	_IOWR(NVMED_IOC_MAGIC, 0x20, struct nvmed_buf_alloc)
#define NVMED_IOC_BUF_FREE	_IOW(NVMED_IOC_MAGIC, 0x21, struct nvmed_buf_free)
#define NVMED_IOC_STATS		_IOR(NVMED_IOC_MAGIC, 0x30, struct nvmed_stats)

/*
 * mmap offsets.  The byte offset passed to mmap() selects one object:
 *
 *	offset = (type << 40) | (id << 24)
 *
 *	type NVMED_MMAP_SQ  (1), id = qid        SQ ring of a queue the caller created
 *	type NVMED_MMAP_CQ  (2), id = qid        CQ ring
 *	type NVMED_MMAP_DB  (3), id = qid        doorbell window of that queue
 *	type NVMED_MMAP_BUF (4), id = buffer id  DMA buffer
 *
 * Bits 0..23 must be zero (a mapping always starts at the object's start);
 * the length may be shorter than the object, never longer (EINVAL).  Mappings
 * must be MAP_SHARED (EINVAL) and not executable (EACCES); the CQ ring can only
 * be mapped read-only (PROT_WRITE: EACCES).  Unknown queue or buffer: ENOENT.
 * Mappings are not inherited across fork().  The ioctls return these offsets,
 * so callers need not compute them.
 *
 * The doorbell window is the 4 KiB BAR page holding the queue's SQ tail
 * doorbell, followed (only if the CQ head doorbell lies on another page, i.e.
 * a doorbell stride of 2 KiB or more) by the page holding the CQ head
 * doorbell.  It never includes BAR page 0 (controller registers) nor a page
 * holding the MSI-X table or PBA.  With a small stride (every QEMU controller,
 * most real ones) that page holds the doorbells of up to 512 queues, among
 * them the admin queue's: see README.md, "Doorbell page".
 *
 * When a queue or buffer is deleted (ioctl) or the controller is unbound, the
 * driver removes the object's pages from every mapping: later accesses raise
 * SIGBUS.  Ring and buffer memory is freed only once no mapping remains.
 */
#define NVMED_MMAP_SQ		1ull
#define NVMED_MMAP_CQ		2ull
#define NVMED_MMAP_DB		3ull
#define NVMED_MMAP_BUF		4ull
#define NVMED_MMAP_TYPE_SHIFT	40
#define NVMED_MMAP_ID_SHIFT	24
#define NVMED_MMAP_ID_MASK	0xffffull
#define NVMED_MMAP_WINDOW	(1ull << NVMED_MMAP_ID_SHIFT)	/* 16 MiB per object */
#define NVMED_MMAP_OFFSET(type, id) \
	(((__u64)(type) << NVMED_MMAP_TYPE_SHIFT) | \
	 (((__u64)(id) & NVMED_MMAP_ID_MASK) << NVMED_MMAP_ID_SHIFT))

#endif /* NVMED_UAPI_H */
