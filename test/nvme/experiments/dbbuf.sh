#!/usr/bin/env bash
# Experiment behind the doorbell-page decision in kmod/README.md: does an NVMe
# controller (here QEMU's) fetch commands when only the shadow doorbell
# (Doorbell Buffer Config, admin opcode 0x7C) is updated, without an MMIO
# doorbell write?  Builds a scratch copy of nvmed with a probe-time experiment
# (test/nvme/.work/dbbuf-exp/, never shipped) and boots it through run.sh.
# Prints the DBBUF-EXP lines of the guest's dmesg.  Needs root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
X=$HERE/.work/dbbuf-exp
KVER=$(apt-cache depends linux-headers-amd64 | sed -n 's/^ *Depends: linux-headers-\([^ ]*\)$/\1/p' | head -n 1)
rm -rf "$X"
mkdir -p "$X"
cp "$ROOT/kmod/nvmed.c" "$ROOT/native/nvmed_uapi.h" "$X/"
cat >"$X/exp.c" <<'CEOF'
/* ---- experiment: does the controller act on a shadow doorbell without an MMIO write? ---- */
static int nvmed_poll_cq_ms(struct nvme_completion *cq, u16 idx, u8 phase, unsigned int ms)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);

	while (time_before(jiffies, end)) {
		if ((le16_to_cpu(READ_ONCE(cq[idx].status)) & 1) == phase)
			return 1;
		usleep_range(100, 200);
	}
	return 0;
}

