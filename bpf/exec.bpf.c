// SPDX-License-Identifier: GPL-2.0
/* Command lines for --cmdline and JSON, from sched:sched_process_exec: the
 * new program's argv is on its stack by then, so even a process that exits a
 * moment after its connect is named. */
#include "tcpconnect.bpf.h"

#include <bpf/bpf_core_read.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_exec_record);
} exec_scratch SEC(".maps");

__hidden int exec_cmdline(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid(), zero = 0;
	struct tc_exec_record *rec;
	struct mm_struct *mm;
	__u64 start, end;

	if (!want_exec || !task_wanted(pid_tgid >> 32, uid))
		return 0;
	rec = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!rec)
		return 0;
	mm = BPF_CORE_READ(task, mm);
	start = BPF_CORE_READ(mm, arg_start);
	end = BPF_CORE_READ(mm, arg_end);
	if (end <= start)
		return 0;
	if (!enrich_allowed(ENRICH_EXEC, uid)) {
		__sync_fetch_and_add(&lost_execs, 1);
		return 0;
	}
	rec->ts_ns = bpf_ktime_get_ns();
	rec->pid = pid_tgid >> 32;
	rec->tid = (__u32)pid_tgid;
	rec->uid = uid;
	rec->type = TC_REC_EXEC;
	rec->truncated = end - start > TC_CMDLINE_MAX;
	rec->ppid = BPF_CORE_READ(task, real_parent, tgid);
	rec->pad = 0;
	rec->start_ns = task_start_ns(task);
	rec->len = rec->truncated ? TC_CMDLINE_MAX : end - start;
	if (send_user_tail(rec, __builtin_offsetof(struct tc_exec_record, args), rec->len,
			   TC_CMDLINE_MAX, (const void *)start) != 0)
		__sync_fetch_and_add(&lost_execs, 1);
	return 0;
}
