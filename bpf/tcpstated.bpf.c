// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcpstated's kernel side: every TCP state change, the resets that tell a
 * TIME_WAIT hand-off from an abort, and SYN-ACK retransmits, sent to
 * userspace through ring buffers (one, or a few shared out by CPU number). Socket destruction is
 * not an event: a socket is destroyed only in CLOSE (inet_csk_destroy_sock warns otherwise), and
 * its move to CLOSE was already reported by inet_sock_set_state.
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

/*
 * The event ring, or rings. With ring_count 1 (the default) every CPU writes
 * to `events`, reserved directly as before rings could be several: the
 * other branch below is dead code the verifier removes, ring_count being a
 * read-only constant, so one ring costs what it always did. With more,
 * `events` shrinks to one unused page and each CPU writes to ring (CPU
 * number % ring_count) of `rings`, so that CPUs no longer share a ring's
 * lock, producer position and record lines; userspace creates those rings
 * (all of the configured size; the first is the template the verifier
 * checks the calls against) and merges them by timestamp
 * (daemon/core/ring_merge.cpp).
 *
 * Why an array of maps rather than a fixed set of ring maps chosen by a
 * switch: the count is set at load time without unused rings, and the
 * lookup is inlined by the verifier into a bounds check and a load (array
 * of maps' map_gen_lookup), a few instructions per event. Ring buffers may
 * be inner maps since Linux 5.10 (commit f4d05259, "bpf: Add
 * map_meta_equal map ops").
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* userspace sets the configured size */
} events SEC(".maps");

struct event_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096); /* a template, replaced by userspace's */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1); /* userspace sets ring_count */
	__type(key, __u32);
	__array(values, struct event_ring);
} rings SEC(".maps");

const volatile __u32 ring_count = 1;

/* Reserves a record in this CPU's ring; `size` must be a constant after
 * inlining (the verifier needs one). NULL when the ring is full, or if
 * userspace left a slot empty: the caller counts either as a lost event. */
static __always_inline void *reserve(__u64 size)
{
	__u32 slot;
	void *ring;

	if (ring_count <= 1)
		return bpf_ringbuf_reserve(&events, size, 0);
	slot = bpf_get_smp_processor_id() % ring_count;
	ring = bpf_map_lookup_elem(&rings, &slot);
	return ring ? bpf_ringbuf_reserve(ring, size, 0) : NULL;
}

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

/* Bytes this CPU submits between two forced wake-ups of the consumer; in
 * between, the consumer finds the events at its next periodic poll (a
 * bounded delay), so a storm costs one wake-up per batch rather than one per
 * event. Counted per CPU rather than by asking the ring how much is unread:
 * that query is a helper call per event on a cache line the consumer writes
 * after every record. 0: wake every time. Set by userspace before load. */
const volatile __u64 wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} unannounced_bytes SEC(".maps");

