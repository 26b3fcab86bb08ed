// SPDX-License-Identifier: GPL-2.0
/*
 * nvmed - user-space NVMe I/O queue pairs on a dedicated controller.
 *
 * A standalone PCI driver.  A controller is bound to it explicitly through
 * driver_override (the id table matches nothing).  The driver resets and
 * enables the controller, owns the admin queue (polled, interrupts masked),
 * identifies the controller and its first active namespace, and exposes
 * /dev/nvmedN.  Through ioctls a process creates polled I/O queue pairs and
 * DMA-coherent buffers and maps them (rings, the queue's doorbell page,
 * buffers) into its address space; it then drives I/O without system calls.
 * Everything an open file created is torn down when it is released.
 *
 * Written from the NVMe base specification (registers, admin commands, PRP
 * rules) and the public kernel API; <linux/nvme.h> supplies the structures.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/capability.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nvme.h>
#include <linux/pci.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>

#include "nvmed_uapi.h"

#define NVMED_ADMIN_DEPTH	32
#define NVMED_DEFAULT_ENTRIES	128
#define NVMED_MAX_HW_QUEUES	1024
#define NVMED_BUF_ID_MAX	0xffff

/* Largest physically contiguous allocation the page allocator serves. */
#if defined(MAX_PAGE_ORDER)
#define NVMED_MAX_ORDER		MAX_PAGE_ORDER
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define NVMED_MAX_ORDER		MAX_ORDER
#else
#define NVMED_MAX_ORDER		(MAX_ORDER - 1)
#endif
#define NVMED_MAX_BUF \
	((PAGE_SIZE << NVMED_MAX_ORDER) < SZ_4M ? (PAGE_SIZE << NVMED_MAX_ORDER) : SZ_4M)

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
#define nvmed_vm_flags_set(vma, f)	vm_flags_set(vma, f)
#define nvmed_vm_flags_clear(vma, f)	vm_flags_clear(vma, f)
#else
#define nvmed_vm_flags_set(vma, f)	((vma)->vm_flags |= (f))
#define nvmed_vm_flags_clear(vma, f)	((vma)->vm_flags &= ~(f))
#endif

static unsigned int max_queues = 8;
module_param(max_queues, uint, 0644);
MODULE_PARM_DESC(max_queues, "I/O queue pairs one open file may hold (default 8)");

static unsigned int max_dma_mb = 64;
module_param(max_dma_mb, uint, 0644);
MODULE_PARM_DESC(max_dma_mb, "DMA buffer MiB one open file may hold (default 64)");

static unsigned int max_entries = 1024;
module_param(max_entries, uint, 0644);
MODULE_PARM_DESC(max_entries, "largest queue size in entries (default 1024, capped by CAP.MQES+1)");

static unsigned int hw_queues = 64;
module_param(hw_queues, uint, 0444);
MODULE_PARM_DESC(hw_queues, "I/O queue pairs to request from each controller (default 64)");

static bool strict_doorbells;
module_param(strict_doorbells, bool, 0644);
MODULE_PARM_DESC(strict_doorbells,
		 "refuse queues whose doorbell page holds other queues' doorbells (default N: allow, as NVMeDirect)");

static unsigned int admin_timeout_ms = 10000;
module_param(admin_timeout_ms, uint, 0644);
MODULE_PARM_DESC(admin_timeout_ms, "admin command timeout in ms (default 10000)");

static DEFINE_IDA(nvmed_instance_ida);
static atomic_t nvmed_devs_live = ATOMIC_INIT(0);
static atomic64_t nvmed_dma_live = ATOMIC64_INIT(0);

struct nvmed_dev {
	struct kref ref;		/* probe + one per open file + one per live DMA object */
	struct pci_dev *pdev;
	void __iomem *bar;
	resource_size_t bar_phys;
	resource_size_t bar_len;
	int instance;
	char name[16];
	struct miscdevice misc;
	bool misc_registered;

	u64 cap;
	u32 db_stride;			/* bytes */
	u32 queue_limit;		/* largest entries accepted */
	u32 nr_hw_queues;		/* usable qids: 1..nr_hw_queues */

	/* admin queue, protected by admin_lock */
	struct mutex admin_lock;
	struct nvme_command *asq;
	dma_addr_t asq_dma;
	struct nvme_completion *acq;
	dma_addr_t acq_dma;
	u16 asq_tail;
	u16 acq_head;
	u8 acq_phase;
	u16 admin_cid;
	void *idbuf;
	dma_addr_t idbuf_dma;
	bool ctrl_off;			/* controller disabled: no admin, no queues */
	bool dma_unsafe;		/* controller could not be stopped: never free DMA memory */

	/* files, qids, dead flag: protected by lock */
	struct mutex lock;
	struct list_head files;
	unsigned long *qid_map;
	bool dead;			/* removed: no new work */

	/* doorbell mappings: faults take it for reading, invalidation for writing */
	struct rw_semaphore db_sem;
	bool bar_gone;

	struct ida buf_ida;
	struct nvmed_info info;

	/* MSI-X structures in BAR 0 (never mapped to user space) */
	u64 msix_lo[2], msix_hi[2];
	int nr_msix_ranges;

	/* counters */
	atomic_t open_files;
	atomic_t queues_live;
	atomic_t rings_live;
	atomic_t bufs_live;
	atomic64_t dma_bytes_live;
	atomic64_t queues_created;
	atomic64_t queues_deleted;
	atomic64_t bufs_allocated;
	atomic64_t bufs_freed;
	atomic64_t admin_cmds;
	atomic64_t admin_errors;
	atomic64_t admin_timeouts;
	atomic64_t leaked_bytes;
	bool failed;
};

/* DMA-coherent memory mapped to user space: a queue ring or a buffer. */
struct nvmed_mem {
	struct kref ref;		/* owner + one per mapping */
	struct nvmed_dev *dev;
	void *cpu;
	dma_addr_t dma;
	size_t size;
	bool ring;
};

/* The doorbell window of one queue. */
struct nvmed_dbmap {
	struct kref ref;		/* owner queue + one per mapping */
	struct nvmed_dev *dev;
	unsigned long base_pgoff;
	unsigned long pfn[2];
	unsigned int npages;
	bool valid;			/* protected by dev->db_sem */
};

struct nvmed_queue {
	struct list_head node;
	u16 qid;
	u32 entries;
	bool live;			/* exists on the controller */
	struct nvmed_mem *sq;
	struct nvmed_mem *cq;
	struct nvmed_dbmap *db;
	u32 sq_db, cq_db;		/* offsets of the doorbells in the window */
};

struct nvmed_buf {
	struct list_head node;
	u32 id;
	struct nvmed_mem *mem;
};

struct nvmed_file {
	struct nvmed_dev *dev;
	struct file *filp;
	struct mutex lock;		/* queues, bufs, counters below */
	struct list_head queues;
	struct list_head bufs;
	unsigned int nr_queues;
	u64 dma_bytes;
	struct list_head node;		/* in dev->files */
};

/* ------------------------------------------------------------------ */
/* device lifetime                                                      */

static void nvmed_dev_free(struct kref *ref)
{
	struct nvmed_dev *dev = container_of(ref, struct nvmed_dev, ref);

	ida_destroy(&dev->buf_ida);
	bitmap_free(dev->qid_map);
	ida_free(&nvmed_instance_ida, dev->instance);
	pci_dev_put(dev->pdev);
	kfree(dev);
	atomic_dec(&nvmed_devs_live);
}

static void nvmed_dev_put(struct nvmed_dev *dev)
{
	kref_put(&dev->ref, nvmed_dev_free);
}

/* ------------------------------------------------------------------ */
/* DMA memory objects                                                   */

static struct nvmed_mem *nvmed_mem_alloc(struct nvmed_dev *dev, size_t size, bool ring)
{
	struct nvmed_mem *mem;

