/* SPDX-License-Identifier: MIT */
/*
 * nvmed_queue.c - user-space NVMe queue pairs over the nvmed driver.
 * See nvmed_queue.h.  Command formats and PRP rules follow the NVMe base
 * specification; the driver ABI is in native/nvmed_uapi.h (the driver in kmod/ builds
 * against the same header).
 */
#define _GNU_SOURCE
#include "nvmed_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u

/*
 * Ordering between normal stores to the (coherent) rings and the MMIO store
 * to the doorbell, and between the phase-bit load and the rest of a CQE.
 * x86 keeps stores in order and loads in order (TSO): a compiler barrier is
 * enough.  Elsewhere use the outer-shareable barriers a device needs.
 */
#if defined(__x86_64__) || defined(__i386__)
#define nvmed_wmb()	__asm__ __volatile__("" ::: "memory")
#define nvmed_rmb()	__asm__ __volatile__("" ::: "memory")
#elif defined(__aarch64__)
#define nvmed_wmb()	__asm__ __volatile__("dmb oshst" ::: "memory")
#define nvmed_rmb()	__asm__ __volatile__("dmb oshld" ::: "memory")
#else
#define nvmed_wmb()	__sync_synchronize()
#define nvmed_rmb()	__sync_synchronize()
#endif

static inline void mmio_write32(volatile uint32_t *reg, uint32_t v)
{
	*reg = v;
}

/* ------------------------------------------------------------------ */

int nvmed_open(struct nvmed_dev *d, const char *path)
{
	memset(d, 0, sizeof(*d));
	d->fd = open(path, O_RDWR | O_CLOEXEC);
	if (d->fd < 0)
		return -errno;
	if (ioctl(d->fd, NVMED_IOC_INFO, &d->info) < 0) {
		int e = -errno;

		close(d->fd);
		d->fd = -1;
		return e;
	}
	if (d->info.abi_version != NVMED_ABI_VERSION) {
		close(d->fd);
		d->fd = -1;
		return -EPROTO;
	}
	return 0;
}

