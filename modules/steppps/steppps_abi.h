/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * steppps: the record layout of /dev/steppps, shared by the kernel module
 * and its readers (the Rust reader in services/steppps mirrors it).
 *
 * Every read() returns whole records of STEPPPS_RECORD_SIZE bytes, little
 * or big endian as the running kernel, fields naturally aligned, no holes.
 * A reader checks version and size of each record: a new field goes into
 * the reserved bytes or the filename's tail and raises the version; a
 * change that moves a field would change the size too.
 */
#ifndef _UAPI_STEPPPS_ABI_H
#define _UAPI_STEPPPS_ABI_H

#include <linux/types.h>

#define STEPPPS_ABI_VERSION	1
#define STEPPPS_RECORD_SIZE	128
#define STEPPPS_COMM_LEN	16
#define STEPPPS_FILENAME_LEN	48

enum steppps_event_type {
	STEPPPS_EVENT_FORK = 1,	/* a task was created (process or thread) */
	STEPPPS_EVENT_EXEC = 2,	/* a process executed a new program */
	STEPPPS_EVENT_EXIT = 3,	/* a task exited */
	/* this reader missed @lost records of @cpu's ring: it was overwritten */
	STEPPPS_EVENT_LOST = 4,
};

/* flags */
#define STEPPPS_F_THREAD	(1U << 0) /* the task is not a group leader */
#define STEPPPS_F_GROUP_DEAD	(1U << 1) /* exit: the last task of the process */
#define STEPPPS_F_TRUNCATED	(1U << 2) /* exec: filename did not fit */

struct steppps_record {
	__u16 size;		/* STEPPPS_RECORD_SIZE */
	__u8 version;		/* STEPPPS_ABI_VERSION */
	__u8 type;		/* enum steppps_event_type */
	__u32 cpu;		/* CPU whose ring held the record */
	__u64 seq;		/* position in that ring, from 0 at load */
	__u64 time_ns;		/* CLOCK_MONOTONIC when it happened */
	__u32 pid;		/* thread group id (what user space calls pid) */
	__u32 tid;		/* the task's own id */
	__u32 ppid;		/* the parent's thread group id */
	__u32 uid;		/* real uid in the initial user namespace */
	__u64 cgroup_id;	/* cgroup v2 id (the inode of its directory) */
	__s32 exit_code;	/* exit: wait(2) status; exec: the old tid */
	__u32 flags;		/* STEPPPS_F_* */
	__u64 start_ns;		/* task start, CLOCK_MONOTONIC; LOST: count */
	char comm[STEPPPS_COMM_LEN];		/* NUL-terminated */
	char filename[STEPPPS_FILENAME_LEN];	/* exec: NUL-terminated */
};

#endif /* _UAPI_STEPPPS_ABI_H */
