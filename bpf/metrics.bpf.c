// SPDX-License-Identifier: GPL-2.0
/* --metrics: counters and histograms kept in the kernel. Connects by
 * outcome, remote port and task name, accepts by local port and task name,
 * handshake latency by outcome and connection lifetime by direction. User
 * space reads the maps when it refreshes the exposition; no record goes
 * through the ring for them. */
#include "tcpconnect.bpf.h"

/* Preallocated, so a new key is stored whenever there is room (see
 * count.bpf.c). Sized by user space: one element when --metrics is off. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TC_METRIC_ENTRIES);
	__type(key, struct tc_metric_key);
	__type(value, __u64);
} metric_counts SEC(".maps");

/* Keys the counter table had no room for, by kind, outcome and err alone:
 * user space labels them "other". Only what finds no room here either is
 * counted lost. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TC_METRIC_SPILL_ENTRIES);
	__type(key, struct tc_metric_key);
	__type(value, __u64);
} metric_spill SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_metric_hists);
} metric_hists SEC(".maps");

static const __u64 latency_bounds[TC_LATENCY_BUCKETS] = {TC_LATENCY_BOUNDS_NS};
static const __u64 duration_bounds[TC_DURATION_BUCKETS] = {TC_DURATION_BOUNDS_NS};

static __always_inline bool add_to(void *map, const struct tc_metric_key *key)
{
	__u64 one = 1, *n;

	n = bpf_map_lookup_elem(map, key);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return true;
	}
	if (bpf_map_update_elem(map, key, &one, BPF_NOEXIST) == 0)
		return true;
	/* Another CPU stored it meanwhile, or there is no room. */
	n = bpf_map_lookup_elem(map, key);
	if (!n)
		return false;
	__sync_fetch_and_add(n, 1);
	return true;
}

__hidden void metric_count(struct tc_metric_key *key)
{
	if (!metrics_by_cgroup)
		key->cgroup_id = 0;
	if (add_to(&metric_counts, key))
		return;
	key->port = 0;
	key->cgroup_id = 0;
	__builtin_memset(key->comm, 0, sizeof(key->comm));
	if (!add_to(&metric_spill, key))
		__sync_fetch_and_add(&lost_events, 1);
}

__hidden void metric_latency(__u8 outcome, __u64 ns)
{
	struct tc_metric_hists *h;
	__u32 zero = 0, b = 0, i;

	h = bpf_map_lookup_elem(&metric_hists, &zero);
	if (!h || outcome >= TC_OUTCOMES)
		return;
	for (i = 0; i < TC_LATENCY_BUCKETS; i++) {
		if (ns > latency_bounds[i])
			b = i + 1;
	}
	/* Per CPU, but another program may interrupt this one on the same CPU:
	 * atomic adds, uncontended. */
	__sync_fetch_and_add(&h->latency[outcome].buckets[b], 1);
	__sync_fetch_and_add(&h->latency[outcome].sum_ns, ns);
}

__hidden void metric_duration(__u8 dir, __u64 ns)
{
	struct tc_metric_hists *h;
	__u32 zero = 0, b = 0, i;

	h = bpf_map_lookup_elem(&metric_hists, &zero);
	if (!h || dir > TC_DIR_IN)
		return;
	for (i = 0; i < TC_DURATION_BUCKETS; i++) {
		if (ns > duration_bounds[i])
			b = i + 1;
	}
	__sync_fetch_and_add(&h->duration[dir].buckets[b], 1);
	__sync_fetch_and_add(&h->duration[dir].sum_ns, ns);
}
