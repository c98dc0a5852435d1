/* SPDX-License-Identifier: GPL-2.0 */
/* Helpers behind the SEC() entry points of tcpconnect.bpf.c. */
#ifndef TCPCONNECT_BPF_H
#define TCPCONNECT_BPF_H

#include "tcpconnect/abi.h"

#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_ 2
#define TCP_CLOSE_ 7
#define IPPROTO_TCP_ 6

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
/* Wake the reader at most this often unless the ring is filling up: keeps
 * wake-ups batched at high rates and lines prompt at low rates. */
const volatile __u64 wakeup_interval_ns = 50000000;
const volatile __u64 wakeup_bytes = 1 << 20;

/* Runtime counters, read by user space through the mmapped .bss. */
__u64 lost_events = 0;
__u64 last_wakeup_ns = 0;

/* A connect between SYN_SENT and the moment its record is sent. */
struct pending_connect {
	__u64 ts_ns;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 emitted; /* claimed with cmpxchg: the hooks race across CPUs */
	char comm[TC_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by user space before load */
} events SEC(".maps");

/* Keyed by struct sock *. Every socket that enters SYN_SENT leaves it
 * (tcp_set_state() always goes through inet_sk_state_store(), which fires
 * the tracepoint), and that transition deletes the entry, so a plain hash
 * stays bounded by the connects in flight. A full table is counted as lost
 * events rather than evicting an in-flight connect silently. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct pending_connect);
} pending SEC(".maps");

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

/* Per-CPU values: connects to one destination from all CPUs would otherwise
 * bounce one cache line between them. User space sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tc_count_key);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline bool port_wanted(__u16 dport)
{
	if (filter_nports == 0)
		return true;
	for (int i = 0; i < TC_MAX_PORTS; i++) {
		if (i >= filter_nports)
			break;
		if (filter_ports[i] == dport)
			return true;
	}
	return false;
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

static __always_inline void count_connect(const struct sock *sk, __u16 af, __u16 dport)
{
	struct tc_count_key key = {};
	__u64 one = 1, *val;

	key.af = af;
	key.dport = dport;
	read_addrs(sk, af, key.saddr, key.daddr);
	val = bpf_map_lookup_elem(&counts, &key);
	if (val) {
		*val += 1; /* this CPU's slot; a program does not nest on one CPU */
		return;
	}
	if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST) == 0)
		return;
	/* Another CPU may have inserted the key meanwhile. */
	val = bpf_map_lookup_elem(&counts, &key);
	if (val)
		*val += 1;
	else
		__sync_fetch_and_add(&lost_events, 1); /* table full */
}

static __always_inline int on_syn_sent(__u64 skp)
{
	const struct sock *sk = (const struct sock *)skp;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct pending_connect pc = {};
	struct syn_sent_slot *slot;
	__u16 af, dport, proto;
	__u32 zero = 0;

	if (filter_pid && pid != filter_pid)
		return 0;
	if (filter_uid_on && uid != filter_uid)
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

	if (count_mode) {
		count_connect(sk, af, dport);
		return 0;
	}

	pc.ts_ns = bpf_ktime_get_ns();
	pc.pid = pid;
	pc.tid = tid;
	pc.uid = uid;
	bpf_get_current_comm(pc.comm, sizeof(pc.comm));
	if (bpf_map_update_elem(&pending, &skp, &pc, BPF_ANY) != 0) {
		__sync_fetch_and_add(&lost_events, 1);
		return 0;
	}
	slot = bpf_map_lookup_elem(&last_syn_sent, &zero);
	if (slot) {
		slot->sk = skp;
		slot->tid = tid;
	}
	return 0;
}

static __always_inline __u64 submit_flags(void)
{
	__u64 now = bpf_ktime_get_ns();

	if (now - last_wakeup_ns >= wakeup_interval_ns ||
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes) {
		last_wakeup_ns = now;
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

/* Sends the record of a pending connect once, whichever hook gets here
 * first. The port is read from the socket now that it is chosen. */
static __always_inline void emit_connect(__u64 skp, __u16 point)
{
	const struct sock *sk = (const struct sock *)skp;
	struct pending_connect *pc;
	struct tc_connect_record *rec;

	pc = bpf_map_lookup_elem(&pending, &skp);
	if (!pc)
		return;
	if (__sync_val_compare_and_swap(&pc->emitted, 0, 1) != 0)
		return;

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		__sync_fetch_and_add(&lost_events, 1);
		return;
	}
	rec->type = TC_REC_CONNECT;
	rec->ts_ns = pc->ts_ns;
	rec->pid = pc->pid;
	rec->tid = pc->tid;
	rec->uid = pc->uid;
	rec->emit_point = point;
	rec->pad = 0;
	__builtin_memcpy(rec->comm, pc->comm, sizeof(rec->comm));
	rec->af = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* inet_sport, not skc_num: on the way to CLOSE, inet_put_port() zeroes
	 * skc_num before inet_sk_state_store() fires the tracepoint, and
	 * getsockname() then says 0 too; inet_sport keeps the port used. */
	rec->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	rec->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	__builtin_memset(rec->saddr, 0, sizeof(rec->saddr));
	__builtin_memset(rec->daddr, 0, sizeof(rec->daddr));
	read_addrs(sk, rec->af, rec->saddr, rec->daddr);
	bpf_ringbuf_submit(rec, submit_flags());
}

static __always_inline int handle_state_change(__u64 skp, int oldstate, int newstate)
{
	if (oldstate == TCP_CLOSE_ && newstate == TCP_SYN_SENT_)
		return on_syn_sent(skp);
	if (oldstate == TCP_SYN_SENT_ && !count_mode) {
		emit_connect(skp, TC_EMIT_STATE_CHANGE);
		bpf_map_delete_elem(&pending, &skp);
	}
	return 0;
}

static __always_inline int handle_retransmit(__u64 skp)
{
	if (!count_mode)
		emit_connect(skp, TC_EMIT_SYN_RETRANSMIT);
	return 0;
}

static __always_inline int handle_connect_return(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct syn_sent_slot *slot;
	__u32 zero = 0;
	__u64 sk;

	if (count_mode)
		return 0;
	slot = bpf_map_lookup_elem(&last_syn_sent, &zero);
	if (!slot || slot->tid != tid || !slot->sk)
		return 0;
	sk = slot->sk;
	slot->sk = 0;
	emit_connect(sk, TC_EMIT_CONNECT_RETURN);
	return 0;
}

#endif
