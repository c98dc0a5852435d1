/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers behind the SEC() entry points of tcpconnect.bpf.c. */
#ifndef TCPCONNECT_BPF_H
#define TCPCONNECT_BPF_H

#include "tcpconnect/abi.h"

#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_ 2
#define TCP_FIN_WAIT2_ 5
#define TCP_CLOSE_ 7
#define TCP_LAST_ACK_ 9
#define TCP_CLOSING_ 11
#define IPPROTO_TCP_ 6

#define ECONNRESET_ 104
#define EISCONN_ 106
#define ETIMEDOUT_ 110
#define ECONNREFUSED_ 111
#define EALREADY_ 114
#define EINPROGRESS_ 115

/* Classic tracepoint records, as tracefs' format files describe them. These
 * layouts are ABI (stable since the tracepoints were added), so they are
 * written out here instead of relying on trace_event_raw_* names, which
 * differ between kernels (tcp_retransmit_skb used tcp_event_sk_skb before
 * 6.10). */
struct tp_inet_sock_set_state {
	__u64 common;
	const void *skaddr;
	int oldstate;
	int newstate;
};

struct tp_tcp_retransmit_skb {
	__u64 common;
	const void *skbaddr;
	const void *skaddr;
};

struct tp_tcp_destroy_sock {
	__u64 common;
	const void *skaddr;
};

struct tp_sys_enter_connect {
	__u64 common;
	long syscall_nr;
	long fd;
	const void *uservaddr;
	long addrlen;
};

/* Any syscalls:sys_enter_* record: six 8-byte argument slots. */
struct tp_sys_enter {
	__u64 common;
	long syscall_nr;
	unsigned long args[6];
};

struct tp_sys_exit {
	__u64 common;
	long syscall_nr;
	long ret;
};

/* Configuration, fixed before load so the verifier prunes what is off. */
const volatile __u32 filter_pid = 0;      /* tgid; 0 = any */
const volatile bool filter_uid_on = false;
const volatile __u32 filter_uid = 0;
const volatile __u16 filter_af = 0;       /* TC_AF_INET / TC_AF_INET6; 0 = both */
const volatile __u32 filter_nports = 0;
const volatile __u16 filter_ports[TC_MAX_PORTS] = {};
const volatile bool count_mode = false;
const volatile bool count_by_process = false;
/* Which records to send (see enum tc_record_type). */
const volatile bool want_connect = true;   /* TC_REC_CONNECT, as bcc prints */
const volatile bool want_outcome = false;  /* TC_REC_OUTCOME */
const volatile bool failed_only = false;   /* ... only for attempts that failed */
const volatile bool want_close = false;    /* TC_REC_CLOSE (lifetime) */
const volatile bool want_accept = false;   /* TC_REC_ACCEPT, and track accepted sockets */
const volatile __u64 shorter_than_ns = 0;  /* close records: only shorter lifetimes; 0 = all */
/* Containers: owners' namespaces and cgroups. */
const volatile __u32 filter_netns = 0;        /* network namespace inode; 0 = any */
const volatile bool filter_cgroup_on = false; /* owner under the cgroup in cgroup_filter[0] */
const volatile bool filter_cgroupmap_on = false; /* owner's cgroup id is a key of cgroupmap */
const volatile bool filter_mntnsmap_on = false;  /* owner's mount ns inode is a key of mntnsmap */
const volatile bool want_dns = false;            /* TC_REC_DNS: answers read by resolvers */
const volatile bool want_parent = false;         /* owners' parent PID and name */
const volatile bool want_exec = false;           /* TC_REC_EXEC: command lines at exec */
/* Wake the reader at most this often unless the ring is filling up: keeps
 * wake-ups batched at high rates and lines prompt at low rates. */
const volatile __u64 wakeup_interval_ns = 50000000;
const volatile __u64 wakeup_bytes = 1 << 20;        /* of the connection ring */
const volatile __u64 enrich_wakeup_bytes = 1 << 20; /* of the enrichment ring */
/* Budget of enrichment records (DNS answers, command lines) per user: a
 * burst of enrich_burst records, then one per enrich_interval_ns (0: no
 * budget). Records over it are counted lost like those of a full ring. */
const volatile __u64 enrich_interval_ns = 1000000000ULL / 64;
const volatile __u64 enrich_burst = 64;

/* Runtime counters, read by user space through the mmapped .bss. */
__u64 lost_events = 0; /* connection records (connect, outcome, close, accept) */
__u64 lost_execs = 0;  /* command-line records: their processes show "?" */
__u64 lost_dns = 0;    /* DNS answers: their connects show no QUERY */
__u64 dns_rejected = 0; /* reads on DNS sockets not from their server: never names */
__u64 last_wakeup_ns = 0;
__u64 enrich_last_wakeup_ns = 0;
__u64 conns_inserted = 0; /* with conns_deleted and the live count: LRU evictions */
__u64 conns_deleted = 0;
__u64 state_recovered = 0; /* primary runs the kernel skipped that the backup took over */

/* A connect() syscall in progress in a thread (only in modes that report
 * failures): where it connects, and the socket if it reached SYN_SENT. */
struct connect_call {
	__u64 sk;
	__u32 fd;
	__u32 pad;
	__u8 addr[28]; /* struct sockaddr_in / sockaddr_in6 as the caller passed it */
	__u32 pad2;
};

/* Two rings, so that no amount of enrichment can take the place of a
 * connection record: DNS answers and command lines are made at a rate any
 * local user controls (reading answers, exec'ing in a loop), and in one
 * shared ring they displaced the records of other users' connections. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by user space before load */
} events SEC(".maps"); /* connect, outcome, close, accept */

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

/* Keyed by struct sock *. User space picks the type before load: when
 * connections are followed to their close (--lifetime) it is an LRU hash, so
 * that a connection whose close we never see (a program run skipped by the
 * kernel's recursion protection) cannot pin memory; otherwise entries live
 * only for the handshake and a plain hash (cheaper: no LRU lists) is swept
 * of entries older than any handshake. Evictions (inserted - deleted - live)
 * are reported under --verbose. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct tc_conn);
} conns SEC(".maps");

/* The socket this CPU last moved to SYN_SENT, and the thread that did it,
 * for sys_exit_connect. A per-CPU slot instead of a map keyed by thread:
 * a non-blocking connect() returns on the CPU it started on; when a thread
 * slept or migrated (blocking connect) the handshake has ended anyway and the
 * state change has already sent the record. */
