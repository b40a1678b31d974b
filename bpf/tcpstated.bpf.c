// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcpstated's kernel side: every TCP state change, the resets that tell a
 * TIME_WAIT hand-off from an abort, and SYN-ACK retransmits, sent to
 * userspace through one ring buffer. Socket destruction is not an event: a
 * socket is destroyed only in CLOSE (inet_csk_destroy_sock warns otherwise),
 * and its move to CLOSE was already reported by inet_sock_set_state.
 *
 * Two attach modes share the event format:
 *  - tp_btf (preferred): typed struct sock *, identity is the socket cookie;
 *  - classic tracepoints (fallback): identity is a per-incarnation id that
 *    this file assigns to each skaddr, because the TCP slab reuses addresses.
 * Userspace disables autoload of the mode it does not use.
 *
 * What must stay exact even when the ring buffer overflows is counted here,
 * in per-CPU arrays: transitions per (old, new) and ring reserve failures
 * per source.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf/tcpstated_abi.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* userspace sets the configured size */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCPSTATED_TRANSITION_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} transitions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TCPSTATED_SRC_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} source_lost SEC(".maps");

/* Classic-tracepoint mode only: skaddr -> id of the socket living there. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16); /* userspace sets it from the table bound */
	__type(key, __u64);
	__type(value, __u64);
} incarnations SEC(".maps");

/* Per-CPU sequence for incarnation ids: no shared atomic on the hot path. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} incarnation_seq SEC(".maps");

static __always_inline void count(void *map, __u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(map, &slot);

	if (value)
		*value += 1;
}

static __always_inline void count_transition(int oldstate, int newstate)
{
	if (oldstate < 0 || oldstate >= TCPSTATED_STATE_SLOTS || newstate < 0 ||
	    newstate >= TCPSTATED_STATE_SLOTS)
		return;
	count(&transitions, (__u32)oldstate * TCPSTATED_STATE_SLOTS + (__u32)newstate);
}

/* Bytes of unread events at which a submit wakes the consumer; below it the
 * consumer finds them at its next periodic poll (a bounded delay), so a storm
 * costs one wake-up per batch rather than one per event. 0: wake every time.
 * Set by userspace before load. */
const volatile __u64 wakeup_bytes = 0;

static __always_inline void submit(struct tcpstated_event *e)
{
	__u64 flags = 0;

	if (wakeup_bytes)
		flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes
				? BPF_RB_FORCE_WAKEUP
				: BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* Reserves an event, counting its loss per source. */
static __always_inline struct tcpstated_event *reserve(__u8 source)
{
	struct tcpstated_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&source_lost, source);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->source = source;
	return e;
}

/*
 * Socket fields are read one of two ways. A tp_btf program's socket is a
 * trusted BTF pointer: a field is a plain load, CO-RE relocated through
 * vmlinux.h's preserve_access_index, which the verifier makes fault-safe. A
 * classic tracepoint hands over the same address as an untrusted integer, so
 * each field costs a bpf_probe_read_kernel call (BPF_CORE_READ). The helpers
 * below take `direct`, a constant in each program: after inlining, only one
 * of the two ways is left.
 */
#define FIELD_READ(direct, ptr, field) ((direct) ? (ptr)->field : BPF_CORE_READ(ptr, field))
#define FIELD_READ_INTO(direct, dst, ptr, field)                                                   \
	do {                                                                                       \
		if (direct)                                                                        \
			__builtin_memcpy(dst, &(ptr)->field, sizeof(*(dst)));                      \
		else                                                                               \
			BPF_CORE_READ_INTO(dst, ptr, field);                                       \
	} while (0)

/* Addresses, ports, family and netns straight from the socket's common part,
 * which a request socket shares. */
static __always_inline void fill_addresses(struct tcpstated_event *e, const struct sock_common *skc,
					   bool direct)
{
	__u16 family = FIELD_READ(direct, skc, skc_family);
	struct net *net = FIELD_READ(direct, skc, skc_net.net);

	e->netns = FIELD_READ(direct, net, ns.inum);
	if (bpf_core_field_exists(net->net_cookie))
		e->netns_cookie = FIELD_READ(direct, net, net_cookie);
	e->dport = bpf_ntohs(FIELD_READ(direct, skc, skc_dport));
	if (family == AF_INET6) {
		e->flags |= TCPSTATED_F_IPV6;
		FIELD_READ_INTO(direct, &e->saddr, skc, skc_v6_rcv_saddr.in6_u.u6_addr8);
		FIELD_READ_INTO(direct, &e->daddr, skc, skc_v6_daddr.in6_u.u6_addr8);
	} else {
		FIELD_READ_INTO(direct, (__u32 *)e->saddr, skc, skc_rcv_saddr);
		FIELD_READ_INTO(direct, (__u32 *)e->daddr, skc, skc_daddr);
	}
}

