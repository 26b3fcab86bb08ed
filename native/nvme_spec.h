/* SPDX-License-Identifier: MIT */
/*
 * nvme_spec.h - the parts of the NVMe base and NVM command set specifications that the
 * user-space NVMe backends share (nvmed and uring-cmd): command and completion layouts,
 * NVM opcodes, Identify fields, status codes, and their translation to errno values.
 */
#ifndef NVME_SPEC_H
#define NVME_SPEC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* NVMe submission queue entry (64 bytes) */
struct nvme_sqe {
	uint8_t opc;
	uint8_t flags;
	uint16_t cid;
	uint32_t nsid;
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr;
	uint64_t prp1;
	uint64_t prp2;
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
};

/* NVMe completion queue entry (16 bytes) */
struct nvme_cqe {
	uint32_t dw0;
	uint32_t dw1;
	uint16_t sqhd;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;	/* bit 0 phase, 1-8 SC, 9-11 SCT, 12-13 CRD, 14 M, 15 DNR */
};

/* NVM command set opcodes */
#define NVME_OPC_FLUSH		0x00
#define NVME_OPC_WRITE		0x01
#define NVME_OPC_READ		0x02
#define NVME_OPC_WRITE_ZEROES	0x08
#define NVME_OPC_DSM		0x09

/* Admin opcodes */
#define NVME_ADMIN_IDENTIFY	0x06
#define NVME_CNS_NS		0x00
#define NVME_CNS_CTRL		0x01

#define NVME_RW_FUA		(1u << 30)	/* CDW12 Force Unit Access */
#define NVME_DSM_ATTR_DEALLOCATE (1u << 2)	/* CDW11 AD */
#define NVME_DSM_MAX_RANGES	256
#define NVME_RW_MAX_BLOCKS	65536u		/* CDW12 NLB is 16 bits, 0-based */

/* Dataset Management range (16 bytes) */
struct nvme_dsm_range {
	uint32_t cattr;
	uint32_t nlb;		/* number of logical blocks (1-based here, as on the wire) */
	uint64_t slba;
};

/* Identify Controller (CNS 1) byte offsets */
#define NVME_IDC_MDTS		77	/* u8: max transfer, 2^n units of CAP.MPSMIN; 0 = none */
#define NVME_IDC_ONCS		520	/* u16: bit 2 Dataset Management, bit 3 Write Zeroes */
#define NVME_IDC_VWC		525	/* u8: bit 0 volatile write cache present */
#define NVME_IDC_AWUPF		528	/* u16: atomic write unit power fail, 0-based blocks */
#define NVME_ONCS_DSM		(1u << 2)

/* Identify Namespace (CNS 0) byte offsets */
#define NVME_IDNS_NSZE		0	/* u64: size in logical blocks */
#define NVME_IDNS_NSFEAT	24	/* u8: bit 1 NAWUN/NAWUPF/NACWU are valid */
#define NVME_IDNS_FLBAS		26	/* u8: bits 3:0 (+ 6:5 high) index of the LBA format */
#define NVME_IDNS_NAWUPF	42	/* u16: namespace atomic write unit power fail, 0-based */
#define NVME_IDNS_LBAF		128	/* u32[64]: bits 23:16 LBADS (log2 of the block size) */

/* Status value: (SCT << 8) | SC, the 11 bits after the phase bit of the CQE status */
#define NVME_STATUS(sct, sc)	((uint16_t)(((sct) << 8) | (sc)))
#define NVME_SC_SUCCESS		0x000
#define NVME_SC_INVALID_OPCODE	0x001
#define NVME_SC_INVALID_FIELD	0x002
#define NVME_SC_INVALID_NS	0x00b
#define NVME_SC_LBA_RANGE	0x080
#define NVME_SC_CAP_EXCEEDED	0x081

/* Human-readable text of a status value ((SCT << 8) | SC). */
const char *nvme_status_str(uint16_t status);

/*
 * The negative errno a status value stands for (0 for success): invalid opcode
 * EOPNOTSUPP, invalid field / PRP offset / SGL errors EINVAL, invalid namespace ENXIO,
 * LBA out of range ERANGE, capacity exceeded ENOSPC, operation denied EPERM, write to a
 * read-only range EROFS, access denied EACCES, aborts ECANCELED, reservation conflict
 * EBADE, not ready / format in progress EBUSY, end-to-end protection errors EILSEQ,
 * deallocated block ENODATA, command size limit E2BIG, everything else EIO.
 */
int nvme_status_errno(uint16_t status);

#ifdef __cplusplus
}
#endif

#endif /* NVME_SPEC_H */
