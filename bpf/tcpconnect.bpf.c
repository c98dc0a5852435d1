// SPDX-License-Identifier: GPL-2.0
/* Kernel side of tcpconnect: tracepoints only. This unit holds the entry
 * points; what they call lives in the units listed in tcpconnect.bpf.h.
 *
 * An active connect is seen at sock:inet_sock_set_state CLOSE -> SYN_SENT,
 * in the context of the task that initiated it (connect(), io_uring's
 * IORING_OP_CONNECT, sendto(MSG_FASTOPEN)). Filters and the -c count run
 * there. The source port is still 0 at that point, so the record itself is
 * sent from the first later hook that sees the socket with its port chosen:
 * the same thread's connect() return, the SYN_SENT -> next state change, or
 * a retransmit of the SYN. Each hook has thin SEC() entry points for the
 * three attach mechanisms; user space autoloads one set (the hook table in
 * src/probe/tracer.cpp). */
#include "tcpconnect.bpf.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* Classic tracepoint records of sock: and tcp: events. Where their fields sit
 * comes from the running kernel's BTF (CO-RE), not from a fixed layout: the
 * common header before them (struct trace_entry) is 8 bytes on most kernels
 * but 12 on PREEMPT_RT ones, which add preempt_lazy_count and so move the
 * first pointer from offset 8 to 16. The names are the kernel's record
 * types; tcp_retransmit_skb used the tcp_event_sk_skb class before 6.10. */
struct trace_event_raw_inet_sock_set_state___tc {
	const void *skaddr;
	int oldstate;
	int newstate;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_retransmit_skb___tc {
	const void *skaddr;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk_skb___tc {
	const void *skaddr;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk___tc {
	const void *skaddr;
} __attribute__((preserve_access_index));

/* Syscall records have a layout of their own (kernel/trace/trace_syscalls.c):
 * the arguments and the return value are at offset 16 on every kernel,
 * PREEMPT_RT included. */
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

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(state_btf, const struct sock *sk, const int oldstate, const int newstate)
{
	return state_primary((__u64)sk, oldstate, newstate);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(state_btf_backup, const struct sock *sk, const int oldstate, const int newstate)
{
	return state_backup((__u64)sk, oldstate, newstate);
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(state_raw, const struct sock *sk, const int oldstate, const int newstate)
{
	return state_primary((__u64)sk, oldstate, newstate);
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(state_raw_backup, const struct sock *sk, const int oldstate, const int newstate)
{
	return state_backup((__u64)sk, oldstate, newstate);
}

/* Perf-event tracepoints skip a program whenever any BPF program is running
 * on the CPU, so a backup cannot help there. */
SEC("tracepoint/sock/inet_sock_set_state")
int state_tp(struct trace_event_raw_inet_sock_set_state___tc *ctx)
{
	return state_change((__u64)ctx->skaddr, ctx->oldstate, ctx->newstate);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retransmit_btf, const struct sock *sk)
{
	return conn_retransmit((__u64)sk);
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(retransmit_raw, const struct sock *sk)
{
	return conn_retransmit((__u64)sk);
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int retransmit_tp(void *ctx)
{
	/* Read through the helper: two direct loads at relocated offsets
	 * are merged by the compiler into one load at a computed offset,
	 * which the verifier refuses on a context pointer. */
	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___tc))
		return conn_retransmit(
			(__u64)BPF_CORE_READ((struct trace_event_raw_tcp_retransmit_skb___tc *)ctx, skaddr));
	return conn_retransmit(
		(__u64)BPF_CORE_READ((struct trace_event_raw_tcp_event_sk_skb___tc *)ctx, skaddr));
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(destroy_btf, const struct sock *sk)
{
	return conn_destroy((__u64)sk);
}

SEC("raw_tp/tcp_destroy_sock")
int BPF_PROG(destroy_raw, const struct sock *sk)
{
	return conn_destroy((__u64)sk);
}

SEC("tracepoint/tcp/tcp_destroy_sock")
int destroy_tp(struct trace_event_raw_tcp_event_sk___tc *ctx)
{
	return conn_destroy((__u64)ctx->skaddr);
}

/* Only the per-syscall tracepoints: the raw sys_enter/sys_exit hooks would
 * run on every syscall of the host. connect() serves both connection
 * tracking (failures) and -d (sockets addressed to port 53). */
SEC("tracepoint/syscalls/sys_enter_connect")
int connect_enter_tp(struct tp_sys_enter_connect *ctx)
{
	dns_connect_enter(ctx->fd, ctx->uservaddr, ctx->addrlen);
	return conn_connect_enter(ctx->fd, ctx->uservaddr);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int connect_exit_tp(struct tp_sys_exit *ctx)
{
	dns_connect_exit(ctx->ret);
	return conn_connect_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int accept4_exit_tp(struct tp_sys_exit *ctx)
{
	return conn_accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int accept_exit_tp(struct tp_sys_exit *ctx)
{
	return conn_accept_exit(ctx->ret);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_btf)
{
	return exec_cmdline();
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(exec_raw)
{
	return exec_cmdline();
}

SEC("tracepoint/sched/sched_process_exec")
int exec_tp(void *ctx)
{
	return exec_cmdline();
}

/* -d: DNS answers on sockets addressed to port 53 (see dns.bpf.c). */
SEC("tracepoint/syscalls/sys_enter_sendto")
int dns_sendto_enter_tp(struct tp_sys_enter *ctx)
{
	return dns_sendto_enter(ctx->args[0], (const void *)ctx->args[4], ctx->args[5]);
}

SEC("tracepoint/syscalls/sys_enter_read")
int dns_read_enter_tp(struct tp_sys_enter *ctx)
{
	return dns_read_enter(ctx->args[0], ctx->args[1], DNS_READ, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int dns_recvfrom_enter_tp(struct tp_sys_enter *ctx)
{
	return dns_read_enter(ctx->args[0], ctx->args[1], DNS_RECVFROM, ctx->args[4], ctx->args[5]);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int dns_recvmsg_enter_tp(struct tp_sys_enter *ctx)
{
	return dns_read_enter(ctx->args[0], ctx->args[1], DNS_RECVMSG, 0, 0);
}

SEC("tracepoint/syscalls/sys_exit_read")
int dns_read_exit_tp(struct tp_sys_exit *ctx)
{
	return dns_read_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int dns_recvfrom_exit_tp(struct tp_sys_exit *ctx)
{
	return dns_read_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int dns_recvmsg_exit_tp(struct tp_sys_exit *ctx)
{
	return dns_read_exit(ctx->ret);
}
