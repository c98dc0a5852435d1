// SPDX-License-Identifier: GPL-2.0
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
#include "tcpconnect.bpf.h"

#include <bpf/bpf_core_read.h>

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

/* sendto(fd, buf, n, flags, uaddr, len) entered. */
__hidden int dns_sendto_enter(long fd, const void *uaddr, long len)
{
	__u8 server[16] __attribute__((aligned(8)));
	__u16 port;

	if (read_user_sockaddr(uaddr, len, &port, server) && port == DNS_PORT_BE)
		dns_watch(fd, server);
	return 0;
}

/* connect() entered: a watched socket may be getting another peer, so its
 * clean mark goes; a connect to port 53 is remembered until it returns. */
__hidden int dns_connect_enter(long fd, const void *uaddr, long len)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dns_connect dc = {};
	struct dns_sock *ds;
	__u64 key = dns_key(fd);
	__u16 port;

	if (!want_dns)
		return 0;
	ds = bpf_map_lookup_elem(&dns_socks, &key);
	if (ds)
		ds->clean = 0;
	if (!read_user_sockaddr(uaddr, len, &port, dc.server) || port != DNS_PORT_BE) {
		/* One left by a connect whose return we missed is not this one. */
		bpf_map_delete_elem(&dns_connects, &tid);
		return 0;
	}
	dc.fd = fd;
	bpf_map_update_elem(&dns_connects, &tid, &dc, BPF_ANY);
	return 0;
}

__hidden int dns_connect_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct dns_connect *dc;
	const struct sock *sk;
	struct dns_sock *ds;
	__u8 server[16] __attribute__((aligned(8)));
	long fd;
	int queued;

	if (!want_dns)
		return 0;
	dc = bpf_map_lookup_elem(&dns_connects, &tid);
	if (!dc)
		return 0;
	fd = dc->fd;
	__builtin_memcpy(server, dc->server, 16);
	bpf_map_delete_elem(&dns_connects, &tid);
	if (ret != 0 && ret != -EINPROGRESS_)
		return 0;
	sk = sock_from_fd(fd);
	if (!sk)
		return 0;
	ds = dns_watch(fd, server);
	if (!ds || BPF_CORE_READ(sk, sk_type) != SOCK_DGRAM_)
		return 0;
	/* Whatever arrived before the connect took effect is still queued,
	 * from any sender. */
	queued = BPF_CORE_READ(sk, sk_backlog.rmem_alloc.counter);
	if (queued)
		return 0;
	__builtin_memcpy(ds->clean_peer, server, 16);
	ds->clean = 1;
	return 0;
}

/* A read(fd, buf, ...), recvfrom(fd, buf, ..., src_addr, addrlen) or
 * recvmsg(fd, msg, ...) is starting: remember where the answer and its
 * source will land if fd is watched. */
__hidden int dns_read_enter(long fd, __u64 buf, __u8 kind, __u64 src, __u64 srclen)
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
	r.netns = sk_netns((__u64)sk);
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
 * the socket queried (see the comment at the top of this file). */
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

__hidden int dns_read_exit(long ret)
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
	rec->len = ret > TC_DNS_MAX ? TC_DNS_MAX : ret; /* the rest is cut */
	bpf_map_delete_elem(&dns_reads, &tid);
	if (send_user_tail(rec, __builtin_offsetof(struct tc_dns_record, data), rec->len, TC_DNS_MAX,
			   (const void *)buf) != 0)
		__sync_fetch_and_add(&lost_dns, 1);
	return 0;
}