struct syn_sent_slot {
	__u64 sk;
	__u32 tid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syn_sent_slot);
} last_syn_sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct connect_call);
} connect_calls SEC(".maps");

/* Per-CPU values, so that connects to one destination from several CPUs do
 * not bounce the value's cache lines between them; user space sums the CPUs
 * (min of first_ns, max of last_ns). Allocated on use. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tc_count_key);
	__type(value, struct tc_count_value);
} counts SEC(".maps");

/* The gap between consecutive connects needs one "last seen" per key across
 * all CPUs: a single atomic exchange per connect. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tc_count_key);
	__type(value, __u64);
} count_last SEC(".maps");

/* Scratch for building a new count value (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_count_value);
} count_scratch SEC(".maps");

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

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

static __always_inline __u32 current_mntns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
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

static __always_inline bool task_wanted(__u32 pid, __u32 uid)
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
	return true;
}

/* The owner's identity beyond its PID, read in its own context. */
static __always_inline void read_parent(__u32 *ppid, char *pcomm)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);

	*ppid = BPF_CORE_READ(parent, tgid);
	bpf_probe_read_kernel(pcomm, TC_COMM_LEN, &parent->comm);
}

/* Before 5.5 ("time: Rename tsk->real_start_time to ->start_boottime") the
 * same boot-based start time had another name. */
struct task_struct___rst {
	__u64 real_start_time;
};

/* start_boottime of the thread-group leader: what /proc/PID/stat reports as
 * starttime (in clock ticks there). de_thread() hands the old leader's start
 * time to the exec'ing thread, so it stays the process's for its lifetime. */
static __always_inline __u64 task_start_ns(struct task_struct *task)
{
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);

	if (bpf_core_field_exists(leader->start_boottime))
		return BPF_CORE_READ(leader, start_boottime);
	return BPF_CORE_READ((struct task_struct___rst *)leader, real_start_time);
}

static __always_inline __u64 current_start_ns(void)
{
	return task_start_ns((struct task_struct *)bpf_get_current_task());
}

static __always_inline void owner_ids(struct tc_conn *c)
{
	c->start_ns = current_start_ns();
	c->cgroup_id = bpf_get_current_cgroup_id();
	c->mntns = current_mntns();
	if (want_parent)
		read_parent(&c->ppid, c->pcomm);
}

static __always_inline void read_addrs(const struct sock *sk, __u16 af, __u8 *saddr, __u8 *daddr)
{
	if (af == TC_AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)daddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO((struct in6_addr *)saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)daddr, sk, __sk_common.skc_v6_daddr);
	}
}

/* Mirrors interval_bucket() in src/model/intervals.h: values below 8 are
 * exact; above, 8 sub-buckets per power of two. Loop-free MSB search
 * (clang 14's BPF backend cannot lower __builtin_clzll). */
static __always_inline __u32 interval_bucket(__u64 us)
{
	__u64 x = us;
	__u32 m = 0, b;

	if (us < 8) {
		b = us;
	} else {
		__u32 s;

		s = (x > 0xffffffffULL) << 5; x >>= s; m |= s;
		s = (x > 0xffff) << 4; x >>= s; m |= s;
		s = (x > 0xff) << 3; x >>= s; m |= s;
		s = (x > 0xf) << 2; x >>= s; m |= s;
		s = (x > 0x3) << 1; x >>= s; m |= s;
		m |= x >> 1;
		b = (m - 2) * 8 + ((us >> (m - 3)) & 7);
	}
	/* Hide b's origin from clang so that it keeps the clamp: the verifier
	 * needs the bound on b itself before ivl_hist[b]. */
	asm volatile("" : "+r"(b));
	return b < TC_IVL_BUCKETS ? b : TC_IVL_BUCKETS - 1;
}

static __always_inline void count_connect(const struct sock *sk, __u16 af, __u16 dport, __u32 pid)
{
	struct tc_count_key key = {};
	struct tc_count_value *val;
	__u64 now = bpf_ktime_get_ns(), prev = 0, *last;
	__u32 zero = 0, b;

	key.af = af;
	key.dport = dport;
	read_addrs(sk, af, key.saddr, key.daddr);
	if (count_by_process) {
		key.pid = pid;
		bpf_get_current_comm(key.comm, sizeof(key.comm));
	}

	last = bpf_map_lookup_elem(&count_last, &key);
	if (last)
		prev = __sync_lock_test_and_set(last, now);
	else if (bpf_map_update_elem(&count_last, &key, &now, BPF_NOEXIST) != 0 &&
		 (last = bpf_map_lookup_elem(&count_last, &key)))
		prev = __sync_lock_test_and_set(last, now); /* raced with another CPU */

	val = bpf_map_lookup_elem(&counts, &key);
	if (!val) {
		struct tc_count_value *init = bpf_map_lookup_elem(&count_scratch, &zero);
		long err;

		if (!init)
			return;
		/* The scratch value stays all-zero between uses: only these
		 * fields are ever written, and they are reset below. Every CPU's
		 * slot of a new key starts zeroed. */
		init->connects = 1;
		init->first_ns = now;
		init->last_ns = now;
		err = bpf_map_update_elem(&counts, &key, init, BPF_NOEXIST);
		init->connects = 0;
		init->first_ns = 0;
		init->last_ns = 0;
		if (err == 0) {
			val = bpf_map_lookup_elem(&counts, &key);
			if (val && prev && now > prev) {
				__u64 us = (now - prev) / 1000;

				val->sum_ivl_us += us;
				b = interval_bucket(us);
				if (b < TC_IVL_BUCKETS)
					val->ivl_hist[b] += 1;
			}
			return;
		}
		val = bpf_map_lookup_elem(&counts, &key);
		if (!val) {
			__sync_fetch_and_add(&lost_events, 1); /* table full */
			return;
		}
	}
	/* This CPU's slot: a program does not nest on one CPU. */
	val->connects += 1;
	if (!val->first_ns)
		val->first_ns = now;
	val->last_ns = now;
	if (prev && now > prev) {
		__u64 us = (now - prev) / 1000;

		val->sum_ivl_us += us;
		b = interval_bucket(us);
		if (b < TC_IVL_BUCKETS)
			val->ivl_hist[b] += 1;
	}
}