/* inet_num is already 0 on X->CLOSE: the bound port lives on in inet_sport. */
static __always_inline __u16 local_port(const struct inet_sock *inet, bool direct)
{
	return bpf_ntohs(FIELD_READ(direct, inet, inet_sport));
}

/* Transitions that run in the owning process (connect, listen, close,
 * shutdown). Elsewhere "current" is whatever softirq or timer interrupted. */
static __always_inline bool process_context(int oldstate, int newstate)
{
	switch (newstate) {
	case TCPSTATED_TCP_SYN_SENT:
	case TCPSTATED_TCP_LISTEN:
		return oldstate == TCPSTATED_TCP_CLOSE;
	case TCPSTATED_TCP_FIN_WAIT1:
		return oldstate == TCPSTATED_TCP_ESTABLISHED || oldstate == TCPSTATED_TCP_SYN_RECV;
	case TCPSTATED_TCP_LAST_ACK:
		return oldstate == TCPSTATED_TCP_CLOSE_WAIT;
	case TCPSTATED_TCP_CLOSE:
		return oldstate == TCPSTATED_TCP_LISTEN;
	default:
		return false;
	}
}

/* The process's name, as /proc/<tgid>/comm and `ss -p` show it: that of
 * the thread-group leader. bpf_get_current_comm() is the calling thread's,
 * which a worker thread often renames (prctl PR_SET_NAME). */
static __always_inline void leader_comm(char comm[TCPSTATED_COMM_LEN])
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);

	if (!leader || bpf_probe_read_kernel_str(comm, TCPSTATED_COMM_LEN, &leader->comm) < 0)
		bpf_get_current_comm(comm, TCPSTATED_COMM_LEN);
}