static __always_inline __u64 wakeup_flags(__u64 size)
{
	__u32 zero = 0;
	__u64 *pending;

	if (!wakeup_bytes)
		return 0;
	pending = bpf_map_lookup_elem(&unannounced_bytes, &zero);
	if (!pending)
		return 0;
	*pending += size;
	if (*pending < wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	*pending = 0;
	return BPF_RB_FORCE_WAKEUP;
}

/* Reserving is done by the caller with a constant size (the verifier needs
 * one): reserve(sizeof(struct tcpstated_event_head) or
 * sizeof(struct tcpstated_event)). These count a failed reserve and submit
 * either form. */
static __always_inline void lost(__u8 source) { count(&source_lost, source); }

static __always_inline void submit_short(struct tcpstated_event_head *h)
{
	bpf_ringbuf_submit(h, wakeup_flags(sizeof(*h)));
}

static __always_inline void submit_long(struct tcpstated_event *e)
{
	bpf_ringbuf_submit(e, wakeup_flags(sizeof(*e)));
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

/* An event takes the long record for IPv6 addresses or for the owner's
 * identity; everything else fits the short one. */
static __always_inline bool ipv6_socket(const struct sock_common *skc, bool direct)
{
	return FIELD_READ(direct, skc, skc_family) == AF_INET6;
}

/* Every field of the head, so that no byte of an earlier record survives in
 * the ring (the reserve does not clear it): the caller's sport, states and
 * flags are set after this. The long record's head needs no IPv4 copy. */
static __always_inline void fill_head(struct tcpstated_event_head *h, __u8 source, __u64 id,
				      const void *skaddr, const struct sock_common *skc,
				      bool direct, bool long_form)
{
	struct net *net = FIELD_READ(direct, skc, skc_net.net);

	h->ts_ns = bpf_ktime_get_ns();
	h->id = id;
	h->skaddr = (__u64)skaddr;
	h->netns_cookie = 0;
	if (bpf_core_field_exists(net->net_cookie))
		h->netns_cookie = FIELD_READ(direct, net, net_cookie);
	h->netns = FIELD_READ(direct, net, ns.inum);
	h->sport = 0;
	h->dport = bpf_ntohs(FIELD_READ(direct, skc, skc_dport));
	if (long_form) {
		*(__u32 *)h->saddr4 = 0;
		*(__u32 *)h->daddr4 = 0;
	} else {
		FIELD_READ_INTO(direct, (__u32 *)h->saddr4, skc, skc_rcv_saddr);
		FIELD_READ_INTO(direct, (__u32 *)h->daddr4, skc, skc_daddr);
	}
	h->source = source;
	h->oldstate = 0;
	h->newstate = 0;
	h->flags = 0;
	h->sk_err = 0;
	h->spare[0] = 0;
	h->spare[1] = 0;
	h->spare[2] = 0;
}

/* The process's name, as /proc/<tgid>/comm and `ss -p` show it: that of
 * the thread-group leader. bpf_get_current_comm() is the calling thread's,
 * which a worker thread often renames (prctl PR_SET_NAME). */
static __always_inline void probed_leader_comm(char comm[TCPSTATED_COMM_LEN])
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);

	if (!leader || bpf_probe_read_kernel_str(comm, TCPSTATED_COMM_LEN, &leader->comm) < 0)
		bpf_get_current_comm(comm, TCPSTATED_COMM_LEN);
}

/* The owner: the current thread's ids, its leader's comm and its cgroup.
 * A tp_btf program gets current as a BTF pointer (5.11+; the kernel's own
 * helper list says whether it has it) and reads the ids and the comm by
 * plain loads: one helper call where the untyped task costs four (the
 * task, the leader's address, the name, pid/tgid). Classic tracepoints,
 * and 5.10, keep the probed reads. */
static __always_inline void fill_owner(struct tcpstated_event *e, bool direct)
{
	if (direct && bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)) {
		struct task_struct *task = bpf_get_current_task_btf();

		e->tgid = task->tgid;
		e->pid = task->pid;
		/* comm is a char array: BTF lets it be read in 8-byte words. */
		__builtin_memcpy(e->comm, task->group_leader->comm, sizeof(e->comm));
	} else {
		__u64 pid_tgid = bpf_get_current_pid_tgid();

		e->tgid = pid_tgid >> 32;
		e->pid = (__u32)pid_tgid;
		probed_leader_comm(e->comm);
	}
	e->cgroup_id = bpf_get_current_cgroup_id();
}

/* The long record's own fields: both addresses, and the owner when the
 * transition runs in its process. */
