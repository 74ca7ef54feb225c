/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * exe: rules: new processes of a program, reported at exec (see
 * include/netbump/exe.h). User space moves each into a cgroup of the
 * rule's and mirrors the sockets it had by then, as for a pid: rule; its
 * children inherit the cgroup. Included from netbump.bpf.c.
 */
#include <netbump/exe.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NB_MAX_EXE_RULES);
	__type(key, struct nb_exe_key);
	__type(value, __u32); /* the uid whose processes count, NB_EXE_ANY_UID: all */
} exe_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} exe_root SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, NB_EXE_EVENTS_SIZE);
} exe_events SEC(".maps");

volatile __u64 nb_exe_lost;

/*
 * sched_process_exec fires in the new image's task once the exec can no
 * longer fail (exec_binprm()), with bprm->file the program the kernel ran:
 * for a script, its interpreter, which is also what /proc/PID/exe names.
 * One hash lookup for every exec; the rest only for a program of a rule.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(nb_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct nb_exe_key key = {};
	struct nb_exe_event *ev;
	struct inode *inode;
	__u32 *want, uid;

	/* BTF pointers, read directly (the verifier guards the loads): no
	 * GPL-only bpf_probe_read_kernel(). */
	inode = bprm->file->f_inode;
	if (!inode)
		return 0;
	key.ino = inode->i_ino;
	key.dev = inode->i_sb->s_dev;
	want = bpf_map_lookup_elem(&exe_rules, &key);
	if (!want)
		return 0;
	uid = (__u32)bpf_get_current_uid_gid();
	if (*want != NB_EXE_ANY_UID && *want != uid)
		return 0;
	/* Only what the daemon's programs see: processes under its root. */
	if (bpf_current_task_under_cgroup(&exe_root, 0) != 1)
		return 0;
	ev = bpf_ringbuf_reserve(&exe_events, sizeof(*ev), 0);
	if (!ev) {
		__sync_fetch_and_add(&nb_exe_lost, 1);
		return 0;
	}
	ev->ino = key.ino;
	ev->dev = key.dev;
	ev->pid = p->tgid;
	ev->uid = uid;
	ev->pad = 0;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}