static __always_inline bool track(__u64 skp, struct tc_conn *c)
{
	if (bpf_map_update_elem(&conns, &skp, c, BPF_ANY) != 0) {
		__sync_fetch_and_add(&lost_events, 1);
		return false;
	}
	__sync_fetch_and_add(&conns_inserted, 1);
	return true;
}

static __always_inline void untrack(__u64 skp)
{
	if (bpf_map_delete_elem(&conns, &skp) == 0)
		__sync_fetch_and_add(&conns_deleted, 1);
}

static __always_inline int on_syn_sent(__u64 skp)
{
	const struct sock *sk = (const struct sock *)skp;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct syn_sent_slot *slot;
	struct connect_call *call;
	struct tc_conn c = {};
	__u16 af, dport, proto;
	__u32 zero = 0;

	if (!task_wanted(pid, uid))
		return 0;
	/* inet_sock_set_state also fires for SCTP and MPTCP sockets. */
	proto = BPF_CORE_READ(sk, sk_protocol);
	if (proto != IPPROTO_TCP_)
		return 0;
	af = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (af != TC_AF_INET && af != TC_AF_INET6)
		return 0;
	if (filter_af && af != filter_af)
		return 0;
	dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!port_wanted(dport))
		return 0;
	if (filter_netns && sk_netns(sk) != filter_netns)
		return 0;

	if (count_mode) {
		count_connect(sk, af, dport, pid);
		return 0;
	}

	c.ts_ns = bpf_ktime_get_ns();
	c.pid = pid;
	c.tid = tid;
	c.uid = uid;
	c.dir = TC_DIR_OUT;
	bpf_get_current_comm(c.comm, sizeof(c.comm));
	owner_ids(&c);
	if (!track(skp, &c))
		return 0;
	slot = bpf_map_lookup_elem(&last_syn_sent, &zero);
	if (slot) {
		slot->sk = skp;
		slot->tid = tid;
	}
	if (want_outcome || want_close) {
		call = bpf_map_lookup_elem(&connect_calls, &tid);
		if (call)
			call->sk = skp;
	}
	return 0;
}

/* Wake the reader of `ring` at most every wakeup_interval_ns, unless it is
 * half full. Each ring keeps its own clock: a wake-up for one ring does not
 * stand for the other (the reader consumes both, but only when woken). */
static __always_inline __u64 wakeup_flags(void *ring, __u64 *last, __u64 bytes)
{
	__u64 now = bpf_ktime_get_ns();

	if (now - *last >= wakeup_interval_ns || bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) >= bytes) {
		*last = now;
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

static __always_inline __u64 submit_flags(void)
{
	return wakeup_flags(&events, &last_wakeup_ns, wakeup_bytes);
}

static __always_inline __u64 enrich_submit_flags(void)
{
	return wakeup_flags(&enrich_events, &enrich_last_wakeup_ns, enrich_wakeup_bytes);
}

#define ENRICH_EXEC 1
#define ENRICH_DNS 2

/* Whether `uid` may send one more enrichment record of `kind` now (GCRA: the
 * token bucket of burst enrich_burst refilled every enrich_interval_ns, kept
 * as the time at which the bucket would be full again). */
static __always_inline bool enrich_allowed(__u32 kind, __u32 uid)
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

/* Reserves a record and fills what the socket and its owner say. */
static __always_inline struct tc_connect_record *
new_record(__u8 type, const struct sock *sk, const struct tc_conn *c)
{
	struct tc_connect_record *rec;

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		__sync_fetch_and_add(&lost_events, 1);
		return NULL;
	}
	rec->type = type;
	rec->ts_ns = c->ts_ns;
	rec->pid = c->pid;
	rec->tid = c->tid;
	rec->uid = c->uid;
	rec->emit_point = 0;
	rec->outcome = TC_OUT_NONE;
	rec->dir = c->dir;
	rec->err = 0;
	__builtin_memcpy(rec->comm, c->comm, sizeof(rec->comm));
	rec->af = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* inet_sport, not skc_num: on the way to CLOSE, inet_put_port() zeroes
	 * skc_num before inet_sk_state_store() fires the tracepoint, and
	 * getsockname() then says 0 too; inet_sport keeps the port used. */
	rec->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	rec->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__builtin_memset(rec->saddr, 0, sizeof(rec->saddr));
	__builtin_memset(rec->daddr, 0, sizeof(rec->daddr));
	read_addrs(sk, rec->af, rec->saddr, rec->daddr);
	rec->latency_ns = 0;
	rec->duration_ns = 0;
	rec->tx_bytes = 0;
	rec->rx_bytes = 0;
	rec->netns = sk_netns(sk);
	rec->mntns = c->mntns;
	rec->cgroup_id = c->cgroup_id;
	rec->ppid = c->ppid;
	rec->flags = 0;
	__builtin_memcpy(rec->pcomm, c->pcomm, sizeof(rec->pcomm));
	rec->start_ns = c->start_ns;
	return rec;
}

/* Sends the connect record of a connection once, whichever hook gets here
 * first. The port is read from the socket now that it is chosen. */
static __always_inline void emit_connect(__u64 skp, struct tc_conn *c, __u16 point)
{
	struct tc_connect_record *rec;

	if (!want_connect)
		return;
	if (__sync_val_compare_and_swap(&c->emitted, 0, 1) != 0)
		return;
	rec = new_record(TC_REC_CONNECT, (const struct sock *)skp, c);
	if (!rec)
		return;
	rec->emit_point = point;
	bpf_ringbuf_submit(rec, submit_flags());
}

static __always_inline __u8 outcome_of(int err)
{
	switch (err) {
	case 0:
		return TC_OUT_ESTABLISHED;
	case ECONNREFUSED_:
		return TC_OUT_REFUSED;
	case ETIMEDOUT_:
		return TC_OUT_TIMEDOUT;
	case ECONNRESET_:
		return TC_OUT_RESET;
	default:
		return TC_OUT_ERROR;
	}
}

/* The handshake ended (established or failed): outcome and latency records,
 * and for a failure the end of the connection. */