	mem = kzalloc(sizeof(*mem), GFP_KERNEL);
	if (!mem)
		return NULL;
	mem->size = PAGE_ALIGN(size);
	mem->cpu = dma_alloc_coherent(&dev->pdev->dev, mem->size, &mem->dma,
				      GFP_KERNEL | __GFP_NOWARN);
	if (!mem->cpu) {
		kfree(mem);
		return NULL;
	}
	memset(mem->cpu, 0, mem->size);
	kref_init(&mem->ref);
	kref_get(&dev->ref);
	mem->dev = dev;
	mem->ring = ring;
	if (ring)
		atomic_inc(&dev->rings_live);
	else
		atomic_inc(&dev->bufs_live);
	atomic64_add(mem->size, &dev->dma_bytes_live);
	atomic64_add(mem->size, &nvmed_dma_live);
	return mem;
}

static void nvmed_mem_release(struct kref *ref)
{
	struct nvmed_mem *mem = container_of(ref, struct nvmed_mem, ref);
	struct nvmed_dev *dev = mem->dev;

	if (READ_ONCE(dev->dma_unsafe)) {
		/* The controller may still write here: leaking is the safe choice. */
		atomic64_add(mem->size, &dev->leaked_bytes);
		pr_err("%s: leaking %zu bytes of DMA memory (controller not stopped)\n",
		       dev->name, mem->size);
	} else {
		dma_free_coherent(&dev->pdev->dev, mem->size, mem->cpu, mem->dma);
	}
	if (mem->ring)
		atomic_dec(&dev->rings_live);
	else
		atomic_dec(&dev->bufs_live);
	atomic64_sub(mem->size, &dev->dma_bytes_live);
	atomic64_sub(mem->size, &nvmed_dma_live);
	kfree(mem);
	nvmed_dev_put(dev);
}

static void nvmed_mem_put(struct nvmed_mem *mem)
{
	if (mem)
		kref_put(&mem->ref, nvmed_mem_release);
}

static void nvmed_dbmap_release(struct kref *ref)
{
	kfree(container_of(ref, struct nvmed_dbmap, ref));
}

static void nvmed_dbmap_put(struct nvmed_dbmap *db)
{
	if (db)
		kref_put(&db->ref, nvmed_dbmap_release);
}

/* ------------------------------------------------------------------ */
/* controller registers                                                 */

static unsigned int nvmed_ready_timeout_ms(struct nvmed_dev *dev)
{
	return (NVME_CAP_TIMEOUT(dev->cap) + 1) * 500;
}

static int nvmed_wait_csts(struct nvmed_dev *dev, u32 mask, u32 val, unsigned int ms)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(ms);

	for (;;) {
		u32 csts = readl(dev->bar + NVME_REG_CSTS);

		if (csts == ~0U)
			return -ENODEV;
		if ((csts & mask) == val)
			return 0;
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		usleep_range(500, 1000);
	}
}

/* Clear CC.EN and wait for CSTS.RDY to drop.  Stops all DMA of the controller. */
static int nvmed_ctrl_disable(struct nvmed_dev *dev)
{
	u32 cc = readl(dev->bar + NVME_REG_CC);

	if (cc == ~0U)
		return -ENODEV;
	cc &= ~(NVME_CC_SHN_MASK | NVME_CC_ENABLE);
	writel(cc, dev->bar + NVME_REG_CC);
	return nvmed_wait_csts(dev, NVME_CSTS_RDY, 0, nvmed_ready_timeout_ms(dev));
}

/* Normal shutdown notification (flushes a volatile cache), then disable. */
static int nvmed_ctrl_shutdown(struct nvmed_dev *dev)
{
	u32 cc = readl(dev->bar + NVME_REG_CC);
	int ret;

	if (cc == ~0U)
		return -ENODEV;
	if (cc & NVME_CC_ENABLE) {
		cc = (cc & ~NVME_CC_SHN_MASK) | NVME_CC_SHN_NORMAL;
		writel(cc, dev->bar + NVME_REG_CC);
		ret = nvmed_wait_csts(dev, NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_CMPLT, 10000);
		if (ret)
			dev_warn(&dev->pdev->dev, "shutdown notification not completed (%d)\n", ret);
	}
	return nvmed_ctrl_disable(dev);
}

static int nvmed_ctrl_enable(struct nvmed_dev *dev)
{
	u32 aqa = ((NVMED_ADMIN_DEPTH - 1) << 16) | (NVMED_ADMIN_DEPTH - 1);
	u32 cc;
	int ret;

	ret = nvmed_ctrl_disable(dev);
	if (ret)
		return ret;

	memset(dev->asq, 0, NVMED_ADMIN_DEPTH * sizeof(*dev->asq));
	memset(dev->acq, 0, NVMED_ADMIN_DEPTH * sizeof(*dev->acq));
	dev->asq_tail = 0;
	dev->acq_head = 0;
	dev->acq_phase = 1;

	writel(aqa, dev->bar + NVME_REG_AQA);
	lo_hi_writeq(dev->asq_dma, dev->bar + NVME_REG_ASQ);
	lo_hi_writeq(dev->acq_dma, dev->bar + NVME_REG_ACQ);

	/* NVM command set, 4 KiB pages (MPS 0), round robin, 64/16-byte entries */
	cc = NVME_CC_CSS_NVM | (0 << NVME_CC_MPS_SHIFT) | NVME_CC_AMS_RR |
	     NVME_CC_SHN_NONE | NVME_CC_IOSQES | NVME_CC_IOCQES;
	writel(cc, dev->bar + NVME_REG_CC);
	writel(cc | NVME_CC_ENABLE, dev->bar + NVME_REG_CC);

	ret = nvmed_wait_csts(dev, NVME_CSTS_RDY | NVME_CSTS_CFS, NVME_CSTS_RDY,
			      nvmed_ready_timeout_ms(dev));
	if (ret) {
		dev_err(&dev->pdev->dev, "controller not ready (CSTS %#x)\n",
			readl(dev->bar + NVME_REG_CSTS));
		return ret;
	}
	/* No interrupts: mask the pin/MSI interrupt of the admin CQ. */
	writel(~0U, dev->bar + NVME_REG_INTMS);
	return 0;
}

/*
 * The controller stopped answering or a queue could not be deleted: stop it
 * (CC.EN = 0), which ends all its DMA, so that memory can be freed safely.
 * If even that fails, DMA memory is leaked rather than freed.
 * Called with admin_lock held.
 */
static void nvmed_ctrl_fail(struct nvmed_dev *dev, const char *why)
{
	if (dev->ctrl_off)
		return;
	dev_err(&dev->pdev->dev, "%s: disabling controller\n", why);
	dev->failed = true;
	dev->ctrl_off = true;
	if (nvmed_ctrl_disable(dev)) {
		dev_err(&dev->pdev->dev, "controller did not stop; DMA memory will be leaked\n");
		WRITE_ONCE(dev->dma_unsafe, true);
	}
}

static void __iomem *nvmed_sq_db(struct nvmed_dev *dev, u16 qid)
{
	return dev->bar + NVME_REG_DBS + (2 * qid) * dev->db_stride;
}

static void __iomem *nvmed_cq_db(struct nvmed_dev *dev, u16 qid)
{
	return dev->bar + NVME_REG_DBS + (2 * qid + 1) * dev->db_stride;
}

/* ------------------------------------------------------------------ */
/* admin queue (polled)                                                 */

/*
 * Issue one admin command and poll for its completion.  Returns 0, -EIO
 * with *status set to the NVMe status (SCT << 8 | SC) on an error status,
 * -ETIMEDOUT (controller then disabled) or -ENODEV (controller off).
 */