static __always_inline void fill_long(struct tcpstated_event *e, const struct sock_common *skc,
				      bool direct, bool ipv6, bool owner)
{
	if (ipv6) {
		e->flags |= TCPSTATED_F_IPV6;
		FIELD_READ_INTO(direct, &e->saddr, skc, skc_v6_rcv_saddr.in6_u.u6_addr8);
		FIELD_READ_INTO(direct, &e->daddr, skc, skc_v6_daddr.in6_u.u6_addr8);
	} else {
		__builtin_memset(e->saddr, 0, sizeof(e->saddr));
		__builtin_memset(e->daddr, 0, sizeof(e->daddr));
		FIELD_READ_INTO(direct, (__u32 *)e->saddr, skc, skc_rcv_saddr);
		FIELD_READ_INTO(direct, (__u32 *)e->daddr, skc, skc_daddr);
	}
	if (owner) {
		e->flags |= TCPSTATED_F_PROCESS_CTX;
		fill_owner(e, direct);
	} else {
		e->tgid = 0;
		e->pid = 0;
		e->cgroup_id = 0;
		__builtin_memset(e->comm, 0, sizeof(e->comm));
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

/* States and the flags read from the socket; the socket's fields are read
 * only for the transitions whose flag they decide. */
static __always_inline void fill_state(struct tcpstated_event_head *h, const struct sock *sk,
				       int oldstate, int newstate, bool direct)
{
	h->oldstate = (__u8)oldstate;
	h->newstate = (__u8)newstate;
	if (newstate != TCPSTATED_TCP_CLOSE)
		return;
	/* tcp_fin() marks the socket SOCK_DONE when the peer's FIN arrives;
	 * close() sets RCV_SHUTDOWN itself, so sk_shutdown cannot tell. */
	if ((oldstate == TCPSTATED_TCP_FIN_WAIT2 || oldstate == TCPSTATED_TCP_CLOSING) &&
	    (FIELD_READ(direct, sk, __sk_common.skc_flags) &
	     (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		h->flags |= TCPSTATED_F_PEER_FIN;
	/* tcp_write_err and tcp_abort set sk_err before tcp_done(); the
	 * tcp_time_wait() hand-off never does. (The socket is unhashed on
	 * every path by now: tcp_set_state unhashes before the tracepoint.) */
	/* The errno also tells how a connect failed: ECONNREFUSED
	 * (tcp_reset), ETIMEDOUT (tcp_write_err), EHOSTUNREACH or ENETUNREACH
	 * (tcp_v4_err, or the soft ICMP error a SYN timeout reports). */
	{
		int err = FIELD_READ(direct, sk, sk_err);

		/* A connect the application closed itself (its own timeout)
		 * after an ICMP error that tcp_v4_err/tcp_v6_err could only
		 * keep as soft, because the socket was owned by a syscall then
		 * (on loopback, the first SYN's ICMP comes back inside
		 * connect()): the errno waits in sk_err_soft until the SYN
		 * retries run out, and close() came first. */
		if (!err && oldstate == TCPSTATED_TCP_SYN_SENT)
			err = FIELD_READ(direct, sk, sk_err_soft);
		if (err) {
			h->flags |= TCPSTATED_F_SOCK_ERR;
			h->sk_err = err > 0 && err < 255 ? (__u8)err : 255;
		}
	}
}

/* An orphan's lifetime is tcp_fin_time(): the socket's TCP_LINGER2 if it
 * set one, else the namespace's tcp_fin_timeout (which userspace reads),
 * never less than 3.5 RTO. Only a socket with a linger2 of its own needs
 * the long record: *fin_time gets tcp_fin_time() in jiffies, 0 for a
 * negative linger2 (tcp_rcv_state_process and tcp_close then end the
 * orphan at once, with no timewait socket), and *fin_timeout the
 * namespace's tcp_fin_timeout in jiffies. Returns whether it had one. */
static __always_inline bool own_linger2(const struct sock *sk, const struct tcp_sock *tp,
					int oldstate, int newstate, bool direct, __u32 *fin_time,
					__u32 *fin_timeout)
{
	struct net *net;
	int linger2, rto, floor;

	if (oldstate != TCPSTATED_TCP_FIN_WAIT2 || newstate != TCPSTATED_TCP_CLOSE || !tp)
		return false;
	linger2 = FIELD_READ(direct, tp, linger2);
	if (!linger2)
		return false;
	rto = FIELD_READ(direct, tp, inet_conn.icsk_rto);
	net = FIELD_READ(direct, sk, __sk_common.skc_net.net);
	*fin_timeout = FIELD_READ(direct, net, ipv4.sysctl_tcp_fin_timeout);
	if (linger2 < 0) {
		*fin_time = 0;
		return true;
	}
	floor = (rto << 2) - (rto >> 1);
	*fin_time = linger2 > floor ? linger2 : floor;
	return true;
}

/* One state change, in the short or the long record. `id` and `sport` are
 * the attach mode's; the rest is read from the socket. `tp` is the socket
 * as a tcp_sock for the fields past struct sock: in tp_btf mode the
 * helper's, only looked up on X->CLOSE (NULL otherwise). */
static __always_inline void state_event(const struct sock *sk, const struct tcp_sock *tp, __u64 id,
					__u8 flags, __u16 sport, int oldstate, int newstate,
					bool direct)
{
	const struct sock_common *skc = &sk->__sk_common;
	bool ipv6 = ipv6_socket(skc, direct);
	bool owner = process_context(oldstate, newstate);
	__u32 fin_time = 0, fin_timeout = 0;
	bool linger = own_linger2(sk, tp, oldstate, newstate, direct, &fin_time, &fin_timeout);

	if (ipv6 || owner || linger) {
		struct tcpstated_event *e = reserve(sizeof(*e));

		if (!e) {
			lost(TCPSTATED_SRC_STATE);
			return;
		}
		fill_head((struct tcpstated_event_head *)e, TCPSTATED_SRC_STATE, id, sk, skc,
			  direct, true);
		e->sport = sport;
		e->flags = flags;
		fill_state((struct tcpstated_event_head *)e, sk, oldstate, newstate, direct);
		fill_long(e, skc, direct, ipv6, owner);
		if (linger)
			e->flags |= TCPSTATED_F_LINGER2;
		e->fin_time = fin_time;
		e->fin_timeout = fin_timeout;
		submit_long(e);
	} else {
		struct tcpstated_event_head *h = reserve(sizeof(*h));

		if (!h) {
			lost(TCPSTATED_SRC_STATE);
			return;
		}
		fill_head(h, TCPSTATED_SRC_STATE, id, sk, skc, direct, false);
		h->sport = sport;
		h->flags = flags;
		fill_state(h, sk, oldstate, newstate, direct);
		submit_short(h);
	}
}

/* A reset, SYN retransmit or SYN-ACK retransmit: `skc` holds the 4-tuple
 * (the socket's, or the request socket's), `skaddr` names the socket. */
static __always_inline void socket_event(__u8 source, const void *skaddr,
					 const struct sock_common *skc, __u64 id, __u8 flags,
					 __u16 sport, __u8 state, bool direct)
{
	bool ipv6 = ipv6_socket(skc, direct);

	if (ipv6) {
		struct tcpstated_event *e = reserve(sizeof(*e));

		if (!e) {
			lost(source);
			return;
		}
		fill_head((struct tcpstated_event_head *)e, source, id, skaddr, skc, direct, true);
		e->sport = sport;
		e->oldstate = state;
		e->flags = flags;
		fill_long(e, skc, direct, true, false);
		e->fin_time = 0;
		e->fin_timeout = 0;
		submit_long(e);
	} else {
		struct tcpstated_event_head *h = reserve(sizeof(*h));

		if (!h) {
			lost(source);
			return;
		}
		fill_head(h, source, id, skaddr, skc, direct, false);
		h->sport = sport;
		h->oldstate = state;
		h->flags = flags;
		submit_short(h);
	}
}

/* ---- tp_btf mode: the socket cookie is the identity ---- */

/* The cookie is generated once, by the first bpf_get_socket_cookie() (or
 * sock_diag) that asks; after that it is a plain load of skc_cookie, which
 * saves a helper call on every later event of the socket. */
static __always_inline __u64 btf_cookie(const struct sock *sk)
{
	__u64 cookie = sk->__sk_common.skc_cookie.counter;

	return cookie ? cookie : bpf_get_socket_cookie((void *)sk);
}

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
	struct tcp_sock *tp = NULL;
	__u16 sport;

	if (BPF_CORE_READ_BITFIELD(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	count_transition(oldstate, newstate);
	/* The bound port is skc_num, inside struct sock and a plain load,
	 * except on X->CLOSE, which has already released it (see local_port):
	 * only then is the tcp_sock helper called. */
	if (newstate == TCPSTATED_TCP_CLOSE) {
		tp = btf_tcp_sock(sk);
		sport = tp ? local_port(&tp->inet_conn.icsk_inet, true) : 0;
	} else {
		sport = sk->__sk_common.skc_num;
	}
	state_event(sk, tp, btf_cookie(sk), TCPSTATED_F_COOKIE, sport, oldstate, newstate, true);
	return 0;
}

static __always_inline int btf_sock_event(const struct sock *sk, __u8 source)
{
	struct tcp_sock *tp;

	if (!sk)
		return 0;
	tp = btf_tcp_sock(sk);
	if (!tp)
		return 0;
	socket_event(source, sk, &sk->__sk_common, btf_cookie(sk), TCPSTATED_F_COOKIE,
		     local_port(&tp->inet_conn.icsk_inet, true), sk->__sk_common.skc_state, true);
	return 0;
}

/* A reset answering a segment that reached no socket: only kernels >= 6.10
 * fire tcp_send_reset for it (before, tcp_v4_send_reset and
 * tcp_v6_send_reset traced full sockets only), with the incoming segment as
 * skb. Its namespace is its device's; its TCP header names this host's port
 * (dest) and the sender's (source). Read with BPF_CORE_READ in both modes:
 * the header is packet data either way. */
static __always_inline int no_socket_reset_event(const struct sk_buff *skb)
{
	struct tcpstated_event_head *h;
	unsigned char *head;
	struct tcphdr th;
	struct net *net;
	__u16 offset;

	if (!skb)
		return 0;
	net = BPF_CORE_READ(skb, dev, nd_net.net);
	head = BPF_CORE_READ(skb, head);
	offset = BPF_CORE_READ(skb, transport_header);
	if (!net || !head || bpf_probe_read_kernel(&th, sizeof(th), head + offset))
		return 0;
	h = reserve(sizeof(*h));
	if (!h) {
		lost(TCPSTATED_SRC_SEND_RESET);
		return 0;
	}
	h->ts_ns = bpf_ktime_get_ns();
	h->id = 0;
	h->skaddr = 0;
	h->netns_cookie = 0;
	if (bpf_core_field_exists(net->net_cookie))
		h->netns_cookie = BPF_CORE_READ(net, net_cookie);
	h->netns = BPF_CORE_READ(net, ns.inum);
	h->sport = bpf_ntohs(th.dest);
	h->dport = bpf_ntohs(th.source);
	*(__u32 *)h->saddr4 = 0;
	*(__u32 *)h->daddr4 = 0;
	h->source = TCPSTATED_SRC_SEND_RESET;
	h->oldstate = TCPSTATED_TCP_CLOSE;
	h->newstate = 0;
	h->flags = TCPSTATED_F_NO_SOCKET;
	h->sk_err = 0;
	h->spare[0] = 0;
	h->spare[1] = 0;
	h->spare[2] = 0;
	submit_short(h);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(btf_receive_reset, struct sock *sk)
{
	return btf_sock_event(sk, TCPSTATED_SRC_RECV_RESET);
}

/* Since Linux 6.10 tcp_send_reset also fires for a timewait socket that
 * answers with a reset (TCP_TW_RST: data or a SYN reaching an orphan in the
 * FIN_WAIT2 substate), which the kernel then frees. Its 4-tuple, in state
 * TIME_WAIT, tells the mirror which one. Its cookie is the full socket's. */
static __always_inline int timewait_reset_event(const struct sock *sk, bool direct)
{
	const struct sock_common *skc = &sk->__sk_common;

	socket_event(TCPSTATED_SRC_SEND_RESET, sk, skc, FIELD_READ(direct, skc, skc_cookie.counter),
		     0, FIELD_READ(direct, skc, skc_num), TCPSTATED_TCP_TIME_WAIT, direct);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(btf_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	if (!sk)
		return no_socket_reset_event(skb);
	if (sk->__sk_common.skc_state == TCPSTATED_TCP_TIME_WAIT)
		return timewait_reset_event(sk, true);
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

/* The request socket carries the connection's 4-tuple; the event names the
 * listener. */
static __always_inline int synack_event(const struct sock *listener, const struct request_sock *req,
					bool direct)
{
	if (!listener || !req)
		return 0;
	socket_event(TCPSTATED_SRC_SYNACK_RETRANS, listener, &req->__req_common, 0, 0,
		     FIELD_READ(direct, req, __req_common.skc_num), TCPSTATED_TCP_LISTEN, direct);
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
	/* The socket has the addresses the tracepoint copied; the ports are
	 * taken from the tracepoint as it formats them. */
	state_event(sk, (const struct tcp_sock *)sk, id, 0, ctx->sport, oldstate, newstate, false);
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
	__u64 id;

	if (!sk || !full_socket(sk))
		return 0;
	id = current_incarnation(skaddr);
	if (!id)
		id = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	socket_event(source, sk, &sk->__sk_common, id, 0,
		     local_port((const struct inet_sock *)sk, false),
		     BPF_CORE_READ(sk, __sk_common.skc_state), false);
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

/* tcp_send_reset has had two layouts; skaddr and skbaddr are all we read, so
 * CO-RE finds them in either. Only the new one (6.10) fires without a
 * socket. */
struct trace_event_raw_tcp_send_reset___new {
	const void *skbaddr;
	const void *skaddr;
} __attribute__((preserve_access_index));

struct trace_event_raw_tcp_event_sk_skb___old {
	const void *skaddr;
} __attribute__((preserve_access_index));

SEC("tracepoint/tcp/tcp_send_reset")
int tp_send_reset(void *ctx)
{
	const struct sock *sk;

	if (bpf_core_type_exists(struct trace_event_raw_tcp_send_reset___new)) {
		struct trace_event_raw_tcp_send_reset___new *args = ctx;

		sk = BPF_CORE_READ(args, skaddr);
		if (!sk)
			return no_socket_reset_event(BPF_CORE_READ(args, skbaddr));
	} else {
		sk = BPF_CORE_READ((struct trace_event_raw_tcp_event_sk_skb___old *)ctx, skaddr);
	}
	if (sk && BPF_CORE_READ(sk, __sk_common.skc_state) == TCPSTATED_TCP_TIME_WAIT)
		return timewait_reset_event(sk, false);
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