static __always_inline void report_handshake(__u64 skp, struct tc_conn *c, __u8 outcome, int err,
					     __u64 now)
{
	const struct sock *sk = (const struct sock *)skp;
	struct tc_connect_record *rec;
	__u64 latency = now - c->ts_ns;
	bool failed = outcome != TC_OUT_ESTABLISHED;

	if (want_outcome && (failed || !failed_only)) {
		rec = new_record(TC_REC_OUTCOME, sk, c);
		if (rec) {
			rec->flags = failed ? TC_F_FAILED : 0;
			rec->outcome = outcome;
			rec->err = err;
			rec->latency_ns = latency;
			bpf_ringbuf_submit(rec, submit_flags());
		}
	}
	if (want_close && failed && (!shorter_than_ns || latency < shorter_than_ns)) {
		rec = new_record(TC_REC_CLOSE, sk, c);
		if (rec) {
			rec->flags = TC_F_FAILED;
			rec->outcome = outcome;
			rec->err = err;
			rec->latency_ns = latency;
			rec->duration_ns = latency;
			bpf_ringbuf_submit(rec, submit_flags());
		}
	}
}

static __always_inline int on_handshake_end(__u64 skp, int newstate)
{
	const struct sock *sk = (const struct sock *)skp;
	struct tc_conn *c;
	__u64 now;
	int err;

	c = bpf_map_lookup_elem(&conns, &skp);
	if (!c)
		return 0;
	emit_connect(skp, c, TC_EMIT_STATE_CHANGE);
	if (!want_outcome && !want_close) {
		untrack(skp);
		return 0;
	}
	now = bpf_ktime_get_ns();
	if (newstate == TCP_ESTABLISHED_) {
		c->est_ns = now;
		report_handshake(skp, c, TC_OUT_ESTABLISHED, 0, now);
		if (!want_close)
			untrack(skp);
		return 0;
	}
	/* tcp_reset() and tcp_write_err() set sk_err before tcp_done() moves
	 * the socket to CLOSE. No error means the kernel gave up inside
	 * connect() (the syscall returns why) or the owner closed it. */
	err = BPF_CORE_READ(sk, sk_err);
	if (!err) {
		__u32 tid = (__u32)bpf_get_current_pid_tgid();
		struct connect_call *call = bpf_map_lookup_elem(&connect_calls, &tid);

		if (call && call->sk == skp && tid == c->tid) {
			c->awaiting_errno = 1;
			c->est_ns = now; /* failure time, for the latency */
			return 0;
		}
		report_handshake(skp, c, TC_OUT_ABORTED, 0, now);
	} else {
		report_handshake(skp, c, outcome_of(err), err, now);
	}
	untrack(skp);
	return 0;
}

/* Data bytes, as the application sent and received them: tcp_sock's
 * bytes_acked and bytes_received count sequence space, which includes the
 * SYN we sent (active opens; the passive side starts after it) and the FINs
 * once acked / received. Our FIN was acked when the socket closes from
 * FIN_WAIT2, CLOSING or LAST_ACK; tcp_fin() marks a received FIN with
 * SOCK_DONE. */
