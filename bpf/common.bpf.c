// SPDX-License-Identifier: GPL-2.0
/* What every part of the kernel side uses: the settings and counters, what
 * the owner of a connection and its sockets are, the filters, and the ring
 * wake-up policy with the enrichment ring and its budget. */
#include "tcpconnect.bpf.h"

#include <bpf/bpf_core_read.h>

const volatile __u32 filter_pid = 0;
const volatile bool filter_uid_on = false;
const volatile __u32 filter_uid = 0;
const volatile __u16 filter_af = 0;
const volatile __u32 filter_nports = 0;
const volatile __u16 filter_ports[TC_MAX_PORTS] = {};
const volatile bool count_mode = false;
const volatile bool count_by_process = false;
const volatile bool count_by_sport = false;
const volatile bool want_connect = true;
const volatile bool want_sport = true;
const volatile bool want_outcome = false;
const volatile bool failed_only = false;
const volatile bool want_close = false;
const volatile bool want_accept = false;
const volatile bool track_accepts = false;
const volatile bool count_outcomes = false;
const volatile bool count_handshakes = false;
const volatile bool count_closes = false;
const volatile __u64 shorter_than_ns = 0;
const volatile __u32 filter_netns = 0;
const volatile bool filter_cgroup_on = false;
const volatile bool filter_cgroupmap_on = false;
const volatile bool filter_mntnsmap_on = false;
const volatile bool filter_excluded_on = false;
const volatile bool want_dns = false;
const volatile bool want_parent = false;
const volatile bool want_exec = false;
const volatile bool metrics_on = false;
const volatile bool metrics_by_cgroup = false;
const volatile __u64 wakeup_interval_ns = 50000000;
const volatile __u64 wakeup_bytes = 1 << 20;
const volatile __u64 enrich_wakeup_bytes = 1 << 20;
const volatile __u64 enrich_interval_ns = 1000000000ULL / 64;
const volatile __u64 enrich_burst = 64;

__u64 lost_events = 0;
__u64 lost_execs = 0;
__u64 lost_dns = 0;
__u64 dns_rejected = 0;
__u64 conns_inserted = 0;
__u64 conns_deleted = 0;
__u64 state_recovered = 0;
__u64 enrich_last_wakeup_ns = 0;

/* --cgroup: the directory's fd at index 0; bpf_current_task_under_cgroup()
 * includes descendants. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

/* --cgroupmap / --mntnsmap: replaced before load by the user's pinned maps
 * (bcc's convention: 8-byte keys, any value). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u64);
} cgroupmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u32);
} mntnsmap SEC(".maps");

/* --container-name, --pod, --pod-namespace: cgroups user space found not to
 * match once their runtime answered (or that hold no container). An LRU: a
 * forgotten one costs one more record to user space, which drops it there. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TC_MAX_EXCLUDED_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} excluded_cgroups SEC(".maps");

/* The connection ring (events, in conn.bpf.c) and this one are apart so
 * that no amount of enrichment can take the place of a connection record:
 * DNS answers and command lines are made at a rate any local user controls
 * (reading answers, exec'ing in a loop), and in one shared ring they
 * displaced the records of other users' connections. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by user space before load */
} enrich_events SEC(".maps"); /* DNS answers, command lines */

/* Budget state per (kind << 32 | uid): the GCRA "theoretical arrival
 * time", one word updated with compare-and-swap (no lock in tracing
 * programs). Keyed by the real uid, not by process: every process of a user
 * shares it, so neither a fork+exec loop, nor a chain of forks (a new parent
 * each time), nor many reader processes get more than one user's budget, and
 * an unprivileged user namespace maps its ids to the same kernel uid. uid 0
 * has none: root can stop the tracer outright, and a budget would cost busy
 * root workloads (builds, package managers) their command lines. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} enrich_budget SEC(".maps");

__hidden __u32 sk_netns(__u64 skp)
{
	const struct sock *sk = (const struct sock *)skp;

	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

__hidden __u32 current_mntns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

/* Before 5.5 ("time: Rename tsk->real_start_time to ->start_boottime") the
 * same boot-based start time had another name. */
struct task_struct___rst {
	__u64 real_start_time;
};

/* What /proc/PID/stat reports as starttime (in clock ticks there).
 * de_thread() hands the old leader's start time to the exec'ing thread, so
 * it stays the process's for its lifetime. */
__hidden __u64 task_start_ns(struct task_struct *task)
{
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);

	if (bpf_core_field_exists(leader->start_boottime))
		return BPF_CORE_READ(leader, start_boottime);
	return BPF_CORE_READ((struct task_struct___rst *)leader, real_start_time);
}

__hidden void read_addrs(__u64 skp, __u16 af, __u8 *saddr, __u8 *daddr)
{
	const struct sock *sk = (const struct sock *)skp;

	if (af == TC_AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)daddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)daddr, sk, __sk_common.skc_v6_daddr);
	}
}