static int nvmed_admin(struct nvmed_dev *dev, struct nvme_command *cmd, u32 *result, u16 *status)
{
	unsigned long deadline;
	unsigned int spins = 0;
	u16 cid, slot;
	int ret = 0;

	if (status)
		*status = 0;
	mutex_lock(&dev->admin_lock);
	if (dev->ctrl_off) {
		ret = -ENODEV;
		goto out;
	}
	/* never cid 0: that is what a zeroed (cleared) slot carries */
	cid = ++dev->admin_cid;
	if (!cid)
		cid = ++dev->admin_cid;
	cmd->common.command_id = cid;
	slot = dev->asq_tail;
	memcpy(&dev->asq[slot], cmd, sizeof(*cmd));
	dev->asq_tail = (slot + 1) % NVMED_ADMIN_DEPTH;
	atomic64_inc(&dev->admin_cmds);
	writel(dev->asq_tail, nvmed_sq_db(dev, 0));

	deadline = jiffies + msecs_to_jiffies(admin_timeout_ms ? admin_timeout_ms : 1);
	for (;;) {
		struct nvme_completion *cqe = &dev->acq[dev->acq_head];
		u16 st = le16_to_cpu(READ_ONCE(cqe->status));

		if ((st & 1) == dev->acq_phase) {
			u16 got;

			dma_rmb();
			got = READ_ONCE(cqe->command_id);
			if (++dev->acq_head == NVMED_ADMIN_DEPTH) {
				dev->acq_head = 0;
				dev->acq_phase ^= 1;
			}
			writel(dev->acq_head, nvmed_cq_db(dev, 0));
			if (got != cid) {
				dev_warn_ratelimited(&dev->pdev->dev,
						     "unexpected admin completion cid %u (waiting for %u)\n",
						     got, cid);
				continue;
			}
			if (result)
				*result = le32_to_cpu(cqe->result.u32);
			st >>= 1;
			st &= 0x7ff;	/* SCT and SC; drop CRD, More, DNR */
			if (st) {
				atomic64_inc(&dev->admin_errors);
				if (status)
					*status = st;
				ret = -EIO;
			}
			break;
		}
		if (time_after(jiffies, deadline)) {
			atomic64_inc(&dev->admin_timeouts);
			dev_err(&dev->pdev->dev, "admin command %#x timed out\n", cmd->common.opcode);
			nvmed_ctrl_fail(dev, "admin timeout");
			ret = -ETIMEDOUT;
			goto out;
		}
		if (++spins < 200)
			udelay(1);
		else
			usleep_range(20, 100);
	}
	/*
	 * Clear the consumed slot: if a stray doorbell write (another queue's
	 * doorbells share this BAR page) ever replays it, the controller reads
	 * opcode 0 with qid 0 (Delete I/O SQ of the admin queue), which fails
	 * harmlessly, instead of re-running a real command.
	 */
	memset(&dev->asq[slot], 0, sizeof(dev->asq[slot]));
out:
	mutex_unlock(&dev->admin_lock);
	return ret;
}

static int nvmed_identify(struct nvmed_dev *dev, u8 cns, u32 nsid)
{
	struct nvme_command c = { };
	u16 st;
	int ret;

	c.identify.opcode = nvme_admin_identify;
	c.identify.nsid = cpu_to_le32(nsid);
	c.identify.dptr.prp1 = cpu_to_le64(dev->idbuf_dma);
	c.identify.cns = cns;
	memset(dev->idbuf, 0, NVME_IDENTIFY_DATA_SIZE);
	ret = nvmed_admin(dev, &c, NULL, &st);
	if (ret == -EIO)
		dev_warn(&dev->pdev->dev, "identify cns %u nsid %u failed, status %#x\n",
			 cns, nsid, st);
	return ret;
}

static int nvmed_delete_hw_queue(struct nvmed_dev *dev, u8 opcode, u16 qid)
{
	struct nvme_command c = { };
	u16 st;
	int ret;

	c.delete_queue.opcode = opcode;
	c.delete_queue.qid = cpu_to_le16(qid);
	ret = nvmed_admin(dev, &c, NULL, &st);
	if (ret == -EIO)
		dev_warn(&dev->pdev->dev, "delete %s queue %u failed, status %#x\n",
			 opcode == nvme_admin_delete_sq ? "submission" : "completion", qid, st);
	return ret;
}

/* ------------------------------------------------------------------ */
/* queues                                                               */

/* Is BAR 0 page 'off' (byte offset, page aligned) safe to map to user space? */
static bool nvmed_bar_page_ok(struct nvmed_dev *dev, u64 off)
{
	int i;

	if (off < PAGE_SIZE || off + PAGE_SIZE > dev->bar_len)
		return false;
	for (i = 0; i < dev->nr_msix_ranges; i++)
		if (off < dev->msix_hi[i] && off + PAGE_SIZE > dev->msix_lo[i])
			return false;
	return true;
}

static bool nvmed_qid_db_ok(struct nvmed_dev *dev, u16 qid)
{
	u64 sq = NVME_REG_DBS + (u64)(2 * qid) * dev->db_stride;
	u64 cq = NVME_REG_DBS + (u64)(2 * qid + 1) * dev->db_stride;

	return nvmed_bar_page_ok(dev, round_down(sq, PAGE_SIZE)) &&
	       nvmed_bar_page_ok(dev, round_down(cq, PAGE_SIZE));
}

static struct nvmed_queue *nvmed_find_queue(struct nvmed_file *nf, u32 qid)
{
	struct nvmed_queue *q;

	list_for_each_entry(q, &nf->queues, node)
		if (q->qid == qid)
			return q;
	return NULL;
}

static struct nvmed_buf *nvmed_find_buf(struct nvmed_file *nf, u32 id)
{
	struct nvmed_buf *b;

	list_for_each_entry(b, &nf->bufs, node)
		if (b->id == id)
			return b;
	return NULL;
}

static void nvmed_zap(struct nvmed_file *nf, u64 type, u32 id)
{
	unmap_mapping_range(nf->filp->f_mapping, NVMED_MMAP_OFFSET(type, id),
			    NVMED_MMAP_WINDOW, 1);
}

static int nvmed_qid_get(struct nvmed_dev *dev)
{
	unsigned long qid;
	int ret;

	mutex_lock(&dev->lock);
	if (dev->dead) {
		ret = -ENODEV;
	} else {
		qid = find_next_zero_bit(dev->qid_map, dev->nr_hw_queues + 1, 1);
		if (qid > dev->nr_hw_queues) {
			ret = -ENOSPC;
		} else {
			set_bit(qid, dev->qid_map);
			ret = qid;
		}
	}
	mutex_unlock(&dev->lock);
	return ret;
}

static void nvmed_qid_put(struct nvmed_dev *dev, u16 qid)
{
	mutex_lock(&dev->lock);
	clear_bit(qid, dev->qid_map);
	mutex_unlock(&dev->lock);
}

/*
 * Before deleting a queue whose owner may have died without consuming
 * completions: find the controller's CQ tail from the phase bits and move
 * the CQ head there, so a full CQ cannot stall the SQ deletion (which must
 * post completions for aborted commands).
 */
static void nvmed_cq_release_entries(struct nvmed_dev *dev, struct nvmed_queue *q)
{
	struct nvme_completion *cqes = q->cq->cpu;
	u32 i, first_phase = le16_to_cpu(READ_ONCE(cqes[0].status)) & 1;

	for (i = 1; i < q->entries; i++)
		if ((le16_to_cpu(READ_ONCE(cqes[i].status)) & 1) != first_phase)
			break;
	/* no phase change inside the ring: the change is at the wrap, the tail is 0 */
	if (i == q->entries)
		i = 0;
	mutex_lock(&dev->admin_lock);
	if (!dev->ctrl_off)
		writel(i, nvmed_cq_db(dev, q->qid));
	mutex_unlock(&dev->admin_lock);
}

/* Delete a queue pair on the controller.  Any failure stops the controller. */
static void nvmed_queue_hw_delete(struct nvmed_dev *dev, struct nvmed_queue *q)
{
	int ret;

	if (!q->live)
		return;
	q->live = false;
	atomic_dec(&dev->queues_live);
	atomic64_inc(&dev->queues_deleted);
	nvmed_cq_release_entries(dev, q);
	ret = nvmed_delete_hw_queue(dev, nvme_admin_delete_sq, q->qid);
	if (!ret)
		ret = nvmed_delete_hw_queue(dev, nvme_admin_delete_cq, q->qid);
	if (ret && ret != -ENODEV) {
		mutex_lock(&dev->admin_lock);
		nvmed_ctrl_fail(dev, "queue deletion failed");
		mutex_unlock(&dev->admin_lock);
	}
}