static __always_inline void data_bytes(const struct sock *sk, const struct tc_conn *c, int oldstate,
				       __u64 *tx, __u64 *rx)
{
	__u64 acked = BPF_CORE_READ((const struct tcp_sock *)sk, bytes_acked);
	__u64 received = BPF_CORE_READ((const struct tcp_sock *)sk, bytes_received);
	unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	__u64 control = c->dir == TC_DIR_OUT ? 1 : 0;

	if (oldstate == TCP_FIN_WAIT2_ || oldstate == TCP_CLOSING_ || oldstate == TCP_LAST_ACK_)
		control++;
	/* State unknown (seen only at destroy): our FIN counts if it was sent
	 * (SEND_SHUTDOWN) and everything up to it was acked. */
	if (oldstate < 0 && (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown) & 2 /* SEND_SHUTDOWN */) &&
	    BPF_CORE_READ((const struct tcp_sock *)sk, snd_una) ==
		    BPF_CORE_READ((const struct tcp_sock *)sk, write_seq))
		control++;
	*tx = acked > control ? acked - control : 0;
	if (received && (flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		received--;
	*rx = received;
}

static __always_inline int on_close(__u64 skp, int oldstate)
{
	const struct sock *sk = (const struct sock *)skp;
	struct tc_connect_record *rec;
	struct tc_conn *c;
	__u64 now, duration;

	c = bpf_map_lookup_elem(&conns, &skp);
	if (!c)
		return 0;
	now = bpf_ktime_get_ns();
	duration = now - c->ts_ns;
	if (!failed_only && (!shorter_than_ns || duration < shorter_than_ns)) {
		rec = new_record(TC_REC_CLOSE, sk, c);
		if (rec) {
			/* An established connection that ended on an error (reset by
			 * the peer, retransmissions timed out) says so. */
			int err = BPF_CORE_READ(sk, sk_err);

			rec->outcome = err ? outcome_of(err) : TC_OUT_ESTABLISHED;
			rec->err = err;
			rec->latency_ns = c->dir == TC_DIR_OUT && c->est_ns ? c->est_ns - c->ts_ns : 0;
			rec->duration_ns = duration;
			data_bytes(sk, c, oldstate, &rec->tx_bytes, &rec->rx_bytes);
			bpf_ringbuf_submit(rec, submit_flags());
		}
	}
	untrack(skp);
	return 0;
}

static __always_inline int handle_state_change(__u64 skp, int oldstate, int newstate)
{
	if (oldstate == TCP_CLOSE_ && newstate == TCP_SYN_SENT_)
		return on_syn_sent(skp);
	if (count_mode)
		return 0;
	if (oldstate == TCP_SYN_SENT_)
		return on_handshake_end(skp, newstate);
	if (newstate == TCP_CLOSE_ && want_close)
		return on_close(skp, oldstate);
	return 0;
}

/* The kernel runs a tracing program at most once per CPU at a time: when a
 * softirq interrupts the program in task context (connect(), close()) and
 * fires the same tracepoint, that nested run is skipped and counted in the
 * program's recursion_misses. Such transitions (handshakes ending, closes)
 * are the ones attribution depends on, so a second program on the same
 * tracepoint handles exactly the events the first one was too busy for: it
 * runs after the primary for every event and acts only while the primary is
 * marked busy on this CPU, i.e. when the primary was skipped. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} state_busy SEC(".maps");

/* Transitions handle_state_change() acts on; for the rest both programs
 * only mark or check the busy flag. */
static __always_inline bool state_relevant(int oldstate, int newstate)
{
	if (oldstate == TCP_CLOSE_ && newstate == TCP_SYN_SENT_)
		return true;
	if (count_mode)
		return false;
	return oldstate == TCP_SYN_SENT_ || (newstate == TCP_CLOSE_ && want_close);
}

static __always_inline int state_primary(__u64 skp, int oldstate, int newstate)
{
	__u32 zero = 0, *busy;

	/* Busy from the start, also for transitions with nothing to do: a run
	 * the kernel skips meanwhile is then the backup's, not a lost one. */
	busy = bpf_map_lookup_elem(&state_busy, &zero);
	if (busy)
		*busy = 1;
	if (state_relevant(oldstate, newstate))
		handle_state_change(skp, oldstate, newstate);
	if (busy)
		*busy = 0;
	return 0;
}

static __always_inline int state_backup(__u64 skp, int oldstate, int newstate)
{
	__u32 zero = 0, *busy;

	busy = bpf_map_lookup_elem(&state_busy, &zero);
	if (!busy || !*busy)
		return 0;
	/* Every skipped run counts, also those with nothing to do (a softirq's
	 * state change of another socket): none of them is missing. */
	__sync_fetch_and_add(&state_recovered, 1);
	if (!state_relevant(oldstate, newstate))
		return 0;
	return handle_state_change(skp, oldstate, newstate);
}

/* tcp:tcp_destroy_sock: a connection we still follow is being freed, so its
 * transition to CLOSE was not seen (a run the kernel skipped): report the
 * close now, from the socket's final counters. */
static __always_inline int handle_destroy(__u64 skp)
{
	if (!want_close)
		return 0;
	return on_close(skp, -1);
}

static __always_inline int handle_retransmit(__u64 skp)
{
	struct tc_conn *c;

	if (count_mode)
		return 0;
	c = bpf_map_lookup_elem(&conns, &skp);
	if (c && !c->est_ns)
		emit_connect(skp, c, TC_EMIT_SYN_RETRANSMIT);
	return 0;
}

/* The file behind a descriptor of the current task, or NULL. */
static __always_inline struct file *file_from_fd(long fd)
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

/* The socket of a file, or NULL when it is not a socket file. */
static __always_inline const struct sock *sock_of_file(struct file *f)
{
	struct socket *so;

	if (!f)
		return NULL;
	so = BPF_CORE_READ(f, private_data);
	if (!so || BPF_CORE_READ(so, file) != f) /* not a socket file */
		return NULL;
	return BPF_CORE_READ(so, sk);
}

/* The socket behind a file descriptor of the current task, or NULL when the
 * descriptor is not a socket. */
static __always_inline const struct sock *sock_from_fd(long fd)
{
	return sock_of_file(file_from_fd(fd));
}

static __always_inline void dns_connect_enter(long fd, const void *uaddr, long len);
static __always_inline void dns_connect_exit(long ret);

static __always_inline int handle_connect_enter(struct tp_sys_enter_connect *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct connect_call call = {};

	if (want_dns)
		dns_connect_enter(ctx->fd, ctx->uservaddr, ctx->addrlen);
	if (!want_outcome && !want_close)
		return 0;

	call.fd = ctx->fd;
	bpf_probe_read_user(call.addr, sizeof(call.addr), ctx->uservaddr);
	bpf_map_update_elem(&connect_calls, &tid, &call, BPF_ANY);
	return 0;
}

/* connect() failed before any SYN (no route, refused by a cgroup hook, ...):
 * sock:inet_sock_set_state never saw it. */
static __always_inline void send_early_failure(__u8 type, struct connect_call *call,
					       const struct sock *sk, __u16 af, __u16 dport, int err);

static __always_inline void report_early_failure(struct connect_call *call, int err)
{
	const struct sock *sk = sock_from_fd(call->fd);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__u16 af, dport;

	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return;
	if (!task_wanted(pid_tgid >> 32, uid))
		return;
	__builtin_memcpy(&af, call->addr, sizeof(af));
	if (af != TC_AF_INET && af != TC_AF_INET6)
		return;
	if (filter_af && af != filter_af)
		return;
	dport = ((__u16)call->addr[2] << 8) | call->addr[3];
	if (!port_wanted(dport))
		return;
	if (filter_netns && sk_netns(sk) != filter_netns)
		return;

	if (want_outcome)
		send_early_failure(TC_REC_OUTCOME, call, sk, af, dport, err);
	if (want_close)
		send_early_failure(TC_REC_CLOSE, call, sk, af, dport, err);
}

static __always_inline void send_early_failure(__u8 type, struct connect_call *call,
					       const struct sock *sk, __u16 af, __u16 dport, int err)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct tc_connect_record *rec;

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->type = type;
	rec->ts_ns = bpf_ktime_get_ns();
	rec->pid = pid_tgid >> 32;
	rec->tid = (__u32)pid_tgid;
	rec->uid = uid;
	rec->af = af;
	rec->dport = dport;
	rec->outcome = TC_OUT_ERROR;
	rec->flags = TC_F_FAILED;
	rec->dir = TC_DIR_OUT;
	rec->err = err;
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));
	rec->netns = sk_netns(sk);
	rec->mntns = current_mntns();
	rec->cgroup_id = bpf_get_current_cgroup_id();
	rec->start_ns = current_start_ns();
	if (want_parent)
		read_parent(&rec->ppid, rec->pcomm);
	if (af == TC_AF_INET) {
		__builtin_memcpy(rec->daddr, call->addr + 4, 4); /* sin_addr */
		BPF_CORE_READ_INTO((__u32 *)rec->saddr, sk, __sk_common.skc_rcv_saddr);
	} else {
		__builtin_memcpy(rec->daddr, call->addr + 8, 16); /* sin6_addr */
		BPF_CORE_READ_INTO((struct in6_addr *)rec->saddr, sk, __sk_common.skc_v6_rcv_saddr);
	}
	bpf_ringbuf_submit(rec, submit_flags());
}