static __always_inline void fill_state(struct tcpstated_event *e, const struct sock *sk,
				       int oldstate, int newstate, bool direct)
{
	e->oldstate = (__u8)oldstate;
	e->newstate = (__u8)newstate;
	e->skaddr = (__u64)sk;
	/* tcp_fin() marks the socket SOCK_DONE when the peer's FIN arrives;
	 * close() sets RCV_SHUTDOWN itself, so sk_shutdown cannot tell. */
	if (newstate == TCPSTATED_TCP_CLOSE &&
	    (oldstate == TCPSTATED_TCP_FIN_WAIT2 || oldstate == TCPSTATED_TCP_CLOSING) &&
	    (FIELD_READ(direct, sk, __sk_common.skc_flags) &
	     (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		e->flags |= TCPSTATED_F_PEER_FIN;
	/* tcp_write_err and tcp_abort set sk_err before tcp_done(); the
	 * tcp_time_wait() hand-off never does. (The socket is unhashed on
	 * every path by now: tcp_set_state unhashes before the tracepoint.) */
	if (newstate == TCPSTATED_TCP_CLOSE && FIELD_READ(direct, sk, sk_err))
		e->flags |= TCPSTATED_F_SOCK_ERR;
	if (process_context(oldstate, newstate)) {
		__u64 pid_tgid = bpf_get_current_pid_tgid();

		e->flags |= TCPSTATED_F_PROCESS_CTX;
		e->tgid = pid_tgid >> 32;
		e->pid = (__u32)pid_tgid;
		e->cgroup_id = bpf_get_current_cgroup_id();
		leader_comm(e->comm);
	}
}

/* ---- tp_btf mode: the socket cookie is the identity ---- */

/* A direct read of sk may not go past struct sock, and inet_sport lies
 * beyond it: the tcp_sock this returns covers it. NULL for timewait and
 * request sockets, which have neither a cookie nor these fields. */
static __always_inline struct tcp_sock *btf_tcp_sock(const struct sock *sk)
{
	return bpf_skc_to_tcp_sock((void *)sk);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(btf_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct tcpstated_event *e;
	struct tcp_sock *tp;

	if (BPF_CORE_READ_BITFIELD(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	count_transition(oldstate, newstate);
	e = reserve(TCPSTATED_SRC_STATE);
	if (!e)
		return 0;
	e->id = bpf_get_socket_cookie((void *)sk);
	e->flags |= TCPSTATED_F_COOKIE;
	fill_addresses(e, &sk->__sk_common, true);
	tp = btf_tcp_sock(sk);
	if (tp)
		e->sport = local_port(&tp->inet_conn.icsk_inet, true);
	fill_state(e, sk, oldstate, newstate, true);
	submit(e);
	return 0;
}

static __always_inline int btf_sock_event(const struct sock *sk, __u8 source)
{
	struct tcpstated_event *e;
	struct tcp_sock *tp;

	if (!sk)
		return 0;
	tp = btf_tcp_sock(sk);
	if (!tp)
		return 0;
	e = reserve(source);
	if (!e)
		return 0;
	e->id = bpf_get_socket_cookie((void *)sk);
	e->flags |= TCPSTATED_F_COOKIE;
	e->skaddr = (__u64)sk;
	e->oldstate = sk->__sk_common.skc_state;
	fill_addresses(e, &sk->__sk_common, true);
	e->sport = local_port(&tp->inet_conn.icsk_inet, true);
	submit(e);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(btf_receive_reset, struct sock *sk)
{
	return btf_sock_event(sk, TCPSTATED_SRC_RECV_RESET);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(btf_send_reset, const struct sock *sk)
{
	return btf_sock_event(sk, TCPSTATED_SRC_SEND_RESET);
}

/* connect() reports CLOSE->SYN_SENT before it picks the local port; the
 * port shows in the next event. Towards a destination that never answers
 * that is the first SYN retransmit, about a second later. Only SYN_SENT
 * sockets are sent: other retransmits tell the mirror nothing. */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(btf_syn_retrans, const struct sock *sk, const struct sk_buff *skb)
{
	if (!sk || sk->__sk_common.skc_state != TCPSTATED_TCP_SYN_SENT)
		return 0;
	return btf_sock_event(sk, TCPSTATED_SRC_SYN_RETRANS);
}

static __always_inline int synack_event(const struct sock *listener, const struct request_sock *req,
					bool direct)
{
	struct tcpstated_event *e;

	if (!listener || !req)
		return 0;
	e = reserve(TCPSTATED_SRC_SYNACK_RETRANS);
	if (!e)
		return 0;
	e->skaddr = (__u64)listener;
	e->oldstate = TCPSTATED_TCP_LISTEN;
	/* The request socket carries the connection's 4-tuple. */
	fill_addresses(e, &req->__req_common, direct);
	e->sport = FIELD_READ(direct, req, __req_common.skc_num);
	submit(e);
	return 0;
}

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(btf_retransmit_synack, const struct sock *sk, const struct request_sock *req)
{
	return synack_event(sk, req, true);
}

/* ---- classic tracepoint mode: skaddr plus an incarnation id ---- */

static __always_inline __u64 new_incarnation(__u64 skaddr)
{
	__u32 zero = 0;
	__u64 *seq = bpf_map_lookup_elem(&incarnation_seq, &zero);
	__u64 id;

	if (!seq)
		return 0;
	*seq += 1;
	/* CPU number in the top bits keeps per-CPU sequences disjoint. */
	id = ((__u64)(bpf_get_smp_processor_id() + 1) << 48) | (*seq & ((1ULL << 48) - 1));
	bpf_map_update_elem(&incarnations, &skaddr, &id, BPF_ANY);
	return id;
}

static __always_inline __u64 current_incarnation(__u64 skaddr)
{
	__u64 *id = bpf_map_lookup_elem(&incarnations, &skaddr);

	return id ? *id : 0;
}

/* A socket first seen mid-life (it predates us, or its map entry was
 * evicted). If a socket dump already gave it a cookie, that cookie is its
 * identity, so the mirror's seeded entry and these events agree. */
static __always_inline __u64 adopt_incarnation(const struct sock *sk, __u64 skaddr)
{
	__u64 cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);

	if (!cookie)
		return new_incarnation(skaddr);
	bpf_map_update_elem(&incarnations, &skaddr, &cookie, BPF_ANY);
	return cookie;
}

SEC("tracepoint/sock/inet_sock_set_state")
int tp_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	const struct sock *sk = ctx->skaddr;
	__u64 skaddr = (__u64)sk;
	struct tcpstated_event *e;
	int oldstate = ctx->oldstate;
	int newstate = ctx->newstate;
	__u64 id;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	count_transition(oldstate, newstate);
	/* A socket's life starts in CLOSE (connect, listen) or as a child cloned
	 * from its listener; anything else continues the address's current
	 * incarnation, or adopts a socket that predates us. */
	if (oldstate == TCPSTATED_TCP_CLOSE ||
	    (oldstate == TCPSTATED_TCP_LISTEN && newstate == TCPSTATED_TCP_SYN_RECV))
		id = new_incarnation(skaddr);
	else if (!(id = current_incarnation(skaddr)))
		id = adopt_incarnation(sk, skaddr);
	e = reserve(TCPSTATED_SRC_STATE);
	if (!e)
		return 0;
	e->id = id;
	/* The socket has the addresses the tracepoint copied; the ports are
	 * taken from the tracepoint as it formats them. */
	fill_addresses(e, &sk->__sk_common, false);
	e->sport = ctx->sport;
	e->dport = ctx->dport;
	fill_state(e, sk, oldstate, newstate, false);
	submit(e);
	return 0;
}

/* Socket states whose struct is not a full socket: no cookie, no fields. */
static __always_inline bool full_socket(const struct sock *sk)
{
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);

	return state != TCPSTATED_TCP_TIME_WAIT && state != TCPSTATED_TCP_NEW_SYN_RECV;
}

static __always_inline int tp_sock_event(const struct sock *sk, __u8 source)
{
	__u64 skaddr = (__u64)sk;
	struct tcpstated_event *e;
	__u64 id;

	if (!sk || !full_socket(sk))
		return 0;
	id = current_incarnation(skaddr);
	if (!id)
		id = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	e = reserve(source);
	if (!e)
		return 0;
	e->id = id;
	e->skaddr = skaddr;
	e->oldstate = BPF_CORE_READ(sk, __sk_common.skc_state);
	fill_addresses(e, &sk->__sk_common, false);
	e->sport = local_port((const struct inet_sock *)sk, false);
	submit(e);
	return 0;
}

SEC("tracepoint/tcp/tcp_receive_reset")
int tp_receive_reset(struct trace_event_raw_tcp_event_sk *ctx)
{
	return tp_sock_event(ctx->skaddr, TCPSTATED_SRC_RECV_RESET);
}

/* The end of an incarnation: no event, only the skaddr's id is forgotten.
 * Not at X->CLOSE, because a socket still sends resets in CLOSE (close()
 * with unread data) and those must carry its id. */
SEC("tracepoint/tcp/tcp_destroy_sock")
int tp_destroy_sock(struct trace_event_raw_tcp_event_sk *ctx)
{
	__u64 skaddr = (__u64)ctx->skaddr;

	bpf_map_delete_elem(&incarnations, &skaddr);
	return 0;
}

/* tcp_send_reset has had two layouts; skaddr is all we read, so CO-RE finds
 * it in either. */
struct trace_event_raw_tcp_send_reset___new {
	const void *skaddr;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk_skb___old {
	const void *skaddr;
} __attribute__((preserve_access_index));

SEC("tracepoint/tcp/tcp_send_reset")
int tp_send_reset(void *ctx)
{
	const struct sock *sk;

	if (bpf_core_type_exists(struct trace_event_raw_tcp_send_reset___new))
		sk = BPF_CORE_READ((struct trace_event_raw_tcp_send_reset___new *)ctx, skaddr);
	else
		sk = BPF_CORE_READ((struct trace_event_raw_tcp_event_sk_skb___old *)ctx, skaddr);
	return tp_sock_event(sk, TCPSTATED_SRC_SEND_RESET);
}

/* tcp_retransmit_skb has had two layouts; skaddr is all we read. */
struct trace_event_raw_tcp_retransmit_skb___new {
	const void *skaddr;
} __attribute__((preserve_access_index));

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tp_syn_retrans(void *ctx)
{
	const struct sock *sk;

	if (bpf_core_type_exists(struct trace_event_raw_tcp_retransmit_skb___new))
		sk = BPF_CORE_READ((struct trace_event_raw_tcp_retransmit_skb___new *)ctx, skaddr);
	else
		sk = BPF_CORE_READ((struct trace_event_raw_tcp_event_sk_skb___old *)ctx, skaddr);
	if (!sk || BPF_CORE_READ(sk, __sk_common.skc_state) != TCPSTATED_TCP_SYN_SENT)
		return 0;
	return tp_sock_event(sk, TCPSTATED_SRC_SYN_RETRANS);
}

SEC("tracepoint/tcp/tcp_retransmit_synack")
int tp_retransmit_synack(struct trace_event_raw_tcp_retransmit_synack *ctx)
{
	return synack_event(ctx->skaddr, ctx->req, false);
}