/* Called with nf->lock held. */
static void nvmed_queue_destroy(struct nvmed_file *nf, struct nvmed_queue *q)
{
	struct nvmed_dev *dev = nf->dev;

	/* First take the doorbells away, so the owner cannot ring them meanwhile. */
	down_write(&dev->db_sem);
	q->db->valid = false;
	up_write(&dev->db_sem);
	nvmed_zap(nf, NVMED_MMAP_DB, q->qid);

	nvmed_queue_hw_delete(dev, q);

	nvmed_zap(nf, NVMED_MMAP_SQ, q->qid);
	nvmed_zap(nf, NVMED_MMAP_CQ, q->qid);
	nvmed_qid_put(dev, q->qid);
	list_del(&q->node);
	nf->nr_queues--;
	nvmed_dbmap_put(q->db);
	nvmed_mem_put(q->sq);
	nvmed_mem_put(q->cq);
	kfree(q);
}

static int nvmed_queue_hw_create(struct nvmed_dev *dev, struct nvmed_queue *q)
{
	struct nvme_command c = { };
	u16 st;
	int ret;

	c.create_cq.opcode = nvme_admin_create_cq;
	c.create_cq.prp1 = cpu_to_le64(q->cq->dma);
	c.create_cq.cqid = cpu_to_le16(q->qid);
	c.create_cq.qsize = cpu_to_le16(q->entries - 1);
	c.create_cq.cq_flags = cpu_to_le16(NVME_QUEUE_PHYS_CONTIG);	/* IEN = 0 */
	c.create_cq.irq_vector = 0;
	ret = nvmed_admin(dev, &c, NULL, &st);
	if (ret) {
		if (ret == -EIO)
			dev_warn(&dev->pdev->dev, "create I/O CQ %u failed, status %#x\n", q->qid, st);
		return ret;
	}

	memset(&c, 0, sizeof(c));
	c.create_sq.opcode = nvme_admin_create_sq;
	c.create_sq.prp1 = cpu_to_le64(q->sq->dma);
	c.create_sq.sqid = cpu_to_le16(q->qid);
	c.create_sq.qsize = cpu_to_le16(q->entries - 1);
	c.create_sq.sq_flags = cpu_to_le16(NVME_QUEUE_PHYS_CONTIG | NVME_SQ_PRIO_MEDIUM);
	c.create_sq.cqid = cpu_to_le16(q->qid);
	ret = nvmed_admin(dev, &c, NULL, &st);
	if (ret) {
		if (ret == -EIO)
			dev_warn(&dev->pdev->dev, "create I/O SQ %u failed, status %#x\n", q->qid, st);
		if (nvmed_delete_hw_queue(dev, nvme_admin_delete_cq, q->qid) == -EIO) {
			mutex_lock(&dev->admin_lock);
			nvmed_ctrl_fail(dev, "CQ cleanup failed");
			mutex_unlock(&dev->admin_lock);
		}
		return ret;
	}
	q->live = true;
	atomic_inc(&dev->queues_live);
	atomic64_inc(&dev->queues_created);
	return 0;
}

static bool nvmed_reserved_zero(const __u64 *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (r[i])
			return false;
	return true;
}

static long nvmed_ioc_queue_create(struct nvmed_file *nf, void __user *argp)
{
	struct nvmed_dev *dev = nf->dev;
	struct nvmed_queue_create qc;
	struct nvmed_queue *q;
	struct nvmed_dbmap *db;
	u64 sq_off, cq_off, sq_page, cq_page;
	u32 entries;
	int qid, ret;

	if (copy_from_user(&qc, argp, sizeof(qc)))
		return -EFAULT;
	if (qc.flags || qc.reserved0 || !nvmed_reserved_zero(qc.reserved, ARRAY_SIZE(qc.reserved)))
		return -EINVAL;
	entries = qc.entries ? qc.entries : min_t(u32, NVMED_DEFAULT_ENTRIES, dev->queue_limit);
	if (entries < 2 || entries > dev->queue_limit)
		return -EINVAL;
	if (READ_ONCE(strict_doorbells) && (dev->info.flags & NVMED_INFO_DB_SHARED_PAGE))
		return -EOPNOTSUPP;

	mutex_lock(&nf->lock);
	if (nf->nr_queues >= READ_ONCE(max_queues)) {
		ret = -EMFILE;
		goto unlock;
	}
	qid = nvmed_qid_get(dev);
	if (qid < 0) {
		ret = qid;
		goto unlock;
	}

	ret = -ENOMEM;
	q = kzalloc(sizeof(*q), GFP_KERNEL);
	db = kzalloc(sizeof(*db), GFP_KERNEL);
	if (!q || !db)
		goto free_q;
	q->qid = qid;
	q->entries = entries;
	q->db = db;
	q->sq = nvmed_mem_alloc(dev, (size_t)entries * NVMED_SQE_SIZE, true);
	q->cq = nvmed_mem_alloc(dev, (size_t)entries * NVMED_CQE_SIZE, true);
	if (!q->sq || !q->cq)
		goto free_q;

	sq_off = NVME_REG_DBS + (u64)(2 * qid) * dev->db_stride;
	cq_off = NVME_REG_DBS + (u64)(2 * qid + 1) * dev->db_stride;
	sq_page = round_down(sq_off, PAGE_SIZE);
	cq_page = round_down(cq_off, PAGE_SIZE);
	kref_init(&db->ref);
	db->dev = dev;
	db->base_pgoff = NVMED_MMAP_OFFSET(NVMED_MMAP_DB, qid) >> PAGE_SHIFT;
	db->pfn[0] = (dev->bar_phys + sq_page) >> PAGE_SHIFT;
	db->npages = 1;
	q->sq_db = sq_off - sq_page;
	q->cq_db = cq_off - sq_page;
	if (cq_page != sq_page) {
		db->pfn[1] = (dev->bar_phys + cq_page) >> PAGE_SHIFT;
		db->npages = 2;
		q->cq_db = PAGE_SIZE + (cq_off - cq_page);
	}

	ret = nvmed_queue_hw_create(dev, q);
	if (ret)
		goto free_q;
	db->valid = true;
	list_add_tail(&q->node, &nf->queues);
	nf->nr_queues++;

	memset(&qc, 0, sizeof(qc));
	qc.entries = entries;
	qc.qid = qid;
	qc.db_stride = dev->db_stride;
	qc.sq_offset = NVMED_MMAP_OFFSET(NVMED_MMAP_SQ, qid);
	qc.cq_offset = NVMED_MMAP_OFFSET(NVMED_MMAP_CQ, qid);
	qc.db_offset = NVMED_MMAP_OFFSET(NVMED_MMAP_DB, qid);
	qc.sq_bytes = q->sq->size;
	qc.cq_bytes = q->cq->size;
	qc.db_bytes = db->npages * PAGE_SIZE;
	qc.sq_db = q->sq_db;
	qc.cq_db = q->cq_db;
	mutex_unlock(&nf->lock);

	/* never copy to user space under nf->lock: a fault takes mmap_lock */
	if (copy_to_user(argp, &qc, sizeof(qc))) {
		mutex_lock(&nf->lock);
		q = nvmed_find_queue(nf, qid);
		if (q)
			nvmed_queue_destroy(nf, q);
		mutex_unlock(&nf->lock);
		return -EFAULT;
	}
	return 0;

free_q:
	if (q) {
		nvmed_mem_put(q->sq);
		nvmed_mem_put(q->cq);
	}
	kfree(db);
	kfree(q);
	nvmed_qid_put(dev, qid);
unlock:
	mutex_unlock(&nf->lock);
	return ret;
}