static void nvmed_dbbuf_experiment(struct nvmed_dev *dev)
{
	struct device *d = &dev->pdev->dev;
	dma_addr_t sdma, edma, sqdma, cqdma;
	u32 *shadow, *eventidx;
	struct nvme_command *sq, c = { };
	struct nvme_completion *cq;
	u32 sidx = 2 * 1 * (dev->db_stride / 4), cidx = sidx + dev->db_stride / 4;
	int r, got;
	u16 st;

	/* leaked on purpose: scratch experiment */
	shadow = dma_alloc_coherent(d, PAGE_SIZE, &sdma, GFP_KERNEL);
	eventidx = dma_alloc_coherent(d, PAGE_SIZE, &edma, GFP_KERNEL);
	sq = dma_alloc_coherent(d, PAGE_SIZE, &sqdma, GFP_KERNEL);
	cq = dma_alloc_coherent(d, PAGE_SIZE, &cqdma, GFP_KERNEL);
	memset(shadow, 0, PAGE_SIZE);
	memset(eventidx, 0, PAGE_SIZE);
	memset(sq, 0, PAGE_SIZE);
	memset(cq, 0, PAGE_SIZE);

	c.common.opcode = nvme_admin_dbbuf;
	c.common.dptr.prp1 = cpu_to_le64(sdma);
	c.common.dptr.prp2 = cpu_to_le64(edma);
	r = nvmed_admin(dev, &c, NULL, &st);
	dev_info(d, "DBBUF-EXP doorbell buffer config: ret %d status %#x\n", r, st);

	memset(&c, 0, sizeof(c));
	c.create_cq.opcode = nvme_admin_create_cq;
	c.create_cq.prp1 = cpu_to_le64(cqdma);
	c.create_cq.cqid = cpu_to_le16(1);
	c.create_cq.qsize = cpu_to_le16(15);
	c.create_cq.cq_flags = cpu_to_le16(NVME_QUEUE_PHYS_CONTIG);
	r = nvmed_admin(dev, &c, NULL, &st);
	memset(&c, 0, sizeof(c));
	c.create_sq.opcode = nvme_admin_create_sq;
	c.create_sq.prp1 = cpu_to_le64(sqdma);
	c.create_sq.sqid = cpu_to_le16(1);
	c.create_sq.qsize = cpu_to_le16(15);
	c.create_sq.sq_flags = cpu_to_le16(NVME_QUEUE_PHYS_CONTIG);
	c.create_sq.cqid = cpu_to_le16(1);
	r |= nvmed_admin(dev, &c, NULL, &st);
	dev_info(d, "DBBUF-EXP queue 1 created: %d\n", r);

	/* command 1 (flush): shadow tail only */
	sq[0].common.opcode = nvme_cmd_flush;
	sq[0].common.command_id = 1;
	sq[0].common.nsid = cpu_to_le32(1);
	wmb();
	WRITE_ONCE(shadow[sidx], 1);
	wmb();
	got = nvmed_poll_cq_ms(cq, 0, 1, 300);
	dev_info(d, "DBBUF-EXP cmd1 shadow tail only: completed=%d (eventidx %u)\n", got, eventidx[sidx]);
	if (!got) {
		writel(1, nvmed_sq_db(dev, 1));
		got = nvmed_poll_cq_ms(cq, 0, 1, 300);
		dev_info(d, "DBBUF-EXP cmd1 after MMIO doorbell write: completed=%d (eventidx %u)\n",
			 got, eventidx[sidx]);
	}
	WRITE_ONCE(shadow[cidx], 1);
	/* command 2: shadow only again, now that the controller has used the buffer */
	sq[1].common.opcode = nvme_cmd_flush;
	sq[1].common.command_id = 2;
	sq[1].common.nsid = cpu_to_le32(1);
	wmb();
	WRITE_ONCE(shadow[sidx], 2);
	wmb();
	got = nvmed_poll_cq_ms(cq, 1, 1, 300);
	dev_info(d, "DBBUF-EXP cmd2 shadow tail only: completed=%d (eventidx %u)\n", got, eventidx[sidx]);
	if (!got) {
		writel(2, nvmed_sq_db(dev, 1));
		got = nvmed_poll_cq_ms(cq, 1, 1, 300);
		dev_info(d, "DBBUF-EXP cmd2 after MMIO doorbell write: completed=%d\n", got);
	}
	/* command 3: shadow says 3, MMIO gets an out-of-range value */
	WRITE_ONCE(shadow[cidx], 2);
	sq[2].common.opcode = nvme_cmd_flush;
	sq[2].common.command_id = 3;
	sq[2].common.nsid = cpu_to_le32(1);
	wmb();
	WRITE_ONCE(shadow[sidx], 3);
	wmb();
	writel(0xffff, nvmed_sq_db(dev, 1));
	got = nvmed_poll_cq_ms(cq, 2, 1, 300);
	dev_info(d, "DBBUF-EXP cmd3 shadow tail 3, MMIO doorbell 0xffff: completed=%d\n", got);
	writel(3, nvmed_cq_db(dev, 1));
	nvmed_delete_hw_queue(dev, nvme_admin_delete_sq, 1);
	nvmed_delete_hw_queue(dev, nvme_admin_delete_cq, 1);
}

CEOF
python3 - "$X" <<'PY'
import sys
x = sys.argv[1]
s = open(x + '/nvmed.c').read()
exp = open(x + '/exp.c').read()
anchor = "static int nvmed_probe(struct pci_dev *pdev, const struct pci_device_id *id)\n{"
call = "\tdev->misc_registered = true;\n"
assert anchor in s and call in s, "nvmed.c changed: update the anchors in dbbuf.sh"
s = s.replace(anchor, exp + anchor, 1)
s = s.replace(call, call + "\tnvmed_dbbuf_experiment(dev);\n", 1)
open(x + '/nvmed.c', 'w').write(s)
PY
printf 'obj-m := nvmed.o\nccflags-y := -I$(src)\n' >"$X/Makefile"
make -C "/usr/src/linux-headers-$KVER" M="$X" modules >"$X/build.log" 2>&1 || { cat "$X/build.log"; exit 1; }
"$HERE/run.sh" run --include "$X/nvmed.ko:/modules/nvmed.ko" --run 'dmesg | grep DBBUF-EXP' |
	grep -E 'DBBUF-EXP|RESULT'
