/* Records shared by the kernel side (bpf/) and user space (src/).
 * Fixed-size __u types only; never include vmlinux.h here. */
#ifndef TCPCONNECT_ABI_H
#define TCPCONNECT_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TC_COMM_LEN 16
#define TC_MAX_PORTS 64
/* Cgroups the container filters (--container-name, --pod, ...) exclude in the kernel, and
 * cgroups --metrics-container has announced to user space. */
#define TC_MAX_EXCLUDED_CGROUPS 16384
#define TC_MAX_SEEN_CGROUPS 16384

/* AF_INET / AF_INET6 as the kernel spells them. */
#define TC_AF_INET 2
#define TC_AF_INET6 10

/* Every ring-buffer record starts with this tag. */
enum tc_record_type {
	TC_REC_CONNECT = 1, /* active connect, source port known */
	TC_REC_OUTCOME = 2, /* handshake ended, or connect() failed before a SYN */
	TC_REC_CLOSE = 3,   /* connection ended: lifetime and bytes */
	TC_REC_ACCEPT = 4,  /* passive connection accepted */
	TC_REC_DNS = 5,     /* a DNS answer read by a resolver client (struct tc_dns_record) */
	TC_REC_EXEC = 6,    /* a process exec'd: its command line (struct tc_exec_record) */
	TC_REC_CGROUP = 7,  /* --metrics-container: a cgroup counted for the first time */
};

/* How the real source port was learned for a connect record. The port is
 * still 0 at CLOSE->SYN_SENT (sock:inet_sock_set_state fires before
 * inet_hash_connect() picks it), so the record is sent from the first later
 * hook that sees the socket. */
enum tc_emit_point {
	TC_EMIT_CONNECT_RETURN = 1, /* syscalls:sys_exit_connect in the same thread */
	TC_EMIT_STATE_CHANGE = 2,   /* SYN_SENT -> ESTABLISHED / CLOSE */
	TC_EMIT_SYN_RETRANSMIT = 3, /* tcp:tcp_retransmit_skb of the SYN */
	TC_EMIT_SYN_SENT = 4,       /* CLOSE -> SYN_SENT, when no output needs the source port */
};

enum tc_outcome {
	TC_OUT_NONE = 0,        /* not known yet (connect records) */
	TC_OUT_ESTABLISHED = 1,
	TC_OUT_REFUSED = 2,     /* RST in reply to the SYN */
	TC_OUT_TIMEDOUT = 3,    /* SYN retries exhausted */
	TC_OUT_RESET = 4,       /* reset after the SYN was answered */
	TC_OUT_ERROR = 5,       /* other error: see err (errno) */
	TC_OUT_ABORTED = 6,     /* closed by its owner during the handshake */
};

/* tc_connect_record.flags */
enum tc_record_flag {
	/* Outcome and close records: the handshake did not establish (the record
	 * ends an attempt, not a connection). */
	TC_F_FAILED = 1,
};

enum tc_direction {
	TC_DIR_OUT = 0, /* active open (connect) */
	TC_DIR_IN = 1,  /* passive open (accept) */
};

struct tc_connect_record {
	__u64 ts_ns; /* bpf_ktime_get_ns() at CLOSE->SYN_SENT, or at accept (CLOCK_MONOTONIC) */
	__u32 pid;   /* tgid of the task that initiated (or accepted) the connection */
	__u32 tid;
	__u32 uid;
	__u8 type; /* enum tc_record_type */
	__u8 af;   /* TC_AF_INET or TC_AF_INET6 */
	__u16 sport; /* local port, host byte order */
	__u16 dport; /* remote port, host byte order */
	__u16 emit_point; /* enum tc_emit_point */
	__u8 outcome;     /* enum tc_outcome */
	__u8 dir;         /* enum tc_direction */
	__u16 err;        /* errno of a failure, 0 otherwise */
	__u8 saddr[16]; /* local; IPv4 uses the first 4 bytes */
	__u8 daddr[16]; /* remote */
	char comm[TC_COMM_LEN];
	__u64 latency_ns;  /* SYN to established / failure; 0 when unknown */
	__u64 duration_ns; /* close records: ts_ns to close */
	__u64 tx_bytes;    /* close records: bytes acked by the peer */
	__u64 rx_bytes;    /* close records: bytes received */
	__u32 netns;       /* network namespace inode of the socket */
	__u32 mntns;       /* mount namespace inode of the owner */
	__u64 cgroup_id;   /* cgroup v2 id of the owner */
	__u32 ppid;        /* owner's parent (tgid), read at the event */
	__u32 flags;       /* TC_F_* */
	char pcomm[TC_COMM_LEN]; /* owner's parent's task name */
	/* The owner's thread-group leader's start_boottime (ns since boot,
	 * suspend included): /proc/PID/stat's starttime in ns, so that a reused
	 * PID is told from the process that had it. */
	__u64 start_ns;
};