static long nvmed_ioc_queue_delete(struct nvmed_file *nf, void __user *argp)
{
	struct nvmed_queue_delete qd;
	struct nvmed_queue *q;
	long ret = 0;

	if (copy_from_user(&qd, argp, sizeof(qd)))
		return -EFAULT;
	if (qd.flags)
		return -EINVAL;
	mutex_lock(&nf->lock);
	q = nvmed_find_queue(nf, qd.qid);
	if (q)
		nvmed_queue_destroy(nf, q);
	else
		ret = -ENOENT;
	mutex_unlock(&nf->lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* buffers                                                              */

static void nvmed_buf_destroy(struct nvmed_file *nf, struct nvmed_buf *b)
{
	nvmed_zap(nf, NVMED_MMAP_BUF, b->id);
	list_del(&b->node);
	nf->dma_bytes -= b->mem->size;
	ida_free(&nf->dev->buf_ida, b->id);
	atomic64_inc(&nf->dev->bufs_freed);
	nvmed_mem_put(b->mem);
	kfree(b);
}

static long nvmed_ioc_buf_alloc(struct nvmed_file *nf, void __user *argp)
{
	struct nvmed_dev *dev = nf->dev;
	struct nvmed_buf_alloc ba;
	struct nvmed_buf *b;
	u64 size, quota;
	int id;
	long ret;

	if (copy_from_user(&ba, argp, sizeof(ba)))
		return -EFAULT;
	if (ba.flags || !nvmed_reserved_zero(ba.reserved, ARRAY_SIZE(ba.reserved)))
		return -EINVAL;
	if (!ba.size || ba.size > NVMED_MAX_BUF)
		return -EINVAL;
	size = PAGE_ALIGN(ba.size);
	quota = (u64)READ_ONCE(max_dma_mb) << 20;

	mutex_lock(&nf->lock);
	if (READ_ONCE(dev->dead)) {
		ret = -ENODEV;
		goto unlock;
	}
	if (nf->dma_bytes + size > quota) {
		ret = -EDQUOT;
		goto unlock;
	}
	ret = -ENOMEM;
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		goto unlock;
	id = ida_alloc_range(&dev->buf_ida, 1, NVMED_BUF_ID_MAX, GFP_KERNEL);
	if (id < 0) {
		ret = id == -ENOSPC ? -ENOSPC : -ENOMEM;
		kfree(b);
		goto unlock;
	}
	b->id = id;
	b->mem = nvmed_mem_alloc(dev, size, false);
	if (!b->mem) {
		ida_free(&dev->buf_ida, id);
		kfree(b);
		goto unlock;
	}
	list_add_tail(&b->node, &nf->bufs);
	nf->dma_bytes += b->mem->size;
	atomic64_inc(&dev->bufs_allocated);

	memset(&ba, 0, sizeof(ba));
	ba.size = b->mem->size;
	ba.id = id;
	ba.dma_addr = b->mem->dma;
	ba.offset = NVMED_MMAP_OFFSET(NVMED_MMAP_BUF, id);
	mutex_unlock(&nf->lock);

	if (copy_to_user(argp, &ba, sizeof(ba))) {
		mutex_lock(&nf->lock);
		b = nvmed_find_buf(nf, id);
		if (b)
			nvmed_buf_destroy(nf, b);
		mutex_unlock(&nf->lock);
		return -EFAULT;
	}
	return 0;
unlock:
	mutex_unlock(&nf->lock);
	return ret;
}

static long nvmed_ioc_buf_free(struct nvmed_file *nf, void __user *argp)
{
	struct nvmed_buf_free bf;
	struct nvmed_buf *b;
	long ret = 0;

	if (copy_from_user(&bf, argp, sizeof(bf)))
		return -EFAULT;
	if (bf.flags)
		return -EINVAL;
	mutex_lock(&nf->lock);
	b = nvmed_find_buf(nf, bf.id);
	if (b)
		nvmed_buf_destroy(nf, b);
	else
		ret = -ENOENT;
	mutex_unlock(&nf->lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* info and stats                                                       */

static void nvmed_fill_stats(struct nvmed_dev *dev, struct nvmed_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->open_files = atomic_read(&dev->open_files);
	s->queues_live = atomic_read(&dev->queues_live);
	s->rings_live = atomic_read(&dev->rings_live);
	s->bufs_live = atomic_read(&dev->bufs_live);
	s->dma_bytes_live = atomic64_read(&dev->dma_bytes_live);
	s->queues_created = atomic64_read(&dev->queues_created);
	s->queues_deleted = atomic64_read(&dev->queues_deleted);
	s->bufs_allocated = atomic64_read(&dev->bufs_allocated);
	s->bufs_freed = atomic64_read(&dev->bufs_freed);
	s->admin_cmds = atomic64_read(&dev->admin_cmds);
	s->admin_errors = atomic64_read(&dev->admin_errors);
	s->admin_timeouts = atomic64_read(&dev->admin_timeouts);
	s->leaked_bytes = atomic64_read(&dev->leaked_bytes);
	s->ctrl_failed = READ_ONCE(dev->failed);
	s->module_devs_live = atomic_read(&nvmed_devs_live);
	s->module_dma_bytes_live = atomic64_read(&nvmed_dma_live);
}

static void nvmed_fill_info(struct nvmed_dev *dev, struct nvmed_info *info)
{
	*info = dev->info;
	if (READ_ONCE(strict_doorbells))
		info->flags |= NVMED_INFO_DB_STRICT;
	info->max_queues = min_t(u32, READ_ONCE(max_queues), dev->nr_hw_queues);
	info->max_dma_bytes = (u64)READ_ONCE(max_dma_mb) << 20;
}

static long nvmed_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct nvmed_file *nf = filp->private_data;
	struct nvmed_dev *dev = nf->dev;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case NVMED_IOC_INFO: {
		struct nvmed_info info;

		nvmed_fill_info(dev, &info);
		return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
	}
	case NVMED_IOC_STATS: {
		struct nvmed_stats st;

		nvmed_fill_stats(dev, &st);
		return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
	}
	case NVMED_IOC_QUEUE_CREATE:
		if (READ_ONCE(dev->dead))
			return -ENODEV;
		return nvmed_ioc_queue_create(nf, argp);
	case NVMED_IOC_QUEUE_DELETE:
		return nvmed_ioc_queue_delete(nf, argp);
	case NVMED_IOC_BUF_ALLOC:
		return nvmed_ioc_buf_alloc(nf, argp);
	case NVMED_IOC_BUF_FREE:
		return nvmed_ioc_buf_free(nf, argp);
	default:
		return -ENOTTY;
	}
}

/* ------------------------------------------------------------------ */
/* mmap                                                                 */

static void nvmed_mem_vm_open(struct vm_area_struct *vma)
{
	struct nvmed_mem *mem = vma->vm_private_data;

	kref_get(&mem->ref);
}

static void nvmed_mem_vm_close(struct vm_area_struct *vma)
{
	nvmed_mem_put(vma->vm_private_data);
}

/* Ring and buffer pages are inserted at mmap time; a fault means "zapped". */
static vm_fault_t nvmed_sigbus_fault(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;
}

static const struct vm_operations_struct nvmed_mem_vm_ops = {
	.open = nvmed_mem_vm_open,
	.close = nvmed_mem_vm_close,
	.fault = nvmed_sigbus_fault,
};

static void nvmed_db_vm_open(struct vm_area_struct *vma)
{
	struct nvmed_dbmap *db = vma->vm_private_data;

	kref_get(&db->ref);
}

static void nvmed_db_vm_close(struct vm_area_struct *vma)
{
	nvmed_dbmap_put(vma->vm_private_data);
}

/*
 * Doorbell pages are inserted on first touch, under db_sem, so that queue
 * deletion and controller removal (which clear db->valid / set bar_gone under
 * db_sem and then zap) can never race with an insertion.
 */
static vm_fault_t nvmed_db_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct nvmed_dbmap *db = vma->vm_private_data;
	struct nvmed_dev *dev = db->dev;
	unsigned long idx = vmf->pgoff - db->base_pgoff;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	down_read(&dev->db_sem);
	if (db->valid && !dev->bar_gone && idx < db->npages)
		ret = vmf_insert_pfn(vma, vmf->address & PAGE_MASK, db->pfn[idx]);
	up_read(&dev->db_sem);
	return ret;
}

static const struct vm_operations_struct nvmed_db_vm_ops = {
	.open = nvmed_db_vm_open,
	.close = nvmed_db_vm_close,
	.fault = nvmed_db_fault,
};

static int nvmed_mmap_mem(struct nvmed_dev *dev, struct vm_area_struct *vma, struct nvmed_mem *mem,
			  bool read_only)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long pgoff = vma->vm_pgoff;
	int ret;

	if (len > mem->size)
		return -EINVAL;
	if (read_only && (vma->vm_flags & VM_WRITE))
		return -EACCES;
	nvmed_vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP);
	nvmed_vm_flags_clear(vma, VM_MAYEXEC | (read_only ? VM_MAYWRITE : 0));
	/* dma_mmap_coherent() reads vm_pgoff as an offset into the buffer */
	vma->vm_pgoff = 0;
	ret = dma_mmap_coherent(&dev->pdev->dev, vma, mem->cpu, mem->dma, mem->size);
	vma->vm_pgoff = pgoff;
	if (ret)
		return ret;
	kref_get(&mem->ref);
	vma->vm_private_data = mem;
	vma->vm_ops = &nvmed_mem_vm_ops;
	return 0;
}

