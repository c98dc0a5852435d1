/* SPDX-License-Identifier: GPL-2.0 */
/* What the kernel side's units share: constants, the settings user space
 * writes before load, the counters it reads, and the functions one unit calls
 * in another. Each unit is compiled on its own and `bpftool gen object` links
 * them (see cmake/BpfObject.cmake):
 *
 *   tcpconnect.bpf.c  entry points: one SEC() program per hook and attach mechanism
 *   common.bpf.c      settings, counters, owner and socket filters, the enrichment ring
 *   conn.bpf.c        connections: handshake state machine, lifetime, accept, failures
 *   count.bpf.c       -c: the in-kernel count table
 *   dns.bpf.c         -d: DNS answers read by resolvers
 *   exec.bpf.c        command lines at exec
 *   metrics.bpf.c     --metrics: counters and histograms kept in the kernel
 *
 * Functions called across units are __hidden: libbpf then loads them as
 * static subprograms, which the verifier checks in the context of each call
 * (pointers, map references and known settings included), not as global
 * functions checked once with only their declared argument types. */
#ifndef TCPCONNECT_BPF_H
#define TCPCONNECT_BPF_H

#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

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

/* Configuration, fixed before load so the verifier prunes what is off
 * (defined in common.bpf.c). */
extern const volatile __u32 filter_pid;  /* tgid; 0 = any */
extern const volatile bool filter_uid_on;
extern const volatile __u32 filter_uid;
extern const volatile __u16 filter_af;   /* TC_AF_INET / TC_AF_INET6; 0 = both */
extern const volatile __u32 filter_nports;
extern const volatile __u16 filter_ports[TC_MAX_PORTS];
extern const volatile bool count_mode;
extern const volatile bool count_by_process;
extern const volatile bool count_by_sport; /* the count key holds the source port */
/* Which records to send (see enum tc_record_type). */
extern const volatile bool want_connect;  /* TC_REC_CONNECT, as bcc prints */
extern const volatile bool want_sport;    /* ... with its source port (chosen after SYN_SENT) */
extern const volatile bool want_outcome;  /* TC_REC_OUTCOME */
extern const volatile bool failed_only;   /* ... only for attempts that failed */
extern const volatile bool want_close;    /* TC_REC_CLOSE (lifetime) */
extern const volatile bool want_accept;   /* TC_REC_ACCEPT */
extern const volatile bool track_accepts; /* close records of accepted sockets too */
extern const volatile bool count_outcomes; /* -c: count failed handshakes per key too */
extern const volatile bool count_handshakes; /* --top, --hist: handshake latency per key */
extern const volatile bool count_closes; /* --top --lifetime, --hist: lifetime, bytes per key */
extern const volatile __u64 shorter_than_ns; /* close records: only shorter lifetimes; 0 = all */
/* Containers: owners' namespaces and cgroups. */
extern const volatile __u32 filter_netns;        /* network namespace inode; 0 = any */
extern const volatile bool filter_cgroup_on;     /* owner under the cgroup in cgroup_filter[0] */
extern const volatile bool filter_cgroupmap_on;  /* owner's cgroup id is a key of cgroupmap */
extern const volatile bool filter_excluded_on;   /* owner's cgroup id is not in excluded_cgroups */
extern const volatile bool filter_mntnsmap_on;   /* owner's mount ns inode is a key of mntnsmap */
extern const volatile bool want_dns;             /* TC_REC_DNS: answers read by resolvers */
extern const volatile bool want_parent;          /* owners' parent PID and name */
extern const volatile bool want_exec;            /* TC_REC_EXEC: command lines at exec */
extern const volatile bool metrics_on;           /* --metrics: aggregate in the kernel */
extern const volatile bool metrics_by_cgroup;    /* --metrics-container: counters per cgroup */
/* Wake the reader at most this often unless the ring is filling up: keeps
 * wake-ups batched at high rates and lines prompt at low rates. */
extern const volatile __u64 wakeup_interval_ns;
extern const volatile __u64 wakeup_bytes;        /* of the connection ring */
extern const volatile __u64 enrich_wakeup_bytes; /* of the enrichment ring */
/* Budget of enrichment records (DNS answers, command lines) per user: a
 * burst of enrich_burst records, then one per enrich_interval_ns (0: no
 * budget). Records over it are counted lost like those of a full ring. */
extern const volatile __u64 enrich_interval_ns;
extern const volatile __u64 enrich_burst;

/* Runtime counters, read by user space through the mmapped .bss. */
extern __u64 lost_events;  /* connection records (connect, outcome, close, accept), count rows */
extern __u64 lost_execs;   /* command-line records: their processes show "?" */
extern __u64 lost_dns;     /* DNS answers: their connects show no QUERY */
extern __u64 dns_rejected; /* reads on DNS sockets not from their server: never names */
extern __u64 conns_inserted; /* with conns_deleted and the live count: LRU evictions */
extern __u64 conns_deleted;
extern __u64 state_recovered; /* primary runs the kernel skipped that the backup took over */

