// open_read FILELIST ROUNDS: open, read whole, close each file of FILELIST (one path per
// line), ROUNDS times; prints the per-file time's p50, p99 and p99.9 in microseconds and
// the files per second, as "p50 p99 p999 per_second".
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}
static int cmp(const void* a, const void* b) {
  long long x = *(const long long*)a, y = *(const long long*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  FILE* list = fopen(argv[1], "r");
  if (!list) return 2;
  char** paths = NULL;
  size_t n = 0, cap = 0;
  char line[4096];
  while (fgets(line, sizeof line, list)) {
    line[strcspn(line, "\n")] = 0;
    if (n == cap) paths = realloc(paths, (cap = cap ? cap * 2 : 1024) * sizeof *paths);
    paths[n++] = strdup(line);
  }
  const int rounds = atoi(argv[2]);
  long long* t = malloc(sizeof *t * n * rounds);
  static char buf[1 << 16];
  size_t k = 0;
  const long long start = now_ns();
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i < n; ++i) {
      const long long a = now_ns();
      const int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        while (read(fd, buf, sizeof buf) > 0) {
        }
        close(fd);
      }
      t[k++] = now_ns() - a;
    }
  const double seconds = (now_ns() - start) / 1e9;
  qsort(t, k, sizeof *t, cmp);
  printf("%.1f %.1f %.1f %.0f\n", t[k / 2] / 1e3, t[k * 99 / 100] / 1e3, t[k * 999 / 1000] / 1e3,
         k / seconds);
  return 0;
}