/* Longest command line kept from an exec (bytes of argv, NUL-separated). */
#define TC_CMDLINE_MAX 512

/* sched:sched_process_exec: the new program's argv, read from its stack. */
struct tc_exec_record {
	__u64 ts_ns;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u8 type;      /* TC_REC_EXEC */
	__u8 truncated; /* argv was longer than TC_CMDLINE_MAX */
	__u16 len;      /* bytes in args */
	__u32 ppid;
	__u32 pad;
	__u64 start_ns; /* start_boottime of the exec'ing process (see tc_connect_record) */
	__u8 args[TC_CMDLINE_MAX];
};

/* --metrics-container: the first connect or accept counted for a cgroup, so that user space
 * looks the cgroup and its container up while they exist (a short-lived container is often
 * gone by the next read of the counters). */
struct tc_cgroup_record {
	__u64 ts_ns;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u8 type; /* TC_REC_CGROUP */
	__u8 pad[3];
	__u64 cgroup_id;
};

/* Largest DNS answer copied to user space (EDNS answers are usually <= 4096;
 * larger ones arrive over TCP and are cut, which the parser rejects). */
#define TC_DNS_MAX 4096

/* A DNS answer as read by the process: sent with the length actually read.
 * The first fields line up with tc_connect_record so `type` is found at the
 * same offset. */
struct tc_dns_record {
	__u64 ts_ns;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u8 type;   /* TC_REC_DNS */
	__u8 stream; /* read from a TCP socket: may carry the 2-byte length */
	__u16 len;   /* bytes in data */
	__u32 netns;
	__u32 pad;
	__u8 data[TC_DNS_MAX];
};

/* Value of the kernel's per-connection table (keyed by struct sock *): the
 * connection's owner (the task that connected or accepted) and timeline.
 * Softirq-time transitions are attributed from here, never from the task
 * that happens to be on the CPU. */
struct tc_conn {
	__u64 ts_ns;  /* SYN_SENT, or accept */
	__u64 est_ns; /* established (or failure time); 0 while in the handshake */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 emitted; /* connect record claimed with cmpxchg: hooks race across CPUs */
	__u8 dir;
	__u8 awaiting_errno; /* failed inside connect(): the syscall's return says why */
	__u16 pad;
	__u32 mntns;
	char comm[TC_COMM_LEN];
	__u64 cgroup_id;
	__u32 ppid;
	__u32 pad3;
	char pcomm[TC_COMM_LEN];
	__u64 start_ns; /* owner's start_boottime, read when the owner is recorded */
};

/* Key of the in-kernel count table used by -c (bcc's LADDR RADDR RPORT);
 * pid and comm are set only with --by-process, sport only with -L (as
 * libbpf-tools' tcpconnect -c -s). No implicit padding: the bytes are the
 * hash key. */
struct tc_count_key {
	__u16 af;
	__u16 dport; /* host byte order */
	__u16 sport; /* host byte order */
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 pid;
	char comm[TC_COMM_LEN];
	__u32 pad2;
};

/* Keys the -c table holds (preallocated; bcc's tcpconnect -c holds 10240). */
#define TC_COUNT_ENTRIES 10240

/* Gaps between consecutive connects of one key, in microseconds, on a log
 * scale with 8 sub-buckets per power of two (see src/model/intervals.h). */
#define TC_IVL_BUCKETS 256

struct tc_count_value {
	__u64 connects;
	__u64 failed;   /* of them, handshakes that did not establish (-c --interval) */
	__u64 first_ns; /* CLOCK_MONOTONIC */
	__u64 last_ns;
	__u64 sum_ivl_us;
	__u32 ivl_hist[TC_IVL_BUCKETS];
};

/* Lifetimes in milliseconds on a log2 scale (bcc's histograms): bucket 0
 * holds 0 and 1 ms, bucket k (k >= 1) 2^k to 2^(k+1)-1 ms. */
#define TC_LIFE_BUCKETS 32

/* --top and --hist: more per count key, in a second table with the same
 * keys. Handshake latency (connect to the SYN-ACK or the RST, whatever the
 * outcome) in microseconds on the interval scale; for established connects
 * followed to their close, the lifetime and the data bytes. */
