/* SPDX-License-Identifier: MIT */
/*
 * nvme_status.c - NVMe status values as text and as errno (see nvme_spec.h).
 */
#include <errno.h>

#include "nvme_spec.h"

const char *nvme_status_str(uint16_t status)
{
	unsigned int sct = (status >> 8) & 7, sc = status & 0xff;

	switch (sct) {
	case 0:	/* generic */
		switch (sc) {
		case 0x00: return "Successful Completion";
		case 0x01: return "Invalid Command Opcode";
		case 0x02: return "Invalid Field in Command";
		case 0x03: return "Command ID Conflict";
		case 0x04: return "Data Transfer Error";
		case 0x05: return "Commands Aborted due to Power Loss Notification";
		case 0x06: return "Internal Error";
		case 0x07: return "Command Abort Requested";
		case 0x08: return "Command Aborted due to SQ Deletion";
		case 0x09: return "Command Aborted due to Failed Fused Command";
		case 0x0a: return "Command Aborted due to Missing Fused Command";
		case 0x0b: return "Invalid Namespace or Format";
		case 0x0c: return "Command Sequence Error";
		case 0x0d: return "Invalid SGL Segment Descriptor";
		case 0x0f: return "Invalid Number of SGL Descriptors";
		case 0x13: return "PRP Offset Invalid";
		case 0x15: return "Operation Denied";
		case 0x80: return "LBA Out of Range";
		case 0x81: return "Capacity Exceeded";
		case 0x82: return "Namespace Not Ready";
		case 0x83: return "Reservation Conflict";
		case 0x84: return "Format In Progress";
		}
		return "Generic Command Status (unknown code)";
	case 1:	/* command specific */
		switch (sc) {
		case 0x00: return "Completion Queue Invalid";
		case 0x01: return "Invalid Queue Identifier";
		case 0x02: return "Invalid Queue Size";
		case 0x80: return "Conflicting Attributes";
		case 0x81: return "Invalid Protection Information";
		case 0x82: return "Attempted Write to Read Only Range";
		case 0x83: return "Command Size Limit Exceeded";
		}
		return "Command Specific Status (unknown code)";
	case 2:	/* media and data integrity */
		switch (sc) {
		case 0x80: return "Write Fault";
		case 0x81: return "Unrecovered Read Error";
		case 0x82: return "End-to-end Guard Check Error";
		case 0x83: return "End-to-end Application Tag Check Error";
		case 0x84: return "End-to-end Reference Tag Check Error";
		case 0x85: return "Compare Failure";
		case 0x86: return "Access Denied";
		case 0x87: return "Deallocated or Unwritten Logical Block";
		}
		return "Media and Data Integrity Error (unknown code)";
	case 3:
		return "Path Related Status";
	case 7:
		return "Vendor Specific Status";
	}
	return "Unknown Status Code Type";
}

int nvme_status_errno(uint16_t status)
{
	unsigned int sct = (status >> 8) & 7, sc = status & 0xff;

	if (sct == 0 && sc == 0)
		return 0;
	switch (sct) {
	case 0:
		switch (sc) {
		case 0x01: return -EOPNOTSUPP;
		case 0x02: case 0x0d: case 0x0e: case 0x0f: case 0x10: case 0x11: case 0x13:
			return -EINVAL;
		case 0x07: case 0x08: case 0x09: case 0x0a: return -ECANCELED;
		case 0x0b: return -ENXIO;
		case 0x15: return -EPERM;
		case 0x80: return -ERANGE;
		case 0x81: return -ENOSPC;
		case 0x82: case 0x84: return -EBUSY;
		case 0x83: return -EBADE;
		}
		return -EIO;
	case 1:
		switch (sc) {
		case 0x80: case 0x81: return -EINVAL;
		case 0x82: return -EROFS;
		case 0x83: return -E2BIG;
		}
		return -EIO;
	case 2:
		switch (sc) {
		case 0x82: case 0x83: case 0x84: case 0x85: return -EILSEQ;
		case 0x86: return -EACCES;
		case 0x87: return -ENODATA;
		}
		return -EIO;
	}
	return -EIO;
}