static __always_inline int handle_connect_return(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct syn_sent_slot *slot;
	struct connect_call *call;
	struct tc_conn *c;
	__u32 zero = 0;
	__u64 sk;

	if (want_dns)
		dns_connect_exit(ret);
	if (count_mode)
		return 0;
	slot = bpf_map_lookup_elem(&last_syn_sent, &zero);
	if (slot && slot->tid == tid && slot->sk) {
		sk = slot->sk;
		slot->sk = 0;
		c = bpf_map_lookup_elem(&conns, &sk);
		if (c)
			emit_connect(sk, c, TC_EMIT_CONNECT_RETURN);
	}
	if (!want_outcome && !want_close)
		return 0;

	call = bpf_map_lookup_elem(&connect_calls, &tid);
	if (!call)
		return 0;
	if (ret >= 0 || ret == -EINPROGRESS_ || ret == -EALREADY_ || ret == -EISCONN_) {
		bpf_map_delete_elem(&connect_calls, &tid);
		return 0;
	}
	if (call->sk) {
		/* It reached SYN_SENT: the state change reported it, unless it
		 * failed inside connect() and waits for this errno. */
		sk = call->sk;
		c = bpf_map_lookup_elem(&conns, &sk);
		if (c && c->awaiting_errno) {
			emit_connect(sk, c, TC_EMIT_CONNECT_RETURN);
			report_handshake(sk, c, TC_OUT_ERROR, -ret, c->est_ns);
			untrack(sk);
		}
	} else {
		report_early_failure(call, -ret);
	}
	bpf_map_delete_elem(&connect_calls, &tid);
	return 0;
}

static __always_inline int handle_accept_return(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct tc_connect_record *rec;
	const struct sock *sk;
	struct tc_conn c = {};
	__u16 af, lport;
	__u64 skp;

	if (ret < 0 || !task_wanted(pid_tgid >> 32, uid))
		return 0;
	sk = sock_from_fd(ret);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_)
		return 0;
	af = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (af != TC_AF_INET && af != TC_AF_INET6)
		return 0;
	if (filter_af && af != filter_af)
		return 0;
	/* For accepted connections -P names the local (service) port. */
	lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!port_wanted(lport))
		return 0;
	if (filter_netns && sk_netns(sk) != filter_netns)
		return 0;

	skp = (__u64)sk;
	c.ts_ns = bpf_ktime_get_ns();
	c.est_ns = c.ts_ns;
	c.pid = pid_tgid >> 32;
	c.tid = (__u32)pid_tgid;
	c.uid = uid;
	c.dir = TC_DIR_IN;
	c.emitted = 1;
	bpf_get_current_comm(c.comm, sizeof(c.comm));
	owner_ids(&c);
	if (want_close && !track(skp, &c))
		return 0;
	if (!want_connect && !want_outcome)
		return 0;
	rec = new_record(TC_REC_ACCEPT, sk, &c);
	if (!rec)
		return 0;
	rec->outcome = TC_OUT_ESTABLISHED;
	bpf_ringbuf_submit(rec, submit_flags());
	return 0;
}

/* Sends an enrichment record whose header is filled and whose tail is `want`
 * bytes of user memory at `src`, cut to `max`: the length goes to *len and the
 * record out with only the bytes copied. A full ring counts in *lost. */
static __always_inline void send_user_tail(void *rec, __u32 hdr, __u16 *len, void *dst, __u32 max,
					   __u64 want, const void *src, __u64 *lost)
{
	__u32 n = want > max ? max : (__u32)want;

	/* Keep the bound on n itself: the verifier checks the copy size. */
	asm volatile("" : "+r"(n));
	if (n > max)
		return;
	*len = n;
	if (bpf_probe_read_user(dst, n, src) != 0)
		return;
	if (bpf_ringbuf_output(&enrich_events, rec, hdr + n, enrich_submit_flags()) != 0)
		__sync_fetch_and_add(lost, 1);
}

/* Command lines for --cmdline and JSON, from sched:sched_process_exec: the
 * new program's argv is on its stack by then, so even a process that exits a
 * moment after its connect is named. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_exec_record);
} exec_scratch SEC(".maps");

static __always_inline int handle_exec(void)
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
	send_user_tail(rec, __builtin_offsetof(struct tc_exec_record, args), &rec->len, rec->args,
		       TC_CMDLINE_MAX, end - start, (const void *)start, &lost_execs);
	return 0;
}

/* DNS answers for -d, from syscall tracepoints only.
 *
 * Why here and not on packets (cgroup_skb, socket filters, net tracepoints):
 * in the receiving syscall the reader is known (its process and network
 * namespace), the payload is what the resolver itself parsed (reassembled
 * for TCP, whatever the NIC did with it), and nothing is attached to cgroups
 * or devices. Cost stays low because a socket is only watched once its
 * process addressed it to port 53 (connect() as glibc does, or sendto() as
 * musl does); every other read returns after one hash lookup.
 *
 * Addressing a socket to port 53 proves nothing about what is read from it:
 * any process can send a query to an address where nothing answers and then
 * send itself an "answer" from another socket. So a read counts as a DNS
 * answer only when its data came from port 53 of a server the socket sent a
 * query to:
 * - stream (TCP): data only ever comes from the connected peer: the peer
 *   must be such a server;
 * - datagram, the reader asked for the source (recvfrom's src_addr,
 *   recvmsg's msg_name, as glibc and musl do): the address the kernel wrote
 *   there, which is the datagram's own source;
 * - datagram read without a source (read(), recv()): only on a socket we saw
 *   connect() to the server with nothing queued yet. A connected UDP socket
 *   receives only from its peer, but datagrams queued before the connect stay
 *   queued and would be read as if they came from it.
 * A connect that bypasses the syscall (io_uring) is not seen: a socket
 * reconnected that way keeps its earlier "connected clean" mark, which only
 * matters for reads without a source. */
#define DNS_PORT_BE 0x3500 /* htons(53) */
#define SOCK_STREAM_ 1
#define SOCK_DGRAM_ 2
#define DNS_SERVERS 4 /* musl queries up to 3 servers from one socket */

/* A watched socket: the file it was when watched (a reused descriptor number
 * is noticed), and the servers (IPv6 or IPv4-mapped) it sent queries to. */
struct dns_sock {
	__u64 file;
	__u8 servers[DNS_SERVERS][16];
	__u8 clean_peer[16]; /* connect()ed there with an empty receive queue */
	__u32 nservers;
	__u16 next;  /* slot the next new server takes */
	__u8 clean;  /* clean_peer is valid */
	__u8 pad;
};

