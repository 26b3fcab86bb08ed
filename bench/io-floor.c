/*
 * The device floor for bench/io.ts: the same access pattern done with plain
 * pread/pwrite on O_DIRECT, one thread per unit of queue depth, no FFI, no batching.
 * usage: io-floor MODE FILE FILE_BYTES BLOCK QD SECONDS  (MODE: randread, randwrite, seqwrite)
 * prints: ops bytes seconds
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *mode;
static int fd;
static uint64_t file_bytes, block;
static double seconds;
static int qd;

struct lane { pthread_t t; uint64_t ops; unsigned seed; int id; };

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct lane *l = arg;
	void *buf;
	if (posix_memalign(&buf, 4096, block))
		return NULL;
	memset(buf, l->id, block);
	uint64_t blocks = file_bytes / block, seq = (uint64_t)l->id;
	double end = now() + seconds;
	while (now() < end) {
		for (int i = 0; i < 16; i++) {
			uint64_t b = strcmp(mode, "seqwrite") == 0 ? (seq += qd) % blocks
								 : (uint64_t)rand_r(&l->seed) % blocks;
			ssize_t n = strcmp(mode, "randread") == 0 ? pread(fd, buf, block, b * block)
								  : pwrite(fd, buf, block, b * block);
			if (n != (ssize_t)block) {
				perror("io-floor");
				exit(1);
			}
			l->ops++;
		}
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: io-floor MODE FILE FILE_BYTES BLOCK QD SECONDS\n");
		return 2;
	}
	mode = argv[1];
	file_bytes = strtoull(argv[3], NULL, 10);
	block = strtoull(argv[4], NULL, 10);
	qd = atoi(argv[5]);
	seconds = atof(argv[6]);
	fd = open(argv[2], O_RDWR | O_DIRECT);
	if (fd < 0) {
		perror(argv[2]);
		return 1;
	}
	struct lane *lanes = calloc(qd, sizeof(*lanes));
	double t0 = now();
	for (int i = 0; i < qd; i++) {
		lanes[i].id = i;
		lanes[i].seed = 1234u + i;
		pthread_create(&lanes[i].t, NULL, run, &lanes[i]);
	}
	uint64_t ops = 0;
	for (int i = 0; i < qd; i++) {
		pthread_join(lanes[i].t, NULL);
		ops += lanes[i].ops;
	}
	double dt = now() - t0;
	printf("%llu %llu %.6f\n", (unsigned long long)ops, (unsigned long long)(ops * block), dt);
	return 0;
}