__hidden struct file *file_from_fd(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	struct file *f = NULL;

	if (fd < 0 || fd >= max)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

__hidden const struct sock *sock_of_file(struct file *f)
{
	struct socket *so;

	if (!f)
		return NULL;
	so = BPF_CORE_READ(f, private_data);
	if (!so || BPF_CORE_READ(so, file) != f) /* not a socket file */
		return NULL;
	return BPF_CORE_READ(so, sk);
}

__hidden const struct sock *sock_from_fd(long fd)
{
	return sock_of_file(file_from_fd(fd));
}

static __always_inline bool port_wanted(__u16 port)
{
	if (filter_nports == 0)
		return true;
	for (int i = 0; i < TC_MAX_PORTS; i++) {
		if (i >= filter_nports)
			break;
		if (filter_ports[i] == port)
			return true;
	}
	return false;
}

__hidden bool task_wanted(__u32 pid, __u32 uid)
{
	if (filter_pid && pid != filter_pid)
		return false;
	if (filter_uid_on && uid != filter_uid)
		return false;
	if (filter_cgroup_on && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return false;
	if (filter_cgroupmap_on) {
		__u64 id = bpf_get_current_cgroup_id();

		if (!bpf_map_lookup_elem(&cgroupmap, &id))
			return false;
	}
	if (filter_mntnsmap_on) {
		__u64 id = current_mntns();

		if (!bpf_map_lookup_elem(&mntnsmap, &id))
			return false;
	}
	if (filter_excluded_on) {
		__u64 id = bpf_get_current_cgroup_id();

		if (bpf_map_lookup_elem(&excluded_cgroups, &id))
			return false;
	}
	return true;
}

/* The owner filters come first: -p and -u decide most connects from the task
 * context alone, before any further read of the socket. */
__hidden bool conn_wanted(__u64 skp, __u16 af, __u16 port)
{
	const struct sock *sk = (const struct sock *)skp;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid();

	if (!sk || !task_wanted(pid_tgid >> 32, uid))
		return false;
	/* inet_sock_set_state also fires for SCTP and MPTCP sockets. */
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return false;
	if (af != TC_AF_INET && af != TC_AF_INET6)
		return false;
	if (filter_af && af != filter_af)
		return false;
	if (!port_wanted(port))
		return false;
	if (filter_netns && sk_netns(skp) != filter_netns)
		return false;
	return true;
}

/* Wake the reader of `ring` at most every wakeup_interval_ns, unless it is
 * half full. Each ring keeps its own clock: a wake-up for one ring does not
 * stand for the other (the reader consumes both, but only when woken). */
__hidden __u64 wakeup_flags(void *ring, __u64 *last, __u64 bytes)
{
	__u64 now = bpf_ktime_get_ns();

	if (now - *last >= wakeup_interval_ns || bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= bytes) {
		*last = now;
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

/* Whether `uid` may send one more enrichment record of `kind` now (GCRA: the
 * token bucket of burst enrich_burst refilled every enrich_interval_ns, kept
 * as the time at which the bucket would be full again). */
__hidden bool enrich_allowed(__u32 kind, __u32 uid)
{
	__u64 key = (__u64)kind << 32 | uid, now, next, base, old, *tat;
	__u64 tolerance = (enrich_burst ? enrich_burst - 1 : 0) * enrich_interval_ns;

	if (!enrich_interval_ns || uid == 0)
		return true;
	now = bpf_ktime_get_ns();
	tat = bpf_map_lookup_elem(&enrich_budget, &key);
	if (!tat) {
		next = now + enrich_interval_ns;
		if (bpf_map_update_elem(&enrich_budget, &key, &next, BPF_NOEXIST) == 0)
			return true;
		tat = bpf_map_lookup_elem(&enrich_budget, &key); /* raced with another CPU */
		if (!tat)
			return false;
	}
	for (int i = 0; i < 4; i++) {
		old = *(volatile __u64 *)tat;
		base = old > now ? old : now;
		if (base - now > tolerance)
			return false;
		if (__sync_val_compare_and_swap(tat, old, base + enrich_interval_ns) == old)
			return true;
	}
	return false; /* contended on every try: the budget is being hammered anyway */
}

/* Sends an enrichment record whose header (`hdr` bytes) is filled, with a
 * tail of `n` bytes of user memory at `src` after it; the record has room
 * for `max`. Returns nonzero when the ring was full (an unreadable tail sends
 * nothing and is not a loss). */
__hidden long send_user_tail(void *rec, __u32 hdr, __u32 n, __u32 max, const void *src)
{
	/* Keep the bound on n itself: the verifier checks the copy size. */
	asm volatile("" : "+r"(n));
	if (n > max)
		return 0;
	if (bpf_probe_read_user(rec + hdr, n, src) != 0)
		return 0;
	return bpf_ringbuf_output(&enrich_events, rec, hdr + n,
				  wakeup_flags(&enrich_events, &enrich_last_wakeup_ns,
					       enrich_wakeup_bytes));
}