/* Keyed by (tgid << 32 | fd). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct dns_sock);
} dns_socks SEC(".maps");

/* A connect() to port 53 in progress, by thread: the socket is watched when
 * it returns, once the kernel has set its peer. */
struct dns_connect {
	__u8 server[16];
	__u32 fd;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct dns_connect);
} dns_connects SEC(".maps");

enum dns_read_kind {
	DNS_READ = 0,     /* read(fd, buf, n) */
	DNS_RECVFROM = 1, /* recvfrom(fd, buf, n, flags, src_addr, addrlen) */
	DNS_RECVMSG = 2,  /* recvmsg(fd, msg, flags) */
};

/* A read in progress on a watched socket, by thread. */
struct dns_read {
	__u64 buf;
	__u64 key;  /* of dns_socks */
	__u64 sk;   /* the file is held by the syscall: so is its socket */
	__u64 src;    /* recvfrom: src_addr; recvmsg: the struct user_msghdr */
	__u64 srclen; /* recvfrom: addrlen */
	__u32 room;   /* bytes the caller gave for the source address */
	__u32 netns;
	__u8 stream;
	__u8 kind;  /* enum dns_read_kind */
	__u8 clean; /* the socket was connected clean before the read began */
	__u8 pad[5];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct dns_read);
} dns_reads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_dns_record);
} dns_scratch SEC(".maps");

static __always_inline __u64 dns_key(long fd)
{
	return (bpf_get_current_pid_tgid() & 0xffffffff00000000ULL) | (__u32)fd;
}

/* An IPv4 address as IPv6 sees it (::ffff:a.b.c.d), so that both families
 * compare as 16 bytes. */
static __always_inline void mapped_v4(__u8 *out, __u32 addr)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &addr, 4);
}

/* Reads a user sockaddr of `len` bytes: its port (network order) and its
 * address in 16-byte form. False unless it is a complete AF_INET or AF_INET6
 * address. */
static __always_inline bool read_user_sockaddr(const void *uaddr, __u32 len, __u16 *port,
					       __u8 *addr)
{
	struct {
		__u16 family;
		__u16 port;
	} sa = {};

	if (!uaddr || len < 8 || bpf_probe_read_user(&sa, sizeof(sa), uaddr) != 0)
		return false;
	*port = sa.port;
	if (sa.family == TC_AF_INET) {
		__u32 a4;

		if (bpf_probe_read_user(&a4, sizeof(a4), uaddr + 4) != 0)
			return false;
		mapped_v4(addr, a4);
		return true;
	}
	if (sa.family == TC_AF_INET6 && len >= 24)
		return bpf_probe_read_user(addr, 16, uaddr + 8) == 0;
	return false;
}

/* The connected peer of a socket: port (network order) and address. */
static __always_inline void sock_peer(const struct sock *sk, __u16 *port, __u8 *addr)
{
	*port = BPF_CORE_READ(sk, __sk_common.skc_dport);
	if (BPF_CORE_READ(sk, __sk_common.skc_family) == TC_AF_INET)
		mapped_v4(addr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	else
		BPF_CORE_READ_INTO((struct in6_addr *)addr, sk, __sk_common.skc_v6_daddr);
}

static __always_inline bool addr_eq(const __u8 *a, const __u8 *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

static __always_inline bool dns_is_server(const struct dns_sock *ds, __u16 port, const __u8 *addr)
{
	if (port != DNS_PORT_BE)
		return false;
	for (int i = 0; i < DNS_SERVERS; i++) {
		if (i < ds->nservers && addr_eq(ds->servers[i], addr))
			return true;
	}
	return false;
}

/* Adds `server` to the servers socket `fd` sent queries to (the oldest goes
 * when all slots are taken); returns the entry, or NULL. */
static __always_inline struct dns_sock *dns_watch(long fd, const __u8 *server)
{
	__u64 key = dns_key(fd);
	struct dns_sock *ds, fresh = {};
	struct file *f = file_from_fd(fd);
	__u32 slot;

	if (!f)
		return NULL;
	ds = bpf_map_lookup_elem(&dns_socks, &key);
	if (!ds || ds->file != (__u64)f) {
		fresh.file = (__u64)f;
		__builtin_memcpy(fresh.servers[0], server, 16);
		fresh.nservers = 1;
		bpf_map_update_elem(&dns_socks, &key, &fresh, BPF_ANY);
		return bpf_map_lookup_elem(&dns_socks, &key);
	}
	if (dns_is_server(ds, DNS_PORT_BE, server))
		return ds;
	slot = ds->next++ & (DNS_SERVERS - 1);
	__builtin_memcpy(ds->servers[slot], server, 16);
	if (ds->nservers < DNS_SERVERS)
		ds->nservers++;
	return ds;
}

static __always_inline int handle_sendto_enter(struct tp_sys_enter *ctx)
{
	/* sendto(fd, buf, len, flags, addr, addrlen) */
	__u8 server[16] __attribute__((aligned(8)));
	__u16 port;

	if (read_user_sockaddr((const void *)ctx->args[4], ctx->args[5], &port, server) &&
	    port == DNS_PORT_BE)
		dns_watch(ctx->args[0], server);
	return 0;
}

/* connect() entered: a watched socket may be getting another peer, so its
 * clean mark goes; a connect to port 53 is remembered until it returns. */
static __always_inline void dns_connect_enter(long fd, const void *uaddr, long len)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dns_connect dc = {};
	struct dns_sock *ds;
	__u64 key = dns_key(fd);
	__u16 port;

	ds = bpf_map_lookup_elem(&dns_socks, &key);
	if (ds)
		ds->clean = 0;
	if (!read_user_sockaddr(uaddr, len, &port, dc.server) || port != DNS_PORT_BE) {
		/* One left by a connect whose return we missed is not this one. */
		bpf_map_delete_elem(&dns_connects, &tid);
		return;
	}
	dc.fd = fd;
	bpf_map_update_elem(&dns_connects, &tid, &dc, BPF_ANY);
}

static __always_inline void dns_connect_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dns_connect *dc;
	const struct sock *sk;
	struct dns_sock *ds;
	__u8 server[16] __attribute__((aligned(8)));
	long fd;
	int queued;

	dc = bpf_map_lookup_elem(&dns_connects, &tid);
	if (!dc)
		return;
	fd = dc->fd;
	__builtin_memcpy(server, dc->server, 16);
	bpf_map_delete_elem(&dns_connects, &tid);
	if (ret != 0 && ret != -EINPROGRESS_)
		return;
	sk = sock_from_fd(fd);
	if (!sk)
		return;
	ds = dns_watch(fd, server);
	if (!ds || BPF_CORE_READ(sk, sk_type) != SOCK_DGRAM_)
		return;
	/* Whatever arrived before the connect took effect is still queued,
	 * from any sender. */
	queued = BPF_CORE_READ(sk, sk_backlog.rmem_alloc.counter);
	if (queued)
		return;
	__builtin_memcpy(ds->clean_peer, server, 16);
	ds->clean = 1;
}