static int nvmed_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct nvmed_file *nf = filp->private_data;
	struct nvmed_dev *dev = nf->dev;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 type = off >> NVMED_MMAP_TYPE_SHIFT;
	u32 id = (off >> NVMED_MMAP_ID_SHIFT) & NVMED_MMAP_ID_MASK;
	unsigned long len = vma->vm_end - vma->vm_start;
	struct nvmed_queue *q;
	struct nvmed_buf *b;
	int ret;

	if (off & (NVMED_MMAP_WINDOW - 1))
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EACCES;

	mutex_lock(&nf->lock);
	if (READ_ONCE(dev->dead)) {
		ret = -ENODEV;
		goto out;
	}
	switch (type) {
	case NVMED_MMAP_SQ:
	case NVMED_MMAP_CQ:
		q = nvmed_find_queue(nf, id);
		if (!q) {
			ret = -ENOENT;
			break;
		}
		/* the CQ is written only by the controller: map it read-only */
		ret = nvmed_mmap_mem(dev, vma, type == NVMED_MMAP_SQ ? q->sq : q->cq,
				     type == NVMED_MMAP_CQ);
		break;
	case NVMED_MMAP_BUF:
		b = nvmed_find_buf(nf, id);
		ret = b ? nvmed_mmap_mem(dev, vma, b->mem, false) : -ENOENT;
		break;
	case NVMED_MMAP_DB:
		q = nvmed_find_queue(nf, id);
		if (!q) {
			ret = -ENOENT;
			break;
		}
		if (len > q->db->npages * PAGE_SIZE) {
			ret = -EINVAL;
			break;
		}
		nvmed_vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP);
		nvmed_vm_flags_clear(vma, VM_MAYEXEC);
		vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
		kref_get(&q->db->ref);
		vma->vm_private_data = q->db;
		vma->vm_ops = &nvmed_db_vm_ops;
		ret = 0;
		break;
	default:
		ret = -EINVAL;
	}
out:
	mutex_unlock(&nf->lock);
	return ret;
}

/* ------------------------------------------------------------------ */
/* open / release                                                       */

static int nvmed_open(struct inode *inode, struct file *filp)
{
	struct miscdevice *misc = filp->private_data;
	struct nvmed_dev *dev = container_of(misc, struct nvmed_dev, misc);
	struct nvmed_file *nf;

	/* User-built commands carry raw bus addresses: this is root-level power. */
	if (!capable(CAP_SYS_RAWIO))
		return -EPERM;
	nf = kzalloc(sizeof(*nf), GFP_KERNEL);
	if (!nf)
		return -ENOMEM;
	mutex_init(&nf->lock);
	INIT_LIST_HEAD(&nf->queues);
	INIT_LIST_HEAD(&nf->bufs);
	nf->filp = filp;
	nf->dev = dev;

	mutex_lock(&dev->lock);
	if (dev->dead) {
		mutex_unlock(&dev->lock);
		kfree(nf);
		return -ENODEV;
	}
	kref_get(&dev->ref);
	list_add_tail(&nf->node, &dev->files);
	atomic_inc(&dev->open_files);
	mutex_unlock(&dev->lock);

	filp->private_data = nf;
	return nonseekable_open(inode, filp);
}

static int nvmed_release(struct inode *inode, struct file *filp)
{
	struct nvmed_file *nf = filp->private_data;
	struct nvmed_dev *dev = nf->dev;
	struct nvmed_queue *q, *qn;
	struct nvmed_buf *b, *bn;

	mutex_lock(&nf->lock);
	/* queues first: deleting an SQ ends its commands' DMA into the buffers */
	list_for_each_entry_safe(q, qn, &nf->queues, node)
		nvmed_queue_destroy(nf, q);
	list_for_each_entry_safe(b, bn, &nf->bufs, node)
		nvmed_buf_destroy(nf, b);
	mutex_unlock(&nf->lock);

	mutex_lock(&dev->lock);
	list_del(&nf->node);
	atomic_dec(&dev->open_files);
	mutex_unlock(&dev->lock);
	kfree(nf);
	nvmed_dev_put(dev);
	return 0;
}

static const struct file_operations nvmed_fops = {
	.owner = THIS_MODULE,
	.open = nvmed_open,
	.release = nvmed_release,
	.unlocked_ioctl = nvmed_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = nvmed_mmap,
};

/* ------------------------------------------------------------------ */
/* sysfs                                                                */

static struct nvmed_dev *nvmed_from_device(struct device *d)
{
	struct miscdevice *misc = dev_get_drvdata(d);

	return container_of(misc, struct nvmed_dev, misc);
}

static ssize_t stats_show(struct device *d, struct device_attribute *attr, char *buf)
{
	struct nvmed_stats s;

	nvmed_fill_stats(nvmed_from_device(d), &s);
	return sysfs_emit(buf,
			  "open_files %u\nqueues_live %u\nrings_live %u\nbufs_live %u\n"
			  "dma_bytes_live %llu\nqueues_created %llu\nqueues_deleted %llu\n"
			  "bufs_allocated %llu\nbufs_freed %llu\nadmin_cmds %llu\n"
			  "admin_errors %llu\nadmin_timeouts %llu\nleaked_bytes %llu\n"
			  "ctrl_failed %u\nmodule_devs_live %u\nmodule_dma_bytes_live %llu\n",
			  s.open_files, s.queues_live, s.rings_live, s.bufs_live,
			  s.dma_bytes_live, s.queues_created, s.queues_deleted,
			  s.bufs_allocated, s.bufs_freed, s.admin_cmds, s.admin_errors,
			  s.admin_timeouts, s.leaked_bytes, s.ctrl_failed,
			  s.module_devs_live, s.module_dma_bytes_live);
}
static DEVICE_ATTR_RO(stats);

static ssize_t info_show(struct device *d, struct device_attribute *attr, char *buf)
{
	struct nvmed_info i;

	nvmed_fill_info(nvmed_from_device(d), &i);
	return sysfs_emit(buf,
			  "nsid %u\nlba_size %u\ncapacity_lbas %llu\nmax_transfer %u\n"
			  "max_queue_entries %u\nqueue_entries_limit %u\ndb_stride %u\n"
			  "awupf_lbas %u\nvwc %u\nhw_queues %u\nmax_queues %u\n"
			  "max_buffer_bytes %u\nmax_dma_bytes %llu\nflags %#x\n"
			  "model %.40s\n",
			  i.nsid, i.lba_size, i.capacity_lbas, i.max_transfer,
			  i.max_queue_entries, i.queue_entries_limit, i.db_stride,
			  i.awupf_lbas, !!(i.flags & NVMED_INFO_VWC), i.hw_queues,
			  i.max_queues, i.max_buffer_bytes, i.max_dma_bytes, i.flags,
			  i.model);
}
static DEVICE_ATTR_RO(info);

static struct attribute *nvmed_attrs[] = {
	&dev_attr_stats.attr,
	&dev_attr_info.attr,
	NULL,
};
ATTRIBUTE_GROUPS(nvmed);

/* ------------------------------------------------------------------ */
/* probe / remove                                                       */

