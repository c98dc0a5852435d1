// SPDX-License-Identifier: GPL-2.0
/* Connections: an active connect is seen at sock:inet_sock_set_state
 * CLOSE -> SYN_SENT, in the context of the task that initiated it, and
 * followed in the conns table through its handshake (connect, outcome
 * records) to its close (lifetime records). Accepted connections enter the
 * table at accept() when their close is wanted. connect() failures before
 * any SYN are seen at the syscall's return. */
#include "tcpconnect.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

/* A connect() syscall in progress in a thread (only in modes that report
 * failures): where it connects, and the socket if it reached SYN_SENT. */
struct connect_call {
	__u64 sk;
	__u32 fd;
	__u32 pad;
	__u8 addr[28]; /* struct sockaddr_in / sockaddr_in6 as the caller passed it */
	__u32 pad2;
};

__u64 last_wakeup_ns = 0;

/* Connect, outcome, close and accept records (see enrich_events in
 * common.bpf.c for why enrichment has its own ring). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by user space before load */
} events SEC(".maps");

/* --metrics-container: cgroups already announced (TC_REC_CGROUP). An LRU: a
 * forgotten one is announced again, which user space takes as a no-op. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TC_MAX_SEEN_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} seen_cgroups SEC(".maps");

__hidden void announce_cgroup(__u64 cgroup_id)
{
	struct tc_cgroup_record *rec;
	__u64 pid_tgid;
	__u8 one = 1;

	if (bpf_map_lookup_elem(&seen_cgroups, &cgroup_id))
		return;
	if (bpf_map_update_elem(&seen_cgroups, &cgroup_id, &one, BPF_NOEXIST) != 0)
		return; /* another CPU announces it */
	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		/* Announced at the next connect instead; counted all the same. */
		bpf_map_delete_elem(&seen_cgroups, &cgroup_id);
		return;
	}
	pid_tgid = bpf_get_current_pid_tgid();
	__builtin_memset(rec, 0, sizeof(*rec));
	rec->type = TC_REC_CGROUP;
	rec->ts_ns = bpf_ktime_get_ns();
	rec->pid = pid_tgid >> 32;
	rec->tid = (__u32)pid_tgid;
	rec->cgroup_id = cgroup_id;
	bpf_ringbuf_submit(rec, 0);
}

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

/* Whether connects are followed past CLOSE -> SYN_SENT: for their source
 * port (chosen after it), outcome or close. Otherwise -c counts right there
 * and a connect record is sent right there, as bcc's columns need nothing
 * later (the source address is chosen before SYN_SENT). */
static __always_inline bool follow_handshakes(void)
{
	if (count_mode)
		return count_by_sport || follow_outcomes();
	return want_sport || follow_outcomes();
}

/* Whether any connection record is sent: the owner's identity (start time,
 * cgroup, mount namespace, parent) is read only for them, not for what the
 * kernel counts itself (-c, --metrics). */
static __always_inline bool records_wanted(void)
{
	return want_connect || want_outcome || want_close || want_accept;
}

/* The owner's identity beyond its PID, read in its own context. */
static __always_inline void read_parent(__u32 *ppid, char *pcomm)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);

	*ppid = BPF_CORE_READ(parent, tgid);
	bpf_probe_read_kernel(pcomm, TC_COMM_LEN, &parent->comm);
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

static __always_inline void emit_connect(__u64 skp, struct tc_conn *c, __u16 point);

static __always_inline int on_syn_sent(__u64 skp)
{
	const struct sock *sk = (const struct sock *)skp;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = pid_tgid >> 32, tid = (__u32)pid_tgid;
	struct syn_sent_slot *slot;
	struct connect_call *call;
	struct tc_conn c = {};
	__u16 af, dport;
	__u32 zero = 0;

	af = BPF_CORE_READ(sk, __sk_common.skc_family);
	dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (!conn_wanted(skp, af, dport))
		return 0;

	c.ts_ns = bpf_ktime_get_ns();
	c.pid = pid;
	c.tid = tid;
	c.uid = (__u32)bpf_get_current_uid_gid();
	c.dir = TC_DIR_OUT;
	if (!count_mode || count_by_process)
		bpf_get_current_comm(c.comm, sizeof(c.comm));
	if (!follow_handshakes()) {
		if (count_mode) {
			count_connect(skp, &c);
		} else {
			owner_ids(&c);
			emit_connect(skp, &c, TC_EMIT_SYN_SENT);
		}
		return 0;
	}
	if (records_wanted())
		owner_ids(&c);
	else if (metrics_by_cgroup)
		c.cgroup_id = bpf_get_current_cgroup_id();
	if (!track(skp, &c))
		return 0;
	slot = bpf_map_lookup_elem(&last_syn_sent, &zero);
	if (slot) {
		slot->sk = skp;
		slot->tid = tid;
	}
	if (follow_outcomes()) {
		call = bpf_map_lookup_elem(&connect_calls, &tid);
		if (call)
			call->sk = skp;
	}
	return 0;
}