/* A read(fd, buf, ...), recvfrom(fd, buf, ..., src_addr, addrlen) or
 * recvmsg(fd, msg, ...) is starting: remember where the answer and its
 * source will land if fd is watched. */
static __always_inline int dns_read_enter(long fd, __u64 buf, __u8 kind, __u64 src, __u64 srclen)
{
	__u64 key = dns_key(fd);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dns_read r = {};
	struct dns_sock *ds;
	const struct sock *sk;
	struct file *f;

	ds = bpf_map_lookup_elem(&dns_socks, &key);
	if (!ds)
		return 0;
	f = file_from_fd(fd);
	if ((__u64)f != ds->file) { /* closed and reused for something else */
		bpf_map_delete_elem(&dns_socks, &key);
		return 0;
	}
	sk = sock_of_file(f);
	if (!sk)
		return 0;
	if (kind == DNS_RECVMSG) {
		struct user_msghdr msg = {};
		struct iovec iov = {};

		if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)buf) != 0 || !msg.msg_iov ||
		    bpf_probe_read_user(&iov, sizeof(iov), msg.msg_iov) != 0)
			return 0;
		src = buf;
		r.room = msg.msg_name ? msg.msg_namelen : 0;
		buf = (__u64)iov.iov_base;
	} else if (kind == DNS_RECVFROM && src && srclen) {
		bpf_probe_read_user(&r.room, sizeof(r.room), (const void *)srclen);
	}
	r.buf = buf;
	r.key = key;
	r.sk = (__u64)sk;
	r.src = src;
	r.srclen = srclen;
	r.kind = kind;
	/* Set after the connect returned: only then is every datagram the read
	 * can get one from the peer. */
	r.clean = ds->clean;
	r.netns = sk_netns(sk);
	/* Names are only ever used in their own namespace: with --netns the
	 * others' answers are never needed. (The task filters do not apply:
	 * a connect may use its namespace's answer from another process.) */
	if (filter_netns && r.netns != filter_netns)
		return 0;
	r.stream = BPF_CORE_READ(sk, sk_type) == SOCK_STREAM_;
	bpf_map_update_elem(&dns_reads, &tid, &r, BPF_ANY);
	return 0;
}

/* Whether the data a finished read returned came from port 53 of a server
 * the socket queried (see the comment at the top of this part). */
static __always_inline bool dns_from_server(const struct dns_read *r)
{
	const struct sock *sk = (const struct sock *)r->sk;
	const void *src = NULL;
	struct dns_sock *ds;
	__u8 addr[16] __attribute__((aligned(8)));
	__u32 len = 0;
	__u16 port;

	ds = bpf_map_lookup_elem(&dns_socks, &r->key);
	if (!ds)
		return false;
	if (r->stream) {
		sock_peer(sk, &port, addr);
		return dns_is_server(ds, port, addr);
	}
	if (r->kind == DNS_RECVFROM && r->src) {
		src = (const void *)r->src;
		if (!r->srclen || bpf_probe_read_user(&len, sizeof(len), (const void *)r->srclen) != 0)
			return false;
	} else if (r->kind == DNS_RECVMSG) {
		struct user_msghdr msg = {};

		/* The kernel wrote the source to msg_name and its length to
		 * msg_namelen (0 when msg_name is NULL). */
		if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)r->src) != 0)
			return false;
		src = msg.msg_name;
		len = msg.msg_namelen;
	}
	if (src) {
		/* The kernel writes the full length even when it cut the address
		 * to the caller's room: the rest of the buffer is the caller's. */
		if (len > r->room)
			return false;
		return read_user_sockaddr(src, len, &port, addr) && dns_is_server(ds, port, addr);
	}
	if (!r->clean || !ds->clean)
		return false;
	sock_peer(sk, &port, addr);
	return port == DNS_PORT_BE && addr_eq(addr, ds->clean_peer) && dns_is_server(ds, port, addr);
}

static __always_inline int dns_read_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid, zero = 0, uid;
	struct tc_dns_record *rec;
	struct dns_read *r;
	__u64 buf;

	r = bpf_map_lookup_elem(&dns_reads, &tid);
	if (!r)
		return 0;
	buf = r->buf;
	rec = bpf_map_lookup_elem(&dns_scratch, &zero);
	if (!rec || ret <= 0) {
		bpf_map_delete_elem(&dns_reads, &tid);
		return 0;
	}
	if (!dns_from_server(r)) {
		__sync_fetch_and_add(&dns_rejected, 1);
		bpf_map_delete_elem(&dns_reads, &tid);
		return 0;
	}
	uid = (__u32)bpf_get_current_uid_gid();
	if (!enrich_allowed(ENRICH_DNS, uid)) {
		__sync_fetch_and_add(&lost_dns, 1);
		bpf_map_delete_elem(&dns_reads, &tid);
		return 0;
	}
	rec->ts_ns = bpf_ktime_get_ns();
	rec->pid = pid_tgid >> 32;
	rec->tid = tid;
	rec->uid = uid;
	rec->type = TC_REC_DNS;
	rec->stream = r->stream;
	rec->netns = r->netns;
	rec->pad = 0;
	bpf_map_delete_elem(&dns_reads, &tid);
	send_user_tail(rec, __builtin_offsetof(struct tc_dns_record, data), &rec->len, rec->data,
		       TC_DNS_MAX, ret, (const void *)buf, &lost_dns);
	return 0;
}

#endif