/* common.bpf.c: the owner and its sockets. */
__hidden __u32 sk_netns(__u64 skp);
__hidden __u32 current_mntns(void);
/* start_boottime of the task's thread-group leader (see tc_connect_record.start_ns). */
__hidden __u64 task_start_ns(struct task_struct *task);
__hidden void read_addrs(__u64 skp, __u16 af, __u8 *saddr, __u8 *daddr);
/* The file behind a descriptor of the current task, or NULL. */
__hidden struct file *file_from_fd(long fd);
/* The socket of a file, or NULL when it is not a socket file. */
__hidden const struct sock *sock_of_file(struct file *f);
/* The socket behind a descriptor of the current task, or NULL. */
__hidden const struct sock *sock_from_fd(long fd);

/* common.bpf.c: the filters. Whether the current task passes the owner
 * filters (-p, -u, --cgroup, --cgroupmap, --mntnsmap); whether a connection
 * of the current task passes them all: a TCP socket, of a wanted family and
 * port (remote for connects, local for accepts) and network namespace. */
__hidden bool task_wanted(__u32 pid, __u32 uid);
__hidden bool conn_wanted(__u64 skp, __u16 af, __u16 port);

/* common.bpf.c: ring wake-ups and the enrichment ring. */
__hidden __u64 wakeup_flags(void *ring, __u64 *last, __u64 bytes);

#define ENRICH_EXEC 1
#define ENRICH_DNS 2

__hidden bool enrich_allowed(__u32 kind, __u32 uid);
__hidden long send_user_tail(void *rec, __u32 hdr, __u32 n, __u32 max, const void *src);

/* conn.bpf.c: the entry points of connection tracking. */
__hidden int state_change(__u64 skp, int oldstate, int newstate);
__hidden int state_primary(__u64 skp, int oldstate, int newstate);
__hidden int state_backup(__u64 skp, int oldstate, int newstate);
__hidden int conn_retransmit(__u64 skp);
__hidden int conn_destroy(__u64 skp);
__hidden int conn_connect_enter(long fd, const void *uaddr);
__hidden int conn_connect_exit(long ret);
__hidden int conn_accept_exit(long ret);

/* count.bpf.c: counts a connect of the connection `c` on socket `skp`. */
__hidden void count_connect(__u64 skp, const struct tc_conn *c);
/* ... and that its handshake failed (count_outcomes). */
__hidden void count_failure(__u64 skp, const struct tc_conn *c);
/* ... its handshake latency (count_handshakes). */
__hidden void count_latency(__u64 skp, const struct tc_conn *c, __u64 latency_ns);
/* ... and its close: lifetime and data bytes (count_closes). */
__hidden void count_close(__u64 skp, const struct tc_conn *c, __u64 duration_ns, __u64 tx, __u64 rx);

/* metrics.bpf.c: a connect's outcome or an accept, counted by port and task
 * name; a handshake's latency by outcome; a connection's lifetime. */
__hidden void metric_count(struct tc_metric_key *key);
__hidden void announce_cgroup(__u64 cgroup_id);

/* One connect or accept for the metrics' counters, by its labels. */
static __always_inline void count_metric(__u8 kind, __u8 outcome, __u32 err, __u16 port,
					 const char *comm, __u64 cgroup_id)
{
	struct tc_metric_key key = {};

	key.kind = kind;
	key.outcome = outcome;
	key.err = err;
	key.port = port;
	__builtin_memcpy(key.comm, comm, sizeof(key.comm));
	key.cgroup_id = cgroup_id;
	if (metrics_by_cgroup && cgroup_id)
		announce_cgroup(cgroup_id);
	metric_count(&key);
}
__hidden void metric_latency(__u8 outcome, __u64 ns);
__hidden void metric_duration(__u8 dir, __u64 ns);

/* What connection tracking follows, for the records asked for and the
 * metrics: the handshake's end (outcome) and the close (lifetime). */
static __always_inline bool follow_outcomes(void)
{
	return want_outcome || want_close || metrics_on || count_outcomes || count_handshakes ||
	       count_closes;
}

static __always_inline bool follow_closes(void)
{
	return want_close || metrics_on || count_closes;
}

/* dns.bpf.c */
enum dns_read_kind {
	DNS_READ = 0,     /* read(fd, buf, n) */
	DNS_RECVFROM = 1, /* recvfrom(fd, buf, n, flags, src_addr, addrlen) */
	DNS_RECVMSG = 2,  /* recvmsg(fd, msg, flags) */
};

__hidden int dns_sendto_enter(long fd, const void *uaddr, long len);
__hidden int dns_connect_enter(long fd, const void *uaddr, long len);
__hidden int dns_connect_exit(long ret);
__hidden int dns_read_enter(long fd, __u64 buf, __u8 kind, __u64 src, __u64 srclen);
__hidden int dns_read_exit(long ret);

/* exec.bpf.c */
__hidden int exec_cmdline(void);

#endif