static void nvmed_read_msix(struct nvmed_dev *dev)
{
	struct pci_dev *pdev = dev->pdev;
	u32 table, pba;
	u16 flags;
	u64 n;

	if (!pdev->msix_cap)
		return;
	pci_read_config_word(pdev, pdev->msix_cap + PCI_MSIX_FLAGS, &flags);
	pci_read_config_dword(pdev, pdev->msix_cap + PCI_MSIX_TABLE, &table);
	pci_read_config_dword(pdev, pdev->msix_cap + PCI_MSIX_PBA, &pba);
	n = (flags & PCI_MSIX_FLAGS_QSIZE) + 1;
	if ((table & PCI_MSIX_TABLE_BIR) == 0) {
		u64 lo = table & PCI_MSIX_TABLE_OFFSET;

		dev->msix_lo[dev->nr_msix_ranges] = round_down(lo, PAGE_SIZE);
		dev->msix_hi[dev->nr_msix_ranges++] = round_up(lo + n * PCI_MSIX_ENTRY_SIZE, PAGE_SIZE);
	}
	if ((pba & PCI_MSIX_PBA_BIR) == 0) {
		u64 lo = pba & PCI_MSIX_PBA_OFFSET;

		dev->msix_lo[dev->nr_msix_ranges] = round_down(lo, PAGE_SIZE);
		dev->msix_hi[dev->nr_msix_ranges++] = round_up(lo + DIV_ROUND_UP(n, 64) * 8, PAGE_SIZE);
	}
}

static int nvmed_set_num_queues(struct nvmed_dev *dev, u32 want, u32 *got)
{
	struct nvme_command c = { };
	u32 result;
	u16 st;
	int ret;

	c.features.opcode = nvme_admin_set_features;
	c.features.fid = cpu_to_le32(NVME_FEAT_NUM_QUEUES);
	c.features.dword11 = cpu_to_le32((want - 1) | ((want - 1) << 16));
	ret = nvmed_admin(dev, &c, &result, &st);
	if (ret) {
		dev_err(&dev->pdev->dev, "set features (number of queues) failed: %d status %#x\n",
			ret, st);
		return ret;
	}
	*got = min3(want, (result & 0xffff) + 1, (result >> 16) + 1);
	return 0;
}

static int nvmed_identify_all(struct nvmed_dev *dev)
{
	struct nvmed_info *info = &dev->info;
	struct nvme_id_ctrl *id = dev->idbuf;
	struct nvme_id_ns *ns = dev->idbuf;
	__le32 *list = dev->idbuf;
	u32 nsid = 0, want, got, i, mps_bytes = 4096;
	u8 mdts, lbaf, ds;
	int ret;

	ret = nvmed_identify(dev, NVME_ID_CNS_CTRL, 0);
	if (ret)
		return ret;
	info->vid = le16_to_cpu(id->vid);
	memcpy(info->serial, id->sn, sizeof(info->serial));
	memcpy(info->model, id->mn, sizeof(info->model));
	memcpy(info->firmware, id->fr, sizeof(info->firmware));
	info->nn = le32_to_cpu(id->nn);
	info->oncs = le16_to_cpu(id->oncs);
	mdts = id->mdts;
	if (id->vwc & 1)
		info->flags |= NVMED_INFO_VWC;
	if (info->oncs & NVME_CTRL_ONCS_DSM)
		info->flags |= NVMED_INFO_DSM;
	if (info->oncs & NVME_CTRL_ONCS_WRITE_ZEROES)
		info->flags |= NVMED_INFO_WRITE_ZEROES;
	if (le16_to_cpu(id->oacs) & NVME_CTRL_OACS_DBBUF_SUPP)
		info->flags |= NVMED_INFO_DBBUF;
	info->awupf_lbas = le16_to_cpu(id->awupf) + 1;
	info->max_dsm_ranges = 256;

	info->max_transfer = NVMED_MAX_BUF;
	if (mdts && mdts < 32 && ((u64)mps_bytes << mdts) < info->max_transfer)
		info->max_transfer = mps_bytes << mdts;

	/* first active namespace */
	if (nvmed_identify(dev, NVME_ID_CNS_NS_ACTIVE_LIST, 0) == 0)
		nsid = le32_to_cpu(list[0]);
	if (!nsid)
		nsid = 1;
	ret = nvmed_identify(dev, NVME_ID_CNS_NS, nsid);
	if (ret)
		return ret;
	if (!le64_to_cpu(ns->nsze)) {
		dev_err(&dev->pdev->dev, "namespace %u is not active\n", nsid);
		return -ENODEV;
	}
	lbaf = nvme_lbaf_index(ns->flbas);
	ds = ns->lbaf[lbaf].ds;
	if (ds < 9 || ds > 20) {
		dev_err(&dev->pdev->dev, "namespace %u: unsupported LBA data size 2^%u\n", nsid, ds);
		return -ENODEV;
	}
	if (ns->lbaf[lbaf].ms)
		dev_warn(&dev->pdev->dev, "namespace %u has %u metadata bytes per LBA\n",
			 nsid, le16_to_cpu(ns->lbaf[lbaf].ms));
	info->nsid = nsid;
	info->lba_shift = ds;
	info->lba_size = 1u << ds;
	info->capacity_lbas = le64_to_cpu(ns->nsze);
	if (ns->nsfeat & NVME_NS_FEAT_ATOMICS)
		info->awupf_lbas = le16_to_cpu(ns->nawupf) + 1;
	if ((ns->dlfeat & 7) == 1)
		info->flags |= NVMED_INFO_DEALLOC_READS_ZERO;

	want = clamp_t(u32, hw_queues, 1, NVMED_MAX_HW_QUEUES);
	ret = nvmed_set_num_queues(dev, want, &got);
	if (ret)
		return ret;
	for (i = 1; i <= got; i++)
		if (!nvmed_qid_db_ok(dev, i))
			break;
	dev->nr_hw_queues = i - 1;
	if (dev->nr_hw_queues < got)
		dev_warn(&dev->pdev->dev,
			 "only %u of %u queues have doorbells on mappable pages\n",
			 dev->nr_hw_queues, got);
	info->hw_queues = dev->nr_hw_queues;
	return 0;
}