void nvmed_close(struct nvmed_dev *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

int nvmed_stats(struct nvmed_dev *d, struct nvmed_stats *st)
{
	return ioctl(d->fd, NVMED_IOC_STATS, st) < 0 ? -errno : 0;
}

int nvmed_buffer_alloc(struct nvmed_dev *d, size_t size, struct nvmed_buffer *b)
{
	struct nvmed_buf_alloc ba;
	void *va;

	memset(&ba, 0, sizeof(ba));
	ba.size = size;
	if (ioctl(d->fd, NVMED_IOC_BUF_ALLOC, &ba) < 0)
		return -errno;
	va = mmap(NULL, ba.size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, (off_t)ba.offset);
	if (va == MAP_FAILED) {
		int e = -errno;
		struct nvmed_buf_free bf = { .id = ba.id };

		ioctl(d->fd, NVMED_IOC_BUF_FREE, &bf);
		return e;
	}
	b->id = ba.id;
	b->va = va;
	b->dma = ba.dma_addr;
	b->size = ba.size;
	return 0;
}

int nvmed_buffer_free(struct nvmed_dev *d, struct nvmed_buffer *b)
{
	struct nvmed_buf_free bf = { .id = b->id };
	int ret = 0;

	if (b->va)
		munmap(b->va, b->size);
	if (ioctl(d->fd, NVMED_IOC_BUF_FREE, &bf) < 0)
		ret = -errno;
	memset(b, 0, sizeof(*b));
	return ret;
}

/* ------------------------------------------------------------------ */

static void qpair_unmap(struct nvmed_qpair *q)
{
	if (q->sq)
		munmap(q->sq, q->sq_bytes);
	if (q->cq)
		munmap((void *)q->cq, q->cq_bytes);
	if (q->db_map)
		munmap(q->db_map, q->db_bytes);
	q->sq = NULL;
	q->cq = NULL;
	q->db_map = NULL;
}

static void qpair_free_scratch(struct nvmed_qpair *q)
{
	uint32_t i;

	if (q->chunks) {
		for (i = 0; i < q->nr_chunks; i++)
			if (q->chunks[i].va)
				nvmed_buffer_free(q->dev, &q->chunks[i]);
		free(q->chunks);
	}
	q->chunks = NULL;
	free(q->free_cids);
	free(q->ctx);
	q->free_cids = NULL;
	q->ctx = NULL;
}

int nvmed_qpair_create(struct nvmed_dev *d, uint32_t entries, struct nvmed_qpair *q)
{
	return nvmed_qpair_create_ex(d, entries, 0, q);
}

int nvmed_qpair_create_ex(struct nvmed_dev *d, uint32_t entries, uint32_t max_transfer,
			  struct nvmed_qpair *q)
{
	struct nvmed_queue_create qc;
	struct nvmed_queue_delete qd;
	uint32_t i, max_pages, chunk_cids;
	void *p;
	int ret;

	memset(q, 0, sizeof(*q));
	q->dev = d;
	if (!max_transfer || max_transfer > d->info.max_transfer)
		max_transfer = d->info.max_transfer;
	if (max_transfer < d->info.lba_size)
		return -EINVAL;
	q->max_transfer = max_transfer;
	memset(&qc, 0, sizeof(qc));
	qc.entries = entries;
	if (ioctl(d->fd, NVMED_IOC_QUEUE_CREATE, &qc) < 0)
		return -errno;
	q->qid = qc.qid;
	q->entries = qc.entries;
	q->sq_bytes = qc.sq_bytes;
	q->cq_bytes = qc.cq_bytes;
	q->db_bytes = qc.db_bytes;
	q->cq_phase = 1;

	p = mmap(NULL, qc.sq_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, (off_t)qc.sq_offset);
	if (p == MAP_FAILED)
		goto fail_errno;
	q->sq = p;
	p = mmap(NULL, qc.cq_bytes, PROT_READ, MAP_SHARED, d->fd, (off_t)qc.cq_offset);
	if (p == MAP_FAILED)
		goto fail_errno;
	q->cq = p;
	p = mmap(NULL, qc.db_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, (off_t)qc.db_offset);
	if (p == MAP_FAILED)
		goto fail_errno;
	q->db_map = p;
	q->sq_db = (volatile uint32_t *)((char *)p + qc.sq_db);
	q->cq_db = (volatile uint32_t *)((char *)p + qc.cq_db);

	ret = -ENOMEM;
	q->free_cids = calloc(q->entries, sizeof(*q->free_cids));
	q->ctx = calloc(q->entries, sizeof(*q->ctx));
	if (!q->free_cids || !q->ctx)
		goto fail;
	for (i = 0; i < q->entries; i++)
		q->free_cids[i] = (uint16_t)(q->entries - 1 - i);
	q->nr_free = q->entries;

	/*
	 * Scratch space per cid: enough PRP list pages for max_transfer when the
	 * data starts mid-page (it then spans max_transfer / PAGE + 1 pages, the
	 * first one in PRP1): 512 entries in the last list page, 511 plus a chain
	 * pointer in the others.  At least one page: DSM range lists (up to
	 * 256 x 16 bytes) live there too.
	 */
	max_pages = q->max_transfer / PAGE;	/* list entries needed in the worst case */
	q->scratch_pages = max_pages <= 512 ? 1 : 1 + (max_pages - 512 + 510) / 511;
	chunk_cids = d->info.max_buffer_bytes / (q->scratch_pages * PAGE);
	if (chunk_cids < 1) {
		ret = -E2BIG;
		goto fail;
	}
	if (chunk_cids > q->entries)
		chunk_cids = q->entries;
	q->cids_per_chunk = chunk_cids;
	q->nr_chunks = (q->entries + chunk_cids - 1) / chunk_cids;
	q->chunks = calloc(q->nr_chunks, sizeof(*q->chunks));
	if (!q->chunks)
		goto fail;
	for (i = 0; i < q->nr_chunks; i++) {
		uint32_t n = q->entries - i * chunk_cids;

		if (n > chunk_cids)
			n = chunk_cids;
		ret = nvmed_buffer_alloc(d, (size_t)n * q->scratch_pages * PAGE, &q->chunks[i]);
		if (ret)
			goto fail;
	}
	return 0;

fail_errno:
	ret = -errno;
fail:
	qpair_free_scratch(q);
	qpair_unmap(q);
	memset(&qd, 0, sizeof(qd));
	qd.qid = q->qid;
	ioctl(d->fd, NVMED_IOC_QUEUE_DELETE, &qd);
	return ret;
}

int nvmed_qpair_destroy(struct nvmed_qpair *q)
{
	struct nvmed_queue_delete qd;
	int ret = 0;

	qpair_unmap(q);
	memset(&qd, 0, sizeof(qd));
	qd.qid = q->qid;
	if (ioctl(q->dev->fd, NVMED_IOC_QUEUE_DELETE, &qd) < 0)
		ret = -errno;
	qpair_free_scratch(q);
	q->qid = 0;
	return ret;
}

/* ------------------------------------------------------------------ */

static inline void *scratch_va(struct nvmed_qpair *q, uint16_t cid)
{
	struct nvmed_buffer *c = &q->chunks[cid / q->cids_per_chunk];

	return (char *)c->va + (size_t)(cid % q->cids_per_chunk) * q->scratch_pages * PAGE;
}

static inline uint64_t scratch_dma(struct nvmed_qpair *q, uint16_t cid)
{
	struct nvmed_buffer *c = &q->chunks[cid / q->cids_per_chunk];

	return c->dma + (uint64_t)(cid % q->cids_per_chunk) * q->scratch_pages * PAGE;
}

/*
 * PRP rules: PRP1 may point anywhere (dword aligned) and covers up to the
 * end of its page.  If the rest fits one page, PRP2 is that page; otherwise
 * PRP2 points to a PRP list of page addresses.  When more entries remain than
 * a list page holds, its last entry points to the next list page.
 *
 * The data starts at byte `offset` of the first controller page; page i of
 * the transfer is pages[i], or base + i * PAGE when pages is NULL (one
 * contiguous DMA buffer).
 */
static inline uint64_t page_at(const uint64_t *pages, uint64_t base, uint64_t i)
{
	return pages ? pages[i] : base + i * PAGE;
}

static int build_prps(struct nvmed_qpair *q, uint16_t cid, const uint64_t *pages, uint64_t base,
		      uint32_t offset, uint64_t len, uint64_t *prp1, uint64_t *prp2)
{
	uint64_t first = PAGE - offset;
	uint64_t npages, i;
	uint64_t *list;
	uint32_t idx = 0, used = 1;
	const uint32_t per_page = PAGE / 8;

	*prp1 = page_at(pages, base, 0) + offset;
	*prp2 = 0;
	if (len <= first)
		return 0;
	len -= first;
	if (len <= PAGE) {
		*prp2 = page_at(pages, base, 1);
		return 0;
	}
	npages = (len + PAGE - 1) / PAGE;
	list = scratch_va(q, cid);
	*prp2 = scratch_dma(q, cid);
	for (i = 0; i < npages; i++) {
		if (idx == per_page - 1 && i != npages - 1) {
			uint64_t *nl;

			if (used == q->scratch_pages)
				return -E2BIG;
			nl = (uint64_t *)((char *)scratch_va(q, cid) + (size_t)used * PAGE);
			list[idx] = scratch_dma(q, cid) + (uint64_t)used * PAGE;
			list = nl;
			used++;
			idx = 0;
		}
		list[idx++] = page_at(pages, base, i + 1);
	}
	return 0;
}

static int cid_get(struct nvmed_qpair *q)
{
	if (q->outstanding >= q->entries - 1 || !q->nr_free)
		return -EAGAIN;
	return q->free_cids[--q->nr_free];
}

static void cid_put(struct nvmed_qpair *q, uint16_t cid)
{
	q->free_cids[q->nr_free++] = cid;
}

static void sq_push(struct nvmed_qpair *q, const struct nvme_sqe *cmd, void *ctx)
{
	q->ctx[cmd->cid] = ctx;
	memcpy(&q->sq[q->sq_tail], cmd, sizeof(*cmd));
	if (++q->sq_tail == q->entries)
		q->sq_tail = 0;
	q->outstanding++;
	q->submitted++;
}

static int prep_rw(struct nvmed_qpair *q, int write, uint64_t slba, uint32_t nlb,
		   const uint64_t *pages, uint64_t base, uint32_t offset, uint32_t flags, void *ctx)
{
	struct nvmed_info *in = &q->dev->info;
	struct nvme_sqe c;
	uint64_t len = (uint64_t)nlb << in->lba_shift;
	int cid, ret;

	cid = cid_get(q);
	if (cid < 0)
		return cid;
	memset(&c, 0, sizeof(c));
	c.opc = write ? NVME_OPC_WRITE : NVME_OPC_READ;
	c.cid = (uint16_t)cid;
	c.nsid = in->nsid;
	ret = build_prps(q, (uint16_t)cid, pages, base, offset, len, &c.prp1, &c.prp2);
	if (ret) {
		cid_put(q, (uint16_t)cid);
		return ret;
	}
	c.cdw10 = (uint32_t)slba;
	c.cdw11 = (uint32_t)(slba >> 32);
	c.cdw12 = (nlb - 1) | flags;
	sq_push(q, &c, ctx);
	return cid;
}

int nvmed_prep_rw(struct nvmed_qpair *q, int write, uint64_t slba, uint32_t nlb,
		  const struct nvmed_buffer *buf, size_t off, uint32_t flags, void *ctx)
{
	uint64_t len = (uint64_t)nlb << q->dev->info.lba_shift;
	uint64_t start;

	if (!nlb || nlb > NVME_RW_MAX_BLOCKS || len > q->max_transfer || off > buf->size ||
	    len > buf->size - off || (off & 3) || (flags & ~NVME_RW_FUA))
		return -EINVAL;
	start = buf->dma + off;
	return prep_rw(q, write, slba, nlb, NULL, start & ~(uint64_t)(PAGE - 1),
		       (uint32_t)(start & (PAGE - 1)), flags, ctx);
}

int nvmed_prep_rw_pages(struct nvmed_qpair *q, int write, uint64_t slba, uint32_t nlb,
			const uint64_t *pages, uint32_t offset, uint32_t flags, void *ctx)
{
	uint64_t len = (uint64_t)nlb << q->dev->info.lba_shift;

	if (!nlb || nlb > NVME_RW_MAX_BLOCKS || len > q->max_transfer || offset >= PAGE ||
	    (offset & 3) || (pages[0] & (PAGE - 1)) || (flags & ~NVME_RW_FUA))
		return -EINVAL;
	return prep_rw(q, write, slba, nlb, pages, 0, offset, flags, ctx);
}

int nvmed_prep_flush(struct nvmed_qpair *q, void *ctx)
{
	struct nvme_sqe c;
	int cid = cid_get(q);

	if (cid < 0)
		return cid;
	memset(&c, 0, sizeof(c));
	c.opc = NVME_OPC_FLUSH;
	c.cid = (uint16_t)cid;
	c.nsid = q->dev->info.nsid;
	sq_push(q, &c, ctx);
	return cid;
}

int nvmed_prep_dsm(struct nvmed_qpair *q, const struct nvme_dsm_range *ranges, uint32_t nr,
		   uint32_t attr, void *ctx)
{
	struct nvme_sqe c;
	int cid;

	if (!nr || nr > 256)
		return -EINVAL;
	cid = cid_get(q);
	if (cid < 0)
		return cid;
	memcpy(scratch_va(q, (uint16_t)cid), ranges, nr * sizeof(*ranges));
	memset(&c, 0, sizeof(c));
	c.opc = NVME_OPC_DSM;
	c.cid = (uint16_t)cid;
	c.nsid = q->dev->info.nsid;
	c.prp1 = scratch_dma(q, (uint16_t)cid);	/* 4 KiB at most: one page */
	c.cdw10 = nr - 1;
	c.cdw11 = attr;
	sq_push(q, &c, ctx);
	return cid;
}

int nvmed_prep_write_zeroes(struct nvmed_qpair *q, uint64_t slba, uint32_t nlb, void *ctx)
{
	struct nvme_sqe c;
	int cid;

	if (!nlb || nlb > 65536)
		return -EINVAL;
	cid = cid_get(q);
	if (cid < 0)
		return cid;
	memset(&c, 0, sizeof(c));
	c.opc = NVME_OPC_WRITE_ZEROES;
	c.cid = (uint16_t)cid;
	c.nsid = q->dev->info.nsid;
	c.cdw10 = (uint32_t)slba;
	c.cdw11 = (uint32_t)(slba >> 32);
	c.cdw12 = nlb - 1;
	sq_push(q, &c, ctx);
	return cid;
}

int nvmed_prep_raw(struct nvmed_qpair *q, const struct nvme_sqe *cmd, void *ctx)
{
	struct nvme_sqe c = *cmd;
	int cid = cid_get(q);

	if (cid < 0)
		return cid;
	c.cid = (uint16_t)cid;
	sq_push(q, &c, ctx);
	return cid;
}

void nvmed_ring(struct nvmed_qpair *q)
{
	if (q->sq_rung == q->sq_tail)
		return;
	nvmed_wmb();		/* SQEs visible before the doorbell */
	mmio_write32(q->sq_db, q->sq_tail);
	q->sq_rung = q->sq_tail;
}

int nvmed_reap(struct nvmed_qpair *q, struct nvmed_cpl *out, int max)
{
	int n = 0;

	while (n < max) {
		volatile struct nvme_cqe *e = &q->cq[q->cq_head];
		uint16_t st = e->status;
		uint16_t cid;

		if ((st & 1) != q->cq_phase)
			break;
		nvmed_rmb();	/* rest of the entry after its phase bit */
		cid = e->cid;
		if (++q->cq_head == q->entries) {
			q->cq_head = 0;
			q->cq_phase ^= 1;
		}
		if (cid >= q->entries) {	/* not ours: a broken controller; drop it */
			q->errors++;
			continue;
		}
		out[n].cid = cid;
		out[n].ctx = q->ctx[cid];
		out[n].status = (st >> 1) & 0x7ff;
		out[n].more = (st >> 14) & 1;
		out[n].dnr = (st >> 15) & 1;
		out[n].dw0 = e->dw0;
		out[n].sqhd = e->sqhd;
		q->sq_head = e->sqhd;
		if (out[n].status)
			q->errors++;
		cid_put(q, cid);
		q->outstanding--;
		q->completed++;
		n++;
	}
	if (q->cq_head != q->cq_rung) {
		mmio_write32(q->cq_db, q->cq_head);
		q->cq_rung = q->cq_head;
	}
	return n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int nvmed_wait(struct nvmed_qpair *q, struct nvmed_cpl *out, int max, int min, uint64_t timeout_ns)
{
	uint64_t deadline = timeout_ns ? now_ns() + timeout_ns : 0;
	unsigned int spins = 0;
	int n = 0;

	nvmed_ring(q);
	if (min > max)
		min = max;
	while (n < min) {
		n += nvmed_reap(q, out + n, max - n);
		if (n >= min)
			break;
		if (deadline && (++spins & 1023) == 0 && now_ns() > deadline)
			break;
	}
	return n;
}
