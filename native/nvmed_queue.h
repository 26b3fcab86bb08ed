/* SPDX-License-Identifier: MIT */
/*
 * nvmed_queue.h - user-space NVMe queue pairs over the nvmed driver.
 *
 * A small, dependency-free C layer over /dev/nvmedN: open the device, create
 * polled queue pairs, allocate DMA buffers, build NVMe commands (read, write,
 * flush, dataset management, write zeroes, raw), ring the doorbell, reap
 * completions by polling the phase bit.  No system call on the I/O path.
 *
 * Threading: a queue pair is used by one thread at a time (no locks inside).
 * Different queue pairs may be used from different threads.
 *
 * Used by the native library's nvmed backend (backend_nvmed.c) and by the driver's
 * test program (test/nvme/nvmed_test.c).  Command layouts and status codes are in
 * nvme_spec.h; nvme_status.c must be linked too.
 *
 * Errors are returned as negative errno values; nothing is printed.
 */
#ifndef NVMED_QUEUE_H
#define NVMED_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "nvme_spec.h"
#include "nvmed_uapi.h"

#ifdef __cplusplus
extern "C" {
#endif

struct nvmed_dev {
	int fd;
	struct nvmed_info info;
};

struct nvmed_buffer {
	uint32_t id;
	void *va;
	uint64_t dma;		/* bus address of va[0] */
	size_t size;
};

struct nvmed_cpl {
	void *ctx;		/* caller's context given at submission */
	uint16_t cid;
	uint16_t status;	/* (SCT << 8) | SC, 0 = success */
	uint16_t sqhd;
	uint8_t dnr;		/* do not retry */
	uint8_t more;
	uint32_t dw0;		/* command specific result */
};

struct nvmed_qpair {
	struct nvmed_dev *dev;
	uint32_t qid;
	uint32_t entries;
	struct nvme_sqe *sq;
	volatile struct nvme_cqe *cq;
	volatile uint32_t *sq_db;
	volatile uint32_t *cq_db;
	void *db_map;
	size_t sq_bytes, cq_bytes, db_bytes;

	uint32_t sq_tail;	/* next slot to write */
	uint32_t sq_rung;	/* tail value last written to the doorbell */
	uint32_t cq_head;
	uint32_t cq_rung;	/* head value last written to the CQ doorbell */
	uint32_t cq_phase;
	uint32_t sq_head;	/* controller's SQ head, from the last completion */
	uint32_t outstanding;	/* submitted (prepared) and not yet reaped */

	uint16_t *free_cids;	/* stack of free command ids */
	uint32_t nr_free;
	void **ctx;		/* per-cid caller context */

	uint32_t max_transfer;	/* bytes per command accepted by nvmed_prep_rw */

	/* per-cid scratch pages: PRP lists and DSM range lists */
	uint32_t scratch_pages;	/* pages per cid */
	uint32_t cids_per_chunk;
	uint32_t nr_chunks;
	struct nvmed_buffer *chunks;

	/* counters */
	uint64_t submitted, completed, errors;
};

int nvmed_open(struct nvmed_dev *d, const char *path);
void nvmed_close(struct nvmed_dev *d);
int nvmed_stats(struct nvmed_dev *d, struct nvmed_stats *st);

int nvmed_buffer_alloc(struct nvmed_dev *d, size_t size, struct nvmed_buffer *b);
int nvmed_buffer_free(struct nvmed_dev *d, struct nvmed_buffer *b);

/*
 * entries: SQ = CQ size (2..info.queue_entries_limit); at most entries-1 in flight.
 * The queue keeps PRP-list space for each command id: enough for info.max_transfer
 * (up to 3 pages per id at 4 MiB).  _ex takes a smaller per-command limit to save
 * DMA memory (1 page per id covers transfers up to 2 MiB).
 */
int nvmed_qpair_create(struct nvmed_dev *d, uint32_t entries, struct nvmed_qpair *q);
int nvmed_qpair_create_ex(struct nvmed_dev *d, uint32_t entries, uint32_t max_transfer,
			  struct nvmed_qpair *q);
int nvmed_qpair_destroy(struct nvmed_qpair *q);

/* Commands that can still be submitted now: entries - 1 - outstanding. */
static inline uint32_t nvmed_qpair_room(const struct nvmed_qpair *q)
{
	return q->entries - 1 - q->outstanding;
}

/*
 * Prepare commands in the SQ.  They reach the controller at the next
 * nvmed_ring().  Return the command id (>= 0), -EAGAIN when entries-1
 * commands are outstanding, -EINVAL for bad arguments (range outside the
 * buffer, transfer over max_transfer, misaligned address), -E2BIG if a PRP
 * list would not fit the scratch space.
 */
int nvmed_prep_rw(struct nvmed_qpair *q, int write, uint64_t slba, uint32_t nlb,
		  const struct nvmed_buffer *buf, size_t off, uint32_t flags, void *ctx);
/*
 * The same for memory that is not one contiguous DMA buffer: pages[i] is the bus
 * address of the i-th 4 KiB controller page the transfer touches (page aligned), and
 * the data starts at byte `offset` (dword aligned, < 4096) of pages[0].
 */
int nvmed_prep_rw_pages(struct nvmed_qpair *q, int write, uint64_t slba, uint32_t nlb,
			const uint64_t *pages, uint32_t offset, uint32_t flags, void *ctx);
int nvmed_prep_flush(struct nvmed_qpair *q, void *ctx);
int nvmed_prep_dsm(struct nvmed_qpair *q, const struct nvme_dsm_range *ranges, uint32_t nr,
		   uint32_t attr, void *ctx);
int nvmed_prep_write_zeroes(struct nvmed_qpair *q, uint64_t slba, uint32_t nlb, void *ctx);
/* Raw command: everything but the command id comes from *cmd; data pointers are the caller's. */
int nvmed_prep_raw(struct nvmed_qpair *q, const struct nvme_sqe *cmd, void *ctx);

/* Write the SQ tail doorbell if commands were prepared since the last ring. */
void nvmed_ring(struct nvmed_qpair *q);

/* Reap up to max completions without waiting; updates the CQ head doorbell. */
int nvmed_reap(struct nvmed_qpair *q, struct nvmed_cpl *out, int max);

/*
 * Ring, then poll until at least min completions were reaped (or timeout_ns
 * passed: returns what was reaped so far, possibly 0).  timeout_ns 0 = none.
 */
int nvmed_wait(struct nvmed_qpair *q, struct nvmed_cpl *out, int max, int min, uint64_t timeout_ns);

/* Human-readable text of a status value ((SCT << 8) | SC). */
static inline const char *nvmed_status_str(uint16_t status)
{
	return nvme_status_str(status);
}

#ifdef __cplusplus
}
#endif

#endif /* NVMED_QUEUE_H */
