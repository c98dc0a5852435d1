// SPDX-License-Identifier: GPL-2.0
/* -c: connects counted in the kernel by key (addresses, remote port, and the
 * owner with --by-process, the source port with -L), with first and last
 * time seen and a histogram of the gaps between them. User space reads the
 * table at the end; nothing goes through the rings. */
#include "tcpconnect.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

/* One value per key for all CPUs, updated with atomic adds: per-CPU values
 * would cost their size times the number of CPUs per key. Preallocated, so
 * that a new key is stored whenever the table has room: elements allocated on
 * use come from per-CPU caches refilled asynchronously, and a burst of new
 * keys (every connect with -L, or several tracers at once) found them empty
 * and lost connects while the table was nearly empty. User space sizes the
 * table (TC_COUNT_ENTRIES with -c, 1 otherwise: unused). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TC_COUNT_ENTRIES);
	__type(key, struct tc_count_key);
	__type(value, struct tc_count_value);
} counts SEC(".maps");

/* Scratch for building a new count value (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_count_value);
} count_scratch SEC(".maps");

/* --top and --hist: latency, lifetime and bytes by the same keys, sized by
 * user space (TC_COUNT_ENTRIES with them, 1 otherwise). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TC_COUNT_ENTRIES);
	__type(key, struct tc_count_key);
	__type(value, struct tc_count_stats);
} count_stats SEC(".maps");

/* An all-zero value to store a new key with (too big for the stack; never
 * written). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_count_stats);
} count_stats_zero SEC(".maps");

/* Index of the most significant bit of x (x > 0), loop-free (clang 14's BPF
 * backend cannot lower __builtin_clzll). */
static __always_inline __u32 msb64(__u64 x)
{
	__u32 m = 0, s;

	s = (x > 0xffffffffULL) << 5; x >>= s; m |= s;
	s = (x > 0xffff) << 4; x >>= s; m |= s;
	s = (x > 0xff) << 3; x >>= s; m |= s;
	s = (x > 0xf) << 2; x >>= s; m |= s;
	s = (x > 0x3) << 1; x >>= s; m |= s;
	return m | (__u32)(x >> 1);
}

/* Mirrors interval_bucket() in src/model/intervals.h: values below 8 are
 * exact; above, 8 sub-buckets per power of two. */
static __always_inline __u32 interval_bucket(__u64 us)
{
	__u32 m, b;

	if (us < 8) {
		b = us;
	} else {
		m = msb64(us);
		b = (m - 2) * 8 + ((us >> (m - 3)) & 7);
	}
	/* Hide b's origin from clang so that it keeps the clamp: the verifier
	 * needs the bound on b itself before ivl_hist[b]. */
	asm volatile("" : "+r"(b));
	return b < TC_IVL_BUCKETS ? b : TC_IVL_BUCKETS - 1;
}

/* The key a connect of `c` on `skp` is counted under. */
static __always_inline void count_key(__u64 skp, const struct tc_conn *c, struct tc_count_key *key)
{
	const struct sock *sk = (const struct sock *)skp;

	key->af = BPF_CORE_READ(sk, __sk_common.skc_family);
	key->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	read_addrs(skp, key->af, key->saddr, key->daddr);
	if (count_by_sport)
		key->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	if (count_by_process) {
		key->pid = c->pid;
		__builtin_memcpy(key->comm, c->comm, sizeof(key->comm));
	}
}

/* A failed handshake of a connect counted before (its key has a value unless the table was
 * full, which was counted as lost then). */
__hidden void count_failure(__u64 skp, const struct tc_conn *c)
{
	struct tc_count_key key = {};
	struct tc_count_value *val;

	count_key(skp, c, &key);
	val = bpf_map_lookup_elem(&counts, &key);
	if (val)
		__sync_fetch_and_add(&val->failed, 1);
}

/* The time of a connect is c->ts_ns, its CLOSE -> SYN_SENT, also when it is
 * counted later (by source port: once the port is chosen). */
__hidden void count_connect(__u64 skp, const struct tc_conn *c)
{
	struct tc_count_key key = {};
	struct tc_count_value *val;
	__u64 now = c->ts_ns, prev;
	__u32 zero = 0, b;

	count_key(skp, c, &key);

	val = bpf_map_lookup_elem(&counts, &key);
	if (!val) {
		struct tc_count_value *init = bpf_map_lookup_elem(&count_scratch, &zero);
		long err;

		if (!init)
			return;
		/* The scratch value stays all-zero between uses: only these
		 * fields are ever written, and they are reset below. */
		init->connects = 1;
		init->first_ns = now;
		init->last_ns = now;
		err = bpf_map_update_elem(&counts, &key, init, BPF_NOEXIST);
		init->connects = 0;
		init->first_ns = 0;
		init->last_ns = 0;
		if (err == 0)
			return;
		/* Another CPU stored the key meanwhile, or the table is full. */
		val = bpf_map_lookup_elem(&counts, &key);
		if (!val) {
			__sync_fetch_and_add(&lost_events, 1);
			return;
		}
	}
	__sync_fetch_and_add(&val->connects, 1);
	/* The gap to the previous connect of this key, from any CPU: one
	 * exchange of the last time seen. */
	prev = __sync_lock_test_and_set(&val->last_ns, now);
	if (prev && now > prev) {
		__u64 us = (now - prev) / 1000;

		__sync_fetch_and_add(&val->sum_ivl_us, us);
		b = interval_bucket(us);
		if (b < TC_IVL_BUCKETS)
			__sync_fetch_and_add(&val->ivl_hist[b], 1);
	}
}

/* The stats of the key of `c` on `skp`, stored on first use; NULL (counted
 * lost) when the table is full. */
static __always_inline struct tc_count_stats *stats_of(__u64 skp, const struct tc_conn *c)
{
	struct tc_count_key key = {};
	struct tc_count_stats *st, *zero_val;
	__u32 zero = 0;

	count_key(skp, c, &key);
	st = bpf_map_lookup_elem(&count_stats, &key);
	if (st)
		return st;
	zero_val = bpf_map_lookup_elem(&count_stats_zero, &zero);
	if (!zero_val)
		return NULL;
	/* Fails when another CPU stored the key meanwhile (found below) or the
	 * table is full. */
	bpf_map_update_elem(&count_stats, &key, zero_val, BPF_NOEXIST);
	st = bpf_map_lookup_elem(&count_stats, &key);
	if (!st)
		__sync_fetch_and_add(&lost_events, 1);
	return st;
}

__hidden void count_latency(__u64 skp, const struct tc_conn *c, __u64 latency_ns)
{
	struct tc_count_stats *st = stats_of(skp, c);
	__u32 b;

	if (!st)
		return;
	b = interval_bucket(latency_ns / 1000);
	if (b < TC_IVL_BUCKETS)
		__sync_fetch_and_add(&st->lat_hist[b], 1);
}

__hidden void count_close(__u64 skp, const struct tc_conn *c, __u64 duration_ns, __u64 tx, __u64 rx)
{
	struct tc_count_stats *st = stats_of(skp, c);
	__u64 ms = duration_ns / 1000000;
	__u32 b;

	if (!st)
		return;
	b = ms < 2 ? 0 : msb64(ms);
	asm volatile("" : "+r"(b));
	if (b >= TC_LIFE_BUCKETS)
		b = TC_LIFE_BUCKETS - 1;
	__sync_fetch_and_add(&st->life_hist[b], 1);
	__sync_fetch_and_add(&st->tx_bytes, tx);
	__sync_fetch_and_add(&st->rx_bytes, rx);
	__sync_fetch_and_add(&st->closed, 1);
}