static __always_inline __u64 submit_flags(void)
{
	return wakeup_flags(&events, &last_wakeup_ns, wakeup_bytes);
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
	read_addrs((__u64)sk, rec->af, rec->saddr, rec->daddr);
	rec->latency_ns = 0;
	rec->duration_ns = 0;
	rec->tx_bytes = 0;
	rec->rx_bytes = 0;
	rec->netns = sk_netns((__u64)sk);
	rec->mntns = c->mntns;
	rec->cgroup_id = c->cgroup_id;
	rec->ppid = c->ppid;
	rec->flags = 0;
	__builtin_memcpy(rec->pcomm, c->pcomm, sizeof(rec->pcomm));
	rec->start_ns = c->start_ns;
	return rec;
}

/* Sends the connect record of a connection once, whichever hook gets here
 * first: the port is read from the socket now that it is chosen. With -c
 * (by source port), counts it there instead. */
static __always_inline void emit_connect(__u64 skp, struct tc_conn *c, __u16 point)
{
	struct tc_connect_record *rec;

	if (!want_connect && !count_mode)
		return;
	if (__sync_val_compare_and_swap(&c->emitted, 0, 1) != 0)
		return;
	if (count_mode) {
		count_connect(skp, c);
		return;
	}
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

	if (count_outcomes && failed)
		count_failure(skp, c);
	if (count_handshakes)
		count_latency(skp, c, latency);
	if (metrics_on) {
		count_metric(TC_MK_CONNECT, outcome, err,
			     bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)), c->comm,
			     c->cgroup_id);
		metric_latency(outcome, latency);
	}
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
	if (!follow_outcomes()) {
		untrack(skp);
		return 0;
	}
	now = bpf_ktime_get_ns();
	if (newstate == TCP_ESTABLISHED_) {
		c->est_ns = now;
		report_handshake(skp, c, TC_OUT_ESTABLISHED, 0, now);
		if (!follow_closes())
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
	if (metrics_on)
		metric_duration(c->dir, duration);
	if (count_closes && c->dir == TC_DIR_OUT) {
		__u64 tx, rx;

		data_bytes(sk, c, oldstate, &tx, &rx);
		count_close(skp, c, duration, tx, rx);
	}
	if (want_close && !failed_only && (c->dir == TC_DIR_OUT || track_accepts) &&
	    (!shorter_than_ns || duration < shorter_than_ns)) {
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

__hidden int state_change(__u64 skp, int oldstate, int newstate)
{
	if (oldstate == TCP_CLOSE_ && newstate == TCP_SYN_SENT_)
		return on_syn_sent(skp);
	if (!follow_handshakes())
		return 0;
	if (oldstate == TCP_SYN_SENT_)
		return on_handshake_end(skp, newstate);
	if (newstate == TCP_CLOSE_ && follow_closes())
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

/* Transitions state_change() acts on; for the rest both programs only mark
 * or check the busy flag. */
static __always_inline bool state_relevant(int oldstate, int newstate)
{
	if (oldstate == TCP_CLOSE_ && newstate == TCP_SYN_SENT_)
		return true;
	if (!follow_handshakes())
		return false;
	return oldstate == TCP_SYN_SENT_ || (newstate == TCP_CLOSE_ && follow_closes());
}

__hidden int state_primary(__u64 skp, int oldstate, int newstate)
{
	__u32 zero = 0, *busy;

	/* Without a backup (nothing followed past SYN_SENT, which only a task
	 * enters, never a softirq that could interrupt this program), no flag. */
	if (!follow_handshakes()) {
		if (oldstate == TCP_CLOSE_ && newstate == TCP_SYN_SENT_)
			return on_syn_sent(skp);
		return 0;
	}

	/* Busy from the start, also for transitions with nothing to do: a run
	 * the kernel skips meanwhile is then the backup's, not a lost one. */
	busy = bpf_map_lookup_elem(&state_busy, &zero);
	if (busy)
		*busy = 1;
	if (state_relevant(oldstate, newstate))
		state_change(skp, oldstate, newstate);
	if (busy)
		*busy = 0;
	return 0;
}

__hidden int state_backup(__u64 skp, int oldstate, int newstate)
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
	return state_change(skp, oldstate, newstate);
}

/* tcp:tcp_destroy_sock: a connection we still follow is being freed, so its
 * transition to CLOSE was not seen (a run the kernel skipped): report the
 * close now, from the socket's final counters. */
__hidden int conn_destroy(__u64 skp)
{
	if (!follow_closes())
		return 0;
	return on_close(skp, -1);
}

__hidden int conn_retransmit(__u64 skp)
{
	struct tc_conn *c;

	if (!follow_handshakes())
		return 0;
	c = bpf_map_lookup_elem(&conns, &skp);
	if (c && !c->est_ns)
		emit_connect(skp, c, TC_EMIT_SYN_RETRANSMIT);
	return 0;
}

__hidden int conn_connect_enter(long fd, const void *uaddr)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct connect_call call = {};

	if (!follow_outcomes())
		return 0;
	call.fd = fd;
	bpf_probe_read_user(call.addr, sizeof(call.addr), uaddr);
	bpf_map_update_elem(&connect_calls, &tid, &call, BPF_ANY);
	return 0;
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
	rec->netns = sk_netns((__u64)sk);
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

/* connect() failed before any SYN (no route, refused by a cgroup hook, ...):
 * sock:inet_sock_set_state never saw it. */
static __always_inline void report_early_failure(struct connect_call *call, int err)
{
	const struct sock *sk = sock_from_fd(call->fd);
	__u16 af, dport;

	__builtin_memcpy(&af, call->addr, sizeof(af));
	dport = ((__u16)call->addr[2] << 8) | call->addr[3];
	if (!conn_wanted((__u64)sk, af, dport))
		return;
	if (metrics_on) {
		char comm[TC_COMM_LEN];

		bpf_get_current_comm(comm, sizeof(comm));
		count_metric(TC_MK_CONNECT, TC_OUT_ERROR, err, dport, comm,
			     metrics_by_cgroup ? bpf_get_current_cgroup_id() : 0);
	}
	if (want_outcome)
		send_early_failure(TC_REC_OUTCOME, call, sk, af, dport, err);
	if (want_close)
		send_early_failure(TC_REC_CLOSE, call, sk, af, dport, err);
}

__hidden int conn_connect_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct syn_sent_slot *slot;
	struct connect_call *call;
	struct tc_conn *c;
	__u32 zero = 0;
	__u64 sk;

	if (!follow_handshakes())
		return 0;
	slot = bpf_map_lookup_elem(&last_syn_sent, &zero);
	if (slot && slot->tid == tid && slot->sk) {
		sk = slot->sk;
		slot->sk = 0;
		c = bpf_map_lookup_elem(&conns, &sk);
		if (c)
			emit_connect(sk, c, TC_EMIT_CONNECT_RETURN);
	}
	if (!follow_outcomes())
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

__hidden int conn_accept_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tc_connect_record *rec;
	const struct sock *sk;
	struct tc_conn c = {};
	__u16 af, lport;
	__u64 skp;

	if (ret < 0)
		return 0;
	sk = sock_from_fd(ret);
	if (!sk)
		return 0;
	af = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* For accepted connections -P names the local (service) port. */
	lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	skp = (__u64)sk;
	if (!conn_wanted(skp, af, lport))
		return 0;

	c.ts_ns = bpf_ktime_get_ns();
	c.est_ns = c.ts_ns;
	c.pid = pid_tgid >> 32;
	c.tid = (__u32)pid_tgid;
	c.uid = (__u32)bpf_get_current_uid_gid();
	c.dir = TC_DIR_IN;
	c.emitted = 1;
	bpf_get_current_comm(c.comm, sizeof(c.comm));
	if (records_wanted())
		owner_ids(&c);
	if (metrics_on)
		count_metric(TC_MK_ACCEPT, TC_OUT_ESTABLISHED, 0, lport, c.comm,
			     metrics_by_cgroup ? bpf_get_current_cgroup_id() : 0);
	if ((metrics_on || track_accepts) && !track(skp, &c))
		return 0;
	if (!want_accept)
		return 0;
	rec = new_record(TC_REC_ACCEPT, sk, &c);
	if (!rec)
		return 0;
	rec->outcome = TC_OUT_ESTABLISHED;
	bpf_ringbuf_submit(rec, submit_flags());
	return 0;
}