struct tc_count_stats {
	__u64 tx_bytes;
	__u64 rx_bytes;
	__u64 closed;
	__u32 lat_hist[TC_IVL_BUCKETS];
	__u32 life_hist[TC_LIFE_BUCKETS];
};

/* --metrics: counters and histograms kept in the kernel (bpf/metrics.bpf.c),
 * read by user space when it refreshes the exposition. */
enum tc_metric_kind {
	TC_MK_CONNECT = 1, /* a connection attempt's outcome; port = remote port */
	TC_MK_ACCEPT = 2,  /* an accepted connection; port = local port */
};

/* Key of the metrics counter table. No implicit padding: the bytes are the
 * hash key. A key the table has no room for is counted in the spill table
 * under its kind, outcome and err alone (port 0, comm empty). */
struct tc_metric_key {
	__u8 kind;    /* enum tc_metric_kind */
	__u8 outcome; /* enum tc_outcome; TC_OUT_ESTABLISHED for accepts */
	__u16 port;   /* host byte order */
	__u32 err;    /* errno of an error outcome, else 0 */
	char comm[TC_COMM_LEN];
	__u64 cgroup_id; /* --metrics-container: the owner's cgroup v2 id, else 0 */
};

#define TC_METRIC_ENTRIES 8192
#define TC_METRIC_SPILL_ENTRIES 512

/* Histogram bounds in ns: a value v falls in the first bucket whose bound is
 * >= v (Prometheus "le"), or in the last (+Inf) one. User space prints the
 * same bounds as the "le" labels, in seconds. */
#define TC_LATENCY_BOUNDS_NS                                                    \
	100000ULL, 250000ULL, 500000ULL, 1000000ULL, 2500000ULL, 5000000ULL,    \
		10000000ULL, 25000000ULL, 50000000ULL, 100000000ULL, 250000000ULL, \
		500000000ULL, 1000000000ULL, 2500000000ULL, 5000000000ULL,         \
		10000000000ULL
#define TC_LATENCY_BUCKETS 16
#define TC_DURATION_BOUNDS_NS                                                     \
	1000000ULL, 10000000ULL, 100000000ULL, 500000000ULL, 1000000000ULL,       \
		5000000000ULL, 10000000000ULL, 30000000000ULL, 60000000000ULL,        \
		300000000000ULL, 900000000000ULL, 3600000000000ULL
#define TC_DURATION_BUCKETS 12
#define TC_OUTCOMES 7 /* enum tc_outcome values */

struct tc_histogram_latency {
	__u64 buckets[TC_LATENCY_BUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
	__u64 sum_ns;
};

struct tc_histogram_duration {
	__u64 buckets[TC_DURATION_BUCKETS + 1];
	__u64 sum_ns;
};

/* The histograms, one per CPU (user space sums them): handshake latency by
 * outcome, lifetime of established connections by direction. */
struct tc_metric_hists {
	struct tc_histogram_latency latency[TC_OUTCOMES];
	struct tc_histogram_duration duration[2]; /* enum tc_dir */
};

#ifdef __cplusplus
static_assert(sizeof(struct tc_connect_record) == 160, "ABI: connect record size");
static_assert(__builtin_offsetof(struct tc_connect_record, start_ns) == 152,
	      "ABI: connect record start time");
static_assert(__builtin_offsetof(struct tc_exec_record, args) == 40, "ABI: exec record header");
static_assert(sizeof(struct tc_conn) == 96, "ABI: connection table value size");
static_assert(__builtin_offsetof(struct tc_exec_record, type) ==
		      __builtin_offsetof(struct tc_connect_record, type),
	      "ABI: record type offset");
static_assert(__builtin_offsetof(struct tc_dns_record, type) ==
		      __builtin_offsetof(struct tc_connect_record, type),
	      "ABI: record type offset");
static_assert(sizeof(struct tc_count_key) == 64, "ABI: count key size");
static_assert(sizeof(struct tc_count_value) == 40 + 4 * TC_IVL_BUCKETS, "ABI: count value size");
static_assert(sizeof(struct tc_count_stats) == 24 + 4 * (TC_IVL_BUCKETS + TC_LIFE_BUCKETS),
	      "ABI: count stats size");
static_assert(sizeof(struct tc_metric_key) == 32, "ABI: metric key size");
static_assert(sizeof(struct tc_cgroup_record) == 32, "ABI: cgroup record size");
static_assert(__builtin_offsetof(struct tc_cgroup_record, type) ==
		      __builtin_offsetof(struct tc_connect_record, type),
	      "ABI: record type offset");
#endif

#endif