static int nvmed_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct nvmed_dev *dev;
	u32 limit;
	int ret;

	if ((pdev->class & 0xffffff) != PCI_CLASS_STORAGE_EXPRESS) {
		dev_err(&pdev->dev, "not an NVMe controller (class %#x)\n", pdev->class);
		return -ENODEV;
	}
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	kref_init(&dev->ref);
	atomic_inc(&nvmed_devs_live);
	dev->pdev = pci_dev_get(pdev);
	mutex_init(&dev->admin_lock);
	mutex_init(&dev->lock);
	init_rwsem(&dev->db_sem);
	INIT_LIST_HEAD(&dev->files);
	ida_init(&dev->buf_ida);
	dev->instance = ida_alloc(&nvmed_instance_ida, GFP_KERNEL);
	if (dev->instance < 0) {
		ret = dev->instance;
		pci_dev_put(pdev);
		kfree(dev);
		atomic_dec(&nvmed_devs_live);
		return ret;
	}
	snprintf(dev->name, sizeof(dev->name), "nvmed%d", dev->instance);
	pci_set_drvdata(pdev, dev);

	ret = pci_enable_device_mem(pdev);
	if (ret)
		goto put_dev;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(32));
	if (ret)
		goto disable;
	ret = pci_request_mem_regions(pdev, KBUILD_MODNAME);
	if (ret)
		goto disable;
	ret = -ENODEV;
	if (!(pci_resource_flags(pdev, 0) & IORESOURCE_MEM))
		goto release;
	dev->bar_phys = pci_resource_start(pdev, 0);
	dev->bar_len = pci_resource_len(pdev, 0);
	if (dev->bar_len < NVME_REG_DBS + PAGE_SIZE || !PAGE_ALIGNED(dev->bar_phys))
		goto release;
	dev->bar = pci_iomap(pdev, 0, 0);
	if (!dev->bar)
		goto release;
	pci_intx(pdev, 0);	/* polled: no INTx */
	nvmed_read_msix(dev);

	dev->cap = lo_hi_readq(dev->bar + NVME_REG_CAP);
	if (dev->cap == ~0ULL)
		goto unmap;
	if (NVME_CAP_MPSMIN(dev->cap) != 0 || !(NVME_CAP_CSS(dev->cap) & NVME_CAP_CSS_NVM)) {
		dev_err(&pdev->dev, "unsupported CAP %#llx (needs 4 KiB pages, NVM command set)\n",
			dev->cap);
		goto unmap;
	}
	dev->db_stride = 4U << NVME_CAP_STRIDE(dev->cap);

	ret = -ENOMEM;
	dev->asq = dma_alloc_coherent(&pdev->dev, NVMED_ADMIN_DEPTH * sizeof(*dev->asq),
				      &dev->asq_dma, GFP_KERNEL);
	dev->acq = dma_alloc_coherent(&pdev->dev, NVMED_ADMIN_DEPTH * sizeof(*dev->acq),
				      &dev->acq_dma, GFP_KERNEL);
	dev->idbuf = dma_alloc_coherent(&pdev->dev, NVME_IDENTIFY_DATA_SIZE,
					&dev->idbuf_dma, GFP_KERNEL);
	dev->qid_map = bitmap_zalloc(NVMED_MAX_HW_QUEUES + 1, GFP_KERNEL);
	if (!dev->asq || !dev->acq || !dev->idbuf || !dev->qid_map)
		goto free_admin;

	ret = nvmed_ctrl_enable(dev);
	if (ret)
		goto free_admin;
	ret = nvmed_identify_all(dev);
	if (ret)
		goto disable_ctrl;

	limit = min_t(u32, NVME_CAP_MQES(dev->cap) + 1, clamp_t(u32, max_entries, 2, 65536));
	limit = min_t(u32, limit, NVMED_MAX_BUF / NVMED_SQE_SIZE);
	dev->queue_limit = limit;
	dev->info.abi_version = NVMED_ABI_VERSION;
	dev->info.max_queue_entries = NVME_CAP_MQES(dev->cap) + 1;
	dev->info.queue_entries_limit = limit;
	dev->info.db_stride = dev->db_stride;
	dev->info.ctrl_page_size = NVMED_CTRL_PAGE_SIZE;
	dev->info.max_buffer_bytes = NVMED_MAX_BUF;
	dev->info.version = readl(dev->bar + NVME_REG_VS);
	if (2 * dev->db_stride < PAGE_SIZE)
		dev->info.flags |= NVMED_INFO_DB_SHARED_PAGE;

	dev->misc.minor = MISC_DYNAMIC_MINOR;
	dev->misc.name = dev->name;
	dev->misc.fops = &nvmed_fops;
	dev->misc.parent = &pdev->dev;
	dev->misc.groups = nvmed_groups;
	dev->misc.mode = 0600;
	ret = misc_register(&dev->misc);
	if (ret)
		goto disable_ctrl;
	dev->misc_registered = true;

	dev_info(&pdev->dev,
		 "%s: nsid %u, %llu x %u-byte blocks, max transfer %u, %u queues x %u entries, db stride %u, vwc %u, awupf %u%s\n",
		 dev->name, dev->info.nsid, dev->info.capacity_lbas, dev->info.lba_size,
		 dev->info.max_transfer, dev->nr_hw_queues, limit, dev->db_stride,
		 !!(dev->info.flags & NVMED_INFO_VWC), dev->info.awupf_lbas,
		 dev->nr_msix_ranges ? ", MSI-X pages excluded" : "");
	return 0;

disable_ctrl:
	mutex_lock(&dev->admin_lock);
	if (!dev->ctrl_off) {
		dev->ctrl_off = true;
		nvmed_ctrl_disable(dev);
	}
	mutex_unlock(&dev->admin_lock);
free_admin:
	if (dev->idbuf)
		dma_free_coherent(&pdev->dev, NVME_IDENTIFY_DATA_SIZE, dev->idbuf, dev->idbuf_dma);
	if (dev->acq)
		dma_free_coherent(&pdev->dev, NVMED_ADMIN_DEPTH * sizeof(*dev->acq),
				  dev->acq, dev->acq_dma);
	if (dev->asq)
		dma_free_coherent(&pdev->dev, NVMED_ADMIN_DEPTH * sizeof(*dev->asq),
				  dev->asq, dev->asq_dma);
unmap:
	pci_iounmap(pdev, dev->bar);
release:
	pci_release_mem_regions(pdev);
disable:
	pci_disable_device(pdev);
put_dev:
	pci_set_drvdata(pdev, NULL);
	nvmed_dev_put(dev);
	return ret;
}

static void nvmed_remove(struct pci_dev *pdev)
{
	struct nvmed_dev *dev = pci_get_drvdata(pdev);
	struct nvmed_file *nf;

	if (dev->misc_registered)
		misc_deregister(&dev->misc);

	mutex_lock(&dev->lock);
	dev->dead = true;
	mutex_unlock(&dev->lock);

	/* Doorbells first: no process may touch the BAR once it is released. */
	down_write(&dev->db_sem);
	dev->bar_gone = true;
	up_write(&dev->db_sem);
	mutex_lock(&dev->lock);
	list_for_each_entry(nf, &dev->files, node)
		unmap_mapping_range(nf->filp->f_mapping, 0, 0, 1);
	mutex_unlock(&dev->lock);

	/* A controller reset deletes every queue and stops all DMA. */
	mutex_lock(&dev->admin_lock);
	if (!dev->ctrl_off) {
		dev->ctrl_off = true;
		if (nvmed_ctrl_shutdown(dev)) {
			dev_err(&pdev->dev, "controller did not stop; DMA memory will be leaked\n");
			WRITE_ONCE(dev->dma_unsafe, true);
		}
	}
	mutex_unlock(&dev->admin_lock);
	if (atomic_read(&dev->open_files))
		dev_info(&pdev->dev, "%s removed with %d open files; their memory goes when they close\n",
			 dev->name, atomic_read(&dev->open_files));

	if (!dev->dma_unsafe) {
		dma_free_coherent(&pdev->dev, NVME_IDENTIFY_DATA_SIZE, dev->idbuf, dev->idbuf_dma);
		dma_free_coherent(&pdev->dev, NVMED_ADMIN_DEPTH * sizeof(*dev->acq),
				  dev->acq, dev->acq_dma);
		dma_free_coherent(&pdev->dev, NVMED_ADMIN_DEPTH * sizeof(*dev->asq),
				  dev->asq, dev->asq_dma);
	}
	pci_iounmap(pdev, dev->bar);
	pci_release_mem_regions(pdev);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	pci_set_drvdata(pdev, NULL);
	nvmed_dev_put(dev);
}

static void nvmed_shutdown(struct pci_dev *pdev)
{
	struct nvmed_dev *dev = pci_get_drvdata(pdev);

	if (!dev)
		return;
	mutex_lock(&dev->admin_lock);
	if (!dev->ctrl_off) {
		dev->ctrl_off = true;
		nvmed_ctrl_shutdown(dev);
	}
	mutex_unlock(&dev->admin_lock);
}

/* Matches nothing: controllers are bound only through driver_override. */
static const struct pci_device_id nvmed_id_table[] = {
	{ 0, }
};

static struct pci_driver nvmed_driver = {
	.name = KBUILD_MODNAME,
	.id_table = nvmed_id_table,
	.probe = nvmed_probe,
	.remove = nvmed_remove,
	.shutdown = nvmed_shutdown,
};

static int __init nvmed_init(void)
{
	BUILD_BUG_ON(sizeof(struct nvme_command) != NVMED_SQE_SIZE);
	BUILD_BUG_ON(sizeof(struct nvme_completion) != NVMED_CQE_SIZE);
	BUILD_BUG_ON(sizeof(struct nvmed_info) % 8);
	BUILD_BUG_ON(sizeof(struct nvmed_queue_create) % 8);
	BUILD_BUG_ON(sizeof(struct nvmed_buf_alloc) % 8);
	BUILD_BUG_ON(sizeof(struct nvmed_stats) % 8);
	return pci_register_driver(&nvmed_driver);
}

static void __exit nvmed_exit(void)
{
	pci_unregister_driver(&nvmed_driver);
	ida_destroy(&nvmed_instance_ida);
}

module_init(nvmed_init);
module_exit(nvmed_exit);

MODULE_DESCRIPTION("User-space NVMe queue pairs (NVMeDirect-style) for a dedicated controller");
MODULE_LICENSE("GPL");
