/*
 * storm: the load generator of tcpstated's load scripts (storm.py, scale.py).
 * Run it inside a private network namespace: it only ever talks to
 * 127.0.0.0/8 on the namespace's loopback.
 *
 *   storm storm --connections N --workers K --seconds T --port P
 *               [--dests D] [--rst-percent R]
 *       K worker threads, each with its own listener on port P+i (any
 *       address of the namespace, i.e. its loopback), run connect / accept /
 *       close cycles until N connections are done in total or T seconds have
 *       passed. R percent of the connections (default 50, spread evenly) are
 *       closed by the client with SO_LINGER 0 (an RST, no TIME_WAIT); the
 *       others gracefully, client first (the client ends in TIME_WAIT).
 *       Destinations rotate over D loopback addresses 127.0.x.y so that the
 *       TIME_WAIT sockets never exhaust one destination's ephemeral ports.
 *       Prints one line: connections=... errors=... seconds=... rate=...
 *
 *   storm hold --connections N --port P [--dests D] [--seconds T]
 *       Opens N connections to its own listener on port P and keeps both
 *       ends open (2N sockets, ESTABLISHED), prints "ready sockets=2N
 *       seconds=...", then waits for its standard input to close and exits.
 *       Raises RLIMIT_NOFILE to what it needs; fails (exit 2) if the hard
 *       limit is lower and cannot be raised: run more holders then.
 *
 * Every loop is bounded by the connection count and by the time limit.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned long opt_connections = 10000;
static unsigned opt_workers = 2;
static double opt_seconds = 10;
static unsigned opt_port = 20000;
static unsigned opt_dests = 250;
static unsigned opt_rst_percent = 50;

static atomic_ulong next_index;
static atomic_ulong done_graceful, done_rst, errors;
static double deadline;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The n-th destination: 127.0.a.b with b in 1..250. */
static struct in_addr dest_addr(unsigned long n)
{
	unsigned long d = n % opt_dests;
	struct in_addr a;

	a.s_addr = htonl(0x7f000000u | (uint32_t)((d / 250) << 8) | (uint32_t)(1 + d % 250));
	return a;
}

static int make_listener(unsigned port)
{
	struct sockaddr_in sin;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("socket");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		fprintf(stderr, "bind port %u: %s\n", port, strerror(errno));
		exit(1);
	}
	if (listen(fd, 4096) < 0) {
		perror("listen");
		exit(1);
	}
	return fd;
}

/* connect() to the listener, then accept() the other end. Returns 0 and both
 * descriptors, or -1 (counted as an error). */
static int open_pair(int listener, unsigned port, unsigned long n, int *client, int *server)
{
	struct sockaddr_in sin;
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (c < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr = dest_addr(n);
	if (connect(c, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(c);
		return -1;
	}
	/* On loopback the handshake is done when connect() returns: the child
	 * is already in the accept queue. */
	int a = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0) {
		close(c);
		return -1;
	}
	*client = c;
	*server = a;
	return 0;
}

static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	unsigned port = opt_port + id;
	int listener = make_listener(port);
	struct linger rst = {.l_onoff = 1, .l_linger = 0};

	for (;;) {
		unsigned long n = atomic_fetch_add(&next_index, 1);
		int c, a;

		if (n >= opt_connections || now() >= deadline)
			break;
		if (open_pair(listener, port, n, &c, &a) < 0) {
			unsigned long e = atomic_fetch_add(&errors, 1) + 1;
			/* Bounded: a storm that mostly fails stops. */
			if (e > 1000 && e * 10 > n)
				break;
			continue;
		}
		/* R% RSTs, spread evenly over the sequence. */
		if ((n * opt_rst_percent) % 100 + opt_rst_percent >= 100 && opt_rst_percent > 0) {
			setsockopt(c, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
			close(c);
			close(a);
			atomic_fetch_add(&done_rst, 1);
		} else {
			close(c); /* client first: it ends in TIME_WAIT */
			close(a);
			atomic_fetch_add(&done_graceful, 1);
		}
	}
	close(listener);
	return NULL;
}

static int run_storm(void)
{
	pthread_t threads[256];
	double start;
	unsigned i;

	if (opt_workers == 0 || opt_workers > 256) {
		fprintf(stderr, "--workers must be 1..256\n");
		return 2;
	}
	start = now();
	deadline = start + opt_seconds;
	for (i = 0; i < opt_workers; i++)
		pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)i);
	for (i = 0; i < opt_workers; i++)
		pthread_join(threads[i], NULL);
	double elapsed = now() - start;
	unsigned long g = atomic_load(&done_graceful), r = atomic_load(&done_rst);
	printf("connections=%lu graceful=%lu rst=%lu errors=%lu seconds=%.4f rate=%.1f\n", g + r, g, r,
	       atomic_load(&errors), elapsed, (double)(g + r) / elapsed);
	return 0;
}

/* Raises RLIMIT_NOFILE to `need`: the hard limit too when we may
 * (CAP_SYS_RESOURCE, at most fs.nr_open), else only the soft one. */
static void raise_nofile(unsigned long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		perror("getrlimit");
		exit(2);
	}
	if (rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need) {
		struct rlimit up = {.rlim_cur = need, .rlim_max = need};

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return;
		fprintf(stderr,
			"need %lu descriptors, the hard limit is %lu and cannot be raised (%s): "
			"use more holders\n",
			need, (unsigned long)rl.rlim_max, strerror(errno));
		exit(2);
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		perror("setrlimit(RLIMIT_NOFILE)");
		exit(2);
	}
}

static int run_hold(void)
{
	unsigned long n, failures = 0;
	int listener, *fds;
	double start = now();
	char buf[64];

	raise_nofile(2 * opt_connections + 64);
	listener = make_listener(opt_port);
	fds = calloc(2 * opt_connections, sizeof(int));
	if (!fds) {
		perror("calloc");
		return 1;
	}
	deadline = start + opt_seconds;
	for (n = 0; n < opt_connections;) {
		if (now() >= deadline) {
			fprintf(stderr, "hold: time limit after %lu connections\n", n);
			return 1;
		}
		if (open_pair(listener, opt_port, n + failures, &fds[2 * n], &fds[2 * n + 1]) < 0) {
			if (++failures > 1000) {
				fprintf(stderr, "hold: too many failures (%s)\n", strerror(errno));
				return 1;
			}
			continue;
		}
		n++;
	}
	printf("ready sockets=%lu seconds=%.3f\n", 2 * n, now() - start);
	fflush(stdout);
	/* Hold until the parent closes our stdin (or dies). */
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: storm storm|hold [--connections N] [--workers K] [--seconds T] "
			"[--port P] [--dests D] [--rst-percent R]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int i;

	if (argc < 2)
		usage();
	for (i = 2; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (!strcmp(argv[i], "--connections"))
			opt_connections = strtoul(v, NULL, 10);
		else if (!strcmp(argv[i], "--workers"))
			opt_workers = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(argv[i], "--seconds"))
			opt_seconds = strtod(v, NULL);
		else if (!strcmp(argv[i], "--port"))
			opt_port = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(argv[i], "--dests"))
			opt_dests = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(argv[i], "--rst-percent"))
			opt_rst_percent = (unsigned)strtoul(v, NULL, 10);
		else
			usage();
		i++;
	}
	if (opt_dests == 0 || opt_dests > 250 * 256 || opt_rst_percent > 100)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "storm"))
		return run_storm();
	if (!strcmp(argv[1], "hold"))
		return run_hold();
	usage();
	return 2;
}
