/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * exe: rules in the kernel: the programs whose new processes the exec hook
 * (bpf/exe.bpf.h) reports. Map keys and values: fixed-width types,
 * explicit padding.
 *
 * exe_rules (BPF_MAP_TYPE_HASH, NB_MAX_EXE_RULES entries): the identity of
 * a program file, (inode number, the kernel's dev_t of its file system), to
 * the uid whose processes count (NB_EXE_ANY_UID: everyone's, a rule of
 * root's). An exec whose new image is such a file, run by a task under the
 * daemon's cgroup root (exe_root, a BPF_MAP_TYPE_CGROUP_ARRAY of one), by
 * that uid, queues one struct nb_exe_event in exe_events
 * (BPF_MAP_TYPE_RINGBUF, NB_EXE_EVENTS_SIZE bytes); events that did not fit
 * count in nb_exe_lost (.bss). Every other exec costs one lookup in
 * exe_rules, and nothing at all while the program is not attached (no
 * exe: rule).
 */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define NB_MAX_EXE_RULES 4096
/* 24 bytes per event with the ring's header: some 10,000 execs unread. */
#define NB_EXE_EVENTS_SIZE (256u * 1024u)
#define NB_EXE_ANY_UID 0xffffffffu

struct nb_exe_key {
	__u64 ino; /* inode->i_ino */
	__u32 dev; /* inode->i_sb->s_dev: MAJOR << 20 | MINOR */
	__u32 pad; /* 0 */
};

struct nb_exe_event {
	__u64 ino; /* which program: the key that matched */
	__u32 dev;
	__u32 pid; /* the process (thread group id) that exec'd it */
	__u32 uid; /* its real uid after the exec */
	__u32 pad;
};
