// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tcpstated-floor: loads and attaches floor.bpf.c (empty tp_btf programs on
 * tcpstated's tracepoints), prints "attached", and stays attached until its
 * standard input closes or it gets SIGINT/SIGTERM; then prints the number of
 * runs it counted and exits. A measuring tool for storm.py, not installed.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "floor_bpf.skel.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Sum of the per-CPU run counters. */
static unsigned long long total_runs(struct floor_bpf *skel)
{
	int ncpus = libbpf_num_possible_cpus();
	unsigned long long sum = 0;
	__u32 zero = 0;
	__u64 *values;

	if (ncpus <= 0)
		return 0;
	values = calloc((size_t)ncpus, sizeof(*values));
	if (!values)
		return 0;
	if (bpf_map__lookup_elem(skel->maps.runs, &zero, sizeof(zero), values,
				 sizeof(*values) * (size_t)ncpus, 0) == 0)
		for (int i = 0; i < ncpus; i++)
			sum += values[i];
	free(values);
	return sum;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct pollfd in = {.fd = STDIN_FILENO, .events = POLLIN};
	struct floor_bpf *skel;
	int err;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: tcpstated-floor (no arguments)\n");
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	skel = floor_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "tcpstated-floor: loading the BPF object: %s\n", strerror(errno));
		return 1;
	}
	err = floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "tcpstated-floor: attaching: %s\n", strerror(-err));
		floor_bpf__destroy(skel);
		return 1;
	}
	printf("attached\n");
	fflush(stdout);
	/* Bounded waits so that a signal is noticed within a second. */
	while (!stop) {
		char buf[64];
		int n = poll(&in, 1, 1000);

		if (n > 0 && read(STDIN_FILENO, buf, sizeof(buf)) <= 0)
			break;
	}
	printf("runs=%llu\n", total_runs(skel));
	floor_bpf__destroy(skel);
	return 0;
}
