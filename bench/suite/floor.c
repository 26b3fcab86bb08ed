/*
 * Device floors for the ForestFS benchmark, compiled at run time by bench/suite/floors.ts.
 *
 *   floor commit FILE NOPS
 *     Fills a 1 MiB region of FILE (O_DIRECT, then fdatasync), then NOPS times: one 4 KiB
 *     O_DIRECT pwrite over an already-written block followed by fdatasync (no metadata change,
 *     so this is one device write plus one cache flush). Prints one line per op: nanoseconds.
 *
 *   floor bw FILE TOTAL_MIB
 *     Creates FILE and writes TOTAL_MIB sequential 1 MiB O_DIRECT writes (queue depth 1), then
 *     fdatasync. Prints "BYTES NANOSECONDS" for the whole (writes + final fdatasync).
 *
 * Buffers are 4096-aligned (posix_memalign) and filled with pseudo-random bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ALIGN 4096

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fill(unsigned char *p, size_t n, uint32_t seed) {
  uint32_t x = seed | 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    p[i] = (unsigned char)x;
  }
}

static int die(const char *what) {
  fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
  return 2;
}

static int full_pwrite(int fd, const unsigned char *buf, size_t len, off_t off) {
  size_t done = 0;
  while (done < len) {
    ssize_t w = pwrite(fd, buf + done, len - done, off + (off_t)done);
    if (w < 0) { if (errno == EINTR) continue; return -1; }
    done += (size_t)w;
  }
  return 0;
}

static int commit_floor(const char *path, long nops) {
  const size_t region = 256; /* blocks of 4 KiB = 1 MiB */
  unsigned char *buf;
  if (posix_memalign((void **)&buf, ALIGN, region * ALIGN) != 0) return die("posix_memalign");
  fill(buf, region * ALIGN, 12345);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
  if (fd < 0) return die("open O_DIRECT");
  if (full_pwrite(fd, buf, region * ALIGN, 0) != 0) return die("prefill pwrite");
  if (fdatasync(fd) != 0) return die("prefill fdatasync");
  for (long i = 0; i < nops; i++) {
    size_t blk = (size_t)(i % (long)region);
    buf[blk * ALIGN] = (unsigned char)i; /* change content each time */
    uint64_t t0 = now_ns();
    if (full_pwrite(fd, buf + blk * ALIGN, ALIGN, (off_t)(blk * ALIGN)) != 0) return die("pwrite");
    if (fdatasync(fd) != 0) return die("fdatasync");
    uint64_t t1 = now_ns();
    printf("%llu\n", (unsigned long long)(t1 - t0));
  }
  close(fd);
  free(buf);
  return 0;
}

static int bw_floor(const char *path, long mib) {
  const size_t chunk = 1u << 20;
  unsigned char *buf;
  if (posix_memalign((void **)&buf, ALIGN, chunk) != 0) return die("posix_memalign");
  fill(buf, chunk, 67890);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
  if (fd < 0) return die("open O_DIRECT");
  uint64_t t0 = now_ns();
  for (long i = 0; i < mib; i++) {
    buf[0] = (unsigned char)i;
    if (full_pwrite(fd, buf, chunk, (off_t)i * (off_t)chunk) != 0) return die("pwrite");
  }
  if (fdatasync(fd) != 0) return die("fdatasync");
  uint64_t t1 = now_ns();
  printf("%llu %llu\n", (unsigned long long)mib * chunk, (unsigned long long)(t1 - t0));
  close(fd);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: floor commit FILE NOPS | floor bw FILE TOTAL_MIB\n");
    return 1;
  }
  long n = strtol(argv[3], NULL, 10);
  if (n <= 0) { fprintf(stderr, "floor: bad count\n"); return 1; }
  if (strcmp(argv[1], "commit") == 0) return commit_floor(argv[2], n);
  if (strcmp(argv[1], "bw") == 0) return bw_floor(argv[2], n);
  fprintf(stderr, "floor: unknown mode %s\n", argv[1]);
  return 1;
}
