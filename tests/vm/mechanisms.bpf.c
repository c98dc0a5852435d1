// SPDX-License-Identifier: GPL-2.0
/* Empty programs of the mechanisms tcpconnect does not use, to learn whether
 * a kernel offers them (see mechanisms.c): a kprobe and an fentry on a
 * function every TCP client goes through. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe/tcp_v4_connect")
int kprobe(void *ctx)
{
	return 0;
}

SEC("fentry/tcp_v4_connect")
int fentry(void *ctx)
{
	return 0;
}
